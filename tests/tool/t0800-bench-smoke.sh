#!/bin/bash
# test-tier: slow (benchmarks in a mail world of their own)
# `make bench` cannot rot: bench/run at tiny sizes (BENCH_SCALE=smoke) in
# its own mail world prints the five lines, each with its ratio, and writes
# a results.json that holds every benchmark's figures.  Targets are not
# asserted here (benchmarks never fail a test); that each benchmark really
# ran is: the connector listed every message, verify passed every mailbox,
# migrate wrote every INI file.  Small: under 60 s of CPU (user + system,
# bench/run and what it runs; the world's servers are not counted).  CPU,
# not wall time: measured 15.5 s of CPU for 253 s of wall time on a
# machine at load 16, where the old 60 s wall-clock limit could only fail.
. "$(dirname "$0")/../lib/test-lib.sh"
top=$MS_TOP

TIMEFORMAT='%R %U %S'
{ time BENCH_SCALE=smoke BENCH_OUT="$T/out" BENCH_PORT_BASE=${T0800_PORT_BASE:-25960} \
    sh "$top/bench/run" >"$T/stdout" 2>"$T/stderr" </dev/null; } 2>"$T/time"
rc=$?
read -r wall user sys < <(tail -n 1 "$T/time")
cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%d", u + s + 0.5 }')
ok_rc $rc "bench/run exits 0"
ok_rc $([ "$cpu" -lt 60 ]; echo $?) "smoke run under 60 s of CPU ($cpu s; ${wall%.*} s of wall time)"

line() { grep "^$1" "$T/stdout" | head -n 1; }
like "$(line 'B1 connector poll:')" '^B1 connector poll: [0-9]+\.[0-9]+x one-session fetch \(.*300 messages, [0-9.]+ s vs [0-9.]+ s, 1 connection' \
    "B1 line: ratio, messages, times, connections"
like "$(line 'B2 token reuse:')" '^B2 token reuse: [0-9]+ request\(s\) for 5 runs, [0-9]+ request\(s\) for 3 concurrent runs' \
    "B2 line: token requests for consecutive and concurrent runs"
like "$(line 'B3 audit:')" '^B3 audit: [0-9]+\.[0-9]+x grep \(3000 jobs, [0-9.]+ s vs [0-9.]+ s, peak [0-9]+ MB, peak [0-9]+ MB at 6000 jobs' \
    "B3 line: ratio, times, peak memory at two sizes"
like "$(line 'B4 migrate:')" '^B4 migrate: [0-9]+\.[0-9]+x copy\+fsync \(100 INI files, [0-9]+ files written, apply [0-9.]+ s vs [0-9.]+ s; rollback [0-9]+\.[0-9]+x' \
    "B4 line: apply and rollback ratios"
like "$(line 'B5 verify:')" '^B5 verify: [0-9]+\.[0-9]+ of the ideal speed-up \(8 mailboxes with --send at concurrency 4: .* 8 passed' \
    "B5 line: share of the ideal speed-up, every mailbox passed"
like "$(line 'B1 first real poll:')" '^B1 first real poll: [0-9]+\.[0-9]+x the same poll with --dry-run \(target <= 1\.5x; 300 messages, [0-9.]+ s vs [0-9.]+ s, [0-9]+ events' \
    "B1 first-poll line: ratio to the dry run, messages, events"
ok_rc $([ "$(grep -c '^B[1-5] ' "$T/stdout")" = 6 ]; echo $?) "exactly six benchmark lines (B1 has two at this scale)"

# results.json: valid JSON, every benchmark's figures, consistent with the lines
python3 - "$T/out/results.json" >"$T/json.check" 2>&1 <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
problems = []
for k in ("b1", "b1_first", "b2", "b3", "b4", "b5"):
    if k not in r or "error" in r[k]:
        problems.append("%s missing or failed: %r" % (k, r.get(k)))
if not problems:
    if r["b1"]["listed"] != 300 or r["b1"]["messages"] != 300:
        problems.append("b1 listed %r of 300" % r["b1"]["listed"])
    if not r["b1_first"]["real_ms"] or not r["b1_first"]["events"]:
        problems.append("b1_first %r" % r["b1_first"])
    if not isinstance(r["b2"]["sequential_requests"], int) or r["b2"]["failed_runs"] != 0:
        problems.append("b2 %r" % r["b2"])
    if r["b3"]["audit_exit"] != 0 or r["b3"]["peak_kb"] <= 0 or r["b3"]["grep_ms"] < 0:
        problems.append("b3 %r" % r["b3"])
    if r["b4"]["files_applied"] < r["b4"]["ini_files"] or r["b4"]["rollback_exit"] != 0:
        problems.append("b4 %r" % r["b4"])
    if r["b5"]["passed"] != 8 or r["b5"]["exit"] != 0:
        problems.append("b5 %r" % r["b5"])
print("\n".join(problems))
sys.exit(1 if problems else 0)
EOF
st=$?
ok_rc $st "results.json holds every benchmark's figures and they show real runs"
[ $st = 0 ] || sed 's/^/# /' "$T/json.check"
if [ "$_tap_failed" != 0 ]; then
	sed 's/^/# stdout: /' "$T/stdout"
	tail -n 20 "$T/stderr" | sed 's/^/# stderr: /'
fi
done_testing
