/*
 * fs/feed.c: the change feed from the VM.
 *
 * The first scan learns the whole tree in one command, so that a fresh
 * mount answers lookups and listings without a round trip per name:
 *
 *   cd ROOT && date +%s && find . -name .git -prune -printf FMT -o -printf FMT
 *
 * with FMT '%y %m %s %T@ %A@ %U %G %P\0' (type, mode, size, times, owner,
 * path): what an SFTP lstat gives, to the second. find walks depth first,
 * so a directory's entries are complete once a path outside it comes; each
 * such listing goes to the layer (layer_dir_put), and lookups that missed
 * meanwhile wait for it (layer_learn_*). Listings are kept only when find
 * read everything (exit status 0, output under FEED_LEARN_MAX); otherwise
 * only the attributes are. A .git is listed but not entered.
 *
 * Then, every interval, one command runs on the VM through remote_exec:
 *
 *   cd ROOT && date +%s && find . -name .git -prune -o -newerct @SINCE -printf '%P\0'
 *
 * Its first line is the VM's clock, which becomes the next SINCE (minus a
 * two-second overlap, as ctime has one-second granularity here); the rest
 * are the NUL-separated paths changed since the last scan. Each is
 * invalidated in the layer (its attributes and its listing); a creation,
 * deletion or rename changes the parent directory, which is then reported
 * too. A reported directory whose listing the layer has is listed again
 * instead (up to FEED_REFRESH_MAX a scan), so that the directories being
 * written into through the mount, which change at each flush, keep
 * answering lookups of new names without a round trip. When
 * the answer is too long to trust (over FEED_MAX bytes) everything cached
 * is invalidated instead, and the next scan learns the tree again. Our own
 * temporaries (".wakefs-tmp.") are skipped.
 *
 * Each scan that succeeds vouches for the caches for FEED_TRUST_SCANS
 * intervals from its start (layer_trust_for): the layer then keeps what it
 * knows until the feed drops it, rather than for a fixed time. If the scans
 * stop (the VM is gone), the trust lapses and entries expire by age again.
 *
 * Locking: struct feed.lock guards stop and the counters; it is not held
 * while scanning.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "feed.h"
#include "layer.h"
#include "remote.h"
#include "sftp.h"

#define FEED_MAX (4u << 20)
#define FEED_TIMEOUT_MS 30000
#define FEED_LEARN_MAX (16u << 20)	/* about 300,000 paths */
#define FEED_LEARN_TIMEOUT_MS 120000
#define FEED_TRUST_SCANS 5
#define FEED_REFRESH_MAX 32	/* listed directories listed again per scan */
#define FEED_FMT "'%y %m %s %T@ %A@ %U %G %P\\0'"

struct feed {
	struct remote *r;
	struct layer *l;
	char *cd;		/* "cd -- 'ROOT' && " (shell-quoted), or "" */
	char *root;		/* ROOT for SFTP ("": the login dir) */
	int interval_ms;
	long long since;	/* VM clock of the last scan, -1 before the first */
	void (*learned)(void *payload);
	void *payload;

	pthread_mutex_t lock;	/* guards stop and the counters */
	pthread_cond_t cond;
	int stop;
	uint64_t scans, invalidated;
	pthread_t thread;
	int started;
};

/* "cd -- 'ROOT' && " with ROOT single-quoted for the shell. */
static char *feed_cd(const char *root)
{
	size_t n = 0;
	const char *s;
	char *out, *o;

	if (!root || !root[0])
		return strdup("");
	for (s = root; *s; s++)
		n += *s == '\'' ? 4 : 1;
	out = malloc(n + 16);
	if (!out)
		return NULL;
	o = out + sprintf(out, "cd -- '");
	for (s = root; *s; s++) {
		if (*s == '\'') {
			memcpy(o, "'\\''", 4);
			o += 4;
		} else {
			*o++ = *s;
		}
	}
	strcpy(o, "' && ");
	return out;
}

static int feed_listing_add(const char *name, const struct stat *st, void *payload)
{
	return layer_listing_add(payload, name, st);
}

