/*
 * fs/lops.c: the fuse_operations table of a mount with a local layer.
 *
 * The union: a path present in the layer directory wins; a whiteout hides
 * the VM's path; otherwise the VM's path shows through, its attributes and
 * listings served from the layer's caches (filled here, one round trip per
 * miss). Below a ".git" directory the layer has, nothing of the VM shows
 * through: that repository is the laptop's.
 *
 * Changes happen in the layer only, at local-disk speed: the first write (or
 * chmod, truncate, rename...) of a VM file copies it up (from its clean cached
 * copy when valid, else downloaded) and records its base version; every write
 * bumps the path's generation and makes it DIRTY (layer_bump); close,
 * unlink, rename, mkdir, rmdir, chmod, utimens and symlink tell the flusher
 * (layer_notify); fsync() waits for it (layer_fsync). Directories of the VM
 * are not renamed (EXDEV, as overlayfs does; mv copies instead); directories
 * only the layer has are.
 *
 * Reads of VM files go through whole-file clean copies in the layer's cache
 * (valid while the VM's size and mtime match: close-to-open within the
 * attribute lifetime) or, above cache_file_max, stream with remote_pread.
 *
 * Locks: lo->ns serialises namespace changes and copy-ups (so that the union
 * never changes between a check and the change); lo->lock protects the list
 * of open files. Order: lo->ns, then lo->lock, then the layer's locks; no
 * lock of ours is held while calling the flusher's callbacks... except
 * lo->ns around layer_notify, which only queues.
 */
#include "lops.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "dirlist.h"
#include "fetch.h"
#include "presend.h"
#include "layer.h"
#include "options.h"
#include "remote.h"

/*
 * Until how long after the bulk scan of a fresh mount began (fs/feed.c) a
 * lookup that misses waits for it.
 */
#define LOPS_LEARN_WAIT_MS 3000
/* VM files above this size are read while they are copied; smaller ones arrive first. */
#define LOPS_FETCH_MIN (1 << 20)
/* A handle that wrote this much of a file in order sends it while it writes. */
#define LOPS_PRESEND_MIN (1 << 20)
#define LOPS_FETCHES 8	/* copies running at once; more opens copy before they return */

/* An open file: fuse_file_info.fh. On lo->files while open. */
struct lops_file {
	struct lops_file *prev, *next;
	int fd;				/* the local copy, or -1 */
	int vmcopy;			/* fd is a read-only copy of the VM file (cache or fetch) */
	struct fetch *fetch;		/* the copy still arriving, or NULL */
	struct remote_file *rf;		/* streamed VM file, or NULL */
	struct remote_file *direct;	/* the VM file, for reads ahead of the fetch */
	int direct_tried;		/* under lo->lock, as direct */
	off_t vm_size;			/* the VM's version the fetch copies */
	time_t vm_mtime;
	int written;			/* changed through this handle */
	off_t seq_end;			/* end of its writes while in order from 0; -1: not */
	struct presend *presend;	/* sent to the VM while written, or NULL */
	int presend_tried;		/* these three: under lo->lock */
	int unlinked;			/* its path is gone: no more events */
	char path[PATH_MAX];		/* current mount path (renames follow) */
};

struct lops {
	struct remote *r;		/* borrowed; NULL: the VM is out of reach */
	struct layer *l;		/* borrowed */
	const struct options *o;	/* borrowed */
	char *root;			/* the VM directory (remote_path_join) */
	pthread_mutex_t ns;		/* namespace changes and copy-ups; taken first */
	pthread_mutex_t lock;		/* protects files; taken after ns */
	struct lops_file *files;
	struct fetcher *fetcher;	/* big VM files copied while they are read */
	double direct_s;		/* under lock: a direct read's recent time */
};

static struct lops *lops_self(void)
{
	return fuse_get_context()->private_data;
}

/* --- paths ----------------------------------------------------------------- */

/* @path on the VM (caller frees); NULL when out of memory. */
static char *lops_vm_path(const struct lops *lo, const char *path)
{
	char buf[2 * PATH_MAX];

	return remote_path_join(lo->root, path, buf, sizeof(buf)) ? NULL : strdup(buf);
}

/* 1 when @path is at or under a ".git" directory the layer has. */
static int lops_local_only(struct lops *lo, const char *path)
{
	const char *g = path;
	char prefix[PATH_MAX];
	struct stat st;

	while ((g = strstr(g, "/.git"))) {
		if (g[5] == '\0' || g[5] == '/') {
			size_t n = g + 5 - path;
			if (n >= sizeof(prefix))
				return 0;
			memcpy(prefix, path, n);
			prefix[n] = '\0';
			return layer_local_stat(lo->l, prefix, &st) == 0;
		}
		g += 5;
	}
	return 0;
}

static void lops_parent(const char *path, char *buf, size_t len)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash && slash != path ? (size_t)(slash - path) : 1;

	if (n >= len)
		n = len - 1;
	memcpy(buf, path, n);
	buf[n] = '\0';
}

static struct version lops_version(const struct stat *st)
{
	struct version v = { .size = st->st_size, .mtime = st->st_mtim.tv_sec, .valid = 1 };

	return v;
}

/* --- the VM side, through the layer's caches -------------------------------- */

/*
 * lstat of @path on the VM, from the cache when not older than @max_age_ms
 * (-1: the cache's lifetime); -ENOENT when it cannot be there.
 */
static int lops_remote_attr_max(struct lops *lo, const char *path, struct stat *st,
				int max_age_ms)
{
	char parent[PATH_MAX];
	struct stat pst;
	char *vp;
	int err;

	if (!lo->r || lops_local_only(lo, path))
		return -ENOENT;
	if (!remote_connected(lo->r)) {
		/*
		 * Out of reach: what we knew, however old, else "not there",
		 * so that work on local files goes on at local speed.
		 */
		err = layer_attr_get_max(lo->l, path, st, -1);
		return err == -EAGAIN ? -ENOENT : err;
	}
	err = max_age_ms < 0 ? layer_attr_get(lo->l, path, st)
			     : layer_attr_get_max(lo->l, path, st, max_age_ms);
	if (err == -EAGAIN && layer_learn_wait(lo->l, LOPS_LEARN_WAIT_MS))
		err = max_age_ms < 0 ? layer_attr_get(lo->l, path, st)
				     : layer_attr_get_max(lo->l, path, st, max_age_ms);
	if (err != -EAGAIN)
		return err;
	/*
	 * A child of what the VM lacks is missing too, and so is a name the
	 * parent's fresh listing lacks (no round trip: git and untar look up
	 * many names that do not exist).
	 */
	lops_parent(path, parent, sizeof(parent));
	if (strcmp(path, "/") != 0 && max_age_ms < 0 &&
	    (layer_attr_get(lo->l, parent, &pst) == -ENOENT ||
	     layer_dir_has(lo->l, parent, strrchr(path, '/') + 1) == 0))
		return -ENOENT;
	vp = lops_vm_path(lo, path);
	if (!vp)
		return -ENOMEM;
	err = remote_lstat(lo->r, vp, st);
	free(vp);
	if (err == 0)
		layer_attr_put(lo->l, path, st);
	else if (err == -ENOENT || err == -ENOTDIR)
		layer_attr_put(lo->l, path, NULL);
	return err == -ENOTDIR ? -ENOENT : err;
}

static int lops_remote_attr(struct lops *lo, const char *path, struct stat *st)
{
	return lops_remote_attr_max(lo, path, st, -1);
}

/* Close-to-open: what open() checks is at most the mount's cache_timeout old. */
static int lops_open_max_age(const struct lops *lo)
{
	return lo->o ? (int)(lo->o->attr_timeout_s * 1000) : 1000;
}

