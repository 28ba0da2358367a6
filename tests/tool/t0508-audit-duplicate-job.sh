#!/bin/bash
# A job that appears in two exports (the same schedule exported twice, once
# as JSON and once again) is one job, with both sources listed: counted
# once, shown once, and not "sharing" its INI file with itself.
. "$(dirname "$0")/../lib/test-lib.sh"
audit=${MAILSHIFT_BIN:-$MS_TOP/bin}/mailshift-audit
tmp=$T

ini=$MS_TOP/samples/fleet/machines/WINAPP02/C/ProgramData/mailshift/alerts.ini
mkdir -p "$tmp/f/jobs" "$tmp/f/machines/W1/C/mail"
cp "$ini" "$tmp/f/machines/W1/C/mail/alerts.ini"
job() { # job MACHINE NAME: one REST job object using alerts.ini
	printf '{"name": "%s", "schedule": {"name": "Nightly"}, "jobType": {"description": "Windows"},
  "primaryMachine": {"name": "%s"}, "details": {"commandLine":
  "C:\\\\mailshift\\\\mailshift.exe -inifile:C:\\\\mail\\\\alerts.ini"}}' "$2" "$1"
}
# the schedule exported twice (the machine spelt in another case the
# second time), plus a job of its own in the second export
printf '[\n%s\n]\n' "$(job W1 Inbox)" >"$tmp/f/jobs/monday.json"
printf '[\n%s,\n%s\n]\n' "$(job w1 Inbox)" "$(job W1 Other)" >"$tmp/f/jobs/tuesday.json"

for fmt in text json csv html; do
	"$audit" --fleet "$tmp/f" --format $fmt --fail-on none --out "$tmp/out.$fmt" 2>"$tmp/err.$fmt"
	is "$?" 0 "$fmt: audit runs"
done

txt=$(cat "$tmp/out.text")
is "$(grep -c 'W1  Nightly / Inbox' <<<"$txt")" 1 "text: the duplicated job is listed once"
like "$txt" 'source  jobs/monday.json:2, jobs/tuesday.json:2' "text: with both sources"
is "$(grep -c 'W1  Nightly / Other' <<<"$txt")" 1 "text: the other job is there"
like "$txt" '^2 connector jobs on 1 machine' "text: two jobs counted"

json=$(cat "$tmp/out.json")
like "$json" '"jobs": 2' "json: two jobs counted, not three"
like "$json" '"source": "jobs/monday.json:2, jobs/tuesday.json:2"' "json: both sources"

is "$(grep -c '"Nightly","Inbox"' "$tmp/out.csv")" 1 "csv: one row for the job"
like "$(cat "$tmp/out.csv")" 'jobs/monday.json:2, jobs/tuesday.json:2' "csv: both sources"

html=$(cat "$tmp/out.html")
like "$html" 'jobs/monday.json:2, jobs/tuesday.json:2' "html (in memory): both sources"
is "$(grep -o 'jobs/tuesday.json:2' <<<"$html" | wc -l)" "$(grep -o 'jobs/monday.json:2, jobs/tuesday.json:2' <<<"$html" | wc -l)" \
   "html: the second source appears only in the list"

# in memory (html) and spilled (text) agree on shared-ini: two jobs, not three
like "$txt" 'shared-ini: INI file shared with 1 other job: Nightly/Other' \
     "text: the job shares its INI file with the other job only"
unlike "$txt" 'shared with 2 other' "text: not with itself"
like "$html" 'shared with 1 other job' "html (in memory): the same"
unlike "$html" 'shared with 2 other' "html: not with itself"
done_testing
