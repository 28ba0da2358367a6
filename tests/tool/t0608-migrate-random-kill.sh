#!/bin/bash
# test-tier: slow (100 killed runs)
# R2: SIGKILL at 50 random moments during apply and during rollback of a
# generated fleet of 300 INI files (two batches: one written while the
# next is decided).  After every kill each INI file holds
# either its original bytes or exactly the bytes of an uninterrupted run
# (never a half-written file); reruns converge on the uninterrupted result,
# and rollback ends byte-identical to the originals.  R2_KILLS, R2_INIS.
set -u
. "$(dirname "$0")/../lib/test-lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
migrate=${MAILSHIFT_BIN:-$top/bin}/mailshift-migrate
K=${R2_KILLS:-50}
N=${R2_INIS:-300}
export MAILSHIFT_MIGRATE_BATCH=256   # test hook: 1024 files by default
tmp=$T
python3 "$top/bench/gen-fleet.py" --thin "$tmp/orig" "$N" 10 "$N" basic >/dev/null
# env: references keep the rewritten bytes deterministic (literal secrets
# are sealed with a fresh nonce on every write)
cat >"$tmp/map.json" <<'EOM'
{ "transport": "imap",
  "tenants": [ { "domains": ["contoso.com"], "tenantId": "7f3c9a2e-5b1d-4e8a-9c6f-2d4b8e1a7c35",
                 "clientId": "0b8e4f21-9a3c-4d7e-b5f2-6c1a9e8d3b47",
                 "clientSecret": "env:MAILSHIFT_CONTOSO_SECRET" } ] }
EOM
now_ms() { date +%s%3N; }
# the uninterrupted result, and how long apply and rollback take
cp -a "$tmp/orig" "$tmp/ref"
cp -a "$tmp/orig" "$tmp/timing"
t0=$(now_ms)
"$migrate" apply --fleet "$tmp/ref" --map "$tmp/map.json" >/dev/null 2>&1
rc=$?
t1=$(now_ms)
"$migrate" apply --fleet "$tmp/timing" --map "$tmp/map.json" >/dev/null 2>&1
t2=$(now_ms)
"$migrate" rollback --fleet "$tmp/timing" >/dev/null 2>&1
t3=$(now_ms)
apply_ms=$((t1 - t0)); rollback_ms=$((t3 - t2))
echo "# apply takes ${apply_ms} ms, rollback ${rollback_ms} ms"
ok "an uninterrupted apply succeeds" [ $rc -le 1 ]
( cd "$tmp/orig" && find machines jobs -type f | sort ) >"$tmp/files"
ok "the fleet has $N INI files" [ "$(grep -c '\.ini$' "$tmp/files")" = "$N" ]
ok "the uninterrupted run changed them" sh -c "! cmp -s '$tmp/orig/$(grep -m1 '\.ini$' "$tmp/files")' '$tmp/ref/$(grep -m1 '\.ini$' "$tmp/files")'"

# every file is either the original or the reference version
hashes() { (cd "$1" && xargs -d '\n' sha256sum <"$tmp/files"); }
hashes "$tmp/orig" >"$tmp/orig.sum"
hashes "$tmp/ref" >"$tmp/ref.sum"
whole() {
	hashes "$1" | awk -v o="$tmp/orig.sum" -v r="$tmp/ref.sum" '
		BEGIN { while ((getline l < o) > 0) { split(l, a, "  "); ok[a[2] " " a[1]] = 1 }
			while ((getline l < r) > 0) { split(l, a, "  "); ok[a[2] " " a[1]] = 1 } }
		{ split($0, a, "  "); if (!((a[2] " " a[1]) in ok)) { print "# half-written or foreign: " a[2]; bad++ } }
		END { exit bad > 0 }'
}
rand_ms() { echo $(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % $1 )); }
snooze() { ms=$1; sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"; }

# A kill at a random moment within an uninterrupted run's duration; when
# the run finished first, undo it whole so the next round has work again.
cp -a "$tmp/orig" "$tmp/fleet"
torn=0; kills=0
k=1
while [ $k -le "$K" ]; do
	"$migrate" apply --fleet "$tmp/fleet" --map "$tmp/map.json" >/dev/null 2>&1 &
	pid=$!
	snooze "$(rand_ms $((apply_ms + 20)))"
	if kill -9 $pid 2>/dev/null; then
		kills=$((kills + 1))
		wait $pid 2>/dev/null
	else
		wait $pid 2>/dev/null
		"$migrate" rollback --fleet "$tmp/fleet" >/dev/null 2>&1
	fi
	whole "$tmp/fleet" || torn=$((torn + 1))
	k=$((k + 1))
done
ok "apply: $kills of $K runs killed mid-way, no file ever half-written" [ $torn = 0 ]
ok "apply: a good share of the runs were really killed ($kills)" [ "$kills" -ge $((K / 5)) ]
"$migrate" apply --fleet "$tmp/fleet" --map "$tmp/map.json" >"$tmp/final.txt" 2>&1
ok "a final apply finishes" grep -q '0 conflict, 0 failed, 0 still planned' "$tmp/final.txt"
ok "and converges on the uninterrupted result" \
	sh -c "cd '$tmp' && while read -r f; do cmp -s \"ref/\$f\" \"fleet/\$f\" || exit 1; done <files"
find "$tmp/fleet" -name '.*.tmp.*' | sed "s/^/# left: /"
ok "no temporary file left" [ -z "$(find "$tmp/fleet" -name '.*.tmp.*')" ]

torn=0; kills=0
k=1
while [ $k -le "$K" ]; do
	"$migrate" rollback --fleet "$tmp/fleet" >/dev/null 2>&1 &
	pid=$!
	snooze "$(rand_ms $((rollback_ms + 20)))"
	if kill -9 $pid 2>/dev/null; then
		kills=$((kills + 1))
		wait $pid 2>/dev/null
	else
		wait $pid 2>/dev/null
		"$migrate" apply --fleet "$tmp/fleet" --map "$tmp/map.json" >/dev/null 2>&1
	fi
	whole "$tmp/fleet" || torn=$((torn + 1))
	k=$((k + 1))
done
ok "rollback: $kills of $K runs killed mid-way, no file ever half-written" [ $torn = 0 ]
ok "rollback: a good share of the runs were really killed ($kills)" [ "$kills" -ge $((K / 5)) ]
"$migrate" rollback --fleet "$tmp/fleet" >/dev/null 2>&1
ok "a final rollback restores every file byte for byte" \
	sh -c "cd '$tmp' && while read -r f; do cmp -s \"orig/\$f\" \"fleet/\$f\" || exit 1; done <files"
find "$tmp/fleet" -name '.*.tmp.*' | sed "s/^/# left: /"
ok "no temporary file left after rollback" [ -z "$(find "$tmp/fleet" -name '.*.tmp.*')" ]

done_testing
