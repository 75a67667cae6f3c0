/*
 * Small helpers of the queue-store module: allocation that aborts on
 * out-of-memory (like the core's allocators, which modules cannot call),
 * growable buffers, intrusive lists, per-thread error strings, clocks and
 * dates. Everything here is safe in worker threads.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "queue_store.h"

static void q_oom(void)
{
	static const char msg[] = "queue-store: out of memory\n";

	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	abort();
}

void *q_malloc(size_t size)
{
	void *ptr = malloc(size == 0 ? 1 : size);

	if (ptr == NULL)
		q_oom();
	return ptr;
}

void *q_calloc(size_t count, size_t size)
{
	void *ptr = calloc(count == 0 ? 1 : count, size == 0 ? 1 : size);

	if (ptr == NULL)
		q_oom();
	return ptr;
}

void *q_realloc(void *ptr, size_t size)
{
	void *new_ptr = realloc(ptr, size == 0 ? 1 : size);

	if (new_ptr == NULL)
		q_oom();
	return new_ptr;
}

char *q_strdup(const char *str)
{
	return q_strndup(str, strlen(str));
}

char *q_strndup(const char *str, size_t len)
{
	char *copy = q_malloc(len + 1);

	memcpy(copy, str, len);
	copy[len] = '\0';
	return copy;
}

char *q_strdup_or_null(const char *str)
{
	return str == NULL ? NULL : q_strdup(str);
}

char *q_asprintf(const char *fmt, ...)
{
	va_list args;
	char *str;

	va_start(args, fmt);
	if (vasprintf(&str, fmt, args) < 0)
		q_oom();
	va_end(args);
	return str;
}

const char *q_error(const char *fmt, ...)
{
	static __thread char buf[1024];
	va_list args;

	va_start(args, fmt);
	vsnprintf(buf, sizeof(buf), fmt, args);
	va_end(args);
	return buf;
}

/* ---- buffers ---- */

static void qbuf_reserve(struct qbuf *buf, size_t more)
{
	if (buf->len + more + 1 <= buf->size)
		return;
	size_t size = buf->size < 256 ? 256 : buf->size;

	while (size < buf->len + more + 1) {
		if (size > SIZE_MAX / 2)
			q_oom();
		size *= 2;
	}
	buf->data = q_realloc(buf->data, size);
	buf->size = size;
}

void qbuf_append(struct qbuf *buf, const void *data, size_t len)
{
	qbuf_reserve(buf, len);
	if (len > 0)
		memcpy(buf->data + buf->len, data, len);
	buf->len += len;
	buf->data[buf->len] = '\0';
}

void qbuf_puts(struct qbuf *buf, const char *str)
{
	qbuf_append(buf, str, strlen(str));
}

void qbuf_printf(struct qbuf *buf, const char *fmt, ...)
{
	va_list args;
	int len;

	va_start(args, fmt);
	len = vsnprintf(NULL, 0, fmt, args);
	va_end(args);
	if (len < 0)
		return;
	qbuf_reserve(buf, (size_t)len);
	va_start(args, fmt);
	vsnprintf(buf->data + buf->len, (size_t)len + 1, fmt, args);
	va_end(args);
	buf->len += (size_t)len;
}

void qbuf_free(struct qbuf *buf)
{
	free(buf->data);
	buf->data = NULL;
	buf->len = buf->size = 0;
}

/* ---- lists ---- */

void qlist_init(struct qlist *head)
{
	head->prev = head->next = head;
}

bool qlist_empty(const struct qlist *head)
{
	return head->next == head;
}

void qlist_add_tail(struct qlist *head, struct qlist *item)
{
	item->prev = head->prev;
	item->next = head;
	head->prev->next = item;
	head->prev = item;
}

void qlist_del(struct qlist *item)
{
	item->prev->next = item->next;
	item->next->prev = item->prev;
	item->prev = item->next = NULL;
}

bool qlist_linked(const struct qlist *item)
{
	return item->next != NULL;
}

/* ---- clocks, dates ---- */

uint64_t q_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint32_t q_random32(void)
{
	uint32_t value;

	if (getrandom(&value, sizeof(value), GRND_NONBLOCK) != (ssize_t)sizeof(value))
		value = (uint32_t)random();
	return value;
}

void q_rfc5322_date(uint64_t ms, char *buf, size_t size)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	strftime(buf, size, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

void q_iso_date(uint64_t ms, char *buf, size_t size)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int q_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void q_lowercase(char *str)
{
	for (; *str != '\0'; str++) {
		if (*str >= 'A' && *str <= 'Z')
			*str = (char)(*str - 'A' + 'a');
	}
}

const char *q_address_domain(const char *address)
{
	const char *at = strrchr(address, '@');

	return at == NULL || at[1] == '\0' ? NULL : at + 1;
}
