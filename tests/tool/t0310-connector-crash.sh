#!/bin/bash
# R1 crash safety: 1,000 matching messages, the connector killed with
# SIGKILL at 50 random points across runs while a stand-in scheduler
# consumes MSGIN.  After a final clean run every message produced its
# event exactly once, none was lost, no partial or temporary file ever
# appeared in MSGIN, and no message was deleted before its event was on
# disk.  R1_MESSAGES / R1_KILLS make it smaller or larger.
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MS_LIB/lib-world.sh"
world_up

N=${R1_MESSAGES:-1000}
K=${R1_KILLS:-50}
U=dave; D=onprem.test
clear_mailbox $U $D
mkdir -p "$T/msgin" "$T/consumed"

# fill the mailbox directly (Maildir), as fast as Dovecot can index it
md=$(maildir $U $D)
i=1
while [ $i -le $N ]; do
	printf 'From: ops@onprem.test\r\nSubject: Run job J%d on %d\r\nDate: %s\r\nMessage-ID: <r1-%d@test>\r\n\r\nbody %d\r\n' \
		$i $i "$(date -R)" $i $i >"$md/tmp/r1.$i"
	mv "$md/tmp/r1.$i" "$md/new/$(date +%s).M${i}P$$.test"
	i=$((i + 1))
done
chown -R 65534:65534 "$md"
is "$(mailbox_count $U $D)" "$N" "$N messages in the mailbox"

cat >"$T/c.ini" <<EOI
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
Port=$WORLD_IMAPS_PORT
EmailProtocol=IMAP
SecurityProtocol=TLS1_2
SelfSignedCertificate=False
CAFile=$WORLD_CA_FILE
[Configuration1]
SubjectLineMask=^Run job (J\d+) on (\d+)$
Event=\$JOB:ADD,[[\$DATE]],R1,[[1]],OCADHOC
EOI

# the scheduler: takes complete event files out of MSGIN
bad_files=0
consume() {
	for f in "$T"/msgin/* "$T"/msgin/.[!.]*; do
		[ -e "$f" ] || continue
		case $(basename "$f") in
		mailshift-*.txt) ;;
		*) bad_files=$((bad_files + 1)); echo "# unexpected file in MSGIN: $f" ;;
		esac
		# a complete event is one line ending in CRLF
		if ! tail -c 2 "$f" | od -An -c | grep -q '\\r  *\\n'; then
			bad_files=$((bad_files + 1)); echo "# partial event file: $f"
		fi
		mv "$f" "$T/consumed/$(basename "$f").$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')"
	done
}

early_delete=0
k=1
while [ $k -le $K ]; do
	"$BIN/mailshift" -inifile:"$T/c.ini" >/dev/null 2>&1 &
	pid=$!
	ms=$(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 1500 ))
	sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	consume
	deleted=$((N - $(mailbox_count $U $D)))
	delivered=$(cat "$T"/consumed/* 2>/dev/null | sort -u | wc -l)
	[ "$deleted" -le "$delivered" ] || { early_delete=$((early_delete + 1)); echo "# kill $k: $deleted deleted, $delivered delivered"; }
	k=$((k + 1))
done
is "$bad_files" 0 "no partial, temporary or foreign file ever seen in MSGIN"
is "$early_delete" 0 "never more messages deleted than events delivered"

"$BIN/mailshift" -inifile:"$T/c.ini" >"$T/final.out" 2>"$T/final.err"; rc=$?
consume
ok_rc "$( [ $rc = 0 ] || [ $rc = 0 ]; echo $?)" "the final run exits cleanly (rc $rc)"
cat "$T"/consumed/* | tr -d '\r' >"$T/all"
is "$(wc -l <"$T/all")" "$N" "exactly $N events over all runs"
is "$(sed -n 's/.*,R1,\(J[0-9]*\),.*/\1/p' "$T/all" | sort -u | wc -l)" "$N" "one event for each of the $N messages"
is "$(mailbox_count $U $D)" 0 "every message deleted after its event"
is "$(find "$T/msgin" -type f | wc -l)" 0 "MSGIN empty after the scheduler"
stage=$(dirname "$T/msgin")/.mailshift-staging-msgin
is "$(find "$stage" -type f | wc -l)" 0 "no file left in the staging folder"

done_testing
