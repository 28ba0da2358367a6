#!/bin/bash
# The demo's cutover, finished on a Windows agent under Wine: the Linux
# build migrates the demo fleet (samples/demo, the map scripts/demo uses,
# with the agent's Windows paths); the MSI is installed silently; the
# payroll INI is copied to the place deploy.json names, its client secret
# sealed again on the agent (a key made on Linux is no use on Windows:
# README, "On Windows agents"); then the payroll job's new command line,
# exactly as migrate wrote it into changes.json, runs through the installed
# C:\Program Files\mailshift\mailshift.exe, reads the mailbox with XOAUTH2
# and writes the expected events into the agent's MSGIN.
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MS_LIB/lib-world.sh"
. "$MS_TOP/tests/windows/wine-lib.sh"
world_up
# a prefix of its own: the install starts from nothing (in $T: wine_stop
# runs at exit before $T is removed)
WINEPREFIX=$T/wine
export WINEPREFIX
wine_start
command -v jq >/dev/null || bail_out "no jq: run scripts/deps"

version=$(sed -n 's/^VERSION *:= *//p' "$MS_TOP/Makefile")
msi=$MS_TOP/dist/mailshift-$version-x64.msi
[ -f "$msi" ] || bail_out "no $msi: run make windows"
C=$WINEPREFIX/drive_c
CR=$(printf '\r')

# --- the operator's side (Linux): the demo fleet, migrated ------------------
fleet=$T/fleet
cp -R "$MS_TOP/samples/demo" "$fleet"
find "$fleet/machines" -name '*.ini.in' | while read -r f; do
	sed -e 's#@MSGIN@#C:\\ProgramData\\OpConxps\\SAM\\MSGIN#' \
	    -e 's#@LOGDIR@#C:\\ProgramData\\OpConxps\\SAM\\logs#' \
	    -e "s#@OPCONPW@#Demo-OpCon-Pw#" \
	    -e "s#@USER1@#$WORLD_USER_OPS#" -e "s#@PASS1@#$WORLD_PASS_OPS#" \
	    -e "s#@USER2@#$WORLD_USER_CAROL#" -e "s#@PASS2@#$WORLD_PASS_CAROL#" "$f" >"${f%.in}"
	rm -f "$f"
done
# scripts/demo's map, but the CA file as the agent names it
ca=$(winpath "$WORLD_CA_FILE" | sed 's/\\/\\\\/g')
cat >"$T/map.json" <<EOM
{
  "transport": "imap",
  "connector": "C:\\\\Program Files\\\\mailshift\\\\mailshift.exe",
  "server": "127.0.0.1",
  "port": $WORLD_IMAPS_PORT,
  "caFile": "$ca",
  "graphEndpoint": "$WORLD_GRAPH_URL",
  "tenants": [
    { "domains": ["contoso.test"], "tenantId": "$WORLD_TENANT", "clientId": "$WORLD_APP_ID",
      "clientSecret": "$WORLD_APP_SECRET", "authority": "$WORLD_TOKEN_URL" },
    { "domains": ["fabrikam.test"], "tenantId": "$WORLD_TENANT2", "clientId": "$WORLD_FAB_APP_ID",
      "clientSecret": "env:DEMO_FABRIKAM_SECRET", "authority": "$WORLD_TOKEN_URL" }
  ]
}
EOM
export DEMO_FABRIKAM_SECRET=$WORLD_FAB_APP_SECRET
"$BIN/mailshift-migrate" apply --fleet "$fleet" --map "$T/map.json" >"$T/apply.out" 2>&1; rc=$?
ok_rc "$([ $rc -le 1 ]; echo $?)" "the Linux build migrates the demo fleet (rc=$rc)"
[ $rc -le 1 ] || sed 's/^/# /' "$T/apply.out"
changes=$(ls "$fleet"/migrate/run-*/changes.json 2>/dev/null | tail -n 1)
deploy=$(ls "$fleet"/migrate/run-*/deploy.json 2>/dev/null | tail -n 1)
ok_rc "$(test -s "$changes" && test -s "$deploy"; echo $?)" "apply wrote changes.json and deploy.json"
cmdline=$(jq -r '.changes[] | select(.job == "PAYROLL-INBOX" and .action == "change") | .new' "$changes" 2>/dev/null)
like "$cmdline" '^"C:\\Program Files\\mailshift\\mailshift\.exe" ' \
	"changes.json: the payroll job's new command line calls the installed mailshift.exe"
