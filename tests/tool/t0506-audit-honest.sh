#!/bin/bash
# An audit that read nothing, or not everything, says so before any count;
# "migrated" never hides an error; the CSV carries each finding's message
# and fix and the export line of each job.
. "$(dirname "$0")/../lib/test-lib.sh"
audit=${MAILSHIFT_BIN:-$MS_TOP/bin}/mailshift-audit
tmp=$T

ini=$MS_TOP/samples/fleet/machines/WINAPP02/C/ProgramData/mailshift/alerts.ini
fleet() { # fleet DIR: a machine with one migrated INI, an empty jobs/
	mkdir -p "$1/jobs" "$1/machines/W1/C/mail"
	cp "$ini" "$1/machines/W1/C/mail/alerts.ini"
}
job() { # job NAME COMMAND-LINE: one REST job object
	printf '{"name": "%s", "schedule": {"name": "S"}, "jobType": {"description": "Windows"},
  "primaryMachine": {"name": "W1"}, "details": {"commandLine": "%s"}}' "$1" "$2"
}
exe='C:\\mailshift\\mailshift.exe -inifile:C:\\mail\\alerts.ini'

# 1. an empty jobs/ folder beside collected INI files is not a pass
fleet "$tmp/empty"
out=$("$audit" --fleet "$tmp/empty" 2>"$tmp/err"); rc=$?
is "$rc" 66 "no job read while INI files exist: EX_NOINPUT"
like "$(sed -n 2p <<<"$out")" '^NO JOB WAS READ: .*not a pass' "the report says so before any count"
like "$(cat "$tmp/err")" "no job was read from $tmp/empty/jobs although 1 INI file is collected" \
     "stderr says why"

# 2. exports under names the reader skips are named, with why
fleet "$tmp/names"
echo '[]' >"$tmp/names/jobs/schedule.JSON.bak"
echo 'x' >"$tmp/names/jobs/jobs.txt"
"$audit" --fleet "$tmp/names" >"$tmp/out" 2>"$tmp/err"; rc=$?
is "$rc" 66 "only unrecognised names: EX_NOINPUT"
like "$(cat "$tmp/err")" "jobs/schedule.JSON.bak: ignored: not named as a job export" "the .bak is named"
like "$(cat "$tmp/err")" "jobs/jobs.txt: ignored" "the .txt is named"
like "$(cat "$tmp/out")" 'Files in jobs/ that were not read:' "the report lists them"
"$audit" --fleet "$tmp/names" --format json >"$tmp/j" 2>/dev/null
like "$(cat "$tmp/j")" '"complete": false' "JSON: not complete"
like "$(cat "$tmp/j")" '"ignored_files": 2' "JSON: two ignored files"

# 3. a truncated export leads the report; jobs read before it are marked
fleet "$tmp/trunc"
{ echo '['; job GOOD "$exe"; echo ','; job LOST "$exe"; } >"$tmp/trunc/jobs/a.json"
head -c -20 "$tmp/trunc/jobs/a.json" >"$tmp/t" && mv "$tmp/t" "$tmp/trunc/jobs/a.json"
out=$("$audit" --fleet "$tmp/trunc" 2>/dev/null); rc=$?
is "$rc" 65 "truncated export: EX_DATAERR"
like "$(sed -n 2p <<<"$out")" '^INCOMPLETE: 1 export could not be read to the end.*1 job read before it is marked' \
     "text: the second line says incomplete"
like "$out" 'warning export-incomplete: read from jobs/a.json, which could not be read to its end' \
     "the job read before the error is marked"
"$audit" --fleet "$tmp/trunc" --format html --out "$tmp/r.html" >"$tmp/o" 2>/dev/null
like "$(head -1 "$tmp/o")" '^INCOMPLETE: 1 export' "--out: the summary line leads with it"
alert=$(grep -bo 'class="alert">INCOMPLETE' "$tmp/r.html" | cut -d: -f1)
summary=$(grep -bo '<h2>Summary</h2>' "$tmp/r.html" | cut -d: -f1)
ok "HTML: the alert is in the header, before the summary" test -n "$alert" -a "${alert:-0}" -lt "${summary:-0}"
"$audit" --fleet "$tmp/trunc" --format json 2>/dev/null >"$tmp/j"
like "$(cat "$tmp/j")" '"incomplete_jobs": 1' "JSON: one incomplete job"
"$audit" --fleet "$tmp/trunc" --format csv 2>/dev/null >"$tmp/c"
like "$(cat "$tmp/c")" 'export-incomplete' "CSV (spilled verdicts): marked too"

