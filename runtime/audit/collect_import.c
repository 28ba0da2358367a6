/*
 * collect_import.c - the OpCon import files of the fleet schedules
 * (MAILSHIFT_COLLECT, MAILSHIFT_DEPLOY, job changes) in the Deploy JSON
 * shape the audit reads (fleet.h), and the share's paths as agents name
 * them.
 */
#include "audit/collect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "base/fsutil.h"
#include "base/mem.h"

char *collect_share_path(const char *share, const char *const *parts, size_t n)
{
	/* the share's own separator: '\' for UNC and drive paths, '/' for a
	 * POSIX folder (tests, and a Linux host running the tools) */
	char sep = strchr(share, '\\') || !strchr(share, '/') ? '\\' : '/';
	size_t len = strlen(share), i, total;
	char *s, *p;

	while (len > 1 && (share[len - 1] == '\\' || share[len - 1] == '/'))
		len--;
	total = len + 1;
	for (i = 0; i < n; i++)
		total += strlen(parts[i]) + 1;
	if (!(s = malloc(total)))
		return NULL;
	memcpy(s, share, len);
	p = s + len;
	for (i = 0; i < n; i++) {
		size_t k = strlen(parts[i]);
		*p++ = sep;
		memcpy(p, parts[i], k);
		p += k;
	}
	*p = '\0';
	return s;
}

int collect_write_json(const char *path, const char *text, int private_file,
		       struct ms_err *err)
{
	size_t n = strlen(text);
	char *t = malloc(n + 2);
	int rc;

	if (!t)
		return err_nomem(err);
	/* with a final newline, as every text file should have */
	memcpy(t, text, n);
	t[n] = '\n';
	t[n + 1] = '\0';
	rc = fs_write_atomic(path, t, n + 1, private_file ? 0600 : 0644, err);
	free(t);
	return rc;
}

static cJSON *schedule_of(cJSON *list, const char *name)
{
	cJSON *s, *n;

	cJSON_ArrayForEach(s, list) {
		n = cJSON_GetObjectItemCaseSensitive(s, "name");
		if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
			return cJSON_GetObjectItemCaseSensitive(s, "jobList");
	}
	if (!(s = cJSON_CreateObject()) || !cJSON_AddItemToArray(list, s) ||
	    !cJSON_AddStringToObject(s, "name", name))
		return NULL;
	return cJSON_AddArrayToObject(s, "jobList");
}

int collect_import_write(const char *path, const struct import_job *jobs, size_t n,
			 struct ms_err *err)
{
	cJSON *doc = cJSON_CreateObject(), *list, *jl, *j, *det;
	char *text = NULL;
	size_t i;
	int rc = -1;

	if (!doc || !(list = cJSON_AddArrayToObject(doc, "scheduleList")))
		goto nomem;
	for (i = 0; i < n; i++) {
		const struct import_job *ij = &jobs[i];

		if (!(jl = schedule_of(list, ij->schedule)) ||
		    !(j = cJSON_CreateObject()) || !cJSON_AddItemToArray(jl, j) ||
		    !cJSON_AddStringToObject(j, "name", ij->name) ||
		    !cJSON_AddStringToObject(cJSON_AddObjectToObject(j, "jobType"),
					     "description", "Windows") ||
		    !cJSON_AddStringToObject(cJSON_AddObjectToObject(j, "primaryMachine"),
					     "name", ij->machine) ||
		    !(det = cJSON_AddObjectToObject(j, "details")) ||
		    !cJSON_AddStringToObject(det, "commandLine", ij->command_line) ||
		    (ij->working_dir &&
		     !cJSON_AddStringToObject(det, "workingDirectory", ij->working_dir)) ||
		    (ij->batch_user &&
		     !cJSON_AddStringToObject(cJSON_AddObjectToObject(det, "batchUser"),
					      "loginName", ij->batch_user)))
			goto nomem;
	}
	if (!(text = cJSON_Print(doc)))
		goto nomem;
	rc = collect_write_json(path, text, 0, err);
	goto done;
nomem:
	rc = err_nomem(err);
done:
	free(text);
	cJSON_Delete(doc);
	return rc;
}
