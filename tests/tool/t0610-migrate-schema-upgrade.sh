#!/bin/bash
# A state database of schema 1 (the sealed bytes inside the items rows,
# as every mailshift-migrate before schema 2 wrote it) is converted when
# it is opened: status reads the same run byte for byte, apply resumes
# it, rollback restores every original byte for byte.  The schema-1
# database is made from a schema-2 one by SQL, with the CREATE TABLE
# statement of items exactly as the older binary wrote it (commit
# 8b06cd8; checked against that binary's own databases when schema 2 was
# made).  Also: an older binary's columns are gone from the converted
# database, and a database of a newer schema is refused.
set -u
. "$(dirname "$0")/../lib/test-lib.sh"
. "$(dirname "$0")/../lib/migrate-lib.sh"
if ! command -v sqlite3 >/dev/null 2>&1; then
	# scripts/deps installs it: a missing shell is a broken machine,
	# not a reason to count this test as passed
	bail_out "needs the sqlite3 shell (Debian package sqlite3)"
fi
db=fleet/.mailshift-migrate.db
cp -a samples/fleet "$tmp/orig"
cd "$tmp" || exit 1
cp -a orig fleet

# schema 2 -> schema 1: the blobs back into items.orig / items.new
to_schema_1() {
	sqlite3 "$1" <<'EOS'
BEGIN;
ALTER TABLE items RENAME TO items_2;
CREATE TABLE items ( run INTEGER NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, path TEXT NOT NULL, machine TEXT NOT NULL, jobs TEXT NOT NULL, state TEXT NOT NULL, reason TEXT, written INTEGER NOT NULL DEFAULT 0, orig BLOB, orig_sha TEXT, new BLOB, new_sha TEXT, seal TEXT, updated INTEGER NOT NULL, PRIMARY KEY (run, seq));
INSERT INTO items SELECT i.run, i.seq, i.kind, i.path, i.machine, i.jobs, i.state,
  i.reason, i.written,
  (SELECT bytes FROM blobs b WHERE b.run = i.run AND b.seq = i.seq AND b.col = 'orig'),
  i.orig_sha,
  (SELECT bytes FROM blobs b WHERE b.run = i.run AND b.seq = i.seq AND b.col = 'new'),
  i.new_sha, i.seal, i.updated FROM items_2 i;
DROP TABLE items_2;
DROP TABLE blobs;
UPDATE meta SET value = '1' WHERE key = 'schema';
PRAGMA user_version = 0;
COMMIT;
EOS
}

# a run in every state: part applied (--only), one file written by an
# apply of one job killed right after it (applying), the rest planned.
# Planned by plan, which stores every item's original and new bytes, as
# the older binaries did (an apply that plans stores an item's original
# only when it marks it applying: schema 3; and an export's hashes, since
# schema 4)
$migrate plan --fleet fleet --map "$map" >/dev/null 2>&1
$migrate apply --fleet fleet --map "$map" --only machine=FINSRV03 >/dev/null 2>&1
MAILSHIFT_MIGRATE_CRASH_AFTER=1 $migrate apply --fleet fleet --map "$map" --only job=RECON-MAIL-IN \
    >/dev/null 2>&1
ok "the second apply was killed after one write" [ $? = 99 ]
$migrate status --fleet fleet >status2.txt 2>&1
$migrate status --fleet fleet --format json >status2.json 2>&1
ok "the run has applied, applying and planned items" sh -c "
	grep -q '^applied' status2.txt && grep -q '^applying' status2.txt &&
	grep -q '^planned' status2.txt"
