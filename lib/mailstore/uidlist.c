/*
 * postern-uidlist: the UID <-> file mapping of one folder, in the spirit of
 * Dovecot's dovecot-uidlist version 3 (but our own file, so neither server
 * rewrites the other's):
 *
 *   3 V<uidvalidity> N<nextuid> G<guid, 32 hex>
 *   <uid> [S<size>] [W<crlf size>] :<base name>
 *
 * Entries are in ascending UID order. S and W appear only when the name has
 * no ",S=" / ",W=" (a size learned once by stat() or by reading the file,
 * kept so it is never learned twice). Unknown header fields and entry
 * fields are ignored. New entries may be appended (one write, under the
 * lock), so the header's N can be behind: the next UID is the larger of N
 * and the last UID + 1. A last line without '\n' is an interrupted append
 * and is ignored. Everything else is replaced only with rename().
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "mailstore_private.h"

/* Far above any real mailbox (a million messages is ~80 MB); a bigger file
 * is not ours. */
#define UIDLIST_MAX_SIZE (512ULL * 1024 * 1024)

struct ms_rec *ms_uidlist_add(struct ms_uidlist *ul)
{
	struct ms_rec *rec;

	if (ul->count == ul->alloc) {
		unsigned alloc = ul->alloc == 0 ? 64 : ul->alloc * 2;
		struct ms_rec *recs = realloc(ul->recs, alloc * sizeof(*recs));

		if (recs == NULL)
			return NULL;
		ul->recs = recs;
		ul->alloc = alloc;
	}
	rec = &ul->recs[ul->count++];
	memset(rec, 0, sizeof(*rec));
	rec->msg.size = MAILSTORE_SIZE_UNKNOWN;
	rec->msg.vsize = MAILSTORE_SIZE_UNKNOWN;
	return rec;
}

void ms_uidlist_clear(struct ms_uidlist *ul)
{
	for (unsigned i = 0; i < ul->count; i++)
		free(ul->recs[i].name);
	free(ul->recs);
	memset(ul, 0, sizeof(*ul));
}

int ms_uidlist_init_new(struct ms_uidlist *ul, const char **error_r)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char rnd[16];
	time_t now = time(NULL);

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		*error_r = ms_error_errno("getrandom");
		return -1;
	}
	ms_uidlist_clear(ul);
	/* Time based, so a lost and recreated uidlist gets a larger value
	 * and clients know to throw their caches away. */
	ul->uidvalidity = now > 0 && now < UINT32_MAX ? (uint32_t)now : 1;
	ul->nextuid = 1;
	for (unsigned i = 0; i < 16; i++) {
		ul->guid[2 * i] = hex[rnd[i] >> 4];
		ul->guid[2 * i + 1] = hex[rnd[i] & 15];
	}
	ul->guid[32] = '\0';
	ul->loaded = true;
	return 0;
}

static bool parse_u64(const char **p, uint64_t *value_r)
{
	uint64_t v = 0;
	const char *s = *p;

	if (*s < '0' || *s > '9')
		return false;
	while (*s >= '0' && *s <= '9') {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s++ - '0');
	}
	*p = s;
	*value_r = v;
	return true;
}

static bool parse_header(const char *line, struct ms_uidlist *ul)
{
	const char *p = line;
	uint64_t v;
	bool have_v = false;

	if (p[0] != '3' || (p[1] != ' ' && p[1] != '\0'))
		return false;
	p++;
	ul->nextuid = 1;
	ul->guid[0] = '\0';
	while (*p == ' ') {
		char key;

		p++;
		key = *p;
		if (key == '\0')
			break;
		p++;
		switch (key) {
		case 'V':
		case 'N':
			if (!parse_u64(&p, &v) || v == 0 || v > UINT32_MAX)
				return false;
			if (key == 'V') {
				ul->uidvalidity = (uint32_t)v;
				have_v = true;
			} else {
				ul->nextuid = (uint32_t)v;
			}
			break;
		case 'G':
			if (strspn(p, "0123456789abcdef") != 32)
				return false;
			memcpy(ul->guid, p, 32);
			ul->guid[32] = '\0';
			p += 32;
			break;
		}
		p += strcspn(p, " ");	/* an unknown field, or junk after ours */
	}
	return have_v;
}

