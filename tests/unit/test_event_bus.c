/*
 * event_bus_suite: the bus against the contract in include/postern/bus.h:
 * dispatch order, type checks at subscribe, declare and publish, prefix
 * subscriptions, re-entrant publish and its depth limit, unsubscribing
 * during dispatch, and what release_module ends. Uses a test-local core
 * with two plain modules; nothing else of the core is started.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "suites.h"
#include "../../core/core.h"

static struct postern_core core;
static struct postern_mod mod_a, mod_b;
static char trace[2048];

static void setup(void)
{
	memset(&core, 0, sizeof(core));
	core.self = module_core_new(&core);
	core.bus = event_bus_new(&core);
	mod_a = (struct postern_mod){ .core = &core, .name = "alpha", .state = MOD_STARTED };
	mod_b = (struct postern_mod){ .core = &core, .name = "beta", .state = MOD_STARTED };
	trace[0] = '\0';
}

static void teardown(void)
{
	event_bus_free(&core.bus);
	module_free(&core.self);
	free(core.error_buf);
}

static void trace_add(const char *word)
{
	size_t used = strlen(trace);

	snprintf(trace + used, sizeof(trace) - used, "%s%s", used > 0 ? " " : "", word);
}

/* ctx: the word to record. */
static void on_record(const struct postern_event *event, void *ctx)
{
	trace_add(ctx);
}

static struct postern_subscription *sub_ok(struct postern_mod *mod, const char *topic,
					   const char *type, int priority,
					   postern_event_cb *cb, void *ctx)
{
	const char *error = NULL;
	struct postern_subscription *sub =
		postern_bus_subscribe(mod, topic, type, priority, cb, ctx, &error);

	ck_assert_msg(sub != NULL, "subscribe %s: %s", topic, error);
	return sub;
}

static void declare_ok(struct postern_mod *mod, const char *topic, const char *type)
{
	const char *error = NULL;

	ck_assert_msg(postern_bus_declare(mod, topic, type, &error) == 0, "declare %s: %s",
		      topic, error);
}

static void assert_contains(const char *text, const char *part)
{
	ck_assert_msg(text != NULL && strstr(text, part) != NULL, "'%s' lacks '%s'",
		      text != NULL ? text : "(null)", part);
}

/* ---- order -------------------------------------------------------------- */

START_TEST(test_priority_then_subscription_order)
{
	declare_ok(&mod_a, "t.order", "ev_t");
	sub_ok(&mod_a, "t.order", "ev_t", 0, on_record, "zero-1");
	sub_ok(&mod_b, "t.order", "ev_t", -5, on_record, "minus5");
	sub_ok(&mod_a, "t.order", "ev_t", POSTERN_BUS_PRIO_LAST, on_record, "last");
	sub_ok(&mod_b, "t.order", "ev_t", 0, on_record, "zero-2");
	sub_ok(&mod_b, "t.order", "ev_t", POSTERN_BUS_PRIO_FIRST, on_record, "first");
	sub_ok(&mod_a, "t.order", "ev_t", 0, on_record, "zero-3");

	ck_assert_int_eq(postern_bus_publish(&mod_a, "t.order", "ev_t", NULL), 6);
	ck_assert_str_eq(trace, "first minus5 zero-1 zero-2 zero-3 last");
}
END_TEST

START_TEST(test_subscribing_after_publish_updates_order)
{
	declare_ok(&mod_a, "t.cache", "ev_t");
	sub_ok(&mod_a, "t.cache", "ev_t", 0, on_record, "a");
	ck_assert_int_eq(postern_bus_publish(&mod_a, "t.cache", "ev_t", NULL), 1);
	sub_ok(&mod_b, "t.cache", "ev_t", -1, on_record, "b");
	trace[0] = '\0';
	ck_assert_int_eq(postern_bus_publish(&mod_a, "t.cache", "ev_t", NULL), 2);
	ck_assert_str_eq(trace, "b a");
	/* A prefix subscription changes the dispatch list of every topic
	 * it matches, not only of one. */
	sub_ok(&mod_b, "t.*", "ev_t", 1, on_record, "prefix");
	trace[0] = '\0';
	ck_assert_int_eq(postern_bus_publish(&mod_a, "t.cache", "ev_t", NULL), 3);
	ck_assert_str_eq(trace, "b a prefix");
}
END_TEST

