# mailshift - one non-recursive Makefile.
#   make            build bin/* (the first build installs missing packages)
#   make check      every test (installs packages, starts the mail world),
#                   in parallel where tests allow (tests/run-all); the Wine
#                   tests too once `make windows` has built bin/win64
#   make check-fast unit tests and the tool tests that need no server
#   make demo       audit -> migrate -> verify -> connector on samples/, then
#                   the same job through mailshift.exe under Wine (if built)
#   make bench      benchmarks with ratios against an in-run baseline
#   make SANITIZE=address,undefined check
#   make install PREFIX=/usr/local DESTDIR=   (programs, man pages, bash
#                   completion, docs and samples under PREFIX/share)
#   make uninstall PREFIX=/usr/local DESTDIR=
#
# CFLAGS, LDFLAGS and LDLIBS are yours (default CFLAGS -O2 -g): the flags
# the build needs are kept apart in ALL_CFLAGS / ALL_LDFLAGS / ALL_LDLIBS,
# as git does, so `make CFLAGS=-O0` still builds.

VERSION   := 0.1.0
PREFIX    ?= /usr/local
DESTDIR   ?=
CC        ?= cc
PKGS      := libcurl libxml-2.0 libcjson openssl sqlite3 gmime-3.0 libpcre2-8
# A sanitizer build keeps its objects apart (build-address-undefined/):
# make cannot tell an object compiled without -fsanitize from one compiled
# with it, so a shared folder would link the plain objects, uninstrumented.
comma     := ,
BUILD     := build$(if $(SANITIZE),-$(subst $(comma),-,$(SANITIZE)))
# the package installer (tests replace it with a stand-in)
DEPS      ?= sh scripts/deps

CFLAGS    ?= -O2 -g

# pkg-config is asked once, after the packages are there (a fresh machine
# has neither the libraries nor their .pc files when this file is read):
# $(BUILD)/pkg.cflags and pkg.libs are made by a rule, and read when a
# recipe runs, by which time that rule has run.  $(strip) because a
# newline left in them would split a compile command in two (seen once).
PKG_STAMP := $(BUILD)/pkg.cflags $(BUILD)/pkg.libs
PKG_CFLAGS = $(strip $(file <$(BUILD)/pkg.cflags))
PKG_LIBS   = $(strip $(file <$(BUILD)/pkg.libs))

ALL_CFLAGS = $(CFLAGS) -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow \
             -Wno-unused-parameter -DMS_VERSION='"$(VERSION)"' -Iruntime \
             $(PKG_CFLAGS) -MMD -MP
ALL_LDFLAGS = $(LDFLAGS)
ALL_LDLIBS  = $(PKG_LIBS) -lpthread $(LDLIBS)
ifneq ($(SANITIZE),)
ALL_CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
ALL_LDFLAGS += -fsanitize=$(SANITIZE)
endif
ifneq ($(FUZZ),)
CC        := clang
ALL_CFLAGS += -fsanitize=fuzzer-no-link,address,undefined
endif

# runtime/ in layers (docs/architecture.md): base < mail < transport < auth
# < ini < connector, audit, migrate, verify; runtime/main.c is the connector.
# platform_win.c and compat_win.c are the Windows build's (mk/windows.mk).
WIN_ONLY_SRC := runtime/base/platform_win.c runtime/base/compat_win.c
LIB_SRC   := $(filter-out runtime/main.c $(WIN_ONLY_SRC),$(wildcard runtime/*.c runtime/*/*.c runtime/*/*/*.c))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB       := $(BUILD)/libmailshift.a

BINS      := bin/mailshift bin/mailshift-audit bin/mailshift-migrate bin/mailshift-verify
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# tests that need the mail world (tests/run-all starts it)
LIVE_SRC  := $(wildcard tests/live/test_*.c)
LIVE_BIN  := $(LIVE_SRC:tests/live/%.c=$(BUILD)/tests/live/%)

all: $(BINS) $(UNIT_BIN) $(LIVE_BIN)

# Missing packages are installed once, before the first compile; after
# that a plain `make` never runs the installer (make deps, check and demo
# still do: they also need the test servers).
$(PKG_STAMP) &:
	@mkdir -p $(BUILD)
	@pkg-config --exists $(PKGS) 2>/dev/null || $(DEPS)
	@pkg-config --cflags $(PKGS) >$(BUILD)/pkg.cflags.tmp
	@pkg-config --libs $(PKGS) >$(BUILD)/pkg.libs.tmp
	@mv $(BUILD)/pkg.cflags.tmp $(BUILD)/pkg.cflags
	@mv $(BUILD)/pkg.libs.tmp $(BUILD)/pkg.libs

