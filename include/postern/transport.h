/*
 * The outbound transport service ("transport.smtp", offered by the smtp
 * module): how the queue hands one delivery attempt for one next-hop domain
 * to the SMTP client and gets a result for each recipient.
 *
 * The queue does not `require` smtp (smtp requires the queue); it looks the
 * service up when it first needs it, after every module's init has run. A
 * missing transport defers remote recipients with a clear error.
 */
#ifndef POSTERN_TRANSPORT_H
#define POSTERN_TRANSPORT_H

#include <postern/common.h>
#include <postern/queue.h>

#define POSTERN_TRANSPORT_SMTP_SERVICE "transport.smtp"
#define POSTERN_TRANSPORT_VERSION ((uint32_t)((1u << 16) | 0u))

struct postern_transport_request {
	uint32_t struct_size;      /* sizeof(struct postern_transport_request) */
	const char *queue_id;      /* for logs */
	const char *sender;        /* "" for the null sender */
	const char *domain;        /* the next-hop domain every recipient shares */
	const struct postern_queue_rcpt *rcpts;
	unsigned rcpt_count;
	/* The message as queued (CRLF lines, not dot-stuffed): read it with
	 * pread() from message_offset for message_size bytes. The fd stays
	 * open until done() is called or the job is cancelled. */
	int message_fd;
	uint64_t message_offset;
	uint64_t message_size;
	bool body_8bitmime;
	bool smtputf8;
	enum postern_dsn_ret ret;
	const char *envid;
};

struct postern_transport_rcpt_result {
	unsigned smtp_code;        /* the remote answer (250, 451, 550 ...); 0: no answer */
	const char *enhanced_code; /* "5.1.1", or NULL */
	const char *text;          /* the remote reply, or what failed locally
	                            * ("connect to mx.example.com[192.0.2.1]:25: refused") */
	const char *remote_mta;    /* "mx.example.com", or NULL */
};

/* One result per recipient, in the request's order. 2xx: delivered; 4xx or
 * 0: try again later; 5xx: bounce. The results are valid during the call. */
typedef void postern_transport_done_cb(void *ctx,
				       const struct postern_transport_rcpt_result *results,
				       unsigned count);

struct postern_transport_job;

struct postern_transport_ops {
	uint32_t struct_size;
	void *ctx;
	/* Start an attempt. NULL with *error_r only for a request it cannot
	 * take at all; network failures arrive as results. */
	struct postern_transport_job *(*deliver)(void *ctx,
						 const struct postern_transport_request *request,
						 postern_transport_done_cb *done, void *done_ctx,
						 const char **error_r);
	/* Abandon an attempt: done() is not called, every resource is freed. */
	void (*cancel)(struct postern_transport_job *job);
};

#endif
