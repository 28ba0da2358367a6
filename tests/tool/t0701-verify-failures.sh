#!/bin/bash
# mailshift-verify failures, each at the right step with its explanation:
# a wrong client secret fails at token (AADSTS7000215), a mailbox the app
# may not open fails at login (IMAP and Graph), a sender the submission
# server refuses fails at send, a probe that never arrives times out
# cleanly (nothing deleted), a subject no rule matches fails at seen;
# usage and input errors give sysexits codes.  Secrets never appear.
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MS_LIB/lib-world.sh"
world_up
verify=${MAILSHIFT_BIN:-$MS_TOP/bin}/mailshift-verify
export T0701_SECRET=$WORLD_APP_SECRET

ini() {	# ini NAME PROTO PORT USER CREDENTIAL-LINE [EXTRA-MAIL-LINE]
	world_oauth_ini "$T/$1.ini" "$T/msgin" "$2" "$3" "$4" "$WORLD_APP_ID" "$5" "${6:-}"
	cat >>"$T/$1.ini" <<'EOF'
[Configuration1]
SubjectLineMask=Nightly check*
Event=$JOB:ADD,now,Daily,[[SUBJECT]],opcon
EOF
}
good="ClientSecret=env:T0701_SECRET"
ini good IMAP "$WORLD_IMAPS_PORT" "$WORLD_USER_ALICE" "$good"
ini badsecret IMAP "$WORLD_IMAPS_PORT" "$WORLD_USER_ALICE" "ClientSecret=Wr0ng~Secret-t0701-value"
ini bob IMAP "$WORLD_IMAPS_PORT" "$WORLD_USER_BOB" "$good"
ini bobgraph GRAPH 443 "$WORLD_USER_BOB" "$good"
ini archive IMAP "$WORLD_IMAPS_PORT" "$WORLD_USER_ALICE" "$good" "Folder=Archive"
smtp="--smtp 127.0.0.1:$WORLD_SUBMISSION_PORT"
j() { jq -r "$1" "$2"; }

# the good one first: its token is then in the shared cache, and the
# wrong secret must still fail (a cached token proves nothing)
rc=0
$verify --ini "$T/good.ini" --ini "$T/badsecret.ini" --ini "$T/bob.ini" --ini "$T/bobgraph.ini" \
	--concurrency 1 --no-db --format json --out "$T/f.json" --quiet 2>"$T/f.err" || rc=$?
is "$rc" 1 "exit 1 when a mailbox fails"
is "$(j '[.mailboxes[] | .passed] | join(",")' "$T/f.json")" "true,false,false,false" \
	"only the good mailbox passed"
is "$(j '.mailboxes[1].steps[1].status' "$T/f.json")" fail "wrong secret: fails at token"
like "$(j '.mailboxes[1].steps[1].message' "$T/f.json")" "AADSTS7000215" "wrong secret: Microsoft's code kept"
is "$(j '.mailboxes[1].steps[1].topic' "$T/f.json")" AADSTS7000215 "wrong secret: catalogue entry"
like "$(j '.mailboxes[1].steps[1].cause' "$T/f.json")" "client secret is wrong" "wrong secret: cause"
like "$(j '.mailboxes[1].steps[1].fix' "$T/f.json")" "new client secret" "wrong secret: fix"
is "$(j '[.mailboxes[1].steps[2:][] | .status] | unique | join(",")' "$T/f.json")" skip \
	"wrong secret: later steps skipped"
is "$(j '.mailboxes[2].steps[1].status + "," + .mailboxes[2].steps[2].status' "$T/f.json")" "pass,fail" \
	"no permission (IMAP): token issued, fails at login"
like "$(j '.mailboxes[2].steps[2].cause' "$T/f.json")" "no access to this mailbox" \
	"no permission (IMAP): explained"
like "$(j '.mailboxes[2].steps[2].fix' "$T/f.json")" "Add-MailboxPermission" \
	"no permission (IMAP): the fix names the Exchange command"