START_TEST(test_publish_without_subscribers)
{
	declare_ok(&mod_a, "t.lonely", "ev_t");
	ck_assert_int_eq(postern_bus_publish(&mod_a, "t.lonely", "ev_t", NULL), 0);
	ck_assert_int_eq(postern_bus_publish(&mod_a, "t.lonely", "ev_t", NULL), 0);
}
END_TEST

struct seen {
	const char *topic;
	const char *type;
	const void *payload;
	const struct postern_mod *publisher;
	unsigned calls;
};

static void on_seen(const struct postern_event *event, void *ctx)
{
	struct seen *seen = ctx;

	seen->topic = event->topic;
	seen->type = event->payload_type;
	seen->payload = event->payload;
	seen->publisher = event->publisher;
	seen->calls++;
}

START_TEST(test_event_fields_and_core_publisher)
{
	struct seen seen = { 0 };
	int payload = 42;

	declare_ok(core.self, "core.test", "ev_core");
	declare_ok(&mod_a, "alpha.thing", "ev_alpha");
	sub_ok(&mod_b, "core.test", "ev_core", 0, on_seen, &seen);
	sub_ok(&mod_b, "alpha.thing", "ev_alpha", 0, on_seen, &seen);

	ck_assert_int_eq(postern_bus_publish(core.self, "core.test", "ev_core", &payload), 1);
	ck_assert_str_eq(seen.topic, "core.test");
	ck_assert_str_eq(seen.type, "ev_core");
	ck_assert_ptr_eq(seen.payload, &payload);
	ck_assert_ptr_null(seen.publisher);

	ck_assert_int_eq(postern_bus_publish(&mod_a, "alpha.thing", "ev_alpha", &payload), 1);
	ck_assert_str_eq(seen.topic, "alpha.thing");
	ck_assert_ptr_eq(seen.publisher, &mod_a);
	ck_assert_uint_eq(seen.calls, 2);
}
END_TEST

/* ---- types -------------------------------------------------------------- */

START_TEST(test_type_mismatch_at_subscribe)
{
	const char *error = NULL;

	declare_ok(&mod_a, "t.typed", "ev_a");
	ck_assert_ptr_null(postern_bus_subscribe(&mod_b, "t.typed", "ev_b", 0, on_record, "x",
						 &error));
	assert_contains(error, "t.typed");
	assert_contains(error, "'ev_b'");
	assert_contains(error, "'ev_a'");
	assert_contains(error, "alpha");

	error = NULL;
	ck_assert_ptr_null(postern_bus_subscribe(&mod_b, "t.*", "ev_b", 0, on_record, "x",
						 &error));
	assert_contains(error, "'t.*'");
	assert_contains(error, "t.typed");

	/* NULL takes any type; the right type is fine. */
	sub_ok(&mod_b, "t.typed", NULL, 0, on_record, "any");
	sub_ok(&mod_b, "t.typed", "ev_a", 0, on_record, "typed");
	sub_ok(&mod_b, "t.*", NULL, 0, on_record, "prefix-any");
	ck_assert_int_eq(postern_bus_publish(&mod_a, "t.typed", "ev_a", NULL), 3);
	ck_assert_str_eq(trace, "any typed prefix-any");
}
END_TEST

