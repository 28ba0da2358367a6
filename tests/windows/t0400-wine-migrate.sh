#!/bin/bash
# mailshift-migrate.exe under Wine on a copy of samples/demo: plan, apply,
# status and rollback print what the Linux build prints, apply leaves the
# same fleet behind, but for what is sealed (a random nonce, another machine
# key) and the hashes of the files holding it, and rollback restores every
# file of the fleet byte for byte.
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MS_TOP/tests/windows/wine-lib.sh"
cd "$MS_TOP" || bail_out "cannot cd to $MS_TOP"
wine_start

for side in linux win; do
	mkdir -p "$T/$side"
	cp -R samples/demo "$T/$side/fleet"
	find "$T/$side/fleet/machines" -name '*.ini.in' | while read -r f; do
		sed -e 's#@MSGIN@#C:\\ProgramData\\OpConxps\\SAM\\MSGIN#' -e 's#@LOGDIR@#C:\\logs#' \
		    -e 's#@OPCONPW@#Demo-OpCon-Pw#' -e 's#@USER1@#ops@contoso.test#' -e 's#@PASS1@#pw1#' \
		    -e 's#@USER2@#carol@fabrikam.test#' -e 's#@PASS2@#pw2#' "$f" >"${f%.in}"
		rm -f "$f"
	done
	cp -R "$T/$side/fleet" "$T/$side/before"
	cat >"$T/$side/map.json" <<'EOM'
{
  "transport": "imap",
  "connector": "C:\\Program Files\\mailshift\\mailshift.exe",
  "server": "imap.contoso.test",
  "port": 993,
  "tenants": [
    { "domains": ["contoso.test"], "tenantId": "52ae5346-8edd-4d06-81c8-b15058217f13",
      "clientId": "d1db81cd-6c5b-4bea-838b-71d909818e5e", "clientSecret": "not-a-real-secret" },
    { "domains": ["fabrikam.test"], "tenantId": "c8c34465-25ca-4101-88ba-2cf45f9c908a",
      "clientId": "d7874277-bba9-4785-8fa4-bd42553cd18c", "clientSecret": "env:DEMO_FABRIKAM_SECRET" }
  ]
}
EOM
done
export DEMO_FABRIKAM_SECRET=also-not-real

mig_l() { (cd "$T/linux" && MAILSHIFT_HOME=$T/home-linux "$BIN/mailshift-migrate" "$@"); }
mig_w() { (cd "$T/win" && MAILSHIFT_HOME='' winrun mailshift-migrate "$@"); }
export MAILSHIFT_HOME=
for step in plan apply status; do
	mig_l $step --fleet fleet --map map.json >"$T/$step.l" 2>&1; rl=$?
	mig_w $step --fleet fleet --map map.json >"$T/$step.w" 2>&1; rw=$?
	wine_unnoise "$T/$step.w"
	ok "migrate.exe $step exits as on Linux ($rw, $rl)" [ $rw = $rl ]
	ok "migrate.exe $step prints what the Linux build prints" cmp -s "$T/$step.l" "$T/$step.w"
	cmp -s "$T/$step.l" "$T/$step.w" || diff "$T/$step.l" "$T/$step.w" | head -n 10 | sed 's/^/# /'
done
# the same fleet after apply, but for sealed values and their files' hashes
norm() { sed -e 's/mssealed:v1:[A-Za-z0-9+\/=]*/mssealed:v1:X/g' -e 's/[0-9a-f]\{64\}/HASH/g'; }
# same_norm DIR: $T/linux/DIR and $T/win/DIR hold the same files, normalized
same_norm() {
	for side in linux win; do
		rm -rf "$T/norm-$side"
		(cd "$T/$side/$1" && find . -type f ! -name '*.db' | sort) | while IFS= read -r f; do
			mkdir -p "$(dirname "$T/norm-$side/$f")"
			norm <"$T/$side/$1/$f" >"$T/norm-$side/$f"
		done
	done
	diff -r "$T/norm-linux" "$T/norm-win" | head -n 10 | sed 's/^/# /'
	diff -r -q "$T/norm-linux" "$T/norm-win" >/dev/null
}
ok "apply leaves the fleet the Linux build leaves (sealed values and hashes aside)" same_norm fleet
ok "apply sealed the client secret in the Windows run" \
	grep -rq 'ClientSecret=mssealed:v1:' "$T/win/fleet/machines"
