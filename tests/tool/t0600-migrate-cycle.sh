#!/bin/sh
# mailshift-migrate on a copy of samples/fleet: plan (golden output, nothing
# changed on disk), apply (golden rewritten INI files and exports, audit
# then says 0 need migration and the same jobs are migrated), apply again
# (nothing written twice), status, rollback (byte-identical originals).
# UPDATE_GOLDEN=1 rewrites tests/golden/migrate/plan.txt and applied/.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
migrate=${MAILSHIFT_BIN:-$top/bin}/mailshift-migrate
audit=${MAILSHIFT_BIN:-$top/bin}/mailshift-audit
golden=$top/tests/golden/migrate
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t0600.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
MAILSHIFT_HOME=$tmp/home
export MAILSHIFT_HOME
n=0
failed=0
t() { # t NAME CMD...: ok when CMD succeeds
	name=$1; shift
	n=$((n + 1))
	if "$@"; then echo "ok $n - $name"; else echo "not ok $n - $name"; failed=$((failed + 1)); fi
}
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
t "audit finds jobs to migrate ($before)" [ "$before" -gt 0 ]

$migrate status --fleet fleet >status0.txt 2>&1
t "status before any plan: no runs, exit 0, no database created" sh -c \
	"[ $? = 0 ] && grep -q 'no runs yet' status0.txt && [ ! -e fleet/.mailshift-migrate.db ]"

$migrate plan --fleet fleet --map "$map" >plan.txt 2>plan.err
rc=$?
[ "${UPDATE_GOLDEN:-}" = 1 ] && cp plan.txt "$golden/plan.txt"
t "plan exits 1 (broken jobs it will not touch)" [ "$rc" = 1 ]
t "plan output matches $golden/plan.txt" diff -u "$golden/plan.txt" plan.txt
t "plan: nothing on stderr" [ ! -s plan.err ]
t "plan changed nothing but the state database" same_tree fleet orig
t "state database created 0600" [ "$(stat -c %a fleet/.mailshift-migrate.db)" = 600 ]
t "plan lists every INI file of the jobs to migrate" sh -c '
	for f in $(jq -r ".jobs[] | select(.status == \"needs-migration\" or .status == \"at-risk\") | .ini" audit.json | sort -u | tr " " "?"); do :; done
	n=$(jq -r "[.jobs[] | select(.status == \"needs-migration\" or .status == \"at-risk\") | .ini] | unique | length" audit.json)
	[ "$(grep -c "^# ini " plan.txt)" = "$n" ]'

$migrate apply --fleet fleet --map "$map" >apply.txt 2>apply.err
rc=$?
t "apply exits 1 (manual action reported)" [ "$rc" = 1 ]
t "apply: every item applied" sh -c 'grep -q "0 skipped, 0 conflict, 0 failed, 0 still planned" apply.txt'
t "apply wrote the change list" [ -s fleet/migrate/run-1/changes.json ] && [ -s fleet/migrate/run-1/changes.csv ]
t "changes.json parses and lists the changed jobs" sh -c \
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
t "rewritten files match the golden files in $golden/applied" sh -c '
	cd "$1/applied" && find . -type f | while read -r f; do
		cmp "$f" "$2/fleet/$f" || exit 1
	done'  sh "$golden" "$tmp"
t "no other file changed" sh -c '
	cd "$2/fleet" && find . -path ./migrate -prune -o -type f ! -name .mailshift-migrate.db -print |
	while read -r f; do
		[ -f "$1/applied/$f" ] && continue
		cmp -s "$f" "$2/orig/$f" || { echo "# changed: $f"; exit 1; }
	done' sh "$golden" "$tmp"
t "no temporary files left" [ -z "$(find fleet -name '.*.tmp.*')" ]

$audit --fleet fleet --format json >audit.json 2>/dev/null
t "audit after apply: 0 need migration" [ "$(jq '.summary["needs-migration"] + .summary["at-risk"]' audit.json)" = 0 ]
jobs_with migrated >migrated.txt
t "the same jobs are now migrated" sh -c 'comm -23 to-migrate.txt migrated.txt | grep -q . && exit 1 || exit 0'

# apply again: a new plan with nothing to do; no file is written twice
find fleet -type f ! -name '.mailshift-migrate.db*' -exec stat -c '%n %i %Y' {} + | sort >stat1
$migrate apply --fleet fleet --map "$map" >apply2.txt 2>&1
t "apply again exits 0" [ $? = 0 ]
find fleet -type f ! -name '.mailshift-migrate.db*' -exec stat -c '%n %i %Y' {} + | sort >stat2
t "apply again wrote nothing" cmp -s stat1 stat2

$migrate status --fleet fleet --run 1 >status.txt
rc=$?
t "status exits 1 (manual action)" [ "$rc" = 1 ]
t "status lists the applied items" [ "$(grep -c '^applied' status.txt)" = "$(grep -c '^# ' plan.txt)" ]

$migrate rollback --fleet fleet --run 1 >rollback.txt 2>&1
t "rollback exits 0" [ $? = 0 ]
t "rollback restores every file byte for byte" same_tree fleet orig
$migrate status --fleet fleet --run 1 >status2.txt
t "status says rolled-back" grep -q '^run 1: rolled-back' status2.txt
$migrate rollback --fleet fleet --run 1 >rollback2.txt 2>&1
t "rollback again is harmless" same_tree fleet orig

# usage and data errors
$migrate plan --map "$map" >/dev/null 2>err.txt
t "missing --fleet: EX_USAGE" [ $? = 64 ]
$migrate frobnicate --fleet fleet >/dev/null 2>&1
t "unknown command: EX_USAGE" [ $? = 64 ]
echo '{"tenants": []}' >bad-map.json
$migrate plan --fleet fleet --map bad-map.json >/dev/null 2>err.txt
t "bad mapping file: EX_DATAERR" [ $? = 65 ]
t "the error names the mapping file" grep -q "bad-map.json" err.txt
$migrate status --fleet fleet --run 99 >/dev/null 2>&1
t "status of an unknown run: EX_USAGE" [ $? = 64 ]

echo "1..$n"
[ "$failed" = 0 ]
