#!/bin/bash
# None of the four programs can dump core (a core would hold the mailbox,
# OpCon and client secrets in clear): each is started as nobody on a FIFO
# it blocks reading (verify: on a server that never answers; the audit,
# which reads no FIFO in a fleet, writing a report larger than a pipe
# holds to a pipe nobody reads), and /proc shows it non-dumpable (its
# files there are root's, not nobody's) with a core size limit of 0.  A
# plain process run the same way shows the check can fail.
set -u
. "$(dirname "$0")/../lib/test-lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${MAILSHIFT_BIN:-$top/bin}
tmp=$T
if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null 2>&1 || [ -n "${MAILSHIFT_VALGRIND:-}" ]; then
	echo "1..0 # SKIP needs root and setpriv, and the programs themselves (not valgrind's)"
	exit 0
fi
chmod 0755 "$tmp"
mkdir -p "$tmp/fleet/jobs"
mkfifo "$tmp/in.ini" "$tmp/map.json" "$tmp/out.fifo"
chmod 0666 "$tmp/in.ini" "$tmp/map.json" "$tmp/out.fifo"
# 600 connector jobs whose INI files are missing: a text report of ~140 KB
python3 -c 'import json; print(json.dumps([{"name": "J%d" % i, "primaryMachine": "M",
    "jobType": "Windows", "details": {"commandLine": "smartemail.exe -inifile:C:\\x%d.ini" % i}}
    for i in range(600)]))' >"$tmp/fleet/jobs/a.json"
chmod -R a+rX "$tmp/fleet"
# the pipe the audit writes it to, held open here and never read: the
# audit blocks once it is full (64 KB)
exec 9<>"$tmp/out.fifo"
nobody=$(id -u nobody)

check() {	# check NAME PROGRAM ARGS...: run as nobody, inspect, stop
	cname=$1; shift
	prog=$1; shift
	cp "$prog" "$tmp/" || return 1
	# started with cores allowed: the program itself must forbid them
	(ulimit -c unlimited 2>/dev/null; exec setpriv --reuid=nobody --regid=nogroup \
		--clear-groups "$tmp/$(basename "$prog")" "$@") >"${OUT:-/dev/null}" 2>/dev/null &
	pid=$!
	i=0
	while [ $i -lt 50 ] && [ "$(stat -c %u "/proc/$pid" 2>/dev/null)" != "$nobody" ]; do
		sleep 0.05; i=$((i + 1))
	done
	sleep 0.3
	user=$(stat -c %u "/proc/$pid" 2>/dev/null)
	owner=$(stat -c %u "/proc/$pid/environ" 2>/dev/null)
	core=$(awk '/Max core file size/ {print $5}' "/proc/$pid/limits" 2>/dev/null)
	kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
	echo "# $cname: runs as $user, /proc files owned by $owner, core limit $core"
	[ "$user" = "$nobody" ] && [ "$owner" = 0 ] && [ "$core" = 0 ]
}

ok "mailshift" check mailshift "$BIN/mailshift" -inifile:"$tmp/in.ini" --dry-run
OUT=$tmp/out.fifo ok "mailshift-audit" check audit "$BIN/mailshift-audit" --fleet "$tmp/fleet"
ok "mailshift-migrate" check migrate "$BIN/mailshift-migrate" plan --fleet "$tmp/fleet" --map "$tmp/map.json"
# verify refuses a FIFO for its INI: it waits on a server that never greets
python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(4)
print(s.getsockname()[1], flush=True); time.sleep(30)' >"$tmp/port" &
lpid=$!
i=0
while [ ! -s "$tmp/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
cat >"$tmp/v.ini" <<EOI
[General]
MSGINDirectory=$tmp/msgin
[Mail]
User=u@contoso.test
Password=Silent-Pw-1
Server=127.0.0.1
Port=$(cat "$tmp/port")
EmailProtocol=POP
SecurityProtocol=NONE
[Configuration1]
SubjectLineMask=^x$
Event=\$CONSOLE:DISPLAY,x
EOI
chmod 0644 "$tmp/v.ini"
mkdir -p "$tmp/home"
chown nobody "$tmp/home"
HOME=$tmp/home MAILSHIFT_HOME=$tmp/home \
	ok "mailshift-verify" check verify "$BIN/mailshift-verify" --ini "$tmp/v.ini"
kill $lpid 2>/dev/null
check control "$(command -v sleep)" 5
ok "a plain process fails the same check (control)" [ $? != 0 ]

done_testing
