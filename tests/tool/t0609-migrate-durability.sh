#!/bin/bash
# test-tier: slow (apply and rollback under strace)
# The durability order of apply and rollback, seen in their system calls
# (strace): every file is written to a temporary file, fsynced and renamed
# over the original, and every folder a rename happened in is fsynced
# before the state database syncs again (the commit that records the
# batch's files as applied / rolled back).  The folder fsyncs are batched:
# one per folder per batch, fewer than the renames.  The files of a batch
# are written by several threads at once (strace -f follows them).  Over
# 300 INI files (two 256-file batches: MAILSHIFT_MIGRATE_BATCH, a test
# hook, 1024 files by default).
set -u
. "$(dirname "$0")/../lib/test-lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
migrate=${MAILSHIFT_BIN:-$top/bin}/mailshift-migrate
if ! command -v strace >/dev/null 2>&1 || ! command -v python3 >/dev/null 2>&1 ||
   ! strace -o /dev/null true >/dev/null 2>&1; then
	echo "1..0 # SKIP needs strace (and ptrace allowed) and python3"
	exit 0
fi
tmp=$T
export MAILSHIFT_MIGRATE_BATCH=256
python3 bench/gen-fleet.py --thin "$tmp/orig" 300 15 300 basic >/dev/null
cp -a "$tmp/orig" "$tmp/fleet"
nini=$(find "$tmp/fleet/machines" -name '*.ini' | wc -l)

# check TRACE: prints "renames dirfsyncs violations files_fsynced_before_rename"
check() {
	awk '
	/ rename\(/ {
		# rename("DIR/.NAME.tmp.P.N", "DIR/NAME") = 0
		s = $0; sub(/^[^"]*"[^"]*", "/, "", s); sub(/".*/, "", s)
		d = s; sub(/\/[^\/]*$/, "", d)
		src = $0; sub(/^[^"]*"/, "", src); sub(/".*/, "", src)
		if (!(src in synced)) early++
		pending[d] = 1; renames++; next
	}
	/ fsync\(/ {
		# fsync(5</DIR/NAME>) = 0, or from a writer thread
		# fsync(5</DIR/NAME> <unfinished ...>
		p = $0; sub(/^[^<]*</, "", p); sub(/>.*/, "", p)
		if (p in pending) { delete pending[p]; dirs++ } else synced[p] = 1
		next
	}
	/ fdatasync\(/ {
		for (k in pending) { bad++; delete pending[k] }
	}
	END { printf "%d %d %d %d\n", renames, dirs, bad + 0, early + 0 }' "$1"
}

strace -f -y -e trace=rename,fsync,fdatasync -o "$tmp/apply.trace" \
    "$migrate" apply --fleet "$tmp/fleet" --map samples/map.json >"$tmp/apply.txt" 2>&1
ok "apply under strace succeeds" grep -q " 0 failed, 0 still planned" "$tmp/apply.txt"
set -- $(check "$tmp/apply.trace")
# every INI file, the exports, changes.json and changes.csv
ok "apply renamed every file into place ($1 renames for $nini INI files)" [ "$1" -gt "$nini" ]
ok "apply fsynced each temporary file before its rename ($4 not)" [ "$4" = 0 ]
ok "apply fsynced every folder of a rename before the next database sync ($3 not)" [ "$3" = 0 ]
ok "apply batched the folder fsyncs ($2 for $1 renames)" [ "$2" -gt 0 -a "$2" -lt "$1" ]

strace -f -y -e trace=rename,fsync,fdatasync -o "$tmp/rollback.trace" \
    "$migrate" rollback --fleet "$tmp/fleet" >"$tmp/rollback.txt" 2>&1
ok "rollback under strace succeeds" grep -q " 0 conflict, 0 failed" "$tmp/rollback.txt"
set -- $(check "$tmp/rollback.trace")
ok "rollback renamed every file into place ($1 renames)" [ "$1" -gt "$nini" ]
ok "rollback fsynced each temporary file before its rename ($4 not)" [ "$4" = 0 ]
ok "rollback fsynced every folder of a rename before the next database sync ($3 not)" [ "$3" = 0 ]
ok "rollback batched the folder fsyncs ($2 for $1 renames)" [ "$2" -gt 0 -a "$2" -lt "$1" ]
ok "rollback restored the fleet byte for byte" \
    diff -r -x .mailshift-migrate.db -x migrate "$tmp/orig" "$tmp/fleet"

done_testing
