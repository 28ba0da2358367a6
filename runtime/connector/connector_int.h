/*
 * connector_int.h - private parts of the connector shared between
 * connector.c and connector_auth.c.  Not for the tools.
 */
#ifndef MS_CONNECTOR_INT_H
#define MS_CONNECTOR_INT_H

#include "ini/config.h"
#include "connector/connector.h"
#include "transport/mailbox/mailbox.h"
#include "mail/message.h"
#include "mail/rules.h"

/* Wire the [OAuth] section into p->token_fn/token_ctx (token cache).
 * *out owns the token source; free it with connector_oauth_free() after
 * the mailbox is closed. */
struct connector_oauth;
int connector_oauth_setup(const struct connector_run *r, const struct config *c,
			  struct mailbox_params *p, struct connector_oauth **out,
			  struct ms_err *err);
void connector_oauth_free(struct connector_oauth *o);

/* Send the [Audit] Notify* mails for one processed message (best effort:
 * failures are logged, never fatal). */
void connector_notify(const struct connector_run *r, const struct config *c,
		      const struct message *msg, const struct rule_result *res);
/* The same from the fields alone (a message delivered with its group). */
struct event_fields;
void connector_notify_fields(const struct connector_run *r, const struct config *c,
			     int matched, const struct event_fields *f);

#endif
