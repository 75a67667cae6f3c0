/*
 * Directory fsyncs shared by concurrent deliveries (mailstore_dirsync).
 *
 * A delivery links its file into new/ and must then fsync new/. When
 * several threads deliver into one folder at once, a single fsync that
 * starts after all their links covers all of them. Per directory:
 *
 *   linked   counts the links announced so far (each delivery takes a
 *            ticket after its link);
 *   synced   the highest ticket an fsync that has completed covers;
 *   syncing  an fsync is running; it covers the tickets up to the value
 *            `linked` had when it started.
 *
 * A delivery with ticket T waits until synced >= T. If no fsync is
 * running, it starts one itself; if one is running, it may have started
 * before T's link, so the delivery waits for it and, if it did not cover
 * T, starts the next. A failed fsync covers nothing: every waiter tries
 * its own and reports its own error.
 *
 * Entries live only while a delivery uses them, so the table holds the
 * folders being delivered to right now, not every folder ever seen.
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailstore_private.h"

struct dirsync_entry {
	struct dirsync_entry *next;
	char *dir;
	uint64_t linked;
	uint64_t synced;
	unsigned users;
	bool syncing;
};

struct mailstore_dirsync {
	pthread_mutex_t lock;
	pthread_cond_t done;          /* an fsync finished (any directory) */
	struct dirsync_entry *entries;
	uint64_t fsyncs;              /* statistics: fsyncs run */
	uint64_t waits;               /* statistics: deliveries that needed one */
};

POSTERN_API struct mailstore_dirsync *mailstore_dirsync_new(void)
{
	struct mailstore_dirsync *ds = calloc(1, sizeof(*ds));

	if (ds == NULL)
		return NULL;
	pthread_mutex_init(&ds->lock, NULL);
	pthread_cond_init(&ds->done, NULL);
	return ds;
}

POSTERN_API void mailstore_dirsync_free(struct mailstore_dirsync *ds)
{
	if (ds == NULL)
		return;
	/* Entries exist only during a delivery: none may run now. */
	pthread_cond_destroy(&ds->done);
	pthread_mutex_destroy(&ds->lock);
	free(ds);
}

POSTERN_API void mailstore_dirsync_stats(struct mailstore_dirsync *ds, uint64_t *fsyncs_r,
					 uint64_t *deliveries_r)
{
	pthread_mutex_lock(&ds->lock);
	*fsyncs_r = ds->fsyncs;
	*deliveries_r = ds->waits;
	pthread_mutex_unlock(&ds->lock);
}

static struct dirsync_entry *entry_get(struct mailstore_dirsync *ds, const char *dir)
{
	struct dirsync_entry *e;

	for (e = ds->entries; e != NULL; e = e->next) {
		if (strcmp(e->dir, dir) == 0)
			return e;
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return NULL;
	e->dir = strdup(dir);
	if (e->dir == NULL) {
		free(e);
		return NULL;
	}
	e->next = ds->entries;
	ds->entries = e;
	return e;
}

static void entry_put(struct mailstore_dirsync *ds, struct dirsync_entry *e)
{
	struct dirsync_entry **p;

	if (--e->users > 0)
		return;
	for (p = &ds->entries; *p != e; p = &(*p)->next)
		;
	*p = e->next;
	free(e->dir);
	free(e);
}

int ms_dirsync(struct mailstore_dirsync *ds, const char *dir, const char **error_r)
{
	struct dirsync_entry *e;
	uint64_t ticket;
	int ret = 0;

	if (ds == NULL)
		return ms_fsync_dir(dir, error_r);
	pthread_mutex_lock(&ds->lock);
	e = entry_get(ds, dir);
	if (e == NULL) {
		pthread_mutex_unlock(&ds->lock);
		return ms_fsync_dir(dir, error_r);
	}
	e->users++;
	ticket = ++e->linked;
	ds->waits++;
	while (e->synced < ticket) {
		if (e->syncing) {
			pthread_cond_wait(&ds->done, &ds->lock);
			continue;
		}

		uint64_t covers = e->linked;

		e->syncing = true;
		ds->fsyncs++;
		pthread_mutex_unlock(&ds->lock);
		ret = ms_fsync_dir(dir, error_r);
		pthread_mutex_lock(&ds->lock);
		e->syncing = false;
		if (ret == 0 && covers > e->synced)
			e->synced = covers;
		pthread_cond_broadcast(&ds->done);
		if (ret < 0)
			break;
	}
	entry_put(ds, e);
	pthread_mutex_unlock(&ds->lock);
	return ret;
}
