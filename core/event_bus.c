/*
 * The event bus: typed topics, subscriptions and synchronous dispatch
 * (the contract is in include/postern/bus.h).
 *
 * Topics live in a hash table, because publish sits on hot paths (every
 * connection open and close). Each topic caches its dispatch list: the
 * live subscriptions that match it, exact and prefix alike, sorted by
 * priority and then subscription order. The list is rebuilt lazily on the
 * first publish after a change, so a steady-state publish allocates
 * nothing.
 *
 * Dispatch safety rests on two rules. A dispatch list is never modified:
 * a change drops the topic's cached list and a publish in progress keeps
 * its own reference to the old one. A subscription is never freed while a
 * dispatch is running: unsubscribing marks it dead (so it is skipped from
 * then on) and the dead are freed when the outermost publish returns.
 *
 * This file is not the place for delivery guarantees, queues or threads:
 * events are synchronous notifications, nothing more.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

/* Limits on names, so that a bad caller cannot make us hash or print
 * unbounded strings. */
#define BUS_TOPIC_MAX 128
#define BUS_TYPE_MAX 64
#define BUS_INITIAL_BUCKETS 64u

struct dispatch_list {
	/* One reference from the topic's cache, one per publish using it. */
	unsigned refs;
	unsigned count;
	struct postern_subscription *subs[];
};

struct topic {
	char *name;
	uint32_t hash;
	char *payload_type;             /* NULL while nobody declares it */
	struct postern_mod **declarers; /* in declaration order */
	unsigned declarer_count;
	unsigned exact_subs;            /* live exact subscriptions */
	struct dispatch_list *list;     /* cached; NULL when stale */
	struct topic *next;             /* hash chain */
};

struct postern_subscription {
	struct event_bus *bus;
	struct postern_mod *mod;
	char *pattern;          /* as given: "queue.delivered", "queue.*", "*" */
	size_t prefix_len;      /* prefix subscriptions: bytes before the '*' */
	bool is_prefix;
	char *payload_type;     /* NULL accepts any type */
	int priority;
	uint64_t seq;           /* subscription order, for equal priorities */
	postern_event_cb *cb;
	void *ctx;
	struct topic *topic;    /* exact subscriptions only */
	bool dead;
	struct postern_subscription *prev, *next; /* bus->subs, in seq order */
};

struct event_bus {
	struct postern_core *core;
	struct topic **buckets;
	unsigned bucket_count; /* a power of two */
	unsigned topic_count;
	struct postern_subscription *subs_head, *subs_tail;
	uint64_t next_seq;
	unsigned depth;        /* publishes in progress */
	bool have_dead;        /* subscriptions to free after dispatch */
	bool check_topics;     /* topics may have become empty during dispatch */
};

/* ---- errors ------------------------------------------------------------- */

static const char *mod_label(const struct postern_mod *mod)
{
	return mod != NULL && mod->name != NULL ? mod->name : "core";
}

/* ---- names -------------------------------------------------------------- */

