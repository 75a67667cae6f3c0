/*
 * The queue service ("queue", offered by the queue-store module): how a
 * module that receives mail hands a message over durably, and how it learns
 * whether a recipient is local. Also the payload of the queue's bus events.
 *
 * A receiving module (smtp) lists "queue-store" in its `requires` and looks
 * the service up in its init:
 *
 *   const struct postern_queue_ops *queue =
 *       postern_service_lookup(mod, POSTERN_QUEUE_SERVICE, POSTERN_QUEUE_VERSION, &error);
 *
 * The message's life on the receiving side: begin() at the end of the
 * envelope, write() for each chunk of the message as it will be delivered
 * (CRLF line ends, dot-unstuffed, the receiver's trace header first), then
 * commit(); the receiver answers 250 only from commit's done callback with
 * status 0, which the queue calls only after the message file, its envelope
 * and the directory entry that makes them part of the queue are fsync'd.
 */
#ifndef POSTERN_QUEUE_H
#define POSTERN_QUEUE_H

#include <postern/common.h>

#define POSTERN_QUEUE_SERVICE "queue"
#define POSTERN_QUEUE_VERSION ((uint32_t)((1u << 16) | 0u))

/* DSN NOTIFY (RFC 3461) as bits; 0 means not given (FAILURE and DELAY). */
enum postern_dsn_notify {
	POSTERN_NOTIFY_NEVER = 1 << 0,
	POSTERN_NOTIFY_SUCCESS = 1 << 1,
	POSTERN_NOTIFY_FAILURE = 1 << 2,
	POSTERN_NOTIFY_DELAY = 1 << 3,
};

/* DSN RET (RFC 3461). */
enum postern_dsn_ret {
	POSTERN_RET_DEFAULT = 0, /* not given: the queue returns headers only */
	POSTERN_RET_FULL,
	POSTERN_RET_HDRS,
};

struct postern_queue_rcpt {
	const char *address; /* forward-path without <>, checked: no CR, LF, NUL */
	unsigned notify;     /* enum postern_dsn_notify bits, or 0 */
	const char *orcpt;   /* ORCPT as "rfc822;addr", xtext-decoded; or NULL */
};

struct postern_queue_envelope {
	uint32_t struct_size;       /* sizeof(struct postern_queue_envelope) */
	const char *sender;         /* reverse-path without <>; "" for the null sender */
	const struct postern_queue_rcpt *rcpts;
	unsigned rcpt_count;        /* at least 1 */
	enum postern_dsn_ret ret;
	const char *envid;          /* ENVID, xtext-decoded; or NULL */
	bool body_8bitmime;         /* BODY=8BITMIME */
	bool smtputf8;              /* SMTPUTF8 */
	const char *client_address; /* "192.0.2.7" */
	const char *client_name;    /* HELO/EHLO argument */
	const char *auth_user;      /* authenticated user, or NULL */
	const char *received_by;    /* the receiving module ("smtp", "submission") */
};

enum postern_rcpt_status {
	POSTERN_RCPT_LOCAL = 1,  /* a local mailbox that exists */
	POSTERN_RCPT_REMOTE,     /* not one of the local domains */
	POSTERN_RCPT_UNKNOWN,    /* a local domain without that user: 550 5.1.1 */
	POSTERN_RCPT_TEMPFAIL,   /* cannot tell now (user database unreadable): 451 4.3.0 */
};

struct postern_queue_msg;

/* status 0: durable and queued, `queue_id` names it. status -1: not
 * queued, `error` says why (answer 451 4.3.0 or 452 4.3.1 for a full disk). */
typedef void postern_queue_commit_cb(void *ctx, int status, const char *queue_id,
				     const char *error);

struct postern_queue_ops {
	uint32_t struct_size; /* sizeof(struct postern_queue_ops) of the provider */
	void *ctx;            /* the provider's context: the first argument below */

	enum postern_rcpt_status (*check_recipient)(void *ctx, const char *address);

	/* Start a message. NULL with *error_r for a local failure (4xx). */
	struct postern_queue_msg *(*begin)(void *ctx, const struct postern_queue_envelope *envelope,
					   const char **error_r);
	/* Append bytes. -1 with *error_r on a local failure (disk full): the
	 * message is then unusable; abort() it and answer 4xx. */
	int (*write)(struct postern_queue_msg *msg, const void *data, size_t len,
		     const char **error_r);
	/* Make the message durable and queue it. `done` is called exactly once,
	 * never from inside commit() itself (the queue may group the fsyncs of
	 * several messages); after it the handle is gone. */
	void (*commit)(struct postern_queue_msg *msg, postern_queue_commit_cb *done,
		       void *done_ctx);
	/* Drop a message that was not committed; nothing of it remains. */
	void (*abort)(struct postern_queue_msg *msg);
	/* The receiver's session is gone while a commit is pending: `done`
	 * will not be called; the commit itself goes on. */
	void (*detach)(struct postern_queue_msg *msg);
};

/* ---- Bus events published by the queue ---------------------------------- */

#define POSTERN_TOPIC_QUEUE_ACCEPTED "queue.accepted"   /* recipient NULL */
#define POSTERN_TOPIC_QUEUE_DELIVERED "queue.delivered"
#define POSTERN_TOPIC_QUEUE_DEFERRED "queue.deferred"
#define POSTERN_TOPIC_QUEUE_BOUNCED "queue.bounced"
#define POSTERN_TOPIC_QUEUE_EXPIRED "queue.expired"
#define POSTERN_EV_QUEUE_TYPE "postern_ev_queue"

struct postern_ev_queue {
	uint32_t struct_size;
	const char *queue_id;
	const char *sender;
	const char *recipient; /* NULL for events about the whole message */
	bool local;            /* delivered or to be delivered into a local mailbox */
	const char *mailbox;   /* local: the Maildir path delivered into, or NULL */
	unsigned smtp_code;    /* the answer that decided it, 0 if none */
	const char *status;    /* enhanced status code "2.0.0", "4.4.1", ... */
	const char *text;      /* the reply or local error text */
};

#endif
