/*
 * fleet_paths.c - Windows paths resolved inside the fleet folder: drive
 * letters, %PROGRAMDATA%, 8.3 short names, case-insensitive lookup.
 */
#include "audit/fleet_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/fsutil.h"
#include "base/mem.h"
#include "base/platform.h"

/* Paths. */

const char *fleet_where_name(enum fleet_where w)
{
	switch (w) {
	case FLEET_FOUND: return "found";
	case FLEET_NOT_FOUND: return "not-found";
	case FLEET_AMBIGUOUS: return "ambiguous";
	case FLEET_UNRESOLVED: return "unresolved";
	case FLEET_UNSUPPORTED: return "unsupported";
	}
	return "unknown";
}

void fleet_path_release(struct fleet_path *p)
{
	if (!p)
		return;
	free(p->windows_path);
	free(p->file);
	free(p->rel);
	free(p->detail);
	memset(p, 0, sizeof(*p));
}

/* The 8.3 form of a long name's parts: upper case, blanks and extra dots
 * removed, a few characters replaced by '_'. */
static void short_parts(const char *name, char *base, size_t bsz, char *ext,
			size_t esz)
{
	const char *dot = strrchr(name, '.'), *s;
	size_t k = 0;

	if (dot == name)
		dot = NULL;
	for (s = name; *s && s != dot && k + 1 < bsz; s++) {
		if (*s == ' ' || *s == '.')
			continue;
		base[k++] = strchr("+,;=[]", *s) ? '_' : (char)toupper((unsigned char)*s);
	}
	base[k] = '\0';
	k = 0;
	if (dot)
		for (s = dot + 1; *s && k < 3 && k + 1 < esz; s++) {
			if (*s == ' ')
				continue;
			ext[k++] = strchr("+,;=[]", *s) ? '_' : (char)toupper((unsigned char)*s);
		}
	ext[k] = '\0';
}

/* Parse "PROGRA~1.EXT": prefix, number, extension.  0 if not 8.3-ish. */
static int parse_short(const char *s, char *prefix, size_t psz, long *num,
		       char *ext, size_t esz)
{
	const char *t = strchr(s, '~'), *dot, *p;
	size_t n;

	if (!t || t == s || !isdigit((unsigned char)t[1]))
		return 0;
	n = (size_t)(t - s);
	if (n > 6 || n + 1 > psz)
		return 0;
	for (p = s; p < t; p++)
		prefix[p - s] = (char)toupper((unsigned char)*p);
	prefix[n] = '\0';
	*num = strtol(t + 1, (char **)&p, 10);
	dot = p;
	if (*dot == '.') {
		size_t m = strlen(dot + 1);
		if (m > 3 || m + 1 > esz)
			return 0;
		for (n = 0; n < m; n++)
			ext[n] = (char)toupper((unsigned char)dot[1 + n]);
		ext[m] = '\0';
	} else if (*dot == '\0') {
		ext[0] = '\0';
	} else {
		return 0;
	}
	return 1;
}

int fleet_short_name_matches(const char *shortname, const char *longname)
{
	char prefix[8], sext[4], base[256], lext[4];
	long num;

	if (!parse_short(shortname, prefix, sizeof(prefix), &num, sext, sizeof(sext)))
		return 0;
	short_parts(longname, base, sizeof(base), lext, sizeof(lext));
	return strncmp(base, prefix, strlen(prefix)) == 0 && strcmp(sext, lext) == 0;
}

static int set_str(char **dst, const char *src)
{
	free(*dst);
	*dst = src ? strdup(src) : NULL;
	return src && !*dst ? -1 : 0;
}

