#!/bin/bash
# mailshift-verify.exe under Wine against the mail world, beside the Linux
# build on the same mailboxes (CRLF INIs with Windows paths for the .exe):
# IMAP and POP with XOAUTH2 (a client secret from the environment) and Graph
# with a certificate pass config, token and login read-only; with --send the
# probe goes out over SMTP submission, is seen and cleaned up; the JSON
# report says what the Linux build's says, but for timings, ids and paths;
# a wrong secret fails the mailbox with Linux's exit code and AADSTS code;
# --out replaces a report and the results database is written.
# The Linux version of this is tests/tool/t0700 and t0701.
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MS_LIB/lib-world.sh"
. "$MS_TOP/tests/windows/wine-lib.sh"
world_up
wine_start
command -v jq >/dev/null || bail_out "no jq: run scripts/deps"

CR=$(printf '\r')
W=$(winpath "$T")
export T0410_SECRET=$WORLD_APP_SECRET
cat "$WORLD_CERT_APP_CERT" "$WORLD_CERT_APP_KEY" >"$T/cert.pem"
chmod 600 "$T/cert.pem"

# ini SIDE NAME PROTO PORT USER CLIENT CREDENTIAL(secret|cert|wrong)
ini() {
	side=$1 name=$2
	if [ "$side" = win ]; then
		f=$T/$name.win.ini root="$W\\$name-win\\" ca=$(winpath "$WORLD_CA_FILE") pem=$(winpath "$T/cert.pem") eol=$CR
	else
		f=$T/$name.ini root="$T/$name-linux/" ca=$WORLD_CA_FILE pem=$T/cert.pem eol=
	fi
	case $7 in
	secret) cred="ClientSecret=env:T0410_SECRET" ;;
	wrong) cred="ClientSecret=Wrong-Canary-Secret-55" ;;
	cert) cred="CertificateFile=$pem" ;;
	esac
	WORLD_INI_CA=$ca world_oauth_ini "$f.lf" "${root}msgin" "$3" "$4" "$5" "$6" "$cred"
	cat >>"$f.lf" <<'EOI'
[Configuration1]
SubjectLineMask=Nightly check*
Event=$JOB:ADD,now,Daily,[[SUBJECT]],opcon
EOI
	sed "s/\$/$eol/" "$f.lf" >"$f" && rm -f "$f.lf"
}
for side in linux win; do
	ini $side imap IMAP "$WORLD_IMAPS_PORT" "$WORLD_USER_ALICE" "$WORLD_APP_ID" secret
	ini $side pop POP "$WORLD_POP3S_PORT" "$WORLD_USER_OPS" "$WORLD_APP_ID" secret
	ini $side graph GRAPH 443 "$WORLD_USER_ALICE" "$WORLD_CERT_APP_ID" cert
	ini $side wrong IMAP "$WORLD_IMAPS_PORT" "$WORLD_USER_ALICE" "$WORLD_APP_ID" wrong
done
all_l="--ini $T/imap.ini --ini $T/pop.ini --ini $T/graph.ini"
all_w="--ini $W\\imap.win.ini --ini $W\\pop.win.ini --ini $W\\graph.win.ini"
smtp="--smtp 127.0.0.1:$WORLD_SUBMISSION_PORT"
ver_l() { MAILSHIFT_HOME=$T/home-l "$BIN/mailshift-verify" "$@"; }
ver_w() { MAILSHIFT_HOME="$W\\home-w" winrun mailshift-verify "$@"; }
# norm: a JSON report without what differs between two runs by nature
# (times and timestamps, probe ids, Microsoft's trace and correlation ids, the version of
# the program that wrote it); both builds' names of $T become T, every
# backslash a slash, NAME.win.ini NAME.ini
norm() {
	jq -S --arg w "$W" --arg l "$T" 'walk(
		if type == "object" then
			with_entries(select(.key | test("^(seconds|duration|elapsed|started|finished|at|time|seen_after|generated|version|host)$") | not))
		elif type == "string" then
			(split($w) | join("T")) | (split($l) | join("T")) | gsub("\\\\"; "/") | gsub("\\.win\\.ini"; ".ini")
		else . end)' "$1" |
	sed -E -e 's/MSV-[0-9a-f]{16}/MSV-X/g' -e 's/[0-9]+(\.[0-9]+)? ?(s|ms)\b/N\2/g' \
		-e 's/(trace|correlation) id [0-9a-f-]{36}/\1 id X/g' \
		-e 's/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z/TIMESTAMP/g'
}
same_json() {
	norm "$1" >"$1.n"
	norm "$2" >"$2.n"
	ok "$3" cmp -s "$1.n" "$2.n"
	cmp -s "$1.n" "$2.n" || diff "$1.n" "$2.n" | head -n 20 | sed 's/^/# /'
}

