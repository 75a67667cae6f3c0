/*
 * The SMTP server's parsers for what a client sends on the command channel:
 * the command line itself, reverse- and forward-paths (RFC 5321 4.1.2, with
 * RFC 6531 UTF-8 when SMTPUTF8 is in force), ESMTP parameters of MAIL and
 * RCPT (SIZE, BODY, SMTPUTF8, RET, ENVID, AUTH, NOTIFY, ORCPT) and xtext
 * (RFC 3461).
 *
 * Pure code: no sockets, no core calls, no allocation. Parsing happens in
 * place in a mutable copy of the line, so the results point into it. Every
 * error comes back as a complete reply line ("501 5.5.4 ...", without CRLF)
 * for the session to send as it is; bad input is never a crash. The
 * unit tests and the fuzz target drive these functions directly.
 */
#ifndef SMTP_PARSE_H
#define SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <postern/queue.h>

/* RFC 5321 4.5.3.1: local-part 64, domain 255, path 256 octets. */
#define SMTP_MAX_LOCAL_PART 64
#define SMTP_MAX_DOMAIN 255
#define SMTP_MAX_PATH 256
/* RFC 3461: ENVID at most 100 characters, ORCPT at most 500. */
#define SMTP_MAX_ENVID 100
#define SMTP_MAX_ORCPT 500

enum smtp_verb {
	SMTP_VERB_UNKNOWN = 0,
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_BDAT,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_HELP,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
	SMTP_VERB_COUNT
};

struct smtp_command {
	enum smtp_verb verb;
	const char *name; /* the verb as we spell it ("MAIL"), or "" when unknown */
	char *args;       /* after the verb and its separating space; "" if none */
};

/*
 * Split a command line (without its line end, NUL-terminated, `len` bytes)
 * into verb and arguments. Refuses NUL and control characters other than
 * TAB anywhere in the line, so nothing after this point sees them.
 * An unknown verb is not an error here: verb is SMTP_VERB_UNKNOWN.
 */
int smtp_command_parse(char *line, size_t len, struct smtp_command *cmd_r,
		       const char **error_r);

enum smtp_body {
	SMTP_BODY_UNSET = 0,
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME,
};

/* Which extensions the session offers: parameters of the others are
 * unknown parameters (555). */
struct smtp_parse_options {
	bool size, eightbitmime, smtputf8, dsn, auth;
};

struct smtp_mail_args {
	char *address;          /* reverse-path without <>; "" for the null sender */
	bool size_given;
	uint64_t size;
	enum smtp_body body;
	bool smtputf8;
	enum postern_dsn_ret ret;
	char *envid;            /* xtext-decoded, or NULL */
	char *auth;             /* AUTH= mailbox, xtext-decoded ("<>" allowed), or NULL */
};

struct smtp_rcpt_args {
	char *address;          /* forward-path without <> */
	unsigned notify;        /* enum postern_dsn_notify bits, or 0 */
	char *orcpt;            /* "rfc822;addr", decoded, or NULL */
};

/* "FROM:<path> params" (the arguments of MAIL). */
int smtp_parse_mail(char *args, const struct smtp_parse_options *options,
		    struct smtp_mail_args *mail_r, const char **error_r);
/* "TO:<path> params". `smtputf8` is whether MAIL had SMTPUTF8: without
 * it, a non-ASCII address is refused with 553 5.6.7. */
int smtp_parse_rcpt(char *args, const struct smtp_parse_options *options, bool smtputf8,
		    struct smtp_rcpt_args *rcpt_r, const char **error_r);

/*
 * Check a mailbox ("local@domain", no brackets) against RFC 5321 syntax:
 * dot-string or quoted-string local part, domain name or address literal.
 * `utf8` allows RFC 6531 UTF-8 in both parts. Returns true when valid;
 * *non_ascii_r (may be NULL) tells whether it holds non-ASCII bytes.
 */
bool smtp_mailbox_valid(const char *mailbox, bool utf8, bool *non_ascii_r);
/* A domain (or address literal) as in HELO/EHLO and mailboxes. */
bool smtp_domain_valid(const char *domain, size_t len, bool utf8);
/* Well-formed UTF-8 without overlongs or surrogates. */
bool smtp_utf8_valid(const char *text, size_t len);

/*
 * Decode xtext (RFC 3461 4) in place: "+XX" with two upper-case hex digits
 * stands for one byte; other bytes must be 33..126 but not '+' or '='.
 * A decoded CR, LF, NUL or other control byte is refused. Returns the
 * decoded length, or -1.
 */
int smtp_xtext_decode(char *text);
/* Encode `len` bytes as xtext into `out` (size `out_size`, NUL added).
 * Returns the encoded length, or -1 when it does not fit. */
int smtp_xtext_encode(const char *in, size_t len, char *out, size_t out_size);

/* "BDAT 1234 LAST": the chunk size and whether it is the last one. */
int smtp_parse_bdat(const char *args, uint64_t *size_r, bool *last_r, const char **error_r);


#endif
