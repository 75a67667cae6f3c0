/*
 * Maildir file names.
 *
 * A name is "<base>[:2,<flags>[,<more>]]". The base never changes once a
 * message is delivered; it identifies the message across flag changes and
 * is what the uidlist records. We write bases as
 * "<sec>.M<usec>P<pid>Q<n>.<host>,S=<size>,W=<crlf size>[,D=<id hash>]":
 * the djb "modern" unique part, Dovecot's ",S=" and ",W=" size fields, and
 * our own ",D=" delivery id field (other software ignores unknown fields
 * in the base). Flags are the ASCII-sorted letters after ":2,"; we know
 * D F P R S T and keep every other letter (Dovecot keywords a-z) as is.
 */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "mailstore_private.h"

static const struct {
	char letter;
	unsigned flag;
} flag_letters[] = {
	{ 'D', MAILSTORE_FLAG_DRAFT },
	{ 'F', MAILSTORE_FLAG_FLAGGED },
	{ 'P', MAILSTORE_FLAG_PASSED },
	{ 'R', MAILSTORE_FLAG_REPLIED },
	{ 'S', MAILSTORE_FLAG_SEEN },
	{ 'T', MAILSTORE_FLAG_TRASHED },
};

static unsigned letter_flag(char c)
{
	for (size_t i = 0; i < sizeof(flag_letters) / sizeof(flag_letters[0]); i++) {
		if (flag_letters[i].letter == c)
			return flag_letters[i].flag;
	}
	return 0;
}

/* Parse ",X=<digits>" somewhere in the base; the field must end at ',',
 * ':' or the end of the base, or it is not ours. */
static uint64_t base_size_field(const char *name, size_t base_len, char key)
{
	const char *p = name, *end = name + base_len;

	while ((p = memchr(p, ',', (size_t)(end - p))) != NULL) {
		uint64_t value = 0;
		const char *d = p + 3;

		if (end - p < 4 || p[1] != key || p[2] != '=') {
			p++;
			continue;
		}
		while (d < end && *d >= '0' && *d <= '9') {
			if (value > (UINT64_MAX - 9) / 10)
				return MAILSTORE_SIZE_UNKNOWN;
			value = value * 10 + (uint64_t)(*d - '0');
			d++;
		}
		if (d > p + 3 && (d == end || *d == ','))
			return value;
		p++;
	}
	return MAILSTORE_SIZE_UNKNOWN;
}

void ms_name_parse(const char *name, struct ms_name *name_r)
{
	const char *colon = strchr(name, ':');

	name_r->base_len = colon != NULL ? (size_t)(colon - name) : strlen(name);
	name_r->size = base_size_field(name, name_r->base_len, 'S');
	name_r->vsize = base_size_field(name, name_r->base_len, 'W');
	name_r->flags = 0;
	if (colon != NULL && colon[1] == '2' && colon[2] == ',') {
		for (const char *p = colon + 3; *p != '\0' && *p != ','; p++)
			name_r->flags |= letter_flag(*p);
	}
}

bool ms_name_is_message(const char *name)
{
	return name[0] != '.' && name[0] != '\0' && strchr(name, '/') == NULL;
}

int ms_name_unique(char *buf, size_t size, const char **error_r)
{
	static atomic_uint counter;
	char host[200];
	struct timeval tv;
	int len;

	gettimeofday(&tv, NULL);
	ms_hostname(host, sizeof(host));
	len = snprintf(buf, size, "%lld.M%ldP%ldQ%u.%s", (long long)tv.tv_sec,
		       (long)tv.tv_usec, (long)getpid(),
		       atomic_fetch_add(&counter, 1) + 1, host);
	if (len < 0 || (size_t)len >= size) {
		*error_r = ms_error("unique file name too long");
		return -1;
	}
	return 0;
}

static int cmp_char(const void *a, const void *b)
{
	return *(const unsigned char *)a - *(const unsigned char *)b;
}

