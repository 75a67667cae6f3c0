/*
 * RETR and TOP: stream a message file to the client in the POP3 multi-line
 * form (dotstuff.c), a chunk at a time, with the core's output
 * back-pressure: fill the connection's output buffer up to
 * POP3_SEND_TARGET, then wait for POSTERN_CONN_DRAINED. A big message is
 * never read into memory, and a client that stops reading costs one output
 * buffer, not the message.
 *
 * Reading a local file on the loop is acceptable (the core's rule for local
 * disk I/O); the read and conversion buffers are the module's, shared by
 * all sessions, since the loop runs one callback at a time.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <postern/mailstore.h>

#include "server.h"

struct pop3_sender {
	int fd;
	unsigned index;         /* in the view */
	bool retr;              /* RETR (marks the message retrieved), not TOP */
	struct pop3_stuffer st;
};

void pop3_sender_free(struct pop3_session *s)
{
	if (s->sender == NULL)
		return;
	if (s->sender->fd >= 0)
		close(s->sender->fd);
	free(s->sender);
	s->sender = NULL;
}

static void sender_finish(struct pop3_session *s)
{
	struct pop3_sender *sd = s->sender;
	char tail[8];
	size_t n = pop3_stuff_finish(&sd->st, tail);

	postern_conn_write(s->conn, tail, n);
	if (sd->retr) {
		const struct pop3_msg *msg = &s->drop->msgs[sd->index];

		s->marks[sd->index] |= POP3_MARK_RETRIEVED;
		s->retrieved++;
		s->be->stats.retrieved++;
		s->be->stats.retrieved_octets += sd->st.content_bytes;
		if (sd->st.content_bytes != msg->octets)
			postern_conn_log(s->conn, POSTERN_LOG_WARNING,
					 "message uid %u: sent %llu octets, LIST said %llu (the "
					 "file changed, or its W= size is wrong)", msg->uid,
					 (unsigned long long)sd->st.content_bytes,
					 (unsigned long long)msg->octets);
	}
	s->sent_octets += sd->st.content_bytes;
	pop3_sender_free(s);
	pop3_session_resume(s);
}

/* The file ended (or vanished) before the octets LIST announced: the
 * client was promised a size we cannot keep; cutting the connection is
 * the only honest answer once a "+OK" went out. */
static void sender_abort(struct pop3_session *s, const char *why)
{
	postern_conn_log(s->conn, POSTERN_LOG_ERROR, "RETR of uid %u failed: %s",
			 s->drop->msgs[s->sender->index].uid, why);
	pop3_sender_free(s);
	postern_conn_close(s->conn, "message read error");
}

void pop3_sender_pump(struct pop3_session *s)
{
	struct pop3be *be = s->be;
	struct pop3_sender *sd = s->sender;

	while (!postern_conn_is_closing(s->conn) &&
	       postern_conn_output_size(s->conn) < POP3_SEND_TARGET) {
		ssize_t n = read(sd->fd, be->read_buf, POP3_READ_CHUNK);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			sender_abort(s, strerror(errno));
			return;
		}
		if (n == 0 || sd->st.done) {
			sender_finish(s);
			return;
		}

		size_t out = pop3_stuff(&sd->st, be->read_buf, (size_t)n, be->send_buf);

		postern_conn_write(s->conn, be->send_buf, out);
	}
	/* DRAINED calls us again */
}

void pop3_sender_start(struct pop3_session *s, unsigned index, uint64_t body_lines)
{
	const struct pop3_msg *msg = &s->drop->msgs[index];
	const char *error;
	int fd, ret;

	assert(s->sender == NULL);
	ret = mailstore_msg_open(s->drop->box, msg->seq, &fd, &error);
	if (ret <= 0) {
		if (ret < 0)
			postern_conn_log(s->conn, POSTERN_LOG_ERROR, "open of uid %u failed: %s",
					 msg->uid, error);
		/* expunged by another client since the login: say so and go on */
		pop3_reply(s, ret == 0 ? "-ERR Message was removed by another client" :
			   "-ERR [SYS/TEMP] Cannot read the message");
		return;
	}
	s->sender = pop3_zalloc(sizeof(*s->sender));
	s->sender->fd = fd;
	s->sender->index = index;
	s->sender->retr = body_lines == UINT64_MAX;
	pop3_stuffer_init(&s->sender->st, body_lines);
	if (s->sender->retr)
		pop3_reply(s, "+OK %llu octets", (unsigned long long)msg->octets);
	else
		pop3_reply(s, "+OK");
	pop3_session_wait(s, POP3_WAIT_SEND);
	pop3_sender_pump(s);
}