nblobs=$(sqlite3 $db "SELECT count(*) FROM blobs WHERE col IN ('orig', 'new')")
to_schema_1 $db
ok "the database is of schema 1 now" sh -c "
	[ \"\$(sqlite3 $db 'PRAGMA user_version')\" = 0 ] &&
	[ \"\$(sqlite3 $db \"SELECT count(*) FROM sqlite_master WHERE name = 'blobs'\")\" = 0 ] &&
	[ \"\$(sqlite3 $db 'SELECT count(orig) + count(new) FROM items')\" = $nblobs ]"
cp $db db-schema1

$migrate status --fleet fleet >status1.txt 2>&1
ok "status of the schema-1 database exits as before (1: items open)" [ $? = 1 ]
ok "status reads the same run, byte for byte" cmp -s status1.txt status2.txt
$migrate status --fleet fleet --format json >status1.json 2>&1
ok "and the same JSON" cmp -s status1.json status2.json
ok "the database was converted to schema 4" sh -c "
	[ \"\$(sqlite3 $db 'PRAGMA user_version')\" = 4 ] &&
	[ \"\$(sqlite3 $db 'SELECT count(*) FROM blobs')\" = $nblobs ] &&
	[ \"\$(sqlite3 $db \"SELECT count(*) FROM pragma_table_info('items') WHERE name IN ('orig', 'new')\")\" = 0 ]"
ok "the sealed bytes moved as they were" sh -c "
	[ \"\$(sqlite3 db-schema1 \"SELECT hex(orig) FROM items WHERE orig IS NOT NULL ORDER BY seq\")\" = \
	  \"\$(sqlite3 $db \"SELECT hex(bytes) FROM blobs WHERE col = 'orig' ORDER BY seq\")\" ]"
ok "opening a converted database again changes nothing" sh -c "
	cp $db db-converted && $migrate status --fleet fleet >/dev/null 2>&1; cmp -s db-converted $db"

$migrate apply --fleet fleet --map "$map" >apply.txt 2>&1
ok "apply resumes the converted run" grep -q '^resuming run 1' apply.txt
ok "and finishes it" grep -q "0 skipped, 0 conflict, 0 failed, 0 still planned" apply.txt
ok "the fleet is the golden applied state" matches_golden fleet
$migrate rollback --fleet fleet >rollback.txt 2>&1
ok "rollback exits 0" [ $? = 0 ]
ok "rollback restores every file byte for byte" same_tree fleet orig

# a schema-1 database of a finished apply: rollback straight away
rm -rf fleet && cp -a orig fleet
$migrate apply --fleet fleet --map "$map" >/dev/null 2>&1
to_schema_1 $db
$migrate rollback --fleet fleet >rollback2.txt 2>&1
ok "rollback of a schema-1 run exits 0" [ $? = 0 ]
ok "and restores every file byte for byte" same_tree fleet orig

# schema 2 (the tables of schema 4, every item's bytes stored): converted
# by setting the version alone, in the transaction that opens it (and so
# is schema 3, which differs from 2 and 4 only in what may be missing)
rm -rf fleet && cp -a orig fleet
$migrate plan --fleet fleet --map "$map" >/dev/null 2>&1
MAILSHIFT_MIGRATE_CRASH_AFTER=2 $migrate apply --fleet fleet --map "$map" >/dev/null 2>&1
ok "an apply killed after two writes" [ $? = 99 ]
sqlite3 $db "UPDATE meta SET value = '2' WHERE key = 'schema'; PRAGMA user_version = 2"
sqlite3 $db .dump | grep -v -e user_version -e "'schema'" >schema2.dump
$migrate status --fleet fleet >status-s2.txt 2>&1
ok "status of a schema-2 database reads its run" grep -q '^applying' status-s2.txt
ok "the database was converted to schema 4" sh -c "
	[ \"\$(sqlite3 $db 'PRAGMA user_version')\" = 4 ] &&
	[ \"\$(sqlite3 $db \"SELECT value FROM meta WHERE key = 'schema'\")\" = 4 ]"
ok "and nothing else changed" sh -c "sqlite3 $db .dump | grep -v -e user_version -e \"'schema'\" | cmp -s - schema2.dump"
$migrate apply --fleet fleet --map "$map" >apply-s2.txt 2>&1
ok "apply resumes the schema-2 run" grep -q '^resuming run 1' apply-s2.txt
ok "and finishes it" grep -q "0 conflict, 0 failed, 0 still planned" apply-s2.txt
ok "the fleet is the golden applied state" matches_golden fleet
$migrate rollback --fleet fleet >/dev/null 2>&1
ok "rollback restores every file byte for byte" same_tree fleet orig

# a newer schema is refused, and left as it is
sqlite3 $db 'PRAGMA user_version = 5'
cp $db db-newer
$migrate status --fleet fleet >newer.txt 2>newer.err
ok "a database of a newer schema exits EX_DATAERR" [ $? = 65 ]
ok "naming the schemas" grep -q "has schema 5, written by a newer mailshift-migrate" newer.err
ok "and is not changed" cmp -s db-newer $db

done_testing
