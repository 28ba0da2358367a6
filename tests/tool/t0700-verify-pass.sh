#!/bin/bash
# mailshift-verify against the mail world: healthy IMAP, POP, Graph (client
# secret) and Graph (certificate) mailboxes pass every step, read-only and
# with a probe; --subject reports the matching [ConfigurationN] and the
# event it would write; cleanup deletes the probes and nothing else (the
# other messages are identified by Message-ID before and after); JSON,
# JUnit XML (xmllint) and HTML outputs; the results database and history.
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MS_LIB/lib-world.sh"
world_up
verify=${MAILSHIFT_BIN:-$MS_TOP/bin}/mailshift-verify
export T0700_SECRET=$WORLD_APP_SECRET
cat "$WORLD_CERT_APP_CERT" "$WORLD_CERT_APP_KEY" >"$T/cert.pem"

ini() {	# ini NAME PROTO PORT USER CLIENT CREDENTIAL-LINE
	world_oauth_ini "$T/$1.ini" "$T/msgin-$1" "$2" "$3" "$4" "$5" "$6"
	cat >>"$T/$1.ini" <<'EOF'
[Configuration1]
SubjectLineMask=Nightly check*
Event=$JOB:ADD,now,Daily,[[SUBJECT]],opcon
[Configuration2]
SubjectLineMask=Other*
Event=$CONSOLE:DISPLAY,[[SUBJECT]]
EOF
}
ini imap IMAP "$WORLD_IMAPS_PORT" "$WORLD_USER_ALICE" "$WORLD_APP_ID" "ClientSecret=env:T0700_SECRET"
ini pop POP "$WORLD_POP3S_PORT" "$WORLD_USER_OPS" "$WORLD_APP_ID" "ClientSecret=env:T0700_SECRET"
ini graph GRAPH 443 "$WORLD_USER_OPS" "$WORLD_APP_ID" "ClientSecret=env:T0700_SECRET"
ini cert GRAPH 443 "$WORLD_USER_ALICE" "$WORLD_CERT_APP_ID" "CertificateFile=$T/cert.pem"
all="--ini $T/imap.ini --ini $T/pop.ini --ini $T/graph.ini --ini $T/cert.ini"
smtp="--smtp 127.0.0.1:$WORLD_SUBMISSION_PORT"

# other mail that must survive, including one that matches a rule
for u in "$WORLD_USER_ALICE" "$WORLD_USER_OPS"; do
	for s in "Nightly check keep-$RANDOM" "unrelated keep-$RANDOM"; do
		printf 'From: bob@contoso.test\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <keep-%s@t0700>\r\n\r\nkeep me\r\n' \
		    "$u" "$s" "$(date -R)" "$RANDOM$RANDOM" >"$T/m.eml"
		deliver_mail "$u" "$T/m.eml" || bail_out "cannot deliver to $u"
	done
done
ids() {	# Message-IDs in a mailbox, sorted
	mailbox_files "$1" | xargs -r grep -h -i '^Message-ID:' | tr -d '\r' | sort
}
ids "$WORLD_USER_ALICE" >"$T/alice.before"
ids "$WORLD_USER_OPS" >"$T/ops.before"
n_alice=$(mailbox_count "$WORLD_USER_ALICE")
n_ops=$(mailbox_count "$WORLD_USER_OPS")

# read-only
rc=0
$verify $all --db "$T/v.db" --format json --out "$T/ro.json" --quiet 2>"$T/ro.err" || rc=$?
is "$rc" 0 "read-only: exit 0 when all pass"
is "$(jq -r '.summary.passed' "$T/ro.json")" 4 "read-only: 4 mailboxes passed"
is "$(jq -r '[.mailboxes[].steps[] | select(.status == "pass") | .step] | unique | join(",")' "$T/ro.json")" \
	"config,login,token" "read-only: config, token and login passed"
is "$(jq -r '[.mailboxes[].steps[] | select(.step == "send" or .step == "seen" or .step == "cleanup") | .status] | unique | join(",")' "$T/ro.json")" \
	skip "read-only: send, seen, cleanup skipped"
is "$(jq -r '[.mailboxes[].protocol] | join(",")' "$T/ro.json")" "imap,pop,graph,graph" "protocols recorded"
like "$(jq -r '.mailboxes[3].steps[0].message' "$T/ro.json")" "certificate valid until" \
	"certificate checked at config"
is "$(mailbox_count "$WORLD_USER_ALICE")" "$n_alice" "read-only: nothing changed in alice's mailbox"

# with a probe: every step passes, the probe is deleted, nothing else
rc=0
$verify $all $smtp --send --poll-ms 300 --timeout 60 --db "$T/v.db" \
	--format json --out "$T/send.json" --junit "$T/send.xml" >"$T/send.txt" 2>"$T/send.err" || rc=$?
is "$rc" 0 "--send: exit 0"
is "$(jq -r '[.mailboxes[] | select(.passed)] | length' "$T/send.json")" 4 "--send: 4 passed"
is "$(jq -r '[.mailboxes[].steps[] | .status] | unique | join(",")' "$T/send.json")" pass \
	"--send: every step of every mailbox passed"
