/* Network lists for relay_networks (pure code, see cidr.c). */
#ifndef SMTP_CIDR_H
#define SMTP_CIDR_H

#include <stdbool.h>

struct smtp_cidr {
	int family;              /* AF_INET or AF_INET6 */
	unsigned prefix;         /* bits that must match */
	unsigned char addr[16];
};

/* "192.0.2.0/24", "2001:db8::/32", "127.0.0.1": 0, or -1 when malformed. */
int smtp_cidr_parse(const char *text, struct smtp_cidr *cidr_r);
/* Does `ip` (text) lie in one of the networks? */
bool smtp_cidr_match(const struct smtp_cidr *cidrs, unsigned count, const char *ip);

#endif