START_TEST(test_type_mismatch_at_declare)
{
	const char *error = NULL;

	/* Subscribing before anyone declares is fine... */
	sub_ok(&mod_b, "t.later", "ev_b", 0, on_record, "b");
	/* ...and the type is checked when the topic is declared. */
	ck_assert_int_eq(postern_bus_declare(&mod_a, "t.later", "ev_a", &error), -1);
	assert_contains(error, "t.later");
	assert_contains(error, "beta subscribed");
	assert_contains(error, "'ev_b'");
	ck_assert_int_eq(postern_bus_publish(&mod_a, "t.later", "ev_a", NULL), -1);
	ck_assert_str_eq(trace, "");

	declare_ok(&mod_a, "t.later", "ev_b");
	/* A second declarer must agree on the type. */
	declare_ok(&mod_b, "t.later", "ev_b");
	declare_ok(&mod_a, "t.later", "ev_b");
	error = NULL;
	ck_assert_int_eq(postern_bus_declare(&mod_b, "t.later", "ev_other", &error), -1);
	assert_contains(error, "alpha declared it with type 'ev_b'");
	ck_assert_int_eq(postern_bus_publish(&mod_a, "t.later", "ev_b", NULL), 1);

	/* Prefix subscriptions are checked against later topics too. */
	sub_ok(&mod_b, "u.*", "ev_u", 0, on_record, "u");
	error = NULL;
	ck_assert_int_eq(postern_bus_declare(&mod_a, "u.v", "ev_x", &error), -1);
	assert_contains(error, "'u.*'");
	declare_ok(&mod_a, "u.v", "ev_u");
	declare_ok(&mod_a, "uu.v", "ev_x"); /* "u.*" does not match "uu.v" */
}
END_TEST

START_TEST(test_type_mismatch_at_publish)
{
	declare_ok(&mod_a, "t.pub", "ev_a");
	sub_ok(&mod_b, "t.pub", NULL, 0, on_record, "b");
	sub_ok(&mod_b, "t.undeclared", NULL, 0, on_record, "u");

	ck_assert_int_eq(postern_bus_publish(&mod_a, "t.pub", "ev_b", NULL), -1);
	ck_assert_int_eq(postern_bus_publish(&mod_a, "t.pub", NULL, NULL), -1);
	ck_assert_int_eq(postern_bus_publish(&mod_a, "t.undeclared", "ev_a", NULL), -1);
	ck_assert_int_eq(postern_bus_publish(&mod_a, "t.nothing", "ev_a", NULL), -1);
	ck_assert_str_eq(trace, "");
	ck_assert_int_eq(postern_bus_publish(&mod_a, "t.pub", "ev_a", NULL), 1);
}
END_TEST

START_TEST(test_bad_names)
{
	static const char *const bad_topics[] = {
		"", ".a", "a.", "a..b", "a b", "a.*.b", "a*", "*.a", "a.**", "ü",
	};
	const char *error;

	for (size_t i = 0; i < sizeof(bad_topics) / sizeof(bad_topics[0]); i++) {
		error = NULL;
		ck_assert_msg(postern_bus_subscribe(&mod_a, bad_topics[i], NULL, 0, on_record,
						    "x", &error) == NULL, "%s", bad_topics[i]);
		ck_assert_ptr_nonnull(error);
		error = NULL;
		ck_assert_int_eq(postern_bus_declare(&mod_a, bad_topics[i], "ev", &error), -1);
		ck_assert_ptr_nonnull(error);
	}
	error = NULL;
	ck_assert_int_eq(postern_bus_declare(&mod_a, "a.*", "ev", &error), -1);
	ck_assert_int_eq(postern_bus_declare(&mod_a, "a.b", "bad type", &error), -1);
	ck_assert_int_eq(postern_bus_declare(&mod_a, "a.b", NULL, &error), -1);

	char long_topic[300];

	memset(long_topic, 'x', sizeof(long_topic) - 1);
	long_topic[sizeof(long_topic) - 1] = '\0';
	ck_assert_int_eq(postern_bus_declare(&mod_a, long_topic, "ev", &error), -1);
}
END_TEST

/* ---- prefixes ----------------------------------------------------------- */

