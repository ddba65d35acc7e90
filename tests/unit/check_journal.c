/*
 * tests/unit/check_journal.c: the journal keeps path states across reopen,
 * renames, removals, compaction and a torn tail (a crash mid-append), and
 * tells a session that ended with the machine from one that ended cleanly.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs/journal.h"
#include "tests/unit/tap.h"

static char tdir[256];

/* Session records name the boot (journal.c): one of a known length here. */
#define BOOT_A "boot-a"
#define SESSION_REC (8 + 30 + sizeof(BOOT_A) - 1)

static void setup(void)
{
	ck_assert_int_eq(setenv("WAKEFS_BOOT_ID", BOOT_A, 1), 0);
	snprintf(tdir, sizeof(tdir), "%s/check_journal.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tdir));
}

static void teardown(void)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tdir);
	ck_assert_int_eq(system(cmd), 0);
}

static char logpath[300];

static const char *journal_file(void)
{
	snprintf(logpath, sizeof(logpath), "%s/.wakefs/journal", tdir);
	return logpath;
}

START_TEST(test_set_get_reopen)
{
	struct journal *j;
	struct journal_entry e;
	struct version v = { .size = 42, .mtime = 1700000000, .valid = 1 };

	ck_assert_int_eq(journal_open(&j, tdir), 0);
	ck_assert_int_eq(journal_get(j, "/a.txt", &e), -ENOENT);
	ck_assert_int_eq(journal_set(j, "/a.txt", PATH_DIRTY, &v), 0);
	ck_assert_int_eq(journal_set(j, "src/b.py", PATH_HELD, NULL), 0);
	ck_assert_int_eq(journal_get(j, "a.txt", &e), 0);
	ck_assert_str_eq(e.path, "/a.txt");
	ck_assert_int_eq(e.state, PATH_DIRTY);
	ck_assert_uint_eq(e.ino, journal_ino_for("/a.txt"));
	journal_close(j);

	ck_assert_int_eq(journal_open(&j, tdir), 0);
	ck_assert_int_eq(journal_get(j, "/a.txt", &e), 0);
	ck_assert_int_eq(e.state, PATH_DIRTY);
	ck_assert_uint_eq(e.base.size, 42);
	ck_assert_int_eq(e.base.mtime, 1700000000);
	ck_assert_int_eq(e.base.valid, 1);
	ck_assert_int_eq(journal_get(j, "/src/b.py", &e), 0);
	ck_assert_int_eq(e.state, PATH_HELD);
	ck_assert_int_eq(e.base.valid, 0);
	/* NULL base keeps the recorded one. */
	ck_assert_int_eq(journal_set(j, "/a.txt", PATH_CLEAN, NULL), 0);
	journal_close(j);
	ck_assert_int_eq(journal_open(&j, tdir), 0);
	ck_assert_int_eq(journal_get(j, "/a.txt", &e), 0);
	ck_assert_int_eq(e.state, PATH_CLEAN);
	ck_assert_uint_eq(e.base.size, 42);
	journal_close(j);
}
END_TEST

START_TEST(test_rename_keeps_ino)
{
	struct journal *j;
	struct journal_entry e;
	uint64_t ino = journal_ino_for("/d/x");

	ck_assert_int_eq(journal_open(&j, tdir), 0);
	ck_assert_int_eq(journal_set(j, "/d/x", PATH_DIRTY, NULL), 0);
	ck_assert_int_eq(journal_set(j, "/d/sub/y", PATH_DIRTY, NULL), 0);
	ck_assert_int_eq(journal_set(j, "/dd", PATH_HELD, NULL), 0);
	ck_assert_int_eq(journal_rename(j, "/d", "/e"), 0);
	ck_assert_int_eq(journal_rename(j, "/nothing", "/e"), -ENOENT);
	journal_close(j);

	ck_assert_int_eq(journal_open(&j, tdir), 0);
	ck_assert_int_eq(journal_get(j, "/d/x", &e), -ENOENT);
	ck_assert_int_eq(journal_get(j, "/e/x", &e), 0);
	ck_assert_uint_eq(e.ino, ino);
	ck_assert_uint_eq(journal_ino(j, "/e/x"), ino);
	ck_assert_int_eq(journal_get(j, "/e/sub/y", &e), 0);
	/* "/dd" is not under "/d". */
	ck_assert_int_eq(journal_get(j, "/dd", &e), 0);
	ck_assert_int_eq(e.state, PATH_HELD);
	ck_assert_int_eq(journal_remove(j, "/dd"), 0);
	ck_assert_int_eq(journal_remove(j, "/dd"), -ENOENT);
	journal_close(j);

	ck_assert_int_eq(journal_open(&j, tdir), 0);
	ck_assert_int_eq(journal_get(j, "/dd", &e), -ENOENT);
	journal_close(j);
}
END_TEST

static int count_cb(const struct journal_entry *e, void *payload)
{
	(void)e;
	(*(int *)payload)++;
	return 0;
}

