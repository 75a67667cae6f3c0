/*
 * TLS settings objects. Protocol code never sees OpenSSL: it creates a
 * postern_tls from files, hands it to a listener, an outgoing connection or
 * postern_conn_starttls(), and the core runs TLS as a transport under the
 * connection. The core re-reads the files on SIGHUP; connections opened after
 * that use the new certificate, open ones keep theirs.
 */
#ifndef POSTERN_TLS_H
#define POSTERN_TLS_H

#include <postern/common.h>

struct postern_tls;

struct postern_tls_settings {
	uint32_t struct_size;  /* sizeof(struct postern_tls_settings) */
	const char *cert_file; /* PEM chain; required for servers */
	const char *key_file;  /* PEM key; required for servers */
	const char *ca_file;   /* clients: CAs to verify the peer with; NULL for system CAs */
	bool verify_peer;      /* clients: fail the handshake on an unverified peer */
	const char *min_protocol; /* "TLSv1.2" (default) or "TLSv1.3" */
	const char *ciphers;      /* OpenSSL cipher list for TLS <= 1.2; NULL for defaults */
};

#define POSTERN_TLS_SETTINGS_INIT { .struct_size = sizeof(struct postern_tls_settings) }

/* A server-side context. NULL with *error_r set when the files are unusable. */
POSTERN_API struct postern_tls *postern_tls_server_new(struct postern_mod *mod,
						       const struct postern_tls_settings *settings,
						       const char **error_r);
/* A client-side context for outgoing connections. */
POSTERN_API struct postern_tls *postern_tls_client_new(struct postern_mod *mod,
						       const struct postern_tls_settings *settings,
						       const char **error_r);
/* Release the module's reference; connections still using it keep it alive. */
POSTERN_API void postern_tls_unref(struct postern_tls **tls);

#endif
