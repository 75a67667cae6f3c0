/*
 * TLS under connections: implicit TLS and STARTTLS round trips, the
 * STARTTLS injection defence, failing and timed-out handshakes, and
 * reloading certificates (all or nothing). Certificates are made at test
 * time with the OpenSSL API into a temporary directory.
 */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include "conn_harness.h"

static struct {
	char dir[64];
	char cert[128], key[128];      /* "A", the server's */
	char cert_b[128], key_b[128];  /* "B", for reloads and wrong CAs */
	struct postern_tls *server, *client;
} T;

static void write_cert(const char *cert_path, const char *key_path, const char *cn)
{
	static long serial = 1;
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x509 = X509_new();
	X509_NAME *name;
	X509_EXTENSION *ext;
	FILE *file;

	ck_assert_ptr_nonnull(key);
	ck_assert_ptr_nonnull(x509);
	X509_set_version(x509, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x509), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x509), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x509), 86400);
	X509_set_pubkey(x509, key);
	name = X509_get_subject_name(x509);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x509, name);
	ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, "DNS:localhost");
	ck_assert_ptr_nonnull(ext);
	X509_add_ext(x509, ext, -1);
	X509_EXTENSION_free(ext);
	ext = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:TRUE");
	X509_add_ext(x509, ext, -1);
	X509_EXTENSION_free(ext);
	ck_assert_int_gt(X509_sign(x509, key, EVP_sha256()), 0);

	file = fopen(cert_path, "w");
	ck_assert_ptr_nonnull(file);
	ck_assert_int_eq(PEM_write_X509(file, x509), 1);
	fclose(file);
	file = fopen(key_path, "w");
	ck_assert_ptr_nonnull(file);
	ck_assert_int_eq(PEM_write_PrivateKey(file, key, NULL, NULL, 0, NULL, NULL), 1);
	fclose(file);
	X509_free(x509);
	EVP_PKEY_free(key);
}

static void write_file(const char *path, const char *text)
{
	FILE *file = fopen(path, "w");

	ck_assert_ptr_nonnull(file);
	fputs(text, file);
	fclose(file);
}

static struct postern_tls *server_tls(const char *cert, const char *key)
{
	struct postern_tls_settings set = POSTERN_TLS_SETTINGS_INIT;
	const char *error = NULL;
	struct postern_tls *tls;

	set.cert_file = cert;
	set.key_file = key;
	tls = postern_tls_server_new(&H.mod, &set, &error);
	ck_assert_msg(tls != NULL, "server TLS: %s", error);
	return tls;
}

static struct postern_tls *client_tls(const char *ca, bool verify)
{
	struct postern_tls_settings set = POSTERN_TLS_SETTINGS_INIT;
	const char *error = NULL;
	struct postern_tls *tls;

	set.ca_file = ca;
	set.verify_peer = verify;
	tls = postern_tls_client_new(&H.mod, &set, &error);
	ck_assert_msg(tls != NULL, "client TLS: %s", error);
	return tls;
}

