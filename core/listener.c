/*
 * Listeners: bind, accept and the connection limits (per listener, per
 * client IP, process-wide).
 *
 * "*:port" binds two sockets, 0.0.0.0 and [::] with IPV6_V6ONLY, so both
 * families work the same way on every system; "unix:/path" binds a UNIX
 * socket with mode 0600 after removing a stale one. A client over a limit
 * gets the listener's limit_reply (best effort, never blocking) and is
 * closed at once; the module never sees it. Implicit-TLS clients are handed
 * to the module (OPEN) only once their handshake is done.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "conn_private.h"

/* Accepts per wakeup: a burst of clients must not starve established
 * connections; the rest are accepted on the next iteration. */
#define LISTENER_ACCEPTS_PER_WAKEUP 64
/* Out of fds: stop accepting for this long instead of spinning. */
#define LISTENER_RETRY_MS 100
#define LISTENER_BACKLOG 511
#define LISTENER_MAX_SOCKETS 2
/* Refusals are logged at most once per this interval per listener: a
 * connection flood must not become a log flood. */
#define LISTENER_REFUSAL_LOG_MS 1000

/* Clients per IP on one listener. */
struct ip_count {
	struct ip_count *next;
	unsigned count;
	unsigned char key_len;
	unsigned char key[17];
};

struct listener_socket {
	struct postern_listener *listener;
	int fd;
	struct postern_io *io;
};

struct postern_listener {
	struct conn_registry *reg;
	struct postern_mod *mod;
	struct postern_listener *prev, *next;

	char *address;            /* as bound: "127.0.0.1:41234", "*:25", "unix:/x" */
	char *unix_path;
	dev_t unix_dev;
	ino_t unix_ino;
	struct listener_socket socks[LISTENER_MAX_SOCKETS];
	unsigned sock_count;
	bool closed;

	postern_conn_cb *cb;
	void *ctx;
	struct postern_tls *tls;
	unsigned max_connections, max_per_ip;
	char *limit_reply;
	size_t max_line;
	uint64_t idle_timeout_ms, handshake_timeout_ms;

	unsigned conn_count;
	uint64_t refusal_logged_ms;
	unsigned refusals_unlogged;
	struct ip_count **ip_buckets;
	unsigned ip_bucket_count, ip_entries;
	struct postern_timer *retry;
};

/* "WHAT ADDRESS: reason" for *error_r. */
static const char *listener_error(const struct postern_listener *listener, const char *what,
				  const char *address, int err)
{
	return core_error(listener->reg->core, "%s %s: %s", what, address, conn_errno_text(err));
}

/* ---- Per-IP counts ------------------------------------------------------ */

static unsigned ip_hash(const unsigned char *key, unsigned len)
{
	uint32_t hash = 2166136261u;

	for (unsigned i = 0; i < len; i++)
		hash = (hash ^ key[i]) * 16777619u;
	return hash;
}

static struct ip_count **ip_find(struct postern_listener *listener, const unsigned char *key,
				 unsigned len)
{
	if (listener->ip_bucket_count == 0)
		return NULL;

	struct ip_count **link =
		&listener->ip_buckets[ip_hash(key, len) & (listener->ip_bucket_count - 1)];

	for (; *link != NULL; link = &(*link)->next) {
		if ((*link)->key_len == len && memcmp((*link)->key, key, len) == 0)
			return link;
	}
	return link;
}

static void ip_grow(struct postern_listener *listener)
{
	unsigned count = listener->ip_bucket_count == 0 ? 64 : listener->ip_bucket_count * 2;
	struct ip_count **buckets = xcalloc(count, sizeof(*buckets));

	for (unsigned i = 0; i < listener->ip_bucket_count; i++) {
		while (listener->ip_buckets[i] != NULL) {
			struct ip_count *entry = listener->ip_buckets[i];
			unsigned slot = ip_hash(entry->key, entry->key_len) & (count - 1);

			listener->ip_buckets[i] = entry->next;
			entry->next = buckets[slot];
			buckets[slot] = entry;
		}
	}
	free(listener->ip_buckets);
	listener->ip_buckets = buckets;
	listener->ip_bucket_count = count;
}

static unsigned ip_count_get(struct postern_listener *listener, const unsigned char *key,
			     unsigned len)
{
	struct ip_count **link = ip_find(listener, key, len);

	return link != NULL && *link != NULL ? (*link)->count : 0;
}

