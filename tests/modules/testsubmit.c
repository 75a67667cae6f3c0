/*
 * testsubmit: a tiny line protocol that hands messages to the "queue"
 * service (include/postern/queue.h) exactly as a receiving module does, so
 * the queue can be tested (crash tests included) without the smtp module.
 * Not installed.
 *
 *   greeting            "+OK testsubmit ready"
 *   MAIL addr [RET=FULL|HDRS] [ENVID=x] [BODY=8BITMIME] [SMTPUTF8]
 *                       (addr "<>" or empty for the null sender)
 *   RCPT addr [NOTIFY=NEVER|SUCCESS,FAILURE,DELAY] [ORCPT=rfc822;x]
 *                       -> "+OK local" / "+OK remote" / "-ERR unknown user" / "-ERR tempfail"
 *   DATA n              -> "+OK send n bytes"; then exactly n raw bytes
 *                          (CRLF lines, as queued), written to the queue as
 *                          they arrive; then commit:
 *                       -> "+OK queued ID" (from commit's done, status 0)
 *                          or "-ERR error"
 *   CHECK addr          -> what check_recipient says, without adding it
 *   RSET, QUIT
 *
 * A client that vanishes during DATA makes the module abort() the message;
 * one that vanishes during the commit makes it detach().
 *
 * It also subscribes to "queue.*" and counts the events it sees:
 * `posternctl testsubmit events` prints "TOPIC COUNT" lines and the last
 * event's fields.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <postern/postern.h>
#include <postern/queue.h>

#define TS_MAX_RCPTS 1000
#define TS_MAX_ADDR 1024

struct testsubmit_settings {
	char **listen;
};

static const struct postern_setting_def testsubmit_setting_defs[] = {
	{ "listen", POSTERN_SET_STRLIST, offsetof(struct testsubmit_settings, listen), "()",
	  "listeners", 0, 0 },
	POSTERN_SETTING_END,
};

#define TS_TOPICS 5

struct testsubmit {
	struct postern_mod *mod;
	struct testsubmit_settings settings;
	const struct postern_queue_ops *queue;
	struct postern_subscription *events;
	uint64_t counts[TS_TOPICS];
	char last[2048];
};

static const char *const ts_topics[TS_TOPICS] = {
	POSTERN_TOPIC_QUEUE_ACCEPTED, POSTERN_TOPIC_QUEUE_DELIVERED, POSTERN_TOPIC_QUEUE_DEFERRED,
	POSTERN_TOPIC_QUEUE_BOUNCED, POSTERN_TOPIC_QUEUE_EXPIRED,
};

static void ts_on_event(const struct postern_event *event, void *ctx)
{
	struct testsubmit *ts = ctx;
	const struct postern_ev_queue *ev = event->payload;

	if (strcmp(event->payload_type, POSTERN_EV_QUEUE_TYPE) != 0)
		return;
	for (unsigned i = 0; i < TS_TOPICS; i++) {
		if (strcmp(event->topic, ts_topics[i]) == 0)
			ts->counts[i]++;
	}
	snprintf(ts->last, sizeof(ts->last),
		 "last %s id=%s sender=<%s> recipient=<%s> local=%d mailbox=%s code=%u status=%s\n",
		 event->topic, ev->queue_id, ev->sender, ev->recipient != NULL ? ev->recipient : "",
		 ev->local ? 1 : 0, ev->mailbox != NULL ? ev->mailbox : "-", ev->smtp_code,
		 ev->status != NULL ? ev->status : "-");
}

static int ts_command_events(struct postern_control_req *req, int argc,
			     const char *const *argv, void *ctx)
{
	struct testsubmit *ts = ctx;
	struct postern_str *out = postern_control_output(req);

	if (argc != 2 || strcmp(argv[1], "events") != 0)
		return postern_control_fail(req, "usage: testsubmit events");
	for (unsigned i = 0; i < TS_TOPICS; i++)
		postern_str_printf(out, "%s %llu\n", ts_topics[i], (unsigned long long)ts->counts[i]);
	postern_str_append_cstr(out, ts->last);
	return 0;
}

enum ts_state { TS_COMMAND, TS_DATA, TS_COMMITTING };

struct ts_session {
	struct testsubmit *ts;
	struct postern_conn *conn;
	enum ts_state state;
	bool have_mail;
	char *sender, *envid;
	enum postern_dsn_ret ret;
	bool body_8bit, smtputf8;
	struct postern_queue_rcpt rcpts[TS_MAX_RCPTS];
	unsigned rcpt_count;
	struct postern_queue_msg *msg;
	uint64_t remaining;
	const char *write_error;
};

static void ts_reset(struct ts_session *s)
{
	free(s->sender);
	free(s->envid);
	for (unsigned i = 0; i < s->rcpt_count; i++) {
		free((char *)s->rcpts[i].address);
		free((char *)s->rcpts[i].orcpt);
	}
	s->sender = s->envid = NULL;
	s->rcpt_count = 0;
	s->have_mail = false;
	s->ret = POSTERN_RET_DEFAULT;
	s->body_8bit = s->smtputf8 = false;
}

static char *ts_strdup(const char *str)
{
	char *copy = strdup(str);

	if (copy == NULL)
		abort();
	return copy;
}

static void ts_mail(struct ts_session *s, char *args)
{
	char *save = NULL;
	char *addr = strtok_r(args, " ", &save);

	if (addr == NULL || strcmp(addr, "<>") == 0)
		addr = "";
	ts_reset(s);
	s->sender = ts_strdup(addr);
	for (char *param; (param = strtok_r(NULL, " ", &save)) != NULL;) {
		if (strcasecmp(param, "RET=FULL") == 0)
			s->ret = POSTERN_RET_FULL;
		else if (strcasecmp(param, "RET=HDRS") == 0)
			s->ret = POSTERN_RET_HDRS;
		else if (strncasecmp(param, "ENVID=", 6) == 0)
			s->envid = ts_strdup(param + 6);
		else if (strcasecmp(param, "BODY=8BITMIME") == 0)
			s->body_8bit = true;
		else if (strcasecmp(param, "SMTPUTF8") == 0)
			s->smtputf8 = true;
	}
	s->have_mail = true;
	postern_conn_printf(s->conn, "+OK\r\n");
}

static unsigned ts_notify(const char *value)
{
	unsigned notify = 0;
	char *copy = ts_strdup(value), *save = NULL;

	for (char *word = strtok_r(copy, ",", &save); word != NULL;
	     word = strtok_r(NULL, ",", &save)) {
		if (strcasecmp(word, "NEVER") == 0)
			notify |= POSTERN_NOTIFY_NEVER;
		else if (strcasecmp(word, "SUCCESS") == 0)
			notify |= POSTERN_NOTIFY_SUCCESS;
		else if (strcasecmp(word, "FAILURE") == 0)
			notify |= POSTERN_NOTIFY_FAILURE;
		else if (strcasecmp(word, "DELAY") == 0)
			notify |= POSTERN_NOTIFY_DELAY;
	}
	free(copy);
	return notify;
}

static const char *ts_check_word(enum postern_rcpt_status status)
{
	switch (status) {
	case POSTERN_RCPT_LOCAL:
		return "+OK local";
	case POSTERN_RCPT_REMOTE:
		return "+OK remote";
	case POSTERN_RCPT_UNKNOWN:
		return "-ERR unknown user";
	case POSTERN_RCPT_TEMPFAIL:
		break;
	}
	return "-ERR tempfail";
}

static void ts_rcpt(struct ts_session *s, char *args)
{
	char *save = NULL;
	char *addr = strtok_r(args, " ", &save);
	enum postern_rcpt_status status;

	if (!s->have_mail || addr == NULL || strlen(addr) > TS_MAX_ADDR) {
		postern_conn_printf(s->conn, "-ERR bad sequence or address\r\n");
		return;
	}
	if (s->rcpt_count == TS_MAX_RCPTS) {
		postern_conn_printf(s->conn, "-ERR too many recipients\r\n");
		return;
	}
	status = s->ts->queue->check_recipient(s->ts->queue->ctx, addr);
	if (status == POSTERN_RCPT_LOCAL || status == POSTERN_RCPT_REMOTE) {
		struct postern_queue_rcpt *rcpt = &s->rcpts[s->rcpt_count++];

		rcpt->address = ts_strdup(addr);
		rcpt->notify = 0;
		rcpt->orcpt = NULL;
		for (char *param; (param = strtok_r(NULL, " ", &save)) != NULL;) {
			if (strncasecmp(param, "NOTIFY=", 7) == 0)
				rcpt->notify = ts_notify(param + 7);
			else if (strncasecmp(param, "ORCPT=", 6) == 0)
				rcpt->orcpt = ts_strdup(param + 6);
		}
	}
	postern_conn_printf(s->conn, "%s\r\n", ts_check_word(status));
}

static void ts_input(struct ts_session *s);

static void ts_committed(void *ctx, int status, const char *queue_id, const char *error)
{
	struct ts_session *s = ctx;

	s->msg = NULL;
	s->state = TS_COMMAND;
	if (status == 0)
		postern_conn_printf(s->conn, "+OK queued %s\r\n", queue_id);
	else
		postern_conn_printf(s->conn, "-ERR %s\r\n", error);
	ts_reset(s);
	ts_input(s);
}

static void ts_data(struct ts_session *s, const char *args)
{
	struct postern_queue_envelope env = { .struct_size = sizeof(env) };
	const char *error;
	char *end;
	unsigned long long size = strtoull(args, &end, 10);

	if (!s->have_mail || s->rcpt_count == 0 || *args == '\0' || *end != '\0') {
		postern_conn_printf(s->conn, "-ERR no valid recipients or bad size\r\n");
		return;
	}
	env.sender = s->sender;
	env.rcpts = s->rcpts;
	env.rcpt_count = s->rcpt_count;
	env.ret = s->ret;
	env.envid = s->envid;
	env.body_8bitmime = s->body_8bit;
	env.smtputf8 = s->smtputf8;
	env.client_address = postern_conn_peer_ip(s->conn);
	env.client_name = "testsubmit.client";
	env.received_by = "testsubmit";
	s->msg = s->ts->queue->begin(s->ts->queue->ctx, &env, &error);
	if (s->msg == NULL) {
		postern_conn_printf(s->conn, "-ERR %s\r\n", error);
		return;
	}
	s->remaining = size;
	s->write_error = NULL;
	s->state = TS_DATA;
	postern_conn_printf(s->conn, "+OK send %llu bytes\r\n", size);
}

static void ts_command(struct ts_session *s, char *line)
{
	char *args = strchr(line, ' ');

	if (args != NULL)
		*args++ = '\0';
	else
		args = line + strlen(line);
	if (strcasecmp(line, "MAIL") == 0) {
		ts_mail(s, args);
	} else if (strcasecmp(line, "RCPT") == 0) {
		ts_rcpt(s, args);
	} else if (strcasecmp(line, "DATA") == 0) {
		ts_data(s, args);
	} else if (strcasecmp(line, "CHECK") == 0) {
		postern_conn_printf(s->conn, "%s\r\n",
				    ts_check_word(s->ts->queue->check_recipient(s->ts->queue->ctx,
										args)));
	} else if (strcasecmp(line, "RSET") == 0) {
		ts_reset(s);
		postern_conn_printf(s->conn, "+OK\r\n");
	} else if (strcasecmp(line, "QUIT") == 0) {
		postern_conn_printf(s->conn, "+OK bye\r\n");
		postern_conn_close_after_flush(s->conn, "quit");
	} else {
		postern_conn_printf(s->conn, "-ERR unknown command\r\n");
	}
}

/* Raw message bytes, as many as are buffered and still expected. */
static void ts_data_input(struct ts_session *s)
{
	size_t len;
	const void *data = postern_conn_input(s->conn, &len);
	const char *error;

	if (len > s->remaining)
		len = (size_t)s->remaining;
	if (len > 0 && s->write_error == NULL &&
	    s->ts->queue->write(s->msg, data, len, &error) < 0)
		s->write_error = error;
	postern_conn_consume(s->conn, len);
	s->remaining -= len;
	if (s->remaining > 0)
		return;
	if (s->write_error != NULL) {
		postern_conn_printf(s->conn, "-ERR %s\r\n", s->write_error);
		s->ts->queue->abort(s->msg);
		s->msg = NULL;
		s->state = TS_COMMAND;
		ts_reset(s);
		return;
	}
	s->state = TS_COMMITTING;
	s->ts->queue->commit(s->msg, ts_committed, s);
}

