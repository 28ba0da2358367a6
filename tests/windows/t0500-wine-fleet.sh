#!/bin/bash
# The fleet through the scheduler, end to end under Wine: two agents (each
# its own Wine prefix, its own C: and D: with the demo's INI files where
# its jobs name them, one by an 8.3 path), a share folder.  The generated
# MAILSHIFT_COLLECT jobs' command lines run as written on each agent; the
# central audit of the collected fleet equals the audit of the hand-made
# one; migrate; a file changed between collect and deploy is a conflict
# and left alone; the MAILSHIFT_DEPLOY jobs deploy; the connector run by
# each migrated job's command line reads its mailbox in the test world;
# MAILSHIFT_DEPLOY_ROLLBACK restores every byte.
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MS_LIB/lib-world.sh"
. "$MS_TOP/tests/windows/wine-lib.sh"
cd "$T" || bail_out "cannot cd to $T"
for p in mailshift mailshift-audit mailshift-migrate; do
	[ -f "$WIN_BIN/$p.exe" ] || bail_out "no $WIN_BIN/$p.exe: run make windows"
done
world_up
audit=$BIN/mailshift-audit
migrate=$BIN/mailshift-migrate
CR=$(printf '\r')

# ---------------------------------------------------------------- agents
# agent X MACHINE: prefix build-win64/agent-X (kept between runs: the first
# start takes ~20 s), its wineserver up for the test, the computer name
# MACHINE (what %COMPUTERNAME% says), mailshift installed where the jobs
# expect it, D: a folder of the test; a clean C:\ProgramData\OpConxps
agent_prefix() { echo "$MS_TOP/build-win64/agent-$1"; }
agent() {
	local x=$1 m=$2 pfx
	pfx=$(agent_prefix "$x")
	mkdir -p "$pfx"
	WINEPREFIX=$pfx wineserver -p >/dev/null 2>&1
	at_exit "WINEPREFIX='$pfx' wineserver -k >/dev/null 2>&1"
	WINEPREFIX=$pfx "$WINE" cmd /c exit >/dev/null 2>&1
	# the volatile key GetComputerName reads (Wine sets it from the host
	# name at each start of its server)
	WINEPREFIX=$pfx "$WINE" reg add \
		'HKLM\System\CurrentControlSet\Control\ComputerName\ActiveComputerName' \
		/v ComputerName /d "$m" /f >/dev/null 2>&1
	rm -rf "$pfx/drive_c/ProgramData/OpConxps" "$pfx/drive_c/ProgramData/mailshift" \
		"$pfx/drive_c/logs"
	mkdir -p "$pfx/drive_c/Program Files/mailshift" "$pfx/drive_c/ProgramData/OpConxps/SAM/MSGIN" \
		"$pfx/drive_c/logs" "$T/disk-$x/D"
	cp "$WIN_BIN"/mailshift*.exe "$pfx/drive_c/Program Files/mailshift/"
	ln -sfn "$T/disk-$x/D" "$pfx/dosdevices/d:"
}
# on X CMDLINE: the command line as an OpCon agent runs it (through a
# batch file, so that it is the job's text, quotes and all); its status
on() {
	local x=$1
	printf '@echo off\r\n%s\r\nexit /b %%ERRORLEVEL%%\r\n' "$2" >"$T/job-$x.bat"
	# the machine's own state folder (%PROGRAMDATA%\mailshift), not the
	# Linux test's MAILSHIFT_HOME
	MAILSHIFT_HOME='' WINEPREFIX=$(agent_prefix "$x") "$WINE" cmd /c "$(winpath "$T/job-$x.bat")"
}
cdrive() { echo "$(agent_prefix "$1")/drive_c"; }
agent a DEMO01
agent b DEMO02
ok "agent a says it is DEMO01" bash -c "WINEPREFIX='$(agent_prefix a)' '$WINE' cmd /c 'echo %COMPUTERNAME%' | grep -q DEMO01"

