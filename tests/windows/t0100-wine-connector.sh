#!/bin/bash
# mailshift.exe under Wine against the real Dovecot (IMAP and POP3): the
# same event files, byte for byte, as the Linux build for the same mailbox;
# TLS verified against the world's CA file; a rerun writes nothing twice;
# the same exit codes and errors for bad input.
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MS_LIB/lib-world.sh"
. "$MS_TOP/tests/windows/wine-lib.sh"
world_up
wine_start
# diag_file FILE...: a file's lines as TAP comments
diag_file() { sed 's/^/# /' "$@" >&2; }

CR=$(printf '\r')
W=$(winpath "$T")
export MAILSHIFT_HOME="$W\\home"

# write_ini FILE DIRNAME PROTO PORT USER PASS: the same INI for both builds;
# the Windows one with Windows paths and CRLF lines, as OpCon's agents have
write_ini() {
	f=$1 d=$2
	if [ "${f%.win.ini}" != "$f" ]; then
		root="$W\\$d" ca=$(winpath "${CAFILE:-$WORLD_CA_FILE}") sep='\'
	else
		root="$T/$d" ca=${CAFILE:-$WORLD_CA_FILE} sep=/
	fi
	mkdir -p "$T/$d/msgin"
	sed "s/\$/$CR/" >"$f" <<EOI
[General]
MSGINDirectory=$root${sep}msgin
OpConUser=ocadm
OpConUserPassword=Canary-OpCon-7731
UseLastRunDate=False
DeleteEmails=None
ExitCodeForNoMatchingEmails=5
[Mail]
User=$5
Password=$6
Server=127.0.0.1
Port=$4
EmailProtocol=$3
SecurityProtocol=TLS1_2
SelfSignedCertificate=False
CAFile=$ca
[Audit]
LogRejects=True
AuditRejectLogFile=$root${sep}rejects.log
LogAccepts=True
AuditAcceptLogFile=$root${sep}accepts.log
[Configuration1]
SubjectLineMask=^Run job (\S+) on (\d+)$
Event=\$JOB:ADD,[[\$DATE]],PAYROLL,[[1]],OCADHOC
Event2=\$PROPERTY:SET,LASTRUN,[[2]]
EOI
}

# same_events DIR_LINUX DIR_WINDOWS NAME: same file names, same bytes
same_events() {
	a=$(cd "$T/$1/msgin" && ls -A) b=$(cd "$T/$2/msgin" && ls -A)
	is "$b" "$a" "$3: the same event file names as the Linux build"
	same=0
	for f in $a; do cmp -s "$T/$1/msgin/$f" "$T/$2/msgin/$f" || same=1; done
	ok_rc $same "$3: every event file byte-identical to the Linux build's"
}

