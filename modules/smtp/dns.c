/*
 * c-ares on the core's event loop (see dns.h). c-ares tells through its
 * socket-state callback which sockets to watch for what; they go to
 * postern_io_add(). After every call into c-ares the timer is set to
 * ares_timeout(), so retries and timeouts happen without a blocking wait.
 * Results are parked on the query and handed out from a zero-delay timer,
 * which keeps callers safe from being called back from inside their own
 * call.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ares.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include "smtp_private.h"
#include "dns.h"

#define DNS_MAX_RESULTS 32

struct dns_sock {
	ares_socket_t fd;
	struct postern_io *io;
	struct dns_sock *next;
};

struct smtp_dns {
	struct postern_mod *mod;
	ares_channel channel;
	bool channel_ok;
	bool ipv6;
	struct dns_sock *socks;
	struct postern_timer *timer;         /* c-ares timeouts */
	struct postern_timer *deliver_timer; /* parked results */
	struct smtp_dns_query *queries;
};

struct smtp_dns_query {
	struct smtp_dns *dns;
	struct smtp_dns_query *prev, *next;
	bool is_mx;
	smtp_dns_mx_cb *mx_cb;
	smtp_dns_addr_cb *addr_cb;
	void *ctx;
	bool cancelled;
	bool ready; /* the result is parked, waiting for delivery */
	enum smtp_dns_status status;
	char *error;
	struct smtp_mx mx[DNS_MAX_RESULTS];
	char *addrs[DNS_MAX_RESULTS];
	unsigned count;
};

static void dns_update_timer(struct smtp_dns *dns)
{
	struct timeval tv, *tvp;

	if (!dns->channel_ok)
		return;
	tvp = ares_timeout(dns->channel, NULL, &tv);
	if (tvp == NULL) {
		postern_timer_stop(dns->timer);
		return;
	}
	uint64_t ms = (uint64_t)tvp->tv_sec * 1000 + (uint64_t)tvp->tv_usec / 1000;

	postern_timer_reset(dns->timer, ms > 0 ? ms : 1);
}

static void dns_io_ready(struct postern_io *io, int fd, unsigned events, void *ctx)
{
	struct smtp_dns *dns = ctx;

	ares_process_fd(dns->channel, (events & POSTERN_IO_READ) ? fd : ARES_SOCKET_BAD,
			(events & POSTERN_IO_WRITE) ? fd : ARES_SOCKET_BAD);
	dns_update_timer(dns);
}

static void dns_timer_fired(struct postern_timer *timer, void *ctx)
{
	struct smtp_dns *dns = ctx;

	ares_process_fd(dns->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dns_update_timer(dns);
}

static void dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct smtp_dns *dns = data;
	struct dns_sock **p = &dns->socks;
	unsigned events = (readable ? POSTERN_IO_READ : 0) | (writable ? POSTERN_IO_WRITE : 0);

	while (*p != NULL && (*p)->fd != fd)
		p = &(*p)->next;
	if (events == 0) {
		if (*p != NULL) {
			struct dns_sock *sock = *p;

			*p = sock->next;
			postern_io_remove(&sock->io);
			free(sock);
		}
		return;
	}
	if (*p != NULL) {
		postern_io_set_events((*p)->io, events);
		return;
	}
	const char *error;
	struct dns_sock *sock = smtp_alloc(sizeof(*sock));

	sock->fd = fd;
	sock->io = postern_io_add(dns->mod, fd, events, dns_io_ready, dns, &error);
	if (sock->io == NULL) {
		/* The query on it times out; nothing else we can do. */
		postern_log(dns->mod, POSTERN_LOG_ERROR, "dns: cannot watch socket: %s", error);
		free(sock);
		return;
	}
	sock->next = dns->socks;
	dns->socks = sock;
}

static void query_unlink(struct smtp_dns_query *query)
{
	struct smtp_dns *dns = query->dns;

	if (query->prev != NULL)
		query->prev->next = query->next;
	else
		dns->queries = query->next;
	if (query->next != NULL)
		query->next->prev = query->prev;
	query->prev = query->next = NULL;
}

/* Free an unlinked query. */
static void query_destroy(struct smtp_dns_query *query)
{
	for (unsigned i = 0; i < query->count; i++) {
		if (query->is_mx)
			free(query->mx[i].host);
		else
			free(query->addrs[i]);
	}
	free(query->error);
	free(query);
}

