# tests/tool/lib.sh: shared helpers for mailshift's shell tool tests (bash).
#
#   . "$(dirname "$0")/lib.sh"
#   world_up                 # a mail world for this test (or the suite's)
#   plan 3                   # or done_testing at the end
#   ok "imap login" curl ...
#   is "$(mailbox_count "$WORLD_USER_ALICE")" 1 "one message delivered"
#   done_testing
#
# TAP: plan N, ok NAME CMD..., fails NAME CMD..., is GOT WANT NAME,
# isnt GOT WANT NAME, like GOT ERE NAME, unlike GOT ERE NAME, diag MSG,
# bail_out MSG, done_testing.  No skips: a test that cannot run fails.
#
# World: world_up starts tests/peers/world under a fresh temp dir with a
# port base derived from the test's name (override with WORLD_PORT_BASE)
# and stops it on exit; with MS_WORLD_DIR set to a running world (the
# suite's), it reuses that one and leaves it running.  Either way the
# variables of DIR/env (WORLD_*) are exported; see tests/peers/README.md.

MS_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MS_WORLD=$MS_TOP/tests/peers/world
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
	if printf '%s' "$1" | grep -Eq -- "$2"; then
		_tap_result 0 "$3"
	else
		_tap_result 1 "$3"
		diag "'$1'" "does not match /$2/"
	fi
}

unlike() {
	if printf '%s' "$1" | grep -Eq -- "$2"; then
		_tap_result 1 "$3"
		diag "'$1'" "matches /$2/"
	else
		_tap_result 0 "$3"
	fi
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

# ---------------------------------------------------------------- world

_world_owned=
_world_tmp=

_at_exit_cmds=()

# at_exit CMD...: runs CMD when the test exits (before the world stops);
# use it instead of your own "trap ... EXIT", which would replace ours
at_exit() {
	_at_exit_cmds+=("$*")
	trap _world_cleanup EXIT
}

_world_cleanup() {
	local c
	for c in "${_at_exit_cmds[@]}"; do
		eval "$c" || true
	done
	_at_exit_cmds=()
	if [ -n "$_world_owned" ]; then
		"$MS_WORLD" stop "$_world_owned" >/dev/null 2>&1 || true
		_world_owned=
	fi
	if [ -n "$_world_tmp" ] && [ -z "${MS_KEEP_WORLD:-}" ]; then
		rm -rf "$_world_tmp"
	fi
}

_world_export() {
	set -a
	# shellcheck disable=SC1091
	. "$1/env"
	set +a
}

# world_up: exports WORLD_* for a running world; bails out when none starts.
world_up() {
	if [ -n "${MS_WORLD_DIR:-}" ]; then
		if ! "$MS_WORLD" status "$MS_WORLD_DIR" || [ ! -f "$MS_WORLD_DIR/env" ]; then
			bail_out "MS_WORLD_DIR='$MS_WORLD_DIR' holds no running world"
		fi
		_world_export "$MS_WORLD_DIR"
		return 0
	fi
	_world_tmp=$(mktemp -d "${TMPDIR:-/tmp}/ms-world.XXXXXX") || bail_out "mktemp failed"
	chmod 0755 "$_world_tmp"
	trap _world_cleanup EXIT
	trap 'exit 130' INT TERM
	local base name
	# a port base per test script so that prove -j can run tests side by
	# side: 25000 + 12 * (crc of the script name mod 600), which stays
	# below Linux's ephemeral ports (32768 and up)
	name=$(basename "$0")
	base=${WORLD_PORT_BASE:-$((25000 + 12 * ($(printf '%s' "$name" | cksum | cut -d' ' -f1) % 600)))}
	for _ in 1 2 3 4 5; do
		if WORLD_PORT_BASE=$base "$MS_WORLD" start "$_world_tmp/w" 2>"$_world_tmp/start.err"; then
			_world_owned=$_world_tmp/w
			_world_export "$_world_owned"
			return 0
		fi
		if grep -Eq "is busy|did not open" "$_world_tmp/start.err"; then
			rm -rf "$_world_tmp/w"
			base=$((base + 12 * 37))
			[ "$base" -lt 32700 ] || base=$((base - 7200))
			continue
		fi
		break
	done
	bail_out "cannot start the mail world: $(tr '\n' ' ' <"$_world_tmp/start.err")"
}

world_ctl() {
	"$MS_WORLD" ctl "$WORLD_DIR" "$@"
}

# pid_running PID: the process exists and is not a zombie
pid_running() {
	local st
	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	st=${st##*) }
	[ "${st%% *}" != Z ]
}

# ---------------------------------------------------------------- mail

_maildir() {	# upn
	local u=$1
	printf '%s/%s/%s/Maildir' "$WORLD_MAIL_ROOT" "${u#*@}" "${u%@*}"
}

# mailbox_count UPN: messages in the INBOX (Maildir new + cur)
mailbox_count() {
	local d
	d=$(_maildir "$1")
	find "$d/new" "$d/cur" -maxdepth 1 -type f 2>/dev/null | wc -l | tr -d ' '
}

# wait_mailbox_count UPN N [SECONDS]: waits until the INBOX holds N
wait_mailbox_count() {
	local i=0 max=$(( ${3:-10} * 20 ))
	while [ "$i" -lt "$max" ]; do
		[ "$(mailbox_count "$1")" = "$2" ] && return 0
		sleep 0.05
		i=$((i + 1))
	done
	echo "mailbox $1 holds $(mailbox_count "$1") messages, not $2" >&2
	return 1
}

# mailbox_files UPN: the message files, one per line
mailbox_files() {
	local d
	d=$(_maildir "$1")
	find "$d/new" "$d/cur" -maxdepth 1 -type f 2>/dev/null | sort
}

# clear_mailbox UPN: empties the INBOX (Dovecot notices on its next sync)
clear_mailbox() {
	local d
	d=$(_maildir "$1")
	find "$d/new" "$d/cur" -maxdepth 1 -type f -delete 2>/dev/null
}

_lmtp_expect() {	# fd code
	local line
	while IFS= read -r -t 10 line <&"$1"; do
		line=${line%$'\r'}
		case $line in
		[0-9][0-9][0-9]-*) continue ;;
		"$2"*) return 0 ;;
		*) echo "lmtp: $line" >&2; return 1 ;;
		esac
	done
	echo "lmtp: no reply (wanted $2)" >&2
	return 1
}

