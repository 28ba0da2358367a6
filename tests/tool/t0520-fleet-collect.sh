#!/bin/bash
# mailshift-audit collect-plan and collect (native build, agents simulated
# by folders whose entries are their drives): the manifests name every INI
# path the jobs name (relative and 8.3 forms, the default INI), the
# generated MAILSHIFT_COLLECT jobs' command lines run as written copy the
# files byte for byte with a receipt of hashes and sizes only, nothing
# outside a manifest is read, missing and unreadable files are reported,
# a re-run replaces the machine's folder whole, and the audit of the
# collected fleet equals the audit of the hand-made one.
set -u
. "$(dirname "$0")/../lib/test-lib.sh"
cd "$T" || bail_out "cannot cd to $T"
audit=$BIN/mailshift-audit

# Three agents, each its own disk: samples/fleet's machines, plus an INI
# file that a new job names by an 8.3 path, and one no job names.
mkdir agents fleet
cp -a "$MS_TOP/samples/fleet/machines/." agents/
mkdir -p "agents/FINSRV03/D/Mail Configs"
cp agents/FINSRV03/D/Jobs/payroll/expenses.ini "agents/FINSRV03/D/Mail Configs/scan.ini"
echo 'Password=not-in-any-manifest' >agents/FINSRV03/D/Jobs/payroll/not-named.ini
# FINSRV03 also holds OpCon's notification settings export
mkdir -p agents/FINSRV03/C/OpCon
cp "$MS_TOP/samples/fleet/notify/opcon-notification-smtp.json" agents/FINSRV03/C/OpCon/notify.json
cp -a "$MS_TOP/samples/fleet/jobs" fleet/
cat >fleet/jobs/rest/scan-83.json <<'EOF'
[ { "name": "SCAN-83", "schedule": { "name": "SCANNING" },
    "jobType": { "description": "Windows" }, "primaryMachine": { "name": "FINSRV03" },
    "details": { "commandLine": "D:\\Tools\\smartemail.exe -inifile:\"D:\\MAILCO~1\\scan.ini\"",
                 "workingDirectory": "D:\\Tools",
                 "batchUser": { "loginName": "CONTOSO\\svc_scan" } } } ]
EOF
share=$T/share
mkdir "$share"
cp -a fleet/jobs "$share/"

# 1. the plan
"$audit" collect-plan --fleet "$share" --share "$share" --notify 'FINSRV03=C:\OpCon\notify.json' \
	>plan.out 2>plan.err
is "$?" 0 "collect-plan exits 0"
like "$(cat plan.out)" '^3 machines, 17 files to collect \(1 unresolved\), from 16 connector jobs' \
	"collect-plan counts machines, files and jobs"
man=$share/collect/manifests
ok "one manifest per machine" test -f "$man/FINSRV03.json" -a -f "$man/WINAPP02.json"
fin=$man/FINSRV03.json
is "$(jq -r '.mailshift + " " + .machine' "$fin")" "collect-manifest FINSRV03" "manifest names its machine"
is "$(jq -r '.files[] | select(.named == ["payroll-app.ini"]) | .path + " " + .working_dir' "$fin")" \
	'D:\Jobs\payroll\payroll-app.ini D:\Jobs\payroll' "a relative -inifile: resolved in the job's working directory"
is "$(jq -r '.files[] | select(.jobs == ["SCANNING/SCAN-83"]) | .path' "$fin")" 'D:\MAILCO~1\scan.ini' \
	"an 8.3 path is kept for the agent to resolve"
is "$(jq -r '.files[] | select(.kind == "default-ini") | .path' "$fin")" \
	'C:\ProgramData\OpConxps\SMArt Email\SMArtEmail.ini' "the incumbent's default INI is in every manifest"
like "$(jq -r '.files[] | select(.unresolved) | .unresolved' "$man"/*.json)" 'SMARTEMAIL_INI_DIR' \
	"a [[PROPERTY]] path is listed as unresolved"
imp=$share/collect/MAILSHIFT_COLLECT.json
is "$(jq -r '.scheduleList[0].name' "$imp")" MAILSHIFT_COLLECT "import file: schedule MAILSHIFT_COLLECT"
is "$(jq -r '.scheduleList[0].jobList | length' "$imp")" 3 "import file: one job per machine"
is "$(jq -r '.scheduleList[0].jobList[] | select(.primaryMachine.name == "FINSRV03") | .details.commandLine' "$imp")" \
	"\"C:\\Program Files\\mailshift\\mailshift-audit.exe\" collect --manifest \"$share/collect/manifests/FINSRV03.json\" --out \"$share\"" \
	"import file: the job runs mailshift-audit.exe collect with its manifest"
is "$(jq -r '.scheduleList[0].jobList[] | select(.primaryMachine.name == "FINSRV03") | .details.batchUser.loginName' "$imp")" \
	'CONTOSO\svc_payroll' "import file: the job runs as the machine's connector jobs' user"
