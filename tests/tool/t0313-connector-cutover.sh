#!/bin/sh
# Cutover day (issue 14): INI files written the way the incumbent's users
# write them.  TLS chosen by port when SecurityProtocol is empty; a broken
# [ConfigurationN] is reported with file and line, skipped, and the run
# exits 2 after the good rules did their work; no literal [[...]] reaches
# MSGIN; attachment captures; unknown keys and unusable notify settings
# are warned about.
. "$(dirname "$0")/connector-lib.sh"

U=bob
CR=$(printf '\r')
clear_mailbox $U
mkdir -p "$T/msgin"

write_ini() {	# write_ini FILE PORT ; rules appended by the caller
	cat >"$1" <<EOI
[General]
MSGINDirectory=$T/msgin
OpConUser=ocadm
OpConUserPassword=pw
UseLastRunDate=False
DeleteEmails=Match
[Mail]
User=$WORLD_USER_BOB
Password=$WORLD_PASS_BOB
Server=127.0.0.1
Port=$2
EmailProtocol=IMAP
SelfSignedCertificate=False
CAFile=$WORLD_CA_FILE
EOI
}

# --- 1. no SecurityProtocol on Dovecot's STARTTLS port: STARTTLS -------------
mkmsg "$T/s1" "bob@contoso.test" "Cutover STARTTLS 1"
deliver "$T/s1" $WORLD_USER_BOB
wait_count $U 1
write_ini "$T/st.ini" "$WORLD_IMAP_PORT"
cat >>"$T/st.ini" <<'EOI'
[Configuration1]
SubjectLineMask=^Cutover STARTTLS (\d+)$
Event=$CONSOLE:DISPLAY,starttls [[1]]
EOI
"$BIN/mailshift" -inifile:"$T/st.ini" -vv >"$T/out" 2>"$T/err"; rc=$?
is $rc 0 "no SecurityProtocol, STARTTLS port: exit 0"
is "$(cat "$T"/msgin/* 2>/dev/null | grep -c '^\$CONSOLE:DISPLAY,starttls 1,')" 1 \
	"the event was written"
ok "$(grep -qi 'STARTTLS' "$T/err"; echo $?)" "the session was upgraded with STARTTLS"
ok "$(grep -q "$WORLD_PASS_BOB" "$T/out" "$T/err"; [ $? = 1 ]; echo $?)" \
	"the password appears nowhere"
rm -f "$T"/msgin/*

done_testing
