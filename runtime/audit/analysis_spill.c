/*
 * analysis_spill.c - the audit of a big fleet kept on disk: verdicts
 * spilled to a temporary SQLite database and read back in report order.
 */
#include "audit/analysis_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sqlite3.h>

#include "base/buf.h"
#include "base/mem.h"
#include "transport/mailbox/mailbox.h"
#include "base/sqldb.h"
#include "base/utf8.h"

/*
 * Spilled verdicts (analysis_opts.spill): one row per connector job in a
 * temporary SQLite database (a private file SQLite deletes on close, with
 * a small page cache), read back in report order through an index.  The
 * cross-job shared-ini finding is added while reading, from a summary of
 * each INI file kept in memory while the rows go in (the number of jobs
 * using it, whether one needs migration, its first SHARED_LIST_MAX + 1
 * jobs in report order): bounded by the number of collected INI files,
 * not by the number of jobs.
 */
#define SPILL_CACHE_STR "2048"       /* KB of page cache, as PRAGMA cache_size */
#define SPILL_ORDER "machine COLLATE NOCASE, schedule COLLATE NOCASE, " \
		    "job COLLATE NOCASE, machine, schedule, job, source, line"
#define SPILL_MAX_CODES 128

/* One of the first jobs of an INI group, with its report-order key:
 * machine, schedule and job in data (schedule at data + so, job at
 * data + jo); source borrowed from audit_spill.sources. */
struct gmember {
	sqlite3_int64 id;               /* rowid in the spill */
	int line;
	unsigned so, jo;
	const char *source;
	char data[];
};

/* The sort key of a job, whether a member or a candidate. */
struct gkey {
	sqlite3_int64 id;
	int line;
	const char *machine, *schedule, *job, *source;
};

static void gkey_of(const struct gmember *m, struct gkey *k)
{
	k->id = m->id;
	k->line = m->line;
	k->machine = m->data;
	k->schedule = m->data + m->so;
	k->job = m->data + m->jo;
	k->source = m->source;
}

struct igroup {
	char *file;                     /* fleet-relative INI file */
	size_t n;                       /* connector jobs using it */
	int warn;                       /* one needs migration or is at risk */
	size_t m;                       /* members below, in report order */
	struct gmember *mem[SHARED_LIST_MAX + 1];
};

struct audit_spill {
	sqlite3 *db;
	sqlite3_stmt *ins;
	sqlite3_stmt *find, *addsrc;    /* a job read before, from another export */
	const char *codes[SPILL_MAX_CODES];     /* the static finding codes */
	size_t n_codes;
	struct igroup **groups;         /* open addressing on file */
	size_t n_groups, alloc_groups;
	char **sources;                 /* export files named by members */
	size_t n_sources, alloc_sources;
	/* the jobs spilled so far, as hashes of what s->find compares
	 * (machine with ASCII case folded, schedule, job): a job whose hash
	 * is not here was not read before, and is not looked up */
	uint32_t *seen;                 /* open addressing, 0 = free */
	size_t n_seen, alloc_seen;
	int seen_off;                   /* out of memory once: always look up */
};

/* SPILL_ORDER (SQLite's NOCASE: ascii_casecmp), then the rowid (an
 * index's last key). */
static int gkey_cmp(const struct gkey *a, const struct gkey *b)
{
	int c;

	if ((c = ascii_casecmp(a->machine, b->machine)) ||
	    (c = ascii_casecmp(a->schedule, b->schedule)) ||
	    (c = ascii_casecmp(a->job, b->job)) ||
	    (c = strcmp(a->machine, b->machine)) ||
	    (c = strcmp(a->schedule, b->schedule)) ||
	    (c = strcmp(a->job, b->job)) ||
	    (c = strcmp(a->source, b->source)))
		return c;
	if (a->line != b->line)
		return a->line < b->line ? -1 : 1;
	return (a->id > b->id) - (a->id < b->id);
}

static void igroup_free(struct igroup *g)
{
	size_t i;

	if (!g)
		return;
	for (i = 0; i < g->m; i++)
		free(g->mem[i]);
	free(g->file);
	free(g);
}