static void ip_count_add(struct postern_listener *listener, const unsigned char *key,
			 unsigned len)
{
	if (listener->ip_entries >= listener->ip_bucket_count)
		ip_grow(listener);

	struct ip_count **link = ip_find(listener, key, len);

	if (*link == NULL) {
		struct ip_count *entry = xcalloc(1, sizeof(*entry));

		memcpy(entry->key, key, len);
		entry->key_len = (unsigned char)len;
		*link = entry;
		listener->ip_entries++;
	}
	(*link)->count++;
}

static void ip_count_remove(struct postern_listener *listener, const unsigned char *key,
			    unsigned len)
{
	struct ip_count **link = ip_find(listener, key, len);

	assert(link != NULL && *link != NULL && (*link)->count > 0);
	if (--(*link)->count == 0) {
		struct ip_count *entry = *link;

		*link = entry->next;
		free(entry);
		listener->ip_entries--;
	}
}

static void ip_free_all(struct postern_listener *listener)
{
	for (unsigned i = 0; i < listener->ip_bucket_count; i++) {
		while (listener->ip_buckets[i] != NULL) {
			struct ip_count *entry = listener->ip_buckets[i];

			listener->ip_buckets[i] = entry->next;
			free(entry);
		}
	}
	free(listener->ip_buckets);
	listener->ip_buckets = NULL;
	listener->ip_bucket_count = listener->ip_entries = 0;
}

void listener_conn_released(struct postern_listener *listener, struct postern_conn *conn)
{
	assert(listener->conn_count > 0);
	listener->conn_count--;
	if (listener->max_per_ip > 0 && conn->ip_key_len > 0)
		ip_count_remove(listener, conn->ip_key, conn->ip_key_len);
}

/* ---- Accepting ---------------------------------------------------------- */

static const char *listener_refusal(struct postern_listener *listener,
				    const struct postern_conn *probe)
{
	const struct postern_core *core = listener->reg->core;

	if (core->shutting_down)
		return "shutting down";
	if (core->settings.max_connections > 0 &&
	    listener->reg->live >= core->settings.max_connections)
		return "process connection limit";
	if (listener->max_connections > 0 && listener->conn_count >= listener->max_connections)
		return "listener connection limit";
	if (listener->max_per_ip > 0 && probe->ip_key_len > 0 &&
	    ip_count_get(listener, probe->ip_key, probe->ip_key_len) >= listener->max_per_ip)
		return "per-IP connection limit";
	return NULL;
}

static void listener_refuse(struct postern_listener *listener, int fd, const char *peer,
			    const char *why)
{
	if (listener->limit_reply != NULL) {
		size_t len = strlen(listener->limit_reply);
		char *reply = xmalloc(len + 2);

		memcpy(reply, listener->limit_reply, len);
		memcpy(reply + len, "\r\n", 2);
		/* Best effort: a fresh socket has room, and we never wait. */
		(void)send(fd, reply, len + 2, MSG_DONTWAIT | MSG_NOSIGNAL);
		free(reply);
	}
	close(fd);

	uint64_t now = postern_now_ms();

	if (listener->refusal_logged_ms != 0 &&
	    now - listener->refusal_logged_ms < LISTENER_REFUSAL_LOG_MS) {
		listener->refusals_unlogged++;
		return;
	}
	if (listener->refusals_unlogged > 0)
		postern_log(listener->mod, POSTERN_LOG_NOTICE,
			    "refused %s on %s: %s (and %u more since the last report)", peer,
			    listener->address, why, listener->refusals_unlogged);
	else
		postern_log(listener->mod, POSTERN_LOG_NOTICE, "refused %s on %s: %s", peer,
			    listener->address, why);
	listener->refusal_logged_ms = now;
	listener->refusals_unlogged = 0;
}

