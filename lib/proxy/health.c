/*
 * Active health checks and the announcements of back-end state changes.
 *
 * Every health_check_interval each back-end gets a connection (with its
 * TLS, under health_check_timeout for connect, handshake and greeting);
 * a greeting the protocol accepts marks it up, anything else down. The
 * check says goodbye politely (the protocol's QUIT) so the back-end logs
 * nothing alarming. Checks are staggered over the interval so a large
 * pool is not probed in one burst, and a back-end a session just lost is
 * checked at once instead of at the next turn.
 *
 * With health_check_interval = 0 there are no checks, and therefore no
 * passive marking either: nothing could bring a back-end back.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy_private.h"

struct proxy_health {
	struct postern_proxy *proxy;
	struct postern_backend *backend;
	struct postern_timer *timer;
	struct postern_conn *conn;  /* the check under way, or NULL */
	bool decided;               /* this check's outcome was recorded */
	bool orphan;                /* the proxy let go: free on CLOSED */
};

static void health_announce(struct postern_proxy *proxy, struct postern_backend *be, bool up)
{
	struct postern_ev_backend ev = {
		.struct_size = sizeof(ev),
		.module = postern_mod_name(proxy->mod),
		.name = postern_backend_name(be),
		.address = postern_backend_address(be),
		.pool = postern_backend_pool(be),
		.up = up,
		.error = up ? NULL : postern_backend_last_error(be),
		.sessions = postern_backend_sessions(be),
	};

	(void)postern_bus_publish(proxy->mod, up ? POSTERN_TOPIC_BACKEND_UP :
						   POSTERN_TOPIC_BACKEND_DOWN,
				  POSTERN_EV_BACKEND_TYPE, &ev);
}

void proxy_mark_down(struct postern_proxy *proxy, struct postern_backend *be, const char *error)
{
	/* Without checks nothing would ever bring it back; a back-end a
	 * reload removed is nobody's concern any more. */
	if (proxy->set.health_check_interval == 0 || !proxy_backend_current(proxy, be)) {
		postern_backend_note_error(be, error);
		return;
	}
	if (!postern_backend_mark_down(be, error))
		return;
	postern_log(proxy->mod, POSTERN_LOG_WARNING, "back-end %s (%s) is down: %s",
		    postern_backend_name(be), postern_backend_address(be), error);
	health_announce(proxy, be, false);
}

void proxy_mark_up(struct postern_proxy *proxy, struct postern_backend *be)
{
	if (!postern_backend_mark_up(be))
		return;
	postern_log(proxy->mod, POSTERN_LOG_NOTICE, "back-end %s (%s) is up again",
		    postern_backend_name(be), postern_backend_address(be));
	health_announce(proxy, be, true);
}

static void health_decide(struct proxy_health *h, const char *error)
{
	char buf[300];

	if (h->decided || h->orphan)
		return;
	h->decided = true;
	if (error == NULL) {
		proxy_mark_up(h->proxy, h->backend);
		return;
	}
	snprintf(buf, sizeof(buf), "health check: %s", error);
	proxy_mark_down(h->proxy, h->backend, buf);
}

static void health_greeting(struct proxy_health *h, struct postern_conn *conn)
{
	const struct postern_proxy_protocol *protocol = h->proxy->protocol;
	struct postern_line line;

	switch (postern_conn_read_line(conn, &line)) {
	case POSTERN_READ_NONE:
		return;
	case POSTERN_READ_TOO_LONG:
		health_decide(h, "overlong greeting");
		postern_conn_close(conn, "health check: bad greeting");
		return;
	case POSTERN_READ_LINE:
		break;
	}
	if (!protocol->backend_greeting_ok(&line)) {
		health_decide(h, "bad greeting");
		postern_conn_close(conn, "health check: bad greeting");
		return;
	}
	health_decide(h, NULL);
	if (protocol->health_quit != NULL)
		postern_conn_write(conn, protocol->health_quit, strlen(protocol->health_quit));
	postern_conn_close_after_flush(conn, "health check done");
}

