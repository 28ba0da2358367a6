#!/bin/bash
# The test mail world works, proven with clients nobody here wrote (curl,
# msmtp): bearer and password logins over IMAP/POP/SMTP, the mailbox and
# audience checks, the token service's Microsoft-shaped answers, the Graph
# stand-in, and a clean stop.
. "$(dirname "$0")/../lib/test-lib.sh"
. "$MS_LIB/lib-world.sh"

t0=$(date +%s%3N)
world_up
t1=$(date +%s%3N)
owned=$_world_owned

CA=(--cacert "$WORLD_CA_FILE")
IMAPS=imaps://127.0.0.1:$WORLD_IMAPS_PORT
POP3S=pop3s://127.0.0.1:$WORLD_POP3S_PORT
A=$WORLD_USER_ALICE
B=$WORLD_USER_BOB
O=$WORLD_USER_OPS
tmp=$T
tag=$$-$RANDOM

if [ -n "$owned" ]; then
	ok "world starts in under 10 s ($((t1 - t0)) ms)" test $((t1 - t0)) -lt 10000
fi

# ---------------------------------------------------------------- tokens
body=$(token_request -d grant_type=client_credentials \
    --data-urlencode "client_id=$WORLD_APP_ID" \
    --data-urlencode "client_secret=$WORLD_APP_SECRET" \
    --data-urlencode "scope=$WORLD_OUTLOOK_SCOPE")
like "$body" 'HTTP 200$' "client credentials with a secret: 200"
json=${body%$'\n'HTTP*}
is "$(json_get token_type <<<"$json")" Bearer "token_type Bearer"
is "$(json_get expires_in <<<"$json")" 3599 "expires_in 3599"
at=$(json_get access_token <<<"$json")
claims=$(jwt_claims "$at")
is "$(json_get aud <<<"$claims")" https://outlook.office365.com "app token audience is outlook"
like "$(json_get roles <<<"$claims")" 'IMAP.AccessAsApp' "app token carries IMAP.AccessAsApp"
is "$(json_get iss <<<"$claims")" "https://login.microsoftonline.com/$WORLD_TENANT/v2.0" "issuer names the tenant"
is "$(node -e 'console.log(JSON.parse(Buffer.from(process.argv[1].split(".")[0],"base64url")).typ)' "$at")" JWT "header typ JWT"

body=$(token_request -d grant_type=client_credentials \
    --data-urlencode "client_id=$WORLD_APP_ID" \
    --data-urlencode "client_secret=not-the-secret" \
    --data-urlencode "scope=$WORLD_OUTLOOK_SCOPE")
json=${body%$'\n'HTTP*}
like "$body" 'HTTP 401$' "wrong secret: 401"
is "$(json_get error <<<"$json")" invalid_client "wrong secret: error invalid_client"
is "$(json_get error_codes.0 <<<"$json")" 7000215 "wrong secret: error_codes [7000215]"
like "$(json_get error_description <<<"$json")" '^AADSTS7000215: .* Trace ID: [0-9a-f-]{36} Correlation ID: [0-9a-f-]{36} Timestamp: ' \
    "wrong secret: AADSTS description with trace, correlation, timestamp"
ok "wrong secret: trace_id and correlation_id fields" json_get correlation_id <<<"$json"

check_error() {	# name code http curl-args...
	local name=$1 code=$2 http=$3 b
	shift 3
	b=$(token_request "$@")
	like "$b" "HTTP $http\$" "$name: HTTP $http"
	is "$(json_get error_codes.0 <<<"${b%$'\n'HTTP*}")" "$code" "$name: AADSTS$code"
}
cc=(-d grant_type=client_credentials --data-urlencode "scope=$WORLD_OUTLOOK_SCOPE")
check_error "expired secret" 7000222 401 "${cc[@]}" \
    --data-urlencode "client_id=$WORLD_EXPIRED_APP_ID" --data-urlencode "client_secret=$WORLD_EXPIRED_APP_SECRET"
check_error "unknown client" 700016 400 "${cc[@]}" \
    --data-urlencode "client_id=$WORLD_FAB_APP_ID" --data-urlencode "client_secret=$WORLD_FAB_APP_SECRET"
check_error "no credential" 7000218 401 "${cc[@]}" --data-urlencode "client_id=$WORLD_APP_ID"
check_error "disabled app" 7000112 400 "${cc[@]}" \
    --data-urlencode "client_id=$WORLD_DISABLED_APP_ID" --data-urlencode "client_secret=$WORLD_DISABLED_APP_SECRET"
