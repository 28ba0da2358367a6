#!/bin/bash
# Cutover day (issue 14): INI files written the way the incumbent's users
# write them.  TLS chosen by port when SecurityProtocol is empty; a broken
# [ConfigurationN] is reported with file and line, skipped, and the run
# exits 2 after the good rules did their work; no literal [[...]] reaches
# MSGIN; attachment captures; unknown keys and unusable notify settings
# are warned about.
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MS_LIB/lib-world.sh"
world_up

U=bob
CR=$(printf '\r')
clear_mailbox $U
mkdir -p "$T/msgin"

write_ini() {	# write_ini FILE PORT ; rules appended by the caller
	sp=""
	# the world's implicit-TLS port is not 993: say so
	[ "$2" = "$WORLD_IMAPS_PORT" ] && sp="SecurityProtocol=TLS1_2"
	cat >"$1" <<EOI
[General]
MSGINDirectory=$T/msgin
OpConUser=ocadm
OpConUserPassword=pw
UseLastRunDate=False
DeleteEmails=Match
[Mail]
User=$WORLD_USER_BOB
Password=$WORLD_PASS_BOB
Server=127.0.0.1
Port=$2
EmailProtocol=IMAP
$sp
SelfSignedCertificate=False
CAFile=$WORLD_CA_FILE
EOI
}

# --- 1. no SecurityProtocol on Dovecot's STARTTLS port: STARTTLS -------------
mkmsg "$T/s1" "bob@contoso.test" "Cutover STARTTLS 1"
deliver "$T/s1" $WORLD_USER_BOB
wait_mailbox_count $U 1
write_ini "$T/st.ini" "$WORLD_IMAP_PORT"
cat >>"$T/st.ini" <<'EOI'
[Configuration1]
SubjectLineMask=^Cutover STARTTLS (\d+)$
Event=$CONSOLE:DISPLAY,starttls [[1]]
EOI
"$BIN/mailshift" -inifile:"$T/st.ini" -vv >"$T/out" 2>"$T/err"; rc=$?
is $rc 0 "no SecurityProtocol, STARTTLS port: exit 0"
is "$(cat "$T"/msgin/* 2>/dev/null | grep -c '^\$CONSOLE:DISPLAY,starttls 1,')" 1 \
	"the event was written"
ok_rc "$(grep -qi 'STARTTLS' "$T/err"; echo $?)" "the session was upgraded with STARTTLS"
ok_rc "$(grep -q "$WORLD_PASS_BOB" "$T/out" "$T/err"; [ $? = 1 ]; echo $?)" \
	"the password appears nowhere"
