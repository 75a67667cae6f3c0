/*
 * `posternctl queue ...`: the admin's view of and hand on the queue.
 *
 *   queue list [--json]          every message in every state
 *   queue show ID [--json]       envelope, recipients, headers
 *   queue flush [ID]             try deferred messages now
 *   queue hold ID                stop delivering (and expiring) it
 *   queue release ID             deliver it again
 *   queue delete ID [--bounce]   remove it; --bounce notifies the sender
 *   queue stats [--json]         counters
 *
 * The list is built from the index, which mirrors queue/ (table.c), plus
 * the messages being received and every file of queue/ that is not a
 * loadable message: there is no message the list does not show.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <postern/postern.h>

#include "queue_store.h"

#define SHOW_MAX_HEADERS (64u * 1024u)

static const char usage[] =
	"queue list [--json]             every message: receiving, queued, active, deferred, held, quarantined\n"
	"queue show ID [--json]          envelope, recipients with their state, headers\n"
	"queue flush [ID]                attempt deferred messages (or one) now\n"
	"queue hold ID                   keep a message from delivery and expiry\n"
	"queue release ID                deliver a held message again\n"
	"queue delete ID [--bounce]      remove a message; --bounce sends the sender a failure notice\n"
	"queue stats [--json]            counters since start";

/* ---- text helpers ---- */

static void put_text(struct postern_str *out, const char *text)
{
	for (const unsigned char *p = (const unsigned char *)(text != NULL ? text : "");
	     *p != '\0'; p++) {
		char c = *p < 0x20 || *p == 0x7f ? '?' : (char)*p;

		postern_str_append(out, &c, 1);
	}
}

static void put_date(struct postern_str *out, uint64_t ms)
{
	char date[40];

	q_iso_date(ms, date, sizeof(date));
	postern_str_append_cstr(out, date);
}

static void json_date(struct postern_json *json, const char *key, uint64_t ms)
{
	char date[40];

	postern_json_key(json, key);
	if (ms == 0) {
		postern_json_null(json);
		return;
	}
	q_iso_date(ms, date, sizeof(date));
	postern_json_string(json, date);
}

static void json_str(struct postern_json *json, const char *key, const char *value)
{
	postern_json_key(json, key);
	if (value == NULL)
		postern_json_null(json);
	else
		postern_json_string(json, value);
}

static void json_uint(struct postern_json *json, const char *key, uint64_t value)
{
	postern_json_key(json, key);
	postern_json_uint(json, value);
}

/* ---- recipients ---- */

static void json_owed(struct postern_json *json, unsigned owed)
{
	postern_json_key(json, "notices_owed");
	postern_json_array_begin(json);
	if (owed & QDSN_FAILURE)
		postern_json_string(json, "failure");
	if (owed & QDSN_DELAY)
		postern_json_string(json, "delay");
	if (owed & QDSN_SUCCESS)
		postern_json_string(json, "success");
	postern_json_array_end(json);
}

static void json_rcpt(struct postern_json *json, const struct qrcpt *rcpt)
{
	postern_json_object_begin(json);
	json_str(json, "address", rcpt->address);
	json_str(json, "state", qrcpt_state_name(rcpt->state));
	postern_json_key(json, "local");
	postern_json_bool(json, rcpt->local);
	postern_json_key(json, "in_delivery");
	postern_json_bool(json, rcpt->in_flight);
	json_uint(json, "attempts", rcpt->attempts);
	json_date(json, "last_attempt", rcpt->last_ms);
	json_date(json, "next_attempt",
		  rcpt->state == QR_PENDING ? (rcpt->next_ms == 0 ? 1 : rcpt->next_ms) : 0);
	postern_json_key(json, "last_result");
	if (rcpt->code == 0 && rcpt->text == NULL) {
		postern_json_null(json);
	} else {
		postern_json_object_begin(json);
		json_uint(json, "code", rcpt->code);
		json_str(json, "status", rcpt->status);
		json_str(json, "text", rcpt->text);
		json_str(json, "remote_mta", rcpt->remote_mta);
		postern_json_object_end(json);
	}
	json_str(json, "orcpt", rcpt->orcpt);
	json_uint(json, "notify", rcpt->notify);
	json_owed(json, rcpt->owed);
	json_str(json, "mailbox", rcpt->mailbox);
	postern_json_object_end(json);
}

