#!/bin/sh
# mailshift-audit --format html: one self-contained file, hostile fleet
# text escaped; CSV neutralises spreadsheet formulas.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
audit=${MAILSHIFT_BIN:-bin}/mailshift-audit
fleet=tests/data/fleet/hostile
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t0501.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
n=0
failed=0
t() {
	name=$1; shift
	n=$((n + 1))
	if "$@"; then echo "ok $n - $name"; else echo "not ok $n - $name"; failed=$((failed + 1)); fi
}

$audit --fleet "$fleet" --format html --out "$tmp/r.html" >/dev/null
t "hostile fleet: exit 1 (a broken job)" [ $? = 1 ]
h="$tmp/r.html"
t "exactly one <script> element: ours" [ "$(grep -o -i '<script' "$h" | wc -l)" = 1 ]
t "no injected <img>" sh -c "! grep -q -i '<img' '$h'"
t "no injected <svg>" sh -c "! grep -q -i '<svg' '$h'"
t "no raw </code> from the command line" [ "$(grep -o '</code>' "$h" | wc -l)" = "$(grep -o '<code>' "$h" | wc -l)" ]
t "job name shown escaped" grep -q "&lt;script&gt;alert(&#39;job&#39;)&lt;/script&gt;" "$h"
t "schedule shown escaped" grep -q "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" "$h"
t "machine shown escaped" grep -q "M&amp;1&lt;b&gt;" "$h"
t "no network: no http(s) URL loaded" sh -c "! grep -E -q '(src|href)=\"?https?:' '$h'"
t "content security policy forbids network access" grep -q "default-src 'none'" "$h"
t "the literal password is redacted" sh -c "! grep -q \"&#39;&lt;x&gt;&#39;\" '$h'"
t "findings are explained" grep -q "What the findings mean" "$h"
t "status charts by machine and by schedule" sh -c "grep -q 'Status by machine' '$h' && grep -q 'Status by schedule' '$h'"

$audit --fleet "$fleet" --format csv >"$tmp/r.csv"
t "CSV: a formula in a job name is neutralised" grep -q "\"'=HYPERLINK(\"\"http" "$tmp/r.csv"
t "CSV: a leading + is neutralised" grep -q "\"'+CMD\"" "$tmp/r.csv"
t "CSV: one header and two rows" [ "$(wc -l <"$tmp/r.csv")" = 3 ]

echo "1..$n"
[ "$failed" = 0 ]
