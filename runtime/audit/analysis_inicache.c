/*
 * analysis_inicache.c - the INI cache of an audit run: each distinct INI
 * lookup of the jobs resolved and read once (see struct ini_entry).
 */
#include "audit/analysis_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fsutil.h"
#include "base/mem.h"
#include "ini/ini.h"
#include "ini/rules.h"

/* Make "FILE:LINE: msg" name the fleet-relative file. */
static char *relative_message(const char *msg, const char *local,
			      const char *rel)
{
	size_t n = strlen(local);
	char *out = NULL;

	if (rel && strncmp(msg, local, n) == 0) {
		if (asprintf(&out, "%s%s", rel, msg + n) < 0)
			out = NULL;
		return out;
	}
	return strdup(msg);
}



/* An INI file the connector refuses because it is Windows-1252 ("ANSI")
 * is still read, converted, so the audit judges the rest of it too. */
static int load_cp1252(struct ini_entry *e)
{
	struct ms_err lerr = MS_ERR_INIT;
	struct ini *ini = NULL;
	char *data = NULL;
	size_t len = 0;
	int was = 0, rc = -1;

	if (fs_read_file(e->fp.file, INI_MAX_FILE, &data, &len, &lerr) < 0 ||
	    !ini_is_cp1252(data, len) ||
	    ini_parse_any(&ini, e->fp.file, data, len, &was, &lerr) < 0 ||
	    ini_check(ini, &lerr) < 0 ||
	    config_from_ini(&e->cfg, ini, e->fp.file, &lerr) < 0)
		goto out;
	e->cp1252 = 1;
	e->have_cfg = 1;
	rc = 0;
out:
	ini_free(ini);
	free(data);
	return rc;
}


uint64_t analysis_fnv1a(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

void audit_ini_entry_free(struct ini_entry *e)
{
	if (!e)
		return;
	free(e->key);
	fleet_path_release(&e->fp);
	if (e->have_cfg)
		config_release(&e->cfg);
	rules_memo_release(&e->rules);
	free(e->load_msg);
	free(e);
}

void audit_ini_cache_free(struct ini_cache *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->alloc; i++)
		audit_ini_entry_free(c->slots[i]);
	free(c->slots);
	free(c->ring);
	rules_masks_free(c->masks);
	memset(c, 0, sizeof(*c));
}

static struct ini_entry **ini_cache_slot(struct ini_cache *c, const char *key,
					 size_t keylen)
{
	size_t i = (size_t)analysis_fnv1a(key, keylen) & (c->alloc - 1);

	while (c->slots[i] && (c->slots[i]->keylen != keylen ||
			       memcmp(c->slots[i]->key, key, keylen) != 0))
		i = (i + 1) & (c->alloc - 1);
	return &c->slots[i];
}

static int ini_cache_grow(struct ini_cache *c)
{
	struct ini_cache nc;
	size_t i;

	memset(&nc, 0, sizeof(nc));
	nc.alloc = c->alloc ? c->alloc * 2 : 1024;
	if (!(nc.slots = calloc(nc.alloc, sizeof(*nc.slots))))
		return -1;
	for (i = 0; i < c->alloc; i++)
		if (c->slots[i])
			*ini_cache_slot(&nc, c->slots[i]->key, c->slots[i]->keylen) =
			    c->slots[i];
	free(c->slots);
	c->slots = nc.slots;    /* the rest of *c stays */
	c->alloc = nc.alloc;
	return 0;
}

/* Read e's INI file into e->cfg (again, when it was evicted): the same
 * outcome each time, the failure message kept in e->load_msg. */