# deliver_mail UPN FILE [ENVELOPE_FROM]: stores an RFC 5322 message in the
# INBOX at once, over Dovecot's LMTP (synchronous; adds Return-Path and
# Delivered-To like any delivery).  Bare LF lines are sent as CRLF.
deliver_mail() {
	local upn=$1 file=$2 from=${3:-sender@world.test} fd rc=0
	[ -r "$file" ] || { echo "deliver_mail: cannot read '$file'" >&2; return 1; }
	exec {fd}<>"/dev/tcp/127.0.0.1/$WORLD_LMTP_PORT" || return 1
	{
		_lmtp_expect "$fd" 220 &&
		printf 'LHLO world.test\r\n' >&"$fd" && _lmtp_expect "$fd" 250 &&
		printf 'MAIL FROM:<%s>\r\n' "$from" >&"$fd" && _lmtp_expect "$fd" 250 &&
		printf 'RCPT TO:<%s>\r\n' "$upn" >&"$fd" && _lmtp_expect "$fd" 250 &&
		printf 'DATA\r\n' >&"$fd" && _lmtp_expect "$fd" 354 &&
		{ sed -e 's/\r$//' -e 's/^\./../' -e 's/$/\r/' "$file"; printf '.\r\n'; } >&"$fd" &&
		_lmtp_expect "$fd" 250 &&
		printf 'QUIT\r\n' >&"$fd"
	} || rc=1
	exec {fd}>&-
	return $rc
}

# inject_mail FROM TO FILE: unauthenticated SMTP into Postfix (queued;
# use wait_mailbox_count afterwards)
inject_mail() {
	curl -sS "smtp://127.0.0.1:$WORLD_SMTP_PORT" --mail-from "$1" \
	    --mail-rcpt "$2" -T "$3"
}

# ---------------------------------------------------------------- tokens

# token_request [curl -d args...]: POST to the contoso token endpoint (or
# $TOKEN_TENANT); prints the body, then a line "HTTP <status>"
token_request() {
	curl -sS --cacert "$WORLD_CA_FILE" -w '\nHTTP %{http_code}\n' \
	    "$WORLD_TOKEN_URL/${TOKEN_TENANT:-$WORLD_TENANT}/oauth2/v2.0/token" "$@"
}

