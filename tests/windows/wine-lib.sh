# wine-lib.sh - running the Windows build under Wine, for tests/windows/t*.sh
# (sourced after tests/lib/test-lib.sh, and lib-world.sh when the test needs
# the mail world; uses MS_TOP and bail_out):
#   wine_start          a Wine prefix of the build's (build-win64/wine: the
#                       first start creates it, ~20 s) and a wineserver kept
#                       running for the test, so each program starts fast;
#                       wine_stop is run at exit (at_exit)
#   wine_stop           stops this prefix's wineserver (nothing else)
#   winrun EXE ARGS...  runs bin/win64/EXE.exe; its exit status
#   winpath PATH        the Windows name of a Linux path (Z:\...)
#   wine_unnoise FILE   drops Wine's own "wine client error:" noise from FILE
WIN_BIN=${MAILSHIFT_WIN_BIN:-$MS_TOP/bin/win64}
WINEPREFIX=${MAILSHIFT_WINEPREFIX:-$MS_TOP/build-win64/wine}
WINEDEBUG=-all
WINEDLLOVERRIDES="mscoree,mshtml="
export WINEPREFIX WINEDEBUG WINEDLLOVERRIDES
WINE=$(command -v wine64 || command -v wine || echo /usr/lib/wine/wine64)

wine_start() {
	for p in mailshift mailshift-audit mailshift-migrate mailshift-verify; do
		[ -f "$WIN_BIN/$p.exe" ] ||
			bail_out "no $WIN_BIN/$p.exe: run make windows"
	done
	mkdir -p "$WINEPREFIX"
	at_exit wine_stop
	# -p: the server stays up between programs (killed by wine_stop)
	wineserver -p >/dev/null 2>&1
	# the first run of a new prefix sets it up; do it here, not timed
	"$WINE" cmd /c exit >/dev/null 2>&1
}
wine_stop() { wineserver -k >/dev/null 2>&1; }
winrun() { _exe=$1; shift; "$WINE" "$WIN_BIN/$_exe.exe" "$@"; }
winpath() { printf 'Z:%s' "$1" | tr / '\\'; }
# wine_unnoise FILE...: removes, in place, what Wine itself writes to
# stderr now and then as a process exits ("wine client error:1f4: sendmsg:
# Socket operation on non-socket", or only its first part; about 1 start
# in 40 on this machine, exit status and output intact): Wine's, not the
# program's, so tests that compare or expect an empty stderr drop it first
wine_unnoise() {
	sed -i -e '/wine client error:/{s/wine client error:[0-9a-f]*: \(sendmsg: [A-Za-z -]*\)\{0,1\}//' \
		-e '/^$/d' -e '}' "$@"
}
