#!/bin/bash
# Cross-compiles tests/windows/smoke.c fully statically against the Windows
# sysroot of scripts/deps-windows, checks that the .exe imports only
# Windows' own DLLs, runs it under Wine and checks each library's line.
# TAP output; exit status 0 when every check passed.
#   tests/windows/smoke.sh           (BUILD=build by default)
. "$(dirname "$0")/../lib/test-lib.sh"
cd "$MS_TOP" || bail_out "cannot cd to $MS_TOP"
top=$MS_TOP
BUILD=${BUILD:-build}
HOST=x86_64-w64-mingw32
out=$BUILD/windows
mkdir -p "$out"

prefix=$(sh scripts/deps-windows --prefix) || bail_out "scripts/deps-windows --prefix failed"
if [ ! -f "$prefix/.complete" ]; then
	bail_out "no Windows libraries in $prefix: run make windows-deps (scripts/deps-windows)"
fi

plan 14

PKGS="gmime-3.0 libcurl openssl sqlite3 libxml-2.0 libcjson libpcre2-8 zlib"
# shellcheck disable=SC2086
if flags=$(PKG_CONFIG_LIBDIR=$prefix/lib/pkgconfig PKG_CONFIG_PATH='' \
	pkg-config --static --cflags --libs $PKGS 2>"$out/pkg-config.err"); then
	ok_rc 0 "pkg-config --static finds $PKGS"
else
	ok_rc 1 "pkg-config --static finds $PKGS"; sed 's/^/# /' "$out/pkg-config.err"
fi

exe=$out/smoke.exe
# shellcheck disable=SC2086
if $HOST-gcc -std=c11 -O2 -Wall -Wextra -Werror -static -o "$exe" tests/windows/smoke.c \
	$flags >"$out/smoke.build.log" 2>&1; then
	ok_rc 0 "smoke.exe links statically"
else
	ok_rc 1 "smoke.exe links statically"
	sed 's/^/# /' "$out/smoke.build.log" | tail -n 30
	bail_out "the build failed; the rest cannot run"
fi

# Only Windows' own DLLs: nothing to ship beside the .exe.
dlls=$($HOST-objdump -p "$exe" | sed -n 's/^[[:space:]]*DLL Name: //p' | tr '[:upper:]' '[:lower:]' | sort -u)
echo "# imports: $(echo "$dlls" | tr '\n' ' ')"
foreign=$(echo "$dlls" | grep -vxE 'kernel32\.dll|msvcrt\.dll|advapi32\.dll|ws2_32\.dll|crypt32\.dll|bcrypt\.dll|user32\.dll|gdi32\.dll|ole32\.dll|oleaut32\.dll|shell32\.dll|shlwapi\.dll|dnsapi\.dll|iphlpapi\.dll|wldap32\.dll|normaliz\.dll|secur32\.dll|userenv\.dll|winmm\.dll|rpcrt4\.dll|ntdll\.dll|api-ms-win-[a-z0-9-]+\.dll')
ok_rc "$([ -n "$dlls" ] && [ -z "$foreign" ]; echo $?)" "imports only Windows system DLLs"
[ -z "$foreign" ] || diag "not Windows' own: $(echo "$foreign" | tr '\n' ' ')"

# Wine: a prefix of our own, kept in $BUILD so a second run starts fast.
WINEPREFIX=$top/$out/wine
WINEDEBUG=-all
WINEDLLOVERRIDES="mscoree,mshtml="
export WINEPREFIX WINEDEBUG WINEDLLOVERRIDES
at_exit 'wineserver -k >/dev/null 2>&1'
wine=$(command -v wine64 || command -v wine || echo /usr/lib/wine/wine64)
$wine "$exe" >"$out/smoke.out" 2>"$out/smoke.err"
rc=$?
tr -d '\r' <"$out/smoke.out" >"$out/smoke.txt"
wineserver -k >/dev/null 2>&1
sed 's/^/# /' "$out/smoke.txt"
ok "smoke.exe exits 0 under Wine (rc=$rc)" test "$rc" = 0

line() { grep "^$1 " "$out/smoke.txt"; }
# Expected values computed on Linux, where they do not come from the code under test.
sha=$(printf mailshift | sha256sum | cut -d' ' -f1)
ok "OpenSSL SHA-256 matches sha256sum" test "$(line sha256)" = "sha256 $sha"
ok "OpenSSL RAND_bytes gives bytes" test "$(line rand)" = "rand ok"
ok "curl uses OpenSSL for https" sh -c "echo '$(line curl)' | grep -Eq '^curl [0-9.]+ ssl=OpenSSL/3\\.[0-9.]+ https=yes\$'"
ok "SQLite :memory: query" sh -c "echo '$(line sqlite)' | grep -Eq '^sqlite sum=42 version=3\\.'"
ok "libxml2 parses" test "$(line libxml2)" = "libxml2 root=jobs job=payroll"
ok "cJSON parses" test "$(line cjson)" = "cjson jobs=3 name=payroll"
ok "PCRE2 matches" test "$(line pcre2)" = "pcre2 date=20261205 n=042"
subject_hex=$(printf 'Grüße aus München' | od -An -tx1 | tr -d ' \n')
ok "GMime decodes an ISO-8859-1 subject and a base64 attachment" \
	test "$(line gmime)" = "gmime subject_hex=$subject_hex file=a.txt content=hello windows"
ok "zlib crc32" sh -c "echo '$(line zlib)' | grep -Eq '^zlib 1\\.[0-9.]+ crc32=cbf43926\$'"
ok "no library failed" test "$(line 'done')" = "done failures=0"

done_testing