# 3b. the same job in a whole export and in one cut short is one job, and
# it is marked export-incomplete in every format: the spilled verdicts
# (text, JSON, CSV) and the in-memory ones (HTML) apply one rule, after the
# merge, whichever export's name sorts first
for cut in a0 z9; do
	d=$tmp/dup-$cut
	fleet "$d"
	{ echo '['; job GOOD "$exe"; echo ']'; } >"$d/jobs/m.json"
	{ echo '['; job GOOD "$exe"; echo ','; job LOST "$exe"; } >"$d/jobs/$cut.json"
	head -c -20 "$d/jobs/$cut.json" >"$tmp/t" && mv "$tmp/t" "$d/jobs/$cut.json"
	"$audit" --fleet "$d" --format json 2>/dev/null >"$tmp/dj"
	good=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
j = [j for j in d["jobs"] if j["job"] == "GOOD"]
print(len(j), j[0]["source"] if j else "", " ".join(f["code"] for f in j[0]["findings"]) if j else "")
' "$tmp/dj")
	like "$good" '^1 ' "cut $cut.json: GOOD is one job in the JSON"
	like "$good" "jobs/m.json:2" "  with both sources"
	like "$good" "jobs/$cut.json:2" "  (the cut one too)"
	like "$good" 'export-incomplete' "  JSON (spilled): marked"
	"$audit" --fleet "$d" 2>/dev/null >"$tmp/dt"
	like "$(cat "$tmp/dt")" "warning export-incomplete: read from jobs/$cut.json" "  text (spilled): marked"
	"$audit" --fleet "$d" --format html --out "$tmp/d.html" >/dev/null 2>&1
	like "$(cat "$tmp/d.html")" ">export-incomplete</a> read from jobs/$cut.json" "  HTML (in memory): marked"
	is "$(grep -o '>export-incomplete</a> read from' "$tmp/d.html" | wc -l)" 1 "  HTML: once"
done

# 4. a migrated job with a password in its command line needs action
fleet "$tmp/mig"
{ echo '['; job CLEAN "$exe"; echo ','; job LEAKY "$exe -password:hunter2"; echo ']'; } \
	>"$tmp/mig/jobs/a.json"
out=$("$audit" --fleet "$tmp/mig" 2>&1); rc=$?
is "$rc" 1 "migrated with an error finding fails the default --fail-on"
like "$out" '1 migrated job still needs action' "the summary says so"
like "$(sed -n '/^Jobs needing action:/,/^Other connector jobs:/p' <<<"$out")" 'S / LEAKY  \[migrated\]' \
     "the job is listed under needing action"
unlike "$out" 'hunter2' "the password is never shown"
"$audit" --fleet "$tmp/mig" --fail-on none >/dev/null 2>&1
is $? 0 "--fail-on none still passes"
"$audit" --fleet "$tmp/mig" --format html --out "$tmp/m.html" >/dev/null 2>&1
like "$(cat "$tmp/m.html")" '1 of 2 connector jobs needs? action' "HTML lead counts it"

# 5. CSV: message, fix, source with its line
"$audit" --fleet "$tmp/mig" --format csv >"$tmp/c" 2>/dev/null
head -1 "$tmp/c" >"$tmp/h"
like "$(cat "$tmp/h")" ',source,findings,messages,fixes,command_line$' "CSV header has messages and fixes"
leaky=$(grep '"LEAKY"' "$tmp/c")
like "$leaky" '"jobs/a.json:4"' "CSV source carries the line"
like "$leaky" '"password-in-command-line: the command line holds a literal -password: value' "CSV message"
like "$leaky" 'password-in-command-line: [A-Z]' "CSV fix"
is "$(wc -l <"$tmp/c")" 3 "CSV: one line per job"
done_testing
