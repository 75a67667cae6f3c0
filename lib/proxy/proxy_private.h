/*
 * The proxy library's private view, shared by its files:
 *
 *   settings.c   the settings table, the back-end list, trusted networks
 *   proxy.c      one proxy per front-end module: listeners, auth pool,
 *                directory, bus topics, the session list
 *   session.c    the client side of a session: greeting, lines before
 *                login, STARTTLS, authentication, the end of a session
 *   backend.c    logging in on a back-end: routing, connect, the
 *                protocol's login dialogue, failover, passive marking
 *   relay.c      bytes both ways after login, back-pressure, the stall
 *                watchdog, what the client is told when a leg dies
 *   relay_track.c  where the back-end's answer stands (pure, fuzzed)
 *   health.c     active health checks and backend.up / backend.down
 *   control.c    `posternctl backends`
 *   reload.c     a new configuration without dropping sessions
 */
#ifndef POSTERN_PROXY_PRIVATE_H
#define POSTERN_PROXY_PRIVATE_H

#include <postern/postern.h>
#include <postern/auth.h>
#include <postern/auth_settings.h>
#include <postern/cidr.h>
#include <postern/directory.h>
#include <postern/proxy.h>

/* Back-ends in one user's failover list at most. */
#define PROXY_MAX_ROUTE 64
#define PROXY_TRUSTED_MAX 64

struct proxy_settings {
	char **listen, **tls_listen;
	char *cert_file, *key_file;
	uint64_t max_connections, max_per_ip;

	struct postern_auth_config auth;

	bool allow_plaintext_auth;
	uint64_t max_bad_commands, max_auth_attempts;
	uint64_t login_idle_timeout, client_idle_timeout;

	const struct postern_cfg *backends;
	char *default_pool;
	uint64_t hash_vnodes;
	uint64_t connect_timeout, login_timeout, backend_timeout;
	uint64_t backend_max_sessions, max_attempts;
	uint64_t backend_keepalive_idle, backend_keepalive_interval, backend_keepalive_count;
	uint64_t health_check_interval, health_check_timeout;
	char **trusted_networks;
	uint64_t max_hops;
	bool backend_xclient;
	char *backend_login;
	char *backend_tls_ca_file;
	bool backend_tls_verify;
	uint64_t relay_buffer;
};

/* One back-end of the configuration, as parsed from its group. */
struct proxy_backend_settings {
	char *name, *address, *pool, *tls_server_name;
	uint64_t port, max_sessions;
	bool tls;
};

struct proxy_health;

/* A directory replaced by a reload whose back-ends some legs still use:
 * kept until the last of them is freed (reload.c). */
struct proxy_retired {
	struct postern_directory *dir;
	char **sni;
	unsigned legs;
	struct proxy_retired *next;
};

struct postern_proxy {
	struct postern_mod *mod;
	const struct postern_proxy_protocol *protocol;
	struct proxy_settings set;
	struct postern_cidr trusted[PROXY_TRUSTED_MAX];
	unsigned trusted_count;
	bool login_plain;

	struct postern_tls *server_tls;   /* STLS and implicit TLS */
	struct postern_tls *backend_tls;  /* client context for tls back-ends */
	/* Per back-end (by directory index): the TLS server name to ask. */
	char **backend_sni;

	struct postern_userdb *userdb;
	struct postern_auth_failures *failures;
	struct postern_auth_pool *auth_pool;
	struct postern_io *auth_io;

	struct postern_directory *dir;
	struct proxy_retired *retired;    /* older directories still in use */
	struct proxy_health *health;      /* one per back-end */
	bool started;

	/* Every live session, for the stall watchdog and stop(). */
	struct postern_proxy_session *sessions;
	unsigned session_count;
	unsigned relaying;                /* sessions in the RELAY phase */
	struct postern_timer *watchdog;
	struct proxy_leg *legs;           /* every leg not yet CLOSED */

	struct postern_proxy *next;       /* control.c: every proxy of the process */
};

