/*
 * User records: the extra fields, the mail location, copying and freeing.
 *
 * The mail location follows Dovecot's userdb fields: "mail" (or
 * "userdb_mail") such as "maildir:~/Maildir" with '~' meaning the home
 * directory; without one, a home directory implies home/Maildir.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "auth_private.h"

struct postern_auth_user *auth_user_new(void)
{
	struct postern_auth_user *user = calloc(1, sizeof(*user));

	if (user != NULL)
		user->uid = user->gid = -1;
	return user;
}

POSTERN_API const char *postern_auth_user_field(const struct postern_auth_user *user,
						const char *key)
{
	static const char prefix[] = "userdb_";
	size_t plen = sizeof(prefix) - 1;

	for (unsigned i = 0; i < user->field_count; i++) {
		if (strcmp(user->fields[i].key, key) == 0)
			return user->fields[i].value;
	}
	for (unsigned i = 0; i < user->field_count; i++) {
		const char *k = user->fields[i].key;

		if (strncmp(k, prefix, plen) == 0 && strcmp(k + plen, key) == 0)
			return user->fields[i].value;
	}
	return NULL;
}

/* "~" or "~/x" at the start of `path` becomes home. */
static char *expand_home(const char *path, size_t len, const char *home)
{
	size_t hlen;
	char *out;

	if (len >= 1 && path[0] == '~' && (len == 1 || path[1] == '/') && home != NULL) {
		hlen = strlen(home);
		out = malloc(hlen + len);
		if (out == NULL)
			return NULL;
		memcpy(out, home, hlen);
		memcpy(out + hlen, path + 1, len - 1);
		out[hlen + len - 1] = '\0';
		return out;
	}
	out = malloc(len + 1);
	if (out == NULL)
		return NULL;
	memcpy(out, path, len);
	out[len] = '\0';
	return out;
}

/* Length of a "format:" prefix such as "maildir:", 0 when there is none. */
static size_t location_format_len(const char *mail)
{
	size_t n = strspn(mail, "abcdefghijklmnopqrstuvwxyz0123456789");

	return n > 0 && mail[n] == ':' ? n : 0;
}

static int resolve_location(struct postern_auth_user *user, const char *mail)
{
	size_t fmt_len = location_format_len(mail);
	const char *path = fmt_len > 0 ? mail + fmt_len + 1 : mail;
	size_t path_len = strcspn(path, ":");	/* ":OPTIONS" may follow */
	const char *options = path + path_len;
	char *expanded = expand_home(path, path_len, user->home);
	size_t elen;

	if (expanded == NULL)
		return -1;
	elen = strlen(expanded);
	user->mail = malloc(fmt_len + 1 + elen + strlen(options) + 1);
	if (user->mail == NULL) {
		free(expanded);
		return -1;
	}
	user->mail[0] = '\0';
	if (fmt_len > 0)
		strncat(user->mail, mail, fmt_len + 1);
	strcat(user->mail, expanded);
	strcat(user->mail, options);
	if (fmt_len == 0 || (fmt_len == 7 && strncmp(mail, "maildir", 7) == 0))
		user->maildir = expanded;
	else
		free(expanded);
	return 0;
}

int auth_user_resolve_mail(struct postern_auth_user *user)
{
	const char *mail = postern_auth_user_field(user, "mail");
	size_t hlen;

	free(user->mail);
	free(user->maildir);
	user->mail = user->maildir = NULL;
	if (mail != NULL && mail[0] != '\0')
		return resolve_location(user, mail);
	if (user->home == NULL || user->home[0] == '\0')
		return 0;
	hlen = strlen(user->home);
	user->maildir = malloc(hlen + sizeof("/Maildir"));
	if (user->maildir == NULL)
		return -1;
	memcpy(user->maildir, user->home, hlen);
	strcpy(user->maildir + hlen, "/Maildir");
	return 0;
}

static char *dup_or_null(const char *s, bool *failed)
{
	char *copy;

	if (s == NULL)
		return NULL;
	if ((copy = strdup(s)) == NULL)
		*failed = true;
	return copy;
}

POSTERN_API struct postern_auth_user *postern_auth_user_dup(const struct postern_auth_user *src)
{
	struct postern_auth_user *user = auth_user_new();
	bool failed = false;

	if (user == NULL)
		return NULL;
	user->uid = src->uid;
	user->gid = src->gid;
	user->name = dup_or_null(src->name, &failed);
	user->home = dup_or_null(src->home, &failed);
	user->mail = dup_or_null(src->mail, &failed);
	user->maildir = dup_or_null(src->maildir, &failed);
	if (src->field_count > 0) {
		user->fields = calloc(src->field_count, sizeof(*user->fields));
		if (user->fields == NULL)
			failed = true;
		for (unsigned i = 0; !failed && i < src->field_count; i++) {
			user->fields[i].key = dup_or_null(src->fields[i].key, &failed);
			user->fields[i].value = dup_or_null(src->fields[i].value, &failed);
			user->field_count = i + 1;
		}
	}
	if (failed)
		postern_auth_user_free(&user);
	return user;
}

POSTERN_API void postern_auth_user_free(struct postern_auth_user **userp)
{
	struct postern_auth_user *user = userp == NULL ? NULL : *userp;

	if (user == NULL)
		return;
	for (unsigned i = 0; i < user->field_count; i++) {
		free(user->fields[i].key);
		free(user->fields[i].value);
	}
	free(user->fields);
	free(user->name);
	free(user->home);
	free(user->mail);
	free(user->maildir);
	free(user);
	*userp = NULL;
}

POSTERN_API const char *postern_auth_result_str(enum postern_auth_result result)
{
	switch (result) {
	case POSTERN_AUTH_OK: return "ok";
	case POSTERN_AUTH_FAILED: return "wrong password";
	case POSTERN_AUTH_UNKNOWN_USER: return "unknown user";
	case POSTERN_AUTH_BLOCKED: return "blocked";
	case POSTERN_AUTH_TEMPFAIL: return "temporary failure";
	}
	return "?";
}
