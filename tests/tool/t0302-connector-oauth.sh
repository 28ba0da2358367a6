#!/bin/bash
# The connector with OAuth 2.0 against the token stand-in, Dovecot and the
# Graph stand-in: IMAP, POP and Graph give the same events for the same
# mail with a secret and with a certificate; one token request for many
# runs; errors explained; device-code sign-in; secrets never shown.
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MS_LIB/lib-world.sh"
world_up

U=ops
CANARY_SECRET=$WORLD_APP_SECRET
clear_mailbox $U
ctl() { "$MS_TOP/tests/peers/world" ctl "$MS_WORLD_DIR" "$@"; }

mkmsg "$T/m1" "bob@contoso.test" "Run job OAUTH_A on 1"
mkmsg "$T/m2" "bob@contoso.test" "Run job OAUTH_B on 2"
mkmsg "$T/m3" "bob@contoso.test" "Unrelated news"
for m in m1 m2 m3; do deliver "$T/$m" $WORLD_USER_OPS; done
wait_mailbox_count $U 3

oauth_ini() {	# oauth_ini FILE PROTO PORT CREDENTIAL-LINE [FLOW CLIENT]
	mkdir -p "$T/msgin-$(basename "$1")"
	port_line="Port=$3"
	[ "$3" = 0 ] && port_line="; Graph needs no port"
	cat >"$1" <<EOI
[General]
MSGINDirectory=$T/msgin-$(basename "$1")
UseLastRunDate=False
DeleteEmails=None
[Mail]
User=$WORLD_USER_OPS
Server=127.0.0.1
$port_line
EmailProtocol=$2
SecurityProtocol=TLS1_2
AuthMethod=OAuth2
SelfSignedCertificate=False
CAFile=$WORLD_CA_FILE
[OAuth]
Authority=$WORLD_TOKEN_URL
TenantId=$WORLD_TENANT
ClientId=${6:-$WORLD_APP_ID}
$4
Flow=${5:-ClientCredentials}
GraphEndpoint=$WORLD_GRAPH_URL
CAFile=$WORLD_CA_FILE
[Configuration1]
SubjectLineMask=^Run job (\S+) on (\d+)$
Event=\$JOB:ADD,[[\$DATE]],SCHED,[[1]],OCADHOC
Event2=\$CONSOLE:DISPLAY,[[SUBJECT]] from [[SENDER]]
EOI
}

cat "$WORLD_CERT_APP_KEY" "$WORLD_CERT_APP_CERT" >"$T/certapp.pem"
chmod 600 "$T/certapp.pem"
SECRET="ClientSecret=$WORLD_APP_SECRET"
CERT="CertificateFile=$T/certapp.pem"
oauth_ini "$T/imap-secret.ini" IMAP "$WORLD_IMAPS_PORT" "$SECRET"
oauth_ini "$T/pop-secret.ini" POP "$WORLD_POP3S_PORT" "$SECRET"
oauth_ini "$T/graph-secret.ini" GRAPH 0 "$SECRET"
oauth_ini "$T/imap-cert.ini" IMAP "$WORLD_IMAPS_PORT" "$CERT" ClientCredentials "$WORLD_CERT_APP_ID"
oauth_ini "$T/graph-cert.ini" GRAPH 0 "$CERT" ClientCredentials "$WORLD_CERT_APP_ID"
sed -i '/^ClientId=/a AssertionAlgorithm=RS256' "$T/graph-cert.ini"

