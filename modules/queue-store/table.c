/*
 * The in-memory index of the queue: every loaded message by id (a chained
 * hash table that doubles as it fills), and what `queue list` calls each
 * message's state. The index mirrors queue/ exactly: a message is added
 * when its commit (or the scan at start) made it part of the directory and
 * removed when its removal is submitted, so listing the index lists the
 * queue.
 */
#include <stdlib.h>
#include <string.h>

#include "queue_store.h"

static unsigned id_hash(const char *id)
{
	unsigned hash = 2166136261u;

	for (; *id != '\0'; id++)
		hash = (hash ^ (unsigned char)*id) * 16777619u;
	return hash;
}

void qtable_init(struct qtable *table)
{
	table->bucket_count = 64;
	table->buckets = q_calloc(table->bucket_count, sizeof(*table->buckets));
	table->count = 0;
}

void qtable_free(struct qtable *table)
{
	for (unsigned i = 0; i < table->bucket_count; i++) {
		while (table->buckets[i] != NULL) {
			struct qmsg *msg = table->buckets[i];

			table->buckets[i] = msg->hash_next;
			qmsg_free(msg);
		}
	}
	free(table->buckets);
	table->buckets = NULL;
	table->bucket_count = table->count = 0;
}

struct qmsg *qtable_find(const struct qtable *table, const char *id)
{
	if (table->bucket_count == 0)
		return NULL;
	for (struct qmsg *msg = table->buckets[id_hash(id) % table->bucket_count]; msg != NULL;
	     msg = msg->hash_next) {
		if (strcmp(msg->env.id, id) == 0)
			return msg;
	}
	return NULL;
}

static void qtable_grow(struct qtable *table)
{
	unsigned count = table->bucket_count * 2;
	struct qmsg **buckets = q_calloc(count, sizeof(*buckets));

	for (unsigned i = 0; i < table->bucket_count; i++) {
		while (table->buckets[i] != NULL) {
			struct qmsg *msg = table->buckets[i];
			unsigned slot = id_hash(msg->env.id) % count;

			table->buckets[i] = msg->hash_next;
			msg->hash_next = buckets[slot];
			buckets[slot] = msg;
		}
	}
	free(table->buckets);
	table->buckets = buckets;
	table->bucket_count = count;
}

void qtable_add(struct qtable *table, struct qmsg *msg)
{
	if (table->count >= table->bucket_count)
		qtable_grow(table);
	unsigned slot = id_hash(msg->env.id) % table->bucket_count;

	msg->hash_next = table->buckets[slot];
	table->buckets[slot] = msg;
	table->count++;
}

void qtable_remove(struct qtable *table, struct qmsg *msg)
{
	struct qmsg **link = &table->buckets[id_hash(msg->env.id) % table->bucket_count];

	for (; *link != NULL; link = &(*link)->hash_next) {
		if (*link == msg) {
			*link = msg->hash_next;
			msg->hash_next = NULL;
			table->count--;
			return;
		}
	}
}

static int cmp_msg(const void *a, const void *b)
{
	const struct qmsg *const *ma = a, *const *mb = b;

	return strcmp((*ma)->env.id, (*mb)->env.id);
}

struct qmsg **qtable_sorted(const struct qtable *table, unsigned *count_r)
{
	struct qmsg **all = q_calloc(table->count, sizeof(*all));
	unsigned n = 0;

	for (unsigned i = 0; i < table->bucket_count; i++) {
		for (struct qmsg *msg = table->buckets[i]; msg != NULL; msg = msg->hash_next)
			all[n++] = msg;
	}
	qsort(all, n, sizeof(*all), cmp_msg);
	*count_r = n;
	return all;
}

struct qmsg *qmsg_new(struct qs *qs)
{
	struct qmsg *msg = q_calloc(1, sizeof(*msg));

	msg->qs = qs;
	msg->heap_index = -1;
	return msg;
}

void qmsg_free(struct qmsg *msg)
{
	if (msg == NULL)
		return;
	qenvelope_clear(&msg->env);
	free(msg);
}

unsigned qmsg_pending(const struct qmsg *msg)
{
	unsigned count = 0;

	for (unsigned i = 0; i < msg->env.rcpt_count; i++) {
		if (msg->env.rcpts[i].state == QR_PENDING)
			count++;
	}
	return count;
}

unsigned qmsg_owed(const struct qmsg *msg)
{
	unsigned owed = 0;

	for (unsigned i = 0; i < msg->env.rcpt_count; i++)
		owed |= msg->env.rcpts[i].owed;
	return owed;
}

const char *qmsg_state_name(const struct qmsg *msg)
{
	if (msg->held)
		return "held";
	if (msg->busy || msg->dsn_inflight)
		return "active";
	for (unsigned i = 0; i < msg->env.rcpt_count; i++) {
		const struct qrcpt *rcpt = &msg->env.rcpts[i];

		if (rcpt->state == QR_PENDING && rcpt->attempts > 0)
			return "deferred";
	}
	return "queued";
}
