#!/bin/bash
# mailshift-verify logs in to a mailbox as few times as its protocol
# allows, counted by Dovecot (its log's "Login: user=<...>" lines): one
# IMAP login per mailbox for the login check, the polls, the connector's
# dry run and the cleanup (basic and XOAUTH2); two for POP3 (a POP3
# session sees the maildrop as it was at login, so the probe is found by a
# session opened after it arrived, which then serves the dry run and the
# cleanup); one each without --send.  A probe that arrives late (Postfix
# holds it for a while) is still found: by the kept IMAP session (selected
# again), and by a new POP3 session per poll.  Every step passes and only
# the probe is deleted.  Needs a world of its own: it changes Postfix's
# configuration.
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MS_LIB/lib-world.sh"
unset MS_WORLD_DIR
world_up
verify=${MAILSHIFT_BIN:-$MS_TOP/bin}/mailshift-verify
export T0703_SECRET=$WORLD_APP_SECRET T0703_PW=$WORLD_PASS_ALICE
PF=$WORLD_DIR/postfix

ini() {	# ini NAME PROTO PORT AUTH-LINES
	cat >"$T/$1.ini" <<EOF
[General]
MSGINDirectory=$T/msgin-$1
UseLastRunDate=False
[Mail]
User=$WORLD_USER_ALICE
Server=127.0.0.1
Port=$3
EmailProtocol=$2
SecurityProtocol=TLS1_2
SelfSignedCertificate=False
CAFile=$WORLD_CA_FILE
$4
[Configuration1]
SubjectLineMask=Nightly check*
Event=\$JOB:ADD,now,Daily,[[SUBJECT]],opcon
EOF
}
oauth="AuthMethod=OAuth2
[OAuth]
Authority=$WORLD_TOKEN_URL
TenantId=$WORLD_TENANT
ClientId=$WORLD_APP_ID
ClientSecret=env:T0703_SECRET
CAFile=$WORLD_CA_FILE"
ini imap IMAP "$WORLD_IMAPS_PORT" "Password=env:T0703_PW"
ini pop POP "$WORLD_POP3S_PORT" "Password=env:T0703_PW"
ini imapoauth IMAP "$WORLD_IMAPS_PORT" "$oauth"
smtp="--smtp 127.0.0.1:$WORLD_SUBMISSION_PORT"

logins() {	# logins imap|pop3: Dovecot's logins of alice so far
	grep -c "$1-login: Info: Login: user=<$WORLD_USER_ALICE>" "$WORLD_DOVECOT_LOG"
}
ids() { mailbox_files "$WORLD_USER_ALICE" | xargs -r grep -h -i '^Message-ID:' | tr -d '\r' | sort; }

printf 'From: bob@contoso.test\r\nTo: %s\r\nSubject: Nightly check keep\r\nDate: %s\r\nMessage-ID: <keep-%s@t0703>\r\n\r\nkeep\r\n' \
    "$WORLD_USER_ALICE" "$(date -R)" "$RANDOM$RANDOM" >"$T/m.eml"
deliver_mail "$WORLD_USER_ALICE" "$T/m.eml" || bail_out "cannot deliver"
ids >"$T/before"
[ "$(logins imap)" -ge 0 ] 2>/dev/null || bail_out "cannot read Dovecot's log $WORLD_DOVECOT_LOG"

# run NAME PROTO(imap|pop3) EXPECTED-LOGINS VERIFY-ARGS...
run() {
	local name=$1 proto=$2 want=$3 before after rc=0
	shift 3
	before=$(logins "$proto")
	$verify "$@" --no-db --format json --out "$T/$name.json" --quiet 2>"$T/$name.err" || rc=$?
	after=$(logins "$proto")
	is "$rc" 0 "$name: exit 0"
	is "$(jq -r '[.mailboxes[] | select(.passed)] | length' "$T/$name.json"),$(jq -r \
		'[.mailboxes[].steps[] | select(.status == "fail")] | length' "$T/$name.json")" \
		"1,0" "$name: passed, no step failed"
	is "$((after - before))" "$want" "$name: $want $proto login(s) seen by Dovecot"
}

