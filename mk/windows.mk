# Windows (64-bit, mingw-w64) cross-build: the first part of issue 13.
#   make windows-deps    build the libraries from Debian's sources into the
#                        cache (scripts/deps-windows; once, then seconds)
#   make windows-smoke   link tests/windows/smoke.c against them and run it
#                        under Wine
# Included from the Makefile; nothing here runs in a plain build.

windows-deps:
	@sh scripts/deps-windows

windows-smoke: windows-deps
	@BUILD=$(BUILD) sh tests/windows/smoke.sh

.PHONY: windows-deps windows-smoke