ok "the same files in both fleets" \
	[ "$(cd "$T/linux/fleet" && find . -type f | sort)" = "$(cd "$T/win/fleet" && find . -type f | sort)" ]

# rollback: every file apply wrote back to its original bytes (the Windows
# run unseals the originals with the machine key, a DPAPI blob, of its own)
pini="machines/DEMO01/C/ProgramData/OpConxps/SMArt Email/payroll.ini"
fails "apply changed the payroll INI (so rollback has something to restore)" \
	cmp -s "$T/win/before/$pini" "$T/win/fleet/$pini"
for side in linux win; do
	if [ $side = linux ]; then mig_l rollback --fleet fleet >"$T/rb.l" 2>&1; rl=$?
	else mig_w rollback --fleet fleet >"$T/rb.w" 2>&1; rw=$?; wine_unnoise "$T/rb.w"; fi
done
ok "migrate.exe rollback exits as on Linux ($rw, $rl)" [ "$rw" = "$rl" ]
ok "migrate.exe rollback exits 0 (rc=$rw)" [ "$rw" = 0 ]
[ "$rw" = 0 ] || sed 's/^/# /' "$T/rb.w"
ok "migrate.exe rollback prints what the Linux build prints" cmp -s "$T/rb.l" "$T/rb.w"
cmp -s "$T/rb.l" "$T/rb.w" || diff "$T/rb.l" "$T/rb.w" | head -n 10 | sed 's/^/# /'
# the fleet's own files (not apply's and rollback's records: the database,
# migrate/run-N*/) byte for byte as before apply
fleet_files() { (cd "$1" && find . -type f ! -name '.mailshift-migrate.db*' ! -path './migrate/*' | sort); }
ok "after rollback the fleet holds the files it held before apply" \
	[ "$(fleet_files "$T/win/fleet")" = "$(fleet_files "$T/win/before")" ]
same=0 n=0
while IFS= read -r f; do
	n=$((n + 1))
	cmp -s "$T/win/before/$f" "$T/win/fleet/$f" || { same=1; echo "# differs: $f"; }
done < <(fleet_files "$T/win/before")
ok "migrate.exe rollback restores every one of the $n files byte for byte" [ $same = 0 ]
ok "... the payroll INI among them (its BOM and line ends too)" \
	cmp "$T/win/before/$pini" "$T/win/fleet/$pini"

# an apply that plans (no plan first) writes the files of its run ahead of
# their batches and renames them into place (MoveFileEx on Windows): the
# fleet it leaves is the Linux build's, with no temporary file beside
for side in linux win; do
	rm -rf "$T/$side/ahead"
	cp -R "$T/$side/before" "$T/$side/ahead"
done
(cd "$T/linux" && MAILSHIFT_HOME=$T/home-linux "$BIN/mailshift-migrate" apply --fleet ahead \
    --map map.json >"$T/ahead.l" 2>&1); rl=$?
(cd "$T/win" && MAILSHIFT_HOME='' winrun mailshift-migrate apply --fleet ahead \
    --map map.json >"$T/ahead.w" 2>&1); rw=$?
wine_unnoise "$T/ahead.w"
ok "migrate.exe apply that plans exits as on Linux ($rw, $rl)" [ $rw = $rl ]
ok "  and prints what the Linux build prints" cmp -s "$T/ahead.l" "$T/ahead.w"
cmp -s "$T/ahead.l" "$T/ahead.w" || diff "$T/ahead.l" "$T/ahead.w" | head -n 10 | sed 's/^/# /'
ok "  it leaves the fleet the Linux build leaves" same_norm ahead
fails "  it changed the payroll INI" cmp -s "$T/win/before/$pini" "$T/win/ahead/$pini"
is "$(find "$T/win/ahead" -name '.*.tmp.*' | wc -l)" 0 "  no temporary file left beside the files"

done_testing
