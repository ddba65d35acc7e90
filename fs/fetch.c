/*
 * fs/fetch.c: whole-file downloads that can be read while they arrive (see
 * fetch.h).
 *
 * Each fetch has one detached thread and two references: its thread's and
 * its opener's. The thread copies FETCH_CHUNK bytes at a time with
 * remote_recv_fd and publishes how far the copy has got (f->have) under
 * f->lock. The fetcher
 * counts the running threads under fr->lock; fetcher_free raises fr->stop,
 * which each thread checks between chunks, and waits for the count to reach
 * zero. A fetch is on the fetcher's list (fr->list, for fetch_attach) from its
 * start until its done callback has returned; one whose copy failed is not
 * joined.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fetch.h"
#include "remote.h"

#define FETCH_CHUNK (1u << 20)
/* fetch_eta's guess of the copy's pace before its first bytes arrive. */
#define FETCH_PACE_GUESS (100.0 * 1000 * 1000)

struct fetcher {
	pthread_mutex_t lock;
	pthread_cond_t idle;	/* running dropped */
	unsigned running, max;
	int stop;
	struct fetch *list;	/* copies still arriving */
};

struct fetch {
	struct fetcher *fr;
	struct fetch *next;	/* in fr->list, under fr->lock */
	char *name, *key;
	struct remote_file *rf;
	int fd;
	off_t size;		/* on the VM, at open */
	struct timespec t0;	/* when the copy started */
	fetch_done_fn done;
	void *payload;

	pthread_mutex_t lock;	/* the fields below */
	pthread_cond_t moved;	/* have or ended changed */
	off_t have;		/* bytes [0, have) are in fd */
	int ended, err;
	int refs;
};

int fetcher_new(struct fetcher **out, unsigned max)
{
	struct fetcher *fr = calloc(1, sizeof(*fr));

	*out = NULL;
	if (!fr)
		return -ENOMEM;
	pthread_mutex_init(&fr->lock, NULL);
	pthread_cond_init(&fr->idle, NULL);
	fr->max = max ? max : 1;
	*out = fr;
	return 0;
}

void fetcher_free(struct fetcher *fr)
{
	if (!fr)
		return;
	pthread_mutex_lock(&fr->lock);
	fr->stop = 1;
	while (fr->running)
		pthread_cond_wait(&fr->idle, &fr->lock);
	pthread_mutex_unlock(&fr->lock);
	pthread_cond_destroy(&fr->idle);
	pthread_mutex_destroy(&fr->lock);
	free(fr);
}

static int fetch_stopping(struct fetcher *fr)
{
	int stop;

	pthread_mutex_lock(&fr->lock);
	stop = fr->stop;
	pthread_mutex_unlock(&fr->lock);
	return stop;
}

void fetch_put(struct fetch *f)
{
	int last;

	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	last = --f->refs == 0;
	pthread_mutex_unlock(&f->lock);
	if (!last)
		return;
	pthread_cond_destroy(&f->moved);
	pthread_mutex_destroy(&f->lock);
	free(f->name);
	free(f->key);
	free(f);
}

/* Take @f off its fetcher's list (fr->lock held). */
static void fetch_unlist_locked(struct fetch *f)
{
	struct fetch **p;

	for (p = &f->fr->list; *p; p = &(*p)->next)
		if (*p == f) {
			*p = f->next;
			break;
		}
}

static void fetch_publish(struct fetch *f, off_t have, int ended, int err)
{
	pthread_mutex_lock(&f->lock);
	f->have = have;
	f->ended = ended;
	f->err = err;
	pthread_cond_broadcast(&f->moved);
	pthread_mutex_unlock(&f->lock);
}

/* remote_recv_fd's progress: readers get the bytes so far; an unmount stops the copy. */
static int fetch_progress(off_t copied, void *payload)
{
	struct fetch *f = payload;

	fetch_publish(f, copied, 0, 0);
	return fetch_stopping(f->fr) ? -ECANCELED : 0;
}