# ------------------------------------------------- the demo's INI files
# demo INI template -> file: the world's mailboxes, basic passwords
mkini() { # mkini TEMPLATE USER PASS MASK-LINE EVENT-LINE > FILE (CRLF)
	sed -e 's#@MSGIN@#C:\\ProgramData\\OpConxps\\SAM\\MSGIN#' -e 's#@LOGDIR@#C:\\logs#' \
	    -e 's#@OPCONPW@#Demo-OpCon-Pw#' -e "s#@USER[12]@#$2#" -e "s#@PASS[12]@#$3#" \
	    -e "s#^SubjectLineMask=.*#$4#" -e "s#^Event=.*#$5#" -e '/^Event2=/d' -e '/^#/d' \
	    -e "s/\$/$CR/" "$MS_TOP/samples/demo/machines/DEMO01/$1"
}
demo=$MS_TOP/samples/demo/machines/DEMO01
sma='ProgramData/OpConxps/SMArt Email'
mkdir -p "hand/machines/DEMO01/C/$sma" hand/machines/DEMO01/D/mail "hand/machines/DEMO02/C/$sma"
mkini "C/$sma/payroll.ini.in" "$WORLD_USER_ALICE" "$WORLD_PASS_ALICE" \
	'SubjectLineMask=^Run job (\\S+) on (\\d+)$' 'Event=$JOB:ADD,[[$DATE]],MAIL,[[1]],OCADHOC' \
	>"hand/machines/DEMO01/C/$sma/payroll.ini"
mkini D/mail/ap.ini.in "$WORLD_USER_OPS" "$WORLD_PASS_OPS" \
	'SubjectLineMask=^Invoice (\\d+)' 'Event=$CONSOLE:DISPLAY,invoice [[1]] received' \
	>hand/machines/DEMO01/D/mail/ap.ini
mkini D/mail/ap.ini.in "$WORLD_USER_OPS" "$WORLD_PASS_OPS" \
	'SubjectLineMask=^Report (\\d+)' 'Event=$CONSOLE:DISPLAY,report [[1]]' \
	>"hand/machines/DEMO02/C/$sma/reports.ini"
mkini "C/$sma/payroll.ini.in" "$WORLD_USER_ALICE" "$WORLD_PASS_ALICE" \
	'SubjectLineMask=^Nightly (\\S+)$' 'Event=$CONSOLE:DISPLAY,nightly [[1]]' \
	>"hand/machines/DEMO02/C/$sma/SMArtEmail.ini"
ok "the INI files are made" test -s hand/machines/DEMO02/C/"$sma"/SMArtEmail.ini
# the jobs: the demo's two on DEMO01; on DEMO02 one by an 8.3 path, one
# with the default INI (no -inifile:)
mkdir -p hand/jobs
jq --arg u 'OPCON\svc-mail' '. + [
  { "name": "REPORTS-83", "schedule": { "name": "MAIL" }, "jobType": { "description": "Windows" },
    "primaryMachine": { "name": "DEMO02" },
    "details": { "commandLine": "C:\\PROGRA~1\\SMA\\smartemail.exe -inifile:\"C:\\ProgramData\\OpConxps\\SMARTE~1\\reports.ini\" --pop",
                 "workingDirectory": "C:\\Program Files\\SMA", "batchUser": { "loginName": $u } } },
  { "name": "NIGHTLY", "schedule": { "name": "MAIL" }, "jobType": { "description": "Windows" },
    "primaryMachine": { "name": "DEMO02" },
    "details": { "commandLine": "\"C:\\Program Files\\SMA\\SMArtEmail.exe\"",
                 "workingDirectory": "C:\\Program Files\\SMA", "batchUser": { "loginName": $u } } } ]' \
	"$MS_TOP/samples/demo/jobs/opcon-jobs.json" >hand/jobs/opcon-jobs.json
