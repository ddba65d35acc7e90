/*
 * fs/presend.c: a large file being written, sent to the VM while it grows.
 * See presend.h for what a presend is and when it stays valid.
 *
 * The thread reads the layer's file up to `avail`, the end of the writer's
 * completed writes, never further, and records how far it has read
 * (`claimed`) before it reads. A write by the writer must start at or after
 * `avail`: then no byte the thread has read, or may read, changes under it.
 * `avail` moves only when no write of the writer is in flight, so the thread
 * never reads a range a write has not finished.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "presend.h"
#include "remote.h"

#define PRESEND_CHUNK (1024 * 1024)
#define PRESEND_NICE 10		/* the thread's nice value */

struct presend {
	struct presender *pr;
	struct presend *next;		/* the presender's list */
	char *path, *tmp;
	int fd;				/* the writer's file, opened again to read */
	dev_t dev;
	ino_t ino;
	int refs;			/* writer + presender; guarded by the presender's lock */

	pthread_mutex_t lock;		/* guards what follows */
	pthread_cond_t cond;		/* signalled: avail moved, or stop */
	uint64_t gen;			/* the path's generation the presend last accounted for */
	off_t avail;			/* the thread may read [0, avail) */
	off_t hi;			/* the end of the writer's writes so far */
	off_t claimed;			/* the thread has read or is reading [0, claimed) */
	off_t sent;			/* [0, sent) went to remote_pwrite */
	int inflight;			/* writer's writes between begin and end */
	int bad;			/* cancelled or failed: never taken */
	int stop;			/* the thread must return */
	int handled;			/* presend_take ran: the temporary is the flusher's */
	struct remote_file *rf;		/* the temporary on the VM, once opened */
	int opened;			/* the thread created the temporary */
	pthread_t thread;
	int joined;
};

/*
 * An entry per path that has a presend or is claimed by the flusher (or
 * both); a small list: presends are few, and so are paths being flushed.
 */
struct claim {
	struct claim *next;
	char *path;
	struct presend *ps;		/* its presend, until claimed; NULL */
	int claims;
};

struct presender {
	struct remote *r;
	unsigned max, running;
	pthread_mutex_t lock;
	struct claim *claims;
	struct presend *all;		/* every presend not yet freed (for presender_free) */
};

int presender_new(struct presender **out, struct remote *r, unsigned max)
{
	struct presender *pr = calloc(1, sizeof(*pr));

	*out = NULL;
	if (!pr)
		return -ENOMEM;
	pr->r = r;
	pr->max = max ? max : 1;
	pthread_mutex_init(&pr->lock, NULL);
	*out = pr;
	return 0;
}

static void presend_free(struct presend *ps)
{
	pthread_mutex_destroy(&ps->lock);
	pthread_cond_destroy(&ps->cond);
	if (ps->fd >= 0)
		close(ps->fd);
	free(ps->path);
	free(ps->tmp);
	free(ps);
}

/* Close @ps's handle on the temporary, waiting for its writes; 0 or the first write error. */
static int presend_close(struct presend *ps)
{
	int err = 0;

	if (ps->rf)
		err = remote_close(ps->rf);
	ps->rf = NULL;
	return err;
}

/* A new entry for @path, with no presend and no claim; NULL when out of memory. */
static struct claim *claim_new(const char *path)
{
	struct claim *c = calloc(1, sizeof(*c));

	if (c && !(c->path = strdup(path))) {
		free(c);
		c = NULL;
	}
	return c;
}

/* Drop a reference; with pr->lock held. The last one unlinks @ps from pr->all and frees it. */
static void presend_unref_locked(struct presender *pr, struct presend *ps)
{
	struct presend **pp;

	if (--ps->refs > 0)
		return;
	for (pp = &pr->all; *pp; pp = &(*pp)->next) {
		if (*pp == ps) {
			*pp = ps->next;
			break;
		}
	}
	presend_free(ps);
}

/* Ask the thread to return and wait for it; the caller owns the presender's reference. */
static void presend_stop(struct presend *ps)
{
	pthread_mutex_lock(&ps->lock);
	ps->stop = 1;
	pthread_cond_broadcast(&ps->cond);
	pthread_mutex_unlock(&ps->lock);
	if (!ps->joined) {
		pthread_join(ps->thread, NULL);
		ps->joined = 1;
	}
}