# --- read-only: config, token, login
ver_l $all_l --no-db --format json --out "$T/ro.l.json" --quiet 2>"$T/ro.l.err"; rl=$?
ver_w $all_w --no-db --format json --out "$W\\ro.w.json" --quiet 2>"$T/ro.w.err"; rw=$?
is "$rl $rw" "0 0" "read-only: both builds exit 0 (every mailbox passed)"
[ $rw = 0 ] || sed 's/^/# /' "$T/ro.w.err"
is "$(jq -r '.summary.passed' "$T/ro.w.json" 2>/dev/null)" 3 "read-only: verify.exe passed 3 mailboxes"
is "$(jq -r '[.mailboxes[].steps[] | select(.status == "pass") | .step] | unique | join(",")' "$T/ro.w.json" 2>/dev/null)" \
	"config,login,token" "read-only: config, token and login passed under Wine"
is "$(jq -r '[.mailboxes[].protocol] | join(",")' "$T/ro.w.json" 2>/dev/null)" "imap,pop,graph" \
	"read-only: IMAP, POP and Graph"
like "$(jq -r '.mailboxes[2].steps[0].message' "$T/ro.w.json" 2>/dev/null)" "certificate valid until" \
	"read-only: the Graph app's certificate was read and checked under Wine"
same_json "$T/ro.l.json" "$T/ro.w.json" "read-only: the JSON report is the Linux build's (times, ids, paths aside)"

# --- with a probe: sent over SMTP submission, seen by the connector's
# reading code, cleaned up; the mailboxes as before
n_alice=$(mailbox_count "$WORLD_USER_ALICE") n_ops=$(mailbox_count "$WORLD_USER_OPS")
ver_w $all_w $smtp --send --poll-ms 300 --timeout 60 --db "$W\\verify.db" \
	--format json --out "$W\\send.w.json" >"$T/send.w.txt" 2>"$T/send.w.err"; rw=$?
is $rw 0 "--send: verify.exe exits 0"
[ $rw = 0 ] || sed 's/^/# /' "$T/send.w.err" "$T/send.w.txt"
is "$(jq -r '[.mailboxes[].steps[] | .status] | unique | join(",")' "$T/send.w.json" 2>/dev/null)" pass \
	"--send: every step of every mailbox passed (config to cleanup)"
is "$(jq -r '[.mailboxes[].probe.seen_after | select(. != null and . >= 0)] | length' "$T/send.w.json" 2>/dev/null)" 3 \
	"--send: each probe was seen"
like "$(tr -d '\r' <"$T/send.w.txt")" "PASS  alice@contoso.test  imap" "--send: the terminal summary lists the mailbox"
is "$(mailbox_count "$WORLD_USER_ALICE") $(mailbox_count "$WORLD_USER_OPS")" "$n_alice $n_ops" \
	"--send: the probes were cleaned up, nothing else removed"
ok_rc "$(test -s "$T/verify.db"; echo $?)" "--send: the results database was written (SQLite under Windows)"
ver_w history --db "$W\\verify.db" >"$T/hist.w" 2>&1; rh=$?
is $rh 0 "history of the results database: exit 0"
like "$(tr -d '\r' <"$T/hist.w")" "alice@contoso\.test" "history lists the mailboxes"

# --- a wrong secret: the mailbox fails, as on Linux
ver_l --ini "$T/wrong.ini" --no-db --format json --out "$T/wrong.l.json" --quiet 2>/dev/null; rl=$?
ver_w --ini "$W\\wrong.win.ini" --no-db --format json --out "$W\\wrong.w.json" --quiet 2>/dev/null; rw=$?
is $rw 1 "a wrong client secret: verify.exe exits 1 (a mailbox failed)"
is $rw $rl "... as the Linux build does"
like "$(jq -r '[.mailboxes[0].steps[] | select(.status == "fail") | .step + ": " + .message] | join(" ")' "$T/wrong.w.json" 2>/dev/null)" \
	"^token: .*AADSTS7000215" "... at the token step, with the AADSTS code"
same_json "$T/wrong.l.json" "$T/wrong.w.json" "... and the JSON report is the Linux build's (times, ids, paths aside)"
ok_rc "$(grep -q 'Wrong-Canary-Secret-55' "$T/wrong.w.json" "$T/ro.w.err"; [ $? = 1 ]; echo $?)" \
	"the wrong secret is not in the report"

# --out replaces an existing report (platform_replace)
ver_w --ini "$W\\imap.win.ini" --no-db --format json --out "$W\\ro.w.json" --quiet 2>/dev/null; rw=$?
is $rw 0 "--out over an existing report: exit 0"
is "$(jq -r '.summary.passed' "$T/ro.w.json" 2>/dev/null)" 1 "... and the report was replaced (one mailbox now)"

done_testing
