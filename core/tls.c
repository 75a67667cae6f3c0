/*
 * TLS with OpenSSL 3: settings objects (SSL_CTX wrappers that can be
 * re-read on SIGHUP) and the TLS transport that conn.c swaps in under a
 * connection. This is the only file that includes OpenSSL headers; modules
 * and the rest of the core see struct postern_tls as an opaque handle.
 *
 * A context is refcounted: the module that created it holds one reference,
 * and every listener or connection using it holds another, so a module can
 * drop its context while connections still run on it. A reload builds a new
 * SSL_CTX for every context first and swaps them only if all succeeded;
 * SSL objects of open connections keep the SSL_CTX they were made from.
 *
 * OpenSSL writes to sockets with write(2), so the process must ignore
 * SIGPIPE (the daemon does) for a peer that vanished mid-write.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include "conn_private.h"

struct postern_tls {
	struct postern_core *core;
	const struct postern_mod *mod;  /* creator; NULL once released */
	unsigned refcount;
	bool mod_ref;                   /* the creator still holds its reference */
	bool server;

	char *cert_file, *key_file, *ca_file, *min_protocol, *ciphers;
	bool verify_peer;

	SSL_CTX *ctx;
	struct postern_tls *prev, *next; /* every context of the core */
};

struct conn_tls {
	SSL *ssl;
	bool failed;         /* fatal error: no close_notify may follow */
	bool established;
};

/* "what: the first OpenSSL error" for *error_r (see core_error()). */
static const char *tls_error(struct postern_core *core, const char *what)
{
	unsigned long err = ERR_get_error();
	char reason[256];
	const char *msg;

	if (err == 0) {
		msg = core_error(core, "%s", what);
	} else {
		ERR_error_string_n(err, reason, sizeof(reason));
		msg = core_error(core, "%s: %s", what, reason);
	}
	ERR_clear_error();
	return msg;
}

int tls_global_init(struct postern_core *core, const char **error_r)
{
	if (OPENSSL_init_ssl(0, NULL) != 1) {
		*error_r = tls_error(core, "OpenSSL initialisation failed");
		return -1;
	}
	return 0;
}

/* ---- Contexts ----------------------------------------------------------- */

static int tls_min_version(const char *name, int *version_r)
{
	if (name == NULL || strcmp(name, "TLSv1.2") == 0)
		*version_r = TLS1_2_VERSION;
	else if (strcmp(name, "TLSv1.3") == 0)
		*version_r = TLS1_3_VERSION;
	else
		return -1;
	return 0;
}

static int tls_ctx_load_files(const struct postern_tls *tls, SSL_CTX *ctx, const char **error_r)
{
	char what[300];

	if (tls->cert_file != NULL &&
	    SSL_CTX_use_certificate_chain_file(ctx, tls->cert_file) != 1) {
		snprintf(what, sizeof(what), "TLS: certificate %s", tls->cert_file);
		*error_r = tls_error(tls->core, what);
		return -1;
	}
	if (tls->key_file != NULL &&
	    SSL_CTX_use_PrivateKey_file(ctx, tls->key_file, SSL_FILETYPE_PEM) != 1) {
		snprintf(what, sizeof(what), "TLS: key %s", tls->key_file);
		*error_r = tls_error(tls->core, what);
		return -1;
	}
	if (tls->cert_file != NULL && tls->key_file != NULL && SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(what, sizeof(what), "TLS: key %s does not match certificate %s",
			 tls->key_file, tls->cert_file);
		*error_r = tls_error(tls->core, what);
		return -1;
	}
	if (!tls->server) {
		int ret = tls->ca_file != NULL ?
				  SSL_CTX_load_verify_locations(ctx, tls->ca_file, NULL) :
				  SSL_CTX_set_default_verify_paths(ctx);

		if (ret != 1) {
			snprintf(what, sizeof(what), "TLS: CA file %s",
				 tls->ca_file != NULL ? tls->ca_file : "(system)");
			*error_r = tls_error(tls->core, what);
			return -1;
		}
	}
	return 0;
}

