#!/usr/bin/python3
"""faultproxy.py - a TCP proxy for fault-injection tests: it sits between a
daemon and Redis and does, on command, one of

  pass        forward both ways (the start)
  blackhole   keep every socket open, forward nothing, drop what arrives
              (a partition: the peer sees silence, not a reset)
  cut         close every connection now, then pass again
  cutafter P  pass, but the first server->client chunk that contains the
              bytes P is dropped and that connection closed at once (a lost
              reply: the server did the work, the client never hears of it)

Control: one line per TCP connection to --control PORT ("blackhole\\n",
"pass\\n", "cut\\n", "cutafter takeover\\n", "stats\\n"); the answer is one
line: "ok" or the counts.

    faultproxy.py --listen PORT --target HOST:PORT --control PORT
"""
import argparse
import asyncio
import sys


class Proxy:
    def __init__(self, target_host, target_port):
        self.target = (target_host, target_port)
        self.mode = "pass"
        self.pattern = None
        self.conns = set()
        self.accepted = 0
        self.cuts = 0  # "cut" commands
        self.lost = 0  # replies dropped by "cutafter"

    async def pipe(self, conn, reader, writer, upstream):
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if self.mode == "blackhole":
                    continue  # swallowed: the sender believes it went
                if not upstream and self.pattern is not None and self.pattern in data:
                    self.pattern = None
                    self.lost += 1
                    self.close(conn)
                    return
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            self.close(conn)

    def close(self, conn):
        if conn in self.conns:
            self.conns.discard(conn)
        for w in conn:
            try:
                w.close()
            except Exception:
                pass

    async def client(self, creader, cwriter):
        self.accepted += 1
        try:
            sreader, swriter = await asyncio.open_connection(*self.target)
        except OSError:
            cwriter.close()
            return
        conn = (cwriter, swriter)
        self.conns.add(conn)
        await asyncio.gather(self.pipe(conn, creader, swriter, True),
                             self.pipe(conn, sreader, cwriter, False))

    async def control(self, reader, writer):
        line = (await reader.readline()).decode().strip()
        cmd, _, arg = line.partition(" ")
        answer = "ok"
        if cmd in ("pass", "blackhole"):
            self.mode = cmd
        elif cmd == "cut":
            for conn in list(self.conns):
                self.close(conn)
            self.cuts += 1
            self.mode = "pass"
        elif cmd == "cutafter":
            self.pattern = arg.encode()
            self.mode = "pass"
        elif cmd == "stats":
            answer = "mode=%s conns=%d accepted=%d cuts=%d lost=%d armed=%d" % (
                self.mode, len(self.conns), self.accepted, self.cuts, self.lost,
                self.pattern is not None)
        else:
            answer = "unknown command: " + line
        writer.write((answer + "\n").encode())
        await writer.drain()
        writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", type=int, required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--control", type=int, required=True)
    a = ap.parse_args()
    host, port = a.target.rsplit(":", 1)
    p = Proxy(host, int(port))
    s1 = await asyncio.start_server(p.client, "127.0.0.1", a.listen)
    s2 = await asyncio.start_server(p.control, "127.0.0.1", a.control)
    print("faultproxy: 127.0.0.1:%d -> %s, control 127.0.0.1:%d" % (a.listen, a.target, a.control),
          flush=True)
    async with s1, s2:
        await asyncio.gather(s1.serve_forever(), s2.serve_forever())


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
