# connector-lib.sh - helpers for the connector's tool tests (sourced).
# Uses the suite's mail world (MS_WORLD_DIR, set by tests/run-all) or
# starts a private one for a test run alone.
top=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${MAILSHIFT_BIN:-$top/bin}
T=$(mktemp -d "${TMPDIR:-/tmp}/mailshift-test.XXXXXX")
own_world=""
cleanup() {
	[ -n "$own_world" ] && "$top/tests/peers/world" stop "$own_world" >/dev/null 2>&1
	[ -n "$own_world" ] && rm -rf "$own_world"
	rm -rf "$T"
}
# a scripted POP3/IMAP server (tests/peers/scripted-server.py) for what
# Dovecot will not do: start_scripted SCENARIO sets $sport; its command
# log is $T/srv.log; stopped by stop_scripted and at exit
spid=""
stop_scripted() { [ -n "$spid" ] && kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; spid=""; }
start_scripted() {
	rm -f "$T/srv.port" "$T/srv.log"
	python3 "$top/tests/peers/scripted-server.py" "$1" "$T/srv.port" "$T/srv.log" &
	spid=$!
	i=0
	while [ ! -s "$T/srv.port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	sport=$(cat "$T/srv.port")
}
trap 'stop_scripted; cleanup' EXIT INT TERM
if [ -z "${MS_WORLD_DIR:-}" ]; then
	own_world=$(mktemp -d "${TMPDIR:-/tmp}/mailshift-world.XXXXXX")
	chmod 0755 "$own_world"
	WORLD_PORT_BASE=${WORLD_PORT_BASE:-26300} \
		"$top/tests/peers/world" start "$own_world" >"$T/world.log" 2>&1 ||
		{ echo "Bail out! the mail world did not start"; cat "$T/world.log"; exit 1; }
	MS_WORLD_DIR=$own_world
fi
. "$MS_WORLD_DIR/env"
export MAILSHIFT_HOME="$T/home"
mkdir -p "$MAILSHIFT_HOME"

n=0; failed=0
ok() {	# ok COND-EXIT-STATUS NAME
	n=$((n + 1))
	if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}
is() {	# is GOT EXPECTED NAME
	n=$((n + 1))
	if [ "$1" = "$2" ]; then echo "ok $n - $3"
	else
		echo "not ok $n - $3"; failed=$((failed + 1))
		printf '#   got:      %s\n#   expected: %s\n' "$1" "$2"
	fi
}
done_testing() { echo "1..$n"; [ "$failed" = 0 ]; }

# maildir of a world user: maildir alice
maildir() { echo "$WORLD_MAIL_ROOT/${2:-contoso.test}/$1/Maildir"; }
# remove every message of a mailbox (the test's starting point), through
# Dovecot so that its index agrees
clear_mailbox() {
	doveadm -c "$WORLD_DIR/dovecot/dovecot.conf" expunge -u "$1@${2:-contoso.test}" \
		mailbox INBOX all >/dev/null 2>&1 ||
		echo "# doveadm expunge failed for $1@${2:-contoso.test}"
}
count_mailbox() {
	d=$(maildir "$1" "${2:-contoso.test}")
	find "$d/new" "$d/cur" -type f 2>/dev/null | wc -l
}
# deliver FILE to RCPT through Postfix's plain injection port
deliver() {
	curl -s --url "smtp://127.0.0.1:$WORLD_SMTP_PORT" \
		--mail-from "sender@example.test" --mail-rcpt "$2" -T "$1" ||
		echo "# delivery of $1 to $2 failed"
}
# make a simple message: mkmsg FILE FROM SUBJECT [BODY]
mkmsg() {
	printf 'From: %s\r\nTo: test@contoso.test\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s@test>\r\n\r\n%s\r\n' \
		"$2" "$3" "$(date -R)" "$(openssl rand -hex 8)" "${4:-hello}" >"$1"
}
# wait until a mailbox holds N messages (delivery is asynchronous)
wait_count() {
	i=0
	while [ "$(count_mailbox "$1" "${3:-contoso.test}")" -lt "$2" ] && [ $i -lt 100 ]; do
		sleep 0.1; i=$((i + 1))
	done
}
skip() {	# skip WHY: counted as a skip, never as a pass
	n=$((n + 1)); echo "ok $n # skip $1"
}
# 1 when the binaries under test cannot have their memory measured
unmeasurable() {
	grep -q __asan_init "$BIN/mailshift" 2>/dev/null || [ -n "${MAILSHIFT_VALGRIND:-}" ]
}