for v in imap-secret pop-secret graph-secret imap-cert graph-cert; do
	"$BIN/mailshift" -inifile:"$T/$v.ini" >"$T/$v.out" 2>"$T/$v.err"; rc=$?
	is $rc 0 "$v: exit 0"
	cat "$T/msgin-$v.ini"/* 2>/dev/null | sort >"$T/$v.events"
	is "$(wc -l <"$T/$v.events")" 4 "$v: four events (two per matching message)"
done
for v in pop-secret graph-secret imap-cert graph-cert; do
	ok_rc "$(cmp -s "$T/imap-secret.events" "$T/$v.events"; echo $?)" \
		"$v gives exactly the events of imap-secret"
done
is "$(mailbox_count $U)" 3 "DeleteEmails=None left the mailbox alone"

# --msal with an [OAuth] section and no protocol means Graph
sed -e '/^EmailProtocol=/d' "$T/graph-secret.ini" >"$T/msal.ini"
sed -i "s#^MSGINDirectory=.*#MSGINDirectory=$T/msgin-msal#" "$T/msal.ini"
"$BIN/mailshift" --msal -inifile:"$T/msal.ini" >"$T/msal.out" 2>&1; rc=$?
is $rc 0 "--msal with [OAuth]: exit 0"
ok_rc "$(cat "$T"/msgin-msal/* | sort | cmp -s - "$T/imap-secret.events"; echo $?)" "--msal reads the mailbox through Graph"

# one token request for 10 consecutive and 20 concurrent runs
export MAILSHIFT_HOME="$T/home-stampede"; mkdir -p "$MAILSHIFT_HOME"
ctl reset >/dev/null
i=0; while [ $i -lt 10 ]; do "$BIN/mailshift" -inifile:"$T/imap-secret.ini" --dry-run >/dev/null 2>&1; i=$((i + 1)); done
req=$(ctl counters | sed -n 's/.*"token_requests":\([0-9]*\).*/\1/p')
is "$req" 1 "10 consecutive runs: one token request"
export MAILSHIFT_HOME="$T/home-concurrent"; mkdir -p "$MAILSHIFT_HOME"
ctl reset >/dev/null
# 20 at once; 8 under valgrind, where 20 TLS handshakes at once on two
# cores outlast the connector's 15 s connect timeout
nc=20; [ -n "${MAILSHIFT_VALGRIND:-}" ] && nc=8
i=0; while [ $i -lt $nc ]; do
	"$BIN/mailshift" -inifile:"$T/imap-secret.ini" --dry-run >"$T/c$i.out" 2>&1 &
	i=$((i + 1))
done
wait
req=$(ctl counters | sed -n 's/.*"token_requests":\([0-9]*\).*/\1/p')
is "$req" 1 "$nc concurrent runs: one token request"
is "$(grep -l 'would write' "$T"/c*.out | wc -l)" $nc "all $nc concurrent runs read the mailbox"
for f in $(grep -L 'would write' "$T"/c*.out); do sed "s|^|# $(basename "$f"): |" "$f" | head -5; done
export MAILSHIFT_HOME="$T/home"

# wrong secret: explained, never printed -- even though the cache holds a
# good token for the same client (the cache key names the credential)
sed "s/^ClientSecret=.*/ClientSecret=Wrong-Canary-Secret-55/" "$T/imap-secret.ini" >"$T/wrong.ini"
"$BIN/mailshift" -inifile:"$T/wrong.ini" >"$T/wrong.out" 2>&1; rc=$?
is $rc 2 "wrong client secret: exit 2"
ok_rc "$(grep -q 'AADSTS7000215' "$T/wrong.out"; echo $?)" "the AADSTS code is shown"
ok_rc "$(grep -q '^fix: ' "$T/wrong.out"; echo $?)" "with the fix from the catalogue"
ok_rc "$(grep -qi 'trace id' "$T/wrong.out"; echo $?)" "and Microsoft's trace id"
ok_rc "$(grep -q 'Wrong-Canary-Secret-55' "$T/wrong.out"; [ $? = 1 ]; echo $?)" "the secret is not printed"

