/*
 * The client side of a proxied session: the session object, the client
 * connection's events, the lines before login (handed to the protocol),
 * STARTTLS, the password check, and the end of the session.
 *
 * Ownership: a session lives from the client's OPEN until both the client
 * connection and every back-end leg it started have delivered CLOSED; it
 * is freed in exactly one place, proxy_session_maybe_free(), called from
 * those CLOSED events. Nothing else frees it, so a callback may go on
 * using its session after closing any connection.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy_private.h"

/* ---- The session object --------------------------------------------------------- */

static struct postern_proxy_session *session_new(struct postern_proxy *proxy,
						 struct postern_conn *conn)
{
	struct postern_proxy_session *s =
		calloc(1, sizeof(*s) + proxy->protocol->session_data_size);
	const char *peer = postern_conn_peer(conn);
	const char *colon = strrchr(peer, ':');

	if (s == NULL)
		abort();
	s->proxy = proxy;
	s->client = conn;
	snprintf(s->client_ip, sizeof(s->client_ip), "%s", postern_conn_peer_ip(conn));
	s->client_port = colon != NULL ? (unsigned)strtoul(colon + 1, NULL, 10) : 0;
	s->next = proxy->sessions;
	if (proxy->sessions != NULL)
		proxy->sessions->prev = s;
	proxy->sessions = s;
	proxy->session_count++;
	postern_conn_set_handler(conn, proxy_client_event, s);
	proxy_session_set_state(s, "PRELOGIN");
	return s;
}

void proxy_session_wipe_password(struct postern_proxy_session *s)
{
	if (s->password != NULL) {
		explicit_bzero(s->password, s->password_len);
		free(s->password);
		s->password = NULL;
		s->password_len = 0;
	}
}

static void session_release(struct postern_proxy_session *s)
{
	struct postern_proxy *proxy = s->proxy;

	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		proxy->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	proxy->session_count--;
	proxy_session_wipe_password(s);
	free(s->user);
	postern_auth_user_free(&s->user_info);
}

void proxy_session_maybe_free(struct postern_proxy_session *s)
{
	if (s->client != NULL || s->legs > 0)
		return;
	postern_timer_remove(&s->timer);
	session_release(s);
	free(s);
}

void proxy_session_free_all(struct postern_proxy *proxy)
{
	while (proxy->legs != NULL)
		proxy_leg_free(proxy, proxy->legs);
	while (proxy->sessions != NULL) {
		struct postern_proxy_session *s = proxy->sessions;

		postern_timer_remove(&s->timer);
		session_release(s);
		free(s);
	}
	proxy->relaying = 0;
}

void proxy_session_set_state(struct postern_proxy_session *s, const char *state)
{
	if (s->client != NULL)
		postern_conn_set_state(s->client, state);
}

/*
 * While a login is decided (password check, back-end connect and login)
 * the client's input is not read: what it pipelined stays buffered for
 * the back-end, and a half-close (EOF) is only seen once the relay runs,
 * where it can be passed on instead of ending the session with the
 * answers still to come.
 */
static void session_hold_client_input(struct postern_proxy_session *s)
{
	bool hold = s->phase == PROXY_PHASE_AUTH || s->phase == PROXY_PHASE_AUTH_DELAY ||
		    s->phase == PROXY_PHASE_BACKEND;

	/* CLOSING: the client is going, its input no longer matters. */
	if (s->client != NULL && s->phase != PROXY_PHASE_CLOSING)
		postern_conn_pause_input(s->client, hold);
}

void proxy_session_set_phase(struct postern_proxy_session *s, enum proxy_phase phase)
{
	struct postern_proxy *proxy = s->proxy;

	if (s->phase == phase)
		return;
	if (s->phase == PROXY_PHASE_RELAY)
		proxy->relaying--;
	if (phase == PROXY_PHASE_RELAY)
		proxy->relaying++;
	s->phase = phase;
	proxy_relay_watchdog_update(proxy);
	session_hold_client_input(s);
}

