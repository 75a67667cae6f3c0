/*
 * The generic userdb calls: argument checks common to every backend, then
 * the backend's vtable.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "auth_private.h"

POSTERN_API enum postern_auth_result postern_userdb_lookup(struct postern_userdb *db,
							   const char *user,
							   struct postern_auth_user **user_r,
							   const char **error_r)
{
	if (user_r != NULL)
		*user_r = NULL;
	if (user == NULL || user[0] == '\0' || strlen(user) > AUTH_USER_MAX)
		return POSTERN_AUTH_UNKNOWN_USER;
	return db->ops->lookup(db, user, user_r, error_r);
}

POSTERN_API enum postern_auth_result postern_userdb_verify(struct postern_userdb *db,
							   const char *user, const char *password,
							   struct postern_auth_user **user_r,
							   const char **error_r)
{
	if (user_r != NULL)
		*user_r = NULL;
	if (user == NULL || user[0] == '\0' || strlen(user) > AUTH_USER_MAX)
		return POSTERN_AUTH_UNKNOWN_USER;
	if (password == NULL)
		return POSTERN_AUTH_FAILED;
	return db->ops->verify(db, user, password, user_r, error_r);
}

POSTERN_API void postern_userdb_free(struct postern_userdb **dbp)
{
	struct postern_userdb *db = dbp == NULL ? NULL : *dbp;

	if (db == NULL)
		return;
	*dbp = NULL;
	db->ops->free(db);
}
