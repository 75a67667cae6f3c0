/*
 * Unit tests of the mailbox store library (lib/mailstore), its own Check
 * runner in fork mode: every test works in a fresh temporary Maildir.
 * `check_mailstore TCASE` runs one test case by name.
 *
 * What must hold: Maildir names as Dovecot and Courier write them, stable
 * UIDs across re-opens and concurrent processes, no lost message, exactly
 * once delivery ids, Maildir++ quota accounting, and a scan of 100,000
 * messages that reads no message body.
 */
#include "config.h"

#include <check.h>
#include "check_main.h"
#include <pthread.h>
#include <stddef.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <postern/mailstore.h>

static char root[300];
static char base_dir[256];
static char logbuf[8192];

static void test_log(void *ctx, enum mailstore_log_level level, const char *msg)
{
	size_t len = strlen(logbuf);

	(void)ctx;
	snprintf(logbuf + len, sizeof(logbuf) - len, "%d:%s\n", (int)level, msg);
}

static struct mailstore_settings settings(void)
{
	struct mailstore_settings set = MAILSTORE_SETTINGS_INIT;

	set.root = root;
	set.log = test_log;
	set.lock_timeout_secs = 10;
	return set;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void setup(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(base_dir, sizeof(base_dir), "%s/check_mailstore.XXXXXX",
		 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(base_dir));
	snprintf(root, sizeof(root), "%s/Maildir", base_dir);
	logbuf[0] = '\0';
}

static void teardown(void)
{
	nftw(base_dir, rm_entry, 32, FTW_DEPTH | FTW_PHYS);
}

/* ---- helpers ---- */

static void path_of(char *buf, size_t size, const char *sub)
{
	snprintf(buf, size, "%s/%s", root, sub);
}

static unsigned count_dir(const char *sub)
{
	char path[512];
	struct dirent *de;
	unsigned n = 0;
	DIR *dir;

	path_of(path, sizeof(path), sub);
	dir = opendir(path);
	if (dir == NULL)
		return 0;
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] != '.')
			n++;
	}
	closedir(dir);
	return n;
}

/* The only (or first) file name in a directory. */
static void first_name(const char *sub, char *buf, size_t size)
{
	char path[512];
	struct dirent *de;
	DIR *dir;

	buf[0] = '\0';
	path_of(path, sizeof(path), sub);
	dir = opendir(path);
	ck_assert_ptr_nonnull(dir);
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] != '.') {
			snprintf(buf, size, "%s", de->d_name);
			break;
		}
	}
	closedir(dir);
}

static void write_file(const char *path, const char *content)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(content, f);
	ck_assert_int_eq(fclose(f), 0);
}

static char *read_file(const char *path)
{
	static char buf[1 << 16];
	FILE *f = fopen(path, "r");
	size_t n;

	ck_assert_msg(f != NULL, "open %s: %s", path, strerror(errno));
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void deliver(const char *folder, const char *body, const char *id)
{
	struct mailstore_settings set = settings();
	struct mailstore_delivery d = MAILSTORE_DELIVERY_INIT;
	const char *error = NULL;

	d.folder = folder;
	d.data = body;
	d.size = strlen(body);
	d.id = id;
	ck_assert_msg(mailstore_deliver(&set, &d, NULL, &error) == MAILSTORE_DELIVERED,
		      "deliver: %s", error);
}

static struct mailstore *open_box(const char *folder, unsigned flags)
{
	struct mailstore_settings set = settings();
	struct mailstore *box;
	const char *error = NULL;

	ck_assert_msg(mailstore_open(&set, folder, flags, &box, &error) == 0, "open: %s", error);
	ck_assert_msg(mailstore_sync(box, &error) == 0, "sync: %s", error);
	return box;
}

/* A bad folder name fails cleanly: the caller's settings are untouched
 * (this used to free the caller's root: a double free under ASan). */
START_TEST(t_open_bad_folder_name)
{
	static const char *const bad[] = { "../escape", ".hidden/..", "a/../../b", "" };
	struct mailstore_settings set = settings();
	struct mailstore *box = NULL;
	const char *error = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		error = NULL;
		ck_assert_msg(mailstore_open(&set, bad[i], 0, &box, &error) == -1,
			      "opened folder '%s'", bad[i]);
		ck_assert_ptr_nonnull(error);
		ck_assert_ptr_null(box);
		ck_assert_str_eq(set.root, root);
	}
	box = open_box(NULL, MAILSTORE_OPEN_CREATE);
	mailstore_close(&box);
}
END_TEST