static int set_detail(struct fleet_path *p, enum fleet_where w, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int set_detail(struct fleet_path *p, enum fleet_where w, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	p->where = w;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	free(p->detail);
	p->detail = s;
	return s ? 0 : -1;
}

/* Expand %PROGRAMDATA% (and friends with fixed values); 0 when an unknown
 * reference remains. */
static char *expand_known(const char *s, int *unknown)
{
	static const struct { const char *name, *value; } vars[] = {
		{ "PROGRAMDATA", "C:\\ProgramData" },
		{ "ALLUSERSPROFILE", "C:\\ProgramData" },
		{ "SYSTEMDRIVE", "C:" },
		{ "PROGRAMFILES", "C:\\Program Files" },
		{ "PROGRAMFILES(X86)", "C:\\Program Files (x86)" },
		{ "WINDIR", "C:\\Windows" },
		{ "SYSTEMROOT", "C:\\Windows" },
	};
	struct ms_err err = MS_ERR_INIT;
	struct buf b;
	const char *p = s;

	*unknown = 0;
	buf_init(&b, 64 * 1024);
	while (*p) {
		const char *a = strchr(p, '%'), *z;
		size_t i;

		if (!a || !(z = strchr(a + 1, '%'))) {
			buf_appends(&b, p, &err);
			break;
		}
		buf_append(&b, p, (size_t)(a - p), &err);
		for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
			if (strlen(vars[i].name) == (size_t)(z - a - 1) &&
			    strncasecmp(a + 1, vars[i].name, (size_t)(z - a - 1)) == 0)
				break;
		if (i < sizeof(vars) / sizeof(vars[0])) {
			buf_appends(&b, vars[i].value, &err);
		} else {
			*unknown = 1;
			buf_append(&b, a, (size_t)(z - a + 1), &err);
		}
		p = z + 1;
	}
	if (err.code != MS_OK) {
		buf_release(&b);
		return NULL;
	}
	if (!b.data)
		return strdup("");
	return buf_detach(&b, NULL);
}

/* Find name in folder dir case-insensitively (or as an 8.3 short name).
 * Returns 1 found (*match malloc'd), 0 not found, 2 ambiguous (*why). */
static int find_entry(const char *dir, const char *name, char **match,
		      char **why, struct ms_err *err)
{
	struct fleet_dirlist d;
	char prefix[8], sext[4];
	long num = 0;
	size_t i, nexact = 0, nshort = 0, first_exact = 0, first_short = 0;
	struct buf cands;
	int r = 0;

	*match = NULL;
	*why = NULL;
	/* an exact match always wins: no need to list the folder */
	if (!strchr(name, '/') && strcmp(name, ".") && strcmp(name, "..")) {
		char *p = fs_join(dir, name);
		struct stat st;
		int found = p && platform_names_case_sensitive() && lstat(p, &st) == 0;

		free(p);
		if (found) {
			*match = strdup(name);
			return *match ? 1 : err_nomem(err);
		}
	}
	if (fleet_dirlist_read(dir, &d, err) < 0) {
		err_clear(err);
		return 0;
	}
	for (i = 0; i < d.n; i++) {
		if (strcmp(d.names[i], name) == 0) {
			/* an exact match always wins */
			*match = strdup(d.names[i]);
			fleet_dirlist_free(&d);
			return *match ? 1 : err_nomem(err);
		}
		if (strcasecmp(d.names[i], name) == 0) {
			if (!nexact++)
				first_exact = i;
		}
	}
	buf_init(&cands, 64 * 1024);
	if (nexact == 1) {
		*match = strdup(d.names[first_exact]);
		r = 1;
	} else if (nexact > 1) {
		for (i = 0; i < d.n; i++)
			if (strcasecmp(d.names[i], name) == 0)
				buf_appendf(&cands, err, "%s'%s'", cands.len ? ", " : "",
					    d.names[i]);
		r = 2;
	} else if (parse_short(name, prefix, sizeof(prefix), &num, sext, sizeof(sext))) {
		for (i = 0; i < d.n; i++) {
			if (!fleet_short_name_matches(name, d.names[i]))
				continue;
			if (!nshort++)
				first_short = i;
			buf_appendf(&cands, err, "%s'%s'", cands.len ? ", " : "",
				    d.names[i]);
		}
		if (nshort == 1 && num == 1) {
			*match = strdup(d.names[first_short]);
			r = 1;
		} else if (nshort > 0) {
			r = 2;
		}
	}
	if (r == 2) {
		if (nshort == 1)
			*why = strdup(cands.data);
		else
			*why = cands.data ? strdup(cands.data) : NULL;
	}
	buf_release(&cands);
	fleet_dirlist_free(&d);
	if ((r == 1 && !*match) || (r == 2 && !*why))
		return err_nomem(err);
	return r;
}

/* Split a normalised absolute Windows path "X:\a\b" into components,
 * resolving "." and "..".  Returns the count, -1 when out of memory. */
static int path_components(const char *path, char ***out)
{
	char *copy = strdup(path), *tok, *save = NULL, **v = NULL;
	int n = 0, alloc = 0;

	*out = NULL;
	if (!copy)
		return -1;
	for (tok = strtok_r(copy, "\\", &save); tok; tok = strtok_r(NULL, "\\", &save)) {
		if (strcmp(tok, ".") == 0 || !*tok)
			continue;
		if (strcmp(tok, "..") == 0) {
			if (n > 1)
				free(v[--n]);
			continue;
		}
		if (n == alloc) {
			char **nv;
			alloc = alloc ? alloc * 2 : 16;
			if (!(nv = realloc(v, (size_t)alloc * sizeof(*nv))))
				goto nomem;
			v = nv;
		}
		if (!(v[n] = strdup(tok)))
			goto nomem;
		n++;
	}
	free(copy);
	*out = v;
	return n;
nomem:
	while (n > 0)
		free(v[--n]);
	free(v);
	free(copy);
	return -1;
}

static int is_drive_abs(const char *p)
{
	return isalpha((unsigned char)p[0]) && p[1] == ':' &&
	       (p[2] == '\\' || p[2] == '\0');
}

/* '/' as '\' (an export may use either). */
static void backslashes(char *s)
{
	for (; *s; s++)
		if (*s == '/')
			*s = '\\';
}

/* The absolute Windows path of expanded (which may be relative to
 * working_dir) in *abs.  Returns 0, 1 when it has none (p says why), or
 * -1 when out of memory. */
static int absolute_path(const char *expanded, const char *working_dir,
			 struct fleet_path *p, char **abs, struct ms_err *err)
{
	char *wd = NULL;
	int unknown = 0, rc = 1;

	*abs = NULL;
	if (is_drive_abs(expanded)) {
		*abs = strdup(expanded);
		return *abs ? 0 : err_nomem(err);
	}
	if (isalpha((unsigned char)expanded[0]) && expanded[1] == ':') {
		/* "C:x.ini": relative to the drive's current folder; treat
		 * as the drive root */
		if (asprintf(abs, "%c:\\%s", expanded[0], expanded + 2) < 0) {
			*abs = NULL;
			return err_nomem(err);
		}
		return 0;
	}
	if (working_dir && *working_dir) {
		if (!(wd = expand_known(working_dir, &unknown)))
			return err_nomem(err);
		backslashes(wd);
		if (strstr(wd, "[[") || unknown) {
			if (set_str(&p->windows_path, expanded) < 0 ||
			    set_detail(p, FLEET_UNRESOLVED,
				       "relative path '%s' in working directory '%s', "
				       "which holds an unexpanded reference",
				       expanded, wd) < 0)
				rc = err_nomem(err);
			goto out;
		}
	}
	if (!wd || !is_drive_abs(wd)) {
		if (set_str(&p->windows_path, expanded) < 0 ||
		    set_detail(p, FLEET_UNSUPPORTED,
			       "relative path '%s' and no absolute working directory",
			       expanded) < 0)
			rc = err_nomem(err);
		goto out;
	}
	if (asprintf(abs, "%s%s%s", wd, wd[strlen(wd) - 1] == '\\' ? "" : "\\",
		     expanded[0] == '\\' ? expanded + 1 : expanded) < 0) {
		*abs = NULL;
		rc = err_nomem(err);
	} else {
		rc = 0;
	}
out:
	free(wd);
	return rc;
}

/* p->windows_path in canonical Windows form, "X:\a\b". */
static int canonical_path(char **comp, int ncomp, struct fleet_path *p,
			  struct ms_err *err)
{
	struct buf b;
	int i;

	buf_init(&b, 64 * 1024);
	for (i = 0; i < ncomp; i++)
		if (buf_appendf(&b, err, "%s%s", i ? "\\" : "", comp[i]) < 0)
			goto fail;
	if (ncomp == 1 && buf_appends(&b, "\\", err) < 0)
		goto fail;
	if (!(p->windows_path = buf_detach(&b, NULL)))
		return err_nomem(err);
	p->windows_path[0] = (char)toupper((unsigned char)p->windows_path[0]);
	return 0;
fail:
	buf_release(&b);
	return -1;
}

/* The machine's folder under FLEET/machines: *cur (local) and *rel
 * (fleet-relative).  Returns 0, 1 when it is not collected (p says so),
 * or -1. */
static int machine_folder(const char *dir, const char *machine,
			  struct fleet_path *p, char **cur, char **rel,
			  struct ms_err *err)
{
	char *machines = fs_join(dir, "machines"), *m = NULL, *why = NULL;
	int f, rc = 0;

	if (!machines)
		return err_nomem(err);
	f = find_entry(machines, machine && *machine ? machine : "?", &m, &why, err);
	if (f < 0) {
		rc = -1;
	} else if (f != 1) {
		rc = set_detail(p, FLEET_NOT_FOUND,
				"machine '%s' is not collected under machines/",
				machine ? machine : "") < 0 ? err_nomem(err) : 1;
	} else {
		*cur = fs_join(machines, m);
		if (asprintf(rel, "machines/%s", m) < 0)
			*rel = NULL;
		if (!*cur || !*rel)
			rc = err_nomem(err);
	}
	free(why);
	free(m);
	free(machines);
	return rc;
}

/* Down the components from the machine's folder: the drive (also "C$",
 * as copied through the admin share), then each name.  *cur and *rel
 * follow.  Returns 0 when the last is found, 1 when a step failed (p
 * says why), or -1. */
static int walk_components(char **comp, int ncomp, int first,
			   struct fleet_path *p, char **cur, char **rel,
			   struct ms_err *err)
{
	for (int i = first; i < ncomp; i++) {
		char *m = NULL, *why = NULL, *next, *nrel;
		char drive[3] = { comp[0][0], '\0', '\0' };
		int f = find_entry(*cur, i == 0 ? drive : comp[i], &m, &why, err);

		if (i == 0 && f == 0) {
			drive[1] = '$';
			f = find_entry(*cur, drive, &m, &why, err);
			drive[1] = '\0';
		}
		if (f < 0)
			return -1;
		if (f == 0)
			return set_detail(p, FLEET_NOT_FOUND, "'%s' not found in %s/",
					  i == 0 ? drive : comp[i], *rel) < 0 ?
			       err_nomem(err) : 1;
		if (f == 2) {
			int sr = set_detail(p, FLEET_AMBIGUOUS,
					    "'%s' in %s/ could be any of %s",
					    comp[i], *rel, why ? why : "several entries");
			free(why);
			return sr < 0 ? err_nomem(err) : 1;
		}
		next = fs_join(*cur, m);
		nrel = fs_join(*rel, m);
		free(m);
		free(*cur);
		free(*rel);
		*cur = next;
		*rel = nrel;
		if (!*cur || !*rel)
			return err_nomem(err);
	}
	return 0;
}

/* The common case in one stat(): the machine, the drive and every name
 * exactly as the job writes them.  An exact name always wins at each step
 * of machine_folder() and walk_components(), so when that whole path is a
 * file, the walk would end at exactly it.  Sets p->file and p->rel and
 * returns 1 then; 0 when the walk must decide (a name differs in case or
 * is an 8.3 one, the file is missing or a folder, names are not case
 * sensitive here); -1 when out of memory. */
static int exact_path(const char *dir, const char *machine, char **comp,
		      int ncomp, struct fleet_path *p, struct ms_err *err)
{
	char drive[2] = { comp[0][0], '\0' };
	char *cur, *rel = NULL, *next;
	struct stat st;
	int i;

	if (!platform_names_case_sensitive() || !machine || !*machine ||
	    strchr(machine, '/') || strcmp(machine, ".") == 0 ||
	    strcmp(machine, "..") == 0 || ncomp < 2)
		return 0;
	if (!(cur = fs_join(dir, "machines")))
		return err_nomem(err);
	if (asprintf(&rel, "machines/%s", machine) < 0)
		rel = NULL;
	for (i = -1; i < ncomp && rel && cur; i++) {
		const char *nm = i < 0 ? machine : i == 0 ? drive : comp[i];

		next = fs_join(cur, nm);
		free(cur);
		cur = next;
		if (i >= 0) {
			next = fs_join(rel, nm);
			free(rel);
			rel = next;
		}
	}
	if (!cur || !rel) {
		free(cur);
		free(rel);
		return err_nomem(err);
	}
	if (stat(cur, &st) < 0 || S_ISDIR(st.st_mode)) {
		free(cur);
		free(rel);
		return 0;
	}
	p->file = cur;
	p->rel = rel;
	return 1;
}

int fleet_resolve_path(const char *dir, const char *machine,
		       const char *winpath, const char *working_dir,
		       struct fleet_path *p, struct ms_err *err)
{
	char *expanded = NULL, *abs = NULL, *cur = NULL, *rel = NULL;
	char **comp = NULL;
	int ncomp = 0, unknown = 0, i, rc = -1;

	memset(p, 0, sizeof(*p));
	if (!winpath)
		winpath = "";
	if (!(expanded = expand_known(winpath, &unknown)))
		goto nomem;
	backslashes(expanded);
	if (strstr(expanded, "[[") || unknown) {
		if (set_str(&p->windows_path, expanded) < 0 ||
		    set_detail(p, FLEET_UNRESOLVED, "path '%s' holds an unexpanded %s",
			       expanded, strstr(expanded, "[[") ?
			       "[[PROPERTY]] reference" : "%VARIABLE% reference") < 0)
			goto nomem;
		rc = 0;
		goto done;
	}
	if (strncmp(expanded, "\\\\", 2) == 0) {
		if (set_str(&p->windows_path, expanded) < 0 ||
		    set_detail(p, FLEET_UNSUPPORTED,
			       "network path '%s' is not collected in the fleet folder",
			       expanded) < 0)
			goto nomem;
		rc = 0;
		goto done;
	}
	if ((rc = absolute_path(expanded, working_dir, p, &abs, err)) != 0)
		goto done;
	rc = -1;
	if ((ncomp = path_components(abs, &comp)) < 0)
		goto nomem;
	if (canonical_path(comp, ncomp, p, err) < 0)
		goto done;
	if ((rc = exact_path(dir, machine, comp, ncomp, p, err)) != 0) {
		if (rc > 0)
			p->where = FLEET_FOUND;
		goto done;
	}
	if ((rc = machine_folder(dir, machine, p, &cur, &rel, err)) != 0 ||
	    (rc = walk_components(comp, ncomp, 0, p, &cur, &rel, err)) != 0)
		goto done;
	if (fleet_is_dir(cur)) {
		rc = set_detail(p, FLEET_NOT_FOUND, "'%s' is a folder", rel) < 0 ?
		     err_nomem(err) : 0;
		goto done;
	}
	p->where = FLEET_FOUND;
	p->file = cur;
	p->rel = rel;
	cur = rel = NULL;
	rc = 0;
	goto done;
nomem:
	rc = err_nomem(err);
done:
	if (rc > 0)
		rc = 0;         /* decided: p says where the lookup stopped */
	for (i = 0; i < ncomp; i++)
		free(comp[i]);
	free(comp);
	free(expanded);
	free(abs);
	free(cur);
	free(rel);
	if (rc < 0)
		fleet_path_release(p);
	return rc;
}

int fleet_resolve_ini(const char *dir, const char *machine,
		      const char *inifile, const char *working_dir,
		      struct fleet_path *p, struct ms_err *err)
{
	return fleet_resolve_path(dir, machine,
				  inifile && *inifile ? inifile : FLEET_DEFAULT_INI,
				  working_dir, p, err);
}

int fleet_resolve_on_disk(const char *root, const char *winpath,
			  struct fleet_path *p, struct ms_err *err)
{
	char **comp = NULL, *cur = NULL, *rel = NULL;
	int ncomp = 0, i, rc = -1;

	memset(p, 0, sizeof(*p));
	if (!winpath || !is_drive_abs(winpath)) {
		rc = set_str(&p->windows_path, winpath ? winpath : "") < 0 ||
		     set_detail(p, FLEET_UNSUPPORTED, "'%s' is not an absolute path "
				"with a drive letter", winpath ? winpath : "") < 0 ?
		     err_nomem(err) : 0;
		goto done;
	}
	if ((ncomp = path_components(winpath, &comp)) < 0) {
		ncomp = 0;
		rc = err_nomem(err);
		goto done;
	}
	if (canonical_path(comp, ncomp, p, err) < 0)
		goto done;
	/* root: the drives are its folders; else this system's own "C:/" */
	if (root ? !(cur = strdup(root)) || !(rel = strdup("")) :
	    asprintf(&cur, "%c:/", p->windows_path[0]) < 0 ||
	    asprintf(&rel, "%c", p->windows_path[0]) < 0) {
		rc = err_nomem(err);
		goto done;
	}
	if ((rc = walk_components(comp, ncomp, root ? 0 : 1, p, &cur, &rel, err)) != 0)
		goto done;
	if (fleet_is_dir(cur)) {
		rc = set_detail(p, FLEET_NOT_FOUND, "'%s' is a folder", rel) < 0 ?
		     err_nomem(err) : 0;
		goto done;
	}
	p->where = FLEET_FOUND;
	p->file = cur;
	p->rel = rel;
	cur = rel = NULL;
	rc = 0;
done:
	if (rc > 0)
		rc = 0;
	for (i = 0; i < ncomp; i++)
		free(comp[i]);
	free(comp);
	free(cur);
	free(rel);
	if (rc < 0)
		fleet_path_release(p);
	return rc;
}
