/*
 * deploy.c - mailshift-migrate deploy, on the agent: a packet's files
 * replaced (or, with --rollback, restored) only where the bytes are the
 * ones the run expects, and a receipt; and the receipts read back for
 * mailshift-migrate status (deploy.h; formats in docs/fleet.md).
 *
 * Each file is decided by its SHA-256 alone, so a deploy can be run again
 * (a file already deployed is simply reported deployed) and never
 * overwrites a change made on the machine after the collection.
 */
#include "migrate/deploy.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cJSON.h>
#include <openssl/evp.h>

#include "audit/collect.h"
#include "audit/fleet.h"
#include "base/digest.h"
#include "base/buf.h"
#include "base/fleetdir.h"
#include "base/fsutil.h"
#include "base/mem.h"
#include "base/platform.h"
#include "migrate/migrate.h"

#define INI_MAX ((size_t)64 * 1024 * 1024)

const char *deploy_state_name(enum deploy_state s)
{
	static const char *const names[DEPLOY_STATE_COUNT] = {
		"deployed", "rolled-back", "conflict", "missing", "failed"
	};
	return (unsigned)s < DEPLOY_STATE_COUNT ? names[s] : "unknown";
}

void deploy_result_release(struct deploy_result *r)
{
	free(r->machine);
	free(r->receipt);
	memset(r, 0, sizeof(*r));
}

static const char *jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* base64 (no line breaks) -> bytes; -1 when it is not base64. */
static int b64_decode(const char *s, char **out, size_t *len)
{
	size_t n = strlen(s), pad = 0;
	int k;

	*out = NULL;
	if (n % 4)
		return -1;
	if (n && s[n - 1] == '=')
		pad++;
	if (n > 1 && s[n - 2] == '=')
		pad++;
	if (!(*out = malloc(n / 4 * 3 + 1)))
		return -1;
	if ((k = EVP_DecodeBlock((unsigned char *)*out, (const unsigned char *)s,
				 (int)n)) < 0) {
		free(*out);
		*out = NULL;
		return -1;
	}
	*len = (size_t)k - pad;
	return 0;
}

struct file_outcome {
	enum deploy_state state;
	const char *why;          /* static or in whybuf */
	char whybuf[MS_ERR_MSG_MAX];
	char before[65], after[65];
};

/* Write data over path atomically, keeping its mode. */
static int replace_file(const char *path, const char *data, size_t len,
			struct ms_err *err)
{
	return fs_write_atomic(path, data, len, 0644, err);
}

/* Deploy (or roll back) one file whose current bytes are cur. */
static void decide(const struct deploy_opts *o, const char *file, const char *cur,
		   size_t curlen, const char *collected, const char *newsha,
		   const char *newb, size_t newlen, struct file_outcome *fo)
{
	struct ms_err lerr = MS_ERR_INIT;
	char *orig = NULL, *origpath = NULL;
	size_t origlen = 0;
	char h[65];

	digest_sha256_hex(cur, curlen, fo->before);
	strcpy(fo->after, fo->before);
	if (asprintf(&origpath, "%s%s", file, DEPLOY_ORIG_SUFFIX) < 0) {
		origpath = NULL;
		fo->state = DEPLOY_FAILED;
		fo->why = "out of memory";
		return;
	}
	if (!o->rollback) {
		if (strcmp(fo->before, newsha) == 0) {
			fo->state = DEPLOY_DEPLOYED;
			fo->why = "already deployed";
		} else if (strcmp(fo->before, collected) != 0) {
			fo->state = DEPLOY_CONFLICT;
			fo->why = "changed on this machine since it was collected: left alone";
		} else if (fs_write_atomic(origpath, cur, curlen, 0600, &lerr) < 0 ||
			   replace_file(file, newb, newlen, &lerr) < 0) {
			fo->state = DEPLOY_FAILED;
		} else {
			fo->state = DEPLOY_DEPLOYED;
			strcpy(fo->after, newsha);
		}
		goto out;
	}
	if (strcmp(fo->before, collected) == 0) {
		fo->state = DEPLOY_ROLLED_BACK;
		fo->why = "already the original";
		remove(origpath);
		goto out;
	}
	if (strcmp(fo->before, newsha) != 0) {
		fo->state = DEPLOY_CONFLICT;
		fo->why = "changed on this machine since it was deployed: left alone";
		goto out;
	}
	if (fs_read_file(origpath, INI_MAX, &orig, &origlen, &lerr) < 0) {
		fo->state = DEPLOY_FAILED;
		goto out;
	}
	digest_sha256_hex(orig, origlen, h);
	if (strcmp(h, collected) != 0) {
		fo->state = DEPLOY_CONFLICT;
		fo->why = DEPLOY_ORIG_SUFFIX " is not the collected original: left alone";
	} else if (replace_file(file, orig, origlen, &lerr) < 0) {
		fo->state = DEPLOY_FAILED;
	} else {
		fo->state = DEPLOY_ROLLED_BACK;
		strcpy(fo->after, collected);
		remove(origpath);
	}
out:
	if (fo->state == DEPLOY_FAILED && !fo->why) {
		snprintf(fo->whybuf, sizeof(fo->whybuf), "%s", lerr.msg);
		fo->why = fo->whybuf;
	}
	if (orig)
		mem_wipe(orig, origlen);
	free(orig);
	free(origpath);
}

