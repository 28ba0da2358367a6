#!/bin/bash
# The connector against the real Dovecot over IMAP: events, exactly once,
# deletion policy, rules, TLS verification, errors, dry run.
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MS_LIB/lib-world.sh"
world_up

U=bob
CR=$(printf '\r')
clear_mailbox $U
mkdir -p "$T/msgin"

write_ini() {	# write_ini FILE [extra lines for [General]] ; rules appended by caller
	cat >"$1" <<EOI
[General]
MSGINDirectory=$T/msgin
OpConUser=ocadm
OpConUserPassword=Canary-OpCon-7731
UseLastRunDate=False
DeleteEmails=${DELETE:-Match}
ExitCodeForNoMatchingEmails=5
[Mail]
User=$WORLD_USER_BOB
Password=$WORLD_PASS_BOB
Server=127.0.0.1
Port=$WORLD_IMAPS_PORT
EmailProtocol=IMAP
SecurityProtocol=TLS1_2
SelfSignedCertificate=False
CAFile=$WORLD_CA_FILE
[Audit]
LogRejects=True
AuditRejectLogFile=$T/rejects.log
LogAccepts=True
AuditAcceptLogFile=$T/accepts.log
[Configuration1]
SubjectLineMask=^Run job (\S+) on (\d+)$
Event=\$JOB:ADD,[[\$DATE]],PAYROLL,[[1]],OCADHOC
Event2=\$PROPERTY:SET,LASTRUN,[[2]]
EOI
}

# --- 1. two matching, one not -------------------------------------------------
mkmsg "$T/m1" "Bob <bob@contoso.test>" "Run job JOB_A on 42"
mkmsg "$T/m2" "carol@fabrikam.test" "Run job JOB_B on 7"
mkmsg "$T/m3" "dave@onprem.test" "Lunch on Friday?"
for m in m1 m2 m3; do deliver "$T/$m" $WORLD_USER_BOB; done
wait_mailbox_count $U 3
write_ini "$T/a.ini"
"$BIN/mailshift" -inifile:"$T/a.ini" >"$T/out" 2>"$T/err"; rc=$?
is $rc 0 "exit 0 when mail matched"
is "$(ls "$T/msgin" | wc -l)" 4 "four event files (two events for each of two messages)"
is "$(cat "$T"/msgin/* | grep -c "^\\\$JOB:ADD,\[\[\$DATE\]\],PAYROLL,JOB_[AB],OCADHOC,ocadm,Canary-OpCon-7731$CR\$")" 2 \
	"job events carry the capture and the OpCon credentials"
is "$(cat "$T"/msgin/* | grep -c "^\\\$PROPERTY:SET,LASTRUN,\\(42\\|7\\),ocadm,Canary-OpCon-7731$CR\$")" 2 \
	"second event of each rule with capture 2"
is "$(mailbox_count $U)" 1 "matched mail deleted, the unmatched one kept (DeleteEmails=Match)"
ok_rc "$(grep -q 'Lunch on Friday?.*No matching subjects found' "$T/rejects.log"; echo $?)" \
	"reject log names the reason"
is "$(grep -c accepted "$T/accepts.log")" 2 "accept log has both accepted messages"
ok_rc "$(grep -q Canary-OpCon-7731 "$T/out" "$T/err" "$T/rejects.log" "$T/accepts.log"; [ $? = 1 ]; echo $?)" \
	"the OpCon password appears in no output or log"
is "$(stat -c %a "$T/a.ini.state.db")" 600 "state database created 0600"
ok_rc "$(ls -A "$T/msgin" | grep -q '^\.'; [ $? = 1 ]; echo $?)" "no temporary file left in MSGIN"

