#!/bin/bash
# An apply that plans keeps the plan's bytes (originals and new files) in
# memory for its writes only up to MAILSHIFT_MIGRATE_KEEP_MB (default
# 512 MB); an item beyond keeps its hashes and its edit, and its new
# bytes are made again from its file when its batch comes.  Either way
# the fleet comes out the same, byte for byte, and rolls back the same.
set -u
. "$(dirname "$0")/../lib/test-lib.sh"
. "$(dirname "$0")/../lib/migrate-lib.sh"
cp -a samples/fleet "$T/orig"
cd "$T" || exit 1

# the default: every byte kept, nothing made again
cp -a orig fleet
MAILSHIFT_MIGRATE_TIMES=1 $migrate apply --fleet fleet --map "$map" >kept.out 2>kept.err
applied=$(sed -n 's/^summary: run [0-9]*: \([0-9]*\) applied.*/\1/p' kept.out)
ok "apply writes files" [ "${applied:-0}" -gt 2 ]
like "$(cat kept.err)" ', 0 remade$' "with the default, no item is made again"
ok "the fleet is the golden applied state" matches_golden fleet
cp -a fleet kept

# nothing kept: every written item made again from its file and its edit
rm -rf fleet && cp -a orig fleet
MAILSHIFT_MIGRATE_KEEP_MB=0 MAILSHIFT_MIGRATE_TIMES=1 $migrate apply --fleet fleet \
    --map "$map" >none.out 2>none.err
like "$(cat none.err)" ", $applied remade\$" \
    "with MAILSHIFT_MIGRATE_KEEP_MB=0 every applied item is made again"
is "$(grep '^summary' none.out)" "$(grep '^summary' kept.out)" "and the summary is the same"
ok "the fleet is byte for byte the one of the default apply" same_tree fleet kept
$migrate rollback --fleet fleet >rollback.out 2>&1
ok "rollback exits 0" [ $? = 0 ]
ok "and restores every original byte for byte" same_tree fleet orig

done_testing