/* One packet entry: find the file, decide, its receipt entry. */
static int deploy_one(const struct deploy_opts *o, const cJSON *f, cJSON *files,
		      struct deploy_result *r, struct ms_err *err)
{
	struct ms_err lerr = MS_ERR_INIT;
	const char *path = jstr(f, "path"), *collected = jstr(f, "collected_sha256");
	const char *newsha = jstr(f, "new_sha256"), *b64 = jstr(f, "new_base64");
	struct file_outcome fo;
	struct fleet_path fp;
	char *cur = NULL, *newb = NULL, h[65];
	size_t curlen = 0, newlen = 0;
	cJSON *e;
	int rc = -1;

	memset(&fo, 0, sizeof(fo));
	memset(&fp, 0, sizeof(fp));
	if (!(e = cJSON_CreateObject()) || !cJSON_AddItemToArray(files, e) ||
	    !cJSON_AddStringToObject(e, "path", path ? path : ""))
		goto nomem;
	if (!path || !collected || !newsha || !b64 || b64_decode(b64, &newb, &newlen) < 0) {
		fo.state = DEPLOY_FAILED;
		fo.why = "malformed packet entry";
		goto record;
	}
	digest_sha256_hex(newb, newlen, h);
	if (strcmp(h, newsha) != 0) {
		fo.state = DEPLOY_FAILED;
		fo.why = "the packet's bytes do not match its new_sha256";
		goto record;
	}
	if (fleet_resolve_on_disk(o->root, path, &fp, err) < 0)
		goto done;
	if (fp.where != FLEET_FOUND) {
		fo.state = DEPLOY_MISSING;
		fo.why = fp.detail ? fp.detail : "not found";
		goto record;
	}
	/* what a deploy killed while writing it (or its original) left */
	fs_clean_dead_temps_of(fp.file, DEPLOY_ORIG_SUFFIX);
	if (fs_read_file(fp.file, INI_MAX, &cur, &curlen, &lerr) < 0) {
		fo.state = DEPLOY_FAILED;
		snprintf(fo.whybuf, sizeof(fo.whybuf), "%s", lerr.msg);
		fo.why = fo.whybuf;
		goto record;
	}
	decide(o, fp.file, cur, curlen, collected, newsha, newb, newlen, &fo);
	if (!cJSON_AddStringToObject(e, "sha256_before", fo.before) ||
	    !cJSON_AddStringToObject(e, "sha256_after", fo.after))
		goto nomem;
record:
	r->counts[fo.state]++;
	if (!cJSON_AddStringToObject(e, "status", deploy_state_name(fo.state)) ||
	    (fo.why && !cJSON_AddStringToObject(e, "why", fo.why)))
		goto nomem;
	rc = 0;
	goto done;
nomem:
	rc = err_nomem(err);
done:
	if (cur)
		mem_wipe(cur, curlen);
	if (newb)
		mem_wipe(newb, newlen);
	free(cur);
	free(newb);
	fleet_path_release(&fp);
	return rc;
}

