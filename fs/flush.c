/*
 * fs/flush.c: the flusher, which makes the VM match the local layer.
 *
 * Design: the queue holds paths, not operations. Processing a path
 * (flush_process) reads its current journal state and local file and makes
 * the VM match them, so a path changed ten times before the debounce expires
 * is sent once, a crash between any two steps is repaired by processing the
 * path again, and recovery at startup is just queueing the journal's DIRTY,
 * WHITEOUT and HELD paths. Transitions made here:
 *   DIRTY    -> CLEAN     [flush_send: the VM has the file (layer_flushed)]
 *   DIRTY    -> HELD      [flush_process: the policy keeps it local]
 *   HELD     -> DIRTY     [flush_process: it became tracked, or `wakefs push`]
 *   DIRTY    -> CONFLICT  [flush_send: the VM changed it since the base version]
 *   WHITEOUT -> (none)    [flush_remove: the VM no longer has it]
 *   CONFLICT -> DIRTY/CLEAN [flush_resolve]
 *
 * A few worker threads take due paths from the queue; a path is processed by
 * one thread at a time (item->busy); a notification that arrives meanwhile
 * sets item->again so it is processed once more. Failures stay queued with
 * exponential backoff; nothing is ever dropped. fsync() (flush_path) processes
 * the path in the caller's thread.
 *
 * Locking: struct flusher.lock guards the queue and counters. It is never held
 * while calling the layer, the journal, the policy or the remote, but it may
 * be taken inside their callbacks (journal_foreach, policy_newly_tracked):
 * order journal/policy lock -> flusher lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "flush.h"
#include "journal.h"
#include "layer.h"
#include "policy.h"
#include "presend.h"
#include "remote.h"

#define FLUSH_NBUCKETS 4096
#define FLUSH_NERRORS 16
#define FLUSH_INDEX_CHECK_MS 300
/*
 * Paths sent at once. A small file costs about ten round trips (upload,
 * fsync, mode and times, the check before replacing, the rename), so at
 * 20 ms four threads sent 15 files a second; sixteen keep the link busy.
 */
#define FLUSH_THREADS 16

struct flush_item {
	char *path;
	int64_t due;		/* monotonic ms */
	int64_t tried;		/* when the last attempt ended, 0: never */
	unsigned attempts;	/* failed attempts in a row */
	int last_err;		/* of the last attempt */
	int busy;		/* being processed */
	int again;		/* notified while busy */
	int push;		/* send even when held */
	struct flush_item *hnext;	/* hash chain */
	struct flush_item *prev, *next;	/* list of all items */
};

struct flusher {
	struct remote *r;
	struct layer *l;
	struct policy *p;
	struct presender *pre;	/* borrowed, or NULL */
	char *root;		/* remote root ("" for the login dir; remote_path_join) */
	char tag[9];		/* of temporaries: hash of host name and layer directory */
	int debounce_ms, retry_min_ms, retry_max_ms, nthreads;

	pthread_mutex_t lock;	/* guards everything below; see the locking note above */
	pthread_cond_t work;	/* signalled: an item became due, or stop */
	pthread_cond_t done;	/* broadcast: an item finished an attempt */
	struct flush_item *buckets[FLUSH_NBUCKETS];
	struct flush_item *head;
	size_t nitems;
	int stop;
	int64_t sleep_until;	/* deadline of the last worker to sleep; INT64_MIN while one scans */
	int index_checking;	/* one worker runs policy_newly_tracked at a time */
	int64_t index_checked;	/* when it last ran */
	uint64_t flushed, failures;
	char errors[FLUSH_NERRORS][256];
	unsigned nerrors;	/* total ever recorded; the ring holds the last 16 */

	pthread_t *threads;
	int started;
};

static int64_t flush_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void flush_deadline(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

/* Record a failure message (ring of the last 16) and print it once to stderr. */
static void flush_error(struct flusher *f, int print, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&f->lock);
	snprintf(f->errors[f->nerrors % FLUSH_NERRORS], sizeof(f->errors[0]), "%s", msg);
	f->nerrors++;
	pthread_mutex_unlock(&f->lock);
	if (print)
		fprintf(stderr, "%s\n", msg);
}

/* --- the queue (f->lock held) ---------------------------------------------- */

static unsigned flush_hash(const char *s)
{
	unsigned h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % FLUSH_NBUCKETS;
}

static struct flush_item *flush_find(struct flusher *f, const char *path)
{
	struct flush_item *it;

	for (it = f->buckets[flush_hash(path)]; it; it = it->hnext)
		if (strcmp(it->path, path) == 0)
			return it;
	return NULL;
}

static struct flush_item *flush_add(struct flusher *f, const char *path)
{
	struct flush_item *it = calloc(1, sizeof(*it));
	unsigned h = flush_hash(path);

	if (!it)
		return NULL;
	it->path = strdup(path);
	if (!it->path) {
		free(it);
		return NULL;
	}
	it->hnext = f->buckets[h];
	f->buckets[h] = it;
	it->next = f->head;
	if (f->head)
		f->head->prev = it;
	f->head = it;
	f->nitems++;
	return it;
}

static void flush_del(struct flusher *f, struct flush_item *it)
{
	struct flush_item **pp = &f->buckets[flush_hash(it->path)];

	while (*pp != it)
		pp = &(*pp)->hnext;
	*pp = it->hnext;
	if (it->prev)
		it->prev->next = it->next;
	else
		f->head = it->next;
	if (it->next)
		it->next->prev = it->prev;
	f->nitems--;
	free(it->path);
	free(it);
}