static void *fetch_thread(void *arg)
{
	struct fetch *f = arg;
	struct fetcher *fr = f->fr;
	off_t copied = 0;
	int err = remote_recv_fd(f->rf, f->fd, FETCH_CHUNK, fetch_progress, f, &copied), e;

	e = remote_close(f->rf);
	if (!err)
		err = e;
	f->rf = NULL;
	/* Readers go on at once; making the copy durable is the callback's. */
	fetch_publish(f, copied, 1, err);
	f->done(err, f->fd, f->payload);
	/*
	 * Listed until the callback has put the copy in the cache, so that an
	 * open meanwhile joins this copy rather than downloading it again.
	 */
	pthread_mutex_lock(&fr->lock);
	fetch_unlist_locked(f);
	pthread_mutex_unlock(&fr->lock);
	close(f->fd);
	f->fd = -1;
	fetch_put(f);
	pthread_mutex_lock(&fr->lock);
	fr->running--;
	pthread_cond_broadcast(&fr->idle);
	pthread_mutex_unlock(&fr->lock);
	return NULL;
}

int fetch_start(struct fetcher *fr, struct remote_file *rf, int fd, const char *name,
		const char *key, off_t size, fetch_done_fn done, void *payload,
		struct fetch **out)
{
	struct fetch *f;
	pthread_attr_t attr;
	pthread_t t;
	int err;

	*out = NULL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->name = strdup(name);
	f->key = strdup(key);
	if (!f->name || !f->key) {
		free(f->name);
		free(f->key);
		free(f);
		return -ENOMEM;
	}
	f->fr = fr;
	f->rf = rf;
	f->fd = fd;
	f->size = size;
	f->done = done;
	f->payload = payload;
	f->refs = 2;
	clock_gettime(CLOCK_MONOTONIC, &f->t0);
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->moved, NULL);
	pthread_mutex_lock(&fr->lock);
	err = fr->stop || fr->running >= fr->max ? -EAGAIN : 0;
	if (!err) {
		fr->running++;
		f->next = fr->list;
		fr->list = f;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		err = -pthread_create(&t, &attr, fetch_thread, f);
		pthread_attr_destroy(&attr);
		if (err) {
			fetch_unlist_locked(f);
			fr->running--;
			pthread_cond_broadcast(&fr->idle);
		}
	}
	pthread_mutex_unlock(&fr->lock);
	if (err) {
		f->refs = 1;
		f->rf = NULL;
		f->fd = -1;
		fetch_put(f);
		return err;
	}
	*out = f;
	return 0;
}

int fetch_attach(struct fetcher *fr, const char *key, struct fetch **out, int *fd)
{
	struct fetch *f;
	int err = -ENOENT;

	*out = NULL;
	*fd = -1;
	pthread_mutex_lock(&fr->lock);
	for (f = fr->list; f; f = f->next) {
		int failed;

		if (strcmp(f->key, key) != 0)
			continue;
		pthread_mutex_lock(&f->lock);
		failed = f->ended && f->err;
		pthread_mutex_unlock(&f->lock);
		if (!failed)
			break;
	}
	if (f) {
		/* Once the copy is renamed into the cache, this fails: then the cache has it. */
		*fd = open(f->name, O_RDONLY | O_CLOEXEC);
		err = *fd < 0 ? -errno : 0;
	}
	if (!err) {
		pthread_mutex_lock(&f->lock);
		f->refs++;
		pthread_mutex_unlock(&f->lock);
		*out = f;
	}
	pthread_mutex_unlock(&fr->lock);
	return err;
}

int fetch_wait(struct fetch *f, off_t end)
{
	int err = 0;

	pthread_mutex_lock(&f->lock);
	/* Past the VM's size at open, only the end of the copy tells. */
	while (!f->ended && (end > f->size || f->have < end))
		pthread_cond_wait(&f->moved, &f->lock);
	if (f->ended && f->err && f->have < end)
		err = f->err == -ECANCELED ? -EIO : f->err;	/* a reader's error, not the stop's */
	pthread_mutex_unlock(&f->lock);
	return err;
}

double fetch_eta(struct fetch *f, off_t end, double *pace)
{
	struct timespec now;
	double eta = 0, secs;

	clock_gettime(CLOCK_MONOTONIC, &now);
	secs = (double)(now.tv_sec - f->t0.tv_sec) + (double)(now.tv_nsec - f->t0.tv_nsec) / 1e9;
	pthread_mutex_lock(&f->lock);
	*pace = f->have > 0 && secs > 0 ? (double)f->have / secs : FETCH_PACE_GUESS;
	if (!f->ended && end <= f->size && f->have < end)
		eta = (double)(end - f->have) / *pace;
	pthread_mutex_unlock(&f->lock);
	return eta;
}
