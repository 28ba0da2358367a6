#!/bin/bash
# The HTML report in headless Chromium: it renders without network access,
# its filter works (from the URL: #status=... / #q=...), and hostile text
# from the fleet stays text in the live DOM.
set -u
. "$(dirname "$0")/../lib/test-lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
audit=${MAILSHIFT_BIN:-bin}/mailshift-audit
browser=
for b in chromium chromium-browser google-chrome; do
	command -v "$b" >/dev/null 2>&1 && { browser=$b; break; }
done
if [ -z "$browser" ]; then
	echo "1..0 # SKIP no headless Chromium installed (Debian package chromium)"
	exit 0
fi
tmp=$T
dom() { # dom FILE URL-SUFFIX > out
	timeout 60 "$browser" --headless --no-sandbox --disable-gpu --no-first-run \
		--user-data-dir="$tmp/profile" --virtual-time-budget=2000 \
		--dump-dom "file://$1$2" 2>/dev/null
}

$audit --fleet samples/fleet --format html --out "$tmp/samples.html" >/dev/null
dom "$tmp/samples.html" "#status=broken" >"$tmp/broken.dom"
ok "the report renders" grep -q "Mail connector audit" "$tmp/broken.dom"
shown=$(grep -c '<tr data-status="broken">' "$tmp/broken.dom")
hidden=$(grep -c '<tr data-status="[a-z-]*" style="display: none;">' "$tmp/broken.dom")
ok "#status=broken shows the 4 broken jobs ($shown)" [ "$shown" = 4 ]
ok "and hides the 11 others ($hidden)" [ "$hidden" = 11 ]
dom "$tmp/samples.html" "#q=timesheets" >"$tmp/q.dom"
shown=$(grep -c '<tr data-status="[a-z-]*">' "$tmp/q.dom")
ok "#q=timesheets shows the one job, case-insensitively ($shown)" [ "$shown" = 1 ]
ok "and it is TIMESHEETS" grep -q '<tr data-status="broken"><td>FINSRV03</td><td>PAYROLL</td><td class="job">TIMESHEETS' "$tmp/q.dom"
dom "$tmp/samples.html" "" >"$tmp/all.dom"
ok "without a filter every job is shown" [ "$(grep -c '<tr data-status="[a-z-]*">' "$tmp/all.dom")" = 15 ]

$audit --fleet tests/data/fleet/hostile --format html --out "$tmp/hostile.html" >/dev/null
dom "$tmp/hostile.html" "" >"$tmp/hostile.dom"
ok "hostile fleet renders" grep -q "Mail connector audit" "$tmp/hostile.dom"
ok "live DOM: one script element, ours" [ "$(grep -o -i '<script' "$tmp/hostile.dom" | wc -l)" = 1 ]
ok "live DOM: no injected img or svg element" sh -c "! grep -q -i -e '<img' -e '<svg' '$tmp/hostile.dom'"
ok "live DOM: the job name is text" grep -q "&lt;script&gt;alert('job')&lt;/script&gt;" "$tmp/hostile.dom"

done_testing