# each agent's disk: the hand-made fleet's files where the jobs name them
cp -a hand/machines/DEMO01/C/ProgramData/. "$(cdrive a)/ProgramData/"
cp -a hand/machines/DEMO01/D/. "$T/disk-a/D/"
cp -a hand/machines/DEMO02/C/ProgramData/. "$(cdrive b)/ProgramData/"
inis() { # inis X: the agent's INI files and their hashes (what must come back)
	(cd "$(cdrive "$1")/ProgramData/OpConxps" && find . \( -name '*.ini' -o -name '*.mailshift-orig' \) \
		-type f | sort | xargs -r -d '\n' sha256sum)
	(cd "$T/disk-$1/D" && find . \( -name '*.ini' -o -name '*.mailshift-orig' \) -type f | sort |
		xargs -r -d '\n' sha256sum)
}
inis a >orig-a.sums
inis b >orig-b.sums

# ------------------------------------------------------------- collect
share=$T/share
W_SHARE=$(winpath "$share")
mkdir -p "$share"
cp -a hand/jobs "$share/"
"$audit" collect-plan --fleet "$share" --share "$W_SHARE" >plan.out 2>&1
is "$?" 0 "collect-plan exits 0"
imp=$share/collect/MAILSHIFT_COLLECT.json
job_cmd() { # job_cmd IMPORT-FILE MACHINE: the command line of MACHINE's job
	jq -r --arg m "$2" '.scheduleList[].jobList[] | select(.primaryMachine.name == $m) |
		.details.commandLine' "$1"
}
on a "$(job_cmd "$imp" DEMO01)" >collect-a.out 2>&1; ra=$?
on b "$(job_cmd "$imp" DEMO02)" >collect-b.out 2>&1; rb=$?
is "$ra" 1 "DEMO01's collect job exits 1: it has no default INI file"
is "$rb" 0 "DEMO02's collect job exits 0: every file copied"
like "$(cat collect-a.out)" '^DEMO01: 2 copied, 1 missing' "DEMO01: two copied, the default INI missing"
like "$(cat collect-b.out)" '^DEMO02: 2 copied, 0 missing' "DEMO02: two copied, one of them named by an 8.3 path"
[ "$rb" = 0 ] || diag "$(cat collect-b.out)"
is "$(jq -r '.files[] | select(.path | test("SMARTE~1")) | .file' "$share/collect/receipts/DEMO02.json")" \
	"machines/DEMO02/C/$sma/reports.ini" "the 8.3 path resolved on the agent to the long name"
ok "the collected fleet has the hand-made fleet's files, byte for byte" diff -r hand/machines "$share/machines"
# again: on Windows the machine's folder is swapped by two renames
on b "$(job_cmd "$imp" DEMO02)" >collect-b2.out 2>&1
is "$?" 0 "DEMO02's collect job again: exit 0"
ok "the machine's folder replaced, the same files" diff -r hand/machines/DEMO02 "$share/machines/DEMO02"
is "$(ls -A "$share/machines" | grep -c '^\.')" 0 "no temporary folder left in machines\\"

# the central audit of the collected fleet = the audit of the hand-made one
"$audit" --fleet hand --format json --fail-on none >hand.json 2>/dev/null
"$audit" --fleet "$share" --format json --fail-on none >collected.json 2>/dev/null
view() { jq -S '{summary, jobs: [.jobs[] | del(.source)]}' "$1"; }
view hand.json >hand.v
view collected.json >collected.v
diff hand.v collected.v | head -n 10 | sed 's/^/# /'
ok "the audit of the collected fleet equals the audit of the hand-made fleet" cmp -s hand.v collected.v
is "$(jq '.summary.jobs' collected.json)" 4 "the audit read the four jobs"

# ------------------------------------------------------------- migrate
export FLEET_APP_SECRET=$WORLD_APP_SECRET
cat >map.json <<EOF
{ "transport": "imap", "connector": "C:\\\\Program Files\\\\mailshift\\\\mailshift.exe",
  "server": "127.0.0.1", "port": $WORLD_IMAPS_PORT,
  "caFile": "$(winpath "$WORLD_CA_FILE" | sed 's/\\/\\\\/g')",
  "tenants": [ { "domains": ["${WORLD_USER_ALICE#*@}"], "tenantId": "$WORLD_TENANT",
                 "clientId": "$WORLD_APP_ID", "clientSecret": "env:FLEET_APP_SECRET",
                 "authority": "$WORLD_TOKEN_URL" } ] }