static void text_rcpt(struct postern_str *out, const struct qrcpt *rcpt, uint64_t now)
{
	postern_str_append_cstr(out, "    <");
	put_text(out, rcpt->address);
	postern_str_printf(out, "> %s%s, %u attempt%s", qrcpt_state_name(rcpt->state),
			   rcpt->in_flight ? " (in delivery)" : "", rcpt->attempts,
			   rcpt->attempts == 1 ? "" : "s");
	if (rcpt->state == QR_PENDING && !rcpt->in_flight) {
		postern_str_append_cstr(out, ", next ");
		if (rcpt->next_ms <= now)
			postern_str_append_cstr(out, "now");
		else
			put_date(out, rcpt->next_ms);
	}
	if (rcpt->code != 0 || rcpt->text != NULL) {
		postern_str_append_cstr(out, ": ");
		if (rcpt->code != 0)
			postern_str_printf(out, "%u ", rcpt->code);
		if (rcpt->status != NULL)
			postern_str_printf(out, "%s ", rcpt->status);
		put_text(out, rcpt->text);
		if (rcpt->remote_mta != NULL) {
			postern_str_append_cstr(out, " (");
			put_text(out, rcpt->remote_mta);
			postern_str_append_cstr(out, ")");
		}
	}
	postern_str_append_cstr(out, "\n");
}

/* ---- messages ---- */

static void json_msg(struct postern_json *json, const struct qmsg *msg)
{
	postern_json_object_begin(json);
	json_str(json, "id", msg->env.id);
	json_str(json, "state", qmsg_state_name(msg));
	json_str(json, "kind", msg->env.kind == QK_DSN ? "dsn" : "normal");
	json_date(json, "arrival", msg->env.arrival_ms);
	json_uint(json, "arrival_ms", msg->env.arrival_ms);
	json_uint(json, "size", msg->info.body_size);
	json_str(json, "sender", msg->env.sender);
	postern_json_key(json, "held");
	postern_json_bool(json, msg->held);
	postern_json_key(json, "delay_notice_sent");
	postern_json_bool(json, msg->warned);
	json_date(json, "next_event", msg->heap_index >= 0 ? (msg->due_ms == 0 ? 1 : msg->due_ms) : 0);
	json_date(json, "expires", msg->held ? 0 : sched_expire_at(&msg->qs->timing,
								   msg->env.arrival_ms));
	postern_json_key(json, "recipients");
	postern_json_array_begin(json);
	for (unsigned i = 0; i < msg->env.rcpt_count; i++)
		json_rcpt(json, &msg->env.rcpts[i]);
	postern_json_array_end(json);
	postern_json_object_end(json);
}

static void text_msg(struct postern_str *out, const struct qmsg *msg, uint64_t now)
{
	postern_str_printf(out, "%s  %-9s %8llu  ", msg->env.id, qmsg_state_name(msg),
			   (unsigned long long)msg->info.body_size);
	put_date(out, msg->env.arrival_ms);
	postern_str_append_cstr(out, "  <");
	put_text(out, msg->env.sender);
	postern_str_append_cstr(out, msg->env.kind == QK_DSN ? ">  (notice)\n" : ">\n");
	for (unsigned i = 0; i < msg->env.rcpt_count; i++)
		text_rcpt(out, &msg->env.rcpts[i], now);
}

static void json_receiving(struct postern_json *json, const struct postern_queue_msg *msg)
{
	postern_json_object_begin(json);
	json_str(json, "id", msg->env.id);
	json_str(json, "state", "receiving");
	json_str(json, "kind", msg->env.kind == QK_DSN ? "dsn" : "normal");
	json_date(json, "arrival", msg->env.arrival_ms);
	json_uint(json, "arrival_ms", msg->env.arrival_ms);
	json_uint(json, "size", msg->body_size);
	json_str(json, "sender", msg->env.sender);
	json_str(json, "client", msg->env.client_address);
	postern_json_key(json, "committing");
	postern_json_bool(json, msg->committing);
	postern_json_key(json, "recipients");
	postern_json_array_begin(json);
	for (unsigned i = 0; i < msg->env.rcpt_count; i++) {
		postern_json_object_begin(json);
		json_str(json, "address", msg->env.rcpts[i].address);
		json_str(json, "state", "receiving");
		postern_json_object_end(json);
	}
	postern_json_array_end(json);
	postern_json_object_end(json);
}

