/*
 * The TRANSACTION state and QUIT: STAT, LIST, UIDL, RETR, TOP, DELE, RSET,
 * NOOP, and the UPDATE state that QUIT enters.
 *
 * Everything answers from the snapshot taken at login (pop3_maildrop): no
 * directory is listed and no message read to answer STAT, LIST or UIDL, and
 * mail delivered during the session appears in the next one. DELE only
 * marks; the marks are applied on a worker when QUIT enters UPDATE, and a
 * session that ends any other way deletes nothing.
 */
#include <stdio.h>
#include <stdlib.h>

#include "server.h"

struct pop3_update_job {
	struct pop3_job job;
	struct pop3be *be;
	struct pop3_session *s;     /* NULL once the connection is gone */
	struct pop3_maildrop *drop;
	unsigned char *marks;
	bool flag_updates;
	unsigned failed, expunged;
	char *error;
	char *user;                 /* for the log, when the session is gone */
};

/* A message number argument that names a message not marked deleted:
 * its index in the view, or -1 after answering. */
static long msg_arg(struct pop3_session *s, const char *arg)
{
	unsigned msgno;

	if (pop3_parse_msgno(arg, s->drop->count, &msgno) < 0) {
		pop3_reply(s, "-ERR No such message");
		return -1;
	}
	if ((s->marks[msgno - 1] & POP3_MARK_DELETED) != 0) {
		pop3_reply(s, "-ERR Message %u already deleted", msgno);
		return -1;
	}
	return (long)(msgno - 1);
}

void pop3_cmd_stat(struct pop3_session *s, struct pop3_command *cmd)
{
	(void)cmd;
	pop3_reply(s, "+OK %u %llu", s->drop->count - s->deleted_count,
		   (unsigned long long)(s->drop->total_octets - s->deleted_octets));
}

/* LIST and UIDL without an argument write one line per message: build
 * them in a buffer and write in big pieces, not 100,000 small writes. */
static void scan_listing(struct pop3_session *s, bool uidl)
{
	const struct pop3_maildrop *drop = s->drop;
	char buf[16384];
	size_t n = 0;

	pop3_reply(s, "+OK %u messages", drop->count - s->deleted_count);
	for (unsigned i = 0; i < drop->count; i++) {
		if ((s->marks[i] & POP3_MARK_DELETED) != 0)
			continue;
		if (n > sizeof(buf) - 64) {
			postern_conn_write(s->conn, buf, n);
			n = 0;
		}
		if (uidl) {
			char id[17];

			pop3_maildrop_uidl(drop, i, id);
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%u %s\r\n", i + 1, id);
		} else {
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%u %llu\r\n", i + 1,
					      (unsigned long long)drop->msgs[i].octets);
		}
	}
	postern_conn_write(s->conn, buf, n);
	postern_conn_write(s->conn, ".\r\n", 3);
}

void pop3_cmd_list(struct pop3_session *s, struct pop3_command *cmd)
{
	long i;

	if (cmd->argc == 0) {
		scan_listing(s, false);
		return;
	}
	if ((i = msg_arg(s, cmd->args[0])) < 0)
		return;
	pop3_reply(s, "+OK %ld %llu", i + 1, (unsigned long long)s->drop->msgs[i].octets);
}

void pop3_cmd_uidl(struct pop3_session *s, struct pop3_command *cmd)
{
	char id[17];
	long i;

	if (cmd->argc == 0) {
		scan_listing(s, true);
		return;
	}
	if ((i = msg_arg(s, cmd->args[0])) < 0)
		return;
	pop3_maildrop_uidl(s->drop, (unsigned)i, id);
	pop3_reply(s, "+OK %ld %s", i + 1, id);
}

void pop3_cmd_retr(struct pop3_session *s, struct pop3_command *cmd)
{
	long i = msg_arg(s, cmd->args[0]);

	if (i >= 0)
		pop3_sender_start(s, (unsigned)i, UINT64_MAX);
}

void pop3_cmd_top(struct pop3_session *s, struct pop3_command *cmd)
{
	uint64_t lines;
	long i = msg_arg(s, cmd->args[0]);

	if (i < 0)
		return;
	if (pop3_parse_count(cmd->args[1], &lines) < 0) {
		pop3_reply(s, "-ERR Bad line count");
		pop3_session_bad_command(s);
		return;
	}
	pop3_sender_start(s, (unsigned)i, lines);
}

