#!/usr/bin/env python3
"""
tests/tools/fsx-diff.py: random POSIX calls on a mount and on a plain
directory side by side; stops at the first call whose result differs.

  fsx-diff.py gen SEED N > ops.json      N calls from a seed (deterministic)
  fsx-diff.py run MOUNT PLAIN ops.json   run them; exit 1 at a difference

The calls mix open (several flag sets), write, pwrite, read, truncate,
ftruncate, fsync, close, rename, unlink, mkdir, rmdir, symlink, chmod, stat
and readdir over a few names in two levels, with up to four descriptors open
at once. A rename the mount refuses with EXDEV (a VM directory, which the
layer does not move; mv copies it) is skipped on both sides.

It is a developer's tool, not part of make check: the layered mount's
flusher runs beside the calls, so a difference can depend on timing. Found
with it and fixed: f92b11e, 5537673, d2fab22 and 78d37f7. Shrinking a run
to the few calls that matter: drop calls while the same difference stays.
"""
import errno
import json
import os
import random
import stat
import sys

NAMES = ["a", "b", "c", "d/e", "d/f", "g/h/i", "sp ace", "ünï", "d", "g", "g/h"]
OPS = ["open", "open", "write", "write", "pwrite", "read", "trunc", "ftrunc", "close", "rename",
       "unlink", "mkdir", "rmdir", "symlink", "chmod", "stat", "fsync", "readdir"]
FLAGS = [os.O_RDONLY, os.O_RDWR, os.O_RDWR | os.O_CREAT, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
         os.O_RDWR | os.O_CREAT | os.O_EXCL, os.O_WRONLY | os.O_APPEND | os.O_CREAT]


def gen(seed, n):
    rnd = random.Random(seed)
    return [[i, rnd.choice(OPS), rnd.choice(NAMES), rnd.choice(NAMES), rnd.randrange(4),
             rnd.choice([0, 1, 100, 5000, 70000]), rnd.randrange(1 << 30),
             rnd.choice([0, 10, 4096, 65536, 200000]), rnd.choice([0o600, 0o755, 0o644]),
             rnd.randrange(len(FLAGS))] for i in range(n)]


def res(fn, *args):
    try:
        return ("ok", fn(*args))
    except OSError as e:
        return ("err", errno.errorcode.get(e.errno, str(e.errno)))


def lstat_of(path):
    s = os.lstat(path)
    return (stat.S_IFMT(s.st_mode), stat.S_IMODE(s.st_mode), 0 if stat.S_ISDIR(s.st_mode) else s.st_size)


def run(mnt, plain, ops, verbose):
    fds = {}
    on = lambda root, name: os.path.join(root, name)
    for (i, op, n1, n2, key, dlen, dseed, off, mode, flags) in ops:
        data = random.Random(dseed).randbytes(dlen)
        if op == "open":
            if key in fds:
                continue
            a = res(os.open, on(mnt, n1), FLAGS[flags], 0o644)
            b = res(os.open, on(plain, n1), FLAGS[flags], 0o644)
            if a[0] == "ok" and b[0] == "ok":
                fds[key] = (a[1], b[1])
            elif a[0] == "ok":
                os.close(a[1])
            elif b[0] == "ok":
                os.close(b[1])
            a, b = (a[0], None if a[0] == "ok" else a[1]), (b[0], None if b[0] == "ok" else b[1])
        elif op in ("write", "pwrite", "read", "ftrunc", "close", "fsync"):
            if key not in fds:
                continue
            fm, fp = fds[key]
            call = {"write": lambda fd: os.write(fd, data), "pwrite": lambda fd: os.pwrite(fd, data, off),
                    "read": lambda fd: os.pread(fd, 100000, off), "ftrunc": lambda fd: os.ftruncate(fd, off),
                    "fsync": os.fsync, "close": os.close}[op]
            a, b = res(call, fm), res(call, fp)
            if op == "close":
                del fds[key]
        elif op == "rename":
            a = res(os.rename, on(mnt, n1), on(mnt, n2))
            if a == ("err", "EXDEV"):
                continue
            b = res(os.rename, on(plain, n1), on(plain, n2))
        else:
            call = {"trunc": lambda p: os.truncate(p, off), "unlink": os.unlink,
                    "mkdir": lambda p: os.mkdir(p, 0o755), "rmdir": os.rmdir,
                    "symlink": lambda p: os.symlink(n2, p), "chmod": lambda p: os.chmod(p, mode),
                    "stat": lstat_of, "readdir": lambda p: sorted(os.listdir(p))}[op]
            a, b = res(call, on(mnt, n1)), res(call, on(plain, n1))
        if verbose:
            print("  %d %s %r %r fd%d: %s | %s" % (i, op, n1, n2, key, str(a)[:60], str(b)[:60]))
        if a != b:
            print("differs at call %d, %s %r %r: mount %s, plain %s" % (i, op, n1, n2, str(a)[:80], str(b)[:80]))
            return 1
    for fm, fp in fds.values():
        os.close(fm)
        os.close(fp)
    print("same results for %d calls" % len(ops))
    return 0


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "gen":
        json.dump(gen(int(sys.argv[2]), int(sys.argv[3])), sys.stdout)
        return 0
    if len(sys.argv) == 5 and sys.argv[1] == "run":
        with open(sys.argv[4]) as f:
            return run(sys.argv[2], sys.argv[3], json.load(f), bool(os.environ.get("FSX_VERBOSE")))
    print(__doc__.strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
