#!/bin/bash
# An apply that plans stores its export items with their edit and without
# their hashes (schema 4): their bytes are made on a thread of their own
# while the INI files are written, and each export's hashes are recorded
# in the commit that marks it applying, before it is written.  A kill
# before then leaves the exports planned without hashes; the next apply
# makes each from its file as it is then and its edit.  Checked here: the
# rows the kill leaves, the hashes recorded (those of the files written
# and of the originals rollback restores), an export changed while the
# run waited, and one whose command lines are gone.
set -u
. "$(dirname "$0")/../lib/test-lib.sh"
. "$(dirname "$0")/../lib/migrate-lib.sh"
if ! command -v sqlite3 >/dev/null 2>&1; then
	bail_out "needs the sqlite3 shell (Debian package sqlite3)"
fi
cp -a samples/fleet "$T/orig"
cd "$T" || exit 1
db=fleet/.mailshift-migrate.db
q() { sqlite3 "$db" "$1"; }
rest=jobs/rest/winapp01-jobs.json
xml=jobs/extract/finsrv03-schedule-extract.xml

# uninterrupted: every export written has both hashes, and they are those
# of the file written and of its original
cp -a orig fleet
$migrate apply --fleet fleet --map "$map" >apply.txt 2>&1
ok "an uninterrupted apply that plans matches the golden files" matches_golden fleet
ok "it wrote two exports" [ "$(q "SELECT count(*) FROM items WHERE kind = 'export' AND state = 'applied'")" = 2 ]
for f in $rest $xml; do
	is "$(q "SELECT new_sha FROM items WHERE path = '$f'")" \
	   "$(sha256sum <fleet/$f | cut -d' ' -f1)" "$f: new_sha is the hash of the file written"
	is "$(q "SELECT orig_sha FROM items WHERE path = '$f'")" \
	   "$(sha256sum <orig/$f | cut -d' ' -f1)" "$f: orig_sha is the hash of its original"
done

# killed after its first write (an INI file; batches of two files, so
# that the exports are not yet in a batch): the exports are planned
# without hashes, with their edit stored (sealed)
rm -rf fleet && cp -a orig fleet
MAILSHIFT_MIGRATE_BATCH=2 MAILSHIFT_MIGRATE_CRASH_AFTER=1 $migrate apply --fleet fleet \
    --map "$map" >/dev/null 2>&1
ok "apply killed after its first write" [ $? = 99 ]
is "$(q "SELECT count(*) FROM items WHERE kind = 'export' AND state = 'planned' AND orig_sha IS NULL AND new_sha IS NULL")" 2 \
   "the two exports are planned without hashes"
is "$(q "SELECT count(*) FROM blobs b JOIN items i ON b.run = i.run AND b.seq = i.seq WHERE i.kind = 'export' AND b.col = 'edit'")" 2 \
   "with their edits stored"
ok "the edits are sealed (no command line in clear)" sh -c "! sqlite3 $db \"SELECT hex(bytes) FROM blobs WHERE col = 'edit'\" | grep -qi \"\$(printf 'SMArtEmail.exe' | od -An -tx1 | tr -d ' \\n')\""
is "$(q "SELECT count(*) FROM items WHERE kind = 'ini' AND state IN ('planned', 'applying', 'applied') AND (orig_sha IS NULL OR new_sha IS NULL)")" 0 \
   "every INI item has its hashes"

# the REST export changed while the run waited (a line added at its end,
# the command lines untouched): the next apply makes it from the file as
# it is now, and rollback restores that file
printf '\n' >>fleet/$rest
cp fleet/$rest changed.json
$migrate apply --fleet fleet --map "$map" >resume.txt 2>&1
ok "the resumed apply finishes the run" grep -q "0 skipped, 0 conflict, 0 failed, 0 still planned" resume.txt
ok "resumed, not replanned" grep -q '^resuming run 1' resume.txt
ok "the changed export is the golden one with the change kept" \
	cmp -s fleet/$rest <(cat "$golden/applied/$rest"; printf '\n')
ok "the unchanged export is the golden one" cmp -s "$golden/applied/$xml" fleet/$xml
is "$(q "SELECT orig_sha FROM items WHERE path = '$rest'")" \
   "$(sha256sum <changed.json | cut -d' ' -f1)" "its orig_sha is the hash of the file it was made from"
is "$(q "SELECT new_sha FROM items WHERE path = '$rest'")" \
   "$(sha256sum <fleet/$rest | cut -d' ' -f1)" "its new_sha the hash of the file written"
$migrate rollback --fleet fleet >/dev/null 2>&1
ok "rollback restores the export as it was made from" cmp -s changed.json fleet/$rest
ok "and the INI files as they were" sh -c "cd orig && find machines -type f | while read -r f; do cmp -s \"\$f\" \"../fleet/\$f\" || exit 1; done"

# the command lines gone from an export while the run waited: skipped,
# with the reason, the rest applied
rm -rf fleet && cp -a orig fleet
MAILSHIFT_MIGRATE_BATCH=2 MAILSHIFT_MIGRATE_CRASH_AFTER=1 $migrate apply --fleet fleet \
    --map "$map" >/dev/null 2>&1
ok "apply killed after its first write, again" [ $? = 99 ]
sed -i 's/SMArtEmail\.exe/other.exe/I; s/smartemail -inifile/other -inifile/I' fleet/$xml
cp fleet/$xml gone.xml
$migrate apply --fleet fleet --map "$map" >gone.txt 2>&1
ok "the apply exits 1 (an item skipped)" [ $? = 1 ]
like "$(grep "^skipped" gone.txt)" "export $xml: the command lines were not found in the export" \
     "the export is skipped with the reason"
ok "and left as it was" cmp -s gone.xml fleet/$xml
ok "the other export is applied" cmp -s "$golden/applied/$rest" fleet/$rest
is "$(q "SELECT state FROM items WHERE path = '$xml'")" skipped "its state is skipped"

done_testing