static bool matches(const char *re, const char *text)
{
	regex_t rx;
	int ret;

	ck_assert_int_eq(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
	ret = regexec(&rx, text, 0, NULL, 0);
	regfree(&rx);
	return ret == 0;
}

/* ---- delivery and names ---- */

START_TEST(t_deliver_name_and_content)
{
	static const char body[] = "Subject: hi\nTo: alice\n\nline one\r\nline two\n";
	struct mailstore_settings set = settings();
	struct mailstore_delivery d = MAILSTORE_DELIVERY_INIT;
	char name[512], path[1024], re[256], *filename = NULL;
	const char *error = NULL;

	d.data = body;
	d.size = strlen(body);
	ck_assert_int_eq(mailstore_deliver(&set, &d, &filename, &error), MAILSTORE_DELIVERED);
	ck_assert_ptr_nonnull(filename);
	first_name("new", name, sizeof(name));
	ck_assert_str_eq(name, filename);
	/* 5 LFs, 1 of them already CRLF: W = S + 4 */
	snprintf(re, sizeof(re), "^[0-9]+\\.M[0-9]+P[0-9]+Q[0-9]+\\.[^/:,]+,S=%zu,W=%zu$",
		 strlen(body), strlen(body) + 4);
	ck_assert_msg(matches(re, name), "name %s !~ %s", name, re);
	ck_assert_uint_eq(count_dir("tmp"), 0);
	ck_assert_uint_eq(count_dir("cur"), 0);
	snprintf(path, sizeof(path), "%s/new/%s", root, name);
	ck_assert_str_eq(read_file(path), body);
	free(filename);
}
END_TEST

START_TEST(t_deliver_from_fd)
{
	struct mailstore_settings set = settings();
	struct mailstore_delivery d = MAILSTORE_DELIVERY_INIT;
	char src[512], name[512], path[1024], big[200000];
	const char *error = NULL;
	int fd;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (size_t i = 80; i < sizeof(big) - 1; i += 81)
		big[i] = '\n';
	snprintf(src, sizeof(src), "%s/src", base_dir);
	write_file(src, big);
	fd = open(src, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	d.fd = fd;
	d.received = 1000000000;
	ck_assert_int_eq(mailstore_deliver(&set, &d, NULL, &error), MAILSTORE_DELIVERED);
	close(fd);
	first_name("new", name, sizeof(name));
	snprintf(path, sizeof(path), "%s/new/%s", root, name);
	/* lines of 80 bytes and a LF: W adds one byte per LF */
	snprintf(src, sizeof(src), ",S=%zu,W=%zu$", sizeof(big) - 1,
		 sizeof(big) - 1 + (sizeof(big) - 1 - 80 + 80) / 81);
	ck_assert_msg(matches(src, name), "%s !~ %s", name, src);
	{
		struct stat st;
		char *copy = malloc(sizeof(big));
		FILE *f = fopen(path, "r");

		ck_assert_ptr_nonnull(f);
		ck_assert_int_eq(fstat(fileno(f), &st), 0);
		ck_assert_int_eq(st.st_mtime, 1000000000);
		ck_assert_uint_eq(fread(copy, 1, sizeof(big), f), sizeof(big) - 1);
		ck_assert(memcmp(copy, big, sizeof(big) - 1) == 0);
		fclose(f);
		free(copy);
	}
}
END_TEST

START_TEST(t_deliver_bad_arguments)
{
	struct mailstore_settings set = settings();
	struct mailstore_delivery d = MAILSTORE_DELIVERY_INIT;
	const char *error = NULL;
	char long_id[MAILSTORE_DELIVERY_ID_MAX + 2];

	/* neither data nor fd */
	ck_assert_int_eq(mailstore_deliver(&set, &d, NULL, &error), MAILSTORE_DELIVER_FAILED);
	ck_assert_ptr_nonnull(error);
	/* both */
	d.data = "x";
	d.size = 1;
	d.fd = 0;
	ck_assert_int_eq(mailstore_deliver(&set, &d, NULL, &error), MAILSTORE_DELIVER_FAILED);
	d.fd = -1;
	/* a folder that does not exist, without create_folder */
	d.folder = "Nope";
	ck_assert_int_eq(mailstore_deliver(&set, &d, NULL, &error), MAILSTORE_DELIVER_FAILED);
	ck_assert_msg(strstr(error, "does not exist") != NULL, "%s", error);
	/* an invalid folder name */
	d.folder = "../escape";
	ck_assert_int_eq(mailstore_deliver(&set, &d, NULL, &error), MAILSTORE_DELIVER_FAILED);
	d.folder = NULL;
	/* an id that is too long */
	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	d.id = long_id;
	ck_assert_int_eq(mailstore_deliver(&set, &d, NULL, &error), MAILSTORE_DELIVER_FAILED);
	d.id = "";
	ck_assert_int_eq(mailstore_deliver(&set, &d, NULL, &error), MAILSTORE_DELIVER_FAILED);
	/* old struct */
	d.id = NULL;
	d.struct_size = 4;
	ck_assert_int_eq(mailstore_deliver(&set, &d, NULL, &error), MAILSTORE_DELIVER_FAILED);
	ck_assert_uint_eq(count_dir("new"), 0);
	ck_assert_uint_eq(count_dir("tmp"), 0);
}
END_TEST

START_TEST(t_deliver_with_flags_into_cur)
{
	struct mailstore_settings set = settings();
	struct mailstore_delivery d = MAILSTORE_DELIVERY_INIT;
	const char *error = NULL;
	char name[512];

	d.data = "a\n";
	d.size = 2;
	d.flags = MAILSTORE_FLAG_SEEN | MAILSTORE_FLAG_DRAFT | MAILSTORE_FLAG_FLAGGED;
	ck_assert_int_eq(mailstore_deliver(&set, &d, NULL, &error), MAILSTORE_DELIVERED);
	first_name("cur", name, sizeof(name));
	ck_assert_msg(matches(",S=2,W=3:2,DFS$", name), "%s", name);
	ck_assert_uint_eq(count_dir("new"), 0);
}
END_TEST

/* ---- UIDs ---- */

START_TEST(t_sync_assigns_uids_in_order)
{
	struct mailstore *box;
	const struct mailstore_msg *m;
	char path[512], *text;

	deliver(NULL, "one\n", NULL);
	deliver(NULL, "two two\n", NULL);
	deliver(NULL, "three three three\n", NULL);
	box = open_box(NULL, 0);
	ck_assert_uint_eq(mailstore_count(box), 3);
	ck_assert_uint_ne(mailstore_uidvalidity(box), 0);
	ck_assert_uint_eq(mailstore_uidnext(box), 4);
	ck_assert_int_eq(strlen(mailstore_guid(box)), 32);
	for (unsigned i = 0; i < 3; i++) {
		m = mailstore_msg(box, i);
		ck_assert_uint_eq(m->uid, i + 1);
		ck_assert(m->in_new);
		ck_assert_uint_eq(m->flags, 0);
	}
	/* delivery order: sizes 4, 8, 18 */
	ck_assert_uint_eq(mailstore_msg(box, 0)->size, 4);
	ck_assert_uint_eq(mailstore_msg(box, 1)->size, 8);
	ck_assert_uint_eq(mailstore_msg(box, 2)->vsize, 19);
	ck_assert_ptr_null(mailstore_msg(box, 3));
	ck_assert_int_eq(mailstore_find_uid(box, 2), 1);
	ck_assert_int_eq(mailstore_find_uid(box, 9), -1);
	path_of(path, sizeof(path), "postern-uidlist");
	text = read_file(path);
	ck_assert_msg(matches("^3 V[0-9]+ N4 G[0-9a-f]{32}\n1 :[^\n:]+,S=4,W=5\n2 :[^\n]+\n3 :[^\n]+\n$",
			      text), "uidlist:\n%s", text);
	ck_assert_uint_eq(count_dir("new"), 3);
	mailstore_close(&box);
	ck_assert_ptr_null(box);
}
END_TEST

START_TEST(t_uids_stable_across_reopen)
{
	struct mailstore_settings set = settings();
	struct mailstore *box;
	const char *error;
	uint32_t validity;

	for (int i = 0; i < 4; i++)
		deliver(NULL, "msg\n", NULL);
	box = open_box(NULL, 0);
	validity = mailstore_uidvalidity(box);
	ck_assert_int_eq(mailstore_expunge(box, 1, &error), 0);	/* uid 2 */
	ck_assert(mailstore_msg(box, 1)->expunged);
	mailstore_close(&box);

	deliver(NULL, "later\n", NULL);
	box = open_box(NULL, 0);
	ck_assert_uint_eq(mailstore_uidvalidity(box), validity);
	ck_assert_uint_eq(mailstore_count(box), 4);
	ck_assert_uint_eq(mailstore_msg(box, 0)->uid, 1);
	ck_assert_uint_eq(mailstore_msg(box, 1)->uid, 3);
	ck_assert_uint_eq(mailstore_msg(box, 2)->uid, 4);
	ck_assert_uint_eq(mailstore_msg(box, 3)->uid, 5);	/* never reused */
	mailstore_close(&box);

	/* a second handle sees the same */
	ck_assert_int_eq(mailstore_open(&set, "INBOX", 0, &box, &error), 0);
	ck_assert_int_eq(mailstore_sync(box, &error), 0);
	ck_assert_uint_eq(mailstore_msg(box, 3)->uid, 5);
	ck_assert_uint_eq(mailstore_uidnext(box), 6);
	mailstore_close(&box);
}
END_TEST

START_TEST(t_move_new_and_flags)
{
	struct mailstore *box;
	const struct mailstore_msg *m;
	const char *error;
	char name[512];

	deliver(NULL, "x\n", NULL);
	box = open_box(NULL, MAILSTORE_OPEN_MOVE_NEW);
	ck_assert_uint_eq(count_dir("new"), 0);
	ck_assert_uint_eq(count_dir("cur"), 1);
	m = mailstore_msg(box, 0);
	ck_assert(!m->in_new);
	ck_assert_msg(matches(":2,$", m->filename), "%s", m->filename);
	ck_assert_int_eq(mailstore_set_flags(box, 0, MAILSTORE_FLAG_SEEN | MAILSTORE_FLAG_FLAGGED,
					     0, &error), 1);
	first_name("cur", name, sizeof(name));
	ck_assert_msg(matches(",W=3:2,FS$", name), "%s", name);
	ck_assert_uint_eq(mailstore_msg(box, 0)->flags,
			  MAILSTORE_FLAG_SEEN | MAILSTORE_FLAG_FLAGGED);
	ck_assert_int_eq(mailstore_set_flags(box, 0, MAILSTORE_FLAG_REPLIED,
					     MAILSTORE_FLAG_FLAGGED, &error), 1);
	first_name("cur", name, sizeof(name));
	ck_assert_msg(matches(":2,RS$", name), "%s", name);
	mailstore_close(&box);
	/* flags survive a re-open: they live in the name */
	box = open_box(NULL, 0);
	ck_assert_uint_eq(mailstore_msg(box, 0)->flags,
			  MAILSTORE_FLAG_SEEN | MAILSTORE_FLAG_REPLIED);
	ck_assert_uint_eq(mailstore_msg(box, 0)->uid, 1);
	mailstore_close(&box);
}
END_TEST

START_TEST(t_foreign_names)
{
	struct mailstore *box;
	const struct mailstore_msg *m;
	const char *error;
	char path[1024], name[512], *text;
	uint64_t vsize;
	int fd;

	ck_assert_int_eq(mailstore_folder_create(&(struct mailstore_settings)
						 { .struct_size = sizeof(struct mailstore_settings),
						   .root = root }, "INBOX", &error), 0);
	/* Dovecot: sizes in the name, flags with a keyword letter and an
	 * extension after a comma */
	snprintf(path, sizeof(path), "%s/cur/1276528487.M364837P9451.kurkku,S=1355,W=1394:2,Sa,X",
		 root);
	write_file(path, "dovecot says the size is 1355\n");
	/* qmail-style name without sizes: stat and read */
	snprintf(path, sizeof(path), "%s/cur/1276528488.4242_1.oldhost:2,", root);
	write_file(path, "a\nb\r\nc\n");
	box = open_box(NULL, 0);
	ck_assert_uint_eq(mailstore_count(box), 2);
	m = mailstore_msg(box, 0);
	ck_assert_uint_eq(m->size, 1355);
	ck_assert_uint_eq(m->vsize, 1394);
	ck_assert_uint_eq(m->flags, MAILSTORE_FLAG_SEEN);
	m = mailstore_msg(box, 1);
	ck_assert_uint_eq(m->size, 7);
	ck_assert(m->vsize == MAILSTORE_SIZE_UNKNOWN);
	ck_assert_int_eq(mailstore_msg_vsize(box, 1, &vsize, &error), 1);
	ck_assert_uint_eq(vsize, 9);
	ck_assert_int_eq(mailstore_set_flags(box, 0, MAILSTORE_FLAG_FLAGGED, 0, &error), 1);
	mailstore_close(&box);	/* saves the computed size */

	snprintf(path, sizeof(path), "%s/postern-uidlist", root);
	text = read_file(path);
	ck_assert_msg(strstr(text, "2 S7 W9 :1276528488.4242_1.oldhost\n") != NULL, "%s", text);
	ck_assert_msg(strstr(text, "1 :1276528487.M364837P9451.kurkku,S=1355,W=1394\n") != NULL,
		      "%s", text);
	/* The cached size is used without reading the file: replace the
	 * content behind our back, the old answer must come back. */
	snprintf(path, sizeof(path), "%s/cur/1276528488.4242_1.oldhost:2,", root);
	write_file(path, "\n\n\n\n\n\n\n\n\n\n\n\n\n\n");
	box = open_box(NULL, 0);
	ck_assert_uint_eq(mailstore_msg(box, 1)->vsize, 9);
	ck_assert_uint_eq(mailstore_msg(box, 1)->size, 7);
	ck_assert_int_eq(mailstore_msg_open(box, 1, &fd, &error), 1);
	close(fd);
	mailstore_close(&box);
	/* the keyword and the extension were kept, flags sorted */
	first_name("cur", name, sizeof(name));
	snprintf(path, sizeof(path), "%s/cur/1276528487.M364837P9451.kurkku,S=1355,W=1394:2,FSa,X",
		 root);
	ck_assert_msg(access(path, F_OK) == 0, "%s missing", path);
}
END_TEST

START_TEST(t_renamed_and_expunged_behind_our_back)
{
	struct mailstore *box;
	const char *error;
	char old[1024], new[1040], name[512];
	int fd;

	deliver(NULL, "a\n", NULL);
	deliver(NULL, "b\n", NULL);
	box = open_box(NULL, MAILSTORE_OPEN_MOVE_NEW);
	/* another client sets \Seen on the first message */
	snprintf(old, sizeof(old), "%s/cur/%s", root, mailstore_msg(box, 0)->filename);
	snprintf(new, sizeof(new), "%sS", old);
	ck_assert_int_eq(rename(old, new), 0);
	ck_assert_int_eq(mailstore_msg_open(box, 0, &fd, &error), 1);
	close(fd);
	ck_assert_uint_eq(mailstore_msg(box, 0)->flags, MAILSTORE_FLAG_SEEN);
	/* another client expunges the second */
	snprintf(old, sizeof(old), "%s/cur/%s", root, mailstore_msg(box, 1)->filename);
	ck_assert_int_eq(unlink(old), 0);
	ck_assert_int_eq(mailstore_msg_open(box, 1, &fd, &error), 0);
	ck_assert_int_eq(mailstore_set_flags(box, 1, MAILSTORE_FLAG_SEEN, 0, &error), 0);
	ck_assert_int_eq(mailstore_expunge(box, 1, &error), 0);
	ck_assert_int_eq(mailstore_sync(box, &error), 0);
	ck_assert_uint_eq(mailstore_count(box), 1);
	ck_assert_uint_eq(mailstore_msg(box, 0)->uid, 1);
	mailstore_close(&box);
	deliver(NULL, "c\n", NULL);
	box = open_box(NULL, 0);
	ck_assert_uint_eq(mailstore_msg(box, 1)->uid, 3);
	first_name("cur", name, sizeof(name));
	mailstore_close(&box);
}
END_TEST

START_TEST(t_corrupt_uidlist_rebuilt)
{
	struct mailstore *box;
	char path[512];
	uint32_t validity;

	deliver(NULL, "a\n", NULL);
	box = open_box(NULL, 0);
	validity = mailstore_uidvalidity(box);
	mailstore_close(&box);
	path_of(path, sizeof(path), "postern-uidlist");
	write_file(path, "3 V12 N5\n1 :ok\nnot a line\n");
	box = open_box(NULL, 0);
	ck_assert_uint_gt(mailstore_uidvalidity(box), 0);
	ck_assert_uint_ne(mailstore_uidvalidity(box), 12);
	ck_assert_uint_eq(mailstore_count(box), 1);
	ck_assert_uint_eq(mailstore_msg(box, 0)->uid, 1);
	ck_assert_msg(strstr(logbuf, "corrupt") != NULL, "log: %s", logbuf);
	mailstore_close(&box);
	(void)validity;
}
END_TEST

START_TEST(t_interrupted_append_ignored)
{
	struct mailstore *box;
	char path[512], *text;
	FILE *f;

	deliver(NULL, "a\n", NULL);
	box = open_box(NULL, 0);
	mailstore_close(&box);
	/* a crash in the middle of an append */
	path_of(path, sizeof(path), "postern-uidlist");
	f = fopen(path, "a");
	ck_assert_ptr_nonnull(f);
	fputs("2 :12345.half", f);
	fclose(f);
	deliver(NULL, "b\n", NULL);
	box = open_box(NULL, 0);
	ck_assert_uint_eq(mailstore_count(box), 2);
	ck_assert_uint_eq(mailstore_msg(box, 0)->uid, 1);
	ck_assert_uint_eq(mailstore_msg(box, 1)->uid, 2);
	mailstore_close(&box);
	text = read_file(path);
	ck_assert_msg(strstr(text, "half") == NULL, "%s", text);
	ck_assert_msg(matches("\n2 :[^\n]+\n$", text), "%s", text);
}
END_TEST

START_TEST(t_uidlist_vanished_gets_new_validity)
{
	struct mailstore *box;
	char path[512];
	uint32_t validity;

	deliver(NULL, "a\n", NULL);
	box = open_box(NULL, 0);
	validity = mailstore_uidvalidity(box);
	path_of(path, sizeof(path), "postern-uidlist");
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(mailstore_sync(box, &(const char *){ NULL }), 0);
	ck_assert_uint_gt(mailstore_uidvalidity(box), validity);
	mailstore_close(&box);
}
END_TEST

/* ---- locking ---- */

START_TEST(t_stale_lock_of_dead_process)
{
	struct mailstore_settings set = settings();
	struct mailstore *box;
	const char *error;
	char path[512], content[256], host[128];
	pid_t pid;
	int status;

	deliver(NULL, "a\n", NULL);
	/* a process that is gone for sure */
	pid = fork();
	if (pid == 0)
		_exit(0);
	waitpid(pid, &status, 0);
	gethostname(host, sizeof(host));
	snprintf(content, sizeof(content), "%ld %s\n", (long)pid, host);
	path_of(path, sizeof(path), "postern-uidlist.lock");
	write_file(path, content);
	set.lock_timeout_secs = 2;
	ck_assert_int_eq(mailstore_open(&set, NULL, 0, &box, &error), 0);
	ck_assert_msg(mailstore_sync(box, &error) == 0, "%s", error);
	ck_assert_msg(strstr(logbuf, "stale") != NULL, "%s", logbuf);
	ck_assert_int_eq(access(path, F_OK), -1);
	mailstore_close(&box);
}
END_TEST

START_TEST(t_live_lock_times_out_old_lock_broken)
{
	struct mailstore_settings set = settings();
	struct mailstore *box;
	const char *error = NULL;
	char path[512];
	struct timespec old[2] = { { .tv_sec = 1000 }, { .tv_sec = 1000 } };
	time_t start;

	deliver(NULL, "a\n", NULL);
	/* held by a live process on another host: wait, then give up */
	path_of(path, sizeof(path), "postern-uidlist.lock");
	write_file(path, "1 some-other-host\n");
	set.lock_timeout_secs = 1;
	ck_assert_int_eq(mailstore_open(&set, NULL, 0, &box, &error), 0);
	start = time(NULL);
	ck_assert_int_eq(mailstore_sync(box, &error), -1);
	ck_assert_msg(strstr(error, "timed out") != NULL, "%s", error);
	ck_assert_int_le(time(NULL) - start, 3);
	ck_assert_uint_eq(mailstore_count(box), 0);
	/* the same lock, untouched for longer than lock_stale_secs */
	ck_assert_int_eq(utimensat(AT_FDCWD, path, old, 0), 0);
	ck_assert_msg(mailstore_sync(box, &error) == 0, "%s", error);
	ck_assert_uint_eq(mailstore_count(box), 1);
	mailstore_close(&box);
}
END_TEST

/* ---- delivery ids ---- */

START_TEST(t_delivery_id_exactly_once)
{
	struct mailstore_settings set = settings();
	struct mailstore *box;
	const char *error;
	const char *id = "Q4F2A9C1/alice:example,test";	/* any bytes */

	ck_assert_int_eq(mailstore_delivered(&set, NULL, id, &error), 0);
	deliver(NULL, "a\n", id);
	deliver(NULL, "b\n", "Q4F2A9C1/bob");
	ck_assert_int_eq(mailstore_delivered(&set, NULL, id, &error), 1);
	ck_assert_int_eq(mailstore_delivered(&set, "INBOX", "Q4F2A9C1/bob", &error), 1);
	ck_assert_int_eq(mailstore_delivered(&set, NULL, "Q4F2A9C1/carol", &error), 0);
	/* a prefix of an id is not the id */
	ck_assert_int_eq(mailstore_delivered(&set, NULL, "Q4F2A9C1/alice:example,tes", &error), 0);
	/* still found after the message moved to cur/ and got flags */
	box = open_box(NULL, MAILSTORE_OPEN_MOVE_NEW);
	ck_assert_int_eq(mailstore_set_flags(box, 0, MAILSTORE_FLAG_SEEN, 0, &error), 1);
	mailstore_close(&box);
	ck_assert_uint_eq(count_dir("new"), 0);
	ck_assert_int_eq(mailstore_delivered(&set, NULL, id, &error), 1);
	/* another folder, one that does not exist */
	ck_assert_int_eq(mailstore_delivered(&set, "Other", id, &error), 0);
	ck_assert_int_eq(mailstore_delivered(&set, NULL, NULL, &error), -1);
	/* the longest id there may be */
	{
		char longest[MAILSTORE_DELIVERY_ID_MAX + 1];

		memset(longest, 'z', sizeof(longest) - 1);
		longest[sizeof(longest) - 1] = '\0';
		deliver(NULL, "c\n", longest);
		ck_assert_int_eq(mailstore_delivered(&set, NULL, longest, &error), 1);
	}
}
END_TEST

/* ---- quota ---- */

static enum mailstore_deliver_result deliver_quota(struct mailstore_settings *set, size_t size,
						   const char *folder, const char **error_r)
{
	struct mailstore_delivery d = MAILSTORE_DELIVERY_INIT;
	static char body[100000];

	ck_assert_uint_lt(size, sizeof(body));
	memset(body, 'q', size);
	d.data = body;
	d.size = size;
	d.folder = folder;
	d.create_folder = true;
	return mailstore_deliver(set, &d, NULL, error_r);
}

START_TEST(t_quota_bytes)
{
	struct mailstore_settings set = settings();
	struct mailstore_quota q;
	struct mailstore *box;
	const char *error = NULL;
	char path[512];

	set.quota_bytes = 1000;
	ck_assert_int_eq(deliver_quota(&set, 600, NULL, &error), MAILSTORE_DELIVERED);
	path_of(path, sizeof(path), "maildirsize");
	ck_assert_str_eq(read_file(path), "1000S\n0 0\n600 1\n");
	ck_assert_int_eq(deliver_quota(&set, 600, NULL, &error), MAILSTORE_DELIVER_OVER_QUOTA);
	ck_assert_msg(strstr(error, "Quota exceeded") != NULL, "%s", error);
	/* nothing was written */
	ck_assert_uint_eq(count_dir("new"), 1);
	ck_assert_uint_eq(count_dir("tmp"), 0);
	ck_assert_int_eq(deliver_quota(&set, 400, NULL, &error), MAILSTORE_DELIVERED);
	ck_assert_int_eq(mailstore_quota_get(&set, &q, &error), 1);
	ck_assert_uint_eq(q.bytes, 1000);
	ck_assert_uint_eq(q.messages, 2);
	ck_assert_uint_eq(q.bytes_limit, 1000);
	/* expunge gives the room back */
	box = open_box(NULL, 0);
	ck_assert_int_eq(mailstore_expunge(box, 0, &error), 0);
	mailstore_close(&box);
	ck_assert_str_eq(read_file(path), "1000S\n0 0\n600 1\n400 1\n-600 -1\n");
	ck_assert_int_eq(deliver_quota(&set, 500, NULL, &error), MAILSTORE_DELIVERED);
	/* folders count too */
	ck_assert_int_eq(deliver_quota(&set, 200, "Sent", &error), MAILSTORE_DELIVER_OVER_QUOTA);
	ck_assert_int_eq(deliver_quota(&set, 100, "Sent", &error), MAILSTORE_DELIVERED);
	ck_assert_int_eq(mailstore_quota_get(&set, &q, &error), 1);
	ck_assert_uint_eq(q.bytes, 1000);
	ck_assert_uint_eq(q.messages, 3);
}
END_TEST

START_TEST(t_quota_messages_and_file_limits)
{
	struct mailstore_settings set = settings();
	struct mailstore_quota q;
	const char *error = NULL;
	char path[512];

	set.quota_messages = 2;
	ck_assert_int_eq(deliver_quota(&set, 10, NULL, &error), MAILSTORE_DELIVERED);
	ck_assert_int_eq(deliver_quota(&set, 10, NULL, &error), MAILSTORE_DELIVERED);
	ck_assert_int_eq(deliver_quota(&set, 10, NULL, &error), MAILSTORE_DELIVER_OVER_QUOTA);
	path_of(path, sizeof(path), "maildirsize");
	ck_assert(matches("^2C\n", read_file(path)));
	/* no limits configured: the file's header rules (as in Dovecot) */
	set.quota_messages = 0;
	write_file(path, "25S\n20 2\n");
	ck_assert_int_eq(deliver_quota(&set, 10, NULL, &error), MAILSTORE_DELIVER_OVER_QUOTA);
	ck_assert_int_eq(deliver_quota(&set, 5, NULL, &error), MAILSTORE_DELIVERED);
	ck_assert_int_eq(mailstore_quota_get(&set, &q, &error), 1);
	ck_assert_uint_eq(q.bytes_limit, 25);
	ck_assert_uint_eq(q.bytes, 25);
	/* no limits and no file: no quota at all */
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(mailstore_quota_get(&set, &q, &error), 0);
	ck_assert_int_eq(deliver_quota(&set, 5000, NULL, &error), MAILSTORE_DELIVERED);
	ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

START_TEST(t_quota_recalculated)
{
	struct mailstore_settings set = settings();
	struct mailstore_quota q;
	const char *error = NULL;
	char path[512], line[64];
	FILE *f;

	set.quota_bytes = 1000000;
	ck_assert_int_eq(deliver_quota(&set, 100, NULL, &error), MAILSTORE_DELIVERED);
	ck_assert_int_eq(deliver_quota(&set, 50, "Lists.postern", &error), MAILSTORE_DELIVERED);
	path_of(path, sizeof(path), "maildirsize");
	/* missing: counted again from the directories */
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(mailstore_quota_get(&set, &q, &error), 1);
	ck_assert_uint_eq(q.bytes, 150);
	ck_assert_uint_eq(q.messages, 2);
	ck_assert_str_eq(read_file(path), "1000000S\n150 2\n");
	/* grown past 5120 bytes: rebuilt small */
	f = fopen(path, "a");
	for (int i = 0; i < 600; i++) {
		snprintf(line, sizeof(line), "%d 1\n%d -1\n", i, -i);
		fputs(line, f);
	}
	fclose(f);
	ck_assert_int_eq(mailstore_quota_get(&set, &q, &error), 1);
	ck_assert_uint_eq(q.bytes, 150);
	ck_assert_str_eq(read_file(path), "1000000S\n150 2\n");
	/* corrupt (negative total, junk): rebuilt */
	write_file(path, "1000000S\n-500 -3\n");
	ck_assert_int_eq(mailstore_quota_get(&set, &q, &error), 1);
	ck_assert_uint_eq(q.bytes, 150);
	write_file(path, "1000000S\nfoo bar\n");
	ck_assert_int_eq(mailstore_quota_get(&set, &q, &error), 1);
	ck_assert_uint_eq(q.messages, 2);
	/* limits changed in the settings: rewritten with them */
	set.quota_bytes = 0;
	set.quota_messages = 7;
	ck_assert_int_eq(mailstore_quota_get(&set, &q, &error), 1);
	ck_assert_str_eq(read_file(path), "7C\n150 2\n");
	/* says over quota but has collected changes: recounted */
	set.quota_messages = 0;
	set.quota_bytes = 200;
	write_file(path, "200S\n150 2\n500 1\n");
	ck_assert_int_eq(deliver_quota(&set, 10, NULL, &error), MAILSTORE_DELIVERED);
	ck_assert_int_eq(mailstore_quota_recalc(&set, &error), 0);
	ck_assert_str_eq(read_file(path), "200S\n160 3\n");
}
END_TEST

/* ---- folders ---- */

static void collect_folder(const char *folder, void *ctx)
{
	char *buf = ctx;

	strcat(buf, folder);
	strcat(buf, ";");
}

START_TEST(t_folders)
{
	struct mailstore_settings set = settings();
	struct mailstore *box;
	const char *error = NULL;
	char path[512], list[512] = "";

	ck_assert_int_eq(mailstore_folder_create(&set, "Sent", &error), 0);
	ck_assert_int_eq(mailstore_folder_create(&set, "Sent", &error), 0);
	ck_assert_int_eq(mailstore_folder_create(&set, "Lists.postern", &error), 0);
	path_of(path, sizeof(path), ".Sent/maildirfolder");
	ck_assert_int_eq(access(path, F_OK), 0);
	path_of(path, sizeof(path), ".Lists.postern/tmp");
	ck_assert_int_eq(access(path, F_OK), 0);
	path_of(path, sizeof(path), "cur");
	ck_assert_int_eq(access(path, F_OK), 0);	/* the root is a Maildir too */
	ck_assert_int_eq(mailstore_folder_list(&set, collect_folder, list, &error), 0);
	ck_assert_msg(strstr(list, "INBOX;") != NULL && strstr(list, "Sent;") != NULL &&
		      strstr(list, "Lists.postern;") != NULL, "%s", list);
	ck_assert(!mailstore_folder_name_valid(""));
	ck_assert(!mailstore_folder_name_valid(".hidden"));
	ck_assert(!mailstore_folder_name_valid("a..b"));
	ck_assert(!mailstore_folder_name_valid("a/b"));
	ck_assert(!mailstore_folder_name_valid("trail."));
	ck_assert(!mailstore_folder_name_valid("tab\there"));
	ck_assert(mailstore_folder_name_valid("&AOQ-rger"));
	ck_assert_int_eq(mailstore_folder_create(&set, "../x", &error), -1);
	ck_assert_int_eq(mailstore_open(&set, "Missing", 0, &box, &error), -1);
	ck_assert_msg(strstr(error, "does not exist") != NULL, "%s", error);
	deliver("Sent", "sent mail\n", NULL);
	box = open_box("Sent", 0);
	ck_assert_uint_eq(mailstore_count(box), 1);
	mailstore_close(&box);
	box = open_box("INBOX", 0);
	ck_assert_uint_eq(mailstore_count(box), 0);
	mailstore_close(&box);
}
END_TEST

/* ---- big mailboxes ---- */

/* Bytes this process read through read()/pread() so far (the kernel's
 * rchar; directory listings do not count, file contents do). */
static unsigned long long rchar(void)
{
	char buf[512], *p;
	unsigned long long value = 0;
	int fd = open("/proc/self/io", O_RDONLY);
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	p = strstr(buf, "rchar:");
	ck_assert_ptr_nonnull(p);
	sscanf(p + 6, "%llu", &value);
	return value;
}

static double seconds_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

#define BIG_COUNT 100000
#define BIG_BODY 300

START_TEST(t_scan_100000_reads_no_body)
{
	struct mailstore_settings set = settings();
	struct mailstore *box;
	const char *error = NULL;
	char body[BIG_BODY + 1], path[1024];
	unsigned long long before, read_first, read_second;
	struct stat st;
	struct timespec start;
	double first, second;

	memset(body, 'b', BIG_BODY);
	body[BIG_BODY] = '\0';
	ck_assert_int_eq(mailstore_folder_create(&set, NULL, &error), 0);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (unsigned i = 0; i < BIG_COUNT; i++) {
		int fd;

		snprintf(path, sizeof(path), "%s/%s/%u.M%uP1Q%u.bighost,S=%d,W=%d%s", root,
			 i % 2 == 0 ? "new" : "cur", 1600000000 + i / 1000, i % 1000, i,
			 BIG_BODY, BIG_BODY, i % 2 == 0 ? "" : ":2,S");
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(write(fd, body, BIG_BODY), BIG_BODY);
		close(fd);
	}
	fprintf(stderr, "scan test: created %d messages in %.2fs\n", BIG_COUNT,
		seconds_since(&start));

	/* first sync: every message gets a UID, the uidlist is written */
	ck_assert_int_eq(mailstore_open(&set, NULL, 0, &box, &error), 0);
	before = rchar();
	clock_gettime(CLOCK_MONOTONIC, &start);
	ck_assert_msg(mailstore_sync(box, &error) == 0, "%s", error);
	first = seconds_since(&start);
	read_first = rchar() - before;
	ck_assert_uint_eq(mailstore_count(box), BIG_COUNT);
	for (unsigned i = 0; i < BIG_COUNT; i++) {
		const struct mailstore_msg *m = mailstore_msg(box, i);

		ck_assert_uint_eq(m->uid, i + 1);
		ck_assert_uint_eq(m->size, BIG_BODY);
	}
	/* UIDs follow delivery time: the name of uid 1 is the oldest */
	ck_assert_msg(strncmp(mailstore_msg(box, 0)->filename, "1600000000.M0P1Q0.", 18) == 0,
		      "%s", mailstore_msg(box, 0)->filename);
	mailstore_close(&box);

	/* second sync in a new handle: reads the uidlist, lists the names */
	path_of(path, sizeof(path), "postern-uidlist");
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(mailstore_open(&set, NULL, 0, &box, &error), 0);
	before = rchar();
	clock_gettime(CLOCK_MONOTONIC, &start);
	ck_assert_msg(mailstore_sync(box, &error) == 0, "%s", error);
	second = seconds_since(&start);
	read_second = rchar() - before;
	ck_assert_uint_eq(mailstore_count(box), BIG_COUNT);
	ck_assert_uint_eq(mailstore_msg(box, BIG_COUNT - 1)->uid, BIG_COUNT);
	mailstore_close(&box);
	fprintf(stderr, "scan test: first sync %.2fs read %llu bytes; second sync %.2fs read "
		"%llu bytes (uidlist %lld bytes, bodies %d bytes)\n", first, read_first, second,
		read_second, (long long)st.st_size, BIG_COUNT * BIG_BODY);

	/* No body was read: the first sync read (nearly) nothing, the
	 * second only the uidlist. Reading even 1% of the bodies would
	 * break these bounds. */
	ck_assert_uint_lt(read_first, 16384);
	ck_assert_uint_le(read_second, (unsigned long long)st.st_size + 16384);
	ck_assert_uint_lt(read_second + read_first, (unsigned long long)BIG_COUNT * BIG_BODY / 4);
	/* and it is fast: generous bounds for a sanitizer build on a busy
	 * machine */
	ck_assert_msg(first < 20.0 && second < 20.0, "slow scan: %.2fs, %.2fs", first, second);
}
END_TEST

/* ---- concurrency ---- */

#define CONC_MSGS 150

/* A child: deliver CONC_MSGS messages, and every few deliveries open the
 * folder, sync, record what it saw and play with flags. */
static void conc_child(int which, const char *record_path)
{
	struct mailstore_settings set = settings();
	FILE *rec = fopen(record_path, "w");
	char body[64], id[64];

	set.no_fsync = true;
	set.log = NULL;
	if (rec == NULL)
		_exit(10);
	for (int i = 0; i < CONC_MSGS; i++) {
		struct mailstore_delivery d = MAILSTORE_DELIVERY_INIT;
		const char *error;
		struct mailstore *box;

		snprintf(body, sizeof(body), "child %d message %d\n", which, i);
		snprintf(id, sizeof(id), "child%d.%d", which, i);
		d.data = body;
		d.size = strlen(body);
		d.id = id;
		if (mailstore_deliver(&set, &d, NULL, &error) != MAILSTORE_DELIVERED) {
			fprintf(stderr, "child %d: deliver: %s\n", which, error);
			_exit(11);
		}
		if (i % 5 != 4)
			continue;
		if (mailstore_open(&set, NULL, which == 0 ? MAILSTORE_OPEN_MOVE_NEW : 0, &box,
				   &error) < 0 || mailstore_sync(box, &error) < 0) {
			fprintf(stderr, "child %d: sync: %s\n", which, error);
			_exit(12);
		}
		for (unsigned s = 0; s < mailstore_count(box); s++) {
			const struct mailstore_msg *m = mailstore_msg(box, s);
			const char *colon = strchr(m->filename, ':');

			fprintf(rec, "%u %u %.*s\n", mailstore_uidvalidity(box), m->uid,
				(int)(colon != NULL ? colon - m->filename : (long)strlen(m->filename)),
				m->filename);
		}
		if (which == 0 && mailstore_count(box) > 0 &&
		    mailstore_set_flags(box, (unsigned)i % mailstore_count(box),
					MAILSTORE_FLAG_SEEN, 0, &error) < 0) {
			fprintf(stderr, "child %d: flags: %s\n", which, error);
			_exit(13);
		}
		mailstore_close(&box);
	}
	fclose(rec);
	_exit(0);
}

START_TEST(t_two_processes_deliver_and_sync)
{
	struct mailstore_settings set = settings();
	struct mailstore *box;
	const char *error = NULL;
	char record[2][512];
	pid_t pids[2];
	unsigned checked = 0, syncs = 0;
	uint32_t validity;

	ck_assert_int_eq(mailstore_folder_create(&set, NULL, &error), 0);
	for (int c = 0; c < 2; c++) {
		snprintf(record[c], sizeof(record[c]), "%s/record%d", base_dir, c);
		pids[c] = fork();
		ck_assert_int_ge(pids[c], 0);
		if (pids[c] == 0)
			conc_child(c, record[c]);
	}
	/* a third actor: sync while they deliver */
	ck_assert_int_eq(mailstore_open(&set, NULL, 0, &box, &error), 0);
	for (;;) {
		int status, done = 0;

		ck_assert_msg(mailstore_sync(box, &error) == 0, "%s", error);
		syncs++;
		usleep(2000);	/* leave the lock to the children now and then */
		for (int c = 0; c < 2; c++) {
			if (pids[c] == 0) {
				done++;
				continue;
			}
			if (waitpid(pids[c], &status, WNOHANG) == pids[c]) {
				ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
					      "child %d failed: %d", c, status);
				pids[c] = 0;
				done++;
			}
		}
		if (done == 2)
			break;
	}
	ck_assert_msg(mailstore_sync(box, &error) == 0, "%s", error);
	validity = mailstore_uidvalidity(box);
	/* nothing lost, nothing twice */
	ck_assert_uint_eq(mailstore_count(box), 2 * CONC_MSGS);
	for (unsigned s = 1; s < mailstore_count(box); s++)
		ck_assert_uint_lt(mailstore_msg(box, s - 1)->uid, mailstore_msg(box, s)->uid);
	ck_assert_uint_le(mailstore_msg(box, 2 * CONC_MSGS - 1)->uid, mailstore_uidnext(box) - 1);
	for (int c = 0; c < 2; c++) {
		for (int i = 0; i < CONC_MSGS; i++) {
			char id[64];

			snprintf(id, sizeof(id), "child%d.%d", c, i);
			ck_assert_int_eq(mailstore_delivered(&set, NULL, id, &error), 1);
		}
	}
	/* every UID any process ever saw still names the same message */
	for (int c = 0; c < 2; c++) {
		FILE *f = fopen(record[c], "r");
		char base[512];
		unsigned v, uid;

		ck_assert_ptr_nonnull(f);
		while (fscanf(f, "%u %u %511s", &v, &uid, base) == 3) {
			int seq = mailstore_find_uid(box, uid);

			ck_assert_uint_eq(v, validity);
			ck_assert_msg(seq >= 0, "uid %u vanished", uid);
			ck_assert_msg(strncmp(mailstore_msg(box, (unsigned)seq)->filename, base,
					      strlen(base)) == 0,
				      "uid %u was %s, now %s", uid, base,
				      mailstore_msg(box, (unsigned)seq)->filename);
			checked++;
		}
		fclose(f);
	}
	ck_assert_uint_gt(checked, 100);
	fprintf(stderr, "concurrency test: %u observations checked, %u parent syncs\n", checked,
		syncs);
	mailstore_close(&box);
	/* and after a re-open */
	box = open_box(NULL, 0);
	ck_assert_uint_eq(mailstore_uidvalidity(box), validity);
	ck_assert_uint_eq(mailstore_count(box), 2 * CONC_MSGS);
	mailstore_close(&box);
	ck_assert_uint_eq(count_dir("tmp"), 0);
}
END_TEST

/* Threads delivering into one folder with a shared dirsync: every message
 * arrives, and their directory fsyncs are shared (never more than one per
 * delivery; with this much overlap, fewer). */
#define DIRSYNC_THREADS 8
#define DIRSYNC_EACH 40

static void *dirsync_deliverer(void *arg)
{
	struct mailstore_settings set = settings();
	struct mailstore_delivery d = MAILSTORE_DELIVERY_INIT;
	const char *error = NULL;

	set.dirsync = arg;
	d.data = "Subject: shared fsync\n\nbody\n";
	d.size = strlen(d.data);
	for (int i = 0; i < DIRSYNC_EACH; i++) {
		if (mailstore_deliver(&set, &d, NULL, &error) != MAILSTORE_DELIVERED)
			return (void *)error;
	}
	return NULL;
}

START_TEST(t_dirsync_shared_between_threads)
{
	struct mailstore_dirsync *ds = mailstore_dirsync_new();
	pthread_t threads[DIRSYNC_THREADS];
	uint64_t fsyncs, deliveries;

	ck_assert_ptr_nonnull(ds);
	deliver(NULL, "Subject: first\n\ncreates the folder\n", NULL);
	for (int i = 0; i < DIRSYNC_THREADS; i++)
		ck_assert_int_eq(pthread_create(&threads[i], NULL, dirsync_deliverer, ds), 0);
	for (int i = 0; i < DIRSYNC_THREADS; i++) {
		void *error;

		ck_assert_int_eq(pthread_join(threads[i], &error), 0);
		ck_assert_msg(error == NULL, "deliver: %s", (const char *)error);
	}
	ck_assert_uint_eq(count_dir("new"), 1 + DIRSYNC_THREADS * DIRSYNC_EACH);
	mailstore_dirsync_stats(ds, &fsyncs, &deliveries);
	ck_assert_uint_eq(deliveries, DIRSYNC_THREADS * DIRSYNC_EACH);
	ck_assert_uint_ge(fsyncs, 1);
	ck_assert_uint_le(fsyncs, deliveries);
	mailstore_dirsync_free(ds);
}
END_TEST

/* A caller built against the first header passes the shorter settings
 * struct: it is accepted and the newer fields read as unset. */
START_TEST(t_settings_from_older_caller)
{
	struct mailstore_settings set = settings();
	struct mailstore_delivery d = MAILSTORE_DELIVERY_INIT;
	const char *error = NULL;

	set.dirsync = (struct mailstore_dirsync *)&set;  /* must not be read */
	set.struct_size = offsetof(struct mailstore_settings, dirsync);
	d.data = "Subject: old caller\n\nbody\n";
	d.size = strlen(d.data);
	ck_assert_msg(mailstore_deliver(&set, &d, NULL, &error) == MAILSTORE_DELIVERED,
		      "deliver: %s", error);
	set.struct_size = offsetof(struct mailstore_settings, log);
	ck_assert_int_eq(mailstore_deliver(&set, &d, NULL, &error), MAILSTORE_DELIVER_FAILED);
	ck_assert_ptr_nonnull(strstr(error, "struct_size"));
}
END_TEST

static Suite *mailstore_suite(void)
{
	Suite *s = suite_create("mailstore");
	struct {
		const char *name;
		const TTest *test;
		int timeout;
	} cases[] = {
		{ "deliver", t_deliver_name_and_content, 10 },
		{ "open_bad_folder", t_open_bad_folder_name, 10 },
		{ "deliver_fd", t_deliver_from_fd, 10 },
		{ "deliver_bad", t_deliver_bad_arguments, 10 },
		{ "deliver_flags", t_deliver_with_flags_into_cur, 10 },
		{ "uids", t_sync_assigns_uids_in_order, 10 },
		{ "uids_stable", t_uids_stable_across_reopen, 10 },
		{ "flags", t_move_new_and_flags, 10 },
		{ "foreign_names", t_foreign_names, 10 },
		{ "behind_our_back", t_renamed_and_expunged_behind_our_back, 10 },
		{ "corrupt_uidlist", t_corrupt_uidlist_rebuilt, 10 },
		{ "interrupted_append", t_interrupted_append_ignored, 10 },
		{ "uidlist_vanished", t_uidlist_vanished_gets_new_validity, 10 },
		{ "stale_lock", t_stale_lock_of_dead_process, 10 },
		{ "lock_timeout", t_live_lock_times_out_old_lock_broken, 20 },
		{ "delivery_id", t_delivery_id_exactly_once, 10 },
		{ "quota_bytes", t_quota_bytes, 10 },
		{ "quota_messages", t_quota_messages_and_file_limits, 10 },
		{ "quota_recalc", t_quota_recalculated, 10 },
		{ "folders", t_folders, 10 },
		{ "scan_100000", t_scan_100000_reads_no_body, 600 },
		{ "concurrency", t_two_processes_deliver_and_sync, 300 },
		{ "dirsync", t_dirsync_shared_between_threads, 60 },
		{ "settings_older_caller", t_settings_from_older_caller, 10 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		TCase *tc = tcase_create(cases[i].name);

		/* unchecked: set up and cleaned up in the runner process,
		 * so a failing test leaves no temporary files behind */
		tcase_add_unchecked_fixture(tc, setup, teardown);
		tcase_set_timeout(tc, cases[i].timeout);
		tcase_add_test(tc, cases[i].test);
		suite_add_tcase(s, tc);
	}
	return s;
}

int main(int argc, char **argv)
{
	return check_run(srunner_create(mailstore_suite()), argc > 1 ? argv[1] : NULL);
}
