#!/bin/bash
# test-tier: slow (a whole fresh build)
# The README's commands work the first time on a machine without the
# packages, proven without a new machine: a stand-in pkg-config fails
# until a stand-in package installer has run (as the real one fails before
# `apt-get install libcjson-dev`).  Also: the installer runs once, not on
# every make; `make -q` after a build is up to date (so `sudo make install`
# does not relink as root); `make CFLAGS=...` keeps the flags the build needs.
set -u
. "$(dirname "$0")/../lib/test-lib.sh"
# A fresh build of its own: nothing of the make that runs this test (make
# SANITIZE=... BUILD=build-asan check passes its variables down in MAKEFLAGS).
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES GNUMAKEFLAGS BUILD SANITIZE CFLAGS LDFLAGS
top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$T
mkdir -p "$tmp/src" "$tmp/fakebin"
(cd "$top" && cp -a Makefile mk runtime tools scripts "$tmp/src/" &&
 mkdir -p "$tmp/src/tests" && cp -a tests/unit tests/live "$tmp/src/tests/")
real=$(command -v pkg-config)
cat >"$tmp/fakebin/pkg-config" <<EOS
#!/bin/sh
# no package is there until the installer ran
[ -f "$tmp/installed" ] && exec "$real" "\$@"
echo "Package libcjson was not found in the pkg-config search path." >&2
exit 1
EOS
chmod +x "$tmp/fakebin/pkg-config"
cat >"$tmp/deps" <<EOS
#!/bin/sh
echo run >>"$tmp/deps.log"
: >"$tmp/installed"
EOS

cd "$tmp/src" || exit 1
PATH=$tmp/fakebin:$PATH make -j2 DEPS="sh $tmp/deps" all >"$tmp/make1.log" 2>&1
rc=$?
[ $rc = 0 ] || tail -n 20 "$tmp/make1.log" | sed 's/^/# /'
ok "a first make on a machine without the packages succeeds" [ $rc = 0 ]
ok "and builds the four programs" sh -c '[ -x bin/mailshift ] && [ -x bin/mailshift-audit ] &&
	[ -x bin/mailshift-migrate ] && [ -x bin/mailshift-verify ]'
ok "the installer ran once, before the first compile" [ "$(wc -l <"$tmp/deps.log")" = 1 ]
PATH=$tmp/fakebin:$PATH make DEPS="sh $tmp/deps" all >"$tmp/make2.log" 2>&1
ok "a second make does not run the installer again" [ "$(wc -l <"$tmp/deps.log")" = 1 ]
PATH=$tmp/fakebin:$PATH make -q DEPS="sh $tmp/deps" all
ok "make -q after a build: up to date (nothing relinks under sudo make install)" [ $? = 0 ]
PATH=$tmp/fakebin:$PATH make -q DEPS="sh $tmp/deps" install >/dev/null 2>&1
ok "make -q install: the programs are not rebuilt" [ $? = 1 ] &&
	[ -z "$(PATH=$tmp/fakebin:$PATH make -n DEPS="sh $tmp/deps" install | grep -E '^cc |ar rcs')" ]
line=$(PATH=$tmp/fakebin:$PATH make -n -B CFLAGS=-O0 DEPS="sh $tmp/deps" build/runtime/base/buf.o | grep '^cc ')
ok "make CFLAGS=-O0 keeps the required flags ($line)" sh -c \
	"echo '$line' | grep -q -- '-O0' && echo '$line' | grep -q -- '-std=c11' &&
	 echo '$line' | grep -q -- '-Iruntime' && echo '$line' | grep -q -- '-DMS_VERSION'"

done_testing
