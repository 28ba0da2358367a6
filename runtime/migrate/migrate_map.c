/*
 * migrate_map.c - the mapping file of mailshift-migrate: which tenant and
 * app registration serve which mailbox domain, and where the migrated
 * connector talks to (docs/migrate.md).
 */
#include "migrate/migrate.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "base/fsutil.h"
#include "base/mem.h"
#include "auth/seal.h"
#include "auth/secret.h"

/* The mapping file. */

/* Where the migrated connector talks to: NULL / 0 = the default. */
struct mendpoints {
	char *graph_endpoint, *ca_file, *server;
	int port;
	enum migrate_notify notify;   /* MN_UNSET: the other level's */
};

struct mtenant {
	char **domains;
	size_t n_domains;
	char *tenant_id, *client_id, *client_secret, *certificate_file;
	char *authority, *secret_expires;
	struct mendpoints ep;
};

struct migrate_map {
	enum migrate_transport transport;
	char *connector;
	struct mendpoints ep;         /* top level: for tenants without their own */
	struct mtenant *tenants;
	size_t n_tenants;
};

static void endpoints_release(struct mendpoints *e)
{
	free(e->graph_endpoint);
	free(e->ca_file);
	free(e->server);
	memset(e, 0, sizeof(*e));
}

void migrate_map_free(struct migrate_map *m)
{
	size_t i, j;

	if (!m)
		return;
	for (i = 0; i < m->n_tenants; i++) {
		struct mtenant *t = &m->tenants[i];
		for (j = 0; j < t->n_domains; j++)
			free(t->domains[j]);
		free(t->domains);
		free(t->tenant_id);
		free(t->client_id);
		secret_free(t->client_secret);
		free(t->certificate_file);
		free(t->authority);
		free(t->secret_expires);
		endpoints_release(&t->ep);
	}
	endpoints_release(&m->ep);
	free(m->tenants);
	free(m->connector);
	free(m);
}

static int jstring(const cJSON *o, const char *key, char **out, int required,
		   const char *name, size_t idx, struct ms_err *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	*out = NULL;
	if (!v || cJSON_IsNull(v)) {
		if (required)
			return err_set(err, MS_ERR_DATA, "%s: tenants[%zu]: '%s' is missing",
				       name, idx, key);
		return 0;
	}
	if (!cJSON_IsString(v) || !v->valuestring[0] ||
	    strpbrk(v->valuestring, "\r\n"))
		return err_set(err, MS_ERR_DATA,
			       "%s: tenants[%zu]: '%s' must be a non-empty one-line string",
			       name, idx, key);
	if (!(*out = strdup(v->valuestring)))
		return err_nomem(err);
	return 0;
}

/* graphEndpoint, caFile, server and port of o (the top level when where
 * is "", else "tenants[N]: "), all optional. */
static int jendpoints(const cJSON *o, struct mendpoints *e, const char *name,
		      const char *where, struct ms_err *err)
{
	static const char *const keys[] = { "graphEndpoint", "caFile", "server" };
	char **dst[3];
	const cJSON *v;
	size_t k;

	dst[0] = &e->graph_endpoint;
	dst[1] = &e->ca_file;
	dst[2] = &e->server;
	for (k = 0; k < 3; k++) {
		v = cJSON_GetObjectItemCaseSensitive(o, keys[k]);
		if (!v || cJSON_IsNull(v))
			continue;
		if (!cJSON_IsString(v) || !v->valuestring[0] ||
		    strpbrk(v->valuestring, "\r\n") ||
		    (k != 1 && strpbrk(v->valuestring, " \t\"';")))
			return err_set(err, MS_ERR_DATA, "%s: %s'%s' must be a non-empty "
				       "one-line %s", name, where, keys[k],
				       k == 1 ? "path" : "string without spaces or quotes");
		if (k == 0 && strncasecmp(v->valuestring, "https://", 8) != 0)
			return err_set(err, MS_ERR_DATA, "%s: %s'graphEndpoint' must be an "
				       "https:// URL", name, where);
		if (!(*dst[k] = strdup(v->valuestring)))
			return err_nomem(err);
	}
	v = cJSON_GetObjectItemCaseSensitive(o, "notify");
	if (v && !cJSON_IsNull(v)) {
		if (cJSON_IsString(v) && strcasecmp(v->valuestring, "graph") == 0)
			e->notify = MN_GRAPH;
		else if (cJSON_IsString(v) && strcasecmp(v->valuestring, "smtp") == 0)
			e->notify = MN_SMTP;
		else if (cJSON_IsString(v) && strcasecmp(v->valuestring, "none") == 0)
			e->notify = MN_NONE;
		else
			return err_set(err, MS_ERR_DATA, "%s: %s'notify' must be graph, "
				       "smtp or none", name, where);
	}
	v = cJSON_GetObjectItemCaseSensitive(o, "port");
	if (v && !cJSON_IsNull(v)) {
		double d = -1;
		char *end = NULL;
		if (cJSON_IsNumber(v))
			d = v->valuedouble;
		else if (cJSON_IsString(v) && isdigit((unsigned char)v->valuestring[0]))
			d = strtod(v->valuestring, &end);
		if ((end && *end) || d < 1 || d > 65535 || d != (double)(int)d)
			return err_set(err, MS_ERR_DATA, "%s: %s'port' must be a number "
				       "from 1 to 65535", name, where);
		e->port = (int)d;
	}
	return 0;
}