/* The union's view of @path; *local says which side answered. */
static int lops_lookup(struct lops *lo, const char *path, struct stat *st, int *local)
{
	int err;

	if (layer_hidden(path))
		return -ENOENT;
	err = layer_local_stat(lo->l, path, st);
	if (local)
		*local = err == 0;
	if (err == -ENOENT) {
		if (layer_is_whiteout(lo->l, path))
			return -ENOENT;
		err = lops_remote_attr(lo, path, st);
	}
	if (!err)
		st->st_ino = layer_ino(lo->l, path);
	return err;
}

/* 1 when the VM may still have @path (so deleting it needs a whiteout). */
static int lops_remote_has(struct lops *lo, const char *path)
{
	struct version base;
	struct stat st;
	int err;

	if (layer_state(lo->l, path, NULL, &base) == 0 && base.valid)
		return 1;
	err = lops_remote_attr(lo, path, &st);
	return err != -ENOENT;	/* unknown (VM unreachable): assume it has it */
}

/* Download @path into a temporary file; its name goes to @tmp, the version to @st. */
static int lops_download(struct lops *lo, const char *path, char *tmp, size_t len,
			 struct stat *st)
{
	char *vp;
	int fd, err;

	if (!lo->r)
		return -EIO;
	vp = lops_vm_path(lo, path);
	if (!vp)
		return -ENOMEM;
	fd = layer_tmpfile(lo->l, tmp, len);
	if (fd < 0) {
		free(vp);
		return fd;
	}
	err = remote_download(lo->r, vp, fd, st);
	if (!err && fsync(fd) < 0)
		err = -errno;
	close(fd);
	free(vp);
	if (err)
		unlink(tmp);
	return err;
}

/*
 * Copy-up: make @path local, with the VM's content (@trunc: empty). Called
 * with lo->ns held. (none) -> CLEAN [copy-up], with the VM version as base.
 */
static int lops_copyup(struct lops *lo, const char *path, int trunc)
{
	char lp[PATH_MAX], tmp[PATH_MAX], target[PATH_MAX];
	struct stat st;
	struct version v;
	char *vp;
	int err, fd;

	if (layer_local_stat(lo->l, path, &st) == 0)
		return 0;
	if (layer_hidden(path) || layer_is_whiteout(lo->l, path))
		return -ENOENT;
	err = lops_remote_attr(lo, path, &st);
	if (!err)
		err = layer_local_path(lo->l, path, lp, sizeof(lp));
	if (!err)
		err = layer_mkparents(lo->l, path);
	if (err)
		return err;
	v = lops_version(&st);
	if (S_ISDIR(st.st_mode)) {
		if (mkdir(lp, st.st_mode & 07777) < 0 && errno != EEXIST)
			return -errno;
		return 0;	/* both sides have it: no state */
	}
	if (S_ISLNK(st.st_mode)) {
		vp = lops_vm_path(lo, path);
		if (!vp)
			return -ENOMEM;
		err = remote_readlink(lo->r, vp, target, sizeof(target));
		free(vp);
		if (!err && symlink(target, lp) < 0)
			err = -errno;
	} else if (!S_ISREG(st.st_mode)) {
		return -EPERM;
	} else if (trunc) {
		fd = layer_tmpfile(lo->l, tmp, sizeof(tmp));
		if (fd < 0)
			return fd;
		close(fd);
		err = layer_install(lo->l, path, tmp, &st);
		if (err)
			unlink(tmp);
	} else {
		err = layer_install(lo->l, path, NULL, &st);
		if (err == -ENOENT) {
			err = lops_download(lo, path, tmp, sizeof(tmp), &st);
			if (!err) {
				v = lops_version(&st);
				err = layer_install(lo->l, path, tmp, &st);
				if (err)
					unlink(tmp);
			}
		}
	}
	if (!err)
		err = layer_mark(lo->l, path, PATH_CLEAN, &v);
	return err;
}

/*
 * Close-to-open for a CLEAN local copy: when the VM's version moved on and
 * nobody else has the file open, fetch the new one. CLEAN -> CLEAN (new base).
 * Called with lo->ns held. Failures leave the local copy as it is.
 */
static void lops_revalidate(struct lops *lo, const char *path, const struct lops_file *self)
{
	enum path_state s;
	struct version base;
	struct stat st;
	char tmp[PATH_MAX];
	int busy = 0;

	if (layer_state(lo->l, path, &s, &base) != 0 || s != PATH_CLEAN || !base.valid)
		return;
	if (lops_remote_attr_max(lo, path, &st, lops_open_max_age(lo)) != 0 ||
	    !S_ISREG(st.st_mode))
		return;
	if ((uint64_t)st.st_size == base.size && st.st_mtim.tv_sec == base.mtime)
		return;
	pthread_mutex_lock(&lo->lock);
	for (struct lops_file *f = lo->files; f; f = f->next)
		busy |= f != self && !f->unlinked && strcmp(f->path, path) == 0;
	pthread_mutex_unlock(&lo->lock);
	if (busy || lops_download(lo, path, tmp, sizeof(tmp), &st) != 0)
		return;
	if (layer_install(lo->l, path, tmp, &st) != 0) {
		unlink(tmp);
		return;
	}
	base = lops_version(&st);
	layer_mark(lo->l, path, PATH_CLEAN, &base);
}

/* --- open files --------------------------------------------------------------- */

static struct lops_file *lops_fh(const struct fuse_file_info *fi)
{
	return (struct lops_file *)(uintptr_t)fi->fh;
}

static int lops_file_new(struct lops *lo, const char *path, struct lops_file **out)
{
	struct lops_file *f = calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	f->fd = -1;
	snprintf(f->path, sizeof(f->path), "%s", path);
	pthread_mutex_lock(&lo->lock);
	f->next = lo->files;
	if (lo->files)
		lo->files->prev = f;
	lo->files = f;
	pthread_mutex_unlock(&lo->lock);
	*out = f;
	return 0;
}

static void lops_file_free(struct lops *lo, struct lops_file *f)
{
	pthread_mutex_lock(&lo->lock);
	if (f->prev)
		f->prev->next = f->next;
	else
		lo->files = f->next;
	if (f->next)
		f->next->prev = f->prev;
	pthread_mutex_unlock(&lo->lock);
	if (f->fd >= 0)
		close(f->fd);
	if (f->rf)
		remote_close(f->rf);
	if (f->direct)
		remote_close(f->direct);
	fetch_put(f->fetch);
	presend_put(f->presend);
	free(f);
}

/*
 * The handle's current path into @buf, and its presend into *@ps (may be
 * NULL); 0, or -ENOENT once unlinked.
 */
static int lops_file_path_ps(struct lops *lo, struct lops_file *f, char *buf, size_t len,
			     struct presend **ps)
{
	int err = 0;

	pthread_mutex_lock(&lo->lock);
	if (f->unlinked)
		err = -ENOENT;
	else
		snprintf(buf, len, "%s", f->path);
	if (ps)
		*ps = f->presend;
	pthread_mutex_unlock(&lo->lock);
	return err;
}

static int lops_file_path(struct lops *lo, struct lops_file *f, char *buf, size_t len)
{
	return lops_file_path_ps(lo, f, buf, len, NULL);
}

static void lops_files_renamed(struct lops *lo, const char *from, const char *to)
{
	size_t fl = strlen(from);
	char np[PATH_MAX];

	pthread_mutex_lock(&lo->lock);
	for (struct lops_file *f = lo->files; f; f = f->next) {
		if (f->unlinked || strncmp(f->path, from, fl) != 0 ||
		    (f->path[fl] != '\0' && f->path[fl] != '/'))
			continue;
		if ((size_t)snprintf(np, sizeof(np), "%s%s", to, f->path + fl) < sizeof(np))
			memcpy(f->path, np, sizeof(np));
		presend_cancel(f->presend);
	}
	pthread_mutex_unlock(&lo->lock);
}

