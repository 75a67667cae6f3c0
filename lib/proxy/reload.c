/*
 * Reload: a new configuration takes effect without dropping a session.
 *
 * A new directory is built from the new back-end list. A back-end that is
 * still there (same name, address and TLS) keeps its health state, and
 * every leg on it moves to its new object along with its session count;
 * the candidates of logins under way are mapped the same way (those left
 * out are simply not tried). A leg whose back-end was removed or changed
 * stays on its old object: that directory is kept, as "retired", until the
 * last such leg is freed, and its back-ends are no longer judged (no
 * passive marking, no events). Health checks start over for the new list.
 *
 * Listeners, their TLS and limits, and the authentication settings need a
 * restart; a change to them is logged and the running values are kept.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "proxy_private.h"

/* What a reload leaves alone: listeners, their TLS and limits, and the
 * user database with its password checker (threads under way use them). */
static const char *const restart_only[] = {
	"listen", "tls_listen", "cert_file", "key_file", "max_connections", "max_per_ip",
	"login_idle_timeout", "passwd_file", "passwd_file_*", "allow_plain_passwords", "auth_*",
	NULL,
};

/* The same back-end in another directory: same name, address and TLS. */
static struct postern_backend *counterpart(struct postern_directory *dir,
					   const struct postern_backend *be)
{
	struct postern_backend *other = postern_directory_find(dir, postern_backend_name(be));

	if (other == NULL || strcmp(postern_backend_address(other), postern_backend_address(be)) != 0 ||
	    postern_backend_tls(other) != postern_backend_tls(be))
		return NULL;
	return other;
}

static void carry_health(struct postern_directory *from, struct postern_directory *to)
{
	for (unsigned i = 0; i < postern_directory_count(to); i++) {
		struct postern_backend *be = postern_directory_backend(to, i);
		const struct postern_backend *old = counterpart(from, be);

		if (old != NULL && !postern_backend_is_up(old)) {
			const char *error = postern_backend_last_error(old);

			(void)postern_backend_mark_down(be, error != NULL ? error : "down");
		}
	}
}

/* Move the legs on the current directory to `to`; returns the retired
 * entry for the old directory when some legs could not move, else NULL. */
static struct proxy_retired *move_legs(struct postern_proxy *proxy, struct postern_directory *to)
{
	struct proxy_retired *retired = NULL;

	for (struct proxy_leg *leg = proxy->legs; leg != NULL; leg = leg->next) {
		struct postern_backend *be;

		if (leg->retired != NULL)
			continue;
		be = counterpart(to, leg->backend);
		if (be != NULL) {
			if (leg->counted) {
				postern_backend_session_end(leg->backend);
				postern_backend_session_begin(be);
			}
			leg->backend = be;
			continue;
		}
		if (retired == NULL) {
			retired = calloc(1, sizeof(*retired));
			if (retired == NULL)
				abort();
		}
		leg->retired = retired;
		retired->legs++;
	}
	return retired;
}

/* Logins under way: their remaining candidates, in the new directory. */
static void move_routes(struct postern_proxy *proxy, struct postern_directory *to)
{
	for (struct postern_proxy_session *s = proxy->sessions; s != NULL; s = s->next) {
		unsigned kept = 0;

		for (unsigned i = s->route_pos; i < s->route_count; i++) {
			struct postern_backend *be = counterpart(to, s->route[i]);

			if (be != NULL)
				s->route[kept++] = be;
		}
		s->route_pos = 0;
		s->route_count = kept;
	}
}

int postern_proxy_reload(struct postern_proxy *proxy, const struct postern_cfg *cfg,
			 const char **error_r)
{
	struct proxy_settings next;
	struct postern_directory *dir;
	struct postern_tls *backend_tls;
	struct proxy_retired *retired;
	char **sni;

	if (proxy_settings_parse(proxy->mod, cfg, &next, error_r) < 0)
		return -1;
	if (proxy_directory_build(proxy, &next, &dir, &sni, error_r) < 0) {
		proxy_settings_free(&next);
		return -1;
	}
	if (proxy_backend_tls_open(proxy, dir, &next, &backend_tls, error_r) < 0) {
		proxy_directory_free(&dir, &sni);
		proxy_settings_free(&next);
		return -1;
	}
	/* Nothing can fail from here on. */
	(void)postern_cfg_keep_running(proxy->mod, proxy_setting_defs, restart_only, &next,
				       &proxy->set);
	proxy_health_free(proxy);
	/* Without checks nothing would bring a down back-end back up. */
	if (next.health_check_interval != 0)
		carry_health(proxy->dir, dir);
	retired = move_legs(proxy, dir);
	move_routes(proxy, dir);
	if (retired != NULL) {
		retired->dir = proxy->dir;
		retired->sni = proxy->backend_sni;
		retired->next = proxy->retired;
		proxy->retired = retired;
	} else {
		proxy_directory_free(&proxy->dir, &proxy->backend_sni);
	}
	proxy->dir = dir;
	proxy->backend_sni = sni;
	postern_tls_unref(&proxy->backend_tls);  /* connections hold their own reference */
	proxy->backend_tls = backend_tls;
	proxy_settings_free(&proxy->set);
	proxy->set = next;
	proxy_settings_apply(proxy);
	/* Cannot fail: it only allocates. */
	(void)proxy_health_init(proxy, error_r);
	if (proxy->started)
		proxy_health_start(proxy);
	postern_log(proxy->mod, POSTERN_LOG_NOTICE, "reload: %u back-ends%s",
		    postern_directory_count(dir),
		    retired != NULL ? "; sessions on removed ones go on until they end" : "");
	return 0;
}

bool proxy_backend_current(const struct postern_proxy *proxy, const struct postern_backend *be)
{
	return postern_directory_find(proxy->dir, postern_backend_name(be)) == be;
}

static void retired_free(struct proxy_retired *retired)
{
	proxy_directory_free(&retired->dir, &retired->sni);
	free(retired);
}

void proxy_retired_leg_gone(struct postern_proxy *proxy, struct proxy_leg *leg)
{
	struct proxy_retired *retired = leg->retired, **link;

	if (retired == NULL || --retired->legs > 0)
		return;
	postern_log(proxy->mod, POSTERN_LOG_INFO,
		    "reload: the last session on a removed back-end ended");
	for (link = &proxy->retired; *link != NULL; link = &(*link)->next) {
		if (*link == retired) {
			*link = retired->next;
			break;
		}
	}
	retired_free(retired);
}

void proxy_retired_free_all(struct postern_proxy *proxy)
{
	while (proxy->retired != NULL) {
		struct proxy_retired *retired = proxy->retired;

		proxy->retired = retired->next;
		retired_free(retired);
	}
}