enum proxy_phase {
	PROXY_PHASE_PRELOGIN = 0, /* the protocol reads client lines */
	PROXY_PHASE_AUTH,         /* the password is being checked */
	PROXY_PHASE_AUTH_DELAY,   /* a failure answer waits out its delay */
	PROXY_PHASE_BACKEND,      /* connecting / logging in on a back-end */
	PROXY_PHASE_RELAY,        /* bytes flow both ways */
	PROXY_PHASE_CLOSING,      /* the client side is going away */
};

/* One connection to one back-end: its own object, so that an old attempt
 * still closing never mixes with the next one. Freed on its CLOSED. */
struct proxy_leg {
	struct postern_proxy_session *session; /* valid until this leg's CLOSED */
	struct postern_conn *conn;
	struct postern_backend *backend;
	/* Set when a reload removed or changed the back-end: backend then
	 * belongs to this older directory. */
	struct proxy_retired *retired;
	bool opened;          /* OPEN arrived */
	bool greeted;         /* a line arrived: the back-end is alive */
	bool counted;         /* a session_begin() to match with an end */
	bool logged_in;
	struct proxy_leg *prev, *next;  /* the proxy's list of every leg */
};

struct postern_proxy_session {
	struct postern_proxy *proxy;
	struct postern_conn *client;      /* NULL once the client is CLOSED */
	struct proxy_leg *leg;            /* the current back-end, or NULL */
	unsigned legs;                    /* legs not yet CLOSED (current and old) */
	enum proxy_phase phase;

	char *user;
	char *password;                   /* wiped when freed */
	size_t password_len;
	struct postern_auth_user *user_info;

	char client_ip[64];
	unsigned client_port;
	unsigned hop;                     /* hops before us (XCLIENT), 0 direct */

	struct postern_backend *route[PROXY_MAX_ROUTE];
	unsigned route_count, route_pos, attempts;
	struct postern_timer *timer;      /* auth delay, login deadline */

	unsigned bad_commands, auth_attempts;
	enum postern_proxy_reply delayed_reply; /* sent when the auth delay ends */
	bool tls_pending;                 /* STARTTLS under way */
	bool reading;                     /* in the client line loop */

	/* relay.c: what the client is owed if the back-end dies, and the
	 * watchdog's clocks (0: not running). */
	bool backend_answered;            /* back-end bytes since the client's last */
	uint64_t awaiting_since;          /* client bytes sent, no answer yet */
	/* The back-end's answer is unfinished since then: in the middle of
	 * a line (stall_midline) or after a line that does not end it. */
	uint64_t stall_since;
	bool stall_midline;
	/* The line the back-end is sending: its first bytes, its length. */
	char line_head[POSTERN_PROXY_LINE_HEAD];
	size_t line_len;
	unsigned lines_since_client;      /* complete back-end lines since */
	bool client_paused, backend_paused;

	struct postern_proxy_session *prev, *next;
	unsigned char data[];             /* the protocol's state */
};

/* settings.c */
extern const struct postern_setting_def proxy_setting_defs[];
extern const struct postern_setting_def proxy_backend_setting_defs[];
int proxy_settings_parse(struct postern_mod *mod, const struct postern_cfg *cfg,
			 struct proxy_settings *set, const char **error_r);
void proxy_settings_free(struct proxy_settings *set);
/* Parse the back-ends into `dir` (NULL: only check); SNI names into
 * *sni_r (an array, by index) when not NULL. */
int proxy_backends_parse(struct postern_mod *mod, const struct proxy_settings *set,
			 struct postern_directory *dir, char ***sni_r, const char **error_r);
bool proxy_ip_is_loopback(const char *ip);

/* proxy.c */
/* A directory (and its SNI names by index) from the settings' back-ends. */
int proxy_directory_build(struct postern_proxy *proxy, const struct proxy_settings *set,
			  struct postern_directory **dir_r, char ***sni_r, const char **error_r);
