#!/bin/bash
# test-tier: slow (a killed apply and rollback after every write)
# kill -9 at every point of apply and of rollback (the test hook
# MAILSHIFT_MIGRATE_CRASH_AFTER=N dies with _exit after the Nth file
# written): running the command again converges on exactly the files of
# an uninterrupted run, with no half-written or temporary file, and
# nothing written twice.  Also a real SIGKILL in the middle of apply, and a
# rollback killed between the files of its cutover packet.
# The hook runs after the file's rename and before its folder is fsynced
# (once per batch of 1024 files, before the batch's states are committed), so
# every kill lands in that window: the item is still "applying" (or not
# yet rolled back) and the rerun recognises the file by its hash.
set -u
. "$(dirname "$0")/../lib/test-lib.sh"
. "$(dirname "$0")/../lib/migrate-lib.sh"
cp -a samples/fleet "$tmp/orig"
cd "$tmp" || exit 1
items=$(ls -R "$golden/applied" | grep -c '\.\(ini\|INI\|json\|xml\)$')
ok "golden applied state has files ($items)" [ "$items" -gt 1 ]

i=1
while [ "$i" -le "$items" ]; do
	rm -rf fleet && cp -a orig fleet
	# plan first so a crash can also hit a resumed run
	[ $((i % 2)) = 0 ] && $migrate plan --fleet fleet --map "$map" >/dev/null 2>&1
	MAILSHIFT_MIGRATE_CRASH_AFTER=$i $migrate apply --fleet fleet --map "$map" >/dev/null 2>&1
	ok "apply killed after write $i" [ $? = 99 ]
	$migrate status --fleet fleet >status.txt 2>&1
	ok "after the crash: $i applied, the rest applying or planned" sh -c "
		[ \$(grep -c '^applied' status.txt) -le $i ] &&
		! grep -q '^failed\|^conflict' status.txt"
	$migrate apply --fleet fleet --map "$map" >apply.txt 2>&1
	ok "apply again after write $i finishes the run" grep -q "0 skipped, 0 conflict, 0 failed, 0 still planned" apply.txt
	ok "resumed, not replanned" grep -q '^resuming run 1' apply.txt
	ok "converged on the golden files" matches_golden fleet
	ok "no temporary file left" [ -z "$(find fleet -name '.*.tmp.*')" ]
	MAILSHIFT_MIGRATE_CRASH_AFTER=$i $migrate rollback --fleet fleet >/dev/null 2>&1
	ok "rollback killed after write $i" [ $? = 99 ]
	$migrate rollback --fleet fleet >/dev/null 2>&1
	ok "rollback again restores the originals" same_tree fleet orig
	i=$((i + 1))
done

# a real SIGKILL while apply sleeps after its first write (the files it
# writes ahead, ".NAME.tmp.PID.N", are not put in place: not counted)
rm -rf fleet && cp -a orig fleet
MAILSHIFT_MIGRATE_PAUSE=5 $migrate apply --fleet fleet --map "$map" >/dev/null 2>&1 &
pid=$!
k=0
while [ $k -lt 100 ] && ! grep -rq --exclude='.*' 'MAILSHIFT_CONTOSO_SECRET' fleet/machines 2>/dev/null; do
	sleep 0.1; k=$((k + 1))
done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
ok "SIGKILL landed during apply" [ "$(grep -rl --exclude='.*' 'MAILSHIFT_CONTOSO_SECRET' fleet/machines | wc -l)" = 1 ]
# what a process killed inside its atomic write leaves behind
printf 'half' >"fleet/machines/WINAPP01/D/Jobs/finance/.recon.ini.tmp.4194303.0"
$migrate apply --fleet fleet --map "$map" >apply.txt 2>&1
ok "apply after SIGKILL converges" matches_golden fleet
ok "a dead process's temporary file is cleaned up" [ -z "$(find fleet -name '.*.tmp.*')" ]
ok "and reports nothing failed" grep -q "0 conflict, 0 failed, 0 still planned" apply.txt

# a rollback killed between the files of its cutover packet (after its
# last commit): the next rollback writes the packet whole, then marks the
# run rolled back; the one after has nothing to do
rm -rf ref && cp -a orig ref
$migrate apply --fleet ref --map "$map" >/dev/null 2>&1
$migrate rollback --fleet ref >/dev/null 2>&1
ok "an uninterrupted rollback writes a packet of four files" \
	[ "$(ls ref/migrate/run-1-rollback | wc -l)" = 4 ]
for k in 1 2 3; do
	rm -rf fleet && cp -a orig fleet
	$migrate apply --fleet fleet --map "$map" >/dev/null 2>&1
	MAILSHIFT_MIGRATE_CRASH_AFTER=$((items + k)) $migrate rollback --fleet fleet >/dev/null 2>&1
	ok "rollback killed after packet file $k" [ $? = 99 ]
	ok "  the packet is not whole then" \
		[ "$(ls fleet/migrate/run-1-rollback 2>/dev/null | grep -c '^[a-z]*\.\(json\|csv\)$')" -lt 4 ]
	$migrate rollback --fleet fleet >again.txt 2>&1
	ok "  rollback again writes it whole" diff -r ref/migrate/run-1-rollback fleet/migrate/run-1-rollback
	ok "  and the originals are back" same_tree fleet orig
	$migrate rollback --fleet fleet >third.txt 2>&1
	ok "  then there is nothing to roll back" grep -q '^nothing to roll back' third.txt
