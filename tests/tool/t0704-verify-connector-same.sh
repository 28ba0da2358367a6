#!/bin/bash
# mailshift-verify tests the connection the connector opens (issue 17): both
# take it from ini/profile.h, so for IMAP, POP and Graph the session verify
# hands to the connector's dry run is the one the connector would open
# itself (same TLS mode, port, CA file and endpoint), and the connector on
# its own reaches the same mailbox.  The CA files are where a migrated INI
# has them: [Mail] CAFile for IMAP and POP, only [OAuth] CAFile for Graph
# (the Graph mailbox trusts [OAuth] CAFile, like its token requests).
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MS_LIB/lib-world.sh"
world_up
export T0704_SECRET=$WORLD_APP_SECRET T0704_PW=$WORLD_PASS_ALICE

ini() {	# ini NAME PROTO PORT MAIL-LINES OAUTH-LINES
	mkdir -p "$T/msgin-$1"
	cat >"$T/$1.ini" <<EOF
[General]
MSGINDirectory=$T/msgin-$1
UseLastRunDate=False
DeleteEmails=None
[Mail]
User=$WORLD_USER_ALICE
Server=127.0.0.1
Port=$3
EmailProtocol=$2
SecurityProtocol=TLS1_2
SelfSignedCertificate=False
$4
$5
[Configuration1]
SubjectLineMask=Nightly check*
Event=\$JOB:ADD,now,Daily,[[SUBJECT]],opcon
EOF
}
ini imap IMAP "$WORLD_IMAPS_PORT" "Password=env:T0704_PW
CAFile=$WORLD_CA_FILE"
ini pop POP "$WORLD_POP3S_PORT" "Password=env:T0704_PW
CAFile=$WORLD_CA_FILE"
ini graph GRAPH 443 "AuthMethod=OAuth2" "[OAuth]
Authority=$WORLD_TOKEN_URL
TenantId=$WORLD_TENANT
ClientId=$WORLD_APP_ID
ClientSecret=env:T0704_SECRET
GraphEndpoint=$WORLD_GRAPH_URL
CAFile=$WORLD_CA_FILE"
smtp="--smtp 127.0.0.1:$WORLD_SUBMISSION_PORT"

for name in imap pop graph; do
	rc=0
	args=$smtp
	[ $name = graph ] && args=
	"$BIN/mailshift-verify" --ini "$T/$name.ini" $args --send --poll-ms 200 --timeout 60 \
		--no-db --verbose --format json --out "$T/$name.json" >/dev/null 2>"$T/$name.err" || rc=$?
	is "$rc,$(jq -r '.mailboxes[0].passed' "$T/$name.json")" "0,true" "$name: verify passes every step"
	like "$(jq -r '.mailboxes[0].probe.outcome' "$T/$name.json")" "^rejected" \
		"$name: the connector's dry run saw the probe"
	ok "$name: the connector took verify's session as its own" \
		sh -c "! grep -q 'the session handed over is not the one' '$T/$name.err'"
	ok "$name: no secret in the trace" \
		sh -c "! grep -qF '$WORLD_APP_SECRET' '$T/$name.err' && ! grep -qF '$WORLD_PASS_ALICE' '$T/$name.err'"
	rc=0
	"$BIN/mailshift" -inifile:"$T/$name.ini" --dry-run >"$T/$name.out" 2>&1 || rc=$?
	is "$rc" 0 "$name: the connector alone connects with the same settings"
done
done_testing
