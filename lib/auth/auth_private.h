/*
 * Internal interfaces between the files of the authentication library.
 *
 *   util.c         error strings, logging, safe printing of user input
 *   user.c         user records: fields, copy, free, mail location
 *   userdb.c       the generic userdb calls
 *   password.c     password schemes, hashing, constant-time comparison
 *   passwd_file.c  the passwd-file userdb (Dovecot format)
 *   failures.c     the per-IP failure tracker
 *   pool.c         the asynchronous verifier (worker threads + eventfd)
 *
 * Nothing here is exported: the library is built with hidden visibility.
 */
#ifndef LIB_AUTH_PRIVATE_H
#define LIB_AUTH_PRIVATE_H

#include <postern/auth.h>

/* Longest user name accepted from a client or a file. */
#define AUTH_USER_MAX 255

/* ---- util.c ---- */

/* Format into this thread's error buffer and return it. */
const char *auth_error(const char *fmt, ...) POSTERN_PRINTF(1, 2);
void auth_log(postern_auth_log_cb *log, void *ctx, enum postern_auth_log_level level,
	      const char *fmt, ...) POSTERN_PRINTF(4, 5);
/* Copy untrusted text for a log line: printable ASCII kept, the rest as
 * \xHH, cut at `max` input bytes with "..." appended. */
void auth_printable(char *buf, size_t size, const char *text, size_t max);
/* Lowercase ASCII copy of a user name, or NULL if it is not acceptable
 * (empty, too long, control characters, ':'). malloc'd. */
char *auth_user_canonical(const char *user);

/* ---- password.c ---- */

/* Is this (not NUL-terminated) scheme name one we know? */
bool auth_password_scheme_known(const char *name, size_t len);

/* ---- failures.c ---- */

/* The longest delay: what a blocked address waits for its answer. */
unsigned auth_failures_max_delay(const struct postern_auth_failures *f);

/* ---- user.c ---- */

/* Fill mail and maildir from the fields and home. Returns -1 when out of
 * memory. */
int auth_user_resolve_mail(struct postern_auth_user *user);
struct postern_auth_user *auth_user_new(void);

#endif