echo "# PAYROLL-INBOX: $cmdline"

# --- the agent's side (Windows, under Wine) ----------------------------------
# as on an agent: no MAILSHIFT_HOME, the key in %PROGRAMDATA%\mailshift\
unset MAILSHIFT_HOME
"$WINE" msiexec /i "$(winpath "$msi")" /qn >/dev/null 2>&1; rc=$?
is $rc 0 "msiexec /i /qn installs the MSI"
# deploy.json: every migrated INI of DEMO01 to its Windows path on the agent
n=0
while IFS=$'\t' read -r wpath file; do
	case $wpath in [Cc]:\\*) ;; *) continue ;; esac
	dst=$C/$(printf '%s' "${wpath#?:\\}" | tr '\\' /)
	mkdir -p "$(dirname "$dst")"
	case $file in /*) src=$file ;; *) src=$fleet/$file ;; esac
	cp "$src" "$dst" && n=$((n + 1))
done < <(jq -r '.files[] | select(.machine == "DEMO01") | [.path, .file] | @tsv' "$deploy")
ok_rc "$([ $n -ge 1 ]; echo $?)" "deploy.json's INI files for C: copied to the agent ($n)"
ini='C:\ProgramData\OpConxps\SMArt Email\payroll.ini'
payroll="$C/ProgramData/OpConxps/SMArt Email/payroll.ini"
ok_rc "$(test -s "$payroll"; echo $?)" "the payroll INI is at $ini"
want=$(jq -r '.files[] | select(.jobs | test("PAYROLL-INBOX")) | .sha256' "$deploy")
is "$(sha256sum "$payroll" | cut -d' ' -f1)" "$want" "... with the bytes deploy.json's sha256 names"
mkdir -p "$C/ProgramData/OpConxps/SAM/MSGIN" "$C/ProgramData/OpConxps/SAM/logs"

# the client secret was sealed with the operator's (Linux) key: seal again here
"$WINE" 'C:\Program Files\mailshift\mailshift.exe' --credentials "-inifile:$ini" \
	"-clientsecret:$WORLD_APP_SECRET" -opconpassword:Demo-OpCon-Pw >"$T/cred.out" 2>&1; rc=$?
is $rc 0 "the installed mailshift.exe --credentials seals the secrets on the agent"
[ $rc = 0 ] || sed 's/^/# /' "$T/cred.out"

clear_mailbox ops
mkmsg "$T/m1" "payroll@contoso.test" "Run job PAYROLL on 42"
mkmsg "$T/m2" "dave@onprem.test" "Lunch on Friday?"
for m in m1 m2; do deliver "$T/$m" "$WORLD_USER_OPS"; done
wait_mailbox_count ops 2

# the command line exactly as changes.json has it, as the agent starts it:
# one line of a batch file, run by cmd
printf '@%s\r\n' "$cmdline" >"$T/job.bat"
"$WINE" cmd /c "$(winpath "$T/job.bat")" >"$T/job.out" 2>&1; rc=$?
is $rc 0 "the payroll job's command line exits 0 under Wine"
[ $rc = 0 ] || sed 's/^/# /' "$T/job.out"
msgin=$C/ProgramData/OpConxps/SAM/MSGIN
is "$(ls "$msgin" | wc -l)" 2 "two event files in C:\\ProgramData\\OpConxps\\SAM\\MSGIN"
cat "$msgin"/* 2>/dev/null | sort >"$T/events"
printf '%s\r\n' '$JOB:ADD,[[$DATE]],MAIL,PAYROLL,OCADHOC,ocadm,Demo-OpCon-Pw' \
	'$PROPERTY:SET,PAYROLL_BATCH,42,ocadm,Demo-OpCon-Pw' | sort >"$T/want"
ok "the events: PAYROLL added to MAIL, PAYROLL_BATCH set to 42 (CRLF)" cmp "$T/want" "$T/events"
cmp -s "$T/want" "$T/events" || sed 's/^/# got: /' "$T/events"
is "$(mailbox_count ops)" 1 "DeleteEmails=Match removed the matching mail only"
ok_rc "$(grep -q "$WORLD_APP_SECRET\|Demo-OpCon-Pw" "$payroll" "$T/job.out" "$T/cred.out"; [ $? = 1 ]; echo $?)" \
	"no secret in clear in the agent's INI or the job's output"
ok_rc "$(grep -q "^AuthMethod=OAuth2" "$payroll"; echo $?)" "the INI the job ran is the migrated one (OAuth2)"

done_testing
