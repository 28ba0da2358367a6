#!/bin/bash
# mailshift.exe with OAuth 2.0 under Wine, against the world's token
# stand-in: IMAP with XOAUTH2 and the Graph stand-in, each with a client
# secret and with a certificate (a client assertion signed under Windows),
# write the same event files, byte for byte, as the Linux build on the same
# mailbox; the token cache works on Windows (a second run asks the token
# stand-in nothing, and writes no event twice); a wrong secret fails as on Linux and is never printed.
# The Linux version of this is tests/tool/t0302.
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MS_LIB/lib-world.sh"
. "$MS_TOP/tests/windows/wine-lib.sh"
world_up
wine_start
ctl() { "$MS_TOP/tests/peers/world" ctl "$MS_WORLD_DIR" "$@"; }
token_requests() { ctl counters | sed -n 's/.*"token_requests":\([0-9]*\).*/\1/p'; }

CR=$(printf '\r')
W=$(winpath "$T")
U=ops
clear_mailbox $U
mkmsg "$T/m1" "bob@contoso.test" "Run job OAUTH_A on 1"
mkmsg "$T/m2" "Carol <carol@fabrikam.test>" "=?UTF-8?B?$(printf 'Run job GRÜSSE on 2' | base64)?="
mkmsg "$T/m3" "bob@contoso.test" "Unrelated news"
for m in m1 m2 m3; do deliver "$T/$m" "$WORLD_USER_OPS"; done
wait_mailbox_count $U 3

cat "$WORLD_CERT_APP_KEY" "$WORLD_CERT_APP_CERT" >"$T/certapp.pem"
chmod 600 "$T/certapp.pem"

# oauth_ini SIDE NAME PROTO PORT CRED(secret|cert): the same job for both
# builds; the Windows one with Windows paths and CRLF lines
oauth_ini() {
	side=$1 name=$2 proto=$3 port=$4 cred=$5
	if [ "$side" = win ]; then
		root="$W\\$name-win" ca=$(winpath "$WORLD_CA_FILE") pem=$(winpath "$T/certapp.pem") s='\'
		f=$T/$name.win.ini
	else
		root="$T/$name-linux" ca=$WORLD_CA_FILE pem=$T/certapp.pem s=/
		f=$T/$name.ini
	fi
	mkdir -p "$T/$name-$side/msgin"
	if [ "$cred" = cert ]; then
		client=$WORLD_CERT_APP_ID credline="CertificateFile=$pem"
	else
		client=$WORLD_APP_ID credline="ClientSecret=$WORLD_APP_SECRET"
	fi
	port_line="Port=$port"
	[ "$port" = 0 ] && port_line="; Graph needs no port"
	sed "s/\$/$CR/" >"$f" <<EOI
[General]
MSGINDirectory=$root${s}msgin
OpConUser=ocadm
OpConUserPassword=Canary-OpCon-7731
UseLastRunDate=False
DeleteEmails=None
ExitCodeForNoMatchingEmails=5
[Mail]
User=$WORLD_USER_OPS
Server=127.0.0.1
$port_line
EmailProtocol=$proto
SecurityProtocol=TLS1_2
AuthMethod=OAuth2
SelfSignedCertificate=False
CAFile=$ca
[OAuth]
Authority=$WORLD_TOKEN_URL
TenantId=$WORLD_TENANT
ClientId=$client
$credline
Flow=ClientCredentials
GraphEndpoint=$WORLD_GRAPH_URL
CAFile=$ca
[Audit]
LogAccepts=True
AuditAcceptLogFile=$root${s}accepts.log
[Configuration1]
SubjectLineMask=^Run job (\S+) on (\d+)$
Event=\$JOB:ADD,[[\$DATE]],SCHED,[[1]],OCADHOC
Event2=\$CONSOLE:DISPLAY,[[SUBJECT]] from [[SENDER]]
EOI
}

# same_events NAME: the same file names and bytes in both MSGIN folders
same_events() {
	a=$(cd "$T/$1-linux/msgin" && ls -A) b=$(cd "$T/$1-win/msgin" && ls -A)
	is "$b" "$a" "$1: the same event file names as the Linux build"
	same=0
	for f in $a; do cmp -s "$T/$1-linux/msgin/$f" "$T/$1-win/msgin/$f" || same=1; done
	ok_rc $same "$1: every event file byte-identical to the Linux build's"
	if [ $same != 0 ]; then
		for f in $a; do diff "$T/$1-linux/msgin/$f" "$T/$1-win/msgin/$f" | sed 's/^/# /' | head -n 6; done
	fi
}

