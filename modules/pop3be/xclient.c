/*
 * XCLIENT attributes: how a trusted front-end (pop3fe) tells the back-end
 * who the real client is.
 *
 *   XCLIENT ADDR=<ip> [PORT=<port>] [LOGIN=<xtext>] [HOP=<n>]
 *
 * Names are case-insensitive; each may appear once. ADDR is an IPv4 or
 * IPv6 address ("IPV6:" prefix accepted, as Postfix writes it). LOGIN is
 * only a hint for the log: it never authenticates anybody; values are
 * xtext (RFC 3461: "+XX" for a byte). Whether the peer may send XCLIENT at
 * all is the session's business (trusted_proxies), not the parser's.
 * Pure: unit-tested and fuzzed.
 */
#include <arpa/inet.h>
#include <sys/socket.h>
#include <string.h>
#include <strings.h>

#include "pop3be.h"

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* xtext: printable ASCII except '+' and '=', and "+HH". The decoded text
 * must be printable too (it goes into log lines). */
static int xtext_decode(const char *in, char *out, size_t out_size)
{
	size_t n = 0;

	for (const char *p = in; *p != '\0'; p++) {
		int c = (unsigned char)*p;

		if (*p == '+') {
			int hi = hex_digit(p[1]), lo = hi < 0 ? -1 : hex_digit(p[2]);

			if (hi < 0 || lo < 0)
				return -1;
			c = hi * 16 + lo;
			p += 2;
		} else if (*p == '=' || c < 0x21 || c > 0x7e) {
			return -1;
		}
		if (c < 0x20 || c == 0x7f || n + 1 >= out_size)
			return -1;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return 0;
}

static int parse_uint(const char *text, unsigned max, unsigned *value_r)
{
	unsigned long value = 0;

	if (*text == '\0' || strlen(text) > 10)
		return -1;
	for (const char *p = text; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		value = value * 10 + (unsigned long)(*p - '0');
	}
	if (value > max)
		return -1;
	*value_r = (unsigned)value;
	return 0;
}

/* Canonical text of an IP, so the failure tracker and the logs see one
 * spelling per address. */
static int parse_addr(const char *text, char *out, size_t out_size)
{
	unsigned char bin[16];

	if (strncasecmp(text, "IPV6:", 5) == 0) {
		text += 5;
		if (inet_pton(AF_INET6, text, bin) != 1)
			return -1;
		return inet_ntop(AF_INET6, bin, out, (socklen_t)out_size) == NULL ? -1 : 0;
	}
	if (inet_pton(AF_INET, text, bin) == 1)
		return inet_ntop(AF_INET, bin, out, (socklen_t)out_size) == NULL ? -1 : 0;
	if (inet_pton(AF_INET6, text, bin) == 1)
		return inet_ntop(AF_INET6, bin, out, (socklen_t)out_size) == NULL ? -1 : 0;
	return -1;
}

int pop3_xclient_parse(char *const *args, unsigned argc, struct pop3_xclient *xc_r,
		       const char **error_r)
{
	bool seen_addr = false, seen_port = false, seen_login = false, seen_hop = false;

	memset(xc_r, 0, sizeof(*xc_r));
	xc_r->hop = 1;
	for (unsigned i = 0; i < argc; i++) {
		const char *eq = strchr(args[i], '=');
		size_t name_len = eq == NULL ? 0 : (size_t)(eq - args[i]);
		const char *value = eq == NULL ? NULL : eq + 1;

		if (eq == NULL || name_len == 0) {
			*error_r = "XCLIENT attributes are NAME=value";
			return -1;
		}
#define IS(name) (name_len == sizeof(name) - 1 && strncasecmp(args[i], name, name_len) == 0)
		if (IS("ADDR")) {
			if (seen_addr || parse_addr(value, xc_r->addr, sizeof(xc_r->addr)) < 0) {
				*error_r = "Bad XCLIENT ADDR";
				return -1;
			}
			seen_addr = true;
		} else if (IS("PORT")) {
			if (seen_port || parse_uint(value, 65535, &xc_r->port) < 0 ||
			    xc_r->port == 0) {
				*error_r = "Bad XCLIENT PORT";
				return -1;
			}
			seen_port = true;
		} else if (IS("LOGIN")) {
			if (seen_login || xtext_decode(value, xc_r->login, sizeof(xc_r->login)) < 0) {
				*error_r = "Bad XCLIENT LOGIN";
				return -1;
			}
			seen_login = true;
		} else if (IS("HOP")) {
			if (seen_hop || parse_uint(value, 1000000, &xc_r->hop) < 0 ||
			    xc_r->hop == 0) {
				*error_r = "Bad XCLIENT HOP";
				return -1;
			}
			seen_hop = true;
		} else {
			*error_r = "Unknown XCLIENT attribute";
			return -1;
		}
#undef IS
	}
	if (!seen_addr) {
		*error_r = "XCLIENT needs ADDR";
		return -1;
	}
	return 0;
}
