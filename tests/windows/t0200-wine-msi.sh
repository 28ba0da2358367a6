#!/bin/bash
# The MSI under Wine: msiexec /i /qn puts the programs in
# C:\Program Files\mailshift\; the installed mailshift.exe seals an INI's
# passwords (--credentials: the machine key goes to the default
# %PROGRAMDATA%\mailshift\), runs the sealed INI against Dovecot and writes
# the Linux build's events; msiexec /x removes the programs and keeps the
# key.
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MS_LIB/lib-world.sh"
. "$MS_TOP/tests/windows/wine-lib.sh"
world_up
# a prefix of its own: the install must start from nothing (in $T: wine_stop
# runs at exit before $T is removed)
WINEPREFIX=$T/wine
export WINEPREFIX
wine_start

version=$(sed -n 's/^VERSION *:= *//p' "$MS_TOP/Makefile")
msi=$MS_TOP/dist/mailshift-$version-x64.msi
[ -f "$msi" ] || bail_out "no $msi: run make windows"
CR=$(printf '\r')
W=$(winpath "$T")
pf=$WINEPREFIX/drive_c/Program\ Files/mailshift
exe='C:\Program Files\mailshift\mailshift.exe'

"$WINE" msiexec /i "$(winpath "$msi")" /qn >/dev/null 2>&1; rc=$?
is $rc 0 "msiexec /i /qn succeeds"
for f in mailshift.exe mailshift-audit.exe mailshift-migrate.exe mailshift-verify.exe \
	README.md samples/example1-job-add.ini; do
	ok_rc "$(test -f "$pf/$f"; echo $?)" "installed: C:\\Program Files\\mailshift\\$f"
done
is "$("$WINE" "$exe" --version 2>&1)" "mailshift $version" "the installed mailshift.exe runs"

# one job: the Linux build with the INI in clear, the installed one with
# the same INI sealed by --credentials
clear_mailbox bob
mkmsg "$T/m1" "Bob <bob@contoso.test>" "Run job PAYROLL_1 on 31"
mkmsg "$T/m2" "dave@onprem.test" "Lunch on Friday?"
for m in m1 m2; do deliver "$T/$m" "$WORLD_USER_BOB"; done
wait_mailbox_count bob 2
for side in linux win; do
	mkdir -p "$T/$side/msgin"
	if [ $side = win ]; then root="$W\\$side" s='\' ca=$(winpath "$WORLD_CA_FILE")
	else root="$T/$side" s=/ ca=$WORLD_CA_FILE; fi
	sed "s/\$/$CR/" >"$T/$side/job.ini" <<EOI
[General]
MSGINDirectory=$root${s}msgin
OpConUser=ocadm
OpConUserPassword=Canary-OpCon-7731
DeleteEmails=None
ExitCodeForNoMatchingEmails=5
[Mail]
User=$WORLD_USER_BOB
Password=$WORLD_PASS_BOB
Server=127.0.0.1
Port=$WORLD_IMAPS_PORT
EmailProtocol=IMAP
SecurityProtocol=TLS1_2
CAFile=$ca
[Configuration1]
SubjectLineMask=^Run job (\S+) on (\d+)$
Event=\$JOB:ADD,[[\$DATE]],PAYROLL,[[1]],OCADHOC
EOI
done
"$BIN/mailshift" -inifile:"$T/linux/job.ini" >/dev/null 2>"$T/err.l"; rl=$?
is $rl 0 "the Linux build runs the job"

ini="$W\\win\\job.ini"
env -u MAILSHIFT_HOME "$WINE" "$exe" --credentials "-inifile:$ini" \
	"-password:$WORLD_PASS_BOB" -opconpassword:Canary-OpCon-7731 >"$T/out.c" 2>"$T/err.c"; rc=$?
is $rc 0 "the installed mailshift.exe --credentials seals the INI"
[ $rc = 0 ] || sed 's/^/# /' "$T/err.c"
ok_rc "$(grep -q "$WORLD_PASS_BOB\|Canary-OpCon-7731" "$T/win/job.ini"; [ $? = 1 ]; echo $?)" \
	"no password left in clear in the INI"
key=$WINEPREFIX/drive_c/ProgramData/mailshift/machine.key
ok_rc "$(test -s "$key"; echo $?)" "the machine key is in %PROGRAMDATA%\\mailshift\\machine.key"
size=$(stat -c %s "$key" 2>/dev/null || echo 0)
ok_rc "$([ "$size" -gt 32 ]; echo $?)" "the key file holds a DPAPI blob ($size bytes), not the 32 key bytes"

env -u MAILSHIFT_HOME "$WINE" "$exe" "-inifile:$ini" >/dev/null 2>"$T/err.w"; rw=$?
is $rw 0 "the installed mailshift.exe runs the sealed INI"
[ $rw = 0 ] || sed 's/^/# /' "$T/err.w"
is "$(cd "$T/win/msgin" && ls -A)" "$(cd "$T/linux/msgin" && ls -A)" "the same event file names as the Linux build"
same=0
for f in $(cd "$T/linux/msgin" && ls -A); do cmp -s "$T/linux/msgin/$f" "$T/win/msgin/$f" || same=1; done
ok_rc $same "the same event bytes as the Linux build (sealed INI, same passwords)"
is "$(ls "$T/win/msgin" | wc -l)" 1 "one event"
# a key file that is not a DPAPI blob of this machine: refused, clearly
cp "$key" "$T/key.bak"
head -c 32 /dev/urandom >"$T/bad.key"
cp "$T/bad.key" "$key"
env -u MAILSHIFT_HOME "$WINE" "$exe" "-inifile:$ini" >/dev/null 2>"$T/err.k"; rk=$?
isnt_zero=$([ $rk != 0 ]; echo $?)
ok_rc $isnt_zero "a key file that DPAPI cannot unprotect: the run fails (rc=$rk)"
ok_rc "$(grep -q 'machine.key.*damaged or was made on another machine' "$T/err.k"; echo $?)" \
	"... and says the key is damaged or from another machine"
[ $isnt_zero = 0 ] || sed 's/^/# /' "$T/err.k"
cp "$T/key.bak" "$key"

"$WINE" msiexec /x "$(winpath "$msi")" /qn >/dev/null 2>&1; rc=$?
is $rc 0 "msiexec /x /qn succeeds"
ok_rc "$(test ! -e "$pf/mailshift.exe"; echo $?)" "uninstalled: mailshift.exe is gone"
ok_rc "$(test -s "$key"; echo $?)" "uninstalled: the machine key stays"

done_testing
