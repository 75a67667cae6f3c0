/*
 * The core's own topics on the event bus and their payloads. All are
 * notifications published by the core (event->publisher is NULL).
 */
#ifndef POSTERN_EVENTS_H
#define POSTERN_EVENTS_H

#include <postern/common.h>

/* "core.conn.opened", "core.conn.closed": payload struct postern_ev_conn. */
#define POSTERN_TOPIC_CONN_OPENED "core.conn.opened"
#define POSTERN_TOPIC_CONN_CLOSED "core.conn.closed"
#define POSTERN_EV_CONN_TYPE "postern_ev_conn"

struct postern_ev_conn {
	uint32_t struct_size;
	uint64_t conn_id;
	const char *module;  /* owner module */
	const char *peer;    /* "ip:port" */
	const char *local;   /* "ip:port" */
	bool outgoing;
	const char *reason;  /* closed: why ("peer closed", "idle timeout", ...) */
	uint64_t duration_ms; /* closed: age of the connection */
};

/* "core.module.started", "core.module.stopped": struct postern_ev_module. */
#define POSTERN_TOPIC_MODULE_STARTED "core.module.started"
#define POSTERN_TOPIC_MODULE_STOPPED "core.module.stopped"
#define POSTERN_EV_MODULE_TYPE "postern_ev_module"

struct postern_ev_module {
	uint32_t struct_size;
	const char *name;
	const char *version;
};

/* "core.config.reloaded": struct postern_ev_reload, after every module
 * accepted the new configuration. */
#define POSTERN_TOPIC_CONFIG_RELOADED "core.config.reloaded"
#define POSTERN_EV_RELOAD_TYPE "postern_ev_reload"

struct postern_ev_reload {
	uint32_t struct_size;
	unsigned generation; /* 1 at start, +1 for each accepted reload */
	const char *config_file;
};

#endif