rm -f "$T"/msgin/*

# --- 2. one broken rule never stops the mailbox ---------------------------------
clear_mailbox $U
mkmsg "$T/b1" "bob@contoso.test" "Cutover batch 1"
mkmsg "$T/b2" "bob@contoso.test" "Cutover batch 2"
for m in b1 b2; do deliver "$T/$m" $WORLD_USER_BOB; done
wait_mailbox_count $U 2
write_ini "$T/bad.ini" "$WORLD_IMAPS_PORT"
cat >>"$T/bad.ini" <<'EOI'
[Audit]
RejectEvent=$CONSOLE:DISPLAY,rejected [[SUBJECT]] [[EVENT]]
[Configuration1]
SubjectLineMask=^Cutover batch (\d+)$
Event=CONSOLE:DISPLAY,no dollar [[1]]
[Configuration2]
SubjectLineMask=^Cutover batch (\d+)$
Event=$CONSOLE:DISPLAY,good batch [[1]]
Event2=$PROPERTY:SET,BATCH,[[1]]
[Configuration3]
SubjectLineMask=^Cutover (batch) \d+$
Event=$CONSOLE:DISPLAY,[[2]] [[NOSUCH]]
[Configuration4]
SubjectLineMask=^Cutover
AllowedTimeFrame=0800-2460
Event=$CONSOLE:DISPLAY,x
EOI
line1=$(grep -n '^\[Configuration1\]' "$T/bad.ini" | cut -d: -f1)
line3=$(grep -n '^\[Configuration3\]' "$T/bad.ini" | cut -d: -f1)
"$BIN/mailshift" -inifile:"$T/bad.ini" >"$T/out" 2>"$T/err"; rc=$?
is $rc 2 "broken configurations: exit 2 at the end"
is "$(cat "$T"/msgin/* 2>/dev/null | grep -c '^\$CONSOLE:DISPLAY,good batch [12],')" 2 \
	"the good rule raised its events for both messages"
is "$(cat "$T"/msgin/* 2>/dev/null | grep -c '^\$PROPERTY:SET,BATCH,[12],')" 2 \
	"and its Event2"
is "$(cat "$T"/msgin/* 2>/dev/null | grep -c '\[\[')" 0 "no literal [[...]] in MSGIN"
is "$(ls "$T/msgin" | wc -l)" 4 "nothing else written"
is "$(mailbox_count $U)" 0 "both messages processed and deleted"
ok_rc "$(grep -q "$T/bad.ini:$line1: \[Configuration1\] Event: 'CONSOLE:DISPLAY,no dollar \[\[1\]\]' is not an OpCon event.*(\[Configuration1\] skipped)" "$T/err"; echo $?)" \
	"Configuration1 reported with file, line and what is wrong"
ok_rc "$(grep -q "$T/bad.ini:$line3: \[Configuration3\] Event: \[\[2\]\] in .*the mask has only 1 group" "$T/err"; echo $?)" \
	"Configuration3: capture beyond the mask's groups"
ok_rc "$(grep -q "\[Configuration4\] AllowedTimeFrame: invalid value '0800-2460'" "$T/err"; echo $?)" \
	"Configuration4: time frame"
ok_rc "$(grep -q "RejectEvent: \[\[EVENT\]\] has no value" "$T/err"; echo $?)" \
	"RejectEvent with [[EVENT]] reported"
is "$(grep -c 'skipped)' "$T/err")" 3 "each broken configuration reported once"
# the next run: nothing new, still exit 2 (the job keeps showing the problem)
"$BIN/mailshift" -inifile:"$T/bad.ini" >"$T/out" 2>"$T/err"; rc=$?
is $rc 2 "the next run exits 2 again"
rm -f "$T"/msgin/*

# --- 3. every rule broken: a configuration error, nothing read ------------------
mkmsg "$T/b3" "bob@contoso.test" "Cutover batch 3"
deliver "$T/b3" $WORLD_USER_BOB
wait_mailbox_count $U 1
sed -e '/^\[Configuration2\]/,/^\[Configuration3\]/{/^Event/d}' \
	-e 's/^\[Configuration2\]/[Configuration2]\nEvent=$BAD/' "$T/bad.ini" >"$T/allbad.ini"
"$BIN/mailshift" -inifile:"$T/allbad.ini" >"$T/out" 2>"$T/err"; rc=$?
is $rc 2 "every configuration broken: exit 2"
ok_rc "$(grep -q 'every \[ConfigurationN\] is broken' "$T/err"; echo $?)" "the error says so"
is "$(mailbox_count $U)" 1 "the mailbox was left alone"
clear_mailbox $U

# --- 4. attachment captures ----------------------------------------------------
cat >"$T/att" <<EOA
From: bob@contoso.test
Subject: Cutover report
Date: $(date -R)
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="XX"

--XX
Content-Type: text/plain

see attached
--XX
Content-Type: text/csv
Content-Disposition: attachment; filename="report_20261205.csv"

a,b
--XX--
EOA
deliver "$T/att" $WORLD_USER_BOB
wait_mailbox_count $U 1
write_ini "$T/att.ini" "$WORLD_IMAPS_PORT"
cat >>"$T/att.ini" <<'EOI'
[Configuration1]
SubjectLineMask=^Cutover report$
ProcessAttachments=True
AttachmentMask=^report_(\d{8})\.csv$
Event=$JOB:ADD,[[$DATE]],REPORTS,LOAD_[[A1]],OCADHOC
Event2=$CONSOLE:DISPLAY,got [[ATTACHMENT]]
EOI
"$BIN/mailshift" -inifile:"$T/att.ini" >"$T/out" 2>"$T/err"; rc=$?
is $rc 0 "attachment rule: exit 0"
is "$(cat "$T"/msgin/* 2>/dev/null | grep -c '^\$JOB:ADD,\[\[\$DATE\]\],REPORTS,LOAD_20261205,OCADHOC,')" 1 \
	"[[A1]] is the AttachmentMask's group (the report date)"
is "$(cat "$T"/msgin/* 2>/dev/null | grep -c '^\$CONSOLE:DISPLAY,got report_20261205.csv,')" 1 \
	"[[ATTACHMENT]] is the matching attachment's name"
rm -f "$T"/msgin/*

# --- 4b. AllowedTimeFrame=[[TOKEN]] ---------------------------------------------
mkmsg "$T/w1" "bob@contoso.test" "Cutover window 1"
deliver "$T/w1" $WORLD_USER_BOB
wait_mailbox_count $U 1
write_ini "$T/tf.ini" "$WORLD_IMAPS_PORT"
cat >>"$T/tf.ini" <<'EOI'
[Tokens]
ALLDAY=0000-2400
NEVER=25:00-26:00
[Configuration1]
SubjectLineMask=^Cutover window (\d+)$
AllowedTimeFrame=[[ALLDAY]]
Event=$CONSOLE:DISPLAY,window [[1]]
[Configuration2]
SubjectLineMask=^Cutover window (\d+)$
AllowedTimeFrame=[[NEVER]]
Event=$CONSOLE:DISPLAY,never [[1]]
EOI
"$BIN/mailshift" -inifile:"$T/tf.ini" >"$T/out" 2>"$T/err"; rc=$?
is $rc 2 "a time frame token with a bad value: that rule skipped, exit 2"
is "$(cat "$T"/msgin/* 2>/dev/null | grep -c '^\$CONSOLE:DISPLAY,window 1,')" 1 \
	"AllowedTimeFrame=[[ALLDAY]] from [Tokens] works"
ok_rc "$(grep -q "\[Configuration2\] AllowedTimeFrame: malformed time frame '25:00-26:00'.*skipped" "$T/err"; echo $?)" \
	"the token's bad value is reported at load"
rm -f "$T"/msgin/*

# --- 5. unknown keys and notify settings that cannot send: warned every run ----
mkmsg "$T/k1" "bob@contoso.test" "Cutover typo 1"
deliver "$T/k1" $WORLD_USER_BOB
wait_mailbox_count $U 1
write_ini "$T/typo.ini" "$WORLD_IMAPS_PORT"
cat >>"$T/typo.ini" <<'EOI'
AuthMethd=Basic
Porrt=993
[Audit]
NotifyOnRejects=True
[Configuration1]
SubjectLineMask=^Cutover typo (\d+)$
Evnt=$CONSOLE:DISPLAY,typo [[1]]
Event=$CONSOLE:DISPLAY,typo [[1]]
EOI
tline=$(grep -n '^AuthMethd=' "$T/typo.ini" | cut -d: -f1)
"$BIN/mailshift" -inifile:"$T/typo.ini" >"$T/out" 2>"$T/err"; rc=$?
is $rc 0 "unknown keys are warnings: exit 0"
ok_rc "$(grep -q "^mailshift: warning: $T/typo.ini:$tline: \[Mail\] AuthMethd: unknown key, ignored (did you mean AuthMethod?)" "$T/err"; echo $?)" \
	"AuthMethd: file, line and the closest known key"
ok_rc "$(grep -q "\[Mail\] Porrt: unknown key, ignored (did you mean Port?)" "$T/err"; echo $?)" \
	"Porrt: did you mean Port"
ok_rc "$(grep -q "\[Configuration1\] Evnt: unknown key, ignored (did you mean Event?)" "$T/err"; echo $?)" \
	"Evnt: did you mean Event"
ok_rc "$(grep -q "NotifyOnRejects is set but there is no \[Notify\] section.*no notify mail will be sent" "$T/err"; echo $?)" \
	"NotifyOnRejects without [Notify]: warned"
is "$(cat "$T"/msgin/* 2>/dev/null | grep -c '^\$CONSOLE:DISPLAY,typo 1,')" 1 "the mail was processed"
rm -f "$T"/msgin/*
"$BIN/mailshift" -inifile:"$T/typo.ini" >"$T/out" 2>"$T/err"; rc=$?
ok_rc "$(grep -q 'AuthMethd' "$T/err" && grep -q 'NotifyOnRejects' "$T/err"; echo $?)" \
	"warned again on the next run"

done_testing