/* Queue @path to be processed after @delay_ms (keeping an earlier due time). */
static int flush_enqueue_locked(struct flusher *f, const char *path, int64_t delay_ms, int push)
{
	struct flush_item *it = flush_find(f, path);
	int64_t due = flush_now() + (delay_ms > 0 ? delay_ms : 0);

	if (!it) {
		it = flush_add(f, path);
		if (!it)
			return -ENOMEM;
		it->due = due;
	} else if (it->busy) {
		it->again = 1;
		it->due = due;
	} else if (delay_ms > 0 && !it->attempts) {
		/* Debounce: a new change pushes the send back. */
		it->due = due;
	} else if (due < it->due) {
		it->due = due;
	}
	if (push)
		it->push = 1;
	/*
	 * A sleeping worker wakes by sleep_until and scans the queue again: only
	 * an item due before then needs a wake-up. An untar enqueues thousands
	 * of paths a second a debounce ahead, and each wake-up is a scan of the
	 * whole queue competing with the FUSE threads for the CPU.
	 */
	if (it->due < f->sleep_until)
		pthread_cond_signal(&f->work);
	return 0;
}

static int flush_enqueue(struct flusher *f, const char *path, int64_t delay_ms, int push)
{
	int err;

	pthread_mutex_lock(&f->lock);
	err = flush_enqueue_locked(f, path, delay_ms, push);
	pthread_mutex_unlock(&f->lock);
	return err;
}

static int64_t flush_backoff(struct flusher *f, unsigned attempts)
{
	int64_t d = f->retry_min_ms;

	while (attempts-- > 1 && d < f->retry_max_ms)
		d *= 2;
	return d < f->retry_max_ms ? d : f->retry_max_ms;
}

/* An attempt at @it ended with @err (f->lock held): drop it, or keep it queued. */
static void flush_finish_locked(struct flusher *f, struct flush_item *it, int err)
{
	it->busy = 0;
	it->tried = flush_now();
	it->last_err = err;
	if (err && err != -ESTALE) {
		f->failures++;
		it->attempts++;
		/*
		 * Changed while it was being sent (deleted, say, as the upload
		 * failed): what failed may not apply any more, so try again at
		 * once rather than after the backoff.
		 */
		it->due = it->tried + (it->again ? 0 : flush_backoff(f, it->attempts));
		it->again = 0;
	} else if (it->again) {
		it->again = 0;
		it->attempts = 0;
		if (it->due < it->tried)
			it->due = it->tried;
	} else {
		flush_del(f, it);
	}
	pthread_cond_broadcast(&f->done);
	pthread_cond_signal(&f->work);
}

/* --- remote paths ------------------------------------------------------------ */

static int flush_rpath(struct flusher *f, const char *path, char *buf, size_t len)
{
	return remote_path_join(f->root, path, buf, len);
}

/*
 * "dir/.name.wakefs-tmp.TAG" beside remote path @rpath. TAG is fixed for a
 * layer on a host (f->tag), so a retry after a failure or a crash writes the
 * same temporary again and the rename consumes it: nothing is left behind,
 * while two laptops flushing to one VM still never share a temporary.
 */