is "$(j '.mailboxes[3].steps[2].status' "$T/f.json")" fail "no permission (Graph): fails at login"
like "$(j '.mailboxes[3].steps[2].message + " " + .mailboxes[3].steps[2].cause' "$T/f.json")" \
	"ErrorAccessDenied.*(permission|RBAC)" "no permission (Graph): explained"
unlike "$(cat "$T/f.json" "$T/f.err")" "$WORLD_APP_SECRET|Wr0ng~Secret" "no secret in output"
rc=0
$verify --ini "$T/badsecret.ini" --no-db >"$T/f.txt" 2>&1 || rc=$?
like "$(cat "$T/f.txt")" "token: token request refused: AADSTS7000215" "text: the failing step and reply"
like "$(grep -A1 ' cause: ' "$T/f.txt" | tr '\n' ' ')" "cause: .* fix: " "text: cause and fix lines"

# the fix fits where the secret comes from, and can be done
ini envsecret IMAP "$WORLD_IMAPS_PORT" "$WORLD_USER_ALICE" "ClientSecret=env:T0701_WRONG"
rc=0
T0701_WRONG=Wr0ng~Env-t0701 $verify --ini "$T/envsecret.ini" --ini "$T/badsecret.ini" --no-db \
	--concurrency 1 --format json --out "$T/x.json" --quiet 2>/dev/null || rc=$?
is "$(j '.mailboxes[0].steps[1].topic' "$T/x.json")" AADSTS7000215 "env: secret: wrong secret"
like "$(j '.mailboxes[0].steps[1].fix' "$T/x.json")" "set the environment variable T0701_WRONG to the new value" \
	"env: secret: the fix is to set that variable"
like "$(j '.mailboxes[1].steps[1].fix' "$T/x.json")" \
	"mailshift --credentials -clientsecret:VALUE -inifile:\"$T/badsecret.ini\"" \
	"literal secret: the fix is the command that seals a new one"
T0701_WRONG=Wr0ng~Env-t0701 $verify --ini "$T/envsecret.ini" --ini "$T/badsecret.ini" --no-db \
	--concurrency 1 --format html --out "$T/x.html" --quiet 2>/dev/null
ok "HTML: no literal backtick" sh -c "! grep -q '\`' '$T/x.html'"
like "$(cat "$T/x.html")" "<code>mailshift --credentials -clientsecret:VALUE" \
	"HTML: the command as code"
cp "$T/badsecret.ini" "$T/reseal.ini"
MAILSHIFT_HOME=$T/home "${MAILSHIFT_BIN:-$MS_TOP/bin}/mailshift" --credentials \
	-clientsecret:"$WORLD_APP_SECRET" -inifile:"$T/reseal.ini" >/dev/null 2>&1
like "$(grep '^ClientSecret=' "$T/reseal.ini")" '^ClientSecret=mssealed:v1:' \
	"mailshift --credentials -clientsecret: seals [OAuth] ClientSecret"
rc=0
MAILSHIFT_HOME=$T/home $verify --ini "$T/reseal.ini" --no-db --quiet >/dev/null 2>&1 || rc=$?
is "$rc" 0 "the fix works: the resealed secret passes"

# the results database never lands in the current folder
mkdir -p "$T/cwd"
(cd "$T/cwd" && MAILSHIFT_HOME=$T/home $verify --ini "$T/good.ini" --quiet >/dev/null 2>&1)
ok "--ini without --db: verify.db in mailshift's state directory" test -f "$T/home/verify.db"
ok "and not in the current folder" test ! -e "$T/cwd/verify.db"

# a sender the submission server refuses
n_alice=$(mailbox_count "$WORLD_USER_ALICE")
rc=0
$verify --ini "$T/good.ini" $smtp --send --from "$WORLD_USER_BOB" --no-db \
	--format json --out "$T/s.json" --quiet || rc=$?
is "$rc" 1 "refused sender: exit 1"
is "$(j '.mailboxes[0].steps[3].status' "$T/s.json")" fail "refused sender: fails at send"
like "$(j '.mailboxes[0].steps[3].message' "$T/s.json")" "553 5.7.1 .*not owned by user" \
	"refused sender: the server's reply kept"
