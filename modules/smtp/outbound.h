/*
 * The outbound side's private structures, shared by transport.c (jobs,
 * destinations, routes) and client.c (one SMTP conversation with one host).
 *
 * A job is one delivery attempt the queue asked for: one sender, the
 * recipients of one next-hop domain, the message in a file. Its route is a
 * list of hosts (relay_host, or the domain's MX hosts in preference order
 * with their addresses, or the domain's own addresses when it has no MX).
 * The job tries them in order until one takes the conversation as far as
 * the recipients; then every recipient has its result and the queue hears
 * them all at once.
 */
#ifndef SMTP_OUTBOUND_H
#define SMTP_OUTBOUND_H

#include "smtp_private.h"
#include "dns.h"

struct smtp_job;
struct smtp_client;

/* One next hop: a domain, or the relay host. Connections to it are
 * limited by outbound_max_per_destination; jobs over the limit wait. */
struct smtp_dest {
	char *name;
	unsigned active;
	struct smtp_job *wait_head, *wait_tail;
	struct smtp_dest *next;
};

struct smtp_outbound {
	struct smtp *smtp;
	struct postern_transport_ops ops;
	struct postern_tls *tls_client;
	struct smtp_dns *dns;
	struct smtp_job *jobs;         /* every job, running or waiting */
	struct smtp_dest *dests;
	unsigned active;               /* jobs holding a connection slot */
	struct postern_timer *kick_timer; /* starts waiting jobs */
	/* relay_host, parsed. */
	char *relay_name;              /* host name or numeric address */
	unsigned relay_port;
	bool relay_literal;            /* [..]: no MX lookup */
};

/* One address to try. */
struct smtp_host {
	char *name;                    /* MX host name, or the address itself */
	char *ip;                      /* numeric */
	unsigned port;
};

struct smtp_rcpt_result {
	unsigned code;                 /* 0: no answer */
	char enhanced[16];
	char *text;
	bool accepted;                 /* RCPT said 2xx, waiting for DATA's verdict */
	bool final;                    /* this attempt's result is known */
};

enum smtp_job_phase {
	SMTP_JOB_WAITING = 0,          /* for a connection slot */
	SMTP_JOB_RESOLVING,
	SMTP_JOB_CONNECTED,            /* a client conversation runs */
	SMTP_JOB_FINISHING,
};

struct smtp_job {
	struct smtp_outbound *out;
	struct smtp_job *prev, *next;  /* out->jobs */
	struct smtp_job *wait_next;    /* a waiting list */
	struct smtp_dest *dest;
	enum smtp_job_phase phase;
	bool holds_slot;
	/* The request, copied. */
	char *queue_id, *sender, *domain, *envid;
	struct postern_queue_rcpt *rcpts;
	unsigned rcpt_count;
	int message_fd;
	uint64_t message_offset, message_size;
	bool body_8bitmime, smtputf8;
	enum postern_dsn_ret ret;
	postern_transport_done_cb *done;
	void *done_ctx;
	/* Route. */
	struct smtp_host *hosts;
	unsigned host_count, host_alloc, host_index;
	char **mx_names;               /* MX hosts still to resolve, in order */
	unsigned mx_count, mx_index;
	struct smtp_dns_query *query;
	bool tls_failed_here;          /* retry the current host without TLS */
	/* Results. */
	struct smtp_rcpt_result *results;
	char *last_error;              /* why the last host did not work */
	struct smtp_client *client;
	struct postern_timer *finish_timer;
};

/* How a conversation ended. */
enum smtp_attempt {
	SMTP_ATTEMPT_NEXT_HOST,        /* nothing about recipients learnt: try the next host */
	SMTP_ATTEMPT_RETRY_PLAIN,      /* TLS failed: the same host again without TLS */
	SMTP_ATTEMPT_DONE,             /* every recipient has a result */
};

/* client.c */
struct smtp_client *smtp_client_start(struct smtp_job *job, const struct smtp_host *host,
				      bool tls_allowed);
/* The job no longer wants it: close the connection, never call back. */
void smtp_client_abort(struct smtp_client *client);

/* transport.c, called by client.c exactly once per client. */
void smtp_job_attempt_done(struct smtp_job *job, enum smtp_attempt attempt);
/* Record why this host failed (for the next one or the final result). */
void smtp_job_set_error(struct smtp_job *job, const char *fmt, ...) POSTERN_PRINTF(2, 3);
/* Give recipient `i` its result for this attempt. */
void smtp_job_rcpt_result(struct smtp_job *job, unsigned i, unsigned code, const char *enhanced,
			  const char *text);

#endif