/* One "<uid> [fields] :<name>" line. */
static bool parse_entry(char *line, struct ms_uidlist *ul, const char **why_r)
{
	const char *p = line;
	uint64_t uid, v, size = MAILSTORE_SIZE_UNKNOWN, vsize = MAILSTORE_SIZE_UNKNOWN;
	struct ms_name parsed;
	struct ms_rec *rec;
	char *name;

	if (!parse_u64(&p, &uid) || uid == 0 || uid > UINT32_MAX) {
		*why_r = "bad UID";
		return false;
	}
	if (ul->count > 0 && uid <= ul->recs[ul->count - 1].msg.uid) {
		*why_r = "UIDs not ascending";
		return false;
	}
	for (;;) {
		if (*p != ' ') {
			*why_r = "bad field separator";
			return false;
		}
		p++;
		if (*p == ':')
			break;
		if ((*p == 'S' || *p == 'W') && p[1] >= '0' && p[1] <= '9') {
			char key = *p++;

			if (!parse_u64(&p, &v)) {
				*why_r = "bad size field";
				return false;
			}
			if (key == 'S')
				size = v;
			else
				vsize = v;
		} else {
			p += strcspn(p, " ");
		}
	}
	name = (char *)p + 1;
	name[strcspn(name, ":")] = '\0';	/* the base only, if flags were kept */
	if (!ms_name_is_message(name) || strlen(name) > MS_NAME_MAX) {
		*why_r = "bad file name";
		return false;
	}
	if ((rec = ms_uidlist_add(ul)) == NULL || (rec->name = strdup(name)) == NULL) {
		*why_r = "out of memory";
		return false;
	}
	ms_name_parse(name, &parsed);
	rec->msg.uid = (uint32_t)uid;
	rec->msg.filename = rec->name;
	rec->base_len = (uint32_t)parsed.base_len;
	rec->size_from_name = parsed.size != MAILSTORE_SIZE_UNKNOWN;
	rec->vsize_from_name = parsed.vsize != MAILSTORE_SIZE_UNKNOWN;
	rec->msg.size = rec->size_from_name ? parsed.size : size;
	rec->msg.vsize = rec->vsize_from_name ? parsed.vsize : vsize;
	if (uid >= ul->nextuid)
		ul->nextuid = (uint32_t)uid + 1;
	return true;
}