# the audit reads the import file (the shape it reads for exports): three more jobs, none a connector job
mkdir -p impfleet/jobs && cp -a fleet/jobs/. impfleet/jobs/ && cp "$imp" impfleet/jobs/
"$audit" --fleet fleet --format json --fail-on none >a0.json 2>/dev/null
"$audit" --fleet impfleet --format json --fail-on none >a1.json 2>/dev/null
is "$(jq '.summary.other_jobs - 3' a1.json)" "$(jq .summary.other_jobs a0.json)" \
	"the audit reads the import file: 3 more jobs, not connector jobs"
unc_out=$(mktemp -d "$T/unc.XXXX")
"$audit" collect-plan --fleet fleet --share '\\files01\fleet$' --out "$unc_out" >/dev/null 2>&1
is "$(jq -r '.scheduleList[0].jobList[0].details.commandLine' "$unc_out/collect/MAILSHIFT_COLLECT.json")" \
	'"C:\Program Files\mailshift\mailshift-audit.exe" collect --manifest "\\files01\fleet$\collect\manifests\FINSRV03.json" --out "\\files01\fleet$"' \
	"a UNC share gives backslashed paths"

mkdir -p nomachine/jobs
cat >nomachine/jobs/j.json <<'EOF'
[ { "name": "LOST", "schedule": { "name": "S" }, "jobType": { "description": "Windows" },
    "details": { "commandLine": "smartemail.exe -inifile:C:\\x.ini" } } ]
EOF
"$audit" collect-plan --fleet nomachine --share "$share" --out nomachine >nm.out 2>&1
is "$?" 65 "a connector job without a machine: exit 65"
like "$(cat nm.out)" "nomachine/jobs/j.json:1: job S/LOST: machine '' cannot name a folder" \
	"and the job is named, not collected"