START_TEST(test_prefix_subscriptions)
{
	declare_ok(&mod_a, "q.a", "ev");
	declare_ok(&mod_a, "q.b.c", "ev");
	declare_ok(&mod_a, "r.x", "ev");
	declare_ok(&mod_a, "qq.a", "ev");
	sub_ok(&mod_b, "q.*", NULL, 0, on_record, "q*");
	sub_ok(&mod_b, "*", "ev", 0, on_record, "all");
	sub_ok(&mod_b, "q.a", "ev", 0, on_record, "qa");
	sub_ok(&mod_b, "q.b.*", "ev", -1, on_record, "qb*");

	ck_assert_int_eq(postern_bus_publish(&mod_a, "q.a", "ev", NULL), 3);
	ck_assert_str_eq(trace, "q* all qa");
	trace[0] = '\0';
	ck_assert_int_eq(postern_bus_publish(&mod_a, "q.b.c", "ev", NULL), 3);
	ck_assert_str_eq(trace, "qb* q* all");
	trace[0] = '\0';
	ck_assert_int_eq(postern_bus_publish(&mod_a, "qq.a", "ev", NULL), 1);
	ck_assert_int_eq(postern_bus_publish(&mod_a, "r.x", "ev", NULL), 1);
	ck_assert_str_eq(trace, "all all");

	/* A topic declared after the prefix subscription is covered too. */
	declare_ok(&mod_b, "q.new", "ev");
	trace[0] = '\0';
	ck_assert_int_eq(postern_bus_publish(&mod_b, "q.new", "ev", NULL), 2);
	ck_assert_str_eq(trace, "q* all");
}
END_TEST

/* ---- re-entrant publish ------------------------------------------------- */

static void on_outer_first(const struct postern_event *event, void *ctx)
{
	trace_add("outer1-begin");
	ck_assert_int_eq(postern_bus_publish(&mod_b, "t.inner", "ev", NULL), 2);
	trace_add("outer1-end");
}

START_TEST(test_reentrant_publish_is_depth_first)
{
	declare_ok(&mod_a, "t.outer", "ev");
	declare_ok(&mod_b, "t.inner", "ev");
	sub_ok(&mod_a, "t.outer", "ev", 10, on_record, "outer2");
	sub_ok(&mod_a, "t.outer", "ev", 0, on_outer_first, NULL);
	sub_ok(&mod_b, "t.inner", "ev", 0, on_record, "inner1");
	sub_ok(&mod_b, "t.inner", "ev", 1, on_record, "inner2");

	ck_assert_int_eq(postern_bus_publish(&mod_a, "t.outer", "ev", NULL), 2);
	ck_assert_str_eq(trace, "outer1-begin inner1 inner2 outer1-end outer2");
}
END_TEST

struct deep {
	unsigned calls;
};

static void on_deep(const struct postern_event *event, void *ctx)
{
	struct deep *deep = ctx;

	deep->calls++;
	/* Bounded by the bus: the test fails rather than recursing forever
	 * if the limit is broken, because calls is checked below. */
	if (deep->calls <= 2 * POSTERN_BUS_MAX_DEPTH)
		(void)postern_bus_publish(&mod_a, "t.deep", "ev", NULL);
}

START_TEST(test_depth_limit)
{
	struct deep deep = { 0 };

	declare_ok(&mod_a, "t.deep", "ev");
	sub_ok(&mod_a, "t.deep", "ev", 0, on_deep, &deep);

	/* The outermost publish and POSTERN_BUS_MAX_DEPTH nested ones run;
	 * the next one is dropped. */
	ck_assert_int_eq(postern_bus_publish(&mod_a, "t.deep", "ev", NULL), 1);
	ck_assert_uint_eq(deep.calls, POSTERN_BUS_MAX_DEPTH + 1);

	/* The depth is back to zero afterwards. */
	deep = (struct deep){ 0 };
	ck_assert_int_eq(postern_bus_publish(&mod_a, "t.deep", "ev", NULL), 1);
	ck_assert_uint_eq(deep.calls, POSTERN_BUS_MAX_DEPTH + 1);
}
END_TEST

static void on_deep_ret(const struct postern_event *event, void *ctx)
{
	int *rets = ctx;
	unsigned level = 0;

	while (rets[level] != 0)
		level++;
	rets[level] = 99; /* placeholder while nested ones run */
	rets[level] = postern_bus_publish(&mod_a, "t.deep", "ev", NULL);
}