/*
 * A directory whose listing the layer has changed on the VM: list it again
 * (with its own attributes) rather than drop it. A directory being written
 * into through the mount changes at every flush; without its listing, each
 * lookup of a new name there (an untar, a checkout) costs a round trip.
 */
static int feed_refresh(struct feed *fd, const char *path)
{
	struct layer_listing *ls = NULL;
	char vp[8192];
	struct stat st;
	int err = remote_path_join(fd->root, path, vp, sizeof(vp));

	if (!err)
		err = remote_lstat(fd->r, vp, &st);
	if (!err && !S_ISDIR(st.st_mode))
		err = -ENOTDIR;
	if (!err)
		err = layer_listing_new(&ls);
	if (!err)
		err = remote_readdir(fd->r, vp, feed_listing_add, ls);
	if (err) {
		layer_listing_free(ls);
		return err;
	}
	layer_attr_put(fd->l, path, &st);
	layer_dir_put(fd->l, path, ls);	/* takes the listing */
	return 0;
}

/*
 * Invalidate every path of the NUL-separated list @p..@end (listed
 * directories are listed again, up to FEED_REFRESH_MAX); returns the count.
 */
static uint64_t feed_apply(struct feed *fd, const char *p, const char *end)
{
	char path[4096];
	uint64_t n = 0;
	int refreshed = 0;

	while (p < end) {
		size_t len = strnlen(p, (size_t)(end - p));

		/* An empty path is the root itself (its entries changed). */
		if (len + 2 < sizeof(path) && !strstr(p, ".wakefs-tmp.")) {
			path[0] = '/';
			memcpy(path + 1, p, len);
			path[len + 1] = '\0';
			if (!layer_hidden(path)) {
				if (refreshed >= FEED_REFRESH_MAX || !layer_dir_cached(fd->l, path) ||
				    feed_refresh(fd, path))
					layer_invalidate_changed(fd->l, path);
				else
					refreshed++;
				n++;
			}
		}
		p += len + 1;
	}
	return n;
}

static long long feed_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Parse one learn record "TYPE MODE SIZE MTIME ATIME UID GID PATH" into
 * @st, as an SFTP lstat of the path would give it (sftp_attrs_to_stat), and
 * the path relative to the root; -1 when malformed or of a type SFTP does
 * not show.
 */
static int feed_record(const char *rec, struct stat *st, const char **rel)
{
	static const char types[] = "fdlpscb";
	static const mode_t fmt[] = { S_IFREG, S_IFDIR, S_IFLNK, S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK };
	struct sftp_attrs a = { .flags = SSH_FILEXFER_ATTR_SIZE | SSH_FILEXFER_ATTR_UIDGID |
					 SSH_FILEXFER_ATTR_PERMISSIONS | SSH_FILEXFER_ATTR_ACMODTIME };
	unsigned long long v[6];
	const char *t, *q;
	char *e;
	int i;

	if (!rec[0] || rec[1] != ' ' || !(t = strchr(types, rec[0])))
		return -1;
	q = rec + 2;
	for (i = 0; i < 6; i++) {
		if (*q < '0' || *q > '9')
			return -1;	/* no sign, no space: find prints plain numbers */
		errno = 0;
		v[i] = strtoull(q, &e, i == 0 ? 8 : 10);
		if (errno || e == q)
			return -1;
		if ((i == 2 || i == 3) && *e == '.')
			while (*++e >= '0' && *e <= '9')
				;	/* SFTP v3 gives whole seconds: drop the fraction */
		if (*e != ' ')
			return -1;
		q = e + 1;
	}
	a.perm = (uint32_t)(fmt[t - types] | (v[0] & 07777));
	a.size = v[1];
	a.mtime = (uint32_t)v[2];
	a.atime = (uint32_t)v[3];
	a.uid = (uint32_t)v[4];
	a.gid = (uint32_t)v[5];
	sftp_attrs_to_stat(&a, st);
	*rel = q;
	return 0;
}

struct feed_dir {
	char *path;
	struct layer_listing *ls;
};

