#!/bin/bash
# R4 faults for the connector: the server drops the IMAP or POP3
# connection mid-fetch and mid-delete (doveadm kick, repeatedly), and
# Dovecot itself is restarted during a run.  Each run exits 0 (the
# backend reconnected) or 2 with a message naming the server; reruns
# converge; after the final clean run every message produced its event
# exactly once and none was deleted before its event was on disk.
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MS_LIB/lib-world.sh"
world_up

U=dave; D=onprem.test
CONF=$WORLD_DIR/dovecot/dovecot.conf
mkdir -p "$T/msgin"

# fill the mailbox directly (Maildir), like t0310: fill PREFIX N
fill() {
	md=$(maildir $U $D)
	i=1
	while [ $i -le "$2" ]; do
		printf 'From: ops@onprem.test\r\nSubject: Drop test %s%d\r\nDate: %s\r\nMessage-ID: <%s-%d@test>\r\n\r\nbody %d\r\n' \
			"$1" $i "$(date -R)" "$1" $i $i >"$md/tmp/$1.$i"
		mv "$md/tmp/$1.$i" "$md/new/$(date +%s).M${i}P$$$1.test"
		i=$((i + 1))
	done
	chown -R 65534:65534 "$md"
}

ini() {	# ini FILE PROTO PORT
	cat >"$1" <<EOI
[General]
MSGINDirectory=$T/msgin
OpConUser=ocadm
OpConUserPassword=pw
UseLastRunDate=False
DeleteEmails=Match
[Mail]
User=$WORLD_USER_DAVE
Password=$WORLD_PASS_DAVE
Server=127.0.0.1
Port=$3
EmailProtocol=$2
SecurityProtocol=TLS1_2
SelfSignedCertificate=False
CAFile=$WORLD_CA_FILE
[Configuration1]
SubjectLineMask=^Drop test ([A-Z]\d+)$
Event=\$JOB:ADD,[[\$DATE]],R4DROP,[[1]],OCADHOC
EOI
}

# distinct events on disk for PREFIX
events() { cat "$T"/msgin/* 2>/dev/null | tr -d '\r' | grep -o ",R4DROP,$1[0-9]*," | sort -u | wc -l; }
events_total() { cat "$T"/msgin/* 2>/dev/null | tr -d '\r' | grep -c ",R4DROP,$1[0-9]*,"; }

dovecot_up() {
	curl -s --max-time 5 --cacert "$WORLD_CA_FILE" \
		--url "imaps://127.0.0.1:$WORLD_IMAPS_PORT/INBOX" \
		--user "$WORLD_USER_DAVE:$WORLD_PASS_DAVE" -X 'NOOP' >/dev/null
}

# the faults, run in the background while the connector runs
kicker() {	# kick the user's sessions every ~150 ms while $1 lives
	while kill -0 "$1" 2>/dev/null; do
		sleep 0.15
		doveadm -c "$CONF" kick "$WORLD_USER_DAVE" >/dev/null 2>&1
	done
}
sessions() {	# the user's IMAP/POP3 session processes (verbose_proctitle)
	for k in $(pgrep -P "$(cat "$WORLD_DIR/dovecot/run/master.pid" 2>/dev/null)" 2>/dev/null); do
		ps -o pid=,args= -p "$k"
	done | awk '/\/(imap|pop3) \[dave@onprem.test/ { print $1 }' | tr '\n' ' '
}
restart_dovecot() {	# stop Dovecot, start it the way tests/peers/world does
	old=$(cat "$WORLD_DIR/dovecot/run/master.pid" 2>/dev/null)
	# wait (up to 1.2 s) for the connector's session to be under way
	i=0
	while [ -z "$(sessions)" ] && [ $i -lt 60 ]; do sleep 0.02; i=$((i + 1)); done
	sleep 0.1
	kids=$(sessions)
	echo "$kids" >>"$T/killed"
	# "doveadm stop" returns when the master is gone, and the master waits
	# for busy sessions to finish (they ignore SIGTERM mid-command); a
	# service manager's restart (systemd's control-group kill) ends them
	doveadm -c "$CONF" stop >/dev/null 2>&1 &
	spid=$!
	sleep 0.05
	[ -n "$kids" ] && kill -KILL $kids 2>/dev/null
	wait $spid
	echo "# Dovecot stopped (sessions killed: ${kids:-none}), starting it again"
	i=0
	while [ -n "$old" ] && kill -0 "$old" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.05; i=$((i + 1))
	done
	rm -f "$WORLD_DIR/dovecot/run/master.pid"
	(
		# like the world's detached(), but sh redirects only fds 0-9
		for fd in 3 4 5 6 7 8 9; do eval "exec $fd>&-"; done
		exec dovecot -c "$CONF"
	) </dev/null >>"$WORLD_DIR/dovecot/start.log" 2>&1
	i=0
	while [ ! -s "$WORLD_DIR/dovecot/run/master.pid" ] && [ $i -lt 100 ]; do
		sleep 0.05; i=$((i + 1))
	done
	rm -f "$WORLD_DIR/dovecot/run/anvil-auth-penalty"
	new=$(cat "$WORLD_DIR/dovecot/run/master.pid" 2>/dev/null)
	# world stop must find the new master
	if [ -n "$new" ] && [ -f "$WORLD_DIR/pids" ]; then
		sed "s/^dovecot .*/dovecot $new/" "$WORLD_DIR/pids" >"$WORLD_DIR/pids.new" &&
			cat "$WORLD_DIR/pids.new" >"$WORLD_DIR/pids" && rm -f "$WORLD_DIR/pids.new"
	fi
}