START_TEST(test_depth_limit_returns_error)
{
	int rets[POSTERN_BUS_MAX_DEPTH + 4] = { 0 };

	declare_ok(&mod_a, "t.deep", "ev");
	sub_ok(&mod_a, "t.deep", "ev", 0, on_deep_ret, rets);
	ck_assert_int_eq(postern_bus_publish(&mod_a, "t.deep", "ev", NULL), 1);
	/* Levels 0..MAX-1 published successfully; level MAX was refused. */
	for (unsigned i = 0; i < POSTERN_BUS_MAX_DEPTH; i++)
		ck_assert_int_eq(rets[i], 1);
	ck_assert_int_eq(rets[POSTERN_BUS_MAX_DEPTH], -1);
	ck_assert_int_eq(rets[POSTERN_BUS_MAX_DEPTH + 1], 0);
}
END_TEST

/* ---- unsubscribing during dispatch -------------------------------------- */

static struct postern_subscription *self_sub, *victim_sub, *late_sub;

static void on_unsubscribe_self(const struct postern_event *event, void *ctx)
{
	trace_add("self");
	postern_bus_unsubscribe(&self_sub);
	ck_assert_ptr_null(self_sub);
	/* Harmless twice. */
	postern_bus_unsubscribe(&self_sub);
}

START_TEST(test_unsubscribe_self_during_dispatch)
{
	declare_ok(&mod_a, "t.self", "ev");
	sub_ok(&mod_a, "t.self", "ev", 0, on_record, "before");
	self_sub = sub_ok(&mod_a, "t.self", "ev", 0, on_unsubscribe_self, NULL);
	sub_ok(&mod_a, "t.self", "ev", 0, on_record, "after");

	ck_assert_int_eq(postern_bus_publish(&mod_a, "t.self", "ev", NULL), 3);
	ck_assert_int_eq(postern_bus_publish(&mod_a, "t.self", "ev", NULL), 2);
	ck_assert_str_eq(trace, "before self after before after");
}
END_TEST

static void on_unsubscribe_victim(const struct postern_event *event, void *ctx)
{
	trace_add("killer");
	postern_bus_unsubscribe(&victim_sub);
	/* Subscribed during dispatch: not called for this event. */
	if (late_sub == NULL)
		late_sub = sub_ok(&mod_b, "t.victim", "ev", 50, on_record, "late");
}

START_TEST(test_unsubscribe_later_handler_during_dispatch)
{
	declare_ok(&mod_a, "t.victim", "ev");
	sub_ok(&mod_a, "t.victim", "ev", 0, on_unsubscribe_victim, NULL);
	victim_sub = sub_ok(&mod_b, "t.victim", "ev", 10, on_record, "victim");
	sub_ok(&mod_b, "t.victim", "ev", 100, on_record, "last");

	ck_assert_int_eq(postern_bus_publish(&mod_a, "t.victim", "ev", NULL), 2);
	ck_assert_str_eq(trace, "killer last");
	trace[0] = '\0';
	ck_assert_int_eq(postern_bus_publish(&mod_a, "t.victim", "ev", NULL), 3);
	ck_assert_str_eq(trace, "killer late last");
}
END_TEST

static void on_inner_kills_outer(const struct postern_event *event, void *ctx)
{
	trace_add("inner");
	postern_bus_unsubscribe(&victim_sub);
}

static void on_outer_publishes(const struct postern_event *event, void *ctx)
{
	trace_add("outer");
	postern_bus_publish(&mod_a, "t.in", "ev", NULL);
}

START_TEST(test_unsubscribe_from_nested_dispatch)
{
	/* The inner handler ends a subscription of the outer topic that the
	 * outer dispatch has yet to reach; it must be skipped, not freed
	 * under the outer loop (ASan checks the latter). */
	declare_ok(&mod_a, "t.out", "ev");
	declare_ok(&mod_a, "t.in", "ev");
	sub_ok(&mod_a, "t.out", "ev", 0, on_outer_publishes, NULL);
	victim_sub = sub_ok(&mod_b, "t.out", "ev", 1, on_record, "victim");
	sub_ok(&mod_b, "t.out", "ev", 2, on_record, "tail");
	sub_ok(&mod_b, "t.in", "ev", 0, on_inner_kills_outer, NULL);

	ck_assert_int_eq(postern_bus_publish(&mod_a, "t.out", "ev", NULL), 2);
	ck_assert_str_eq(trace, "outer inner tail");
}
END_TEST

