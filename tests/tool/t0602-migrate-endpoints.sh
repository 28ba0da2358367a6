#!/bin/bash
# mailshift-migrate with endpoints in the mapping file (a national cloud or
# the local test world): the top-level graphEndpoint/caFile/server/port
# reach every migrated INI file, a tenant's own values win, and rollback
# still restores the originals byte for byte.
set -u
. "$(dirname "$0")/../lib/test-lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
migrate=${MAILSHIFT_BIN:-$top/bin}/mailshift-migrate
tmp=$T
recon=machines/WINAPP01/D/Jobs/finance/recon.ini
ap=machines/WINAPP01/D/Jobs/finance/ap.ini
returns=machines/FINSRV03/D/Jobs/payroll/returns.ini
cp -a samples/fleet "$tmp/orig"
cp -a samples/fleet "$tmp/fleet"
cd "$tmp" || exit 1
# top level: the test world; contoso's tenant: its own IMAP port
jq '.graphEndpoint = "https://127.0.0.1:8443" | .caFile = "C:\\mailshift\\test-ca.pem" |
    .server = "127.0.0.1" | .port = 10993 | .tenants[0].port = 11993' \
	"$top/samples/map.json" >map.json
printf '{"port": 0, "tenants": []}' >bad-map.json

has() { # has FILE KEY=VALUE: the line is in the file (CRLF or LF)
	tr -d '\r' <"$1" | grep -qxF "$2"
}
$migrate plan --fleet fleet --map map.json >plan.txt 2>&1
ok "plan shows the endpoints" sh -c "grep -q '^+Server=127.0.0.1' plan.txt &&
	grep -q '^+GraphEndpoint=https://127.0.0.1:8443' plan.txt"
$migrate apply --fleet fleet --map map.json >apply.txt 2>&1
ok "recon.ini: [Mail] Server" has "fleet/$recon" "Server=127.0.0.1"
ok "recon.ini: the tenant's port wins" has "fleet/$recon" "Port=11993"
ok "recon.ini: [Mail] CAFile and [OAuth] CAFile" sh -c "
	[ \$(tr -d '\r' <'fleet/$recon' | grep -cxF 'CAFile=C:\\mailshift\\test-ca.pem') = 2 ]"
ok "recon.ini: [OAuth] GraphEndpoint" has "fleet/$recon" "GraphEndpoint=https://127.0.0.1:8443"
ok "ap.ini too" sh -c "grep -q '^Server=127.0.0.1' fleet/$ap && grep -q '^GraphEndpoint=' fleet/$ap"
ok "returns.ini too" has "fleet/$returns" "Server=127.0.0.1"
$migrate rollback --fleet fleet >/dev/null 2>&1
ok "rollback restores the originals" diff -r -x .mailshift-migrate.db -x migrate fleet orig
$migrate plan --fleet fleet --map bad-map.json >/dev/null 2>bad.err
ok "a bad port is a data error (EX_DATAERR)" sh -c "[ $? = 65 ] && grep -q \"'port' must be a number from 1 to 65535\" bad.err"

done_testing