# --- 2. rerun: nothing new, no duplicate ---------------------------------------
rm -f "$T"/msgin/*
"$BIN/mailshift" -inifile:"$T/a.ini" >"$T/out" 2>"$T/err"; rc=$?
is $rc 5 "rerun matches nothing new: ExitCodeForNoMatchingEmails"
is "$(ls "$T/msgin" | wc -l)" 0 "rerun writes no event twice"
is "$(grep -c 'Lunch' "$T/rejects.log")" 1 "an already rejected message is not rejected again"

# --- 3. hostile subject cannot add a field or a line ---------------------------
clear_mailbox $U
printf 'From: x@contoso.test\r\nSubject: Run job X,$CONSOLE:DISPLAY,pwned on 1\r\nDate: %s\r\n\r\nbody\r\n' \
	"$(date -R)" >"$T/h1"
deliver "$T/h1" $WORLD_USER_BOB
wait_mailbox_count $U 1
"$BIN/mailshift" -inifile:"$T/a.ini" >/dev/null 2>&1
f=$(grep -l JOB:ADD "$T"/msgin/* | head -n 1)
is "$(tr -cd ',' <"$f" | wc -c)" 6 "a comma from the subject adds no field"
is "$(wc -l <"$f")" 1 "one line in the event file"
ok_rc "$(grep -q 'X;\$CONSOLE:DISPLAY;pwned' "$f"; echo $?)" "the comma became ';'"
rm -f "$T"/msgin/*

# --- 4. --dry-run writes, deletes and records nothing ---------------------------
clear_mailbox $U
mkmsg "$T/d1" "bob@contoso.test" "Run job DRY on 1"
deliver "$T/d1" $WORLD_USER_BOB
wait_mailbox_count $U 1
cp "$T/a.ini" "$T/a.before"
"$BIN/mailshift" -inifile:"$T/a.ini" --dry-run >"$T/out" 2>&1; rc=$?
is $rc 0 "dry run exit 0 on a match"
ok_rc "$(grep -q 'would write .*DRY,OCADHOC,ocadm,\*\*\*' "$T/out"; echo $?)" "dry run shows the event, password redacted"
is "$(ls "$T/msgin" | wc -l)" 0 "dry run writes no event"
is "$(mailbox_count $U)" 1 "dry run deletes nothing"

# --- 5. crash between delivery and state: rerun neither loses nor duplicates ----
clear_mailbox $U
for i in 1 2 3 4; do mkmsg "$T/c$i" "bob@contoso.test" "Run job CRASH$i on $i"; deliver "$T/c$i" $WORLD_USER_BOB; done
wait_mailbox_count $U 4
MAILSHIFT_CRASH_AFTER=2 "$BIN/mailshift" -inifile:"$T/a.ini" >/dev/null 2>&1; rc=$?
is $rc 137 "the test hook killed the run after the second message's events"
# the four messages are delivered as one group: all their events are in
# MSGIN, the first message was finished (deleted), the second was not
is "$(ls "$T/msgin" | wc -l)" 8 "events of the group are on disk"
is "$(mailbox_count $U)" 3 "the message whose state was not recorded was not deleted"
"$BIN/mailshift" -inifile:"$T/a.ini" >/dev/null 2>&1; rc=$?
is $rc 0 "the rerun finishes the work"
is "$(ls "$T/msgin" | wc -l)" 8 "every message produced its events exactly once"
for i in 1 2 3 4; do
	is "$(cat "$T"/msgin/* | grep -c ",CRASH$i,")" 1 "CRASH$i submitted exactly once"
done
is "$(mailbox_count $U)" 0 "all four deleted after the rerun"
rm -f "$T"/msgin/*

# --- 6. LastRunDate written back without touching other bytes -------------------
cp "$T/a.ini" "$T/l.ini"
printf '; keep this comment\r\n' >>"$T/l.ini"
sed -i 's/^UseLastRunDate=False/UseLastRunDate=True\r/' "$T/l.ini"
cp "$T/l.ini" "$T/l.before"
"$BIN/mailshift" -inifile:"$T/l.ini" >/dev/null 2>&1
ok_rc "$(grep -q '^LastRunDate=[0-9]*/[0-9]*/20[0-9][0-9] [0-9]*:[0-9][0-9]:[0-9][0-9] [AP]M' "$T/l.ini"; echo $?)" \
	"LastRunDate written in the incumbent's format"
is "$(grep -v '^LastRunDate=' "$T/l.ini" | cmp - "$T/l.before" >/dev/null; echo $?)" 0 \
	"every other byte of the INI is unchanged"