/* Hand a directory's listing to the layer if complete, else only its entries' attributes. */
static void feed_dir_done(struct feed *fd, struct feed_dir *d, int complete)
{
	if (complete) {
		layer_dir_put(fd->l, d->path, d->ls);	/* takes the listing */
	} else {
		layer_listing_free(d->ls);
	}
	free(d->path);
}

/*
 * Learn the tree from the NUL-separated records @p..@end (depth first).
 * @complete: find read every directory. Returns the paths learnt.
 */
static uint64_t feed_learn(struct feed *fd, const char *p, const char *end, int complete)
{
	struct feed_dir *stack = NULL;
	size_t depth = 0, cap = 0;
	char path[4096];
	uint64_t n = 0;

	while (p < end) {
		size_t len = strnlen(p, (size_t)(end - p));
		const char *rel, *slash, *name;
		struct stat st;
		size_t plen;

		if (p + len == end)
			break;	/* cut short: no terminator */
		if (feed_record(p, &st, &rel) || strlen(rel) + 2 > sizeof(path) ||
		    strstr(rel, ".wakefs-tmp.")) {
			p += len + 1;
			continue;
		}
		path[0] = '/';
		strcpy(path + 1, rel);
		p += len + 1;
		if (layer_hidden(path))
			continue;
		/* Close the directories this path is not in: they are complete. */
		slash = strrchr(path, '/');
		plen = slash == path ? 1 : (size_t)(slash - path);
		name = slash + 1;
		while (depth && (strlen(stack[depth - 1].path) != plen ||
				 strncmp(stack[depth - 1].path, path, plen) != 0)) {
			depth--;
			feed_dir_done(fd, &stack[depth], complete);
		}
		if (strcmp(path, "/") == 0) {
			layer_attr_put(fd->l, "/", &st);
		} else {
			layer_attr_put(fd->l, path, &st);
			if (depth)
				layer_listing_add(stack[depth - 1].ls, name, &st);
		}
		n++;
		if (!S_ISDIR(st.st_mode))
			continue;
		if (depth == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct feed_dir *ns = realloc(stack, ncap * sizeof(*ns));

			if (!ns)
				break;
			stack = ns;
			cap = ncap;
		}
		stack[depth].path = strdup(path);
		if (!stack[depth].path || layer_listing_new(&stack[depth].ls)) {
			free(stack[depth].path);
			break;
		}
		depth++;
	}
	/* What is still open was cut short (or the walk ended): complete only if it ended. */
	while (depth) {
		depth--;
		feed_dir_done(fd, &stack[depth], complete && p >= end);
	}
	free(stack);
	return n;
}

/* One scan. Returns 0 or -errno (the next scan covers what this one missed). */
static int feed_scan(struct feed *fd)
{
	char cmd[8192], *out = NULL, *nl, *end;
	size_t outlen = 0;
	int status = 0, err, n, learn = fd->since < 0;
	long long now, t0 = feed_now_ms(), took;
	uint64_t count = 0;

	if (learn)
		n = snprintf(cmd, sizeof(cmd),
			     "%sdate +%%s && find . -name .git -prune -printf %s -o -printf %s "
			     "2>/dev/null",
			     fd->cd, FEED_FMT, FEED_FMT);
	else
		n = snprintf(cmd, sizeof(cmd),
			     "%sdate +%%s && find . -name .git -prune -o -newerct @%lld "
			     "-printf '%%P\\0' 2>/dev/null",
			     fd->cd, fd->since);
	if (n < 0 || (size_t)n >= sizeof(cmd))
		return -ENAMETOOLONG;
	if (learn)
		layer_learn_begin(fd->l);
	err = remote_exec(fd->r, cmd, learn ? FEED_LEARN_MAX : FEED_MAX,
			  learn ? FEED_LEARN_TIMEOUT_MS : FEED_TIMEOUT_MS, &out, &outlen, &status);
	if (err)
		goto out;
	nl = out ? memchr(out, '\n', outlen) : NULL;
	if (!nl || sscanf(out, "%lld", &now) != 1) {
		err = -EPROTO;	/* no clock: the root is gone, or no shell */
		goto out;
	}
	end = out + outlen;
	fd->since = now - 2;
	if (learn) {
		int complete = status == 0 && outlen < FEED_LEARN_MAX;

		count = feed_learn(fd, nl + 1, end, complete);
		if (complete && fd->learned)
			fd->learned(fd->payload);
		layer_learn_end(fd->l, count);
		count = 0;
	} else if (outlen >= FEED_MAX) {
		layer_invalidate_all(fd->l);
		fd->since = -1;	/* too much changed: learn the tree again */
		count = 1;
	} else {
		count = feed_apply(fd, nl + 1, end);
	}
	took = feed_now_ms() - t0;
	if (took < (long long)FEED_TRUST_SCANS * fd->interval_ms)
		layer_trust_for(fd->l, (int)(FEED_TRUST_SCANS * fd->interval_ms - took));
	pthread_mutex_lock(&fd->lock);
	fd->scans++;
	fd->invalidated += count;
	pthread_mutex_unlock(&fd->lock);
out:
	if (err && learn)
		layer_learn_end(fd->l, 0);
	free(out);
	return err;
}

