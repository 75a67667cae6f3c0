/*
 * Network lists ("192.0.2.0/24", "2001:db8::/32", "127.0.0.1") for settings
 * such as relay_networks and trusted_proxies. Pure functions: no core, no
 * allocation. Part of libpostern-protocol.
 */
#ifndef POSTERN_CIDR_H
#define POSTERN_CIDR_H

#include <postern/common.h>

struct postern_cidr {
	int family;              /* AF_INET or AF_INET6 */
	unsigned prefix;         /* leading bits that must match */
	unsigned char addr[16];  /* network address, host bits zero */
};

/* Parse one network; a bare address is a host (/32 or /128). Host bits set
 * below the prefix ("192.0.2.1/24") are an error: they usually mean a typo.
 * Returns 0, or -1 with *error_r set. */
POSTERN_API int postern_cidr_parse(const char *text, struct postern_cidr *cidr_r,
				   const char **error_r);

/* Is the textual address `ip` inside any of the `count` networks? An
 * IPv4-mapped IPv6 address ("::ffff:192.0.2.7") is matched as IPv4.
 * An unparsable `ip` matches nothing. */
POSTERN_API bool postern_cidr_match(const struct postern_cidr *cidrs, unsigned count,
				    const char *ip);

#endif
