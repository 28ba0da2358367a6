/*
 * migrate.c - the mailshift-migrate engine: plan, apply, status, rollback
 * over a SQLite state database (see migrate.h for the guarantees).
 */
#include "migrate/migrate_int.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <sqlite3.h>

#include "audit/analysis.h"
#include "ini/cmdline.h"
#include "audit/fleet.h"
#include "base/fsutil.h"
#include "ini/ini.h"
#include "base/paths.h"
#include "base/sqldb.h"
#include "auth/seal.h"

#define EXPORT_MAX ((size_t)1024 * 1024 * 1024)
#define BATCH 256

static int nomem(struct ms_err *err)
{
	return err_set(err, MS_ERR_NOMEM, "out of memory");
}

static void outf(const struct migrate_opts *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void outf(const struct migrate_opts *o, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	if (!o->out)
		return;
	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n >= 0) {
		o->out(s, (size_t)n, o->out_ctx);
		free(s);
	}
}

static const char *const item_state_names[] = {
	[MI_NONE] = "", [MI_PLANNED] = "planned", [MI_APPLYING] = "applying",
	[MI_APPLIED] = "applied", [MI_SKIPPED] = "skipped",
	[MI_CONFLICT] = "conflict", [MI_FAILED] = "failed",
	[MI_ROLLED_BACK] = "rolled-back",
};

static const char *const job_action_names[] = {
	[MJ_UNSET] = "none", [MJ_NONE] = "none", [MJ_CHANGE] = "change",
	[MJ_MANUAL] = "manual", [MJ_SKIPPED] = "skipped",
};

const char *migrate_item_state_name(enum migrate_item_state s)
{
	return item_state_names[s];
}

const char *migrate_job_action_name(enum migrate_job_action a)
{
	return job_action_names[a];
}

int migrate_item_state_parse(const char *name, enum migrate_item_state *s)
{
	for (int i = MI_PLANNED; i <= MI_ROLLED_BACK; i++)
		if (strcmp(name, item_state_names[i]) == 0) {
			*s = (enum migrate_item_state)i;
			return 0;
		}
	return -1;
}

int migrate_job_action_parse(const char *name, enum migrate_job_action *a)
{
	for (int i = MJ_NONE; i <= MJ_SKIPPED; i++)
		if (strcmp(name, job_action_names[i]) == 0) {
			*a = (enum migrate_job_action)i;
			return 0;
		}
	return -1;
}

int migrate_result_exit(const struct migrate_result *r)
{
	return r->skipped || r->failed || r->conflict || r->broken ||
	       (r->manual && !r->manual_expected) ? 1 : 0;
}

/* The state database. */

struct mdb {
	sqlite3 *db;
	char *path;
	struct seal_key *key;     /* the machine key, loaded when needed */
};

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);"
	"INSERT OR IGNORE INTO meta VALUES ('schema', '1');"
	"CREATE TABLE IF NOT EXISTS runs ("
	" id INTEGER PRIMARY KEY, created INTEGER NOT NULL, fleet TEXT NOT NULL,"
	" transport TEXT NOT NULL, state TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS items ("
	" run INTEGER NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,"
	" path TEXT NOT NULL, machine TEXT NOT NULL, jobs TEXT NOT NULL,"
	" state TEXT NOT NULL, reason TEXT, written INTEGER NOT NULL DEFAULT 0,"
	" orig BLOB, orig_sha TEXT, new BLOB, new_sha TEXT, seal TEXT,"
	" updated INTEGER NOT NULL, PRIMARY KEY (run, seq));"
	"CREATE TABLE IF NOT EXISTS jobs ("
	" run INTEGER NOT NULL, seq INTEGER NOT NULL, schedule TEXT NOT NULL,"
	" job TEXT NOT NULL, machine TEXT NOT NULL, source TEXT NOT NULL,"
	" ini_item INTEGER, export_item INTEGER, action TEXT NOT NULL,"
	" old_cmd TEXT, new_cmd TEXT, note TEXT, PRIMARY KEY (run, seq));";

static int db_fail(struct mdb *d, struct ms_err *err, const char *what)
{
	int code = sqlite3_errcode(d->db);

	if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
		return err_set(err, MS_ERR_BUSY, "state database '%s' is in use by "
			       "another mailshift-migrate process", d->path);
	return err_set(err, MS_ERR_IO, "state database '%s': %s: %s", d->path, what,
		       sqlite3_errmsg(d->db));
}

static int db_exec(struct mdb *d, const char *sql, struct ms_err *err)
{
	if (sqlite3_exec(d->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(d, err, "query failed");
	return 0;
}

static void db_close(struct mdb *d)
{
	if (!d)
		return;
	sqldb_close(d->db);
	seal_key_free(d->key);
	free(d->path);
	free(d);
}

/* File contents (the originals hold passwords) are stored sealed with the
 * machine key; only their SHA-256 hashes are in clear.  plan creates the
 * key when there is none; apply (resuming) and rollback need the key the
 * run was sealed with. */
static int db_key(struct mdb *d, int create, struct ms_err *err)
{
	char *kf = NULL;
	int rc = 0;

	if (d->key)
		return 0;
	if (!create) {
		if (paths_key_file(&kf, err) < 0)
			return -1;
		if (!fs_exists(kf))
			rc = err_set(err, MS_ERR_CONFIG, "machine key file '%s' does not "
				     "exist: the file contents in state database '%s' are "
				     "sealed with the machine key of the account that planned "
				     "the run (set MAILSHIFT_HOME or MAILSHIFT_KEY_FILE to it)",
				     kf, d->path);
		free(kf);
		if (rc < 0)
			return -1;
	}
	return seal_key_load(&d->key, create, err);
}

static void blob_aad(char *aad, size_t sz, int run, int seq, const char *col)
{
	snprintf(aad, sz, "mailshift-migrate run %d item %d %s", run, seq, col);
}

/* Seal file bytes for an items row; *out is malloc'd. */
static int blob_seal(struct mdb *d, int run, int seq, const char *col,
		     const char *data, size_t len, unsigned char **out,
		     size_t *outlen, struct ms_err *err)
{
	char aad[96];

	blob_aad(aad, sizeof(aad), run, seq, col);
	return seal_bytes(d->key, data, len, aad, strlen(aad), out, outlen, err);
}

static void wipe_bytes(char *p, size_t len)
{
	if (p) {
		OPENSSL_cleanse(p, len);
		free(p);
	}
}

/* Returns 0, -1, or 1 when create is 0 and there is no database yet. */
static int db_open(struct mdb **out, const struct migrate_opts *o, int create,
		   struct ms_err *err)
{
	struct mdb *d;
	int rc;

	*out = NULL;
	if (!(d = calloc(1, sizeof(*d))))
		return nomem(err);
	if (o->state_path)
		d->path = strdup(o->state_path);
	else
		d->path = fs_join(o->fleet_dir, MIGRATE_DEFAULT_DB);
	if (!d->path) {
		free(d);
		return nomem(err);
	}
	/* One exclusive lock held until close (SQLDB_EXCLUSIVE): a second
	 * process gets "in use" at once instead of interleaving with us. */
	rc = sqldb_open(&d->db, d->path, "state database",
			create ? SQLDB_CREATE | SQLDB_EXCLUSIVE : SQLDB_EXCLUSIVE, err);
	if (rc == 1) {
		db_close(d);
		return 1;
	}
	if (rc < 0) {
		if (err->code == MS_ERR_BUSY) {
			err_clear(err);
			err_set(err, MS_ERR_BUSY, "state database '%s' is in use by "
				"another mailshift-migrate process", d->path);
		}
		goto fail;
	}
	if (db_exec(d, "BEGIN EXCLUSIVE;", err) < 0)
		goto fail;
	if (db_exec(d, schema, err) < 0 || db_exec(d, "COMMIT;", err) < 0) {
		sqlite3_exec(d->db, "ROLLBACK;", NULL, NULL, NULL);
		goto fail;
	}
	*out = d;
	return 0;
fail:
	db_close(d);
	return -1;
}

static int db_prepare(struct mdb *d, sqlite3_stmt **st, const char *sql,
		      struct ms_err *err)
{
	if (sqlite3_prepare_v2(d->db, sql, -1, st, NULL) != SQLITE_OK)
		return db_fail(d, err, "prepare");
	return 0;
}

static char *col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return strdup(t ? (const char *)t : "");
}

/* The fleet scan. */

struct mjob {
	struct job_verdict v;
	char *raw_cmd;            /* may hold a literal password: wiped */
	char *user_opt;           /* -user: of the command line */
	int ini_item;             /* seq of its INI item, 0 = none */
	int export_item;
	enum migrate_job_action action;
	char *new_cmd;
	char *note;
	unsigned flags;
};

struct scan {
	const struct analysis_opts *ao;
	struct mjob *jobs;
	size_t n, alloc;
};

static void wipe_free(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

static void mjobs_free(struct mjob *j, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		job_verdict_release(&j[i].v);
		wipe_free(j[i].raw_cmd);
		wipe_free(j[i].user_opt);
		wipe_free(j[i].new_cmd);
		free(j[i].note);
	}
	free(j);
}

static int on_job(const struct fleet_job *job, void *ctx, struct ms_err *err)
{
	struct scan *s = ctx;
	struct mjob *m;

	if (!analysis_is_connector_job(job))
		return 0;
	if (s->n == s->alloc) {
		struct mjob *nj;
		size_t na = s->alloc ? s->alloc * 2 : 32;
		if (!(nj = realloc(s->jobs, na * sizeof(*nj))))
			return nomem(err);
		s->jobs = nj;
		s->alloc = na;
	}
	m = &s->jobs[s->n];
	memset(m, 0, sizeof(*m));
	if (analysis_job(s->ao, job, &m->v, err) < 0)
		return -1;
	s->n++;
	/* exports spell one machine "winapp01" here and "WINAPP01" there:
	 * Windows names are case-insensitive, so one case, everywhere */
	for (char *c = m->v.machine; c && *c; c++)
		*c = (char)toupper((unsigned char)*c);
	if (!(m->raw_cmd = strdup(job->command_line)))
		return nomem(err);
	{
		struct ms_err lerr = MS_ERR_INIT;
		struct cmdline_job cj;
		struct connector_opts co;

		memset(&co, 0, sizeof(co));
		if (cmdline_job_parse(job->command_line, &cj, &lerr) == 0) {
			if (cj.exe >= 0 &&
			    cmdline_parse_connector_ex(cj.end - cj.exe, cj.argv + cj.exe,
						       CMDLINE_ALLOW_PROPERTIES, &co,
						       &lerr) == 0 && co.user &&
			    !(m->user_opt = strdup(co.user))) {
				cmdline_opts_release(&co);
				cmdline_job_release(&cj);
				return nomem(err);
			}
			cmdline_opts_release(&co);
			cmdline_job_release(&cj);
		}
	}
	return 0;
}

static int cmp_mjob(const void *x, const void *y)
{
	const struct job_verdict *a = &((const struct mjob *)x)->v;
	const struct job_verdict *b = &((const struct mjob *)y)->v;
	int c;

	if ((c = strcasecmp(a->machine, b->machine)) ||
	    (c = strcasecmp(a->schedule, b->schedule)) ||
	    (c = strcasecmp(a->job, b->job)) || (c = strcmp(a->source, b->source)))
		return c;
	return (a->source_line > b->source_line) - (a->source_line < b->source_line);
}

static int scan_fleet(const struct migrate_opts *o, struct scan *s,
		      struct ms_err *err)
{
	struct analysis_opts ao;
	struct fleet_handlers h;

	memset(&ao, 0, sizeof(ao));
	ao.fleet_dir = o->fleet_dir;
	ao.now = o->now;
	memset(s, 0, sizeof(*s));
	s->ao = &ao;
	memset(&h, 0, sizeof(h));
	h.job = on_job;
	h.problem = NULL;
	h.ctx = s;
	if (fleet_scan(o->fleet_dir, &h, err) < 0) {
		mjobs_free(s->jobs, s->n);
		memset(s, 0, sizeof(*s));
		return -1;
	}
	s->ao = NULL;
	if (s->n)
		qsort(s->jobs, s->n, sizeof(*s->jobs), cmp_mjob);
	return 0;
}

/* Planning. */

struct pitem {
	const char *kind;         /* "ini" or "export" */
	char *path;               /* fleet-relative */
	char *machine;
	char *jobs;
	enum migrate_item_state state;   /* MI_PLANNED or MI_SKIPPED */
	char *reason;
	char *orig, *new;
	size_t orig_len, new_len;
	char *seal;               /* "TENANT\nCLIENT" when sealing at apply */
};

struct plan {
	struct pitem *items;
	size_t n, alloc;
	struct scan s;
};

static void plan_free(struct plan *p)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		struct pitem *it = &p->items[i];
		free(it->path);
		free(it->machine);
		free(it->jobs);
		free(it->reason);
		wipe_bytes(it->orig, it->orig_len);
		wipe_bytes(it->new, it->new_len);
		free(it->seal);
	}
	free(p->items);
	mjobs_free(p->s.jobs, p->s.n);
	memset(p, 0, sizeof(*p));
}