# get_token [SCOPE [CLIENT_ID [SECRET [TENANT]]]]: client credentials with a
# secret; prints the access token, fails (with the body on stderr) otherwise.
# Defaults: outlook scope, WORLD_APP_ID / WORLD_APP_SECRET, WORLD_TENANT.
get_token() {
	local scope=${1:-$WORLD_OUTLOOK_SCOPE} id=${2:-$WORLD_APP_ID}
	local secret=${3:-$WORLD_APP_SECRET} tenant=${4:-$WORLD_TENANT} body tok
	body=$(curl -sS --cacert "$WORLD_CA_FILE" \
	    "$WORLD_TOKEN_URL/$tenant/oauth2/v2.0/token" \
	    -d grant_type=client_credentials --data-urlencode "client_id=$id" \
	    --data-urlencode "client_secret=$secret" \
	    --data-urlencode "scope=$scope") || return 1
	tok=$(printf '%s' "$body" | json_get access_token) || {
		echo "get_token: $body" >&2
		return 1
	}
	printf '%s\n' "$tok"
}

# json_get PATH < JSON: prints a value (a.b.0.c, or a top-level key that
# holds dots such as @odata.nextLink); objects as JSON; fails when absent
json_get() {
	node -e '
		let s = "";
		process.stdin.on("data", (d) => s += d).on("end", () => {
			let v;
			try { v = JSON.parse(s); } catch (e) { process.exit(2); }
			const p = process.argv[1];
			// "@odata.nextLink": a key holding dots wins over a path
			const keys = v && typeof v === "object" && p in v ? [p] : p.split(".").filter(Boolean);
			for (const k of keys) {
				if (v === null || typeof v !== "object" || !(k in v))
					process.exit(1);
				v = v[k];
			}
			console.log(typeof v === "object" ? JSON.stringify(v) : String(v));
		});' "$1"
}

# jwt_claims TOKEN: the decoded payload (JSON) of a JWT
jwt_claims() {
	node -e 'console.log(Buffer.from(process.argv[1].split(".")[1], "base64url").toString())' "$1"
}

# ---------------------------------------------------------------- counters

# token_count CLIENT_ID SCOPE: token endpoint requests seen for that pair
token_count() {
	world_ctl counters | node -e '
		let s = "";
		process.stdin.on("data", (d) => s += d).on("end", () => {
			const c = JSON.parse(s).token;
			console.log(c[process.argv[1] + " " + process.argv[2]] || 0);
		});' "$1" "$2"
}

# graph_count "METHOD KIND MAILBOX": Graph requests of one kind (list, get,
# value, attachments, delete, sendMail, failed, badtoken ...)
graph_count() {
	world_ctl counters | node -e '
		let s = "";
		process.stdin.on("data", (d) => s += d).on("end", () => {
			console.log(JSON.parse(s).graph[process.argv[1]] || 0);
		});' "$1"
}

# graph_max_concurrent MAILBOX: most Graph requests in flight at once
graph_max_concurrent() {
	world_ctl counters | node -e '
		let s = "";
		process.stdin.on("data", (d) => s += d).on("end", () => {
			console.log(JSON.parse(s).graph_max_concurrent[process.argv[1]] || 0);
		});' "$1"
}

# client_assertion CLIENT_ID KEY_PEM CERT_PEM [PS256|RS256] [AUD] [LIFETIME]:
# prints a certificate client assertion as Entra ID wants it (x5t#S256 for
# PS256, x5t for RS256; aud = the contoso token URL unless AUD is given)
client_assertion() {
	NODE_PATH=$MS_TOP/tests/peers/node_modules node -e '
		const [id, keyf, certf, alg, aud, life] = process.argv.slice(1);
		const fs = require("fs"), crypto = require("crypto"), jose = require("jose");
		const der = new crypto.X509Certificate(fs.readFileSync(certf)).raw;
		const hdr = { alg, typ: "JWT" };
		if (alg === "PS256")
			hdr["x5t#S256"] = crypto.createHash("sha256").update(der).digest("base64url");
		else
			hdr.x5t = crypto.createHash("sha1").update(der).digest("base64url");
		const now = Math.floor(Date.now() / 1000);
		const key = crypto.createPrivateKey(fs.readFileSync(keyf));
		new jose.SignJWT({ aud, iss: id, sub: id, jti: crypto.randomUUID(),
		    nbf: now, iat: now, exp: now + Number(life) })
			.setProtectedHeader(hdr).sign(key).then((t) => console.log(t));
	' "$1" "$2" "$3" "${4:-PS256}" \
	    "${5:-$WORLD_TOKEN_URL/$WORLD_TENANT/oauth2/v2.0/token}" "${6:-300}"
}
