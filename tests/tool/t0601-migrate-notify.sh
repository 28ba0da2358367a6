#!/bin/bash
# mailshift-migrate with "notify" in the mapping (issue 14, item 7): an INI
# whose NotifyOnRejects has no [Notify] section gets one through the same
# app registration; the others get none; the audit of the migrated fleet
# no longer reports notify-unconfigured; rollback restores every byte.
# The mapping's own port keeps TLS from the first byte.
set -u
. "$(dirname "$0")/../lib/test-lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
migrate=${MAILSHIFT_BIN:-$top/bin}/mailshift-migrate
audit=${MAILSHIFT_BIN:-$top/bin}/mailshift-audit
tmp=$T
has() { tr -d '\r' <"$1" | grep -qxF "$2"; }
recon=machines/WINAPP01/D/Jobs/finance/recon.ini
ap=machines/WINAPP01/D/Jobs/finance/ap.ini
cp -a samples/fleet "$tmp/fleet"
printf '\r\n[Audit]\r\nNotifyOnRejects=True\r\n' >>"$tmp/fleet/$recon"
cp -a "$tmp/fleet" "$tmp/orig"
cd "$tmp" || exit 1

$audit --fleet fleet --format json --fail-on broken >before.json 2>/dev/null
ok "before: the audit reports notify-unconfigured for recon.ini" node -e '
	const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
	const j = r.jobs.filter(x => (x.ini_file || "").endsWith("recon.ini"));
	if (!j.length || !j.every(x => x.findings.some(f => f.code === "notify-unconfigured"))) process.exit(1);
' before.json

jq '.notify = "graph" | .port = 10993' "$top/samples/map.json" >map.json
$migrate apply --fleet fleet --map map.json >apply.txt 2>&1
ok "recon.ini: [Notify] Transport=Graph added" has "fleet/$recon" "Transport=Graph"
ok "recon.ini: added as a section of its own" has "fleet/$recon" "[Notify]"
ok "ap.ini (no NotifyOn*): no [Notify]" sh -c "! grep -q 'Notify' fleet/$ap"
ok "migrated files on the map's port say SecurityProtocol" sh -c '
	grep -rlZ "^Port=10993" fleet/machines >ported
	[ -s ported ] || exit 1
	xargs -0 grep -L "^SecurityProtocol=TLS1_2" <ported | grep . && exit 1
	exit 0'
$audit --fleet fleet --format json --fail-on broken >after.json 2>/dev/null
ok "after: no notify-unconfigured" node -e '
	const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
	if (r.jobs.some(x => x.findings.some(f => f.code === "notify-unconfigured"))) process.exit(1);
' after.json
$migrate rollback --fleet fleet >/dev/null 2>&1
ok "rollback restores the originals" diff -r -x .mailshift-migrate.db -x migrate fleet orig

jq '.notify = "smtp"' "$top/samples/map.json" >map2.json
$migrate apply --fleet fleet --map map2.json >apply2.txt 2>&1
ok "smtp: Exchange Online SMTP with XOAUTH2" sh -c "
	tr -d '\r' <fleet/$recon | grep -qxF 'Server=smtp.office365.com' &&
	tr -d '\r' <fleet/$recon | grep -qxF 'Port=587' &&
	tr -d '\r' <fleet/$recon | grep -qxF 'AuthMethod=OAuth2'"
jq '.notify = "fax"' "$top/samples/map.json" >bad.json
$migrate plan --fleet orig --map bad.json --state bad.db >/dev/null 2>bad.err
ok "a bad notify is a data error" sh -c "[ $? = 65 ] && grep -q \"'notify' must be graph, smtp or none\" bad.err"

done_testing
