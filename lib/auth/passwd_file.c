/*
 * The passwd-file userdb, in Dovecot's format so that an admin can move an
 * existing file over:
 *
 *   user:password:uid:gid:gecos:home:shell:extra_fields
 *
 * Only user is required; password is "{SCHEME}hash" (or a bare "$..."
 * crypt hash); uid and gid are numbers or empty; gecos and shell are
 * ignored; extra_fields are space-separated "key=value" or bare "key"
 * (Dovecot's passdb fields such as host=, proxy, nologin, and userdb_*
 * fields such as userdb_mail=maildir:~/Maildir). The extra fields may
 * contain ':' themselves, so only the first seven separators split.
 * Lines starting with '#' and blank lines are skipped. User names are
 * compared in lowercase (Dovecot's default %Lu).
 *
 * A malformed line (too few fields, too long, a NUL byte, a bad user name,
 * a password without a known scheme, a non-numeric uid) rejects that line
 * only, with a log line naming file and line number: one typo must not
 * lock everybody out.
 *
 * The file is stat()ed at most every check_interval_ms and reloaded when
 * its mtime, size or inode changed; a reload that fails keeps the old
 * table. Every access is under one mutex: lookups come from the pool's
 * worker threads. Password hashes are wiped when a table is freed.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth_private.h"

#define PF_DEFAULT_MAX_LINE 4096
#define PF_DEFAULT_MAX_FILE (64 * 1024 * 1024)

struct pf_entry {
	char *password;                 /* "{SCHEME}hash", NULL when empty */
	struct postern_auth_user *user;
};

struct pf_table {
	struct pf_entry *entries;
	unsigned count, alloc;
	uint32_t *slots;                /* entry index + 1; 0 empty */
	uint32_t mask;
	unsigned bad_lines;
};