EOF
"$migrate" apply --fleet "$share" --map map.json >apply.out 2>&1
is "$?" 0 "migrate apply on the collected fleet"
[ -s "$share/migrate/run-1/changes.json" ] || diag "$(cat apply.out)"
"$migrate" deploy-plan --fleet "$share" --share "$W_SHARE" >dplan.out 2>&1
is "$?" 0 "deploy-plan"
like "$(cat dplan.out)" '^run 1: 4 INI files for 2 machines, 4 job command lines' "deploy-plan: 4 files, 2 machines, 4 jobs"
dir=$share/deploy/run-1

# --------------------------------- a file changed between collect and deploy
ap=$T/disk-a/D/mail/ap.ini
cp "$ap" ap.orig
printf '; changed on DEMO01 after the collection\r\n' >>"$ap"
cp "$ap" ap.changed
on a "$(job_cmd "$dir/MAILSHIFT_DEPLOY.json" DEMO01)" >deploy-a1.out 2>&1
is "$?" 1 "DEMO01's deploy job exits 1: a conflict"
like "$(cat deploy-a1.out)" '^DEMO01: 1 deployed, 0 rolled-back, 1 conflict' "one deployed, one in conflict"
ok "the file changed after the collection is left alone" cmp -s ap.changed "$ap"
is "$(jq -r '.files[] | select(.path == "D:\\mail\\ap.ini") | .status' "$dir/receipts/DEMO01.json")" conflict \
	"the receipt in the share says conflict"
"$migrate" status --fleet "$share" >status1.out 2>&1
like "$(cat status1.out)" 'DEMO01: deploy [0-9T:Z-]+ 1 deployed, 1 conflict' "status: DEMO01 has a conflict"
like "$(cat status1.out)" 'DEMO02: no receipt yet' "status: DEMO02 not deployed yet"
cp ap.orig "$ap"     # the operator undoes the change

# ------------------------------------------------------------- deploy
on a "$(job_cmd "$dir/MAILSHIFT_DEPLOY.json" DEMO01)" >deploy-a.out 2>&1; ra=$?
on b "$(job_cmd "$dir/MAILSHIFT_DEPLOY.json" DEMO02)" >deploy-b.out 2>&1; rb=$?
is "$ra$rb" 00 "the deploy jobs exit 0 on both agents"
same=0
for f in "C/$sma/payroll.ini:a:$(cdrive a)/$sma/payroll.ini" "D/mail/ap.ini:a:$ap" \
	 "C/$sma/reports.ini:b:$(cdrive b)/$sma/reports.ini" "C/$sma/SMArtEmail.ini:b:$(cdrive b)/$sma/SMArtEmail.ini"; do
	m=DEMO01; [ "$(echo "$f" | cut -d: -f2)" = b ] && m=DEMO02
	cmp -s "$share/machines/$m/${f%%:*}" "${f#*:?:}" || { same=1; diag "$f differs"; }
done
ok_rc $same "each agent's INI files are the migrated ones"
"$migrate" status --fleet "$share" >status2.out 2>&1
is "$?" 0 "status exits 0 once every machine is deployed"
like "$(cat status2.out)" 'DEMO02: deploy [0-9T:Z-]+ 2 deployed' "status: DEMO02 deployed"

# ------------------- the connector, by each migrated job's command line
mkmsg "$T/m1" "bob@contoso.test" "Run job PAYROLL on 42"
mkmsg "$T/m2" "bob@contoso.test" "Invoice 4711"
mkmsg "$T/m3" "bob@contoso.test" "Nightly CLOSE"
deliver_mail "$WORLD_USER_ALICE" "$T/m1" && deliver_mail "$WORLD_USER_OPS" "$T/m2" &&
	deliver_mail "$WORLD_USER_ALICE" "$T/m3" || bail_out "cannot deliver the test mail"