static void text_receiving(struct postern_str *out, const struct postern_queue_msg *msg)
{
	postern_str_printf(out, "%s  %-9s %8llu  ", msg->env.id, "receiving",
			   (unsigned long long)msg->body_size);
	put_date(out, msg->env.arrival_ms);
	postern_str_append_cstr(out, "  <");
	put_text(out, msg->env.sender);
	postern_str_printf(out, ">%s\n", msg->committing ? "  (being made durable)" : "");
	for (unsigned i = 0; i < msg->env.rcpt_count; i++) {
		postern_str_append_cstr(out, "    <");
		put_text(out, msg->env.rcpts[i].address);
		postern_str_append_cstr(out, ">\n");
	}
}

static void json_bad(struct postern_json *json, const struct qbad *bad)
{
	char file[300];

	snprintf(file, sizeof(file), "queue/%s", bad->name);
	postern_json_object_begin(json);
	json_str(json, "id", bad->id);
	json_str(json, "state", "quarantined");
	json_str(json, "file", file);
	json_str(json, "reason", bad->reason);
	json_uint(json, "size", bad->size);
	json_date(json, "modified", bad->mtime_ms);
	postern_json_key(json, "recipients");
	postern_json_array_begin(json);
	postern_json_array_end(json);
	postern_json_object_end(json);
}

static void text_bad(struct postern_str *out, const struct qbad *bad)
{
	put_text(out, bad->id);
	postern_str_printf(out, "  %-9s %8llu  queue/", "quarantined",
			   (unsigned long long)bad->size);
	put_text(out, bad->name);
	postern_str_append_cstr(out, "\n    ");
	put_text(out, bad->reason);
	postern_str_append_cstr(out, "\n");
}

/* ---- list ---- */

static int cmd_list(struct qs *qs, struct postern_control_req *req)
{
	struct postern_str *out = postern_control_output(req);
	unsigned count, receiving = 0, bad = 0;
	struct qmsg **all = qtable_sorted(&qs->table, &count);
	uint64_t now = q_wall_ms();

	if (postern_control_json(req)) {
		struct postern_json *json = postern_json_new(out);

		postern_json_object_begin(json);
		postern_json_key(json, "messages");
		postern_json_array_begin(json);
		for (struct qlist *i = qs->receiving.next; i != &qs->receiving; i = i->next)
			json_receiving(json, QLIST_ENTRY(i, struct postern_queue_msg, link));
		for (unsigned i = 0; i < count; i++)
			json_msg(json, all[i]);
		for (struct qlist *i = qs->quarantine.next; i != &qs->quarantine; i = i->next)
			json_bad(json, QLIST_ENTRY(i, struct qbad, link));
		postern_json_array_end(json);
		postern_json_object_end(json);
		postern_json_free(&json);
		free(all);
		return 0;
	}
	for (struct qlist *i = qs->receiving.next; i != &qs->receiving; i = i->next, receiving++)
		text_receiving(out, QLIST_ENTRY(i, struct postern_queue_msg, link));
	for (unsigned i = 0; i < count; i++)
		text_msg(out, all[i], now);
	for (struct qlist *i = qs->quarantine.next; i != &qs->quarantine; i = i->next, bad++)
		text_bad(out, QLIST_ENTRY(i, struct qbad, link));
	postern_str_printf(out, "%u message%s in the queue, %u being received, %u quarantined\n",
			   count, count == 1 ? "" : "s", receiving, bad);
	free(all);
	return 0;
}

/* ---- show ---- */