is "$(j '.mailboxes[0].steps[4].status + "," + .mailboxes[0].steps[5].status' "$T/s.json")" "skip,skip" \
	"refused sender: seen and cleanup skipped"

# a probe that never arrives (the connector reads another folder)
d=$(maildir "$WORLD_USER_ALICE")/.Archive
mkdir -p "$d/cur" "$d/new" "$d/tmp" && chown -R 65534:65534 "$d"
start=$(date +%s)
rc=0
$verify --ini "$T/archive.ini" $smtp --send --timeout 3 --poll-ms 500 --no-db \
	--format json --out "$T/a.json" --quiet || rc=$?
took=$(( $(date +%s) - start ))
is "$rc" 1 "never arrives: exit 1"
is "$(j '.mailboxes[0].steps[4].status' "$T/a.json")" fail "never arrives: fails at seen"
like "$(j '.mailboxes[0].steps[4].message' "$T/a.json")" "not in alice@contoso.test after 3 s" \
	"never arrives: timed out after --timeout"
is "$(j '.mailboxes[0].steps[5].status' "$T/a.json")" skip "never arrives: nothing deleted"
ok "never arrives: gave up in time ($took s)" test "$took" -le 10
probe=$(j '.mailboxes[0].probe.id' "$T/a.json")
wait_mailbox_count "$WORLD_USER_ALICE" $((n_alice + 1)) 10
ok "the stray probe is in the INBOX, untouched" sh -c "grep -l '$probe' $(maildir "$WORLD_USER_ALICE")/new/* $(maildir "$WORLD_USER_ALICE")/cur/* 2>/dev/null | grep -q ."
# remove it by id (the test's own cleanup)
grep -l "$probe" "$(maildir "$WORLD_USER_ALICE")"/new/* "$(maildir "$WORLD_USER_ALICE")"/cur/* 2>/dev/null | xargs -r rm -f

# --subject no rule matches
rc=0
$verify --ini "$T/good.ini" $smtp --send --subject "Weekly report" --poll-ms 300 --no-db \
	--format json --out "$T/n.json" --quiet || rc=$?
is "$rc" 1 "unmatched subject: exit 1"
is "$(j '.mailboxes[0].steps[4].status' "$T/n.json")" fail "unmatched subject: fails at seen"
like "$(j '.mailboxes[0].probe.outcome' "$T/n.json")" "^rejected" "unmatched subject: the connector's reason"
is "$(j '.mailboxes[0].steps[5].status' "$T/n.json")" pass "unmatched subject: the probe is still deleted"
is "$(mailbox_count "$WORLD_USER_ALICE")" "$n_alice" "alice: back to the messages she had"

# usage and input errors
rc=0; $verify >/dev/null 2>&1 || rc=$?
is "$rc" 64 "no arguments: EX_USAGE"
rc=0; $verify --ini a.ini --fleet b >/dev/null 2>&1 || rc=$?
is "$rc" 64 "two sources: EX_USAGE"
rc=0; $verify --ini "$T/good.ini" --subject x >/dev/null 2>&1 || rc=$?
is "$rc" 64 "--subject without --send: EX_USAGE"
rc=0; $verify --state "$T/none.db" >/dev/null 2>&1 || rc=$?
is "$rc" 66 "missing state database: EX_NOINPUT"
rc=0; $verify --ini "$T/missing.ini" --no-db --format json --out "$T/m.json" --quiet \
	2>"$T/m.err" || rc=$?
is "$rc" 66 "missing --ini file: EX_NOINPUT, as documented"
like "$(cat "$T/m.err")" "^mailshift-verify: INI file '$T/missing.ini' not found" "missing INI: said so"
rc=0; $verify --fleet "$T/no-fleet" --no-db 2>"$T/m.err" >/dev/null || rc=$?
is "$rc" 66 "missing --fleet folder: EX_NOINPUT"
like "$(cat "$T/m.err")" "fleet folder '$T/no-fleet' not found" "missing --fleet: says not found"
rc=0; $verify --ini "$T/good.ini" --no-db --out /nonexistent/dir/x.json --quiet 2>/dev/null || rc=$?
is "$rc" 73 "unwritable --out: EX_CANTCREAT"
done_testing
