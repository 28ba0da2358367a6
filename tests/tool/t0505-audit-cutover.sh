#!/bin/bash
# mailshift-audit on INI files written the way the incumbent's users write
# them (issue 14): what TLS the connector will actually use, a plain port
# without SecurityProtocol, unknown keys with the closest known one,
# notify settings with nowhere to send from.
set -u
. "$(dirname "$0")/../lib/test-lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
audit=${MAILSHIFT_BIN:-bin}/mailshift-audit
tmp=$T
f=$tmp/fleet
mkdir -p "$f/jobs" "$f/machines/M1/D"
job() {	# job NAME INI
	printf '{"name": "%s", "schedule": {"name": "S"}, "jobType": {"description": "Windows"}, "primaryMachine": {"name": "M1"}, "details": {"commandLine": "smartemail.exe -inifile:D:\\\\%s"}}' "$1" "$2"
}
printf '[%s,\n%s,\n%s]\n' "$(job PLAIN143 plain143.ini)" "$(job TYPO typo.ini)" \
	"$(job IMPLICIT implicit.ini)" >"$f/jobs/jobs.json"
printf '[Mail]\r\nUser=a\r\nServer=mail.contoso.local\r\nEmailProtocol=IMAP\r\nPort=143\r\nSelfSignedCertificate=False\r\n' \
	>"$f/machines/M1/D/plain143.ini"
printf '[Mail]\r\nUser=a\r\nServer=mail.contoso.local\r\nEmailProtocol=IMAP\r\nSecurityProtocol=TLS1_2\r\nSelfSignedCertificate=False\r\nAuthMethd=OAuth2\r\n[Audit]\r\nNotifyOnRejects=True\r\n[Configuration1]\r\nEvnt=$CONSOLE:DISPLAY,x\r\n' \
	>"$f/machines/M1/D/typo.ini"
printf '[Mail]\r\nUser=a\r\nServer=mail.contoso.local\r\nEmailProtocol=POP\r\nSelfSignedCertificate=False\r\n' \
	>"$f/machines/M1/D/implicit.ini"

$audit --fleet "$f" --format json --fail-on broken >"$tmp/r.json" 2>"$tmp/err"
ok "audit runs: exit 0" [ $? = 0 ]
ok "tls mode, plain-port and typo findings in JSON" node -e '
	const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
	const j = {};
	for (const x of r.jobs) j[x.job] = x;
	const codes = x => x.findings.map(f => f.code);
	const fail = m => { console.log("# " + m); process.exit(1); };
	if (j.PLAIN143.tls_mode !== "starttls" || j.PLAIN143.port !== 143) fail("plain143 " + JSON.stringify(j.PLAIN143));
	if (!codes(j.PLAIN143).includes("starttls-required")) fail("no starttls-required");
	if (j.IMPLICIT.tls_mode !== "implicit" || j.IMPLICIT.port !== 995) fail("implicit " + JSON.stringify(j.IMPLICIT));
	if (codes(j.IMPLICIT).includes("starttls-required")) fail("implicit flagged");
	const uk = j.TYPO.findings.filter(f => f.code === "unknown-key").map(f => f.message);
	if (uk.length !== 2 || !uk.some(m => /\[Mail\] AuthMethd: unknown key, ignored \(did you mean AuthMethod\?\)/.test(m)) ||
	    !uk.some(m => /\[Configuration1\] Evnt: .*did you mean Event\?/.test(m))) fail("unknown-key " + uk);
	if (!codes(j.TYPO).includes("notify-unconfigured")) fail("no notify-unconfigured");
' "$tmp/r.json"
$audit --fleet "$f" --format text --fail-on broken >"$tmp/r.txt" 2>&1
ok "text report: tls: starttls" grep -q "mail    IMAP mail.contoso.local:143, TLS default, tls: starttls" "$tmp/r.txt"
ok "text report: unknown-key with its line" grep -q "warning unknown-key: line 7: \[Mail\] AuthMethd" "$tmp/r.txt"
ok "text report: notify-unconfigured" grep -q "warning notify-unconfigured: \[Audit\] NotifyOnRejects is set but there is no \[Notify\] section" "$tmp/r.txt"
$audit --fleet "$f" --format csv --fail-on broken >"$tmp/r.csv" 2>&1
ok "CSV has the tls_mode column" grep -q '^machine,schedule,job,status,protocol,server,port,tls,tls_mode,' "$tmp/r.csv"

done_testing