static struct pitem *plan_add(struct plan *p, struct ms_err *err)
{
	if (p->n == p->alloc) {
		struct pitem *ni;
		size_t na = p->alloc ? p->alloc * 2 : 16;
		if (!(ni = realloc(p->items, na * sizeof(*ni)))) {
			nomem(err);
			return NULL;
		}
		p->items = ni;
		p->alloc = na;
	}
	memset(&p->items[p->n], 0, sizeof(p->items[0]));
	return &p->items[p->n++];
}

static int needs_ini_change(const struct mjob *j)
{
	return j->v.ini_file && (j->v.status == STATUS_NEEDS_MIGRATION ||
				 j->v.status == STATUS_AT_RISK);
}

/* Jobs indexed by a key (INI file, export source), then by position: the
 * jobs of one file are one run of the sorted array, in the order of
 * p->s.jobs, so planning never scans every job for every file. */
struct jref {
	const char *key;
	size_t i;
};

static int cmp_jref(const void *x, const void *y)
{
	const struct jref *a = x, *b = y;
	int c = strcmp(a->key, b->key);

	return c ? c : (a->i > b->i) - (a->i < b->i);
}

static int skip(struct pitem *it, struct ms_err *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int skip(struct pitem *it, struct ms_err *err, const char *fmt, ...)
{
	va_list ap;
	int n;

	it->state = MI_SKIPPED;
	free(it->reason);
	va_start(ap, fmt);
	n = vasprintf(&it->reason, fmt, ap);
	va_end(ap);
	if (n < 0) {
		it->reason = NULL;
		return nomem(err);
	}
	return 0;
}

static int job_list(struct plan *p, const struct jref *g, size_t ng, int seq,
		    struct pitem *it, struct ms_err *err)
{
	struct buf b;
	size_t i;

	buf_init(&b, BUF_DEFAULT_CAP);
	for (i = 0; i < ng; i++) {
		struct mjob *j = &p->s.jobs[g[i].i];
		j->ini_item = seq;
		if (!it->machine && !(it->machine = strdup(j->v.machine)))
			goto fail;
		if (buf_appendf(&b, err, "%s%s/%s (%s)", b.len ? ", " : "",
				j->v.schedule, j->v.job, j->v.machine) < 0)
			goto fail;
	}
	if (!(it->jobs = buf_detach(&b, NULL)) && !(it->jobs = strdup("")))
		return nomem(err);
	return 0;
fail:
	buf_release(&b);
	return err->code ? -1 : nomem(err);
}

static int plan_ini(const struct migrate_opts *o, const struct migrate_map *map,
		    struct plan *p, const char *ini_file, int seq,
		    const struct jref *g, size_t ng, struct ms_err *err)
{
	struct ms_err lerr = MS_ERR_INIT;
	struct migrate_tenant_view tv;
	struct migrate_target t;
	struct ini *ini = NULL;
	struct pitem *it;
	const char *local = NULL;
	char *user = NULL, *file = NULL;
	const char *mailbox = NULL, *written_mailbox = NULL;
	size_t i;
	int rc = -1, was_cp1252 = 0;

	if (!(it = plan_add(p, err)))
		return -1;
	it->kind = "ini";
	it->state = MI_PLANNED;
	if (!(it->path = strdup(ini_file)) || job_list(p, g, ng, seq, it, err) < 0)
		return err->code ? -1 : nomem(err);
	for (i = 0; i < ng; i++)
		if (p->s.jobs[g[i].i].v.ini_local) {
			local = p->s.jobs[g[i].i].v.ini_local;
			break;
		}
	if (!(file = fs_join(o->fleet_dir, ini_file)))
		return nomem(err);
	if (fs_read_file(local ? local : file, INI_MAX_FILE, &it->orig, &it->orig_len,
			 &lerr) < 0) {
		rc = skip(it, err, "cannot read: %s", lerr.msg);
		goto done;
	}
	if (ini_parse_any(&ini, ini_file, it->orig, it->orig_len, &was_cp1252,
			  &lerr) < 0 || ini_check(ini, &lerr) < 0) {
		rc = skip(it, err, "%s", lerr.msg);
		goto done;
	}
	user = ini_get(ini, "Mail", "User") ? ini_unquote(ini_get(ini, "Mail", "User")) :
	       NULL;
	if (user && user[0] && !config_is_unset(user)) {
		mailbox = user;
	} else {
		for (i = 0; i < ng; i++) {
			const struct mjob *j = &p->s.jobs[g[i].i];
			if (j->user_opt && strchr(j->user_opt, '@') &&
			    !cmdline_has_property(j->user_opt)) {
				mailbox = written_mailbox = j->user_opt;
				break;
			}
		}
	}
	if (!mailbox || !strchr(mailbox, '@')) {
		rc = skip(it, err, "no mailbox address ([Mail] User or -user:) to match "
			  "a tenant");
		goto done;
	}
	if (migrate_map_find(map, mailbox, &tv) < 0) {
		rc = skip(it, err, "no tenant in the mapping file for domain '%s'",
			  strrchr(mailbox, '@') + 1);
		goto done;
	}
	if (tv.secret_expires) {
		char today[16];
		time_t now = o->now ? o->now : time(NULL);
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(today, sizeof(today), "%Y-%m-%d", &tm);
		if (strcmp(tv.secret_expires, today) < 0) {
			rc = skip(it, err, "the client secret of tenant %s expired on %s",
				  tv.tenant_id, tv.secret_expires);
			goto done;
		}
	}
	memset(&t, 0, sizeof(t));
	t.transport = migrate_map_transport(map);
	t.authority = tv.authority;
	t.tenant_id = tv.tenant_id;
	t.client_id = tv.client_id;
	t.client_secret = tv.secret_literal ? MIGRATE_SEALED_PLACEHOLDER :
			  tv.client_secret;
	t.certificate_file = tv.certificate_file;
	t.mailbox = written_mailbox;
	t.graph_endpoint = tv.graph_endpoint;
	t.ca_file = tv.ca_file;
	t.server = tv.server;
	t.port = tv.port;
	t.notify = tv.notify;
	if (migrate_rewrite_ini(ini_file, it->orig, it->orig_len, &t, &it->new,
				&it->new_len, &lerr) < 0) {
		if (lerr.code == MS_ERR_NOMEM)
			goto nomem;
		rc = skip(it, err, "%s", lerr.msg);
		goto done;
	}
	if (tv.secret_literal &&
	    asprintf(&it->seal, "%s\n%s", tv.tenant_id, tv.client_id) < 0) {
		it->seal = NULL;
		goto nomem;
	}
	if (it->new_len == it->orig_len && memcmp(it->new, it->orig, it->new_len) == 0)
		rc = skip(it, err, "already migrated");
	else
		rc = 0;
	goto done;
nomem:
	rc = nomem(err);
done:
	ini_free(ini);
	free(user);
	free(file);
	return rc;
}

static int plan_jobs(const struct migrate_map *map, struct plan *p,
		     struct ms_err *err)
{
	size_t i;

	for (i = 0; i < p->s.n; i++) {
		struct mjob *j = &p->s.jobs[i];
		struct pitem *it;

		if (!j->ini_item)
			continue;
		it = &p->items[j->ini_item - 1];
		if (it->state != MI_PLANNED) {
			j->action = MJ_SKIPPED;
			if (!(j->note = strdup(it->reason ? it->reason : "")))
				return nomem(err);
			continue;
		}
		if (migrate_rewrite_command(j->raw_cmd, migrate_map_connector(map),
					    &j->new_cmd, &j->flags, err) < 0)
			return -1;
		if (j->flags & MIGRATE_CMD_KEEPALIVE) {
			j->action = MJ_MANUAL;
			j->note = strdup("token keep-alive job for the incumbent's MSAL mode: "
					 "disable it after the cutover");
		} else if (j->flags & MIGRATE_CMD_UNLOCATED) {
			j->action = MJ_MANUAL;
			j->note = strdup("the connector could not be located in the command "
					 "line: change it by hand");
		} else if (j->flags & MIGRATE_CMD_PASSWORD) {
			j->action = MJ_MANUAL;
			j->note = strdup(j->flags & MIGRATE_CMD_CHANGED ?
					 "the command line holds a literal password: remove "
					 "the -password: (or -opconpassword:) option from the "
					 "job by hand, then rotate that password; its other "
					 "changes (connector path, options overriding the INI) "
					 "are in the rewritten export" :
					 "the command line holds a literal password: remove "
					 "the -password: (or -opconpassword:) option from the "
					 "job by hand, then rotate that password");
		} else {
			j->action = j->flags & MIGRATE_CMD_CHANGED ? MJ_CHANGE : MJ_NONE;
			continue;
		}
		if (!j->note)
			return nomem(err);
	}
	return 0;
}

static int plan_exports(const struct migrate_opts *o, struct plan *p,
			struct ms_err *err)
{
	struct jref *refs = NULL;
	const char **olds = NULL, **news = NULL;
	size_t n = 0, i, lo, hi;
	int rc = -1;

	if (p->s.n && (!(refs = calloc(p->s.n, sizeof(*refs))) ||
		       !(olds = calloc(p->s.n, sizeof(*olds))) ||
		       !(news = calloc(p->s.n, sizeof(*news))))) {
		nomem(err);
		goto done;
	}
	for (i = 0; i < p->s.n; i++)
		if (p->s.jobs[i].new_cmd && (p->s.jobs[i].flags & MIGRATE_CMD_CHANGED) &&
		    !(p->s.jobs[i].flags & MIGRATE_CMD_KEEPALIVE)) {
			refs[n].key = p->s.jobs[i].v.source;
			refs[n++].i = i;
		}
	if (n)
		qsort(refs, n, sizeof(*refs), cmp_jref);
	for (lo = 0; lo < n; lo = hi) {
		struct ms_err lerr = MS_ERR_INIT;
		size_t m = 0, replaced = 0;
		const char *source = refs[lo].key;
		struct pitem *it;
		char *file;
		struct buf jl;
		int seq;

		for (hi = lo; hi < n && strcmp(refs[hi].key, source) == 0; hi++)
			;
		if (!(it = plan_add(p, err)))
			goto done;
		seq = (int)p->n;
		it->kind = "export";
		it->state = MI_PLANNED;
		if (!(it->path = strdup(source)) || !(it->machine = strdup(""))) {
			nomem(err);
			goto done;
		}
		buf_init(&jl, BUF_DEFAULT_CAP);
		for (i = lo; i < hi; i++) {
			struct mjob *j = &p->s.jobs[refs[i].i];
			j->export_item = seq;
			olds[m] = j->raw_cmd;
			news[m++] = j->new_cmd;
			buf_appendf(&jl, &lerr, "%s%s/%s (%s)", jl.len ? ", " : "",
				    j->v.schedule, j->v.job, j->v.machine);
		}
		it->jobs = buf_detach(&jl, NULL);
		if (!it->jobs || lerr.code) {
			nomem(err);
			goto done;
		}
		if (!(file = fs_join(o->fleet_dir, source))) {
			nomem(err);
			goto done;
		}
		if (fs_read_file(file, EXPORT_MAX, &it->orig, &it->orig_len, &lerr) < 0)
			rc = skip(it, err, "cannot read: %s", lerr.msg);
		else if (migrate_rewrite_export(source, it->orig, it->orig_len, olds,
						news, m, &it->new, &it->new_len,
						&replaced, &lerr) < 0)
			rc = skip(it, err, "%s", lerr.msg);
		else if (replaced == 0)
			rc = skip(it, err, "the command lines were not found in the export: "
				  "use the change list");
		else
			rc = 0;
		free(file);
		if (rc < 0)
			goto done;
	}
	rc = 0;
done:
	free(olds);
	free(news);
	free(refs);
	return rc;
}

static int build_plan(const struct migrate_opts *o, const struct migrate_map *map,
		      struct plan *p, struct ms_err *err)
{
	struct jref *refs = NULL;
	size_t n = 0, i, lo, hi;
	int rc = -1;

	memset(p, 0, sizeof(*p));
	if (scan_fleet(o, &p->s, err) < 0)
		return -1;
	if (p->s.n && !(refs = calloc(p->s.n, sizeof(*refs))))
		return nomem(err);
	for (i = 0; i < p->s.n; i++)
		if (p->s.jobs[i].v.ini_file) {
			refs[n].key = p->s.jobs[i].v.ini_file;
			refs[n++].i = i;
		}
	if (n)
		qsort(refs, n, sizeof(*refs), cmp_jref);
	/* one item per INI file that one of its jobs needs changed, with all
	 * of that file's jobs */
	for (lo = 0; lo < n; lo = hi) {
		int change = 0;

		for (hi = lo; hi < n && strcmp(refs[hi].key, refs[lo].key) == 0; hi++)
			if (needs_ini_change(&p->s.jobs[refs[hi].i]))
				change = 1;
		if (change && plan_ini(o, map, p, refs[lo].key, (int)p->n + 1, refs + lo,
				       hi - lo, err) < 0)
			goto done;
	}
	if (plan_jobs(map, p, err) < 0 || plan_exports(o, p, err) < 0)
		goto done;
	rc = 0;
done:
	free(refs);
	return rc;
}

static int store_plan(struct mdb *d, int run, int replace,
		      const struct migrate_opts *o, const struct migrate_map *map,
		      const struct plan *p, struct ms_err *err)
{
	sqlite3_stmt *st = NULL;
	time_t now = o->now ? o->now : time(NULL);
	char hex[65], sql[200];
	size_t i;
	int rc = -1;

	if (db_exec(d, "BEGIN;", err) < 0)
		return -1;
	snprintf(sql, sizeof(sql), "DELETE FROM items WHERE run = %d;"
		 "DELETE FROM jobs WHERE run = %d; DELETE FROM runs WHERE id = %d;",
		 run, run, run);
	if (replace && db_exec(d, sql, err) < 0)
		goto done;
	if (db_prepare(d, &st, "INSERT INTO runs VALUES (?, ?, ?, ?, 'open')", err) < 0)
		goto done;
	sqlite3_bind_int(st, 1, run);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
	sqlite3_bind_text(st, 3, o->fleet_dir, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, migrate_transport_name(migrate_map_transport(map)), -1,
			  SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		db_fail(d, err, "insert run");
		goto done;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (db_prepare(d, &st, "INSERT INTO items (run, seq, kind, path, machine, jobs,"
		       " state, reason, orig, orig_sha, new, new_sha, seal, updated)"
		       " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", err) < 0)
		goto done;
	for (i = 0; i < p->n; i++) {
		const struct pitem *it = &p->items[i];
		unsigned char *so = NULL, *sn = NULL;
		size_t so_len = 0, sn_len = 0;
		int r;

		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		sqlite3_bind_int(st, 1, run);
		sqlite3_bind_int(st, 2, (int)i + 1);
		sqlite3_bind_text(st, 3, it->kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, it->path, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, it->machine ? it->machine : "", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, it->jobs ? it->jobs : "", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 7, migrate_item_state_name(it->state), -1,
				  SQLITE_STATIC);
		if (it->reason)
			sqlite3_bind_text(st, 8, it->reason, -1, SQLITE_STATIC);
		if (it->orig && it->state == MI_PLANNED) {
			if (blob_seal(d, run, (int)i + 1, "orig", it->orig, it->orig_len,
				      &so, &so_len, err) < 0 ||
			    blob_seal(d, run, (int)i + 1, "new", it->new, it->new_len,
				      &sn, &sn_len, err) < 0) {
				free(so);
				goto done;
			}
			sqlite3_bind_blob64(st, 9, so, so_len, SQLITE_STATIC);
			migrate_sha256_hex(it->orig, it->orig_len, hex);
			sqlite3_bind_text(st, 10, hex, -1, SQLITE_TRANSIENT);
			sqlite3_bind_blob64(st, 11, sn, sn_len, SQLITE_STATIC);
			migrate_sha256_hex(it->new, it->new_len, hex);
			sqlite3_bind_text(st, 12, hex, -1, SQLITE_TRANSIENT);
		}
		if (it->seal)
			sqlite3_bind_text(st, 13, it->seal, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 14, (sqlite3_int64)now);
		r = sqlite3_step(st);
		sqlite3_clear_bindings(st);
		free(so);
		free(sn);
		if (r != SQLITE_DONE) {
			db_fail(d, err, "insert item");
			goto done;
		}
	}
	sqlite3_finalize(st);
	st = NULL;
	if (db_prepare(d, &st, "INSERT INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
		       err) < 0)
		goto done;
	for (i = 0; i < p->s.n; i++) {
		const struct mjob *j = &p->s.jobs[i];
		char *oc, *nc;
		int r;

		if (!j->ini_item)
			continue;
		oc = cmdline_redact(j->raw_cmd);
		nc = j->new_cmd ? cmdline_redact(j->new_cmd) : NULL;
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		sqlite3_bind_int(st, 1, run);
		sqlite3_bind_int(st, 2, (int)i + 1);
		sqlite3_bind_text(st, 3, j->v.schedule, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, j->v.job, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, j->v.machine, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, j->v.source, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 7, j->ini_item);
		if (j->export_item)
			sqlite3_bind_int(st, 8, j->export_item);
		sqlite3_bind_text(st, 9, migrate_job_action_name(j->action), -1,
				  SQLITE_STATIC);
		if (oc)
			sqlite3_bind_text(st, 10, oc, -1, SQLITE_STATIC);
		if (nc)
			sqlite3_bind_text(st, 11, nc, -1, SQLITE_STATIC);
		if (j->note)
			sqlite3_bind_text(st, 12, j->note, -1, SQLITE_STATIC);
		r = sqlite3_step(st);
		wipe_free(oc);
		wipe_free(nc);
		if (r != SQLITE_DONE) {
			db_fail(d, err, "insert job");
			goto done;
		}
	}
	rc = db_exec(d, "COMMIT;", err);
done:
	sqlite3_finalize(st);
	if (rc < 0)
		sqlite3_exec(d->db, "ROLLBACK;", NULL, NULL, NULL);
	return rc;
}

/* Runs and items as stored. */

struct sitem {
	int seq;
	char *kind, *path, *machine, *jobs, *reason, *seal;
	enum migrate_item_state state;
	int written;
	char *orig, *new;
	size_t orig_len, new_len;
	char orig_sha[65], new_sha[65];
	int match;                /* --only */
	/* apply/rollback work */
	enum migrate_item_state next;   /* new state, MI_NONE: unchanged */
	char *next_reason;
	int write;                /* 1 = write new, 2 = write orig */
	mode_t mode;              /* the file's mode when hashed */
	char *dir;                /* its folder (fleet-relative) once written */
};

struct sjob {
	char *schedule, *job, *machine, *source, *old_cmd, *new_cmd, *note;
	enum migrate_job_action action;
	int ini_item, export_item;
};

struct srun {
	int id;
	char *state;
	struct sitem *items;
	size_t n;
	struct sjob *jobs;
	size_t n_jobs;
};

static void srun_release(struct srun *r)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		struct sitem *it = &r->items[i];
		free(it->kind); free(it->path); free(it->machine); free(it->jobs);
		free(it->reason); free(it->seal);
		wipe_bytes(it->orig, it->orig_len); wipe_bytes(it->new, it->new_len);
		free(it->next_reason);
		free(it->dir);
	}
	free(r->items);
	for (i = 0; i < r->n_jobs; i++) {
		struct sjob *j = &r->jobs[i];
		free(j->schedule); free(j->job); free(j->machine); free(j->source);
		free(j->old_cmd); free(j->new_cmd); free(j->note);
	}
	free(r->jobs);
	free(r->state);
	memset(r, 0, sizeof(*r));
}