static void health_event(struct postern_conn *conn, enum postern_conn_event event, void *ctx)
{
	struct proxy_health *h = ctx;

	/* Checks stopped (stop, or a reload replaced the back-end list): the
	 * back-end may be gone already; only the memory is left to free. */
	if (h->orphan && event != POSTERN_CONN_CLOSED)
		return;
	switch (event) {
	case POSTERN_CONN_OPEN:
		postern_conn_set_state(conn, "HEALTH");
		/* The greeting must come within what is left of the check's
		 * time; the connect had its own deadline. */
		postern_conn_set_idle_timeout(conn, h->proxy->set.health_check_timeout);
		break;
	case POSTERN_CONN_INPUT:
		if (!h->decided) {
			health_greeting(h, conn);
		} else {
			size_t len;

			(void)postern_conn_input(conn, &len);
			postern_conn_consume(conn, len);
		}
		break;
	case POSTERN_CONN_EOF:
		health_decide(h, "connection closed before the greeting");
		break;
	case POSTERN_CONN_TIMEOUT:
		health_decide(h, "no greeting in time");
		break;
	case POSTERN_CONN_ERROR:
		health_decide(h, postern_conn_error(conn));
		break;
	case POSTERN_CONN_CLOSED:
		h->conn = NULL;
		if (h->orphan) {
			free(h);
			return;
		}
		if (!h->decided)
			health_decide(h, "connection closed");
		if (h->timer != NULL)
			postern_timer_reset(h->timer, h->proxy->set.health_check_interval);
		break;
	default:
		break;
	}
}

static void health_check(struct postern_timer *timer, void *ctx)
{
	struct proxy_health *h = ctx;
	struct postern_proxy *proxy = h->proxy;
	struct postern_connect_settings cs = POSTERN_CONNECT_SETTINGS_INIT;
	const char *error;

	if (h->conn != NULL)
		return; /* one at a time; CLOSED re-arms */
	cs.address = postern_backend_address(h->backend);
	cs.timeout_ms = proxy->set.health_check_timeout;
	if (postern_backend_tls(h->backend)) {
		const char *sni = proxy->backend_sni[postern_backend_index(h->backend)];

		cs.tls = proxy->backend_tls;
		cs.tls_server_name = sni != NULL ? sni : postern_backend_host(h->backend);
	}
	h->decided = false;
	h->conn = postern_connect(proxy->mod, &cs, health_event, h, &error);
	if (h->conn == NULL) {
		health_decide(h, error);
		postern_timer_reset(h->timer, proxy->set.health_check_interval);
	}
}

int proxy_health_init(struct postern_proxy *proxy, const char **error_r)
{
	unsigned count = postern_directory_count(proxy->dir);

	proxy->health = calloc(count, sizeof(*proxy->health));
	if (proxy->health == NULL)
		abort();
	for (unsigned i = 0; i < count; i++) {
		proxy->health[i].proxy = proxy;
		proxy->health[i].backend = postern_directory_backend(proxy->dir, i);
		postern_backend_set_data(proxy->health[i].backend, &proxy->health[i]);
	}
	return 0;
}

void proxy_health_start(struct postern_proxy *proxy)
{
	uint64_t interval = proxy->set.health_check_interval;
	unsigned count = postern_directory_count(proxy->dir);

	if (interval == 0 || proxy->health == NULL)
		return;
	for (unsigned i = 0; i < count; i++) {
		struct proxy_health *h = &proxy->health[i];

		/* Spread the first checks over the first interval. */
		h->timer = postern_timer_add(proxy->mod, 1 + interval * i / count, false,
					     health_check, h);
	}
}

void proxy_health_check_soon(struct postern_proxy *proxy, struct postern_backend *be)
{
	struct proxy_health *h = postern_backend_data(be);

	if (h != NULL && h->timer != NULL && h->conn == NULL)
		postern_timer_reset(h->timer, 1);
}

void proxy_health_free(struct postern_proxy *proxy)
{
	unsigned count = proxy->dir != NULL ? postern_directory_count(proxy->dir) : 0;

	if (proxy->health == NULL)
		return;
	for (unsigned i = 0; i < count; i++) {
		struct proxy_health *h = &proxy->health[i];

		postern_timer_remove(&h->timer);
		postern_backend_set_data(h->backend, NULL);
		if (h->conn != NULL) {
			/* Its CLOSED comes later and frees this copy; at unload
			 * the core frees the connection without one. */
			struct proxy_health *orphan = malloc(sizeof(*orphan));

			if (orphan == NULL)
				abort();
			*orphan = *h;
			orphan->orphan = true;
			orphan->timer = NULL;
			orphan->backend = NULL;
			postern_conn_set_handler(h->conn, health_event, orphan);
			postern_conn_close(h->conn, "health checks stopped");
		}
	}
	free(proxy->health);
	proxy->health = NULL;
}
