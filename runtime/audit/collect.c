/*
 * collect.c - mailshift-audit collect, on the agent: the files of a
 * manifest copied into the share, the machine's folder replaced whole,
 * and a receipt (collect.h; formats in docs/fleet.md).
 *
 * Only paths named in the manifest are ever opened (folders on their way
 * are listed, to match names as Windows does); a file that cannot be had
 * is reported in the receipt, and the job goes on with the next.
 */
#include "audit/collect.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "audit/fleet.h"
#include "base/digest.h"
#include "base/fsutil.h"
#include "base/mem.h"
#include "base/platform.h"

const char *collect_status_name(enum collect_status s)
{
	static const char *const names[COLLECT_STATUS_COUNT] = {
		"copied", "missing", "ambiguous", "unreadable", "unresolved"
	};
	return (unsigned)s < COLLECT_STATUS_COUNT ? names[s] : "unknown";
}

void collect_result_release(struct collect_result *r)
{
	free(r->machine);
	free(r->receipt);
	memset(r, 0, sizeof(*r));
}

/* A machine name that is one plain folder name. */
static int machine_name_ok(const char *m)
{
	size_t n = strlen(m);

	return n > 0 && n < 256 && strcmp(m, ".") && strcmp(m, "..") && m[0] != '.' &&
	       !strpbrk(m, "/\\:*?\"<>|");
}

/* rm -r of a folder we built (never follows a link out of it). */
static int remove_tree(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	int rc = 0;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlink(path);
	if (!(d = opendir(path)))
		return -1;
	while ((de = readdir(d))) {
		char *p;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!(p = fs_join(path, de->d_name))) {
			rc = -1;
			break;
		}
		if (remove_tree(p) < 0)
			rc = -1;
		free(p);
	}
	closedir(d);
	return rmdir(path) < 0 ? -1 : rc;
}

/* Earlier collections of this machine that died half-way. */
static void remove_stale(const char *machines, const char *machine)
{
	DIR *d = opendir(machines);
	struct dirent *de;
	size_t n = strlen(machine);

	if (!d)
		return;
	while ((de = readdir(d))) {
		char *p;

		if (de->d_name[0] != '.' || strncmp(de->d_name + 1, machine, n) ||
		    strncmp(de->d_name + 1 + n, ".collect.", 9))
			continue;
		if ((p = fs_join(machines, de->d_name))) {
			remove_tree(p);
			free(p);
		}
	}
	closedir(d);
}

struct cctx {
	const struct collect_opts *o;
	struct collect_result *r;
	const char *tmp;          /* the machine's new folder, being built */
	cJSON *files;             /* receipt entries */
};

static const char *jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Write data to dir/rel (rel with '/'), creating its folders. */
static int put_file(const char *dir, const char *rel, const char *data, size_t len,
		    struct ms_err *err)
{
	char *path = fs_join(dir, rel), *slash;
	int rc = -1;

	if (!path)
		return err_nomem(err);
	if ((slash = strrchr(path, '/')) && slash > path + strlen(dir)) {
		*slash = '\0';
		rc = fs_mkdirs(path, 0755, err);
		*slash = '/';
		if (rc < 0)
			goto out;
	}
	rc = fs_write_atomic_nodirsync(path, data, len, 0644, err);
out:
	free(path);
	return rc;
}

/* A certificate file may hold the private key too (PEM "key + cert"): the
 * share gets the certificates only, which is all the audit reads (their
 * expiry dates).  Rewrites data in place; *why when nothing can be sent. */
static void certificates_only(char *data, size_t *len, int *stripped,
			      const char **why)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----";
	static const char end[] = "-----END CERTIFICATE-----";
	char *r = data, *w = data, *b, *e;

	*stripped = 0;
	if (!memmem(data, *len, "-----BEGIN ", 11)) {
		/* DER: a certificate alone (.cer, .crt, .der); anything else
		 * (.pfx, .p12) carries a key */
		*why = "not a PEM file: not copied, since it may hold a private key";
		return;
	}
	while ((b = memmem(r, *len - (size_t)(r - data), begin, sizeof(begin) - 1)) &&
	       (e = memmem(b, *len - (size_t)(b - data), end, sizeof(end) - 1))) {
		size_t n;

		e += sizeof(end) - 1;
		if (e < data + *len && *e == '\r')
			e++;
		if (e < data + *len && *e == '\n')
			e++;
		if (b != r)
			*stripped = 1;
		n = (size_t)(e - b);
		memmove(w, b, n);
		w += n;
		r = e;
	}
	if (r != data + *len)
		*stripped = 1;
	/* what is cut off may be a key: wipe it */
	mem_wipe(w, *len - (size_t)(w - data));
	*len = (size_t)(w - data);
	if (!*len)
		*why = "no certificate in the file: nothing copied";
}

