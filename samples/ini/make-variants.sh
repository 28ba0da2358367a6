#!/bin/sh
# Regenerate the byte-exact encoding and line-end variants of the sample
# INI files.  The outputs are committed; the round-trip tests compare
# against them byte for byte, so rerun this only when a base file changes.
#   sh samples/ini/make-variants.sh          (from the repository root)
set -eu
cd "$(dirname "$0")"
bom8=$(printf '\357\273\277')

# CRLF + UTF-8 BOM, as Notepad saves it
{ printf '%s' "$bom8"; sed 's/$/\r/' example1-job-add.ini; } > example1-crlf-bom.ini

# UTF-16LE with BOM and CRLF, as some Windows tools save it
{ printf '\377\376'; sed 's/$/\r/' example3-attachments.ini | iconv -f UTF-8 -t UTF-16LE; } \
	> example3-utf16le-bom-crlf.ini

# CRLF without a final newline
sed 's/$/\r/' example2-body.ini | head -c -2 > example2-crlf-no-final-newline.ini

# Hand-edited look: ; and # comments, tabs, odd spacing around '=',
# trailing blanks, lower-case keys, N/A and N\A, %VAR% paths, non-ASCII
# text, a key before any section, and no final newline.
printf '%s\n' \
	'; edited by hand on the agent, keep a copy before changing' \
	'Owner = ops team' \
	'' \
	'  [ General ]  ; main settings' \
	'msgindirectory   =%PROGRAMDATA%\OpConxps\SAM\MSGIN   ' \
	'OpConUser=	svc_opcon' \
	'OpConUserPassword =N/A' \
	'deleteemails= match' \
	'DownloadFolder = N\A' \
	'# LastRunDate = 1/1/2016 12:00:00 AM' \
	'LastRunDate    =    12/31/2023 11:59:59 PM' \
	'' \
	'[MAIL]' \
	'	User = helpdesk@example.com' \
	'	Password = AQAAANCMnd8BFdERjHoAwE/Cl+sBAAAAzz11' \
	'	Server = 127.0.0.1' \
	'	EmailProtocol = imap' \
	'	SecurityProtocol = tls1_2' \
	'	Port = 993' \
	'	SelfSignedCertificate = yes' \
	'' \
	'[Audit]' \
	'NotifyOnRejects = TRUE' \
	'NotifyOnRejectSubject = Réception refusée : [[SUBJECT]]' \
	'NotifyOnRejectTo = N/A' \
	'' \
	'[Configuration2]' \
	'SubjectLineMask = ^Restart (\w+) on (\w+)$ ; not a comment: part of the mask' \
	'Event = $JOB:ADD,[[$DATE]],[[2]],[[1]],OCADHOC' \
	'' \
	'[Configuration1]' \
	'SubjectLineMask = ^Ping$' \
	'Event1 = $CONSOLE:DISPLAY,pong from [[SENDER]]' \
	'Event3 = $CONSOLE:DISPLAY,third' \
	'Event2 = $CONSOLE:DISPLAY,second' \
	'AllowedSenders = ALL' \
	'; trailing comment of the last section' | head -c -1 > variant-odd-spacing.ini