START_TEST(test_unsubscribe_outside_dispatch)
{
	struct postern_subscription *sub, *prefix;

	declare_ok(&mod_a, "t.x", "ev");
	sub = sub_ok(&mod_b, "t.x", "ev", 0, on_record, "exact");
	prefix = sub_ok(&mod_b, "t.*", "ev", 0, on_record, "prefix");
	ck_assert_int_eq(postern_bus_publish(&mod_a, "t.x", "ev", NULL), 2);
	postern_bus_unsubscribe(&sub);
	ck_assert_ptr_null(sub);
	ck_assert_int_eq(postern_bus_publish(&mod_a, "t.x", "ev", NULL), 1);
	postern_bus_unsubscribe(&prefix);
	ck_assert_int_eq(postern_bus_publish(&mod_a, "t.x", "ev", NULL), 0);
	postern_bus_unsubscribe(&prefix); /* NULL is fine */

	/* An ended subscription no longer constrains the topic's type. */
	sub = sub_ok(&mod_b, "t.gone", "ev_1", 0, on_record, "g");
	postern_bus_unsubscribe(&sub);
	declare_ok(&mod_a, "t.gone", "ev_2");
}
END_TEST

/* ---- release_module ----------------------------------------------------- */

START_TEST(test_release_module_ends_subscriptions)
{
	declare_ok(&mod_a, "a.only", "ev");
	declare_ok(&mod_a, "a.shared", "ev");
	declare_ok(&mod_b, "a.shared", "ev");
	sub_ok(&mod_a, "a.shared", "ev", 0, on_record, "a-exact");
	sub_ok(&mod_a, "a.*", "ev", 0, on_record, "a-prefix");
	sub_ok(&mod_b, "a.shared", "ev", 0, on_record, "b");

	ck_assert_int_eq(postern_bus_publish(&mod_b, "a.shared", "ev", NULL), 3);
	event_bus_release_module(core.bus, &mod_a);
	trace[0] = '\0';
	ck_assert_int_eq(postern_bus_publish(&mod_b, "a.shared", "ev", NULL), 1);
	ck_assert_str_eq(trace, "b");
	/* Its declarations end too: a topic only it declared is gone. */
	ck_assert_int_eq(postern_bus_publish(&mod_b, "a.only", "ev", NULL), -1);
	/* ...and may be declared again, even with another type. */
	declare_ok(&mod_b, "a.only", "ev_new");
	ck_assert_int_eq(postern_bus_publish(&mod_b, "a.only", "ev_new", NULL), 0);
}
END_TEST

static void on_release_self(const struct postern_event *event, void *ctx)
{
	trace_add("releaser");
	event_bus_release_module(core.bus, &mod_a);
}

START_TEST(test_release_module_during_dispatch)
{
	declare_ok(&mod_a, "t.rel", "ev");
	sub_ok(&mod_a, "t.rel", "ev", 0, on_release_self, NULL);
	sub_ok(&mod_a, "t.rel", "ev", 1, on_record, "a-later");
	sub_ok(&mod_b, "t.rel", "ev", 2, on_record, "b-later");

	ck_assert_int_eq(postern_bus_publish(&mod_a, "t.rel", "ev", NULL), 2);
	ck_assert_str_eq(trace, "releaser b-later");
	/* mod_a was the only declarer. */
	ck_assert_int_eq(postern_bus_publish(&mod_b, "t.rel", "ev", NULL), -1);
}
END_TEST

/* ---- scale and describe ------------------------------------------------- */