static void tls_setup(void)
{
	const char *error;

	harness_setup();
	ck_assert_int_eq(tls_global_init(&H.core, &error), 0);
	snprintf(T.dir, sizeof(T.dir), "/tmp/postern-tls-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(T.dir));
	snprintf(T.cert, sizeof(T.cert), "%s/a.crt", T.dir);
	snprintf(T.key, sizeof(T.key), "%s/a.key", T.dir);
	snprintf(T.cert_b, sizeof(T.cert_b), "%s/b.crt", T.dir);
	snprintf(T.key_b, sizeof(T.key_b), "%s/b.key", T.dir);
	write_cert(T.cert, T.key, "A");
	write_cert(T.cert_b, T.key_b, "B");
	T.server = server_tls(T.cert, T.key);
	T.client = client_tls(T.cert, true);
}

static void tls_teardown(void)
{
	postern_tls_unref(&T.server);
	postern_tls_unref(&T.client);
	harness_teardown();
	unlink(T.cert);
	unlink(T.key);
	unlink(T.cert_b);
	unlink(T.key_b);
	rmdir(T.dir);
}

/* ---- A raw OpenSSL client, non-blocking, pumped with the loop ----------- */

struct raw_tls {
	SSL_CTX *ctx;
	SSL *ssl;
};

/* 1 on success, -1 when the handshake failed. */
static int raw_tls_connect(struct raw_tls *t, int fd)
{
	uint64_t deadline = postern_now_ms() + 3000;

	t->ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_NONE, NULL);
	t->ssl = SSL_new(t->ctx);
	SSL_set_fd(t->ssl, fd);
	SSL_set_connect_state(t->ssl);
	for (;;) {
		int ret = SSL_connect(t->ssl);

		if (ret == 1)
			return 1;

		int err = SSL_get_error(t->ssl, ret);

		if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
			ERR_clear_error();
			return -1;
		}
		ck_assert_msg(postern_now_ms() < deadline, "raw TLS handshake timed out");
		pump(5);
	}
}

static void raw_tls_write(struct raw_tls *t, const char *text)
{
	ck_assert_int_eq(SSL_write(t->ssl, text, (int)strlen(text)), (int)strlen(text));
}

/* Read until `expect` has arrived. */
static void raw_tls_expect(struct raw_tls *t, const char *expect)
{
	char buf[256];
	size_t len = 0;
	uint64_t deadline = postern_now_ms() + 3000;

	while (len < strlen(expect)) {
		int ret = SSL_read(t->ssl, buf + len, (int)(sizeof(buf) - 1 - len));

		if (ret > 0) {
			len += (size_t)ret;
			continue;
		}
		ck_assert_int_eq(SSL_get_error(t->ssl, ret), SSL_ERROR_WANT_READ);
		ck_assert_msg(postern_now_ms() < deadline, "raw TLS read timed out");
		pump(5);
	}
	buf[len] = '\0';
	ck_assert_str_eq(buf, expect);
}

static void raw_tls_peer_cn(struct raw_tls *t, char *cn, size_t size)
{
	X509 *peer = SSL_get1_peer_certificate(t->ssl);

	ck_assert_ptr_nonnull(peer);
	X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, (int)size);
	X509_free(peer);
}

static void raw_tls_free(struct raw_tls *t)
{
	SSL_free(t->ssl);
	SSL_CTX_free(t->ctx);
}

/* A TLS connection to the listener; returns the peer certificate's CN. */
static void raw_tls_probe(struct server *srv, char *cn, size_t size)
{
	struct client *c = client_new(postern_listener_address(srv->listener));
	struct raw_tls t;

	c->reading = false;
	ck_assert_int_eq(raw_tls_connect(&t, c->fd), 1);
	raw_tls_peer_cn(&t, cn, size);
	raw_tls_free(&t);
	client_free(c);
}

/* ---- Round trips -------------------------------------------------------- */

static void count_input(struct rec *r, enum postern_conn_event event)
{
	size_t len;

	if (event != POSTERN_CONN_INPUT)
		return;
	(void)postern_conn_input(r->conn, &len);
	*(size_t *)r->user += len;
	postern_conn_consume(r->conn, len);
}

static void echo_secure(struct rec *r, const struct postern_line *line)
{
	postern_conn_printf(r->conn, "echo %s\r\n", line->data);
}

