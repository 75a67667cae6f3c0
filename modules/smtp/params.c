/*
 * The arguments of MAIL FROM and RCPT TO: the path in angle brackets and
 * the ESMTP parameters after it (RFC 5321 4.1.2; SIZE RFC 1870, BODY RFC
 * 6152, SMTPUTF8 RFC 6531, RET/ENVID/NOTIFY/ORCPT RFC 3461, AUTH RFC 4954).
 * Values that go into queue records (ENVID, ORCPT) are decoded here and
 * refused when they would hold a control byte.
 */
#include <string.h>
#include <strings.h>
#include "parse.h"

#define MAX_PARAMS 16

struct param {
	char *keyword;
	char *value; /* NULL for a keyword without "=" */
};

/* "FROM:" / "TO:", case-insensitive, then optional blanks. */
static char *skip_prefix(char *args, const char *prefix)
{
	size_t len = strlen(prefix);

	if (strncasecmp(args, prefix, len) != 0)
		return NULL;
	args += len;
	while (*args == ' ')
		args++;
	return args;
}

/* Cut "<...>" at the front of `p`, honouring a quoted local part that may
 * hold '>' or '"' escaped. On success the path (brackets removed, source
 * route dropped) is NUL-terminated in place and *rest_r points after it. */
static int take_path(char *p, char **path_r, char **rest_r)
{
	bool quoted = false;
	char *end = NULL;

	if (*p != '<')
		return -1;
	for (char *q = p + 1; *q != '\0'; q++) {
		if (quoted && *q == '\\' && q[1] != '\0') {
			q++;
		} else if (*q == '"') {
			quoted = !quoted;
		} else if (*q == '>' && !quoted) {
			end = q;
			break;
		}
	}
	if (end == NULL || (size_t)(end - p + 1) > SMTP_MAX_PATH)
		return -1;
	*end = '\0';
	*rest_r = end + 1;
	p++;
	/* A-d-l ":" Mailbox: the source route is obsolete and ignored
	 * (RFC 5321 4.1.2, C.). */
	if (*p == '@') {
		char *colon = strchr(p, ':');

		if (colon == NULL)
			return -1;
		for (char *q = p; q < colon; q++)
			if (*q == ' ' || *q == '"')
				return -1;
		p = colon + 1;
	}
	*path_r = p;
	return 0;
}

static bool keyword_valid(const char *keyword)
{
	if (*keyword == '\0')
		return false;
	for (const char *p = keyword; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9');

		if (!alnum && (p == keyword || c != '-'))
			return false;
	}
	return true;
}

/* esmtp-value = 1*(%d33-60 / %d62-126), plus UTF-8 with SMTPUTF8. */
static bool value_valid(const char *value, bool utf8)
{
	if (*value == '\0')
		return false;
	for (const char *p = value; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c >= 0x80 && utf8)
			continue;
		if (c < 33 || c > 126 || c == '=')
			return false;
	}
	return !utf8 || smtp_utf8_valid(value, strlen(value));
}

/* Split "A=1 B C=2" in place. */
static int split_params(char *rest, struct param *params, unsigned *count_r, bool utf8,
			const char **error_r)
{
	unsigned count = 0;

	if (*rest != '\0' && *rest != ' ') {
		*error_r = "501 5.5.4 Syntax error after the address";
		return -1;
	}
	while (*rest != '\0') {
		while (*rest == ' ')
			rest++;
		if (*rest == '\0')
			break;
		if (count == MAX_PARAMS) {
			*error_r = "501 5.5.4 Too many parameters";
			return -1;
		}
		char *keyword = rest;
		char *end = strchr(rest, ' ');

		if (end != NULL) {
			*end = '\0';
			rest = end + 1;
		} else {
			rest += strlen(rest);
		}
		char *eq = strchr(keyword, '=');

		params[count].keyword = keyword;
		params[count].value = NULL;
		if (eq != NULL) {
			*eq = '\0';
			params[count].value = eq + 1;
			if (!value_valid(eq + 1, utf8)) {
				*error_r = "501 5.5.4 Bad parameter value";
				return -1;
			}
		}
		if (!keyword_valid(keyword)) {
			*error_r = "501 5.5.4 Bad parameter keyword";
			return -1;
		}
		for (unsigned i = 0; i < count; i++) {
			if (strcasecmp(params[i].keyword, keyword) == 0) {
				*error_r = "501 5.5.4 Duplicate parameter";
				return -1;
			}
		}
		count++;
	}
	*count_r = count;
	return 0;
}

