# bash completion for mailshift, mailshift-audit, mailshift-migrate and
# mailshift-verify (installed once per command name, as bash-completion
# looks them up).

_mailshift_words() { # _mailshift_words WORDS: complete the current word
	COMPREPLY=($(compgen -W "$1" -- "${COMP_WORDS[COMP_CWORD]}"))
}

_mailshift_paths() { # _mailshift_paths -f|-d
	compopt -o filenames 2>/dev/null
	COMPREPLY=($(compgen "$1" -- "${COMP_WORDS[COMP_CWORD]}"))
}

_mailshift() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	local opt=
	# -inifile:PATH is split at ':' (COMP_WORDBREAKS): look behind it
	if [ "$prev" = ":" ] && [ "$COMP_CWORD" -ge 2 ]; then
		opt=${COMP_WORDS[COMP_CWORD-2]}
	elif [ "$cur" = ":" ]; then
		opt=$prev
		cur=
		COMP_WORDS[COMP_CWORD]=
	fi
	case ${opt,,} in
	-inifile) _mailshift_paths -f; return ;;
	-server|-port|-user|-password|-opconuser|-opconpassword|-clientsecret) return ;;
	esac
	_mailshift_words "-inifile: -server: -port: --imap --pop --ssl --tls1_1 --tls1_2
		--delete --msal --dry-run --retry-failed -v -vv --failed --credentials
		-user: -password: -opconuser: -opconpassword: -clientsecret: --oauth-login
		--renewMsalToken --renewTokenSilent --help -V --version help"
	compopt -o nospace 2>/dev/null
	[ "${#COMPREPLY[@]}" = 1 ] && [ "${COMPREPLY[0]%:}" = "${COMPREPLY[0]}" ] &&
		COMPREPLY[0]="${COMPREPLY[0]} "
	return 0
}

_mailshift_audit() {
	local i cmd=
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		collect-plan|collect) cmd=${COMP_WORDS[i]}; break ;;
		esac
	done
	case ${COMP_WORDS[COMP_CWORD-1]} in
	--fleet|--root) _mailshift_paths -d; return ;;
	--out) [ -n "$cmd" ] && _mailshift_paths -d || _mailshift_paths -f; return ;;
	--manifest) _mailshift_paths -f; return ;;
	--format) _mailshift_words "text json csv html"; return ;;
	--fail-on) _mailshift_words "needs-migration at-risk migrated unaffected broken none"
		   return ;;
	--share|--exe|--notify|--machine) return ;;
	esac
	case $cmd in
	collect-plan) _mailshift_words "--fleet --share --out --exe --notify --help" ;;
	collect) _mailshift_words "--manifest --out --machine --root --help" ;;
	*) _mailshift_words "--fleet --format --out --fail-on --quiet collect-plan collect
		--help -V --version help" ;;
	esac
}

_mailshift_migrate() {
	local i cmd=
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		plan|apply|status|rollback|deploy-plan|deploy|help) cmd=${COMP_WORDS[i]}; break ;;
		esac
	done
	case ${COMP_WORDS[COMP_CWORD-1]} in
	--fleet|--out) _mailshift_paths -d; return ;;
	--map|--state|--packet|--receipt) _mailshift_paths -f; return ;;
	--share|--exe) return ;;
	--format) _mailshift_words "text json"; return ;;
	--only) _mailshift_words "machine= schedule= job="; compopt -o nospace 2>/dev/null
		return ;;
	--run) return ;;
	esac
	case $cmd in
	'') _mailshift_words "plan apply status rollback deploy-plan deploy help --help -V
		--version" ;;
	help) _mailshift_words "plan apply status rollback deploy-plan deploy" ;;
	plan) _mailshift_words "--fleet --map --state --format --help" ;;
	apply) _mailshift_words "--fleet --map --state --only --out --help" ;;
	status) _mailshift_words "--fleet --state --run --only --format --help" ;;
	rollback) _mailshift_words "--fleet --state --run --only --force --out --help" ;;
	deploy-plan) _mailshift_words "--fleet --share --out --state --run --exe --help" ;;
	deploy) _mailshift_words "--packet --rollback --receipt --help" ;;
	esac
}

_mailshift_verify() {
	case ${COMP_WORDS[COMP_CWORD-1]} in
	--fleet) _mailshift_paths -d; return ;;
	--ini|--state|--sender-ini|--out|--junit|--db) _mailshift_paths -f; return ;;
	--format) _mailshift_words "text json junit html"; return ;;
	--smtp-tls) _mailshift_words "starttls implicit"; return ;;
	--run|--subject|--smtp|--from|--concurrency|--timeout|--poll-ms|--cert-min-days) return ;;
	esac
	if [ "$COMP_CWORD" = 1 ]; then
		_mailshift_words "history help --ini --fleet --state --help -V --version"
		return
	fi
	case ${COMP_WORDS[1]} in
	history) _mailshift_words "--db --state --fleet --help" ;;
	help) _mailshift_words "history" ;;
	*) _mailshift_words "--ini --fleet --state --run --send --subject --sender-ini --smtp
		--smtp-tls --from --concurrency --timeout --poll-ms --cert-min-days --format
		--out --junit --db --no-db --quiet --verbose --help" ;;
	esac
}

complete -F _mailshift mailshift
complete -F _mailshift_audit mailshift-audit
complete -F _mailshift_migrate mailshift-migrate
complete -F _mailshift_verify mailshift-verify