static void lops_files_unlinked(struct lops *lo, const char *path)
{
	pthread_mutex_lock(&lo->lock);
	for (struct lops_file *f = lo->files; f; f = f->next) {
		if (strcmp(f->path, path) == 0) {
			f->unlinked = 1;
			presend_cancel(f->presend);
		}
	}
	pthread_mutex_unlock(&lo->lock);
}

/*
 * @path got a second name: a write through that name would change the file
 * without moving @path's generation, so a presend cannot follow it.
 */
static void lops_files_linked(struct lops *lo, const char *path)
{
	pthread_mutex_lock(&lo->lock);
	for (struct lops_file *f = lo->files; f; f = f->next)
		if (!f->unlinked && strcmp(f->path, path) == 0)
			presend_cancel(f->presend);
	pthread_mutex_unlock(&lo->lock);
}

/* A change through @f: bump the generation (and make the path DIRTY). */
static int lops_file_changed(struct lops *lo, struct lops_file *f)
{
	char path[PATH_MAX];

	f->written = 1;
	if (lops_file_path(lo, f, path, sizeof(path)))
		return 0;	/* unlinked: nothing left to flush */
	return layer_bump(lo->l, path);
}

/* --- the operations --------------------------------------------------------------- */

/*
 * A handle on a copy of a VM file (from the cache, or still arriving) answers
 * for the VM file, by its path, not for the copy: the copy has its own owner
 * and mode, and is short while it arrives. The handle's path into @buf when it
 * is such a handle and still has one; else NULL.
 */
static const char *lops_vmcopy_path(struct lops *lo, struct lops_file *f, char *buf, size_t len)
{
	return f && f->vmcopy && lops_file_path(lo, f, buf, len) == 0 ? buf : NULL;
}

/*
 * The handle a chmod, chown or utimens of @fi changes: NULL when there is
 * none, or when it is a VM file's copy with a path, which then goes to
 * *path (@buf) so that the change is made to the VM file.
 */
static struct lops_file *lops_setattr_handle(struct lops *lo, struct fuse_file_info *fi,
					     const char **path, char *buf, size_t len)
{
	struct lops_file *f = fi ? lops_fh(fi) : NULL;

	if (lops_vmcopy_path(lo, f, buf, len)) {
		*path = buf;
		return NULL;
	}
	return f;
}

static int lops_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct lops *lo = lops_self();
	struct lops_file *f = fi ? lops_fh(fi) : NULL;
	char p[PATH_MAX];

	if (lops_vmcopy_path(lo, f, p, sizeof(p)))
		return lops_lookup(lo, p, st, NULL);
	if (f && f->fetch) {
		/* Unlinked while it arrives: its size is known at the end. */
		int err = fetch_wait(f->fetch, INT64_MAX);

		if (err)
			return err;
	}
	if (f && f->fd >= 0) {
		if (fstat(f->fd, st) < 0)
			return -errno;
		st->st_ino = lops_file_path(lo, f, p, sizeof(p)) == 0 ? layer_ino(lo->l, p)
								      : journal_ino_for(f->path);
		return 0;
	}
	if (f && f->rf) {
		int err = remote_fstat(f->rf, st);
		if (!err)
			st->st_ino = journal_ino_for(f->path);
		return err;
	}
	if (!path)
		return -ENOENT;
	return lops_lookup(lo, path, st, NULL);
}

static int lops_readlink(const char *path, char *buf, size_t size)
{
	struct lops *lo = lops_self();
	char lp[PATH_MAX], *vp;
	struct stat st;
	ssize_t n;
	int local, err;

	err = lops_lookup(lo, path, &st, &local);
	if (err)
		return err;
	if (!S_ISLNK(st.st_mode))
		return -EINVAL;
	if (local) {
		err = layer_local_path(lo->l, path, lp, sizeof(lp));
		if (err)
			return err;
		n = readlink(lp, buf, size - 1);
		if (n < 0)
			return -errno;
		buf[n] = '\0';
		return 0;
	}
	vp = lops_vm_path(lo, path);
	if (!vp)
		return -ENOMEM;
	err = remote_readlink(lo->r, vp, buf, size);
	free(vp);
	return err;
}

/* readdir: local names first, then the VM's that are neither local nor whited out. */
struct lops_rd {
	struct lops *lo;
	const char *path;
	void *buf;
	fuse_fill_dir_t filler;
	char **local;
	size_t nlocal, cap;
	struct layer_listing *listing;	/* being filled from the VM, or NULL */
	enum fuse_fill_dir_flags fill;	/* FUSE_FILL_DIR_PLUS: the kernel keeps the attributes */
};

static int lops_cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int lops_rd_remote(const char *name, const struct stat *st, void *payload)
{
	struct lops_rd *rd = payload;
	char child[PATH_MAX];
	struct stat s = *st;
	const char *key = name;

	if (rd->listing && layer_listing_add(rd->listing, name, st))
		return -ENOMEM;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return 0;
	if (rd->nlocal && bsearch(&key, rd->local, rd->nlocal, sizeof(char *), lops_cmpstr))
		return 0;
	if (layer_child(rd->path, name, child, sizeof(child)) || layer_hidden(child) ||
	    layer_is_whiteout(rd->lo->l, child))
		return 0;
	/*
	 * From a cached listing, the entry's attributes are what they were when
	 * it was listed: hand the kernel the attribute cache's (dropped by the
	 * feed when the file changed), or none, and it looks the name up.
	 */
	if (!rd->listing && layer_attr_get(rd->lo->l, child, &s) != 0) {
		rd->filler(rd->buf, name, NULL, 0, 0);
		return 0;
	}
	s.st_ino = layer_ino(rd->lo->l, child);
	rd->filler(rd->buf, name, &s, 0, rd->fill);
	return 0;
}

static int lops_rd_local(struct lops_rd *rd, const char *lp)
{
	DIR *d = opendir(lp);
	struct dirent *de;
	char child[PATH_MAX];
	struct stat st;
	int err = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (layer_child(rd->path, de->d_name, child, sizeof(child)) || layer_hidden(child))
			continue;
		if (rd->nlocal == rd->cap) {
			size_t cap = rd->cap ? rd->cap * 2 : 32;
			char **v = realloc(rd->local, cap * sizeof(*v));
			if (!v) {
				err = -ENOMEM;
				break;
			}
			rd->local = v;
			rd->cap = cap;
		}
		rd->local[rd->nlocal] = strdup(de->d_name);
		if (!rd->local[rd->nlocal]) {
			err = -ENOMEM;
			break;
		}
		rd->nlocal++;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		st.st_ino = layer_ino(rd->lo->l, child);
		rd->filler(rd->buf, de->d_name, &st, 0, rd->fill);
	}
	closedir(d);
	if (rd->nlocal)
		qsort(rd->local, rd->nlocal, sizeof(char *), lops_cmpstr);
	return err;
}

static int lops_rd_vm(struct lops_rd *rd)
{
	struct lops *lo = rd->lo;
	char *vp;
	int err;

	if (!remote_connected(lo->r)) {
		err = layer_dir_get_stale(lo->l, rd->path, lops_rd_remote, rd);
		return err == -EAGAIN ? -EIO : err;
	}
	err = layer_dir_get(lo->l, rd->path, lops_rd_remote, rd);
	if (err == -EAGAIN && layer_learn_wait(lo->l, LOPS_LEARN_WAIT_MS))
		err = layer_dir_get(lo->l, rd->path, lops_rd_remote, rd);
	if (err != -EAGAIN)
		return err;
	vp = lops_vm_path(lo, rd->path);
	if (!vp)
		return -ENOMEM;
	err = layer_listing_new(&rd->listing);
	if (!err)
		err = remote_readdir(lo->r, vp, lops_rd_remote, rd);
	if (!err) {
		layer_dir_put(lo->l, rd->path, rd->listing);
	} else {
		layer_listing_free(rd->listing);
		if (err == -ENOENT || err == -ENOTDIR)
			layer_attr_put(lo->l, rd->path, NULL);
	}
	rd->listing = NULL;
	free(vp);
	return err;
}