static int read_all(int fd, const char *path, char **buf_r, size_t *len_r, const char **error_r)
{
	size_t len = 0, alloc = 65536;
	char *buf = malloc(alloc);

	if (buf == NULL) {
		*error_r = ms_error("out of memory");
		return -1;
	}
	for (;;) {
		ssize_t n;

		if (alloc - len < 4096) {
			char *nbuf;

			if (alloc >= UIDLIST_MAX_SIZE) {
				free(buf);
				*error_r = ms_error("%s is larger than %llu bytes", path,
						    UIDLIST_MAX_SIZE);
				return -1;
			}
			if ((nbuf = realloc(buf, alloc * 2)) == NULL) {
				free(buf);
				*error_r = ms_error("out of memory");
				return -1;
			}
			buf = nbuf;
			alloc *= 2;
		}
		n = read(fd, buf + len, alloc - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			*error_r = ms_error_errno("read(%s)", path);
			free(buf);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*buf_r = buf;
	*len_r = len;
	return 0;
}

int ms_uidlist_read(const char *path, struct ms_uidlist *ul, const char **why_r,
		    const char **error_r)
{
	char *buf, *line, *end;
	size_t len;
	struct stat st;
	int fd;

	*why_r = NULL;
	ms_uidlist_clear(ul);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		*error_r = ms_error_errno("open(%s)", path);
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		*error_r = ms_error_errno("fstat(%s)", path);
		close(fd);
		return -1;
	}
	if (read_all(fd, path, &buf, &len, error_r) < 0) {
		close(fd);
		return -1;
	}
	close(fd);
	if (memchr(buf, '\0', len) != NULL) {
		*why_r = "NUL byte";
		goto corrupt;
	}
	end = strchr(buf, '\n');
	if (end == NULL) {
		*why_r = "no header line";
		goto corrupt;
	}
	*end = '\0';
	if (!parse_header(buf, ul)) {
		*why_r = "bad header";
		goto corrupt;
	}
	for (line = end + 1; (end = strchr(line, '\n')) != NULL; line = end + 1) {
		*end = '\0';
		if (!parse_entry(line, ul, why_r))
			goto corrupt;
	}
	/* The rest, if any, is an interrupted append: ignored, and the file
	 * must be rewritten before anything is appended after it. */
	ul->needs_rewrite = *line != '\0';
	free(buf);
	if (ul->guid[0] == '\0')
		memset(ul->guid, '0', 32);
	ul->loaded = true;
	ul->st = st;
	ul->st.st_size = (off_t)len;
	return 1;
corrupt:
	free(buf);
	ms_uidlist_clear(ul);
	return 0;
}

/* Append one entry line to buf; returns the new length. */
static size_t format_entry(char *buf, const struct ms_rec *rec)
{
	size_t len = (size_t)sprintf(buf, "%u", rec->msg.uid);

	if (!rec->size_from_name && rec->msg.size != MAILSTORE_SIZE_UNKNOWN)
		len += (size_t)sprintf(buf + len, " S%llu", (unsigned long long)rec->msg.size);
	if (!rec->vsize_from_name && rec->msg.vsize != MAILSTORE_SIZE_UNKNOWN)
		len += (size_t)sprintf(buf + len, " W%llu", (unsigned long long)rec->msg.vsize);
	buf[len++] = ' ';
	buf[len++] = ':';
	memcpy(buf + len, rec->name, rec->base_len);
	len += rec->base_len;
	buf[len++] = '\n';
	return len;
}

/* Longest entry line: uid, two sizes, name. */
#define ENTRY_MAX (10 + 2 * 22 + 3 + MS_NAME_MAX + 1)

static char *format_entries(const struct ms_uidlist *ul, unsigned from, const char *header,
			    size_t *len_r)
{
	size_t hlen = strlen(header), len = hlen;
	char *buf = malloc(hlen + (size_t)(ul->count - from) * ENTRY_MAX + 1);

	if (buf == NULL)
		return NULL;
	memcpy(buf, header, hlen);
	for (unsigned i = from; i < ul->count; i++) {
		if (!ul->recs[i].msg.expunged)
			len += format_entry(buf + len, &ul->recs[i]);
	}
	*len_r = len;
	return buf;
}

static int write_full(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int ms_uidlist_write(const struct mailstore_settings *set, const char *dir,
		     struct ms_uidlist *ul, struct ms_lock *lock, const char **error_r)
{
	static atomic_uint counter;
	char header[128], tmpname[128], *buf, *tmp_path, *path;
	size_t len;
	struct stat st;
	int fd, ret = -1;

	snprintf(header, sizeof(header), "3 V%u N%u G%s\n", ul->uidvalidity, ul->nextuid,
		 ul->guid);
	snprintf(tmpname, sizeof(tmpname), MS_UIDLIST_NAME ".%ld.%u.tmp", (long)getpid(),
		 atomic_fetch_add(&counter, 1));
	buf = format_entries(ul, 0, header, &len);
	tmp_path = ms_path(dir, tmpname);
	path = ms_path(dir, MS_UIDLIST_NAME);
	if (buf == NULL || tmp_path == NULL || path == NULL) {
		*error_r = ms_error("out of memory");
		goto out;
	}
	fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		*error_r = ms_error_errno("open(%s)", tmp_path);
		goto out;
	}
	if (write_full(fd, buf, len) < 0 || (!set->no_fsync && fsync(fd) < 0) ||
	    fstat(fd, &st) < 0) {
		*error_r = ms_error_errno("write(%s)", tmp_path);
		close(fd);
		unlink(tmp_path);
		goto out;
	}
	close(fd);
	if (ms_lock_verify(set, lock, error_r) < 0) {
		unlink(tmp_path);
		goto out;
	}
	if (rename(tmp_path, path) < 0) {
		*error_r = ms_error_errno("rename(%s, %s)", tmp_path, path);
		unlink(tmp_path);
		goto out;
	}
	if (!set->no_fsync && ms_fsync_dir(dir, error_r) < 0)
		goto out;
	ul->st = st;
	ul->needs_rewrite = false;
	ret = 0;
out:
	free(buf);
	free(tmp_path);
	free(path);
	return ret;
}

int ms_uidlist_append(const struct mailstore_settings *set, const char *path,
		      struct ms_uidlist *ul, unsigned from, const char **error_r)
{
	size_t len;
	char *buf = format_entries(ul, from, "", &len);
	struct stat st;
	int fd, ret = -1;

	if (buf == NULL) {
		*error_r = ms_error("out of memory");
		return -1;
	}
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		*error_r = ms_error_errno("open(%s)", path);
		free(buf);
		return -1;
	}
	if (fstat(fd, &st) < 0 || st.st_ino != ul->st.st_ino || st.st_size != ul->st.st_size) {
		/* not the file we read under this lock: a bug, or a foreign
		 * writer ignoring the lock. Do not add to it blindly. */
		*error_r = ms_error("%s changed under our lock", path);
	} else if (write_full(fd, buf, len) < 0 || (!set->no_fsync && fsync(fd) < 0) ||
		   fstat(fd, &st) < 0) {
		*error_r = ms_error_errno("append to %s", path);
	} else {
		ul->st = st;
		ret = 0;
	}
	close(fd);
	free(buf);
	return ret;
}