run "IMAP read-only" imap 1 --ini "$T/imap.ini"
run "POP read-only" pop3 1 --ini "$T/pop.ini"
run "IMAP with a probe" imap 1 --ini "$T/imap.ini" $smtp --send --poll-ms 200 --timeout 60
run "IMAP XOAUTH2 with a probe" imap 1 --ini "$T/imapoauth.ini" $smtp --send --poll-ms 200 --timeout 60
# POP: one login for the check, then one per poll; the poll that lists the
# probe keeps its session.  Dovecot's logout line of the session that
# deleted the probe (del=1/M) shows it read the headers three times
# (top=3M: the poll, the dry run and the cleanup); polls that missed the
# probe (it had not arrived yet) each cost one login more.
lines=$(wc -l <"$WORLD_DOVECOT_LOG")
before=$(logins pop3)
rc=0
$verify --ini "$T/pop.ini" $smtp --send --poll-ms 200 --timeout 60 --no-db --format json \
	--out "$T/pop.json" --quiet 2>"$T/pop.err" || rc=$?
sleep 0.5	# Dovecot writes the logout line after answering QUIT
after=$(logins pop3)
is "$rc,$(jq -r '.mailboxes[0].passed' "$T/pop.json")" "0,true" "POP with a probe: exit 0, passed"
del=$(tail -n +"$((lines + 1))" "$WORLD_DOVECOT_LOG" |
	grep "pop3($WORLD_USER_ALICE).*Logged out.* del=1/" |
	sed -n 's/.* top=\([0-9]*\)\/[0-9]*, .* del=1\/\([0-9]*\),.*/\1 \2/p')
ok "POP: poll, dry run and cleanup in one session (top/messages: $del)" \
	awk -v d="$del" 'BEGIN { n = split(d, a, " "); exit !(n == 2 && a[2] > 0 && a[1] == 3 * a[2]) }'
seen=$(jq -r '.mailboxes[0].probe.seen_after' "$T/pop.json")
most=$(awk -v s="$seen" 'BEGIN { print 2 + int(s / 0.2) }')
ok "POP with a probe: $((after - before)) pop3 logins, at most $most (2 + missed polls; seen after $seen s)" \
	test "$((after - before))" -ge 2 -a "$((after - before))" -le "$most"
is "$(ids)" "$(cat "$T/before")" "the probes deleted, nothing else"
like "$(jq -r '.mailboxes[0].probe.outcome' "$T/pop.json")" "^rejected" \
	"POP: the connector's dry run saw the probe on the kept session"

# a late probe: Postfix defers it until the polls have run a while (2 s)
late() {	# late NAME PROTO INI: prints nothing, leaves $T/NAME.json
	local name=$1 proto=$2 pid rc=0 before after
	postconf -c "$PF" -e defer_transports=lmtp && postfix -c "$PF" reload >/dev/null 2>&1 ||
		bail_out "cannot hold mail in Postfix"
	before=$(logins "$proto")
	$verify --ini "$3" $smtp --send --poll-ms 200 --timeout 60 --no-db \
		--format json --out "$T/$name.json" --quiet 2>"$T/$name.err" &
	pid=$!
	# hold the probe 2 s from when it was sent (queued), however long
	# verify took to start (valgrind, a loaded machine)
	for i in $(seq 600); do
		postqueue -c "$PF" -p 2>/dev/null | grep -q '^[0-9A-F]' && break
		sleep 0.1
	done
	sleep 2
	postconf -c "$PF" -e defer_transports= && postfix -c "$PF" reload >/dev/null 2>&1
	postqueue -c "$PF" -f
	wait "$pid" || rc=$?
	after=$(logins "$proto")
	is "$rc" 0 "$name: exit 0"
	ok "$name: the probe arrived after the first polls ($(jq -r '.mailboxes[0].probe.seen_after' "$T/$name.json") s)" \
		jq -e '.mailboxes[0].probe.seen_after >= 1.5' "$T/$name.json"
	echo $((after - before)) >"$T/$name.logins"
}
late "IMAP late probe" imap "$T/imap.ini"
is "$(cat "$T/IMAP late probe.logins")" 1 "IMAP late probe: one login, the folder selected again per poll"
late "POP late probe" pop3 "$T/pop.ini"
ok "POP late probe: a new POP3 session per poll ($(cat "$T/POP late probe.logins") logins)" \
	test "$(cat "$T/POP late probe.logins")" -ge 4
is "$(ids)" "$(cat "$T/before")" "late probes deleted, nothing else"
done_testing