/*
 * An open directory: its path (with nullpath_ok, readdir gets none) and its
 * union listing (fs/dirlist.h), taken at offset 0.
 */
static int lops_opendir(const char *path, struct fuse_file_info *fi)
{
	struct lops *lo = lops_self();
	struct dirlist *d;
	struct stat st;
	int err = lops_lookup(lo, path, &st, NULL);

	if (err)
		return err;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	d = dirlist_new(path);
	if (!d)
		return -ENOMEM;
	fi->fh = (uintptr_t)d;
	return 0;
}

static int lops_releasedir(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	dirlist_free((struct dirlist *)(uintptr_t)fi->fh);
	return 0;
}

static int lops_list(struct lops *lo, const char *path, void *buf, fuse_fill_dir_t filler,
		     enum fuse_readdir_flags flags);

static int lops_dir_list(struct dirlist *d, void *payload)
{
	return lops_list(lops_self(), dirlist_path(d), d, dirlist_filler,
			 *(enum fuse_readdir_flags *)payload);
}

static int lops_readdir(const char *dpath, void *buf, fuse_fill_dir_t filler, off_t off,
			struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct dirlist *d = fi ? (struct dirlist *)(uintptr_t)fi->fh : NULL;

	if (!d)
		return dpath ? lops_list(lops_self(), dpath, buf, filler, flags) : -EBADF;
	return dirlist_readdir(d, off, buf, filler, lops_dir_list, &flags);
}

/* The union listing of @path through @filler (at offset 0). */
static int lops_list(struct lops *lo, const char *path, void *buf, fuse_fill_dir_t filler,
		     enum fuse_readdir_flags flags)
{
	struct lops_rd rd = { .lo = lo, .path = path, .buf = buf, .filler = filler };
	char lp[PATH_MAX];
	struct stat st;
	int local, err;

	if (flags & FUSE_READDIR_PLUS)
		rd.fill = FUSE_FILL_DIR_PLUS;
	err = lops_lookup(lo, path, &st, &local);
	if (err)
		return err;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	if (local) {
		err = layer_local_path(lo->l, path, lp, sizeof(lp));
		if (!err)
			err = lops_rd_local(&rd, lp);
		if (err)
			goto out;
	}
	if (lo->r && !lops_local_only(lo, path)) {
		struct stat rst;
		/* A local directory the VM lacks (negative cache) has nothing to merge. */
		if (!local || lops_remote_attr(lo, path, &rst) == 0) {
			err = lops_rd_vm(&rd);
			if (local && err)
				err = 0;	/* offline or gone on the VM: the local side stands */
		}
	}
out:
	for (size_t i = 0; i < rd.nlocal; i++)
		free(rd.local[i]);
	free(rd.local);
	return err;
}

static int lops_open_local(struct lops *lo, const char *path, int flags, mode_t mode,
			   struct lops_file *f)
{
	char lp[PATH_MAX];
	int err = layer_local_path(lo->l, path, lp, sizeof(lp));

	if (err)
		return err;
	f->fd = open(lp, (flags & ~(O_NOFOLLOW)) | O_CLOEXEC, mode);
	return f->fd < 0 ? -errno : 0;
}

/* What a fetch's done callback needs: where the copy is and what it is of. */
struct lops_fetched {
	struct lops *lo;
	struct stat st;			/* the VM's version at open */
	char tmp[PATH_MAX];		/* the copy's temporary name */
	char path[];			/* the mount path at open */
};

/* A fetch ended: make a whole copy durable and cache it; drop a partial one. */
static void lops_fetch_done(int err, int fd, void *payload)
{
	struct lops_fetched *d = payload;

	if (!err && fsync(fd) < 0)
		err = -errno;
	if (err || layer_cache_commit(d->lo->l, d->path, d->tmp, &d->st))
		unlink(d->tmp);
	free(d);
}

/* What a fetch copies: @path at the VM's version @st. */
static void lops_fetch_key(char *buf, size_t len, const char *path, const struct stat *st)
{
	snprintf(buf, len, "%lld %lld %s", (long long)st->st_size, (long long)st->st_mtime, path);
}

/*
 * Open a copy of the VM file @vp (at version @st) for reading into @f while a
 * fetch copies it, joining the fetch of an earlier open when that copy is
 * still arriving. -EAGAIN: no fetch could start; the caller downloads the
 * file itself.
 */
static int lops_open_fetch(struct lops *lo, const char *path, const char *vp,
			   const struct stat *st, struct lops_file *f)
{
	struct remote_file *rf = NULL;
	struct lops_fetched *d;
	char key[PATH_MAX + 64];
	int err, fd = -1, rfd = -1;

	lops_fetch_key(key, sizeof(key), path, st);
	if (fetch_attach(lo->fetcher, key, &f->fetch, &f->fd) == 0) {
		f->vmcopy = 1;
		f->vm_size = st->st_size;
		f->vm_mtime = st->st_mtime;
		return 0;
	}
	d = calloc(1, sizeof(*d) + strlen(path) + 1);
	if (!d)
		return -ENOMEM;
	d->lo = lo;
	strcpy(d->path, path);
	err = remote_open(lo->r, vp, O_RDONLY, 0, &rf);
	if (!err)
		err = remote_fstat(rf, &d->st);
	if (!err) {
		/* The VM's version now: a later open finds the copy by it. */
		layer_attr_put(lo->l, path, &d->st);
		fd = layer_tmpfile(lo->l, d->tmp, sizeof(d->tmp));
		if (fd < 0)
			err = fd;
	}
	if (!err) {
		rfd = open(d->tmp, O_RDONLY | O_CLOEXEC);
		if (rfd < 0)
			err = -errno;
	}
	if (!err) {
		lops_fetch_key(key, sizeof(key), path, &d->st);
		err = fetch_start(lo->fetcher, rf, fd, d->tmp, key, d->st.st_size, lops_fetch_done,
				  d, &f->fetch);
		if (err)
			close(rfd);
	}
	if (err) {
		if (fd >= 0) {
			close(fd);
			unlink(d->tmp);
		}
		if (rf)
			remote_close(rf);
		free(d);
		return err;
	}
	f->fd = rfd;	/* stays valid whatever happens to the name */
	f->vmcopy = 1;
	f->vm_size = d->st.st_size;
	f->vm_mtime = d->st.st_mtime;
	return 0;
}

/*
 * Open for reading a file only the VM has: its cached copy, a copy that
 * arrives while it is read, or streamed (over the cache's per-file limit).
 */
static int lops_open_vm(struct lops *lo, const char *path, const struct stat *st,
			struct lops_file *f)
{
	char tmp[PATH_MAX];
	struct stat dst;
	char *vp;
	int err, fd;

	if (!lo->r)
		return -EIO;
	vp = lops_vm_path(lo, path);
	if (!vp)
		return -ENOMEM;
	if ((uint64_t)st->st_size <= layer_cache_file_max(lo->l)) {
		fd = layer_cache_open(lo->l, path, st);
		if (fd >= 0) {
			free(vp);
			f->fd = fd;
			f->vmcopy = 1;
			return 0;
		}
		err = -EAGAIN;
		if (st->st_size > LOPS_FETCH_MIN && lo->fetcher)
			err = lops_open_fetch(lo, path, vp, st, f);
		free(vp);
		if (err != -EAGAIN)
			return err;
		err = lops_download(lo, path, tmp, sizeof(tmp), &dst);
		if (err)
			return err;
		f->fd = open(tmp, O_RDONLY | O_CLOEXEC);
		if (f->fd < 0) {
			err = -errno;
			unlink(tmp);
			return err;
		}
		f->vmcopy = 1;
		/* The fd stays valid whatever happens to the name. */
		if (layer_cache_commit(lo->l, path, tmp, &dst))
			unlink(tmp);
		layer_attr_put(lo->l, path, &dst);
		return 0;
	}
	err = remote_open(lo->r, vp, O_RDONLY, 0, &f->rf);
	free(vp);
	return err;
}

