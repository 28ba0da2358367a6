#!/bin/bash
# mailshift-migrate keeps the files' bytes sealed in the state database:
# a canary password in an INI file ([Mail] Password) and in a job export
# (-password:) is never in the database in clear (dump or raw bytes)
# after plan, apply and rollback; rollback with another machine key, or
# none, fails cleanly naming the key file and changes nothing; with the
# right key it restores every file byte for byte.
set -u
. "$(dirname "$0")/../lib/test-lib.sh"
. "$(dirname "$0")/../lib/migrate-lib.sh"
unset MAILSHIFT_KEY_FILE
recon=machines/WINAPP01/D/Jobs/finance/recon.ini
export_file=jobs/rest/winapp01-jobs.json
ini_canary=CanaryIni-Pw-4kQ7
cmd_canary=CanaryCmd-Pw-9tX2
db=fleet/.mailshift-migrate.db

cp -a samples/fleet "$tmp/orig"
cd "$tmp" || exit 1
sed -i "s/^Password=.*\$/Password=$ini_canary\\r/" "orig/$recon"
sed -i "s/-password:Winter2026!/-password:$cmd_canary/" "orig/$export_file"
ok "the canaries are in the copied fleet" sh -c "grep -q $ini_canary orig/$recon &&
	grep -q -- -password:$cmd_canary orig/$export_file"
cp -a orig fleet

clear_db() { # clear_db STEP: neither canary in the dump nor in the raw bytes
	ok "$1: no canary in 'sqlite3 .dump'" sh -c "
		sqlite3 $db .dump >dump.txt && [ -s dump.txt ] &&
		! grep -q -e $ini_canary -e $cmd_canary dump.txt"
	ok "$1: no canary in the database file's bytes" sh -c "
		! grep -qa -e $ini_canary -e $cmd_canary $db &&
		! grep -qa -e $ini_canary -e $cmd_canary $db-journal 2>/dev/null"
}

$migrate plan --fleet fleet --map "$map" >plan.txt 2>&1
ok "plan exits 1 (manual actions)" [ $? = 1 ]
ok "plan covers both files" sh -c "grep -q '^# ini $recon' plan.txt && grep -q '^# export $export_file' plan.txt"
clear_db plan
ok "the hashes are kept in clear" sh -c "
	[ \"\$(sqlite3 $db \"SELECT orig_sha FROM items WHERE path = '$recon'\")\" = \
	  \"\$(sha256sum orig/$recon | cut -d' ' -f1)\" ]"
ok "the stored bytes are sealed blobs" sh -c "
	[ \"\$(sqlite3 $db \"SELECT count(*) FROM blobs WHERE
		substr(CAST(bytes AS TEXT), 1, 4) <> 'MSB1'\")\" = 0 ] &&
	[ \"\$(sqlite3 $db \"SELECT count(*) FROM blobs WHERE col = 'orig'\")\" -gt 0 ]"

$migrate apply --fleet fleet --map "$map" >apply.txt 2>&1
ok "apply exits 1 (manual actions)" [ $? = 1 ]
ok "the INI password is cleared" sh -c "grep -q '^Password=.\$' fleet/$recon && ! grep -q $ini_canary fleet/$recon"
ok "the export is rewritten, its password left for manual action" sh -c "
	! cmp -s orig/$export_file fleet/$export_file && grep -q $cmd_canary fleet/$export_file"
clear_db apply
cp -a fleet applied

# rollback with another machine key: a clear error, nothing changed
mkdir -m 700 other
head -c 32 /dev/urandom >other/machine.key
chmod 600 other/machine.key
cp $db db-before
MAILSHIFT_HOME=$tmp/other $migrate rollback --fleet fleet >rb-other.txt 2>rb-other.err
ok "rollback with another key exits EX_CONFIG" [ $? = 78 ]
ok "the error names the key file" grep -q "machine key file '$tmp/other/machine.key': they were sealed with another machine key" rb-other.err
ok "the files are left as applied" same_tree fleet applied
ok "the database is unchanged" cmp -s db-before $db
MAILSHIFT_KEY_FILE=$tmp/none.key $migrate rollback --fleet fleet >rb-none.txt 2>rb-none.err
ok "rollback without a key file exits EX_CONFIG" [ $? = 78 ]
ok "naming the missing key file" grep -q "machine key file '$tmp/none.key' does not exist" rb-none.err
ok "no key file was created" [ ! -e "$tmp/none.key" ]
ok "the files are still as applied" same_tree fleet applied
$migrate apply --fleet fleet --map "$map" >/dev/null 2>&1
MAILSHIFT_HOME=$tmp/other $migrate apply --fleet fleet --map "$map" >ap-other.txt 2>&1
ok "a new plan under another key does not touch the sealed run" same_tree fleet applied

$migrate rollback --fleet fleet >rb.txt 2>&1
ok "rollback with the right key exits 0" [ $? = 0 ]
ok "every file byte-identical to the original" same_tree fleet orig
ok "the canaries are back in the files only" sh -c "grep -q $ini_canary fleet/$recon && grep -q $cmd_canary fleet/$export_file"
clear_db rollback
ok "no canary in any output" sh -c "! grep -q -e $ini_canary -e $cmd_canary plan.txt apply.txt rb.txt rb-other.* rb-none.*"
ok "status needs no key" sh -c "MAILSHIFT_KEY_FILE=$tmp/none.key $migrate status --fleet fleet --run 1 >st.txt 2>&1; grep -q '^run 1: rolled-back' st.txt"

done_testing