static char *read_headers(struct qs *qs, const struct qmsg *msg, size_t *len_r)
{
	size_t want = msg->info.body_size < SHOW_MAX_HEADERS ? (size_t)msg->info.body_size
							      : SHOW_MAX_HEADERS;
	int fd = spool_open_msg(qs, msg->env.id);
	char *data;
	ssize_t n;

	if (fd < 0)
		return NULL;
	data = q_malloc(want + 1);
	n = pread(fd, data, want, (off_t)msg->info.header_len);
	close(fd);
	if (n < 0) {
		free(data);
		return NULL;
	}
	*len_r = dsn_header_section_len(data, (size_t)n);
	data[*len_r] = '\0';
	return data;
}

static struct qbad *find_bad(struct qs *qs, const char *id)
{
	for (struct qlist *i = qs->quarantine.next; i != &qs->quarantine; i = i->next) {
		struct qbad *bad = QLIST_ENTRY(i, struct qbad, link);

		if (strcasecmp(bad->id, id) == 0)
			return bad;
	}
	return NULL;
}

static struct postern_queue_msg *find_receiving(struct qs *qs, const char *id)
{
	for (struct qlist *i = qs->receiving.next; i != &qs->receiving; i = i->next) {
		struct postern_queue_msg *msg = QLIST_ENTRY(i, struct postern_queue_msg, link);

		if (strcmp(msg->env.id, id) == 0)
			return msg;
	}
	return NULL;
}

static void show_envelope_text(struct postern_str *out, const struct qmsg *msg)
{
	const struct qenvelope *env = &msg->env;
	static const char *const rets[] = { "default (headers)", "FULL", "HDRS" };

	postern_str_printf(out, "id: %s\nstate: %s\nkind: %s\narrival: ", env->id,
			   qmsg_state_name(msg), env->kind == QK_DSN ? "notice" : "message");
	put_date(out, env->arrival_ms);
	postern_str_append_cstr(out, "\nsender: <");
	put_text(out, env->sender);
	postern_str_printf(out, ">\nsize: %llu\nret: %s\nenvid: ",
			   (unsigned long long)msg->info.body_size, rets[env->ret]);
	put_text(out, env->envid != NULL ? env->envid : "-");
	postern_str_printf(out, "\nbody: %s%s\nclient: ", env->body_8bitmime ? "8bitmime" : "7bit",
			   env->smtputf8 ? ", smtputf8" : "");
	put_text(out, env->client_address != NULL ? env->client_address : "-");
	postern_str_append_cstr(out, " (");
	put_text(out, env->client_name != NULL ? env->client_name : "-");
	postern_str_append_cstr(out, ")\nauthenticated: ");
	put_text(out, env->auth_user != NULL ? env->auth_user : "-");
	postern_str_append_cstr(out, "\nreceived by: ");
	put_text(out, env->received_by != NULL ? env->received_by : "-");
	postern_str_printf(out, "\nheld: %s\ndelay notice sent: %s\nexpires: ",
			   msg->held ? "yes" : "no", msg->warned ? "yes" : "no");
	if (msg->held)
		postern_str_append_cstr(out, "never while held");
	else
		put_date(out, sched_expire_at(&msg->qs->timing, env->arrival_ms));
	postern_str_append_cstr(out, "\nrecipients:\n");
}

