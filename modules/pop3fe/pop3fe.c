/*
 * pop3fe: the POP3 front-end proxy. It accepts POP3 clients (plain with
 * STLS, and implicit TLS), answers the commands before login itself,
 * authenticates the user, finds the user's back-end, logs in there, and
 * then relays bytes both ways without looking at them.
 *
 * Almost all of that is the proxy library's (lib/proxy, shared with
 * imap4fe); this module is the POP3 descriptor below plus the commands
 * before login (client.c) and the back-end login dialogue (backend.c).
 * Settings, events and the `backends` control command are the library's:
 * see modules/pop3fe/README.md.
 */
#include "config.h"

#include "pop3fe.h"

static const struct postern_proxy_protocol pop3fe_protocol = {
	.struct_size = sizeof(struct postern_proxy_protocol),
	.name = "pop3",
	.session_data_size = sizeof(struct pop3fe_session),
	.max_line = POP3FE_MAX_LINE,
	.health_quit = "QUIT\r\n",
	.limit_reply = "-ERR [SYS/TEMP] Too many connections, try again later.",
	.client_greet = pop3fe_client_greet,
	.client_line = pop3fe_client_line,
	.client_line_too_long = pop3fe_client_line_too_long,
	.client_tls_ready = pop3fe_client_tls_ready,
	.client_reply = pop3fe_client_reply,
	.backend_greeting_ok = pop3fe_backend_greeting_ok,
	.backend_open = pop3fe_backend_open,
	.backend_line = pop3fe_backend_line,
	.response_done = pop3fe_response_done,
};

static int pop3fe_check_config(struct postern_mod *mod, const struct postern_cfg *cfg,
			       const char **error_r)
{
	return postern_proxy_check_config(mod, cfg, error_r);
}

static int pop3fe_init(struct postern_mod *mod, const struct postern_cfg *cfg,
		       const char **error_r)
{
	struct postern_proxy *proxy;

	if (postern_proxy_new(mod, cfg, &pop3fe_protocol, &proxy, error_r) < 0)
		return -1;
	postern_mod_set_data(mod, proxy);
	return 0;
}

static int pop3fe_start(struct postern_mod *mod, const char **error_r)
{
	return postern_proxy_start(postern_mod_data(mod), error_r);
}

static int pop3fe_reload(struct postern_mod *mod, const struct postern_cfg *cfg,
			 const char **error_r)
{
	return postern_proxy_reload(postern_mod_data(mod), cfg, error_r);
}

static void pop3fe_stop(struct postern_mod *mod)
{
	postern_proxy_stop(postern_mod_data(mod));
}

static void pop3fe_deinit(struct postern_mod *mod)
{
	struct postern_proxy *proxy = postern_mod_data(mod);

	postern_proxy_free(&proxy);
	postern_mod_set_data(mod, NULL);
}

POSTERN_MODULE_DEFINE(
	.name = "pop3fe",
	.version = PACKAGE_VERSION,
	.check_config = pop3fe_check_config,
	.init = pop3fe_init,
	.start = pop3fe_start,
	.reload = pop3fe_reload,
	.stop = pop3fe_stop,
	.deinit = pop3fe_deinit,
);