static void listener_take(struct postern_listener *listener, int fd,
			  const struct sockaddr_storage *peer, socklen_t peer_len)
{
	struct conn_registry *reg = listener->reg;
	struct postern_conn probe = { .ip_key_len = 0 };
	char peer_text[CONN_ADDRSTRLEN] = "unix";
	const char *why, *error;

	if (peer->ss_family == AF_INET || peer->ss_family == AF_INET6) {
		int on = 1;

		conn_format_address((const struct sockaddr *)peer, peer_text, sizeof(peer_text),
				    NULL, 0);
		if (peer->ss_family == AF_INET) {
			probe.ip_key[0] = 4;
			memcpy(probe.ip_key + 1, &((const struct sockaddr_in *)peer)->sin_addr, 4);
			probe.ip_key_len = 5;
		} else {
			probe.ip_key[0] = 6;
			memcpy(probe.ip_key + 1, &((const struct sockaddr_in6 *)peer)->sin6_addr, 16);
			probe.ip_key_len = 17;
		}
		/* Replies are written whole once per iteration: Nagle would
		 * only add a round trip to pipelined exchanges. */
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	}
	why = listener_refusal(listener, &probe);
	if (why != NULL) {
		listener_refuse(listener, fd, peer_text, why);
		return;
	}

	struct postern_conn *conn = conn_new(reg, listener->mod, fd, false, listener->max_line,
					     listener->cb, listener->ctx);

	conn_set_addresses(conn, (const struct sockaddr *)peer, peer_len);
	conn->listener = listener;
	listener->conn_count++;
	if (listener->max_per_ip > 0 && conn->ip_key_len > 0)
		ip_count_add(listener, conn->ip_key, conn->ip_key_len);
	conn->idle_timeout_ms = listener->idle_timeout_ms;
	conn->handshake_timeout_ms = listener->handshake_timeout_ms;
	if (conn_watch(conn, &error) < 0) {
		postern_log(listener->mod, POSTERN_LOG_ERROR, "watching %s: %s", peer_text, error);
		conn_close_internal(conn, error);
		return;
	}
	if (listener->tls != NULL) {
		if (conn_start_tls(conn, listener->tls, NULL) < 0)
			conn_fail(conn, conn->error);
		return;
	}
	conn_open(conn);
}

static void listener_retry_cb(struct postern_timer *timer, void *ctx)
{
	struct postern_listener *listener = ctx;

	for (unsigned i = 0; i < listener->sock_count; i++) {
		if (listener->socks[i].io != NULL)
			postern_io_set_events(listener->socks[i].io, POSTERN_IO_READ);
	}
}

/* Out of fds or memory: pause accepting instead of spinning on a socket
 * that stays readable. */
static void listener_pause(struct postern_listener *listener)
{
	for (unsigned i = 0; i < listener->sock_count; i++) {
		if (listener->socks[i].io != NULL)
			postern_io_set_events(listener->socks[i].io, 0);
	}
	if (listener->retry == NULL)
		listener->retry = loop_timer_add(listener->reg->core->loop, &conn_internal_owner,
						 LISTENER_RETRY_MS, false, listener_retry_cb,
						 listener);
	else
		postern_timer_reset(listener->retry, LISTENER_RETRY_MS);
}

