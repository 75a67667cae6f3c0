/*
 * The settings of a module that checks passwords, the same in every such
 * module (smtp, pop3be, the pop3fe/imap4fe proxies): same names, defaults,
 * bounds and units, so an admin learns them once.
 *
 * Embed struct postern_auth_config in the module's settings struct and put
 * POSTERN_AUTH_SETTING_DEFS(struct my_settings, auth) in its table, then
 * fill the library's settings from it with the functions below:
 *
 *   struct my_settings { ...; struct postern_auth_config auth; };
 *   static const struct postern_setting_def defs[] = {
 *           ...,
 *           POSTERN_AUTH_SETTING_DEFS(struct my_settings, auth),
 *           POSTERN_SETTING_END,
 *   };
 *
 * Whether passwd_file is required is the module's decision.
 */
#ifndef POSTERN_AUTH_SETTINGS_H
#define POSTERN_AUTH_SETTINGS_H

#include <stddef.h>
#include <stdint.h>

#include <postern/auth.h>
#include <postern/config.h>

struct postern_auth_config {
	char *passwd_file;                   /* NULL: not set */
	uint64_t passwd_file_check_interval; /* ms */
	uint64_t passwd_file_max_line;
	bool allow_plain_passwords;
	uint64_t threads, max_pending;
	uint64_t failure_window;             /* ms */
	uint64_t failure_block_after;
	uint64_t block_time;                 /* ms */
	uint64_t failure_delay, failure_delay_max; /* ms */
	uint64_t failure_max_ips;
	uint64_t ipv6_prefix;
};

#define POSTERN_AUTH_SETTING_(type, member, field) offsetof(type, member.field)

/* The rows of a postern_setting_def table, for a struct postern_auth_config
 * named `member` inside `type`. */
#define POSTERN_AUTH_SETTING_DEFS(type, member)                                                  \
	{ "passwd_file", POSTERN_SET_PATH, POSTERN_AUTH_SETTING_(type, member, passwd_file), NULL, \
	  "the user database, in Dovecot's passwd-file format", 0, 0 },                          \
	{ "passwd_file_check_interval", POSTERN_SET_DURATION,                                    \
	  POSTERN_AUTH_SETTING_(type, member, passwd_file_check_interval), "1s",                 \
	  "how often to look for changes of passwd_file (0: before every lookup)", 0, 3600000 }, \
	{ "passwd_file_max_line", POSTERN_SET_SIZE,                                              \
	  POSTERN_AUTH_SETTING_(type, member, passwd_file_max_line), "4096",                     \
	  "longer lines of passwd_file are rejected", 256, 1048576 },                            \
	{ "allow_plain_passwords", POSTERN_SET_BOOL,                                             \
	  POSTERN_AUTH_SETTING_(type, member, allow_plain_passwords), "false",                   \
	  "accept {PLAIN} entries in passwd_file (tests only)", 0, 0 },                          \
	{ "auth_threads", POSTERN_SET_UINT, POSTERN_AUTH_SETTING_(type, member, threads), "2",   \
	  "worker threads hashing passwords", 1, 64 },                                           \
	{ "auth_max_pending", POSTERN_SET_UINT, POSTERN_AUTH_SETTING_(type, member, max_pending), \
	  "256", "password checks queued or running; more get a temporary failure", 1, 100000 }, \
	{ "auth_failure_window", POSTERN_SET_DURATION,                                           \
	  POSTERN_AUTH_SETTING_(type, member, failure_window), "10m",                            \
	  "failed logins older than this are forgotten", 1000, 86400000 },                       \
	{ "auth_failure_block_after", POSTERN_SET_UINT,                                          \
	  POSTERN_AUTH_SETTING_(type, member, failure_block_after), "10",                        \
	  "failed logins from one address within the window that block it", 1, 100000 },        \
	{ "auth_block_time", POSTERN_SET_DURATION, POSTERN_AUTH_SETTING_(type, member, block_time), \
	  "10m", "how long a blocked address stays blocked", 1000, 86400000 },                   \
	{ "auth_failure_delay", POSTERN_SET_DURATION,                                            \
	  POSTERN_AUTH_SETTING_(type, member, failure_delay), "500ms",                           \
	  "delay of the first failure answer, doubling per failure", 1, 600000 },                \
	{ "auth_failure_delay_max", POSTERN_SET_DURATION,                                        \
	  POSTERN_AUTH_SETTING_(type, member, failure_delay_max), "15s",                         \
	  "the longest failure delay", 1, 600000 },                                              \
	{ "auth_failure_max_ips", POSTERN_SET_UINT,                                              \
	  POSTERN_AUTH_SETTING_(type, member, failure_max_ips), "4096",                          \
	  "client addresses the failure tracker remembers", 16, 10000000 },                      \
	{ "auth_ipv6_prefix", POSTERN_SET_UINT, POSTERN_AUTH_SETTING_(type, member, ipv6_prefix), \
	  "64", "IPv6 clients count per prefix of this length", 1, 128 }

/* What the bounds cannot say: auth_failure_delay_max below
 * auth_failure_delay. 0, or -1 with *error_r (static text). */
POSTERN_API int postern_auth_config_check(const struct postern_auth_config *config,
					  const char **error_r);
/* Fill the library's settings (initialised with their _INIT macros) from
 * the config; log callbacks and the failure tracker stay the caller's. */
POSTERN_API void postern_auth_config_passwd_file(const struct postern_auth_config *config,
						 struct postern_passwd_file_settings *set);
POSTERN_API void postern_auth_config_failures(const struct postern_auth_config *config,
					      struct postern_auth_failures_settings *set);
POSTERN_API void postern_auth_config_pool(const struct postern_auth_config *config,
					  struct postern_auth_pool_settings *set);

#endif
