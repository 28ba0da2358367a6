#!/bin/bash
# The connector against three IMAP/POP3 servers nobody here wrote it for:
# Dovecot 2.3, Cyrus IMAP 3.6 and Courier-IMAP 5.0 / courier-pop 1.0
# (tests/peers/interop-servers), each over IMAP (implicit TLS, STARTTLS)
# and POP3 (implicit TLS, STLS), plus Courier without UIDPLUS.  Every setup
# gets the same mail (encoded and folded subjects, no subject, an
# attachment, multipart/alternative, a 5 MB message): the right events,
# exactly once, matched mail gone, the rest kept.  Then what the first
# run against Cyrus and Courier found: a plain EXPUNGE without UIDPLUS
# took another client's \Deleted mail; a server that offers no login
# before TLS was reported as a refused login quoting an OK; the error
# catalogue did not know Cyrus's and Courier's wording.
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MS_LIB/lib-world.sh"
world_up

CR=$(printf '\r')
mkdir -p "$T/msgin"

# ---- per server: login, delivery, counting, clearing ---------------------
# creds SERVER USER -> "login password"
creds() {
	case $1 in
	dovecot) eval "echo \"\$WORLD_USER_$(echo "$2" | tr a-z A-Z) \$WORLD_PASS_$(echo "$2" | tr a-z A-Z)\"" ;;
	cyrus)   eval "echo \"$2 \$WORLD_CYRUS_PASS_$(echo "$2" | tr a-z A-Z)\"" ;;
	courier) eval "echo \"$2 \$WORLD_COURIER_PASS_$(echo "$2" | tr a-z A-Z)\"" ;;
	esac
}
imaps_port() {
	case $1 in
	dovecot) echo "$WORLD_IMAPS_PORT" ;;
	cyrus) echo "$WORLD_CYRUS_IMAPS_PORT" ;;
	courier) echo "$WORLD_COURIER_IMAPS_PORT" ;;
	esac
}
# imap SERVER USER COMMAND: one command on INBOX as another client would
imap() {
	set -- "$1" "$2" "$3" $(creds "$1" "$2")
	curl -sS --cacert "$WORLD_CA_FILE" --url "imaps://127.0.0.1:$(imaps_port "$1")/INBOX" \
		-u "$4:$5" -X "$3"
}
count() {	# messages in INBOX, \Deleted ones too
	imap "$1" "$2" 'STATUS INBOX (MESSAGES)' | sed -n 's/.*MESSAGES \([0-9]*\).*/\1/p' | tr -d '\r'
}
clear_box() {
	if [ "$1" = dovecot ]; then
		clear_mailbox "$2" onprem.test
		return
	fi
	[ "$(count "$1" "$2")" = 0 ] && return
	imap "$1" "$2" 'STORE 1:* +FLAGS.SILENT (\Deleted)' >/dev/null
	imap "$1" "$2" 'EXPUNGE' >/dev/null
}
put() {	# put SERVER USER FILE
	case $1 in
	dovecot) deliver "$3" "$(creds dovecot "$2" | cut -d' ' -f1)"
		 wait_mailbox_count "$2@onprem.test" "$4" ;;
	*) "$MS_TOP/tests/peers/world" deliver "$WORLD_DIR" "$1" "$2" "$3" ||
		echo "# delivery to $1 $2 failed" ;;
	esac
}

