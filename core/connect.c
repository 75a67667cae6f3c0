/*
 * Outgoing connections: a non-blocking connect to a numeric address, with
 * an optional source address, then (with TLS) the client handshake, all
 * under one deadline. The module hears OPEN or ERROR, always from the loop,
 * never from inside postern_connect() itself.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "conn_private.h"

/* The source may be "ip" or "ip:port" ("[v6]" or "[v6]:port"). */
static int connect_parse_source(const char *text, struct sockaddr_storage *addr_r,
				socklen_t *len_r, const char **error_r)
{
	char buf[CONN_ADDRSTRLEN + 8];

	if (conn_parse_address(text, false, addr_r, len_r, NULL, error_r) == 0)
		return 0;
	if (text[0] == '[')
		snprintf(buf, sizeof(buf), "%s:0", text);
	else if (strchr(text, ':') != NULL)
		snprintf(buf, sizeof(buf), "[%s]:0", text);
	else
		snprintf(buf, sizeof(buf), "%s:0", text);
	if (conn_parse_address(buf, false, addr_r, len_r, NULL, error_r) < 0) {
		*error_r = "invalid source address (numeric IPv4 or IPv6)";
		return -1;
	}
	return 0;
}

static const char *connect_errno_error(struct postern_core *core, const char *what, int err)
{
	return core_error(core, "%s: %s", what, conn_errno_text(err));
}

struct postern_conn *postern_connect(struct postern_mod *mod,
				     const struct postern_connect_settings *settings,
				     postern_conn_cb *cb, void *ctx, const char **error_r)
{
	struct postern_connect_settings set;
	struct sockaddr_storage addr, source;
	socklen_t addr_len, source_len = 0;

	if (conn_copy_settings(&set, sizeof(set), settings, error_r) < 0 ||
	    conn_parse_address(set.address, false, &addr, &addr_len, NULL, error_r) < 0)
		return NULL;
	if (set.source != NULL) {
		if (connect_parse_source(set.source, &source, &source_len, error_r) < 0)
			return NULL;
		if (source.ss_family != addr.ss_family) {
			*error_r = "source and destination address families differ";
			return NULL;
		}
	}

	int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int saved = errno;
	struct postern_conn *conn = conn_new(mod->core->conns, mod, fd, true, set.max_line, cb, ctx);
	const char *error;

	conn_set_addresses(conn, (struct sockaddr *)&addr, addr_len);
	conn->phase = CONN_PHASE_CONNECTING;
	conn->handshake_timeout_ms = set.timeout_ms != 0 ? set.timeout_ms :
							  CONN_DEFAULT_CONNECT_TIMEOUT_MS;
	if (set.tls != NULL) {
		conn->pending_tls = tls_ref(set.tls);
		if (set.tls_server_name != NULL)
			conn->pending_tls_name = xstrdup(set.tls_server_name);
	}
	if (fd < 0) {
		conn_fail_later(conn, connect_errno_error(mod->core, "socket", saved));
		return conn;
	}

	int on = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if (set.source != NULL && bind(fd, (struct sockaddr *)&source, source_len) < 0) {
		conn_fail_later(conn, connect_errno_error(mod->core, "bind to source", errno));
		return conn;
	}
	if (connect(fd, (struct sockaddr *)&addr, addr_len) < 0 && errno != EINPROGRESS) {
		conn_fail_later(conn, conn_errno_text(errno));
		return conn;
	}
	if (conn_watch(conn, &error) < 0) {
		conn_fail_later(conn, error);
		return conn;
	}
	conn_timer_set(conn, CONN_TIMER_DEADLINE, conn->handshake_timeout_ms);
	conn_update_io(conn);
	return conn;
}

void connect_ready(struct postern_conn *conn)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err != 0) {
		conn_fail(conn, conn_errno_text(err));
		return;
	}
	conn_set_addresses(conn, NULL, 0);
	if (conn->pending_tls != NULL) {
		struct postern_tls *tls = conn->pending_tls;
		char *name = conn->pending_tls_name;

		conn->pending_tls = NULL;
		conn->pending_tls_name = NULL;
		if (conn_start_tls(conn, tls, name) < 0)
			conn_fail(conn, conn->error);
		tls_unref(&tls);
		free(name);
		return;
	}
	conn_open(conn);
}
