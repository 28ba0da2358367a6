#include "base/paths.h"

#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fsutil.h"
#include "base/mem.h"
#include "base/platform.h"

static int dup_out(char **out, const char *s, struct ms_err *err)
{
	if (!(*out = strdup(s)))
		return err_nomem(err);
	return 0;
}

static int set_env(const char *name)
{
	const char *v = getenv(name);
	return v && *v;
}

int paths_state_dir(char **dir, struct ms_err *err)
{
	const char *home, *xdg;
	struct passwd *pw;
	int rc;

	*dir = NULL;
	if (set_env("MAILSHIFT_HOME"))
		return dup_out(dir, getenv("MAILSHIFT_HOME"), err);
	if ((rc = platform_machine_state_dir(dir, err)) <= 0)
		return rc;
	xdg = getenv("XDG_STATE_HOME");
	if (xdg && *xdg == '/') {
		if (!(*dir = fs_join(xdg, "mailshift")))
			return err_nomem(err);
		return 0;
	}
	home = getenv("HOME");
	if (!home || !*home) {
		pw = getpwuid(geteuid());
		home = pw ? pw->pw_dir : NULL;
	}
	if (!home || !*home)
		return err_set(err, MS_ERR_CONFIG,
			       "cannot find a home directory for the state files; "
			       "set MAILSHIFT_HOME");
	if (!(*dir = fs_join(home, ".local/state/mailshift")))
		return err_nomem(err);
	return 0;
}

static int state_file(const char *env, const char *name, char **path,
		      struct ms_err *err)
{
	char *dir;

	*path = NULL;
	if (set_env(env))
		return dup_out(path, getenv(env), err);
	if (paths_state_dir(&dir, err))
		return -1;
	*path = fs_join(dir, name);
	free(dir);
	if (!*path)
		return err_nomem(err);
	return 0;
}

int paths_key_file(char **path, struct ms_err *err)
{
	return state_file("MAILSHIFT_KEY_FILE", PATHS_KEY_NAME, path, err);
}

int paths_token_cache(char **path, struct ms_err *err)
{
	return state_file("MAILSHIFT_TOKEN_CACHE", PATHS_CACHE_NAME, path, err);
}