/* One manifest entry: resolve, read, copy; its receipt entry. */
static int collect_one(struct cctx *c, const cJSON *f, struct ms_err *err)
{
	const char *path = jstr(f, "path"), *kind = jstr(f, "kind");
	const char *unresolved = jstr(f, "unresolved");
	struct fleet_path fp;
	struct ms_err lerr = MS_ERR_INIT;
	enum collect_status st;
	char *data = NULL, *dest = NULL, *shown = NULL, *longp = NULL, hex[65];
	const char *why = NULL;
	size_t len = 0;
	cJSON *e;
	int rc = -1;

	memset(&fp, 0, sizeof(fp));
	if (!path)
		path = "";
	if (!(e = cJSON_CreateObject()) || !cJSON_AddItemToArray(c->files, e) ||
	    !cJSON_AddStringToObject(e, "path", path) ||
	    !cJSON_AddStringToObject(e, "kind", kind ? kind : "ini"))
		goto nomem;
	if (unresolved) {
		st = COLLECT_UNRESOLVED;
		why = unresolved;
		goto record;
	}
	/* on Windows the file system knows the real short names: its
	 * answer wins over matching names (which stays for Wine, whose
	 * short names are hashes, and for disk images) */
	if (!c->o->root) {
		int lr = platform_long_path(path, &longp);
		if (lr < 0)
			goto nomem;
	}
	if (fleet_resolve_on_disk(c->o->root, longp ? longp : path, &fp, err) < 0)
		goto done;
	switch (fp.where) {
	case FLEET_FOUND: break;
	case FLEET_AMBIGUOUS: st = COLLECT_AMBIGUOUS; why = fp.detail; goto record;
	case FLEET_NOT_FOUND: st = COLLECT_MISSING; why = fp.detail; goto record;
	default: st = COLLECT_UNRESOLVED; why = fp.detail; goto record;
	}
	if (fs_read_file(fp.file, COLLECT_MAX_FILE, &data, &len, &lerr) < 0) {
		if (lerr.code == MS_ERR_NOMEM)
			goto nomem;
		st = COLLECT_UNREADABLE;
		why = lerr.msg;
		goto record;
	}
	if (kind && strcmp(kind, "certificate") == 0) {
		int stripped = 0;
		size_t was = len;

		certificates_only(data, &len, &stripped, &why);
		if (why) {
			len = was;
			st = COLLECT_UNREADABLE;
			goto record;
		}
		if (stripped && !cJSON_AddBoolToObject(e, "certificates_only", 1))
			goto nomem;
	}
	if (kind && strcmp(kind, "notify") == 0) {
		/* the notification export goes where the audit reads it */
		const char *base = strrchr(fp.rel, '/');

		if (asprintf(&shown, "notify/%s-%s", c->r->machine,
			     base ? base + 1 : fp.rel) < 0) {
			shown = NULL;
			goto nomem;
		}
		if (put_file(c->o->share, shown, data, len, err) < 0)
			goto done;
	} else {
		/* the drive folder as a capital letter, whatever the disk
		 * image calls it ("c", "C$") */
		const char *rest = strchr(fp.rel, '/');

		if (asprintf(&dest, "%c%s", fp.windows_path[0], rest ? rest : "") < 0) {
			dest = NULL;
			goto nomem;
		}
		if (put_file(c->tmp, dest, data, len, err) < 0)
			goto done;
		if (asprintf(&shown, "machines/%s/%s", c->r->machine, dest) < 0) {
			shown = NULL;
			goto nomem;
		}
	}
	digest_sha256_hex(data, len, hex);
	st = COLLECT_COPIED;
	if (!cJSON_AddStringToObject(e, "file", shown) ||
	    !cJSON_AddNumberToObject(e, "size", (double)len) ||
	    !cJSON_AddStringToObject(e, "sha256", hex))
		goto nomem;
record:
	c->r->counts[st]++;
	if (!cJSON_AddStringToObject(e, "status", collect_status_name(st)) ||
	    (why && !cJSON_AddStringToObject(e, "why", why)))
		goto nomem;
	rc = 0;
	goto done;
nomem:
	rc = err_nomem(err);
done:
	/* an INI file may hold a literal password: no copy left in memory */
	if (data)
		mem_wipe(data, len);
	free(data);
	free(dest);
	free(shown);
	free(longp);
	fleet_path_release(&fp);
	return rc;
}

static int read_manifest(const char *file, cJSON **doc, struct ms_err *err)
{
	char *text = NULL;
	size_t len = 0;
	const char *what;

	*doc = NULL;
	if (fs_read_file(file, COLLECT_MAX_MANIFEST, &text, &len, err) < 0)
		return -1;
	*doc = cJSON_ParseWithLength(text, len);
	free(text);
	if (!*doc)
		return err_set(err, MS_ERR_DATA, "'%s' is not JSON", file);
	what = jstr(*doc, "mailshift");
	if (!what || strcmp(what, "collect-manifest") ||
	    !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(*doc, "files"))) {
		cJSON_Delete(*doc);
		*doc = NULL;
		return err_set(err, MS_ERR_DATA, "'%s' is not a collect manifest "
			       "(mailshift-audit collect-plan writes them)", file);
	}
	return 0;
}

