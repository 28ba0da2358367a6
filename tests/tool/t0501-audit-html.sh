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
ok "exactly one <script> element: ours" [ "$(grep -o -i '<script' "$h" | wc -l)" = 1 ]
ok "no injected <img>" sh -c "! grep -q -i '<img' '$h'"
ok "no injected <svg>" sh -c "! grep -q -i '<svg' '$h'"
ok "no raw </code> from the command line" [ "$(grep -o '</code>' "$h" | wc -l)" = "$(grep -o '<code>' "$h" | wc -l)" ]
ok "job name shown escaped" grep -q "&lt;script&gt;alert(&#39;job&#39;)&lt;/script&gt;" "$h"
ok "schedule shown escaped" grep -q "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" "$h"
ok "machine shown escaped" grep -q "M&amp;1&lt;b&gt;" "$h"
ok "no network: no http(s) URL loaded" sh -c "! grep -E -q '(src|href)=\"?https?:' '$h'"
ok "content security policy forbids network access" grep -q "default-src 'none'" "$h"
ok "the literal password is redacted" sh -c "! grep -q \"&#39;&lt;x&gt;&#39;\" '$h'"
ok "findings are explained" grep -q "What the findings mean" "$h"
ok "status charts by machine and by schedule" sh -c "grep -q 'Status by machine' '$h' && grep -q 'Status by schedule' '$h'"

$audit --fleet "$fleet" --format csv >"$tmp/r.csv"
ok "CSV: a formula in a job name is neutralised" grep -q "\"'=HYPERLINK(\"\"http" "$tmp/r.csv"
ok "CSV: a leading + is neutralised" grep -q "\"'+CMD\"" "$tmp/r.csv"
ok "CSV: one header and two rows" [ "$(wc -l <"$tmp/r.csv")" = 3 ]

done_testing
