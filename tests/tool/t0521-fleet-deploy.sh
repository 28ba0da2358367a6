#!/bin/bash
# mailshift-migrate deploy-plan, deploy and status (native build, an agent
# simulated by a folder whose entries are its drives), on samples/demo
# collected with mailshift-audit collect and migrated: the packets and
# import files, the generated MAILSHIFT_DEPLOY job run as written, a file
# changed on the agent after the collection is a conflict and left
# alone, a re-run changes nothing, status shows the machine's outcome,
# the job changes match changes.json, and rollback restores every byte.
set -u
. "$(dirname "$0")/../lib/test-lib.sh"
cd "$T" || bail_out "cannot cd to $T"
audit=$BIN/mailshift-audit
migrate=$BIN/mailshift-migrate

# the agent's disk: samples/demo's INI files where its jobs name them
mkdir -p agents share
cp -a "$MS_TOP/samples/demo/machines/DEMO01" agents/
find agents -name '*.ini.in' | while read -r f; do
	sed -e 's#@MSGIN@#C:\\ProgramData\\OpConxps\\SAM\\MSGIN#' -e 's#@LOGDIR@#C:\\logs#' \
	    -e 's#@OPCONPW@#Demo-OpCon-Pw#' -e 's#@USER1@#ops@contoso.test#' -e 's#@PASS1@#pw-one-1#' \
	    -e 's#@USER2@#carol@fabrikam.test#' -e 's#@PASS2@#pw-two-2#' "$f" >"${f%.in}"
	rm -f "$f"
done
echo '; not an INI any job names' >agents/DEMO01/D/mail/other.ini
cp -a agents before-deploy
cp -a "$MS_TOP/samples/demo/jobs" share/
cat >map.json <<'EOF'
{
  "transport": "imap",
  "connector": "C:\\Program Files\\mailshift\\mailshift.exe",
  "server": "imap.contoso.test",
  "port": 993,
  "tenants": [
    { "domains": ["contoso.test"], "tenantId": "52ae5346-8edd-4d06-81c8-b15058217f13",
      "clientId": "d1db81cd-6c5b-4bea-838b-71d909818e5e", "clientSecret": "env:DEMO_CONTOSO_SECRET" },
    { "domains": ["fabrikam.test"], "tenantId": "c8c34465-25ca-4101-88ba-2cf45f9c908a",
      "clientId": "d7874277-bba9-4785-8fa4-bd42553cd18c", "clientSecret": "env:DEMO_FABRIKAM_SECRET" }
  ]
}
EOF

# collect, then migrate the collected fleet
"$audit" collect-plan --fleet share --share "$T/share" >/dev/null 2>&1
"$audit" collect --manifest share/collect/manifests/DEMO01.json --out share --machine DEMO01 \
	--root agents/DEMO01 >collect.out 2>&1
like "$(cat collect.out)" '^DEMO01: 2 copied' "collected the demo's two INI files"
"$migrate" apply --fleet share --map map.json >apply.out 2>&1
is "$?" 0 "migrate apply on the collected fleet"
pay='C/ProgramData/OpConxps/SMArt Email/payroll.ini'
ap='D/mail/ap.ini'
ok "apply changed the collected copy" bash -c "! cmp -s 'agents/DEMO01/$ap' 'share/machines/DEMO01/$ap'"

# 1. deploy-plan
"$migrate" deploy-plan --fleet share --share "$T/share" >dplan.out 2>&1
is "$?" 0 "deploy-plan exits 0"
like "$(cat dplan.out)" '^run 1: 2 INI files for 1 machine, 2 job command lines' "deploy-plan counts"
dir=share/deploy/run-1
pk=$dir/packets/DEMO01.json
is "$(stat -c %a "$pk")" 600 "a packet (INI bytes) is readable by its owner only"
is "$(jq -r '.mailshift + " " + .machine' "$pk")" "deploy-packet DEMO01" "the packet names its machine"
is "$(jq -r '.files[] | select(.path | test("ap.ini")) | .path' "$pk")" 'D:\mail\ap.ini' "its Windows path"
is "$(jq -r '.files[] | select(.path | test("ap.ini")) | .collected_sha256' "$pk")" \
	"$(sha256sum <"agents/DEMO01/$ap" | cut -d' ' -f1)" "the hash the file had when collected"
