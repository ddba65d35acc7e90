#!/usr/bin/env bash
# Every remote.h operation through the engine, with the result checked on the
# VM side (the loopback sshd's file system, through vm_ssh and stat).
. "$top_srcdir/tests/lib.sh"
t_init
unset SSH_AUTH_SOCK
CLI=$top_builddir/tests/tools/remote-cli
sshd_start vm || { fail "sshd starts"; t_done; }
R() {
	"$CLI" -o "identity=$VM_KEY,known_hosts=$VM_KNOWN_HOSTS,host_key_alias=$VM_ALIAS,user=$VM_USER" \
		"127.0.0.1:$VM_PORT" "$@"
}
# R_err CMD...: the errno name the command failed with ("" if it succeeded).
R_err() { R "$@" 2>&1 >/dev/null | sed -n 's/.*(\(E[A-Z0-9]*\))$/\1/p'; }
D=$T/vmroot
mkdir -p "$D"

ok_eq "the server offers all five OpenSSH extensions" 31 "$(R ext)"

# mkdir / stat / lstat
ok "mkdir" R mkdir "$D/a" 750
ok_eq "mkdir made a directory with the mode on the VM" 750 "$(vm_ssh stat -c %a "$D/a")"
ok_eq "mkdir of an existing path: EEXIST" EEXIST "$(R_err mkdir "$D/a")"
ok_eq "mkdir under a missing parent: ENOENT" ENOENT "$(R_err mkdir "$D/nope/x")"
ok_eq "stat of a missing path: ENOENT" ENOENT "$(R_err stat "$D/missing")"
ok_eq "a name over 255 bytes: ENAMETOOLONG" ENAMETOOLONG "$(R_err stat "$D/$(printf 'x%.0s' $(seq 300))")"

# files: put, read, write at an offset, stat
printf 'hello, world\n' >"$T/hello"
ok "put uploads a file" R put "$T/hello" "$D/f" 640
ok "the VM has the same bytes" cmp "$T/hello" "$D/f"
ok_eq "put set the mode" 640 "$(vm_ssh stat -c %a "$D/f")"
ok_eq "stat reports the size" "size=13" "$(R stat "$D/f" | grep -o 'size=[0-9]*')"
ok_eq "stat reports the mtime" "mtime=$(stat -c %Y "$D/f")" "$(R stat "$D/f" | grep -o 'mtime=[0-9]*')"
ok_eq "fstat agrees with stat" "$(R stat "$D/f" | cut -d' ' -f1-4)" "$(R fstat "$D/f" | cut -d' ' -f1-4)"
ok_eq "read at an offset" "llo" "$(R read "$D/f" 2 3)"
ok_eq "read past the end is empty" "" "$(R read "$D/f" 100 10)"
printf 'XYZ' | R write "$D/f" 7
ok_eq "write at an offset changes those bytes on the VM" "hello, XYZld" "$(head -n1 "$D/f")"
printf 'tail' | R write "$D/f" 20
ok_eq "write past the end extends the file (hole)" 24 "$(stat -c %s "$D/f")"
ok_eq "create O_EXCL on an existing file: EEXIST" EEXIST "$(R_err create-excl "$D/f")"
ok "create O_EXCL of a new file" R create-excl "$D/new"
ok_eq "O_EXCL made it with its mode" 600 "$(stat -c %a "$D/new")"
ok "fsync" R fsync "$D/f"

# truncate, ftruncate, chmod, utimes, chown
ok "truncate" R truncate "$D/f" 5
ok_eq "truncate set the size on the VM" 5 "$(stat -c %s "$D/f")"
ok "ftruncate" R ftruncate "$D/f" 3
ok_eq "ftruncate set the size on the VM" "hel" "$(cat "$D/f")"
ok "chmod" R chmod 604 "$D/f"
ok_eq "chmod set the mode on the VM" 604 "$(vm_ssh stat -c %a "$D/f")"
ok "utimes" R utimes "$D/f" 1000000000 1200000000
ok_eq "utimes set atime and mtime on the VM" "1000000000 1200000000" "$(stat -c '%X %Y' "$D/f")"
ok "chown to the owner it has" R chown "$(id -u)" -1 "$D/f"
ok_eq "chown kept the owner" "$(id -u)" "$(stat -c %u "$D/f")"

# names: spaces, unicode, many entries
touch "$D/a/with space" "$D/a/ünïcødé ✓" "$D/a/plain"
ok_eq "ls lists names with spaces and unicode" "$(ls -A "$D/a" | sort)" "$(R ls "$D/a" | cut -f1 | sort)"
ok_eq "ls gives each entry's type" "100644" "$(R ls "$D/a" | awk -F'\t' '$1=="plain"{print $2}')"
mkdir "$D/many"
(cd "$D/many" && seq -f 'entry-%05g' 3000 | xargs touch)
ok_eq "ls of 3000 entries lists them all" 3000 "$(R ls "$D/many" | wc -l)"
ok_eq "ls of a missing directory: ENOENT" ENOENT "$(R_err ls "$D/missing")"