# --- 7. TLS: an unknown CA is refused; SelfSignedCertificate=True is explicit ---
sed '/^CAFile=/d' "$T/a.ini" >"$T/noca.ini"
"$BIN/mailshift" -inifile:"$T/noca.ini" >"$T/out" 2>"$T/err"; rc=$?
is $rc 2 "unknown CA: exit 2"
ok_rc "$(grep -qi 'certificate' "$T/err"; echo $?)" "the error says it is the certificate"
sed -e '/^CAFile=/d' -e 's/^SelfSignedCertificate=False/SelfSignedCertificate=True/' "$T/a.ini" >"$T/ss.ini"
"$BIN/mailshift" -inifile:"$T/ss.ini" >"$T/out" 2>"$T/err"; rc=$?
is $rc 5 "SelfSignedCertificate=True connects without verification (nothing to match)"
ok_rc "$(grep -q 'not verified' "$T/err"; echo $?)" "and warns that the certificate is not verified"

# --- 8. wrong password: the server's reply, never the password -----------------
sed "s/^Password=.*/Password=Wrong-Canary-991/" "$T/a.ini" >"$T/bad.ini"
"$BIN/mailshift" -inifile:"$T/bad.ini" >"$T/out" 2>"$T/err"; rc=$?
is $rc 2 "wrong password: exit 2"
ok_rc "$(grep -qi 'auth' "$T/err"; echo $?)" "the error carries the server's refusal"
ok_rc "$(grep -q 'Wrong-Canary-991' "$T/out" "$T/err"; [ $? = 1 ]; echo $?)" "the password is not printed"

