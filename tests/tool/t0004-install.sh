#!/bin/bash
# make install puts the four programs, their man pages (man mailshift-audit
# works), the bash completion, the docs and the samples under PREFIX;
# make uninstall takes all of it away again.
. "$(dirname "$0")/../lib/test-lib.sh"
tmp=$T
root=$tmp/root
cd "$MS_TOP" || bail_out "cd $MS_TOP"

ok "make install DESTDIR PREFIX=/usr" make --no-print-directory install DESTDIR="$root" PREFIX=/usr
for p in mailshift mailshift-audit mailshift-migrate mailshift-verify; do
	ok "$p installed, executable" test -x "$root/usr/bin/$p"
	ok "$p.1 installed" test -f "$root/usr/share/man/man1/$p.1"
	out=$(MANWIDTH=80 man -M "$root/usr/share/man" "$p" 2>&1)
	like "$out" "^${p^^}\(1\)" "man $p renders"
	like "$out" 'EXIT STATUS' "man $p lists exit codes"
	is "$(groff -man -Tutf8 -ww -z "$root/usr/share/man/man1/$p.1" 2>&1)" "" "$p.1: groff has no warnings"
	ok "completion for $p" test -f "$root/usr/share/bash-completion/completions/$p"
done
comp=$root/usr/share/bash-completion/completions
is "$(bash -c ". '$comp/mailshift-migrate'; COMP_WORDS=(mailshift-migrate pl); COMP_CWORD=1;
	_mailshift_migrate; echo \${COMPREPLY[*]}")" plan "completion: mailshift-migrate pl -> plan"
is "$(bash -c ". '$comp/mailshift-audit'; COMP_WORDS=(mailshift-audit --format ''); COMP_CWORD=2;
	_mailshift_audit; echo \${COMPREPLY[*]}")" "text json csv html" "completion: audit --format"
is "$(bash -c ". '$comp/mailshift-migrate'; COMP_WORDS=(mailshift-migrate dep); COMP_CWORD=1;
	_mailshift_migrate; echo \${COMPREPLY[*]}")" "deploy-plan deploy" "completion: mailshift-migrate dep"
is "$(bash -c ". '$comp/mailshift-migrate'; COMP_WORDS=(mailshift-migrate deploy --r); COMP_CWORD=2;
	_mailshift_migrate; echo \${COMPREPLY[*]}")" "--rollback --receipt" "completion: migrate deploy --r"
is "$(bash -c ". '$comp/mailshift-audit'; COMP_WORDS=(mailshift-audit collect --m); COMP_CWORD=2;
	_mailshift_audit; echo \${COMPREPLY[*]}")" "--manifest --machine" "completion: audit collect --m"
is "$(bash -c ". '$comp/mailshift'; COMP_WORDS=(mailshift --dry); COMP_CWORD=1;
	_mailshift; echo \${COMPREPLY[*]}")" "--dry-run" "completion: connector --dry"
ok "README under share/doc" test -f "$root/usr/share/doc/mailshift/README.md"
ok "docs under share/doc" test -f "$root/usr/share/doc/mailshift/docs/audit.md"
ok "samples under share" test -f "$root/usr/share/mailshift/samples/map.json"
ok "sample fleet whole (names with blanks)" \
	test -f "$root/usr/share/mailshift/samples/fleet/machines/WINAPP01/C/ProgramData/OpConxps/SMArt Email/SMArtEmail.ini"
is "$(find "$root/usr/share/mailshift" -type f ! -perm -0444 | wc -l)" 0 "samples readable by all"
ok "make uninstall" make --no-print-directory uninstall DESTDIR="$root" PREFIX=/usr
is "$(find "$root" -type f | wc -l)" 0 "nothing left after uninstall"
done_testing
