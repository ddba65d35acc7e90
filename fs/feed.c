/*
 * fs/feed.c: the change feed from the VM.
 *
 * Every interval one command runs on the VM through remote_exec:
 *
 *   cd ROOT && date +%s && find . -name .git -prune -o -newerct @SINCE -printf '%P\0'
 *
 * Its first line is the VM's clock, which becomes the next SINCE (minus a
 * two-second overlap, as ctime has one-second granularity here); the rest
 * are the NUL-separated paths changed since the last scan. Each is
 * invalidated in the layer (its attributes, its listing and its parent's
 * listing), so a deletion shows too: it changes the parent directory. When
 * the answer is too long to trust (over FEED_MAX bytes) everything cached
 * is invalidated instead. Our own temporaries (".wakefs-tmp.") are skipped.
 *
 * Locking: struct feed.lock guards stop and the counters; it is not held
 * while scanning.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "feed.h"
#include "layer.h"
#include "remote.h"

#define FEED_MAX (4u << 20)
#define FEED_TIMEOUT_MS 30000

struct feed {
	struct remote *r;
	struct layer *l;
	char *cd;		/* "cd -- 'ROOT' && " (shell-quoted), or "" */
	int interval_ms;
	long long since;	/* VM clock of the last scan, -1 before the first */

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

/* Invalidate every path of the NUL-separated list @p..@end; returns the count. */
static uint64_t feed_apply(struct feed *fd, const char *p, const char *end)
{
	char path[4096];
	uint64_t n = 0;

	while (p < end) {
		size_t len = strnlen(p, (size_t)(end - p));

		if (len && len + 2 < sizeof(path) && !strstr(p, ".wakefs-tmp.")) {
			path[0] = '/';
			memcpy(path + 1, p, len);
			path[len + 1] = '\0';
			if (!layer_hidden(path)) {
				layer_invalidate(fd->l, path);
				n++;
			}
		}
		p += len + 1;
	}
	return n;
}

/* One scan. Returns 0 or -errno (the next scan covers what this one missed). */
static int feed_scan(struct feed *fd)
{
	char cmd[8192], *out = NULL, *nl, *end;
	size_t outlen = 0;
	int status = 0, err, n;
	long long now;
	uint64_t count = 0;

	if (fd->since < 0)
		n = snprintf(cmd, sizeof(cmd), "%sdate +%%s", fd->cd);
	else
		n = snprintf(cmd, sizeof(cmd),
			     "%sdate +%%s && find . -name .git -prune -o -newerct @%lld "
			     "-printf '%%P\\0' 2>/dev/null",
			     fd->cd, fd->since);
	if (n < 0 || (size_t)n >= sizeof(cmd))
		return -ENAMETOOLONG;
	err = remote_exec(fd->r, cmd, FEED_MAX, FEED_TIMEOUT_MS, &out, &outlen, &status);
	if (err)
		goto out;
	nl = out ? memchr(out, '\n', outlen) : NULL;
	if (!nl || sscanf(out, "%lld", &now) != 1) {
		err = -EPROTO;	/* no clock: the root is gone, or no shell */
		goto out;
	}
	end = out + outlen;
	if (fd->since >= 0) {
		if (outlen >= FEED_MAX) {
			layer_invalidate_all(fd->l);
			count = 1;
		} else {
			count = feed_apply(fd, nl + 1, end);
		}
	}
	fd->since = now - 2;
	pthread_mutex_lock(&fd->lock);
	fd->scans++;
	fd->invalidated += count;
	pthread_mutex_unlock(&fd->lock);
out:
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
	pthread_mutex_init(&fd->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&fd->cond, &ca);
	pthread_condattr_destroy(&ca);
	fd->cd = feed_cd(o ? o->remote_root : NULL);
	if (!fd->cd) {
		err = -ENOMEM;
		goto out;
	}
	err = -pthread_create(&fd->thread, NULL, feed_thread, fd);
	if (err)
		goto out;
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
	pthread_cond_destroy(&fd->cond);
	pthread_mutex_destroy(&fd->lock);
	free(fd->cd);
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