# ---- the mail -------------------------------------------------------------
hdr() {	# hdr SUBJECT-LINE(S): common headers, then the given Subject lines
	printf 'From: Ops <ops@contoso.test>\r\nTo: test@contoso.test\r\nDate: %s\r\nMessage-ID: <%s@interop.test>\r\nMIME-Version: 1.0\r\n%s' \
		"$(date -R)" "$(openssl rand -hex 8)" "$1"
}
make_mail() {	# make_mail DIR TAG: seven messages, five match
	d=$1 t=$2
	mkdir -p "$d"
	# "Run job E<t> on 1", encoded UTF-8 base64 (with an accent in the job)
	hdr "Subject: =?UTF-8?B?$(printf 'Run job \303\211%s on 1' "$t" | base64 -w0)?=$CR
Content-Type: text/plain$CR
$CR
encoded$CR
" >"$d/1"
	# folded over two lines
	hdr "Subject: Run job$CR
 F$t on 2$CR
Content-Type: text/plain$CR
$CR
folded$CR
" >"$d/2"
	# no Subject at all
	hdr "Content-Type: text/plain$CR
$CR
no subject$CR
" >"$d/3"
	# an attachment
	hdr "Subject: Run job A$t on 3$CR
Content-Type: multipart/mixed; boundary=\"b1\"$CR
$CR
--b1$CR
Content-Type: text/plain$CR
$CR
see attached$CR
--b1$CR
Content-Type: application/octet-stream; name=\"data.bin\"$CR
Content-Disposition: attachment; filename=\"data.bin\"$CR
Content-Transfer-Encoding: base64$CR
$CR
$(head -c 3000 /dev/urandom | base64 -w 76 | sed "s/\$/$CR/")
--b1--$CR
" >"$d/4"
	# multipart/alternative
	hdr "Subject: Run job M$t on 4$CR
Content-Type: multipart/alternative; boundary=\"b2\"$CR
$CR
--b2$CR
Content-Type: text/plain; charset=utf-8$CR
$CR
plain$CR
--b2$CR
Content-Type: text/html; charset=utf-8$CR
$CR
<p>html</p>$CR
--b2--$CR
" >"$d/5"
	# 5 MB (the body made once)
	[ -f "$T/big.body" ] ||
		head -c 3800000 /dev/urandom | base64 -w 76 | sed "s/\$/$CR/" >"$T/big.body"
	{ hdr "Subject: Run job B$t on 5$CR
Content-Type: application/octet-stream$CR
Content-Transfer-Encoding: base64$CR
$CR
"
	  cat "$T/big.body"
	} >"$d/6"
	# matches no rule
	hdr "Subject: Lunch on Friday?$CR
Content-Type: text/plain$CR
$CR
lunch$CR
" >"$d/7"
}

write_ini() {	# write_ini FILE SERVER PROTO PORT TLSMODE USER [PASSWORD]
	set -- "$1" "$2" "$3" "$4" "$5" "$6" "${7:-}" $(creds "$2" "$6")
	case $5 in
	implicit) sec="SecurityProtocol=TLS1_2" ;;
	starttls) sec="SecurityProtocol=TLS1_2
StartTLS=True" ;;
	none) sec="SecurityProtocol=NONE" ;;
	esac
	cat >"$1" <<EOI
[General]
MSGINDirectory=$T/msgin
OpConUser=ocadm
OpConUserPassword=Canary-OpCon-7731
UseLastRunDate=False
DeleteEmails=Match
ExitCodeForNoMatchingEmails=5
[Mail]
User=$8
Password=${7:-$9}
Server=127.0.0.1
Port=$4
EmailProtocol=$3
$sec
SelfSignedCertificate=False
CAFile=$WORLD_CA_FILE
[Configuration1]
SubjectLineMask=^Run job (\S+) on (\d+)$
Event=\$JOB:ADD,[[\$DATE]],INTEROP,[[1]],OCADHOC
EOI
}