$(BUILD)/%.o: %.c | $(PKG_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

# bin/ is shared by every BUILD (plain, sanitizer): bin/.variant names the
# one it holds and changes (forcing a relink) only when another is built,
# so `make -q` after a build says it is up to date.
VARIANT   := $(BUILD) $(SANITIZE)
BIN_VARIANT := bin/.variant
ifneq ($(strip $(file <$(BIN_VARIANT))),$(strip $(VARIANT)))
$(BIN_VARIANT): FORCE
endif
$(BIN_VARIANT):
	@mkdir -p bin
	@echo '$(VARIANT)' >$@

bin/mailshift: $(BUILD)/runtime/main.o $(LIB) $(BIN_VARIANT)
	@mkdir -p bin
	$(CC) $(ALL_LDFLAGS) -o $@ $(filter-out $(BIN_VARIANT),$^) $(ALL_LDLIBS)

bin/mailshift-%: $(BUILD)/tools/%/main.o $(LIB) $(BIN_VARIANT)
	@mkdir -p bin
	$(CC) $(ALL_LDFLAGS) -o $@ $(filter-out $(BIN_VARIANT),$^) $(ALL_LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(ALL_LDLIBS)

# the live tests share tests/unit/tap.h
$(BUILD)/tests/live/%.o: ALL_CFLAGS += -Itests/unit
$(BUILD)/tests/live/%: $(BUILD)/tests/live/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(ALL_LDLIBS)

# Installs missing Debian and npm packages; prints what it installs.
deps:
	@$(DEPS)

# The Wine tests (tests/windows) are part of it when bin/win64 is built
# (make windows): mk/windows.mk brings the .exe files up to date and says
# so in one line when they are not run (WIN_CHECK_*).
check: deps
	@$(MAKE) --no-print-directory all
	@$(WIN_CHECK_PREPARE)
	@BUILD=$(BUILD) MS_WINDOWS_TESTS=$(WIN_CHECK_RUN) sh tests/run-all; rc=$$?; \
		$(WIN_CHECK_NOTE); exit $$rc

# no mail world, no package installer: unit tests and the quick tool tests
check-fast: all
	@BUILD=$(BUILD) sh tests/run-all --fast

demo: deps
	@$(MAKE) --no-print-directory all
	@sh scripts/demo

bench: deps
	@$(MAKE) --no-print-directory all
	@sh bench/run

fuzz:
	@sh tests/fuzz/run $(FUZZ_SECONDS)

# What `make install` puts under PREFIX/share: a man page per program, the
# bash completion under each program's name (bash-completion looks them up
# by name), the README and docs/, and samples/.
MANS      := $(wildcard man/*.1)
MANDIR    := $(PREFIX)/share/man/man1
COMPDIR   := $(PREFIX)/share/bash-completion/completions
DOCDIR    := $(PREFIX)/share/doc/mailshift
DATADIR   := $(PREFIX)/share/mailshift

install: $(BINS)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(MANDIR) $(DESTDIR)$(COMPDIR) \
		$(DESTDIR)$(DOCDIR)/docs $(DESTDIR)$(DATADIR)
	install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 $(MANS) $(DESTDIR)$(MANDIR)/
	for b in $(notdir $(BINS)); do \
		install -m 0644 completion/mailshift.bash $(DESTDIR)$(COMPDIR)/$$b || exit 1; \
	done
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/
	install -m 0644 docs/*.md $(DESTDIR)$(DOCDIR)/docs/
	rm -rf $(DESTDIR)$(DATADIR)/samples
	tar -cf - samples | tar -C $(DESTDIR)$(DATADIR) --no-same-owner -xf -
	chmod -R u=rwX,go=rX $(DESTDIR)$(DATADIR)/samples

uninstall:
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/bin/,$(notdir $(BINS)))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/,$(notdir $(MANS)))
	rm -f $(addprefix $(DESTDIR)$(COMPDIR)/,$(notdir $(BINS)))
	rm -rf $(DESTDIR)$(DOCDIR) $(DESTDIR)$(DATADIR)

clean:
	rm -rf $(BUILD) bin

.SECONDARY:
FORCE:
.PHONY: FORCE all deps check check-fast demo bench fuzz install uninstall clean

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

include mk/windows.mk