static int flush_tmpname(struct flusher *f, const char *rpath, char *buf, size_t len)
{
	const char *slash = strrchr(rpath, '/');
	int n;

	if (slash)
		n = snprintf(buf, len, "%.*s/.%s.wakefs-tmp.%s", (int)(slash - rpath), rpath,
			     slash + 1, f->tag);
	else
		n = snprintf(buf, len, ".%s.wakefs-tmp.%s", rpath, f->tag);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Call @fn for each parent directory of layer path @path, from the top; the sum of its returns. */
static int flush_each_parent(struct flusher *f, const char *path,
			     int (*fn)(struct flusher *f, const char *parent))
{
	char buf[PATH_MAX];
	int sum = 0;
	size_t i;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return 0;
	for (i = 1; buf[i]; i++) {
		if (buf[i] != '/')
			continue;
		buf[i] = '\0';
		sum += fn(f, buf);
		buf[i] = '/';
	}
	return sum;
}

static int flush_parent_known(struct flusher *f, const char *parent)
{
	layer_vm_has(f->l, parent);
	return 0;
}

/*
 * mkdir -p of remote path @rpath's parent directories (not @rpath itself),
 * the VM's copy of @path's. The layer then knows the VM has them: a rename of
 * one of them is a rename of a VM directory.
 */
static int flush_remote_parents(struct flusher *f, const char *path, const char *rpath)
{
	char buf[PATH_MAX];
	size_t i, start;
	int err;

	if (snprintf(buf, sizeof(buf), "%s", rpath) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	start = buf[0] == '/' ? 1 : 0;
	for (i = start; buf[i]; i++) {
		if (buf[i] != '/')
			continue;
		buf[i] = '\0';
		err = remote_mkdir(f->r, buf, 0755);
		buf[i] = '/';
		if (err && err != -EEXIST) {
			struct stat st;

			/* Permission to create an existing parent may be refused: check. */
			if (remote_stat(f->r, rpath[0] == '/' ? "/" : ".", &st) < 0)
				return err;
			buf[i] = '\0';
			if (remote_stat(f->r, buf, &st) < 0 || !S_ISDIR(st.st_mode)) {
				buf[i] = '/';
				return err;
			}
			buf[i] = '/';
		}
	}
	flush_each_parent(f, path, flush_parent_known);
	return 0;
}

/* --- conflicts ------------------------------------------------------------------ */

static int flush_conflict_path(struct flusher *f, const char *path, char *buf, size_t len)
{
	int n;

	while (*path == '/')
		path++;
	n = snprintf(buf, len, "%s/.wakefs/conflicts/%s", layer_dir(f->l), path);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int flush_mkdirs_local(char *path)
{
	char *s;

	for (s = strchr(path + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		if (mkdir(path, 0700) < 0 && errno != EEXIST) {
			int err = -errno;

			*s = '/';
			return err;
		}
		*s = '/';
	}
	return 0;
}

/*
 * Keep the VM's version of @path under .wakefs/conflicts/ and mark @path
 * CONFLICT. The local copy is untouched.
 */
static int flush_conflict(struct flusher *f, const char *path, const char *rpath)
{
	char cp[PATH_MAX], tmp[PATH_MAX + 16];
	struct stat st;
	int fd = -1, err;

	err = flush_conflict_path(f, path, cp, sizeof(cp));
	if (err)
		goto out;
	err = flush_mkdirs_local(cp);
	if (err)
		goto out;
	snprintf(tmp, sizeof(tmp), "%s.tmp", cp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	err = remote_lstat(f->r, rpath, &st);
	if (!err && S_ISREG(st.st_mode))
		err = remote_download(f->r, rpath, fd, &st);
	if (!err && fsync(fd) < 0)
		err = -errno;
	if (err == -ENOENT)
		err = 0;	/* the VM deleted it: the conflict is delete/modify */
	if (err)
		goto out;
	if (rename(tmp, cp) < 0) {
		err = -errno;
		goto out;
	}
	err = layer_mark(f->l, path, PATH_CONFLICT, NULL);
out:
	if (fd >= 0) {
		close(fd);
		if (err)
			unlink(tmp);
	}
	if (!err)
		flush_error(f, 1,
			    "wakefs: cannot flush '%s': the VM changed it since it was cached "
			    "(kept both; see 'wakefs status')", path);
	return err ? err : -ESTALE;
}

/* 1 when the VM's file @rst is the local file @st as a flush leaves it (size and mtime). */
static int flush_vm_has(const struct stat *st, const struct stat *rst)
{
	return S_ISREG(rst->st_mode) && rst->st_size == st->st_size && rst->st_mtime == st->st_mtime;
}

/* 1 when the VM's @rst is not the version @base the local copy came from. */
static int flush_vm_changed(const struct version *base, const struct stat *rst)
{
	return base->valid &&
	       ((uint64_t)rst->st_size != base->size || (int64_t)rst->st_mtime != base->mtime);
}

/* --- sending ------------------------------------------------------------------- */

/*
 * @path was just put on the VM. If the mount deleted (or renamed away) the
 * file meanwhile, before the journal said the VM had it, the delete found
 * nothing on the VM and left no whiteout: the file just sent must go again.
 * A delete after layer_flushed() leaves a whiteout, and flush_remove() runs.
 */
static int flush_undo_if_deleted(struct flusher *f, const char *path, const char *lp,
				 const char *rpath)
{
	struct stat st;
	int err;

	if (lstat(lp, &st) == 0 || errno != ENOENT || layer_is_whiteout(f->l, path))
		return 0;
	err = remote_unlink(f->r, rpath);
	if (err && err != -ENOENT)
		return err;
	return layer_forget(f->l, path);
}

static int flush_now_sync(struct flusher *f, const char *path, int push);

/* qsort: longer paths (deeper, under a shorter one) first. */
static int flush_cmp_deeper_first(const void *a, const void *b)
{
	size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);

	return la < lb ? 1 : la > lb ? -1 : 0;
}

/* Is an item under @path (@n its length) being sent by a worker? */
static int flush_busy_under(struct flusher *f, const char *path, size_t n)
{
	struct flush_item *it;
	int busy = 0;

	pthread_mutex_lock(&f->lock);
	for (it = f->head; it && !busy; it = it->next)
		busy = it->busy && strncmp(it->path, path, n) == 0 && it->path[n] == '/';
	pthread_mutex_unlock(&f->lock);
	return busy;
}

/*
 * The VM has a directory at @rpath where the layer has a file or symlink
 * @path: a directory deleted in the mount and made again as a file. Its
 * queued deletes inside go first (deepest first), then the directory, if
 * that left it empty. 0 when it is gone; else the VM has more in it than the
 * mount knew of (a conflict).
 */
static int flush_clear_vm_dir(struct flusher *f, const char *path, const char *rpath)
{
	size_t n = strlen(path), k = 0, cap = 0, i;
	struct flush_item *it;
	char **kids = NULL, **grown;
	int err;

	err = remote_rmdir(f->r, rpath);
	if (err != -ENOTEMPTY && err != -EEXIST && err != -EIO)
		return err == -ENOENT ? 0 : err;
	pthread_mutex_lock(&f->lock);
	for (it = f->head; it; it = it->next) {
		if (it->busy || strncmp(it->path, path, n) != 0 || it->path[n] != '/')
			continue;	/* busy: being sent, maybe by this very thread */
		if (k == cap) {
			cap = cap ? cap * 2 : 16;
			grown = realloc(kids, cap * sizeof(*kids));
			if (!grown)
				break;
			kids = grown;
		}
		if (!(kids[k] = strdup(it->path)))
			break;
		k++;
	}
	pthread_mutex_unlock(&f->lock);
	/* Deepest first: a directory's contents before the directory. */
	qsort(kids, k, sizeof(*kids), flush_cmp_deeper_first);
	for (i = 0; i < k; i++) {
		flush_now_sync(f, kids[i], 0);
		free(kids[i]);
	}
	free(kids);
	/* Deletes inside that another worker was sending: give them a moment. */
	for (i = 0; (err = remote_rmdir(f->r, rpath)) != 0 && err != -ENOENT && i < 20 &&
		    flush_busy_under(f, path, n); i++)
		usleep(100 * 1000);
	return err == -ENOENT ? 0 : err;
}

/* Upload regular file @path (local @lp) over @rpath atomically. */
static int flush_send_file(struct flusher *f, const char *path, const char *lp, const char *rpath,
			   const struct version *base, uint64_t gen, struct presend *ps)
{
	char tmp[PATH_MAX];
	struct remote_file *rf;
	struct version nb;
	struct stat st, rst;
	off_t sent = 0;
	int fd, err, cerr = 0, tmp_made = 0;

	fd = open(lp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		err = -errno;
		goto out;
	}
	err = flush_tmpname(f, rpath, tmp, sizeof(tmp));
	if (err)
		goto out;
	/*
	 * The temporary gets the data (fsynced), then its mode and times, so
	 * the rename installs the final file in one step; a flush cut short
	 * after its rename (a crash before the journal said CLEAN) is known
	 * below by its size and mtime instead of being taken for the VM's own
	 * change. The LSTAT of the target, the last look before replacing it,
	 * rides along with the upload's last requests.
	 */
	if (presend_take(ps, gen, &st, &rf, &sent))
		/* Sent while it was written: only the rest goes now. */
		err = remote_put_from(rf, fd, sent, st.st_mode & 07777, st.st_atime, st.st_mtime,
				      &sent, rpath, &rst, &cerr);
	else
		err = remote_put(f->r, fd, tmp, st.st_mode & 07777, st.st_atime, st.st_mtime,
				 &sent, rpath, &rst, &cerr);
	if (err == -ENOENT) {
		err = flush_remote_parents(f, path, rpath);
		if (!err)
			err = remote_put(f->r, fd, tmp, st.st_mode & 07777, st.st_atime, st.st_mtime,
					 &sent, rpath, &rst, &cerr);
	}
	tmp_made = err != -ENOENT;	/* a failed upload may leave a partial temporary */
	if (err)
		goto out;
	err = cerr;
	if (!err && S_ISDIR(rst.st_mode) && flush_clear_vm_dir(f, path, rpath) == 0)
		err = -ENOENT;	/* nothing there now: the rename installs the file */
	if (!err && (S_ISDIR(rst.st_mode) || flush_vm_changed(base, &rst))) {
		if (S_ISDIR(rst.st_mode) || !flush_vm_has(&st, &rst)) {
			err = flush_conflict(f, path, rpath);
			goto out;
		}
		/* The VM already has this very version: keep it, drop the temporary. */
	} else if (err && err != -ENOENT) {
		goto out;
	} else {
		err = remote_rename(f->r, tmp, rpath, 0);
		if (err)
			goto out;
		tmp_made = 0;
		/* What the VM now has: the bytes sent, with the mtime set on them. */
		rst.st_size = sent;
		rst.st_mtime = st.st_mtime;
	}
	nb.size = (uint64_t)rst.st_size;
	nb.mtime = rst.st_mtime;
	nb.valid = 1;
	err = layer_flushed(f->l, path, gen, &nb);
	if (!err)
		err = flush_undo_if_deleted(f, path, lp, rpath);
out:
	if (tmp_made)
		remote_unlink(f->r, tmp);
	close(fd);
	return err;
}

static int flush_send_symlink(struct flusher *f, const char *path, const char *lp,
			      const char *rpath, uint64_t gen)
{
	char target[PATH_MAX];
	struct version nb = { 0, 0, 0 };
	struct stat rst;
	ssize_t n;
	int err;

	n = readlink(lp, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = '\0';
	err = remote_lstat(f->r, rpath, &rst);
	if (!err && S_ISDIR(rst.st_mode))
		return flush_conflict(f, path, rpath);
	if (!err)
		err = remote_unlink(f->r, rpath);
	if (err && err != -ENOENT)
		return err;
	err = remote_symlink(f->r, target, rpath);
	if (err == -ENOENT) {
		err = flush_remote_parents(f, path, rpath);
		if (!err)
			err = remote_symlink(f->r, target, rpath);
	}
	if (!err && remote_lstat(f->r, rpath, &rst) == 0) {
		nb.size = (uint64_t)rst.st_size;
		nb.mtime = rst.st_mtime;
		nb.valid = 1;
	}
	if (!err)
		err = layer_flushed(f->l, path, gen, &nb);
	return err;
}

static int flush_send_dir(struct flusher *f, const char *path, const struct stat *st,
			  const char *rpath, const struct version *base, uint64_t gen, int tracked)
{
	struct version nb = { 0, 0, 0 };
	struct stat rst;
	int err, made;

	err = remote_mkdir(f->r, rpath, st->st_mode & 07777);
	if (err == -ENOENT) {
		err = flush_remote_parents(f, path, rpath);
		if (!err)
			err = remote_mkdir(f->r, rpath, st->st_mode & 07777);
	}
	if (err == -EEXIST && remote_lstat(f->r, rpath, &rst) == 0 && !S_ISDIR(rst.st_mode)) {
		/*
		 * The VM has a file (or symlink) where the layer has a directory:
		 * one deleted in the mount and made again as a directory. It
		 * goes, unless the VM changed it since the version deleted.
		 */
		if (flush_vm_changed(base, &rst))
			return flush_conflict(f, path, rpath);
		err = remote_unlink(f->r, rpath);
		if (!err || err == -ENOENT)
			err = remote_mkdir(f->r, rpath, st->st_mode & 07777);
	}
	made = !err;
	if (err == -EEXIST) {
		err = 0;
		layer_vm_has(f->l, path);	/* made as a parent, or there before */
	}
	if (!err)
		err = remote_chmod(f->r, rpath, st->st_mode & 07777);
	if (!err && tracked)
		err = layer_flushed(f->l, path, gen, &nb);
	if (!err && made)
		/* Empty on the VM: lookups of names in it need not ask. */
		layer_dir_made(f->l, path, st);
	return err;
}

/* Send DIRTY @path (the policy said flush). */
static int flush_send(struct flusher *f, const char *path, const struct version *base, uint64_t gen,
		      int tracked, struct presend *ps)
{
	char lp[PATH_MAX], rpath[PATH_MAX];
	struct stat st;
	int err;

	err = layer_local_path(f->l, path, lp, sizeof(lp));
	if (!err)
		err = flush_rpath(f, path, rpath, sizeof(rpath));
	if (err)
		return err;
	if (lstat(lp, &st) < 0) {
		/* Gone locally (renamed or deleted meanwhile): its new state is queued. */
		return errno == ENOENT ? 0 : -errno;
	}
	if (S_ISREG(st.st_mode))
		return flush_send_file(f, path, lp, rpath, base, gen, ps);
	if (S_ISLNK(st.st_mode))
		return flush_send_symlink(f, path, lp, rpath, gen);
	if (S_ISDIR(st.st_mode))
		return flush_send_dir(f, path, &st, rpath, base, gen, tracked);
	/* Devices, fifos and sockets stay local. */
	return tracked ? layer_mark(f->l, path, PATH_HELD, NULL) : 0;
}

/* WHITEOUT @path: delete it on the VM when the policy says so. */
static int flush_remove(struct flusher *f, const char *path, const struct version *base,
			uint64_t gen)
{
	enum policy_verdict v;
	char rpath[PATH_MAX], tmp[PATH_MAX];
	struct stat rst;
	enum path_state state;
	int err;

	err = policy_decide_removal(f->p, path, &v);
	if (err || v != POLICY_FLUSH)
		return err;
	err = flush_rpath(f, path, rpath, sizeof(rpath));
	if (err)
		return err;
	/* A temporary left by a send that failed before this delete. */
	if (!flush_tmpname(f, rpath, tmp, sizeof(tmp)))
		remote_unlink(f->r, tmp);
	err = remote_lstat(f->r, rpath, &rst);
	if (!err) {
		if (!S_ISDIR(rst.st_mode) && flush_vm_changed(base, &rst))
			return flush_conflict(f, path, rpath);
		/* A directory's queued deletes inside go first (mv of a VM directory). */
		err = S_ISDIR(rst.st_mode) ? flush_clear_vm_dir(f, path, rpath)
					   : remote_unlink(f->r, rpath);
	}
	if (err && err != -ENOENT)
		return err;
	/* Forget the whiteout unless the path was made again meanwhile. */
	if (layer_gen(f->l, path) == gen && layer_state(f->l, path, &state, NULL) == 0 &&
	    state == PATH_WHITEOUT)
		err = layer_forget(f->l, path);
	else
		err = 0;
	return err;
}

/*
 * Make the VM match the local layer for @path. Returns 0 when done (or
 * nothing to do), -ESTALE on a conflict, else -errno (retried).
 */
static int flush_process_claimed(struct flusher *f, const char *path, int push,
				 struct presend *ps)
{
	char lp[PATH_MAX];
	enum policy_verdict v;
	enum path_state state;
	struct version base;
	struct stat st;
	uint64_t gen;
	int err;

	if (layer_hidden(path))
		return 0;
	gen = layer_gen(f->l, path);
	err = layer_state(f->l, path, &state, &base);
	if (err == -ENOENT) {
		/* Untracked by the journal: a directory made in the mount, or nothing. */
		if (layer_local_path(f->l, path, lp, sizeof(lp)) || lstat(lp, &st) < 0 ||
		    !S_ISDIR(st.st_mode))
			return 0;
		err = policy_decide(f->p, path, &v);
		if (err || (v != POLICY_FLUSH && !(push && v == POLICY_HOLD)))
			return err;
		memset(&base, 0, sizeof(base));
		return flush_send(f, path, &base, gen, 0, ps);
	}
	if (err)
		return err;
	switch (state) {
	case PATH_CLEAN:
	case PATH_CONFLICT:
		return 0;
	case PATH_WHITEOUT:
		return flush_remove(f, path, &base, gen);
	case PATH_DIRTY:
	case PATH_HELD:
		break;
	}
	err = policy_decide(f->p, path, &v);
	if (err)
		return err;
	if (v == POLICY_NEVER || (v == POLICY_HOLD && !push)) {
		if (state == PATH_DIRTY)
			err = layer_mark(f->l, path, PATH_HELD, NULL);
		return err;
	}
	if (state == PATH_HELD) {
		err = layer_mark(f->l, path, PATH_DIRTY, NULL);
		if (err)
			return err;
		gen = layer_gen(f->l, path);
	}
	err = flush_send(f, path, &base, gen, 1, ps);
	if (!err) {
		pthread_mutex_lock(&f->lock);
		f->flushed++;
		pthread_mutex_unlock(&f->lock);
	}
	return err;
}

/*
 * flush_process_claimed with @path claimed from the presender: no presend
 * of @path starts meanwhile (it would write the same temporary), and the
 * one running is stopped and handed over.
 */
static int flush_process(struct flusher *f, const char *path, int push)
{
	struct presend *ps;
	int err;

	if (!f->pre)
		return flush_process_claimed(f, path, push, NULL);
	ps = presender_claim(f->pre, path);
	err = flush_process_claimed(f, path, push, ps);
	presender_unclaim(f->pre, path, ps);
	return err;
}

/*
 * A send failed for want of its parent on the VM: a parent whose own change
 * is still queued (a file deleted and made again as a directory, say) goes
 * first (flush_each_parent: from the top). 1 when it was queued (worth a
 * second try of the send).
 */
static int flush_parent_first(struct flusher *f, const char *parent)
{
	struct flush_item *it;
	int queued;

	pthread_mutex_lock(&f->lock);
	it = flush_find(f, parent);
	queued = it && !it->busy;	/* busy: being sent, maybe by this very thread */
	pthread_mutex_unlock(&f->lock);
	if (queued)
		flush_now_sync(f, parent, 0);
	return queued;
}

/*
 * Process @path with exclusive use of its queue item (waiting while a worker
 * has it), then finish the item. Used by workers (item already busy) and by
 * flush_path/flush_push from the caller's thread.
 */
static int flush_run_item(struct flusher *f, struct flush_item *it)
{
	char *path;
	int push, err;

	/* it->busy is set and f->lock held on entry */
	path = strdup(it->path);
	push = it->push;
	it->push = 0;
	pthread_mutex_unlock(&f->lock);
	if (!path) {
		err = -ENOMEM;
	} else {
		err = flush_process(f, path, push);
		if ((err == -ENOENT || err == -ENOTDIR) &&
		    flush_each_parent(f, path, flush_parent_first))
			err = flush_process(f, path, push);
		/*
		 * The state recorded for @path (CLEAN: the VM has it) is durable
		 * before anyone waiting on it (fsync, wakefs flush) is told.
		 */
		int serr = layer_sync(f->l);

		if (serr)
			flush_error(f, 1, "wakefs: cannot sync the local layer's journal after '%s': %s",
				    path, strerror(-serr));
		if (err && err != -ESTALE) {
			int first;

			pthread_mutex_lock(&f->lock);
			first = it->attempts == 0;
			pthread_mutex_unlock(&f->lock);
			flush_error(f, first, "wakefs: cannot flush '%s': %s (will retry)", path,
				    strerror(-err));
		}
	}
	pthread_mutex_lock(&f->lock);
	if (err && err != -ESTALE && push)
		it->push = 1;	/* keep the push for the retry */
	flush_finish_locked(f, it, err);
	free(path);
	return err;
}

static int flush_now_sync(struct flusher *f, const char *path, int push)
{
	struct flush_item *it;
	int err;

	pthread_mutex_lock(&f->lock);
	for (;;) {
		it = flush_find(f, path);
		if (!it) {
			it = flush_add(f, path);
			if (!it) {
				pthread_mutex_unlock(&f->lock);
				return -ENOMEM;
			}
		}
		if (!it->busy)
			break;
		it->again = 1;
		pthread_cond_wait(&f->done, &f->lock);
	}
	it->busy = 1;
	it->again = 0;
	if (push)
		it->push = 1;
	err = flush_run_item(f, it);
	pthread_mutex_unlock(&f->lock);
	return err;
}

/* --- worker threads ------------------------------------------------------------ */

static int flush_index_cb(const char *path, void *payload)
{
	return flush_enqueue(payload, path, 0, 0) == -ENOMEM ? -ENOMEM : 0;
}

/* Every FLUSH_INDEX_CHECK_MS, queue the held paths that became tracked. */
static void flush_check_index_locked(struct flusher *f)
{
	int64_t now = flush_now();

	if (f->index_checking || now - f->index_checked < FLUSH_INDEX_CHECK_MS)
		return;
	f->index_checking = 1;
	pthread_mutex_unlock(&f->lock);
	policy_newly_tracked(f->p, flush_index_cb, f);
	pthread_mutex_lock(&f->lock);
	f->index_checking = 0;
	f->index_checked = flush_now();
}

static void *flush_worker(void *arg)
{
	struct flusher *f = arg;

	pthread_mutex_lock(&f->lock);
	while (!f->stop) {
		struct flush_item *it, *best = NULL;
		struct timespec ts;
		int64_t now, wait = FLUSH_INDEX_CHECK_MS;

		flush_check_index_locked(f);
		if (f->stop)
			break;
		now = flush_now();
		/*
		 * Of the paths that are due, the one due last goes first: a save
		 * made while a big batch (an untar, a checkout) is still going out
		 * reaches the VM after one send, not after the whole batch. Each
		 * path is sent whole on its own, so the order between paths does
		 * not matter for what the VM ends up with. Else the next one due.
		 */
		for (it = f->head; it; it = it->next) {
			if (it->busy)
				continue;
			if (!best || (it->due <= now ? best->due > now || it->due > best->due
						     : best->due > now && it->due < best->due))
				best = it;
		}
		if (best && best->due <= now) {
			best->busy = 1;
			flush_run_item(f, best);
			continue;
		}
		if (best && best->due - now < wait)
			wait = best->due - now;
		flush_deadline(&ts, wait);
		f->sleep_until = now + wait;
		pthread_cond_timedwait(&f->work, &f->lock, &ts);
		f->sleep_until = INT64_MIN;
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

/* --- the layer's callbacks --------------------------------------------------- */

/*
 * After a rename, @to's entry carries the base version of the source, which
 * says nothing about the VM's file at @to: forget it, so that replacing @to
 * (an editor's "write a temporary, rename over") is not taken for a conflict.
 */
static void flush_renamed(struct flusher *f, const char *to)
{
	static const struct version none = { 0, 0, 0 };
	enum path_state state;
	struct version base;
	enum policy_verdict v;

	if (policy_decide(f->p, to, &v) || v == POLICY_NEVER)
		return;
	if (layer_state(f->l, to, &state, &base) == 0 && state == PATH_DIRTY && base.valid)
		layer_mark(f->l, to, PATH_DIRTY, &none);
}

static void flush_on_event(void *payload, const char *path, int event, const char *to)
{
	struct flusher *f = payload;
	int64_t delay = f->debounce_ms;

	if (event == LAYER_EV_UNLINK || event == LAYER_EV_RMDIR || event == LAYER_EV_MKDIR)
		delay = delay / 4;
	/* A large file sent while it was written: finish it now, as sshfs would. */
	if (event == LAYER_EV_CLOSED_DIRTY && f->pre && presender_live(f->pre, path))
		delay = 0;
	if (event == LAYER_EV_RENAME && to)
		flush_renamed(f, to);
	pthread_mutex_lock(&f->lock);
	flush_enqueue_locked(f, path, delay, 0);
	if (event == LAYER_EV_RENAME && to)
		flush_enqueue_locked(f, to, delay, 0);
	pthread_mutex_unlock(&f->lock);
}

/*
 * A handle wrote the start of a large file: send it while it is written
 * when the file may leave now (DIRTY, the policy says flush).
 */
static struct presend *flush_on_presend(void *payload, const char *path, int fd, uint64_t gen)
{
	struct flusher *f = payload;
	char rpath[PATH_MAX], tmp[PATH_MAX];
	enum policy_verdict v;
	enum path_state state;
	struct presend *ps;

	if (!remote_connected(f->r) || layer_state(f->l, path, &state, NULL) ||
	    state != PATH_DIRTY || policy_decide(f->p, path, &v) || v != POLICY_FLUSH ||
	    flush_rpath(f, path, rpath, sizeof(rpath)) ||
	    flush_tmpname(f, rpath, tmp, sizeof(tmp)) ||
	    presend_start(f->pre, path, tmp, fd, gen, &ps))
		return NULL;
	return ps;
}

static int flush_on_fsync(void *payload, const char *path)
{
	int err = flush_path(payload, path);

	return err == -ESTALE ? -EIO : err;
}

/* --- public -------------------------------------------------------------------- */

static int flush_requeue_cb(const struct journal_entry *e, void *payload)
{
	struct flusher *f = payload;

	if (e->state == PATH_DIRTY || e->state == PATH_WHITEOUT || e->state == PATH_HELD)
		return flush_enqueue(f, e->path, 0, 0);
	return 0;
}

static void flush_make_tag(struct flusher *f)
{
	char host[256] = "";
	const char *s;
	uint32_t h = 2166136261u;

	gethostname(host, sizeof(host) - 1);
	for (s = host; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	h = (h ^ ':') * 16777619u;
	for (s = layer_dir(f->l); *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	snprintf(f->tag, sizeof(f->tag), "%08x", h);
}

int flush_new(struct flusher **out, struct remote *r, struct layer *l, struct policy *p,
	      const struct flush_opts *o)
{
	pthread_condattr_t ca;
	struct flusher *f;
	int err = 0, i;

	*out = NULL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->r = r;
	f->l = l;
	f->p = p;
	f->root = strdup(o && o->remote_root ? o->remote_root : "");
	if (!f->root) {
		free(f);
		return -ENOMEM;
	}
	f->debounce_ms = !o || !o->debounce_ms ? 1000 : o->debounce_ms < 0 ? 0 : o->debounce_ms;
	f->retry_min_ms = o && o->retry_min_ms > 0 ? o->retry_min_ms : 250;
	f->retry_max_ms = o && o->retry_max_ms > 0 ? o->retry_max_ms : 30000;
	if (f->retry_max_ms < f->retry_min_ms)
		f->retry_max_ms = f->retry_min_ms;
	f->nthreads = o && o->threads > 0 ? o->threads : FLUSH_THREADS;
	f->pre = o ? o->presender : NULL;
	flush_make_tag(f);
	f->sleep_until = INT64_MIN;
	pthread_mutex_init(&f->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->work, &ca);
	pthread_cond_init(&f->done, &ca);
	pthread_condattr_destroy(&ca);

	/* Recovery: what the journal says is not on the VM yet. */
	err = journal_foreach(layer_journal(l), flush_requeue_cb, f);
	if (err)
		goto out;
	f->threads = calloc((size_t)f->nthreads, sizeof(*f->threads));
	if (!f->threads) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < f->nthreads; i++) {
		err = -pthread_create(&f->threads[i], NULL, flush_worker, f);
		if (err)
			goto out;
		f->started++;
	}
	layer_set_notify(l, flush_on_event, f);
	layer_set_fsync(l, flush_on_fsync, f);
	if (f->pre)
		layer_set_presend(l, flush_on_presend, f);
	*out = f;
out:
	if (err)
		flush_free(f);
	return err;
}

void flush_free(struct flusher *f)
{
	int i;

	if (!f)
		return;
	if (f->started) {
		layer_set_notify(f->l, NULL, NULL);
		layer_set_fsync(f->l, NULL, NULL);
		layer_set_presend(f->l, NULL, NULL);
	}
	pthread_mutex_lock(&f->lock);
	f->stop = 1;
	pthread_cond_broadcast(&f->work);
	pthread_mutex_unlock(&f->lock);
	for (i = 0; i < f->started; i++)
		pthread_join(f->threads[i], NULL);
	while (f->head)
		flush_del(f, f->head);
	free(f->threads);
	pthread_cond_destroy(&f->work);
	pthread_cond_destroy(&f->done);
	pthread_mutex_destroy(&f->lock);
	free(f->root);
	free(f);
}

int flush_path(struct flusher *f, const char *path)
{
	return flush_now_sync(f, path, 0);
}

int flush_push(struct flusher *f, const char *path)
{
	char lp[PATH_MAX];
	enum policy_verdict v;
	enum path_state state;
	struct stat st;
	int err;

	err = layer_local_path(f->l, path, lp, sizeof(lp));
	if (err)
		return err;
	if (lstat(lp, &st) < 0)
		return -errno;
	err = policy_decide(f->p, path, &v);
	if (err)
		return err;
	if (v == POLICY_NEVER)
		return -EPERM;
	err = layer_state(f->l, path, &state, NULL);
	if (err == -ENOENT || (!err && state == PATH_CLEAN && !S_ISDIR(st.st_mode)))
		err = layer_mark(f->l, path, PATH_DIRTY, NULL);
	if (err)
		return err;
	return flush_now_sync(f, path, 1);
}

static int flush_collect_cb(const struct journal_entry *e, void *payload)
{
	if (e->state == PATH_DIRTY || e->state == PATH_WHITEOUT)
		return flush_enqueue(payload, e->path, 0, 0);
	return 0;
}

int flush_all(struct flusher *f, int timeout_ms)
{
	uint64_t counts[5];
	struct flush_item *it;
	struct timespec ts;
	int64_t start, now;
	int err, all_failed;

	/* Everything the journal says is unsent, also what was never notified. */
	err = journal_foreach(layer_journal(f->l), flush_collect_cb, f);
	if (err)
		return err;
	start = flush_now();
	pthread_mutex_lock(&f->lock);
	for (;;) {
		now = flush_now();
		if (!f->head) {
			err = 0;
			break;
		}
		all_failed = 1;
		for (it = f->head; it; it = it->next) {
			if (it->busy || !it->last_err || it->tried < start)
				all_failed = 0;
			/* Not tried since we were asked: now, debounce or backoff aside. */
			if (!it->busy && it->tried < start && it->due > now)
				it->due = now;
		}
		if (all_failed) {
			err = -EIO;
			break;
		}
		if (timeout_ms > 0 && now - start >= timeout_ms) {
			err = -ETIMEDOUT;
			break;
		}
		pthread_cond_broadcast(&f->work);
		flush_deadline(&ts, 100);
		pthread_cond_timedwait(&f->done, &f->lock, &ts);
	}
	pthread_mutex_unlock(&f->lock);
	if (err)
		return err;
	journal_counts(layer_journal(f->l), counts);
	return counts[PATH_CONFLICT] ? -ESTALE : 0;
}

/* Replace the local copy of @path with the VM's version @rst (a regular file). */
static int flush_take_remote(struct flusher *f, const char *path, const char *rpath,
			     struct stat *rst)
{
	char tmp[PATH_MAX];
	struct version b;
	int fd, err;

	fd = layer_tmpfile(f->l, tmp, sizeof(tmp));
	if (fd < 0)
		return fd;
	err = remote_download(f->r, rpath, fd, rst);
	if (!err && fsync(fd) < 0)
		err = -errno;
	close(fd);
	if (!err)
		err = layer_install(f->l, path, tmp, rst);
	if (err) {
		unlink(tmp);
		return err;
	}
	b.size = (uint64_t)rst->st_size;
	b.mtime = rst->st_mtime;
	b.valid = 1;
	return layer_mark(f->l, path, PATH_CLEAN, &b);
}

int flush_resolve(struct flusher *f, const char *path, enum flush_keep keep)
{
	char rpath[PATH_MAX], lp[PATH_MAX], cp[PATH_MAX];
	enum path_state state;
	struct version b = { 0, 0, 0 };
	struct stat rst, st;
	int err, rerr, local;

	err = layer_state(f->l, path, &state, NULL);
	if (err == -ENOENT || (!err && state != PATH_CONFLICT))
		return -EINVAL;
	if (!err)
		err = flush_rpath(f, path, rpath, sizeof(rpath));
	if (!err)
		err = layer_local_path(f->l, path, lp, sizeof(lp));
	if (!err)
		err = flush_conflict_path(f, path, cp, sizeof(cp));
	if (err)
		return err;
	rerr = remote_lstat(f->r, rpath, &rst);
	if (rerr && rerr != -ENOENT)
		return rerr;
	local = lstat(lp, &st) == 0;
	if (keep == FLUSH_KEEP_LOCAL) {
		if (!rerr) {
			b.size = (uint64_t)rst.st_size;
			b.mtime = rst.st_mtime;
			b.valid = 1;
		}
		/* Based on what the VM has now, so the next send replaces it. */
		err = layer_mark(f->l, path, local ? PATH_DIRTY : PATH_WHITEOUT, &b);
		if (!err)
			err = flush_now_sync(f, path, 0);
	} else if (!rerr && S_ISREG(rst.st_mode)) {
		err = flush_take_remote(f, path, rpath, &rst);
	} else {
		/* The VM has no file there (or a directory): the local copy goes. */
		if (local && !S_ISDIR(st.st_mode) && unlink(lp) < 0 && errno != ENOENT)
			err = -errno;
		if (!err)
			err = layer_forget(f->l, path);
	}
	layer_invalidate(f->l, path);
	/* The resolution is on disk before the VM's copy goes. */
	if (!err)
		err = layer_sync(f->l);
	if (!err && unlink(cp) < 0 && errno != ENOENT)
		err = -errno;
	return err;
}

int flush_stats(struct flusher *f, struct flush_stats *out)
{
	uint64_t counts[5];

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&f->lock);
	out->queued = f->nitems;
	out->flushed = f->flushed;
	out->failures = f->failures;
	if (f->nerrors)
		snprintf(out->last_error, sizeof(out->last_error), "%s",
			 f->errors[(f->nerrors - 1) % FLUSH_NERRORS]);
	pthread_mutex_unlock(&f->lock);
	journal_counts(layer_journal(f->l), counts);
	out->dirty = counts[PATH_DIRTY];
	out->held = counts[PATH_HELD];
	out->conflict = counts[PATH_CONFLICT];
	out->connected = remote_connected(f->r);
	return 0;
}

int flush_errors(struct flusher *f, void (*cb)(const char *msg, void *payload), void *payload)
{
	char copy[FLUSH_NERRORS][256];
	unsigned n, i, first;

	pthread_mutex_lock(&f->lock);
	n = f->nerrors < FLUSH_NERRORS ? f->nerrors : FLUSH_NERRORS;
	first = f->nerrors - n;
	for (i = 0; i < n; i++)
		memcpy(copy[i], f->errors[(first + i) % FLUSH_NERRORS], sizeof(copy[0]));
	pthread_mutex_unlock(&f->lock);
	for (i = 0; i < n; i++)
		cb(copy[i], payload);
	return 0;
}