changes=$dir/MAILSHIFT_JOB_CHANGES.json
new_cmd() { jq -r --arg j "$1" '.scheduleList[].jobList[] | select(.name == $j) | .details.commandLine' "$changes"; }
like "$(new_cmd PAYROLL-INBOX)" '^"C:\\Program Files\\mailshift\\mailshift.exe" ' "the migrated command line runs mailshift.exe"
events() { cat "$(cdrive "$1")"/ProgramData/OpConxps/SAM/MSGIN/* 2>/dev/null; }
on a "$(new_cmd PAYROLL-INBOX)" >run-payroll.out 2>&1
is "$?" 0 "DEMO01 PAYROLL-INBOX: the connector exits 0 (OAuth against the world's IMAP)"
like "$(events a)" 'JOB:ADD,.*MAIL,PAYROLL,OCADHOC' "DEMO01 PAYROLL-INBOX: its event is in MSGIN"
on a "$(new_cmd AP-INBOX)" >run-ap.out 2>&1
is "$?" 0 "DEMO01 AP-INBOX (was POP with a password): the connector exits 0"
like "$(events a)" 'invoice 4711 received' "DEMO01 AP-INBOX: its event is in MSGIN"
# NIGHTLY has no -inifile:, so the incumbent read its default
# C:\ProgramData\OpConxps\SMArt Email\SMArtEmail.ini (the file collected,
# migrated and deployed); its migrated command line has none either, and
# mailshift.exe without one reads the same default
on b "$(new_cmd NIGHTLY)" >run-nightly.out 2>&1
is "$?" 0 "DEMO02 NIGHTLY (no -inifile:): the connector exits 0"
like "$(events b)" 'nightly CLOSE' "DEMO02 NIGHTLY: it read the incumbent's default INI, and its event is in MSGIN"
events a | grep -q 'invoice 4711' || diag "$(cat run-payroll.out run-ap.out)"
# REPORTS-83 names its INI file C:\ProgramData\OpConxps\SMARTE~1\...: on
# Windows the file system resolves it; Wine's short names are hashes
# ("SMAR~XYZ"), so the folder gets the second name here as Windows gives
# it (SMARTE~1 -> "SMArt Email"), for this run only: collect and deploy
# above resolved the 8.3 name without it
alias83="$(cdrive b)/ProgramData/OpConxps/SMARTE~1"
ln -s "SMArt Email" "$alias83"
mkmsg "$T/m4" "bob@contoso.test" "Report 77"
deliver_mail "$WORLD_USER_OPS" "$T/m4" || bail_out "cannot deliver the test mail"
on b "$(new_cmd REPORTS-83)" >run-83.out 2>&1
is "$?" 0 "DEMO02 REPORTS-83 (8.3 path): the connector exits 0"
like "$(events b)" 'report 77' "DEMO02 REPORTS-83: it read the deployed INI through its 8.3 path, and its event is in MSGIN"
rm -f "$alias83"

# ------------------------------------------------------------- rollback
on a "$(job_cmd "$dir/MAILSHIFT_DEPLOY_ROLLBACK.json" DEMO01)" >rb-a.out 2>&1; ra=$?
on b "$(job_cmd "$dir/MAILSHIFT_DEPLOY_ROLLBACK.json" DEMO02)" >rb-b.out 2>&1; rb=$?
is "$ra$rb" 00 "the rollback jobs exit 0 on both agents"
inis a >after-a.sums
inis b >after-b.sums
diff orig-a.sums after-a.sums | sed 's/^/# /'
ok "rollback restores every byte of DEMO01's INI files (no .mailshift-orig left)" cmp -s orig-a.sums after-a.sums
ok "rollback restores every byte of DEMO02's INI files (no .mailshift-orig left)" cmp -s orig-b.sums after-b.sums
"$migrate" status --fleet "$share" >status3.out 2>&1
like "$(cat status3.out)" 'DEMO02: deploy [0-9T:Z-]+ 2 deployed; rollback [0-9T:Z-]+ 2 rolled-back' \
	"status shows the rollback per machine"
ok "no secret of the world in the receipts" bash -c "! grep -rqF -e '$WORLD_APP_SECRET' -e '$WORLD_PASS_ALICE' '$dir/receipts' '$share/collect/receipts'"

done_testing