int ms_name_with_flags(const char *name, unsigned flags, char *buf, size_t size)
{
	struct ms_name parsed;
	char letters[128];
	size_t n = 0, len;
	const char *rest = "", *info;

	ms_name_parse(name, &parsed);
	info = name + parsed.base_len;
	if (info[0] == ':' && info[1] == '2' && info[2] == ',') {
		const char *p;

		/* keep letters we do not know, once each */
		for (p = info + 3; *p != '\0' && *p != ','; p++) {
			if (letter_flag(*p) == 0 && *p > ' ' && *p < 127 &&
			    memchr(letters, *p, n) == NULL && n < sizeof(letters) - 8)
				letters[n++] = *p;
		}
		rest = p;
	}
	for (size_t i = 0; i < sizeof(flag_letters) / sizeof(flag_letters[0]); i++) {
		if ((flags & flag_letters[i].flag) != 0)
			letters[n++] = flag_letters[i].letter;
	}
	qsort(letters, n, 1, cmp_char);
	len = parsed.base_len + 3 + n + strlen(rest);
	if (len >= size || len > MS_NAME_MAX)
		return -1;
	memcpy(buf, name, parsed.base_len);
	memcpy(buf + parsed.base_len, ":2,", 3);
	memcpy(buf + parsed.base_len + 3, letters, n);
	strcpy(buf + parsed.base_len + 3 + n, rest);
	return 0;
}

int ms_name_id_field(const char *id, char buf[MS_ID_FIELD_LEN + 1], const char **error_r)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	size_t len = strlen(id);

	if (len == 0 || len > MAILSTORE_DELIVERY_ID_MAX) {
		*error_r = ms_error("delivery id must be 1..%d bytes", MAILSTORE_DELIVERY_ID_MAX);
		return -1;
	}
	/* A hash, not the id itself: ids hold any bytes ('/', ':' and ','
	 * among them) and may be longer than a file name can be. 128 bits of
	 * SHA-256 make a false "already delivered" practically impossible,
	 * even for ids an attacker picks. */
	if (EVP_Digest(id, len, md, &md_len, EVP_sha256(), NULL) != 1 || md_len < 16) {
		*error_r = ms_error("SHA-256 of the delivery id failed");
		return -1;
	}
	memcpy(buf, ",D=", 3);
	for (unsigned i = 0; i < 16; i++) {
		buf[3 + 2 * i] = hex[md[i] >> 4];
		buf[3 + 2 * i + 1] = hex[md[i] & 15];
	}
	buf[MS_ID_FIELD_LEN] = '\0';
	return 0;
}

bool ms_name_has_id_field(const char *name, const char *field)
{
	const char *colon = strchr(name, ':');
	size_t base_len = colon != NULL ? (size_t)(colon - name) : strlen(name);
	size_t flen = strlen(field);
	const char *p = name;

	while ((p = strstr(p, field)) != NULL && (size_t)(p - name) + flen <= base_len) {
		char end = p[flen];

		if (end == '\0' || end == ':' || end == ',')
			return true;
		p++;
	}
	return false;
}

/* Seconds and, for "<sec>.M<usec>..." names, microseconds. */
static void name_time(const char *name, unsigned long long *sec_r, unsigned long long *usec_r)
{
	char *end;

	*sec_r = strtoull(name, &end, 10);
	*usec_r = 0;
	if (end[0] == '.' && end[1] == 'M' && end[2] >= '0' && end[2] <= '9')
		*usec_r = strtoull(end + 2, NULL, 10);
}

int ms_name_cmp(const char *a, const char *b)
{
	unsigned long long sa, ua, sb, ub;

	name_time(a, &sa, &ua);
	name_time(b, &sb, &ub);
	if (sa != sb)
		return sa < sb ? -1 : 1;
	if (ua != ub)
		return ua < ub ? -1 : 1;
	return strcmp(a, b);
}