START_TEST(test_many_topics)
{
	char topic[64];
	unsigned count = 0;

	for (unsigned i = 0; i < 500; i++) {
		snprintf(topic, sizeof(topic), "many.t%u", i);
		declare_ok(&mod_a, topic, "ev");
		sub_ok(&mod_b, topic, "ev", (int)(i % 7), on_record, "");
	}
	for (unsigned i = 0; i < 500; i++) {
		snprintf(topic, sizeof(topic), "many.t%u", i);
		int ret = postern_bus_publish(&mod_a, topic, "ev", NULL);

		ck_assert_int_eq(ret, 1);
		count += (unsigned)ret;
	}
	ck_assert_uint_eq(count, 500);
}
END_TEST

START_TEST(test_describe)
{
	struct postern_str *out = postern_str_new();
	struct postern_json *json = postern_json_new(out);

	declare_ok(&mod_a, "d.one", "ev_d");
	declare_ok(&mod_b, "d.one", "ev_d");
	sub_ok(&mod_b, "d.one", "ev_d", 5, on_record, "");
	sub_ok(&mod_a, "d.*", NULL, -5, on_record, "");
	sub_ok(&mod_b, "d.none", NULL, 0, on_record, "");

	event_bus_describe(core.bus, json, NULL);
	postern_json_free(&json);
	ck_assert_str_eq(postern_str_data(out),
			 "{\"topics\":["
			 "{\"topic\":\"d.none\",\"type\":null,\"declared_by\":[],\"subscribers\":["
			 "{\"module\":\"alpha\",\"priority\":-5,\"pattern\":\"d.*\",\"type\":null},"
			 "{\"module\":\"beta\",\"priority\":0,\"pattern\":\"d.none\",\"type\":null}]},"
			 "{\"topic\":\"d.one\",\"type\":\"ev_d\",\"declared_by\":[\"alpha\",\"beta\"],"
			 "\"subscribers\":["
			 "{\"module\":\"alpha\",\"priority\":-5,\"pattern\":\"d.*\",\"type\":null},"
			 "{\"module\":\"beta\",\"priority\":5,\"pattern\":\"d.one\",\"type\":\"ev_d\"}]}],"
			 "\"prefix_subscriptions\":["
			 "{\"module\":\"alpha\",\"priority\":-5,\"pattern\":\"d.*\",\"type\":null}]}");

	postern_str_truncate(out, 0);
	event_bus_describe(core.bus, NULL, out);
	assert_contains(postern_str_data(out), "d.one  type ev_d  declared by alpha, beta\n"
					       "       -5 alpha (via d.*)\n"
					       "        5 beta\n");
	assert_contains(postern_str_data(out), "d.none  type (undeclared)  declared by nobody\n");
	assert_contains(postern_str_data(out), "prefix subscriptions:\n");
	postern_str_free(&out);
}
END_TEST

Suite *event_bus_suite(void)
{
	Suite *suite = suite_create("event_bus");
	TCase *tc = tcase_create("bus");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_priority_then_subscription_order);
	tcase_add_test(tc, test_subscribing_after_publish_updates_order);
	tcase_add_test(tc, test_publish_without_subscribers);
	tcase_add_test(tc, test_event_fields_and_core_publisher);
	tcase_add_test(tc, test_type_mismatch_at_subscribe);
	tcase_add_test(tc, test_type_mismatch_at_declare);
	tcase_add_test(tc, test_type_mismatch_at_publish);
	tcase_add_test(tc, test_bad_names);
	tcase_add_test(tc, test_prefix_subscriptions);
	tcase_add_test(tc, test_reentrant_publish_is_depth_first);
	tcase_add_test(tc, test_depth_limit);
	tcase_add_test(tc, test_depth_limit_returns_error);
	tcase_add_test(tc, test_unsubscribe_self_during_dispatch);
	tcase_add_test(tc, test_unsubscribe_later_handler_during_dispatch);
	tcase_add_test(tc, test_unsubscribe_from_nested_dispatch);
	tcase_add_test(tc, test_unsubscribe_outside_dispatch);
	tcase_add_test(tc, test_release_module_ends_subscriptions);
	tcase_add_test(tc, test_release_module_during_dispatch);
	tcase_add_test(tc, test_many_topics);
	tcase_add_test(tc, test_describe);
	suite_add_tcase(suite, tc);
	return suite;
}
