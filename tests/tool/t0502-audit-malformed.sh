#!/bin/sh
# mailshift-audit on malformed exports: each named with its line, the
# other files still scanned, EX_DATAERR, never a crash.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
audit=${MAILSHIFT_BIN:-bin}/mailshift-audit
fleet=tests/data/fleet/malformed
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t0502.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
n=0
failed=0
t() {
	name=$1; shift
	n=$((n + 1))
	if "$@"; then echo "ok $n - $name"; else echo "not ok $n - $name"; failed=$((failed + 1)); fi
}

$audit --fleet "$fleet" --format json >"$tmp/r.json" 2>"$tmp/err"
t "malformed exports: EX_DATAERR" [ $? = 65 ]
t "truncated JSON named with its line" grep -q "^mailshift-audit: $fleet/jobs/truncated.json:2: invalid JSON: unexpected end of file" "$tmp/err"
t "broken XML named with its line" grep -q "^mailshift-audit: $fleet/jobs/broken.xml:5: invalid XML" "$tmp/err"
t "bad UTF-16 named" grep -q "^mailshift-audit: $fleet/jobs/odd-utf16.json:1: .*UTF-16" "$tmp/err"
t "empty export named" grep -q "^mailshift-audit: $fleet/jobs/empty.json: empty export" "$tmp/err"
t "unknown JSON shape named" grep -q "^mailshift-audit: $fleet/jobs/not-jobs.json:1: not a job export" "$tmp/err"
t "the good jobs are still reported" node -e '
	const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
	const names = r.jobs.map(j => j.job).sort().join(",");
	if (names !== "GOOD,GOOD-XML" || r.errors.length !== 5 || r.summary.export_errors !== 5)
		process.exit(1);
' "$tmp/r.json"

# every sample export cut short at many points: never a crash
i=0
crashed=0
for f in samples/fleet/jobs/rest/winapp01-jobs.json samples/fleet/jobs/extract/finsrv03-schedule-extract.xml \
	 samples/fleet/jobs/deploy/ops-monitor-package.json; do
	size=$(wc -c <"$f")
	for cut in 1 2 3 7 31 100 257 1000 2001 3333; do
		[ "$cut" -lt "$size" ] || continue
		rm -rf "$tmp/f"
		mkdir -p "$tmp/f/jobs"
		head -c "$cut" "$f" >"$tmp/f/jobs/$(basename "$f")"
		$audit --fleet "$tmp/f" --format json >/dev/null 2>"$tmp/cut.err"
		rc=$?
		i=$((i + 1))
		# a signal, or a sanitizer report (they exit 1)
		if [ "$rc" -ge 128 ] || grep -q -e Sanitizer -e "runtime error" "$tmp/cut.err"; then
			crashed=$((crashed + 1))
			echo "# crash on $f cut at $cut (rc $rc)"
		fi
	done
done
t "no crash on $i truncated exports" [ "$crashed" = 0 ]

echo "1..$n"
[ "$failed" = 0 ]
