#!/bin/bash
# mailshift-migrate on a copy of samples/fleet: plan (golden output, nothing
# changed on disk), apply (golden rewritten INI files and exports, audit
# then says 0 need migration and the same jobs are migrated), apply again
# (nothing written twice), status, rollback (byte-identical originals).
# UPDATE_GOLDEN=1 rewrites tests/golden/migrate/plan.txt and applied/.
set -u
. "$(dirname "$0")/../lib/test-lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
migrate=${MAILSHIFT_BIN:-$top/bin}/mailshift-migrate
audit=${MAILSHIFT_BIN:-$top/bin}/mailshift-audit
golden=$top/tests/golden/migrate
tmp=$T
same_tree() { # same_tree A B: identical files, ignoring migrate's own
	diff -r -x .mailshift-migrate.db -x migrate "$1" "$2" >"$tmp/tree.diff"
}
jobs_with() { # jobs_with STATUS...: sorted schedule/job of audit JSON
	jq -r --arg s "$*" '.jobs[] | select(.status as $x | ($s | split(" ") | index($x))) |
		.schedule + "/" + .job' "$tmp/audit.json" | sort
}

cp -a samples/fleet "$tmp/fleet"
cp -a samples/fleet "$tmp/orig"
cd "$tmp" || exit 1
map=$top/samples/map.json

$audit --fleet fleet --format json >audit.json 2>/dev/null
before=$(jq '.summary["needs-migration"] + .summary["at-risk"]' audit.json)
jobs_with needs-migration at-risk >to-migrate.txt
ok "audit finds jobs to migrate ($before)" [ "$before" -gt 0 ]

$migrate status --fleet fleet >status0.txt 2>&1
ok "status before any plan: no runs, exit 0, no database created" sh -c \
	"[ $? = 0 ] && grep -q 'no runs yet' status0.txt && [ ! -e fleet/.mailshift-migrate.db ]"

$migrate plan --fleet fleet --map "$map" >plan.txt 2>plan.err
rc=$?
[ "${UPDATE_GOLDEN:-}" = 1 ] && cp plan.txt "$golden/plan.txt"
ok "plan exits 1 (broken jobs it will not touch)" [ "$rc" = 1 ]
ok "plan output matches $golden/plan.txt" diff -u "$golden/plan.txt" plan.txt
ok "plan: nothing on stderr" [ ! -s plan.err ]
ok "plan changed nothing but the state database" same_tree fleet orig
ok "state database created 0600" [ "$(stat -c %a fleet/.mailshift-migrate.db)" = 600 ]
ok "plan lists every INI file of the jobs to migrate" sh -c '
	for f in $(jq -r ".jobs[] | select(.status == \"needs-migration\" or .status == \"at-risk\") | .ini" audit.json | sort -u | tr " " "?"); do :; done
	n=$(jq -r "[.jobs[] | select(.status == \"needs-migration\" or .status == \"at-risk\") | .ini] | unique | length" audit.json)
	[ "$(grep -c "^# ini " plan.txt)" = "$n" ]'

$migrate apply --fleet fleet --map "$map" >apply.txt 2>apply.err
rc=$?
ok "apply exits 1 (manual action reported)" [ "$rc" = 1 ]
ok "apply: every item applied" sh -c 'grep -q "0 skipped, 0 conflict, 0 failed, 0 still planned" apply.txt'
ok "apply wrote the change list" [ -s fleet/migrate/run-1/changes.json ] && [ -s fleet/migrate/run-1/changes.csv ]
ok "changes.json parses and lists the changed jobs" sh -c \
	'[ "$(jq "[.changes[] | select(.action == \"change\")] | length" fleet/migrate/run-1/changes.json)" -gt 0 ]' 
if [ "${UPDATE_GOLDEN:-}" = 1 ]; then
	rm -rf "$golden/applied"
	(cd fleet && find . -path ./migrate -prune -o -type f ! -name .mailshift-migrate.db -print) |
	while read -r f; do
		if ! cmp -s "fleet/$f" "orig/$f"; then
			mkdir -p "$golden/applied/$(dirname "$f")"
			cp "fleet/$f" "$golden/applied/$f"
		fi
	done
fi
ok "rewritten files match the golden files in $golden/applied" sh -c '
	cd "$1/applied" && find . -type f | while read -r f; do
		cmp "$f" "$2/fleet/$f" || exit 1
	done'  sh "$golden" "$tmp"
ok "no other file changed" sh -c '
	cd "$2/fleet" && find . -path ./migrate -prune -o -type f ! -name .mailshift-migrate.db -print |
	while read -r f; do
		[ -f "$1/applied/$f" ] && continue
		cmp -s "$f" "$2/orig/$f" || { echo "# changed: $f"; exit 1; }
	done' sh "$golden" "$tmp"
ok "no temporary files left" [ -z "$(find fleet -name '.*.tmp.*')" ]

$audit --fleet fleet --format json >audit.json 2>/dev/null
ok "audit after apply: 0 need migration" [ "$(jq '.summary["needs-migration"] + .summary["at-risk"]' audit.json)" = 0 ]
jobs_with migrated >migrated.txt
ok "the same jobs are now migrated" sh -c 'comm -23 to-migrate.txt migrated.txt | grep -q . && exit 1 || exit 0'

# apply again: a new plan with nothing to do; no file is written twice
find fleet -type f ! -name '.mailshift-migrate.db*' -exec stat -c '%n %i %Y' {} + | sort >stat1
$migrate apply --fleet fleet --map "$map" >apply2.txt 2>&1
ok "apply again exits 0" [ $? = 0 ]
find fleet -type f ! -name '.mailshift-migrate.db*' -exec stat -c '%n %i %Y' {} + | sort >stat2
ok "apply again wrote nothing" cmp -s stat1 stat2

$migrate status --fleet fleet --run 1 >status.txt
rc=$?
ok "status exits 1 (manual action)" [ "$rc" = 1 ]
ok "status lists the applied items" [ "$(grep -c '^applied' status.txt)" = "$(grep -c '^# ' plan.txt)" ]

$migrate rollback --fleet fleet --run 1 >rollback.txt 2>&1
ok "rollback exits 0" [ $? = 0 ]
ok "rollback restores every file byte for byte" same_tree fleet orig
$migrate status --fleet fleet --run 1 >status2.txt
ok "status says rolled-back" grep -q '^run 1: rolled-back' status2.txt
$migrate rollback --fleet fleet --run 1 >rollback2.txt 2>&1
ok "rollback again is harmless" same_tree fleet orig

# usage and data errors
$migrate plan --map "$map" >/dev/null 2>err.txt
ok "missing --fleet: EX_USAGE" [ $? = 64 ]
$migrate frobnicate --fleet fleet >/dev/null 2>&1
ok "unknown command: EX_USAGE" [ $? = 64 ]
echo '{"tenants": []}' >bad-map.json
$migrate plan --fleet fleet --map bad-map.json >/dev/null 2>err.txt
ok "bad mapping file: EX_DATAERR" [ $? = 65 ]
ok "the error names the mapping file" grep -q "bad-map.json" err.txt
$migrate status --fleet fleet --run 99 >/dev/null 2>&1
ok "status of an unknown run: EX_USAGE" [ $? = 64 ]

done_testing
