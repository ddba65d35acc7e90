#!/usr/bin/env bash
# ls -lR through an -o writethrough mount takes its attributes from the
# listings (READDIRPLUS): no LOOKUP, and so no SFTP round trip, per file (the
# FUSE requests are counted in the daemon's -d output). The listing matches
# the VM's; the VM's SFTP server is left with no directory open; rewinddir
# lists the VM again; seekdir to a telldir position resumes there.
. "$top_srcdir/tests/lib.sh"
t_init
PY=$(python3 -c 'import sys; print(sys.executable)')
NDIR=8
NFILE=20

sshd_start vm || { fail "sshd starts"; t_done; }
R=$T/vm
M=$T/mnt
mkdir -p "$R" "$M"
"$PY" - "$R/tree" "$NDIR" "$NFILE" <<-'EOF'
	import os, sys
	root, nd, nf = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
	for d in range(nd):
	    os.makedirs("%s/d%02d" % (root, d))
	    for i in range(nf):
	        with open("%s/d%02d/f%02d.txt" % (root, d, i), "w") as f:
	            f.write("x" * (d * 100 + i))
	os.symlink("d00/f00.txt", root + "/link")
EOF
NFILES=$((NDIR * NFILE + NDIR + 1))

"$WAKEFS" -f -d -F "$VM_SSH_CONFIG" -o writethrough "vm:$R" "$M" >"$T/wakefs.log" 2>&1 &
WPID=$!
t_track_pid $WPID
if ! mount_wait "$M" 30; then
	fail "wakefs mounts the VM directory"
	cat "$T/wakefs.log" >&2
	t_done
fi
pass "wakefs mounts the VM directory"

# name, size, type and link target of every entry, as the mount and the VM show them.
tree_of() { (cd "$1" && find . -printf '%p %s %y %l\n' | LC_ALL=C sort); }
lookups() { grep -c 'opcode: LOOKUP ' "$T/wakefs.log"; }

before=$(lookups)
ok "ls -lR of the mount" bash -c "ls -lR '$M/tree' >'$T/ls.out'"
after=$(lookups)
diag "ls -lR of $NFILES entries sent $((after - before)) LOOKUPs"
ok "ls -lR lists every entry" test "$(grep -c '^[-dl]' "$T/ls.out")" -eq "$NFILES"
# Without attributes in the listing the kernel looks up each of the NFILES
# entries; the few it may still ask for (its cache can drop an entry) are
# far below that.
ok "ls -lR sends no LOOKUP per entry ($((after - before)) for $NFILES entries)" \
	test $((after - before)) -lt $((NFILES / 4))
ok_eq "the listing's sizes, types and link targets are the VM's" "$(tree_of "$R/tree")" "$(tree_of "$M/tree")"
# Directory handles are closed without waiting for the answer: the closes
# must still reach the VM's SFTP server (the "VM" is this machine).
no_open_dirs() { [ -z "$(find /proc/[0-9]*/fd -lname "$R/tree*" 2>/dev/null | head -1)" ]; }
ok "the VM's SFTP server closed every directory the mount listed" wait_for 60 no_open_dirs

# rewinddir (offset 0) lists the VM again; seekdir to a telldir position resumes there.
perl_out=$(perl -e '
	my ($d, $vm) = @ARGV;
	opendir(my $h, $d) or die "opendir: $!";
	my @first = grep { !/^\.\.?$/ } readdir($h);
	open(my $f, ">", "$vm/new.txt") or die "create: $!";
	close($f);
	rewinddir($h);
	my @again = grep { !/^\.\.?$/ } readdir($h);
	rewinddir($h);
	my ($n, $pos, @rest) = (0);
	while (defined(my $e = readdir($h))) {
		next if $e =~ /^\.\.?$/;
		if (++$n == 5) { $pos = telldir($h); last; }
	}
	my @tail = grep { !/^\.\.?$/ } readdir($h);
	seekdir($h, $pos);
	@rest = grep { !/^\.\.?$/ } readdir($h);
	print scalar(@first), " ", scalar(@again), " ", (grep { $_ eq "new.txt" } @again) ? 1 : 0,
	      " ", join(",", @tail) eq join(",", @rest) ? 1 : 0, " ", scalar(@rest), "\n";
' "$M/tree/d03" "$R/tree/d03" 2>&1)
read -r n_first n_again has_new same_tail n_rest <<<"$perl_out"
ok_eq "the first listing has every file" "$NFILE" "$n_first"
ok_eq "after rewinddir the listing has the file made on the VM meanwhile" "$((NFILE + 1)) 1" "$n_again $has_new"
ok_eq "seekdir to a telldir position resumes there" "1 $((NFILE + 1 - 5))" "$same_tail $n_rest"

ok "unmount" umount_wait "$M"
t_done