jq -r '.files[] | select(.path | test("ap.ini")) | .new_base64' "$pk" | base64 -d >ap.new
ok "the new bytes are the migrated file's" cmp -s ap.new "share/machines/DEMO01/$ap"
is "$(jq -r '.scheduleList[0].name + " " + (.scheduleList[0].jobList | length | tostring)' "$dir/MAILSHIFT_DEPLOY.json")" \
	"MAILSHIFT_DEPLOY 1" "MAILSHIFT_DEPLOY: one job per machine"
is "$(jq -r '.scheduleList[0].jobList[0].details.commandLine' "$dir/MAILSHIFT_DEPLOY.json")" \
	"\"C:\\Program Files\\mailshift\\mailshift-migrate.exe\" deploy --packet \"$T/share/deploy/run-1/packets/DEMO01.json\"" \
	"the deploy job runs mailshift-migrate.exe deploy with the machine's packet"
like "$(jq -r '.scheduleList[0].jobList[0].details.commandLine' "$dir/MAILSHIFT_DEPLOY_ROLLBACK.json")" \
	' --rollback$' "MAILSHIFT_DEPLOY_ROLLBACK: the same with --rollback"
jq -r '.changes[] | select(.action == "change") | [.schedule, .job, .machine, .new] | @tsv' \
	share/migrate/run-1/changes.json | sort >changes.want
jq -r '.scheduleList[] | .name as $s | .jobList[] | [$s, .name, .primaryMachine.name, .details.commandLine] | @tsv' \
	"$dir/MAILSHIFT_JOB_CHANGES.json" | sort >changes.got
ok "the job changes import file has changes.json's new command lines" cmp -s changes.want changes.got
is "$(wc -l <changes.got)" 2 "both jobs"
jq -r '.changes[] | select(.action == "change") | [.schedule, .job, .machine, .old] | @tsv' \
	share/migrate/run-1/changes.json | sort >old.want
jq -r '.scheduleList[] | .name as $s | .jobList[] | [$s, .name, .primaryMachine.name, .details.commandLine] | @tsv' \
	"$dir/MAILSHIFT_JOB_CHANGES_ROLLBACK.json" | sort >old.got
ok "the rollback job changes have the old command lines" cmp -s old.want old.got
# the fleet as it will be: the import file as the jobs, the migrated INIs
mkdir -p impfleet/jobs && cp -a share/machines impfleet/ && cp "$dir/MAILSHIFT_JOB_CHANGES.json" impfleet/jobs/
"$audit" --fleet impfleet --format json --fail-on none >imp.json 2>/dev/null
is "$(jq -r '[.jobs[] | .status] | sort | join(" ")' imp.json)" "migrated migrated" \
	"the audit reads the job changes import file: both jobs migrated"