START_TEST(test_implicit_tls_round_trip)
{
	struct server srv = { .n = 0, .on_line = echo_secure };
	struct postern_listen_settings set = POSTERN_LISTEN_SETTINGS_INIT;
	struct postern_connect_settings cset = POSTERN_CONNECT_SETTINGS_INIT;
	struct rec r = { .nevents = 0 };
	const char *error;

	set.tls = T.server;
	server_listen(&srv, &set);
	cset.address = postern_listener_address(srv.listener);
	cset.tls = T.client;
	cset.tls_server_name = "localhost";
	r.conn = postern_connect(&H.mod, &cset, rec_cb, &r, &error);
	ck_assert_ptr_nonnull(r.conn);
	WAIT_FOR(r.counts[POSTERN_CONN_OPEN] == 1 && srv.n == 1, 3000);

	struct postern_conn *server = srv.recs[0].conn;

	ck_assert(postern_conn_is_tls(r.conn));
	ck_assert(postern_conn_is_tls(server));
	ck_assert_ptr_nonnull(postern_conn_tls_description(server));
	ck_assert(strncmp(postern_conn_tls_description(server), "TLSv1.3 TLS_", 12) == 0);
	ck_assert_str_eq(postern_conn_tls_description(server), postern_conn_tls_description(r.conn));
	/* Already TLS: STARTTLS is refused. */
	ck_assert_int_eq(postern_conn_starttls(server, T.server, NULL, &error), -1);
	ck_assert_ptr_nonnull(strstr(error, "already"));

	postern_conn_write(r.conn, "hello\r\n", 7);
	WAIT_FOR(r.nlines == 1, 3000);
	assert_line(&r, 0, "echo hello", 10, POSTERN_LINE_CRLF);

	/* Big transfers through the TLS transport, both ways: a line far
	 * over the limit to the server, 1 MiB of bytes to the client. */
	size_t big = 1024 * 1024, total = 0;
	char *data = malloc(big);

	memset(data, 'q', big);
	srv.recs[0].on_line = NULL;
	postern_conn_write(r.conn, data, 300 * 1024);
	postern_conn_write(r.conn, "\r\nok\r\n", 6);
	WAIT_FOR(srv.recs[0].nlines == 3, 5000);
	ck_assert(srv.recs[0].lines[1].too_long);
	assert_line(&srv.recs[0], 2, "ok", 2, POSTERN_LINE_CRLF);
	r.no_read = true;
	r.on_event = count_input;
	r.user = &total;
	postern_conn_write(server, data, big);
	WAIT_FOR(total == big, 5000);
	free(data);

	postern_conn_close(r.conn, "done");
	WAIT_FOR(srv.recs[0].counts[POSTERN_CONN_CLOSED] == 1, 3000);
	ck_assert_uint_eq(srv.recs[0].counts[POSTERN_CONN_EOF], 1);
	ck_assert_uint_eq(conn_count(H.core.conns), 0);
}
END_TEST

/* The STARTTLS server side: "STARTTLS" gets the go-ahead and TLS. */
static void starttls_on_line(struct rec *r, const struct postern_line *line)
{
	const char *error;

	if (strcmp(line->data, "STARTTLS") == 0) {
		postern_conn_printf(r->conn, "220 go ahead\r\n");
		ck_assert_int_eq(postern_conn_starttls(r->conn, T.server, NULL, &error), 0);
		ck_assert_int_eq(postern_conn_starttls(r->conn, T.server, NULL, &error), -1);
		ck_assert(!postern_conn_is_tls(r->conn));
		/* The line just read stays valid until the next read, even
		 * though STARTTLS discarded all input after it. */
		ck_assert_str_eq(line->data, "STARTTLS");
		return;
	}
	postern_conn_printf(r->conn, "250 %s %s\r\n", postern_conn_is_tls(r->conn) ? "tls" : "plain",
			    line->data);
}

/* The STARTTLS client side. */
static void starttls_client_line(struct rec *r, const struct postern_line *line)
{
	const char *error;

	if (strcmp(line->data, "220 go ahead") == 0)
		ck_assert_int_eq(postern_conn_starttls(r->conn, T.client, "localhost", &error), 0);
}