START_TEST(test_torn_tail)
{
	struct journal *j;
	struct journal_entry e;
	struct stat st;
	int fd, n = 0;

	ck_assert_int_eq(journal_open(&j, tdir), 0);
	ck_assert_int_eq(journal_set(j, "/kept", PATH_DIRTY, NULL), 0);
	ck_assert_int_eq(journal_set(j, "/torn", PATH_DIRTY, NULL), 0);
	journal_close(j);
	/*
	 * Cut the last path record in half, as a crash mid-append would (the
	 * close's session record goes with it).
	 */
	ck_assert_int_eq(stat(journal_file(), &st), 0);
	ck_assert_int_eq(truncate(journal_file(), st.st_size - SESSION_REC - 5), 0);

	ck_assert_int_eq(journal_open(&j, tdir), 0);
	ck_assert_int_eq(journal_get(j, "/kept", &e), 0);
	ck_assert_int_eq(journal_get(j, "/torn", &e), -ENOENT);
	/* The tail is gone, so new records are readable after it. */
	ck_assert_int_eq(journal_set(j, "/after", PATH_HELD, NULL), 0);
	journal_close(j);

	/* Garbage appended (a torn record with a bad checksum). */
	fd = open(journal_file(), O_WRONLY | O_APPEND);
	ck_assert_int_ge(fd, 0);
	static const char junk[] = "\x20\0\0\0garbagegarbagegarbage";
	ck_assert_int_eq(write(fd, junk, sizeof(junk) - 1), sizeof(junk) - 1);
	close(fd);
	ck_assert_int_eq(journal_open(&j, tdir), 0);
	ck_assert_int_eq(journal_get(j, "/after", &e), 0);
	ck_assert_int_eq(journal_foreach(j, count_cb, &n), 0);
	ck_assert_int_eq(n, 2);
	journal_close(j);
}
END_TEST

START_TEST(test_not_ours)
{
	struct journal *j;
	char d[300];
	FILE *f;

	snprintf(d, sizeof(d), "%s/.wakefs", tdir);
	ck_assert_int_eq(mkdir(d, 0700), 0);
	f = fopen(journal_file(), "w");
	ck_assert_ptr_nonnull(f);
	fputs("something else entirely\n", f);
	fclose(f);
	ck_assert_int_eq(journal_open(&j, tdir), -EINVAL);
	ck_assert_ptr_null(j);
}
END_TEST

START_TEST(test_compaction)
{
	struct journal *j;
	struct journal_entry e;
	struct stat st1, st2;
	uint64_t counts[5];
	char p[64];
	int i;

	ck_assert_int_eq(journal_open(&j, tdir), 0);
	for (i = 0; i < 6000; i++) {
		snprintf(p, sizeof(p), "/f%d", i % 10);
		ck_assert_int_eq(journal_set(j, p, i % 2 ? PATH_DIRTY : PATH_CLEAN, NULL), 0);
	}
	ck_assert_int_eq(journal_rename(j, "/f1", "/g1"), 0);
	journal_counts(j, counts);
	ck_assert_uint_eq(counts[PATH_DIRTY] + counts[PATH_CLEAN], 10);
	journal_close(j);
	ck_assert_int_eq(stat(journal_file(), &st1), 0);
	/* 6000 records of ~40 bytes were compacted on the way. */
	ck_assert_int_lt(st1.st_size, 6000 * 40);

	ck_assert_int_eq(journal_open(&j, tdir), 0);
	ck_assert_int_eq(journal_get(j, "/g1", &e), 0);
	ck_assert_int_eq(e.state, PATH_DIRTY);
	ck_assert_uint_eq(e.ino, journal_ino_for("/f1"));
	ck_assert_int_eq(journal_get(j, "/f1", &e), -ENOENT);
	ck_assert_int_eq(journal_get(j, "/f2", &e), 0);
	ck_assert_int_eq(e.state, PATH_CLEAN);
	journal_close(j);
	ck_assert_int_eq(stat(journal_file(), &st2), 0);
	/* A reopen without changes adds its session's open and close records only. */
	ck_assert_int_eq(st2.st_size, st1.st_size + 2 * SESSION_REC);
}
END_TEST

/* Copy the log as it is now: what the disk holds when the machine stops here. */
static void snapshot(const char *to)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", journal_file(), to);
	ck_assert_int_eq(system(cmd), 0);
}

static void restore(const char *from)
{
	ck_assert_int_eq(rename(from, journal_file()), 0);
}