void presender_free(struct presender *pr)
{
	struct presend *ps;
	struct claim *c;

	if (!pr)
		return;
	/* The flusher is gone: every presend left is only the presender's (and maybe a writer's). */
	pthread_mutex_lock(&pr->lock);
	while ((c = pr->claims)) {
		pr->claims = c->next;
		ps = c->ps;
		if (ps) {
			pthread_mutex_unlock(&pr->lock);
			presend_stop(ps);
			presend_close(ps);
			pthread_mutex_lock(&pr->lock);
			presend_unref_locked(pr, ps);
		}
		free(c->path);
		free(c);
	}
	/* A writer's handle outlives the mount only in a crash path; what is left is freed. */
	while ((ps = pr->all)) {
		pr->all = ps->next;
		presend_free(ps);
	}
	pthread_mutex_unlock(&pr->lock);
	pthread_mutex_destroy(&pr->lock);
	free(pr);
}

static struct claim *presender_find(struct presender *pr, const char *path)
{
	struct claim *c;

	for (c = pr->claims; c; c = c->next)
		if (strcmp(c->path, path) == 0)
			return c;
	return NULL;
}

/* Read [off, off + len) of the layer's file whole; -EIO when it is shorter now. */
static int presend_read(struct presend *ps, unsigned char *buf, size_t len, off_t off)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pread(ps->fd, buf + done, len - done, off + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;	/* truncated under us: the generation says so too */
		done += (size_t)n;
	}
	return 0;
}

static void *presend_main(void *arg)
{
	struct presend *ps = arg;
	struct remote_file *rf = NULL;
	unsigned char *buf = malloc(PRESEND_CHUNK);
	off_t off, end;
	int err;

	/*
	 * A head start must not slow the writer it follows: on a busy machine
	 * the writer's CPU comes first (Linux nice values are per thread).
	 */
	setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), PRESEND_NICE);
	err = buf ? remote_open(ps->pr->r, ps->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600, &rf)
		  : -ENOMEM;
	pthread_mutex_lock(&ps->lock);
	ps->rf = rf;
	ps->opened = !err;
	if (err)
		ps->bad = 1;
	for (;;) {
		while (!ps->stop && !ps->bad && ps->claimed >= ps->avail)
			pthread_cond_wait(&ps->cond, &ps->lock);
		if (ps->stop || ps->bad)
			break;
		off = ps->claimed;
		end = ps->avail - off > PRESEND_CHUNK ? off + PRESEND_CHUNK : ps->avail;
		ps->claimed = end;
		pthread_mutex_unlock(&ps->lock);
		err = presend_read(ps, buf, (size_t)(end - off), off);
		if (!err) {
			ssize_t w = remote_pwrite(rf, buf, (size_t)(end - off), off);

			err = w < 0 ? (int)w : 0;
		}
		pthread_mutex_lock(&ps->lock);
		if (err)
			ps->bad = 1;
		else
			ps->sent = end;
	}
	pthread_mutex_unlock(&ps->lock);
	free(buf);
	return NULL;
}

int presend_start(struct presender *pr, const char *path, const char *tmp, int fd, uint64_t gen,
		  struct presend **out)
{
	struct presend *ps;
	struct claim *c = NULL;
	struct stat st, again;
	char self[64];
	int err;

	*out = NULL;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1)
		return -EAGAIN;
	ps = calloc(1, sizeof(*ps));
	if (!ps)
		return -ENOMEM;
	ps->pr = pr;
	ps->fd = -1;
	pthread_mutex_init(&ps->lock, NULL);
	pthread_cond_init(&ps->cond, NULL);
	ps->path = strdup(path);
	ps->tmp = strdup(tmp);
	c = claim_new(path);
	if (!ps->path || !ps->tmp || !c) {
		err = -ENOMEM;
		goto fail;
	}
	/* The writer's descriptor may be write-only: open the same file again, to read. */
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	ps->fd = open(self, O_RDONLY | O_CLOEXEC);
	if (ps->fd >= 0 && (fstat(ps->fd, &again) < 0 || again.st_ino != st.st_ino ||
			    again.st_dev != st.st_dev)) {
		close(ps->fd);
		ps->fd = -1;
		errno = EAGAIN;
	}
	if (ps->fd < 0) {
		err = -errno;
		goto fail;
	}
	ps->dev = st.st_dev;
	ps->ino = st.st_ino;
	ps->gen = gen;
	ps->avail = ps->hi = st.st_size;
	ps->refs = 2;

	pthread_mutex_lock(&pr->lock);
	err = pr->running >= pr->max || presender_find(pr, path)
		      ? -EAGAIN : -pthread_create(&ps->thread, NULL, presend_main, ps);
	if (err) {
		pthread_mutex_unlock(&pr->lock);
		goto fail;
	}
	pr->running++;
	c->ps = ps;
	c->next = pr->claims;
	pr->claims = c;
	ps->next = pr->all;
	pr->all = ps;
	pthread_mutex_unlock(&pr->lock);
	*out = ps;
	return 0;
