# migrate-lib.sh - what the mailshift-migrate tool tests share, sourced
# after test-lib.sh: top (and the working folder there), migrate, golden,
# map, tmp; same_tree A B (the same files, migrate's own left out) and
# matches_golden DIR (the fleet in DIR is the golden applied state).
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
migrate=${MAILSHIFT_BIN:-$top/bin}/mailshift-migrate
golden=$top/tests/golden/migrate
map=$top/samples/map.json
tmp=$T
same_tree() { diff -r -x .mailshift-migrate.db -x migrate "$1" "$2" >/dev/null; }
matches_golden() {
	(cd "$golden/applied" && find . -type f) | while read -r f; do
		cmp -s "$golden/applied/$f" "$1/$f" || exit 1
	done
}