/* Long (about 135 lines): one pass over the mapping file's keys, each
 * validated where it is read so the error names it. */
int migrate_map_parse(struct migrate_map **out, const char *name,
		      const char *json, size_t len, struct ms_err *err)
{
	struct migrate_map *m;
	cJSON *root = NULL;
	const cJSON *v, *tl, *t;
	size_t i;
	int rc = -1;

	*out = NULL;
	if (!name)
		name = "<map>";
	if (!(m = calloc(1, sizeof(*m))))
		return err_nomem(err);
	root = cJSON_ParseWithLength(json, len);
	if (!root || !cJSON_IsObject(root)) {
		err_set(err, MS_ERR_DATA, "%s: not a JSON object", name);
		goto done;
	}
	v = cJSON_GetObjectItemCaseSensitive(root, "transport");
	if (!v || cJSON_IsNull(v))
		m->transport = MT_KEEP;
	else if (!cJSON_IsString(v))
		goto bad_transport;
	else if (strcasecmp(v->valuestring, "imap") == 0)
		m->transport = MT_IMAP;
	else if (strcasecmp(v->valuestring, "pop") == 0 ||
		 strcasecmp(v->valuestring, "pop3") == 0)
		m->transport = MT_POP;
	else if (strcasecmp(v->valuestring, "graph") == 0)
		m->transport = MT_GRAPH;
	else if (strcasecmp(v->valuestring, "keep") == 0)
		m->transport = MT_KEEP;
	else
		goto bad_transport;
	v = cJSON_GetObjectItemCaseSensitive(root, "connector");
	if (v && !cJSON_IsNull(v)) {
		if (!cJSON_IsString(v) || !v->valuestring[0] ||
		    strpbrk(v->valuestring, "\"\r\n")) {
			err_set(err, MS_ERR_DATA, "%s: 'connector' must be a path", name);
			goto done;
		}
		if (!(m->connector = strdup(v->valuestring))) {
			err_nomem(err);
			goto done;
		}
	}
	if (jendpoints(root, &m->ep, name, "", err) < 0)
		goto done;
	tl = cJSON_GetObjectItemCaseSensitive(root, "tenants");
	if (!cJSON_IsArray(tl) || cJSON_GetArraySize(tl) == 0) {
		err_set(err, MS_ERR_DATA, "%s: 'tenants' must be a non-empty list", name);
		goto done;
	}
	if (!(m->tenants = calloc((size_t)cJSON_GetArraySize(tl), sizeof(*m->tenants)))) {
		err_nomem(err);
		goto done;
	}
	i = 0;
	cJSON_ArrayForEach(t, tl) {
		struct mtenant *mt = &m->tenants[i];
		const cJSON *dl = cJSON_GetObjectItemCaseSensitive(t, "domains"), *d;

		m->n_tenants = i + 1;
		if (!cJSON_IsObject(t)) {
			err_set(err, MS_ERR_DATA, "%s: tenants[%zu] is not an object", name, i);
			goto done;
		}
		if (!cJSON_IsArray(dl) || cJSON_GetArraySize(dl) == 0) {
			err_set(err, MS_ERR_DATA, "%s: tenants[%zu]: 'domains' must be a "
				"non-empty list", name, i);
			goto done;
		}
		if (!(mt->domains = calloc((size_t)cJSON_GetArraySize(dl), sizeof(char *)))) {
			err_nomem(err);
			goto done;
		}
		cJSON_ArrayForEach(d, dl) {
			char *s;
			if (!cJSON_IsString(d) || !d->valuestring[0] ||
			    strpbrk(d->valuestring, "@ \t")) {
				err_set(err, MS_ERR_DATA, "%s: tenants[%zu]: bad domain", name, i);
				goto done;
			}
			if (!(s = strdup(d->valuestring))) {
				err_nomem(err);
				goto done;
			}
			for (char *p = s; *p; p++)
				*p = (char)tolower((unsigned char)*p);
			mt->domains[mt->n_domains++] = s;
		}
		if (jstring(t, "tenantId", &mt->tenant_id, 1, name, i, err) < 0 ||
		    jstring(t, "clientId", &mt->client_id, 1, name, i, err) < 0 ||
		    jstring(t, "clientSecret", &mt->client_secret, 0, name, i, err) < 0 ||
		    jstring(t, "certificateFile", &mt->certificate_file, 0, name, i, err) < 0 ||
		    jstring(t, "authority", &mt->authority, 0, name, i, err) < 0 ||
		    jstring(t, "secretExpires", &mt->secret_expires, 0, name, i, err) < 0)
			goto done;
		{
			char where[48];
			snprintf(where, sizeof(where), "tenants[%zu]: ", i);
			if (jendpoints(t, &mt->ep, name, where, err) < 0)
				goto done;
		}
		if (!mt->client_secret == !mt->certificate_file) {
			err_set(err, MS_ERR_DATA, "%s: tenants[%zu]: give exactly one of "
				"'clientSecret' and 'certificateFile'", name, i);
			goto done;
		}
		if (mt->client_secret && secret_kind(mt->client_secret) == SECRET_LEGACY) {
			/* a long base64 literal is fine as a secret: it is sealed */
		}
		i++;
	}
	*out = m;
	m = NULL;
	rc = 0;
	goto done;
bad_transport:
	err_set(err, MS_ERR_DATA, "%s: 'transport' must be imap, pop, graph or keep",
		name);
done:
	if (root) {
		/* the parse tree holds literal secrets: wipe them */
		cJSON *tt;
		tl = cJSON_GetObjectItemCaseSensitive(root, "tenants");
		if (cJSON_IsArray(tl))
			cJSON_ArrayForEach(tt, tl) {
				cJSON *s = cJSON_GetObjectItemCaseSensitive(tt, "clientSecret");
				if (cJSON_IsString(s))
					mem_wipe(s->valuestring, strlen(s->valuestring));
			}
		cJSON_Delete(root);
	}
	migrate_map_free(m);
	return rc;
}