check_error "no consent" 65001 400 "${cc[@]}" \
    --data-urlencode "client_id=$WORLD_NOROLES_APP_ID" --data-urlencode "client_secret=$WORLD_NOROLES_APP_SECRET"
check_error "invalid scope" 70011 400 -d grant_type=client_credentials \
    --data-urlencode "client_id=$WORLD_APP_ID" --data-urlencode "client_secret=$WORLD_APP_SECRET" \
    --data-urlencode "scope=https://outlook.office365.com/IMAP.AccessAsApp"
TOKEN_TENANT=nosuch.example check_error "unknown tenant" 90002 400 "${cc[@]}" \
    --data-urlencode "client_id=$WORLD_APP_ID" --data-urlencode "client_secret=$WORLD_APP_SECRET"

# certificate credentials: PS256 + x5t#S256, RS256 + x5t, replay, rogue key
ca=(-d grant_type=client_credentials --data-urlencode "scope=$WORLD_OUTLOOK_SCOPE"
    --data-urlencode "client_id=$WORLD_CERT_APP_ID"
    -d client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer)
asrt=$(client_assertion "$WORLD_CERT_APP_ID" "$WORLD_CERT_APP_KEY" "$WORLD_CERT_APP_CERT" PS256)
like "$(token_request "${ca[@]}" --data-urlencode "client_assertion=$asrt")" 'HTTP 200$' "PS256 certificate assertion: 200"
check_error "replayed assertion" 700025 401 "${ca[@]}" --data-urlencode "client_assertion=$asrt"
asrt=$(client_assertion "$WORLD_CERT_APP_ID" "$WORLD_CERT_APP_KEY" "$WORLD_CERT_APP_CERT" RS256)
like "$(token_request "${ca[@]}" --data-urlencode "client_assertion=$asrt")" 'HTTP 200$' "RS256 + x5t assertion: 200"
asrt=$(client_assertion "$WORLD_CERT_APP_ID" "$WORLD_ROGUE_KEY" "$WORLD_ROGUE_CERT" PS256)
check_error "assertion from an unregistered key" 700027 401 "${ca[@]}" --data-urlencode "client_assertion=$asrt"
asrt=$(client_assertion "$WORLD_CERT_APP_ID" "$WORLD_CERT_APP_KEY" "$WORLD_CERT_APP_CERT" PS256 "" 3600)
check_error "assertion living an hour" 700024 401 "${ca[@]}" --data-urlencode "client_assertion=$asrt"

# ---------------------------------------------------------------- IMAP / POP
cat >"$tmp/m1.eml" <<EOF
From: Sender <sender@world.test>
To: $A
Subject: smoke lmtp $tag
Message-ID: <lmtp-$tag@world.test>
Date: $(date -R)

first line
.leading dot line
EOF
# the world may be the suite's: count relative to what is there
na=$(mailbox_count "$A")
nb=$(mailbox_count "$B")
no=$(mailbox_count "$O")
ok "deliver_mail over LMTP" deliver_mail "$A" "$tmp/m1.eml"
ok "alice holds one more message" wait_mailbox_count "$A" $((na + 1)) 2

# imap_uid_of USER CRED-ARGS... : UID of the message whose subject has $tag
uid=$(curl -sS "${CA[@]}" "$IMAPS/INBOX" -X "UID SEARCH SUBJECT \"lmtp $tag\"" \
    -u "$A:$WORLD_PASS_ALICE" | tr -d '\r' | awk '/^\* SEARCH/ {print $3}')
out=$(curl -sS "${CA[@]}" "$IMAPS/INBOX;UID=$uid" -u "$A:" --oauth2-bearer "$at" 2>&1)
like "$out" "Subject: smoke lmtp $tag" "curl IMAPS + bearer (app token granted alice) fetches the message"
like "$out" '^\.leading dot line' "LMTP delivery undid the dot stuffing"
out=$(curl -sS "${CA[@]}" "$POP3S/$((na + 1))" -u "$A:" --oauth2-bearer "$at" 2>&1)
like "$out" "Subject: smoke lmtp $tag" "curl POP3S + bearer retrieves the message"
out=$(curl -sS "${CA[@]}" --ssl-reqd "pop3://127.0.0.1:$WORLD_POP3_PORT/$((na + 1))" -u "$A:$WORLD_PASS_ALICE" 2>&1)
like "$out" "Subject: smoke lmtp $tag" "curl POP3 STARTTLS + password retrieves the message"
out=$(curl -sS "${CA[@]}" --ssl-reqd "imap://127.0.0.1:$WORLD_IMAP_PORT/INBOX" -X 'STATUS INBOX (MESSAGES)' -u "$A:$WORLD_PASS_ALICE" 2>&1)
like "$out" "MESSAGES $((na + 1))" "curl IMAP STARTTLS + password counts the messages"

