/*
 * pop3fe_events: a test-only module that subscribes to the proxies'
 * backend.down and backend.up events and logs each with its payload, so
 * that the integration tests can check what was published (and that the
 * payload type matches the declaration). Not installed.
 *
 *   pop3fe_events: event backend.down module=pop3fe name=be1 address=...
 *       pool=default up=0 sessions=0 error=connection refused
 */
#include <postern/postern.h>
#include <postern/proxy.h>

static void pop3fe_events_on_backend(const struct postern_event *event, void *ctx)
{
	const struct postern_ev_backend *ev = event->payload;
	struct postern_mod *mod = ctx;

	if (ev->struct_size < sizeof(*ev))
		return;
	postern_log(mod, POSTERN_LOG_NOTICE,
		    "event %s module=%s name=%s address=%s pool=%s up=%d sessions=%u error=%s",
		    event->topic, ev->module, ev->name, ev->address, ev->pool, ev->up ? 1 : 0,
		    ev->sessions, ev->error != NULL ? ev->error : "-");
}

static int pop3fe_events_init(struct postern_mod *mod, const struct postern_cfg *cfg,
			      const char **error_r)
{
	if (postern_bus_subscribe(mod, POSTERN_TOPIC_BACKEND_DOWN, POSTERN_EV_BACKEND_TYPE,
				  POSTERN_BUS_PRIO_DEFAULT, pop3fe_events_on_backend, mod,
				  error_r) == NULL ||
	    postern_bus_subscribe(mod, POSTERN_TOPIC_BACKEND_UP, POSTERN_EV_BACKEND_TYPE,
				  POSTERN_BUS_PRIO_DEFAULT, pop3fe_events_on_backend, mod,
				  error_r) == NULL)
		return -1;
	return 0;
}

POSTERN_MODULE_DEFINE(
	.name = "pop3fe_events",
	.version = "1.0",
	.init = pop3fe_events_init,
);