/* Unseal column i of an items row (NULL stays NULL) and check it against
 * its clear hash.  A wrong machine key is a configuration error naming
 * the key file. */
static int blob_open(struct mdb *d, sqlite3_stmt *st, int i, int run,
		     const struct sitem *it, const char *col, const char *sha,
		     char **out, size_t *len, struct ms_err *err)
{
	struct ms_err lerr = MS_ERR_INIT;
	const void *b = sqlite3_column_blob(st, i);
	int n = sqlite3_column_bytes(st, i);
	unsigned char *plain = NULL;
	char aad[96], hex[65], *kf = NULL;
	const char *what = strcmp(col, "orig") == 0 ? "original" : "new";

	*out = NULL;
	*len = 0;
	if (!b)
		return 0;
	if ((size_t)n < SEAL_BYTES_OVERHEAD ||
	    memcmp(b, SEAL_BYTES_MAGIC, strlen(SEAL_BYTES_MAGIC)) != 0)
		return err_set(err, MS_ERR_DATA, "state database '%s': the %s bytes of "
			       "'%s' are not sealed (written by an older "
			       "mailshift-migrate): roll run %d back with that version",
			       d->path, what, it->path, run);
	if (db_key(d, 0, err) < 0)
		return -1;
	blob_aad(aad, sizeof(aad), run, it->seq, col);
	if (unseal_bytes(d->key, b, (size_t)n, aad, strlen(aad), &plain, len,
			 &lerr) < 0) {
		if (lerr.code != MS_ERR_DATA)
			return err_set(err, lerr.code, "%s", lerr.msg);
		if (paths_key_file(&kf, err) < 0)
			return -1;
		err_set(err, MS_ERR_CONFIG, "cannot unseal the %s bytes of '%s' in state "
			"database '%s' with machine key file '%s': they were sealed with "
			"another machine key or altered (set MAILSHIFT_HOME or "
			"MAILSHIFT_KEY_FILE to the key of the account that planned run %d)",
			what, it->path, d->path, kf, run);
		free(kf);
		return -1;
	}
	migrate_sha256_hex(plain, *len, hex);
	if (strcmp(hex, sha) != 0) {
		wipe_bytes((char *)plain, *len);
		*len = 0;
		return err_set(err, MS_ERR_DATA, "state database '%s': the %s bytes of "
			       "'%s' do not match their hash", d->path, what, it->path);
	}
	*out = (char *)plain;
	return 0;
}

/* Find a run: id > 0 that one, else with open_only the open run, else the
 * latest.  Returns 0 found, 1 none, -1 error. */
static int find_run(struct mdb *d, int id, int open_only, int *out,
		    struct ms_err *err)
{
	sqlite3_stmt *st = NULL;
	int r;

	if (db_prepare(d, &st, id > 0 ? "SELECT id FROM runs WHERE id = ?" :
		       open_only ? "SELECT id FROM runs WHERE state = 'open' ORDER BY id "
		       "DESC LIMIT 1" : "SELECT id FROM runs ORDER BY id DESC LIMIT 1",
		       err) < 0)
		return -1;
	if (id > 0)
		sqlite3_bind_int(st, 1, id);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		*out = sqlite3_column_int(st, 0);
		r = 0;
	} else if (r == SQLITE_DONE) {
		r = 1;
	} else {
		r = db_fail(d, err, "select run");
	}
	sqlite3_finalize(st);
	return r;
}