/* PACKETS/M.json -> PACKETS/../receipts/M[.rollback].json */
static char *receipt_path(const struct deploy_opts *o, const char *machine)
{
	char *dir, *out = NULL;
	const char *sep;

	if (o->receipt)
		return strdup(o->receipt);
	if (!(dir = strdup(o->packet)))
		return NULL;
	/* the packet's folder, then its parent */
	for (int up = 0; up < 2; up++) {
		sep = platform_last_sep(dir);
		if (!sep) {
			strcpy(dir, up ? "." : "..");
			break;
		}
		dir[sep - dir] = '\0';
	}
	if (asprintf(&out, "%s/receipts/%s%s.json", dir, machine,
		     o->rollback ? ".rollback" : "") < 0)
		out = NULL;
	free(dir);
	return out;
}

static int read_packet(const char *file, cJSON **doc, struct ms_err *err)
{
	char *text = NULL;
	size_t len = 0;
	const char *what;

	*doc = NULL;
	if (fs_read_file(file, DEPLOY_MAX_PACKET, &text, &len, err) < 0)
		return -1;
	*doc = cJSON_ParseWithLength(text, len);
	mem_wipe(text, len);
	free(text);
	if (!*doc)
		return err_set(err, MS_ERR_DATA, "'%s' is not JSON", file);
	what = jstr(*doc, "mailshift");
	if (!what || strcmp(what, "deploy-packet") || !jstr(*doc, "machine") ||
	    !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(*doc, "files"))) {
		cJSON_Delete(*doc);
		*doc = NULL;
		return err_set(err, MS_ERR_DATA, "'%s' is not a deploy packet "
			       "(mailshift-migrate deploy-plan writes them)", file);
	}
	return 0;
}

int deploy_run(const struct deploy_opts *o, struct deploy_result *r,
	       struct ms_err *err)
{
	cJSON *packet = NULL, *receipt = NULL, *files, *counts, *f, *run;
	char when[32], *text = NULL;
	time_t now = time(NULL);
	struct tm tm;
	int s, rc = -1;

	memset(r, 0, sizeof(*r));
	if (!o->packet)
		return err_set(err, MS_ERR_USAGE, "--packet is required");
	if (read_packet(o->packet, &packet, err) < 0)
		return -1;
	if (!(r->machine = strdup(jstr(packet, "machine"))) ||
	    !(r->receipt = receipt_path(o, r->machine)) ||
	    !(receipt = cJSON_CreateObject()) ||
	    !cJSON_AddStringToObject(receipt, "mailshift", "deploy-receipt") ||
	    !cJSON_AddNumberToObject(receipt, "version", 1))
		goto nomem;
	run = cJSON_GetObjectItemCaseSensitive(packet, "run");
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!cJSON_AddNumberToObject(receipt, "run", cJSON_IsNumber(run) ? run->valuedouble : 0) ||
	    !cJSON_AddStringToObject(receipt, "machine", r->machine) ||
	    !cJSON_AddBoolToObject(receipt, "rollback", o->rollback) ||
	    !cJSON_AddStringToObject(receipt, "when", when) ||
	    !(counts = cJSON_AddObjectToObject(receipt, "counts")) ||
	    !(files = cJSON_AddArrayToObject(receipt, "files")))
		goto nomem;
	cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(packet, "files"))
		if (deploy_one(o, f, files, r, err) < 0)
			goto done;
	for (s = 0; s < DEPLOY_STATE_COUNT; s++)
		if (!cJSON_AddNumberToObject(counts, deploy_state_name(s), (double)r->counts[s]))
			goto nomem;
	if (!(text = cJSON_Print(receipt)))
		goto nomem;
	rc = collect_write_json(r->receipt, text, 0, err);
	goto done;
nomem:
	rc = err_nomem(err);
done:
	free(text);
	cJSON_Delete(receipt);
	cJSON_Delete(packet);
	if (rc < 0)
		deploy_result_release(r);
	return rc;
}

/* Status: per packet, its receipts. */

