/*
 * config_text.h - for unit tests: a struct config from INI text in
 * memory (named "mem.ini"), without a file.
 */
#ifndef MS_TEST_CONFIG_TEXT_H
#define MS_TEST_CONFIG_TEXT_H

#include <string.h>

#include "ini/config.h"
#include "ini/ini.h"

/* Parse text as "mem.ini"; returns 0/-1 like config_load. */
static int from_text(struct config *cfg, const char *text, struct ms_err *err)
{
	struct ini *ini = NULL;
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	err_clear(err);
	if (ini_parse(&ini, "mem.ini", text, strlen(text), err) < 0)
		return -1;
	rc = config_from_ini(cfg, ini, "mem.ini", err);
	ini_free(ini);
	return rc;
}

#endif