fail:
	if (c)
		free(c->path);
	free(c);
	presend_free(ps);
	return err;
}

void presend_write_begin(struct presend *ps, const char *path, off_t off, uint64_t prev,
			 uint64_t now)
{
	pthread_mutex_lock(&ps->lock);
	if (prev != ps->gen || off < ps->avail || strcmp(path, ps->path) != 0) {
		ps->bad = 1;
	} else {
		ps->gen = now;
		ps->inflight++;
	}
	pthread_mutex_unlock(&ps->lock);
}

void presend_write_end(struct presend *ps, off_t off, size_t len, uint64_t prev, uint64_t now)
{
	pthread_mutex_lock(&ps->lock);
	if (ps->inflight > 0)
		ps->inflight--;
	if (ps->bad || prev != ps->gen) {
		ps->bad = 1;
	} else {
		ps->gen = now;
		if (off + (off_t)len > ps->hi)
			ps->hi = off + (off_t)len;
		if (ps->inflight == 0 && ps->hi > ps->avail) {
			ps->avail = ps->hi;
			pthread_cond_signal(&ps->cond);
		}
	}
	pthread_mutex_unlock(&ps->lock);
}

void presend_cancel(struct presend *ps)
{
	if (!ps)
		return;
	pthread_mutex_lock(&ps->lock);
	ps->bad = 1;
	pthread_cond_signal(&ps->cond);
	pthread_mutex_unlock(&ps->lock);
}

void presend_put(struct presend *ps)
{
	struct presender *pr;

	if (!ps)
		return;
	pr = ps->pr;
	pthread_mutex_lock(&pr->lock);
	presend_unref_locked(pr, ps);
	pthread_mutex_unlock(&pr->lock);
}

int presender_live(struct presender *pr, const char *path)
{
	struct claim *c;
	int live = 0;

	pthread_mutex_lock(&pr->lock);
	c = presender_find(pr, path);
	if (c && c->ps) {
		pthread_mutex_lock(&c->ps->lock);
		live = !c->ps->bad;
		pthread_mutex_unlock(&c->ps->lock);
	}
	pthread_mutex_unlock(&pr->lock);
	return live;
}

struct presend *presender_claim(struct presender *pr, const char *path)
{
	struct presend *ps = NULL;
	struct claim *c;

	pthread_mutex_lock(&pr->lock);
	c = presender_find(pr, path);
	if (!c) {
		c = claim_new(path);
		if (!c) {
			/* Out of memory: a presend starting now would fail the same way. */
			pthread_mutex_unlock(&pr->lock);
			return NULL;
		}
		c->next = pr->claims;
		pr->claims = c;
	}
	c->claims++;
	ps = c->ps;
	c->ps = NULL;
	pthread_mutex_unlock(&pr->lock);
	if (ps)
		presend_stop(ps);
	return ps;
}

int presend_take(struct presend *ps, uint64_t gen, const struct stat *st,
		 struct remote_file **rf, off_t *sent)
{
	int ok;

	*rf = NULL;
	*sent = 0;
	if (!ps)
		return 0;
	/* The thread has returned (presender_claim): only the flusher touches ps now. */
	ok = !ps->bad && ps->rf && ps->inflight == 0 && ps->gen == gen && st->st_dev == ps->dev &&
	     st->st_ino == ps->ino && st->st_nlink == 1 && st->st_size >= ps->sent &&
	     ps->sent == ps->claimed;
	ps->handled = 1;
	if (!ok) {
		presend_close(ps);
		return 0;
	}
	*rf = ps->rf;
	*sent = ps->sent;
	ps->rf = NULL;
	return 1;
}

void presender_unclaim(struct presender *pr, const char *path, struct presend *ps)
{
	struct claim *c, **pp;

	if (ps) {
		presend_close(ps);
		/* Made, then neither taken nor written by the flusher: it would be left behind. */
		if (ps->opened && !ps->handled)
			remote_unlink(pr->r, ps->tmp);
	}
	pthread_mutex_lock(&pr->lock);
	for (pp = &pr->claims; (c = *pp); pp = &c->next) {
		if (strcmp(c->path, path) == 0) {
			if (--c->claims <= 0 && !c->ps) {
				*pp = c->next;
				free(c->path);
				free(c);
			}
			break;
		}
	}
	if (ps) {
		pr->running--;
		presend_unref_locked(pr, ps);
	}
	pthread_mutex_unlock(&pr->lock);
}