static void starttls_client_event(struct rec *r, enum postern_conn_event event)
{
	if (event == POSTERN_CONN_OPEN)
		postern_conn_write(r->conn, "STARTTLS\r\n", 10);
	if (event == POSTERN_CONN_TLS_READY)
		postern_conn_write(r->conn, "HELLO\r\n", 7);
}

START_TEST(test_starttls_round_trip)
{
	struct server srv = { .n = 0, .on_line = starttls_on_line };
	struct postern_connect_settings cset = POSTERN_CONNECT_SETTINGS_INIT;
	struct rec r = { .on_line = starttls_client_line, .on_event = starttls_client_event };
	const char *error;

	server_listen(&srv, NULL);
	cset.address = postern_listener_address(srv.listener);
	r.conn = postern_connect(&H.mod, &cset, rec_cb, &r, &error);
	ck_assert_ptr_nonnull(r.conn);
	WAIT_FOR(r.nlines == 2, 3000);
	assert_line(&r, 0, "220 go ahead", 12, POSTERN_LINE_CRLF);
	assert_line(&r, 1, "250 tls HELLO", 13, POSTERN_LINE_CRLF);

	struct rec *s = &srv.recs[0];

	ck_assert_uint_eq(s->counts[POSTERN_CONN_TLS_READY], 1);
	ck_assert_uint_eq(r.counts[POSTERN_CONN_TLS_READY], 1);
	ck_assert_uint_eq(s->nlines, 2);
	ck_assert(postern_conn_is_tls(s->conn) && postern_conn_is_tls(r.conn));
	ck_assert_ptr_nonnull(postern_conn_tls_description(r.conn));
	postern_conn_close(s->conn, "done");
	WAIT_FOR(r.counts[POSTERN_CONN_CLOSED] == 1, 3000);
}
END_TEST

START_TEST(test_starttls_drops_pipelined_input)
{
	struct server srv = { .n = 0, .on_line = starttls_on_line };
	struct raw_tls t;

	server_listen(&srv, NULL);
	struct client *c = server_client(&srv);
	struct rec *s = &srv.recs[0];

	/* The classic injection: a command pipelined after STARTTLS in the
	 * same write. It must never reach the protocol. */
	client_send_str(c, "STARTTLS\r\nINJECTED\r\n");
	WAIT_FOR(c->len == 14, 3000);
	ck_assert_str_eq(c->buf, "220 go ahead\r\n");
	c->reading = false;
	ck_assert_int_eq(raw_tls_connect(&t, c->fd), 1);
	WAIT_FOR(s->counts[POSTERN_CONN_TLS_READY] == 1, 3000);
	raw_tls_write(&t, "HELLO\r\n");
	raw_tls_expect(&t, "250 tls HELLO\r\n");
	ck_assert_uint_eq(s->nlines, 2);
	assert_line(s, 0, "STARTTLS", 8, POSTERN_LINE_CRLF);
	assert_line(s, 1, "HELLO", 5, POSTERN_LINE_CRLF);
	raw_tls_free(&t);
	client_free(c);
}
END_TEST

static void pause_on_first_input(struct rec *r, enum postern_conn_event event)
{
	if (event == POSTERN_CONN_INPUT && r->counts[POSTERN_CONN_INPUT] == 1)
		postern_conn_pause_input(r->conn, true);
}

