#!/bin/sh
# mailshift-migrate safety: a file edited between plan and apply is a
# conflict (left alone); a file edited after the migration is a rollback
# conflict unless --force; --only filters for staged cutovers; a second
# process on the same state database gets "in use"; a literal client
# secret is sealed and never appears in output, files or the database.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
migrate=${MAILSHIFT_BIN:-$top/bin}/mailshift-migrate
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t0600-safety.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
MAILSHIFT_HOME=$tmp/home
export MAILSHIFT_HOME
n=0
failed=0
t() {
	name=$1; shift
	n=$((n + 1))
	if "$@"; then echo "ok $n - $name"; else echo "not ok $n - $name"; failed=$((failed + 1)); fi
}
same_tree() { diff -r -x .mailshift-migrate.db -x migrate "$1" "$2" >/dev/null; }
map=$top/samples/map.json
cp -a samples/fleet "$tmp/orig"
cd "$tmp" || exit 1
recon=machines/WINAPP01/D/Jobs/finance/recon.ini
ap=machines/WINAPP01/D/Jobs/finance/ap.ini
returns=machines/FINSRV03/D/Jobs/payroll/returns.ini

# --- conflict between plan and apply
cp -a orig fleet
$migrate plan --fleet fleet --map "$map" >/dev/null 2>&1
printf '; edited by hand\r\n' >>"fleet/$recon"
cp "fleet/$recon" edited.ini
$migrate apply --fleet fleet --map "$map" >apply.txt 2>&1
t "apply with an edited file exits 1" [ $? = 1 ]
t "the edited file is a conflict" grep -q "^conflict .*recon.ini: the file changed since the plan" apply.txt
t "the edited file is left alone" cmp -s edited.ini "fleet/$recon"
t "the other files are applied" grep -q "^applied .*ap.ini" apply.txt
$migrate status --fleet fleet >status.txt
t "status shows the conflict" grep -q '^conflict .*recon.ini' status.txt
# a later apply plans again from the edited file and migrates it
$migrate apply --fleet fleet --map "$map" >apply2.txt 2>&1
t "a new run migrates the edited file" sh -c "grep -q '^applied .*recon.ini' apply2.txt && grep -q 'edited by hand' fleet/$recon && grep -q AuthMethod=OAuth2 fleet/$recon"
$migrate rollback --fleet fleet >/dev/null 2>&1
t "rollback of run 2 gives back the hand-edited file" cmp -s edited.ini "fleet/$recon"
$migrate rollback --fleet fleet --run 1 >/dev/null 2>&1
cp "orig/$recon" want.ini
printf '; edited by hand\r\n' >>want.ini
t "rollback of run 1 too: all originals but the hand edit" sh -c "
	cmp -s want.ini fleet/$recon && cp orig/$recon fleet/$recon &&
	diff -r -x .mailshift-migrate.db -x migrate fleet orig >/dev/null"

# --- conflict on rollback, --force
rm -rf fleet && cp -a orig fleet
$migrate apply --fleet fleet --map "$map" >/dev/null 2>&1
printf 'Folder=Archive\r\n' >>"fleet/$ap"
cp "fleet/$ap" ap-edited.ini
$migrate rollback --fleet fleet >rb.txt 2>&1
t "rollback with a file changed after migration exits 1" [ $? = 1 ]
t "that file is a conflict" grep -q "^conflict .*ap.ini: the file changed after the migration" rb.txt
t "and left alone" cmp -s ap-edited.ini "fleet/$ap"
t "the others are restored" cmp -s "orig/$recon" "fleet/$recon"
$migrate rollback --fleet fleet --force >rb2.txt 2>&1
t "rollback --force exits 0" [ $? = 0 ]
t "rollback --force restores the original" same_tree fleet orig

