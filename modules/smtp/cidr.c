/*
 * Network lists (relay_networks): "192.0.2.0/24", "2001:db8::/32" or a
 * single address, matched against a client's IP. An IPv4-mapped IPv6 peer
 * ("::ffff:192.0.2.7") matches the IPv4 entries.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include "cidr.h"

static int parse_address(const char *text, struct smtp_cidr *cidr_r)
{
	if (inet_pton(AF_INET, text, cidr_r->addr) == 1) {
		cidr_r->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, text, cidr_r->addr) == 1) {
		cidr_r->family = AF_INET6;
		return 0;
	}
	return -1;
}

int smtp_cidr_parse(const char *text, struct smtp_cidr *cidr_r)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(text, '/');
	size_t len = slash != NULL ? (size_t)(slash - text) : strlen(text);

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, text, len);
	buf[len] = '\0';
	memset(cidr_r, 0, sizeof(*cidr_r));
	if (parse_address(buf, cidr_r) < 0)
		return -1;
	unsigned max = cidr_r->family == AF_INET ? 32 : 128;

	cidr_r->prefix = max;
	if (slash != NULL) {
		char *end;
		unsigned long prefix = strtoul(slash + 1, &end, 10);

		if (slash[1] < '0' || slash[1] > '9' || *end != '\0' || prefix > max)
			return -1;
		cidr_r->prefix = (unsigned)prefix;
	}
	return 0;
}

static bool prefix_equal(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	unsigned bytes = bits / 8, rest = bits % 8;

	if (memcmp(a, b, bytes) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));

	return (a[bytes] & mask) == (b[bytes] & mask);
}

bool smtp_cidr_match(const struct smtp_cidr *cidrs, unsigned count, const char *ip)
{
	struct smtp_cidr peer;
	static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (ip == NULL || parse_address(ip, &peer) < 0)
		return false;
	if (peer.family == AF_INET6 && memcmp(peer.addr, v4mapped, 12) == 0) {
		memmove(peer.addr, peer.addr + 12, 4);
		peer.family = AF_INET;
	}
	for (unsigned i = 0; i < count; i++) {
		if (cidrs[i].family == peer.family &&
		    prefix_equal(cidrs[i].addr, peer.addr, cidrs[i].prefix))
			return true;
	}
	return false;
}
