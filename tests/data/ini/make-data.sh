#!/bin/sh
# Regenerate the byte-exact INI test files and the golden results of edits.
# The outputs are committed; rerun only when changing a case.
#   sh tests/data/ini/make-data.sh          (from the repository root)
# Top-level *.ini files parse (round-trip tests iterate them); invalid/
# holds files ini_parse() must refuse; golden/ holds expected edit results
# written here by hand (sed/printf), independently of the parser.
set -eu
cd "$(dirname "$0")"
S=../../../samples/ini
mkdir -p invalid golden

# ---- encodings and line ends that must round-trip ----
printf '[Mail]\r\nServer = imap.example.com\r\nPort = 993\r\n' |
	iconv -f UTF-8 -t UTF-16LE > utf16le-nobom.ini
{ printf '\376\377'; printf '[General]\nOpConUser=émile\n[Mail]\nServer=mail.example.com\n' |
	iconv -f UTF-8 -t UTF-16BE; } > utf16be-bom.ini
{ printf '\377\376'; printf '[Tokens]\r\nSMILE=\360\237\230\200 ok\r\nCJK=\346\227\245\346\234\254\r\n' |
	iconv -f UTF-8 -t UTF-16LE; } > utf16le-bom-astral.ini
printf '[General]\nA=1\r\nB=2\rC=3\r\r\nD=4\n\n\r\n\rE=5' > mixed-eol.ini
: > empty.ini
printf '\357\273\277' > only-bom.ini
printf '   \n\t\n' > only-blanks.ini
printf 'Key=before any section\n[Mail]\nServer=x\n[mail]\nPort=110\nserver=y\n' > dup-and-global.ini

# ---- structurally malformed: parse (lossless) but ini_check() refuses ----
printf '[General]\nOpConUser=ops\n[Mail\nServer=x\n' > bad-unterminated-section.ini
printf '[General]\r\nOpConUser=ops\r\n\r\nthis line has no equals sign\r\n' > bad-garbage-line.ini
printf '[Mail]\nServer=x\n  = orphan value\n' > bad-empty-key.ini
printf '[Mail] Server=x\nPort=1\n' > bad-text-after-header.ini
printf '# ok\n[]\nKey=v\n' > bad-empty-section.ini

# ---- encoding errors: ini_parse() refuses ----
printf '[General]\nOpConUser=caf\351\n' > invalid/latin1.ini
printf '[General]\nA=\300\257\n' > invalid/overlong.ini
{ printf '\377\376'; printf '[Mail]\nA=1\n' | iconv -f UTF-8 -t UTF-16LE; printf 'x'; } > invalid/utf16-odd.ini
{ printf '\377\376'; printf '[Mail]\nA=' | iconv -f UTF-8 -t UTF-16LE; printf '\000\330\101\000'; } > invalid/utf16-lone-surrogate.ini
printf '[Mail]\nA=1\nB=\000\n' > invalid/nul.ini

# ---- golden results of edits (see tests/unit/test_ini.c) ----
# 1. example1-crlf-bom.ini: [Mail] Server = 127.0.0.1
sed 's/^Server=imap\.example\.com\r$/Server=127.0.0.1\r/' $S/example1-crlf-bom.ini \
	> golden/example1-crlf-bom.set-server.ini

# 2. example3-utf16le-bom-crlf.ini: [Mail] Port = 1993 (replace) and
#    [General] LastRunDate added after the section's last key
{ printf '\377\376'; sed -e 's/^Port=993$/Port=1993/' \
	-e 's/^UseLastRunDate=False$/&\nLastRunDate=11\/28\/2026 1:02:03 AM/' \
	$S/example3-attachments.ini | sed 's/$/\r/' | iconv -f UTF-8 -t UTF-16LE; } \
	> golden/example3-utf16le.set-port-add-date.ini

# 3. variant-odd-spacing.ini (LF, no final newline): set LastRunDate,
#    set Owner in "", add [Mail] AuthMethod, remove [General] DownloadFolder,
#    comment out [Configuration1] AllowedSenders, add [OAuth] TenantId
sed -e 's/^Owner = ops team$/Owner = platform team/' \
	-e 's/^LastRunDate    =    12\/31\/2023 11:59:59 PM$/LastRunDate    =    1\/2\/2024 3:04:05 AM/' \
	-e 's/^\tSelfSignedCertificate = yes$/&\n\tAuthMethod = OAuth2/' \
	-e '/^DownloadFolder = N\\A$/d' \
	-e 's/^AllowedSenders = ALL$/# &/' \
	$S/variant-odd-spacing.ini > golden/variant-odd-spacing.edited.ini
printf '\n\n[OAuth]\nTenantId = contoso.onmicrosoft.com' >> golden/variant-odd-spacing.edited.ini
