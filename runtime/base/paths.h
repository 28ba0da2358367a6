/*
 * paths.h - where mailshift keeps machine-local state.
 *
 * Defaults:
 *   root (euid 0):  /var/lib/mailshift/machine.key
 *                   /var/lib/mailshift/tokens.db
 *   other users:    $XDG_STATE_HOME/mailshift/...   when XDG_STATE_HOME is set
 *                   ~/.local/state/mailshift/...    otherwise
 * Overrides (in this order of precedence):
 *   MAILSHIFT_KEY_FILE      the machine key file
 *   MAILSHIFT_TOKEN_CACHE   the token cache database
 *   MAILSHIFT_HOME          directory holding both (machine.key, tokens.db)
 *
 * Ownership: every returned path is malloc'd and owned by the caller.
 * The directory is not created here; the modules that write create it
 * (mode 0700) when they first need it.
 */
#ifndef MS_PATHS_H
#define MS_PATHS_H

#include "base/err.h"

#define PATHS_KEY_NAME   "machine.key"
#define PATHS_CACHE_NAME "tokens.db"
#define PATHS_ROOT_DIR   "/var/lib/mailshift"

/* The state directory (MAILSHIFT_HOME or the default above). */
int paths_state_dir(char **dir, struct ms_err *err);
/* The machine key file used by seal.h. */
int paths_key_file(char **path, struct ms_err *err);
/* The token cache database used by tokencache.h. */
int paths_token_cache(char **path, struct ms_err *err);

#endif
