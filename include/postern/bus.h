/*
 * The event bus: publish/subscribe between modules.
 *
 * A topic is a dotted name ("core.conn.opened", "queue.delivered") with one
 * payload type, named by a string ("postern_ev_conn") that stands for a
 * struct in a public header. Publishers declare their topics; subscribers
 * name the type they expect, and the bus refuses a subscription or a publish
 * whose type does not match, so a handler can cast the payload safely.
 * Payload structs begin with a uint32_t struct_size and only grow at the end,
 * so older subscribers keep working.
 *
 * Events are notifications: handlers return nothing and cannot veto or
 * answer. A module that needs an answer publishes a request event carrying
 * its own reply callback, or calls another module's documented API.
 *
 * Dispatch is synchronous, in priority order (lower first; equal priorities
 * in subscription order), during the publish call. Publishing from inside a
 * handler is allowed and dispatches the inner event at once, depth first,
 * up to POSTERN_BUS_MAX_DEPTH nested publishes (deeper ones are dropped and
 * logged). Unsubscribing, even a handler's own subscription, is safe during
 * dispatch: a removed handler is not called again. Payload pointers are
 * valid only during the handler call.
 *
 * A module's subscriptions and declarations end when it is unloaded, right
 * after its deinit hook (not at stop: it still sees the connections that
 * close during graceful shutdown). `posternctl bus` shows every
 * topic with its subscribers in dispatch order.
 */
#ifndef POSTERN_BUS_H
#define POSTERN_BUS_H

#include <postern/common.h>

#define POSTERN_BUS_MAX_DEPTH 8

/* Conventional priorities. */
#define POSTERN_BUS_PRIO_FIRST (-100)
#define POSTERN_BUS_PRIO_DEFAULT 0
#define POSTERN_BUS_PRIO_LAST 100

struct postern_subscription;

struct postern_event {
	const char *topic;
	const char *payload_type;
	const void *payload;
	struct postern_mod *publisher; /* NULL for events of the core */
};

typedef void postern_event_cb(const struct postern_event *event, void *ctx);

/*
 * Declare a topic this module publishes. Declaring a topic another module
 * declared with the same type is allowed; with another type it is an error.
 */
POSTERN_API int postern_bus_declare(struct postern_mod *mod, const char *topic,
				    const char *payload_type, const char **error_r);

/*
 * Subscribe to `topic`, or to every topic under a prefix with "queue.*".
 * `payload_type` must match the topic's declared type (NULL accepts any
 * type: check event->payload_type yourself). Subscribing to a topic nobody
 * declared yet is fine: the type is checked when it is declared.
 */
POSTERN_API struct postern_subscription *
postern_bus_subscribe(struct postern_mod *mod, const char *topic, const char *payload_type,
		      int priority, postern_event_cb *cb, void *ctx, const char **error_r);
/* *sub becomes NULL; NULL is fine. */
POSTERN_API void postern_bus_unsubscribe(struct postern_subscription **sub);

/*
 * Deliver `payload` to every subscriber now. The topic must be declared
 * with this type. Returns the number of handlers called, or -1 (undeclared
 * topic, wrong type, too deep) after logging why.
 */
POSTERN_API int postern_bus_publish(struct postern_mod *mod, const char *topic,
				    const char *payload_type, const void *payload);

#endif
