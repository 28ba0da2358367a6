#!/bin/bash
# Exactly once under kills, for mailshift.exe: 1,000 matching messages, the
# Windows process killed (SIGKILL to its Linux pid: a crash, for Windows)
# at random moments of its work across runs while a stand-in scheduler
# consumes MSGIN.
# After a final clean run every message produced its event exactly once,
# none was lost, no partial or temporary file ever appeared in MSGIN, and
# no message was deleted before its event was on disk.  The Linux
# version of this is tests/tool/t0310.  WIN_MESSAGES / WIN_KILLS resize it.
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MS_LIB/lib-world.sh"
. "$MS_TOP/tests/windows/wine-lib.sh"
world_up
wine_start

N=${WIN_MESSAGES:-1000}
K=${WIN_KILLS:-20}
U=dave; D=onprem.test
clear_mailbox $U $D
mkdir -p "$T/msgin" "$T/consumed"
W=$(winpath "$T")

md=$(maildir $U $D)
now=$(date -R) secs=$(date +%s)
i=1
while [ $i -le $N ]; do
	printf 'From: ops@onprem.test\r\nSubject: Run job J%d on %d\r\nDate: %s\r\nMessage-ID: <w1-%d@test>\r\n\r\nbody %d\r\n' \
		$i $i "$now" $i $i >"$md/tmp/w1.$i"
	mv "$md/tmp/w1.$i" "$md/new/$secs.M${i}P$$.test"
	i=$((i + 1))
done
chown -R 65534:65534 "$md"
is "$(mailbox_count $U $D)" "$N" "$N messages in the mailbox"

CR=$(printf '\r')
sed "s/\$/$CR/" >"$T/c.ini" <<EOI
[General]
MSGINDirectory=$W\\msgin
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
CAFile=$(winpath "$WORLD_CA_FILE")
[Configuration1]
SubjectLineMask=^Run job (J\d+) on (\d+)$
Event=\$JOB:ADD,[[\$DATE]],W1,[[1]],OCADHOC
EOI

msgin_count() {
	local f n=0
	for f in "$T"/msgin/* "$T"/msgin/.[!.]*; do
		[ -e "$f" ] && n=$((n + 1))
	done
	echo $n
}

bad_files=0
consume() {
	for f in "$T"/msgin/* "$T"/msgin/.[!.]*; do
		[ -e "$f" ] || continue
		case $(basename "$f") in
		mailshift-*.txt) ;;
		*) bad_files=$((bad_files + 1)); echo "# unexpected file in MSGIN: $f" ;;
		esac
		if ! tail -c 2 "$f" | od -An -c | grep -q '\\r  *\\n'; then
			bad_files=$((bad_files + 1)); echo "# partial event file: $f"
		fi
		mv "$f" "$T/consumed/$(basename "$f").$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')"
	done
}

early_delete=0 killed=0 with_work=0 bad_end=0
k=1
while [ $k -le $K ]; do
	# a run that is not killed polls the whole mailbox: the runs after
	# it have nothing to be killed in
	[ "$(mailbox_count $U $D)" -gt 0 ] || break
	with_work=$((with_work + 1))
	# not through winrun: $! must be the process itself (wine execs into
	# the Windows process, keeping the pid)
	"$WINE" "$WIN_BIN/mailshift.exe" "-inifile:$W\\c.ini" >/dev/null 2>&1 &
	pid=$!
	# when: at a random point of this run's work, not by the clock alone.
	# A run here starts and logs in in about a second, then writes its
	# events 64 at a time, a batch every few tenths of a second: kills
	# 0.3-2.8 s after the start left 150 messages all done by the fourth
	# run.  One run in five is killed 0.3-1.3 s after its start (starting,
	# connecting, logging in, the first batch); the others once the run
	# has put r (1-4) events into MSGIN (its first batch), plus 0-19 ms:
	# amid the next batch.  A run so takes one or two batches at most,
	# whatever the machine's speed (about 50 messages), and 1,000 last
	# through most of the 20 kills.
	rnd=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
	r=$((rnd % 5))
	if [ $r = 0 ]; then
		ms=$((300 + rnd % 1000))
	else
		ms=$((rnd % 20))
		i=0
		# counted without a process per look (ls | wc): on a busy
		# machine those made the kill late, the run did more
		while pid_running $pid && [ "$(msgin_count)" -lt $r ] && [ $i -lt 1000 ]; do
			sleep 0.01; i=$((i + 1))
		done
	fi
	sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
	if kill -9 $pid 2>/dev/null; then
		killed=$((killed + 1))
		wait $pid 2>/dev/null
	else
		# ended by itself: done (0), or the state still locked by the
		# run killed just before, until wineserver has seen it die (2)
		wait $pid 2>/dev/null; rc=$?
		case $rc in
		0|2) ;;
		*) bad_end=$((bad_end + 1)); echo "# run $k ended by itself with exit $rc" ;;
		esac
	fi
	consume
	deleted=$((N - $(mailbox_count $U $D)))
	delivered=$(cat "$T"/consumed/* 2>/dev/null | sort -u | wc -l)
	[ "$deleted" -le "$delivered" ] || { early_delete=$((early_delete + 1)); echo "# kill $k: $deleted deleted, $delivered delivered"; }
	k=$((k + 1))
done
echo "# $killed of the $with_work runs that had messages to take were killed while running; $(ls "$T/consumed" | wc -l) events consumed by then"
# How many runs the messages last depends on how much each run does
# before its kill (the machine's speed): the kills are counted, not
# judged against the 20 runs.  A run that was not killed ended cleanly:
# it took what was left, or found the state locked by the run killed just
# before it.
ok_rc "$([ $killed -ge 5 ]; echo $?)" \
	"at least 5 runs with messages left were killed mid-run ($killed of $with_work)"
is "$bad_end" 0 "every run that was not killed ended cleanly (exit 0, or 2: the state locked)"
is "$bad_files" 0 "no partial, temporary or foreign file ever seen in MSGIN"
is "$early_delete" 0 "never more messages deleted than events delivered"

winrun mailshift "-inifile:$W\\c.ini" >"$T/final.out" 2>"$T/final.err"; rc=$?
consume
is $rc 0 "the final run exits cleanly"
[ $rc = 0 ] || sed 's/^/# /' "$T/final.err"
cat "$T"/consumed/* | tr -d '\r' >"$T/all"
is "$(wc -l <"$T/all")" "$N" "exactly $N events over all runs"
is "$(sed -n 's/.*,W1,\(J[0-9]*\),.*/\1/p' "$T/all" | sort -u | wc -l)" "$N" "one event for each of the $N messages"
is "$(mailbox_count $U $D)" 0 "every message deleted after its event"
is "$(find "$T/msgin" -type f | wc -l)" 0 "MSGIN empty after the scheduler"
is "$(find "$T/.mailshift-staging-msgin" -type f 2>/dev/null | wc -l)" 0 "no file left in the staging folder"

done_testing
