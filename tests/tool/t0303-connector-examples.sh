#!/bin/bash
# The three example INI files of samples/ini, as written, pointed at the
# test world (only server, credentials and paths changed), give the events
# the reference describes: over IMAP and POP with basic auth, and over
# IMAP XOAUTH2, POP XOAUTH2 and Graph with a secret and a certificate.
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MS_LIB/lib-world.sh"
world_up

U=ops
PW=Example-OpCon-Pw
CR=$(printf '\r')

# point an example at the world: point SRC DST PROTO PORT
point() {
	sed -e "s#^\(MSGINDirectory *= *\).*#\1$T/msgin-$(basename "$2")#" \
	    -e "s#^\(DownloadFolder *= *\).*#\1$T/dl-$(basename "$2")#" \
	    -e "s#^\(Audit\(Accept\|Reject\)LogFile *= *\).*#\1$T/\2.log#" \
	    -e "s#^\(OpConEventLogFile *= *\).*#\1$T/events.log#" \
	    -e "s#^\(OpConUserPassword *= *\).*#\1$PW#" \
	    -e "s#^\(User *= *\).*#\1$WORLD_USER_OPS#" \
	    -e "s#^\(Password *= *\).*#\1$WORLD_PASS_OPS#" \
	    -e "s#^\(Server *= *\).*#\1127.0.0.1#" \
	    -e "s#^\(Port *= *\).*#\1$4#" \
	    -e "s#^\(EmailProtocol *= *\).*#\1$3#" \
	    -e "s#^\(SelfSignedCertificate *= *\).*#\1False\nCAFile=$WORLD_CA_FILE#" \
	    "$1" >"$2"
	mkdir -p "$T/msgin-$(basename "$2")"
}
events() { cat "$T/msgin-$(basename "$1")"/* 2>/dev/null | tr -d '\r' | sort; }
oauth() {	# oauth FILE CREDENTIAL-LINE [CLIENT]: add AuthMethod and [OAuth]
	sed -i "s#^\(EmailProtocol *= *.*\)#\1\nAuthMethod=OAuth2#" "$1"
	printf '\r\n[OAuth]\r\nAuthority=%s\r\nTenantId=%s\r\nClientId=%s\r\n%s\r\nGraphEndpoint=%s\r\nCAFile=%s\r\n' \
		"$WORLD_TOKEN_URL" "$WORLD_TENANT" "${3:-$WORLD_APP_ID}" "$2" "$WORLD_GRAPH_URL" \
		"$WORLD_CA_FILE" >>"$1"
}

# ---- example 1: "Run job <NAME>" from allowed senders adds the job --------
ex1() {	# ex1 NAME PROTO PORT [oauth credential line] [client]
	clear_mailbox $U
	mkmsg "$T/e1a" "Ops <ops@example.com>" "Run job PAYROLL"
	mkmsg "$T/e1b" "intruder@example.com" "Run job EVIL"
	mkmsg "$T/e1c" "scheduler@example.com" "Run job TWO WORDS"
	for m in e1a e1b e1c; do deliver "$T/$m" $WORLD_USER_OPS; done
	wait_mailbox_count $U 3
	point samples/ini/example1-job-add.ini "$T/$1.ini" "$2" "$3"
	[ -n "${4:-}" ] && oauth "$T/$1.ini" "$4" "${5:-}"
	"$BIN/mailshift" -inifile:"$T/$1.ini" >"$T/$1.out" 2>&1; rc=$?
	is $rc 0 "example 1 over $1: exit 0"
	is "$(events "$1.ini")" "\$JOB:ADD,[[\$DATE]],SCHED,PAYROLL,OCADHOC,ocadm,$PW" \
		"example 1 over $1: exactly the job event, credentials appended"
	is "$(mailbox_count $U)" 2 "example 1 over $1: the matched mail deleted, the two others kept"
}
ex1 imap-basic IMAP "$WORLD_IMAPS_PORT"
ok_rc "$(grep -q '^LastRunDate=[0-9]' "$T/imap-basic.ini" && ! grep -q '3/14/2024' "$T/imap-basic.ini"; echo $?)" \
	"example 1: LastRunDate written back"
ex1 pop-basic POP "$WORLD_POP3S_PORT"
cat "$WORLD_CERT_APP_KEY" "$WORLD_CERT_APP_CERT" >"$T/cert.pem"; chmod 600 "$T/cert.pem"
ex1 imap-xoauth2-secret IMAP "$WORLD_IMAPS_PORT" "ClientSecret=$WORLD_APP_SECRET"
ex1 pop-xoauth2-secret POP "$WORLD_POP3S_PORT" "ClientSecret=$WORLD_APP_SECRET"
ex1 graph-secret GRAPH 443 "ClientSecret=$WORLD_APP_SECRET"
ex1 imap-xoauth2-cert IMAP "$WORLD_IMAPS_PORT" "CertificateFile=$T/cert.pem" "$WORLD_CERT_APP_ID"
ex1 pop-xoauth2-cert POP "$WORLD_POP3S_PORT" "CertificateFile=$T/cert.pem" "$WORLD_CERT_APP_ID"
ex1 graph-cert GRAPH 443 "CertificateFile=$T/cert.pem" "$WORLD_CERT_APP_ID"

# ---- example 2: qualifying subject, then body lines raise the events -------
clear_mailbox $U
printf 'From: reports@bank.example\r\nSubject: Daily close status 2026-11-27\r\nDate: %s\r\n\r\nACCOUNT 1001 CLOSED\r\nACCOUNT 1002 OPEN\r\nACCOUNT 1003 CLOSED\r\n' \
	"$(date -R)" >"$T/e2a"
printf 'From: stranger@else.example\r\nSubject: Daily close status\r\nDate: %s\r\n\r\nACCOUNT 666 CLOSED\r\n' \
	"$(date -R)" >"$T/e2b"
deliver "$T/e2a" $WORLD_USER_OPS; deliver "$T/e2b" $WORLD_USER_OPS
wait_mailbox_count $U 2
# the example allows 06:00-21:00 only; the test may run at any hour, so the
# window is widened (time frames have their own unit tests)
point samples/ini/example2-body.ini "$T/ex2.ini" POP "$WORLD_POP3S_PORT"
sed -i 's/^AllowedTimeFrame = .*/AllowedTimeFrame = 0000-2400\r/' "$T/ex2.ini"
"$BIN/mailshift" -inifile:"$T/ex2.ini" >"$T/ex2.out" 2>&1; rc=$?
is $rc 0 "example 2 over POP: exit 0"
is "$(events ex2.ini | tr '\n' '|')" \
	"\$CONSOLE:DISPLAY,account 1001 closed,finbatch,$PW|\$CONSOLE:DISPLAY,account 1003 closed,finbatch,$PW|\$PROPERTY:SET,FIN_CLOSED_1001,TRUE,finbatch,$PW|\$PROPERTY:SET,FIN_CLOSED_1003,TRUE,finbatch,$PW|" \
	"example 2: one pair of events per CLOSED body line, none for the qualifier"
is "$(mailbox_count $U)" 2 "example 2: DeleteEmails=None keeps both messages"
ok_rc "$(grep -q 'stranger@else.example Daily close status.*You are not\|stranger@else.example Daily close status Invalid Sender' "$T/Reject.log"; echo $?)" \
	"example 2: the stranger is in the reject log in LogRejectFormat"
ok_rc "$(ls "$T/dl-ex2.ini" | grep -q '\.eml$'; echo $?)" "example 2: the matched message downloaded"

# ---- example 3: invoices with attachments, tokens, notify mails ------------
clear_mailbox $U; clear_mailbox bob
point samples/ini/example3-attachments.ini "$T/ex3.ini" IMAP "$WORLD_IMAPS_PORT"
sed -i -e "s/^VENDORS=.*/VENDORS=billing@acme.example;$WORLD_USER_BOB\r/" \
	-e 's/^AllowedTimeFrame=.*/AllowedTimeFrame=0000-2400\r/' "$T/ex3.ini"
printf '\r\n[Notify]\r\nServer=127.0.0.1\r\nPort=%s\r\nTLS=StartTLS\r\nUser=%s\r\nPassword=%s\r\nFrom=%s\r\nCAFile=%s\r\n' \
	"$WORLD_SUBMISSION_PORT" "$WORLD_USER_OPS" "$WORLD_PASS_OPS" "$WORLD_USER_OPS" "$WORLD_CA_FILE" >>"$T/ex3.ini"
sed -i "s#^\(CAFile=.*\)#\1#" "$T/ex3.ini"
cat >"$T/e3a" <<EOM
From: Bob <$WORLD_USER_BOB>
Subject: Invoice 4711
Date: $(date -R)
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="B"

--B
Content-Type: text/plain

invoice attached
--B
Content-Type: application/pdf; name="INV-4711.pdf"
Content-Disposition: attachment; filename="INV-4711.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--B--
EOM
printf 'From: %s\r\nSubject: Invoice 4712\r\nDate: %s\r\n\r\nforgot the file\r\n' "$WORLD_USER_BOB" "$(date -R)" >"$T/e3b"
deliver "$T/e3a" $WORLD_USER_OPS; deliver "$T/e3b" $WORLD_USER_OPS
wait_mailbox_count $U 2
"$BIN/mailshift" -inifile:"$T/ex3.ini" >"$T/ex3.out" 2>&1; rc=$?
is $rc 0 "example 3 over IMAP: exit 0"
is "$(events ex3.ini | tr '\n' '|')" \
	"\$CONSOLE:DISPLAY,invoice mail rejected from $WORLD_USER_BOB: No PDF invoice attached,apbatch,$PW|\$JOB:ADD,[[\$DATE]],AP-DAILY,AP-IMPORT,OCADHOC,apbatch,$PW|\$PROPERTY:SET,AP_LAST_INVOICE,4711,apbatch,$PW|" \
	"example 3: import job and property from tokens, RejectEvent with the configured reason"
is "$(mailbox_count $U)" 0 "example 3: DeleteEmails=All removes both"
ok_rc "$(ls "$T/dl-ex3.ini" | grep -q '^INV-4711.pdf$'; echo $?)" "example 3: the invoice PDF saved"
ok_rc "$(grep -q "AP_LAST_INVOICE,4711,apbatch,\*\*\*" "$T/events.log" && ! grep -q "$PW" "$T/events.log"; echo $?)" \
	"example 3: OpCon event log written, password redacted"
wait_mailbox_count bob 2
subjects=$(grep -h '^Subject:' $(find "$(maildir bob)" -type f) 2>/dev/null | tr -d '\r' | sort | tr '\n' '|')
is "$subjects" "Subject: Invoice received: Invoice 4711|Subject: Invoice refused: Invoice 4712|" \
	"example 3: accept and reject notices arrived through Postfix"
"$BIN/mailshift" -inifile:"$T/ex3.ini" >"$T/ex3b.out" 2>&1; rc=$?
is $rc 7 "example 3: an empty mailbox exits with ExitCodeForNoMatchingEmails=7"

done_testing