static int read_counts(const char *file, size_t *counts, char *when, size_t wsz)
{
	char *text = NULL;
	size_t len = 0;
	struct ms_err lerr = MS_ERR_INIT;
	cJSON *doc, *c;
	int s;

	if (fs_read_file(file, (size_t)16 * 1024 * 1024, &text, &len, &lerr) < 0)
		return -1;
	doc = cJSON_ParseWithLength(text, len);
	free(text);
	if (!doc)
		return -1;
	c = cJSON_GetObjectItemCaseSensitive(doc, "counts");
	for (s = 0; s < DEPLOY_STATE_COUNT; s++) {
		cJSON *v = cJSON_GetObjectItemCaseSensitive(c, deploy_state_name(s));
		counts[s] = cJSON_IsNumber(v) ? (size_t)v->valuedouble : 0;
	}
	snprintf(when, wsz, "%s", jstr(doc, "when") ? jstr(doc, "when") : "");
	cJSON_Delete(doc);
	return 0;
}

static int status_line(struct buf *b, const char *dir, const char *machine,
		       size_t *unsettled, struct ms_err *err)
{
	static const char *const kinds[2] = { "", ".rollback" };
	size_t counts[DEPLOY_STATE_COUNT];
	char when[32], *file = NULL;
	int k, s, any = 0, bad = 0;

	if (buf_appendf(b, err, "  %s:", machine) < 0)
		return -1;
	for (k = 0; k < 2; k++) {
		if (asprintf(&file, "%s/receipts/%s%s.json", dir, machine, kinds[k]) < 0)
			return err_nomem(err);
		if (read_counts(file, counts, when, sizeof(when)) == 0) {
			int first = 1;
			if (buf_appendf(b, err, " %s %s", k ? "rollback" : "deploy", when) < 0) {
				free(file);
				return -1;
			}
			for (s = 0; s < DEPLOY_STATE_COUNT; s++) {
				if (!counts[s])
					continue;
				if (buf_appendf(b, err, "%s %zu %s", first ? "" : ",", counts[s],
						deploy_state_name(s)) < 0) {
					free(file);
					return -1;
				}
				first = 0;
			}
			if (counts[DEPLOY_CONFLICT] || counts[DEPLOY_FAILED] ||
			    counts[DEPLOY_MISSING])
				bad = 1;
			if (!k && buf_appends(b, ";", err) < 0) {
				free(file);
				return -1;
			}
			any = 1;
		}
		free(file);
		file = NULL;
	}
	if (!any && buf_appends(b, " no receipt yet", err) < 0)
		return -1;
	if (!any || bad)
		(*unsettled)++;
	return buf_appends(b, "\n", err);
}

int deploy_status(const char *fleet_dir, const char *out_dir, int run,
		  char **text, size_t *unsettled, struct ms_err *err)
{
	struct fleet_dirlist d;
	struct buf b;
	char *dir = NULL, *pdir = NULL;
	size_t i;
	int rc = -1;

	*text = NULL;
	*unsettled = 0;
	if (asprintf(&dir, "%s/deploy/run-%d", out_dir ? out_dir : fleet_dir, run) < 0)
		return err_nomem(err);
	if (!(pdir = fs_join(dir, "packets"))) {
		free(dir);
		return err_nomem(err);
	}
	if (fleet_dirlist_read(pdir, &d, err) < 0) {
		err_clear(err);      /* no deploy-plan for this run: nothing to say */
		free(dir);
		free(pdir);
		return 0;
	}
	buf_init(&b, BUF_DEFAULT_CAP);
	if (buf_appendf(&b, err, "deployment (%s):\n", dir) < 0)
		goto done;
	for (i = 0; i < d.n; i++) {
		char *m;

		if (!fleet_ends_with_ci(d.names[i], ".json"))
			continue;
		if (!(m = strndup(d.names[i], strlen(d.names[i]) - 5))) {
			err_nomem(err);
			goto done;
		}
		rc = status_line(&b, dir, m, unsettled, err);
		free(m);
		if (rc < 0)
			goto done;
		rc = -1;
	}
	*text = buf_detach(&b, NULL);
	rc = *text ? 0 : err_nomem(err);
done:
	buf_release(&b);
	fleet_dirlist_free(&d);
	free(dir);
	free(pdir);
	return rc;
}