for v in "imap-secret IMAP $WORLD_IMAPS_PORT secret" "imap-cert IMAP $WORLD_IMAPS_PORT cert" \
	"graph-secret GRAPH 0 secret" "graph-cert GRAPH 0 cert"; do
	# shellcheck disable=SC2086
	set -- $v
	name=$1
	oauth_ini linux "$@"
	oauth_ini win "$@"
	MAILSHIFT_HOME=$T/home-linux "$BIN/mailshift" -inifile:"$T/$name.ini" >"$T/out.l" 2>"$T/err.l"; rl=$?
	ctl reset >/dev/null
	MAILSHIFT_HOME="$W\\home-win" winrun mailshift "-inifile:$W\\$name.win.ini" >"$T/out.w" 2>"$T/err.w"; rw=$?
	req1=$(token_requests)
	is $rl 0 "$name: the Linux build exits 0"
	is $rw 0 "$name: mailshift.exe exits 0"
	[ $rw = 0 ] || sed 's/^/# /' "$T/err.w"
	is "$(ls "$T/$name-win/msgin" | wc -l)" 4 "$name: four event files (two per matching message)"
	same_events "$name"
	is "$(cat "$T/$name-win"/msgin/* | grep -c "^\\\$JOB:ADD,\[\[\$DATE\]\],SCHED,\(OAUTH_A\|GRUSSE\),OCADHOC,ocadm,Canary-OpCon-7731$CR\$")" 2 \
		"$name: job events carry the captures and the OpCon user, CRLF lines"
	is "$(grep -c accepted "$T/$name-win/accepts.log")" 2 "$name: the accept log has both messages"
	is "$req1" 1 "$name: mailshift.exe asked the token stand-in once"
	# a second run: the token comes from the cache in MAILSHIFT_HOME
	rm -f "$T/$name-win"/msgin/*
	ctl reset >/dev/null
	MAILSHIFT_HOME="$W\\home-win" winrun mailshift "-inifile:$W\\$name.win.ini" >"$T/out.w" 2>"$T/err.w"; rw=$?
	is $rw 5 "$name: a second run logs in and matches nothing new (ExitCodeForNoMatchingEmails)"
	[ $rw = 5 ] || sed 's/^/# /' "$T/err.w"
	is "$(token_requests)" 0 "$name: ... with the token from the cache (no token request)"
	is "$(ls "$T/$name-win/msgin" | wc -l)" 0 "$name: ... and writes no event twice"
done
is "$(mailbox_count $U)" 3 "DeleteEmails=None left the mailbox alone"
ok_rc "$(test -s "$T/home-win/tokens.db"; echo $?)" "the token cache is in MAILSHIFT_HOME (tokens.db)"
ok_rc "$(grep -qa "$WORLD_APP_SECRET" "$T/home-win/tokens.db"; [ $? = 1 ]; echo $?)" \
	"the token cache does not hold the client secret"

# a wrong secret: the same exit code and explanation as on Linux, never printed
for side in linux win; do
	if [ $side = win ]; then f=$T/imap-secret.win.ini; else f=$T/imap-secret.ini; fi
	sed "s/^ClientSecret=.*/ClientSecret=Wrong-Canary-Secret-55$([ $side = win ] && echo "$CR")/" "$f" >"$T/wrong.$side.ini"
done
MAILSHIFT_HOME=$T/home-linux "$BIN/mailshift" -inifile:"$T/wrong.linux.ini" >"$T/wrong.l" 2>&1; rl=$?
MAILSHIFT_HOME="$W\\home-win" winrun mailshift "-inifile:$W\\wrong.win.ini" >"$T/wrong.w" 2>&1; rw=$?
is $rw 2 "wrong client secret: mailshift.exe exits 2"
is $rw $rl "... as the Linux build does"
ok_rc "$(grep -q 'AADSTS7000215' "$T/wrong.w"; echo $?)" "... with the AADSTS code"
ok_rc "$(grep -q '^fix: ' "$T/wrong.w"; echo $?)" "... and the fix from the catalogue"
ok_rc "$(grep -q 'Wrong-Canary-Secret-55\|Canary-OpCon-7731' "$T/wrong.w" "$T/out.w" "$T/err.w"; [ $? = 1 ]; echo $?)" \
	"no secret in mailshift.exe's output"

done_testing
