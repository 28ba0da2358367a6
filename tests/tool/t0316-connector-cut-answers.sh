#!/bin/bash
# A POP3 server that closes the connection in the middle of a multi-line
# answer (a kicked Dovecot, a restarted proxy): libcurl ends such a
# transfer without an error, so the connector must notice the cut itself.
# Taken for whole, a header block cut before its Subject does not match
# and DeleteEmails=All deletes it without its event; a cut LIST records
# a wrong size under a key, and the next run takes the message for
# another one.  Each answer below is cut once, in the first session.
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MS_LIB/lib-world.sh"

msg() {	# msg FILE SUBJECT
	printf 'From: erp@contoso.test\r\nTo: ops@contoso.test\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s@test>\r\n\r\nbody of %s\r\n%s\r\n' \
		"$2" "$(date -R)" "$(openssl rand -hex 8)" "$2" "$(head -c 3000 /dev/zero | tr '\0' 'x')" >"$1"
}
pop_ini() {	# pop_ini FILE MSGIN PORT DELETE DOWNLOAD
	cat >"$1" <<EOI
[General]
MSGINDirectory=$2
OpConUser=ocadm
OpConUserPassword=pw
UseLastRunDate=False
DeleteEmails=$4
DownloadEmails=$5
DownloadFolder=$2.dl
[Mail]
User=u@contoso.test
Password=Scripted-Pw-1
Server=127.0.0.1
Port=$3
EmailProtocol=POP
SecurityProtocol=NONE
[Configuration1]
SubjectLineMask=^Job (\w+)$
Event=\$JOB:ADD,[[\$DATE]],SCHED,[[1]],OCADHOC
EOI
}
events_for() { cat "$1"/* 2>/dev/null | grep -c "SCHED,$2,"; }

msg "$T/a.eml" "Job ALPHA"
msg "$T/b.eml" "Job BRAVO"
msg "$T/c.eml" "Job CHARLIE"

# cut VERB BYTES DELETE DOWNLOAD [PROTOCOL]: one scenario, two runs
cut() {
	local verb=$1 bytes=$2 name="${5:-pop3} $1 cut after $2 bytes" d=$T/${5:-pop3}-${1// /_}-$2
	mkdir -p "$d/msgin" "$d/msgin.dl"
	cat >"$d/scn.json" <<EOJ
{"protocol": "${5:-pop3}",
 "messages": {"A": {"uidl": "ua", "uid": 1, "file": "$T/a.eml"},
              "B": {"uidl": "ub", "uid": 2, "file": "$T/b.eml"},
              "C": {"uidl": "uc", "uid": 3, "file": "$T/c.eml"}},
 "sessions": [["A", "B", "C"]],
 "cut": {"after": "$verb", "bytes": $bytes}}
EOJ
	start_scripted "$d/scn.json"
	pop_ini "$d/p.ini" "$d/msgin" "$sport" "$3" "$4"
	[ "${5:-pop3}" = imap ] && sed -i 's/^EmailProtocol=POP/EmailProtocol=IMAP/' "$d/p.ini"
	"$BIN/mailshift" -inifile:"$d/p.ini" -v >"$d/r1.out" 2>&1; rc=$?
	sed 's/^/# /' "$d/r1.out"
	ok_rc "$(grep -q "cut after $bytes" "$T/srv.log"; echo $?)" "$name: the server did cut it"
	is $rc 0 "$name: the run goes on in a new session and exits 0"
	is "$(events_for "$d/msgin" ALPHA)/$(events_for "$d/msgin" BRAVO)/$(events_for "$d/msgin" CHARLIE)" \
		1/1/1 "$name: one event for each message"
	"$BIN/mailshift" -inifile:"$d/p.ini" -v >"$d/r2.out" 2>&1; rc=$?
	is $rc 0 "$name: a second run exits 0"
	is "$(cat "$d"/msgin/* | wc -l)" 3 "$name: and adds no event"
	ok_rc "$(! grep -q 'now names another message' "$d/r1.out" "$d/r2.out"; echo $?)" \
		"$name: no key recorded for a message it does not name"
	stop_scripted
}

# the header block of the first TOP cut before its Subject; with
# DeleteEmails=All a message taken as "no match" is deleted
cut TOP 40 All False
ok_rc "$(grep -c 'deleted u[abc]' "$T/srv.log" | grep -qx 3; echo $?)" \
	"pop3 TOP cut: every message deleted, each after its event"
# the cut on a line boundary (after "+OK" and the From line)
cut TOP 29 All False
# LIST cut: the sizes of the later messages missing
cut LIST 10 Match False
# UIDL cut: the later messages not listed in that session
cut UIDL 12 Match False
# RETR (DownloadEmails) cut mid-body: the saved copy must be whole
cut RETR 200 Match True
for f in "$T"/pop3-RETR-200/msgin.dl/*; do
	[ -f "$f" ] || continue
	like "$(tail -c 200 "$f" | tr -d '\r\n' | tail -c 40)" 'x{40}' \
		"RETR cut: the saved copy $(basename "$f") is whole"
done
is "$(ls "$T"/pop3-RETR-200/msgin.dl | wc -l)" 3 "RETR cut: three messages saved"
# IMAP reads its answers itself (tagged completion, literal lengths): the
# header listing cut mid-literal, then a whole-message fetch
cut "UID FETCH" 120 All False imap
ok_rc "$(grep -o 'deleted [123]$' "$T/srv.log" | sort -u | wc -l | grep -qx 3; echo $?)" \
	"imap FETCH cut: every message deleted, each after its event"

done_testing
