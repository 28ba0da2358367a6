#!/bin/bash
# Bad input on Windows gets the Linux build's errors and exit codes: a
# missing INI, an MSGIN folder that cannot be read, a read-only MSGIN, a
# read-only INI folder (no state database beside it), and paths too long
# (MSGIN and the INI; and past MAX_PATH, Windows' own limit).  Each error must name the path and read, but for
# that path, exactly as the Linux build's.  Both builds run as an ordinary
# user (nobody: root may write anywhere), mailshift.exe in a Wine prefix of
# that user's.
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MS_LIB/lib-world.sh"
. "$MS_TOP/tests/windows/wine-lib.sh"
# as tests/tool/t0005: only root can run both builds as another user
if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null 2>&1; then
	echo "1..0 # SKIP needs root and setpriv, to run both builds as nobody"
	exit 0
fi
world_up
for p in mailshift; do
	[ -f "$WIN_BIN/$p.exe" ] || bail_out "no $WIN_BIN/$p.exe: run make windows"
done
NB=$(id -u nobody) NBG=$(id -g nobody)
# nobody reaches $T/nb (and nothing else of $T but what it is given)
chmod 0711 "$T"
mkdir -p "$T/nb/home-l" "$T/nb/home-w"
chown -R $NB:$NBG "$T/nb"
W=$(winpath "$T/nb")
as_nobody() { setpriv --reuid=$NB --regid=$NBG --clear-groups env HOME="$T/nb" "$@"; }
# nobody's own prefix (Wine refuses a prefix its user does not own)
NBPREFIX=$T/nb/wine
nb_wine_stop() { as_nobody WINEPREFIX="$NBPREFIX" wineserver -k >/dev/null 2>&1; }
at_exit nb_wine_stop
as_nobody WINEPREFIX="$NBPREFIX" wineserver -p >/dev/null 2>&1
as_nobody WINEPREFIX="$NBPREFIX" "$WINE" cmd /c exit >/dev/null 2>&1
# nobody must read the CA file of the world
cp "$WORLD_CA_FILE" "$T/nb/ca.pem"
chmod 0644 "$T/nb/ca.pem"

run_l() { as_nobody MAILSHIFT_HOME="$T/nb/home-l" "$BIN/mailshift" "$@"; }
run_w() { as_nobody WINEPREFIX="$NBPREFIX" MAILSHIFT_HOME="$W\\home-w" "$WINE" "$WIN_BIN/mailshift.exe" "$@"; }

CR=$(printf '\r')
# ini FILE MSGIN-LINUX: the job, for both builds (FILE.win.ini with Windows
# paths and CRLF lines)
ini() {
	for side in linux win; do
		if [ $side = win ]; then
			f=${1%.ini}.win.ini m=$(winpath "$2") ca=$(winpath "$T/nb/ca.pem") eol=$CR
		else
			f=$1 m=$2 ca=$T/nb/ca.pem eol=
		fi
		sed "s/\$/$eol/" >"$f" <<EOI
[General]
MSGINDirectory=$m
OpConUser=ocadm
OpConUserPassword=Canary-OpCon-7731
UseLastRunDate=False
DeleteEmails=None
[Mail]
User=$WORLD_USER_BOB
Password=$WORLD_PASS_BOB
Server=127.0.0.1
Port=$WORLD_IMAPS_PORT
EmailProtocol=IMAP
SecurityProtocol=TLS1_2
SelfSignedCertificate=False
CAFile=$ca
[Configuration1]
SubjectLineMask=^Run job (\S+) on (\d+)$
Event=\$JOB:ADD,[[\$DATE]],PAYROLL,[[1]],OCADHOC
EOI
		chown $NB:$NBG "$f"
	done
}

# same_error NAME RC_L RC_W PATH_L PATH_W: the same exit code, an error that
# names the path, and the same text but for the path
same_error() {
	name=$1 rl=$2 rw=$3 pl=$4 pw=$5
	isnt "$rl" 0 "$name: the Linux build fails (rc=$rl)"
	is "$rw" "$rl" "$name: mailshift.exe exits as the Linux build does"
	ok_rc "$(grep -qF "$pw" "$T/err.w"; echo $?)" "$name: mailshift.exe's error names the path"
	# the path: Linux's and Windows' spelling, and a Windows path printed
	# with forward slashes by the layer, all as P
	wine_unnoise "$T/err.w"
	tr -d '\r' <"$T/err.w" | sed "s|$(printf '%s' "$pw" | sed 's/[\\.*[]/\\&/g')|P|g" >"$T/err.wn"
	sed "s|$(printf '%s' "$pl" | sed 's/[\\.*[]/\\&/g')|P|g" "$T/err.l" >"$T/err.ln"
	ok "$name: the same error text as the Linux build, but for the path" cmp -s "$T/err.ln" "$T/err.wn"
	cat "$T/err.l" "$T/err.w" >>"$T/all.err"
	if ! cmp -s "$T/err.ln" "$T/err.wn"; then
		sed 's/^/# linux:   /' "$T/err.ln"
		sed 's/^/# windows: /' "$T/err.wn"
	fi
}

