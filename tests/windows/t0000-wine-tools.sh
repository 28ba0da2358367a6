#!/bin/bash
# The four .exe files: static (only Windows' own DLLs), a version resource
# and a manifest each; under Wine --version and --help print what the
# Linux build prints; mailshift-audit.exe writes the golden reports on
# samples/fleet, and --out replaces an existing report (Windows' rename()
# cannot: this is platform_replace).
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MS_TOP/tests/windows/wine-lib.sh"
# the golden reports name the fleet as given (samples/fleet): from the top
cd "$MS_TOP" || bail_out "cannot cd to $MS_TOP"
wine_start
HOST=x86_64-w64-mingw32
version=$(sed -n 's/^VERSION *:= *//p' Makefile)
# Windows' own DLLs (and the api-ms-win-* sets that stand for them)
sysdlls='kernel32|msvcrt|advapi32|ws2_32|crypt32|bcrypt|user32|gdi32|ole32|oleaut32|shell32|shlwapi|dnsapi|iphlpapi|wldap32|normaliz|secur32|userenv|winmm|rpcrt4|ntdll|api-ms-win-[a-z0-9-]+'

for p in mailshift mailshift-audit mailshift-migrate mailshift-verify; do
	exe=$WIN_BIN/$p.exe
	dlls=$($HOST-objdump -p "$exe" | sed -n 's/^[[:space:]]*DLL Name: //p' | tr 'A-Z' 'a-z' | sort -u)
	echo "# $p.exe imports: $(echo $dlls)"
	ok "$p.exe imports only Windows' own DLLs" \
		sh -c "[ -n '$dlls' ] && ! echo '$dlls' | grep -vxE '($sysdlls)\.dll'"
	ok "$p.exe has a version resource saying $version" \
		sh -c "strings -el '$exe' | grep -qx '$version' && strings -el '$exe' | grep -qx '$p.exe'"
	ok "$p.exe has a manifest: UTF-8 code page, long paths, asInvoker" \
		sh -c "strings '$exe' | grep -q '<activeCodePage[^>]*>UTF-8<' &&
		       strings '$exe' | grep -q '<longPathAware[^>]*>true<' &&
		       strings '$exe' | grep -q 'level=\"asInvoker\"'"
	# stdout alone: Wine itself may write to stderr (wine_unnoise)
	winrun $p --version >"$T/v.w" 2>"$T/v.err"; rc=$?
	ok "$p.exe --version exits 0 (rc=$rc)" [ $rc = 0 ]
	ok "$p.exe --version prints '$p $version'" [ "$(cat "$T/v.w")" = "$p $version" ]
	[ -s "$T/v.err" ] && sed "s/^/# $p.exe --version, stderr: /" "$T/v.err"
	winrun $p --help >"$T/h.w" 2>"$T/h.err"; rc=$?
	ok "$p.exe --help exits 0 (rc=$rc)" [ $rc = 0 ]
	[ -s "$T/h.err" ] && sed "s/^/# $p.exe --help, stderr: /" "$T/h.err"
	if [ -x "$BIN/$p" ]; then
		"$BIN/$p" --help >"$T/h.l" 2>/dev/null
		ok "$p.exe --help prints what the Linux build prints" cmp -s "$T/h.l" "$T/h.w"
	else
		ok "$p.exe --help prints a usage line" grep -q "^usage: $p" "$T/h.w"
	fi
done

# audit: the golden reports, byte for byte (the same files t0500 checks the
# Linux build against; they name the fleet as given: samples/fleet)
golden=tests/golden/audit
for f in txt json csv; do
	fmt=$f; [ "$f" = txt ] && fmt=text
	winrun mailshift-audit --fleet samples/fleet --format $fmt >"$T/samples.$f" 2>"$T/err.$f"; rc=$?
	wine_unnoise "$T/err.$f"
	ok "audit.exe $fmt: exit 1 as on Linux (jobs need migration; rc=$rc)" [ $rc = 1 ]
	ok "audit.exe $fmt report is $golden/samples.$f, byte for byte" cmp "$golden/samples.$f" "$T/samples.$f"
	ok "audit.exe $fmt: nothing on stderr" [ ! -s "$T/err.$f" ]
done
# the fleet as a Windows path: the same report but for the path it names
fleet=$(winpath "$MS_TOP/samples/fleet")
winrun mailshift-audit --fleet "$fleet" --format json >"$T/abs.json" 2>/dev/null
esc=$(printf '%s' "$fleet" | sed 's/\\/\\\\\\\\/g')
ok "audit.exe --fleet Z:\\...\\samples\\fleet: the golden JSON but for the folder's name" \
	sh -c "sed 's|$esc|samples/fleet|g' '$T/abs.json' | cmp -s - '$golden/samples.json'"
out=$(winpath "$T/report.json")
winrun mailshift-audit --fleet samples/fleet --format json --out "$out" --quiet --fail-on none; rc1=$?
winrun mailshift-audit --fleet samples/fleet --format json --out "$out" --quiet --fail-on none; rc2=$?
is "$rc1 $rc2" "0 0" "audit.exe --out twice: the second replaces the first (rc=$rc1, $rc2)"
ok "audit.exe --out wrote the golden JSON" cmp -s "$golden/samples.json" "$T/report.json"
ok "audit.exe --out leaves no temporary file" [ "$(ls -A "$T" | grep -c '^\.')" = 0 ]
# temporary files of report.json named by every PID Wine hands out here
# (4 to 2048): written an hour ago (killed audits': all removed, those
# named by a process running now too, which started after them: its PID
# came round again), and just now (removed but for those of processes
# running now, which may still be writing them: Wine's services, and the
# audit itself, which then writes under the next free name)
for pid in $(seq 4 4 2048); do
	: >"$T/.report.json.tmp.$pid.1"
	: >"$T/.report.json.tmp.$pid.0"
done
touch -d '1 hour ago' "$T"/.report.json.tmp.*.1
winrun mailshift-audit --fleet samples/fleet --format json --out "$out" --quiet --fail-on none; rc=$?
ok "audit.exe --out past temporary files of every PID (rc=$rc)" [ $rc = 0 ]
ok "  still the golden JSON" cmp -s "$golden/samples.json" "$T/report.json"
is "$(ls -A "$T" | grep -c '^\.report\.json\.tmp\.[0-9]*\.1$')" 0 \
	"  every hour-old one removed, PIDs running now included (GetProcessTimes)"
kept=$(ls -A "$T" | grep -c '^\.report\.json\.tmp\.[0-9]*\.0$')
ok "  the fresh ones of running processes kept, the others removed ($kept kept)" \
	[ "$kept" -ge 1 -a "$kept" -le 20 ]
rm -f "$T"/.report.json.tmp.*
winrun mailshift-audit --fleet "$(winpath "$T/no-such-fleet")" >/dev/null 2>"$T/err"; rc=$?
ok "audit.exe: a missing fleet folder exits 66 as on Linux (rc=$rc)" [ $rc = 66 ]

done_testing
