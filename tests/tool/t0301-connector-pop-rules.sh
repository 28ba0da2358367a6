#!/bin/bash
# The connector over POP3 (implicit TLS and STARTTLS), with the rules that
# need whole messages: ProcessBody with a QualifyingSubjectLine,
# attachments, AllowedSenders, RejectEvent and downloads with safe names.
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MS_LIB/lib-world.sh"
world_up

U=carol; D=fabrikam.test
clear_mailbox $U $D
mkdir -p "$T/msgin" "$T/dl"

cat >"$T/p.ini" <<EOI
[General]
MSGINDirectory=$T/msgin
OpConUser=ocadm
OpConUserPassword=pw
UseLastRunDate=False
DeleteEmails=All
DownloadEmails=True
DownloadFolder=$T/dl
[Mail]
User=$WORLD_USER_CAROL
Password=$WORLD_PASS_CAROL
Server=127.0.0.1
Port=$WORLD_POP3S_PORT
EmailProtocol=POP
SecurityProtocol=TLS1_2
SelfSignedCertificate=False
CAFile=$WORLD_CA_FILE
[Audit]
RejectEvent=\$CONSOLE:DISPLAY,rejected [[SENDER]]: [[REASON]]
[Tokens]
FINANCE=fin1@contoso.test;fin2@contoso.test
[Configuration1]
AllowedSenders=[[FINANCE]]
QualifyingSubjectLine=^Daily batch
ProcessBody=YES
SubjectLineMask=^START (\w+)
Event=\$JOB:ADD,[[\$DATE]],BATCH,[[1]],OCADHOC
[Configuration2]
AllowedSenders=any@fabrikam.test
SubjectLineMask=^Invoice (\d+)
AttachmentMask=\.pdf$
ProcessAttachments=True
Event=\$PROPERTY:SET,INVOICE,[[1]]
EOI

# body rule: the qualifier raises nothing, each matching body line does
printf 'From: fin1@contoso.test\r\nSubject: Daily batch 28\r\nDate: %s\r\n\r\nSTART LOADGL\r\nnothing here\r\nSTART POSTAP\r\n' \
	"$(date -R)" >"$T/b1"
# same body from a sender not in the token's list
printf 'From: intruder@contoso.test\r\nSubject: Daily batch 28\r\nDate: %s\r\n\r\nSTART EVIL\r\n' \
	"$(date -R)" >"$T/b2"
# attachment rule, with a hostile file name
cat >"$T/a1" <<EOA
From: billing@fabrikam.test
Subject: Invoice 4711
Date: $(date -R)
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="XX"

--XX
Content-Type: text/plain

see attached
--XX
Content-Type: application/pdf
Content-Disposition: attachment; filename*=UTF-8''..%2F..%2Fetc%2Finvoice%204711.pdf
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--XX--
EOA
# attachment rule, attachment missing
printf 'From: billing@fabrikam.test\r\nSubject: Invoice 4712\r\nDate: %s\r\n\r\nno file\r\n' "$(date -R)" >"$T/a2"
for m in b1 b2 a1 a2; do deliver "$T/$m" $WORLD_USER_CAROL; done
wait_mailbox_count $U@$D 4

"$BIN/mailshift" -inifile:"$T/p.ini" >"$T/out" 2>"$T/err"; rc=$?
is $rc 0 "POP3 over implicit TLS: exit 0"
cat "$T"/msgin/* >"$T/all"
is "$(grep -c 'BATCH,LOADGL,' "$T/all")" 1 "first matching body line raised its event"
is "$(grep -c 'BATCH,POSTAP,' "$T/all")" 1 "second matching body line raised its event"
is "$(grep -c 'EVIL' "$T/all")" 0 "a sender outside the token's list raises nothing"
ok_rc "$(grep -q '^\$CONSOLE:DISPLAY,rejected intruder@contoso.test: Invalid Sender,ocadm,pw' "$T/all"; echo $?)" \
	"RejectEvent written with the reason"
is "$(grep -c 'INVOICE,4711,' "$T/all")" 1 "attachment rule matched with the PDF"
ok_rc "$(grep -q '^\$CONSOLE:DISPLAY,rejected billing@fabrikam.test: No matching attachments found' "$T/all"; echo $?)" \
	"a missing attachment is a rejection with its reason"
is "$(mailbox_count $U $D)" 0 "DeleteEmails=All removed every message (POP DELE + QUIT)"
ok_rc "$(ls "$T/dl" | grep -q '\.eml$'; echo $?)" "matched messages downloaded as .eml"
ok_rc "$(ls "$T/dl" | grep -q '^_\?\.*_*etc_invoice 4711.pdf$\|invoice 4711.pdf$'; echo $?)" \
	"attachment saved under a safe name"
ok_rc "$(find "$T" -name 'invoice*' | grep -v "^$T/dl/" | grep -q .; [ $? = 1 ]; echo $?)" \
	"nothing written outside the download folder"

# rerun: POP keys (UIDL) keep it exactly once even though nothing is left
n_before=$(ls "$T/msgin" | wc -l)
"$BIN/mailshift" -inifile:"$T/p.ini" >/dev/null 2>&1
is "$(ls "$T/msgin" | wc -l)" "$n_before" "rerun writes nothing new"

# POP3 STARTTLS, messages kept (DeleteEmails=None), then seen once only
clear_mailbox $U $D
rm -f "$T"/msgin/*
printf 'From: billing@fabrikam.test\r\nSubject: Invoice 9\r\nDate: %s\r\n\r\nx\r\n' "$(date -R)" >"$T/k1"
deliver "$T/k1" $WORLD_USER_CAROL
wait_mailbox_count $U@$D 1
sed -e "s/^Port=.*/Port=$WORLD_POP3_PORT/" -e 's/^\[Mail\]/[Mail]\nStartTLS=True/' \
	-e 's/^DeleteEmails=.*/DeleteEmails=None/' "$T/p.ini" >"$T/s.ini"
"$BIN/mailshift" -inifile:"$T/s.ini" >/dev/null 2>"$T/err"; rc=$?
is $rc 0 "POP3 STARTTLS run: nothing matched, ExitCodeForNoMatchingEmails (0)"
"$BIN/mailshift" -inifile:"$T/s.ini" >/dev/null 2>"$T/err"
is "$(mailbox_count $U $D)" 1 "DeleteEmails=None keeps the message"
is "$(cat "$T"/msgin/* | grep -c 'No matching attachments')" 1 "a kept message is processed once across runs"

done_testing
