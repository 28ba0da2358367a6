/*
 * connector_auth.c - the connector's secrets, tokens and notify mails:
 * the glue between an INI file and secret.h / oauth.h / send.h.
 */
#include <stdlib.h>
#include <string.h>

#include "connector_int.h"
#include "log.h"
#include "ini.h"
#include "seal.h"
#include "secret.h"

int connector_resolve_secret(const char *ref, const char *what, const char *path,
			     char **plain, struct ms_err *err)
{
	*plain = NULL;
	if (secret_kind(ref) == SECRET_LEGACY)
		return err_set(err, MS_ERR_CONFIG,
			       "%s: %s holds a value encrypted by smartemail.exe, which "
			       "mailshift cannot read: store it again with "
			       "'mailshift --credentials'", path, what);
	if (secret_resolve(ref, plain, err))
		return err_prefix(err, "%s: %s", path, what);
	return 0;
}

void connector_secret_free(char *plain)
{
	secret_free(plain);
}

int connector_oauth_setup(const struct connector_run *r, const struct config *c,
			  struct mailbox_params *p, struct ms_err *err)
{
	(void)r; (void)p;
	return err_set(err, MS_ERR_CONFIG, "%s: OAuth is not available yet", c->path);
}

void connector_notify(const struct connector_run *r, const struct config *c,
		      const struct message *msg, const struct rule_result *res)
{
	(void)r; (void)c; (void)msg; (void)res;
}

int connector_store_credentials(const char *ini_path, const char *user,
				const char *password, const char *opcon_user,
				const char *opcon_password, struct ms_err *err)
{
	struct ini *ini = NULL;
	char *sealed_pw = NULL, *sealed_opcon = NULL;
	int rc = -1;

	if (!user && !password && !opcon_user && !opcon_password)
		return err_set(err, MS_ERR_USAGE,
			       "--credentials needs at least one of -user:, -password:, "
			       "-opconuser:, -opconpassword:");
	if (ini_load(&ini, ini_path, err))
		return -1;
	if (password && seal_value(password, &sealed_pw, err))
		goto out;
	if (opcon_password && seal_value(opcon_password, &sealed_opcon, err))
		goto out;
	if ((user && ini_set(ini, "Mail", "User", user, err)) ||
	    (sealed_pw && ini_set(ini, "Mail", "Password", sealed_pw, err)) ||
	    (opcon_user && ini_set(ini, "General", "OpConUser", opcon_user, err)) ||
	    (sealed_opcon &&
	     ini_set(ini, "General", "OpConUserPassword", sealed_opcon, err)) ||
	    ini_save(ini, ini_path, err))
		goto out;
	rc = 0;
out:
	free(sealed_pw);
	free(sealed_opcon);
	ini_free(ini);
	return rc;
}
