#!/bin/bash
# mailshift-verify under load: Graph 429 with Retry-After is waited out;
# 50 mailboxes (IMAP, POP and Graph on two mailboxes) verified with probes
# by 12 threads: all pass, Graph never sees more than 4 concurrent
# requests per mailbox, every probe is deleted and nothing else; a fleet
# folder (--fleet) and a mailshift-migrate state database (--state) as
# sources; the default results database beside the state database.
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MS_LIB/lib-world.sh"
world_up
verify=${MAILSHIFT_BIN:-$MS_TOP/bin}/mailshift-verify
export T0702_SECRET=$WORLD_APP_SECRET

ini() {	# ini FILE PROTO PORT USER
	mkdir -p "$(dirname "$1")"
	world_oauth_ini "$1" "$T/msgin" "$2" "$3" "$4" "$WORLD_APP_ID" "ClientSecret=env:T0702_SECRET"
	cat >>"$1" <<'EOF'
[Configuration1]
SubjectLineMask=Nightly*
Event=$JOB:ADD,now,Daily,[[SUBJECT]],opcon
EOF
}
smtp="--smtp 127.0.0.1:$WORLD_SUBMISSION_PORT"
ids() { mailbox_files "$1" | xargs -r grep -h -i '^Message-ID:' | tr -d '\r' | sort; }

# Graph 429: three refusals with Retry-After: 1, then service
ini "$T/graph.ini" GRAPH 443 "$WORLD_USER_OPS"
world_ctl reset >/dev/null
world_ctl graph-fail 429 3 1 >/dev/null
rc=0
$verify --ini "$T/graph.ini" --send --poll-ms 300 --no-db --format json --out "$T/429.json" --quiet || rc=$?
is "$rc" 0 "Graph 429: waited out, exit 0"
is "$(world_ctl graph-stats | jq -r '[.requests | to_entries[] | select(.key | test("failed")) | .value] | add')" 3 \
	"Graph 429: the three refusals were served"
like "$(jq -r '.mailboxes[0].steps[2].seconds' "$T/429.json")" "^[3-9]" \
	"Graph 429: login waited Retry-After three times"

# 50 mailboxes, 12 threads
for u in "$WORLD_USER_ALICE" "$WORLD_USER_OPS"; do
	printf 'From: bob@contoso.test\r\nTo: %s\r\nSubject: Nightly keep\r\nDate: %s\r\nMessage-ID: <keep-%s@t0702>\r\n\r\nkeep\r\n' \
	    "$u" "$(date -R)" "$RANDOM$RANDOM" >"$T/m.eml"
	deliver_mail "$u" "$T/m.eml" || bail_out "cannot deliver"
done
ids "$WORLD_USER_ALICE" >"$T/alice.before"
ids "$WORLD_USER_OPS" >"$T/ops.before"
args=()
for i in $(seq 1 50); do
	u=$WORLD_USER_ALICE; [ $((i % 2)) = 0 ] && u=$WORLD_USER_OPS
	case $((i % 3)) in
	0) ini "$T/many/m$i.ini" IMAP "$WORLD_IMAPS_PORT" "$u" ;;
	1) ini "$T/many/m$i.ini" POP "$WORLD_POP3S_PORT" "$u" ;;
	2) ini "$T/many/m$i.ini" GRAPH 443 "$u" ;;
	esac
	args+=(--ini "$T/many/m$i.ini")
done
world_ctl reset >/dev/null
world_ctl graph-delay 100 >/dev/null   # long enough for requests to overlap
start=$(date +%s)
rc=0
$verify "${args[@]}" $smtp --send --subject Nightly --concurrency 12 --poll-ms 300 \
	--db "$T/many.db" --format junit --out "$T/many.xml" --quiet || rc=$?
took=$(( $(date +%s) - start ))
max=$(world_ctl graph-stats | jq -r '[.max_concurrent[]] | max')
world_ctl graph-delay 0 >/dev/null
is "$rc" 0 "50 mailboxes: all passed (exit 0, $took s)"
ok "50 mailboxes: JUnit well-formed" xmllint --noout "$T/many.xml"
is "$(xmllint --xpath 'count(//testcase)' "$T/many.xml")" 300 "50 mailboxes: 300 testcases"
is "$(xmllint --xpath 'count(//failure)' "$T/many.xml")" 0 "50 mailboxes: no failure"
is "$(sqlite3 "$T/many.db" 'SELECT count(*) FROM verify_mailboxes WHERE passed')" 50 \
	"50 mailboxes: all recorded as passed"