/* A fresh SSL_CTX from the context's settings and files. */
static SSL_CTX *tls_ctx_build(const struct postern_tls *tls, const char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(tls->server ? TLS_server_method() : TLS_client_method());
	int version;

	if (ctx == NULL) {
		*error_r = tls_error(tls->core, "TLS: SSL_CTX_new");
		return NULL;
	}
	(void)tls_min_version(tls->min_protocol, &version);
	/* Mail clients close without close_notify all the time: that is an
	 * EOF, not an error. Renegotiation is a DoS lever we do not need. */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_NO_COMPRESSION |
					 (tls->server ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
	/* Our output buffer moves and is sent in pieces; idle connections
	 * should not keep 2 x 16 KiB of record buffers. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_set_min_proto_version(ctx, version) != 1 ||
	    (tls->ciphers != NULL && SSL_CTX_set_cipher_list(ctx, tls->ciphers) != 1)) {
		*error_r = tls_error(tls->core, "TLS: protocol or cipher settings");
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (tls->server) {
		static const unsigned char sid_ctx[] = "postern";

		SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	} else {
		SSL_CTX_set_verify(ctx, tls->verify_peer ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	}
	if (tls_ctx_load_files(tls, ctx, error_r) < 0) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static char *tls_strdup(const char *str)
{
	return str != NULL ? xstrdup(str) : NULL;
}

static void tls_free(struct postern_tls *tls)
{
	if (tls->prev != NULL)
		tls->prev->next = tls->next;
	else
		tls->core->tls_contexts = tls->next;
	if (tls->next != NULL)
		tls->next->prev = tls->prev;
	SSL_CTX_free(tls->ctx);
	free(tls->cert_file);
	free(tls->key_file);
	free(tls->ca_file);
	free(tls->min_protocol);
	free(tls->ciphers);
	free(tls);
}

static struct postern_tls *tls_new(struct postern_mod *mod, bool server,
				   const struct postern_tls_settings *settings,
				   const char **error_r)
{
	struct postern_tls_settings set;
	int version;

	if (conn_copy_settings(&set, sizeof(set), settings, error_r) < 0)
		return NULL;
	if (server && (set.cert_file == NULL || set.key_file == NULL)) {
		*error_r = "TLS: a server needs cert_file and key_file";
		return NULL;
	}
	if (tls_min_version(set.min_protocol, &version) < 0) {
		*error_r = "TLS: min_protocol must be TLSv1.2 or TLSv1.3";
		return NULL;
	}

	struct postern_tls *tls = xcalloc(1, sizeof(*tls));

	tls->core = mod->core;
	tls->mod = mod;
	tls->refcount = 1;
	tls->mod_ref = true;
	tls->server = server;
	tls->cert_file = tls_strdup(set.cert_file);
	tls->key_file = tls_strdup(set.key_file);
	tls->ca_file = tls_strdup(set.ca_file);
	tls->min_protocol = tls_strdup(set.min_protocol);
	tls->ciphers = tls_strdup(set.ciphers);
	tls->verify_peer = set.verify_peer;
	tls->ctx = tls_ctx_build(tls, error_r);

	tls->next = mod->core->tls_contexts;
	if (tls->next != NULL)
		tls->next->prev = tls;
	mod->core->tls_contexts = tls;
	if (tls->ctx == NULL) {
		tls_free(tls);
		return NULL;
	}
	return tls;
}

struct postern_tls *postern_tls_server_new(struct postern_mod *mod,
					   const struct postern_tls_settings *settings,
					   const char **error_r)
{
	return tls_new(mod, true, settings, error_r);
}

struct postern_tls *postern_tls_client_new(struct postern_mod *mod,
					   const struct postern_tls_settings *settings,
					   const char **error_r)
{
	return tls_new(mod, false, settings, error_r);
}

struct postern_tls *tls_ref(struct postern_tls *tls)
{
	assert(tls->refcount > 0);
	tls->refcount++;
	return tls;
}

void tls_unref(struct postern_tls **tlsp)
{
	struct postern_tls *tls = *tlsp;

	if (tls == NULL)
		return;
	*tlsp = NULL;
	assert(tls->refcount > 0);
	if (--tls->refcount == 0)
		tls_free(tls);
}

void postern_tls_unref(struct postern_tls **tlsp)
{
	if (tlsp == NULL || *tlsp == NULL)
		return;
	(*tlsp)->mod_ref = false;
	tls_unref(tlsp);
}

void tls_release_module(struct postern_core *core, const struct postern_mod *mod)
{
	struct postern_tls *tls = core->tls_contexts;

	while (tls != NULL) {
		/* Unref may free this one, never the next. */
		struct postern_tls *next = tls->next;

		if (tls->mod == mod) {
			tls->mod = NULL;
			if (tls->mod_ref) {
				tls->mod_ref = false;
				tls_unref(&tls);
			}
		}
		tls = next;
	}
}