# 2. run each job's command line as written (the program's path is the
# only change: our build instead of C:\Program Files), on its own disk
run_job() { # run_job MACHINE [ARGS...]: the MAILSHIFT_COLLECT job of MACHINE
	local m=$1 cmd
	shift
	cmd=$(jq -r --arg m "$m" '.scheduleList[0].jobList[] | select((.primaryMachine.name | ascii_upcase) == $m) |
		.details.commandLine' "$imp")
	eval "set -- $cmd \"\$@\""
	shift
	"$audit" "$@" --root "$T/agents/$m"
}
for m in FINSRV03 WINAPP01 WINAPP02; do
	run_job $m --machine $m >"collect-$m.out" 2>&1
	echo $? >"collect-$m.rc"
done
is "$(cat collect-FINSRV03.rc)" 1 "collect exits 1 when a file is missing"
like "$(cat collect-FINSRV03.out)" '^FINSRV03: 6 copied, 2 missing' "collect counts what it copied and missed"
rec=$share/collect/receipts/FINSRV03.json
ok "collect writes its receipt to the share" test -f "$rec"
is "$(jq -r '.files[] | select(.kind == "default-ini") | .status' "$rec")" missing \
	"a missing file is reported in the receipt"
like "$(jq -r '.files[] | select(.kind == "default-ini") | .why' "$rec")" "not found" "and why"
is "$(jq -r '.files[] | select(.path == "D:\\MAILCO~1\\scan.ini") | .file' "$rec")" \
	"machines/FINSRV03/D/Mail Configs/scan.ini" "the 8.3 path resolved on the agent's own disk"
same=0
while IFS=$'\t' read -r file sha size; do
	case $file in notify/*) continue;; esac
	src=agents/${file#machines/}
	[ "$sha" = "$(sha256sum <"$src" | cut -d' ' -f1)" ] || { same=1; diag "hash of $file"; }
	[ "$size" = "$(wc -c <"$src")" ] || { same=1; diag "size of $file"; }
	cmp -s "$src" "$share/$file" || { same=1; diag "bytes of $file"; }
done < <(jq -r '.files[] | select(.status == "copied") | [.file, .sha256, .size] | @tsv' "$share"/collect/receipts/*.json)
ok_rc $same "every copied file is byte for byte the agent's, with its SHA-256 and size in the receipt"
ok "the notification export goes where the audit reads it" \
	cmp -s agents/FINSRV03/C/OpCon/notify.json "$share/notify/FINSRV03-notify.json"
ok "nothing outside the manifest is read" test ! -e "$share/machines/FINSRV03/D/Jobs/payroll/not-named.ini"
leak=0
for v in $(grep -rhoE '^(Password|OpConUserPassword|ClientSecret)=.+' agents | cut -d= -f2- | tr -d '\r'); do
	grep -rqF -- "$v" "$share/collect" && { leak=1; diag "a secret of an INI file is in collect/"; }
done
ok_rc $leak "receipts and manifests hold no INI content (no password of any INI)"
is "$(jq -r '.files[] | select(.kind == "ini" and (.path | test("PROGRA~1"))) | .status' "$share/collect/receipts/WINAPP02.json")" \
	ambiguous "an 8.3 name with two candidates is reported ambiguous, not guessed"

# 3. a second plan over the collected fleet adds the certificate files
# the INI files name; the share gets certificates only, never a key
"$audit" collect-plan --fleet "$share" --share "$share" --notify 'FINSRV03=C:\OpCon\notify.json' \
	>plan2.out 2>&1
is "$(jq -r '.files[] | select(.kind == "certificate") | .path' "$fin")" \
	'D:\Jobs\payroll\certs\payroll-app.pem' "the second plan adds the INI's certificate file"
cat "$MS_TOP/tests/fixtures/dummy-key.pem" >/dev/null 2>&1 || true
printf -- '-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEA\n-----END PRIVATE KEY-----\n' \
	>>agents/FINSRV03/D/Jobs/payroll/certs/payroll-app.pem
for m in FINSRV03 WINAPP01 WINAPP02; do run_job $m --machine $m >/dev/null 2>&1; done
ok "the certificate is collected" test -f "$share/machines/FINSRV03/D/Jobs/payroll/certs/payroll-app.pem"
ok "without the private key beside it" \
	bash -c "! grep -q 'PRIVATE KEY' '$share/machines/FINSRV03/D/Jobs/payroll/certs/payroll-app.pem'"
is "$(jq -r '.files[] | select(.kind == "certificate") | .certificates_only' "$rec")" true \
	"the receipt says only the certificates were copied"

# 4. the central audit of the collected fleet = the audit of the hand-made
# fleet (jobs and the agents' disks), job by job, finding by finding
mkdir hand && cp -a fleet/jobs hand/ && cp -a agents hand/machines
verdicts() { jq -c '.jobs[] | [.schedule, .job, .machine, .status, .ini,
	([.findings[] | .code + ":" + .severity] | sort)]' "$1" | sort; }
"$audit" --fleet hand --format json --fail-on none >hand.json 2>/dev/null
"$audit" --fleet "$share" --format json --fail-on none >collected.json 2>/dev/null
# but for the one job whose 8.3 path has two candidates: the hand-made
# fleet says ambiguous, the collected one has no file (and its receipt
# says ambiguous); a real Windows agent asks the system (GetLongPathName)
verdicts hand.json | grep -v ARCHIVE-POLL >hand.v
verdicts collected.json | grep -v ARCHIVE-POLL >collected.v
diff hand.v collected.v | head -n 10 | sed 's/^/# /'
ok "the audit of the collected fleet equals the audit of the hand-made one" cmp -s hand.v collected.v
is "$(jq .summary.notify_basic_smtp collected.json)" 1 "the audit reads the collected notification export"
is "$(wc -l <collected.v)" 15 "the audit read the other 15 connector jobs"
like "$(verdicts collected.json | grep ARCHIVE-POLL)" 'ini-missing' "the ambiguous one: not collected"

# 5. re-run: the machine's folder replaced whole, no temporary folder left
rm "agents/FINSRV03/D/Mail Configs/scan.ini"
mkdir "$share/machines/.FINSRV03.collect.999.1"   # as a killed run leaves it
run_job FINSRV03 --machine FINSRV03 >rerun.out 2>&1
ok "a re-run drops a file the agent no longer has" test ! -e "$share/machines/FINSRV03/D/Mail Configs/scan.ini"
ok "and keeps the rest" cmp -s agents/FINSRV03/D/Jobs/payroll/expenses.ini \
	"$share/machines/FINSRV03/D/Jobs/payroll/expenses.ini"
is "$(ls -a "$share/machines" | grep -c '^\.FINSRV03')" 0 "no temporary folder left behind (also a killed run's)"
cp -a "$share/machines/FINSRV03" before-bad
echo '{"not": "a manifest"}' >bad.json
"$audit" collect --manifest bad.json --out "$share" --machine FINSRV03 --root agents/FINSRV03 >bad.out 2>&1
is "$?" 65 "a file that is not a manifest: exit 65"
ok "and the machine's folder is untouched" diff -r before-bad "$share/machines/FINSRV03"

# 6. unreadable file (needs a user the permission bits apply to)
if [ "$(id -u)" != 0 ]; then
	chmod 000 agents/FINSRV03/D/Jobs/payroll/expenses.ini
	run_job FINSRV03 --machine FINSRV03 >unread.out 2>&1
	chmod 644 agents/FINSRV03/D/Jobs/payroll/expenses.ini
	is "$(jq -r '.files[] | select(.path | test("expenses")) | .status' "$rec")" unreadable \
		"an unreadable file is reported, the job goes on"
	like "$(cat unread.out)" '[1-9] unreadable' "collect counts it"
else
	skip "root reads every file: no unreadable file to make"
fi

# 7. the machine's name from the environment (Windows: COMPUTERNAME)
(cd "$T" && COMPUTERNAME=WINAPP01 "$audit" collect --manifest "$man/winapp01.json" --out "$share" \
	--root agents/WINAPP01 >env.out 2>&1)
like "$(cat env.out)" '^WINAPP01:' "COMPUTERNAME names the machine's folder"
COMPUTERNAME='..' "$audit" collect --manifest "$man/winapp01.json" --out "$share" --root agents/WINAPP01 \
	>dots.out 2>&1
is "$?" 64 "a machine name that is no folder name is refused"

done_testing