static int parse_size(const char *value, uint64_t *size_r)
{
	uint64_t size = 0;

	if (value == NULL || *value == '\0' || strlen(value) > 20)
		return -1;
	for (const char *p = value; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		if (size > (UINT64_MAX - 9) / 10)
			return -1;
		size = size * 10 + (uint64_t)(*p - '0');
	}
	*size_r = size;
	return 0;
}

static int mail_param(const struct param *param, const struct smtp_parse_options *options,
		      struct smtp_mail_args *mail, const char **error_r)
{
	const char *kw = param->keyword, *value = param->value;

	if (strcasecmp(kw, "SIZE") == 0 && options->size) {
		if (parse_size(value, &mail->size) < 0) {
			*error_r = "501 5.5.4 Bad SIZE value";
			return -1;
		}
		mail->size_given = true;
	} else if (strcasecmp(kw, "BODY") == 0 && options->eightbitmime) {
		if (value != NULL && strcasecmp(value, "7BIT") == 0) {
			mail->body = SMTP_BODY_7BIT;
		} else if (value != NULL && strcasecmp(value, "8BITMIME") == 0) {
			mail->body = SMTP_BODY_8BITMIME;
		} else {
			*error_r = "501 5.5.4 Bad BODY value (7BIT or 8BITMIME)";
			return -1;
		}
	} else if (strcasecmp(kw, "SMTPUTF8") == 0 && options->smtputf8) {
		if (value != NULL) {
			*error_r = "501 5.5.4 SMTPUTF8 takes no value";
			return -1;
		}
		mail->smtputf8 = true;
	} else if (strcasecmp(kw, "RET") == 0 && options->dsn) {
		if (value != NULL && strcasecmp(value, "FULL") == 0) {
			mail->ret = POSTERN_RET_FULL;
		} else if (value != NULL && strcasecmp(value, "HDRS") == 0) {
			mail->ret = POSTERN_RET_HDRS;
		} else {
			*error_r = "501 5.5.4 Bad RET value (FULL or HDRS)";
			return -1;
		}
	} else if (strcasecmp(kw, "ENVID") == 0 && options->dsn) {
		if (value == NULL || strlen(value) > SMTP_MAX_ENVID ||
		    smtp_xtext_decode(param->value) <= 0) {
			*error_r = "501 5.5.4 Bad ENVID value";
			return -1;
		}
		mail->envid = param->value;
	} else if (strcasecmp(kw, "AUTH") == 0 && options->auth) {
		if (value == NULL || smtp_xtext_decode(param->value) <= 0) {
			*error_r = "501 5.5.4 Bad AUTH value";
			return -1;
		}
		mail->auth = param->value;
	} else {
		*error_r = "555 5.5.4 Unsupported MAIL parameter";
		return -1;
	}
	return 0;
}

int smtp_parse_mail(char *args, const struct smtp_parse_options *options,
		    struct smtp_mail_args *mail_r, const char **error_r)
{
	struct param params[MAX_PARAMS];
	unsigned count;
	char *path, *rest, *p = skip_prefix(args, "FROM:");

	memset(mail_r, 0, sizeof(*mail_r));
	if (p == NULL || take_path(p, &path, &rest) < 0) {
		*error_r = "501 5.5.4 Syntax: MAIL FROM:<address>";
		return -1;
	}
	if (split_params(rest, params, &count, options->smtputf8, error_r) < 0)
		return -1;
	for (unsigned i = 0; i < count; i++)
		if (mail_param(&params[i], options, mail_r, error_r) < 0)
			return -1;
	mail_r->address = path;
	if (*path == '\0')
		return 0; /* the null sender */
	bool non_ascii;

	if (!smtp_mailbox_valid(path, mail_r->smtputf8, &non_ascii)) {
		*error_r = non_ascii && !mail_r->smtputf8 ?
				   "553 5.6.7 Non-ASCII address needs SMTPUTF8" :
				   "553 5.1.7 Bad sender address syntax";
		return -1;
	}
	return 0;
}