/*
 * A write-only handle bypasses the kernel's page cache (FOPEN_DIRECT_IO): the
 * data goes from the writer's buffer to the daemon, which writes it into the
 * layer's page cache, instead of being copied into a cached page of the
 * mount first. That copy into fresh pages was most of a large write's time.
 * An O_WRONLY descriptor cannot be mapped, and readers open with the page
 * cache dropped (close-to-open), so nothing depends on those pages.
 */
static void lops_direct_if_write_only(struct fuse_file_info *fi)
{
	if ((fi->flags & O_ACCMODE) == O_WRONLY)
		fi->direct_io = 1;
}

static int lops_open(const char *path, struct fuse_file_info *fi)
{
	struct lops *lo = lops_self();
	int acc = fi->flags & O_ACCMODE, trunc = (fi->flags & O_TRUNC) != 0;
	int writing = acc != O_RDONLY || trunc, local, err;
	struct lops_file *f = NULL;
	struct stat st;

	if (layer_hidden(path))
		return -ENOENT;
	err = lops_file_new(lo, path, &f);
	if (err)
		return err;
	pthread_mutex_lock(&lo->ns);
	err = lops_lookup(lo, path, &st, &local);
	if (!err && !local)
		err = lops_remote_attr_max(lo, path, &st, lops_open_max_age(lo));
	if (!err && local && !writing)
		lops_revalidate(lo, path, f);
	if (!err && !local && writing)
		err = lops_copyup(lo, path, trunc);
	pthread_mutex_unlock(&lo->ns);
	if (err)
		goto out;
	if (local || writing)
		err = lops_open_local(lo, path, fi->flags & ~(O_CREAT | O_EXCL), 0, f);
	else
		err = lops_open_vm(lo, path, &st, f);
	if (!err && trunc)
		err = lops_file_changed(lo, f);
out:
	if (err) {
		lops_file_free(lo, f);
		return err;
	}
	fi->fh = (uintptr_t)f;
	lops_direct_if_write_only(fi);
	return 0;
}

static int lops_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct lops *lo = lops_self();
	struct lops_file *f = NULL;
	struct stat st;
	int local, err;

	if (layer_hidden(path))
		return -EPERM;
	err = lops_file_new(lo, path, &f);
	if (err)
		return err;
	pthread_mutex_lock(&lo->ns);
	err = lops_lookup(lo, path, &st, &local);
	if (err == 0 && (fi->flags & O_EXCL)) {
		err = -EEXIST;
	} else if (err == 0 && !local) {
		/* open(O_CREAT) of a VM file: an open. */
		err = lops_copyup(lo, path, (fi->flags & O_TRUNC) != 0);
	} else if (err == -ENOENT) {
		err = layer_mkparents(lo->l, path);
	}
	if (!err)
		err = lops_open_local(lo, path, fi->flags | O_CREAT, mode, f);
	if (!err)
		err = lops_file_changed(lo, f);
	if (!err)
		layer_invalidate_changed(lo->l, path);
	pthread_mutex_unlock(&lo->ns);
	if (err) {
		lops_file_free(lo, f);
		return err;
	}
	fi->fh = (uintptr_t)f;
	lops_direct_if_write_only(fi);
	return 0;
}

/* Read @size bytes at @off of the VM file @rf into a buffer of @bv. 0 or -errno. */
static int lops_read_vm(struct remote_file *rf, struct fuse_bufvec *bv, size_t size, off_t off)
{
	ssize_t n;

	bv->buf[0].mem = malloc(size ? size : 1);
	n = bv->buf[0].mem ? remote_pread(rf, bv->buf[0].mem, size, off) : -ENOMEM;
	if (n < 0) {
		free(bv->buf[0].mem);
		bv->buf[0].mem = NULL;
		return (int)n;
	}
	bv->buf[0].size = (size_t)n;
	return 0;
}

/*
 * Reads ahead of a copy still arriving (lops_open_fetch) are answered by the
 * VM itself when that is quicker than waiting for the copy: `tail` of a big
 * file, or a reader that seeks, does not wait for all of it. The VM answers
 * requests in order, so a direct read's reply comes after the copy's requests
 * already in flight (up to REMOTE_RA_MAX bytes, at the copy's pace), and the
 * first one three times over (OPEN, FSTAT, READ). A read goes to the VM when
 * the copy would take twice that long to reach it, or twice what direct reads
 * took lately. The handle is used only if the VM's file is still the version
 * being copied.
 */
static struct remote_file *lops_direct_handle(struct lops *lo, struct lops_file *f)
{
	struct remote_file *rf;
	char path[PATH_MAX];
	struct stat st;
	char *vp;
	int tried;

	pthread_mutex_lock(&lo->lock);
	rf = f->direct;
	tried = f->direct_tried;
	f->direct_tried = 1;
	pthread_mutex_unlock(&lo->lock);
	if (rf || tried || !lo->r || lops_file_path(lo, f, path, sizeof(path)) != 0)
		return rf;	/* another read may be opening it: that one waits for the copy */
	vp = lops_vm_path(lo, path);
	if (!vp)
		return NULL;
	if (remote_open(lo->r, vp, O_RDONLY, 0, &rf) == 0 &&
	    (remote_fstat(rf, &st) != 0 || st.st_size != f->vm_size || st.st_mtime != f->vm_mtime)) {
		remote_close(rf);	/* changed on the VM since: the copy has the version opened */
		rf = NULL;
	}
	free(vp);
	pthread_mutex_lock(&lo->lock);
	f->direct = rf;
	pthread_mutex_unlock(&lo->lock);
	return rf;
}

static double lops_secs_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* 0: @bv holds the bytes, read from the VM; -EAGAIN: wait for the copy. */
static int lops_read_ahead_of_fetch(struct lops *lo, struct lops_file *f, struct fuse_bufvec *bv,
				    size_t size, off_t off)
{
	double pace, eta = fetch_eta(f->fetch, off + (off_t)size, &pace), cost, took;
	struct remote_file *rf;
	struct timespec t0;
	int err;

	if (eta <= 0)
		return -EAGAIN;
	pthread_mutex_lock(&lo->lock);
	cost = (double)REMOTE_RA_MAX / pace;
	if (lo->direct_s > cost)
		cost = lo->direct_s;
	if (!f->direct)
		cost *= 3;
	pthread_mutex_unlock(&lo->lock);
	if (eta <= 2 * cost || !(rf = lops_direct_handle(lo, f)))
		return -EAGAIN;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	err = lops_read_vm(rf, bv, size, off);
	took = lops_secs_since(&t0);
	pthread_mutex_lock(&lo->lock);
	lo->direct_s = lo->direct_s > 0 ? 0.75 * lo->direct_s + 0.25 * took : took;
	pthread_mutex_unlock(&lo->lock);
	return err ? -EAGAIN : 0;	/* the copy may still get there */
}

/*
 * A read is answered with the local copy's file descriptor: libfuse splices
 * its pages to the kernel (FUSE_CAP_SPLICE_WRITE) instead of copying them
 * through a buffer here. A streamed VM file, and a read far ahead of a copy
 * still arriving, are read into memory.
 */