/* ---- Lines before login ------------------------------------------------------- */

static void session_read_lines(struct postern_proxy_session *s)
{
	const struct postern_proxy_protocol *protocol = s->proxy->protocol;
	struct postern_line line;

	/* The protocol may start a login that fails at once and resumes:
	 * this loop then just goes on. */
	if (s->reading)
		return;
	s->reading = true;
	while (s->phase == PROXY_PHASE_PRELOGIN && s->client != NULL && !s->tls_pending &&
	       !postern_conn_is_closing(s->client)) {
		enum postern_read_status status = postern_conn_read_line(s->client, &line);

		if (status == POSTERN_READ_NONE)
			break;
		if (status == POSTERN_READ_TOO_LONG)
			protocol->client_line_too_long(s);
		else
			protocol->client_line(s, &line);
	}
	s->reading = false;
}

void proxy_session_resume(struct postern_proxy_session *s)
{
	if (s->client == NULL || postern_conn_is_closing(s->client))
		return;
	proxy_session_set_phase(s, PROXY_PHASE_PRELOGIN);
	proxy_session_set_state(s, "PRELOGIN");
	postern_conn_set_user(s->client, NULL);
	postern_conn_set_idle_timeout(s->client, s->proxy->set.login_idle_timeout);
	/* Lines the client pipelined meanwhile wait in the buffer, and no
	 * INPUT event will announce them again. */
	session_read_lines(s);
}

void proxy_session_fail(struct postern_proxy_session *s, enum postern_proxy_reply kind,
			const char *text, const char *reason)
{
	proxy_backend_drop(s, reason);
	proxy_session_wipe_password(s);
	if (s->client != NULL && !postern_conn_is_closing(s->client)) {
		s->proxy->protocol->client_reply(s, kind, text);
		postern_conn_close_after_flush(s->client, reason);
	}
	proxy_session_set_phase(s, PROXY_PHASE_CLOSING);
}

/* ---- Authentication --------------------------------------------------------- */

static void session_timer_cb(struct postern_timer *timer, void *ctx)
{
	struct postern_proxy_session *s = ctx;
	const struct postern_proxy_protocol *protocol = s->proxy->protocol;

	switch (s->phase) {
	case PROXY_PHASE_AUTH_DELAY:
		if (s->client == NULL)
			return;
		if (s->delayed_reply == POSTERN_PROXY_REPLY_BLOCKED ||
		    s->auth_attempts >= s->proxy->set.max_auth_attempts) {
			proxy_session_fail(s, s->delayed_reply,
					   s->delayed_reply == POSTERN_PROXY_REPLY_BLOCKED ?
						   "Too many failed logins" :
						   "Authentication failed",
					   "too many failed logins");
			return;
		}
		protocol->client_reply(s, s->delayed_reply, "Authentication failed");
		proxy_session_resume(s);
		break;
	case PROXY_PHASE_BACKEND:
		proxy_backend_timeout(s);
		break;
	default:
		break;
	}
}

void proxy_session_timer(struct postern_proxy_session *s, uint64_t msecs)
{
	if (msecs == 0)
		msecs = 1;
	if (s->timer == NULL)
		s->timer = postern_timer_add(s->proxy->mod, msecs, false, session_timer_cb, s);
	else
		postern_timer_reset(s->timer, msecs);
}

