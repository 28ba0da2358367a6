# tests/lib/test-lib.sh: the one library of mailshift's shell tests (bash),
# in the spirit of git's t/test-lib.sh.  Every tests/tool/t*.sh starts:
#
#   #!/bin/bash
#   . "$(dirname "$0")/../lib/test-lib.sh"
#   . "$MS_LIB/lib-world.sh"      # only a test that needs the mail world
#   world_up                      # (lib-world.sh)
#
#   ok "audit exits 0" "$BIN/mailshift-audit" --fleet samples/fleet
#   is "$(wc -l <"$T/out")" 3 "three lines"
#   done_testing
#
# TAP, Test::More style (the style most scripts already used):
#   ok NAME CMD...       passes when CMD exits 0 (its output shown on failure;
#                        CMD runs in a subshell: it cannot set variables)
#   fails NAME CMD...    passes when CMD exits non-zero
#   ok_rc STATUS NAME    passes when STATUS (an exit status already taken,
#                        e.g. "$(grep -q x f; echo $?)") is 0
#   is GOT WANT NAME, isnt GOT WANT NAME, like GOT ERE NAME, unlike GOT ERE NAME
#   skip WHY             "ok N # skip WHY": counted, never a pass
#   plan N | done_testing, diag MSG..., bail_out MSG
# Given to every test:
#   MS_TOP (the source tree), MS_LIB (this folder), BIN (the programs under
#   test: MAILSHIFT_BIN or MS_TOP/bin), T (a scratch folder removed at exit;
#   MS_KEEP_TMP=1 keeps it), MAILSHIFT_HOME=$T/home (exported, created),
#   at_exit CMD (instead of a trap of your own, which would replace ours),
#   pid_running PID.
# A test that cannot run fails (or bails out); it skips only when the
# machine cannot have the property measured at all (e.g. not root).

MS_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MS_LIB=$MS_TOP/tests/lib
BIN=${MAILSHIFT_BIN:-$MS_TOP/bin}
export MS_TOP

_tap_n=0
_tap_failed=0
_tap_planned=

plan() {
	_tap_planned=$1
	echo "1..$1"
}

_tap_result() {	# status name
	_tap_n=$((_tap_n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $_tap_n - $2"
	else
		echo "not ok $_tap_n - $2"
		_tap_failed=$((_tap_failed + 1))
		# on stderr too, as Test::More does: prove shows stderr without -v
		echo "#   Failed test $_tap_n: $2" >&2
	fi
}

diag() {
	printf '%s\n' "$@" | sed 's/^/# /' >&2
}

# ok NAME CMD...: passes when CMD exits 0; shows CMD's output on failure
ok() {
	local name=$1 out rc=0
	shift
	out=$("$@" 2>&1) || rc=$?
	_tap_result "$rc" "$name"
	[ "$rc" = 0 ] || diag "command failed (exit $rc): $*" "$out"
	return 0
}

# fails NAME CMD...: passes when CMD exits non-zero
fails() {
	local name=$1 out rc=0
	shift
	out=$("$@" 2>&1) || rc=$?
	if [ "$rc" != 0 ]; then
		_tap_result 0 "$name"
	else
		_tap_result 1 "$name"
		diag "command unexpectedly succeeded: $*" "$out"
	fi
	return 0
}

# ok_rc STATUS NAME: passes when STATUS is 0 (for a check written as a
# pipeline whose status was taken already: ok_rc "$(... ; echo $?)" NAME)
ok_rc() {
	_tap_result "$([ "$1" = 0 ] && echo 0 || echo 1)" "$2"
	[ "$1" = 0 ] || diag "exit status $1, expected 0"
	return 0
}

is() {
	if [ "$1" = "$2" ]; then
		_tap_result 0 "$3"
	else
		_tap_result 1 "$3"
		diag "     got: '$1'" "expected: '$2'"
	fi
}

isnt() {
	if [ "$1" != "$2" ]; then
		_tap_result 0 "$3"
	else
		_tap_result 1 "$3"
		diag "got '$1', expected anything else"
	fi
}

like() {
	if printf '%s\n' "$1" | grep -Eq -- "$2"; then
		_tap_result 0 "$3"
	else
		_tap_result 1 "$3"
		diag "'$1'" "does not match /$2/"
	fi
}

unlike() {
	if printf '%s\n' "$1" | grep -Eq -- "$2"; then
		_tap_result 1 "$3"
		diag "'$1'" "matches /$2/"
	else
		_tap_result 0 "$3"
	fi
}

# skip WHY: a test that cannot run here, reported as TAP's skip
skip() {
	_tap_n=$((_tap_n + 1))
	echo "ok $_tap_n # skip $*"
}

bail_out() {
	echo "Bail out! $*"
	exit 255
}

done_testing() {
	[ -n "$_tap_planned" ] || echo "1..$_tap_n"
	if [ -n "$_tap_planned" ] && [ "$_tap_planned" != "$_tap_n" ]; then
		diag "planned $_tap_planned tests but ran $_tap_n"
		exit 255
	fi
	[ "$_tap_failed" = 0 ] || exit 1
	exit 0
}

# ---------------------------------------------------------------- exit

_at_exit_cmds=()

# at_exit CMD: runs CMD (eval) when the test exits, newest first, before
# the mail world stops and T is removed
at_exit() {
	_at_exit_cmds+=("$*")
}

# lib-*.sh add their own last steps here (the world's stop)
_exit_hooks=()

_test_cleanup() {
	local i
	for ((i = ${#_at_exit_cmds[@]} - 1; i >= 0; i--)); do
		eval "${_at_exit_cmds[i]}" || true
	done
	_at_exit_cmds=()
	for i in "${_exit_hooks[@]}"; do
		"$i" || true
	done
	_exit_hooks=()
	if [ -n "${_test_tmp:-}" ] && [ -z "${MS_KEEP_TMP:-}" ]; then
		rm -rf "$_test_tmp"
	fi
}
trap _test_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

_test_tmp=$(mktemp -d "${TMPDIR:-/tmp}/ms-$(basename "$0" .sh).XXXXXX") ||
	bail_out "mktemp failed"
chmod 0755 "$_test_tmp"
T=$_test_tmp
MAILSHIFT_HOME=$T/home
mkdir -p "$MAILSHIFT_HOME"
export MAILSHIFT_HOME

# pid_running PID: the process exists and is not a zombie
pid_running() {
	local st
	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	st=${st##*) }
	[ "${st%% *}" != Z ]
}
