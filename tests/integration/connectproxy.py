#!/usr/bin/env python3
"""connectproxy.py - a tiny HTTP CONNECT proxy for the proxy tests.

    connectproxy.py PORT LOG [--refuse]

Listens on 127.0.0.1:PORT.  Every accepted connection appends one line to
LOG: "CONNECT host:port" for a tunnel request, "REFUSED <first line>" in
--refuse mode (the client's first line is read, then the connection is
closed without an answer), or "BAD <first line>" for anything else.  A CONNECT to a loopback address is answered 200 and relayed both
ways until either side closes; other targets get 403 (the test proxy never
reaches beyond this host).
"""
import asyncio
import sys


async def relay(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


def note(log, line):
    with open(log, "a", encoding="utf-8") as f:
        f.write(line + "\n")


async def handle(reader, writer, log, refuse):
    if refuse:
        # read what the client says first (a proxy client's request line;
        # a port probe sends nothing or a blank line), then hang up
        try:
            first = await asyncio.wait_for(reader.readline(), 2)
        except (asyncio.TimeoutError, ConnectionError):
            first = b""
        note(log, "REFUSED " + first.decode("latin-1").strip())
        writer.close()
        return
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        writer.close()
        return
    first = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = first.split()
    if len(parts) != 3 or parts[0] != "CONNECT":
        note(log, "BAD " + first)
        writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
        writer.close()
        return
    target = parts[1]
    host, _, port = target.rpartition(":")
    note(log, "CONNECT " + target)
    if host not in ("127.0.0.1", "localhost", "[::1]"):
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        writer.close()
        return
    try:
        up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
    except (OSError, ValueError):
        writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
        writer.close()
        return
    writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
    await writer.drain()
    await asyncio.gather(relay(reader, up_writer), relay(up_reader, writer))


async def main():
    port, log = int(sys.argv[1]), sys.argv[2]
    refuse = "--refuse" in sys.argv[3:]
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, log, refuse), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