# --- --only
rm -rf fleet && cp -a orig fleet
$migrate apply --fleet fleet --map "$map" --only machine=FINSRV03 >only.txt 2>&1
t "--only machine: its INI file applied" sh -c "grep -q '^applied .*returns.ini' only.txt && grep -q AuthMethod=OAuth2 fleet/$returns"
t "--only machine: other machines untouched" sh -c "cmp -s orig/$recon fleet/$recon && cmp -s orig/$ap fleet/$ap"
t "--only machine: its export rewritten" sh -c "! cmp -s orig/jobs/extract/finsrv03-schedule-extract.xml fleet/jobs/extract/finsrv03-schedule-extract.xml"
t "--only machine: an export with other machines' jobs is not" cmp -s orig/jobs/rest/winapp01-jobs.json fleet/jobs/rest/winapp01-jobs.json
$migrate status --fleet fleet >status.txt
t "status: the rest still planned" sh -c "grep -q '^planned .*recon.ini' status.txt && grep -q '^run 1: open' status.txt"
$migrate apply --fleet fleet --map "$map" --only schedule=DAILY-FINANCE,job=AP-INVOICES >only2.txt 2>&1
t "--only schedule,job: only that job's INI" sh -c "grep -q AuthMethod=OAuth2 fleet/$ap && cmp -s orig/$recon fleet/$recon"
$migrate plan --fleet fleet --map "$map" >/dev/null 2>replan.err
t "plan refuses to replace a partly applied run (EX_DATAERR)" sh -c "[ $? = 65 ] && grep -q 'run 1 is partly applied' replan.err"
$migrate apply --fleet fleet --map "$map" >only3.txt 2>&1
t "apply without --only finishes the run" grep -q "0 still planned" only3.txt
t "and migrates the rest" grep -q AuthMethod=OAuth2 "fleet/$recon"
$migrate rollback --fleet fleet --only machine=FINSRV03 >/dev/null 2>&1
t "rollback --only machine: that machine restored" sh -c "cmp -s orig/$returns fleet/$returns && ! cmp -s orig/$recon fleet/$recon"
$migrate rollback --fleet fleet >/dev/null 2>&1
t "rollback of the rest restores everything" same_tree fleet orig
$migrate apply --fleet fleet --map "$map" --only nonsense >/dev/null 2>&1
t "bad --only: EX_USAGE" [ $? = 64 ]

# --- skipped items: no tenant for the domain, an expired secret
rm -rf fleet && cp -a orig fleet
jq '.tenants |= map(select(.domains | index("contoso.com") | not))' "$map" >no-contoso.json
$migrate plan --fleet fleet --map no-contoso.json >skip.txt 2>&1
t "plan with unmatched domains exits 1" [ $? = 1 ]
t "each INI is skipped with the reason" sh -c "[ \$(grep -c \"^skipped: ini .*no tenant in the mapping file for domain 'contoso.com'\" skip.txt) -ge 3 ]"
t "and its jobs' command lines are not changed" sh -c "! grep -q '^job ' skip.txt"
$migrate apply --fleet fleet --map no-contoso.json >/dev/null 2>&1
t "apply of a skipped plan writes nothing" same_tree fleet orig
rm -f fleet/.mailshift-migrate.db
jq '.tenants[0].secretExpires = "2020-01-31"' "$map" >expired.json
$migrate plan --fleet fleet --map expired.json >exp.txt 2>&1
t "an expired client secret skips its INI files" grep -q "client secret of tenant .* expired on 2020-01-31" exp.txt

# --- in use
rm -rf fleet && cp -a orig fleet
MAILSHIFT_MIGRATE_PAUSE=2 $migrate apply --fleet fleet --map "$map" >/dev/null 2>&1 &
pid=$!
sleep 0.5
$migrate status --fleet fleet >busy.out 2>busy.err
rc=$?
t "a second process gets EX_TEMPFAIL" [ "$rc" = 75 ]
t "with a clear 'in use' error" grep -q "state database '.*' is in use by another mailshift-migrate process" busy.err
$migrate apply --fleet fleet --map "$map" >/dev/null 2>busy2.err
t "a second apply too" sh -c "[ $? = 75 ] && grep -q 'in use' busy2.err"
wait $pid
$migrate status --fleet fleet >status.txt 2>&1
t "after the first finishes, the database is free and the run complete" sh -c "grep -q '^run 1: done' status.txt"

# --- literal secrets are sealed
rm -rf fleet && cp -a orig fleet
canary=CANARY-Zq9x-s3cr3t
sed "s/\"env:MAILSHIFT_CONTOSO_SECRET\"/\"$canary\"/" "$map" >lit-map.json
$migrate plan --fleet fleet --map lit-map.json >out.txt 2>&1
$migrate apply --fleet fleet --map lit-map.json >>out.txt 2>&1
$migrate status --fleet fleet >>out.txt 2>&1
t "plan shows the placeholder" grep -q 'ClientSecret=<sealed at apply>' out.txt
t "the secret is sealed in the INI files" grep -q '^ClientSecret=mssealed:v1:' "fleet/$recon"
t "the secret is not in any output" sh -c "! grep -q $canary out.txt"
t "nor in any file of the fleet" sh -c "! grep -rqa $canary fleet"
t "nor in the state database" sh -c "! sqlite3 fleet/.mailshift-migrate.db .dump | grep -q $canary"
t "nor in the database file's bytes" sh -c "! grep -qa $canary fleet/.mailshift-migrate.db"
t "the machine key was created 0600" [ "$(stat -c %a "$MAILSHIFT_HOME/machine.key")" = 600 ]
t "every INI file got a different sealed value (fresh nonces)" sh -c "
	[ \$(grep -rh '^ClientSecret=mssealed' fleet/machines | sort -u | wc -l) -ge 2 ]"
$migrate rollback --fleet fleet >/dev/null 2>&1
t "rollback after sealing restores the originals" same_tree fleet orig

echo "1..$n"
[ "$failed" = 0 ]