static void *feed_thread(void *arg)
{
	struct feed *fd = arg;
	struct timespec ts;

	pthread_mutex_lock(&fd->lock);
	while (!fd->stop) {
		pthread_mutex_unlock(&fd->lock);
		feed_scan(fd);
		pthread_mutex_lock(&fd->lock);
		if (fd->stop)
			break;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += fd->interval_ms / 1000;
		ts.tv_nsec += (long)(fd->interval_ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		while (!fd->stop && pthread_cond_timedwait(&fd->cond, &fd->lock, &ts) == 0)
			;
	}
	pthread_mutex_unlock(&fd->lock);
	return NULL;
}

int feed_new(struct feed **out, struct remote *r, struct layer *l, const struct feed_opts *o)
{
	pthread_condattr_t ca;
	struct feed *fd;
	int err;

	*out = NULL;
	fd = calloc(1, sizeof(*fd));
	if (!fd)
		return -ENOMEM;
	fd->r = r;
	fd->l = l;
	fd->since = -1;
	fd->interval_ms = o && o->interval_ms > 0 ? o->interval_ms : 2000;
	fd->learned = o ? o->learned : NULL;
	fd->payload = o ? o->payload : NULL;
	pthread_mutex_init(&fd->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&fd->cond, &ca);
	pthread_condattr_destroy(&ca);
	fd->cd = feed_cd(o ? o->remote_root : NULL);
	fd->root = strdup(o && o->remote_root ? o->remote_root : "");
	if (!fd->cd || !fd->root) {
		err = -ENOMEM;
		goto out;
	}
	/* From now on, lookups may wait for the first scan, which learns the tree. */
	layer_learn_begin(l);
	err = -pthread_create(&fd->thread, NULL, feed_thread, fd);
	if (err) {
		layer_learn_end(l, 0);
		goto out;
	}
	fd->started = 1;
	*out = fd;
out:
	if (err)
		feed_free(fd);
	return err;
}

void feed_free(struct feed *fd)
{
	if (!fd)
		return;
	pthread_mutex_lock(&fd->lock);
	fd->stop = 1;
	pthread_cond_broadcast(&fd->cond);
	pthread_mutex_unlock(&fd->lock);
	if (fd->started)
		pthread_join(fd->thread, NULL);
	layer_learn_end(fd->l, 0);	/* nobody waits for a scan that will not come */
	pthread_cond_destroy(&fd->cond);
	pthread_mutex_destroy(&fd->lock);
	free(fd->cd);
	free(fd->root);
	free(fd);
}

uint64_t feed_scans(struct feed *fd)
{
	uint64_t n;

	pthread_mutex_lock(&fd->lock);
	n = fd->scans;
	pthread_mutex_unlock(&fd->lock);
	return n;
}

uint64_t feed_invalidated(struct feed *fd)
{
	uint64_t n;

	pthread_mutex_lock(&fd->lock);
	n = fd->invalidated;
	pthread_mutex_unlock(&fd->lock);
	return n;
}