is "$(jq -r '[.mailboxes[].probe.seen_after | select(. != null and . >= 0)] | length' "$T/send.json")" 4 \
	"time from send to seen recorded"
like "$(jq -r '.mailboxes[0].probe.outcome' "$T/send.json")" "^rejected" \
	"a plain probe is seen and rejected by the rules (as expected)"
like "$(cat "$T/send.txt")" "PASS  alice@contoso.test  imap" "terminal summary lists the mailbox"
ok "JUnit XML is well-formed" xmllint --noout "$T/send.xml"
is "$(xmllint --xpath 'count(//testcase)' "$T/send.xml")" 24 "JUnit: one testcase per mailbox and step"
is "$(xmllint --xpath 'count(//failure)' "$T/send.xml")" 0 "JUnit: no failures"
is "$(mailbox_count "$WORLD_USER_ALICE")" "$n_alice" "alice: as many messages as before"
is "$(mailbox_count "$WORLD_USER_OPS")" "$n_ops" "ops: as many messages as before"
is "$(ids "$WORLD_USER_ALICE")" "$(cat "$T/alice.before")" "alice: the same messages (by Message-ID)"
is "$(ids "$WORLD_USER_OPS")" "$(cat "$T/ops.before")" "ops: the same messages (by Message-ID)"

# --subject: the rule that matches, and the event it would write
rc=0
$verify --ini "$T/imap.ini" --ini "$T/graph.ini" $smtp --send --subject "Nightly check" \
	--poll-ms 300 --db "$T/v.db" --format json --out "$T/subj.json" --quiet || rc=$?
is "$rc" 0 "--subject: exit 0"
is "$(jq -r '[.mailboxes[].probe.matched] | join(",")' "$T/subj.json")" \
	"Configuration1,Configuration1" "--subject: Configuration1 matched on IMAP and Graph"
like "$(jq -r '.mailboxes[0].probe.events[0]' "$T/subj.json")" \
	'^\$JOB:ADD,now,Daily,Nightly check \[MSV-[0-9a-f]{16}\],opcon$' "--subject: the event it would write"
is "$(ls "$T"/msgin-imap 2>/dev/null | wc -l)" 0 "dry run: no event file written"
is "$(ids "$WORLD_USER_ALICE")" "$(cat "$T/alice.before")" "--subject: other mail untouched"
rc=0
$verify --ini "$T/imap.ini" $smtp --send --subject "Other thing" --poll-ms 300 --no-db \
	--format json --out "$T/subj2.json" --quiet || rc=$?
is "$(jq -r '.mailboxes[0].probe.matched' "$T/subj2.json")" Configuration2 "--subject: another rule"

# probes from one sender: [Notify] over SMTP, or a Graph mailbox
{ sed "s/^User=.*/User=$WORLD_USER_OPS/" "$T/imap.ini"
  printf '[Notify]\nServer=127.0.0.1\nPort=%s\nTLS=StartTLS\nAuthMethod=OAuth2\n' "$WORLD_SUBMISSION_PORT"
} >"$T/sender.ini"
rc=0
$verify --ini "$T/cert.ini" --ini "$T/pop.ini" --send --sender-ini "$T/sender.ini" --poll-ms 300 \
	--no-db --format json --out "$T/snd.json" --quiet 2>"$T/snd.err" || rc=$?
is "$rc" 0 "--sender-ini with [Notify]: exit 0"
is "$(jq -r '[.mailboxes[].steps[3].message | test("from ops@contoso.test to .* via SMTP submission")] | all' "$T/snd.json")" \
	true "--sender-ini with [Notify]: probes sent by ops over SMTP"
rc=0
$verify --ini "$T/imap.ini" --send --sender-ini "$T/graph.ini" --poll-ms 300 \
	--no-db --format json --out "$T/snd2.json" --quiet || rc=$?
is "$rc" 0 "--sender-ini with a Graph mailbox: exit 0"
like "$(jq -r '.mailboxes[0].steps[3].message' "$T/snd2.json")" "from ops@contoso.test to alice@contoso.test via Graph sendMail" \
	"--sender-ini with a Graph mailbox: sent through Graph"
is "$(ids "$WORLD_USER_ALICE")" "$(cat "$T/alice.before")" "alice: still only her own messages"

# HTML, history
rc=0
$verify --ini "$T/pop.ini" --format html --out "$T/r.html" --db "$T/v.db" --quiet || rc=$?
ok "HTML report written" test -s "$T/r.html"
like "$(head -c 200 "$T/r.html")" "^<!DOCTYPE html>" "HTML is a document"
hist=$($verify history --db "$T/v.db")
like "$hist" "PASS .*alice@contoso.test +imap" "history shows alice's IMAP result"
is "$(printf '%s\n' "$hist" | grep -c 'T[0-9:]*Z  *[0-9-]*T[0-9:]*Z')" 4 \
	"history: all four proven with a probe"
is "$(sqlite3 "$T/v.db" 'SELECT count(*) FROM verify_runs')" 4 "four runs recorded"
is "$(sqlite3 "$T/v.db" "SELECT count(*) FROM verify_steps WHERE run = 2 AND status = 'pass'")" 24 \
	"24 step results of the probe run recorded"
done_testing
