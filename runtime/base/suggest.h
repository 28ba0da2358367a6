/*
 * suggest.h - "did you mean ...?": the closest known name to a mistyped
 * one, for INI keys and sections (config.c) and for the command-line
 * options of the four programs (cmdline.c, the tools' getopt tables).
 *
 * Ownership: every string is borrowed; the name a suggestion returns is
 * one of the candidates it was given (so usually static).
 */
#ifndef MS_SUGGEST_H
#define MS_SUGGEST_H

#include <stddef.h>

struct option;   /* <getopt.h> */

/* Damerau-Levenshtein distance (optimal string alignment), case-
 * insensitive; names longer than 63 characters are 99 apart. */
int suggest_distance(const char *a, const char *b);

/* Collecting the closest candidate to one name. */
struct suggest {
	const char *name;    /* the mistyped name (borrowed) */
	const char *best;    /* the closest candidate so far, or NULL */
	int distance;
};

void suggest_init(struct suggest *s, const char *name);
void suggest_consider(struct suggest *s, const char *candidate);
/* Every name of a NULL-terminated list. */
void suggest_consider_list(struct suggest *s, const char *const *names);
/* The closest candidate when it is close enough to be what was meant
 * (within a third of the name's length: 1 to 3 edits), else NULL. */
const char *suggest_result(const struct suggest *s);

/* For getopt_long() (called with opterr = 0) that has just returned '?':
 * the message to print after "PROG: ", e.g. "unknown option '--flet'
 * (did you mean --fleet?)" or "option '--fleet' requires a value".
 * Reads optind and optopt; argv, optstring and longopts as given to
 * getopt_long().  Always terminated. */
void suggest_getopt_error(char *const *argv, const char *optstring,
			  const struct option *longopts, char *out,
			  size_t outsz);

#endif