START_TEST(test_starttls_drops_input_in_socket)
{
	struct server srv = { .n = 0, .on_event = pause_on_first_input, .no_read = true };
	struct raw_tls t;

	server_listen(&srv, NULL);
	struct client *c = server_client(&srv);
	struct rec *s = &srv.recs[0];
	struct postern_line line;

	/* The module pauses before reading STARTTLS, so the injected line
	 * waits in the socket, not in our buffer... */
	client_send_str(c, "STARTTLS\r\n");
	WAIT_FOR(s->counts[POSTERN_CONN_INPUT] == 1, 3000);
	client_send_str(c, "INJECTED\r\n");
	pump_for(20);
	ck_assert_uint_eq(s->counts[POSTERN_CONN_INPUT], 1);
	/* ...and takes STARTTLS later, outside any callback. */
	ck_assert_int_eq(postern_conn_read_line(s->conn, &line), POSTERN_READ_LINE);
	s->no_read = false;
	s->on_event = NULL;
	s->on_line = starttls_on_line;
	starttls_on_line(s, &line);
	postern_conn_pause_input(s->conn, false);
	WAIT_FOR(c->len == 14, 3000);
	c->reading = false;
	ck_assert_int_eq(raw_tls_connect(&t, c->fd), 1);
	raw_tls_write(&t, "HELLO\r\n");
	raw_tls_expect(&t, "250 tls HELLO\r\n");
	ck_assert_uint_eq(s->nlines, 1);
	assert_line(s, 0, "HELLO", 5, POSTERN_LINE_CRLF);
	raw_tls_free(&t);
	client_free(c);
}
END_TEST

/* ---- Failures ----------------------------------------------------------- */

START_TEST(test_implicit_tls_handshake_failure)
{
	struct server srv = { .n = 0 };
	struct postern_listen_settings set = POSTERN_LISTEN_SETTINGS_INIT;

	set.tls = T.server;
	server_listen(&srv, &set);
	struct client *c = client_new(postern_listener_address(srv.listener));

	/* Plain text to a TLS port. */
	client_send_str(c, "EHLO plain.example\r\n");
	WAIT_FOR(c->eof, 3000);
	WAIT_FOR(conn_count(H.core.conns) == 0, 3000);
	/* The module never saw it. */
	ck_assert_uint_eq(srv.n, 0);
	client_free(c);
}
END_TEST

START_TEST(test_handshake_timeout)
{
	struct server srv = { .n = 0 };
	struct postern_listen_settings set = POSTERN_LISTEN_SETTINGS_INIT;

	set.tls = T.server;
	set.tls_handshake_timeout_ms = 100;
	server_listen(&srv, &set);
	uint64_t start = postern_now_ms();
	struct client *c = client_new(postern_listener_address(srv.listener));

	WAIT_FOR(c->eof, 3000);
	ck_assert_uint_ge(postern_now_ms() - start, 100);
	ck_assert_uint_eq(srv.n, 0);
	ck_assert_uint_eq(conn_count(H.core.conns), 0);
	client_free(c);
}
END_TEST

START_TEST(test_outgoing_verify_failure)
{
	struct server srv = { .n = 0 };
	struct postern_listen_settings set = POSTERN_LISTEN_SETTINGS_INIT;
	struct postern_connect_settings cset = POSTERN_CONNECT_SETTINGS_INIT;
	struct rec r = { .nevents = 0 };
	struct postern_tls *wrong_ca = client_tls(T.cert_b, true);
	const char *error;

	set.tls = T.server;
	server_listen(&srv, &set);
	cset.address = postern_listener_address(srv.listener);
	cset.tls = wrong_ca;
	cset.tls_server_name = "localhost";
	r.conn = postern_connect(&H.mod, &cset, rec_cb, &r, &error);
	/* The connection holds its own reference. */
	postern_tls_unref(&wrong_ca);
	WAIT_FOR(r.counts[POSTERN_CONN_CLOSED] == 1, 3000);
	ck_assert_uint_eq(r.counts[POSTERN_CONN_OPEN], 0);
	ck_assert_uint_eq(r.counts[POSTERN_CONN_ERROR], 1);
	ck_assert_msg(strstr(r.error, "certificate verify failed") != NULL, "%s", r.error);
	WAIT_FOR(conn_count(H.core.conns) == 0, 3000);
	ck_assert_uint_eq(srv.n, 0);

	/* The wrong name fails too, with the right CA. */
	struct rec r2 = { .nevents = 0 };

	cset.tls = T.client;
	cset.tls_server_name = "mail.example.org";
	r2.conn = postern_connect(&H.mod, &cset, rec_cb, &r2, &error);
	WAIT_FOR(r2.counts[POSTERN_CONN_CLOSED] == 1, 3000);
	ck_assert_uint_eq(r2.counts[POSTERN_CONN_ERROR], 1);
	ck_assert_uint_eq(r2.counts[POSTERN_CONN_OPEN], 0);
}
END_TEST

