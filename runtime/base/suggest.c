/*
 * suggest.c - the closest known name to a mistyped one (see suggest.h).
 */
#include "base/suggest.h"

#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int suggest_distance(const char *a, const char *b)
{
	int d[64][64];
	size_t la = strlen(a), lb = strlen(b), i, j;

	if (la > 63 || lb > 63)
		return 99;
	for (i = 0; i <= la; i++)
		d[i][0] = (int)i;
	for (j = 0; j <= lb; j++)
		d[0][j] = (int)j;
	for (i = 1; i <= la; i++) {
		for (j = 1; j <= lb; j++) {
			int cost = tolower((unsigned char)a[i - 1]) !=
				   tolower((unsigned char)b[j - 1]);
			int v = d[i - 1][j] + 1;

			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < v)
				v = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 &&
			    tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 2]) &&
			    tolower((unsigned char)a[i - 2]) == tolower((unsigned char)b[j - 1]) &&
			    d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[la][lb];
}

void suggest_init(struct suggest *s, const char *name)
{
	s->name = name;
	s->best = NULL;
	s->distance = 99;
}

void suggest_consider(struct suggest *s, const char *candidate)
{
	int d;

	if (!s->name || !candidate)
		return;
	d = suggest_distance(s->name, candidate);
	if (d < s->distance) {
		s->distance = d;
		s->best = candidate;
	}
}

void suggest_consider_list(struct suggest *s, const char *const *names)
{
	for (; names && *names; names++)
		suggest_consider(s, *names);
}

const char *suggest_result(const struct suggest *s)
{
	int limit;

	if (!s->name || !s->best)
		return NULL;
	limit = (int)strlen(s->name) / 3;
	if (limit < 1)
		limit = 1;
	if (limit > 3)
		limit = 3;
	return s->distance <= limit ? s->best : NULL;
}

/* Does the short option c take a value in optstring? -1: not an option. */
static int short_takes_value(const char *optstring, int c)
{
	const char *p;

	if (c == ':' || c == '+' || c == '-' || !(p = strchr(optstring, c)))
		return -1;
	return p[1] == ':';
}

void suggest_getopt_error(char *const *argv, const char *optstring,
			  const struct option *longopts, char *out,
			  size_t outsz)
{
	const char *arg = optind > 0 ? argv[optind - 1] : NULL;
	const struct option *lo;
	struct suggest s;
	char name[64];
	size_t n;

	if (!arg || arg[0] != '-') {
		/* a short option inside a group ("-qx"): optopt is the letter */
		snprintf(out, outsz, "unknown option '-%c'", optopt ? optopt : '?');
		return;
	}
	if (arg[1] != '-') {
		if (arg[2] == '\0' && short_takes_value(optstring, arg[1]) == 1)
			snprintf(out, outsz, "option '%s' requires a value", arg);
		else
			snprintf(out, outsz, "unknown option '-%c'",
				 optopt ? optopt : arg[1]);
		return;
	}
	n = strcspn(arg + 2, "=");
	snprintf(name, sizeof(name), "%.*s", (int)(n > 60 ? 60 : n), arg + 2);
	for (lo = longopts; lo && lo->name; lo++) {
		if (strcmp(lo->name, name) != 0)
			continue;
		if (arg[2 + n] == '=' && lo->has_arg == no_argument)
			snprintf(out, outsz, "option '--%s' takes no value", name);
		else
			snprintf(out, outsz, "option '--%s' requires a value", name);
		return;
	}
	suggest_init(&s, name);
	for (lo = longopts; lo && lo->name; lo++)
		suggest_consider(&s, lo->name);
	if (suggest_result(&s))
		snprintf(out, outsz, "unknown option '--%s' (did you mean --%s?)", name,
			 suggest_result(&s));
	else
		snprintf(out, outsz, "unknown option '--%s'", name);
}