START_TEST(test_crash_kept)
{
	struct journal *j;
	struct journal_entry e;
	char snap[300];
	time_t t0 = time(NULL);

	/* A clean close: the next open has nothing to look at again. */
	ck_assert_int_eq(journal_open(&j, tdir), 0);
	ck_assert_int_eq(journal_unclean_since(j), 0);
	ck_assert_int_eq(journal_set(j, "/a", PATH_DIRTY, NULL), 0);
	journal_close(j);
	ck_assert_int_eq(setenv("WAKEFS_BOOT_ID", "boot-b", 1), 0);
	ck_assert_int_eq(journal_open(&j, tdir), 0);
	ck_assert_int_eq(journal_unclean_since(j), 0);

	/*
	 * The process dies without closing (kill -9): the records it made, not
	 * synced, are all there, and on the same boot that is no power loss.
	 */
	ck_assert_int_eq(journal_set(j, "/b", PATH_DIRTY, NULL), 0);
	ck_assert_int_eq(journal_rename(j, "/a", "/c"), 0);
	snprintf(snap, sizeof(snap), "%s/snap", tdir);
	snapshot(snap);
	journal_close(j);
	restore(snap);
	ck_assert_int_eq(journal_open(&j, tdir), 0);
	ck_assert_int_eq(journal_unclean_since(j), 0);
	ck_assert_int_eq(journal_get(j, "/b", &e), 0);
	ck_assert_int_eq(e.state, PATH_DIRTY);
	ck_assert_int_eq(journal_get(j, "/c", &e), 0);
	ck_assert_int_eq(journal_get(j, "/a", &e), -ENOENT);

	/* The same left open, found after a reboot: that session began at t0 or after. */
	snapshot(snap);
	journal_close(j);
	restore(snap);
	ck_assert_int_eq(setenv("WAKEFS_BOOT_ID", "boot-c", 1), 0);
	ck_assert_int_eq(journal_open(&j, tdir), 0);
	ck_assert_int_ge(journal_unclean_since(j), t0);
	ck_assert_int_le(journal_unclean_since(j), time(NULL));
	ck_assert_int_eq(journal_get(j, "/b", &e), 0);
	ck_assert_int_eq(journal_sync(j), 0);
	journal_close(j);

	/* Closed cleanly on this boot: clean again. */
	ck_assert_int_eq(journal_open(&j, tdir), 0);
	ck_assert_int_eq(journal_unclean_since(j), 0);
	journal_close(j);
}
END_TEST

START_TEST(test_ino_unique)
{
	struct journal *j;
	uint64_t a = journal_ino_for("/tmp.swp"), fresh;

	/* An editor's save: a temporary renamed over the file, then made again. */
	ck_assert_int_eq(journal_open(&j, tdir), 0);
	ck_assert_int_eq(journal_set(j, "/tmp.swp", PATH_DIRTY, NULL), 0);
	ck_assert_int_eq(journal_rename(j, "/tmp.swp", "/file"), 0);
	ck_assert_uint_eq(journal_ino(j, "/file"), a);
	fresh = journal_ino(j, "/tmp.swp");
	ck_assert_uint_ne(fresh, a);
	ck_assert_int_eq(journal_set(j, "/tmp.swp", PATH_DIRTY, NULL), 0);
	ck_assert_uint_eq(journal_ino(j, "/tmp.swp"), fresh);
	journal_close(j);
	ck_assert_int_eq(journal_open(&j, tdir), 0);
	ck_assert_uint_eq(journal_ino(j, "/file"), a);
	ck_assert_uint_eq(journal_ino(j, "/tmp.swp"), fresh);
	/* Once the old holder is gone the plain hash comes back. */
	ck_assert_int_eq(journal_remove(j, "/file"), 0);
	ck_assert_int_eq(journal_remove(j, "/tmp.swp"), 0);
	ck_assert_uint_eq(journal_ino(j, "/tmp.swp"), a);
	journal_close(j);
}
END_TEST

START_TEST(test_ino)
{
	ck_assert_uint_eq(journal_ino_for("/"), 1);
	ck_assert_uint_eq(journal_ino_for("a"), journal_ino_for("/a"));
	ck_assert_uint_ne(journal_ino_for("/a"), journal_ino_for("/b"));
	ck_assert_uint_ge(journal_ino_for("/a"), 2);
	ck_assert_str_eq(journal_state_name(PATH_WHITEOUT), "whiteout");
}
END_TEST

START_TEST(test_one_owner)
{
	struct journal *j, *j2;

	ck_assert_int_eq(journal_open(&j, tdir), 0);
	ck_assert_int_eq(journal_open(&j2, tdir), -EBUSY);
	ck_assert_ptr_null(j2);
	journal_close(j);
	ck_assert_int_eq(journal_open(&j2, tdir), 0);
	journal_close(j2);
}
END_TEST

static Suite *journal_suite(void)
{
	Suite *s = suite_create("journal");
	struct {
		const char *name;
		const TTest *fn;
	} cases[] = {
		{ "set_get_reopen", test_set_get_reopen },
		{ "rename_keeps_ino", test_rename_keeps_ino },
		{ "torn_tail", test_torn_tail },
		{ "not_ours", test_not_ours },
		{ "compaction", test_compaction },
		{ "ino", test_ino },
		{ "ino_unique", test_ino_unique },
		{ "crash_kept", test_crash_kept },
		{ "one_owner", test_one_owner },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		TCase *tc = tcase_create(cases[i].name);
		tcase_add_checked_fixture(tc, setup, teardown);
		tcase_set_timeout(tc, 60);
		tcase_add_test(tc, cases[i].fn);
		suite_add_tcase(s, tc);
	}
	return s;
}

TAP_MAIN(journal_suite)
