#!/usr/bin/env python3
# tests/tools/posix-ops.py: system calls the shell cannot make, for the
# t-fs-*.sh tests. Each subcommand prints its result on stdout (an errno name
# such as "EEXIST" when the call failed, or "ok") and exits 0 unless its
# arguments are wrong, so the test compares the output with what it expects.
import ctypes
import errno
import os
import sys

AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2


def err_name(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def renameat2(flags, a, b):
    libc = ctypes.CDLL(None, use_errno=True)
    fl = {"0": 0, "noreplace": RENAME_NOREPLACE, "exchange": RENAME_EXCHANGE}[flags]
    r = libc.renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), fl)
    if r != 0:
        return errno.errorcode.get(ctypes.get_errno(), "?")
    return "ok"


def ftruncate(path, size):
    fd = os.open(path, os.O_RDWR)
    try:
        os.ftruncate(fd, int(size))
        return str(os.fstat(fd).st_size)
    finally:
        os.close(fd)


def pread(path, off, n):
    with open(path, "rb") as f:
        return os.pread(f.fileno(), int(n), int(off)).decode("latin-1")


def pwrite(path, off, data):
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data.encode(), int(off))
        os.fsync(fd)
        return "ok"
    finally:
        os.close(fd)


def fsync(path):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, b"synced\n")
        os.fsync(fd)
        return "ok"
    finally:
        os.close(fd)


def unlinked(path):
    """Write, unlink, then keep using the open file: prints what it saw."""
    out = []
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, b"before ")
        os.unlink(path)
        out.append("gone" if not os.path.exists(path) else "still-there")
        os.write(fd, b"after")
        out.append(os.pread(fd, 100, 0).decode())
        out.append(str(os.fstat(fd).st_size))
        os.fchmod(fd, 0o600)
        out.append(oct(os.fstat(fd).st_mode & 0o777))
        os.ftruncate(fd, 6)
        out.append(os.pread(fd, 100, 0).decode())
        hidden = [n for n in os.listdir(os.path.dirname(path) or ".") if n.startswith(".")]
        out.append("listed:" + ",".join(hidden))
    finally:
        os.close(fd)
    return "|".join(out)


def touch_atime_only(path, atime):
    """utimensat(): set atime, UTIME_OMIT for mtime."""
    libc = ctypes.CDLL(None, use_errno=True)

    class timespec(ctypes.Structure):
        _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

    UTIME_OMIT = (1 << 30) - 2
    ts = (timespec * 2)(timespec(int(atime), 0), timespec(0, UTIME_OMIT))
    r = libc.utimensat(AT_FDCWD, os.fsencode(path), ts, 0)
    if r != 0:
        return errno.errorcode.get(ctypes.get_errno(), "?")
    return "ok"


def try_call(name, fn, *args):
    try:
        return fn(*args)
    except OSError as e:
        return err_name(e)


def main():
    cmds = {
        "renameat2": (renameat2, 3),
        "ftruncate": (ftruncate, 2),
        "pread": (pread, 3),
        "pwrite": (pwrite, 3),
        "fsync": (fsync, 1),
        "unlinked": (unlinked, 1),
        "atime-only": (touch_atime_only, 2),
        "open-write": (lambda p: os.close(os.open(p, os.O_WRONLY)) or "ok", 1),
        "mkdir": (lambda p: os.mkdir(p) or "ok", 1),
        "rmdir": (lambda p: os.rmdir(p) or "ok", 1),
        "unlink": (lambda p: os.unlink(p) or "ok", 1),
        "create-excl": (lambda p: os.close(os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY)) or "ok", 1),
        "stat": (lambda p: os.stat(p) and "ok", 1),
    }
    if len(sys.argv) < 2 or sys.argv[1] not in cmds or len(sys.argv) - 2 != cmds[sys.argv[1]][1]:
        sys.stderr.write("usage: posix-ops.py {%s} ARGS...\n" % "|".join(sorted(cmds)))
        return 2
    fn, _ = cmds[sys.argv[1]]
    print(try_call(sys.argv[1], fn, *sys.argv[2:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
