/*
 * tests/unit/check_layer.c: the local layer on a temporary directory: path
 * states and write generations, callbacks, remote attribute and listing
 * caches, clean copies with LRU eviction, copy-up, and the second look at
 * the files after a power loss.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/layer.h"
#include "fs/remote.h"
#include "tests/unit/tap.h"

static char tdir[256];
static struct layer *L;

static void setup(void)
{
	struct layer_opts o = { .dir = NULL };

	snprintf(tdir, sizeof(tdir), "%s/check_layer.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tdir));
	o.dir = tdir;
	o.cache_max = 3000;
	o.attr_timeout_ms = 1500;
	ck_assert_int_eq(layer_new(&L, &o), 0);
}

static void teardown(void)
{
	char cmd[512];

	layer_free(L);
	L = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tdir);
	ck_assert_int_eq(system(cmd), 0);
}

static void reopen(void)
{
	struct layer_opts o = { .dir = tdir, .cache_max = 3000, .attr_timeout_ms = 1500 };

	layer_free(L);
	ck_assert_int_eq(layer_new(&L, &o), 0);
}

/* A temporary file holding @n bytes of @c; its name goes into @name. */
static void make_tmp(char *name, size_t len, size_t n, char c)
{
	char buf[4096];
	int fd = layer_tmpfile(L, name, len);

	ck_assert_int_ge(fd, 0);
	memset(buf, c, sizeof(buf));
	while (n) {
		size_t k = n < sizeof(buf) ? n : sizeof(buf);
		ck_assert_int_eq(write(fd, buf, k), (ssize_t)k);
		n -= k;
	}
	close(fd);
}

static struct stat remote_st(off_t size, time_t mtime)
{
	struct stat st;

	memset(&st, 0, sizeof(st));
	st.st_mode = S_IFREG | 0640;
	st.st_size = size;
	st.st_mtim.tv_sec = mtime;
	return st;
}