# ---- 1. nine setups and one more, the same mail each --------------------------
SETUPS="dovecot:IMAP:$WORLD_IMAPS_PORT:implicit
dovecot:IMAP:$WORLD_IMAP_PORT:starttls
dovecot:POP:$WORLD_POP3S_PORT:implicit
dovecot:POP:$WORLD_POP3_PORT:starttls
cyrus:IMAP:$WORLD_CYRUS_IMAPS_PORT:implicit
cyrus:IMAP:$WORLD_CYRUS_IMAP_PORT:starttls
cyrus:POP:$WORLD_CYRUS_POP3S_PORT:implicit
cyrus:POP:$WORLD_CYRUS_POP3_PORT:starttls
courier:IMAP:$WORLD_COURIER_IMAPS_PORT:implicit
courier:IMAP:$WORLD_COURIER_IMAP_PORT:starttls
courier:POP:$WORLD_COURIER_POP3S_PORT:implicit
courier:POP:$WORLD_COURIER_POP3_PORT:starttls
courier:IMAP:$WORLD_COURIER_NOUIDPLUS_PORT:implicit-nouidplus"

U=dave         # Dovecot: dave@onprem.test, used by no other connector test
if [ -n "${MAILSHIFT_VALGRIND:-}" ]; then
	# each run under valgrind costs seconds: Dovecot's four setups are
	# already under valgrind in t0300 and t0301
	SETUPS=$(echo "$SETUPS" | grep -v '^dovecot:')
	echo "# under valgrind: Cyrus and Courier setups only"
fi
k=0
for s in $SETUPS; do
	IFS=: read -r srv proto port mode <<EOF
