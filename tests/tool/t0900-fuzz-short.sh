#!/bin/bash
# test-tier: slow (builds and runs every fuzz harness)
# The libFuzzer harnesses (tests/fuzz/fuzz_*.c), briefly: each one builds,
# runs every input of its seed corpus tests/fuzz/corpus/NAME (which holds
# the inputs of crashes found and fixed: the regression tests), then fuzzes
# for FUZZ_SHORT_SECONDS (default 5) from those seeds.  `make fuzz` is the
# long run.  Skips when clang with libFuzzer is not installed (Debian
# packages clang and libclang-rt-14-dev); installs nothing.
set -u
. "$(dirname "$0")/../lib/test-lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
secs=${FUZZ_SHORT_SECONDS:-5}
# A fixed seed: the same mutations on every run, so a failure here is one
# the corpus and the code produce, not luck (FUZZ_SEED=0: a random one).
seed=${FUZZ_SEED:-1}
FB=${FUZZ_BUILD:-build-fuzz}
export FUZZ_BUILD=$FB
tmp=$T

if ! command -v clang >/dev/null 2>&1; then
	echo "1..0 # SKIP clang is not installed (Debian: clang libclang-rt-14-dev)"
	exit 0
fi
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)\n{ (void)d; (void)n; return 0; }\n' >"$tmp/probe.c"
if ! clang -fsanitize=fuzzer,address,undefined -o "$tmp/probe" "$tmp/probe.c" >"$tmp/probe.log" 2>&1; then
	echo "1..0 # SKIP clang cannot link libFuzzer (Debian: libclang-rt-14-dev)"
	exit 0
fi

harnesses=$(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$//')
count=$(echo "$harnesses" | wc -w)
plan $((1 + 3 * count))
# Show the end of a libFuzzer log and the input that failed.
fuzz_log() {
	grep -a -v -E '^#[0-9]+|^    #[0-9]|^INFO:|^MS:|^0x|^$' "$1" |
		grep -a -B6 -A1 -E 'ERROR:|runtime error|Test unit written' |
		head -24 | sed 's/^/# /'
}

sh tests/fuzz/run --build >"$tmp/build.log" 2>&1
rc=$?
built=1
ok "harnesses build" [ $rc = 0 ]
if [ $rc != 0 ]; then
	sed 's/^/# /' "$tmp/build.log" | tail -30
	built=0
fi

for h in $harnesses; do
	bin=$FB/fuzz/$h
	seeds=tests/fuzz/corpus/$h
	nseeds=$(ls "$seeds" 2>/dev/null | wc -l)
	ok "$h: has a seed corpus ($nseeds inputs)" [ "$nseeds" -gt 0 ]
	if [ $built = 0 ] || [ ! -x "$bin" ]; then
		ok "$h: seed corpus (not built)" false
		ok "$h: ${secs}s of fuzzing (not built)" false
		continue
	fi
	# Every seed (and fixed crash) on its own, as a regression test.
	find "$seeds" -type f -print0 | xargs -0 "$bin" -timeout=10 \
		-rss_limit_mb=2048 >"$tmp/$h.seeds.log" 2>&1
	rc=$?
	ok "$h: every seed runs clean" [ $rc = 0 ]
	[ $rc = 0 ] || fuzz_log "$tmp/$h.seeds.log"
	mkdir -p "$tmp/corpus-$h"
	"$bin" -seed="$seed" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-max_len=65536 -print_final_stats=1 \
		-artifact_prefix="$tmp/$h-" "$tmp/corpus-$h" "$seeds" \
		>"$tmp/$h.fuzz.log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tmp/$h.fuzz.log")
	ok "$h: ${secs}s of fuzzing, ${execs:-?} executions" [ $rc = 0 ]
	if [ $rc != 0 ]; then
		fuzz_log "$tmp/$h.fuzz.log"
		mkdir -p "$FB/crashes"
		cp "$tmp/$h"-* "$FB/crashes/" 2>/dev/null &&
			echo "# the input is kept in $FB/crashes/"
	fi
done
done_testing
