#!/usr/bin/env python3
"""evil-sftp.py MODEFILE: a hostile SFTP v3 server for the engine's tests.

sshd runs it as the sftp subsystem (Subsystem sftp evil-sftp.py MODEFILE).
It answers INIT with a proper VERSION (unless the mode attacks that), then
answers every request according to the mode named in MODEFILE, read afresh
for each connection, so one sshd serves every case:

  sane          STAT/LSTAT -> ATTRS, OPEN/OPENDIR -> HANDLE, READ -> DATA up
                to 1000 bytes then EOF, READDIR -> one NAME then EOF, others OK
  truncated     a STATUS whose body stops after the id (length says so)
  short-attrs   an ATTRS that claims a size field but ends before it
  cut-stream    a length prefix of 100, 10 bytes, then end of stream
  oversized     a length prefix of 0x7fffffff
  zero-length   a length prefix of 0
  wrong-id      the right reply with another id
  wrong-type    a HANDLE where ATTRS or DATA is due, ATTRS where HANDLE is due
  garbage       random bytes
  silent        no reply at all
  huge-count    a NAME claiming 2^31 entries
  long-handle   a HANDLE of 1000 bytes
  long-data     a DATA longer than was asked for
  bad-version   a VERSION that is not one
  no-extensions sane, but offering no extensions
"""
import os
import random
import struct
import sys

FXP_INIT, FXP_VERSION, FXP_OPEN, FXP_CLOSE, FXP_READ = 1, 2, 3, 4, 5
FXP_LSTAT, FXP_FSTAT, FXP_OPENDIR, FXP_READDIR, FXP_STAT = 7, 8, 11, 12, 17
FXP_STATUS, FXP_HANDLE, FXP_DATA, FXP_NAME, FXP_ATTRS = 101, 102, 103, 104, 105

out = sys.stdout.buffer
inp = sys.stdin.buffer


def send_raw(b):
    out.write(b)
    out.flush()


def send(body):
    send_raw(struct.pack(">I", len(body)) + body)


def string(s):
    if isinstance(s, str):
        s = s.encode()
    return struct.pack(">I", len(s)) + s


def attrs(size=1000, mode=0o100644):
    return struct.pack(">IQIIIII", 1 | 2 | 4 | 8, size, 0, 0, mode, 0, 0)


def status(rid, code):
    return struct.pack(">BII", FXP_STATUS, rid, code) + string("x") + string("")


def read_exact(n):
    b = b""
    while len(b) < n:
        c = inp.read(n - len(b))
        if not c:
            sys.exit(0)
        b += c
    return b


def read_packet():
    (n,) = struct.unpack(">I", read_exact(4))
    return read_exact(n)


def sane_reply(t, rid, body, state):
    if t in (FXP_STAT, FXP_LSTAT, FXP_FSTAT):
        return struct.pack(">BI", FXP_ATTRS, rid) + attrs()
    if t in (FXP_OPEN, FXP_OPENDIR):
        return struct.pack(">BI", FXP_HANDLE, rid) + string("h1")
    if t == FXP_READ:
        (hl,) = struct.unpack(">I", body[5:9])
        off, ln = struct.unpack(">QI", body[9 + hl:9 + hl + 12])
        if off >= 1000:
            return status(rid, 1)
        n = min(ln, 1000 - off)
        return struct.pack(">BI", FXP_DATA, rid) + string(b"x" * n)
    if t == FXP_READDIR:
        if state.get("listed"):
            return status(rid, 1)
        state["listed"] = True
        return struct.pack(">BII", FXP_NAME, rid, 1) + string("f") + string("f") + attrs()
    return status(rid, 0)


def main():
    mode = "sane"
    try:
        with open(sys.argv[1]) as f:
            mode = f.read().strip() or "sane"
    except (IndexError, OSError):
        pass
    pkt = read_packet()
    if pkt[0] != FXP_INIT:
        return
    if mode == "bad-version":
        send(struct.pack(">B", FXP_VERSION) + b"\x00\x00")
        return
    exts = b""
    if mode != "no-extensions":
        for name in ("posix-rename@openssh.com", "statvfs@openssh.com", "fsync@openssh.com",
                     "hardlink@openssh.com"):
            exts += string(name) + string("1")
    send(struct.pack(">BI", FXP_VERSION, 3) + exts)
    state = {}
    while True:
        body = read_packet()
        t, rid = body[0], struct.unpack(">I", body[1:5])[0]
        if mode in ("sane", "no-extensions"):
            send(sane_reply(t, rid, body, state))
        elif mode == "truncated":
            send(struct.pack(">BI", FXP_STATUS, rid))
        elif mode == "short-attrs":
            send(struct.pack(">BII", FXP_ATTRS, rid, 1) + b"\x00\x00")
        elif mode == "cut-stream":
            send_raw(struct.pack(">I", 100) + b"\x65" + b"\x00" * 9)
            return
        elif mode == "oversized":
            send_raw(struct.pack(">I", 0x7FFFFFFF) + b"\x65" * 64)
        elif mode == "zero-length":
            send_raw(struct.pack(">I", 0))
        elif mode == "wrong-id":
            send(sane_reply(t, rid + 1000, body, state))
        elif mode == "wrong-type":
            if t in (FXP_OPEN, FXP_OPENDIR):
                send(struct.pack(">BI", FXP_ATTRS, rid) + attrs())
            else:
                send(struct.pack(">BI", FXP_HANDLE, rid) + string("h1"))
        elif mode == "garbage":
            send_raw(bytes(random.getrandbits(8) for _ in range(200)))
        elif mode == "silent":
            pass
        elif mode == "huge-count":
            if t == FXP_READDIR:
                send(struct.pack(">BII", FXP_NAME, rid, 0x80000000) + string("f"))
            else:
                send(sane_reply(t, rid, body, state))
        elif mode == "long-handle":
            send(struct.pack(">BI", FXP_HANDLE, rid) + string(b"h" * 1000)
                 if t in (FXP_OPEN, FXP_OPENDIR) else sane_reply(t, rid, body, state))
        elif mode == "long-data":
            if t == FXP_READ:
                send(struct.pack(">BI", FXP_DATA, rid) + string(b"y" * 300000))
            else:
                send(sane_reply(t, rid, body, state))
        else:
            send(status(rid, 4))


if __name__ == "__main__":
    try:
        main()
    except (BrokenPipeError, KeyboardInterrupt):
        pass
    os._exit(0)
