#!/bin/bash
# What the four programs share on the command line: -V/--version alike,
# `help` and `CMD --help` per subcommand, "did you mean --fleet?" with the
# program's name (not its path), --help with exit codes and two examples,
# the connector's -vv, a failed connector run that ends with the error
# and its fix instead of a summary of zeros, and a missing default INI
# that names -inifile: and MAILSHIFT_INIFILE.  No mail world needed.
. "$(dirname "$0")/../lib/test-lib.sh"
bin=${MAILSHIFT_BIN:-$MS_TOP/bin}
tmp=$T
version=$(sed -n 's/^VERSION *:= *//p' "$MS_TOP/Makefile")

for p in mailshift mailshift-audit mailshift-migrate mailshift-verify; do
	is "$("$bin/$p" -V 2>&1)" "$p $version" "$p -V"
	is "$("$bin/$p" --version 2>&1)" "$p $version" "$p --version"
	out=$("$bin/$p" --help 2>&1); rc=$?
	is "$rc" 0 "$p --help exits 0"
	like "$out" '(^|[[:space:]])[Ee]xit: 0 ' "$p --help lists the exit codes"
	is "$(printf '%s\n' "$out" | sed -n '/^[Ee]xamples:/,$p' | grep -c "^  $p ")" 2 \
	   "$p --help shows two examples"
	is "$("$bin/$p" help 2>&1)" "$out" "$p help is --help"
done

like "$("$bin/mailshift" --help)" '-vv  +also the protocol trace' "connector help lists -vv"

# subcommands
for c in plan apply status rollback; do
	out=$("$bin/mailshift-migrate" "$c" --help 2>&1); rc=$?
	is "$rc" 0 "migrate $c --help exits 0"
	like "$out" "^usage: mailshift-migrate $c " "migrate $c --help is $c's"
	is "$("$bin/mailshift-migrate" help "$c" 2>&1)" "$out" "migrate help $c"
	is "$(printf '%s\n' "$out" | grep -c "^  mailshift-migrate $c ")" 2 "migrate $c: two examples"
done
"$bin/mailshift-migrate" help frob >/dev/null 2>&1
is $? 64 "migrate help of an unknown command: 64"
out=$("$bin/mailshift-verify" history --help 2>&1)
like "$out" '^usage: mailshift-verify history ' "verify history --help is history's"
is "$("$bin/mailshift-verify" help history 2>&1)" "$out" "verify help history"

# did you mean, with the program's name
for p in mailshift-audit mailshift-migrate mailshift-verify; do
	case $p in mailshift-migrate) args="plan --flet $tmp" ;; *) args="--flet $tmp" ;; esac
	out=$("$bin/$p" $args 2>&1); rc=$?
	is "$rc" 64 "$p: a mistyped option is EX_USAGE"
	like "$out" "^$p: unknown option '--flet' \(did you mean --fleet\?\)" "$p: did you mean --fleet"
	unlike "$out" "$bin" "$p: its name, not its path"
	out=$("$bin/$p" ${args%% *} --fleet 2>&1)
	[ "$p" = mailshift-migrate ] || out=$("$bin/$p" --fleet 2>&1)
	like "$out" "^$p: option '--fleet' requires a value" "$p: a missing value is named"
done
out=$("$bin/mailshift" --dryrun 2>&1); rc=$?
is "$rc" 1 "connector: a mistyped option is a command-line error (1)"
like "$out" "^mailshift: unknown option '--dryrun' \(did you mean --dry-run\?\)" \
     "connector: did you mean --dry-run"

# a failed connector run: the error and its fix, no summary of zeros
cd "$tmp" || bail_out "cd $tmp"
out=$(env -u MAILSHIFT_INIFILE "$bin/mailshift" -v 2>&1); rc=$?
is "$rc" 2 "missing default INI: exit 2"
like "$out" "cannot open 'SMArtEmail.ini'" "missing default INI: the error"
like "$out" '-inifile:' "missing default INI: names -inifile:"
like "$out" 'MAILSHIFT_INIFILE' "missing default INI: names MAILSHIFT_INIFILE"
unlike "$out" '0 listed' "failed run: no summary of zeros"
out=$("$bin/mailshift" -v "-inifile:$tmp/none.ini" 2>&1)
unlike "$out" '0 listed' "failed run with -inifile: no summary"
unlike "$out" 'MAILSHIFT_INIFILE' "an -inifile: that is missing is not about the default"
# an MSGIN that is a file: said at once, naming it, before any server
: >"$tmp/msgin-file"
printf '[General]\nMSGINDirectory=%s\n[Mail]\nServer=127.0.0.1\nPort=9\nUser=a\nPassword=b\nEmailProtocol=IMAP\n[Configuration1]\nSubjectLineMask=x\nEvent=$JOB:ADD,a,b,c\n' \
	"$tmp/msgin-file" >"$tmp/filemsgin.ini"
out=$("$bin/mailshift" "-inifile:$tmp/filemsgin.ini" 2>&1); rc=$?
is "$rc" 2 "MSGIN that is a file: exit 2"
like "$out" "cannot use '$tmp/msgin-file' as a directory: it is a file" "MSGIN that is a file: the error names it"
done_testing