# symlink, readlink, link
ok "symlink" R symlink "target with space" "$D/lnk"
ok_eq "the VM has the link with its target (OpenSSH's argument order)" "target with space" "$(vm_ssh readlink "'$D/lnk'")"
ok_eq "readlink" "target with space" "$(R readlink "$D/lnk")"
ok_eq "lstat sees a symlink" "mode=120777" "$(R lstat "$D/lnk" | cut -d' ' -f1)"
ok_eq "symlink over an existing path: EEXIST" EEXIST "$(R_err symlink x "$D/lnk")"
ok "link" R link "$D/f" "$D/hard"
ok_eq "the VM shows two links" 2 "$(stat -c %h "$D/f")"
ok_eq "link onto an existing path: EEXIST" EEXIST "$(R_err link "$D/f" "$D/new")"

# rename
echo one >"$D/r1"
echo two >"$D/r2"
ok "rename over an existing file" R mv "$D/r1" "$D/r2"
ok_eq "the target now has the source's bytes" "one" "$(cat "$D/r2")"
ok_not "the source is gone" test -e "$D/r1"
echo three >"$D/r3"
ok_eq "rename NOREPLACE onto an existing file: EEXIST" EEXIST "$(R_err mv "$D/r3" "$D/r2" noreplace)"
ok_eq "NOREPLACE left the target alone" "one" "$(cat "$D/r2")"
ok "rename NOREPLACE to a free name" R mv "$D/r3" "$D/r4" noreplace
ok "the renamed file is there" test -f "$D/r4"
ok_eq "rename EXCHANGE: EINVAL" EINVAL "$(R_err mv "$D/r4" "$D/r2" exchange)"
ok_eq "rename of a missing file: ENOENT" ENOENT "$(R_err mv "$D/missing" "$D/r5")"
mkdir -p "$D/full/sub"
ok_eq "rename a directory over a non-empty one: ENOTEMPTY" ENOTEMPTY "$(R_err mv "$D/many" "$D/full")"
ok_eq "rename a directory over a file: ENOTDIR" ENOTDIR "$(R_err mv "$D/full" "$D/r2")"

# unlink, rmdir
ok "unlink" R rm "$D/r4"
ok_not "the VM no longer has it" test -e "$D/r4"
ok_eq "unlink of a directory: EISDIR" EISDIR "$(R_err rm "$D/a")"
ok_eq "unlink of a missing file: ENOENT" ENOENT "$(R_err rm "$D/r4")"
ok_eq "rmdir of a non-empty directory: ENOTEMPTY" ENOTEMPTY "$(R_err rmdir "$D/full")"
ok_eq "rmdir of a file: ENOTDIR" ENOTDIR "$(R_err rmdir "$D/r2")"
ok "rmdir" R rmdir "$D/full/sub"
ok_not "the VM no longer has the directory" test -e "$D/full/sub"
# statvfs, exec
ok_eq "statvfs reports the VM's block count" "blocks=$(stat -f -c %b "$D")" "$(R statvfs "$D" | grep -o 'blocks=[0-9]*')"
ok_eq "exec returns the command's output and exit status" "$(printf 'out\nstatus=3')" "$(R exec 'echo out; echo err >&2; exit 3')"
ok_eq "exec runs in the login directory of the VM user" "$(vm_ssh pwd)" "$(R exec pwd | head -n1)"

# several commands over one connection
out=$(printf 'mkdir %s\nstat %s\nrmdir %s\nstat %s\n' "$D/s" "$D/s" "$D/s" "$D/s" | R - 2>/dev/null)
ok_eq "one connection serves a sequence of operations" "OK|mode=40755|OK|OK|ERR ENOENT" \
	"$(echo "$out" | sed 's/^\(mode=[0-7]*\) .*/\1/' | paste -sd'|')"

# EACCES: no permission stops root, so as root (as in CI) a second server
# logs in as a throwaway unprivileged user, for whom root's files are closed.
P=$T/perm
mkdir -p "$P/locked"
echo open >"$P/open"
echo secret >"$P/secret"
chmod 755 "$P"
chmod 644 "$P/open"
chmod 600 "$P/secret"
chmod 000 "$P/locked"
if [ "$(id -u)" = 0 ]; then
	sshd_start --user "wakefs-t$$" uvm || { fail "sshd starts for an unprivileged user"; t_done; }
	ok_eq "the second server's user is not root" "wakefs-t$$" "$(vm_ssh id -un)"
	ok_eq "exec runs as that user" "wakefs-t$$" "$(R exec 'id -un' | head -n1)"
else
	chmod 000 "$P/secret"	# the server runs as this user, who owns the file
fi
ok_eq "a file the server user may read reads" "open" "$(R read "$P/open" 0 4)"
ok_eq "read of a file the server user cannot read: EACCES" EACCES "$(R_err read "$P/secret" 0 4)"
ok_eq "stat inside an unreadable directory: EACCES" EACCES "$(R_err stat "$P/locked/x")"
ok_eq "put into a directory the server user cannot write: EACCES" EACCES \
	"$(R_err put "$T/hello" "$P/new" 644)"
ok_not "and nothing was made there" test -e "$P/new"
t_done