$s
EOF
	k=$((k + 1))
	name="$srv $proto ${mode}"
	u=alice
	[ "$srv" = dovecot ] && u=$U
	clear_box "$srv" "$u"
	make_mail "$T/mail$k" "S$k"
	for i in 1 2 3 4 5 6 7; do put "$srv" "$u" "$T/mail$k/$i" "$i"; done
	is "$(count "$srv" "$u")" 7 "$name: seven messages delivered"
	rm -f "$T"/msgin/*
	write_ini "$T/i$k.ini" "$srv" "$proto" "$port" "${mode%-nouidplus}" "$u"
	"$BIN/mailshift" -inifile:"$T/i$k.ini" >"$T/out" 2>"$T/err"; rc=$?
	is $rc 0 "$name: exit 0"
	[ $rc = 0 ] || sed 's/^/# /' "$T/err"
	is "$(ls "$T/msgin" | wc -l)" 5 "$name: five events"
	got=$(cat "$T"/msgin/* 2>/dev/null | tr -d '\r' | sed -n 's/^\$JOB:ADD,\[\[\$DATE\]\],INTEROP,\([^,]*\),OCADHOC,ocadm,Canary-OpCon-7731$/\1/p' | sort | tr '\n' ' ')
	# É comes out as E: event files are ASCII (event.c transliterates)
	is "$got" "AS$k BS$k ES$k FS$k MS$k " "$name: the five jobs, decoded and unfolded"
	is "$(count "$srv" "$u")" 2 "$name: matched mail deleted, two others kept"
	rm -f "$T"/msgin/*
	"$BIN/mailshift" -inifile:"$T/i$k.ini" >"$T/out" 2>"$T/err"; rc=$?
	is "$rc:$(ls "$T/msgin" | wc -l)" "5:0" "$name: a second run writes nothing again"
done

# ---- 2. without UIDPLUS, another client's \Deleted mail stays ------------------
# Another client has flagged a message \Deleted and not expunged it yet.
# Our run must not expunge it with a plain EXPUNGE: ours stay flagged
# (delete pending) until a later run finds no foreign \Deleted message.
deleted_n() {	# messages flagged \Deleted in alice's Courier INBOX
	imap courier alice 'SEARCH DELETED' | tr -d '\r' | sed -n 's/^\* SEARCH *//p' | wc -w
}
# the other client's message by its subject: its sequence number follows
# the server's order, which for mail delivered within one second is not
# the order of delivery (seen under load: "message 1" was ours)
other_n() {
	imap courier alice 'SEARCH SUBJECT "Lunch on Friday"' | tr -d '\r' | sed -n 's/^\* SEARCH *//p'
}
uidplus_case() {	# uidplus_case PORT NAME
	port=$1 name=$2
	clear_box courier alice
	make_mail "$T/up$port" "U$port"
	put courier alice "$T/up$port/7"       # the other client's
	put courier alice "$T/up$port/2"       # ours (matches)
	put courier alice "$T/up$port/3"       # unmatched, kept
	# the other client's message, flagged and left for later
	imap courier alice "STORE $(other_n) +FLAGS.SILENT (\\Deleted)" >/dev/null
	is "$(deleted_n)" 1 "$name: the other client's message is flagged \\Deleted"
	write_ini "$T/up.ini" courier IMAP "$port" implicit alice
	rm -f "$T"/msgin/*
	"$BIN/mailshift" -v -inifile:"$T/up.ini" >"$T/out" 2>"$T/err"; rc=$?
	is "$rc:$(ls "$T/msgin" | wc -l)" "0:1" "$name: our message gives its event"
}

uidplus_case "$WORLD_COURIER_NOUIDPLUS_PORT" "no UIDPLUS"
is "$(count courier alice)" 3 "no UIDPLUS: nothing expunged while another client's \\Deleted mail is there"
ok_rc "$(grep -q 'not ours' "$T/err"; echo $?)" "no UIDPLUS: -v says why nothing was expunged"
grep 'not ours' "$T/err" | sed 's/^/# /'
is "$(deleted_n)" 2 \
	"no UIDPLUS: ours stays flagged \\Deleted (delete pending)"
# the other client changes its mind; the next run finishes our deletion
imap courier alice "STORE $(other_n) -FLAGS.SILENT (\\Deleted)" >/dev/null
rm -f "$T"/msgin/*
"$BIN/mailshift" -v -inifile:"$T/up.ini" >"$T/out" 2>"$T/err"; rc=$?
is "$rc:$(ls "$T/msgin" | wc -l)" "5:0" "no UIDPLUS: the next run writes no event again"
is "$(count courier alice)" 2 "no UIDPLUS: the next run expunges ours, the other client's stays"
is "$(deleted_n)" 0 \
	"no UIDPLUS: nothing left flagged"

# A pending deletion of mail older than LastRunDate is still ours: the
# next run, which lists only recent mail, must not count it as another
# client's and so never expunge again.
clear_box courier alice
make_mail "$T/lr" LR
put courier alice "$T/lr/7"       # the other client's
put courier alice "$T/lr/2"       # ours (matches)
touch -d '3 days ago' "$WORLD_DIR"/courier/mail/alice/Maildir/new/*
put courier alice "$T/lr/3"       # today's, unmatched
imap courier alice "STORE $(other_n) +FLAGS.SILENT (\\Deleted)" >/dev/null
write_ini "$T/lr.ini" courier IMAP "$WORLD_COURIER_NOUIDPLUS_PORT" implicit alice
sed -i "s/^UseLastRunDate=False/UseLastRunDate=True\nLastRunDate=$(date -u -d '5 days ago' +%Y-%m-%dT%H:%M:%SZ)/" "$T/lr.ini"
rm -f "$T"/msgin/*
"$BIN/mailshift" -v -inifile:"$T/lr.ini" >"$T/out" 2>"$T/err"; rc=$?
is "$rc:$(ls "$T/msgin" | wc -l):$(count courier alice):$(deleted_n)" "0:1:3:2" \
	"LastRunDate, no UIDPLUS: an event, nothing expunged, ours pending"
imap courier alice "STORE $(other_n) -FLAGS.SILENT (\\Deleted)" >/dev/null
"$BIN/mailshift" -v -inifile:"$T/lr.ini" >"$T/out" 2>"$T/err"; rc=$?
is "$rc:$(ls "$T/msgin" | wc -l):$(count courier alice):$(deleted_n)" "5:1:2:0" \
	"LastRunDate, no UIDPLUS: the next run expunges ours, three days old, and writes nothing again"
grep 'not ours' "$T/err" | sed 's/^/# /'

uidplus_case "$WORLD_COURIER_IMAPS_PORT" "UIDPLUS"
is "$(count courier alice)" 2 "UIDPLUS: ours expunged by UID, the other client's \\Deleted mail stays"

# ---- 3. no login offered before TLS -------------------------------------------
# Cyrus with allowplaintext: no offers LOGINDISABLED and no mechanism on its
# STARTTLS port until STARTTLS.
write_ini "$T/n.ini" cyrus IMAP "$WORLD_CYRUS_IMAP_PORT" none alice
"$BIN/mailshift" -inifile:"$T/n.ini" >"$T/out" 2>"$T/err"; rc=$?
is $rc 2 "no login before TLS: exit 2"
ok_rc "$(grep -q 'accepts no login without TLS' "$T/err"; echo $?)" "no login before TLS: says so"
ok_rc "$(grep -q 'StartTLS=True' "$T/err"; echo $?)" "no login before TLS: names StartTLS=True"
ok_rc "$(grep -q 'OK Completed' "$T/err"; [ $? = 1 ]; echo $?)" "no login before TLS: quotes no OK as a refusal"
sed 's/^/# /' "$T/err"
# the same INI with StartTLS=True logs in
write_ini "$T/n2.ini" cyrus IMAP "$WORLD_CYRUS_IMAP_PORT" starttls alice
"$BIN/mailshift" -inifile:"$T/n2.ini" >"$T/out" 2>"$T/err"; rc=$?
is $rc 5 "no login before TLS: with StartTLS=True the run works"

# ---- 4. a wrong password, in each server's words ------------------------------
for s in "dovecot:IMAP:$WORLD_IMAPS_PORT" "dovecot:POP:$WORLD_POP3S_PORT" \
    "cyrus:IMAP:$WORLD_CYRUS_IMAPS_PORT" "cyrus:POP:$WORLD_CYRUS_POP3S_PORT" \
    "courier:IMAP:$WORLD_COURIER_IMAPS_PORT" "courier:POP:$WORLD_COURIER_POP3S_PORT"; do
	IFS=: read -r srv proto port <<EOF
$s
EOF
	u=alice
	[ "$srv" = dovecot ] && u=$U
	write_ini "$T/w.ini" "$srv" "$proto" "$port" implicit "$u" "Wrong-$(openssl rand -hex 4)"
	"$BIN/mailshift" -inifile:"$T/w.ini" >"$T/out" 2>"$T/err"; rc=$?
	is $rc 2 "$srv $proto wrong password: exit 2"
	ok_rc "$(grep -q "^cause: the $proto login.* refused.*wrong.*password" "$T/err"; echo $?)" \
		"$srv $proto wrong password: the catalogue's cause, naming $proto"
	ok_rc "$(grep -q '^fix: .*reseal the password' "$T/err"; echo $?)" \
		"$srv $proto wrong password: the catalogue's fix"
	grep -q 'cause:' "$T/err" || sed 's/^/# /' "$T/err"
done

# ---- 5. plaintext POP3: APOP where the server offers it ------------------------
# Cyrus announces an APOP timestamp in its greeting; over a plain
# connection the password itself must then not travel.
clear_box cyrus alice
write_ini "$T/ap.ini" cyrus POP "$WORLD_CYRUS_POP3_PORT" none alice
"$BIN/mailshift" -vv -inifile:"$T/ap.ini" >"$T/out" 2>"$T/err"; rc=$?
is $rc 5 "plaintext POP3 on Cyrus: the login works"
ok_rc "$(grep -q '> APOP alice' "$T/err"; echo $?)" "plaintext POP3 on Cyrus: APOP"
ok_rc "$(grep -qF -e "$WORLD_CYRUS_PASS_ALICE" -e '> PASS' -e '> USER' -e '> AUTH' "$T/err"; [ $? = 1 ]; echo $?)" \
	"plaintext POP3 on Cyrus: neither USER/PASS nor AUTH, the password never sent"

done_testing