static struct igroup **group_slot(struct igroup **slots, size_t alloc,
				  const char *file)
{
	size_t i = (size_t)analysis_fnv1a(file, strlen(file)) & (alloc - 1);

	while (slots[i] && strcmp(slots[i]->file, file) != 0)
		i = (i + 1) & (alloc - 1);
	return &slots[i];
}

static const struct igroup *group_find(const struct audit_spill *s,
				       const char *file)
{
	if (!s->alloc_groups)
		return NULL;
	return *group_slot(s->groups, s->alloc_groups, file);
}

/* The export file of a job, kept once: jobs come file by file. */
static const char *spill_source(struct audit_spill *s, const char *source)
{
	if (s->n_sources && strcmp(s->sources[s->n_sources - 1], source) == 0)
		return s->sources[s->n_sources - 1];
	if (MEM_GROW(s->sources, s->alloc_sources, s->n_sources + 1, NULL))
		return NULL;
	if (!(s->sources[s->n_sources] = strdup(source)))
		return NULL;
	return s->sources[s->n_sources++];
}

static struct gmember *gmember_new(struct audit_spill *s,
				   const struct gkey *k)
{
	size_t lm = strlen(k->machine) + 1, ls = strlen(k->schedule) + 1,
	       lj = strlen(k->job) + 1;
	struct gmember *g;

	if (lm + ls + lj > UINT_MAX || !(g = malloc(sizeof(*g) + lm + ls + lj)))
		return NULL;
	if (!(g->source = spill_source(s, k->source))) {
		free(g);
		return NULL;
	}
	g->id = k->id;
	g->line = k->line;
	g->so = (unsigned)lm;
	g->jo = (unsigned)(lm + ls);
	memcpy(g->data, k->machine, lm);
	memcpy(g->data + lm, k->schedule, ls);
	memcpy(g->data + lm + ls, k->job, lj);
	return g;
}

/* Count a spilled job in its INI group. */
static int group_add(struct audit_spill *s, const struct job_verdict *v,
		     sqlite3_int64 id, struct ms_err *err)
{
	struct igroup **slot, *g;
	struct gmember *nm;
	struct gkey key, mk;
	size_t i;

	if ((s->n_groups + 1) * 2 > s->alloc_groups) {
		size_t na = s->alloc_groups ? s->alloc_groups * 2 : 1024;
		struct igroup **ns = calloc(na, sizeof(*ns));

		if (!ns)
			return err_nomem(err);
		for (i = 0; i < s->alloc_groups; i++)
			if (s->groups[i])
				*group_slot(ns, na, s->groups[i]->file) = s->groups[i];
		free(s->groups);
		s->groups = ns;
		s->alloc_groups = na;
	}
	slot = group_slot(s->groups, s->alloc_groups, v->ini_file);
	if (!(g = *slot)) {
		if (!(g = calloc(1, sizeof(*g))) || !(g->file = strdup(v->ini_file))) {
			free(g);
			return err_nomem(err);
		}
		*slot = g;
		s->n_groups++;
	}
	g->n++;
	if (v->status == STATUS_NEEDS_MIGRATION || v->status == STATUS_AT_RISK)
		g->warn = 1;
	/* keep the first SHARED_LIST_MAX + 1 in report order */
	key.id = id;
	key.line = v->source_line;
	key.machine = v->machine;
	key.schedule = v->schedule;
	key.job = v->job;
	key.source = v->source;
	for (i = g->m; i > 0; i--) {
		gkey_of(g->mem[i - 1], &mk);
		if (gkey_cmp(&key, &mk) >= 0)
			break;
	}
	if (i > SHARED_LIST_MAX)
		return 0;
	if (!(nm = gmember_new(s, &key)))
		return err_nomem(err);
	if (g->m == SHARED_LIST_MAX + 1)
		free(g->mem[--g->m]);
	memmove(&g->mem[i + 1], &g->mem[i], (g->m - i) * sizeof(g->mem[0]));
	g->mem[i] = nm;
	g->m++;
	return 0;
}

static int spill_fail(struct audit_spill *s, struct ms_err *err)
{
	return err_set(err, MS_ERR_IO, "cannot keep the audit in a temporary "
		       "database: %s", s && s->db ? sqlite3_errmsg(s->db) :
		       "out of memory");
}