static int load_run(struct mdb *d, int id, int with_bytes, struct srun *r,
		    struct ms_err *err)
{
	sqlite3_stmt *st = NULL;
	size_t alloc = 0;
	int s;

	memset(r, 0, sizeof(*r));
	r->id = id;
	if (db_prepare(d, &st, "SELECT state FROM runs WHERE id = ?", err) < 0)
		return -1;
	sqlite3_bind_int(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW)
		r->state = col_text(st, 0);
	sqlite3_finalize(st);
	if (!r->state)
		return nomem(err);
	if (db_prepare(d, &st, with_bytes ?
		       "SELECT seq, kind, path, machine, jobs, state, reason, seal, written,"
		       " orig_sha, new_sha, orig, new FROM items WHERE run = ? ORDER BY seq" :
		       "SELECT seq, kind, path, machine, jobs, state, reason, seal, written,"
		       " orig_sha, new_sha FROM items WHERE run = ? ORDER BY seq", err) < 0)
		return -1;
	sqlite3_bind_int(st, 1, id);
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		struct sitem *it;
		const unsigned char *t;
		if (r->n == alloc) {
			struct sitem *ni;
			alloc = alloc ? alloc * 2 : 64;
			if (!(ni = realloc(r->items, alloc * sizeof(*ni))))
				goto nomem;
			r->items = ni;
		}
		it = &r->items[r->n++];
		memset(it, 0, sizeof(*it));
		it->seq = sqlite3_column_int(st, 0);
		it->kind = col_text(st, 1);
		it->path = col_text(st, 2);
		it->machine = col_text(st, 3);
		it->jobs = col_text(st, 4);
		t = sqlite3_column_text(st, 5);
		if (migrate_item_state_parse(t ? (const char *)t : "", &it->state)) {
			sqlite3_finalize(st);
			return err_set(err, MS_ERR_DATA, "state database '%s': item %d of "
				       "run %d has an unknown state", d->path, it->seq, id);
		}
		if (sqlite3_column_type(st, 6) != SQLITE_NULL)
			it->reason = col_text(st, 6);
		if (sqlite3_column_type(st, 7) != SQLITE_NULL)
			it->seal = col_text(st, 7);
		it->written = sqlite3_column_int(st, 8);
		if ((t = sqlite3_column_text(st, 9)))
			snprintf(it->orig_sha, sizeof(it->orig_sha), "%s", t);
		if ((t = sqlite3_column_text(st, 10)))
			snprintf(it->new_sha, sizeof(it->new_sha), "%s", t);
		if (!it->kind || !it->path || !it->machine || !it->jobs)
			goto nomem;
		if (with_bytes &&
		    (blob_open(d, st, 11, id, it, "orig", it->orig_sha, &it->orig,
			       &it->orig_len, err) < 0 ||
		     blob_open(d, st, 12, id, it, "new", it->new_sha, &it->new,
			       &it->new_len, err) < 0)) {
			sqlite3_finalize(st);
			return -1;
		}
	}
	if (s != SQLITE_DONE) {
		sqlite3_finalize(st);
		return db_fail(d, err, "select items");
	}
	sqlite3_finalize(st);
	alloc = 0;
	if (db_prepare(d, &st, "SELECT schedule, job, machine, source, action, old_cmd,"
		       " new_cmd, note, ini_item, export_item FROM jobs WHERE run = ?"
		       " ORDER BY seq", err) < 0)
		return -1;
	sqlite3_bind_int(st, 1, id);
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		struct sjob *j;
		const unsigned char *t;
		if (r->n_jobs == alloc) {
			struct sjob *nj;
			alloc = alloc ? alloc * 2 : 64;
			if (!(nj = realloc(r->jobs, alloc * sizeof(*nj))))
				goto nomem;
			r->jobs = nj;
		}
		j = &r->jobs[r->n_jobs++];
		memset(j, 0, sizeof(*j));
		j->schedule = col_text(st, 0);
		j->job = col_text(st, 1);
		j->machine = col_text(st, 2);
		j->source = col_text(st, 3);
		t = sqlite3_column_text(st, 4);
		if (migrate_job_action_parse(t ? (const char *)t : "", &j->action)) {
			sqlite3_finalize(st);
			return err_set(err, MS_ERR_DATA, "state database '%s': job %zu of "
				       "run %d has an unknown action", d->path, r->n_jobs, id);
		}
		j->old_cmd = col_text(st, 5);
		j->new_cmd = col_text(st, 6);
		j->note = col_text(st, 7);
		j->ini_item = sqlite3_column_int(st, 8);
		j->export_item = sqlite3_column_int(st, 9);
		if (!j->schedule || !j->job || !j->machine || !j->source ||
		    !j->old_cmd || !j->new_cmd || !j->note)
			goto nomem;
	}
	sqlite3_finalize(st);
	if (s != SQLITE_DONE)
		return db_fail(d, err, "select jobs");
	return 0;
nomem:
	sqlite3_finalize(st);
	return nomem(err);
}

static int job_matches(const struct migrate_opts *o, const struct sjob *j)
{
	return (!o->only_machine || strcasecmp(o->only_machine, j->machine) == 0) &&
	       (!o->only_schedule || strcasecmp(o->only_schedule, j->schedule) == 0) &&
	       (!o->only_job || strcasecmp(o->only_job, j->job) == 0);
}

/* An INI item matches --only when one of its jobs does (changing a shared
 * INI changes them all); an export item when every job it changes does. */
static void mark_matches(const struct migrate_opts *o, struct srun *r)
{
	size_t i, k;
	int filtered = o->only_machine || o->only_schedule || o->only_job;

	for (i = 0; i < r->n; i++) {
		struct sitem *it = &r->items[i];
		int any = 0, all = 1;
		if (!filtered) {
			it->match = 1;
			continue;
		}
		for (k = 0; k < r->n_jobs; k++) {
			const struct sjob *j = &r->jobs[k];
			if (strcmp(it->kind, "ini") == 0 ? j->ini_item != it->seq :
			    j->export_item != it->seq)
				continue;
			if (job_matches(o, j))
				any = 1;
			else
				all = 0;
		}
		it->match = strcmp(it->kind, "ini") == 0 ? any : any && all;
	}
}

static int set_item(struct mdb *d, int run, struct sitem *it, int with_new,
		    struct ms_err *err)
{
	sqlite3_stmt *st = NULL;
	unsigned char *sn = NULL;
	size_t sn_len = 0;
	int r;

	if (with_new && blob_seal(d, run, it->seq, "new", it->new, it->new_len, &sn,
				  &sn_len, err) < 0)
		return -1;
	if (db_prepare(d, &st, with_new ?
		       "UPDATE items SET state = ?, reason = ?, written = ?, updated = ?,"
		       " new = ?, new_sha = ? WHERE run = ? AND seq = ?" :
		       "UPDATE items SET state = ?, reason = ?, written = ?, updated = ?"
		       " WHERE run = ? AND seq = ?", err) < 0) {
		free(sn);
		return -1;
	}
	sqlite3_bind_text(st, 1, migrate_item_state_name(it->next), -1, SQLITE_STATIC);
	if (it->next_reason)
		sqlite3_bind_text(st, 2, it->next_reason, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, it->written);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)time(NULL));
	if (with_new) {
		sqlite3_bind_blob64(st, 5, sn, sn_len, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, it->new_sha, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 7, run);
		sqlite3_bind_int(st, 8, it->seq);
	} else {
		sqlite3_bind_int(st, 5, run);
		sqlite3_bind_int(st, 6, it->seq);
	}
	r = sqlite3_step(st);
	sqlite3_finalize(st);
	free(sn);
	if (r != SQLITE_DONE)
		return db_fail(d, err, "update item");
	it->state = it->next;
	free(it->reason);
	it->reason = it->next_reason;
	it->next_reason = NULL;
	return 0;
}

static void count_state(struct migrate_result *res, enum migrate_item_state s)
{
	switch (s) {
	case MI_PLANNED:
	case MI_APPLYING:
		res->planned++;
		break;
	case MI_APPLIED:
		res->applied++;
		break;
	case MI_SKIPPED:
		res->skipped++;
		break;
	case MI_CONFLICT:
		res->conflict++;
		break;
	case MI_FAILED:
		res->failed++;
		break;
	case MI_ROLLED_BACK:
		res->rolled_back++;
		break;
	case MI_NONE:
		break;
	}
}

/* Read a fleet file and hash it; 1 when it does not exist.  *mode is the
 * file's mode (0600 when it does not exist), kept when it is rewritten. */
static int hash_file(const char *fleet, const char *rel, const char *kind,
		     char *hex, mode_t *mode, struct ms_err *err)
{
	char *file = fs_join(fleet, rel), *data = NULL;
	size_t len = 0;
	int rc;

	*mode = 0600;
	if (!file)
		return nomem(err);
	rc = fs_read_file_mode(file, strcmp(kind, "ini") == 0 ? INI_MAX_FILE :
			       EXPORT_MAX, &data, &len, mode, err);
	if (rc == 0)
		migrate_sha256_hex(data, len, hex);
	wipe_bytes(data, len);
	free(file);
	return rc;
}