# refusals
fails "wrong password refused" curl -sS "${CA[@]}" "$IMAPS/INBOX" -u "$A:wrong-$tag"
tampered=${at%?????}AAAAA
fails "tampered token refused" curl -sS "${CA[@]}" "$IMAPS/INBOX" -u "$A:" --oauth2-bearer "$tampered"
fails "app token for a mailbox not granted (bob) refused" curl -sS "${CA[@]}" "$IMAPS/INBOX" -u "$B:" --oauth2-bearer "$at"
gat=$(get_token "$WORLD_GRAPH_SCOPE")
is "$(json_get aud <<<"$(jwt_claims "$gat")")" https://graph.microsoft.com "graph token audience"
fails "Graph token on IMAP refused" curl -sS "${CA[@]}" "$IMAPS/INBOX" -u "$A:" --oauth2-bearer "$gat"
fabat=$(get_token "$WORLD_OUTLOOK_SCOPE" "$WORLD_FAB_APP_ID" "$WORLD_FAB_APP_SECRET" "$WORLD_TENANT2")
fails "other tenant's app token refused on alice" curl -sS "${CA[@]}" "$IMAPS/INBOX" -u "$A:" --oauth2-bearer "$fabat"
ok "other tenant's app token opens carol" curl -sS "${CA[@]}" "$IMAPS/INBOX" -u "$WORLD_USER_CAROL:" --oauth2-bearer "$fabat"
ok "dave (on-prem) logs in with a password" curl -sS "${CA[@]}" "$IMAPS/INBOX" -u "$WORLD_USER_DAVE:$WORLD_PASS_DAVE"
# no auth_failure_delay (Dovecot's default is 2 s): a failed login and a
# good one take about as long as two good ones.  Fastest of three each, so
# that a busy machine (make check runs two tests at once) does not decide.
good=999999 bad=999999
for i in 1 2 3; do
	start=$(date +%s%3N)
	curl -sS "${CA[@]}" "$IMAPS/INBOX" -u "$B:$WORLD_PASS_BOB" >/dev/null 2>&1
	curl -sS "${CA[@]}" "$IMAPS/INBOX" -u "$B:$WORLD_PASS_BOB" >/dev/null 2>&1
	t=$(( $(date +%s%3N) - start )); [ "$t" -lt "$good" ] && good=$t
	start=$(date +%s%3N)
	fails "wrong password again ($i)" curl -sS "${CA[@]}" "$IMAPS/INBOX" -u "$B:wrong"
	ok "login after failures ($i)" curl -sS "${CA[@]}" "$IMAPS/INBOX" -u "$B:$WORLD_PASS_BOB"
	t=$(( $(date +%s%3N) - start )); [ "$t" -lt "$bad" ] && bad=$t
done
ok "failed logins do not slow the next one ($bad ms, two good logins $good ms)" \
    test $((bad - good)) -lt 1000

# ---------------------------------------------------------------- SMTP
cat >"$tmp/m2.eml" <<EOF
From: $A
To: $B
Subject: smoke submission $tag
Date: $(date -R)

sent over submission
EOF
ok "curl SMTP submission (STARTTLS, password) alice -> bob" \
    curl -sS "${CA[@]}" --ssl-reqd "smtp://127.0.0.1:$WORLD_SUBMISSION_PORT" \
    --mail-from "$A" --mail-rcpt "$B" -u "$A:$WORLD_PASS_ALICE" -T "$tmp/m2.eml"
ok "bob receives it" wait_mailbox_count "$B" $((nb + 1)) 10
uid=$(curl -sS "${CA[@]}" "$IMAPS/INBOX" -X "UID SEARCH SUBJECT \"submission $tag\"" \
    -u "$B:$WORLD_PASS_BOB" | tr -d '\r' | awk '/^\* SEARCH/ {print $3}')
