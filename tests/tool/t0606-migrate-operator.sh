#!/bin/bash
# mailshift-migrate as an operator lives with it: plan counts and lists
# broken jobs it will not touch; a plan whose only open items are manual
# actions exits 0 and says so; the first apply after plan applies (it does
# not "resume"); a manual row never carries a command line that could be
# pasted into a job; machine names are printed in one case.
. "$(dirname "$0")/../lib/test-lib.sh"
migrate=${MAILSHIFT_BIN:-$MS_TOP/bin}/mailshift-migrate
tmp=$T
map=$MS_TOP/samples/map.json

# one mailbox with basic auth, two jobs (machine spelled two ways), one
# of them with a literal password on its command line
f=$tmp/fleet
mkdir -p "$f/jobs" "$f/machines/WINAPP01/D/Jobs"
cp "$MS_TOP/samples/fleet/machines/WINAPP01/D/Jobs/finance/recon.ini" "$f/machines/WINAPP01/D/Jobs/recon.ini"
cat >"$f/jobs/a.json" <<'EOJ'
[{"name": "RECON", "schedule": {"name": "FIN"}, "jobType": {"description": "Windows"},
  "primaryMachine": {"name": "winapp01"},
  "details": {"commandLine": "smartemail.exe -inifile:D:\\Jobs\\recon.ini"}},
 {"name": "RECON-PW", "schedule": {"name": "FIN"}, "jobType": {"description": "Windows"},
  "primaryMachine": {"name": "WinApp01"},
  "details": {"commandLine": "smartemail.exe -inifile:D:\\Jobs\\recon.ini -password:hunter2"}}]
EOJ

out=$("$migrate" plan --fleet "$f" --map "$map" 2>&1); rc=$?
is "$rc" 0 "plan: only manual actions open: exit 0"
like "$out" 'only manual actions are open' "plan says so"
like "$out" 'manual: FIN/RECON-PW \(WINAPP01\): .*remove the -password:' "the manual row says what to remove"
unlike "$(grep -v '^[-+ @]' <<<"$out")" 'winapp01|WinApp01' "machine names in one case (outside the export's own diff)"
unlike "$out" 'hunter2' "no password"
unlike "$out" 'job FIN/RECON-PW \(WINAPP01\): command line' "no rewritten command line for the manual job"

out=$("$migrate" apply --fleet "$f" --map "$map" 2>&1)
like "$(head -1 <<<"$out")" '^applying run 1$' "first apply after plan applies"
unlike "$out" 'resuming' "and does not say resuming"
csv=$f/migrate/run-1/changes.csv
ok "changes.csv written" test -s "$csv"
like "$(grep RECON-PW "$csv")" '"?manual"?' "the manual row is there"
unlike "$(grep RECON-PW "$csv")" 'password:\*|\*\*\*|smartemail' "the manual row has no command line with -password:"
unlike "$(grep RECON-PW "$f/migrate/run-1/changes.json")" 'password:\*|\*\*\*' \
       "changes.json: no -password:*** either"
unlike "$(cat "$csv")" 'winapp01|WinApp01' "changes.csv: machine names in one case"

# the cutover packet: every INI file to copy, with machine and Windows path
dep=$f/migrate/run-1/deploy.csv
ok "deploy.csv written" test -s "$dep"
sha=$(sha256sum "$f/machines/WINAPP01/D/Jobs/recon.ini" | cut -d' ' -f1)
is "$(sed -n 2p "$dep" | tr -d '\r')" "\"WINAPP01\",\"D:\\Jobs\\recon.ini\",\"machines/WINAPP01/D/Jobs/recon.ini\",\"$sha\",\"FIN/RECON (WINAPP01), FIN/RECON-PW (WINAPP01)\"" \
   "deploy.csv: machine, Windows path, fleet file, hash of the migrated bytes, jobs"
is "$(jq -r '.files[0].path' "$f/migrate/run-1/deploy.json")" 'D:\Jobs\recon.ini' "deploy.json: the Windows path"
out=$("$migrate" rollback --fleet "$f" 2>&1)
like "$out" 'deploy list: .*/run-1-rollback/deploy.json' "rollback writes the reverse packet"
sha=$(sha256sum "$f/machines/WINAPP01/D/Jobs/recon.ini" | cut -d' ' -f1)
like "$(sed -n 2p "$f/migrate/run-1-rollback/deploy.csv")" "\"$sha\"" \
     "rollback deploy.csv: the restored original's hash"
is "$(jq -r '.changes[] | select(.job == "RECON") | [.action, .new] | join(" ")' \
      "$f/migrate/run-1-rollback/changes.json")" 'revert smartemail.exe -inifile:D:\Jobs\recon.ini' \
   "rollback changes.json: revert to the old command line"

# broken jobs are counted and listed
cp -r "$MS_TOP/samples/fleet" "$tmp/samples"
out=$("$migrate" plan --fleet "$tmp/samples" --map "$map" 2>&1); rc=$?
is "$rc" 1 "plan with broken jobs: exit 1"
is "$(grep -c '^broken, not touched: ' <<<"$out")" 4 "the four broken jobs are listed"
like "$out" '4 broken jobs not touched' "and counted in the summary"
unlike "$out" 'only manual actions' "broken jobs are not manual actions"
# plan and status as JSON
json=$("$migrate" plan --fleet "$tmp/samples" --map "$map" --format json 2>/dev/null)
is "$(jq -c '[.summary.broken, (.broken | length), .summary.manual, .summary.only_manual_open]' <<<"$json")" \
   '[4,4,2,false]' "plan --format json: broken, manual, summary"
is "$(jq -r '[.jobs[] | select(.action == "manual") | .new] | unique | join(",")' <<<"$json")" '' \
   "plan JSON: manual jobs have no new command line"
is "$(jq -r '[.jobs[].machine, .broken[].machine] | unique | join(",")' <<<"$json")" \
   'FINSRV03,WINAPP01,WINAPP02' "plan JSON: machine names in one case"
json=$("$migrate" status --fleet "$f" --format json 2>/dev/null)
is "$(jq -c '[.run, .summary.rolled_back, .summary.manual]' <<<"$json")" '[1,2,1]' \
   "status --format json: run, rolled-back items, manual jobs"
"$migrate" apply --fleet "$f" --map "$map" --format json >/dev/null 2>&1
is $? 64 "--format json with apply: EX_USAGE"
done_testing
