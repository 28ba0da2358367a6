# Windows (64-bit, mingw-w64) cross-build: issue 13.
#   make windows         bin/win64/mailshift.exe and the three tools, static
#                        (only Windows' own DLLs), each with a version
#                        resource and a manifest; objects in build-win64/;
#                        then dist/mailshift-VERSION-x64.msi (wixl) and
#                        dist/mailshift-VERSION-x64.zip of the same files.
#                        Installs the toolchain and builds the libraries
#                        from Debian's sources first (scripts/deps-windows:
#                        once, then a second).
#   make windows-check   the Wine tests (tests/windows/run), TAP
#   make check           runs them too once bin/win64 is built (below)
#   make windows-deps    only the libraries
#   make windows-smoke   link tests/windows/smoke.c against them and run it
#                        under Wine
#   make windows-clean
# Included from the Makefile; nothing here runs in a plain build.  The
# Linux build's variables (VERSION, PKGS, LIB_SRC, WIN_ONLY_SRC) are used,
# never changed.

WIN_HOST    := x86_64-w64-mingw32
WIN_CC      := $(WIN_HOST)-gcc
WIN_AR      := $(WIN_HOST)-ar
WIN_WINDRES := $(WIN_HOST)-windres
WIN_BUILD   := build-win64
WIN_BIN     := bin/win64
WIN_CFLAGS  ?= -O2

WIN_LIB_SRC := $(filter-out runtime/base/platform_posix.c,$(LIB_SRC)) $(WIN_ONLY_SRC)
WIN_LIB_OBJ := $(WIN_LIB_SRC:%.c=$(WIN_BUILD)/%.o)
WIN_LIB     := $(WIN_BUILD)/libmailshift.a
WIN_PROGS   := mailshift mailshift-audit mailshift-migrate mailshift-verify
WIN_EXES    := $(WIN_PROGS:%=$(WIN_BIN)/%.exe)

# The sysroot's flags, asked once per change of the cache folder (which is
# named after the library versions): read when a recipe runs.
WIN_PKG_CFLAGS = $(strip $(file <$(WIN_BUILD)/pkg.cflags))
WIN_PKG_LIBS   = $(strip $(file <$(WIN_BUILD)/pkg.libs))

# -include base/compat_win.h: the C library functions mingw lacks, without an
#   #include or #ifdef in any module (runtime/base/compat_win.h).
# runtime/base/win: stand-ins for <sysexits.h>, <poll.h>, <pwd.h>.
# __USE_MINGW_ANSI_STDIO: a printf that knows %zu and %lld.
# _POSIX_THREAD_SAFE_FUNCTIONS: gmtime_r and localtime_r.
# __USE_MINGW_ACCESS: access() ignores X_OK, as old MSVCRT did (Vista's
#   fails the call; verify asks R_OK | X_OK of folders).
# -Wno-format: GCC checks format(printf) against Microsoft's printf on
#   this target and would flag every %zu, which the ANSI stdio above does
#   implement; the Linux build checks the same formats.
WIN_ALL_CFLAGS = $(WIN_CFLAGS) -std=c11 -D_GNU_SOURCE -D__USE_MINGW_ANSI_STDIO=1 \
                 -D_POSIX_THREAD_SAFE_FUNCTIONS -D_WIN32_WINNT=0x0A00 -D__USE_MINGW_ACCESS \
                 -Wall -Wextra -Wshadow -Wno-unused-parameter -Wno-format \
                 -DMS_VERSION='"$(VERSION)"' -Iruntime -Iruntime/base/win \
                 -include base/compat_win.h $(WIN_PKG_CFLAGS) -MMD -MP
# -static: no DLL of ours or of the toolchain beside the .exe (libz.dll.a
#   is there too).  -s: no symbols (size).  Binary mode for every file is
#   set by platform_no_core_dumps (mingw-w64's binmode.o is an empty stub).
# --wrap open, fopen: runtime/base/compat_win.c's, which say ENAMETOOLONG
#   where the C runtime says ENOENT for a name too long (no #define: a
#   macro named open would also rename mailbox ops' open member).
WIN_ALL_LDFLAGS = -static -s -Wl,--wrap=open -Wl,--wrap=fopen $(WIN_LDFLAGS)
WIN_ALL_LDLIBS  = $(WIN_PKG_LIBS) -lshell32 -lole32 -ladvapi32 -lcrypt32 \
                  -lbcrypt -lws2_32 -lpthread

