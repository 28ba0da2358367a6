#!/bin/bash
# mailshift-audit --format html: one self-contained file, hostile fleet
# text escaped; CSV neutralises spreadsheet formulas.
set -u
. "$(dirname "$0")/../lib/test-lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
audit=${MAILSHIFT_BIN:-bin}/mailshift-audit
fleet=tests/data/fleet/hostile
tmp=$T

$audit --fleet "$fleet" --format html --out "$tmp/r.html" >/dev/null
ok "hostile fleet: exit 1 (a broken job)" [ $? = 1 ]
h="$tmp/r.html"
ok "two <script> elements: the rows as data and ours" [ "$(grep -o -i '<script' "$h" | wc -l)" = 2 ]
ok "the rows are data, not code" grep -q '<script type="application/json" id="audit-data">' "$h"
ok "no injected <img>" sh -c "! grep -q -i '<img' '$h'"
ok "no injected <svg>" sh -c "! grep -q -i '<svg' '$h'"
ok "no raw </code> from the command line" [ "$(grep -o '</code>' "$h" | wc -l)" = "$(grep -o '<code[ >]' "$h" | wc -l)" ]
ok "no </script> from the fleet inside the data" [ "$(grep -o -i '</script' "$h" | wc -l)" = 2 ]
ok "job name shown escaped" grep -q "&lt;script&gt;alert(&#39;job&#39;)&lt;/script&gt;" "$h"
ok "schedule shown escaped" grep -q "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" "$h"
ok "machine shown escaped" grep -q "M&amp;1&lt;b&gt;" "$h"
ok "no network: no http(s) URL loaded" sh -c "! grep -E -q '(src|href)=\"?https?:' '$h'"
ok "content security policy forbids network access" grep -q "default-src 'none'" "$h"
ok "the literal password is redacted" sh -c "! grep -q \"&#39;&lt;x&gt;&#39;\" '$h'"
ok "findings are explained" grep -q "What the findings mean" "$h"
ok "status charts by machine and by schedule" sh -c "grep -q 'Status by machine' '$h' && grep -q 'Status by schedule' '$h'"

# the samples: the page's promises that need no browser
$audit --fleet samples/fleet --format html --out "$tmp/s.html" >/dev/null
s="$tmp/s.html"
today=$(date -u +%Y-%m-%d)
ok "shows the date it was made ($today, UTC)" grep -q "made <time datetime=\"$today" "$s"
ok "the jobs are grouped by INI file, folded in <details>" [ "$(grep -o '<details class="g" data-g="[0-9]' "$s" | wc -l)" = 15 ]
ok "the two jobs sharing D:\\Jobs\\vendor\\vendor.ini are in one group" sh -c "
	grep '<details class=\"g\"' '$s' | grep -F 'vendor.ini' | grep -q '2 jobs'"
ok "print stylesheet: @media print" grep -q '@media print' "$s"
ok "print: folded content is shown" grep -q 'details::details-content{content-visibility:visible' "$s"
ok "print: no page break inside a row" grep -q 'tr,li,.card,.bar,summary,dt,dd{break-inside:avoid}' "$s"
ok "no fixed pixel width on a table or column" sh -c "! grep -E -q '(table|td|th|col)[.a-z-]*\\{[^}]*width:[0-9]+px' '$s'"
ok "each finding code links to its explanation in the page" sh -c '
	for c in $(grep -o "href=\"#f-[a-z-]*\"" "$1" | sed "s/href=\"#f-//; s/\"//" | sort -u); do
		grep -q "<dt id=\"f-$c\">" "$1" || { echo "# no explanation for $c"; exit 1; }
	done
	[ -n "$c" ]' sh "$s"
ok "the summary cards are filter buttons" [ "$(grep -c '<button type="button" class="card[^"]*" data-f=' "$s")" = 7 ]
ok "the count of rows shown is on the page" grep -q '<span id="shown" role="status">15 jobs in' "$s"

$audit --fleet "$fleet" --format csv >"$tmp/r.csv"
ok "CSV: a formula in a job name is neutralised" grep -q "\"'=HYPERLINK(\"\"http" "$tmp/r.csv"
ok "CSV: a leading + is neutralised" grep -q "\"'+CMD\"" "$tmp/r.csv"
ok "CSV: one header and two rows" [ "$(wc -l <"$tmp/r.csv")" = 3 ]

done_testing