static int lops_read_buf(const char *path, struct fuse_bufvec **bufp, size_t size, off_t off,
			 struct fuse_file_info *fi)
{
	struct lops_file *f = lops_fh(fi);
	struct fuse_bufvec *bv = malloc(sizeof(*bv));
	int err;

	(void)path;
	if (!bv)
		return -ENOMEM;
	*bv = (struct fuse_bufvec)FUSE_BUFVEC_INIT(size);
	if (f->rf) {
		err = lops_read_vm(f->rf, bv, size, off);
		if (err) {
			free(bv);
			return err;
		}
		*bufp = bv;
		return 0;
	}
	if (f->fetch) {
		if (lops_read_ahead_of_fetch(lops_self(), f, bv, size, off) == 0) {
			*bufp = bv;
			return 0;
		}
		err = fetch_wait(f->fetch, off + (off_t)size);
		if (err) {
			free(bv);
			return err;
		}
	}
	bv->buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	bv->buf[0].fd = f->fd;
	bv->buf[0].pos = off;
	*bufp = bv;
	return 0;
}

/*
 * One bump of a write by @f (see lops_write): the generations go to the
 * handle's presend, before (@begin) or after the data landed. *path: the
 * handle's path ("" once unlinked).
 */
static int lops_write_bump(struct lops *lo, struct lops_file *f, int begin, off_t off, size_t len,
			   char *path, size_t plen, uint64_t *gen)
{
	struct presend *ps;
	uint64_t prev;
	int err;

	f->written = 1;
	if (lops_file_path_ps(lo, f, path, plen, &ps)) {
		*path = '\0';
		return 0;	/* unlinked: nothing left to flush */
	}
	err = layer_bump_gen(lo->l, path, &prev, gen);
	if (!err && ps && begin)
		presend_write_begin(ps, path, off, prev, *gen);
	else if (!err && ps)
		presend_write_end(ps, off, len, prev, *gen);
	return err;
}

/*
 * A handle that has written the first LOPS_PRESEND_MIN bytes of a file in
 * order is likely a copy or a large output: ask the flusher, once, to send
 * the file while it is written (fs/presend.h).
 */
static void lops_presend_maybe(struct lops *lo, struct lops_file *f, const char *path, off_t off,
			       size_t len, uint64_t gen)
{
	struct presend *ps;
	int start;

	pthread_mutex_lock(&lo->lock);
	if (f->seq_end == off)
		f->seq_end += (off_t)len;
	else
		f->seq_end = -1;
	start = f->seq_end >= LOPS_PRESEND_MIN && !f->presend_tried && *path;
	if (start)
		f->presend_tried = 1;
	pthread_mutex_unlock(&lo->lock);
	if (!start)
		return;
	ps = layer_presend(lo->l, path, f->fd, gen);
	pthread_mutex_lock(&lo->lock);
	f->presend = ps;
	pthread_mutex_unlock(&lo->lock);
}

static int lops_write(const char *path, const char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct lops *lo = lops_self();
	struct lops_file *f = lops_fh(fi);
	char p[PATH_MAX];
	uint64_t gen;
	ssize_t n;
	int err;

	if (f->fd < 0)
		return -EBADF;
	/*
	 * DIRTY is journaled before the data lands (a crash never leaves a
	 * changed file CLEAN), and the generation moves again after it, so a
	 * flush that raced with this write cannot end CLEAN.
	 */
	err = lops_write_bump(lo, f, 1, off, size, p, sizeof(p), &gen);
	if (err)
		return err;
	n = pwrite(f->fd, buf, size, off);
	if (n < 0) {
		err = -errno;
		presend_cancel(f->presend);
		return err;
	}
	err = lops_write_bump(lo, f, 0, off, (size_t)n, p, sizeof(p), &gen);
	if (!err)
		lops_presend_maybe(lo, f, p, off, (size_t)n, gen);
	return err ? err : (int)n;
}

static int lops_release(const char *path, struct fuse_file_info *fi)
{
	struct lops *lo = lops_self();
	struct lops_file *f = lops_fh(fi);
	char p[PATH_MAX];
	int notify = f->written && lops_file_path(lo, f, p, sizeof(p)) == 0;

	lops_file_free(lo, f);
	if (notify)
		layer_notify(lo->l, p, LAYER_EV_CLOSED_DIRTY, NULL);
	return 0;
}

static int lops_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	struct lops *lo = lops_self();
	struct lops_file *f = lops_fh(fi);
	enum path_state s;
	char p[PATH_MAX];
	int err;

	if (f->fd < 0)
		return 0;
	if ((datasync ? fdatasync(f->fd) : fsync(f->fd)) < 0)
		return -errno;
	if (lops_file_path(lo, f, p, sizeof(p)) != 0)
		return 0;
	/* The path's state (dirty, held) is as durable as its data. */
	err = layer_sync(lo->l);
	if (!err && layer_state(lo->l, p, &s, NULL) == 0 && s == PATH_DIRTY)
		err = layer_fsync(lo->l, p);
	return err;
}

static int lops_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct lops *lo = lops_self();
	char lp[PATH_MAX];
	int err;

	if (fi && lops_fh(fi)->fd >= 0 && !lops_fh(fi)->vmcopy) {
		struct lops_file *f = lops_fh(fi);
		err = lops_file_changed(lo, f);
		if (!err && ftruncate(f->fd, size) < 0)
			err = -errno;
		if (!err)
			err = lops_file_changed(lo, f);
		return err;
	}
	if (!path)
		return -EBADF;
	pthread_mutex_lock(&lo->ns);
	err = lops_copyup(lo, path, size == 0);
	if (!err)
		err = layer_local_path(lo->l, path, lp, sizeof(lp));
	if (!err)
		err = layer_bump(lo->l, path);
	if (!err && truncate(lp, size) < 0)
		err = -errno;
	pthread_mutex_unlock(&lo->ns);
	if (!err) {
		layer_invalidate_changed(lo->l, path);
		layer_notify(lo->l, path, LAYER_EV_CLOSED_DIRTY, NULL);
	}
	return err;
}

/* Delete @path locally; a whiteout when the VM may still have it. With lo->ns held. */
static int lops_remove(struct lops *lo, const char *path, int dir)
{
	char lp[PATH_MAX];
	struct stat st;
	int local, err, remote;

	err = lops_lookup(lo, path, &st, &local);
	if (err)
		return err;
	if (dir && !S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (!dir && S_ISDIR(st.st_mode))
		return -EISDIR;
	remote = !lops_local_only(lo, path) && lops_remote_has(lo, path);
	if (local) {
		err = layer_local_path(lo->l, path, lp, sizeof(lp));
		if (err)
			return err;
		if ((dir ? rmdir(lp) : unlink(lp)) < 0)
			return -errno;
	}
	if (remote)
		err = layer_mark(lo->l, path, PATH_WHITEOUT, NULL);
	else
		err = layer_forget(lo->l, path);
	layer_cache_drop(lo->l, path);
	layer_invalidate_changed(lo->l, path);
	return err;
}

static int lops_unlink(const char *path)
{
	struct lops *lo = lops_self();
	int err;

	if (layer_hidden(path))
		return -EPERM;
	pthread_mutex_lock(&lo->ns);
	err = lops_remove(lo, path, 0);
	if (!err)
		lops_files_unlinked(lo, path);
	pthread_mutex_unlock(&lo->ns);
	if (!err)
		layer_notify(lo->l, path, LAYER_EV_UNLINK, NULL);
	return err;
}

static int lops_count_cb(void *buf, const char *name, const struct stat *st, off_t off,
			 enum fuse_fill_dir_flags flags)
{
	if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0)
		(*(int *)buf)++;
	return 0;
}