void proxy_auth_collected(struct postern_auth_reply *reply)
{
	struct postern_proxy_session *s = reply->ctx;

	/* Requests of closed sessions were cancelled: never here. */
	if (s->phase != PROXY_PHASE_AUTH || s->client == NULL)
		return;
	switch (reply->result) {
	case POSTERN_AUTH_OK:
		s->user_info = reply->user_info;
		reply->user_info = NULL;
		if (s->user_info->name != NULL) {
			char *name = strdup(s->user_info->name);

			if (name == NULL)
				abort();
			free(s->user);
			s->user = name;
		}
		postern_conn_set_user(s->client, s->user);
		proxy_backend_begin(s);
		return;
	case POSTERN_AUTH_FAILED:
	case POSTERN_AUTH_UNKNOWN_USER:
	case POSTERN_AUTH_BLOCKED:
		s->auth_attempts++;
		s->delayed_reply = reply->result == POSTERN_AUTH_BLOCKED ?
					   POSTERN_PROXY_REPLY_BLOCKED :
					   POSTERN_PROXY_REPLY_AUTH_FAILED;
		proxy_session_wipe_password(s);
		proxy_session_set_phase(s, PROXY_PHASE_AUTH_DELAY);
		proxy_session_timer(s, reply->delay_ms);
		return;
	case POSTERN_AUTH_TEMPFAIL:
		break;
	}
	postern_proxy_log(s, POSTERN_LOG_WARNING, "user database failure for user=<%s>: %s",
			  s->user, reply->error != NULL ? reply->error : "unknown");
	proxy_session_wipe_password(s);
	s->proxy->protocol->client_reply(s, POSTERN_PROXY_REPLY_TEMPFAIL,
					 "Temporary authentication failure");
	proxy_session_resume(s);
}

void postern_proxy_login(struct postern_proxy_session *s, const char *user, const char *password)
{
	struct postern_proxy *proxy = s->proxy;
	const char *error;

	if (s->phase != PROXY_PHASE_PRELOGIN || s->client == NULL)
		return;
	free(s->user);
	proxy_session_wipe_password(s);
	s->user = strdup(user);
	s->password_len = strlen(password);
	s->password = malloc(s->password_len + 1);
	if (s->user == NULL || s->password == NULL)
		abort();
	memcpy(s->password, password, s->password_len + 1);
	proxy_session_set_phase(s, PROXY_PHASE_AUTH);
	proxy_session_set_state(s, "AUTH");
	if (postern_auth_pool_submit(proxy->auth_pool, user, password, s->client_ip, s, &error) < 0) {
		postern_proxy_log(s, POSTERN_LOG_WARNING, "cannot check password: %s", error);
		proxy_session_wipe_password(s);
		proxy->protocol->client_reply(s, POSTERN_PROXY_REPLY_TEMPFAIL,
					      "Temporary authentication failure");
		/* Inside the protocol's line handler: the line loop goes on. */
		proxy_session_set_phase(s, PROXY_PHASE_PRELOGIN);
		proxy_session_set_state(s, "PRELOGIN");
	}
}

/* ---- The client connection's events ----------------------------------------------- */

static void session_client_closed(struct postern_proxy_session *s)
{
	struct postern_proxy *proxy = s->proxy;
	bool relaying = s->phase == PROXY_PHASE_RELAY;

	postern_auth_pool_cancel(proxy->auth_pool, s);
	postern_timer_remove(&s->timer);
	s->client = NULL;
	if (s->leg != NULL) {
		struct postern_conn *conn = s->leg->conn;

		/* What the client sent last (QUIT) still goes to the back-end,
		 * bounded by backend_timeout; a login in progress just ends. */
		if (relaying) {
			postern_conn_set_idle_timeout(conn, proxy->set.backend_timeout);
			postern_conn_pause_input(conn, true);
			postern_conn_close_after_flush(conn, "client gone");
		} else {
			postern_conn_close(conn, "client gone");
		}
		s->leg = NULL;
	}
	proxy_session_wipe_password(s);
	proxy_session_set_phase(s, PROXY_PHASE_CLOSING);
	proxy_session_maybe_free(s);
}