static void dns_deliver(struct postern_timer *timer, void *ctx)
{
	struct smtp_dns *dns = ctx;
	struct smtp_dns_query *ready = NULL, *query, *next;

	/* Take the parked results off the list first: callbacks may start
	 * or cancel lookups meanwhile. */
	for (query = dns->queries; query != NULL; query = next) {
		next = query->next;
		if (!query->ready)
			continue;
		query_unlink(query);
		query->next = ready;
		ready = query;
	}
	for (query = ready; query != NULL; query = next) {
		next = query->next;
		if (!query->cancelled) {
			const char *error = query->error != NULL ? query->error : "";

			if (query->is_mx)
				query->mx_cb(query->ctx, query->status, query->mx, query->count,
					     error);
			else
				query->addr_cb(query->ctx, query->status, query->addrs,
					       query->count, error);
		}
		query_destroy(query);
	}
}

static void park(struct smtp_dns_query *query, enum smtp_dns_status status, const char *error)
{
	query->status = status;
	free(query->error);
	query->error = error != NULL ? smtp_strdup(error) : NULL;
	query->ready = true;
	if (query->dns->deliver_timer != NULL)
		postern_timer_reset(query->dns->deliver_timer, 1);
}

static enum smtp_dns_status map_status(int status)
{
	switch (status) {
	case ARES_SUCCESS:
		return SMTP_DNS_OK;
	case ARES_ENODATA:
		return SMTP_DNS_NODATA;
	case ARES_ENOTFOUND:
		return SMTP_DNS_NXDOMAIN;
	default:
		return SMTP_DNS_TEMPFAIL;
	}
}

static void mx_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct smtp_dns_query *query = arg;
	struct ares_mx_reply *replies = NULL;

	if (status == ARES_SUCCESS)
		status = ares_parse_mx_reply(abuf, alen, &replies);
	if (status != ARES_SUCCESS) {
		park(query, map_status(status), ares_strerror(status));
		return;
	}
	for (struct ares_mx_reply *r = replies; r != NULL && query->count < DNS_MAX_RESULTS;
	     r = r->next) {
		/* Insertion sort by preference, stable. */
		unsigned pos = query->count;
		const char *host = r->host == NULL || r->host[0] == '\0' ? "." : r->host;

		while (pos > 0 && query->mx[pos - 1].preference > r->priority) {
			query->mx[pos] = query->mx[pos - 1];
			pos--;
		}
		query->mx[pos].host = smtp_strdup(host);
		query->mx[pos].preference = r->priority;
		query->count++;
	}
	ares_free_data(replies);
	park(query, query->count > 0 ? SMTP_DNS_OK : SMTP_DNS_NODATA,
	     query->count > 0 ? NULL : "no MX records");
}

static void addr_done(void *arg, int status, int timeouts, struct ares_addrinfo *result)
{
	struct smtp_dns_query *query = arg;

	if (status != ARES_SUCCESS) {
		park(query, map_status(status), ares_strerror(status));
		return;
	}
	for (struct ares_addrinfo_node *node = result != NULL ? result->nodes : NULL;
	     node != NULL && query->count < DNS_MAX_RESULTS; node = node->ai_next) {
		char text[INET6_ADDRSTRLEN];
		const void *addr;

		if (node->ai_family == AF_INET)
			addr = &((const struct sockaddr_in *)(const void *)node->ai_addr)->sin_addr;
		else if (node->ai_family == AF_INET6 && query->dns->ipv6)
			addr = &((const struct sockaddr_in6 *)(const void *)node->ai_addr)->sin6_addr;
		else
			continue;
		if (inet_ntop(node->ai_family, addr, text, sizeof(text)) == NULL)
			continue;
		bool seen = false;

		for (unsigned i = 0; i < query->count; i++)
			if (strcmp(query->addrs[i], text) == 0)
				seen = true;
		if (!seen)
			query->addrs[query->count++] = smtp_strdup(text);
	}
	ares_freeaddrinfo(result);
	park(query, query->count > 0 ? SMTP_DNS_OK : SMTP_DNS_NODATA,
	     query->count > 0 ? NULL : "no usable address");
}