START_TEST(test_outgoing_tls_to_plain_server)
{
	struct postern_connect_settings cset = POSTERN_CONNECT_SETTINGS_INIT;
	struct server srv = { .n = 0 };
	struct rec r = { .nevents = 0 };
	const char *error;

	server_listen(&srv, NULL);
	cset.address = postern_listener_address(srv.listener);
	cset.tls = T.client;
	cset.timeout_ms = 2000;
	r.conn = postern_connect(&H.mod, &cset, rec_cb, &r, &error);
	WAIT_FOR(srv.n == 1, 3000);
	/* A plain server greets in clear text: not a ServerHello. */
	postern_conn_printf(srv.recs[0].conn, "220 plain.example ESMTP\r\n");
	WAIT_FOR(r.counts[POSTERN_CONN_CLOSED] == 1, 3000);
	ck_assert_uint_eq(r.counts[POSTERN_CONN_ERROR], 1);
	ck_assert_msg(strncmp(r.error, "TLS handshake", 13) == 0, "%s", r.error);
	WAIT_FOR(srv.recs[0].counts[POSTERN_CONN_CLOSED] == 1, 3000);
}
END_TEST

START_TEST(test_starttls_handshake_failure)
{
	struct server srv = { .n = 0, .on_line = starttls_on_line };

	server_listen(&srv, NULL);
	struct client *c = server_client(&srv);
	struct rec *s = &srv.recs[0];

	client_send_str(c, "STARTTLS\r\n");
	WAIT_FOR(c->len == 14, 3000);
	client_send_str(c, "this is not a ClientHello\r\n");
	WAIT_FOR(s->counts[POSTERN_CONN_CLOSED] == 1, 3000);
	ck_assert_uint_eq(s->counts[POSTERN_CONN_ERROR], 1);
	ck_assert_uint_eq(s->counts[POSTERN_CONN_TLS_READY], 0);
	ck_assert_msg(strncmp(s->error, "TLS handshake", 13) == 0, "%s", s->error);
	ck_assert_uint_eq(s->nlines, 1);
	ck_assert_uint_eq(conn_count(H.core.conns), 0);
	WAIT_FOR(c->eof, 3000);
	client_free(c);
}
END_TEST

/* ---- Contexts and reloads ----------------------------------------------- */

START_TEST(test_settings_errors)
{
	struct postern_tls_settings set = POSTERN_TLS_SETTINGS_INIT;
	const char *error = NULL;

	ck_assert_ptr_null(postern_tls_server_new(&H.mod, &set, &error));
	ck_assert_ptr_nonnull(error);
	set.cert_file = "/nonexistent/cert.pem";
	set.key_file = T.key;
	ck_assert_ptr_null(postern_tls_server_new(&H.mod, &set, &error));
	ck_assert_ptr_nonnull(strstr(error, "/nonexistent/cert.pem"));
	/* A key that does not belong to the certificate. */
	set.cert_file = T.cert;
	set.key_file = T.key_b;
	ck_assert_ptr_null(postern_tls_server_new(&H.mod, &set, &error));
	set.key_file = T.key;
	set.min_protocol = "SSLv3";
	ck_assert_ptr_null(postern_tls_server_new(&H.mod, &set, &error));
	set.min_protocol = "TLSv1.3";
	set.ciphers = "no-such-cipher";
	ck_assert_ptr_null(postern_tls_server_new(&H.mod, &set, &error));
	set.ciphers = NULL;

	struct postern_tls *tls = postern_tls_server_new(&H.mod, &set, &error);

	ck_assert_ptr_nonnull(tls);
	postern_tls_unref(&tls);
	ck_assert_ptr_null(tls);
	postern_tls_unref(&tls);
	set.struct_size = 0;
	ck_assert_ptr_null(postern_tls_server_new(&H.mod, &set, &error));
}
END_TEST