int tls_reload_all(struct postern_core *core, const char **error_r)
{
	unsigned count = 0, i = 0;
	struct postern_tls *tls;

	for (tls = core->tls_contexts; tls != NULL; tls = tls->next)
		count++;
	if (count == 0)
		return 0;

	SSL_CTX **fresh = xcalloc(count, sizeof(*fresh));

	for (tls = core->tls_contexts; tls != NULL; tls = tls->next) {
		fresh[i] = tls_ctx_build(tls, error_r);
		if (fresh[i] == NULL) {
			while (i > 0)
				SSL_CTX_free(fresh[--i]);
			free(fresh);
			return -1;
		}
		i++;
	}
	i = 0;
	for (tls = core->tls_contexts; tls != NULL; tls = tls->next) {
		SSL_CTX_free(tls->ctx);
		tls->ctx = fresh[i++];
	}
	free(fresh);
	return 0;
}

/* ---- Connections -------------------------------------------------------- */

/* The name to ask for (SNI) and to verify the certificate against. RFC 6066
 * forbids an IP address in SNI, so a literal address is only verified,
 * against the certificate's IP addresses. */
static int tls_set_peer_name(SSL *ssl, const char *name, bool verify)
{
	unsigned char addr[16];
	bool literal = inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1;

	if (!literal && SSL_set_tlsext_host_name(ssl, name) != 1)
		return -1;
	if (!verify)
		return 0;
	if (literal)
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1 ? 0 : -1;
	return SSL_set1_host(ssl, name) == 1 ? 0 : -1;
}

int tls_conn_new(struct postern_conn *conn, struct postern_tls *tls, const char *server_name,
		 const char **error_r)
{
	SSL *ssl = SSL_new(tls->ctx);

	assert(conn->tls == NULL && conn->fd >= 0);
	if (ssl == NULL || SSL_set_fd(ssl, conn->fd) != 1) {
		*error_r = tls_error(conn->reg->core, "TLS: SSL_new");
		SSL_free(ssl);
		return -1;
	}
	if (conn->outgoing) {
		SSL_set_connect_state(ssl);
		if (server_name != NULL &&
		    tls_set_peer_name(ssl, server_name, tls->verify_peer) < 0) {
			*error_r = tls_error(conn->reg->core, "TLS: server name");
			SSL_free(ssl);
			return -1;
		}
	} else {
		SSL_set_accept_state(ssl);
	}

	struct conn_tls *ctls = xcalloc(1, sizeof(*ctls));

	ctls->ssl = ssl;
	conn->tls = ctls;
	return 0;
}

/* Set conn->error from a failed SSL call. */
static void tls_conn_error(struct postern_conn *conn, const char *what, int ssl_error)
{
	struct conn_tls *ctls = conn->tls;
	char buf[512];

	ctls->failed = true;
	if (ssl_error == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
		snprintf(buf, sizeof(buf), "%s: %s", what,
			 errno != 0 ? conn_errno_text(errno) : "connection closed by peer");
		conn_set_error(conn, buf);
		return;
	}
	if (ssl_error == SSL_ERROR_ZERO_RETURN) {
		snprintf(buf, sizeof(buf), "%s: connection closed by peer", what);
		conn_set_error(conn, buf);
		return;
	}

	long verify = SSL_get_verify_result(ctls->ssl);

	if (!ctls->established && verify != X509_V_OK) {
		snprintf(buf, sizeof(buf), "%s: certificate verify failed: %s", what,
			 X509_verify_cert_error_string(verify));
		ERR_clear_error();
		conn_set_error(conn, buf);
		return;
	}
	conn_set_error(conn, tls_error(conn->reg->core, what));
}