for proto in IMAP POP3; do
	if [ $proto = IMAP ]; then u=bob; port=$WORLD_IMAPS_PORT; user=$WORLD_USER_BOB pass=$WORLD_PASS_BOB
	else u=alice; port=$WORLD_POP3S_PORT; user=$WORLD_USER_ALICE pass=$WORLD_PASS_ALICE; fi
	p=$(echo $proto | tr A-Z a-z)
	clear_mailbox $u
	mkmsg "$T/m1" "Bob <bob@contoso.test>" "Run job JOB_A on 42"
	mkmsg "$T/m2" "carol@fabrikam.test" "=?UTF-8?B?$(printf 'Run job GRÜSSE on 7' | base64)?="
	mkmsg "$T/m3" "dave@onprem.test" "Lunch on Friday?"
	for m in m1 m2 m3; do deliver "$T/$m" "$user"; done
	wait_mailbox_count $u 3

	write_ini "$T/$p.ini" "$p-linux" $proto "$port" "$user" "$pass"
	write_ini "$T/$p.win.ini" "$p-win" $proto "$port" "$user" "$pass"
	MAILSHIFT_HOME=$T/home "$BIN/mailshift" -inifile:"$T/$p.ini" >"$T/out.l" 2>"$T/err.l"; rl=$?
	winrun mailshift "-inifile:$W\\$p.win.ini" >"$T/out.w" 2>"$T/err.w"; rw=$?
	is $rl 0 "$proto: the Linux build exits 0"
	is $rw 0 "$proto: mailshift.exe exits 0"
	[ $rw = 0 ] || sed 's/^/# /' "$T/err.w"
	is "$(ls "$T/$p-win/msgin" | wc -l)" 4 "$proto: four event files"
	same_events "$p-linux" "$p-win" "$proto"
	is "$(cat "$T/$p-win"/msgin/* | grep -c "^\\\$JOB:ADD,\[\[\$DATE\]\],PAYROLL,\(JOB_A\|GRUSSE\),OCADHOC,ocadm,Canary-OpCon-7731$CR\$")" 2 \
		"$proto: job events carry the captures (a UTF-8 one folded to ASCII), CRLF lines"
	is "$(grep -c "$CR$CR" "$T/$p-win/accepts.log")" 0 "$proto: accept log lines end in one CR LF, not CR CR LF"
	is "$(grep -c accepted "$T/$p-win/accepts.log")" 2 "$proto: accept log has both messages"
	ok_rc "$(grep -q 'Lunch on Friday?.*No matching subjects found' "$T/$p-win/rejects.log"; echo $?)" \
		"$proto: reject log names the reason"
	ok_rc "$(ls -A "$T/$p-win/msgin" | grep -q '^\.'; [ $? = 1 ]; echo $?)" "$proto: no temporary file left in MSGIN"
	ok_rc "$(test -s "$T/$p.win.ini.state.db"; echo $?)" "$proto: state database beside the INI"
	ok_rc "$(test -d "$T/$p-win/.mailshift-staging-msgin"; echo $?)" \
		"$proto: events staged beside MSGIN (same volume), found through the backslashes"

	rm -f "$T/$p-win"/msgin/*
	winrun mailshift "-inifile:$W\\$p.win.ini" >"$T/out.w" 2>"$T/err.w"; rw=$?
	is $rw 5 "$proto: a rerun matches nothing new (ExitCodeForNoMatchingEmails)"
	is "$(ls "$T/$p-win/msgin" | wc -l)" 0 "$proto: a rerun writes no event twice"
	ok_rc "$(grep -q Canary-OpCon-7731 "$T/out.w" "$T/err.w" "$T/$p-win/accepts.log" "$T/$p-win/rejects.log"; [ $? = 1 ]; echo $?)" \
		"$proto: the OpCon password appears in no output or log"
done

# --- a UTF-16 INI with a BOM (as Notepad saves it), under a non-ASCII name:
# its own state, so --dry-run finds both messages again and writes nothing
{ printf '\377\376'; iconv -f UTF-8 -t UTF-16LE "$T/imap.win.ini"; } >"$T/Grüße.win.ini"
rm -f "$T/imap-win"/msgin/*
winrun mailshift "-inifile:$W\\Grüße.win.ini" --dry-run >"$T/out.w" 2>"$T/err.w"; rw=$?
is $rw 0 "a UTF-16LE INI with a BOM, named Grüße.win.ini: read, both messages match (--dry-run)"
[ $rw = 0 ] || diag_file "$T/err.w"
is "$(ls "$T/imap-win/msgin" | wc -l)" 0 "... and --dry-run writes no event"

# --- TLS is verified: a CA that did not sign the server's certificate -------
CAFILE=$WORLD_ROGUE_CERT write_ini "$T/rogue.win.ini" rogue-win IMAP "$WORLD_IMAPS_PORT" \
	"$WORLD_USER_BOB" "$WORLD_PASS_BOB"
CAFILE=$WORLD_ROGUE_CERT write_ini "$T/rogue.ini" rogue-linux IMAP "$WORLD_IMAPS_PORT" \
	"$WORLD_USER_BOB" "$WORLD_PASS_BOB"
MAILSHIFT_HOME=$T/home "$BIN/mailshift" -inifile:"$T/rogue.ini" >/dev/null 2>"$T/err.l"; rl=$?
winrun mailshift "-inifile:$W\\rogue.win.ini" >/dev/null 2>"$T/err.w"; rw=$?
isnt $rw 0 "a server certificate the CA file does not vouch for: mailshift.exe fails"
is $rw $rl "... with the Linux build's exit code"
ok_rc "$(grep -qi 'certificate' "$T/err.w"; echo $?)" "... and says it is the certificate"
is "$(ls "$T/rogue-win/msgin" | wc -l)" 0 "... and writes no event"

# --- no CA file: the system's trust (Windows' certificate store), which does
# not know the test CA: refused, as the Linux build refuses with its bundle
grep -v '^CAFile=' "$T/imap.win.ini" >"$T/noca.win.ini"
grep -v '^CAFile=' "$T/imap.ini" >"$T/noca.ini"
MAILSHIFT_HOME=$T/home "$BIN/mailshift" -inifile:"$T/noca.ini" >/dev/null 2>"$T/err.l"; rl=$?
winrun mailshift "-inifile:$W\\noca.win.ini" >/dev/null 2>"$T/err.w"; rw=$?
isnt $rw 0 "no CA file: the test CA is not in Windows' store, mailshift.exe refuses the server"
is $rw $rl "... with the Linux build's exit code"
ok_rc "$(grep -qi 'certificate' "$T/err.w"; echo $?)" "... and says it is the certificate"

# --- one run per INI at a time (the state lock: LockFileEx on Windows): a
# run waits on a server that accepts and never speaks; a second run of the
# same INI must refuse at once
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(5)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
c = [s.accept() for _ in range(2)]
time.sleep(60)' "$T/mute.port" &
mute=$!
i=0; while [ ! -s "$T/mute.port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
write_ini "$T/lock.win.ini" lock-win IMAP "$(cat "$T/mute.port")" "$WORLD_USER_BOB" "$WORLD_PASS_BOB"
"$WINE" "$WIN_BIN/mailshift.exe" "-inifile:$W\\lock.win.ini" >/dev/null 2>&1 &
first=$!
i=0; while [ ! -e "$T/lock.win.ini.state.db" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
sleep 1
winrun mailshift "-inifile:$W\\lock.win.ini" >/dev/null 2>"$T/err.w"; rw=$?
kill -9 $first $mute 2>/dev/null; wait $first $mute 2>/dev/null
is $rw 2 "a second run of an INI that is running: exit 2"
ok_rc "$(grep -q 'in use by another run' "$T/err.w"; echo $?)" "... saying the state is in use by another run"
[ $rw = 2 ] || diag_file "$T/err.w"
winrun mailshift "-inifile:$W\\lock.win.ini" --dry-run >/dev/null 2>"$T/err.w"; rw=$?
ok_rc "$(grep -q 'in use by another run' "$T/err.w"; [ $? = 1 ]; echo $?)" \
	"after the first run was killed its lock is gone (rc=$rw)"

# --- bad input: the same exit codes and errors -------------------------------
MAILSHIFT_HOME=$T/home "$BIN/mailshift" -inifile:"$T/missing.ini" >/dev/null 2>"$T/err.l"; rl=$?
winrun mailshift "-inifile:$W\\missing.ini" >/dev/null 2>"$T/err.w"; rw=$?
isnt $rl 0 "missing INI: the Linux build fails"
is $rw $rl "missing INI: mailshift.exe exits as the Linux build does ($rl)"
ok_rc "$(grep -qF 'missing.ini' "$T/err.w"; echo $?)" "missing INI: the error names the file"
[ $rw = $rl ] || { diag_file "$T/err.l"; diag_file "$T/err.w"; }

# the INI path as OpCon passes it: quoted, with a blank in a folder name
mkdir -p "$T/SMArt Email"
cp "$T/imap.win.ini" "$T/SMArt Email/x.win.ini"
winrun mailshift "-inifile:\"$W\\SMArt Email\\x.win.ini\"" >/dev/null 2>"$T/err.w"; rw=$?
is $rw 0 "-inifile:\"...\\SMArt Email\\x.ini\" (quoted, with a blank) is read"
[ $rw = 0 ] && : || diag_file "$T/err.w"

ok_rc "$(ls -A "$MS_TOP" | grep -q '^\.mailshift-staging'; [ $? = 1 ]; echo $?)" \
	"no staging folder in the current folder"

done_testing
