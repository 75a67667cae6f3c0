/*
 * Network lists (include/postern/cidr.h).
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <postern/cidr.h>

#define CIDR_TEXT_MAX 64

/* Parse a bare address of either family into `addr`; its family or -1. */
static int parse_address(const char *text, unsigned char addr[16])
{
	if (inet_pton(AF_INET, text, addr) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, text, addr) == 1)
		return AF_INET6;
	return -1;
}

static bool host_bits_zero(const unsigned char *addr, unsigned bytes, unsigned prefix)
{
	for (unsigned bit = prefix; bit < bytes * 8; bit++) {
		if (addr[bit / 8] & (0x80u >> (bit % 8)))
			return false;
	}
	return true;
}

int postern_cidr_parse(const char *text, struct postern_cidr *cidr_r, const char **error_r)
{
	char address[CIDR_TEXT_MAX];
	const char *slash = strchr(text, '/');
	size_t len = slash != NULL ? (size_t)(slash - text) : strlen(text);

	memset(cidr_r, 0, sizeof(*cidr_r));
	if (len == 0 || len >= sizeof(address)) {
		*error_r = "not an address or network";
		return -1;
	}
	memcpy(address, text, len);
	address[len] = '\0';
	cidr_r->family = parse_address(address, cidr_r->addr);
	if (cidr_r->family < 0) {
		*error_r = "not an IPv4 or IPv6 address";
		return -1;
	}
	unsigned bytes = cidr_r->family == AF_INET ? 4 : 16;
	cidr_r->prefix = bytes * 8;
	if (slash != NULL) {
		char *end;
		unsigned long prefix = strtoul(slash + 1, &end, 10);

		if (slash[1] < '0' || slash[1] > '9' || *end != '\0' || prefix > bytes * 8) {
			*error_r = "bad prefix length";
			return -1;
		}
		cidr_r->prefix = (unsigned)prefix;
	}
	if (!host_bits_zero(cidr_r->addr, bytes, cidr_r->prefix)) {
		*error_r = "address has bits set beyond the prefix length";
		return -1;
	}
	return 0;
}

static bool prefix_equal(const unsigned char *a, const unsigned char *b, unsigned prefix)
{
	unsigned whole = prefix / 8, rest = prefix % 8;

	if (memcmp(a, b, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xffu << (8 - rest));
	return (a[whole] & mask) == (b[whole] & mask);
}

bool postern_cidr_match(const struct postern_cidr *cidrs, unsigned count, const char *ip)
{
	static const unsigned char v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	unsigned char addr[16];
	int family;

	if (ip == NULL || strlen(ip) >= CIDR_TEXT_MAX)
		return false;
	family = parse_address(ip, addr);
	if (family == AF_INET6 && memcmp(addr, v4_mapped, sizeof(v4_mapped)) == 0) {
		memmove(addr, addr + 12, 4);
		family = AF_INET;
	}
	if (family < 0)
		return false;
	for (unsigned i = 0; i < count; i++) {
		if (cidrs[i].family == family && prefix_equal(cidrs[i].addr, addr, cidrs[i].prefix))
			return true;
	}
	return false;
}
