#!/bin/bash
# The audit HTML report in headless Chromium (driven over the DevTools
# pipe by tests/tool/cdp.js): it renders without network access, groups
# jobs by INI file, its filters work (from the URL: #status=... / #q=...,
# and by clicking a summary card, with the count of jobs shown), it fits
# 1366 px, every finding code links to its explanation, it prints with
# nothing folded away, and hostile text from the fleet stays text.
set -u
. "$(dirname "$0")/../lib/test-lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
audit=${MAILSHIFT_BIN:-bin}/mailshift-audit
browser=
for b in chromium chromium-browser google-chrome; do
	command -v "$b" >/dev/null 2>&1 && { browser=$b; break; }
done
if [ -z "$browser" ] || ! command -v node >/dev/null 2>&1; then
	echo "1..0 # SKIP no headless Chromium or no node (Debian packages chromium, nodejs)"
	exit 0
fi
tmp=$T
cdp() { node tests/tool/cdp.js --timeout 90 "$@"; }
# a promise: the page's script has run (it fills #shown with "Showing ...")
ready='new Promise(r=>{const c=()=>/^Showing/.test(document.getElementById("shown").textContent)?r(document.getElementById("shown").textContent):setTimeout(c,20);c();})'
rows='(s=>document.querySelectorAll("#groups tr[data-status"+(s?"=\""+s+"\"":"")+"]").length)'

$audit --fleet samples/fleet --format html --out "$tmp/s.html" >/dev/null
cdp "file://$tmp/s.html#status=broken" "$ready" "$rows(\"broken\")" "$rows(\"\")" \
	'document.querySelector(".card[data-f=broken]").getAttribute("aria-pressed")' >"$tmp/broken.out"
ok "#status=broken: the count says 4 of 15 jobs" grep -q '^"Showing 4 of 15 jobs' "$tmp/broken.out"
ok "#status=broken: 4 broken rows, no other row" [ "$(sed -n '2,3p' "$tmp/broken.out" | tr '\n' ' ')" = "4 4 " ]
ok "#status=broken: its card is shown pressed" [ "$(sed -n 4p "$tmp/broken.out")" = '"true"' ]

cdp "file://$tmp/s.html#q=timesheets" "$ready" \
	'[...document.querySelectorAll("#groups tr[data-status]")].map(r=>r.cells[1].firstChild.textContent).join()' >"$tmp/q.out"
ok "#q=timesheets: one job, case-insensitively" grep -q '^"Showing 1 of 15 jobs in 1 of' "$tmp/q.out"
ok "and it is TIMESHEETS" [ "$(sed -n 2p "$tmp/q.out")" = '"TIMESHEETS"' ]

cdp "file://$tmp/s.html" "$ready" "$rows(\"\")" \
	'document.querySelector(".card[data-f=broken]").click(),document.getElementById("shown").textContent' \
	"$rows(\"\")" \
	'document.querySelector(".card[data-f=migrated]").click(),document.getElementById("shown").textContent' \
	'document.querySelector(".card[data-f=migrated]").click(),document.getElementById("shown").textContent' \
	'document.documentElement.scrollWidth' \
	'[...document.querySelectorAll("a[href^=\"#f-\"]")].filter(a=>!document.getElementById(a.getAttribute("href").slice(1))).length+" of "+document.querySelectorAll("a[href^=\"#f-\"]").length' \
	'[...document.querySelectorAll("details.g")].filter(d=>[...d.querySelectorAll("tr[data-status]")].length===2).map(d=>d.querySelector(".gp").textContent).join("|")' \
	>"$tmp/all.out"
ok "without a filter every job is shown (15 rows)" [ "$(sed -n 2p "$tmp/all.out")" = 15 ]
ok "clicking the broken card shows 4 of 15 jobs" grep -q '^"Showing 4 of 15 jobs' "$tmp/all.out"
ok "and leaves 4 rows" [ "$(sed -n 4p "$tmp/all.out")" = 4 ]
ok "clicking the migrated card: 2 of 15" [ "$(sed -n 5p "$tmp/all.out" | cut -c1-20)" = '"Showing 2 of 15 job' ]
ok "clicking it again shows all 15" [ "$(sed -n 6p "$tmp/all.out" | cut -c1-21)" = '"Showing 15 of 15 job' ]
w=$(sed -n 7p "$tmp/all.out")
ok "fits 1366 px: no sideways scrolling (scrollWidth $w)" [ "${w:-9999}" -le 1366 ]
ok "every finding code links to its explanation ($(sed -n 8p "$tmp/all.out") dangling)" \
	grep -q '^"0 of [1-9]' "$tmp/all.out"
ok "jobs sharing an INI file are in its group" grep -q 'vendor\.ini' "$tmp/all.out"

# print: folded groups open, pages exist and are not blank
cdp "file://$tmp/s.html" "$ready" 'document.querySelector("details.g").open=false' \
	--pdf "$tmp/s.pdf" '[...document.querySelectorAll("details.g")].filter(d=>!d.open).length' \
	>"$tmp/print.out"
pages=$(grep -a -c '/Type /Page$\|/Type /Page[^s]' "$tmp/s.pdf" 2>/dev/null)
ok "prints: $pages A4 pages" [ "${pages:-0}" -ge 1 ]
ok "printing opens every folded group" [ "$(sed -n 3p "$tmp/print.out")" = 0 ]
if command -v pdftoppm >/dev/null 2>&1; then
	pdftoppm -png -r 30 "$tmp/s.pdf" "$tmp/page"
	ok "no printed page is blank" node tests/tool/png-ink.js --min 0.002 "$tmp"/page*.png
else
	echo "ok $((n = n + 1)) # SKIP pdftoppm missing (Debian package poppler-utils)"
fi

$audit --fleet tests/data/fleet/hostile --format html --out "$tmp/hostile.html" >/dev/null
timeout 60 "$browser" --headless --no-sandbox --disable-gpu --no-first-run \
	--user-data-dir="$tmp/profile" --virtual-time-budget=2000 \
	--dump-dom "file://$tmp/hostile.html" >"$tmp/hostile.dom" 2>/dev/null
ok "hostile fleet renders" grep -q "Mail connector audit" "$tmp/hostile.dom"
ok "live DOM: two script elements, the data and ours" [ "$(grep -o -i '<script' "$tmp/hostile.dom" | wc -l)" = 2 ]
ok "live DOM: no injected img or svg element" sh -c "! grep -q -i -e '<img' -e '<svg' '$tmp/hostile.dom'"
ok "live DOM: the job name is text" grep -q "&lt;script&gt;alert('job')&lt;/script&gt;" "$tmp/hostile.dom"

done_testing