static int cmd_show(struct qs *qs, struct postern_control_req *req, const char *id)
{
	struct postern_str *out = postern_control_output(req);
	struct qmsg *msg = qtable_find(&qs->table, id);
	bool json_mode = postern_control_json(req);
	size_t headers_len = 0;
	char *headers;

	if (msg == NULL) {
		struct qbad *bad = find_bad(qs, id);
		struct postern_queue_msg *receiving = find_receiving(qs, id);
		struct postern_json *json = json_mode ? postern_json_new(out) : NULL;

		if (bad == NULL && receiving == NULL)
			return postern_control_fail(req, "no message %s in the queue", id);
		if (json != NULL && bad != NULL)
			json_bad(json, bad);
		else if (json != NULL)
			json_receiving(json, receiving);
		else if (bad != NULL)
			text_bad(out, bad);
		else
			text_receiving(out, receiving);
		postern_json_free(&json);
		return 0;
	}
	headers = read_headers(qs, msg, &headers_len);
	if (json_mode) {
		struct postern_json *json = postern_json_new(out);

		postern_json_object_begin(json);
		postern_json_key(json, "message");
		json_msg(json, msg);
		json_str(json, "envid", msg->env.envid);
		json_str(json, "ret", msg->env.ret == POSTERN_RET_FULL ? "full"
				      : msg->env.ret == POSTERN_RET_HDRS ? "hdrs" : "default");
		json_str(json, "client", msg->env.client_address);
		json_str(json, "helo", msg->env.client_name);
		json_str(json, "auth_user", msg->env.auth_user);
		json_str(json, "received_by", msg->env.received_by);
		postern_json_key(json, "headers");
		if (headers == NULL)
			postern_json_null(json);
		else
			postern_json_string_n(json, headers, headers_len);
		postern_json_object_end(json);
		postern_json_free(&json);
	} else {
		uint64_t now = q_wall_ms();

		show_envelope_text(out, msg);
		for (unsigned i = 0; i < msg->env.rcpt_count; i++)
			text_rcpt(out, &msg->env.rcpts[i], now);
		postern_str_append_cstr(out, "headers:\n");
		if (headers != NULL)
			postern_str_append(out, headers, headers_len);
		else
			postern_str_append_cstr(out, "(cannot read the message file)\n");
	}
	free(headers);
	return 0;
}

/* ---- actions ---- */

static int cmd_hold(struct qs *qs, struct postern_control_req *req, struct qmsg *msg,
		    bool hold)
{
	struct postern_str *out = postern_control_output(req);

	if (msg->held == hold) {
		postern_str_printf(out, "%s is %s\n", msg->env.id, hold ? "already held" : "not held");
		return 0;
	}
	msg->held = hold;
	if (hold) {
		sched_forget(msg);
	} else {
		/* Past its lifetime it still gets one more attempt. */
		msg->released_ms = q_wall_ms();
		for (unsigned i = 0; i < msg->env.rcpt_count; i++) {
			if (msg->env.rcpts[i].state == QR_PENDING)
				msg->env.rcpts[i].next_ms = 0;
		}
	}
	sched_save_state(msg);
	sched_settle(msg);
	postern_log(qs->mod, POSTERN_LOG_NOTICE, "%s: %s by the administrator", msg->env.id,
		    hold ? "held" : "released");
	postern_str_printf(out, "%s %s%s\n", msg->env.id, hold ? "held" : "released",
			   hold && msg->busy ? " (the attempt under way finishes first)" : "");
	return 0;
}

static int cmd_delete(struct qs *qs, struct postern_control_req *req, const char *id,
		      bool bounce)
{
	struct postern_str *out = postern_control_output(req);
	struct qmsg *msg = qtable_find(&qs->table, id);
	const char *error;

	if (msg == NULL) {
		struct qbad *bad = find_bad(qs, id);

		if (bad != NULL) {
			if (spool_delete_bad(qs, bad, &error) < 0)
				return postern_control_fail(req, "%s", error);
			postern_log(qs->mod, POSTERN_LOG_NOTICE,
				    "%s: quarantined file deleted by the administrator", id);
			postern_str_printf(out, "%s deleted\n", id);
			return 0;
		}
		if (find_receiving(qs, id) != NULL)
			return postern_control_fail(req, "%s is still being received", id);
		return postern_control_fail(req, "no message %s in the queue", id);
	}
	msg->delete_requested = true;
	msg->delete_bounce = bounce;
	bool busy = msg->busy;

	if (msg->attempt != NULL)
		attempt_cancel_remote(msg->attempt);
	postern_str_printf(out, "%s %s%s\n", id, bounce ? "deleted, sender notified" : "deleted",
			   busy && qtable_find(&qs->table, id) != NULL
				   ? " (when the local delivery under way ends)" : "");
	/* Settling acts on the request now, or when the attempt ends. */
	if ((msg = qtable_find(&qs->table, id)) != NULL) {
		if (!msg->busy)
			sched_forget(msg);
		sched_settle(msg);
	}
	return 0;
}