static bool topic_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* A topic is dot-separated non-empty words of [A-Za-z0-9_-]. */
static bool topic_name_valid(const char *name, size_t len)
{
	if (len == 0 || len > BUS_TOPIC_MAX || name[0] == '.' || name[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (name[i] == '.') {
			if (name[i + 1] == '.')
				return false;
		} else if (!topic_char_ok(name[i])) {
			return false;
		}
	}
	return true;
}

static bool type_name_valid(const char *type)
{
	size_t len = strlen(type);

	if (len == 0 || len > BUS_TYPE_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = type[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

/* Parse a subscription pattern: a topic, "prefix.*" or "*". */
static int pattern_parse(const char *pattern, bool *is_prefix_r, size_t *prefix_len_r)
{
	size_t len = strnlen(pattern, BUS_TOPIC_MAX + 3);

	if (len > 0 && pattern[len - 1] == '*') {
		*is_prefix_r = true;
		*prefix_len_r = len - 1;
		if (len == 1)
			return 0;
		if (pattern[len - 2] != '.')
			return -1;
		return topic_name_valid(pattern, len - 2) ? 0 : -1;
	}
	*is_prefix_r = false;
	*prefix_len_r = 0;
	return topic_name_valid(pattern, len) ? 0 : -1;
}

static bool sub_matches(const struct postern_subscription *sub, const struct topic *topic)
{
	if (!sub->is_prefix)
		return sub->topic == topic;
	return strncmp(topic->name, sub->pattern, sub->prefix_len) == 0;
}

/* ---- topics ------------------------------------------------------------- */

static uint32_t topic_hash(const char *name)
{
	uint32_t hash = 2166136261u; /* FNV-1a */

	for (; *name != '\0'; name++) {
		hash ^= (unsigned char)*name;
		hash *= 16777619u;
	}
	return hash;
}

static struct topic *topic_find(const struct event_bus *bus, const char *name)
{
	uint32_t hash = topic_hash(name);
	struct topic *topic = bus->buckets[hash & (bus->bucket_count - 1)];

	for (; topic != NULL; topic = topic->next) {
		if (topic->hash == hash && strcmp(topic->name, name) == 0)
			return topic;
	}
	return NULL;
}

static void buckets_grow(struct event_bus *bus)
{
	unsigned new_count = bus->bucket_count * 2;
	struct topic **buckets = xcalloc(new_count, sizeof(*buckets));

	for (unsigned i = 0; i < bus->bucket_count; i++) {
		struct topic *topic = bus->buckets[i], *next;

		for (; topic != NULL; topic = next) {
			next = topic->next;
			topic->next = buckets[topic->hash & (new_count - 1)];
			buckets[topic->hash & (new_count - 1)] = topic;
		}
	}
	free(bus->buckets);
	bus->buckets = buckets;
	bus->bucket_count = new_count;
}

static struct topic *topic_get(struct event_bus *bus, const char *name)
{
	struct topic *topic = topic_find(bus, name);

	if (topic != NULL)
		return topic;
	if (bus->topic_count >= bus->bucket_count)
		buckets_grow(bus);
	topic = xcalloc(1, sizeof(*topic));
	topic->name = xstrdup(name);
	topic->hash = topic_hash(name);
	topic->next = bus->buckets[topic->hash & (bus->bucket_count - 1)];
	bus->buckets[topic->hash & (bus->bucket_count - 1)] = topic;
	bus->topic_count++;
	return topic;
}

static void list_unref(struct dispatch_list **list)
{
	if (*list == NULL)
		return;
	assert((*list)->refs > 0);
	if (--(*list)->refs == 0)
		free(*list);
	*list = NULL;
}

static void topic_invalidate(struct topic *topic)
{
	list_unref(&topic->list);
}

/* Prefix subscriptions can match any number of topics: drop every cache
 * they touch. */
static void topics_invalidate_matching(struct event_bus *bus,
				       const struct postern_subscription *sub)
{
	for (unsigned i = 0; i < bus->bucket_count; i++) {
		for (struct topic *topic = bus->buckets[i]; topic != NULL; topic = topic->next) {
			if (sub_matches(sub, topic))
				topic_invalidate(topic);
		}
	}
}

static void topic_free(struct topic *topic)
{
	topic_invalidate(topic);
	free(topic->declarers);
	free(topic->payload_type);
	free(topic->name);
	free(topic);
}

/* Unlink and free a topic nobody declares or subscribes to by name. Only
 * outside dispatch: a publish in progress points at its topic. */
static void topic_remove_if_unused(struct event_bus *bus, struct topic *topic)
{
	assert(bus->depth == 0);
	if (topic->declarer_count > 0 || topic->exact_subs > 0)
		return;

	struct topic **pos = &bus->buckets[topic->hash & (bus->bucket_count - 1)];

	while (*pos != topic)
		pos = &(*pos)->next;
	*pos = topic->next;
	bus->topic_count--;
	topic_free(topic);
}

static int sub_cmp(const void *p1, const void *p2)
{
	const struct postern_subscription *s1 = *(const struct postern_subscription *const *)p1;
	const struct postern_subscription *s2 = *(const struct postern_subscription *const *)p2;

	if (s1->priority != s2->priority)
		return s1->priority < s2->priority ? -1 : 1;
	return s1->seq < s2->seq ? -1 : (s1->seq > s2->seq ? 1 : 0);
}

/* The live subscriptions matching `topic`, in dispatch order. */
static struct dispatch_list *list_build(const struct event_bus *bus, const struct topic *topic)
{
	unsigned count = 0;
	const struct postern_subscription *sub;

	for (sub = bus->subs_head; sub != NULL; sub = sub->next) {
		if (!sub->dead && sub_matches(sub, topic))
			count++;
	}

	struct dispatch_list *list = xmalloc(sizeof(*list) + count * sizeof(list->subs[0]));

	list->refs = 1;
	list->count = 0;
	for (struct postern_subscription *s = bus->subs_head; s != NULL; s = s->next) {
		if (!s->dead && sub_matches(s, topic))
			list->subs[list->count++] = s;
	}
	assert(list->count == count);
	qsort(list->subs, list->count, sizeof(list->subs[0]), sub_cmp);
	return list;
}

/* ---- subscriptions ------------------------------------------------------ */

static void sub_free(struct postern_subscription *sub)
{
	struct event_bus *bus = sub->bus;

	if (sub->prev != NULL)
		sub->prev->next = sub->next;
	else
		bus->subs_head = sub->next;
	if (sub->next != NULL)
		sub->next->prev = sub->prev;
	else
		bus->subs_tail = sub->prev;
	free(sub->pattern);
	free(sub->payload_type);
	free(sub);
}

/* Free the dead subscriptions and the topics left unused; only when no
 * dispatch is running. */
static void bus_collect(struct event_bus *bus)
{
	struct postern_subscription *sub, *next;

	assert(bus->depth == 0);
	if (bus->have_dead) {
		bus->have_dead = false;
		for (sub = bus->subs_head; sub != NULL; sub = next) {
			next = sub->next;
			if (!sub->dead)
				continue;
			struct topic *topic = sub->topic;

			sub_free(sub);
			if (topic != NULL)
				topic_remove_if_unused(bus, topic);
		}
	}
	if (bus->check_topics) {
		bus->check_topics = false;
		for (unsigned i = 0; i < bus->bucket_count; i++) {
			struct topic *topic = bus->buckets[i], *tnext;

			for (; topic != NULL; topic = tnext) {
				tnext = topic->next;
				topic_remove_if_unused(bus, topic);
			}
		}
	}
}

/* End a subscription: it is never called again. Freed now, or after the
 * outermost dispatch when one is running. */
static void sub_kill(struct postern_subscription *sub)
{
	struct event_bus *bus = sub->bus;

	assert(!sub->dead);
	sub->dead = true;
	if (sub->is_prefix) {
		topics_invalidate_matching(bus, sub);
	} else {
		assert(sub->topic->exact_subs > 0);
		sub->topic->exact_subs--;
		topic_invalidate(sub->topic);
	}
	bus->have_dead = true;
}

/* Would a subscription expecting `type` accept events of `topic`? */
static bool type_accepts(const char *sub_type, const char *topic_type)
{
	return sub_type == NULL || topic_type == NULL || strcmp(sub_type, topic_type) == 0;
}

static const char *topic_declarer(const struct topic *topic)
{
	return topic->declarer_count > 0 ? mod_label(topic->declarers[0]) : "?";
}

/* For a prefix subscription: the first declared topic it matches whose
 * type differs. */
static const struct topic *prefix_type_conflict(const struct event_bus *bus,
						const struct postern_subscription *sub)
{
	for (unsigned i = 0; i < bus->bucket_count; i++) {
		for (const struct topic *topic = bus->buckets[i]; topic != NULL;
		     topic = topic->next) {
			if (sub_matches(sub, topic) &&
			    !type_accepts(sub->payload_type, topic->payload_type))
				return topic;
		}
	}
	return NULL;
}

struct postern_subscription *
postern_bus_subscribe(struct postern_mod *mod, const char *topic_name, const char *payload_type,
		      int priority, postern_event_cb *cb, void *ctx, const char **error_r)
{
	assert(mod != NULL && mod->core != NULL && mod->core->bus != NULL);
	assert(topic_name != NULL && cb != NULL);

	struct event_bus *bus = mod->core->bus;
	bool is_prefix;
	size_t prefix_len;

	if (pattern_parse(topic_name, &is_prefix, &prefix_len) < 0) {
		*error_r = core_error(bus->core, "%s: cannot subscribe to '%.*s': not a topic name "
				      "(dotted words of [A-Za-z0-9_-], or PREFIX.* or *)",
				      mod_label(mod), BUS_TOPIC_MAX, topic_name);
		return NULL;
	}
	if (payload_type != NULL && !type_name_valid(payload_type)) {
		*error_r = core_error(bus->core,
				      "%s: cannot subscribe to '%s': bad payload type name '%.*s'",
				      mod_label(mod), topic_name, BUS_TYPE_MAX, payload_type);
		return NULL;
	}

	struct postern_subscription *sub = xcalloc(1, sizeof(*sub));

	sub->bus = bus;
	sub->mod = mod;
	sub->pattern = xstrdup(topic_name);
	sub->is_prefix = is_prefix;
	sub->prefix_len = prefix_len;
	sub->payload_type = payload_type == NULL ? NULL : xstrdup(payload_type);
	sub->priority = priority;
	sub->cb = cb;
	sub->ctx = ctx;

	if (is_prefix) {
		const struct topic *conflict = prefix_type_conflict(bus, sub);

		if (conflict != NULL) {
			*error_r = core_error(bus->core,
					      "%s: cannot subscribe to '%s' expecting type '%s': "
					      "topic '%s' matches and has type '%s' (declared by %s); "
					      "subscribe with type NULL to take mixed types",
					      mod_label(mod), topic_name, payload_type,
					      conflict->name, conflict->payload_type,
					      topic_declarer(conflict));
			free(sub->pattern);
			free(sub->payload_type);
			free(sub);
			return NULL;
		}
		topics_invalidate_matching(bus, sub);
	} else {
		struct topic *topic = topic_get(bus, topic_name);

		if (!type_accepts(payload_type, topic->payload_type)) {
			*error_r = core_error(bus->core,
					      "%s: cannot subscribe to '%s' expecting type '%s': "
					      "it has type '%s' (declared by %s)",
					      mod_label(mod), topic_name, payload_type,
					      topic->payload_type, topic_declarer(topic));
			free(sub->pattern);
			free(sub->payload_type);
			free(sub);
			if (bus->depth == 0)
				topic_remove_if_unused(bus, topic);
			else
				bus->check_topics = true;
			return NULL;
		}
		sub->topic = topic;
		topic->exact_subs++;
		topic_invalidate(topic);
	}

	sub->seq = bus->next_seq++;
	sub->prev = bus->subs_tail;
	if (bus->subs_tail != NULL)
		bus->subs_tail->next = sub;
	else
		bus->subs_head = sub;
	bus->subs_tail = sub;
	return sub;
}

void postern_bus_unsubscribe(struct postern_subscription **subp)
{
	struct postern_subscription *sub = *subp;

	if (sub == NULL)
		return;
	*subp = NULL;
	/* A second unsubscribe of the same subscription during dispatch
	 * (through another copy of the pointer) finds it dead: ignore. */
	if (sub->dead)
		return;
	sub_kill(sub);
	if (sub->bus->depth == 0)
		bus_collect(sub->bus);
}

/* ---- declarations ------------------------------------------------------- */

/* The first live subscription that would receive `topic` but expects
 * another type than `type`. */
static const struct postern_subscription *
subscriber_type_conflict(const struct event_bus *bus, const struct topic *topic, const char *type)
{
	for (const struct postern_subscription *sub = bus->subs_head; sub != NULL;
	     sub = sub->next) {
		if (!sub->dead && sub_matches(sub, topic) && !type_accepts(sub->payload_type, type))
			return sub;
	}
	return NULL;
}

int postern_bus_declare(struct postern_mod *mod, const char *topic_name,
			const char *payload_type, const char **error_r)
{
	assert(mod != NULL && mod->core != NULL && mod->core->bus != NULL);
	assert(topic_name != NULL);

	struct event_bus *bus = mod->core->bus;

	if (!topic_name_valid(topic_name, strnlen(topic_name, BUS_TOPIC_MAX + 1))) {
		*error_r = core_error(bus->core, "%s: cannot declare '%.*s': not a topic name "
				      "(dotted words of [A-Za-z0-9_-])",
				      mod_label(mod), BUS_TOPIC_MAX, topic_name);
		return -1;
	}
	if (payload_type == NULL || !type_name_valid(payload_type)) {
		*error_r = core_error(bus->core,
				      "%s: cannot declare '%s': bad payload type name '%.*s'",
				      mod_label(mod), topic_name, BUS_TYPE_MAX,
				      payload_type == NULL ? "(null)" : payload_type);
		return -1;
	}

	struct topic *topic = topic_get(bus, topic_name);

	if (topic->payload_type != NULL) {
		if (strcmp(topic->payload_type, payload_type) != 0) {
			*error_r = core_error(bus->core, "%s: cannot declare '%s' with type '%s': "
					      "%s declared it with type '%s'",
					      mod_label(mod), topic_name, payload_type,
					      topic_declarer(topic), topic->payload_type);
			return -1;
		}
	} else {
		const struct postern_subscription *sub =
			subscriber_type_conflict(bus, topic, payload_type);

		if (sub != NULL) {
			*error_r = core_error(bus->core, "%s: cannot declare '%s' with type '%s': "
					      "%s subscribed to '%s' expecting type '%s'",
					      mod_label(mod), topic_name, payload_type,
					      mod_label(sub->mod), sub->pattern, sub->payload_type);
			if (bus->depth == 0)
				topic_remove_if_unused(bus, topic);
			else
				bus->check_topics = true;
			return -1;
		}
		topic->payload_type = xstrdup(payload_type);
	}
	for (unsigned i = 0; i < topic->declarer_count; i++) {
		if (topic->declarers[i] == mod)
			return 0;
	}
	topic->declarers = xrealloc(topic->declarers,
				    (topic->declarer_count + 1) * sizeof(topic->declarers[0]));
	topic->declarers[topic->declarer_count++] = mod;
	return 0;
}

/* ---- publishing --------------------------------------------------------- */

int postern_bus_publish(struct postern_mod *mod, const char *topic_name,
			const char *payload_type, const void *payload)
{
	assert(mod != NULL && mod->core != NULL && mod->core->bus != NULL);
	assert(topic_name != NULL);

	struct event_bus *bus = mod->core->bus;

	/* bus->depth publishes are running, so this one would be nested
	 * that deep: the outermost publish plus MAX_DEPTH nested ones run. */
	if (bus->depth > POSTERN_BUS_MAX_DEPTH) {
		postern_log(mod, POSTERN_LOG_WARNING,
			    "bus: dropped '%.*s': nested publish %u levels deep, the limit is %d",
			    BUS_TOPIC_MAX, topic_name, bus->depth, POSTERN_BUS_MAX_DEPTH);
		return -1;
	}

	struct topic *topic = topic_find(bus, topic_name);

	if (topic == NULL || topic->payload_type == NULL) {
		postern_log(mod, POSTERN_LOG_ERROR,
			    "bus: cannot publish '%.*s': no module declared that topic",
			    BUS_TOPIC_MAX, topic_name);
		return -1;
	}
	if (payload_type == NULL || strcmp(payload_type, topic->payload_type) != 0) {
		postern_log(mod, POSTERN_LOG_ERROR,
			    "bus: cannot publish '%s' with type '%.*s': it has type '%s'",
			    topic_name, BUS_TYPE_MAX,
			    payload_type == NULL ? "(null)" : payload_type, topic->payload_type);
		return -1;
	}
	if (topic->list == NULL)
		topic->list = list_build(bus, topic);
	if (topic->list->count == 0)
		return 0;

	struct dispatch_list *list = topic->list;
	const struct postern_event event = {
		.topic = topic->name,
		/* The caller's string, not the topic's: a handler may
		 * unload the declarer, which frees the topic's copy. */
		.payload_type = payload_type,
		.payload = payload,
		.publisher = mod == mod->core->self ? NULL : mod,
	};
	int called = 0;

	/* Our reference keeps the list alive if a handler changes the
	 * subscriptions (the topic then drops its cached copy). */
	list->refs++;
	bus->depth++;
	for (unsigned i = 0; i < list->count; i++) {
		struct postern_subscription *sub = list->subs[i];

		if (sub->dead)
			continue;
		sub->cb(&event, sub->ctx);
		called++;
	}
	bus->depth--;
	list_unref(&list);
	if (bus->depth == 0)
		bus_collect(bus);
	return called;
}

/* ---- the core's side ---------------------------------------------------- */

struct event_bus *event_bus_new(struct postern_core *core)
{
	struct event_bus *bus = xcalloc(1, sizeof(*bus));

	bus->core = core;
	bus->bucket_count = BUS_INITIAL_BUCKETS;
	bus->buckets = xcalloc(bus->bucket_count, sizeof(bus->buckets[0]));
	return bus;
}

void event_bus_free(struct event_bus **busp)
{
	struct event_bus *bus = *busp;

	if (bus == NULL)
		return;
	*busp = NULL;
	assert(bus->depth == 0);
	while (bus->subs_head != NULL)
		sub_free(bus->subs_head);
	for (unsigned i = 0; i < bus->bucket_count; i++) {
		struct topic *topic = bus->buckets[i], *next;

		for (; topic != NULL; topic = next) {
			next = topic->next;
			topic_free(topic);
		}
	}
	free(bus->buckets);
	free(bus);
}

static void topic_undeclare(struct topic *topic, const struct postern_mod *mod)
{
	unsigned i;

	for (i = 0; i < topic->declarer_count; i++) {
		if (topic->declarers[i] == mod)
			break;
	}
	if (i == topic->declarer_count)
		return;
	memmove(&topic->declarers[i], &topic->declarers[i + 1],
		(topic->declarer_count - i - 1) * sizeof(topic->declarers[0]));
	if (--topic->declarer_count == 0) {
		/* Nobody publishes it now: a later declarer may pick a
		 * new type (checked against the subscribers then). */
		free(topic->payload_type);
		topic->payload_type = NULL;
		topic_invalidate(topic);
	}
}

void event_bus_release_module(struct event_bus *bus, const struct postern_mod *mod)
{
	for (struct postern_subscription *sub = bus->subs_head; sub != NULL; sub = sub->next) {
		if (sub->mod == mod && !sub->dead)
			sub_kill(sub);
	}
	for (unsigned i = 0; i < bus->bucket_count; i++) {
		for (struct topic *topic = bus->buckets[i]; topic != NULL; topic = topic->next)
			topic_undeclare(topic, mod);
	}
	bus->check_topics = true;
	if (bus->depth == 0)
		bus_collect(bus);
}

/* ---- `posternctl bus` --------------------------------------------------- */

static int topic_name_cmp(const void *p1, const void *p2)
{
	const struct topic *t1 = *(const struct topic *const *)p1;
	const struct topic *t2 = *(const struct topic *const *)p2;

	return strcmp(t1->name, t2->name);
}

static void describe_sub_json(struct postern_json *json, const struct postern_subscription *sub)
{
	postern_json_object_begin(json);
	postern_json_key(json, "module");
	postern_json_string(json, mod_label(sub->mod));
	postern_json_key(json, "priority");
	postern_json_int(json, sub->priority);
	postern_json_key(json, "pattern");
	postern_json_string(json, sub->pattern);
	postern_json_key(json, "type");
	if (sub->payload_type != NULL)
		postern_json_string(json, sub->payload_type);
	else
		postern_json_null(json);
	postern_json_object_end(json);
}

static void describe_topic_json(struct postern_json *json, const struct topic *topic,
				const struct dispatch_list *list)
{
	postern_json_object_begin(json);
	postern_json_key(json, "topic");
	postern_json_string(json, topic->name);
	postern_json_key(json, "type");
	if (topic->payload_type != NULL)
		postern_json_string(json, topic->payload_type);
	else
		postern_json_null(json);
	postern_json_key(json, "declared_by");
	postern_json_array_begin(json);
	for (unsigned i = 0; i < topic->declarer_count; i++)
		postern_json_string(json, mod_label(topic->declarers[i]));
	postern_json_array_end(json);
	postern_json_key(json, "subscribers");
	postern_json_array_begin(json);
	for (unsigned i = 0; i < list->count; i++)
		describe_sub_json(json, list->subs[i]);
	postern_json_array_end(json);
	postern_json_object_end(json);
}

static void describe_topic_text(struct postern_str *text, const struct topic *topic,
				const struct dispatch_list *list)
{
	postern_str_printf(text, "%s  type %s  declared by", topic->name,
			   topic->payload_type != NULL ? topic->payload_type : "(undeclared)");
	if (topic->declarer_count == 0)
		postern_str_append_cstr(text, " nobody");
	for (unsigned i = 0; i < topic->declarer_count; i++)
		postern_str_printf(text, "%s %s", i > 0 ? "," : "",
				   mod_label(topic->declarers[i]));
	postern_str_append_cstr(text, "\n");
	if (list->count == 0)
		postern_str_append_cstr(text, "    (no subscribers)\n");
	for (unsigned i = 0; i < list->count; i++) {
		const struct postern_subscription *sub = list->subs[i];

		postern_str_printf(text, "    %5d %s", sub->priority, mod_label(sub->mod));
		if (sub->is_prefix)
			postern_str_printf(text, " (via %s)", sub->pattern);
		postern_str_append_cstr(text, "\n");
	}
}

static void describe_prefixes(const struct event_bus *bus, struct postern_json *json,
			      struct postern_str *text)
{
	bool any = false;

	if (json != NULL) {
		postern_json_key(json, "prefix_subscriptions");
		postern_json_array_begin(json);
	}
	for (const struct postern_subscription *sub = bus->subs_head; sub != NULL;
	     sub = sub->next) {
		if (sub->dead || !sub->is_prefix)
			continue;
		if (json != NULL)
			describe_sub_json(json, sub);
		if (text != NULL) {
			if (!any)
				postern_str_append_cstr(text, "prefix subscriptions:\n");
			postern_str_printf(text, "    %s  %5d %s  type %s\n", sub->pattern,
					   sub->priority, mod_label(sub->mod),
					   sub->payload_type != NULL ? sub->payload_type : "any");
		}
		any = true;
	}
	if (json != NULL)
		postern_json_array_end(json);
}

void event_bus_describe(const struct event_bus *bus, struct postern_json *json,
			struct postern_str *text)
{
	const struct topic **topics = xcalloc(bus->topic_count + 1, sizeof(*topics));
	unsigned count = 0;

	for (unsigned i = 0; i < bus->bucket_count; i++) {
		for (const struct topic *topic = bus->buckets[i]; topic != NULL;
		     topic = topic->next)
			topics[count++] = topic;
	}
	assert(count == bus->topic_count);
	qsort(topics, count, sizeof(topics[0]), topic_name_cmp);

	if (text != NULL && count == 0)
		postern_str_append_cstr(text, "no topics\n");
	if (json != NULL) {
		postern_json_object_begin(json);
		postern_json_key(json, "topics");
		postern_json_array_begin(json);
	}
	for (unsigned i = 0; i < count; i++) {
		/* Built afresh rather than taken from the cache: describing
		 * must not change the bus. */
		struct dispatch_list *list = list_build(bus, topics[i]);

		if (json != NULL)
			describe_topic_json(json, topics[i], list);
		if (text != NULL)
			describe_topic_text(text, topics[i], list);
		free(list);
	}
	if (json != NULL)
		postern_json_array_end(json);
	describe_prefixes(bus, json, text);
	if (json != NULL)
		postern_json_object_end(json);
	free(topics);
}
