#!/bin/bash
# A run has a deadline, and a server that drips bytes cannot hold it:
#  - [General] RunTimeout stops a run cleanly (exit 2, the stage named)
#    against a POP3 server that answers one byte a second;
#  - an IMAP server that sends less than 10 bytes a second is given up on
#    after 60 s of waiting, whatever the per-read timeout;
#  - while it runs, the connector cannot dump core (a core would hold the
#    mailbox and OpCon passwords in clear).
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MS_LIB/lib-world.sh"
world_up

printf 'From: erp@contoso.test\r\nSubject: Job ALPHA\r\nMessage-ID: <a@test>\r\n\r\nbody\r\n' >"$T/a.eml"
ini() {	# ini FILE MSGIN PROTO PORT [RunTimeout]
	cat >"$1" <<EOI
[General]
MSGINDirectory=$2
OpConUser=ocadm
OpConUserPassword=Canary-OpCon-Pw
UseLastRunDate=False
DownloadEmails=False
${5:+RunTimeout=$5}
[Mail]
User=u@contoso.test
Password=Canary-Mail-Pw
Server=127.0.0.1
Port=$4
EmailProtocol=$3
SecurityProtocol=NONE
[Configuration1]
SubjectLineMask=^Job (\w+)$
Event=\$CONSOLE:DISPLAY,[[1]]
EOI
}

# ---- RunTimeout against a POP3 server that drips its UIDL answer -------------
cat >"$T/drip.json" <<EOJ
{"protocol": "pop3", "messages": {"A": {"uidl": "u1", "file": "$T/a.eml"}},
 "sessions": [["A"]], "drip": {"after": "UIDL", "every": 1.0}}
EOJ
start_scripted "$T/drip.json"
# run as nobody in a folder of its own, so that /proc shows whether the
# process may dump core (a non-dumpable process's /proc files are root's)
P="$T/pub"
mkdir -p "$P/msgin"
ini "$P/d.ini" "$P/msgin" POP "$sport" 10
chmod 0755 "$T"
start=$(date +%s)
if [ -z "${MAILSHIFT_VALGRIND:-}" ]; then
	# a copy nobody can reach, wherever the build is
	cp "$BIN/mailshift" "$P/mailshift"
	chown -R nobody:nogroup "$P"
	setpriv --reuid=nobody --regid=nogroup --clear-groups \
		"$P/mailshift" -inifile:"$P/d.ini" >"$T/d.out" 2>&1 &
else
	"$BIN/mailshift" -inifile:"$P/d.ini" >"$T/d.out" 2>&1 &
fi
cpid=$!
sleep 3
owner=$(stat -c %u "/proc/$cpid/environ" 2>/dev/null)
procuser=$(stat -c %u "/proc/$cpid" 2>/dev/null)
core=$(awk '/Max core file size/ {print $5}' "/proc/$cpid/limits" 2>/dev/null)
wait $cpid; rc=$?
took=$(( $(date +%s) - start ))
sed 's/^/# /' "$T/d.out"
if [ -z "${MAILSHIFT_VALGRIND:-}" ]; then
	is "$procuser:$owner" "$(id -u nobody):0" "the connector runs as nobody and is not dumpable (its /proc files are root's)"
	is "$core" 0 "and its core size limit is 0"
else
	skip "under valgrind: the process in /proc is valgrind's"
	skip "under valgrind: the process in /proc is valgrind's"
fi
is $rc 2 "a dripping server: the run stops with exit 2"
ok_rc "$([ "$took" -ge 9 ] && [ "$took" -le 25 ]; echo $?)" "at RunTimeout=10 s (took ${took} s)"
ok_rc "$(grep -q 'while listing the folder' "$T/d.out" && grep -q 'RunTimeout' "$T/d.out"; echo $?)" \
	"the error names the stage and RunTimeout"
is "$(ls "$P/msgin" | wc -l)" 0 "nothing half-done in MSGIN"
ok_rc "$(grep -q 'Canary' "$T/d.out"; test $? = 1; echo $?)" "no password in the output"
stop_scripted

# ---- the minimum rate over IMAP (our own reader) --------------------------------
cat >"$T/slow.json" <<EOJ
{"protocol": "imap", "messages": {"A": {"uid": 7, "file": "$T/a.eml"}},
 "sessions": [["A"]], "drip": {"after": "UID FETCH", "every": 7.0}}
EOJ
start_scripted "$T/slow.json"
mkdir -p "$T/m2"
ini "$T/s.ini" "$T/m2" IMAP "$sport"
start=$(date +%s)
"$BIN/mailshift" -inifile:"$T/s.ini" -v >"$T/s.out" 2>&1; rc=$?
took=$(( $(date +%s) - start ))
sed 's/^/# /' "$T/s.out"
# the slow session is abandoned; the backend then logs in once more and
# repeats the command, which this server may answer at full speed (exit 0)
# or not yet (exit 2): either way the drip did not hold the run
ok_rc "$([ $rc = 0 ] || [ $rc = 2 ]; echo $?)" "an IMAP server sending a byte every 7 s: exit 0 or 2 (got $rc)"
ok_rc "$([ "$took" -ge 55 ] && [ "$took" -le 150 ]; echo $?)" "given up after about 60 s of waiting (took ${took} s)"
ok_rc "$(grep -q 'less than 10 bytes a second' "$T/s.out"; echo $?)" "the run says why it gave up"
stop_scripted

done_testing
