#!/bin/bash
# test-tier: slow (benchmarks in a mail world of their own)
# `make bench` cannot rot: bench/run at tiny sizes (BENCH_SCALE=smoke) in
# its own mail world prints a summary line per measure (figure, target,
# met or not) from 5 alternating pairs, and writes a results.json that
# holds every figure.  Targets are not asserted here (benchmarks never
# fail a test); that each benchmark really ran is: the connector raised
# events, verify passed every mailbox, migrate wrote every INI file, and
# the audit's report counts exactly the connector jobs the realistic
# generator made (every export shape read, UTF-16 too).  Small: under 60 s
# of CPU (user + system, bench/run and what it runs; the world's servers
# are not counted).  CPU, not wall time: measured 15.5 s of CPU for 253 s
# of wall time on a machine at load 16, where a wall-clock limit could
# only fail.
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
# every summary line: NAME: FIGURE ... (target OP LIMIT) VERDICT
summary='^B[1-5] [^:]+: ([0-9]+\.[0-9]+x .*\(target (<=|>=) [0-9.]+x\) (met|NOT met)|[0-9]+ MB \(target <= 64 MB at 1M jobs\) .*|[0-9]+ request.*\(target 1 each\) (met|NOT met))$'
for name in 'B1 first real poll 300' 'B1 steady-state poll 300' 'B2 token reuse' \
    'B3 audit warm 3k' 'B3 audit cold 3k' 'B3 audit peak RSS 3k' \
    'B4 migrate apply 100' 'B4 migrate rollback 100' 'B5 verify 8'; do
	like "$(line "$name:")" "$summary" "summary line '$name' with its figure, target and verdict"
done
like "$(line '  B3 audit warm 3k:')" '^  B3 audit warm 3k: 5 pairs, ours [0-9.]+ s \([0-9.]+-[0-9.]+\), grep -c [0-9.]+ s \([0-9.]+-[0-9.]+\), ratio [0-9.]+ \([0-9.]+-[0-9.]+\); 3000 jobs, 200 INI files, [0-9]+ MB, realistic; report counts 240 connector jobs of 240 generated$' \
    "B3 detail line: 5 pairs, medians and ranges, every generated connector job found"
ok_rc $([ "$(grep -c '^B[1-5] ' "$T/stdout")" = 9 ]; echo $?) "exactly nine summary lines at this scale"
ok_rc $(! grep -q 'not measured (' "$T/stdout"; echo $?) "every measure measured (cold runs too: we are root)"

# results.json: valid JSON, every measure's figures, consistent with the lines
python3 - "$T/out/results.json" >"$T/json.check" 2>&1 <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
problems = []
pairs = ("b1first", "b1steady", "b3w", "b3c", "b4", "b4r")
for k in pairs + ("b2", "b3_rss", "b5"):
    if k not in r or "error" in r[k]:
        problems.append("%s missing or failed: %r" % (k, r.get(k)))
if not problems:
    for k in pairs:
        v = r[k]
        if v["pairs"] < 5 or len(v["ours_ms"]) != v["pairs"] or \
           len(v["baseline_ms"]) != v["pairs"] or \
           not v["ratio_min"] <= v["ratio"] <= v["ratio_max"] or not isinstance(v["met"], bool):
            problems.append("%s: not 5 consistent pairs: %r" % (k, v))
    if r["b1first"]["events"] < 1 or r["b1first"]["messages"] != 300 or \
       r["b1steady"]["events"] != 0:
        problems.append("b1: events %r / %r" % (r["b1first"], r["b1steady"]))
    if not isinstance(r["b2"]["sequential_requests"], int) or r["b2"]["failed_runs"] != 0:
        problems.append("b2 %r" % r["b2"])
    b3 = r["b3w"]
    if not b3["report_matches"] or b3["connector_jobs"] != b3["connector_jobs_generated"] or \
       b3["generator"] != "realistic" or b3["peak_kb"] <= 0:
        problems.append("b3: the audit did not count every generated connector job: %r" % b3)
    if r["b4"]["ini_files_written"] < 100 or r["b4"]["applied"] < r["b4"]["ini_files_written"]:
        problems.append("b4 %r" % r["b4"])
    if r["b5"]["passed"] != 8 or r["b5"]["exit"] != 0:
        problems.append("b5 %r" % r["b5"])
print("\n".join(problems))
sys.exit(1 if problems else 0)
PY
st=$?
ok_rc $st "results.json holds every measure's figures and they show real runs"
[ $st = 0 ] || sed 's/^/# /' "$T/json.check"
if [ "$_tap_failed" != 0 ]; then
	sed 's/^/# stdout: /' "$T/stdout"
	tail -n 20 "$T/stderr" | sed 's/^/# stderr: /'
fi
done_testing
