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
t "two <script> elements: the rows as data and ours" [ "$(grep -o -i '<script' "$h" | wc -l)" = 2 ]
t "the rows are data, not code" grep -q '<script type="application/json" id="audit-data">' "$h"
t "no injected <img>" sh -c "! grep -q -i '<img' '$h'"
t "no injected <svg>" sh -c "! grep -q -i '<svg' '$h'"
t "no raw </code> from the command line" [ "$(grep -o '</code>' "$h" | wc -l)" = "$(grep -o '<code[ >]' "$h" | wc -l)" ]
t "no </script> from the fleet inside the data" [ "$(grep -o -i '</script' "$h" | wc -l)" = 2 ]
t "job name shown escaped" grep -q "&lt;script&gt;alert(&#39;job&#39;)&lt;/script&gt;" "$h"
t "schedule shown escaped" grep -q "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" "$h"
t "machine shown escaped" grep -q "M&amp;1&lt;b&gt;" "$h"
t "no network: no http(s) URL loaded" sh -c "! grep -E -q '(src|href)=\"?https?:' '$h'"
t "content security policy forbids network access" grep -q "default-src 'none'" "$h"
t "the literal password is redacted" sh -c "! grep -q \"&#39;&lt;x&gt;&#39;\" '$h'"
t "findings are explained" grep -q "What the findings mean" "$h"
t "status charts by machine and by schedule" sh -c "grep -q 'Status by machine' '$h' && grep -q 'Status by schedule' '$h'"

# the samples: the page's promises that need no browser
$audit --fleet samples/fleet --format html --out "$tmp/s.html" >/dev/null
s="$tmp/s.html"
today=$(date -u +%Y-%m-%d)
t "shows the date it was made ($today, UTC)" grep -q "made <time datetime=\"$today" "$s"
t "the jobs are grouped by INI file, folded in <details>" [ "$(grep -o '<details class="g" data-g="[0-9]' "$s" | wc -l)" = 15 ]
t "the two jobs sharing D:\\Jobs\\vendor\\vendor.ini are in one group" sh -c "
	grep '<details class=\"g\"' '$s' | grep -F 'vendor.ini' | grep -q '2 jobs'"
t "print stylesheet: @media print" grep -q '@media print' "$s"
t "print: folded content is shown" grep -q 'details::details-content{content-visibility:visible' "$s"
t "print: no page break inside a row" grep -q 'tr,li,.card,.bar,summary,dt,dd{break-inside:avoid}' "$s"
t "no fixed pixel width on a table or column" sh -c "! grep -E -q '(table|td|th|col)[.a-z-]*\\{[^}]*width:[0-9]+px' '$s'"
t "each finding code links to its explanation in the page" sh -c '
	for c in $(grep -o "href=\"#f-[a-z-]*\"" "$1" | sed "s/href=\"#f-//; s/\"//" | sort -u); do
		grep -q "<dt id=\"f-$c\">" "$1" || { echo "# no explanation for $c"; exit 1; }
	done
	[ -n "$c" ]' sh "$s"
t "the summary cards are filter buttons" [ "$(grep -c '<button type="button" class="card[^"]*" data-f=' "$s")" = 7 ]
t "the count of rows shown is on the page" grep -q '<span id="shown" role="status">15 jobs in' "$s"

$audit --fleet "$fleet" --format csv >"$tmp/r.csv"
t "CSV: a formula in a job name is neutralised" grep -q "\"'=HYPERLINK(\"\"http" "$tmp/r.csv"
t "CSV: a leading + is neutralised" grep -q "\"'+CMD\"" "$tmp/r.csv"
t "CSV: one header and two rows" [ "$(wc -l <"$tmp/r.csv")" = 3 ]

echo "1..$n"
[ "$failed" = 0 ]
