/*
 * Asynchronous DNS for the outbound client: MX records and host addresses
 * through c-ares, its sockets watched on the core's event loop and its
 * timeouts driven by a core timer, so the loop never blocks.
 *
 * Results are always delivered from the event loop, never from inside the
 * call that started the lookup, so callers may start a lookup as the last
 * thing they do or in the middle of something. A lookup can be cancelled:
 * its callback is then never called.
 */
#ifndef SMTP_DNS_H
#define SMTP_DNS_H

#include <stdbool.h>
#include <postern/common.h>

struct smtp_dns;
struct smtp_dns_query;

enum smtp_dns_status {
	SMTP_DNS_OK = 0,
	SMTP_DNS_NODATA,      /* the name exists, no record of that type */
	SMTP_DNS_NXDOMAIN,    /* the name does not exist */
	SMTP_DNS_TEMPFAIL,    /* timeout, SERVFAIL, no server: try later */
};

struct smtp_mx {
	char *host;           /* "." for a null MX */
	unsigned preference;
};

/* MX records sorted by preference (stable for equal ones); `error` says
 * what went wrong when status is not OK. Arrays are valid during the call. */
typedef void smtp_dns_mx_cb(void *ctx, enum smtp_dns_status status, const struct smtp_mx *mx,
			    unsigned count, const char *error);
/* Numeric addresses ("192.0.2.1", "2001:db8::1"). */
typedef void smtp_dns_addr_cb(void *ctx, enum smtp_dns_status status, char *const *addrs,
			      unsigned count, const char *error);

struct smtp_dns_settings {
	const char *servers;  /* "127.0.0.1:5353,[::1]:53" or NULL for resolv.conf */
	uint64_t timeout_ms;  /* one lookup, retries included */
	bool ipv6;            /* ask for AAAA too */
};

int smtp_dns_create(struct postern_mod *mod, const struct smtp_dns_settings *set,
		    struct smtp_dns **dns_r, const char **error_r);
/* Pending lookups end without their callbacks. NULL is fine. */
void smtp_dns_free(struct smtp_dns **dns);

struct smtp_dns_query *smtp_dns_mx(struct smtp_dns *dns, const char *name, smtp_dns_mx_cb *cb,
				   void *ctx);
struct smtp_dns_query *smtp_dns_addr(struct smtp_dns *dns, const char *name,
				     smtp_dns_addr_cb *cb, void *ctx);
/* The callback will not be called. */
void smtp_dns_cancel(struct smtp_dns_query *query);

#endif
