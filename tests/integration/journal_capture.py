#!/usr/bin/python3
"""journal_capture.py - stand in for journald's native socket in a test.

Binds a unix datagram socket at PATH and writes every entry it receives
(sd_journal_send's native protocol) as one JSON object per line to OUT:
{"FIELD": "value", ...}; a field given twice becomes a list.  Entries sent
in a memfd (SCM_RIGHTS, for large ones) are read from the passed fd.

The protocol (systemd's journal-native docs): a sequence of fields, each
either "NAME=value\\n" or, for values that may hold newlines,
"NAME\\n" + 64-bit little-endian length + value + "\\n".

    journal_capture.py PATH OUT
"""
import array
import json
import os
import socket
import struct
import sys


def parse(data):
    fields = {}
    i = 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            name, value = line.split(b"=", 1)
            i = nl + 1
        else:
            name = line
            (n,) = struct.unpack("<Q", data[nl + 1:nl + 9])
            value = data[nl + 9:nl + 9 + n]
            i = nl + 9 + n + 1
        key = name.decode("ascii", "replace")
        val = value.decode("utf-8", "replace")
        if key in fields:
            old = fields[key]
            fields[key] = (old if isinstance(old, list) else [old]) + [val]
        else:
            fields[key] = val
    return fields


def main():
    path, out = sys.argv[1], sys.argv[2]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    os.chmod(path, 0o666)
    with open(out, "a", encoding="utf-8") as f:
        while True:
            fds = array.array("i")
            data, anc, _, _ = s.recvmsg(1 << 20, socket.CMSG_SPACE(4 * fds.itemsize))
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(cdata[:len(cdata) - (len(cdata) % fds.itemsize)])
            for fd in fds:
                with os.fdopen(fd, "rb") as m:
                    m.seek(0)
                    data = m.read()
            try:
                entry = parse(data)
            except (ValueError, struct.error) as e:
                entry = {"_PARSE_ERROR": str(e)}
            f.write(json.dumps(entry) + "\n")
            f.flush()


if __name__ == "__main__":
    main()