static void ts_input(struct ts_session *s)
{
	struct postern_line line;
	enum postern_read_status status;

	while (!postern_conn_is_closing(s->conn)) {
		if (s->state == TS_COMMITTING)
			return;
		if (s->state == TS_DATA) {
			ts_data_input(s);
			if (s->state == TS_DATA)
				return;
			continue;
		}
		status = postern_conn_read_line(s->conn, &line);
		if (status == POSTERN_READ_NONE)
			return;
		if (status == POSTERN_READ_TOO_LONG) {
			postern_conn_printf(s->conn, "-ERR line too long\r\n");
			continue;
		}
		if (line.flags & (POSTERN_LINE_HAS_NUL | POSTERN_LINE_HAS_CR)) {
			postern_conn_printf(s->conn, "-ERR bad line\r\n");
			continue;
		}
		ts_command(s, (char *)line.data);
	}
}

static void ts_event(struct postern_conn *conn, enum postern_conn_event event, void *ctx)
{
	struct testsubmit *ts = ctx;
	struct ts_session *s;

	if (event == POSTERN_CONN_OPEN) {
		s = calloc(1, sizeof(*s));
		if (s == NULL) {
			postern_conn_close(conn, "out of memory");
			return;
		}
		s->ts = ts;
		s->conn = conn;
		postern_conn_set_handler(conn, ts_event, s);
		postern_conn_printf(conn, "+OK testsubmit ready\r\n");
		return;
	}
	s = ctx;
	switch (event) {
	case POSTERN_CONN_INPUT:
		ts_input(s);
		break;
	case POSTERN_CONN_CLOSED:
		if (s->state == TS_DATA)
			s->ts->queue->abort(s->msg);
		else if (s->state == TS_COMMITTING)
			s->ts->queue->detach(s->msg);
		ts_reset(s);
		free(s);
		break;
	default:
		break;
	}
}