static int set_reason(struct sitem *it, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int set_reason(struct sitem *it, const char *fmt, ...)
{
	va_list ap;
	int n;

	free(it->next_reason);
	va_start(ap, fmt);
	n = vasprintf(&it->next_reason, fmt, ap);
	va_end(ap);
	if (n < 0)
		it->next_reason = NULL;
	return 0;
}

/* Seal the literal client secret into the planned bytes. */
static int seal_item(const struct migrate_map *map, struct sitem *it,
		     struct ms_err *err)
{
	struct migrate_tenant_view tv;
	struct ini *ini = NULL;
	char *nl, *sealed = NULL, *out = NULL;
	size_t outlen = 0;
	int rc = -1;

	if (!(nl = strchr(it->seal, '\n')))
		return err_set(err, MS_ERR_DATA, "bad seal reference");
	*nl = '\0';
	if (!map || migrate_map_find_id(map, it->seal, nl + 1, &tv) < 0 ||
	    !tv.secret_literal) {
		err_set(err, MS_ERR_CONFIG, "the mapping file has no literal client "
			"secret for tenant %s, client %s any more", it->seal, nl + 1);
		*nl = '\n';
		return -1;
	}
	*nl = '\n';
	if (seal_value(tv.client_secret, &sealed, err) < 0 ||
	    ini_parse(&ini, it->path, it->new, it->new_len, err) < 0 ||
	    ini_set(ini, "OAuth", "ClientSecret", sealed, err) < 0 ||
	    ini_serialize(ini, &out, &outlen, err) < 0)
		goto done;
	wipe_bytes(it->new, it->new_len);
	it->new = out;
	it->new_len = outlen;
	out = NULL;
	migrate_sha256_hex(it->new, it->new_len, it->new_sha);
	rc = 0;
done:
	free(out);
	free(sealed);
	ini_free(ini);
	return rc;
}

/* A set of strings (folder and file paths), open addressing. */
struct strset {
	char **slot;
	size_t cap, n;
};

static size_t str_hash(const char *p)
{
	size_t h = 2166136261u;

	for (; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return h;
}

static void strset_free(struct strset *s)
{
	size_t i;

	for (i = 0; i < s->cap; i++)
		free(s->slot[i]);
	free(s->slot);
	memset(s, 0, sizeof(*s));
}

static int strset_has(const struct strset *s, const char *k)
{
	size_t i;

	if (!s->cap)
		return 0;
	for (i = str_hash(k) & (s->cap - 1); s->slot[i]; i = (i + 1) & (s->cap - 1))
		if (strcmp(s->slot[i], k) == 0)
			return 1;
	return 0;
}

/* Add a copy of k: 1 when added, 0 when already there, -1 out of memory. */
static int strset_add(struct strset *s, const char *k)
{
	size_t i;

	if (strset_has(s, k))
		return 0;
	if ((s->n + 1) * 2 > s->cap) {
		struct strset g = { NULL, s->cap ? s->cap * 2 : 64, 0 };
		if (!(g.slot = calloc(g.cap, sizeof(*g.slot))))
			return -1;
		for (i = 0; i < s->cap; i++) {
			size_t j;
			if (!s->slot[i])
				continue;
			for (j = str_hash(s->slot[i]) & (g.cap - 1); g.slot[j];
			     j = (j + 1) & (g.cap - 1))
				;
			g.slot[j] = s->slot[i];
			g.n++;
		}
		free(s->slot);
		*s = g;
	}
	for (i = str_hash(k) & (s->cap - 1); s->slot[i]; i = (i + 1) & (s->cap - 1))
		;
	if (!(s->slot[i] = strdup(k)))
		return -1;
	s->n++;
	return 1;
}

/* What apply and rollback know while they write a run's files: the
 * run's file paths, the folders already cleaned of stale temporary
 * files, and the folders the current batch renamed files in (each is
 * fsynced once before the batch's states are committed). */
struct wctx {
	const struct migrate_opts *o;
	struct strset items;      /* fleet-relative paths of the run's items */
	struct strset cleaned;    /* folders listed for stale temporary files */
	struct strset batch;      /* folders with a rename not yet fsynced */
	char **dirs;              /* batch's folders, in order */
	size_t n_dirs, alloc_dirs;
	size_t writes;
};

static char *rel_dir(const char *path);
static int clean_dir(struct wctx *w, const char *dir, struct ms_err *err);

/* Also removes the temporary files a killed run left beside any of the
 * run's files -- in every folder of the run, not only those this command
 * still writes to (a resumed run may have nothing left to write there). */
static int wctx_init(struct wctx *w, const struct migrate_opts *o,
		     const struct srun *r, struct ms_err *err)
{
	size_t i;

	memset(w, 0, sizeof(*w));
	w->o = o;
	for (i = 0; i < r->n; i++)
		if (strset_add(&w->items, r->items[i].path) < 0)
			return nomem(err);
	for (i = 0; i < r->n; i++) {
		char *dir = rel_dir(r->items[i].path);
		int rc;

		if (!dir)
			return nomem(err);
		rc = clean_dir(w, dir, err);
		free(dir);
		if (rc < 0)
			return -1;
	}
	return 0;
}

static void wctx_release(struct wctx *w)
{
	size_t i;

	strset_free(&w->items);
	strset_free(&w->cleaned);
	strset_free(&w->batch);
	for (i = 0; i < w->n_dirs; i++)
		free(w->dirs[i]);
	free(w->dirs);
	memset(w, 0, sizeof(*w));
}

/* The fleet-relative folder of a fleet-relative path ("" at the top). */
static char *rel_dir(const char *path)
{
	const char *slash = strrchr(path, '/');

	return strndup(path, slash ? (size_t)(slash - path) : 0);
}

/* A run killed while writing its change list leaves ".changes.json.tmp.
 * PID.N" (or .csv) in that run's folder; remove those of dead processes. */
static void clean_changelist_dir(const char *dir)
{
	struct dirent *de;
	DIR *dh = opendir(dir);

	if (!dh)
		return;
	while ((de = readdir(dh)) != NULL) {
		const char *nm = de->d_name, *t;
		long pid;
		char *p;

		if (strncmp(nm, ".changes.json.tmp.", 18) == 0 ||
		    strncmp(nm, ".deploy.json.tmp.", 17) == 0)
			t = nm + (nm[1] == 'c' ? 18 : 17);
		else if (strncmp(nm, ".changes.csv.tmp.", 17) == 0 ||
			 strncmp(nm, ".deploy.csv.tmp.", 16) == 0)
			t = nm + (nm[1] == 'c' ? 17 : 16);
		else
			continue;
		pid = strtol(t, NULL, 10);
		if (pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		if ((p = fs_join(dir, nm))) {
			unlink(p);
			free(p);
		}
	}
	closedir(dh);
}

/* Every run folder under FLEET/migrate (a bounded listing: one per run). */
static void clean_changelists(const char *base)
{
	struct dirent *de;
	DIR *dh = opendir(base);

	if (!dh)
		return;
	while ((de = readdir(dh)) != NULL) {
		char *d;

		if (strncmp(de->d_name, "run-", 4) != 0 || !(d = fs_join(base, de->d_name)))
			continue;
		clean_changelist_dir(d);
		free(d);
	}
	closedir(dh);
}

/* A process killed inside an atomic write leaves ".NAME.tmp.PID.N" next
 * to the file (the file itself is intact).  Once per folder of the run,
 * remove those of dead processes whose NAME is one of the run's files in
 * that folder: one listing per folder, not per file. */
static int clean_dir(struct wctx *w, const char *dir, struct ms_err *err)
{
	struct dirent *de;
	char *abs;
	DIR *dh;
	int added = strset_add(&w->cleaned, dir);

	if (added < 0)
		return nomem(err);
	if (!added)
		return 0;
	if (!(abs = *dir ? fs_join(w->o->fleet_dir, dir) : strdup(w->o->fleet_dir)))
		return nomem(err);
	if (!(dh = opendir(abs))) {
		free(abs);
		return 0;         /* the write reports what is wrong */
	}
	while ((de = readdir(dh)) != NULL) {
		const char *nm = de->d_name, *t, *q;
		char *end, *rel = NULL, *p;
		long pid;

		if (nm[0] != '.')
			continue;
		/* ".NAME.tmp.PID.N": NAME may itself contain ".tmp." */
		for (t = strstr(nm + 1, ".tmp."); t; t = strstr(t + 1, ".tmp.")) {
			pid = strtol(t + 5, &end, 10);
			if (pid <= 0 || *end != '.')
				continue;
			for (q = end + 1; *q >= '0' && *q <= '9'; q++)
				;
			if (q == end + 1 || *q)
				continue;
			if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
				continue;
			if (asprintf(&rel, "%s%s%.*s", dir, *dir ? "/" : "",
				     (int)(t - nm - 1), nm + 1) < 0) {
				rel = NULL;
				break;
			}
			if (strset_has(&w->items, rel) && (p = fs_join(abs, nm))) {
				unlink(p);
				free(p);
			}
			free(rel);
			rel = NULL;
			break;
		}
	}
	closedir(dh);
	free(abs);
	return 0;
}

/* Write one file durably but for its folder's entry: the caller must
 * sync_dirs() before it records the item as done. */
static int write_item(struct wctx *w, struct sitem *it, const char *data,
		      size_t len, struct ms_err *err)
{
	char *file = NULL;
	int rc = -1, added;

	free(it->dir);
	if (!(it->dir = rel_dir(it->path)))
		return nomem(err);
	if (clean_dir(w, it->dir, err) < 0)
		return -1;
	if (!(file = fs_join(w->o->fleet_dir, it->path)))
		return nomem(err);
	rc = fs_write_atomic_nodirsync(file, data, len, it->mode, err);
	free(file);
	if (rc < 0)
		return -1;
	if ((added = strset_add(&w->batch, it->dir)) < 0)
		return nomem(err);
	if (added) {
		if (w->n_dirs == w->alloc_dirs) {
			size_t na = w->alloc_dirs ? w->alloc_dirs * 2 : 32;
			char **nd = realloc(w->dirs, na * sizeof(*nd));
			if (!nd)
				return nomem(err);
			w->dirs = nd;
			w->alloc_dirs = na;
		}
		if (!(w->dirs[w->n_dirs] = strdup(it->dir)))
			return nomem(err);
		w->n_dirs++;
	}
	w->writes++;
	if (w->o->after_write)
		w->o->after_write(w->writes, w->o->hook_ctx);
	return 0;
}

/* fsync every folder the batch renamed a file in, once.  An item whose
 * folder cannot be synced is failed (with the folder's error) and marked
 * with write = -1; returns how many were. */
static size_t sync_dirs(struct wctx *w, struct srun *r, size_t from, size_t to)
{
	size_t i, k, bad = 0;

	for (k = 0; k < w->n_dirs; k++) {
		struct ms_err lerr = MS_ERR_INIT;
		char *abs = *w->dirs[k] ? fs_join(w->o->fleet_dir, w->dirs[k]) :
			    strdup(w->o->fleet_dir);

		if (abs && fs_fsync_dir(abs, &lerr) == 0) {
			free(abs);
			continue;
		}
		if (!abs)
			err_set(&lerr, MS_ERR_NOMEM, "out of memory");
		free(abs);
		for (i = from; i < to; i++) {
			struct sitem *it = &r->items[i];
			if (it->write > 0 && it->dir && strcmp(it->dir, w->dirs[k]) == 0 &&
			    it->next != MI_NONE && it->next != MI_FAILED) {
				it->next = MI_FAILED;
				set_reason(it, "%s", lerr.msg);
				it->write = -1;
				bad++;
			}
		}
	}
	for (k = 0; k < w->n_dirs; k++)
		free(w->dirs[k]);
	w->n_dirs = 0;
	strset_free(&w->batch);
	return bad;
}

static int csv_field(struct buf *b, const char *s, int last, struct ms_err *err)
{
	if (buf_appends(b, "\"", err) < 0)
		return -1;
	for (; *s; s++)
		if (buf_append(b, s, 1, err) < 0 ||
		    (*s == '"' && buf_append(b, s, 1, err) < 0))
			return -1;
	return buf_appends(b, last ? "\"\r\n" : "\",", err);
}

static void jstr(struct buf *b, const char *s, struct ms_err *err);

/* One JSON object of string fields. */
static int json_row(struct buf *js, size_t n, const char *const *names,
		    const char *const *f, size_t nf, struct ms_err *err)
{
	size_t k;

	if (buf_appends(js, n ? ",\n  {" : "\n  {", err) < 0)
		return -1;
	for (k = 0; k < nf; k++) {
		if (buf_appendf(js, err, "%s\"%s\": ", k ? ", " : "", names[k]) < 0)
			return -1;
		jstr(js, f[k], err);
	}
	return buf_appends(js, "}", err);
}

/* The cutover packet of a run, in --out DIR or FLEET/migrate/run-N
 * (run-N-rollback after a rollback):
 *  - changes.json/.csv: the job command lines for the scheduler (action
 *    change or manual, old and new, note);
 *  - deploy.json/.csv: every INI file to copy back to its machine, with
 *    the machine, its Windows path, the file in the fleet and its SHA-256.
 * After rollback, the reverse of both: the command lines back to the old
 * ones (action revert), and the restored original INI files to copy. */
static int write_changes(const struct migrate_opts *o, const struct srun *r,
			 int rollback, struct ms_err *err)
{
	static const char *const cnames[7] = { "schedule", "job", "machine", "action",
					       "old", "new", "note" };
	static const char *const dnames[5] = { "machine", "path", "file", "sha256",
					       "jobs" };
	enum migrate_item_state done_state = rollback ? MI_ROLLED_BACK : MI_APPLIED;
	struct buf js, cs, dj, dc;
	char *dir = NULL, *path = NULL;
	size_t i, n = 0, nd = 0;
	int rc = -1;

	buf_init(&js, BUF_DEFAULT_CAP);
	buf_init(&cs, BUF_DEFAULT_CAP);
	buf_init(&dj, BUF_DEFAULT_CAP);
	buf_init(&dc, BUF_DEFAULT_CAP);
	if (buf_appendf(&js, err, "{\"run\": %d, \"rollback\": %s, \"changes\": [", r->id,
			rollback ? "true" : "false") < 0 ||
	    buf_appends(&cs, "schedule,job,machine,action,old_command_line,"
			"new_command_line,note\r\n", err) < 0 ||
	    buf_appendf(&dj, err, "{\"run\": %d, \"rollback\": %s, \"files\": [", r->id,
			rollback ? "true" : "false") < 0 ||
	    buf_appends(&dc, "machine,windows_path,fleet_file,sha256,jobs\r\n", err) < 0)
		goto done;
	for (i = 0; i < r->n_jobs; i++) {
		const struct sjob *j = &r->jobs[i];
		const struct sitem *ini = j->ini_item > 0 && (size_t)j->ini_item <= r->n ?
					  &r->items[j->ini_item - 1] : NULL;
		const char *f[7];
		size_t k;

		if (!ini || ini->state != done_state ||
		    (j->action != MJ_CHANGE && j->action != MJ_MANUAL))
			continue;
		f[0] = j->schedule; f[1] = j->job; f[2] = j->machine;
		f[3] = migrate_job_action_name(j->action);
		f[4] = j->old_cmd; f[5] = j->new_cmd; f[6] = j->note;
		if (rollback) {
			f[4] = j->new_cmd;
			f[5] = j->old_cmd;
			if (j->action == MJ_CHANGE)
				f[3] = "revert";
			else
				f[6] = "if this job was changed by hand at cutover, put its "
				       "old command line back";
		}
		/* a manual row says what to do by hand: no command line that
		 * could be pasted into the job (with -password:*** in it) */
		if (j->action == MJ_MANUAL) {
			f[4] = f[5] = "";
		}
		if (json_row(&js, n++, cnames, f, 7, err) < 0)
			goto done;
		for (k = 0; k < 7; k++)
			if (csv_field(&cs, f[k], k == 6, err) < 0)
				goto done;
	}
	for (i = 0; i < r->n; i++) {
		const struct sitem *it = &r->items[i];
		char *machine = NULL, *wp;
		const char *f[5];
		size_t k;

		if (strcmp(it->kind, "ini") || it->state != done_state)
			continue;
		wp = fleet_windows_path(it->path, &machine);
		f[0] = it->machine ? it->machine : machine ? machine : "";
		f[1] = wp ? wp : "";
		f[2] = it->path;
		f[3] = rollback ? it->orig_sha : it->new_sha;
		f[4] = it->jobs ? it->jobs : "";
		rc = json_row(&dj, nd++, dnames, f, 5, err);
		for (k = 0; rc == 0 && k < 5; k++)
			rc = csv_field(&dc, f[k], k == 4, err);
		free(wp);
		free(machine);
		if (rc < 0)
			goto done;
		rc = -1;
	}
	if (buf_appends(&js, n ? "\n]}\n" : "]}\n", err) < 0 ||
	    buf_appends(&dj, nd ? "\n]}\n" : "]}\n", err) < 0)
		goto done;
	if (o->out_dir) {
		if (!(dir = strdup(o->out_dir)))
			goto nomem;
	} else if (asprintf(&dir, "%s/migrate/run-%d%s", o->fleet_dir, r->id,
			    rollback ? "-rollback" : "") < 0) {
		dir = NULL;
		goto nomem;
	}
	if (fs_mkdirs(dir, 0755, err) < 0)
		goto done;
	if (o->out_dir) {
		clean_changelist_dir(dir);
	} else {
		char *base = fs_join(o->fleet_dir, "migrate");
		if (!base)
			goto nomem;
		clean_changelists(base);
		free(base);
	}
	{
		static const char *const files[4] = { "changes.json", "changes.csv",
						      "deploy.json", "deploy.csv" };
		const struct buf *bufs[4] = { &js, &cs, &dj, &dc };
		size_t k;

		for (k = 0; k < 4; k++) {
			free(path);
			if (!(path = fs_join(dir, files[k])))
				goto nomem;
			if (fs_write_atomic(path, bufs[k]->data, bufs[k]->len, 0644, err) < 0)
				goto done;
		}
	}
	outf(o, "change list: %s/changes.json, %s/changes.csv (%zu job%s)\n", dir, dir,
	     n, n == 1 ? "" : "s");
	outf(o, "deploy list: %s/deploy.json, %s/deploy.csv (%zu INI file%s to copy %s "
	     "the machines)\n", dir, dir, nd, nd == 1 ? "" : "s",
	     rollback ? "back, restored, to" : "to");
	rc = 0;
	goto done;
nomem:
	rc = nomem(err);
done:
	free(path);
	free(dir);
	buf_release(&js);
	buf_release(&cs);
	buf_release(&dj);
	buf_release(&dc);
	return rc;
}

/* Output. */

#define JOBS_SHOWN 10

/* The job list of an item, cut after JOBS_SHOWN entries for display.
 * Returns a malloc'd string (NULL when out of memory). */
static char *jobs_shown(const char *jobs)
{
	const char *p = jobs;
	size_t shown = 0, more = 0;
	char *s = NULL;

	while ((p = strstr(p, "), ")) != NULL) {
		p += 3;
		if (++shown == JOBS_SHOWN) {
			const char *q = p;
			more = 1;
			while ((q = strstr(q, "), ")) != NULL) {
				q += 3;
				more++;
			}
			if (asprintf(&s, "%.*s and %zu more", (int)(p - 2 - jobs), jobs,
				     more) < 0)
				s = NULL;
			return s;
		}
	}
	return strdup(jobs);
}

/* JSON for plan and status --format json: one document, written whole
 * once it is complete.  Strings escaped per RFC 8259 (control characters
 * as \u00XX; other bytes as they are: the inputs are UTF-8). */
static void jstr(struct buf *b, const char *s, struct ms_err *err)
{
	buf_append(b, "\"", 1, err);
	for (s = s ? s : ""; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			buf_appendf(b, err, "\\%c", c);
		else if (c < 0x20)
			buf_appendf(b, err, "\\u%04x", c);
		else
			buf_append(b, s, 1, err);
	}
	buf_append(b, "\"", 1, err);
}

/* "key": "value" with a leading comma unless first */
static void jkv(struct buf *b, int first, const char *key, const char *val,
		struct ms_err *err)
{
	buf_appendf(b, err, "%s\"%s\": ", first ? "" : ", ", key);
	jstr(b, val, err);
}

static void jout(const struct migrate_opts *o, struct buf *b, struct ms_err *err)
{
	if (err->code == MS_OK && o->out)
		o->out(b->data, b->len, o->out_ctx);
	buf_release(b);
}

/* The job's first error, or a generic reason. */
static const char *broken_reason(const struct job_verdict *v)
{
	size_t k;

	for (k = 0; k < v->n_findings; k++)
		if (v->findings[k].severity == SEV_ERROR)
			return v->findings[k].message;
	return "cannot be evaluated";
}

static void print_plan_json(const struct migrate_opts *o, int run,
			    const struct migrate_map *map, const struct plan *p,
			    struct migrate_result *res, struct ms_err *err)
{
	struct buf b;
	size_t i, n_ini = 0, n_exp = 0, n_jobs = 0, n_change = 0, n = 0;

	buf_init(&b, (size_t)1 << 30);
	buf_appendf(&b, err, "{\"command\": \"plan\", \"run\": %d, ", run);
	jkv(&b, 1, "transport", migrate_transport_name(migrate_map_transport(map)), err);
	jkv(&b, 0, "connector", migrate_map_connector(map), err);
	buf_appends(&b, ",\n \"items\": [", err);
	for (i = 0; i < p->n; i++) {
		const struct pitem *it = &p->items[i];

		if (it->state == MI_PLANNED) {
			if (strcmp(it->kind, "ini") == 0)
				n_ini++;
			else
				n_exp++;
		}
		buf_appends(&b, i ? ",\n  {" : "\n  {", err);
		jkv(&b, 1, "kind", it->kind, err);
		jkv(&b, 0, "path", it->path, err);
		jkv(&b, 0, "state", migrate_item_state_name(it->state), err);
		jkv(&b, 0, "reason", it->reason, err);
		jkv(&b, 0, "jobs", it->jobs, err);
		buf_appends(&b, "}", err);
	}
	buf_appends(&b, p->n ? "\n ],\n \"jobs\": [" : "],\n \"jobs\": [", err);
	for (i = 0; i < p->s.n; i++) {
		const struct mjob *j = &p->s.jobs[i];
		int manual;
		char *a = NULL, *c = NULL;

		if (!j->ini_item || !j->action || j->action == MJ_SKIPPED)
			continue;
		n_jobs++;     /* migrated with its INI, listed when it needs more */
		if (j->action == MJ_NONE)
			continue;
		manual = j->action == MJ_MANUAL;
		if (manual)
			res->manual++;
		if (j->action == MJ_CHANGE || (j->flags & MIGRATE_CMD_CHANGED))
			n_change++;
		/* a manual job: what to do, no command line to paste */
		if (!manual) {
			a = cmdline_redact(j->raw_cmd);
			c = cmdline_redact(j->new_cmd);
		}
		buf_appends(&b, n++ ? ",\n  {" : "\n  {", err);
		jkv(&b, 1, "schedule", j->v.schedule, err);
		jkv(&b, 0, "job", j->v.job, err);
		jkv(&b, 0, "machine", j->v.machine, err);
		jkv(&b, 0, "action", migrate_job_action_name(j->action), err);
		jkv(&b, 0, "old", a, err);
		jkv(&b, 0, "new", c, err);
		jkv(&b, 0, "note", j->note, err);
		buf_appends(&b, "}", err);
		wipe_free(a);
		wipe_free(c);
	}
	buf_appends(&b, n ? "\n ],\n \"broken\": [" : "],\n \"broken\": [", err);
	for (i = 0; i < p->s.n; i++) {
		const struct job_verdict *v = &p->s.jobs[i].v;

		if (v->status != STATUS_BROKEN)
			continue;
		buf_appends(&b, res->broken++ ? ",\n  {" : "\n  {", err);
		jkv(&b, 1, "schedule", v->schedule, err);
		jkv(&b, 0, "job", v->job, err);
		jkv(&b, 0, "machine", v->machine, err);
		jkv(&b, 0, "reason", broken_reason(v), err);
		buf_appends(&b, "}", err);
	}
	res->jobs_changed = n_change;
	buf_appendf(&b, err, "%s],\n \"summary\": {\"ini_files\": %zu, \"jobs\": %zu, "
		    "\"command_lines\": %zu, \"export_files\": %zu, \"skipped\": %zu, "
		    "\"manual\": %zu, \"broken\": %zu, \"only_manual_open\": %s}}\n",
		    res->broken ? "\n " : "", n_ini, n_jobs, n_change, n_exp, res->skipped,
		    res->manual, res->broken,
		    res->manual && !res->skipped && !res->broken ? "true" : "false");
	jout(o, &b, err);
}

static void print_plan(const struct migrate_opts *o, int run,
		       const struct migrate_map *map, const struct plan *p,
		       struct migrate_result *res, struct ms_err *err)
{
	struct buf b;
	size_t i, n_ini = 0, n_exp = 0, n_jobs = 0, n_change = 0;

	if (o->json) {
		print_plan_json(o, run, map, p, res, err);
		return;
	}
	outf(o, "plan: run %d, transport %s%s%s\n", run,
	     migrate_transport_name(migrate_map_transport(map)),
	     migrate_map_connector(map) ? ", connector " : "",
	     migrate_map_connector(map) ? migrate_map_connector(map) : "");
	for (i = 0; i < p->n; i++) {
		const struct pitem *it = &p->items[i];
		if (it->state != MI_PLANNED)
			continue;
		buf_init(&b, BUF_DEFAULT_CAP);
		if (migrate_diff(it->path, it->orig, it->orig_len, it->new, it->new_len,
				 strcmp(it->kind, "ini") == 0 ? MIGRATE_DIFF_INI :
				 MIGRATE_DIFF_EXPORT, &b, err) == 0 && b.data) {
			char *js = jobs_shown(it->jobs);
			outf(o, "\n# %s %s: %s\n", it->kind, it->path, js ? js : "");
			free(js);
			o->out ? o->out(b.data, b.len, o->out_ctx) : (void)0;
		}
		buf_release(&b);
		if (strcmp(it->kind, "ini") == 0)
			n_ini++;
		else
			n_exp++;
	}
	outf(o, "\n");
	for (i = 0; i < p->s.n; i++) {
		const struct mjob *j = &p->s.jobs[i];
		if (!j->ini_item || !j->action || j->action == MJ_SKIPPED)
			continue;
		n_jobs++;
		/* a manual job's command line is not shown rewritten: with its
		 * -password:*** it could be pasted into the job as it is */
		if (j->action != MJ_CHANGE && (j->flags & MIGRATE_CMD_CHANGED))
			n_change++;   /* rewritten in its export, shown as manual */
		if (j->action == MJ_CHANGE) {
			char *a = cmdline_redact(j->raw_cmd), *c = cmdline_redact(j->new_cmd);
			n_change++;
			outf(o, "job %s/%s (%s): command line\n  - %s\n  + %s\n",
			     j->v.schedule, j->v.job, j->v.machine, a ? a : "",
			     c ? c : "");
			wipe_free(a);
			wipe_free(c);
		}
		if (j->action == MJ_MANUAL) {
			res->manual++;
			outf(o, "manual: %s/%s (%s): %s\n", j->v.schedule, j->v.job,
			     j->v.machine, j->note);
		}
	}
	for (i = 0; i < p->n; i++)
		if (p->items[i].state == MI_SKIPPED) {
			char *js = jobs_shown(p->items[i].jobs);
			outf(o, "skipped: %s %s (%s): %s\n", p->items[i].kind,
			     p->items[i].path, js ? js : "", p->items[i].reason);
			free(js);
		}
	/* broken jobs are left alone: say which, and why */
	for (i = 0; i < p->s.n; i++) {
		const struct job_verdict *v = &p->s.jobs[i].v;

		if (v->status != STATUS_BROKEN)
			continue;
		res->broken++;
		outf(o, "broken, not touched: %s/%s (%s): %s\n", v->schedule, v->job,
		     v->machine, broken_reason(v));
	}
	res->jobs_changed = n_change;
	outf(o, "\nsummary: %zu INI file%s to change, %zu job%s migrated "
	     "(%zu command line%s to change, %zu export file%s to rewrite), "
	     "%zu skipped, %zu for manual action, %zu broken job%s not touched\n",
	     n_ini, n_ini == 1 ? "" : "s", n_jobs, n_jobs == 1 ? "" : "s", n_change,
	     n_change == 1 ? "" : "s", n_exp, n_exp == 1 ? "" : "s", res->skipped,
	     res->manual, res->broken, res->broken == 1 ? "" : "s");
	if (res->manual && !res->skipped && !res->broken)
		outf(o, "only manual actions are open: the plan is complete (exit 0); "
		     "do them by hand at cutover (changes.csv lists them)\n");
}

/* plan: returns the run id stored through *run. */
static int do_plan(const struct migrate_opts *o, struct mdb *d,
		   const struct migrate_map *map, int print,
		   struct migrate_result *res, struct ms_err *err)
{
	struct plan p;
	int open_id = 0, run = 0, r, rc = -1;
	size_t i;

	r = find_run(d, 0, 1, &open_id, err);
	if (r < 0)
		return -1;
	if (r == 0) {
		/* an open run may be replanned only when nothing of it started */
		sqlite3_stmt *st = NULL;
		int started = 0;
		if (db_prepare(d, &st, "SELECT count(*) FROM items WHERE run = ? AND"
			       " (written = 1 OR state NOT IN ('planned', 'skipped'))",
			       err) < 0)
			return -1;
		sqlite3_bind_int(st, 1, open_id);
		if (sqlite3_step(st) == SQLITE_ROW)
			started = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
		if (started)
			return err_set(err, MS_ERR_DATA, "run %d is partly applied: finish it "
				       "with apply or undo it with rollback", open_id);
		run = open_id;   /* replaced in the transaction storing the new plan */
	} else {
		sqlite3_stmt *st = NULL;
		if (db_prepare(d, &st, "SELECT coalesce(max(id), 0) + 1 FROM runs", err) < 0)
			return -1;
		if (sqlite3_step(st) == SQLITE_ROW)
			run = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	memset(&p, 0, sizeof(p));
	if (db_key(d, 1, err) < 0 || build_plan(o, map, &p, err) < 0)
		goto done;
	if (store_plan(d, run, r == 0, o, map, &p, err) < 0)
		goto done;
	res->run = run;
	for (i = 0; i < p.n; i++) {
		res->items++;
		count_state(res, p.items[i].state);
	}
	if (print)
		print_plan(o, run, map, &p, res, err);
	rc = 0;
done:
	plan_free(&p);
	return rc;
}

static int open_all(const struct migrate_opts *o, int need_map, struct mdb **d,
		    struct migrate_map **map, struct ms_err *err)
{
	struct stat sb;
	int r;

	*d = NULL;
	*map = NULL;
	if (!o->fleet_dir)
		return err_set(err, MS_ERR_USAGE, "--fleet is required");
	if (stat(o->fleet_dir, &sb) < 0 || !S_ISDIR(sb.st_mode))
		return err_set(err, MS_ERR_IO, "cannot read fleet folder '%s': %s",
			       o->fleet_dir, stat(o->fleet_dir, &sb) < 0 ?
			       strerror(errno) : "not a directory");
	if (need_map) {
		if (!o->map_path)
			return err_set(err, MS_ERR_USAGE, "--map is required");
		if (migrate_map_load(map, o->map_path, err) < 0)
			return -1;
	}
	if ((r = db_open(d, o, need_map, err)) != 0) {
		migrate_map_free(*map);
		*map = NULL;
	}
	return r;
}

int migrate_plan(const struct migrate_opts *o, struct migrate_result *res,
		 struct ms_err *err)
{
	struct migrate_map *map;
	struct mdb *d;
	int rc;

	memset(res, 0, sizeof(*res));
	if (open_all(o, 1, &d, &map, err) < 0)
		return -1;
	rc = do_plan(o, d, map, 1, res, err);
	res->manual_expected = 1;   /* a plan that leaves only hand work is complete */
	db_close(d);
	migrate_map_free(map);
	return rc;
}

static int run_finished(struct mdb *d, struct srun *r, struct ms_err *err)
{
	size_t i;
	char sql[128];

	for (i = 0; i < r->n; i++)
		if (r->items[i].state == MI_PLANNED ||
		    r->items[i].state == MI_APPLYING)
			return 0;
	snprintf(sql, sizeof(sql), "UPDATE runs SET state = 'done' WHERE id = %d;",
		 r->id);
	return db_exec(d, sql, err);
}

int migrate_apply(const struct migrate_opts *o, struct migrate_result *res,
		  struct ms_err *err)
{
	struct migrate_map *map = NULL;
	struct mdb *d = NULL;
	struct srun r;
	struct wctx w;
	size_t i, b0;
	int run = 0, f, rc = -1;

	memset(res, 0, sizeof(*res));
	memset(&r, 0, sizeof(r));
	memset(&w, 0, sizeof(w));
	if (open_all(o, 1, &d, &map, err) < 0)
		return -1;
	if ((f = find_run(d, 0, 1, &run, err)) < 0)
		goto done;
	if (f == 1) {
		struct migrate_result pr;
		memset(&pr, 0, sizeof(pr));
		if (do_plan(o, d, map, 0, &pr, err) < 0)
			goto done;
		run = pr.run;
		outf(o, "planned run %d: %zu item%s\n", run, pr.items,
		     pr.items == 1 ? "" : "s");
	}
	if (load_run(d, run, 1, &r, err) < 0)
		goto done;
	if (f != 1) {
		/* a run planned by plan and not started is applied, not resumed */
		int started = 0;
		for (i = 0; i < r.n; i++)
			started |= r.items[i].state != MI_PLANNED &&
				   r.items[i].state != MI_SKIPPED;
		outf(o, "%s run %d\n", started ? "resuming" : "applying", run);
	}
	mark_matches(o, &r);
	res->run = run;
	if (wctx_init(&w, o, &r, err) < 0)
		goto done;
	/* Each batch: commit the bytes about to be written (state applying),
	 * write every file (tmp, fsync, rename), fsync each folder once, then
	 * commit the applied states.  An item is only recorded applied once
	 * its bytes and its folder entry are durable; a crash before that
	 * leaves it applying, and the next apply finds the new hash. */
	for (b0 = 0; b0 < r.n; b0 += BATCH) {
		size_t e = b0 + BATCH < r.n ? b0 + BATCH : r.n;

		/* 1: decide, and commit the bytes about to be written */
		if (db_exec(d, "BEGIN;", err) < 0)
			goto done;
		for (i = b0; i < e; i++) {
			struct sitem *it = &r.items[i];
			struct ms_err lerr = MS_ERR_INIT;
			char cur[65] = "";
			int h, with_new = 0;

			it->next = MI_NONE;
			it->write = 0;
			if (!it->match || (it->state != MI_PLANNED &&
					   it->state != MI_APPLYING))
				continue;
			h = hash_file(o->fleet_dir, it->path, it->kind, cur, &it->mode,
				      &lerr);
			if (h != 0) {
				it->next = MI_FAILED;
				set_reason(it, "%s", h > 0 ? "the file no longer exists" :
					   lerr.msg);
			} else if (strcmp(cur, it->new_sha) == 0) {
				it->next = MI_APPLIED;   /* written before a crash */
				it->written = 1;
			} else if (strcmp(cur, it->orig_sha) != 0) {
				it->next = MI_CONFLICT;
				set_reason(it, "the file changed since the plan (its hash matches "
					   "neither the original nor the new version)");
			} else {
				if (it->state == MI_PLANNED && it->seal) {
					if (seal_item(map, it, &lerr) < 0) {
						it->next = MI_FAILED;
						set_reason(it, "%s", lerr.msg);
						goto record;
					}
					with_new = 1;
				}
				it->next = MI_APPLYING;
				it->written = 1;
				it->write = 1;
			}
record:
			if (set_item(d, run, it, with_new, err) < 0) {
				sqlite3_exec(d->db, "ROLLBACK;", NULL, NULL, NULL);
				goto done;
			}
		}
		if (db_exec(d, "COMMIT;", err) < 0)
			goto done;
		/* 2: write */
		for (i = b0; i < e; i++) {
			struct sitem *it = &r.items[i];
			struct ms_err lerr = MS_ERR_INIT;
			if (!it->write)
				continue;
			if (write_item(&w, it, it->new, it->new_len, &lerr) < 0) {
				it->next = MI_FAILED;
				set_reason(it, "%s", lerr.msg);
			} else {
				it->next = MI_APPLIED;
			}
		}
		/* 3: make the renames durable, one fsync per folder */
		sync_dirs(&w, &r, b0, e);
		/* 4: record */
		if (db_exec(d, "BEGIN;", err) < 0)
			goto done;
		for (i = b0; i < e; i++)
			if (r.items[i].write && set_item(d, run, &r.items[i], 0, err) < 0) {
				sqlite3_exec(d->db, "ROLLBACK;", NULL, NULL, NULL);
				goto done;
			}
		if (db_exec(d, "COMMIT;", err) < 0)
			goto done;
	}
	for (i = 0; i < r.n; i++) {
		struct sitem *it = &r.items[i];
		if (!it->match)
			continue;
		res->items++;
		count_state(res, it->state);
		if (it->state != MI_APPLIED && it->state != MI_PLANNED)
			outf(o, "%-11s %s %s%s%s\n", migrate_item_state_name(it->state), it->kind, it->path,
			     it->reason ? ": " : "", it->reason ? it->reason : "");
		else
			outf(o, "%-11s %s %s\n", migrate_item_state_name(it->state), it->kind, it->path);
	}
	for (i = 0; i < r.n_jobs; i++) {
		const struct sjob *j = &r.jobs[i];
		const struct sitem *ini = j->ini_item > 0 && (size_t)j->ini_item <= r.n ?
					  &r.items[j->ini_item - 1] : NULL;
		if (ini && ini->match && ini->state == MI_APPLIED) {
			if (j->action == MJ_MANUAL) {
				res->manual++;
				outf(o, "manual: %s/%s (%s): %s\n", j->schedule, j->job,
				     j->machine, j->note);
			} else if (j->action == MJ_CHANGE) {
				res->jobs_changed++;
			}
		}
	}
	if (run_finished(d, &r, err) < 0 || (r.n && write_changes(o, &r, 0, err) < 0))
		goto done;
	outf(o, "summary: run %d: %zu applied, %zu skipped, %zu conflict, %zu failed, "
	     "%zu still planned; %zu job command line%s to change, %zu for manual "
	     "action\n", run, res->applied, res->skipped, res->conflict, res->failed,
	     res->planned, res->jobs_changed, res->jobs_changed == 1 ? "" : "s",
	     res->manual);
	rc = 0;
done:
	wctx_release(&w);
	srun_release(&r);
	db_close(d);
	migrate_map_free(map);
	return rc;
}

static int status_json(const struct migrate_opts *o, const struct srun *r,
		       struct migrate_result *res, struct ms_err *err)
{
	struct buf b;
	size_t i, n = 0;

	buf_init(&b, (size_t)1 << 30);
	buf_appendf(&b, err, "{\"command\": \"status\", \"run\": %d, ", r->id);
	jkv(&b, 1, "state", r->state, err);
	buf_appends(&b, ",\n \"items\": [", err);
	for (i = 0; i < r->n; i++) {
		const struct sitem *it = &r->items[i];

		if (!it->match)
			continue;
		res->items++;
		count_state(res, it->state);
		buf_appends(&b, n++ ? ",\n  {" : "\n  {", err);
		jkv(&b, 1, "kind", it->kind, err);
		jkv(&b, 0, "path", it->path, err);
		jkv(&b, 0, "machine", it->machine, err);
		jkv(&b, 0, "state", migrate_item_state_name(it->state), err);
		jkv(&b, 0, "reason", it->reason, err);
		jkv(&b, 0, "jobs", it->jobs, err);
		buf_appends(&b, "}", err);
	}
	buf_appends(&b, n ? "\n ],\n \"jobs\": [" : "],\n \"jobs\": [", err);
	n = 0;
	for (i = 0; i < r->n_jobs; i++) {
		const struct sjob *j = &r->jobs[i];
		int manual = j->action == MJ_MANUAL;

		if (!job_matches(o, j) || j->action == MJ_NONE ||
		    j->action == MJ_SKIPPED)
			continue;
		res->manual += manual;
		buf_appends(&b, n++ ? ",\n  {" : "\n  {", err);
		jkv(&b, 1, "schedule", j->schedule, err);
		jkv(&b, 0, "job", j->job, err);
		jkv(&b, 0, "machine", j->machine, err);
		jkv(&b, 0, "action", migrate_job_action_name(j->action), err);
		jkv(&b, 0, "old", manual ? "" : j->old_cmd, err);
		jkv(&b, 0, "new", manual ? "" : j->new_cmd, err);
		jkv(&b, 0, "note", j->note, err);
		buf_appends(&b, "}", err);
	}
	buf_appendf(&b, err, "%s],\n \"summary\": {\"planned\": %zu, \"applied\": %zu, "
		    "\"skipped\": %zu, \"conflict\": %zu, \"failed\": %zu, "
		    "\"rolled_back\": %zu, \"manual\": %zu}}\n", n ? "\n " : "",
		    res->planned, res->applied, res->skipped, res->conflict, res->failed,
		    res->rolled_back, res->manual);
	if (err->code != MS_OK) {
		buf_release(&b);
		return -1;
	}
	jout(o, &b, err);
	return 0;
}

int migrate_status(const struct migrate_opts *o, struct migrate_result *res,
		   struct ms_err *err)
{
	struct migrate_map *map = NULL;
	struct mdb *d = NULL;
	struct srun r;
	size_t i;
	int run = 0, f, rc = -1;

	memset(res, 0, sizeof(*res));
	memset(&r, 0, sizeof(r));
	if ((f = open_all(o, 0, &d, &map, err)) < 0)
		return -1;
	if (f == 1) {
		if (o->run > 0)
			return err_set(err, MS_ERR_USAGE, "no run %d: no state database yet",
				       o->run);
		outf(o, o->json ? "{\"command\": \"status\", \"run\": null}\n" :
		     "no runs yet\n");
		return 0;
	}
	if ((f = find_run(d, o->run, 0, &run, err)) < 0)
		goto done;
	if (f == 1) {
		if (o->run > 0)
			err_set(err, MS_ERR_USAGE, "no run %d in '%s'", o->run, d->path);
		else {
			outf(o, o->json ? "{\"command\": \"status\", \"run\": null}\n" :
			     "no runs yet\n");
			rc = 0;
		}
		goto done;
	}
	if (load_run(d, run, 0, &r, err) < 0)
		goto done;
	mark_matches(o, &r);
	res->run = run;
	if (o->json) {
		rc = status_json(o, &r, res, err);
		goto done;
	}
	outf(o, "run %d: %s\n", run, r.state);
	for (i = 0; i < r.n; i++) {
		struct sitem *it = &r.items[i];
		if (!it->match)
			continue;
		res->items++;
		count_state(res, it->state);
		char *js = jobs_shown(it->jobs);
		outf(o, "%-11s %-6s %s [%s]%s%s\n", migrate_item_state_name(it->state), it->kind, it->path,
		     js ? js : "", it->reason ? ": " : "", it->reason ? it->reason : "");
		free(js);
	}
	for (i = 0; i < r.n_jobs; i++) {
		const struct sjob *j = &r.jobs[i];
		if (!job_matches(o, j) || j->action == MJ_NONE ||
		    j->action == MJ_SKIPPED)
			continue;
		if (j->action == MJ_MANUAL)
			res->manual++;
		outf(o, "job %-7s %s/%s (%s)%s%s\n", migrate_job_action_name(j->action),
		     j->schedule, j->job,
		     j->machine, j->note[0] ? ": " : "", j->note);
	}
	outf(o, "summary: %zu planned, %zu applied, %zu skipped, %zu conflict, "
	     "%zu failed, %zu rolled back\n", res->planned, res->applied, res->skipped,
	     res->conflict, res->failed, res->rolled_back);
	rc = 0;
done:
	srun_release(&r);
	db_close(d);
	return rc;
}

int migrate_rollback(const struct migrate_opts *o, struct migrate_result *res,
		     struct ms_err *err)
{
	struct migrate_map *map = NULL;
	struct mdb *d = NULL;
	struct srun r;
	struct wctx w;
	size_t i, hi;
	int run = 0, f, rc = -1;

	memset(res, 0, sizeof(*res));
	memset(&r, 0, sizeof(r));
	memset(&w, 0, sizeof(w));
	if ((f = open_all(o, 0, &d, &map, err)) < 0)
		return -1;
	if (f == 1) {
		if (o->run > 0)
			return err_set(err, MS_ERR_USAGE, "no run %d: no state database yet",
				       o->run);
		outf(o, "nothing to roll back\n");
		return 0;
	}
	if (o->run > 0) {
		if ((f = find_run(d, o->run, 0, &run, err)) < 0)
			goto done;
		if (f == 1) {
			err_set(err, MS_ERR_USAGE, "no run %d in '%s'", o->run, d->path);
			goto done;
		}
	} else {
		sqlite3_stmt *st = NULL;
		if (db_prepare(d, &st, "SELECT max(run) FROM items WHERE written = 1 AND"
			       " state <> 'rolled-back'", err) < 0)
			goto done;
		if (sqlite3_step(st) == SQLITE_ROW)
			run = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
		if (run == 0) {
			outf(o, "nothing to roll back\n");
			rc = 0;
			goto done;
		}
	}
	if (load_run(d, run, 1, &r, err) < 0)
		goto done;
	mark_matches(o, &r);
	res->run = run;
	if (wctx_init(&w, o, &r, err) < 0)
		goto done;
	/* newest first: exports, then INI files, in reverse plan order; the
	 * states are committed in batches, each after the folders of the
	 * batch's restored files are fsynced (a file restored before a crash
	 * has its original hash and is recognised next time) */
	if (db_exec(d, "BEGIN;", err) < 0)
		goto done;
	for (i = r.n, hi = r.n; i-- > 0;) {
		struct sitem *it = &r.items[i];
		struct ms_err lerr = MS_ERR_INIT;
		char cur[65] = "";
		int h;

		it->next = MI_NONE;
		it->write = 0;
		if (!it->match)
			goto batch;
		if (it->state == MI_PLANNED && !it->written) {
			it->next = MI_SKIPPED;
			set_reason(it, "not applied before the rollback");
		} else if (it->written && it->state != MI_ROLLED_BACK) {
			h = hash_file(o->fleet_dir, it->path, it->kind, cur, &it->mode,
				      &lerr);
			if (h < 0) {
				it->next = MI_FAILED;
				set_reason(it, "%s", lerr.msg);
			} else if (h == 0 && strcmp(cur, it->orig_sha) == 0) {
				it->next = MI_ROLLED_BACK;
			} else if ((h == 0 && strcmp(cur, it->new_sha) == 0) || o->force) {
				if (write_item(&w, it, it->orig ? it->orig : "", it->orig_len,
					       &lerr) < 0) {
					it->next = MI_FAILED;
					set_reason(it, "%s", lerr.msg);
				} else {
					it->next = MI_ROLLED_BACK;
					it->write = 1;
					if (h == 0 && strcmp(cur, it->new_sha) != 0)
						set_reason(it, "forced over a change made after the "
							   "migration");
				}
			} else {
				it->next = MI_CONFLICT;
				set_reason(it, h > 0 ? "the file no longer exists (use --force to "
					   "restore it)" : "the file changed after the migration "
					   "(use --force to restore the original anyway)");
			}
		}
		if (it->next != MI_NONE && set_item(d, run, it, 0, err) < 0) {
			sqlite3_exec(d->db, "ROLLBACK;", NULL, NULL, NULL);
			goto done;
		}
batch:
		if (i % BATCH != 0)
			continue;
		/* the batch's renames durable before its states are */
		if (sync_dirs(&w, &r, i, hi) > 0) {
			size_t k;
			for (k = i; k < hi; k++)
				if (r.items[k].write < 0 &&
				    set_item(d, run, &r.items[k], 0, err) < 0) {
					sqlite3_exec(d->db, "ROLLBACK;", NULL, NULL, NULL);
					goto done;
				}
		}
		hi = i;
		if (db_exec(d, "COMMIT;", err) < 0 ||
		    (i && db_exec(d, "BEGIN;", err) < 0))
			goto done;
	}
	if (!sqlite3_get_autocommit(d->db) && db_exec(d, "COMMIT;", err) < 0)
		goto done;
	for (i = 0; i < r.n; i++) {
		struct sitem *it = &r.items[i];
		if (!it->match || !it->written)
			continue;
		res->items++;
		count_state(res, it->state);
		outf(o, "%-11s %s %s%s%s\n", migrate_item_state_name(it->state), it->kind, it->path,
		     it->reason && it->state != MI_ROLLED_BACK ? ": " : "",
		     it->reason && it->state != MI_ROLLED_BACK ? it->reason : "");
	}
	{
		char sql[128];
		int left = 0;
		for (i = 0; i < r.n; i++)
			if (r.items[i].written && r.items[i].state != MI_ROLLED_BACK)
				left = 1;
		if (!left) {
			snprintf(sql, sizeof(sql), "UPDATE runs SET state = 'rolled-back' "
				 "WHERE id = %d;", run);
			if (db_exec(d, sql, err) < 0)
				goto done;
		}
	}
	if (res->rolled_back && write_changes(o, &r, 1, err) < 0)
		goto done;
	outf(o, "summary: run %d: %zu rolled back, %zu conflict, %zu failed\n", run,
	     res->rolled_back, res->conflict, res->failed);
	rc = 0;
done:
	wctx_release(&w);
	srun_release(&r);
	db_close(d);
	return rc;
}