static int cmd_stats(struct qs *qs, struct postern_control_req *req)
{
	struct postern_str *out = postern_control_output(req);
	struct qsync_stats sync;
	uint64_t maildir_fsyncs = 0, maildir_deliveries = 0;

	qsyncer_stats(qs, &sync);
	if (qs->dirsync != NULL)
		mailstore_dirsync_stats(qs->dirsync, &maildir_fsyncs, &maildir_deliveries);
	const struct {
		const char *name;
		uint64_t value;
	} rows[] = {
		{ "messages", qs->table.count },
		{ "active", qs->active },
		{ "accepted", qs->n_accepted },
		{ "delivered", qs->n_delivered },
		{ "deferred", qs->n_deferred },
		{ "bounced", qs->n_bounced },
		{ "expired", qs->n_expired },
		{ "notices", qs->n_dsn },
		{ "sync_batches", sync.batches },
		{ "sync_ops", sync.ops },
		{ "sync_busy_ms", sync.busy_ms },
		{ "sync_max_batch", sync.max_batch },
		{ "spares", qs->spares.count },
		{ "spares_reused", qs->spares.reused },
		{ "maildir_dir_fsyncs", maildir_fsyncs },
		{ "maildir_deliveries", maildir_deliveries },
	};

	if (postern_control_json(req)) {
		struct postern_json *json = postern_json_new(out);

		postern_json_object_begin(json);
		for (unsigned i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
			json_uint(json, rows[i].name, rows[i].value);
		postern_json_object_end(json);
		postern_json_free(&json);
	} else {
		for (unsigned i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
			postern_str_printf(out, "%-13s %llu\n", rows[i].name,
					   (unsigned long long)rows[i].value);
	}
	return 0;
}

static void upper_id(const char *arg, char *id, size_t size)
{
	snprintf(id, size, "%s", arg);
	for (char *p = id; *p != '\0'; p++) {
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	}
}

static int queue_command(struct postern_control_req *req, int argc, const char *const *argv,
			 void *ctx)
{
	struct qs *qs = ctx;
	const char *sub = argc >= 2 ? argv[1] : "";
	char id[256] = "";
	bool bounce = false;

	if (argc >= 3)
		upper_id(argv[2], id, sizeof(id));
	if (strcmp(sub, "list") == 0 && argc == 2)
		return cmd_list(qs, req);
	if (strcmp(sub, "stats") == 0 && argc == 2)
		return cmd_stats(qs, req);
	if (strcmp(sub, "show") == 0 && argc == 3)
		return cmd_show(qs, req, id);
	if (strcmp(sub, "flush") == 0 && argc <= 3) {
		struct qmsg *msg = argc == 3 ? qtable_find(&qs->table, id) : NULL;

		if (argc == 3 && msg == NULL)
			return postern_control_fail(req, "no message %s in the queue", id);
		if (msg != NULL && msg->held)
			return postern_control_fail(req, "%s is held: release it first", id);
		sched_flush(qs, msg);
		postern_str_printf(postern_control_output(req), "%s\n",
				   msg != NULL ? "flushed" : "flushed the queue");
		return 0;
	}
	if ((strcmp(sub, "hold") == 0 || strcmp(sub, "release") == 0) && argc == 3) {
		struct qmsg *msg = qtable_find(&qs->table, id);

		if (msg == NULL)
			return postern_control_fail(req, "no message %s in the queue", id);
		return cmd_hold(qs, req, msg, sub[0] == 'h');
	}
	if (strcmp(sub, "delete") == 0 && (argc == 3 || argc == 4)) {
		if (argc == 4 && strcmp(argv[3], "--bounce") != 0)
			return postern_control_fail(req, "usage: queue delete ID [--bounce]");
		bounce = argc == 4;
		return cmd_delete(qs, req, id, bounce);
	}
	return postern_control_fail(req, "usage: queue list|show ID|flush [ID]|hold ID|"
				    "release ID|delete ID [--bounce]|stats");
}

int control_register(struct qs *qs, const char **error_r)
{
	return postern_control_register(qs->mod, "queue", usage, queue_command, qs, error_r);
}