/* Entries the union shows in directory @path. */
static int lops_union_count(struct lops *lo, const char *path, int *n)
{
	struct lops_rd rd = { .lo = lo, .path = path, .buf = n, .filler = lops_count_cb };
	char lp[PATH_MAX];
	struct stat st;
	int local, err;

	*n = 0;
	err = lops_lookup(lo, path, &st, &local);
	if (!err && local) {
		err = layer_local_path(lo->l, path, lp, sizeof(lp));
		if (!err)
			err = lops_rd_local(&rd, lp);
	}
	if (!err && lo->r && !lops_local_only(lo, path) &&
	    (!local || lops_remote_attr(lo, path, &st) == 0)) {
		err = lops_rd_vm(&rd);
		if (err == -ENOENT && local)
			err = 0;
	}
	for (size_t i = 0; i < rd.nlocal; i++)
		free(rd.local[i]);
	free(rd.local);
	return err;
}

static int lops_rmdir(const char *path)
{
	struct lops *lo = lops_self();
	int err, n;

	if (layer_hidden(path))
		return -EPERM;
	if (strcmp(path, "/") == 0)
		return -EBUSY;
	pthread_mutex_lock(&lo->ns);
	err = lops_union_count(lo, path, &n);
	if (!err && n)
		err = -ENOTEMPTY;
	if (!err)
		err = lops_remove(lo, path, 1);
	pthread_mutex_unlock(&lo->ns);
	if (!err)
		layer_notify(lo->l, path, LAYER_EV_RMDIR, NULL);
	return err;
}

static int lops_mkdir(const char *path, mode_t mode)
{
	struct lops *lo = lops_self();
	char lp[PATH_MAX];
	struct stat st;
	int err, was_whiteout;

	if (layer_hidden(path))
		return -EPERM;
	pthread_mutex_lock(&lo->ns);
	err = lops_lookup(lo, path, &st, NULL);
	if (err == 0) {
		err = -EEXIST;
		goto out;
	}
	if (err != -ENOENT)
		goto out;
	was_whiteout = layer_is_whiteout(lo->l, path);
	err = layer_local_path(lo->l, path, lp, sizeof(lp));
	if (!err)
		err = layer_mkparents(lo->l, path);
	if (!err && mkdir(lp, mode) < 0)
		err = -errno;
	if (!err)
		err = layer_bump(lo->l, path);	/* over a whiteout: keeps the VM's version */
	layer_invalidate_changed(lo->l, path);
	if (!err && !was_whiteout)
		layer_attr_put(lo->l, path, NULL);	/* the VM lacks it: no lookups there */
out:
	pthread_mutex_unlock(&lo->ns);
	if (!err)
		layer_notify(lo->l, path, LAYER_EV_MKDIR, NULL);
	return err;
}

static int lops_symlink(const char *target, const char *path)
{
	struct lops *lo = lops_self();
	char lp[PATH_MAX];
	struct stat st;
	int err;

	if (layer_hidden(path))
		return -EPERM;
	pthread_mutex_lock(&lo->ns);
	err = lops_lookup(lo, path, &st, NULL);
	if (err == 0)
		err = -EEXIST;
	else if (err == -ENOENT)
		err = layer_local_path(lo->l, path, lp, sizeof(lp));
	if (!err)
		err = layer_mkparents(lo->l, path);
	if (!err && symlink(target, lp) < 0)
		err = -errno;
	if (!err)
		err = layer_bump(lo->l, path);
	layer_invalidate_changed(lo->l, path);
	pthread_mutex_unlock(&lo->ns);
	if (!err)
		layer_notify(lo->l, path, LAYER_EV_SYMLINK, NULL);
	return err;
}

/* 1 when directory @path (local) is only in the layer. */
static int lops_dir_local_only(struct lops *lo, const char *path)
{
	struct stat st;

	if (lops_local_only(lo, path))
		return 1;
	if (!lo->r)
		return 0;
	return lops_remote_attr(lo, path, &st) == -ENOENT;
}

static int lops_rename(const char *from, const char *to, unsigned int flags)
{
	struct lops *lo = lops_self();
	char lf[PATH_MAX], lt[PATH_MAX];
	struct stat sf, st;
	struct version to_base = { 0 }, from_base = { 0 };
	enum path_state ts;
	int lfrom, lto, err, remote_from, n;

	if (layer_hidden(from) || layer_hidden(to))
		return -EPERM;
	if (flags & ~RENAME_NOREPLACE)
		return -EINVAL;
	pthread_mutex_lock(&lo->ns);
	err = lops_lookup(lo, from, &sf, &lfrom);
	if (err)
		goto out;
	err = lops_lookup(lo, to, &st, &lto);
	if (err == 0) {
		/* What @to replaces on the VM: the flush of @to checks it is still there. */
		if (layer_state(lo->l, to, NULL, &to_base) != 0 || !to_base.valid)
			to_base = lto ? (struct version){ 0 } : lops_version(&st);
		if (flags & RENAME_NOREPLACE)
			err = -EEXIST;
		else if (S_ISDIR(st.st_mode) && !S_ISDIR(sf.st_mode))
			err = -EISDIR;
		else if (!S_ISDIR(st.st_mode) && S_ISDIR(sf.st_mode))
			err = -ENOTDIR;
		else if (S_ISDIR(st.st_mode) && lops_union_count(lo, to, &n) == 0 && n)
			err = -ENOTEMPTY;
		if (err)
			goto out;
		if (!lto && S_ISDIR(st.st_mode)) {
			/* An empty VM directory is replaced: whiteout it first. */
			err = lops_remove(lo, to, 1);
			if (err)
				goto out;
		}
	} else if (err != -ENOENT) {
		goto out;
	}
	remote_from = !lops_local_only(lo, from) && (!lfrom || lops_remote_has(lo, from));
	if (S_ISDIR(sf.st_mode)) {
		if (!lfrom || !lops_dir_local_only(lo, from)) {
			err = -EXDEV;	/* the VM's directories are not moved */
			goto out;
		}
		/*
		 * It may hide a file of the VM's (one deleted in the mount and
		 * made again as a directory): the whiteout left keeps it hidden.
		 */
		remote_from = lops_remote_has(lo, from);
	} else {
		err = lops_copyup(lo, from, 0);
		if (err)
			goto out;
	}
	err = layer_local_path(lo->l, from, lf, sizeof(lf));
	if (!err)
		err = layer_local_path(lo->l, to, lt, sizeof(lt));
	if (!err)
		err = layer_mkparents(lo->l, to);
	if (!err && rename(lf, lt) < 0)
		err = -errno;
	if (err)
		goto out;
	/*
	 * What the VM has at @from (the version the layer knew), for the
	 * whiteout left there: a delete of it on the VM checks it is still
	 * that version, and a directory made there later keeps hiding it.
	 */
	if (!remote_from || layer_state(lo->l, from, NULL, &from_base) != 0)
		from_base.valid = 0;
	/* The entries (and inode numbers) move; @to is a change; @from is gone. */
	err = journal_rename(layer_journal(lo->l), from, to);
	if (err == -ENOENT)
		err = 0;
	if (!err)
		err = layer_bump(lo->l, to);
	if (!err && to_base.valid && !S_ISDIR(sf.st_mode) && layer_state(lo->l, to, &ts, NULL) == 0)
		err = layer_mark(lo->l, to, ts, &to_base);
	if (!err && remote_from)
		err = layer_mark(lo->l, from, PATH_WHITEOUT, from_base.valid ? &from_base : NULL);
	lops_files_renamed(lo, from, to);
	layer_cache_drop(lo->l, from);
	layer_cache_drop(lo->l, to);
	layer_invalidate_changed(lo->l, from);
	layer_invalidate_changed(lo->l, to);
out:
	pthread_mutex_unlock(&lo->ns);
	if (!err)
		layer_notify(lo->l, from, LAYER_EV_RENAME, to);
	return err;
}