static int testsubmit_check_config(struct postern_mod *mod, const struct postern_cfg *cfg,
				   const char **error_r)
{
	struct testsubmit_settings settings;

	if (postern_cfg_parse(mod, cfg, testsubmit_setting_defs, &settings, error_r) < 0)
		return -1;
	postern_cfg_free(testsubmit_setting_defs, &settings);
	return 0;
}

static int testsubmit_init(struct postern_mod *mod, const struct postern_cfg *cfg,
			   const char **error_r)
{
	struct testsubmit *ts = calloc(1, sizeof(*ts));

	if (ts == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	ts->mod = mod;
	if (postern_cfg_parse(mod, cfg, testsubmit_setting_defs, &ts->settings, error_r) < 0) {
		free(ts);
		return -1;
	}
	ts->queue = postern_service_lookup(mod, POSTERN_QUEUE_SERVICE, POSTERN_QUEUE_VERSION,
					   error_r);
	if (ts->queue == NULL)
		goto fail;
	for (char **address = ts->settings.listen; *address != NULL; address++) {
		struct postern_listen_settings listen = POSTERN_LISTEN_SETTINGS_INIT;

		listen.address = *address;
		listen.max_line = 4096;
		listen.idle_timeout_ms = 120000;
		if (postern_listen(mod, &listen, ts_event, ts, error_r) == NULL)
			goto fail;
	}
	ts->events = postern_bus_subscribe(mod, "queue.*", NULL, POSTERN_BUS_PRIO_DEFAULT,
					   ts_on_event, ts, error_r);
	if (ts->events == NULL ||
	    postern_control_register(mod, "testsubmit", "testsubmit events", ts_command_events, ts,
				     error_r) < 0)
		goto fail;
	postern_mod_set_data(mod, ts);
	return 0;
fail:
	postern_cfg_free(testsubmit_setting_defs, &ts->settings);
	free(ts);
	return -1;
}

static void testsubmit_deinit(struct postern_mod *mod)
{
	struct testsubmit *ts = postern_mod_data(mod);

	if (ts == NULL)
		return;
	postern_bus_unsubscribe(&ts->events);
	postern_cfg_free(testsubmit_setting_defs, &ts->settings);
	free(ts);
	postern_mod_set_data(mod, NULL);
}

static const char *const testsubmit_requires[] = { "queue-store", NULL };

POSTERN_MODULE_DEFINE(
	.name = "testsubmit",
	.version = "1.0",
	.requires = testsubmit_requires,
	.check_config = testsubmit_check_config,
	.init = testsubmit_init,
	.deinit = testsubmit_deinit,
);