static void listener_accept_cb(struct postern_io *io, int fd, unsigned events, void *ctx)
{
	struct listener_socket *sock = ctx;
	struct postern_listener *listener = sock->listener;

	for (unsigned i = 0; i < LISTENER_ACCEPTS_PER_WAKEUP && !listener->closed; i++) {
		struct sockaddr_storage peer;
		socklen_t peer_len = sizeof(peer);
		int client = accept4(fd, (struct sockaddr *)&peer, &peer_len,
				     SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (client >= 0) {
			listener_take(listener, client, &peer, peer_len);
			continue;
		}
		switch (errno) {
		case EAGAIN:
#if EWOULDBLOCK != EAGAIN
		case EWOULDBLOCK:
#endif
			return;
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
			continue;
		case EMFILE:
		case ENFILE:
		case ENOBUFS:
		case ENOMEM:
			postern_log(listener->mod, POSTERN_LOG_ERROR,
				    "accept on %s: %s; pausing %d ms", listener->address,
				    strerror(errno), LISTENER_RETRY_MS);
			listener_pause(listener);
			return;
		default:
			postern_log(listener->mod, POSTERN_LOG_ERROR, "accept on %s: %s",
				    listener->address, strerror(errno));
			return;
		}
	}
}

/* ---- Binding ------------------------------------------------------------ */

static int listener_add_socket(struct postern_listener *listener, int fd, const char **error_r)
{
	struct listener_socket *sock = &listener->socks[listener->sock_count];

	assert(listener->sock_count < LISTENER_MAX_SOCKETS);
	sock->listener = listener;
	sock->fd = fd;
	sock->io = loop_io_add(listener->reg->core->loop, &conn_internal_owner, fd,
			       POSTERN_IO_READ, listener_accept_cb, sock, error_r);
	if (sock->io == NULL) {
		close(fd);
		return -1;
	}
	listener->sock_count++;
	return 0;
}

/* A listening TCP socket on `addr`; -1 with errno set. */
static int listener_bind_tcp(const struct sockaddr_storage *addr, socklen_t len)
{
	int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int on = 1, saved;

	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0 ||
	    (addr->ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) < 0) ||
	    bind(fd, (const struct sockaddr *)addr, len) < 0 || listen(fd, LISTENER_BACKLOG) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

static in_port_t sockaddr_port(const struct sockaddr_storage *addr)
{
	return addr->ss_family == AF_INET ? ((const struct sockaddr_in *)addr)->sin_port :
					    ((const struct sockaddr_in6 *)addr)->sin6_port;
}

static int listener_open_tcp(struct postern_listener *listener, const char *address,
			     const char **error_r)
{
	struct sockaddr_storage addr, bound;
	socklen_t len, bound_len = sizeof(bound);
	bool wildcard;
	char text[CONN_ADDRSTRLEN];
	int fd;

	if (conn_parse_address(address, true, &addr, &len, &wildcard, error_r) < 0)
		return -1;
	fd = listener_bind_tcp(&addr, len);
	if (fd < 0) {
		*error_r = listener_error(listener, "bind", address, errno);
		return -1;
	}
	if (getsockname(fd, (struct sockaddr *)&bound, &bound_len) < 0) {
		*error_r = listener_error(listener, "getsockname", address, errno);
		close(fd);
		return -1;
	}
	if (listener_add_socket(listener, fd, error_r) < 0)
		return -1;
	conn_format_address((struct sockaddr *)&bound, text, sizeof(text), NULL, 0);
	if (!wildcard) {
		listener->address = xstrdup(text);
		return 0;
	}

	/* "*": the same port on IPv6, where the system has it. */
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&addr;
	in_port_t port = sockaddr_port(&bound);

	memset(&addr, 0, sizeof(addr));
	sin6->sin6_family = AF_INET6;
	sin6->sin6_addr = in6addr_any;
	sin6->sin6_port = port;
	fd = listener_bind_tcp(&addr, sizeof(*sin6));
	if (fd < 0 && errno != EAFNOSUPPORT && errno != EADDRNOTAVAIL) {
		*error_r = listener_error(listener, "bind", address, errno);
		return -1;
	}
	if (fd >= 0 && listener_add_socket(listener, fd, error_r) < 0)
		return -1;
	listener->address = xasprintf("*:%u", (unsigned)ntohs(port));
	return 0;
}

/* A socket file left by a process that is gone answers no connect. */
static bool unix_socket_is_stale(const struct sockaddr_un *addr)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	bool stale;

	if (fd < 0)
		return false;
	stale = connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0 &&
		errno == ECONNREFUSED;
	close(fd);
	return stale;
}

static int listener_open_unix(struct postern_listener *listener, const char *path,
			      const char **error_r)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (path[0] != '/' || strlen(path) >= sizeof(addr.sun_path)) {
		*error_r = "invalid UNIX socket path (absolute, at most 107 bytes)";
		return -1;
	}
	memcpy(addr.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode) || !unix_socket_is_stale(&addr)) {
			*error_r = listener_error(listener, "bind", path, EADDRINUSE);
			return -1;
		}
		(void)unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*error_r = listener_error(listener, "socket", path, errno);
		return -1;
	}

	/* Nobody but the owner may connect, from the first moment. */
	mode_t old_mask = umask(0177);
	int ret = bind(fd, (struct sockaddr *)&addr, sizeof(addr));

	umask(old_mask);
	if (ret < 0 || chmod(path, 0600) < 0 || listen(fd, LISTENER_BACKLOG) < 0 ||
	    stat(path, &st) < 0) {
		*error_r = listener_error(listener, "bind", path, errno);
		if (ret == 0)
			(void)unlink(path);
		close(fd);
		return -1;
	}
	listener->unix_path = xstrdup(path);
	listener->unix_dev = st.st_dev;
	listener->unix_ino = st.st_ino;
	listener->address = xasprintf("unix:%s", path);
	return listener_add_socket(listener, fd, error_r);
}

/* ---- Public ------------------------------------------------------------- */

static void listener_close_sockets(struct postern_listener *listener)
{
	struct stat st;

	if (listener->closed)
		return;
	listener->closed = true;
	for (unsigned i = 0; i < listener->sock_count; i++) {
		postern_io_remove(&listener->socks[i].io);
		close(listener->socks[i].fd);
		listener->socks[i].fd = -1;
	}
	postern_timer_remove(&listener->retry);
	/* Remove the socket file only if it is still ours. */
	if (listener->unix_path != NULL && lstat(listener->unix_path, &st) == 0 &&
	    st.st_dev == listener->unix_dev && st.st_ino == listener->unix_ino)
		(void)unlink(listener->unix_path);
}

