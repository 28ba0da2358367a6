#!/bin/bash
# mailshift-audit on malformed exports: each named with its line, the
# other files still scanned, EX_DATAERR, never a crash.
set -u
. "$(dirname "$0")/../lib/test-lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
audit=${MAILSHIFT_BIN:-bin}/mailshift-audit
fleet=tests/data/fleet/malformed
tmp=$T
$audit --fleet "$fleet" --format json >"$tmp/r.json" 2>"$tmp/err"
ok "malformed exports: EX_DATAERR" [ $? = 65 ]
ok "truncated JSON named with its line" grep -q "^mailshift-audit: $fleet/jobs/truncated.json:2: invalid JSON: unexpected end of file" "$tmp/err"
ok "broken XML named with its line" grep -q "^mailshift-audit: $fleet/jobs/broken.xml:5: invalid XML" "$tmp/err"
ok "bad UTF-16 named" grep -q "^mailshift-audit: $fleet/jobs/odd-utf16.json:1: .*UTF-16" "$tmp/err"
ok "empty export named" grep -q "^mailshift-audit: $fleet/jobs/empty.json: empty export" "$tmp/err"
ok "unknown JSON shape named" grep -q "^mailshift-audit: $fleet/jobs/not-jobs.json:1: not a job export" "$tmp/err"
ok "the good jobs are still reported" node -e '
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
ok "no crash on $i truncated exports" [ "$crashed" = 0 ]

# FIFOs named like an export, a notification export and INI files (one a
# job's, one no job's): each would hold a reader for ever waiting for a
# writer; the audit names each and ends
rm -rf "$tmp/p"
mkdir -p "$tmp/p/jobs" "$tmp/p/notify" "$tmp/p/machines/M/C"
printf '[{"name":"J","primaryMachine":"M","jobType":"Windows","details":{"commandLine":"smartemail.exe -inifile:C:\\\\x.ini"}}]' >"$tmp/p/jobs/a.json"
mkfifo "$tmp/p/jobs/pipe.json" "$tmp/p/notify/pipe.json" "$tmp/p/machines/M/C/x.ini" \
	"$tmp/p/machines/M/C/orphan.ini"
timeout 60 $audit --fleet "$tmp/p" --format json >"$tmp/p.json" 2>"$tmp/p.err"
rc=$?
is "$rc" 65 "FIFOs in the fleet: the audit ends, the report incomplete (not a hang: 124)"
ok "the FIFO export named" grep -q "jobs/pipe.json: not a regular file (a FIFO, a device?): not read" "$tmp/p.err"
ok "the FIFO notification export named" grep -q "notify/pipe.json: not a regular file" "$tmp/p.err"
ok "the job whose INI file is a FIFO: ini-invalid, named" node -e '
	const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
	const j = r.jobs.find(j => j.job === "J");
	const f = j && j.findings.find(f => f.code === "ini-invalid");
	if (!f || !/machines\/M\/C\/x\.ini: not a regular file/.test(f.message)) process.exit(1);
' "$tmp/p.json"

done_testing
