/*
 * Header fields we write ourselves: the Received trace field at the top of
 * every message (RFC 5321 4.4, protocol names of RFC 3848 and RFC 6531),
 * and the Date and Message-ID fields submission adds when a client left
 * them out (RFC 6409 8.2, 8.3).
 *
 * Everything put in them was checked before: the HELO name is a domain or
 * address literal, addresses passed the path syntax, so no client byte can
 * break the header's structure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include "smtp_private.h"

void smtp_format_date(time_t t, char *buf, size_t size)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	localtime_r(&t, &tm);
	long offset = tm.tm_gmtoff / 60;
	char sign = offset < 0 ? '-' : '+';

	if (offset < 0)
		offset = -offset;
	snprintf(buf, size, "%s, %d %s %d %02d:%02d:%02d %c%02ld%02ld", days[tm.tm_wday],
		 tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
		 tm.tm_sec, sign, offset / 60, offset % 60);
}

/* RFC 3848 / RFC 6531 names for the "with" clause. */
static const char *protocol_name(const struct smtp_session *session)
{
	bool tls = postern_conn_is_tls(session->conn);
	bool auth = session->auth_user != NULL;

	if (!session->esmtp)
		return "SMTP";
	if (session->txn.mail.smtputf8)
		return tls && auth ? "UTF8SMTPSA" : tls ? "UTF8SMTPS" : auth ? "UTF8SMTPA" : "UTF8SMTP";
	return tls && auth ? "ESMTPSA" : tls ? "ESMTPS" : auth ? "ESMTPA" : "ESMTP";
}

char *smtp_received_header(struct smtp_session *session)
{
	struct postern_str *str = postern_str_new();
	const char *ip = postern_conn_peer_ip(session->conn);
	const char *tls = postern_conn_tls_description(session->conn);
	char date[64];

	smtp_format_date(postern_time(), date, sizeof(date));
	postern_str_printf(str, "Received: from %s ([%s%s])\r\n",
			   session->helo != NULL ? session->helo : "unknown",
			   strchr(ip, ':') != NULL ? "IPv6:" : "", ip);
	postern_str_printf(str, "\tby %s (Postern) with %s id c%llu\r\n",
			   session->smtp->set.hostname, protocol_name(session),
			   (unsigned long long)postern_conn_id(session->conn));
	if (tls != NULL)
		postern_str_printf(str, "\t(%s)\r\n", tls);
	if (session->txn.rcpt_count == 1)
		postern_str_printf(str, "\tfor <%s>;", session->txn.rcpts[0].address);
	else
		postern_str_append_cstr(str, "\t;");
	postern_str_printf(str, " %s\r\n", date);

	char *result = smtp_strdup(postern_str_data(str));

	postern_str_free(&str);
	return result;
}

char *smtp_date_header(void)
{
	char date[64];

	smtp_format_date(postern_time(), date, sizeof(date));
	return smtp_asprintf("Date: %s", date);
}

char *smtp_message_id_header(struct smtp_session *session)
{
	uint64_t random = 0;

	if (getrandom(&random, sizeof(random), GRND_NONBLOCK) != sizeof(random))
		random = postern_now_ms() ^ ((uint64_t)session->id << 32);
	return smtp_asprintf("Message-ID: <%llx.%llx.%llu@%s>",
			     (unsigned long long)postern_time(), (unsigned long long)random,
			     (unsigned long long)session->id, session->smtp->set.hostname);
}