clear_mailbox bob
mkmsg "$T/m1" "Bob <bob@contoso.test>" "Run job BAD_INPUT on 1"
deliver "$T/m1" "$WORLD_USER_BOB"
wait_mailbox_count bob 1

# a working job first: the user and the prefix can do the job at all
ini "$T/nb/good.ini" "$T/nb/msgin-good"
run_l -inifile:"$T/nb/good.ini" >/dev/null 2>"$T/err.l"; rl=$?
run_w "-inifile:$W\\good.win.ini" >/dev/null 2>"$T/err.w"; rw=$?
is "$rl $rw" "0 0" "as nobody, both builds run a good job (exit 0)"
[ "$rw" = 0 ] || sed 's/^/# /' "$T/err.w"
rm -rf "$T/nb/msgin-good"

# --- a missing INI
run_l -inifile:"$T/nb/missing.ini" >/dev/null 2>"$T/err.l"; rl=$?
run_w "-inifile:$W\\missing.win.ini" >/dev/null 2>"$T/err.w"; rw=$?
same_error "missing INI" $rl $rw "$T/nb/missing.ini" "$W\\missing.win.ini"

# --- MSGIN that cannot be read or entered (mode 000, root's)
mkdir -p "$T/nb/msgin-closed"
chmod 000 "$T/nb/msgin-closed"
ini "$T/nb/closed.ini" "$T/nb/msgin-closed"
run_l -inifile:"$T/nb/closed.ini" >/dev/null 2>"$T/err.l"; rl=$?
run_w "-inifile:$W\\closed.win.ini" >/dev/null 2>"$T/err.w"; rw=$?
same_error "MSGIN that cannot be read" $rl $rw "$T/nb/msgin-closed" "$W\\msgin-closed"

# --- a read-only MSGIN (mode 555, root's): no event can be written
mkdir -p "$T/nb/msgin-ro"
chmod 555 "$T/nb/msgin-ro"
ini "$T/nb/ro.ini" "$T/nb/msgin-ro"
run_l -inifile:"$T/nb/ro.ini" >/dev/null 2>"$T/err.l"; rl=$?
run_w "-inifile:$W\\ro.win.ini" >/dev/null 2>"$T/err.w"; rw=$?
same_error "read-only MSGIN" $rl $rw "$T/nb/msgin-ro" "$W\\msgin-ro"
is "$(ls -A "$T/nb/msgin-ro" | wc -l)" 0 "read-only MSGIN: nothing written into it"

# --- a read-only INI folder: no state database can be made beside the INI
mkdir -p "$T/nb/ro-dir"
ini "$T/nb/ro-dir/job.ini" "$T/nb/msgin-rodir"
chown root:root "$T/nb/ro-dir"
chmod 555 "$T/nb/ro-dir"
run_l -inifile:"$T/nb/ro-dir/job.ini" >/dev/null 2>"$T/err.l"; rl=$?
run_w "-inifile:$W\\ro-dir\\job.win.ini" >/dev/null 2>"$T/err.w"; rw=$?
same_error "read-only INI folder" $rl $rw "$T/nb/ro-dir/job.ini" "$W\\ro-dir\\job.win.ini"

# --- paths too long: a folder name of 300 characters (NTFS and ext4 allow 255)
long=$(printf 'L%.0s' $(seq 300))
ini "$T/nb/long.ini" "$T/nb/$long/msgin"
run_l -inifile:"$T/nb/long.ini" >/dev/null 2>"$T/err.l"; rl=$?
run_w "-inifile:$W\\long.win.ini" >/dev/null 2>"$T/err.w"; rw=$?
same_error "MSGIN path too long" $rl $rw "$T/nb/$long" "$W\\$long"
run_l -inifile:"$T/nb/$long.ini" >/dev/null 2>"$T/err.l"; rl=$?
run_w "-inifile:$W\\$long.ini" >/dev/null 2>"$T/err.w"; rw=$?
same_error "INI path too long" $rl $rw "$T/nb/$long.ini" "$W\\$long.ini"

# a whole path past MAX_PATH (260) of short names: Windows' own limit where
# the machine does not allow long paths (Wine does not); Linux's is 4096, so
# only mailshift.exe fails, saying so as Linux says it of a name too long
deep=$T/nb; i=0
while [ $i -lt 30 ]; do deep=$deep/dddddddddd; i=$((i + 1)); done
ini "$T/nb/deep.ini" "$deep"
run_w "-inifile:$W\deep.win.ini" >/dev/null 2>"$T/err.w"; rw=$?
is $rw 2 "MSGIN past MAX_PATH: mailshift.exe exits 2"
ok_rc "$(grep -q "^mailshift: cannot create directory 'Z:.*\\dddddddddd': File name too long$CR\?\$" "$T/err.w"; echo $?)" \
	"... saying 'cannot create directory' of a folder of it and 'File name too long'"
[ $rw = 2 ] || sed 's/^/# /' "$T/err.w"

ok_rc "$(grep -q "Canary-OpCon-7731\|$WORLD_PASS_BOB" "$T/all.err"; [ $? = 1 ]; echo $?)" \
	"no password in any of these errors"
done_testing
