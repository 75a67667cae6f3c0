/*
 * Who is local: the configured local domains and the user database
 * (lib/auth's passwd-file, Dovecot's format). check_recipient() answers the
 * receiving module at RCPT time; local delivery asks the same database
 * again at delivery (a user removed meanwhile bounces with 5.1.1).
 *
 * Lookups in a passwd-file are in memory (the file is re-read when it
 * changes, at most every passwd_file_check_interval), so asking on the
 * event loop is fine.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <postern/postern.h>
#include <postern/auth.h>

#include "queue_store.h"

static void recipient_log(void *ctx, enum postern_auth_log_level level, const char *msg)
{
	struct qs *qs = ctx;
	enum postern_log_level to = level == POSTERN_AUTH_LOG_ERROR ? POSTERN_LOG_ERROR
				    : level == POSTERN_AUTH_LOG_WARNING ? POSTERN_LOG_WARNING
				    : level == POSTERN_AUTH_LOG_INFO ? POSTERN_LOG_INFO
				    : POSTERN_LOG_DEBUG;

	postern_log(qs->mod, to, "userdb: %s", msg);
}

int recipient_init(struct qs *qs, const char **error_r)
{
	struct postern_passwd_file_settings set = POSTERN_PASSWD_FILE_SETTINGS_INIT;

	for (char **domain = qs->set.local_domains; *domain != NULL; domain++)
		q_lowercase(*domain);
	if (qs->set.passwd_file == NULL) {
		if (qs->set.local_domains[0] != NULL) {
			*error_r = "local_domains are set but passwd_file is not: "
				   "the user database is needed to know the local users";
			return -1;
		}
		return 0;
	}
	set.path = qs->set.passwd_file;
	set.check_interval_ms = (unsigned)qs->set.passwd_file_check_interval;
	/* Every lookup (and so every reload and its log lines) happens on
	 * the loop: local delivery resolves users before its worker runs. */
	set.log = recipient_log;
	set.log_ctx = qs;
	if (postern_passwd_file_open(&set, &qs->userdb, error_r) < 0)
		return -1;
	return 0;
}

void recipient_deinit(struct qs *qs)
{
	postern_userdb_free(&qs->userdb);
}

bool recipient_domain_is_local(const struct qs *qs, const char *address)
{
	const char *domain = q_address_domain(address);

	if (domain == NULL)
		return false;
	for (char **local = qs->set.local_domains; *local != NULL; local++) {
		if (strcasecmp(domain, *local) == 0)
			return true;
	}
	return false;
}

enum postern_rcpt_status recipient_check(struct qs *qs, const char *address)
{
	struct postern_auth_user *user = NULL;
	const char *error;

	/* Without a domain it can be routed nowhere. */
	if (q_address_domain(address) == NULL)
		return POSTERN_RCPT_UNKNOWN;
	if (!recipient_domain_is_local(qs, address))
		return POSTERN_RCPT_REMOTE;
	if (qs->userdb == NULL)
		return POSTERN_RCPT_UNKNOWN;
	switch (postern_userdb_lookup(qs->userdb, address, &user, &error)) {
	case POSTERN_AUTH_OK:
		postern_auth_user_free(&user);
		return POSTERN_RCPT_LOCAL;
	case POSTERN_AUTH_TEMPFAIL:
		postern_log(qs->mod, POSTERN_LOG_ERROR, "userdb lookup of <%s>: %s", address,
			    error);
		return POSTERN_RCPT_TEMPFAIL;
	default:
		return POSTERN_RCPT_UNKNOWN;
	}
}

static uint64_t user_limit(const struct postern_auth_user *user, const char *key,
			   uint64_t fallback, bool size)
{
	const char *value = postern_auth_user_field(user, key);
	uint64_t parsed;

	if (value == NULL)
		return fallback;
	if (size ? postern_parse_size(value, &parsed) < 0
		 : record_get_u64(value, UINT64_MAX, &parsed) < 0)
		return fallback;
	return parsed;
}

/* mail_root/<domain>/<local part>/Maildir, for users without a location. */
static char *default_maildir(const struct qs *qs, const char *name, const char **error_r)
{
	const char *at = strrchr(name, '@');
	char *local = q_strndup(name, at == NULL ? strlen(name) : (size_t)(at - name));
	const char *domain = at == NULL ? "" : at + 1;
	char *path = NULL;

	if (local[0] == '\0' || local[0] == '.' || strchr(local, '/') != NULL ||
	    domain[0] == '.' || strchr(domain, '/') != NULL)
		*error_r = "user name not usable as a path under mail_root";
	else if (domain[0] == '\0')
		path = q_asprintf("%s/%s/Maildir", qs->set.mail_root, local);
	else
		path = q_asprintf("%s/%s/%s/Maildir", qs->set.mail_root, domain, local);
	free(local);
	return path;
}

int recipient_mailbox(struct qs *qs, const char *address, struct qmailbox *box_r,
		      const char **error_r)
{
	struct postern_auth_user *user = NULL;

	memset(box_r, 0, sizeof(*box_r));
	if (qs->userdb == NULL)
		return 0;
	switch (postern_userdb_lookup(qs->userdb, address, &user, error_r)) {
	case POSTERN_AUTH_OK:
		break;
	case POSTERN_AUTH_TEMPFAIL:
		return -1;
	default:
		return 0;
	}
	if (user->maildir != NULL)
		box_r->root = postern_mod_path(qs->mod, user->maildir);
	else
		box_r->root = default_maildir(qs, user->name, error_r);
	box_r->quota_bytes = user_limit(user, "quota_bytes", qs->set.quota_bytes, true);
	box_r->quota_messages = user_limit(user, "quota_messages", qs->set.quota_messages, false);
	postern_auth_user_free(&user);
	return box_r->root == NULL ? -1 : 1;
}