out=$(curl -sS "${CA[@]}" "$IMAPS/INBOX;UID=$uid" -u "$B:$WORLD_PASS_BOB" 2>&1)
like "$out" "Subject: smoke submission $tag" "read back over IMAP"

ok "curl SMTP XOAUTH2-only port + bearer alice -> ops" \
    curl -sS "${CA[@]}" --ssl-reqd "smtp://127.0.0.1:$WORLD_SUBMISSION_XOAUTH2_PORT" \
    --mail-from "$A" --mail-rcpt "$O" -u "$A:" --oauth2-bearer "$at" -T "$tmp/m2.eml"
ok "ops receives it" wait_mailbox_count "$O" $((no + 1)) 10
ok "Postfix logged sasl_method=XOAUTH2" grep -q "sasl_method=XOAUTH2, sasl_username=$A" "$WORLD_POSTFIX_LOG"
fails "send as bob with alice's login refused" \
    curl -sS "${CA[@]}" "smtps://127.0.0.1:$WORLD_SUBMISSIONS_PORT" \
    --mail-from "$B" --mail-rcpt "$A" -u "$A:" --oauth2-bearer "$at" -T "$tmp/m2.eml"
fails "SMTP relay outside refused" \
    curl -sS "${CA[@]}" "smtps://127.0.0.1:$WORLD_SUBMISSIONS_PORT" \
    --mail-from "$A" --mail-rcpt "someone@example.com" -u "$A:$WORLD_PASS_ALICE" -T "$tmp/m2.eml"

printf '%s' "$at" >"$tmp/at"
ms=(msmtp --host=127.0.0.1 --tls=on --tls-trust-file="$WORLD_CA_FILE" --user="$A"
    --passwordeval="cat $tmp/at" --from="$A")
ok "msmtp XOAUTH2 over submission (STARTTLS)" \
    "${ms[@]}" --port="$WORLD_SUBMISSION_PORT" --tls-starttls=on --auth=xoauth2 "$O" <"$tmp/m2.eml"
ok "msmtp OAUTHBEARER over implicit TLS" \
    "${ms[@]}" --port="$WORLD_SUBMISSIONS_PORT" --tls-starttls=off --auth=oauthbearer "$O" <"$tmp/m2.eml"
ok "ops holds three more messages" wait_mailbox_count "$O" $((no + 3)) 10
printf '%s' "$tampered" >"$tmp/at"
fails "msmtp XOAUTH2 with a tampered token refused" \
    "${ms[@]}" --port="$WORLD_SUBMISSION_PORT" --tls-starttls=on --auth=xoauth2 "$O" <"$tmp/m2.eml"

# ---------------------------------------------------------------- device code
# a 3 s polling interval for this code (1 s, the world's default, is shorter
# than two polls take on a busy machine), back to 1 s for the rest
world_ctl device-interval 3 >/dev/null
dc=$(curl -sS "${CA[@]}" "$WORLD_TOKEN_URL/$WORLD_TENANT/oauth2/v2.0/devicecode" \
    --data-urlencode "client_id=$WORLD_PUBLIC_APP_ID" \
    --data-urlencode "scope=https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send offline_access")
world_ctl device-interval 1 >/dev/null
ucode=$(json_get user_code <<<"$dc")
dcode=$(json_get device_code <<<"$dc")
like "$(json_get message <<<"$dc")" "enter the code $ucode" "device code message names the user code"
poll=(-d grant_type=urn:ietf:params:oauth:grant-type:device_code
    --data-urlencode "client_id=$WORLD_PUBLIC_APP_ID" --data-urlencode "device_code=$dcode")
b=$(token_request "${poll[@]}")
b2=$(token_request "${poll[@]}")
is "$(json_get error <<<"${b%$'\n'HTTP*}")" authorization_pending "device flow: authorization_pending"
is "$(json_get error <<<"${b2%$'\n'HTTP*}")" slow_down "device flow: slow_down when polled too fast"
ok "approve the code for bob" world_ctl approve "$ucode" "$B"
sleep 3.1
b=$(token_request "${poll[@]}")
json=${b%$'\n'HTTP*}
like "$b" 'HTTP 200$' "device flow: tokens after approval"
dat=$(json_get access_token <<<"$json")
rt=$(json_get refresh_token <<<"$json")
is "$(json_get upn <<<"$(jwt_claims "$dat")")" "$B" "delegated token names bob"
ok "delegated token opens bob's own mailbox" curl -sS "${CA[@]}" "$IMAPS/INBOX" -u "$B:" --oauth2-bearer "$dat"
fails "delegated token refused on alice" curl -sS "${CA[@]}" "$IMAPS/INBOX" -u "$A:" --oauth2-bearer "$dat"
rr=(-d grant_type=refresh_token --data-urlencode "client_id=$WORLD_PUBLIC_APP_ID" --data-urlencode "refresh_token=$rt")
b=$(token_request "${rr[@]}")
rt2=$(json_get refresh_token <<<"${b%$'\n'HTTP*}")
ok "refresh token rotates" test -n "$rt2" -a "$rt2" != "$rt"
check_error "used refresh token" 70008 400 "${rr[@]}"