# run_case NAME PREFIX N PROTO PORT FAULT: fault runs, then clean reruns
run_case() {
	name=$1 p=$2 N=$3 proto=$4 port=$5 fault=$6
	clear_mailbox $U $D
	fill "$p" "$N"
	is "$(mailbox_count $U $D)" "$N" "$name: $N messages in the mailbox"
	ini "$T/$p.ini" "$proto" "$port"
	runs=0 rc=1 bad_rc=0 unclear=0 early=0 faulted=0
	l0=$(wc -l <"$WORLD_DOVECOT_LOG")
	while [ $runs -lt 10 ] && [ $rc != 0 ]; do
		runs=$((runs + 1))
		"$BIN/mailshift" -inifile:"$T/$p.ini" >"$T/$p.$runs.out" 2>"$T/$p.$runs.err" &
		pid=$!
		fpid=""
		if [ $runs -le 2 ]; then
			case $fault in
			kick) kicker $pid & fpid=$! ;;
			restart) restart_dovecot & fpid=$! ;;
			esac
			faulted=$((faulted + 1))
		fi
		wait $pid; rc=$?
		[ -n "$fpid" ] && wait $fpid
		head -3 "$T/$p.$runs.err" |
			sed "s/^/# $name run $runs (rc $rc): /"
		case $rc in
		0) ;;
		2) grep -q "127.0.0.1:$port" "$T/$p.$runs.err" ||
			{ unclear=$((unclear + 1)); echo "# run $runs: exit 2 without naming the server"; } ;;
		*) bad_rc=$((bad_rc + 1)) ;;
		esac
		deleted=$((N - $(mailbox_count $U $D)))
		delivered=$(events "$p")
		[ "$deleted" -le "$delivered" ] ||
			{ early=$((early + 1)); echo "# run $runs: $deleted deleted, $delivered events"; }
		# the scheduler may still need the server: let a restart settle
		[ "$fault" = restart ] && ! dovecot_up && sleep 1
	done
	log=$(tail -n +$((l0 + 1)) "$WORLD_DOVECOT_LOG")
	dropped=$(echo "$log" | grep -c -E "\(dave@onprem.test\).*Disconnected: Server shutting down|(imap|pop3)\([0-9]+\): Warning: Killed with signal")
	started=$(echo "$log" | grep -c "master: Info: Dovecot .* starting up")
	echo "# $name: $faulted faulted runs, $dropped sessions kicked, $started restarts"
	case $fault in
	kick) ok_rc "$( [ "$dropped" -ge 1 ]; echo $?)" "$name: the kicks dropped sessions ($dropped)" ;;
	restart)
		is "$started" "$faulted" "$name: Dovecot restarted during each faulted run"
		killed=$(grep -c '[0-9]' "$T/killed")
		is "$killed" "$faulted" "$name: each restart ended the connector's session" ;;
	esac
	is "$bad_rc" 0 "$name: every run exits 0 or 2"
	is "$unclear" 0 "$name: every exit 2 names the server"
	is "$early" 0 "$name: never a message deleted before its event was on disk"
	is "$rc" 0 "$name: reruns converge to a clean run ($runs runs)"
	is "$(events "$p")" "$N" "$name: one event for each of the $N messages"
	is "$(events_total "$p")" "$N" "$name: no event twice"
	is "$(mailbox_count $U $D)" 0 "$name: the mailbox is empty"
	is "$(find "$T/msgin" -type f ! -name 'mailshift-*.txt' | wc -l)" 0 \
		"$name: no partial or temporary file in MSGIN"
	is "$(find "$T/.mailshift-staging-msgin" -type f 2>/dev/null | wc -l)" 0 \
		"$name: no file left in the staging folder"
}

# Enough mail that a run outlasts the faults: grouped delivery clears 400
# IMAP messages in well under a second (under valgrind the runs are slow
# enough with fewer)
if [ -n "${MAILSHIFT_VALGRIND:-}" ]; then imap_n=400 pop_n=150; else imap_n=1500 pop_n=500; fi
run_case "IMAP kicked" K $imap_n IMAP "$WORLD_IMAPS_PORT" kick
run_case "POP3 kicked" P $pop_n POP3 "$WORLD_POP3S_PORT" kick
run_case "Dovecot restarted" R $imap_n IMAP "$WORLD_IMAPS_PORT" restart

dovecot_up; ok_rc $? "Dovecot answers an IMAP login at the end"
clear_mailbox $U $D

done_testing