static struct smtp_dns_query *query_new(struct smtp_dns *dns, bool is_mx, void *ctx)
{
	struct smtp_dns_query *query = smtp_alloc(sizeof(*query));

	query->dns = dns;
	query->is_mx = is_mx;
	query->ctx = ctx;
	query->next = dns->queries;
	if (dns->queries != NULL)
		dns->queries->prev = query;
	dns->queries = query;
	return query;
}

struct smtp_dns_query *smtp_dns_mx(struct smtp_dns *dns, const char *name, smtp_dns_mx_cb *cb,
				   void *ctx)
{
	struct smtp_dns_query *query = query_new(dns, true, ctx);

	query->mx_cb = cb;
	ares_query(dns->channel, name, ns_c_in, ns_t_mx, mx_done, query);
	dns_update_timer(dns);
	return query;
}

struct smtp_dns_query *smtp_dns_addr(struct smtp_dns *dns, const char *name,
				     smtp_dns_addr_cb *cb, void *ctx)
{
	struct smtp_dns_query *query = query_new(dns, false, ctx);
	struct ares_addrinfo_hints hints;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = dns->ipv6 ? AF_UNSPEC : AF_INET;
	hints.ai_flags = ARES_AI_NOSORT;
	query->addr_cb = cb;
	ares_getaddrinfo(dns->channel, name, NULL, &hints, addr_done, query);
	dns_update_timer(dns);
	return query;
}

void smtp_dns_cancel(struct smtp_dns_query *query)
{
	if (query != NULL)
		query->cancelled = true;
}

int smtp_dns_create(struct postern_mod *mod, const struct smtp_dns_settings *set,
		    struct smtp_dns **dns_r, const char **error_r)
{
	struct smtp_dns *dns = smtp_alloc(sizeof(*dns));
	struct ares_options options;
	int optmask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
	int status = ares_library_init(ARES_LIB_INIT_ALL);

	if (status != ARES_SUCCESS) {
		*error_r = ares_strerror(status);
		free(dns);
		return -1;
	}
	dns->mod = mod;
	dns->ipv6 = set->ipv6;
	memset(&options, 0, sizeof(options));
	options.sock_state_cb = dns_sock_state;
	options.sock_state_cb_data = dns;
	options.tries = 2;
	options.timeout = (int)(set->timeout_ms / 2 > 0 ? set->timeout_ms / 2 : 1);
	status = ares_init_options(&dns->channel, &options, optmask);
	if (status != ARES_SUCCESS) {
		*error_r = ares_strerror(status);
		ares_library_cleanup();
		free(dns);
		return -1;
	}
	dns->channel_ok = true;
	if (set->servers != NULL) {
		status = ares_set_servers_ports_csv(dns->channel, set->servers);
		if (status != ARES_SUCCESS) {
			*error_r = "dns_servers: not a list of ADDRESS[:PORT]";
			smtp_dns_free(&dns);
			return -1;
		}
	}
	dns->timer = postern_timer_add(mod, 1000, false, dns_timer_fired, dns);
	postern_timer_stop(dns->timer);
	dns->deliver_timer = postern_timer_add(mod, 1, false, dns_deliver, dns);
	postern_timer_stop(dns->deliver_timer);
	*dns_r = dns;
	return 0;
}

void smtp_dns_free(struct smtp_dns **dnsp)
{
	struct smtp_dns *dns = *dnsp;

	if (dns == NULL)
		return;
	*dnsp = NULL;
	/* ares_destroy() calls every pending callback (ARES_EDESTRUCTION):
	 * they park results nobody will collect. */
	struct postern_timer *deliver = dns->deliver_timer;

	dns->deliver_timer = NULL;
	if (dns->channel_ok)
		ares_destroy(dns->channel);
	dns->channel_ok = false;
	while (dns->queries != NULL) {
		struct smtp_dns_query *query = dns->queries;

		query_unlink(query);
		query_destroy(query);
	}
	while (dns->socks != NULL) {
		struct dns_sock *sock = dns->socks;

		dns->socks = sock->next;
		postern_io_remove(&sock->io);
		free(sock);
	}
	postern_timer_remove(&dns->timer);
	postern_timer_remove(&deliver);
	ares_library_cleanup();
	free(dns);
}
