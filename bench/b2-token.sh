#!/bin/sh
# b2-token.sh WORLD_DIR WORK SEQ CONC: SEQ consecutive and CONC concurrent
# connector runs with OAuth client credentials (IMAP, the ops mailbox);
# prints "seq_requests conc_requests seq_seconds conc_seconds failures".
set -u
w=$1 work=$2 seq=$3 conc=$4
top=$(cd "$(dirname "$0")/.." && pwd)
MSBIN=${MSBIN:-$top/bin}
. "$w/env"
ctl() { "$top/tests/peers/world" ctl "$w" "$@" >/dev/null; }
requests() {
	"$top/tests/peers/world" ctl "$w" counters |
	    sed -n 's/.*"token_requests":\([0-9]*\).*/\1/p'
}
mkdir -p "$work/msgin"
cat >"$work/b2.ini" <<EOI
[General]
MSGINDirectory=$work/msgin
UseLastRunDate=False
DeleteEmails=None
ExitCodeForNoMatchingEmails=0
[Mail]
User=$WORLD_USER_OPS
Server=127.0.0.1
Port=$WORLD_IMAPS_PORT
EmailProtocol=IMAP
SecurityProtocol=TLS1_2
AuthMethod=OAuth2
SelfSignedCertificate=False
CAFile=$WORLD_CA_FILE
[OAuth]
Authority=$WORLD_TOKEN_URL
TenantId=$WORLD_TENANT
ClientId=$WORLD_APP_ID
ClientSecret=$WORLD_APP_SECRET
Flow=ClientCredentials
CAFile=$WORLD_CA_FILE
[Configuration1]
SubjectLineMask=^Bench token (\S+)$
Event=\$CONSOLE:DISPLAY,[[1]]
EOI
fails=0
# a fresh token cache: the first run of each phase must ask once
export MAILSHIFT_HOME=$work/home-seq
mkdir -p "$MAILSHIFT_HOME"
ctl reset
t0=$(date +%s%N)
i=0
while [ "$i" -lt "$seq" ]; do
	"$MSBIN/mailshift" -inifile:"$work/b2.ini" --dry-run >/dev/null 2>>"$work/b2.err" ||
	    fails=$((fails + 1))
	i=$((i + 1))
done
t1=$(date +%s%N)
r_seq=$(requests)
export MAILSHIFT_HOME=$work/home-conc
mkdir -p "$MAILSHIFT_HOME"
ctl reset
t2=$(date +%s%N)
i=0
pids=""
while [ "$i" -lt "$conc" ]; do
	"$MSBIN/mailshift" -inifile:"$work/b2.ini" --dry-run >/dev/null 2>>"$work/b2.err" &
	pids="$pids $!"
	i=$((i + 1))
done
for p in $pids; do wait "$p" || fails=$((fails + 1)); done
t3=$(date +%s%N)
r_conc=$(requests)
echo "$r_seq $r_conc $(( (t1 - t0) / 1000000 )) $(( (t3 - t2) / 1000000 )) $fails"
