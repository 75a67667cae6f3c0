/*
 * mailstore_sync(): make the message list match the directories and give
 * UIDs to new messages, under the uidlist lock.
 *
 * Only names are listed: a name's ",S=" gives the size, and only names
 * without one are stat()ed, once, the result kept in the uidlist. No
 * message file is opened, which keeps a sync of 100,000 messages at two
 * readdir() passes and a hash lookup per name.
 *
 * readdir() may skip an entry that another process renames while we list
 * (a flag change), so a message that seems gone is looked for once more
 * before it is forgotten. A message forgotten by mistake anyway comes
 * back with a new UID at the next sync: a client re-downloads it, nothing
 * is lost.
 */
#include "config.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mailstore_private.h"

/* Base name -> record index, open addressing; rebuilt at every sync. */
struct base_hash {
	int32_t *slots;
	uint32_t mask;
	uint32_t used;
};

static uint32_t hash_bytes(const char *s, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

static int32_t hash_find(const struct base_hash *h, const struct ms_uidlist *ul,
			 const char *name, size_t base_len)
{
	uint32_t i = hash_bytes(name, base_len) & h->mask;

	for (; h->slots[i] >= 0; i = (i + 1) & h->mask) {
		const struct ms_rec *rec = &ul->recs[h->slots[i]];

		if (rec->base_len == base_len && memcmp(rec->name, name, base_len) == 0)
			return h->slots[i];
	}
	return -1;
}

static void hash_put(struct base_hash *h, const struct ms_uidlist *ul, int32_t idx)
{
	const struct ms_rec *rec = &ul->recs[idx];
	uint32_t i = hash_bytes(rec->name, rec->base_len) & h->mask;

	while (h->slots[i] >= 0)
		i = (i + 1) & h->mask;
	h->slots[i] = idx;
	h->used++;
}

/* (Re)build the table for `expect` entries from the live records; a
 * record whose base is already in it is a duplicate and is dropped
 * (marked expunged) — returns how many. -1 when out of memory. */
static int hash_build(struct base_hash *h, struct ms_uidlist *ul, uint32_t expect)
{
	uint32_t size = 64;
	int dups = 0;

	while (size < expect * 2 + 16)
		size *= 2;
	free(h->slots);
	h->slots = malloc(size * sizeof(*h->slots));
	if (h->slots == NULL)
		return -1;
	memset(h->slots, 0xff, size * sizeof(*h->slots));
	h->mask = size - 1;
	h->used = 0;
	for (unsigned i = 0; i < ul->count; i++) {
		struct ms_rec *rec = &ul->recs[i];

		if (rec->msg.expunged)
			continue;
		if (hash_find(h, ul, rec->name, rec->base_len) >= 0) {
			rec->msg.expunged = true;
			dups++;
			continue;
		}
		hash_put(h, ul, (int32_t)i);
	}
	return dups;
}

struct sync_ctx {
	struct mailstore *box;
	struct ms_lock *lock;
	struct base_hash hash;
	unsigned first_new;       /* records from here on are new in this sync */
	unsigned long entries;    /* directory entries read */
	bool rewrite;             /* the uidlist must be rewritten */
};

/* Take in one directory entry. */
static int scan_entry(struct sync_ctx *ctx, const char *name, bool in_new, bool add_new)
{
	struct ms_uidlist *ul = &ctx->box->ul;
	struct ms_name parsed;
	struct ms_rec *rec;
	int32_t idx;

	if (!ms_name_is_message(name) || strlen(name) > MS_NAME_MAX)
		return 0;
	ms_name_parse(name, &parsed);
	idx = hash_find(&ctx->hash, ul, name, parsed.base_len);
	if (idx >= 0) {
		char *copy;

		rec = &ul->recs[idx];
		/* seen in both new/ and cur/ (moved while we listed): cur/ wins */
		if (rec->seen && in_new && !rec->msg.in_new)
			return 0;
		if (strcmp(rec->name, name) != 0) {
			if ((copy = strdup(name)) == NULL)
				return -1;
			free(rec->name);
			rec->name = copy;
			rec->msg.filename = copy;
		}
		rec->seen = true;
		rec->msg.in_new = in_new;
		rec->msg.flags = parsed.flags;
		return 0;
	}
	if (!add_new)
		return 0;
	if (ctx->hash.used * 2 >= ctx->hash.mask &&
	    hash_build(&ctx->hash, ul, ul->count * 2) < 0)
		return -1;
	if ((rec = ms_uidlist_add(ul)) == NULL)
		return -1;
	if ((rec->name = strdup(name)) == NULL) {
		ul->count--;
		return -1;
	}
	rec->msg.filename = rec->name;
	rec->base_len = (uint32_t)parsed.base_len;
	rec->seen = true;
	rec->msg.in_new = in_new;
	rec->msg.flags = parsed.flags;
	rec->size_from_name = parsed.size != MAILSTORE_SIZE_UNKNOWN;
	rec->vsize_from_name = parsed.vsize != MAILSTORE_SIZE_UNKNOWN;
	rec->msg.size = parsed.size;
	rec->msg.vsize = parsed.vsize;
	hash_put(&ctx->hash, ul, (int32_t)(ul->count - 1));
	return 0;
}

static int scan_dir(struct sync_ctx *ctx, const char *path, bool in_new, bool add_new,
		    const char **error_r)
{
	struct dirent *de;
	DIR *dir = opendir(path);

	if (dir == NULL) {
		*error_r = ms_error_errno("opendir(%s)", path);
		return -1;
	}
	errno = 0;
	while ((de = readdir(dir)) != NULL) {
		/* a huge folder on slow storage: show we are alive, so
		 * nobody takes our lock for a crashed one */
		if (++ctx->entries % 16384 == 0)
			(void)futimens(ctx->lock->fd, NULL);
		if (scan_entry(ctx, de->d_name, in_new, add_new) < 0) {
			closedir(dir);
			*error_r = ms_error("out of memory");
			return -1;
		}
		errno = 0;
	}
	if (errno != 0) {
		*error_r = ms_error_errno("readdir(%s)", path);
		closedir(dir);
		return -1;
	}
	closedir(dir);
	return 0;
}

static unsigned count_missing(const struct ms_uidlist *ul, unsigned upto)
{
	unsigned missing = 0;

	for (unsigned i = 0; i < upto; i++) {
		if (!ul->recs[i].seen && !ul->recs[i].msg.expunged)
			missing++;
	}
	return missing;
}

/* Drop records that are gone; keep order. Returns how many were dropped
 * among the old ones. */
static unsigned compact(struct sync_ctx *ctx)
{
	struct ms_uidlist *ul = &ctx->box->ul;
	unsigned o = 0, kept_old = 0, dropped_old = 0;

	for (unsigned i = 0; i < ul->count; i++) {
		struct ms_rec *rec = &ul->recs[i];
		bool old = i < ctx->first_new;

		if (!rec->seen || rec->msg.expunged) {
			if (old) {
				dropped_old++;
				if (!rec->msg.expunged)
					ms_log(&ctx->box->set, MAILSTORE_LOG_DEBUG,
					       "%s: uid %u expunged by another process",
					       ctx->box->dir, rec->msg.uid);
			}
			free(rec->name);
			continue;
		}
		if (old)
			kept_old++;
		ul->recs[o] = *rec;
		ul->recs[o].msg.filename = ul->recs[o].name;
		o++;
	}
	ul->count = o;
	ctx->first_new = kept_old;
	return dropped_old;
}

/* Learn sizes the names do not carry: one stat() per message, ever. A new
 * message that vanished meanwhile is dropped before it gets a UID. */
static int stat_size(struct sync_ctx *ctx, struct ms_rec *rec, bool old, const char **error_r)
{
	struct mailstore *box = ctx->box;

	for (int attempt = 0; attempt < 3; attempt++) {
		char *path = ms_box_rec_path(box, rec);
		struct stat st;
		int ret;

		if (path == NULL) {
			*error_r = ms_error("out of memory");
			return -1;
		}
		ret = stat(path, &st);
		if (ret < 0 && errno != ENOENT)
			*error_r = ms_error_errno("stat(%s)", path);
		free(path);
		if (ret == 0) {
			rec->msg.size = (uint64_t)st.st_size;
			if (old)
				ctx->rewrite = true;
			return 0;
		}
		if (errno != ENOENT)
			return -1;
		if ((ret = ms_box_relocate(box, rec, error_r)) < 0)
			return -1;
		if (ret == 0) {
			rec->seen = false;
			return 0;
		}
	}
	return 0;	/* keeps moving: try again at the next sync */
}

static int stat_unknown_sizes(struct sync_ctx *ctx, const char **error_r)
{
	struct ms_uidlist *ul = &ctx->box->ul;

	for (unsigned i = 0; i < ul->count; i++) {
		struct ms_rec *rec = &ul->recs[i];

		if (rec->msg.size != MAILSTORE_SIZE_UNKNOWN || rec->msg.expunged || !rec->seen)
			continue;
		if (stat_size(ctx, rec, i < ctx->first_new, error_r) < 0)
			return -1;
	}
	return 0;
}

static int cmp_rec_name(const void *a, const void *b)
{
	return ms_name_cmp(((const struct ms_rec *)a)->name, ((const struct ms_rec *)b)->name);
}

static void assign_uids(struct sync_ctx *ctx)
{
	struct ms_uidlist *ul = &ctx->box->ul;
	unsigned n = ul->count - ctx->first_new;

	if (n == 0)
		return;
	/* delivery order, so UIDs follow arrival */
	qsort(ul->recs + ctx->first_new, n, sizeof(*ul->recs), cmp_rec_name);
	for (unsigned i = ctx->first_new; i < ul->count; i++) {
		ul->recs[i].msg.filename = ul->recs[i].name;
		ul->recs[i].msg.uid = ul->nextuid++;
	}
	/* the list stays in ascending UID order: lookups depend on it */
	assert(ctx->first_new == 0 ||
	       ul->recs[ctx->first_new - 1].msg.uid < ul->recs[ctx->first_new].msg.uid);
}

static int move_new_to_cur(struct sync_ctx *ctx, const char **error_r)
{
	struct mailstore *box = ctx->box;

	for (unsigned i = 0; i < box->ul.count; i++) {
		struct ms_rec *rec = &box->ul.recs[i];
		int ret;

		if (!rec->msg.in_new || rec->msg.expunged)
			continue;
		ret = mailstore_set_flags(box, i, 0, 0, error_r);
		if (ret < 0)
			return -1;
		if (ret == 0)
			rec->msg.expunged = true;	/* gone meanwhile */
	}
	return 0;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
		a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Copy sizes learned through this handle into a freshly read list. */
static void keep_cached_sizes(struct ms_uidlist *fresh, const struct ms_uidlist *old)
{
	unsigned j = 0;

	for (unsigned i = 0; i < old->count; i++) {
		const struct ms_rec *o = &old->recs[i];

		if (o->msg.vsize == MAILSTORE_SIZE_UNKNOWN || o->vsize_from_name)
			continue;
		while (j < fresh->count && fresh->recs[j].msg.uid < o->msg.uid)
			j++;
		if (j < fresh->count && fresh->recs[j].msg.uid == o->msg.uid &&
		    fresh->recs[j].msg.vsize == MAILSTORE_SIZE_UNKNOWN)
			fresh->recs[j].msg.vsize = o->msg.vsize;
	}
}

/* Re-read the uidlist when it changed since we last saw it. */
static int refresh_uidlist(struct sync_ctx *ctx, const char **error_r)
{
	struct mailstore *box = ctx->box;
	struct ms_uidlist fresh = { 0 };
	const char *why;
	struct stat st;
	int ret;

	if (stat(box->uidlist_path, &st) == 0) {
		if (box->ul.loaded && same_file(&st, &box->ul.st))
			return 0;
	} else if (errno != ENOENT) {
		*error_r = ms_error_errno("stat(%s)", box->uidlist_path);
		return -1;
	}
	ret = ms_uidlist_read(box->uidlist_path, &fresh, &why, error_r);
	if (ret < 0)
		return -1;
	if (ret == 0) {
		if (why != NULL)
			ms_log(&box->set, MAILSTORE_LOG_ERROR,
			       "%s: corrupt (%s): rebuilding it with a new UIDVALIDITY",
			       box->uidlist_path, why);
		else if (box->ul.loaded)
			ms_log(&box->set, MAILSTORE_LOG_WARNING,
			       "%s: vanished: rebuilding it with a new UIDVALIDITY",
			       box->uidlist_path);
		if (ms_uidlist_init_new(&fresh, error_r) < 0)
			return -1;
		if (box->ul.loaded && fresh.uidvalidity <= box->ul.uidvalidity)
			fresh.uidvalidity = box->ul.uidvalidity + 1;
		ctx->rewrite = true;
	} else if (fresh.needs_rewrite) {
		ctx->rewrite = true;
	}
	keep_cached_sizes(&fresh, &box->ul);
	ms_uidlist_clear(&box->ul);
	box->ul = fresh;
	return 0;
}

/* Remove leftovers of crashed deliveries, once per open folder. */
static void clean_tmp(struct mailstore *box)
{
	time_t limit = time(NULL) - MS_TMP_MAX_AGE_SECS;
	struct dirent *de;
	DIR *dir;

	box->tmp_cleaned = true;
	if ((dir = opendir(box->tmp_dir)) == NULL)
		return;
	while ((de = readdir(dir)) != NULL) {
		struct stat st;

		if (de->d_name[0] == '.' ||
		    fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode) || st.st_mtime >= limit)
			continue;
		if (unlinkat(dirfd(dir), de->d_name, 0) == 0)
			ms_log(&box->set, MAILSTORE_LOG_INFO, "%s: removed stale tmp/%s",
			       box->dir, de->d_name);
	}
	closedir(dir);
}

static void rollback_new(struct sync_ctx *ctx, uint32_t old_nextuid)
{
	struct ms_uidlist *ul = &ctx->box->ul;

	/* UIDs that were not saved must not be shown to anyone */
	for (unsigned i = ctx->first_new; i < ul->count; i++)
		free(ul->recs[i].name);
	ul->count = ctx->first_new;
	ul->nextuid = old_nextuid;
}

static int sync_locked(struct sync_ctx *ctx, struct ms_lock *lock, const char **error_r)
{
	struct mailstore *box = ctx->box;
	struct ms_uidlist *ul = &box->ul;
	uint32_t old_nextuid;
	unsigned old_count;
	int dups;

	if (refresh_uidlist(ctx, error_r) < 0)
		return -1;
	old_nextuid = ul->nextuid;
	if ((dups = hash_build(&ctx->hash, ul, ul->count + 64)) < 0) {
		*error_r = ms_error("out of memory");
		return -1;
	}
	if (dups > 0) {
		ms_log(&box->set, MAILSTORE_LOG_WARNING, "%s: %d duplicate names dropped",
		       box->uidlist_path, dups);
		ctx->rewrite = true;
	}
	for (unsigned i = 0; i < ul->count; i++)
		ul->recs[i].seen = false;
	old_count = ul->count;
	ctx->first_new = old_count;
	if (scan_dir(ctx, box->new_dir, true, true, error_r) < 0 ||
	    scan_dir(ctx, box->cur_dir, false, true, error_r) < 0)
		goto fail;
	if (count_missing(ul, old_count) > 0 &&
	    (scan_dir(ctx, box->new_dir, true, false, error_r) < 0 ||
	     scan_dir(ctx, box->cur_dir, false, false, error_r) < 0))
		goto fail;
	if (stat_unknown_sizes(ctx, error_r) < 0)
		goto fail;
	if (compact(ctx) > 0)
		ctx->rewrite = true;
	assign_uids(ctx);
	if ((box->open_flags & MAILSTORE_OPEN_MOVE_NEW) != 0 && move_new_to_cur(ctx, error_r) < 0)
		goto fail;
	if (box->cache_dirty || ctx->rewrite) {
		if (ms_uidlist_write(&box->set, box->dir, ul, lock, error_r) < 0)
			goto fail;
	} else if (ctx->first_new < ul->count) {
		if (ms_lock_verify(&box->set, lock, error_r) < 0 ||
		    ms_uidlist_append(&box->set, box->uidlist_path, ul, ctx->first_new,
				      error_r) < 0)
			goto fail;
	}
	box->cache_dirty = false;
	return 0;
fail:
	rollback_new(ctx, old_nextuid);
	/* forget what we read so the next sync starts from the file */
	ul->loaded = false;
	memset(&ul->st, 0, sizeof(ul->st));
	return -1;
}

POSTERN_API int mailstore_sync(struct mailstore *box, const char **error_r)
{
	struct ms_lock lock;
	struct sync_ctx ctx = { .box = box, .lock = &lock };
	int ret;

	if (!box->tmp_cleaned)
		clean_tmp(box);
	if (ms_lock_take(&box->set, box->lock_path, &lock, error_r) < 0)
		return -1;
	ret = sync_locked(&ctx, &lock, error_r);
	ms_lock_release(&box->set, &lock);
	free(ctx.hash.slots);
	return ret;
}