void pop3_cmd_dele(struct pop3_session *s, struct pop3_command *cmd)
{
	long i = msg_arg(s, cmd->args[0]);

	if (i < 0)
		return;
	s->marks[i] |= POP3_MARK_DELETED;
	s->deleted_count++;
	s->deleted_octets += s->drop->msgs[i].octets;
	pop3_reply(s, "+OK Marked to be deleted");
}

void pop3_cmd_rset(struct pop3_session *s, struct pop3_command *cmd)
{
	(void)cmd;
	for (unsigned i = 0; i < s->drop->count; i++)
		s->marks[i] &= (unsigned char)~POP3_MARK_DELETED;
	s->deleted_count = 0;
	s->deleted_octets = 0;
	pop3_reply(s, "+OK %u messages (%llu octets)", s->drop->count,
		   (unsigned long long)s->drop->total_octets);
}

void pop3_cmd_noop(struct pop3_session *s, struct pop3_command *cmd)
{
	(void)cmd;
	pop3_reply(s, "+OK");
}

/* ---- QUIT and the UPDATE state -------------------------------------------------- */

static void update_run(struct pop3_job *job)
{
	struct pop3_update_job *uj = (struct pop3_update_job *)job;

	uj->failed = pop3_maildrop_update(uj->drop, uj->marks, uj->flag_updates, &uj->expunged,
					  &uj->error);
	pop3_maildrop_close(&uj->drop);
}

static void update_done(struct pop3_job *job)
{
	struct pop3_update_job *uj = (struct pop3_update_job *)job;
	struct pop3_session *s = uj->s;

	uj->be->stats.deleted += uj->expunged;
	if (uj->failed > 0)
		postern_log(uj->be->mod, POSTERN_LOG_ERROR,
			    "QUIT of user=<%s>: %u of %u deletions failed: %s", uj->user,
			    uj->failed, uj->failed + uj->expunged, uj->error);
	if (!job->cancelled && s != NULL) {
		s->update_job = NULL;
		postern_conn_log(s->conn, POSTERN_LOG_INFO,
				 "logout: user=<%s> retrieved=%llu octets=%llu deleted=%u",
				 s->login_user, (unsigned long long)s->retrieved,
				 (unsigned long long)s->sent_octets, uj->expunged);
		if (uj->failed > 0)
			pop3_reply(s, "-ERR [SYS/TEMP] Some deleted messages not removed");
		else
			pop3_reply(s, "+OK Logging out, %u messages deleted", uj->expunged);
		postern_conn_close_after_flush(s->conn, "quit");
	}
	free(uj->marks);
	free(uj->error);
	free(uj->user);
	free(uj);
}

void pop3_cmd_quit(struct pop3_session *s, struct pop3_command *cmd)
{
	struct pop3_update_job *uj;

	(void)cmd;
	if (s->state == POP3_STATE_AUTHORIZATION) {
		pop3_reply(s, "+OK Logging out");
		postern_conn_close_after_flush(s->conn, "quit");
		return;
	}
	/* RFC 1939 section 6: QUIT in TRANSACTION enters UPDATE. The job
	 * owns the mailbox from here on: it applies the deletions even if the
	 * client does not wait for the answer. */
	s->state = POP3_STATE_UPDATE;
	uj = pop3_zalloc(sizeof(*uj));
	uj->job.run = update_run;
	uj->job.done = update_done;
	uj->be = s->be;
	uj->s = s;
	uj->drop = s->drop;
	uj->marks = s->marks;
	uj->flag_updates = s->be->drop_set.flag_updates;
	uj->user = pop3_strdup(s->login_user);
	s->drop = NULL;
	s->marks = NULL;
	s->update_job = uj;
	pop3_session_wait(s, POP3_WAIT_UPDATE);
	pop3_workers_submit(s->be->workers, &uj->job);
}

void pop3_update_cancel(struct pop3_session *s)
{
	if (s->update_job != NULL) {
		s->update_job->s = NULL;
		s->update_job->job.cancelled = true;
		s->update_job = NULL;
	}
}