static int parse_notify(char *value, unsigned *notify_r)
{
	unsigned notify = 0;

	if (value == NULL)
		return -1;
	if (strcasecmp(value, "NEVER") == 0) {
		*notify_r = POSTERN_NOTIFY_NEVER;
		return 0;
	}
	for (char *word = value; *word != '\0';) {
		size_t len = strcspn(word, ",");
		unsigned bit;

		if (len == 7 && strncasecmp(word, "SUCCESS", 7) == 0)
			bit = POSTERN_NOTIFY_SUCCESS;
		else if (len == 7 && strncasecmp(word, "FAILURE", 7) == 0)
			bit = POSTERN_NOTIFY_FAILURE;
		else if (len == 5 && strncasecmp(word, "DELAY", 5) == 0)
			bit = POSTERN_NOTIFY_DELAY;
		else
			return -1;
		if ((notify & bit) != 0)
			return -1;
		notify |= bit;
		word += len;
		if (*word == ',') {
			word++;
			if (*word == '\0')
				return -1;
		}
	}
	*notify_r = notify;
	return 0;
}

/* ORCPT=addr-type ";" xtext. The addr-type is an atom (RFC 3461 4.2). */
static int parse_orcpt(char *value)
{
	char *semi = value != NULL ? strchr(value, ';') : NULL;

	if (semi == NULL || semi == value || strlen(value) > SMTP_MAX_ORCPT)
		return -1;
	for (char *p = value; p < semi; p++) {
		unsigned char c = (unsigned char)*p;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-'))
			return -1;
	}
	return smtp_xtext_decode(semi + 1) > 0 ? 0 : -1;
}

static int rcpt_param(const struct param *param, const struct smtp_parse_options *options,
		      struct smtp_rcpt_args *rcpt, const char **error_r)
{
	if (strcasecmp(param->keyword, "NOTIFY") == 0 && options->dsn) {
		if (parse_notify(param->value, &rcpt->notify) < 0) {
			*error_r = "501 5.5.4 Bad NOTIFY value";
			return -1;
		}
	} else if (strcasecmp(param->keyword, "ORCPT") == 0 && options->dsn) {
		if (parse_orcpt(param->value) < 0) {
			*error_r = "501 5.5.4 Bad ORCPT value";
			return -1;
		}
		rcpt->orcpt = param->value;
	} else {
		*error_r = "555 5.5.4 Unsupported RCPT parameter";
		return -1;
	}
	return 0;
}

int smtp_parse_rcpt(char *args, const struct smtp_parse_options *options, bool smtputf8,
		    struct smtp_rcpt_args *rcpt_r, const char **error_r)
{
	struct param params[MAX_PARAMS];
	unsigned count;
	char *path, *rest, *p = skip_prefix(args, "TO:");

	memset(rcpt_r, 0, sizeof(*rcpt_r));
	if (p == NULL || take_path(p, &path, &rest) < 0) {
		*error_r = "501 5.5.4 Syntax: RCPT TO:<address>";
		return -1;
	}
	if (split_params(rest, params, &count, smtputf8, error_r) < 0)
		return -1;
	for (unsigned i = 0; i < count; i++)
		if (rcpt_param(&params[i], options, rcpt_r, error_r) < 0)
			return -1;
	rcpt_r->address = path;
	/* RFC 5321 4.5.1: <Postmaster> without a domain must be accepted. */
	if (strcasecmp(path, "postmaster") == 0)
		return 0;
	bool non_ascii;

	if (!smtp_mailbox_valid(path, smtputf8, &non_ascii)) {
		*error_r = non_ascii && !smtputf8 ? "553 5.6.7 Non-ASCII address needs SMTPUTF8" :
						    "553 5.1.3 Bad recipient address syntax";
		return -1;
	}
	return 0;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int smtp_xtext_decode(char *text)
{
	char *out = text;

	for (const char *in = text; *in != '\0'; in++) {
		unsigned char c = (unsigned char)*in;

		if (c == '+') {
			int hi = hex_value(in[1]), lo = hi < 0 ? -1 : hex_value(in[2]);

			if (lo < 0)
				return -1;
			c = (unsigned char)(hi << 4 | lo);
			in += 2;
			/* Decoded bytes go into queue records: no controls. */
			if (c < 32 || c == 127)
				return -1;
		} else if (c == '=' || c < 33 || c == 127) {
			return -1;
		}
		*out++ = (char)c;
	}
	*out = '\0';
	return (int)(out - text);
}

int smtp_xtext_encode(const char *in, size_t len, char *out, size_t out_size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c >= 33 && c <= 126 && c != '+' && c != '=') {
			if (o + 1 >= out_size)
				return -1;
			out[o++] = (char)c;
		} else {
			if (o + 3 >= out_size)
				return -1;
			out[o++] = '+';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (o >= out_size)
		return -1;
	out[o] = '\0';
	return (int)o;
}