# 2. a file changed on the agent after the collection: conflict
printf '; edited by hand on DEMO01\r\n' >>"agents/DEMO01/$pay"
cp "agents/DEMO01/$pay" pay.edited
run_deploy() { # the generated job's command line, as written, on the agent's disk
	local cmd
	cmd=$(jq -r '.scheduleList[0].jobList[] | select(.primaryMachine.name == "DEMO01") |
		.details.commandLine' "$dir/$1.json")
	eval "set -- $cmd"
	shift
	"$migrate" "$@" --root "$T/agents/DEMO01"
}
# what a deploy killed while writing ap.ini or its original left, and a
# file of another name
apdir=$(dirname "agents/DEMO01/$ap"); apbase=$(basename "$ap")
printf 'half' >"$apdir/.$apbase.tmp.4194303.0"
printf 'half' >"$apdir/.$apbase.mailshift-orig.tmp.4194303.1"
printf 'half' >"$apdir/.other.ini.tmp.4194303.0"
run_deploy MAILSHIFT_DEPLOY >deploy.out 2>&1
is "$?" 1 "deploy exits 1 with a conflict"
ok "a dead deploy's temporary files of ap.ini and its original removed" \
	[ ! -e "$apdir/.$apbase.tmp.4194303.0" -a ! -e "$apdir/.$apbase.mailshift-orig.tmp.4194303.1" ]
ok "another name's kept" [ -e "$apdir/.other.ini.tmp.4194303.0" ]
rm -f "$apdir/.other.ini.tmp.4194303.0"
like "$(cat deploy.out)" '^DEMO01: 1 deployed, 0 rolled-back, 1 conflict' "deploy counts deployed and conflict"
ok "the deployed file has the migrated bytes" cmp -s ap.new "agents/DEMO01/$ap"
ok "its original is kept beside it" cmp -s "before-deploy/DEMO01/$ap" "agents/DEMO01/$ap.mailshift-orig"
ok "the file in conflict is left alone" cmp -s pay.edited "agents/DEMO01/$pay"
ok "and gets no .mailshift-orig" test ! -e "agents/DEMO01/$pay.mailshift-orig"
rec=$dir/receipts/DEMO01.json
is "$(jq -r '.files[] | select(.path | test("payroll")) | .status' "$rec")" conflict "the receipt says conflict"
like "$(jq -r '.files[] | select(.path | test("payroll")) | .why' "$rec")" 'changed on this machine' "and why"
leak=0
for v in pw-one-1 pw-two-2 Demo-OpCon-Pw new_base64 "$(head -c 40 <(jq -r '.files[0].new_base64' "$pk"))"; do
	grep -qF -- "$v" "$rec" && { leak=1; diag "'$v' in the receipt"; }
done
ok_rc $leak "the receipt holds hashes and sizes, no INI content"

# 3. again: nothing changes
cp -a agents after-first
run_deploy MAILSHIFT_DEPLOY >deploy2.out 2>&1
ok "a re-run changes nothing" diff -r after-first agents
like "$(jq -r '.files[] | select(.path | test("ap.ini")) | .why' "$rec")" 'already deployed' \
	"a re-run reports the file already deployed"

# 4. status: per machine
"$migrate" status --fleet share >status.out 2>&1
is "$?" 1 "status exits 1 while a machine has a conflict"
like "$(cat status.out)" 'DEMO01: deploy [0-9T:Z-]+ 1 deployed, 1 conflict' "status shows the machine's deployment"

# 5. missing file, malformed packet
mv "agents/DEMO01/$ap" ap.away
run_deploy MAILSHIFT_DEPLOY >/dev/null 2>&1
is "$(jq -r '.files[] | select(.path | test("ap.ini")) | .status' "$rec")" missing "a file not on the machine is missing"
mv ap.away "agents/DEMO01/$ap"
echo '{"mailshift": "collect-manifest"}' >bad.json
"$migrate" deploy --packet bad.json --root agents/DEMO01 >bad.out 2>&1
is "$?" 65 "a file that is not a packet: exit 65"
run_deploy MAILSHIFT_DEPLOY >/dev/null 2>&1

# 6. rollback: every byte as before (but the hand edit, which was never ours)
run_deploy MAILSHIFT_DEPLOY_ROLLBACK >rollback.out 2>&1
like "$(cat rollback.out)" '1 rolled-back, 1 conflict' "rollback restores the deployed file, not the conflict"
cp pay.edited want-pay
cp "before-deploy/DEMO01/$pay" before-pay
cp pay.edited "before-deploy/DEMO01/$pay"
ok "rollback restores every byte (no .mailshift-orig left)" diff -r before-deploy agents
cp before-pay "before-deploy/DEMO01/$pay"
ok "the rollback receipt is its own" test -f "$dir/receipts/DEMO01.rollback.json"
"$migrate" status --fleet share >status2.out 2>&1
like "$(cat status2.out)" 'rollback [0-9T:Z-]+ 1 rolled-back, 1 conflict' "status shows the rollback too"

# 7. the conflict resolved (the hand edit undone): deploy, then roll back, cleanly
cp "before-deploy/DEMO01/$pay" "agents/DEMO01/$pay"
run_deploy MAILSHIFT_DEPLOY >deploy3.out 2>&1
is "$?" 0 "with the edit undone, deploy succeeds"
like "$(cat deploy3.out)" '^DEMO01: 2 deployed, 0 rolled-back, 0 conflict' "both files deployed"
"$migrate" status --fleet share >status3.out 2>&1
like "$(cat status3.out)" 'DEMO01: deploy [0-9T:Z-]+ 2 deployed' "status shows both deployed"
run_deploy MAILSHIFT_DEPLOY_ROLLBACK >/dev/null 2>&1
ok "rollback restores every byte" diff -r before-deploy agents

done_testing