void audit_spill_free(struct audit_spill *s)
{
	size_t i;

	if (!s)
		return;
	sqlite3_finalize(s->ins);
	sqlite3_finalize(s->find);
	sqlite3_finalize(s->addsrc);
	sqlite3_close(s->db);
	for (i = 0; i < s->alloc_groups; i++)
		igroup_free(s->groups[i]);
	free(s->groups);
	for (i = 0; i < s->n_sources; i++)
		free(s->sources[i]);
	free(s->sources);
	free(s->seen);
	free(s);
}

int audit_spill_open(struct audit_spill **out, struct ms_err *err)
{
	static const char schema[] =
		"CREATE TABLE jobs(machine TEXT, schedule TEXT, job TEXT, "
		"source TEXT, line INT, command_line TEXT, ini TEXT, "
		"ini_file TEXT, ini_local TEXT, protocol INT, server TEXT, "
		"port INT, tls INT, tls_verify INT, auth INT, microsoft INT, "
		"status INT, findings BLOB, tls_mode INT);"
		"CREATE INDEX jobs_order ON jobs(" SPILL_ORDER ");"
		"BEGIN;";
	struct audit_spill *s;

	*out = NULL;
	if (!(s = calloc(1, sizeof(*s))))
		return err_nomem(err);
	if (sqldb_open_scratch(&s->db, err)) {
		audit_spill_free(s);
		return -1;
	}
	if (sqlite3_exec(s->db, "PRAGMA cache_size=-" SPILL_CACHE_STR ";", NULL, NULL,
			 NULL) != SQLITE_OK ||
	    sqlite3_exec(s->db, schema, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "INSERT INTO jobs VALUES(?,?,?,?,?,?,?,?,?,"
			       "?,?,?,?,?,?,?,?,?,?)", -1, &s->ins, NULL) != SQLITE_OK ||
	    /* the same job: the report-order index finds it by its first
	     * three columns (case ignored), then names must match exactly */
	    sqlite3_prepare_v2(s->db, "SELECT rowid FROM jobs WHERE machine = ?1 "
			       "COLLATE NOCASE AND schedule = ?2 COLLATE NOCASE AND "
			       "job = ?3 COLLATE NOCASE AND schedule = ?2 AND job = ?3",
			       -1, &s->find, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "UPDATE jobs SET source = source || CASE line "
			       "WHEN 0 THEN '' ELSE ':' || line END || ', ' || ?2, "
			       "line = 0 WHERE rowid = ?1", -1, &s->addsrc,
			       NULL) != SQLITE_OK) {
		spill_fail(s, err);
		audit_spill_free(s);
		return -1;
	}
	*out = s;
	return 0;
}