int migrate_map_load(struct migrate_map **m, const char *path,
		     struct ms_err *err)
{
	char *data = NULL;
	size_t len = 0;
	int rc;

	*m = NULL;
	if (fs_read_file(path, MIGRATE_MAP_MAX, &data, &len, err) < 0)
		return -1;
	rc = migrate_map_parse(m, path, data, len, err);
	mem_wipe(data, len);
	free(data);
	return rc;
}

enum migrate_transport migrate_map_transport(const struct migrate_map *m)
{
	return m->transport;
}

const char *migrate_map_connector(const struct migrate_map *m)
{
	return m->connector;
}

static void view(const struct migrate_map *m, const struct mtenant *t,
		 struct migrate_tenant_view *v)
{
	v->graph_endpoint = t->ep.graph_endpoint ? t->ep.graph_endpoint :
			    m->ep.graph_endpoint;
	v->ca_file = t->ep.ca_file ? t->ep.ca_file : m->ep.ca_file;
	v->server = t->ep.server ? t->ep.server : m->ep.server;
	v->port = t->ep.port ? t->ep.port : m->ep.port;
	v->notify = t->ep.notify ? t->ep.notify : m->ep.notify;
	v->tenant_id = t->tenant_id;
	v->client_id = t->client_id;
	v->client_secret = t->client_secret;
	v->certificate_file = t->certificate_file;
	v->authority = t->authority;
	v->secret_expires = t->secret_expires;
	v->secret_literal = t->client_secret &&
			    strncmp(t->client_secret, "env:", 4) != 0 &&
			    strncmp(t->client_secret, "file:", 5) != 0 &&
			    !seal_is_sealed(t->client_secret);
}

int migrate_map_find(const struct migrate_map *m, const char *mailbox,
		     struct migrate_tenant_view *v)
{
	const char *at = mailbox ? strrchr(mailbox, '@') : NULL;
	size_t i, j, n;

	if (!at || !at[1])
		return -1;
	at++;
	n = strlen(at);
	for (i = 0; i < m->n_tenants; i++)
		for (j = 0; j < m->tenants[i].n_domains; j++) {
			const char *d = m->tenants[i].domains[j];
			size_t dn = strlen(d);
			if (strcasecmp(at, d) == 0 ||
			    (n > dn + 1 && at[n - dn - 1] == '.' &&
			     strcasecmp(at + n - dn, d) == 0)) {
				view(m, &m->tenants[i], v);
				return 0;
			}
		}
	return -1;
}

int migrate_map_find_id(const struct migrate_map *m, const char *tenant_id,
			const char *client_id, struct migrate_tenant_view *v)
{
	size_t i;

	for (i = 0; i < m->n_tenants; i++)
		if (strcmp(m->tenants[i].tenant_id, tenant_id) == 0 &&
		    strcmp(m->tenants[i].client_id, client_id) == 0) {
			view(m, &m->tenants[i], v);
			return 0;
		}
	return -1;
}
