#!/bin/bash
# The house plan (issue 17, docs/architecture.md), checked on the sources:
# every #include "layer/x.h" in runtime/ and tools/ goes down the layers,
#   base < mail < transport < auth < ini < connector, audit, migrate, verify
# and no file is over 1,200 lines.  A layer of the library may include
# itself and the layers before it in that order (auth uses transport/http
# for the token service; ini/profile fills transport's and auth's
# parameter structs; ini/rules runs mail/mask on a mail/message).  Then:
#   engines    connector, audit, migrate, verify: the layers below, never
#              each other except verify -> connector, migrate -> audit, and
#              verify -> migrate/migrate.h (migrate's database, read only
#              through its API)
#   programs   runtime/main.c (the connector), tools/NAME/*: the layers below
#              the engines, and the one engine they drive
# A header without a folder ("mailbox_int.h") is its own folder's.
# Today's violations that are being fixed are listed in tests/layers.allow
# (printed as TODO); anything else fails, and so does a stale allow line.
# The checker is also run on a scratch tree with one violation of each
# kind, to show it fails.
. "$(dirname "$0")/../lib/test-lib.sh"
MAX_LINES=1200

# violations ROOT: one line per violation, in the allow-list's words
violations() {
	(
		cd "$1" || exit 2
		files=$(find runtime tools -type f \( -name '*.c' -o -name '*.h' \) 2>/dev/null | LC_ALL=C sort)
		[ -n "$files" ] || { echo "no sources under $1" >&2; exit 2; }
		# shellcheck disable=SC2086
		awk -v max="$MAX_LINES" '
		function allowed(src, file, inc,   tgt, order, r) {
			tgt = inc; sub(/\/.*/, "", tgt)
			order = " base mail transport auth ini "
			if (index(order, " " tgt " ")) {
				if (!index(order, " " src " ")) return 1   # an engine or a program
				# a layer: itself or one before it
				r = index(order, " " src " ")
				return index(order, " " tgt " ") <= r
			}
			if (src == "connector") return tgt == "connector"
			if (src == "audit")     return tgt == "audit"
			if (src == "migrate")   return tgt == "migrate" || tgt == "audit"
			if (src == "verify")    return tgt == "verify" || tgt == "connector" || inc == "migrate/migrate.h"
			if (src ~ /^program:/)  return "program:" tgt == src
			return 0
		}
		FNR == 1 {
			if (prev != "" && lines > max) print prev " is over " max " lines"
			prev = FILENAME; lines = 0
			n = split(FILENAME, p, "/")
			if (p[1] == "tools")                 src = "program:" p[2]
			else if (FILENAME == "runtime/main.c") src = "program:connector"
			else if (n == 2)                     src = "unknown"
			else                                 src = p[2]
		}
		{ lines++ }
		/^[ \t]*#[ \t]*include[ \t]*"/ {
			inc = $0
			sub(/^[^"]*"/, "", inc); sub(/".*/, "", inc)
			if (inc !~ /\//) next          # its own folder
			if (src == "unknown" || !allowed(src, FILENAME, inc))
				print FILENAME " includes " inc
		}
		END { if (prev != "" && lines > max) print prev " is over " max " lines" }
		' $files
	)
}

# the allow-list without comments and reasons
allow=$MS_TOP/tests/layers.allow
sed -n 's/^\([^#][^:]*\): .*/\1/p' "$allow" | LC_ALL=C sort >"$T/allowed"
reason() { grep -F "$1: " "$allow" | head -n 1 | sed 's/^[^:]*: //'; }

violations "$MS_TOP" >"$T/found"
rc=$?
is "$rc" 0 "the checker reads runtime/ and tools/"
ok "runtime/ and tools/ hold sources" [ "$(find "$MS_TOP/runtime" -name '*.c' | wc -l)" -gt 10 ]
LC_ALL=C sort -o "$T/found" "$T/found"

# a violation that is allowed: a TODO; one that is not: a failure
while IFS= read -r v; do
	if grep -qxF "$v" "$T/allowed"; then
		_tap_n=$((_tap_n + 1))
		echo "not ok $_tap_n - $v # TODO $(reason "$v")"
	else
		ok "$v (not in tests/layers.allow)" false
	fi
done <"$T/found"
new=$(LC_ALL=C comm -23 "$T/found" "$T/allowed" | wc -l)
is "$new" 0 "no layer violation outside tests/layers.allow"
stale=$(LC_ALL=C comm -13 "$T/found" "$T/allowed")
is "$stale" "" "every line of tests/layers.allow is still needed (delete those that are not)"

# ---- the checker fails for a new violation (a scratch tree) -------------
S=$T/scratch
mkdir -p "$S/runtime/base" "$S/runtime/ini" "$S/runtime/auth" "$S/runtime/mail" \
	"$S/runtime/transport/mailbox" "$S/runtime/connector" "$S/runtime/audit" \
	"$S/runtime/migrate" "$S/runtime/verify" "$S/tools/audit"
inc() { printf '#include "%s"\n' "${@:2}" >"$S/$1"; }
inc runtime/base/err.c base/err.h stdio_like.h
inc runtime/mail/message.c base/buf.h mail/message.h
inc runtime/transport/http.c base/buf.h transport/http.h
inc runtime/transport/mailbox/mailbox.c mail/message.h transport/http.h mailbox_int.h
inc runtime/auth/oauth.c base/err.h transport/http.h auth/oauth.h
inc runtime/ini/rules.c ini/config.h mail/mask.h ini/rules.h
inc runtime/ini/profile.c auth/oauth.h transport/mailbox/mailbox.h ini/profile.h
inc runtime/connector/connector.c transport/mailbox/mailbox.h ini/ini.h
inc runtime/migrate/migrate.c audit/fleet.h
inc runtime/verify/verify.c connector/connector.h
inc runtime/verify/verify_db.c migrate/migrate.h
inc tools/audit/main.c audit/analysis.h base/err.h
inc runtime/main.c connector/connector.h ini/cmdline.h
is "$(violations "$S")" "" "scratch tree that keeps the rules: no violation"

# each line: FILE HEADER, a violation the checker must name
while read -r f h; do
	cp -a "$S" "$T/bad"
	printf '#include "%s"\n' "$h" >>"$T/bad/$f"
	is "$(violations "$T/bad")" "$f includes $h" "caught: $f including $h"
	rm -rf "$T/bad"
done <<'EOF'
runtime/base/err.c ini/ini.h
runtime/mail/message.c transport/http.h
runtime/transport/http.c auth/oauth.h
runtime/transport/mailbox/mailbox.c ini/config.h
runtime/auth/oauth.c ini/config.h
runtime/ini/rules.c connector/connector.h
runtime/connector/connector.c verify/verify.h
runtime/audit/analysis.c migrate/migrate.h
runtime/migrate/migrate.c verify/verify.h
runtime/verify/verify.c audit/analysis.h
runtime/verify/verify_db.c migrate/migrate_int.h
tools/audit/main.c migrate/migrate.h
runtime/main.c audit/fleet.h
EOF
cp -a "$S" "$T/bad"
seq 1 $((MAX_LINES + 1)) | sed 's|^|// |' >>"$T/bad/runtime/ini/rules.c"
is "$(violations "$T/bad")" "runtime/ini/rules.c is over $MAX_LINES lines" \
	"caught: a file of $((MAX_LINES + 4)) lines"
rm -rf "$T/bad"
cp -a "$S" "$T/bad"
seq 1 $((MAX_LINES - 3)) | sed 's|^|// |' >>"$T/bad/runtime/ini/rules.c"
is "$(violations "$T/bad")" "" "a file of exactly $MAX_LINES lines is fine"

done_testing