static int spill_code(struct audit_spill *s, const char *code)
{
	size_t i;

	for (i = 0; i < s->n_codes; i++)
		if (s->codes[i] == code || strcmp(s->codes[i], code) == 0)
			return (int)i;
	if (s->n_codes == SPILL_MAX_CODES)
		return -1;
	s->codes[s->n_codes] = code;
	return (int)s->n_codes++;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

/* FNV-1a of the job's identity as s->find matches it, folded to 32 bits:
 * equal for any two jobs it finds equal (SQLite's NOCASE folds ASCII
 * letters only); never 0, the free slot.  Two jobs with the same hash
 * are only looked up. */
static uint32_t seen_hash(const struct job_verdict *v)
{
	uint64_t h = 1469598103934665603ULL;
	const unsigned char *p;
	const char *parts[3];
	size_t i;

	parts[0] = v->machine;
	parts[1] = v->schedule;
	parts[2] = v->job;
	for (i = 0; i < 3; i++) {
		for (p = (const unsigned char *)(parts[i] ? parts[i] : ""); *p; p++) {
			h ^= i == 0 && *p >= 'A' && *p <= 'Z' ? *p + 32u : *p;
			h *= 1099511628211ULL;
		}
		h ^= 0x100u + i;        /* the end of a part */
		h *= 1099511628211ULL;
	}
	h ^= h >> 32;
	return (uint32_t)h ? (uint32_t)h : 1;
}

/* Was a job with v's hash spilled before?  Adds it when not (always 1,
 * "look it up", once the set could not grow). */
static int seen_before(struct audit_spill *s, const struct job_verdict *v)
{
	uint32_t h = seen_hash(v);
	size_t i;

	if (s->seen_off)
		return 1;
	if ((s->n_seen + 1) * 2 > s->alloc_seen) {
		size_t na = s->alloc_seen ? s->alloc_seen * 2 : 4096, k;
		uint32_t *ns = calloc(na, sizeof(*ns));

		if (!ns) {
			s->seen_off = 1;
			return 1;
		}
		for (k = 0; k < s->alloc_seen; k++) {
			if (!s->seen[k])
				continue;
			for (i = (size_t)s->seen[k] & (na - 1); ns[i]; i = (i + 1) & (na - 1))
				;
			ns[i] = s->seen[k];
		}
		free(s->seen);
		s->seen = ns;
		s->alloc_seen = na;
	}
	for (i = (size_t)h & (s->alloc_seen - 1); s->seen[i]; i = (i + 1) & (s->alloc_seen - 1))
		if (s->seen[i] == h)
			return 1;
	s->seen[i] = h;
	s->n_seen++;
	return 0;
}

/* Findings as one blob: code index, severity, message, NUL. */
/* The same job (machine, schedule and job name; Windows machine names
 * ignore case, schedule and job names do not) read again from another
 * export, e.g. a schedule exported twice: its source is added to the
 * row's, "a.json:3, b.json:7".  Returns 1 when v was such a job. */
static int spill_merge(struct audit_spill *s, const struct job_verdict *v,
		       struct ms_err *err)
{
	sqlite3_int64 id;
	char *src = NULL;
	int r;

	if (!seen_before(s, v))
		return 0;       /* most jobs: no lookup */
	bind_text(s->find, 1, v->machine);
	bind_text(s->find, 2, v->schedule);
	bind_text(s->find, 3, v->job);
	r = sqlite3_step(s->find);
	id = r == SQLITE_ROW ? sqlite3_column_int64(s->find, 0) : 0;
	sqlite3_reset(s->find);
	if (r != SQLITE_ROW && r != SQLITE_DONE)
		return spill_fail(s, err);
	if (r == SQLITE_DONE)
		return 0;
	if (audit_job_source(v, &src, err) < 0)
		return -1;
	sqlite3_bind_int64(s->addsrc, 1, id);
	sqlite3_bind_text(s->addsrc, 2, src, -1, SQLITE_TRANSIENT);
	r = sqlite3_step(s->addsrc);
	sqlite3_reset(s->addsrc);
	free(src);
	return r == SQLITE_DONE ? 1 : spill_fail(s, err);
}

int audit_spill_add(struct audit_spill *s, const struct job_verdict *v,
		    struct ms_err *err)
{
	struct ms_err lerr = MS_ERR_INIT;
	sqlite3_stmt *st = s->ins;
	struct buf b;
	size_t i;
	int rc;

	if ((rc = spill_merge(s, v, err)) != 0)
		return rc;
	rc = -1;
	buf_init(&b, BUF_DEFAULT_CAP);
	for (i = 0; i < v->n_findings; i++) {
		int c = spill_code(s, v->findings[i].code);
		unsigned char hdr[2];

		if (c < 0) {
			err_set(err, MS_ERR_INTERNAL, "too many finding codes");
			goto done;
		}
		hdr[0] = (unsigned char)c;
		hdr[1] = (unsigned char)v->findings[i].severity;
		if (buf_append(&b, hdr, 2, &lerr) < 0 ||
		    buf_append(&b, v->findings[i].message,
			       strlen(v->findings[i].message) + 1, &lerr) < 0) {
			err_set(err, lerr.code, "%s", lerr.msg);
			goto done;
		}
	}
	bind_text(st, 1, v->machine);
	bind_text(st, 2, v->schedule);
	bind_text(st, 3, v->job);
	bind_text(st, 4, v->source);
	sqlite3_bind_int(st, 5, v->source_line);
	bind_text(st, 6, v->command_line);
	bind_text(st, 7, v->ini);
	bind_text(st, 8, v->ini_file);
	bind_text(st, 9, v->ini_local);
	sqlite3_bind_int(st, 10, (int)v->protocol);
	bind_text(st, 11, v->server);
	sqlite3_bind_int(st, 12, v->port);
	sqlite3_bind_int(st, 13, (int)v->tls);
	sqlite3_bind_int(st, 14, v->tls_verify);
	sqlite3_bind_int(st, 15, (int)v->auth);
	sqlite3_bind_int(st, 16, v->microsoft);
	sqlite3_bind_int(st, 17, (int)v->status);
	if (b.len > INT_MAX) {
		err_set(err, MS_ERR_TOOBIG, "a job has too many findings");
		goto done;
	}
	sqlite3_bind_blob(st, 18, b.data ? b.data : "", (int)b.len, SQLITE_STATIC);
	sqlite3_bind_int(st, 19, !v->tls_mode ? -1 :
			 strcmp(v->tls_mode, "implicit") == 0 ? TLSM_IMPLICIT :
			 strcmp(v->tls_mode, "starttls") == 0 ? TLSM_STARTTLS : TLSM_NONE);
	if (sqlite3_step(st) != SQLITE_DONE) {
		spill_fail(s, err);
		goto done;
	}
	if (v->ini_file &&
	    group_add(s, v, sqlite3_last_insert_rowid(s->db), err) < 0)
		goto done;
	rc = 0;
done:
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	buf_release(&b);
	return rc;
}

/* After the scan.  The report-order index was kept up during the scan
 * (it finds the same job from another export, too), where the
 * evaluating thread waits for the reader anyway; built here, it sorted
 * every row on one thread after the scan. */
int audit_spill_finish(struct audit *a, struct ms_err *err)
{
	static const char sql[] = "COMMIT;";
	struct audit_spill *s = a->spill;
	sqlite3_stmt *st = NULL;

	sqlite3_finalize(s->ins);
	s->ins = NULL;
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "SELECT count(*) FROM (SELECT DISTINCT "
			       "machine COLLATE NOCASE FROM jobs)", -1, &st,
			       NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return spill_fail(s, err);
	}
	a->n_machines = (size_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return 0;
}

/* How many connector jobs use the collected INI file (spilled audit). */
size_t audit_spill_ini_jobs(const struct audit_spill *s, const char *file)
{
	const struct igroup *g = group_find(s, file);

	return g ? g->n : 0;
}

static char *col_text(sqlite3_stmt *st, int i)
{
	return (char *)(uintptr_t)sqlite3_column_text(st, i);
}

/* The shared-ini finding of a spilled job, as audit_shared_inis() makes it;
 * *owned is its message (the caller frees it), NULL when none. */
static int spill_shared(const struct audit_spill *s, sqlite3_int64 self,
			struct job_verdict *v, char **owned, struct ms_err *err)
{
	struct ms_err lerr = MS_ERR_INIT;
	const struct igroup *g = group_find(s, v->ini_file);
	struct buf b;
	size_t i, shown = 0;
	char *msg;

	*owned = NULL;
	if (!g || g->n < 2)
		return 0;
	/* the message of audit_shared_inis(), written in one buffer */
	buf_init(&b, 64 * 1024);
	buf_appendf(&b, &lerr, "INI file shared with %zu other job%s: ", g->n - 1,
		    g->n - 1 == 1 ? "" : "s");
	for (i = 0; i < g->m; i++) {
		const struct gmember *w = g->mem[i];

		if (w->id == self)
			continue;
		if (shown++ < SHARED_LIST_MAX &&
		    ((shown > 1 && buf_append(&b, ", ", 2, &lerr) < 0) ||
		     buf_appends(&b, w->data + w->so, &lerr) < 0 ||
		     buf_append(&b, "/", 1, &lerr) < 0 ||
		     buf_appends(&b, w->data + w->jo, &lerr) < 0 ||
		     buf_append(&b, " (", 2, &lerr) < 0 ||
		     buf_appends(&b, w->data, &lerr) < 0 ||
		     buf_append(&b, ")", 1, &lerr) < 0))
			break;
	}
	if (g->n - 1 > SHARED_LIST_MAX)
		buf_appendf(&b, &lerr, " and %zu more", g->n - 1 - SHARED_LIST_MAX);
	buf_appends(&b, "; changing it changes all of them", &lerr);
	if (lerr.code != MS_OK) {
		buf_release(&b);
		return err_nomem(err);
	}
	if (!(msg = buf_detach(&b, NULL)) ||
	    audit_add_finding(&v->findings, &v->n_findings, "shared-ini",
			g->warn ? SEV_WARNING : SEV_INFO, msg, err) < 0)
		return err_nomem(err);
	*owned = msg;
	analysis_sort_findings(v);
	return 0;
}

int audit_spill_each(const struct audit *a, unsigned mask,
		      int (*fn)(const struct job_verdict *v, void *ctx,
				struct ms_err *err),
		      void *ctx, struct ms_err *err)
{
	struct audit_spill *s = a->spill;
	const struct audit_problem *pr;
	sqlite3_stmt *st = NULL;
	struct job_verdict v;
	char *marked = NULL;
	int r, rc = -1;

	if (sqlite3_prepare_v2(s->db, "SELECT rowid, machine, schedule, job, "
			       "source, line, command_line, ini, ini_file, "
			       "ini_local, protocol, server, port, tls, tls_verify, "
			       "auth, microsoft, status, findings, tls_mode FROM jobs ORDER BY "
			       SPILL_ORDER, -1, &st, NULL) != SQLITE_OK)
		return spill_fail(s, err);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *fb, *p, *end;
		char *owned = NULL;
		size_t i, nf = 0;
		int frc;

		memset(&v, 0, sizeof(v));
		v.status = (enum job_status)sqlite3_column_int(st, 17);
		if ((unsigned)v.status >= STATUS_COUNT ||
		    !(mask & (1u << v.status)))
			continue;
		/* strings are borrowed from the row */
		v.machine = col_text(st, 1);
		v.schedule = col_text(st, 2);
		v.job = col_text(st, 3);
		v.source = col_text(st, 4);
		v.source_line = sqlite3_column_int(st, 5);
		v.command_line = col_text(st, 6);
		v.ini = col_text(st, 7);
		v.ini_file = col_text(st, 8);
		v.ini_local = col_text(st, 9);
		v.protocol = (enum mail_protocol)sqlite3_column_int(st, 10);
		v.server = col_text(st, 11);
		v.port = sqlite3_column_int(st, 12);
		v.tls = (enum tls_level)sqlite3_column_int(st, 13);
		v.tls_verify = sqlite3_column_int(st, 14);
		v.auth = (enum auth_kind)sqlite3_column_int(st, 15);
		v.microsoft = sqlite3_column_int(st, 16);
		if (sqlite3_column_int(st, 19) >= 0)
			v.tls_mode = mailbox_tls_mode_name(
				(enum tls_mode)sqlite3_column_int(st, 19));
		fb = sqlite3_column_blob(st, 18);
		end = fb + sqlite3_column_bytes(st, 18);
		for (p = fb; p && p + 2 < end; p += 2 + strlen((const char *)p + 2) + 1)
			nf++;
		if (nf && !(v.findings = calloc(nf, sizeof(*v.findings)))) {
			err_nomem(err);
			goto done;
		}
		/* messages borrowed from the row, but the shared-ini one */
		for (p = fb, i = 0; i < nf; i++) {
			v.findings[i].code = p[0] < s->n_codes ? s->codes[p[0]] : "unknown";
			v.findings[i].severity = (enum finding_severity)p[1];
			v.findings[i].message = (char *)(uintptr_t)(p + 2);
			p += 2 + strlen((const char *)p + 2) + 1;
		}
		v.n_findings = nf;
		frc = v.ini_file ? spill_shared(s, sqlite3_column_int64(st, 0), &v,
						&owned, err) : 0;
		if (frc == 0 && (pr = audit_problem_of(a, v.source)))
			audit_mark_incomplete(&v, pr, &marked);
		if (frc == 0)
			frc = fn(&v, ctx, err);
		free(owned);
		owned = NULL;
		free(marked);
		marked = NULL;
		free(v.findings);
		if (frc < 0)
			goto done;
	}
	if (r != SQLITE_DONE) {
		spill_fail(s, err);
		goto done;
	}
	rc = 0;
done:
	sqlite3_finalize(st);
	return rc;
}