START_TEST(test_reload_all_or_nothing)
{
	struct server srv = { .n = 0, .on_line = echo_secure };
	struct postern_listen_settings set = POSTERN_LISTEN_SETTINGS_INIT;
	struct postern_tls *own = server_tls(T.cert, T.key);
	char cn[64];
	const char *error = NULL;
	struct raw_tls t;

	set.tls = own;
	server_listen(&srv, &set);
	/* The listener keeps the context alive without the module's ref. */
	postern_tls_unref(&own);
	raw_tls_probe(&srv, cn, sizeof(cn));
	ck_assert_str_eq(cn, "A");

	/* An open connection from before the reloads. */
	struct client *c = client_new(postern_listener_address(srv.listener));

	c->reading = false;
	ck_assert_int_eq(raw_tls_connect(&t, c->fd), 1);

	/* Break A's key: the reload fails and nothing changes. */
	write_file(T.key, "-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n");
	ck_assert_int_eq(tls_reload_all(&H.core, &error), -1);
	ck_assert_ptr_nonnull(error);
	raw_tls_probe(&srv, cn, sizeof(cn));
	ck_assert_str_eq(cn, "A");

	/* New files: the next connections get them. */
	write_cert(T.cert, T.key, "C");
	ck_assert_int_eq(tls_reload_all(&H.core, &error), 0);
	raw_tls_probe(&srv, cn, sizeof(cn));
	ck_assert_str_eq(cn, "C");

	/* The old connection still works with its old session. */
	raw_tls_write(&t, "still\r\n");
	raw_tls_expect(&t, "echo still\r\n");
	raw_tls_peer_cn(&t, cn, sizeof(cn));
	ck_assert_str_eq(cn, "A");
	raw_tls_free(&t);
	client_free(c);
}
END_TEST

START_TEST(test_release_module_contexts)
{
	struct postern_tls *a = server_tls(T.cert, T.key);
	struct server srv = { .n = 0 };
	struct postern_listen_settings set = POSTERN_LISTEN_SETTINGS_INIT;
	char cn[64];

	set.tls = a;
	server_listen(&srv, &set);
	/* The module goes: its references go, the listener's stays. */
	tls_release_module(&H.core, &H.mod);
	raw_tls_probe(&srv, cn, sizeof(cn));
	ck_assert_str_eq(cn, "A");
	/* T.server and T.client were the module's too. */
	T.server = T.client = NULL;
	conn_release_module(H.core.conns, &H.mod);
}
END_TEST

Suite *tls_suite(void)
{
	Suite *suite = suite_create("tls");
	TCase *tc = tcase_create("tls");

	tcase_add_checked_fixture(tc, tls_setup, tls_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_implicit_tls_round_trip);
	tcase_add_test(tc, test_starttls_round_trip);
	tcase_add_test(tc, test_starttls_drops_pipelined_input);
	tcase_add_test(tc, test_starttls_drops_input_in_socket);
	tcase_add_test(tc, test_implicit_tls_handshake_failure);
	tcase_add_test(tc, test_handshake_timeout);
	tcase_add_test(tc, test_outgoing_verify_failure);
	tcase_add_test(tc, test_outgoing_tls_to_plain_server);
	tcase_add_test(tc, test_starttls_handshake_failure);
	tcase_add_test(tc, test_settings_errors);
	tcase_add_test(tc, test_reload_all_or_nothing);
	tcase_add_test(tc, test_release_module_contexts);
	suite_add_tcase(suite, tc);
	return suite;
}
