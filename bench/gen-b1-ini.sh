#!/bin/sh
# gen-b1-ini.sh FILE USER PASSWORD PORT CAFILE MSGIN: the B1 INI, 20 rules
# (17 subject masks, 3 ProcessBody rules qualified by "^Report ").
f=$1
cat >"$f" <<EOI
[General]
MSGINDirectory=$6
UseLastRunDate=False
DeleteEmails=None
ExitCodeForNoMatchingEmails=0
[Mail]
User=$2
Password=$3
Server=127.0.0.1
Port=$4
EmailProtocol=IMAP
SecurityProtocol=SSL
SelfSignedCertificate=False
CAFile=$5
EOI
i=1
for m in '^Run job (\S+) on (\d+)$' '^Invoice (INV-\d+)$' '^Alert: disk (\d+) full$' \
    '^Backup (\d+) finished$' '^Ticket #(\d+) updated$' '^Shipping notice (\d+)$' \
    '^Daily digest (\d+)$' '^Meeting notes (\d+)$' '^Never matches A (\d+)$' \
    '^Never matches B (\d+)$' '^Never matches C (\d+)$' '^Never matches D (\d+)$' \
    '^Never matches E (\d+)$' '^Never matches F (\d+)$' '^Never matches G (\d+)$' \
    '^Never matches H (\d+)$' '^Never matches I (\d+)$'; do
	printf '[Configuration%d]\nSubjectLineMask=%s\nEvent=$CONSOLE:DISPLAY,rule %d [[1]] [[SUBJECT]]\n' \
	    "$i" "$m" "$i" >>"$f"
	i=$((i + 1))
done
for k in 1 2 3; do
	printf '[Configuration%d]\nProcessBody=True\nQualifyingSubjectLine=^Report (\\d+) attached$\nSubjectLineMask=Job: (REPORT\\d+)\nEvent=$JOB:ADD,[[$DATE]],REPORTS,[[1]],OCADHOC\n' \
	    "$i" >>"$f"
	i=$((i + 1))
done
