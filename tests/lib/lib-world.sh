# tests/lib/lib-world.sh: the mail world for a tool test (sourced after
# test-lib.sh).  See tests/peers/README.md for the world itself.
#
# world_up starts tests/peers/world under $T with a port base derived from
# the test's name (or WORLD_PORT_BASE) and stops it on exit; with
# MS_WORLD_DIR set to a running world (the suite's, tests/run-all), it
# reuses that one and leaves it running.  Either way the variables of
# DIR/env (WORLD_*) are exported and MS_WORLD_DIR names the world.
#   world_ctl ARGS...                  tests/peers/world ctl (fault switches, counters)
# Mailboxes: ID is a UPN (alice@contoso.test) or a user and an optional domain
# (alice [contoso.test]):
#   maildir ID, mailbox_count ID, mailbox_files ID, clear_mailbox ID,
#   wait_mailbox_count ID N [SECONDS]
#   deliver FILE RCPT [FROM]           queued SMTP into Postfix (then wait_...)
#   deliver_mail UPN FILE [FROM]       synchronous LMTP into Dovecot
#   mkmsg FILE FROM SUBJECT [BODY]     a small message
#   start_scripted SCENARIO / stop_scripted: tests/peers/scripted-server.py
# Tokens and Graph: token_request, get_token, json_get, jwt_claims,
# token_count, graph_count, graph_max_concurrent, client_assertion.
#   unmeasurable                       true when the binaries cannot have
#                                      their memory measured (ASan, valgrind)

MS_WORLD=$MS_TOP/tests/peers/world

# ---------------------------------------------------------------- world

_world_owned=

_world_stop() {
	if [ -n "$_world_owned" ]; then
		"$MS_WORLD" stop "$_world_owned" >/dev/null 2>&1 || true
		_world_owned=
	fi
}

_world_export() {
	set -a
	# shellcheck disable=SC1091
	. "$1/env"
	set +a
	MS_WORLD_DIR=$1
	export MS_WORLD_DIR
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
	_exit_hooks+=(_world_stop)
	local base name
	# a port base per test script so that tests run alone side by side
	# do not collide: 25000 + 12 * (crc of the script name mod 600), which
	# stays below Linux's ephemeral ports (32768 and up)
	name=$(basename "$0")
	base=${WORLD_PORT_BASE:-$((25000 + 12 * ($(printf '%s' "$name" | cksum | cut -d' ' -f1) % 600)))}
	for _ in 1 2 3 4 5; do
		if WORLD_PORT_BASE=$base "$MS_WORLD" start "$T/world" 2>"$T/world.err"; then
			_world_owned=$T/world
			_world_export "$_world_owned"
			return 0
		fi
		if grep -Eq "is busy|did not open" "$T/world.err"; then
			rm -rf "$T/world"
			base=$((base + 12 * 37))
			[ "$base" -lt 32700 ] || base=$((base - 7200))
			continue
		fi
		break
	done
	bail_out "cannot start the mail world: $(tr '\n' ' ' <"$T/world.err")"
}

world_ctl() {
	"$MS_WORLD" ctl "$WORLD_DIR" "$@"
}

# ---------------------------------------------------------------- mail

_upn() {	# ID [DOMAIN]
	case $1 in
	*@*) printf '%s' "$1" ;;
	*) printf '%s@%s' "$1" "${2:-contoso.test}" ;;
	esac
}

# maildir ID [DOMAIN]: the Maildir of a world user
maildir() {
	local u
	u=$(_upn "$@")
	printf '%s/%s/%s/Maildir\n' "$WORLD_MAIL_ROOT" "${u#*@}" "${u%@*}"
}

# mailbox_count ID [DOMAIN]: messages in the INBOX (Maildir new + cur)
mailbox_count() {
	local d
	d=$(maildir "$@")
	find "$d/new" "$d/cur" -maxdepth 1 -type f 2>/dev/null | wc -l | tr -d ' '
}

# wait_mailbox_count ID N [SECONDS]: waits until the INBOX holds N
# (delivery through Postfix is asynchronous); fails after SECONDS (10)
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