int tls_conn_handshake(struct postern_conn *conn)
{
	struct conn_tls *ctls = conn->tls;
	int ret, err;

	ERR_clear_error();
	errno = 0;
	ret = SSL_do_handshake(ctls->ssl);
	if (ret == 1) {
		ctls->established = true;
		free(conn->tls_description);
		conn->tls_description =
			xasprintf("%s %s", SSL_get_version(ctls->ssl),
				  SSL_CIPHER_get_name(SSL_get_current_cipher(ctls->ssl)));
		conn->transport = &conn_tls_transport;
		return 1;
	}
	err = SSL_get_error(ctls->ssl, ret);
	switch (err) {
	case SSL_ERROR_WANT_READ:
		conn->hs_want_write = false;
		return 0;
	case SSL_ERROR_WANT_WRITE:
		conn->hs_want_write = true;
		return 0;
	default:
		tls_conn_error(conn, "TLS handshake", err);
		return -1;
	}
}

void tls_conn_close_notify(struct postern_conn *conn)
{
	struct conn_tls *ctls = conn->tls;

	if (ctls == NULL || !ctls->established || ctls->failed)
		return;
	ERR_clear_error();
	(void)SSL_shutdown(ctls->ssl);
	ERR_clear_error();
}

void tls_conn_free(struct postern_conn *conn, bool notify)
{
	struct conn_tls *ctls = conn->tls;

	if (ctls == NULL)
		return;
	conn->tls = NULL;
	if (notify && ctls->established && !ctls->failed) {
		/* One non-blocking attempt at close_notify; we do not wait
		 * for the peer's. */
		ERR_clear_error();
		(void)SSL_shutdown(ctls->ssl);
	}
	ERR_clear_error();
	SSL_free(ctls->ssl);
	free(ctls);
}

static int tls_len(size_t len)
{
	return len > INT_MAX ? INT_MAX : (int)len;
}

static ssize_t tls_read(struct postern_conn *conn, void *buf, size_t len)
{
	struct conn_tls *ctls = conn->tls;
	int ret, err;

	ERR_clear_error();
	errno = 0;
	ret = SSL_read(ctls->ssl, buf, tls_len(len));
	if (ret > 0) {
		conn->tls_read_wants_write = false;
		return ret;
	}
	err = SSL_get_error(ctls->ssl, ret);
	switch (err) {
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_WANT_READ:
		conn->tls_read_wants_write = false;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		conn->tls_read_wants_write = true;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0 && errno == 0)
			return 0;
		/* fall through */
	default:
		tls_conn_error(conn, "TLS read", err);
		errno = EIO;
		return -1;
	}
}

static ssize_t tls_write(struct postern_conn *conn, const void *data, size_t len)
{
	struct conn_tls *ctls = conn->tls;
	int ret, err;

	ERR_clear_error();
	errno = 0;
	ret = SSL_write(ctls->ssl, data, tls_len(len));
	if (ret > 0) {
		conn->tls_write_wants_read = false;
		return ret;
	}
	err = SSL_get_error(ctls->ssl, ret);
	switch (err) {
	case SSL_ERROR_WANT_WRITE:
		conn->tls_write_wants_read = false;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_READ:
		conn->tls_write_wants_read = true;
		errno = EAGAIN;
		return -1;
	default:
		tls_conn_error(conn, "TLS write", err);
		errno = EIO;
		return -1;
	}
}

static bool tls_pending(const struct postern_conn *conn)
{
	/* Records already pulled from the socket: epoll will not report
	 * them again. */
	return conn->tls != NULL && SSL_pending(conn->tls->ssl) > 0;
}

const struct conn_transport conn_tls_transport = {
	.name = "tls",
	.read = tls_read,
	.write = tls_write,
	.pending = tls_pending,
};