static int ini_entry_load(struct ini_entry *e, struct ms_err *err)
{
	struct ms_err lerr = MS_ERR_INIT;

	e->evicted = 0;
	if (e->fp.where != FLEET_FOUND)
		return 0;
	if (fleet_not_a_file(e->fp.file)) {
		/* a FIFO would hold the audit for ever */
		err_set(&lerr, MS_ERR_IO, "%s: %s", e->fp.file, FLEET_NOT_A_FILE);
		if (!e->load_msg &&
		    !(e->load_msg = relative_message(lerr.msg, e->fp.file, e->fp.rel)))
			return err_nomem(err);
		return 0;
	}
	if (config_load(&e->cfg, e->fp.file, &lerr) < 0 && load_cp1252(e) < 0) {
		if (lerr.code == MS_ERR_NOMEM)
			return err_nomem(err);
		if (!e->load_msg &&
		    !(e->load_msg = relative_message(lerr.msg, e->fp.file, e->fp.rel)))
			return err_nomem(err);
	} else {
		e->have_cfg = 1;
	}
	return 0;
}

/* e has just been loaded: keep its config among the max newest,
 * releasing the oldest's.  (Without memory for the ring, every config
 * is kept, as when nothing was ever released.) */
static void ini_cache_loaded(struct ini_cache *c, struct ini_entry *e,
			     size_t max)
{
	struct ini_entry *old;

	if (!e->have_cfg)
		return;         /* nothing held */
	if (!c->ring) {
		if (!(c->ring = calloc(max ? max : INI_CACHE_LOADED, sizeof(*c->ring))))
			return;
		c->ring_cap = max ? max : INI_CACHE_LOADED;
	}
	if (c->ring_n < c->ring_cap) {
		c->ring[c->ring_n++] = e;
		return;
	}
	old = c->ring[c->head];
	config_release(&old->cfg);
	old->have_cfg = 0;
	old->evicted = 1;
	c->ring[c->head] = e;
	c->head = (c->head + 1) % c->ring_cap;
}

/* See analysis_int.h. */
int audit_ini_lookup(struct ini_cache *c, const struct analysis_opts *o,
		     const char *machine, const char *inifile,
		     const char *working_dir, struct ini_entry **out,
		     struct ms_err *err)
{
	struct ini_entry *e = NULL, **slot = NULL;
	char *key = NULL;
	size_t lm = strlen(machine ? machine : ""), li = strlen(inifile ? inifile : ""),
	       lw = strlen(working_dir ? working_dir : "");
	size_t keylen = lm + li + lw + 5;

	*out = NULL;
	/* the key tells NULL from "" for inifile and working_dir */
	if (!(key = malloc(keylen)))
		return err_nomem(err);
	memcpy(key, machine ? machine : "", lm);
	key[lm] = '\0';
	key[lm + 1] = inifile ? '1' : '0';
	memcpy(key + lm + 2, inifile ? inifile : "", li);
	key[lm + 2 + li] = '\0';
	key[lm + 3 + li] = working_dir ? '1' : '0';
	memcpy(key + lm + 4 + li, working_dir ? working_dir : "", lw);
	key[keylen - 1] = '\0';
	if (c) {
		if ((c->n + 1) * 2 > c->alloc && ini_cache_grow(c) < 0) {
			free(key);
			return err_nomem(err);
		}
		slot = ini_cache_slot(c, key, keylen);
		if (*slot) {
			free(key);
			if ((*slot)->evicted) {
				if (ini_entry_load(*slot, err) < 0)
					return -1;
				ini_cache_loaded(c, *slot, o->ini_loaded_max);
			}
			*out = *slot;
			return 0;
		}
	}
	if (!(e = calloc(1, sizeof(*e)))) {
		free(key);
		return err_nomem(err);
	}
	e->key = key;
	e->keylen = keylen;
	if (c) {
		/* without it (out of memory), each file's masks are compiled */
		if (!c->masks)
			c->masks = rules_masks_new();
		e->rules.masks = c->masks;
	} else {
		e->rules.masks = o->masks;
	}
	if (fleet_resolve_ini(o->fleet_dir, machine, inifile, working_dir, &e->fp,
			      err) < 0)
		goto fail;
	if (ini_entry_load(e, err) < 0)
		goto fail;
	if (c) {
		*slot = e;
		c->n++;
		ini_cache_loaded(c, e, o->ini_loaded_max);
	}
	*out = e;
	return 0;
fail:
	audit_ini_entry_free(e);
	return -1;
}