# declined and expired device codes
for how in decline expire-device; do
	dc=$(curl -sS "${CA[@]}" "$WORLD_TOKEN_URL/$WORLD_TENANT/oauth2/v2.0/devicecode" \
	    --data-urlencode "client_id=$WORLD_PUBLIC_APP_ID" \
	    --data-urlencode "scope=https://outlook.office.com/IMAP.AccessAsUser.All")
	world_ctl "$how" "$(json_get user_code <<<"$dc")" >/dev/null
	b=$(token_request -d grant_type=urn:ietf:params:oauth:grant-type:device_code \
	    --data-urlencode "client_id=$WORLD_PUBLIC_APP_ID" \
	    --data-urlencode "device_code=$(json_get device_code <<<"$dc")")
	want=authorization_declined
	[ "$how" = decline ] || want=expired_token
	is "$(json_get error <<<"${b%$'\n'HTTP*}")" "$want" "device flow: $want"
done

# expired tokens
ok "token lifetime 1 s" world_ctl token-lifetime 1
short=$(get_token)
world_ctl token-lifetime 3599 >/dev/null
is "$(json_get expires_in <<<"$(token_request -d grant_type=client_credentials \
    --data-urlencode "client_id=$WORLD_APP_ID" --data-urlencode "client_secret=$WORLD_APP_SECRET" \
    --data-urlencode "scope=$WORLD_OUTLOOK_SCOPE" | head -n 1)")" 3599 "token lifetime back to 3599"
sleep 2
fails "expired token refused on IMAP" curl -sS "${CA[@]}" "$IMAPS/INBOX" -u "$A:" --oauth2-bearer "$short"

# ---------------------------------------------------------------- Graph
G=$WORLD_GRAPH_URL/v1.0/users
gl0=$(graph_count "GET list $A")
gf0=$(graph_count "GET failed $A")
since=$(date -u -d '-10 min' +%Y-%m-%dT%H:%M:%SZ)
out=$(curl -sS "${CA[@]}" -H "Authorization: Bearer $gat" -H 'Prefer: IdType="ImmutableId"' \
    "$G/$A/mailFolders/inbox/messages?\$select=subject,receivedDateTime&\$top=100&\$filter=receivedDateTime%20ge%20$since")
like "$out" "\"subject\":\"smoke lmtp $tag\"" "Graph lists the delivered message"
gid=$(node -e 'const v = JSON.parse(process.argv[1]).value.find((m) => m.subject === process.argv[2]); console.log(v ? v.id : "")' "$out" "smoke lmtp $tag")
raw=$(curl -sS "${CA[@]}" -H "Authorization: Bearer $gat" "$G/$A/messages/$gid/\$value")
like "$raw" "Message-ID: <lmtp-$tag@world.test>" "Graph \$value returns the raw MIME"
out=$(curl -sS "${CA[@]}" -H "Authorization: Bearer $gat" "$G/$B/mailFolders/inbox/messages")
is "$(json_get error.code <<<"$out")" ErrorAccessDenied "Graph refuses a mailbox not granted"
ok "Graph error carries innerError request-id" json_get error.innerError.request-id <<<"$out"
out=$(curl -sS "${CA[@]}" -H "Authorization: Bearer $at" "$G/$A/mailFolders/inbox/messages")
is "$(json_get error.code <<<"$out")" InvalidAuthenticationToken "Graph refuses an outlook token"
cat >"$tmp/att.eml" <<EOF
From: x@world.test
To: $A
Subject: smoke attachment $tag
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/plain; charset=utf-8