START_TEST(test_paths)
{
	char buf[PATH_MAX], want[PATH_MAX];
	struct stat st;

	ck_assert_int_eq(layer_local_path(L, "/a/b.txt", buf, sizeof(buf)), 0);
	snprintf(want, sizeof(want), "%s/a/b.txt", tdir);
	ck_assert_str_eq(buf, want);
	ck_assert_int_eq(layer_local_path(L, "/a/b.txt", buf, 8), -ENAMETOOLONG);
	ck_assert_int_eq(layer_hidden("/.wakefs"), 1);
	ck_assert_int_eq(layer_hidden("/.wakefs/journal"), 1);
	ck_assert_int_eq(layer_hidden("/.wakefsx"), 0);
	ck_assert_int_eq(layer_hidden("/src/.wakefs"), 0);
	ck_assert_int_eq(layer_local_stat(L, "/.wakefs", &st), -ENOENT);
	ck_assert_int_eq(layer_local_stat(L, "/nothing", &st), -ENOENT);
	ck_assert_int_eq(layer_local_stat(L, "/", &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_str_eq(layer_dir(L), tdir);
	ck_assert_ptr_nonnull(layer_journal(L));

	/* A directory's entry, and a mount path on the VM. */
	ck_assert_int_eq(layer_child("/", "a", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "/a");
	ck_assert_int_eq(layer_child("/a/b", "c", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "/a/b/c");
	ck_assert_int_eq(layer_child("/a/b", "c", buf, 6), -ENAMETOOLONG);
	ck_assert_int_eq(remote_path_join("/srv/p", "/a/b", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "/srv/p/a/b");
	ck_assert_int_eq(remote_path_join("/srv/p//", "/a", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "/srv/p/a");
	ck_assert_int_eq(remote_path_join("/srv/p", "/", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "/srv/p");
	ck_assert_int_eq(remote_path_join("/", "/a", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "/a");
	ck_assert_int_eq(remote_path_join("/", "/", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "/");
	ck_assert_int_eq(remote_path_join("", "/a", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "a");
	ck_assert_int_eq(remote_path_join(NULL, "/", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, ".");
	ck_assert_int_eq(remote_path_join(".", "/a", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "./a");
	ck_assert_int_eq(remote_path_join("work", "/a", buf, 6), -ENAMETOOLONG);
}
END_TEST

START_TEST(test_default_dir)
{
	char buf[PATH_MAX];

	setenv("XDG_DATA_HOME", "/xdg", 1);
	ck_assert_int_eq(layer_default_dir("vm", "/home/u/work/proj/", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "/xdg/wakefs/vm-home_u_work_proj");
	ck_assert_int_eq(layer_default_dir("host", "", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "/xdg/wakefs/host");
	unsetenv("XDG_DATA_HOME");
	setenv("HOME", "/h", 1);
	ck_assert_int_eq(layer_default_dir("a:b", "x", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "/h/.local/share/wakefs/a_b-x");
	ck_assert_int_eq(layer_default_dir("vm", "x", buf, 10), -ENAMETOOLONG);
}
END_TEST

START_TEST(test_nested_dir)
{
	struct layer_opts o = { .dir = NULL };
	struct layer *l2;
	char d[PATH_MAX];
	struct stat st;

	snprintf(d, sizeof(d), "%s/x/y/z/", tdir);
	o.dir = d;
	ck_assert_int_eq(layer_new(&l2, &o), 0);
	snprintf(d, sizeof(d), "%s/x/y/z/.wakefs/journal", tdir);
	ck_assert_int_eq(stat(d, &st), 0);
	layer_free(l2);
}
END_TEST

START_TEST(test_states)
{
	enum path_state s;
	struct version v = { .size = 3, .mtime = 99, .valid = 1 }, b;

	ck_assert_int_eq(layer_state(L, "/f", &s, NULL), -ENOENT);
	ck_assert_int_eq(layer_mark(L, "/f", PATH_HELD, &v), 0);
	ck_assert_int_eq(layer_mark(L, "/w", PATH_WHITEOUT, NULL), 0);
	ck_assert_int_eq(layer_is_whiteout(L, "/w"), 1);
	ck_assert_int_eq(layer_is_whiteout(L, "/f"), 0);
	reopen();
	ck_assert_int_eq(layer_state(L, "/f", &s, &b), 0);
	ck_assert_int_eq(s, PATH_HELD);
	ck_assert_int_eq(b.mtime, 99);
	ck_assert_int_eq(layer_is_whiteout(L, "/w"), 1);
	ck_assert_uint_eq(layer_ino(L, "/f"), journal_ino_for("/f"));
	ck_assert_int_eq(layer_forget(L, "/w"), 0);
	ck_assert_int_eq(layer_forget(L, "/w"), 0);
	ck_assert_int_eq(layer_is_whiteout(L, "/w"), 0);
}
END_TEST

START_TEST(test_generations)
{
	enum path_state s;
	struct version b, sent = { .size = 10, .mtime = 1000, .valid = 1 };
	uint64_t g;

	/* A new file becomes DIRTY with no base. */
	ck_assert_uint_eq(layer_gen(L, "/f"), 0);
	ck_assert_int_eq(layer_bump(L, "/f"), 0);
	ck_assert_int_eq(layer_state(L, "/f", &s, &b), 0);
	ck_assert_int_eq(s, PATH_DIRTY);
	ck_assert_int_eq(b.valid, 0);
	g = layer_gen(L, "/f");
	ck_assert_uint_ne(g, 0);

	/* Flushed with nothing written meanwhile: CLEAN with the new base. */
	ck_assert_int_eq(layer_flushed(L, "/f", g, &sent), 0);
	ck_assert_int_eq(layer_state(L, "/f", &s, &b), 0);
	ck_assert_int_eq(s, PATH_CLEAN);
	ck_assert_int_eq(b.valid, 1);
	ck_assert_uint_eq(b.size, 10);

	/* Written again: DIRTY, base kept. Written during the flush: stays DIRTY. */
	ck_assert_int_eq(layer_bump(L, "/f"), 0);
	ck_assert_int_eq(layer_state(L, "/f", &s, &b), 0);
	ck_assert_int_eq(s, PATH_DIRTY);
	ck_assert_uint_eq(b.size, 10);
	g = layer_gen(L, "/f");
	ck_assert_int_eq(layer_bump(L, "/f"), 0);
	sent.size = 20;
	ck_assert_int_eq(layer_flushed(L, "/f", g, &sent), 0);
	ck_assert_int_eq(layer_state(L, "/f", &s, &b), 0);
	ck_assert_int_eq(s, PATH_DIRTY);
	ck_assert_uint_eq(b.size, 20);

	/* HELD and CONFLICT stay what they are. */
	ck_assert_int_eq(layer_mark(L, "/h", PATH_HELD, NULL), 0);
	ck_assert_int_eq(layer_bump(L, "/h"), 0);
	ck_assert_int_eq(layer_state(L, "/h", &s, NULL), 0);
	ck_assert_int_eq(s, PATH_HELD);
	ck_assert_int_eq(layer_mark(L, "/c", PATH_CONFLICT, NULL), 0);
	ck_assert_int_eq(layer_bump(L, "/c"), 0);
	ck_assert_int_eq(layer_state(L, "/c", &s, NULL), 0);
	ck_assert_int_eq(s, PATH_CONFLICT);
}
END_TEST

static char ev_log[512];

static void notify_cb(void *payload, const char *path, int event, const char *to)
{
	size_t n = strlen(ev_log);

	snprintf(ev_log + n, sizeof(ev_log) - n, "%s%d:%s:%s;", (char *)payload, event, path,
		 to ? to : "-");
}

static int fsync_cb(void *payload, const char *path)
{
	return strcmp(path, "/bad") == 0 ? -EIO : *(int *)payload;
}

START_TEST(test_callbacks)
{
	int zero = 0;

	ev_log[0] = '\0';
	layer_notify(L, "/x", LAYER_EV_UNLINK, NULL);	/* nobody listens yet */
	ck_assert_int_eq(layer_fsync(L, "/x"), 0);
	layer_set_notify(L, notify_cb, "n");
	layer_set_fsync(L, fsync_cb, &zero);
	layer_notify(L, "/a", LAYER_EV_CLOSED_DIRTY, NULL);
	layer_notify(L, "/a", LAYER_EV_RENAME, "/b");
	ck_assert_str_eq(ev_log, "n0:/a:-;n2:/a:/b;");
	ck_assert_int_eq(layer_fsync(L, "/ok"), 0);
	ck_assert_int_eq(layer_fsync(L, "/bad"), -EIO);
}
END_TEST

static int list_cb(const char *name, const struct stat *st, void *payload)
{
	char *out = payload;
	size_t n = strlen(out);

	snprintf(out + n, 256 - n, "%s=%lld;", name, (long long)st->st_size);
	return 0;
}

START_TEST(test_attr_dir_cache)
{
	struct layer_listing *ls;
	struct stat st = remote_st(5, 100), got;
	char out[256] = "";

	ck_assert_int_eq(layer_attr_get(L, "/a", &got), -EAGAIN);
	layer_attr_put(L, "/a", &st);
	layer_attr_put(L, "/gone", NULL);
	ck_assert_int_eq(layer_attr_get(L, "/a", &got), 0);
	ck_assert_int_eq(got.st_size, 5);
	ck_assert_int_eq(layer_attr_get(L, "/gone", &got), -ENOENT);

	ck_assert_int_eq(layer_dir_get(L, "/d", list_cb, out), -EAGAIN);
	ck_assert_int_eq(layer_listing_new(&ls), 0);
	ck_assert_int_eq(layer_listing_add(ls, "x", &st), 0);
	st.st_size = 7;
	ck_assert_int_eq(layer_listing_add(ls, "y", &st), 0);
	layer_dir_put(L, "/d", ls);
	ck_assert_int_eq(layer_dir_get(L, "/d", list_cb, out), 0);
	ck_assert_str_eq(out, "x=5;y=7;");
	ck_assert_int_eq(layer_dir_has(L, "/d", "y"), 1);
	ck_assert_int_eq(layer_dir_has(L, "/d", "z"), 0);
	ck_assert_int_eq(layer_dir_has(L, "/e", "y"), -EAGAIN);
	/* The listing also filled the children's attributes. */
	ck_assert_int_eq(layer_attr_get(L, "/d/y", &got), 0);
	ck_assert_int_eq(got.st_size, 7);

	/* Invalidating a child drops it and its parent's listing. */
	layer_invalidate(L, "/d/y");
	ck_assert_int_eq(layer_attr_get(L, "/d/y", &got), -EAGAIN);
	ck_assert_int_eq(layer_attr_get(L, "/d/x", &got), 0);
	ck_assert_int_eq(layer_dir_get(L, "/d", list_cb, out), -EAGAIN);
	ck_assert_int_eq(layer_dir_get_stale(L, "/d", list_cb, out), -EAGAIN);
	layer_invalidate(L, "/a");	/* parent is "/" */
	ck_assert_int_eq(layer_attr_get(L, "/a", &got), -EAGAIN);
	/* A state change (the flusher changed the VM) drops the path's entries. */
	layer_attr_put(L, "/d/x", &st);
	ck_assert_int_eq(layer_mark(L, "/d/x", PATH_WHITEOUT, NULL), 0);
	ck_assert_int_eq(layer_attr_get(L, "/d/x", &got), -EAGAIN);
	layer_attr_put(L, "/d/x", &st);
	ck_assert_int_eq(layer_forget(L, "/d/x"), 0);
	ck_assert_int_eq(layer_attr_get(L, "/d/x", &got), -EAGAIN);

	/* Entries expire after attr_timeout_ms (1500 here). */
	layer_attr_put(L, "/gone", NULL);
	ck_assert_int_eq(layer_attr_get(L, "/gone", &got), -ENOENT);
	ck_assert_int_eq(layer_listing_new(&ls), 0);
	ck_assert_int_eq(layer_listing_add(ls, "x", &st), 0);
	layer_dir_put(L, "/d", ls);
	usleep(1600 * 1000);
	out[0] = '\0';
	ck_assert_int_eq(layer_dir_get(L, "/d", list_cb, out), -EAGAIN);
	ck_assert_int_eq(layer_dir_get_stale(L, "/d", list_cb, out), 0);
	ck_assert_str_eq(out, "x=7;");
	ck_assert_int_eq(layer_attr_get(L, "/gone", &got), -EAGAIN);
	ck_assert_int_eq(layer_attr_get(L, "/d/x", &got), -EAGAIN);
	/* Out of reach of the VM, any age will do. */
	ck_assert_int_eq(layer_attr_get_max(L, "/gone", &got, -1), -ENOENT);
	ck_assert_int_eq(layer_attr_get_max(L, "/d/x", &got, -1), 0);
	ck_assert_int_eq(layer_attr_get_max(L, "/d/x", &got, 100000), -EAGAIN);
	layer_attr_put(L, "/a", &st);
	layer_invalidate_all(L);
	ck_assert_int_eq(layer_attr_get(L, "/a", &got), -EAGAIN);
}
END_TEST

/* What the VM is known to have keeps the listings of the VM's side current. */
START_TEST(test_listing_kept)
{
	struct layer_listing *ls;
	struct stat st = remote_st(5, 100), got;
	char out[256] = "", lp[PATH_MAX];
	int fd;

	ck_assert_int_eq(layer_listing_new(&ls), 0);
	ck_assert_int_eq(layer_listing_add(ls, "x", &st), 0);
	ck_assert_int_eq(layer_listing_add(ls, "y", &st), 0);
	layer_dir_put(L, "/d", ls);

	/* A local change leaves the VM's listing of the parent alone. */
	layer_invalidate_changed(L, "/d/new");
	ck_assert_int_eq(layer_dir_has(L, "/d", "new"), 0);

	/* Sent (CLEAN): the name joins the listing, with the local file's attributes. */
	ck_assert_int_eq(layer_mkparents(L, "/d/new"), 0);
	ck_assert_int_eq(layer_local_path(L, "/d/new", lp, sizeof(lp)), 0);
	fd = open(lp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "abc", 3), 3);
	close(fd);
	ck_assert_int_eq(layer_mark(L, "/d/new", PATH_CLEAN, NULL), 0);
	ck_assert_int_eq(layer_dir_has(L, "/d", "new"), 1);
	ck_assert_int_eq(layer_dir_get(L, "/d", list_cb, out), 0);
	ck_assert_str_eq(out, "x=5;y=5;new=3;");
	/* Other states do not change the VM: the listing stays as it was. */
	ck_assert_int_eq(layer_mark(L, "/d/x", PATH_WHITEOUT, NULL), 0);
	ck_assert_int_eq(layer_dir_has(L, "/d", "x"), 1);
	/* Forgotten (deleted on the VM): the name leaves the listing. */
	ck_assert_int_eq(layer_forget(L, "/d/x"), 0);
	ck_assert_int_eq(layer_dir_has(L, "/d", "x"), 0);
	ck_assert_int_eq(layer_dir_has(L, "/d", "y"), 1);

	/* A directory the flusher made is empty on the VM, and listed in its parent. */
	ck_assert_int_eq(layer_mkparents(L, "/d/sub/f"), 0);
	ck_assert_int_eq(layer_local_stat(L, "/d/sub", &got), 0);
	layer_dir_made(L, "/d/sub", &got);
	ck_assert_int_eq(layer_dir_has(L, "/d/sub", "f"), 0);
	ck_assert_int_eq(layer_attr_get(L, "/d/sub", &got), 0);
	ck_assert(S_ISDIR(got.st_mode));
	ck_assert_int_eq(layer_dir_has(L, "/d", "sub"), 1);
	ck_assert_int_eq(layer_dir_cached(L, "/d/sub"), 1);
	ck_assert_int_eq(layer_dir_cached(L, "/e"), 0);

	/* A listing put over an older one drops the attributes of the names that went. */
	ck_assert_int_eq(layer_attr_get(L, "/d/y", &got), 0);
	ck_assert_int_eq(layer_listing_new(&ls), 0);
	ck_assert_int_eq(layer_listing_add(ls, "new", &st), 0);
	layer_dir_put(L, "/d", ls);
	ck_assert_int_eq(layer_attr_get(L, "/d/y", &got), -EAGAIN);
	ck_assert_int_eq(layer_attr_get(L, "/d/new", &got), 0);
	ck_assert_int_eq(layer_dir_has(L, "/d", "y"), 0);
}
END_TEST

START_TEST(test_cache_lru)
{
	char tmp[PATH_MAX];
	struct stat a = remote_st(1000, 111), b = remote_st(1000, 222), c = remote_st(1000, 333);
	char buf[16];
	int fd;

	ck_assert_int_eq(layer_cache_open(L, "/a", &a), -ENOENT);
	make_tmp(tmp, sizeof(tmp), 1000, 'a');
	ck_assert_int_eq(layer_cache_commit(L, "/a", tmp, &a), 0);
	make_tmp(tmp, sizeof(tmp), 1000, 'b');
	ck_assert_int_eq(layer_cache_commit(L, "/b", tmp, &b), 0);
	ck_assert_uint_eq(layer_cache_usage(L), 2000);

	fd = layer_cache_open(L, "/a", &a);	/* /a is now the most recently used */
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(read(fd, buf, 4), 4);
	ck_assert_int_eq(memcmp(buf, "aaaa", 4), 0);
	close(fd);

	/* A third copy passes the 3000-byte bound: /b, the oldest, goes. */
	make_tmp(tmp, sizeof(tmp), 1500, 'c');
	c.st_size = 1500;
	ck_assert_int_eq(layer_cache_commit(L, "/c", tmp, &c), 0);
	ck_assert_uint_eq(layer_cache_usage(L), 2500);
	ck_assert_int_eq(layer_cache_open(L, "/b", &b), -ENOENT);
	fd = layer_cache_open(L, "/a", &a);
	ck_assert_int_ge(fd, 0);
	close(fd);

	/* A copy whose VM version changed is stale and dropped. */
	a.st_mtim.tv_sec = 112;
	ck_assert_int_eq(layer_cache_open(L, "/a", &a), -ENOENT);
	ck_assert_uint_eq(layer_cache_usage(L), 1500);

	/* The usage is found again after a restart. */
	reopen();
	ck_assert_uint_eq(layer_cache_usage(L), 1500);
	fd = layer_cache_open(L, "/c", &c);
	ck_assert_int_ge(fd, 0);
	close(fd);
	layer_cache_drop(L, "/c");
	ck_assert_uint_eq(layer_cache_usage(L), 0);
	ck_assert_int_eq(layer_cache_open(L, "/c", &c), -ENOENT);
}
END_TEST

START_TEST(test_install)
{
	char tmp[PATH_MAX], lp[PATH_MAX];
	struct stat r = remote_st(100, 5000), st;
	int fd;

	/* From a download, parents created, VM mode and mtime kept. */
	make_tmp(tmp, sizeof(tmp), 100, 'x');
	ck_assert_int_eq(layer_install(L, "/d1/d2/f", tmp, &r), 0);
	ck_assert_int_eq(layer_local_stat(L, "/d1/d2/f", &st), 0);
	ck_assert_int_eq(st.st_size, 100);
	ck_assert_int_eq(st.st_mtim.tv_sec, 5000);
	ck_assert_int_eq(st.st_mode & 07777, 0640);
	ck_assert_int_eq(layer_local_stat(L, "/d1/d2", &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_int_eq(access(tmp, F_OK), -1);

	/* From the clean cache: the copy moves out of the cache. */
	make_tmp(tmp, sizeof(tmp), 100, 'y');
	ck_assert_int_eq(layer_cache_commit(L, "/g", tmp, &r), 0);
	ck_assert_uint_eq(layer_cache_usage(L), 100);
	r.st_mtim.tv_sec = 5001;
	ck_assert_int_eq(layer_install(L, "/g", NULL, &r), -ENOENT);	/* stale */
	r.st_mtim.tv_sec = 5000;
	ck_assert_int_eq(layer_install(L, "/g", NULL, &r), 0);
	ck_assert_uint_eq(layer_cache_usage(L), 0);
	ck_assert_int_eq(layer_local_path(L, "/g", lp, sizeof(lp)), 0);
	fd = open(lp, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(read(fd, tmp, 1), 1);
	ck_assert_int_eq(tmp[0], 'y');
	close(fd);

	ck_assert_int_eq(layer_install(L, "/.wakefs/x", NULL, &r), -EPERM);
}
END_TEST

START_TEST(test_tmp_cleared)
{
	char tmp[PATH_MAX];

	make_tmp(tmp, sizeof(tmp), 10, 'z');
	ck_assert_int_eq(access(tmp, F_OK), 0);
	reopen();	/* a download a crash interrupted */
	ck_assert_int_eq(access(tmp, F_OK), -1);
}
END_TEST

/* A file of the layer directory holding @text. */
static void put_file(const char *rel, const char *text)
{
	char p[PATH_MAX];
	FILE *f;

	snprintf(p, sizeof(p), "%s%s", tdir, rel);
	f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

static struct version local_version(const char *rel)
{
	struct stat st;

	ck_assert_int_eq(layer_local_stat(L, rel, &st), 0);
	return (struct version){ .size = st.st_size, .mtime = st.st_mtime, .valid = 1 };
}

static int state_of(const char *rel, struct version *base)
{
	enum path_state s;

	return layer_state(L, rel, &s, base) ? -1 : (int)s;
}

START_TEST(test_power_loss)
{
	char journal[PATH_MAX], snap[PATH_MAX], cmd[2 * PATH_MAX + 16], d[PATH_MAX];
	struct version sent, other = { .size = 1, .mtime = 5, .valid = 1 }, b;

	/* A file from before the session (an existing clone's): never touched. */
	layer_free(L);
	L = NULL;
	put_file("/old.txt", "from before\n");
	sleep(2);
	ck_assert_int_eq(setenv("WAKEFS_BOOT_ID", "boot-1", 1), 0);
	reopen();

	/* The session: what the mount wrote, and what the flusher recorded. */
	put_file("/new.txt", "new\n");			/* its DIRTY record lost */
	snprintf(d, sizeof(d), "%s/sub", tdir);
	ck_assert_int_eq(mkdir(d, 0755), 0);
	put_file("/sub/deep.txt", "deep\n");		/* the same, in a directory */
	put_file("/sent.txt", "sent\n");
	sent = local_version("/sent.txt");
	ck_assert_int_eq(layer_mark(L, "/sent.txt", PATH_CLEAN, &sent), 0);
	put_file("/changed.txt", "changed after it was sent\n");
	ck_assert_int_eq(layer_mark(L, "/changed.txt", PATH_CLEAN, &other), 0);
	put_file("/held.txt", "held\n");
	ck_assert_int_eq(layer_mark(L, "/held.txt", PATH_HELD, NULL), 0);
	put_file("/again.txt", "made again after a delete\n");
	ck_assert_int_eq(layer_mark(L, "/again.txt", PATH_WHITEOUT, NULL), 0);
	put_file("/over.txt", "made over a deleted VM file\n");
	ck_assert_int_eq(layer_mark(L, "/over.txt", PATH_WHITEOUT, &other), 0);

	/* The machine stops: the disk keeps the log as it is now. */
	snprintf(journal, sizeof(journal), "%s/.wakefs/journal", tdir);
	snprintf(snap, sizeof(snap), "%s/.wakefs/snap", tdir);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", journal, snap);
	ck_assert_int_eq(system(cmd), 0);
	layer_free(L);
	L = NULL;
	ck_assert_int_eq(rename(snap, journal), 0);
	ck_assert_int_eq(setenv("WAKEFS_BOOT_ID", "boot-2", 1), 0);
	reopen();

	ck_assert_int_eq(state_of("/new.txt", &b), PATH_DIRTY);
	ck_assert_int_eq(b.valid, 0);
	ck_assert_int_eq(state_of("/sub/deep.txt", NULL), PATH_DIRTY);
	ck_assert_int_eq(state_of("/again.txt", NULL), PATH_DIRTY);
	/* Over a whiteout: dirty against the VM version it hid, as layer_bump keeps it. */
	ck_assert_int_eq(state_of("/over.txt", &b), PATH_DIRTY);
	ck_assert_int_eq(b.valid, 1);
	ck_assert_int_eq(b.size, 1);
	/* Changed since it was sent: dirty against the VM version it recorded. */
	ck_assert_int_eq(state_of("/changed.txt", &b), PATH_DIRTY);
	ck_assert_int_eq(b.valid, 1);
	ck_assert_int_eq(b.size, 1);
	ck_assert_int_eq(b.mtime, 5);
	ck_assert_int_eq(state_of("/sent.txt", NULL), PATH_CLEAN);
	ck_assert_int_eq(state_of("/held.txt", NULL), PATH_HELD);
	ck_assert_int_eq(state_of("/old.txt", NULL), -1);

	/* A clean close on this boot: nothing is looked at again. */
	ck_assert_int_eq(layer_mark(L, "/new.txt", PATH_CLEAN, &other), 0);
	reopen();
	ck_assert_int_eq(state_of("/new.txt", NULL), PATH_CLEAN);
	unsetenv("WAKEFS_BOOT_ID");
}
END_TEST

static Suite *layer_suite(void)
{
	Suite *s = suite_create("layer");
	struct {
		const char *name;
		const TTest *fn;
	} cases[] = {
		{ "paths", test_paths },
		{ "default_dir", test_default_dir },
		{ "nested_dir", test_nested_dir },
		{ "states", test_states },
		{ "generations", test_generations },
		{ "callbacks", test_callbacks },
		{ "attr_dir_cache", test_attr_dir_cache },
		{ "listing_kept", test_listing_kept },
		{ "cache_lru", test_cache_lru },
		{ "install", test_install },
		{ "tmp_cleared", test_tmp_cleared },
		{ "power_loss", test_power_loss },
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

TAP_MAIN(layer_suite)
