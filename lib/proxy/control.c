/*
 * `posternctl backends [--json]`: every back-end of every proxy in the
 * process (pop3fe and imap4fe share the command: the first proxy to start
 * registers it, the listing walks all of them), with its state, sessions
 * and last error.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "proxy_private.h"

/* Every proxy of the process; the library is loaded once per process. */
static struct postern_proxy *proxy_list;
static struct postern_mod *command_owner;

static void control_backend_json(struct postern_proxy *proxy, struct postern_backend *be,
				 struct postern_json *json, uint64_t now)
{
	const char *error = postern_backend_last_error(be);

	postern_json_object_begin(json);
	postern_json_key(json, "module");
	postern_json_string(json, postern_mod_name(proxy->mod));
	postern_json_key(json, "name");
	postern_json_string(json, postern_backend_name(be));
	postern_json_key(json, "address");
	postern_json_string(json, postern_backend_address(be));
	postern_json_key(json, "pool");
	postern_json_string(json, postern_backend_pool(be));
	postern_json_key(json, "tls");
	postern_json_bool(json, postern_backend_tls(be));
	postern_json_key(json, "state");
	postern_json_string(json, postern_backend_is_up(be) ? "up" : "down");
	postern_json_key(json, "sessions");
	postern_json_uint(json, postern_backend_sessions(be));
	postern_json_key(json, "max_sessions");
	postern_json_uint(json, postern_backend_max_sessions(be));
	postern_json_key(json, "total_sessions");
	postern_json_uint(json, postern_backend_total_sessions(be));
	postern_json_key(json, "down_count");
	postern_json_uint(json, postern_backend_down_count(be));
	postern_json_key(json, "since_ms");
	postern_json_uint(json, now - postern_backend_last_change_ms(be));
	postern_json_key(json, "last_error");
	if (error != NULL)
		postern_json_string(json, error);
	else
		postern_json_null(json);
	postern_json_object_end(json);
}

static void control_backend_text(struct postern_proxy *proxy, struct postern_backend *be,
				 struct postern_str *out, uint64_t now)
{
	const char *error = postern_backend_last_error(be);

	postern_str_printf(out, "%s %s %s pool=%s %s sessions=%u", postern_mod_name(proxy->mod),
			   postern_backend_name(be), postern_backend_address(be),
			   postern_backend_pool(be), postern_backend_is_up(be) ? "up" : "down",
			   postern_backend_sessions(be));
	if (postern_backend_max_sessions(be) != 0)
		postern_str_printf(out, "/%u", postern_backend_max_sessions(be));
	postern_str_printf(out, " total=%llu since=%llus",
			   (unsigned long long)postern_backend_total_sessions(be),
			   (unsigned long long)((now - postern_backend_last_change_ms(be)) / 1000));
	if (postern_backend_tls(be))
		postern_str_append_cstr(out, " tls");
	if (error != NULL) {
		postern_str_append_cstr(out, " last_error=");
		postern_json_escape(out, error, strlen(error));
	}
	postern_str_append_cstr(out, "\n");
}

static int control_backends(struct postern_control_req *req, int argc, const char *const *argv,
			    void *ctx)
{
	struct postern_str *out = postern_control_output(req);
	struct postern_json *json = NULL;
	uint64_t now = postern_now_ms();

	if (argc != 1)
		return postern_control_fail(req, "usage: backends [--json]");
	if (postern_control_json(req)) {
		json = postern_json_new(out);
		postern_json_array_begin(json);
	}
	for (struct postern_proxy *proxy = proxy_list; proxy != NULL; proxy = proxy->next) {
		for (unsigned i = 0; i < postern_directory_count(proxy->dir); i++) {
			struct postern_backend *be = postern_directory_backend(proxy->dir, i);

			if (json != NULL)
				control_backend_json(proxy, be, json, now);
			else
				control_backend_text(proxy, be, out, now);
		}
	}
	if (json != NULL) {
		postern_json_array_end(json);
		postern_json_free(&json);
	}
	return 0;
}

int proxy_control_register(struct postern_proxy *proxy, const char **error_r)
{
	if (command_owner == NULL) {
		if (postern_control_register(proxy->mod, "backends",
					     "backends [--json]: back-ends of the proxies with "
					     "state, sessions and last error",
					     control_backends, NULL, error_r) < 0)
			return -1;
		command_owner = proxy->mod;
	}
	proxy->next = proxy_list;
	proxy_list = proxy;
	return 0;
}

void proxy_control_unregister(struct postern_proxy *proxy)
{
	for (struct postern_proxy **p = &proxy_list; *p != NULL; p = &(*p)->next) {
		if (*p == proxy) {
			*p = proxy->next;
			break;
		}
	}
	/* The core drops the command with its owner module, right after
	 * the owner's deinit; a later proxy may take it again. */
	if (command_owner == proxy->mod)
		command_owner = NULL;
}
