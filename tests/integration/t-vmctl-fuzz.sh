#!/usr/bin/env bash
# A short libFuzzer run of vmctl's ARM, token and IMDS response handling
# (tests/fuzz/fuzz_arm.c, with ASan and UBSan), seeded with the JSON fixtures:
# any overread, crash, leak or undefined behaviour fails it.
. "$top_srcdir/tests/lib.sh"
t_init
CC_FUZZ=${CC_FUZZ:-clang}
if ! command -v "$CC_FUZZ" >/dev/null; then
	skip "fuzzing the ARM response handling" "clang is not installed (libFuzzer needs it)"
	t_done
fi
# azure.c includes the template header generated in the build tree.
if [ ! -f "$top_builddir/vmctl/azure-template.h" ]; then
	fail "the generated vmctl/azure-template.h exists (build first)"
	t_done
fi
if ! "$CC_FUZZ" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-DWAKEFS_LIBFUZZER -DWAKEFS_VERSION='"fuzz"' -D_GNU_SOURCE \
	-I"$top_builddir" -I"$top_srcdir/vmctl" -I"$top_srcdir" \
	"$top_srcdir/tests/fuzz/fuzz_arm.c" "$top_srcdir/vmctl/azure.c" "$top_srcdir/vmctl/provider.c" \
	"$top_srcdir/vmctl/config.c" "$top_srcdir/vmctl/proc.c" "$top_srcdir/vmctl/http.c" \
	"$top_srcdir/vmctl/auth.c" -lcjson -lcurl -o "$T/fuzz_arm" >"$T/build.log" 2>&1; then
	if grep -qi "fuzzer" "$T/build.log" && grep -qiE "cannot find|no such file|unsupported" "$T/build.log"; then
		skip "fuzzing the ARM response handling" "this clang has no libFuzzer runtime"
		t_done
	fi
	diag "$(tail -5 "$T/build.log")"
	fail "the fuzz target builds"
	t_done
fi
pass "the fuzz target builds"
mkdir -p "$T/corpus"
cp "$top_srcdir"/tests/fixtures/arm/* "$T/corpus/"
ok "the fixtures run clean" "$T/fuzz_arm" -runs=0 "$T/corpus"
ok "10 seconds of fuzzing find no crash" \
	"$T/fuzz_arm" -max_total_time=10 -max_len=4096 -timeout=10 -rss_limit_mb=1024 \
	-artifact_prefix="$T/" "$T/corpus"
t_done