static void session_client_timeout(struct postern_proxy_session *s)
{
	switch (s->phase) {
	case PROXY_PHASE_PRELOGIN:
		proxy_session_fail(s, POSTERN_PROXY_REPLY_IDLE, "Disconnected for inactivity",
				   "idle timeout");
		break;
	case PROXY_PHASE_AUTH:
	case PROXY_PHASE_AUTH_DELAY:
	case PROXY_PHASE_BACKEND:
		/* We are the ones keeping the client waiting, within our own
		 * timeouts: not an idle client. */
		postern_conn_set_idle_timeout(s->client, s->proxy->set.login_idle_timeout);
		break;
	case PROXY_PHASE_RELAY:
		postern_proxy_log(s, POSTERN_LOG_INFO, "user=<%s> idle for too long: closing",
				  s->user);
		postern_conn_close(s->client, "idle timeout");
		break;
	case PROXY_PHASE_CLOSING:
		break;
	}
}

void proxy_client_event(struct postern_conn *conn, enum postern_conn_event event, void *ctx)
{
	struct postern_proxy_session *s;

	if (event == POSTERN_CONN_OPEN) {
		struct postern_proxy *proxy = ctx;

		s = session_new(proxy, conn);
		if (postern_mod_shutting_down(proxy->mod)) {
			proxy_session_fail(s, POSTERN_PROXY_REPLY_SHUTDOWN, "server shutting down",
					   "shutdown");
			return;
		}
		proxy->protocol->client_greet(s);
		return;
	}
	s = ctx;
	switch (event) {
	case POSTERN_CONN_INPUT:
		if (s->phase == PROXY_PHASE_PRELOGIN)
			session_read_lines(s);
		else if (s->phase == PROXY_PHASE_RELAY)
			proxy_relay_client_input(s);
		/* Else: lines stay buffered until the login is decided. */
		break;
	case POSTERN_CONN_DRAINED:
		if (s->phase == PROXY_PHASE_RELAY)
			proxy_relay_client_drained(s);
		break;
	case POSTERN_CONN_TLS_READY:
		s->tls_pending = false;
		if (s->proxy->protocol->client_tls_ready != NULL)
			s->proxy->protocol->client_tls_ready(s);
		session_read_lines(s);
		break;
	case POSTERN_CONN_EOF:
		/* In the relay, a half-close: the client has sent its last
		 * commands and still reads. Keep its connection, pass the
		 * half-close on after those commands; the back-end answers
		 * and closes, and that closes the client (relay.c). Before
		 * the relay the core closes the client when we return. */
		if (s->phase == PROXY_PHASE_RELAY && s->leg != NULL) {
			postern_conn_finish_later(s->client);
			postern_conn_shutdown_write(s->leg->conn);
		}
		break;
	case POSTERN_CONN_TIMEOUT:
		session_client_timeout(s);
		break;
	case POSTERN_CONN_ERROR:
		break;
	case POSTERN_CONN_CLOSED:
		session_client_closed(s);
		break;
	default:
		break;
	}
}

/* ---- The API the protocol uses ------------------------------------------------- */

void *postern_proxy_session_data(struct postern_proxy_session *s)
{
	return s->data;
}

struct postern_proxy *postern_proxy_session_proxy(struct postern_proxy_session *s)
{
	return s->proxy;
}

void postern_proxy_write(struct postern_proxy_session *s, const void *data, size_t len)
{
	if (s->client != NULL)
		postern_conn_write(s->client, data, len);
}

void postern_proxy_printf(struct postern_proxy_session *s, const char *fmt, ...)
{
	char buf[2048];
	va_list args;
	int len;

	va_start(args, fmt);
	len = vsnprintf(buf, sizeof(buf), fmt, args);
	va_end(args);
	if (len < 0)
		return;
	postern_proxy_write(s, buf, (size_t)len < sizeof(buf) ? (size_t)len : sizeof(buf) - 1);
}

void postern_proxy_backend_write(struct postern_proxy_session *s, const void *data, size_t len)
{
	if (s->leg != NULL)
		postern_conn_write(s->leg->conn, data, len);
}

void postern_proxy_backend_printf(struct postern_proxy_session *s, const char *fmt, ...)
{
	char buf[4096];
	va_list args;
	int len;

	va_start(args, fmt);
	len = vsnprintf(buf, sizeof(buf), fmt, args);
	va_end(args);
	if (len >= 0)
		postern_proxy_backend_write(s, buf, (size_t)len < sizeof(buf) ? (size_t)len :
										 sizeof(buf) - 1);
	explicit_bzero(buf, sizeof(buf));
}