# --- 9. STARTTLS on the plain IMAP port -----------------------------------------
clear_mailbox $U
mkmsg "$T/s1" "bob@contoso.test" "Run job STARTTLS on 9"
deliver "$T/s1" $WORLD_USER_BOB
wait_mailbox_count $U 1
sed -e "s/^Port=.*/Port=$WORLD_IMAP_PORT/" -e 's/^\[Mail\]/[Mail]\nStartTLS=True/' "$T/a.ini" >"$T/st.ini"
"$BIN/mailshift" -inifile:"$T/st.ini" >/dev/null 2>"$T/err"; rc=$?
is $rc 0 "STARTTLS run matched"
is "$(cat "$T"/msgin/* 2>/dev/null | grep -c ',STARTTLS,')" 1 "STARTTLS event written"
rm -f "$T"/msgin/*

# --- 10. configuration errors name file, line and rule --------------------------
sed 's/^SubjectLineMask=.*/SubjectLineMask=^Run (job/' "$T/a.ini" >"$T/re.ini"
"$BIN/mailshift" -inifile:"$T/re.ini" >"$T/out" 2>"$T/err"; rc=$?
is $rc 2 "invalid regular expression: exit 2"
ok_rc "$(grep -q 'Configuration1.*SubjectLineMask.*regular expression' "$T/err"; echo $?)" \
	"the error names the rule and the key"
printf '[General]\nMSGINDirectory=/tmp\n[Mail\nServer=x\n' >"$T/broken.ini"
"$BIN/mailshift" -inifile:"$T/broken.ini" >"$T/out" 2>"$T/err"; rc=$?
is $rc 2 "malformed INI: exit 2"
ok_rc "$(grep -q "broken.ini:3" "$T/err"; echo $?)" "the error names file and line"
"$BIN/mailshift" --bogus >"$T/out" 2>"$T/err"; rc=$?
is $rc 1 "unknown option: exit 1 (command-line error)"

# --- 11. command-line overrides: -server: -port: --imap -------------------------
clear_mailbox $U
mkmsg "$T/o1" "bob@contoso.test" "Run job OVERRIDE on 3"
deliver "$T/o1" $WORLD_USER_BOB
wait_mailbox_count $U 1
sed -e 's/^Server=.*/Server=192.0.2.1/' -e 's/^Port=.*/Port=1/' -e 's/^EmailProtocol=.*/EmailProtocol=POP/' \
	"$T/a.ini" >"$T/ov.ini"
"$BIN/mailshift" -inifile:"$T/ov.ini" -SERVER:127.0.0.1 "-port:$WORLD_IMAPS_PORT" --IMAP >/dev/null 2>"$T/err"; rc=$?
is $rc 0 "options (any case) override server, port and protocol"
is "$(cat "$T"/msgin/* 2>/dev/null | grep -c ',OVERRIDE,')" 1 "override run wrote its event"

# --- 12. a state database written before fingerprints -----------------------
# Its rows are compared by Message-ID: a known message stays done (with its
# headers parsed, as a fingerprinted row needs not), and a row whose
# Message-ID is another message's is not taken for this one.
clear_mailbox $U
rm -f "$T"/msgin/*
mkmsg "$T/f1" "bob@contoso.test" "Run job OLDDB_A on 1"
mkmsg "$T/f2" "bob@contoso.test" "Run job OLDDB_B on 2"
for m in f1 f2; do deliver "$T/$m" $WORLD_USER_BOB; done
wait_mailbox_count $U 2
DELETE=None write_ini "$T/old.ini"
"$BIN/mailshift" -inifile:"$T/old.ini" >/dev/null 2>"$T/err"; rc=$?
is "$rc/$(ls "$T/msgin" | wc -l)" "0/4" "two messages, four events"
ok_rc "$(sqlite3 "$T/old.ini.state.db" "UPDATE messages SET fingerprint=NULL;
	SELECT count(*) FROM messages WHERE fingerprint IS NULL" | grep -qx 2; echo $?)" \
	"the rows' fingerprints erased, as a database of the first schema has none"
"$BIN/mailshift" -inifile:"$T/old.ini" -v >"$T/out" 2>"$T/err"; rc=$?
is "$(ls "$T/msgin" | wc -l)" 4 "rows without fingerprints: the same messages, no event again"
ok_rc "$(sqlite3 "$T/old.ini.state.db" "UPDATE messages SET message_id='<someone-else@x>'
	WHERE key=(SELECT min(key) FROM messages); SELECT changes()" | grep -qx 1; echo $?)" \
	"one row made to name another Message-ID"
"$BIN/mailshift" -inifile:"$T/old.ini" >"$T/out" 2>"$T/err"; rc=$?
is "$(ls "$T/msgin" | wc -l)" 6 "a row naming another Message-ID: that message is new again"
ok_rc "$(grep -q 'now names another message' "$T/err"; echo $?)" "and the run says why"

# --- 13. a run that finds another at work stops before it logs in -----------
# The state database is opened while the login waits on the server; its lock
# is taken first, so a second run of a busy INI never reaches the server.
write_ini "$T/busy.ini"
python3 -c '
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(5); s.settimeout(30)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
while True:
    try:
        c, _ = s.accept()
    except OSError:
        break
    open(sys.argv[2], "a").write("connected\n"); c.close()' "$T/busy.port" "$T/busy.seen" &
listener=$!
i=0; while [ ! -s "$T/busy.port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
sed "s/^Port=.*/Port=$(cat "$T/busy.port")/" "$T/busy.ini" >"$T/busy.tmp" && mv "$T/busy.tmp" "$T/busy.ini"
flock "$T/busy.ini.state.db.lock" sleep 30 &
holder=$!
i=0; while flock -n "$T/busy.ini.state.db.lock" true && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
"$BIN/mailshift" -inifile:"$T/busy.ini" >/dev/null 2>"$T/err"; rc=$?
kill $holder 2>/dev/null; wait $holder 2>/dev/null
is $rc 2 "a run whose state database another run holds: exit 2"
ok_rc "$(grep -q 'in use by another run' "$T/err"; echo $?)" "... saying so"
is "$(cat "$T/busy.seen" 2>/dev/null | wc -l)" 0 "... before it connected to the server"
python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1]))).close()' \
	"$(cat "$T/busy.port")"
i=0; while [ ! -s "$T/busy.seen" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
is "$(cat "$T/busy.seen" 2>/dev/null | wc -l)" 1 "(the stand-in server does count connections)"
kill $listener 2>/dev/null; wait $listener 2>/dev/null

done_testing