void proxy_directory_free(struct postern_directory **dir, char ***sni);
/* What is derived from proxy->set: trusted networks, the login method. */
void proxy_settings_apply(struct postern_proxy *proxy);
/* The client TLS context for the directory's tls back-ends (NULL if none). */
int proxy_backend_tls_open(struct postern_proxy *proxy, struct postern_directory *dir,
			   const struct proxy_settings *set, struct postern_tls **tls_r,
			   const char **error_r);

/* relay_track.c: follow the back-end's answer after a chunk of it (the
 * stall clock, the current line's head and length). */
void proxy_relay_track(struct postern_proxy_session *session, const char *data, size_t len,
		       uint64_t now);

/* reload.c */
/* A leg is freed: let go of its retired directory. */
void proxy_retired_leg_gone(struct postern_proxy *proxy, struct proxy_leg *leg);
void proxy_retired_free_all(struct postern_proxy *proxy);
/* Is be a back-end of the directory in force (not of a retired one)? */
bool proxy_backend_current(const struct postern_proxy *proxy, const struct postern_backend *be);

/* session.c */
postern_conn_cb proxy_client_event;
/* The session's client or legs changed: free it once nothing is left. */
void proxy_session_maybe_free(struct postern_proxy_session *session);
/* Back to reading client lines (after a failed login). */
void proxy_session_resume(struct postern_proxy_session *session);
/* Tell the client `kind` and end the session. */
void proxy_session_fail(struct postern_proxy_session *session, enum postern_proxy_reply kind,
			const char *text, const char *reason);
void proxy_session_set_state(struct postern_proxy_session *session, const char *state);
void proxy_session_set_phase(struct postern_proxy_session *session, enum proxy_phase phase);
/* (Re)arm the session's one-shot timer (auth delay, login deadline). */
void proxy_session_timer(struct postern_proxy_session *session, uint64_t msecs);
void proxy_session_wipe_password(struct postern_proxy_session *session);
/* The auth pool's answers (collect callback). */
void proxy_auth_collected(struct postern_auth_reply *reply);
/* Module unload: free every session and leg without touching connections. */
void proxy_session_free_all(struct postern_proxy *proxy);

/* backend.c */
/* The password is verified: route and try the back-ends. */
void proxy_backend_begin(struct postern_proxy_session *session);
/* Close the current leg (if any) without judging the back-end. */
void proxy_backend_drop(struct postern_proxy_session *session, const char *reason);
/* A back-end failed at login time: judge it, then try the next. */
void proxy_backend_failed(struct postern_proxy_session *session, const char *error,
			  bool mark_down);
/* The session's timer fired during the back-end phase: login timeout. */
void proxy_backend_timeout(struct postern_proxy_session *session);
postern_conn_cb proxy_leg_event;
void proxy_leg_free(struct postern_proxy *proxy, struct proxy_leg *leg);

/* relay.c */
void proxy_relay_start(struct postern_proxy_session *session);
void proxy_relay_client_input(struct postern_proxy_session *session);
void proxy_relay_backend_input(struct postern_proxy_session *session);
void proxy_relay_client_drained(struct postern_proxy_session *session);
void proxy_relay_backend_drained(struct postern_proxy_session *session);
/* The back-end leg is gone during the relay (EOF, ERROR, stall). */
void proxy_relay_backend_lost(struct postern_proxy_session *session, const char *why,
			      bool clean);
void proxy_relay_watchdog_update(struct postern_proxy *proxy);

/* health.c */
int proxy_health_init(struct postern_proxy *proxy, const char **error_r);
void proxy_health_start(struct postern_proxy *proxy);
void proxy_health_free(struct postern_proxy *proxy);
/* Check this back-end soon (a session lost it unexpectedly). */
void proxy_health_check_soon(struct postern_proxy *proxy, struct postern_backend *be);
/* Record and announce state changes. */
void proxy_mark_down(struct postern_proxy *proxy, struct postern_backend *be, const char *error);
void proxy_mark_up(struct postern_proxy *proxy, struct postern_backend *be);

/* control.c */
int proxy_control_register(struct postern_proxy *proxy, const char **error_r);
void proxy_control_unregister(struct postern_proxy *proxy);

#endif
