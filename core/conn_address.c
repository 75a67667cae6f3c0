/*
 * Numeric socket addresses as they appear in settings and logs
 * ("192.0.2.1:25", "[2001:db8::1]:25", "*:25"), and copying settings
 * structs across header versions. Never resolves names: DNS would block
 * the loop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "conn_private.h"

static int parse_port(const char *text, in_port_t *port_r)
{
	unsigned long port = 0;

	if (*text == '\0' || strlen(text) > 5)
		return -1;
	for (const char *p = text; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		port = port * 10 + (unsigned long)(*p - '0');
	}
	if (port > 65535)
		return -1;
	*port_r = htons((uint16_t)port);
	return 0;
}

int conn_parse_address(const char *text, bool wildcard, struct sockaddr_storage *addr_r,
		       socklen_t *len_r, bool *wildcard_r, const char **error_r)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *port_text, *colon;
	in_port_t port;

	memset(addr_r, 0, sizeof(*addr_r));
	if (wildcard_r != NULL)
		*wildcard_r = false;
	if (text == NULL || *text == '\0') {
		*error_r = "no address given";
		return -1;
	}
	if (text[0] == '[') {
		const char *end = strchr(text, ']');

		if (end == NULL || end[1] != ':' || (size_t)(end - text - 1) >= sizeof(host)) {
			*error_r = "invalid address (expected [IPv6]:port)";
			return -1;
		}
		memcpy(host, text + 1, (size_t)(end - text - 1));
		host[end - text - 1] = '\0';
		port_text = end + 2;
	} else {
		colon = strrchr(text, ':');
		if (colon == NULL || (size_t)(colon - text) >= sizeof(host) ||
		    memchr(text, ':', (size_t)(colon - text)) != NULL) {
			*error_r = "invalid address (expected ip:port or [IPv6]:port)";
			return -1;
		}
		memcpy(host, text, (size_t)(colon - text));
		host[colon - text] = '\0';
		port_text = colon + 1;
	}
	if (parse_port(port_text, &port) < 0) {
		*error_r = "invalid port";
		return -1;
	}

	struct sockaddr_in *sin = (struct sockaddr_in *)addr_r;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)addr_r;

	if (text[0] != '[' && strcmp(host, "*") == 0 && wildcard) {
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		sin->sin_port = port;
		*len_r = sizeof(*sin);
		if (wildcard_r != NULL)
			*wildcard_r = true;
		return 0;
	}
	if (text[0] != '[' && inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = port;
		*len_r = sizeof(*sin);
		return 0;
	}
	if (text[0] == '[' && inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = port;
		*len_r = sizeof(*sin6);
		return 0;
	}
	*error_r = "invalid address (numeric IPv4 or [IPv6] only, no host names)";
	return -1;
}

void conn_format_address(const struct sockaddr *addr, char *buf, size_t size, char *ip_buf,
			 size_t ip_size)
{
	char ip[INET6_ADDRSTRLEN];
	unsigned port;

	if (addr->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)addr;

		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		port = ntohs(sin->sin_port);
		snprintf(buf, size, "%s:%u", ip, port);
	} else if (addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)addr;

		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		port = ntohs(sin6->sin6_port);
		snprintf(buf, size, "[%s]:%u", ip, port);
	} else {
		snprintf(ip, sizeof(ip), "-");
		snprintf(buf, size, "-");
	}
	if (ip_buf != NULL)
		snprintf(ip_buf, ip_size, "%s", ip);
}

int conn_copy_settings(void *dest, size_t dest_size, const void *src, const char **error_r)
{
	uint32_t src_size;

	if (src == NULL) {
		*error_r = "no settings given";
		return -1;
	}
	/* Every settings struct starts with its uint32_t struct_size. */
	memcpy(&src_size, src, sizeof(src_size));
	if (src_size < sizeof(uint32_t)) {
		*error_r = "settings struct_size is not set (use the _SETTINGS_INIT macro)";
		return -1;
	}
	memset(dest, 0, dest_size);
	memcpy(dest, src, src_size < dest_size ? src_size : dest_size);
	return 0;
}
