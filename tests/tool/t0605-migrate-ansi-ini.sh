#!/bin/bash
# An INI file saved as Windows-1252 ("ANSI"): the connector refuses it with
# a clear message, the audit flags it (ini-encoding) and still judges the
# rest of it, mailshift-migrate converts it to UTF-8 with a BOM without
# losing a character, and rollback gives back the original bytes.
set -u
. "$(dirname "$0")/../lib/test-lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
BIN=${MAILSHIFT_BIN:-$top/bin}
tmp=$T
cp -a samples/fleet "$tmp/fleet"
ini="$tmp/fleet/machines/WINAPP01/D/Jobs/finance/recon.ini"
# a comment with accented letters and the euro sign; the whole file saved
# as ANSI, as Notepad's "ANSI" does (no byte-order mark)
{ printf '; Cr\303\251\303\251 par le service comptabilit\303\251 \342\202\254\r\n'
  tail -c +4 "$ini"; } | iconv -f UTF-8 -t CP1252 >"$tmp/recon.tmp"
cp "$tmp/recon.tmp" "$ini"
cp "$ini" "$tmp/recon.orig"

"$BIN/mailshift" -inifile:"$ini" --dry-run >"$tmp/conn.out" 2>&1
ok "the connector refuses it (exit 2)" [ $? = 2 ]
ok "and says it reads as Windows-1252" grep -q "Windows-1252, ANSI: mailshift-migrate converts it" "$tmp/conn.out"

"$BIN/mailshift-audit" --fleet "$tmp/fleet" --format json --out "$tmp/audit.json" \
	--fail-on none --quiet
ok "audit: ini-encoding for the jobs that use it" \
	[ "$(jq '[.jobs[] | select(.ini_file == "machines/WINAPP01/D/Jobs/finance/recon.ini") |
		.findings[] | select(.code == "ini-encoding")] | length' "$tmp/audit.json")" -ge 1 ]
ok "audit: the rest of the file is still judged (basic-auth-microsoft)" \
	[ "$(jq '[.jobs[] | select(.ini_file == "machines/WINAPP01/D/Jobs/finance/recon.ini") |
		.findings[] | select(.code == "basic-auth-microsoft")] | length' "$tmp/audit.json")" -ge 1 ]

"$BIN/mailshift-migrate" apply --fleet "$tmp/fleet" --map samples/map.json \
	>"$tmp/apply.out" 2>&1
ok "migrate apply exits 1 (manual actions in the sample fleet)" [ $? = 1 ]
ok "the ANSI file was applied" grep -q "applied     ini machines/WINAPP01/D/Jobs/finance/recon.ini" "$tmp/apply.out"
ok "the converted file starts with a UTF-8 BOM" \
	[ "$(head -c 3 "$ini" | od -An -tx1 | tr -d ' ')" = efbbbf ]
ok "and is valid UTF-8" iconv -f UTF-8 -t UTF-8 "$ini" -o /dev/null
ok "every character kept (é and €)" \
	grep -q "$(printf '; Cr\303\251\303\251 par le service comptabilit\303\251 \342\202\254')" "$ini"
ok "the connector reads the migrated file" \
	sh -c "'$BIN/mailshift' -inifile:'$ini' --dry-run 2>&1 | grep -vq 'invalid UTF-8'"
"$BIN/mailshift-migrate" rollback --fleet "$tmp/fleet" --run 1 >"$tmp/rb.out" 2>&1
ok "rollback gives back the ANSI bytes" cmp -s "$ini" "$tmp/recon.orig"

done_testing