# mailbox_files ID: the message files, one per line
mailbox_files() {
	local d
	d=$(maildir "$@")
	find "$d/new" "$d/cur" -maxdepth 1 -type f 2>/dev/null | sort
}

# clear_mailbox ID [DOMAIN]: removes every message of the INBOX (the test's
# starting point), through Dovecot so that its index agrees
clear_mailbox() {
	local u
	u=$(_upn "$@")
	doveadm -c "$WORLD_DIR/dovecot/dovecot.conf" expunge -u "$u" \
		mailbox INBOX all >/dev/null 2>&1 ||
		echo "# doveadm expunge failed for $u"
}

# deliver FILE RCPT [FROM]: queued SMTP into Postfix's plain injection port
# (use wait_mailbox_count afterwards)
deliver() {
	curl -s --url "smtp://127.0.0.1:$WORLD_SMTP_PORT" \
		--mail-from "${3:-sender@example.test}" --mail-rcpt "$2" -T "$1" ||
		echo "# delivery of $1 to $2 failed"
}

# mkmsg FILE FROM SUBJECT [BODY]: a simple message, CRLF
mkmsg() {
	printf 'From: %s\r\nTo: test@contoso.test\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s@test>\r\n\r\n%s\r\n' \
		"$2" "$3" "$(date -R)" "$(openssl rand -hex 8)" "${4:-hello}" >"$1"
}

# a scripted POP3/IMAP server (tests/peers/scripted-server.py) for what
# Dovecot will not do: start_scripted SCENARIO sets $sport; its command
# log is $T/srv.log; stopped by stop_scripted and at exit
spid=""
stop_scripted() {
	[ -n "$spid" ] && kill "$spid" 2>/dev/null
	[ -n "$spid" ] && wait "$spid" 2>/dev/null
	spid=""
	return 0
}
start_scripted() {
	local i=0
	rm -f "$T/srv.port" "$T/srv.log"
	python3 "$MS_TOP/tests/peers/scripted-server.py" "$1" "$T/srv.port" "$T/srv.log" &
	spid=$!
	# up to 120 s: a server that builds a 70 MB message first is slow to
	# listen on a loaded machine (5 s was seen to be too short)
	while [ ! -s "$T/srv.port" ] && [ $i -lt 2400 ]; do
		pid_running "$spid" || break
		sleep 0.05; i=$((i + 1))
	done
	[ -s "$T/srv.port" ] || bail_out "the scripted server did not start: $(tail -n 3 "$T/srv.log" 2>/dev/null)"
	sport=$(cat "$T/srv.port")
}
_exit_hooks+=(stop_scripted)

# unmeasurable: the binaries under test cannot have their memory measured
unmeasurable() {
	grep -q __asan_init "$BIN/mailshift" 2>/dev/null || [ -n "${MAILSHIFT_VALGRIND:-}" ]
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
# world_oauth_ini FILE MSGIN PROTO PORT USER CLIENT-ID CREDENTIAL [MAIL-LINES]
# The [General], [Mail] and [OAuth] sections of an INI file that signs in to
# the world with OAuth 2.0 (its token service, Graph and test CA, TLS
# verified); CREDENTIAL is the [OAuth] line that proves the client
# (ClientSecret=..., CertificateFile=...).  WORLD_INI_CA names the CA file
# as the program will read it (a Windows path under Wine).  The caller
# appends its rules.
world_oauth_ini() {
	local ca=${WORLD_INI_CA:-$WORLD_CA_FILE}
	cat >"$1" <<EOF
[General]
MSGINDirectory=$2
UseLastRunDate=False
[Mail]
User=$5
Server=127.0.0.1
Port=$4
EmailProtocol=$3
SecurityProtocol=TLS1_2
AuthMethod=OAuth2
SelfSignedCertificate=False
CAFile=$ca
${8:-}
[OAuth]
Authority=$WORLD_TOKEN_URL
TenantId=$WORLD_TENANT
ClientId=$6
$7
GraphEndpoint=$WORLD_GRAPH_URL
CAFile=$ca
EOF
}

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
