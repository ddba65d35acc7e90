/*
 * tests/tools/flush-drive.c: drive the flusher (fs/flush.c) and the control
 * socket (fs/control.c) over a real VM connection without FUSE, for the
 * t-flush-*.sh and t-control-*.sh tests.
 *
 *   flush-drive LAYER_DIR REMOTE_ROOT tracked|unignored|all [DEBOUNCE_MS]
 *   flush-drive status|flush|push|resolve MOUNTPOINT ...   (the client)
 *
 * Connects to 127.0.0.1:$VM_PORT as $VM_USER with $VM_KEY and
 * $VM_KNOWN_HOSTS, then reads commands from stdin, one per line, and answers
 * each with one line "ok [detail]" or "err <errno name or number> [detail]".
 * The local side of each command does what fs/lops.c does to the layer
 * (write + layer_bump + layer_notify, and so on):
 *   write PATH TEXT       replace the local file with TEXT and a newline; close
 *   big PATH MIB CHAR     write MIB MiB of CHAR; close
 *   fetch PATH            copy the VM's file into the layer (a clean copy-up)
 *   rm PATH               unlink: a whiteout; mv FROM TO: rename
 *   fsync PATH | all MS | push PATH | resolve PATH local|remote
 *   state PATH            the journal state's name ("none" when untracked)
 *   control MOUNTPOINT    serve the control socket for MOUNTPOINT
 *   feed MS               start the change feed, scanning every MS
 *   attrput PATH | dirput PATH   cache the VM's attributes / listing in the layer
 *   attrget PATH | dirget PATH   "ok hit" or "ok miss"
 *   dirhas DIR NAME       whether DIR's cached listing has NAME: "ok yes", "ok no", "ok miss"
 *   quit
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control.h"
#include "feed.h"
#include "flush.h"
#include "journal.h"
#include "layer.h"
#include "policy.h"
#include "remote.h"

static struct remote *r;
static struct layer *l;
static struct policy *p;
static struct flusher *f;
static struct control *ctl;
static struct feed *feed;
static const char *root;

static void answer(int err, const char *detail)
{
	if (err)
		printf("err %d %s\n", -err, detail ? detail : strerror(-err));
	else
		printf("ok%s%s\n", detail ? " " : "", detail ? detail : "");
	fflush(stdout);
}

static int local_write(const char *path, const char *data, size_t len, size_t repeat)
{
	char lp[PATH_MAX];
	int fd, err;
	size_t i;

	err = layer_local_path(l, path, lp, sizeof(lp));
	if (!err)
		err = layer_mkparents(l, path);
	if (err)
		return err;
	fd = open(lp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -errno;
	for (i = 0; i < repeat && !err; i++) {
		if (write(fd, data, len) != (ssize_t)len)
			err = -EIO;
		if (!err)
			err = layer_bump(l, path);
	}
	close(fd);
	if (!err)
		layer_notify(l, path, LAYER_EV_CLOSED_DIRTY, NULL);
	return err;
}

static int rpath(const char *path, char *buf, size_t len)
{
	return snprintf(buf, len, "%s%s", root, path) >= (int)len ? -ENAMETOOLONG : 0;
}

static int cmd_fetch(const char *path)
{
	char rp[PATH_MAX], tmp[PATH_MAX];
	struct version b;
	struct stat st;
	int fd, err;

	err = rpath(path, rp, sizeof(rp));
	if (err)
		return err;
	fd = layer_tmpfile(l, tmp, sizeof(tmp));
	if (fd < 0)
		return fd;
	err = remote_download(r, rp, fd, &st);
	close(fd);
	if (!err)
		err = layer_install(l, path, tmp, &st);
	if (err) {
		unlink(tmp);
		return err;
	}
	b.size = (uint64_t)st.st_size;
	b.mtime = st.st_mtime;
	b.valid = 1;
	return layer_mark(l, path, PATH_CLEAN, &b);
}

static int cmd_rm(const char *path)
{
	char lp[PATH_MAX];
	int err = layer_local_path(l, path, lp, sizeof(lp));

	if (!err && unlink(lp) < 0 && errno != ENOENT)
		err = -errno;
	if (!err)
		err = layer_mark(l, path, PATH_WHITEOUT, NULL);
	if (!err)
		layer_notify(l, path, LAYER_EV_UNLINK, NULL);
	return err;
}

static int cmd_mv(const char *from, const char *to)
{
	char lf[PATH_MAX], lt[PATH_MAX];
	int err;

	err = layer_local_path(l, from, lf, sizeof(lf));
	if (!err)
		err = layer_local_path(l, to, lt, sizeof(lt));
	if (!err)
		err = layer_mkparents(l, to);
	if (!err && rename(lf, lt) < 0)
		err = -errno;
	if (err)
		return err;
	err = journal_rename(layer_journal(l), from, to);
	if (err == -ENOENT)
		err = 0;
	if (!err)
		err = layer_bump(l, to);
	if (!err)
		err = layer_mark(l, from, PATH_WHITEOUT, NULL);
	if (!err)
		layer_notify(l, from, LAYER_EV_RENAME, to);
	return err;
}

static void cmd_state(const char *path)
{
	enum path_state s;
	int err = layer_state(l, path, &s, NULL);

	if (err == -ENOENT)
		answer(0, "none");
	else if (err)
		answer(err, NULL);
	else
		answer(0, journal_state_name(s));
}

static int put_entry(const char *name, const struct stat *st, void *payload)
{
	return layer_listing_add(payload, name, st);
}

static int cmd_dirput(const char *path)
{
	struct layer_listing *ls = NULL;
	char rp[PATH_MAX];
	int err;

	err = rpath(path, rp, sizeof(rp));
	if (!err)
		err = layer_listing_new(&ls);
	if (!err)
		err = remote_readdir(r, rp, put_entry, ls);
	if (err) {
		layer_listing_free(ls);
		return err;
	}
	layer_dir_put(l, path, ls);
	return 0;
}

static int count_entry(const char *name, const struct stat *st, void *payload)
{
	(void)name;
	(void)st;
	(*(int *)payload)++;
	return 0;
}

static void run(char *line)
{
	char *cmd = strtok(line, " \n"), *a = strtok(NULL, " \n"), *b = strtok(NULL, "\n");
	char detail[64];
	int err;

	if (!cmd) {
		answer(-EINVAL, "empty command");
	} else if (!strcmp(cmd, "write") && a) {
		char *text = malloc(strlen(b ? b : "") + 2);

		if (!text) {
			answer(-ENOMEM, NULL);
			return;
		}
		sprintf(text, "%s\n", b ? b : "");
		answer(local_write(a, text, strlen(text), 1), NULL);
		free(text);
	} else if (!strcmp(cmd, "big") && a && b) {
		char *buf = malloc(1 << 20);
		long mib = strtol(b, &b, 10);

		if (!buf) {
			answer(-ENOMEM, NULL);
			return;
		}
		memset(buf, b && b[0] == ' ' ? b[1] : 'x', 1 << 20);
		answer(local_write(a, buf, 1 << 20, (size_t)mib), NULL);
		free(buf);
	} else if (!strcmp(cmd, "fetch") && a) {
		answer(cmd_fetch(a), NULL);
	} else if (!strcmp(cmd, "rm") && a) {
		answer(cmd_rm(a), NULL);
	} else if (!strcmp(cmd, "mv") && a && b) {
		answer(cmd_mv(a, b), NULL);
	} else if (!strcmp(cmd, "fsync") && a) {
		answer(flush_path(f, a), NULL);
	} else if (!strcmp(cmd, "all")) {
		answer(flush_all(f, a ? atoi(a) : 0), NULL);
	} else if (!strcmp(cmd, "push") && a) {
		answer(flush_push(f, a), NULL);
	} else if (!strcmp(cmd, "resolve") && a && b) {
		answer(flush_resolve(f, a, !strcmp(b, "local") ? FLUSH_KEEP_LOCAL : FLUSH_KEEP_REMOTE),
		       NULL);
	} else if (!strcmp(cmd, "state") && a) {
		cmd_state(a);
	} else if (!strcmp(cmd, "control") && a) {
		struct control_opts co = { a, "vm:test", "tracked", f, l };

		control_free(ctl);
		ctl = NULL;
		err = control_new(&ctl, &co);
		answer(err, NULL);
	} else if (!strcmp(cmd, "feed") && a) {
		struct feed_opts fo = { .remote_root = root, .interval_ms = atoi(a) };

		feed_free(feed);
		feed = NULL;
		answer(feed_new(&feed, r, l, &fo), NULL);
	} else if (!strcmp(cmd, "feedstats") && feed) {
		snprintf(detail, sizeof(detail), "scans=%llu invalidated=%llu",
			 (unsigned long long)feed_scans(feed), (unsigned long long)feed_invalidated(feed));
		answer(0, detail);
	} else if (!strcmp(cmd, "attrput") && a) {
		char rp[PATH_MAX];
		struct stat st;

		err = rpath(a, rp, sizeof(rp));
		if (!err)
			err = remote_lstat(r, rp, &st);
		if (!err)
			layer_attr_put(l, a, &st);
		answer(err, NULL);
	} else if (!strcmp(cmd, "attrget") && a) {
		struct stat st;

		answer(0, layer_attr_get(l, a, &st) == -EAGAIN ? "miss" : "hit");
	} else if (!strcmp(cmd, "dirput") && a) {
		answer(cmd_dirput(a), NULL);
	} else if (!strcmp(cmd, "dirget") && a) {
		int n = 0;

		answer(0, layer_dir_get(l, a, count_entry, &n) == -EAGAIN ? "miss" : "hit");
	} else if (!strcmp(cmd, "dirhas") && a && b) {
		int has = layer_dir_has(l, a, b);

		answer(0, has == -EAGAIN ? "miss" : has ? "yes" : "no");
	} else if (!strcmp(cmd, "stats")) {
		struct flush_stats st;

		flush_stats(f, &st);
		snprintf(detail, sizeof(detail), "queued=%zu dirty=%zu held=%zu conflict=%zu",
			 st.queued, st.dirty, st.held, st.conflict);
		answer(0, detail);
	} else {
		answer(-EINVAL, "unknown command");
	}
}

int main(int argc, char **argv)
{
	struct layer_opts lo = { 0 };
	struct remote_opts ro = { 0 };
	struct flush_opts fo = { 0 };
	enum flush_mode mode;
	char err[512], line[8192];
	int e;

	if (argc > 1 && control_is_command(argv[1]))
		return control_client_main(argc - 1, argv + 1, NULL);	/* the client, as `wakefs CMD` */
	if (argc < 4 || policy_mode_parse(argv[3], &mode)) {
		fprintf(stderr, "usage: flush-drive LAYER_DIR REMOTE_ROOT tracked|unignored|all "
				"[DEBOUNCE_MS]\n");
		return 2;
	}
	root = argv[2];
	ro.host = "127.0.0.1";
	ro.port = getenv("VM_PORT") ? atoi(getenv("VM_PORT")) : 22;
	ro.user = getenv("VM_USER");
	ro.identity = getenv("VM_KEY");
	ro.known_hosts = getenv("VM_KNOWN_HOSTS");
	ro.ssh_config = "/dev/null";
	ro.request_timeout_ms = 10000;
	e = remote_new(&r, &ro, err, sizeof(err));
	if (e) {
		fprintf(stderr, "flush-drive: %s\n", err);
		return 1;
	}
	lo.dir = argv[1];
	lo.attr_timeout_ms = 600000;	/* only the feed invalidates in these tests */
	fo.remote_root = root;
	fo.debounce_ms = argc > 4 ? atoi(argv[4]) : 200;
	fo.retry_min_ms = 100;
	fo.retry_max_ms = 1000;
	e = layer_new(&l, &lo);
	if (!e)
		e = policy_new(&p, argv[1], mode);
	if (!e)
		e = flush_new(&f, r, l, p, &fo);
	if (e) {
		fprintf(stderr, "flush-drive: cannot start: %s\n", strerror(-e));
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		if (!strncmp(line, "quit", 4))
			break;
		run(line);
	}
	control_free(ctl);
	feed_free(feed);
	flush_free(f);
	policy_free(p);
	layer_free(l);
	remote_free(r);
	return 0;
}