ok "Graph: at most 4 concurrent requests per mailbox (saw $max)" test "$max" -le 4
ok "Graph: requests of one mailbox did overlap (threads at work)" test "$max" -ge 2
is "$(ids "$WORLD_USER_ALICE")" "$(cat "$T/alice.before")" "alice: every probe deleted, nothing else"
is "$(ids "$WORLD_USER_OPS")" "$(cat "$T/ops.before")" "ops: every probe deleted, nothing else"

# a fleet folder
mkdir -p "$T/fleet/jobs" "$T/fleet/machines/APP01/C/jobs"
cp "$T/many/m3.ini" "$T/fleet/machines/APP01/C/jobs/a.ini"
cp "$T/many/m4.ini" "$T/fleet/machines/APP01/C/jobs/b.ini"
rc=0
$verify --fleet "$T/fleet" --format json --out "$T/fleet.json" --quiet || rc=$?
is "$rc" 0 "--fleet: exit 0"
is "$(jq -r '[.mailboxes[].label] | join(",")' "$T/fleet.json")" \
	'APP01:C:\jobs\a.ini,APP01:C:\jobs\b.ini' "--fleet: every INI under machines/, labelled"
ok "--fleet: results in FLEET/verify.db" test -s "$T/fleet/verify.db"

# a mailshift-migrate state database: only the applied INI files
sqlite3 "$T/fleet/.mailshift-migrate.db" "
CREATE TABLE runs (id INTEGER PRIMARY KEY, created INTEGER NOT NULL, fleet TEXT NOT NULL,
  transport TEXT NOT NULL, state TEXT NOT NULL);
CREATE TABLE items (run INTEGER NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,
  path TEXT NOT NULL, machine TEXT NOT NULL, jobs TEXT NOT NULL, state TEXT NOT NULL,
  reason TEXT, written INTEGER NOT NULL DEFAULT 0, orig BLOB, orig_sha TEXT, new BLOB,
  new_sha TEXT, seal TEXT, updated INTEGER NOT NULL, PRIMARY KEY (run, seq));
INSERT INTO runs VALUES (1, 0, '$T/fleet', 'imap', 'open');
INSERT INTO items (run, seq, kind, path, machine, jobs, state, updated)
  VALUES (1, 1, 'ini', 'machines/APP01/C/jobs/b.ini', 'APP01',
          'PAYROLL/MAIL_IN (APP01), PAYROLL/MAIL_<b>2 (APP01)', 'applied', 0);
INSERT INTO items (run, seq, kind, path, machine, jobs, state, updated)
  VALUES (1, 2, 'ini', 'machines/APP01/C/jobs/a.ini', 'APP01', '', 'failed', 0);"
rm -f "$T/fleet/verify.db"
rc=0
$verify --state "$T/fleet/.mailshift-migrate.db" --send --poll-ms 300 $smtp \
	--format json --out "$T/state.json" --quiet || rc=$?
is "$rc" 0 "--state: exit 0"
is "$(jq -r '[.mailboxes[].label] | join(",")' "$T/state.json")" \
	"machines/APP01/C/jobs/b.ini" "--state: only the applied INI file"
is "$(jq -r '.source' "$T/state.json")" "--state $T/fleet/.mailshift-migrate.db --run 1" \
	"--state: the run recorded"
ok "--state: results beside the state database" test -s "$T/fleet/verify.db"
like "$($verify history --state "$T/fleet/.mailshift-migrate.db")" "PASS .*ops@contoso.test" \
	"history --state reads the same database"
rc=0
$verify --state "$T/fleet/.mailshift-migrate.db" --format html --out "$T/state.html" --quiet || rc=$?
is "$rc" 0 "--state --format html: exit 0"
ok "--state HTML: the OpCon schedule and jobs of the mailbox, escaped" \
	grep -qF 'OpCon: PAYROLL/MAIL_IN (APP01), PAYROLL/MAIL_&lt;b&gt;2 (APP01)' "$T/state.html"
rc=0; $verify --state "$T/fleet/.mailshift-migrate.db" --run 9 >/dev/null 2>&1 || rc=$?
is "$rc" 64 "--state --run of an unknown run: EX_USAGE"
done_testing