see attached
--b1
Content-Type: application/pdf; name="report-$tag.pdf"
Content-Disposition: attachment; filename="report-$tag.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQKJcOkw7zDtsOfCg==
--b1--
EOF
deliver_mail "$A" "$tmp/att.eml"
out=$(curl -sS "${CA[@]}" -H "Authorization: Bearer $gat" "$G/$A/mailFolders/inbox/messages?\$top=1&\$select=subject,hasAttachments")
is "$(json_get value.0.subject <<<"$out")" "smoke attachment $tag" "Graph lists newest first"
is "$(json_get value.0.hasAttachments <<<"$out")" true "hasAttachments"
next=$(json_get @odata.nextLink <<<"$out")
out2=$(curl -sS "${CA[@]}" -H "Authorization: Bearer $gat" "$next")
like "$out2" '"value":\[\{' "@odata.nextLink gives the next page"
aid=$(json_get value.0.id <<<"$out")
out2=$(curl -sS "${CA[@]}" -H "Authorization: Bearer $gat" "$G/$A/messages/$aid/attachments")
is "$(json_get value.0.name <<<"$out2")" "report-$tag.pdf" "attachments: name"
is "$(json_get value.0.contentBytes <<<"$out2")" "JVBERi0xLjQKJcOkw7zDtsOfCg==" "attachments: contentBytes"
is "$(curl -sS "${CA[@]}" -o /dev/null -w '%{http_code}' -X DELETE -H "Authorization: Bearer $gat" "$G/$A/messages/$aid")" 204 "delete the attachment message"
code=$(curl -sS "${CA[@]}" -o /dev/null -w '%{http_code}' -X DELETE -H "Authorization: Bearer $gat" "$G/$A/messages/$gid")
is "$code" 204 "Graph DELETE: 204"
out=$(curl -sS "${CA[@]}" --ssl-reqd "imap://127.0.0.1:$WORLD_IMAP_PORT/INBOX" -X 'STATUS INBOX (MESSAGES)' -u "$A:$WORLD_PASS_ALICE" 2>&1)
like "$out" "MESSAGES $na" "deletion over Graph is visible over IMAP"
code=$(curl -sS "${CA[@]}" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $gat" \
    -H 'Content-Type: application/json' "$G/$A/sendMail" --data-binary @- <<EOF
{"message":{"subject":"graph send $tag","body":{"contentType":"Text","content":"hi"},
 "toRecipients":[{"emailAddress":{"address":"$B"}}]},"saveToSentItems":false}
EOF
)
is "$code" 202 "Graph sendMail: 202"
ok "bob receives the Graph message" wait_mailbox_count "$B" $((nb + 2)) 10
# 2 s: three curls (a TLS handshake each) overlap even on a busy machine
# (300 ms did not, with another test beside this one under make check)
world_ctl graph-delay 2000 >/dev/null
for i in 1 2 3; do
	curl -sS "${CA[@]}" -o /dev/null -H "Authorization: Bearer $gat" "$G/$O/mailFolders/inbox/messages" &
done
wait
world_ctl graph-delay 0 >/dev/null
ok "Graph records 3 requests in flight at once for ops" test "$(graph_max_concurrent "$O")" -ge 3
ok "world_ctl graph-fail 429" world_ctl graph-fail 429 1 7
hdr=$(curl -sS "${CA[@]}" -D - -o /dev/null -H "Authorization: Bearer $gat" "$G/$A/mailFolders/inbox/messages")
like "$hdr" '^HTTP/[0-9.]+ 429' "Graph answers 429 on demand"
like "$hdr" 'Retry-After: 7' "with Retry-After"
is "$(graph_count "GET list $A")" $((gl0 + 3)) "Graph list requests counted per mailbox"
is "$(graph_count "GET failed $A")" $((gf0 + 1)) "Graph requests failed on demand counted"
ok "Graph max concurrency per mailbox recorded" test "$(graph_max_concurrent "$A")" -ge 1
ok "token requests counted per client and scope" test "$(token_count "$WORLD_APP_ID" "$WORLD_GRAPH_SCOPE")" -ge 1