void postern_proxy_log(struct postern_proxy_session *s, int level, const char *fmt, ...)
{
	char buf[1024];
	va_list args;

	if (!postern_log_enabled((enum postern_log_level)level))
		return;
	va_start(args, fmt);
	vsnprintf(buf, sizeof(buf), fmt, args);
	va_end(args);
	if (s->client != NULL)
		postern_conn_log(s->client, (enum postern_log_level)level, "%s", buf);
	else
		postern_log(s->proxy->mod, (enum postern_log_level)level, "%s", buf);
}

bool postern_proxy_tls_available(const struct postern_proxy_session *s)
{
	return s->proxy->server_tls != NULL && s->client != NULL && !s->tls_pending &&
	       !postern_conn_is_tls(s->client);
}

int postern_proxy_starttls(struct postern_proxy_session *s, const char **error_r)
{
	if (!postern_proxy_tls_available(s)) {
		*error_r = "TLS not available";
		return -1;
	}
	if (postern_conn_starttls(s->client, s->proxy->server_tls, NULL, error_r) < 0)
		return -1;
	s->tls_pending = true;
	return 0;
}

bool postern_proxy_peer_trusted(const struct postern_proxy_session *s)
{
	return s->client != NULL &&
	       postern_cidr_match(s->proxy->trusted, s->proxy->trusted_count,
				  postern_conn_peer_ip(s->client));
}

bool postern_proxy_plaintext_allowed(const struct postern_proxy_session *s)
{
	if (s->client == NULL)
		return false;
	return s->proxy->set.allow_plaintext_auth || postern_conn_is_tls(s->client) ||
	       proxy_ip_is_loopback(postern_conn_peer_ip(s->client)) ||
	       postern_proxy_peer_trusted(s);
}

int postern_proxy_set_client(struct postern_proxy_session *s, const char *ip, unsigned port,
			     unsigned hop, const char **error_r)
{
	unsigned char addr[16];

	if (inet_pton(AF_INET, ip, addr) != 1 && inet_pton(AF_INET6, ip, addr) != 1) {
		*error_r = "bad client address";
		return -1;
	}
	if (hop >= s->proxy->set.max_hops) {
		*error_r = "too many hops: proxy loop";
		return -1;
	}
	snprintf(s->client_ip, sizeof(s->client_ip), "%s", ip);
	s->client_port = port;
	s->hop = hop;
	return 0;
}

const char *postern_proxy_client_ip(const struct postern_proxy_session *s)
{
	return s->client_ip;
}

unsigned postern_proxy_client_port(const struct postern_proxy_session *s)
{
	return s->client_port;
}

unsigned postern_proxy_next_hop(const struct postern_proxy_session *s)
{
	return s->hop + 1;
}

bool postern_proxy_xclient_enabled(const struct postern_proxy_session *s)
{
	return s->proxy->set.backend_xclient;
}

bool postern_proxy_backend_login_plain(const struct postern_proxy_session *s)
{
	return s->proxy->login_plain;
}

const char *postern_proxy_user(const struct postern_proxy_session *s)
{
	return s->user;
}

const char *postern_proxy_password(const struct postern_proxy_session *s)
{
	return s->password != NULL ? s->password : "";
}

bool postern_proxy_bad_command(struct postern_proxy_session *s)
{
	if (++s->bad_commands < s->proxy->set.max_bad_commands)
		return false;
	postern_proxy_quit(s, "too many bad commands");
	return true;
}

void postern_proxy_quit(struct postern_proxy_session *s, const char *reason)
{
	proxy_backend_drop(s, reason);
	proxy_session_wipe_password(s);
	if (s->client != NULL)
		postern_conn_close_after_flush(s->client, reason);
	proxy_session_set_phase(s, PROXY_PHASE_CLOSING);
}
