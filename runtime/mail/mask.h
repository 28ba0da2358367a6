/*
 * mask.h - the incumbent's masks (SubjectLineMask, QualifyingSubjectLine,
 * AttachmentMask): .NET regular expressions, run with PCRE2 in mask.c
 * (PCRE2 types never leave that file).
 *
 * .NET semantics we keep:
 *   - Regex.Match searches anywhere in the subject (not anchored);
 *   - case-sensitive by default; (?i) (?m) (?s) (?x) (?n) inline options;
 *   - \d, \w, \s and \b are Unicode-aware (PCRE2_UTF|PCRE2_UCP), as in .NET
 *     without RegexOptions.ECMAScript;
 *   - (?<name>...) and (?'name'...) named groups, duplicate names allowed;
 *   - group numbering: unnamed groups first, left to right, then named
 *     groups in order of first appearance (.NET's rule, PCRE2 numbers them
 *     all left to right), so [[1]] means what it meant under the incumbent.
 * Not supported (compile fails with MS_ERR_CONFIG): character class
 * subtraction [a-z-[aeiou]], balancing groups (?<a-b>...), numeric group
 * names (?<3>...), \p{IsBlockName}.
 *
 * Every match runs under a match, depth and heap limit so a hostile
 * subject cannot hang the connector: hitting one is an error (-1), never
 * a match.
 *
 * Ownership: mask_compile() gives the caller a struct mask freed with
 * mask_free().  Captures are owned by the struct mask_captures and freed
 * with mask_captures_release().
 */
#ifndef MS_MASK_H
#define MS_MASK_H

#include <stddef.h>
#include "base/err.h"

struct mask;

struct mask_captures {
	char **v;       /* v[0] the whole match, v[1].. groups in .NET order;
			 * a group that did not take part is "" */
	size_t n;       /* number of entries in v (groups + 1) */
};

/* Compile pattern (UTF-8).  An invalid pattern fails with MS_ERR_CONFIG and
 * "invalid regular expression at offset N: <PCRE2 message>"; the caller adds
 * the rule and key name with err_prefix(). */
int mask_compile(struct mask **out, const char *pattern, struct ms_err *err);

/* Search subject.  Returns 1 on a match (filling *caps when caps is not
 * NULL; release it even on 0/-1, it is then empty), 0 on no match, -1 on an
 * error (a resource limit was hit, out of memory). */
int mask_match(const struct mask *m, const char *subject,
	       struct mask_captures *caps);

/* The pattern as given to mask_compile() (borrowed). */
const char *mask_pattern(const struct mask *m);
/* Number of capture groups (not counting the whole match). */
size_t mask_group_count(const struct mask *m);

void mask_captures_release(struct mask_captures *caps);
void mask_free(struct mask *m);

#endif
