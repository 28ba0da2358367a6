# mailshift - one non-recursive Makefile.
#   make            build bin/*
#   make check      every test (installs packages, starts the mail world)
#   make demo       audit -> migrate -> verify -> connector on samples/
#   make bench      benchmarks with ratios against an in-run baseline
#   make SANITIZE=address,undefined check
#   make install PREFIX=/usr/local DESTDIR=

VERSION   := 0.1.0
PREFIX    ?= /usr/local
DESTDIR   ?=
CC        ?= cc
PKGS      := libcurl libxml-2.0 libcjson openssl sqlite3 gmime-3.0 libpcre2-8
BUILD     := build

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS    ?= -O2 -g
CFLAGS    += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wno-unused-parameter \
             -DMS_VERSION='"$(VERSION)"' -Iruntime $(PKG_CFLAGS) -MMD -MP
LDLIBS    += $(PKG_LIBS) -lpthread
ifneq ($(SANITIZE),)
CFLAGS    += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS   += -fsanitize=$(SANITIZE)
endif
ifneq ($(FUZZ),)
CC        := clang
CFLAGS    += -fsanitize=fuzzer-no-link,address,undefined
endif

LIB_SRC   := $(filter-out runtime/main.c,$(wildcard runtime/*.c))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB       := $(BUILD)/libmailshift.a

BINS      := bin/mailshift bin/mailshift-audit bin/mailshift-migrate bin/mailshift-verify
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

all: deps-check $(BINS) $(UNIT_BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

# bin/ is shared by every BUILD (plain, sanitizer): bin/.variant names the
# one it holds, and changes (forcing a relink) only when another is built.
BIN_VARIANT := bin/.variant
$(BIN_VARIANT): FORCE
	@mkdir -p bin
	@echo '$(BUILD) $(SANITIZE)' | cmp -s - $@ || echo '$(BUILD) $(SANITIZE)' >$@

bin/mailshift: $(BUILD)/runtime/main.o $(LIB) $(BIN_VARIANT)
	@mkdir -p bin
	$(CC) $(LDFLAGS) -o $@ $(filter-out $(BIN_VARIANT),$^) $(LDLIBS)

bin/mailshift-%: $(BUILD)/tools/%/main.o $(LIB) $(BIN_VARIANT)
	@mkdir -p bin
	$(CC) $(LDFLAGS) -o $@ $(filter-out $(BIN_VARIANT),$^) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Installs missing Debian and npm packages; prints what it installs.
deps:
	@sh scripts/deps

# deps is idempotent and quick when everything is there (a dpkg query):
# every build checks, so a fresh clone needs no separate step.
deps-check:
	@sh scripts/deps

check: all
	@BUILD=$(BUILD) sh tests/run-all

demo: all
	@sh scripts/demo

bench: all
	@sh bench/run

fuzz:
	@sh tests/fuzz/run $(FUZZ_SECONDS)

install: $(BINS)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/bin/

clean:
	rm -rf $(BUILD) bin

.SECONDARY:
FORCE:
.PHONY: FORCE all deps deps-check check demo bench fuzz install clean

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

include mk/windows.mk