# an app without FullAccess on the mailbox: token fine, login refused
ctl revoke "$WORLD_APP_ID" "$WORLD_USER_OPS" >/dev/null
export MAILSHIFT_HOME="$T/home-revoked"; mkdir -p "$MAILSHIFT_HOME"
"$BIN/mailshift" -inifile:"$T/imap-secret.ini" >"$T/rev.out" 2>&1; rc=$?
ctl grant "$WORLD_APP_ID" "$WORLD_USER_OPS" >/dev/null
is $rc 2 "no mailbox permission: exit 2"
ok_rc "$(grep -qi 'login\|authenticat' "$T/rev.out"; echo $?)" "the login refusal is reported"
ok_rc "$(grep -q "login refused for '$WORLD_USER_OPS': SASL error {" "$T/rev.out"; echo $?)" \
	"as a refusal, with the XOAUTH2 error challenge, not as a login never tried"
export MAILSHIFT_HOME="$T/home"

# secrets sealed by --credentials are used; the INI no longer holds them
cp "$T/imap-secret.ini" "$T/sealed.ini"
sed -i "s#^MSGINDirectory=.*#MSGINDirectory=$T/msgin-sealed#" "$T/sealed.ini"
"$BIN/mailshift" --credentials -opconuser:ocadm -opconpassword:Canary-OpCon-PW -inifile:"$T/sealed.ini" >/dev/null 2>&1
ok_rc "$(grep -q '^OpConUserPassword=mssealed:v1:' "$T/sealed.ini"; echo $?)" "--credentials sealed the OpCon password"
ok_rc "$(grep -q 'Canary-OpCon-PW' "$T/sealed.ini"; [ $? = 1 ]; echo $?)" "no clear text in the INI"
"$BIN/mailshift" -inifile:"$T/sealed.ini" >/dev/null 2>&1
is "$(cat "$T"/msgin-sealed/* | grep -c ',ocadm,Canary-OpCon-PW')" 4 "events carry the unsealed credentials"
chmod 644 "$MAILSHIFT_HOME/machine.key" 2>/dev/null
"$BIN/mailshift" -inifile:"$T/sealed.ini" >"$T/key.out" 2>&1; rc=$?
chmod 600 "$MAILSHIFT_HOME/machine.key" 2>/dev/null
is $rc 2 "a machine key readable by others is refused"
ok_rc "$(grep -q 'readable by others' "$T/key.out"; echo $?)" "with a clear message"

# device code: sign in (approved through the stand-in), then run and renew
oauth_ini "$T/dev.ini" IMAP "$WORLD_IMAPS_PORT" "" DeviceCode "$WORLD_PUBLIC_APP_ID"
sed -i "s/^User=.*/User=$WORLD_USER_ALICE/" "$T/dev.ini"
clear_mailbox alice
mkmsg "$T/a1" "bob@contoso.test" "Run job DEVICE on 5"
deliver "$T/a1" $WORLD_USER_ALICE
wait_mailbox_count alice 1
ctl device-interval 1 >/dev/null
"$BIN/mailshift" --oauth-login -inifile:"$T/dev.ini" >"$T/login.out" 2>&1 &
lpid=$!
code=""; i=0
while [ -z "$code" ] && [ $i -lt 50 ]; do
	sleep 0.2; i=$((i + 1))
	code=$(sed -n 's/.*enter the code \([A-Z0-9-]*\).*/\1/p' "$T/login.out")
done
ok_rc "$(test -n "$code"; echo $?)" "--oauth-login shows a user code"
ctl approve "$code" "$WORLD_USER_ALICE" >/dev/null
wait $lpid; rc=$?
is $rc 0 "--oauth-login finishes after approval"
"$BIN/mailshift" -inifile:"$T/dev.ini" >/dev/null 2>"$T/dev.err"; rc=$?
is $rc 0 "a delegated run reads alice's mailbox"
is "$(cat "$T"/msgin-dev.ini/* 2>/dev/null | grep -c ',DEVICE,')" 1 "and writes its event"
"$BIN/mailshift" --msal --renewMsalToken --renewTokenSilent -inifile:"$T/dev.ini" >"$T/renew.out" 2>&1; rc=$?
is $rc 0 "--renewMsalToken --renewTokenSilent renews the sign-in"
"$BIN/mailshift" --msal --renewMsalToken --renewTokenSilent -inifile:"$T/dev.ini" >"$T/renew2.out" 2>&1; rc=$?
is $rc 0 "and again with the rotated refresh token"

# notify mails through Graph sendMail, with the app's Graph token
clear_mailbox $U; clear_mailbox bob
mkmsg "$T/n1" "$WORLD_USER_BOB" "Run job NOTIFY on 8"
deliver "$T/n1" $WORLD_USER_OPS
wait_mailbox_count $U 1
sed -e "s#^MSGINDirectory=.*#MSGINDirectory=$T/msgin-notify#" \
	-e 's/^DeleteEmails=None/DeleteEmails=None\nNotifyOnAccepts=True/' "$T/imap-secret.ini" >"$T/notify.ini"
sed -i 's/^\[General\]/[Audit]\nNotifyOnAccepts=True\nNotifyOnAcceptSubject=Accepted: [[SUBJECT]]\n[General]/' "$T/notify.ini"
printf '[Notify]\nTransport=Graph\nFrom=%s\n' "$WORLD_USER_OPS" >>"$T/notify.ini"
"$BIN/mailshift" -inifile:"$T/notify.ini" >"$T/notify.out" 2>&1; rc=$?
is $rc 0 "a run with Graph notify mails: exit 0"
wait_mailbox_count bob 1
ok_rc "$(grep -h '^Subject: Accepted: Run job NOTIFY on 8' $(find "$(maildir bob)" -type f) >/dev/null 2>&1; echo $?)" \
	"the accept notice arrived in the sender's mailbox through Graph sendMail"

# nothing secret in any output, log or database
for f in "$T"/*.out "$T"/*.err; do cat "$f"; done >"$T/all-output"
for db in $(find "$T" -name '*.db'); do sqlite3 "$db" .dump; done >"$T/all-db" 2>/dev/null
ok_rc "$(grep -c "$CANARY_SECRET" "$T/all-output" "$T/all-db" | grep -v ':0$' | grep -q .; [ $? = 1 ]; echo $?)" \
	"the client secret appears in no output and no database"
ok_rc "$(grep -q 'Canary-OpCon-PW' "$T/all-db"; [ $? = 1 ]; echo $?)" "the OpCon password is in no database"

done_testing
