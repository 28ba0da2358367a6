/*
 * fleetdir.c - the fleet folder's machines/ tree: Windows paths and the
 * INI inventory (fleetdir.h).
 */
#include "base/fleetdir.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/fsutil.h"
#include "base/platform.h"
#include "base/mem.h"

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void fleet_dirlist_free(struct fleet_dirlist *d)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		free(d->names[i]);
	free(d->names);
	d->names = NULL;
	d->n = 0;
}

int fleet_dirlist_read(const char *path, struct fleet_dirlist *d, struct ms_err *err)
{
	DIR *dp;
	struct dirent *de;
	size_t alloc = 0;

	d->names = NULL;
	d->n = 0;
	if (!(dp = opendir(path)))
		return err_set(err, MS_ERR_IO, "cannot open folder '%s': %s", path,
			       strerror(errno));
	while ((de = readdir(dp))) {
		if (de->d_name[0] == '.')
			continue;
		size_t len = strlen(de->d_name);

		if (MEM_GROW(d->names, alloc, d->n + 1, NULL))
			goto nomem;
		/* the entry's type (platform_dirent_type) rides after the
		 * name's NUL, so it follows the name through the sort
		 * (fleet_dirlist_dir()) */
		if (!(d->names[d->n] = malloc(len + 2)))
			goto nomem;
		memcpy(d->names[d->n], de->d_name, len + 1);
		d->names[d->n][len + 1] = (char)platform_dirent_type(de);
		d->n++;
	}
	closedir(dp);
	if (d->n)
		qsort(d->names, d->n, sizeof(*d->names), cmp_str);
	return 0;
nomem:
	closedir(dp);
	fleet_dirlist_free(d);
	return err_nomem(err);
}

int fleet_dirlist_dir(const struct fleet_dirlist *d, size_t i, const char *path)
{
	const char *nm = d->names[i];

	switch ((enum platform_ent)nm[strlen(nm) + 1]) {
	case PLATFORM_ENT_DIR:
		return 1;
	case PLATFORM_ENT_UNKNOWN:
		break;
	case PLATFORM_ENT_LINK:
		return fleet_is_dir(path) ? 2 : 0;
	default:
		return 0;
	}
	if (!fleet_is_dir(path))
		return 0;
	return fleet_is_symlink(path) ? 2 : 1;
}

int fleet_is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int fleet_not_a_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && !S_ISREG(st.st_mode);
}

int fleet_is_symlink(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
}

int fleet_ends_with_ci(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

/* INI inventory. */

struct inilist {
	struct fleet_ini *v;
	size_t n, alloc;
};

/* The drive folder of a machine: "D", or "D$" (copied through the admin
 * share). */
static int is_drive_folder(const char *nm, size_t len)
{
	return isalpha((unsigned char)nm[0]) &&
	       (len == 1 || (len == 2 && nm[1] == '$'));
}

char *fleet_windows_path(const char *rel, char **machine)
{
	const char *m, *drv, *rest;
	char *w, *c;

	if (machine)
		*machine = NULL;
	if (strncmp(rel, "machines/", 9) != 0 || !(drv = strchr(m = rel + 9, '/')))
		return NULL;
	drv++;
	rest = drv + strcspn(drv, "/");
	if (!*rest || !is_drive_folder(drv, (size_t)(rest - drv)))
		return NULL;
	if (asprintf(&w, "%c:%s", toupper((unsigned char)*drv), rest) < 0)
		return NULL;
	for (c = w; *c; c++)
		if (*c == '/')
			*c = '\\';
	if (machine && !(*machine = strndup(m, (size_t)(drv - 1 - m)))) {
		free(w);
		return NULL;
	}
	return w;
}

static int inis_walk(const char *path, const char *rel, const char *machine,
		     const char *winpath, int depth, struct inilist *l,
		     struct ms_err *err)
{
	struct fleet_dirlist d;
	size_t i;
	int rc = 0;

	if (depth > FLEET_MAX_DEPTH)
		return 0;
	if (fleet_dirlist_read(path, &d, err) < 0) {
		err_clear(err);
		return 0;
	}
	for (i = 0; i < d.n && rc == 0; i++) {
		char *p = fs_join(path, d.names[i]), *r = fs_join(rel, d.names[i]);
		char *w = NULL;
		int kind;

		if (!p || !r)
			goto nomem;
		if (!winpath) {
			const char *nm = d.names[i];
			int drv = is_drive_folder(nm, strlen(nm));
			if (drv ? asprintf(&w, "%c:", toupper((unsigned char)nm[0])) < 0 :
				  asprintf(&w, "%s", nm) < 0)
				w = NULL;
		} else if (asprintf(&w, "%s\\%s", winpath, d.names[i]) < 0) {
			w = NULL;
		}
		if (!w)
			goto nomem;
		if ((kind = fleet_dirlist_dir(&d, i, p))) {
			if (kind == 1)
				rc = inis_walk(p, r, machine, w, depth + 1, l, err);
		} else if (winpath && fleet_ends_with_ci(d.names[i], ".ini")) {
			struct fleet_ini *fi;
			if (MEM_GROW(l->v, l->alloc, l->n + 1, NULL))
				goto nomem;
			fi = &l->v[l->n];
			fi->machine = strdup(machine);
			fi->windows_path = w;
			fi->file = p;
			fi->rel = r;
			w = p = r = NULL;
			l->n++;
			if (!fi->machine)
				goto nomem;
		}
		free(p);
		free(r);
		free(w);
		continue;
nomem:
		free(p);
		free(r);
		free(w);
		rc = err_nomem(err);
	}
	fleet_dirlist_free(&d);
	return rc;
}

static int cmp_ini(const void *a, const void *b)
{
	const struct fleet_ini *x = a, *y = b;
	int c = strcasecmp(x->machine, y->machine);

	if (c)
		return c;
	c = strcasecmp(x->windows_path, y->windows_path);
	return c ? c : strcmp(x->rel, y->rel);
}

int fleet_list_inis(const char *dir, struct fleet_ini **out, size_t *n,
		    struct ms_err *err)
{
	struct inilist l = { NULL, 0, 0 };
	struct fleet_dirlist d;
	char *machines;
	size_t i;
	int rc = 0;

	*out = NULL;
	*n = 0;
	if (!(machines = fs_join(dir, "machines")))
		return err_nomem(err);
	if (!fleet_is_dir(machines)) {
		free(machines);
		return 0;
	}
	if (fleet_dirlist_read(machines, &d, err) < 0) {
		free(machines);
		return -1;
	}
	for (i = 0; i < d.n && rc == 0; i++) {
		char *p = fs_join(machines, d.names[i]), *r = NULL;

		if (p && fleet_dirlist_dir(&d, i, p) && asprintf(&r, "machines/%s", d.names[i]) >= 0)
			rc = inis_walk(p, r, d.names[i], NULL, 0, &l, err);
		free(p);
		free(r);
	}
	fleet_dirlist_free(&d);
	free(machines);
	if (rc < 0) {
		fleet_inis_free(l.v, l.n);
		return -1;
	}
	if (l.n)
		qsort(l.v, l.n, sizeof(*l.v), cmp_ini);
	*out = l.v;
	*n = l.n;
	return 0;
}

void fleet_inis_free(struct fleet_ini *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i].machine);
		free(v[i].windows_path);
		free(v[i].file);
		free(v[i].rel);
	}
	free(v);
}
