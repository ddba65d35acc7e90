#!/usr/bin/env bash
# A short libFuzzer run of the SFTP reply decoders (tests/fuzz/fuzz_sftp.c,
# with ASan and UBSan): any overread, crash or undefined behaviour fails it.
. "$top_srcdir/tests/lib.sh"
t_init
CC_FUZZ=${CC_FUZZ:-clang}
if ! command -v "$CC_FUZZ" >/dev/null; then
	skip "fuzzing the SFTP decoders" "clang is not installed (libFuzzer needs it)"
	t_done
fi
if ! "$CC_FUZZ" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-D_GNU_SOURCE -I"$top_srcdir/fs" "$top_srcdir/tests/fuzz/fuzz_sftp.c" "$top_srcdir/fs/sftp.c" \
	-o "$T/fuzz_sftp" >"$T/build.log" 2>&1; then
	if grep -qi "fuzzer" "$T/build.log" && grep -qiE "cannot find|no such file|unsupported" "$T/build.log"; then
		skip "fuzzing the SFTP decoders" "this clang has no libFuzzer runtime"
		t_done
	fi
	fail "the fuzz target builds"
	t_done
fi
pass "the fuzz target builds"
mkdir -p "$T/corpus"
# Seeds: a STATUS, a NAME with one entry, a VERSION with an extension.
printf '\x65\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x01x\x00\x00\x00\x00' >"$T/corpus/status"
printf '\x68\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01f\x00\x00\x00\x01f\x00\x00\x00\x04\x00\x00\x81\xa4' >"$T/corpus/name"
printf '\x02\x00\x00\x00\x03\x00\x00\x00\x13statvfs@openssh.com\x00\x00\x00\x012' >"$T/corpus/version"
ok "10 seconds of fuzzing find no crash" \
	"$T/fuzz_sftp" -max_total_time=10 -max_len=512 -timeout=10 -rss_limit_mb=1024 \
	-artifact_prefix="$T/" "$T/corpus"
t_done