static void listener_free(struct postern_listener *listener)
{
	struct conn_registry *reg = listener->reg;

	listener_close_sockets(listener);
	/* Connections outlive their listener: they no longer count here. */
	for (struct postern_conn *conn = reg->conns; conn != NULL; conn = conn->next) {
		if (conn->listener == listener)
			conn->listener = NULL;
	}
	if (listener->prev != NULL)
		listener->prev->next = listener->next;
	else
		reg->listeners = listener->next;
	if (listener->next != NULL)
		listener->next->prev = listener->prev;
	if (listener->tls != NULL)
		tls_unref(&listener->tls);
	ip_free_all(listener);
	free(listener->address);
	free(listener->unix_path);
	free(listener->limit_reply);
	free(listener);
}

struct postern_listener *postern_listen(struct postern_mod *mod,
					const struct postern_listen_settings *settings,
					postern_conn_cb *cb, void *ctx, const char **error_r)
{
	struct postern_listen_settings set;
	struct conn_registry *reg;
	int ret;

	assert(mod != NULL && mod->core != NULL && mod->core->conns != NULL);
	if (conn_copy_settings(&set, sizeof(set), settings, error_r) < 0)
		return NULL;
	if (set.address == NULL) {
		*error_r = "listen: no address given";
		return NULL;
	}
	reg = mod->core->conns;

	struct postern_listener *listener = xcalloc(1, sizeof(*listener));

	listener->reg = reg;
	listener->mod = mod;
	listener->cb = cb;
	listener->ctx = ctx;
	if (strncmp(set.address, "unix:", 5) == 0)
		ret = listener_open_unix(listener, set.address + 5, error_r);
	else
		ret = listener_open_tcp(listener, set.address, error_r);
	if (ret < 0) {
		for (unsigned i = 0; i < listener->sock_count; i++) {
			postern_io_remove(&listener->socks[i].io);
			close(listener->socks[i].fd);
		}
		if (listener->unix_path != NULL)
			(void)unlink(listener->unix_path);
		free(listener->address);
		free(listener->unix_path);
		free(listener);
		return NULL;
	}
	listener->tls = set.tls != NULL ? tls_ref(set.tls) : NULL;
	listener->max_connections = set.max_connections;
	listener->max_per_ip = set.max_per_ip;
	listener->limit_reply = set.limit_reply != NULL ? xstrdup(set.limit_reply) : NULL;
	listener->max_line = set.max_line != 0 ? set.max_line : CONN_DEFAULT_MAX_LINE;
	listener->idle_timeout_ms = set.idle_timeout_ms;
	listener->handshake_timeout_ms = set.tls_handshake_timeout_ms != 0 ?
						 set.tls_handshake_timeout_ms :
						 CONN_DEFAULT_HANDSHAKE_TIMEOUT_MS;

	listener->next = reg->listeners;
	if (reg->listeners != NULL)
		reg->listeners->prev = listener;
	reg->listeners = listener;
	postern_log(mod, POSTERN_LOG_INFO, "listening on %s%s", listener->address,
		    listener->tls != NULL ? " (TLS)" : "");
	return listener;
}

const char *postern_listener_address(const struct postern_listener *listener)
{
	return listener->address;
}

void listener_close_all(struct conn_registry *reg, const struct postern_mod *mod)
{
	for (struct postern_listener *listener = reg->listeners; listener != NULL;
	     listener = listener->next) {
		if (mod == NULL || listener->mod == mod)
			listener_close_sockets(listener);
	}
}

void listener_free_all(struct conn_registry *reg, const struct postern_mod *mod)
{
	struct postern_listener *listener = reg->listeners;

	while (listener != NULL) {
		struct postern_listener *next = listener->next;

		if (mod == NULL || listener->mod == mod)
			listener_free(listener);
		listener = next;
	}
}

int listener_unix_chown(struct postern_listener *listener, uid_t uid, gid_t gid,
			const char **error_r)
{
	if (listener->unix_path == NULL) {
		*error_r = "not a UNIX socket listener";
		return -1;
	}
	if (chown(listener->unix_path, uid, gid) < 0) {
		*error_r = listener_error(listener, "chown", listener->unix_path, errno);
		return -1;
	}
	return 0;
}