static int machine_name(const struct collect_opts *o, char **out, struct ms_err *err)
{
	char host[256];
	const char *m = o->machine;

	if (!m || !*m)
		m = getenv("COMPUTERNAME");
	if (!m || !*m) {
		if (platform_host_name(host, sizeof(host)) < 0)
			return err_set(err, MS_ERR_IO, "cannot tell this machine's name: %s "
				       "(give --machine)", strerror(errno));
		m = host;
	}
	if (!machine_name_ok(m))
		return err_set(err, MS_ERR_USAGE, "machine name '%s' cannot be a folder "
			       "name", m);
	return (*out = strdup(m)) ? 0 : err_nomem(err);
}

static int write_receipt(struct cctx *c, const cJSON *manifest, time_t started,
			 struct ms_err *err)
{
	cJSON *doc = cJSON_CreateObject(), *counts;
	char when[32], *text = NULL, *dir = NULL, *name = NULL;
	const char *mm = jstr(manifest, "machine");
	struct tm tm;
	int s, rc = -1;

	gmtime_r(&started, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!doc || !cJSON_AddStringToObject(doc, "mailshift", "collect-receipt") ||
	    !cJSON_AddNumberToObject(doc, "version", 1) ||
	    !cJSON_AddStringToObject(doc, "machine", c->r->machine) ||
	    !cJSON_AddStringToObject(doc, "manifest_machine", mm ? mm : "") ||
	    !cJSON_AddStringToObject(doc, "manifest", c->o->manifest) ||
	    !cJSON_AddStringToObject(doc, "collected", when) ||
	    !(counts = cJSON_AddObjectToObject(doc, "counts")))
		goto nomem;
	for (s = 0; s < COLLECT_STATUS_COUNT; s++)
		if (!cJSON_AddNumberToObject(counts, collect_status_name(s),
					     (double)c->r->counts[s]))
			goto nomem;
	cJSON_AddItemReferenceToObject(doc, "files", c->files);
	if (!(text = cJSON_Print(doc)) || asprintf(&name, "%s.json", c->r->machine) < 0 ||
	    asprintf(&dir, "%s/collect/receipts", c->o->share) < 0 ||
	    !(c->r->receipt = fs_join(dir, name)))
		goto nomem;
	if (fs_mkdirs(dir, 0755, err) < 0)
		goto done;
	rc = fs_write_atomic(c->r->receipt, text, strlen(text), 0644, err);
	goto done;
nomem:
	rc = err_nomem(err);
done:
	cJSON_Delete(doc);
	free(text);
	free(dir);
	free(name);
	return rc;
}

int collect_run(const struct collect_opts *o, struct collect_result *r,
		struct ms_err *err)
{
	struct cctx c;
	cJSON *manifest = NULL, *f;
	char *machines = NULL, *final = NULL, *tmp = NULL, *tname = NULL;
	const char *mm;
	time_t started = time(NULL);
	int rc = -1;

	memset(r, 0, sizeof(*r));
	memset(&c, 0, sizeof(c));
	c.o = o;
	c.r = r;
	if (!o->manifest || !o->share)
		return err_set(err, MS_ERR_USAGE, "--manifest and --out are required");
	if (read_manifest(o->manifest, &manifest, err) < 0 ||
	    machine_name(o, &r->machine, err) < 0)
		goto done;
	mm = jstr(manifest, "machine");
	r->machine_differs = mm && strcasecmp(mm, r->machine) != 0;
	if (!(machines = fs_join(o->share, "machines")) ||
	    !(final = fs_join(machines, r->machine)) ||
	    asprintf(&tname, ".%s.collect.%ld.%ld", r->machine, (long)getpid(),
		     (long)started) < 0 || !(tmp = fs_join(machines, tname)) ||
	    !(c.files = cJSON_CreateArray()))
		goto nomem;
	c.tmp = tmp;
	remove_stale(machines, r->machine);
	if (fs_mkdirs(tmp, 0755, err) < 0)
		goto done;
	cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(manifest, "files"))
		if (collect_one(&c, f, err) < 0)
			goto done;
	/* everything durable before the swap makes it the machine's folder */
	if (platform_sync_fs(tmp, err) < 0)
		goto done;
	if (platform_swap_dir(tmp, final) < 0) {
		err_set(err, MS_ERR_IO, "cannot put '%s' in place of '%s': %s", tmp, final,
			strerror(errno));
		goto done;
	}
	/* tmp now holds the previous collection (or nothing) */
	remove_tree(tmp);
	if (fs_fsync_dir(machines, err) < 0 || write_receipt(&c, manifest, started, err) < 0)
		goto done;
	rc = 0;
	goto done;
nomem:
	rc = err_nomem(err);
done:
	if (rc < 0 && tmp)
		remove_tree(tmp);
	cJSON_Delete(manifest);
	cJSON_Delete(c.files);
	free(machines);
	free(final);
	free(tmp);
	free(tname);
	if (rc < 0)
		collect_result_release(r);
	return rc;
}