done

# an apply killed between the files of its cutover packet (every INI
# file written and recorded): the run stays open, the next apply resumes
# it and writes the packet whole -- a run marked done first would leave
# the half packet, and a dead process's temporary files beside it, for
# good (the next apply plans a new run with nothing to write)
for k in 1 2 3; do
	rm -rf fleet && cp -a orig fleet
	MAILSHIFT_MIGRATE_CRASH_AFTER=$((items + k)) $migrate apply --fleet fleet --map "$map" >/dev/null 2>&1
	ok "apply killed after packet file $k" [ $? = 99 ]
	ok "  the packet is not whole then" \
		[ "$(ls fleet/migrate/run-1 2>/dev/null | grep -c '^[a-z]*\.\(json\|csv\)$')" -lt 4 ]
	$migrate status --fleet fleet >status.txt 2>&1
	ok "  status says the run is open and why" sh -c \
		"grep -q '^run 1: open' status.txt && grep -q '^note: every file of run 1 is settled' status.txt"
	$migrate plan --fleet fleet --map "$map" >replan.txt 2>&1
	ok "  plan refuses to replace it, and says why (EX_DATAERR)" sh -c \
		"[ $? = 65 ] && grep -q 'run 1 is applied but not closed' replan.txt"
	printf 'half' >fleet/migrate/run-1/.deploy.csv.tmp.4194303.0
	$migrate apply --fleet fleet --map "$map" >again.txt 2>&1
	ok "  apply again resumes the run" grep -q '^resuming run 1' again.txt
	ok "  and writes the packet whole" diff -r ref/migrate/run-1 fleet/migrate/run-1
	ok "  with no temporary file left" [ -z "$(find fleet -name '.*.tmp.*')" ]
	ok "  converged on the golden files" matches_golden fleet
done

# Several batches (256 files each here: MAILSHIFT_MIGRATE_BATCH, a test
# hook; 1024 by default): batch k is written on a thread of its
# own while the main thread decides batch k+1 and stores its originals in
# an open transaction (rollback: reads them).  A kill in the middle of
# batch 2 (write 300) leaves batch 1 recorded, batch 2 applying and batch
# 3's transaction uncommitted; one during the last batch (write 700) has
# no next batch.  With and without a plan first.
python3 "$top/bench/gen-fleet.py" --thin "$tmp/many" 800 20 800 basic >/dev/null
cat >"$tmp/map-env.json" <<'EOM'
{ "transport": "imap",
  "tenants": [ { "domains": ["contoso.com"], "tenantId": "7f3c9a2e-5b1d-4e8a-9c6f-2d4b8e1a7c35",
                 "clientId": "0b8e4f21-9a3c-4d7e-b5f2-6c1a9e8d3b47",
                 "clientSecret": "env:MAILSHIFT_CONTOSO_SECRET" } ] }
EOM
export MAILSHIFT_MIGRATE_BATCH=256
rm -rf mref && cp -a many mref
$migrate apply --fleet mref --map map-env.json >/dev/null 2>&1
ok "an uninterrupted apply of 800 INI files changes them" sh -c "! diff -rq -x .mailshift-migrate.db -x migrate many mref >/dev/null"
for kill in 300 700; do
	for plan in 0 1; do
		rm -rf fleet && cp -a many fleet
		[ $plan = 1 ] && $migrate plan --fleet fleet --map map-env.json >/dev/null 2>&1
		MAILSHIFT_MIGRATE_CRASH_AFTER=$kill $migrate apply --fleet fleet --map map-env.json >/dev/null 2>&1
		ok "apply of 3+ batches killed after write $kill (plan first: $plan)" [ $? = 99 ]
		$migrate status --fleet fleet >status.txt 2>&1
		ok "  the batches before it recorded applied, none after" \
			[ "$(grep -c '^applied' status.txt)" = $((kill / 256 * 256)) ]
		$migrate apply --fleet fleet --map map-env.json >apply.txt 2>&1
		ok "  apply again finishes the run" grep -q " 0 conflict, 0 failed, 0 still planned" apply.txt
		ok "  and converges on the uninterrupted result" \
			diff -r -x .mailshift-migrate.db -x migrate mref fleet
		MAILSHIFT_MIGRATE_CRASH_AFTER=$kill $migrate rollback --fleet fleet >/dev/null 2>&1
		ok "  rollback killed after write $kill" [ $? = 99 ]
		$migrate status --fleet fleet >status.txt 2>&1
		# (rollback's batches count from the last item: their bounds
		# are not those of apply)
		n=$(grep -c '^rolled-back' status.txt)
		ok "  some batches recorded rolled back ($n), not the one killed" \
			[ "$n" -gt 0 -a "$n" -lt $kill ]
		$migrate rollback --fleet fleet >rb.txt 2>&1
		ok "  rollback again restores every original" same_tree fleet many
		ok "  no temporary file left" [ -z "$(find fleet -name '.*.tmp.*')" ]
	done
done

done_testing