struct passwd_file {
	struct postern_userdb db;       /* first: the userdb handle */
	struct postern_passwd_file_settings set;
	char *path;
	pthread_mutex_t lock;
	struct pf_table *table;
	struct stat st;
	uint64_t last_check_ms;
	/* verified against for unknown users, so that "unknown user" takes
	 * as long as "wrong password" */
	char *dummy_hash;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint32_t hash_name(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static void table_free(struct pf_table *t)
{
	if (t == NULL)
		return;
	for (unsigned i = 0; i < t->count; i++) {
		if (t->entries[i].password != NULL) {
			explicit_bzero(t->entries[i].password, strlen(t->entries[i].password));
			free(t->entries[i].password);
		}
		postern_auth_user_free(&t->entries[i].user);
	}
	free(t->entries);
	free(t->slots);
	free(t);
}

static const struct pf_entry *table_find(const struct pf_table *t, const char *name)
{
	if (t == NULL || t->slots == NULL)
		return NULL;
	for (uint32_t i = hash_name(name) & t->mask; t->slots[i] != 0; i = (i + 1) & t->mask) {
		const struct pf_entry *e = &t->entries[t->slots[i] - 1];

		if (strcmp(e->user->name, name) == 0)
			return e;
	}
	return NULL;
}

static void slot_put(struct pf_table *t, uint32_t n)
{
	uint32_t i = hash_name(t->entries[n].user->name) & t->mask;

	while (t->slots[i] != 0)
		i = (i + 1) & t->mask;
	t->slots[i] = n + 1;
}

/* Keep the index at most half full. */
static int table_grow_index(struct pf_table *t)
{
	uint32_t size = t->mask + 1;

	if (t->slots != NULL && (t->count + 1) * 2 <= size)
		return 0;
	size = size < 16 ? 16 : size * 2;
	free(t->slots);
	t->slots = calloc(size, sizeof(*t->slots));
	if (t->slots == NULL)
		return -1;
	t->mask = size - 1;
	for (uint32_t n = 0; n < t->count; n++)
		slot_put(t, n);
	return 0;
}

/* Is the password field usable? Empty is (the user cannot log in with a
 * password, but is found by lookups). */
static bool password_field_ok(const char *pw, const char **why_r)
{
	const char *end;

	if (pw[0] == '\0' || pw[0] == '$')
		return true;
	if (pw[0] != '{' || (end = strchr(pw, '}')) == NULL) {
		*why_r = "password has no {SCHEME} prefix";
		return false;
	}
	if (!auth_password_scheme_known(pw + 1, (size_t)(end - pw - 1))) {
		*why_r = "unknown password scheme";
		return false;
	}
	return true;
}

static int parse_id(const char *s, long *id_r)
{
	char *end;
	long v;

	if (*s == '\0') {
		*id_r = -1;
		return 0;
	}
	if (*s < '0' || *s > '9' || strlen(s) > 10)
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > 0xffffffffL)
		return -1;
	*id_r = v;
	return 0;
}

static int add_field(struct postern_auth_user *user, const char *token, size_t len)
{
	const char *eq = memchr(token, '=', len);
	size_t klen = eq != NULL ? (size_t)(eq - token) : len;
	struct postern_auth_field *fields, *f;

	if (klen == 0)
		return 1;	/* "=value": no key, ignore the token */
	fields = realloc(user->fields, (user->field_count + 1) * sizeof(*fields));
	if (fields == NULL)
		return -1;
	user->fields = fields;
	f = &fields[user->field_count];
	f->key = strndup(token, klen);
	f->value = eq != NULL ? strndup(eq + 1, len - klen - 1) : strdup("");
	if (f->key == NULL || f->value == NULL) {
		free(f->key);
		free(f->value);
		return -1;
	}
	user->field_count++;
	return 0;
}

/* Parse one line into *entry. Returns 1 ok, 0 skip (comment, blank), -1
 * malformed (*why_r), -2 out of memory. The line is modified. */
static int parse_line(char *line, struct pf_entry *entry, const char **why_r)
{
	char *fields[8] = { NULL };
	unsigned n = 0;
	char *p = line;
	struct postern_auth_user *user;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0' || *p == '#')
		return 0;
	fields[n++] = line;
	while (n < 8 && (p = strchr(fields[n - 1], ':')) != NULL) {
		*p = '\0';
		fields[n++] = p + 1;
	}
	if (n < 2) {
		*why_r = "too few fields (need at least user:password)";
		return -1;
	}
	if (!password_field_ok(fields[1], why_r))
		return -1;
	if ((user = auth_user_new()) == NULL)
		return -2;
	if ((user->name = auth_user_canonical(fields[0])) == NULL) {
		*why_r = "bad user name";
		postern_auth_user_free(&user);
		return -1;
	}
	if ((n > 2 && parse_id(fields[2], &user->uid) < 0) ||
	    (n > 3 && parse_id(fields[3], &user->gid) < 0)) {
		*why_r = "uid/gid not a number";
		postern_auth_user_free(&user);
		return -1;
	}
	if (n > 5 && fields[5][0] != '\0' && (user->home = strdup(fields[5])) == NULL)
		goto nomem;
	if (n > 7) {
		for (p = fields[7]; *p != '\0';) {
			size_t len;

			p += strspn(p, " \t");
			len = strcspn(p, " \t");
			if (len > 0 && add_field(user, p, len) < 0)
				goto nomem;
			p += len;
		}
	}
	if (user->home == NULL) {
		const char *home = postern_auth_user_field(user, "home");

		if (home != NULL && home[0] != '\0' && (user->home = strdup(home)) == NULL)
			goto nomem;
	}
	if (auth_user_resolve_mail(user) < 0)
		goto nomem;
	entry->password = fields[1][0] != '\0' ? strdup(fields[1]) : NULL;
	if (fields[1][0] != '\0' && entry->password == NULL)
		goto nomem;
	entry->user = user;
	return 1;
nomem:
	postern_auth_user_free(&user);
	return -2;
}

static int table_add(struct pf_table *t, struct pf_entry *entry)
{
	if (table_grow_index(t) < 0)
		return -1;
	if (t->count == t->alloc) {
		unsigned alloc = t->alloc == 0 ? 32 : t->alloc * 2;
		struct pf_entry *e = realloc(t->entries, alloc * sizeof(*e));

		if (e == NULL)
			return -1;
		t->entries = e;
		t->alloc = alloc;
	}
	t->entries[t->count++] = *entry;
	slot_put(t, t->count - 1);
	return 0;
}

static void entry_free(struct pf_entry *e)
{
	if (e->password != NULL) {
		explicit_bzero(e->password, strlen(e->password));
		free(e->password);
	}
	postern_auth_user_free(&e->user);
}

static int parse_buffer(struct passwd_file *pf, char *buf, size_t len, struct pf_table *t,
			const char **error_r)
{
	size_t max_line = pf->set.max_line != 0 ? pf->set.max_line : PF_DEFAULT_MAX_LINE;
	unsigned lineno = 0;
	char *line = buf, *end = buf + len;

	while (line < end) {
		char *nl = memchr(line, '\n', (size_t)(end - line));
		size_t llen = nl != NULL ? (size_t)(nl - line) : (size_t)(end - line);
		const char *why = NULL;
		struct pf_entry entry = { NULL, NULL };
		int ret;

		lineno++;
		if (llen > 0 && line[llen - 1] == '\r')
			llen--;
		if (llen > max_line) {
			why = "line too long";
			ret = -1;
		} else if (memchr(line, '\0', llen) != NULL) {
			why = "NUL byte in line";
			ret = -1;
		} else {
			line[llen] = '\0';
			ret = parse_line(line, &entry, &why);
		}
		line = nl != NULL ? nl + 1 : end;
		if (ret == -2) {
			*error_r = auth_error("out of memory");
			return -1;
		}
		if (ret < 0) {
			t->bad_lines++;
			auth_log(pf->set.log, pf->set.log_ctx, POSTERN_AUTH_LOG_WARNING,
				 "%s:%u: %s: line ignored", pf->path, lineno, why);
			continue;
		}
		if (ret == 0)
			continue;
		if (table_find(t, entry.user->name) != NULL) {
			auth_log(pf->set.log, pf->set.log_ctx, POSTERN_AUTH_LOG_WARNING,
				 "%s:%u: user %s already defined: line ignored", pf->path,
				 lineno, entry.user->name);
			t->bad_lines++;
			entry_free(&entry);
			continue;
		}
		if (entry.password != NULL && postern_password_is_test_only(entry.password))
			auth_log(pf->set.log, pf->set.log_ctx, POSTERN_AUTH_LOG_WARNING,
				 "%s:%u: user %s has a PLAIN password: for tests only%s",
				 pf->path, lineno, entry.user->name,
				 pf->set.allow_plain ? "" : " (refused: allow_plain is off)");
		if (table_add(t, &entry) < 0) {
			entry_free(&entry);
			*error_r = auth_error("out of memory");
			return -1;
		}
	}
	return 0;
}

/* Read and parse the whole file into a new table. */
static int load(struct passwd_file *pf, struct pf_table **table_r, struct stat *st_r,
		const char **error_r)
{
	size_t max = pf->set.max_file_size != 0 ? pf->set.max_file_size : PF_DEFAULT_MAX_FILE;
	struct pf_table *t;
	size_t len = 0;
	char *buf;
	int fd, ret;

	fd = open(pf->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*error_r = auth_error("open(%s): %s", pf->path, strerror(errno));
		return -1;
	}
	if (fstat(fd, st_r) < 0) {
		*error_r = auth_error("fstat(%s): %s", pf->path, strerror(errno));
		close(fd);
		return -1;
	}
	if ((uint64_t)st_r->st_size > max) {
		*error_r = auth_error("%s is larger than %zu bytes", pf->path, max);
		close(fd);
		return -1;
	}
	buf = malloc((size_t)st_r->st_size + 1);
	if (buf == NULL) {
		close(fd);
		*error_r = auth_error("out of memory");
		return -1;
	}
	while (len < (size_t)st_r->st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st_r->st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = auth_error("read(%s): %s", pf->path, strerror(errno));
			close(fd);
			explicit_bzero(buf, len);
			free(buf);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	t = calloc(1, sizeof(*t));
	if (t == NULL) {
		*error_r = auth_error("out of memory");
		ret = -1;
	} else {
		ret = parse_buffer(pf, buf, len, t, error_r);
	}
	/* the buffer held every hash */
	explicit_bzero(buf, len);
	free(buf);
	if (ret < 0) {
		table_free(t);
		return -1;
	}
	*table_r = t;
	return 0;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
		a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Called with the mutex held. */
static void maybe_reload(struct passwd_file *pf)
{
	uint64_t now = mono_ms();
	struct pf_table *t;
	struct stat st;
	const char *error;

	if (pf->set.check_interval_ms != 0 && now - pf->last_check_ms < pf->set.check_interval_ms)
		return;
	pf->last_check_ms = now;
	if (stat(pf->path, &st) < 0) {
		auth_log(pf->set.log, pf->set.log_ctx, POSTERN_AUTH_LOG_ERROR,
			 "stat(%s): %s: keeping the users loaded before", pf->path,
			 strerror(errno));
		return;
	}
	if (same_file(&st, &pf->st))
		return;
	if (load(pf, &t, &st, &error) < 0) {
		auth_log(pf->set.log, pf->set.log_ctx, POSTERN_AUTH_LOG_ERROR,
			 "reloading %s: %s: keeping the users loaded before", pf->path, error);
		pf->st = st;	/* do not retry until it changes again */
		return;
	}
	table_free(pf->table);
	pf->table = t;
	pf->st = st;
	auth_log(pf->set.log, pf->set.log_ctx, POSTERN_AUTH_LOG_INFO,
		 "%s reloaded: %u users, %u lines ignored", pf->path, t->count, t->bad_lines);
}

/* Copy the user (and its password) out under the lock. 1 found, 0 not, -1
 * out of memory. */
static int find_user(struct passwd_file *pf, const char *name, struct postern_auth_user **user_r,
		     char **password_r)
{
	const struct pf_entry *e;
	int ret = 0;

	pthread_mutex_lock(&pf->lock);
	maybe_reload(pf);
	e = table_find(pf->table, name);
	if (e != NULL) {
		ret = 1;
		*user_r = postern_auth_user_dup(e->user);
		if (*user_r == NULL)
			ret = -1;
		if (password_r != NULL) {
			*password_r = e->password == NULL ? NULL : strdup(e->password);
			if (e->password != NULL && *password_r == NULL)
				ret = -1;
		}
	}
	pthread_mutex_unlock(&pf->lock);
	return ret;
}

static enum postern_auth_result pf_lookup(struct postern_userdb *db, const char *user,
					  struct postern_auth_user **user_r,
					  const char **error_r)
{
	struct passwd_file *pf = (struct passwd_file *)db;
	struct postern_auth_user *found = NULL;
	char *name = auth_user_canonical(user);
	int ret;

	if (name == NULL)
		return POSTERN_AUTH_UNKNOWN_USER;
	ret = find_user(pf, name, &found, NULL);
	free(name);
	if (ret < 0) {
		postern_auth_user_free(&found);
		*error_r = auth_error("out of memory");
		return POSTERN_AUTH_TEMPFAIL;
	}
	if (ret == 0)
		return POSTERN_AUTH_UNKNOWN_USER;
	if (user_r != NULL)
		*user_r = found;
	else
		postern_auth_user_free(&found);
	return POSTERN_AUTH_OK;
}

static void wipe_free(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static enum postern_auth_result pf_verify(struct postern_userdb *db, const char *user,
					  const char *password,
					  struct postern_auth_user **user_r,
					  const char **error_r)
{
	struct passwd_file *pf = (struct passwd_file *)db;
	struct postern_auth_user *found = NULL;
	enum postern_auth_result result;
	char *name = auth_user_canonical(user), *stored = NULL;
	const char *err;
	int ret;

	ret = name == NULL ? 0 : find_user(pf, name, &found, &stored);
	free(name);
	if (ret < 0) {
		postern_auth_user_free(&found);
		wipe_free(stored);
		*error_r = auth_error("out of memory");
		return POSTERN_AUTH_TEMPFAIL;
	}
	if (ret == 0) {
		(void)postern_password_verify(pf->dummy_hash, password, &err);
		return POSTERN_AUTH_UNKNOWN_USER;
	}
	if (stored == NULL) {
		result = POSTERN_AUTH_FAILED;	/* no password: lookups only */
	} else if (postern_password_is_test_only(stored) && !pf->set.allow_plain) {
		result = POSTERN_AUTH_FAILED;
	} else {
		ret = postern_password_verify(stored, password, &err);
		if (ret > 0) {
			result = POSTERN_AUTH_OK;
		} else if (ret == 0) {
			result = POSTERN_AUTH_FAILED;
		} else {
			*error_r = auth_error("%s: user %s: %s", pf->path, found->name, err);
			result = POSTERN_AUTH_TEMPFAIL;
		}
	}
	wipe_free(stored);
	if (result == POSTERN_AUTH_OK && user_r != NULL)
		*user_r = found;
	else
		postern_auth_user_free(&found);
	return result;
}

static void pf_free(struct postern_userdb *db)
{
	struct passwd_file *pf = (struct passwd_file *)db;

	table_free(pf->table);
	pthread_mutex_destroy(&pf->lock);
	free(pf->path);
	wipe_free(pf->dummy_hash);
	free(pf);
}

static const struct postern_userdb_ops passwd_file_ops = {
	.name = "passwd-file",
	.lookup = pf_lookup,
	.verify = pf_verify,
	.free = pf_free,
};

POSTERN_API int postern_passwd_file_open(const struct postern_passwd_file_settings *set,
					 struct postern_userdb **db_r, const char **error_r)
{
	struct passwd_file *pf;

	*db_r = NULL;
	if (set == NULL || set->struct_size < sizeof(*set) || set->path == NULL) {
		*error_r = auth_error("passwd-file settings: need struct_size %zu and a path "
				      "(use POSTERN_PASSWD_FILE_SETTINGS_INIT)", sizeof(*set));
		return -1;
	}
	pf = calloc(1, sizeof(*pf));
	if (pf == NULL) {
		*error_r = auth_error("out of memory");
		return -1;
	}
	pf->db.ops = &passwd_file_ops;
	pf->set = *set;
	pthread_mutex_init(&pf->lock, NULL);
	if ((pf->path = strdup(set->path)) == NULL) {
		*error_r = auth_error("out of memory");
		pf_free(&pf->db);
		return -1;
	}
	pf->set.path = pf->path;
	if (postern_password_hash("SHA512-CRYPT", "postern-dummy", 0, &pf->dummy_hash,
				  error_r) < 0 ||
	    load(pf, &pf->table, &pf->st, error_r) < 0) {
		pf_free(&pf->db);
		return -1;
	}
	pf->last_check_ms = mono_ms();
	auth_log(pf->set.log, pf->set.log_ctx, POSTERN_AUTH_LOG_INFO,
		 "%s: %u users, %u lines ignored", pf->path, pf->table->count,
		 pf->table->bad_lines);
	*db_r = &pf->db;
	return 0;
}

POSTERN_API void postern_passwd_file_counts(struct postern_userdb *db, unsigned *users_r,
					    unsigned *bad_lines_r)
{
	struct passwd_file *pf = (struct passwd_file *)db;

	assert(db->ops == &passwd_file_ops);
	pthread_mutex_lock(&pf->lock);
	*users_r = pf->table != NULL ? pf->table->count : 0;
	*bad_lines_r = pf->table != NULL ? pf->table->bad_lines : 0;
	pthread_mutex_unlock(&pf->lock);
}
