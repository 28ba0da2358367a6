#!/bin/bash
# No mail deleted without its event, and no lasting block from one message:
#  - a POP3 UIDL handed to new mail, two messages under one UIDL (scripted
#    server: Dovecot never does this);
#  - a download that fails fails the message, nothing is deleted;
#  - a rejected mail cannot make a later mail with its Message-ID "done";
#  - an emptied state database does not deliver kept mail again, and a
#    first run leaves mail older than LastRunDate alone;
#  - a message too big to read, or whose attachments pass the parser's
#    limit, is recorded as failed, the rest of the mailbox goes on, and
#    after [State] MaxAttempts it is quarantined (--failed, --retry-failed);
#  - MSGIN on a file system of its own.
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MS_LIB/lib-world.sh"
world_up

at_exit 'umount "$T/mnt" 2>/dev/null'
msg() {	# msg FILE SUBJECT [MESSAGE-ID] [FROM]
	printf 'From: %s\r\nTo: ops@contoso.test\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s>\r\n\r\nbody of %s\r\n' \
		"${4:-erp@contoso.test}" "$2" "$(date -R)" "${3:-$(openssl rand -hex 8)@test}" "$2" >"$1"
}
# General lines: defaults unless the extra lines set the key
general() {	# general EXTRA
	for kv in UseLastRunDate=False DeleteEmails=Match DownloadEmails=False; do
		printf '%s\n' "$1" | grep -q "^${kv%%=*}=" || echo "$kv"
	done
	printf '%s\n' "$1"
}
pop_ini() {	# pop_ini FILE MSGIN PORT [extra General lines]
	cat >"$1" <<EOI
[General]
MSGINDirectory=$2
OpConUser=ocadm
OpConUserPassword=pw
$(general "${4:-}")
[Mail]
User=u@contoso.test
Password=Scripted-Pw-1
Server=127.0.0.1
Port=$3
EmailProtocol=POP
SecurityProtocol=NONE
[State]
MaxAttempts=2
[Configuration1]
SubjectLineMask=^Job (\w+)$
Event=\$JOB:ADD,[[\$DATE]],SCHED,[[1]],OCADHOC
EOI
}
events_for() { cat "$1"/* 2>/dev/null | grep -c "SCHED,$2,"; }

# ---- 1. a UIDL reused for new mail ------------------------------------------
msg "$T/a.eml" "Job ALPHA"
msg "$T/b.eml" "Job BRAVO"
msg "$T/c.eml" "Job CHARLIE"
msg "$T/d.eml" "Job DELTA"
cat >"$T/reuse.json" <<EOJ
{"protocol": "pop3",
 "messages": {"A": {"uidl": "u1", "file": "$T/a.eml"},
              "B": {"uidl": "u1", "file": "$T/b.eml"},
              "C": {"uidl": "u2", "file": "$T/c.eml"},
              "D": {"uidl": "u2", "file": "$T/d.eml"}},
 "sessions": [["A"], ["B"], ["C", "D"], ["C", "D"]]}
EOJ
start_scripted "$T/reuse.json"
mkdir -p "$T/m1"
pop_ini "$T/r.ini" "$T/m1" "$sport"
"$BIN/mailshift" -inifile:"$T/r.ini" -v >"$T/r1.out" 2>&1; rc=$?
is $rc 0 "reused UIDL: first run exits 0"
is "$(events_for "$T/m1" ALPHA)" 1 "reused UIDL: the first message's event"
"$BIN/mailshift" -inifile:"$T/r.ini" -v >"$T/r2.out" 2>&1; rc=$?
sed 's/^/# /' "$T/r2.out"
is $rc 0 "reused UIDL: second run exits 0"
is "$(events_for "$T/m1" BRAVO)" 1 "a new message under an old UIDL gets its event"
ok_rc "$(grep -q 'deleted B\|deleted u1' "$T/srv.log"; echo $?)" "and is deleted only after it"
ok_rc "$(grep -q '1 deleted' "$T/r2.out"; echo $?)" "the summary counts the delete"
ok_rc "$(grep -q 'now names another message' "$T/r2.out"; echo $?)" "the run says the key was reused"
# two different messages under one UIDL in one listing
"$BIN/mailshift" -inifile:"$T/r.ini" -v >"$T/r3.out" 2>&1; rc=$?
sed 's/^/# /' "$T/r3.out"
is $rc 0 "duplicate UIDL: exit 0"
is "$(events_for "$T/m1" CHARLIE)" 1 "duplicate UIDL: the first message's event"
is "$(events_for "$T/m1" DELTA)" 1 "duplicate UIDL: the second message's event"
"$BIN/mailshift" -inifile:"$T/r.ini" -v >"$T/r4.out" 2>&1
is "$(events_for "$T/m1" CHARLIE)$(events_for "$T/m1" DELTA)" 11 "a later run raises neither again"
is "$(ls "$T/m1" | wc -l)" 4 "four events in all, one per message"
stop_scripted

# ---- 5. a message too big to read never blocks the mailbox ------------------------
python3 - "$T/big.eml" <<'EOP'
import sys
with open(sys.argv[1], "w") as f:
    f.write("From: erp@contoso.test\r\nSubject: Job HUGE\r\nMessage-ID: <huge@test>\r\n\r\n")
    line = "x" * 998 + "\r\n"
    for _ in range(70 * 1024):
        f.write(line)
EOP
msg "$T/e.eml" "Job ECHO"
cat >"$T/big.json" <<EOJ
{"protocol": "pop3",
 "messages": {"BIG": {"uidl": "big", "file": "$T/big.eml"},
              "E": {"uidl": "e1", "file": "$T/e.eml"}},
 "sessions": [["BIG", "E"]]}
EOJ
start_scripted "$T/big.json"
mkdir -p "$T/m2" "$T/dl2"
pop_ini "$T/b.ini" "$T/m2" "$sport" "DownloadFolder=$T/dl2
DownloadEmails=True"
"$BIN/mailshift" -inifile:"$T/b.ini" >"$T/b1.out" 2>&1; rc=$?
sed 's/^/# /' "$T/b1.out"
is $rc 2 "a message too big to read: the run exits 2"
is "$(events_for "$T/m2" ECHO)" 1 "the message after it still gets its event"
ok_rc "$(grep -q 'failed pop:big: cannot be processed: .*limit' "$T/b1.out"; echo $?)" \
	"the failed message is named with its reason"
ok_rc "$(grep -q 'deleted big' "$T/srv.log"; test $? = 1; echo $?)" "the big message is not deleted"
"$BIN/mailshift" -inifile:"$T/b.ini" >"$T/b2.out" 2>&1; rc=$?
is $rc 2 "second run: the big message fails again (exit 2)"
ok_rc "$(grep -q 'quarantined pop:big' "$T/b2.out"; echo $?)" "MaxAttempts=2: quarantined"
is "$(events_for "$T/m2" ECHO)" 1 "the good message was not raised twice"
"$BIN/mailshift" -inifile:"$T/b.ini" >"$T/b3.out" 2>&1; rc=$?
sed 's/^/# /' "$T/b3.out"
is $rc 0 "a quarantined message no longer fails the run"
ok_rc "$(grep -q '1 quarantined message still on the server' "$T/b3.out"; echo $?)" \
	"but every run says it is there"
"$BIN/mailshift" --failed -inifile:"$T/b.ini" >"$T/f.out" 2>&1; rc=$?
sed 's/^/# /' "$T/f.out"
is $rc 0 "--failed exits 0"
ok_rc "$(grep -q '^quarantined pop:big' "$T/f.out" && grep -q 'subject:  Job HUGE' "$T/f.out" &&
	grep -q 'tries:    2' "$T/f.out" && grep -q 'reason: .*limit' "$T/f.out"; echo $?)" \
	"--failed lists it with subject, tries and reason"
"$BIN/mailshift" --retry-failed -inifile:"$T/b.ini" -v >"$T/b4.out" 2>&1; rc=$?
is $rc 2 "--retry-failed tries it again (and it fails again)"
ok_rc "$(grep -q "failed pop:big" "$T/b4.out"; echo $?)" "--retry-failed: a fresh set of tries"
stop_scripted

# ---- 8. memory is bounded by the message, not a multiple of it -------------------
if unmeasurable; then
	skip "sanitizer or valgrind build: peak RSS is theirs (measured in make check)"
	skip "sanitizer or valgrind build: peak RSS is theirs (measured in make check)"
elif [ -x /usr/bin/time ]; then
	python3 - "$T/60m.eml" <<'EOP'
import base64, os, sys
with open(sys.argv[1], "w") as f:
    f.write("From: erp@contoso.test\r\nSubject: Job SIXTY\r\nMessage-ID: <sixty@test>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=BB\r\n\r\n"
            "--BB\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--BB\r\n"
            "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
            "Content-Disposition: attachment; filename=\"data.bin\"\r\n\r\n")
    f.write(base64.encodebytes(os.urandom(42 * 1024 * 1024)).decode().replace("\n", "\r\n"))
    f.write("--BB--\r\n")
EOP
	size_kb=$(( $(stat -c %s "$T/60m.eml") / 1024 ))
	for proto in pop3 imap; do
		cat >"$T/mem.json" <<EOJ
{"protocol": "$proto", "messages": {"S": {"uidl": "s1", "uid": 9, "file": "$T/60m.eml"},
 "T": {"uidl": "t1", "uid": 3, "file": "$T/e.eml"}}, "sessions": [["S"], ["T"]]}
EOJ
		start_scripted "$T/mem.json"
		mkdir -p "$T/mm-$proto" "$T/md-$proto"
		pop_ini "$T/mem-$proto.ini" "$T/mm-$proto" "$sport" "DownloadEmails=True
DownloadFolder=$T/md-$proto"
		[ $proto = imap ] && sed -i 's/^EmailProtocol=POP/EmailProtocol=IMAP/' "$T/mem-$proto.ini"
		/usr/bin/time -f %M -o "$T/peak.kb" "$BIN/mailshift" -inifile:"$T/mem-$proto.ini" \
			>"$T/mem.out" 2>&1
		peak=$(tail -n 1 "$T/peak.kb")
		# the same run over a small message: the process's own baseline
		/usr/bin/time -f %M -o "$T/base.kb" "$BIN/mailshift" -inifile:"$T/mem-$proto.ini" \
			>>"$T/mem.out" 2>&1
		base=$(tail -n 1 "$T/base.kb")
		ok_rc "$([ $((peak - base)) -lt $((2 * size_kb)) ] && [ "$(events_for "$T/mm-$proto" SIXTY)" = 1 ] &&
			cmp -s "$T/60m.eml" "$(ls -S "$T/md-$proto"/*.eml | head -1)"; echo $?)" \
			"$proto: a ${size_kb} KB message saved whole in $((peak - base)) KB above the baseline (< 2x)"
		stop_scripted
	done
else
	skip "/usr/bin/time missing: peak memory not measured"
	skip "/usr/bin/time missing: peak memory not measured"
fi

# ---- a server that refuses every message is the server's problem, not theirs -------
cat >"$T/refuse.json" <<EOJ
{"protocol": "imap",
 "messages": {"R1": {"uid": 1, "file": "$T/a.eml", "refuse": true},
              "R2": {"uid": 2, "file": "$T/b.eml"},
              "R3": {"uid": 3, "file": "$T/c.eml", "refuse": true},
              "R4": {"uid": 4, "file": "$T/d.eml", "refuse": true},
              "R5": {"uid": 5, "file": "$T/e.eml", "refuse": true},
              "R6": {"uid": 6, "file": "$T/a.eml", "refuse": true}},
 "sessions": [["R1", "R2", "R3", "R4", "R5", "R6"]]}
EOJ
start_scripted "$T/refuse.json"
mkdir -p "$T/m9" "$T/dl9"
pop_ini "$T/q.ini" "$T/m9" "$sport" "DownloadEmails=True
DownloadFolder=$T/dl9"
sed -i 's/^EmailProtocol=POP/EmailProtocol=IMAP/' "$T/q.ini"
"$BIN/mailshift" -inifile:"$T/q.ini" >"$T/q.out" 2>&1; rc=$?
sed 's/^/# /' "$T/q.out"
is $rc 2 "a server refusing messages: exit 2"
is "$(events_for "$T/m9" BRAVO)" 1 "one refused message does not stop the next one"
ok_rc "$(grep -q '3 messages in a row could not be fetched' "$T/q.out"; echo $?)" \
	"three refusals in a row stop the run as the server's fault"
"$BIN/mailshift" --failed -inifile:"$T/q.ini" >"$T/qf.out" 2>&1
is "$(grep -c '^failed ' "$T/qf.out")" 3 "only the messages before the verdict are recorded as failed"
stop_scripted

# ---- 12. no certificate warning without TLS ------------------------------------
ok_rc "$(grep -qi 'SelfSignedCertificate' "$T/b1.out" "$T/r1.out"; test $? = 1; echo $?)" \
	"SecurityProtocol=NONE: no SelfSignedCertificate warning"

# ---- the mail world from here: Dovecot over IMAP -------------------------------
U=alice
clear_mailbox $U
imap_ini() {	# imap_ini FILE MSGIN [extra General lines] [rules]
	cat >"$1" <<EOI
[General]
MSGINDirectory=$2
OpConUser=ocadm
OpConUserPassword=pw
$(general "${3:-}")
[Mail]
User=$WORLD_USER_ALICE
Password=$WORLD_PASS_ALICE
Server=127.0.0.1
Port=$WORLD_IMAPS_PORT
SecurityProtocol=TLS1_2
EmailProtocol=IMAP
SelfSignedCertificate=False
CAFile=$WORLD_CA_FILE
[Configuration1]
SubjectLineMask=^Job (\w+)$
Event=\$JOB:ADD,[[\$DATE]],SCHED,[[1]],OCADHOC
${4:-}
EOI
}

# ---- 2. a download that fails fails the message --------------------------------
msg "$T/g.eml" "Job GOLF"
deliver "$T/g.eml" $WORLD_USER_ALICE
wait_mailbox_count $U 1
: >"$T/notadir"
mkdir -p "$T/m3"
imap_ini "$T/d.ini" "$T/m3" "UseLastRunDate=False
DownloadEmails=True
DownloadFolder=$T/notadir/dl"
"$BIN/mailshift" -inifile:"$T/d.ini" >"$T/d1.out" 2>&1; rc=$?
sed 's/^/# /' "$T/d1.out"
is $rc 2 "download folder unusable: exit 2"
is "$(ls "$T/m3" | wc -l)" 0 "no event written for a message that was not saved"
is "$(mailbox_count $U)" 1 "and the mail stays on the server"
ok_rc "$(grep -q 'DownloadFolder' "$T/d1.out"; echo $?)" "the error names DownloadFolder"
sed -i "s|^DownloadFolder=.*|DownloadFolder=$T/dl3|" "$T/d.ini"
"$BIN/mailshift" -inifile:"$T/d.ini" >"$T/d2.out" 2>&1; rc=$?
is $rc 0 "folder fixed: the next run succeeds"
is "$(events_for "$T/m3" GOLF)" 1 "the event written once"
is "$(ls "$T/dl3"/*.eml 2>/dev/null | wc -l)" 1 "the message saved"
is "$(mailbox_count $U)" 0 "and only then deleted"

# ---- 3. a rejected mail does not suppress a later one with its Message-ID --------
clear_mailbox $U
msg "$T/spam.eml" "Cheap watches" "20240101.job@erp.contoso.test" "spam@evil.test"
deliver "$T/spam.eml" $WORLD_USER_ALICE
wait_mailbox_count $U 1
mkdir -p "$T/m4"
imap_ini "$T/s.ini" "$T/m4" "UseLastRunDate=False"
"$BIN/mailshift" -inifile:"$T/s.ini" >"$T/s1.out" 2>&1
msg "$T/real.eml" "Job HOTEL" "20240101.job@erp.contoso.test"
deliver "$T/real.eml" $WORLD_USER_ALICE
wait_mailbox_count $U 2
"$BIN/mailshift" -inifile:"$T/s.ini" -v >"$T/s2.out" 2>&1; rc=$?
sed 's/^/# /' "$T/s2.out"
is $rc 0 "same Message-ID as a rejected spam: exit 0"
is "$(events_for "$T/m4" HOTEL)" 1 "the legitimate mail gets its event"
is "$(mailbox_count $U)" 1 "it is deleted, the spam is kept"

# ---- 4. an emptied state database does not deliver kept mail again ------------------
clear_mailbox $U
msg "$T/i.eml" "Job INDIA"
deliver "$T/i.eml" $WORLD_USER_ALICE
wait_mailbox_count $U 1
mkdir -p "$T/m5"
imap_ini "$T/e.ini" "$T/m5" "UseLastRunDate=True
DeleteEmails=None"
"$BIN/mailshift" -inifile:"$T/e.ini" >"$T/e1.out" 2>&1; rc=$?
is $rc 0 "kept mail: first run exits 0"
is "$(events_for "$T/m5" INDIA)" 1 "its event once"
ok_rc "$(grep -q '^LastRunDate=' "$T/e.ini"; echo $?)" "LastRunDate written"
truncate -s 0 "$T/e.ini.state.db"
sleep 1
"$BIN/mailshift" -inifile:"$T/e.ini" >"$T/e2.out" 2>&1; rc=$?
sed 's/^/# /' "$T/e2.out"
is "$(events_for "$T/m5" INDIA)" 1 "emptied database: the kept mail is not raised again"
ok_rc "$(grep -q 'holds nothing for .*LastRunDate' "$T/e2.out"; echo $?)" "and the run says so"

# ---- first run of a migrated INI: mail before LastRunDate is the incumbent's ----------
clear_mailbox $U
msg "$T/old.eml" "Job JULIET"
deliver "$T/old.eml" $WORLD_USER_ALICE
wait_mailbox_count $U 1
sleep 2
mkdir -p "$T/m6"
imap_ini "$T/l.ini" "$T/m6" "UseLastRunDate=True
LastRunDate=$(date '+%Y-%m-%dT%H:%M:%S')"
sleep 2
msg "$T/new.eml" "Job KILO"
deliver "$T/new.eml" $WORLD_USER_ALICE
wait_mailbox_count $U 2
"$BIN/mailshift" -inifile:"$T/l.ini" -v >"$T/l1.out" 2>&1; rc=$?
sed 's/^/# /' "$T/l1.out"
is $rc 0 "first run after cutover: exit 0"
is "$(events_for "$T/m6" JULIET)" 0 "mail older than LastRunDate raises nothing"
is "$(events_for "$T/m6" KILO)" 1 "mail after it is processed"
"$BIN/mailshift" -inifile:"$T/l.ini" >"$T/l2.out" 2>&1
is "$(events_for "$T/m6" JULIET)" 0 "nor on the next run"

# ---- rejected mail gets one more look when the rules change ----------------------
clear_mailbox $U
msg "$T/rep.eml" "Report 77"
deliver "$T/rep.eml" $WORLD_USER_ALICE
wait_mailbox_count $U 1
mkdir -p "$T/m8"
imap_ini "$T/c.ini" "$T/m8" "UseLastRunDate=False" "[Audit]
RejectEvent=\$CONSOLE:DISPLAY,rejected [[SUBJECT]]"
"$BIN/mailshift" -inifile:"$T/c.ini" >"$T/c1.out" 2>&1
"$BIN/mailshift" -inifile:"$T/c.ini" >"$T/c2.out" 2>&1
is "$(cat "$T"/m8/* | grep -c 'rejected Report 77')" 1 "rejected: its RejectEvent once, however many runs"
# a change that still does not match it: judged again, quietly
sed -i 's/^SubjectLineMask=^Job (\\w+)\$$/SubjectLineMask=^Job (\\w+)!?$/' "$T/c.ini"
"$BIN/mailshift" -inifile:"$T/c.ini" >"$T/c3.out" 2>&1
is "$(cat "$T"/m8/* | grep -c 'rejected Report 77')" 1 "rules changed, still rejected: no second RejectEvent"
# the fix the site made for it
sed -i 's/^SubjectLineMask=.*/SubjectLineMask=^(?:Job|Report) (\\w+)$/' "$T/c.ini"
"$BIN/mailshift" -inifile:"$T/c.ini" >"$T/c4.out" 2>&1; rc=$?
sed 's/^/# /' "$T/c4.out"
is $rc 0 "rules fixed: exit 0"
is "$(events_for "$T/m8" 77)" 1 "the kept rejected mail matches under the new rules"
is "$(mailbox_count $U)" 0 "and is deleted as a match"
"$BIN/mailshift" -inifile:"$T/c.ini" >"$T/c5.out" 2>&1
is "$(events_for "$T/m8" 77)" 1 "exactly once"

# ---- a first poll of many new messages costs no fsync per message ------------------
clear_mailbox $U
python3 "$MS_TOP/bench/gen-maildir.py" "$(maildir $U)" 600
chown -R 65534:65534 "$(maildir $U)"
mkdir -p "$T/m10"
imap_ini "$T/g.ini" "$T/m10" "UseLastRunDate=False
DeleteEmails=None"
sed -i 's/^SubjectLineMask=.*/SubjectLineMask=^Report (\\d+) attached$/' "$T/g.ini"
if command -v strace >/dev/null 2>&1 && [ -z "${MAILSHIFT_VALGRIND:-}" ]; then
	# (LeakSanitizer cannot run under ptrace: off for this one run)
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
	strace -f -c -o "$T/g.strace" -e trace=fsync,fdatasync \
		"$BIN/mailshift" -inifile:"$T/g.ini" >"$T/g.out" 2>&1; rc=$?
	syncs=$(awk '$NF == "fsync" || $NF == "fdatasync" { s += $4 } END { print s + 0 }' "$T/g.strace")
	is $rc 0 "600 new messages, 1 matching: exit 0"
	is "$(ls "$T/m10" | wc -l)" 1 "its event written"
	ok_rc "$([ "$syncs" -lt 40 ]; echo $?)" "group commits: $syncs fsyncs for 600 new messages (was 2 a message)"
else
	skip "strace missing or under valgrind: fsyncs not counted"
	skip "strace missing or under valgrind: fsyncs not counted"
	skip "strace missing or under valgrind: fsyncs not counted"
fi

# ---- 6. attachments past the parser's limit do not let AttachmentMask decide -----------
clear_mailbox $U
python3 - "$T/many.eml" <<'EOP'
import sys
with open(sys.argv[1], "w") as f:
    f.write("From: erp@contoso.test\r\nSubject: Job LIMA\r\nMessage-ID: <lima@test>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=BB\r\n\r\n")
    for i in range(1005):
        f.write("--BB\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; "
                "filename=\"a%04d.txt\"\r\n\r\nx\r\n" % i)
    f.write("--BB--\r\n")
EOP
msg "$T/m.eml" "Job MIKE"
deliver "$T/many.eml" $WORLD_USER_ALICE
deliver "$T/m.eml" $WORLD_USER_ALICE
wait_mailbox_count $U 2
mkdir -p "$T/m7"
imap_ini "$T/a.ini" "$T/m7" "UseLastRunDate=False" "AttachmentMask=a1004\\.txt\$
ProcessAttachments=True
[Configuration2]
SubjectLineMask=^Job (MIKE)\$
Event=\$JOB:ADD,[[\$DATE]],SCHED,[[1]],OCADHOC"
"$BIN/mailshift" -inifile:"$T/a.ini" >"$T/a1.out" 2>&1; rc=$?
sed 's/^/# /' "$T/a1.out"
is $rc 2 "1,005 attachments with an AttachmentMask rule: exit 2"
ok_rc "$(grep -q 'more than 1000 attachments' "$T/a1.out"; echo $?)" "the limit is named"
is "$(events_for "$T/m7" LIMA)" 0 "no decision on a partial attachment list"
is "$(events_for "$T/m7" MIKE)" 1 "the next message is processed"
is "$(mailbox_count $U)" 1 "the cut message stays on the server"

# ---- 10. MSGIN on a file system of its own -----------------------------------------------
clear_mailbox $U
msg "$T/n.eml" "Job NOVEMBER"
deliver "$T/n.eml" $WORLD_USER_ALICE
wait_mailbox_count $U 1
mkdir -p "$T/mnt"
if mount -t tmpfs -o size=1m tmpfs "$T/mnt" 2>/dev/null; then
	imap_ini "$T/x.ini" "$T/mnt" "UseLastRunDate=False"
	"$BIN/mailshift" -inifile:"$T/x.ini" >"$T/x1.out" 2>&1; rc=$?
	sed 's/^/# /' "$T/x1.out"
	is $rc 0 "MSGIN is a mount point: exit 0"
	is "$(events_for "$T/mnt" NOVEMBER)" 1 "the event is in MSGIN"
	is "$(find "$T/mnt" -maxdepth 1 -type f | wc -l)" 1 "and nothing else visible there"
	umount "$T/mnt"
else
	echo "# cannot mount a tmpfs (not root?)"
	ok_rc 1 "MSGIN on its own file system: tmpfs available (needs root)"
fi

done_testing