# Version resource: FILEVERSION wants four numbers.
WIN_V = $(subst ., ,$(firstword $(subst -, ,$(VERSION))))
WIN_VERSION4 = $(or $(word 1,$(WIN_V)),0),$(or $(word 2,$(WIN_V)),0),$(or $(word 3,$(WIN_V)),0),0

WIN_MSI     := dist/mailshift-$(VERSION)-x64.msi
WIN_ZIP     := dist/mailshift-$(VERSION)-x64.zip
# what the MSI and the zip hold besides the programs (packaging/mailshift.wxs
# lists the same files)
WIN_DOCS    := README.md $(wildcard samples/ini/*.ini)

windows: $(WIN_EXES) $(WIN_MSI) $(WIN_ZIP)

# make check and the Wine tests.  When all four .exe files exist and this
# is not a sanitizer build, make check first brings them (and the MSI the
# tests install) up to date, as it does bin/, then tests/run-all runs
# tests/windows/* with the rest (MS_WINDOWS_TESTS=1), in the TAP totals.
# Otherwise one line after the results says they were not run, and why:
# that is no pass of them.  A sanitizer build (make SANITIZE=... check)
# never runs them: the .exe files are no sanitizer build, bin/ is, and the
# plain make check has run them already.
WIN_CHECK_MISSING = $(filter-out $(wildcard $(WIN_EXES)),$(WIN_EXES))
WIN_CHECK_WHY = $(if $(SANITIZE),this is a sanitizer build (SANITIZE=$(SANITIZE)); the .exe files are none and the plain make check runs them,$(if $(WIN_CHECK_MISSING),there is no $(firstword $(WIN_CHECK_MISSING)) (run make windows first$(comma) then make check)))
WIN_CHECK_RUN = $(if $(WIN_CHECK_WHY),0,1)
WIN_CHECK_PREPARE = $(if $(WIN_CHECK_WHY),:,$(MAKE) --no-print-directory windows)
WIN_CHECK_NOTE = $(if $(WIN_CHECK_WHY),echo "check: the Windows tests (tests/windows, under Wine) were NOT run: $(WIN_CHECK_WHY)",:)

windows-deps:
	@sh scripts/deps-windows

windows-smoke: windows-deps
	@BUILD=$(BUILD) sh tests/windows/smoke.sh

windows-check: windows
	@sh tests/windows/run

windows-clean:
	rm -rf $(WIN_BUILD) $(WIN_BIN) $(WIN_MSI) $(WIN_ZIP)

$(WIN_MSI): packaging/mailshift.wxs $(WIN_EXES) $(WIN_DOCS)
	@mkdir -p $(dir $@)
	wixl -a x64 -D Version=$(VERSION) -D Bin=$(WIN_BIN) -D Top=. -o $@.tmp $<
	@mv $@.tmp $@

# the same files, for sites that deploy by copy: mailshift\...
$(WIN_ZIP): $(WIN_EXES) $(WIN_DOCS)
	@mkdir -p $(dir $@)
	@rm -rf $(WIN_BUILD)/zip $@.tmp
	@mkdir -p $(WIN_BUILD)/zip/mailshift/samples
	@cp $(WIN_EXES) README.md $(WIN_BUILD)/zip/mailshift/
	@cp $(wildcard samples/ini/*.ini) $(WIN_BUILD)/zip/mailshift/samples/
	cd $(WIN_BUILD)/zip && zip -q -X -r $(CURDIR)/$@.tmp mailshift
	@mv $@.tmp $@

# Runs scripts/deps-windows every time (a second when all is there) and
# touches the file only when the cache folder changed.
$(WIN_BUILD)/prefix: FORCE
	@mkdir -p $(WIN_BUILD)
	@sh scripts/deps-windows
	@sh scripts/deps-windows --prefix >$@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

$(WIN_BUILD)/pkg.cflags $(WIN_BUILD)/pkg.libs &: $(WIN_BUILD)/prefix
	@p=$$(cat $<); \
	PKG_CONFIG_LIBDIR=$$p/lib/pkgconfig PKG_CONFIG_PATH= pkg-config --static --cflags $(PKGS) \
		>$(WIN_BUILD)/pkg.cflags.tmp && \
	PKG_CONFIG_LIBDIR=$$p/lib/pkgconfig PKG_CONFIG_PATH= pkg-config --static --libs $(PKGS) \
		>$(WIN_BUILD)/pkg.libs.tmp
	@mv $(WIN_BUILD)/pkg.cflags.tmp $(WIN_BUILD)/pkg.cflags
	@mv $(WIN_BUILD)/pkg.libs.tmp $(WIN_BUILD)/pkg.libs

# Every object depends on the compile flags: a changed flag (here or in
# the sysroot's .pc files) rebuilds everything, an unchanged one nothing.
$(WIN_BUILD)/cflags: $(WIN_BUILD)/pkg.cflags FORCE
	$(file >$@.tmp,$(WIN_CC) $(WIN_ALL_CFLAGS))
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

$(WIN_BUILD)/%.o: %.c $(WIN_BUILD)/cflags
	@mkdir -p $(dir $@)
	$(WIN_CC) $(WIN_ALL_CFLAGS) -c -o $@ $<

$(WIN_LIB): $(WIN_LIB_OBJ)
	@rm -f $@
	$(WIN_AR) rcs $@ $^

WIN_DESC_mailshift         := mailshift mail connector (drop-in for smartemail.exe)
WIN_DESC_mailshift-audit   := mailshift fleet audit
WIN_DESC_mailshift-migrate := mailshift fleet migration
WIN_DESC_mailshift-verify  := mailshift fleet verification

$(WIN_BUILD)/res/%.rc: packaging/windows/version.rc.in packaging/windows/mailshift.manifest Makefile
	@mkdir -p $(dir $@)
	@sed -e 's/@PROGRAM@/$*/g' -e 's/@WINVERSION@/$(subst $(comma),.,$(WIN_VERSION4))/g' \
		packaging/windows/mailshift.manifest >$(WIN_BUILD)/res/$*.manifest
	@sed -e 's/@PROGRAM@/$*/g' -e 's/@DESCRIPTION@/$(WIN_DESC_$*)/g' \
		-e 's/@VERSION@/$(VERSION)/g' -e 's/@WINVERSION_COMMAS@/$(WIN_VERSION4)/g' \
		-e 's|@MANIFEST@|$*.manifest|g' packaging/windows/version.rc.in >$@

# after the toolchain is installed (the prefix runs scripts/deps-windows):
# on a fresh machine make -j2 windows would otherwise run windres first
$(WIN_BUILD)/res/%.res.o: $(WIN_BUILD)/res/%.rc | $(WIN_BUILD)/prefix
	$(WIN_WINDRES) -I$(WIN_BUILD)/res -O coff -o $@ $<

$(WIN_BIN)/mailshift.exe: $(WIN_BUILD)/runtime/main.o $(WIN_BUILD)/res/mailshift.res.o $(WIN_LIB)
	@mkdir -p $(dir $@)
	$(WIN_CC) $(WIN_ALL_LDFLAGS) -o $@ $^ $(WIN_ALL_LDLIBS)

$(WIN_BIN)/mailshift-%.exe: $(WIN_BUILD)/tools/%/main.o $(WIN_BUILD)/res/mailshift-%.res.o $(WIN_LIB)
	@mkdir -p $(dir $@)
	$(WIN_CC) $(WIN_ALL_LDFLAGS) -o $@ $^ $(WIN_ALL_LDLIBS)

comma := ,

-include $(shell find $(WIN_BUILD) -name '*.d' 2>/dev/null)

.PHONY: windows windows-deps windows-smoke windows-check windows-clean
