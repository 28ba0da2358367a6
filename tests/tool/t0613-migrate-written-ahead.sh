#!/bin/bash
# test-tier: slow (pauses after every write)
# An apply that plans writes its files ahead: once its run is stored, the
# new bytes go to temporary files beside the files they replace while it
# decides and writes its batches, and each batch only renames them into
# place after its states are committed (migrate_int.h, mig_stage_*).
# Checked here, with batches of one file and a pause after each write
# (test hooks) so that the files written ahead can be seen and changed:
# they exist while the files they replace are untouched; a kill -9 leaves
# them to the next apply, which converges and cleans them; a file changed
# after it was written ahead is a conflict, left as it was changed, and
# its temporary file removed.
set -u
. "$(dirname "$0")/../lib/test-lib.sh"
. "$(dirname "$0")/../lib/migrate-lib.sh"
cp -a samples/fleet "$T/orig"
cd "$T" || exit 1
returns=machines/FINSRV03/D/Jobs/payroll/returns.ini
recon=machines/WINAPP01/D/Jobs/finance/recon.ini
ap=machines/WINAPP01/D/Jobs/finance/ap.ini
temps() { find "$1" -name '.*.tmp.*' | wc -l; }
# waits (up to 20 s) until command "$@" succeeds
wait_for() {
	k=0
	while [ $k -lt 200 ] && ! "$@"; do
		sleep 0.1
		k=$((k + 1))
	done
	"$@"
}
# the first item of the run (plan order) put in place
first_written() { ! cmp -s "orig/$returns" "fleet/$returns"; }
ahead_of() { [ -n "$(find "fleet/$(dirname "$1")" -name ".$(basename "$1").tmp.*")" ]; }

# killed while it pauses after its first write: the INI files still to
# come are written ahead beside their files, which are untouched
rm -rf fleet && cp -a orig fleet
MAILSHIFT_MIGRATE_BATCH=1 MAILSHIFT_MIGRATE_PAUSE=10 $migrate apply --fleet fleet \
    --map "$map" >/dev/null 2>&1 &
pid=$!
ok "the first file is put in place" wait_for first_written
ok "the last INI file of the run is written ahead meanwhile" wait_for ahead_of "$recon"
n=$(temps fleet)
{ kill -9 $pid; wait $pid; } 2>/dev/null   # (the shell's "Killed" too)
ok "files written ahead of their batches were there ($n)" [ "$n" -ge 2 ]
ok "and the files they replace are untouched" sh -c "cmp -s orig/$recon fleet/$recon && cmp -s orig/$ap fleet/$ap"
ok "only the first file changed" [ "$(diff -rq -x '.*' orig fleet | wc -l)" = 1 ]
$migrate apply --fleet fleet --map "$map" >apply.txt 2>&1
ok "the next apply resumes the run" grep -q '^resuming run 1' apply.txt
ok "  and converges on the golden files" matches_golden fleet
ok "  with nothing failed" grep -q "0 conflict, 0 failed, 0 still planned" apply.txt
is "$(temps fleet)" 0 "  and every temporary file the kill left cleaned up"
$migrate rollback --fleet fleet >/dev/null 2>&1
ok "rollback restores the originals" same_tree fleet orig
is "$(temps fleet)" 0 "  leaving no temporary file"

# a file changed by hand after it was written ahead, before its batch:
# its batch finds it changed (a conflict), leaves it as it is and removes
# what was written ahead
rm -rf fleet && cp -a orig fleet
MAILSHIFT_MIGRATE_BATCH=1 MAILSHIFT_MIGRATE_PAUSE=2 $migrate apply --fleet fleet \
    --map "$map" >apply.txt 2>&1 &
pid=$!
ok "the first file is put in place" wait_for first_written
ok "recon.ini is written ahead" wait_for ahead_of "$recon"
printf '; changed by hand\r\n' >>"fleet/$recon"
cp "fleet/$recon" changed.ini
wait $pid
ok "apply reports the conflict (exit 1)" [ $? = 1 ]
ok "  naming the file" grep -q "^conflict .*recon.ini" apply.txt
ok "  which keeps the change made by hand" cmp -s changed.ini "fleet/$recon"
is "$(temps fleet)" 0 "  and nothing written ahead is left"
ok "  the other INI files are migrated" sh -c "grep -q '^\[OAuth\]' fleet/$ap"

# --only: only the files it applies are written ahead
smart="machines/WINAPP01/C/ProgramData/OpConxps/SMArt Email/SMArtEmail.ini"
smart_written() { ! cmp -s "orig/$smart" "fleet/$smart"; }
rm -rf fleet && cp -a orig fleet
MAILSHIFT_MIGRATE_BATCH=1 MAILSHIFT_MIGRATE_PAUSE=10 $migrate apply --fleet fleet \
    --map "$map" --only machine=WINAPP01 >/dev/null 2>&1 &
pid=$!
ok "--only machine=WINAPP01: its first file is put in place" wait_for smart_written
ok "  its last INI file is written ahead" wait_for ahead_of "$recon"
ok "  nothing is written ahead beside FINSRV03's files" \
	[ -z "$(find fleet/machines/FINSRV03 fleet/jobs/extract -name '.*.tmp.*')" ]
{ kill -9 $pid; wait $pid; } 2>/dev/null   # (the shell's "Killed" too)
$migrate apply --fleet fleet --map "$map" >apply.txt 2>&1
ok "  an apply without --only then finishes the run" \
	grep -q "0 conflict, 0 failed, 0 still planned" apply.txt
ok "  on the golden files" matches_golden fleet
is "$(temps fleet)" 0 "  with no temporary file left"

# an apply of a plan made before (resumed or not) has no plan's bytes at
# hand, so it writes nothing ahead: with the same pause, no temporary file
# beside the files still to come
rm -rf fleet && cp -a orig fleet
$migrate plan --fleet fleet --map "$map" >/dev/null 2>&1
MAILSHIFT_MIGRATE_BATCH=1 MAILSHIFT_MIGRATE_PAUSE=3 $migrate apply --fleet fleet \
    --map "$map" >/dev/null 2>&1 &
pid=$!
ok "applying a stored plan: the first file is put in place" wait_for first_written
sleep 1
is "$(temps fleet)" 0 "  and nothing is written ahead"
{ kill -9 $pid; wait $pid; } 2>/dev/null   # (the shell's "Killed" too)

done_testing
