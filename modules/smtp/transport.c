/*
 * The "transport.smtp" service the queue delivers remote mail through:
 * jobs, destinations with their connection limits, and routes.
 *
 * A route is relay_host when set ("[192.0.2.1]:25": no MX lookup, as in
 * Postfix; "host:port": its MX records), else the recipient domain's MX
 * hosts in preference order, or the domain itself when it has no MX
 * (RFC 5321 5.1). A null MX (RFC 7505) fails the recipients permanently
 * with 556 5.1.10; a domain that does not exist with 550 5.1.2. MX hosts
 * are resolved one at a time, only when the ones before them failed; the
 * next host is tried after a connect failure, a 4xx/5xx greeting or a
 * refused EHLO/HELO.
 *
 * The queue's done() is never called from inside deliver(): jobs start
 * from a timer.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "outbound.h"

static void outbound_kick(struct smtp_outbound *out);

/* ---- Destinations and slots ----------------------------------------------- */

static struct smtp_dest *dest_get(struct smtp_outbound *out, const char *name)
{
	struct smtp_dest *dest;

	for (dest = out->dests; dest != NULL; dest = dest->next)
		if (strcasecmp(dest->name, name) == 0)
			return dest;
	dest = smtp_alloc(sizeof(*dest));
	dest->name = smtp_strdup(name);
	for (char *p = dest->name; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	dest->next = out->dests;
	out->dests = dest;
	return dest;
}

/* Forget destinations nobody uses: their number stays bounded by the
 * jobs in flight. */
static void dest_release(struct smtp_outbound *out, struct smtp_dest *dest)
{
	if (dest->active > 0 || dest->wait_head != NULL)
		return;
	for (struct smtp_dest **p = &out->dests; *p != NULL; p = &(*p)->next) {
		if (*p == dest) {
			*p = dest->next;
			free(dest->name);
			free(dest);
			return;
		}
	}
}

static void wait_remove(struct smtp_dest *dest, struct smtp_job *job)
{
	struct smtp_job *prev = NULL;

	for (struct smtp_job *j = dest->wait_head; j != NULL; prev = j, j = j->wait_next) {
		if (j != job)
			continue;
		if (prev != NULL)
			prev->wait_next = j->wait_next;
		else
			dest->wait_head = j->wait_next;
		if (dest->wait_tail == j)
			dest->wait_tail = prev;
		j->wait_next = NULL;
		return;
	}
}

static void slot_release(struct smtp_job *job)
{
	if (!job->holds_slot)
		return;
	job->holds_slot = false;
	job->dest->active--;
	job->out->active--;
	job->out->smtp->stats.out_jobs_active--;
}

/* ---- Jobs ------------------------------------------------------------------ */

static void job_free(struct smtp_job *job)
{
	struct smtp_outbound *out = job->out;

	if (job->prev != NULL)
		job->prev->next = job->next;
	else
		out->jobs = job->next;
	if (job->next != NULL)
		job->next->prev = job->prev;
	smtp_dns_cancel(job->query);
	postern_timer_remove(&job->finish_timer);
	for (unsigned i = 0; i < job->rcpt_count; i++) {
		free((char *)job->rcpts[i].address);
		free((char *)job->rcpts[i].orcpt);
		free(job->results[i].text);
	}
	for (unsigned i = 0; i < job->host_count; i++) {
		free(job->hosts[i].name);
		free(job->hosts[i].ip);
	}
	for (unsigned i = 0; i < job->mx_count; i++)
		free(job->mx_names[i]);
	free(job->mx_names);
	free(job->hosts);
	free(job->rcpts);
	free(job->results);
	free(job->last_error);
	free(job->queue_id);
	free(job->sender);
	free(job->domain);
	free(job->envid);
	free(job);
}

void smtp_job_set_error(struct smtp_job *job, const char *fmt, ...)
{
	va_list args;
	char *text;

	va_start(args, fmt);
	if (vasprintf(&text, fmt, args) < 0)
		text = NULL;
	va_end(args);
	if (text == NULL)
		return;
	free(job->last_error);
	job->last_error = text;
}

void smtp_job_rcpt_result(struct smtp_job *job, unsigned i, unsigned code, const char *enhanced,
			  const char *text)
{
	struct smtp_rcpt_result *r = &job->results[i];

	assert(i < job->rcpt_count);
	r->code = code;
	snprintf(r->enhanced, sizeof(r->enhanced), "%s", enhanced != NULL ? enhanced : "");
	free(r->text);
	r->text = smtp_strdup(text != NULL ? text : "");
	r->final = true;
}

static void log_result(struct smtp_job *job, unsigned i, const char *relay)
{
	const struct smtp_rcpt_result *r = &job->results[i];
	struct smtp_stats *stats = &job->out->smtp->stats;
	const char *status = r->code / 100 == 2 ? "sent" : r->code / 100 == 5 ? "bounced" :
										  "deferred";

	if (r->code / 100 == 2)
		stats->out_delivered++;
	else if (r->code / 100 == 5)
		stats->out_bounced++;
	else
		stats->out_deferred++;
	postern_log(job->out->smtp->mod, POSTERN_LOG_INFO,
		    "%s: to=<%s> relay=%s status=%s (%u %s%s%s)", job->queue_id,
		    job->rcpts[i].address, relay != NULL ? relay : "none", status, r->code,
		    r->enhanced, r->enhanced[0] != '\0' ? " " : "", r->text);
}

/* Every recipient has its result: tell the queue and let the job go. */
static void job_finish(struct smtp_job *job)
{
	struct smtp_outbound *out = job->out;
	struct postern_transport_rcpt_result *results =
		smtp_alloc(sizeof(*results) * job->rcpt_count);
	const char *relay = job->host_index < job->host_count ? job->hosts[job->host_index].name :
								   NULL;

	for (unsigned i = 0; i < job->rcpt_count; i++) {
		struct smtp_rcpt_result *r = &job->results[i];

		if (!r->final)
			smtp_job_rcpt_result(job, i, 0, "4.4.1",
					     job->last_error != NULL ? job->last_error :
								       "no result");
		results[i].smtp_code = r->code;
		results[i].enhanced_code = r->enhanced[0] != '\0' ? r->enhanced : NULL;
		results[i].text = r->text;
		results[i].remote_mta = relay;
		log_result(job, i, relay);
	}
	slot_release(job);
	struct smtp_dest *dest = job->dest;

	job->done(job->done_ctx, results, job->rcpt_count);
	free(results);
	job_free(job);
	dest_release(out, dest);
	outbound_kick(out);
}

static void fail_all(struct smtp_job *job, unsigned code, const char *enhanced,
		     const char *text)
{
	for (unsigned i = 0; i < job->rcpt_count; i++)
		if (!job->results[i].final)
			smtp_job_rcpt_result(job, i, code, enhanced, text);
	job_finish(job);
}

static void add_host(struct smtp_job *job, const char *name, const char *ip, unsigned port)
{
	if (job->host_count == job->host_alloc) {
		job->host_alloc = job->host_alloc == 0 ? 4 : job->host_alloc * 2;
		job->hosts = smtp_realloc(job->hosts, job->host_alloc * sizeof(*job->hosts));
	}
	struct smtp_host *host = &job->hosts[job->host_count++];

	host->name = smtp_strdup(name);
	host->ip = smtp_strdup(ip);
	host->port = port;
}

static unsigned route_port(const struct smtp_job *job)
{
	return job->out->relay_name != NULL ? job->out->relay_port :
					      (unsigned)job->out->smtp->set.outbound_port;
}

static void resolve_next_mx(struct smtp_job *job);

/* Try hosts in order; resolve the next MX when they run out. */
static void connect_next(struct smtp_job *job)
{
	while (job->host_index < job->host_count) {
		struct smtp_host *host = &job->hosts[job->host_index];

		job->phase = SMTP_JOB_CONNECTED;
		job->client = smtp_client_start(job, host, !job->tls_failed_here);
		if (job->client != NULL)
			return;
		job->host_index++;
		job->tls_failed_here = false;
	}
	if (job->mx_index < job->mx_count) {
		resolve_next_mx(job);
		return;
	}
	fail_all(job, 0, "4.4.1", job->last_error != NULL ? job->last_error :
							     "no mail server could be reached");
}

void smtp_job_attempt_done(struct smtp_job *job, enum smtp_attempt attempt)
{
	job->client = NULL;
	switch (attempt) {
	case SMTP_ATTEMPT_DONE:
		job_finish(job);
		return;
	case SMTP_ATTEMPT_RETRY_PLAIN:
		if (!job->tls_failed_here) {
			job->tls_failed_here = true;
			connect_next(job);
			return;
		}
		__attribute__((fallthrough));
	case SMTP_ATTEMPT_NEXT_HOST:
		job->host_index++;
		job->tls_failed_here = false;
		connect_next(job);
		return;
	}
}

static bool is_numeric(const char *name)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

/* Is the MX host being resolved the domain itself (no MX records)? */
static bool implicit_mx(const struct smtp_job *job)
{
	return job->mx_count == 1 && job->out->relay_name == NULL &&
	       strcasecmp(job->mx_names[0], job->domain) == 0 && job->host_count == 0;
}

static void addr_done(void *ctx, enum smtp_dns_status status, char *const *addrs,
		      unsigned count, const char *error)
{
	struct smtp_job *job = ctx;
	const char *name = job->mx_names[job->mx_index - 1];

	job->query = NULL;
	if (status != SMTP_DNS_OK) {
		if (implicit_mx(job) && (status == SMTP_DNS_NXDOMAIN || status == SMTP_DNS_NODATA)) {
			char *text = smtp_asprintf("%s: no MX and no address records", job->domain);

			fail_all(job, 550, "5.1.2", text);
			free(text);
			return;
		}
		smtp_job_set_error(job, "%s: address lookup failed: %s", name, error);
	}
	for (unsigned i = 0; i < count; i++)
		add_host(job, name, addrs[i], route_port(job));
	connect_next(job);
}

static void resolve_next_mx(struct smtp_job *job)
{
	const char *name = job->mx_names[job->mx_index++];

	job->phase = SMTP_JOB_RESOLVING;
	if (is_numeric(name)) {
		add_host(job, name, name, route_port(job));
		connect_next(job);
		return;
	}
	job->query = smtp_dns_addr(job->out->dns, name, addr_done, job);
}

static void mx_done(void *ctx, enum smtp_dns_status status, const struct smtp_mx *mx,
		    unsigned count, const char *error)
{
	struct smtp_job *job = ctx;
	const char *name = job->out->relay_name != NULL ? job->out->relay_name : job->domain;
	unsigned max = (unsigned)job->out->smtp->set.outbound_max_mx;

	job->query = NULL;
	switch (status) {
	case SMTP_DNS_OK:
		break;
	case SMTP_DNS_NODATA:
		count = 0;
		break;
	case SMTP_DNS_NXDOMAIN:
		if (job->out->relay_name == NULL) {
			char *text = smtp_asprintf("%s: host or domain name not found", name);

			fail_all(job, 550, "5.1.2", text);
			free(text);
			return;
		}
		/* A misconfigured relay_host is ours to fix: temporary. */
		__attribute__((fallthrough));
	case SMTP_DNS_TEMPFAIL:
	default: {
		char *text = smtp_asprintf("MX lookup of %s failed: %s", name, error);

		fail_all(job, 0, "4.4.3", text);
		free(text);
		return;
	}
	}
	/* RFC 7505: a single MX of "." says the domain takes no mail. */
	if (count == 1 && strcmp(mx[0].host, ".") == 0) {
		char *text = smtp_asprintf("%s does not accept mail (null MX, RFC 7505)", name);

		fail_all(job, 556, "5.1.10", text);
		free(text);
		return;
	}
	job->mx_names = smtp_alloc(sizeof(char *) * (count > 0 ? count : 1));
	for (unsigned i = 0; i < count && job->mx_count < max; i++)
		if (strcmp(mx[i].host, ".") != 0)
			job->mx_names[job->mx_count++] = smtp_strdup(mx[i].host);
	if (job->mx_count == 0)
		job->mx_names[job->mx_count++] = smtp_strdup(name); /* implicit MX */
	resolve_next_mx(job);
}

/* "[192.0.2.1]", "[IPv6:2001:db8::1]": a domain that is an address. */
static bool domain_literal(const char *domain, char *ip, size_t size)
{
	size_t len = strlen(domain);

	if (len < 3 || domain[0] != '[' || domain[len - 1] != ']' || len - 2 >= size)
		return false;
	const char *inner = domain + 1;

	len -= 2;
	if (len > 5 && strncasecmp(inner, "IPv6:", 5) == 0) {
		inner += 5;
		len -= 5;
	}
	memcpy(ip, inner, len);
	ip[len] = '\0';
	return is_numeric(ip);
}

static void job_route(struct smtp_job *job)
{
	struct smtp_outbound *out = job->out;
	char ip[INET6_ADDRSTRLEN + 8];

	job->phase = SMTP_JOB_RESOLVING;
	if (out->relay_name != NULL && out->relay_literal) {
		/* No MX lookup: the host itself (its addresses if a name). */
		job->mx_names = smtp_alloc(sizeof(char *));
		job->mx_names[job->mx_count++] = smtp_strdup(out->relay_name);
		resolve_next_mx(job);
		return;
	}
	if (out->relay_name == NULL && domain_literal(job->domain, ip, sizeof(ip))) {
		add_host(job, ip, ip, route_port(job));
		connect_next(job);
		return;
	}
	job->query = smtp_dns_mx(out->dns, out->relay_name != NULL ? out->relay_name : job->domain,
				 mx_done, job);
}

/* Start waiting jobs while their destination and the total allow. */
static void outbound_schedule(struct postern_timer *timer, void *ctx)
{
	struct smtp_outbound *out = ctx;
	const struct smtp_settings *set = &out->smtp->set;
	bool started = true;

	while (started && out->active < set->outbound_max_connections) {
		started = false;
		for (struct smtp_dest *dest = out->dests; dest != NULL; dest = dest->next) {
			struct smtp_job *job = dest->wait_head;

			if (job == NULL || dest->active >= set->outbound_max_per_destination ||
			    out->active >= set->outbound_max_connections)
				continue;
			wait_remove(dest, job);
			job->holds_slot = true;
			dest->active++;
			out->active++;
			out->smtp->stats.out_jobs_active++;
			started = true;
			job_route(job);
			/* job_route() never finishes a job synchronously
			 * except through fail paths that call kick again:
			 * restart the scan, the list may have changed. */
			break;
		}
	}
}

static void outbound_kick(struct smtp_outbound *out)
{
	postern_timer_reset(out->kick_timer, 1);
}

/* ---- The service ----------------------------------------------------------- */

static bool clean(const char *text)
{
	return text == NULL || strpbrk(text, "\r\n") == NULL;
}

static char *dup_or_null(const char *text)
{
	return text != NULL ? smtp_strdup(text) : NULL;
}

static struct postern_transport_job *transport_deliver(void *ctx,
						       const struct postern_transport_request *req,
						       postern_transport_done_cb *done,
						       void *done_ctx, const char **error_r)
{
	struct smtp_outbound *out = ctx;

	if (req->struct_size < sizeof(*req) || req->rcpt_count == 0 || req->domain == NULL ||
	    req->domain[0] == '\0' || req->sender == NULL || req->message_fd < 0 || done == NULL) {
		*error_r = "transport.smtp: incomplete request";
		return NULL;
	}
	/* Addresses go into SMTP commands: no line breaks, ever. */
	bool ok = clean(req->sender) && clean(req->domain) && clean(req->envid);

	for (unsigned i = 0; ok && i < req->rcpt_count; i++)
		ok = req->rcpts[i].address != NULL && clean(req->rcpts[i].address) &&
		     clean(req->rcpts[i].orcpt);
	if (!ok) {
		*error_r = "transport.smtp: CR or LF in an address";
		return NULL;
	}
	struct smtp_job *job = smtp_alloc(sizeof(*job));

	job->out = out;
	job->queue_id = smtp_strdup(req->queue_id != NULL ? req->queue_id : "-");
	job->sender = smtp_strdup(req->sender);
	job->domain = smtp_strdup(req->domain);
	job->envid = dup_or_null(req->envid);
	job->rcpt_count = req->rcpt_count;
	job->rcpts = smtp_alloc(sizeof(*job->rcpts) * req->rcpt_count);
	job->results = smtp_alloc(sizeof(*job->results) * req->rcpt_count);
	for (unsigned i = 0; i < req->rcpt_count; i++) {
		job->rcpts[i].address = smtp_strdup(req->rcpts[i].address);
		job->rcpts[i].notify = req->rcpts[i].notify;
		job->rcpts[i].orcpt = dup_or_null(req->rcpts[i].orcpt);
	}
	job->message_fd = req->message_fd;
	job->message_offset = req->message_offset;
	job->message_size = req->message_size;
	job->body_8bitmime = req->body_8bitmime;
	job->smtputf8 = req->smtputf8;
	job->ret = req->ret;
	job->done = done;
	job->done_ctx = done_ctx;
	job->next = out->jobs;
	if (out->jobs != NULL)
		out->jobs->prev = job;
	out->jobs = job;
	job->dest = dest_get(out, out->relay_name != NULL ? out->relay_name : job->domain);
	if (job->dest->wait_tail != NULL)
		job->dest->wait_tail->wait_next = job;
	else
		job->dest->wait_head = job;
	job->dest->wait_tail = job;
	out->smtp->stats.out_jobs++;
	outbound_kick(out);
	return (struct postern_transport_job *)job;
}

static void transport_cancel(struct postern_transport_job *tjob)
{
	struct smtp_job *job = (struct smtp_job *)tjob;
	struct smtp_outbound *out = job->out;
	struct smtp_dest *dest = job->dest;

	if (job->client != NULL)
		smtp_client_abort(job->client);
	job->client = NULL;
	wait_remove(dest, job);
	slot_release(job);
	job_free(job);
	dest_release(out, dest);
	outbound_kick(out);
}

/* relay_host: "[192.0.2.1]:25", "[IPv6:2001:db8::1]:25", "[mx.example]",
 * "mx.example:2525", "mx.example". */
static int parse_relay_host(struct smtp_outbound *out, const char *text, const char **error_r)
{
	const char *port_text = NULL;
	char *name;

	if (text[0] == '[') {
		const char *close = strchr(text, ']');

		if (close == NULL || close == text + 1)
			goto bad;
		name = smtp_strdup(text + 1);
		name[close - text - 1] = '\0';
		if (strncasecmp(name, "IPv6:", 5) == 0)
			memmove(name, name + 5, strlen(name + 5) + 1);
		out->relay_literal = true;
		if (close[1] == ':')
			port_text = close + 2;
		else if (close[1] != '\0') {
			free(name);
			goto bad;
		}
	} else {
		const char *colon = strrchr(text, ':');

		name = smtp_strdup(text);
		if (colon != NULL) {
			name[colon - text] = '\0';
			port_text = colon + 1;
		}
		if (strchr(name, ':') != NULL ||
		    !smtp_domain_valid(name, strlen(name), false)) {
			free(name);
			goto bad;
		}
	}
	out->relay_port = (unsigned)out->smtp->set.outbound_port;
	if (port_text != NULL) {
		char *end;
		unsigned long port = strtoul(port_text, &end, 10);

		if (*port_text == '\0' || *end != '\0' || port == 0 || port > 65535) {
			free(name);
			goto bad;
		}
		out->relay_port = (unsigned)port;
	}
	out->relay_name = name;
	return 0;
bad:
	*error_r = postern_cfg_error(out->smtp->mod, NULL,
				     "smtp: relay_host '%s': use \"host\", \"host:port\" or "
				     "\"[address]:port\"",
				     text);
	return -1;
}

int smtp_outbound_init(struct smtp *smtp, const char **error_r)
{
	struct smtp_outbound *out = smtp_alloc(sizeof(*out));
	const struct smtp_settings *set = &smtp->set;
	struct postern_tls_settings tls = POSTERN_TLS_SETTINGS_INIT;
	struct smtp_dns_settings dns = { .servers = set->dns_servers,
					 .timeout_ms = set->dns_timeout,
					 .ipv6 = set->outbound_ipv6 };

	out->smtp = smtp;
	smtp->outbound = out;
	if (set->relay_host != NULL && parse_relay_host(out, set->relay_host, error_r) < 0)
		return -1;
	tls.verify_peer = set->outbound_tls_verify;
	tls.ca_file = set->outbound_tls_ca_file;
	out->tls_client = postern_tls_client_new(smtp->mod, &tls, error_r);
	if (out->tls_client == NULL)
		return -1;
	if (smtp_dns_create(smtp->mod, &dns, &out->dns, error_r) < 0)
		return -1;
	out->kick_timer = postern_timer_add(smtp->mod, 1, false, outbound_schedule, out);
	postern_timer_stop(out->kick_timer);
	out->ops.struct_size = sizeof(out->ops);
	out->ops.ctx = out;
	out->ops.deliver = transport_deliver;
	out->ops.cancel = transport_cancel;
	return postern_service_register(smtp->mod, POSTERN_TRANSPORT_SMTP_SERVICE,
					POSTERN_TRANSPORT_VERSION, &out->ops, error_r);
}

void smtp_outbound_deinit(struct smtp *smtp)
{
	struct smtp_outbound *out = smtp->outbound;

	if (out == NULL)
		return;
	/* The queue is deinitialised after us and cancels nothing then:
	 * what is left is dropped without callbacks. */
	while (out->jobs != NULL)
		transport_cancel((struct postern_transport_job *)out->jobs);
	smtp_dns_free(&out->dns);
	postern_timer_remove(&out->kick_timer);
	postern_tls_unref(&out->tls_client);
	while (out->dests != NULL) {
		struct smtp_dest *dest = out->dests;

		out->dests = dest->next;
		free(dest->name);
		free(dest);
	}
	free(out->relay_name);
	free(out);
	smtp->outbound = NULL;
}

void smtp_outbound_stats(struct smtp *smtp, struct postern_json *json, struct postern_str *text)
{
	struct smtp_outbound *out = smtp->outbound;

	if (out == NULL)
		return;
	if (json != NULL) {
		postern_json_key(json, "destinations");
		postern_json_array_begin(json);
	}
	for (struct smtp_dest *dest = out->dests; dest != NULL; dest = dest->next) {
		unsigned waiting = 0;

		for (struct smtp_job *job = dest->wait_head; job != NULL; job = job->wait_next)
			waiting++;
		if (json != NULL) {
			postern_json_object_begin(json);
			postern_json_key(json, "name");
			postern_json_string(json, dest->name);
			postern_json_key(json, "active");
			postern_json_uint(json, dest->active);
			postern_json_key(json, "waiting");
			postern_json_uint(json, waiting);
			postern_json_object_end(json);
		} else {
			postern_str_printf(text, "destination %s active %u waiting %u\n", dest->name,
					   dest->active, waiting);
		}
	}
	if (json != NULL)
		postern_json_array_end(json);
}