static int lops_link(const char *from, const char *to)
{
	struct lops *lo = lops_self();
	char lf[PATH_MAX], lt[PATH_MAX];
	struct stat st;
	int err;

	if (layer_hidden(from) || layer_hidden(to))
		return -EPERM;
	pthread_mutex_lock(&lo->ns);
	err = lops_lookup(lo, to, &st, NULL);
	if (err == 0)
		err = -EEXIST;
	else if (err == -ENOENT)
		err = lops_copyup(lo, from, 0);
	if (!err)
		err = layer_local_path(lo->l, from, lf, sizeof(lf));
	if (!err)
		err = layer_local_path(lo->l, to, lt, sizeof(lt));
	if (!err)
		err = layer_mkparents(lo->l, to);
	if (!err && link(lf, lt) < 0)
		err = -errno;
	if (!err)
		lops_files_linked(lo, from);
	if (!err)
		err = layer_bump(lo->l, to);
	layer_invalidate_changed(lo->l, to);
	pthread_mutex_unlock(&lo->ns);
	if (!err)
		layer_notify(lo->l, to, LAYER_EV_CLOSED_DIRTY, NULL);
	return err;
}

/* Make @path local (copy-up) for an attribute change; its layer path into @lp. */
static int lops_attr_prepare(struct lops *lo, const char *path, char *lp, size_t len)
{
	int err;

	if (layer_hidden(path))
		return -EPERM;
	err = lops_copyup(lo, path, 0);
	if (!err)
		err = layer_local_path(lo->l, path, lp, len);
	if (!err)
		err = layer_bump(lo->l, path);
	return err;
}

static int lops_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct lops *lo = lops_self();
	struct lops_file *f;
	char lp[PATH_MAX], p[PATH_MAX], vpath[PATH_MAX];
	int err;

	f = lops_setattr_handle(lo, fi, &path, vpath, sizeof(vpath));
	if (f && f->fd >= 0) {
		err = lops_file_changed(lo, f);
		if (!err && fchmod(f->fd, mode) < 0)
			err = -errno;
		if (!err && lops_file_path(lo, f, p, sizeof(p)) == 0)
			layer_notify(lo->l, p, LAYER_EV_CHMOD, NULL);
		return err;
	}
	if (!path)
		return -EBADF;
	pthread_mutex_lock(&lo->ns);
	err = lops_attr_prepare(lo, path, lp, sizeof(lp));
	if (!err && chmod(lp, mode) < 0)
		err = -errno;
	layer_invalidate_changed(lo->l, path);
	pthread_mutex_unlock(&lo->ns);
	if (!err)
		layer_notify(lo->l, path, LAYER_EV_CHMOD, NULL);
	return err;
}

static int lops_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	struct lops *lo = lops_self();
	struct lops_file *f;
	char lp[PATH_MAX], vpath[PATH_MAX];
	int err;

	f = lops_setattr_handle(lo, fi, &path, vpath, sizeof(vpath));
	if (f && f->fd >= 0)
		return fchown(f->fd, uid, gid) < 0 ? -errno : 0;
	if (!path)
		return -EBADF;
	pthread_mutex_lock(&lo->ns);
	err = lops_attr_prepare(lo, path, lp, sizeof(lp));
	if (!err && lchown(lp, uid, gid) < 0)
		err = -errno;
	layer_invalidate_changed(lo->l, path);
	pthread_mutex_unlock(&lo->ns);
	return err;
}

static int lops_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	struct lops *lo = lops_self();
	struct lops_file *f;
	char lp[PATH_MAX], p[PATH_MAX], vpath[PATH_MAX];
	int err;

	f = lops_setattr_handle(lo, fi, &path, vpath, sizeof(vpath));
	if (f && f->fd >= 0) {
		err = lops_file_changed(lo, f);
		if (!err && futimens(f->fd, tv) < 0)
			err = -errno;
		if (!err && lops_file_path(lo, f, p, sizeof(p)) == 0)
			layer_notify(lo->l, p, LAYER_EV_UTIMES, NULL);
		return err;
	}
	if (!path)
		return -EBADF;
	pthread_mutex_lock(&lo->ns);
	err = lops_attr_prepare(lo, path, lp, sizeof(lp));
	if (!err && utimensat(AT_FDCWD, lp, tv, AT_SYMLINK_NOFOLLOW) < 0)
		err = -errno;
	layer_invalidate_changed(lo->l, path);
	pthread_mutex_unlock(&lo->ns);
	if (!err)
		layer_notify(lo->l, path, LAYER_EV_UTIMES, NULL);
	return err;
}

static int lops_statfs(const char *path, struct statvfs *sv)
{
	/* Writes land in the layer: its disk is what fills up. */
	return statvfs(layer_dir(lops_self()->l), sv) < 0 ? -errno : 0;
}

static void *lops_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	struct lops *lo = lops_self();
	double t = lo->o ? lo->o->attr_timeout_s : 1.0;

	cfg->use_ino = 1;	/* stable inode numbers (journal_ino): git's index matches */
	cfg->hard_remove = 1;	/* unlinked open files keep their local fd */
	cfg->nullpath_ok = 1;	/* handles carry their own path */
	cfg->entry_timeout = t;
	cfg->attr_timeout = t;
	cfg->negative_timeout = 0;
	cfg->kernel_cache = 0;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/* Reads are answered from local files: let the kernel move their pages. */
	conn->want |= conn->capable & (FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
	return lo;
}

static const struct fuse_operations lops_operations = {
	.init = lops_init,
	.getattr = lops_getattr,
	.readlink = lops_readlink,
	.mkdir = lops_mkdir,
	.unlink = lops_unlink,
	.rmdir = lops_rmdir,
	.symlink = lops_symlink,
	.rename = lops_rename,
	.link = lops_link,
	.chmod = lops_chmod,
	.chown = lops_chown,
	.truncate = lops_truncate,
	.open = lops_open,
	.read_buf = lops_read_buf,
	.write = lops_write,
	.statfs = lops_statfs,
	/*
	 * No .flush: close(2) has nothing to wait for here (writes are in the
	 * layer when write() returns; release tells the flusher). The kernel gets
	 * ENOSYS from the first FLUSH and sends no more: a round trip saved at
	 * every close, one in nine of an untar's requests.
	 */
	.release = lops_release,
	.fsync = lops_fsync,
	.opendir = lops_opendir,
	.readdir = lops_readdir,
	.releasedir = lops_releasedir,
	.create = lops_create,
	.utimens = lops_utimens,
};

const struct fuse_operations *lops_table(void)
{
	return &lops_operations;
}

int lops_new(struct lops **out, struct remote *r, struct layer *l, const struct options *o)
{
	struct lops *lo = calloc(1, sizeof(*lo));
	const char *dir = o && o->dir && *o->dir ? o->dir : ".";

	*out = NULL;
	if (!lo)
		return -ENOMEM;
	lo->root = strdup(dir);
	if (!lo->root) {
		free(lo);
		return -ENOMEM;
	}
	lo->r = r;
	lo->l = l;
	lo->o = o;
	if (fetcher_new(&lo->fetcher, LOPS_FETCHES)) {
		free(lo->root);
		free(lo);
		return -ENOMEM;
	}
	pthread_mutex_init(&lo->ns, NULL);
	pthread_mutex_init(&lo->lock, NULL);
	*out = lo;
	return 0;
}

void lops_free(struct lops *lo)
{
	if (!lo)
		return;
	fetcher_free(lo->fetcher);	/* its callbacks use lo->l: stop them first */
	while (lo->files)
		lops_file_free(lo, lo->files);
	pthread_mutex_destroy(&lo->ns);
	pthread_mutex_destroy(&lo->lock);
	free(lo->root);
	free(lo);
}
