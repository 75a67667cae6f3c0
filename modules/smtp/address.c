/*
 * Mailbox and domain syntax (RFC 5321 4.1.2 and 4.1.3, RFC 6531 3.3 for
 * UTF-8): what may stand between the angle brackets of MAIL FROM and
 * RCPT TO, and after HELO/EHLO. Only syntax: whether a domain is ours is
 * the queue's business.
 */
#include <string.h>
#include <strings.h>
#include "parse.h"

bool smtp_utf8_valid(const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i <= n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

static bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* RFC 5322 atext. */
static bool is_atext(unsigned char c)
{
	return is_alpha(c) || is_digit(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static bool is_let_dig(unsigned char c, bool utf8)
{
	return is_alpha(c) || is_digit(c) || (utf8 && c >= 0x80);
}

static bool ipv4_valid(const char *s, size_t len)
{
	unsigned parts = 0, value = 0, digits = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == '.') {
			if (digits == 0 || value > 255)
				return false;
			parts++;
			value = digits = 0;
			continue;
		}
		if (!is_digit((unsigned char)s[i]) || ++digits > 3)
			return false;
		value = value * 10 + (unsigned)(s[i] - '0');
	}
	return parts == 4;
}

/* IPv6 per RFC 5321 4.1.3 (full, compressed, with an IPv4 tail). */
static bool ipv6_valid(const char *s, size_t len)
{
	unsigned groups = 0;
	bool compressed = false;
	size_t i = 0;

	if (len >= 2 && s[0] == ':' && s[1] == ':') {
		compressed = true;
		i = 2;
	} else if (len > 0 && s[0] == ':') {
		return false;
	}
	while (i < len) {
		size_t start = i, hex = 0;

		while (i < len && s[i] != ':' && s[i] != '.' && hex <= 4) {
			unsigned char c = (unsigned char)s[i];

			if (!is_digit(c) && !((c | 0x20) >= 'a' && (c | 0x20) <= 'f'))
				return false;
			i++;
			hex++;
		}
		if (i < len && s[i] == '.') {
			/* An IPv4 tail: the rest of the literal. */
			if (!ipv4_valid(s + start, len - start))
				return false;
			groups += 2;
			i = len;
			break;
		}
		if (hex == 0 || hex > 4)
			return false;
		groups++;
		if (i == len)
			break;
		i++; /* the ':' */
		if (i < len && s[i] == ':') {
			if (compressed)
				return false;
			compressed = true;
			i++;
		} else if (i == len) {
			return false; /* a single trailing ':' */
		}
	}
	return compressed ? groups <= 7 : groups == 8;
}

static bool address_literal_valid(const char *s, size_t len)
{
	if (len < 3 || s[0] != '[' || s[len - 1] != ']')
		return false;
	s++;
	len -= 2;
	if (len > 5 && strncasecmp(s, "IPv6:", 5) == 0)
		return ipv6_valid(s + 5, len - 5);
	if (ipv4_valid(s, len))
		return true;
	/* General-address-literal: Standardized-tag ":" 1*dcontent. We know
	 * no other tag, so refuse it rather than pass on something odd. */
	return false;
}

bool smtp_domain_valid(const char *domain, size_t len, bool utf8)
{
	if (len == 0 || len > SMTP_MAX_DOMAIN)
		return false;
	if (domain[0] == '[')
		return address_literal_valid(domain, len);
	if (utf8 && !smtp_utf8_valid(domain, len))
		return false;
	size_t label = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)domain[i];

		if (c == '.') {
			if (label == 0 || domain[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (label == 0 && !is_let_dig(c, utf8))
			return false;
		if (!is_let_dig(c, utf8) && c != '-')
			return false;
		/* RFC 1035: 63 octets per label (A-labels; U-labels are
		 * counted in bytes too, which is stricter than needed). */
		if (++label > 63)
			return false;
	}
	return label > 0 && domain[len - 1] != '-';
}

static bool quoted_local_valid(const char *s, size_t len, bool utf8)
{
	if (len < 2 || s[0] != '"' || s[len - 1] != '"')
		return false;
	for (size_t i = 1; i < len - 1; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\\') {
			/* quoted-pairSMTP = %d92 %d32-126 */
			if (i + 1 >= len - 1)
				return false;
			c = (unsigned char)s[++i];
			if (c < 32 || c > 126)
				return false;
		} else if (c == '"' || c < 32 || c == 127 || (c >= 0x80 && !utf8)) {
			return false;
		}
	}
	return true;
}

static bool dot_string_valid(const char *s, size_t len, bool utf8)
{
	bool at_atom_start = true;

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (at_atom_start)
				return false;
			at_atom_start = true;
			continue;
		}
		if (!is_atext(c) && !(utf8 && c >= 0x80))
			return false;
		at_atom_start = false;
	}
	return !at_atom_start;
}

/* The '@' between local part and domain: the last one outside quotes. */
static const char *find_at(const char *mailbox)
{
	const char *at = NULL;
	bool quoted = false;

	for (const char *p = mailbox; *p != '\0'; p++) {
		if (quoted && *p == '\\' && p[1] != '\0') {
			p++;
		} else if (*p == '"') {
			quoted = !quoted;
		} else if (*p == '@' && !quoted) {
			at = p;
		}
	}
	return at;
}

bool smtp_mailbox_valid(const char *mailbox, bool utf8, bool *non_ascii_r)
{
	size_t len = strlen(mailbox);
	bool non_ascii = false;

	for (size_t i = 0; i < len; i++)
		if ((unsigned char)mailbox[i] >= 0x80)
			non_ascii = true;
	if (non_ascii_r != NULL)
		*non_ascii_r = non_ascii;
	if (non_ascii && !smtp_utf8_valid(mailbox, len))
		return false;
	const char *at = find_at(mailbox);

	if (at == NULL)
		return false;
	size_t local_len = (size_t)(at - mailbox);

	if (local_len == 0 || local_len > SMTP_MAX_LOCAL_PART)
		return false;
	if (mailbox[0] == '"') {
		if (!quoted_local_valid(mailbox, local_len, utf8))
			return false;
	} else if (!dot_string_valid(mailbox, local_len, utf8)) {
		return false;
	}
	return smtp_domain_valid(at + 1, len - local_len - 1, utf8);
}