# ---------------------------------------------------------------- Cyrus, Courier
for srv in cyrus courier; do
	S=$(echo "$srv" | tr a-z A-Z)
	eval "pw=\$WORLD_${S}_PASS_ALICE imaps=\$WORLD_${S}_IMAPS_PORT imap=\$WORLD_${S}_IMAP_PORT"
	eval "pop3s=\$WORLD_${S}_POP3S_PORT pop3=\$WORLD_${S}_POP3_PORT"
	ok "$srv: IMAP login, implicit TLS" curl -sS "${CA[@]}" --url "imaps://127.0.0.1:$imaps/INBOX" \
	    -u "alice:$pw" -X NOOP
	ok "$srv: IMAP login, STARTTLS" curl -sS "${CA[@]}" --ssl-reqd \
	    --url "imap://127.0.0.1:$imap/INBOX" -u "alice:$pw" -X NOOP
	# (a POP3 LIST: curl waits for a multi-line answer to any -X command)
	ok "$srv: POP3 login, implicit TLS" curl -sS "${CA[@]}" -m 20 --url "pop3s://127.0.0.1:$pop3s/" \
	    -u "alice:$pw"
	ok "$srv: POP3 login, STLS" curl -sS "${CA[@]}" -m 20 --ssl-reqd --url "pop3://127.0.0.1:$pop3/" \
	    -u "alice:$pw"
	fails "$srv: a wrong password is refused" curl -sS "${CA[@]}" \
	    --url "imaps://127.0.0.1:$imaps/INBOX" -u "alice:Wrong-$tag" -X NOOP
	printf 'From: smoke@contoso.test\r\nSubject: smoke %s %s\r\n\r\nhi\r\n' "$srv" "$tag" \
	    >"$tmp/$srv.eml"
	ok "$srv: world deliver" "$MS_WORLD" deliver "$WORLD_DIR" "$srv" bob "$tmp/$srv.eml"
	eval "bpw=\$WORLD_${S}_PASS_BOB"
	like "$(curl -sS "${CA[@]}" --url "imaps://127.0.0.1:$imaps/INBOX" -u "bob:$bpw" \
	    -X "SEARCH SUBJECT \"smoke $srv $tag\"")" '^\* SEARCH [0-9]' "$srv: delivered mail is in bob's INBOX"
done
like "$(curl -sS -v "${CA[@]}" --url "imap://127.0.0.1:$WORLD_CYRUS_IMAP_PORT/" -X NOOP 2>&1)" \
    'LOGINDISABLED' "cyrus: LOGINDISABLED before STARTTLS"
caps=$(curl -sS "${CA[@]}" --url "imaps://127.0.0.1:$WORLD_COURIER_IMAPS_PORT/" \
    -u "alice:$WORLD_COURIER_PASS_ALICE" -X CAPABILITY)
like "$caps" 'UIDPLUS' "courier: UIDPLUS on its usual port"
caps=$(curl -sS "${CA[@]}" --url "imaps://127.0.0.1:$WORLD_COURIER_NOUIDPLUS_PORT/" \
    -u "alice:$WORLD_COURIER_PASS_ALICE" -X CAPABILITY)
like "$caps" 'IMAP4rev1' "courier without UIDPLUS: answers CAPABILITY"
unlike "$caps" 'UIDPLUS' "courier without UIDPLUS: no UIDPLUS"

# ---------------------------------------------------------------- stop
if [ -n "$owned" ]; then
	pids=$(awk '{print $2}' "$owned/pids")
	s=$(date +%s%3N)
	ok "world stop" "$MS_WORLD" stop "$owned"
	took=$(( $(date +%s%3N) - s ))
	ok "world stops in under 5 s ($took ms)" test "$took" -lt 5000
	_world_owned=
	left=""
	for p in $pids; do
		pid_running "$p" && left="$left $p"
	done
	is "$left" "" "no recorded process survives the stop"
	is "$(pgrep -f "$owned" | tr '\n' ' ')" "" "no process mentions the world dir"
	is "$(pgrep -f "msworld-$WORLD_PORT_BASE" | tr '\n' ' ')" "" "no Dovecot process of this instance"
	open=""
	for p in $WORLD_CYRUS_IMAPS_PORT $WORLD_CYRUS_IMAP_PORT $WORLD_CYRUS_POP3S_PORT \
	    $WORLD_CYRUS_POP3_PORT $WORLD_COURIER_IMAPS_PORT $WORLD_COURIER_IMAP_PORT \
	    $WORLD_COURIER_POP3S_PORT $WORLD_COURIER_POP3_PORT $WORLD_COURIER_NOUIDPLUS_PORT; do
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && open="$open $p"
	done
	is "$open" "" "no Cyrus or Courier port answers after the stop"
fi
done_testing
