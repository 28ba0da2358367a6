#!/bin/bash
# mailshift-audit on samples/fleet: golden reports, exit codes, --out,
# usage errors, no secrets in any output.
# UPDATE_GOLDEN=1 rewrites tests/golden/audit/samples.* from the tool.
set -u
. "$(dirname "$0")/../lib/test-lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
audit=${MAILSHIFT_BIN:-bin}/mailshift-audit
golden=tests/golden/audit
tmp=$T
for f in txt json csv; do
	fmt=$f; [ "$f" = txt ] && fmt=text
	$audit --fleet samples/fleet --format "$fmt" >"$tmp/samples.$f" 2>"$tmp/err.$f"
	echo "$?" >"$tmp/rc.$f"
	if [ "${UPDATE_GOLDEN:-}" = 1 ]; then
		cp "$tmp/samples.$f" "$golden/samples.$f"
	fi
	ok "$fmt report matches $golden/samples.$f" diff -u "$golden/samples.$f" "$tmp/samples.$f"
	ok "$fmt: exit 1 (jobs need migration or are broken)" [ "$(cat "$tmp/rc.$f")" = 1 ]
	ok "$fmt: nothing on stderr" [ ! -s "$tmp/err.$f" ]
done

ok "JSON parses and the status counts add up to the jobs" node -e '
	const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
	const s = r.summary;
	const sum = s["needs-migration"] + s["at-risk"] + s.migrated + s.unaffected + s.broken;
	if (sum !== s.jobs || r.jobs.length !== s.jobs) process.exit(1);
	for (const st of ["needs-migration", "at-risk", "migrated", "unaffected", "broken"])
		if (!r.jobs.some(j => j.status === st)) { console.error("no " + st); process.exit(1); }
' "$tmp/samples.json"

ok "every finding code of the issue appears in the samples" node -e '
	const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
	const seen = new Set();
	for (const x of [...r.jobs, ...r.inis, ...r.notify]) for (const f of x.findings) seen.add(f.code);
	const want = ["basic-auth-microsoft", "msal-delegated", "ini-missing", "ini-invalid",
		"ini-path-ambiguous", "password-in-command-line", "command-line-override",
		"tls-verification-off", "weak-tls", "no-tls", "port-protocol-mismatch", "shared-ini",
		"legacy-secret", "unresolved-property", "certificate-expiring", "orphan-ini",
		"notify-basic-smtp"];
	const missing = want.filter(c => !seen.has(c));
	if (missing.length) { console.error("missing: " + missing.join(" ")); process.exit(1); }
' "$tmp/samples.json"

$audit --fleet samples/fleet --format html >"$tmp/samples.html"
ok "no literal password or incumbent ciphertext in any report" sh -c '
	! grep -l -e "Winter2026!" -e "q3J8s0v2V7m9Pq1xZr4tYw8kLd6nBf2HcE5aUj0gWiM=" \
		-e "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWo=" "$1"/samples.*' sh "$tmp"
ok "the redacted password is shown as ***" grep -q -- "-password:\*\*\*" "$tmp/samples.txt"

# what an audit killed while writing out.json leaves, and what is not its
printf 'half' >"$tmp/.out.json.tmp.4194303.0"
printf 'busy' >"$tmp/.out.json.tmp.$$.0"
printf 'half' >"$tmp/.other.json.tmp.4194303.0"
$audit --fleet samples/fleet --format json --out "$tmp/out.json" >"$tmp/out.stdout"
rc=$?
ok "--out: exit 1 as well" [ "$rc" = 1 ]
ok "--out: same bytes as stdout" cmp -s "$tmp/out.json" "$tmp/samples.json"
ok "--out: summary and report path on stdout" grep -q "report written to $tmp/out.json" "$tmp/out.stdout"
ok "--out: a dead audit's temporary file of out.json removed" [ ! -e "$tmp/.out.json.tmp.4194303.0" ]
ok "--out: a live process's and another file's kept" \
	[ -e "$tmp/.out.json.tmp.$$.0" -a -e "$tmp/.other.json.tmp.4194303.0" ]
rm -f "$tmp/.out.json.tmp.$$.0" "$tmp/.other.json.tmp.4194303.0"
ok "--out: no temporary file left" [ "$(ls -A "$tmp" | grep -c '^\.out')" = 0 ]
$audit --fleet samples/fleet --out "$tmp/no/such/dir/r.txt" >/dev/null 2>"$tmp/err"
ok "--out into a missing folder: EX_CANTCREAT" [ $? = 73 ]

$audit --fleet samples/fleet --fail-on none >/dev/null
ok "--fail-on none: exit 0" [ $? = 0 ]
$audit --fleet samples/fleet --fail-on migrated >/dev/null
ok "--fail-on migrated: exit 1" [ $? = 1 ]
$audit --fleet samples/fleet --fail-on bogus >/dev/null 2>"$tmp/err"
ok "--fail-on bogus: EX_USAGE" [ $? = 64 ]
$audit --format text >/dev/null 2>"$tmp/err"
ok "no --fleet: EX_USAGE" [ $? = 64 ]
ok "no --fleet: says so" grep -q -- "--fleet DIR is required" "$tmp/err"
$audit --fleet samples/fleet --format pdf >/dev/null 2>"$tmp/err"
ok "unknown format: EX_USAGE" [ $? = 64 ]
$audit --fleet samples/fleet --bogus >/dev/null 2>"$tmp/err"
ok "unknown option: EX_USAGE" [ $? = 64 ]
$audit --fleet "$tmp/missing-fleet" >/dev/null 2>"$tmp/err"
ok "missing fleet folder: EX_NOINPUT" [ $? = 66 ]
ok "missing fleet folder: named" grep -q "cannot open fleet folder '$tmp/missing-fleet'" "$tmp/err"
mkdir -p "$tmp/empty-fleet"
$audit --fleet "$tmp/empty-fleet" >/dev/null 2>"$tmp/err"
ok "fleet without jobs/: EX_NOINPUT" [ $? = 66 ]
mkdir -p "$tmp/empty-fleet/jobs"
$audit --fleet "$tmp/empty-fleet" >"$tmp/empty.txt" 2>"$tmp/err"
ok "empty fleet: exit 0, nothing needs action" [ $? = 0 ]
ok "--version" sh -c "$audit --version | grep -q '^mailshift-audit [0-9]'"

done_testing
