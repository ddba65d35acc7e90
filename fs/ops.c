/*
 * fs/ops.c: the fuse_operations table of a wakefs mount.
 *
 * We use libfuse's HIGH-level, path-based API: the VM side is path-based SFTP
 * and the local layer that slots in under this file is path-based too, so an
 * inode table of our own (the low-level API) would only translate inodes back
 * into the paths both sides want. libfuse keeps the inode <-> path map.
 *
 * The table is thin: each operation resolves what FUSE leaves to the
 * filesystem (UTIME_NOW/UTIME_OMIT, chown's -1, rename flags, NULL paths of
 * open files) and delegates to the "backend" helpers (ops_be_*), which are
 * the only calls to the VM in this file. This is write-through: every change
 * is on the VM when the call returns. The local layer replaces the backend
 * helpers, not the operations.
 *
 * Unlinked-but-open files (hide-on-unlink): unlink or rename-over of a path
 * that is open renames it to a hidden sibling OPS_HIDDEN_PREFIX<n> instead,
 * which readdir never shows, and release of its last handle deletes it. So a
 * program can keep reading, writing, fstat()ing and fchmod()ing an open file
 * after unlinking it, whatever the server does with open deleted files.
 * libfuse's own hiding (.fuse_hidden*) is turned off (hard_remove) and
 * nullpath_ok is on: operations on such a file come with a NULL path and the
 * file handle, whose node knows the current (hidden) name.
 */
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "options.h"
#include "remote.h"

#define OPS_BUCKETS 1024

/*
 * A path that is open, with how many handles. Lives in ops->buckets while
 * opens > 0; ops->lock protects every field.
 */
struct ops_node {
	struct ops_node *next;	/* hash chain */
	char *path;		/* mount path ("/a/b"); the hidden name once unlinked */
	unsigned int opens;
	int hidden;		/* unlinked while open: delete on last release */
};

/* An open file: fuse_file_info.fh. */
struct ops_file {
	struct remote_file *rf;
	struct ops_node *node;
};

struct ops {
	struct remote *remote;		/* borrowed */
	const struct options *opts;	/* borrowed */
	char *root;			/* the VM directory, no trailing '/'; "." = login dir */
	/*
	 * Protects buckets, every ops_node and hidden_seq. Held across the VM
	 * calls of unlink and rename that hide open files, so that no open or
	 * release slips between "is it open?" and the hiding rename. Never
	 * taken while holding another lock of ours.
	 */
	pthread_mutex_t lock;
	struct ops_node *buckets[OPS_BUCKETS];
	unsigned long hidden_seq;
};

static struct ops *ops_self(void)
{
	return fuse_get_context()->private_data;
}

/* --- paths ----------------------------------------------------------------- */

/* The VM path of mount path @path ("/" or "/a/b"); NULL when out of memory. */
static char *ops_vm_path(const struct ops *ops, const char *path)
{
	size_t rl = strlen(ops->root), pl = strlen(path);
	char *s;

	if (strcmp(path, "/") == 0)
		return strdup(rl ? ops->root : "/");
	s = malloc(rl + pl + 1);
	if (!s)
		return NULL;
	memcpy(s, ops->root, rl);
	memcpy(s + rl, path, pl + 1);
	return s;
}

static int ops_is_hidden_name(const char *name)
{
	return strncmp(name, OPS_HIDDEN_PREFIX, sizeof(OPS_HIDDEN_PREFIX) - 1) == 0;
}

/* --- the backend: every call to the VM goes through these ------------------ */

#define OPS_BE_PATH(ops, path, vp)		\
	char *vp = ops_vm_path(ops, path);	\
	if (!vp)				\
		return -ENOMEM

static int ops_be_lstat(struct ops *ops, const char *path, struct stat *st)
{
	OPS_BE_PATH(ops, path, vp);
	int err = remote_lstat(ops->remote, vp, st);

	free(vp);
	return err;
}

static int ops_be_stat(struct ops *ops, const char *path, struct stat *st)
{
	OPS_BE_PATH(ops, path, vp);
	int err = remote_stat(ops->remote, vp, st);

	free(vp);
	return err;
}

static int ops_be_readdir(struct ops *ops, const char *path, remote_dirent_cb cb, void *payload)
{
	OPS_BE_PATH(ops, path, vp);
	int err = remote_readdir(ops->remote, vp, cb, payload);

	free(vp);
	return err;
}

static int ops_be_open(struct ops *ops, const char *path, int flags, mode_t mode,
		       struct remote_file **rf)
{
	OPS_BE_PATH(ops, path, vp);
	int err = remote_open(ops->remote, vp, flags, mode, rf);

	free(vp);
	return err;
}

static int ops_be_mkdir(struct ops *ops, const char *path, mode_t mode)
{
	OPS_BE_PATH(ops, path, vp);
	int err = remote_mkdir(ops->remote, vp, mode);

	free(vp);
	return err;
}

static int ops_be_rmdir(struct ops *ops, const char *path)
{
	OPS_BE_PATH(ops, path, vp);
	int err = remote_rmdir(ops->remote, vp);

	free(vp);
	return err;
}

static int ops_be_unlink(struct ops *ops, const char *path)
{
	OPS_BE_PATH(ops, path, vp);
	int err = remote_unlink(ops->remote, vp);

	free(vp);
	return err;
}

static int ops_be_rename(struct ops *ops, const char *from, const char *to, unsigned int flags)
{
	char *vf = ops_vm_path(ops, from), *vt = ops_vm_path(ops, to);
	int err = -ENOMEM;

	if (vf && vt)
		err = remote_rename(ops->remote, vf, vt, flags);
	free(vf);
	free(vt);
	return err;
}

static int ops_be_symlink(struct ops *ops, const char *target, const char *path)
{
	OPS_BE_PATH(ops, path, vp);
	int err = remote_symlink(ops->remote, target, vp);

	free(vp);
	return err;
}

static int ops_be_readlink(struct ops *ops, const char *path, char *buf, size_t size)
{
	OPS_BE_PATH(ops, path, vp);
	int err = remote_readlink(ops->remote, vp, buf, size);

	free(vp);
	return err;
}

static int ops_be_link(struct ops *ops, const char *from, const char *to)
{
	char *vf = ops_vm_path(ops, from), *vt = ops_vm_path(ops, to);
	int err = -ENOMEM;

	if (vf && vt)
		err = remote_link(ops->remote, vf, vt);
	free(vf);
	free(vt);
	return err;
}

static int ops_be_chmod(struct ops *ops, const char *path, mode_t mode)
{
	OPS_BE_PATH(ops, path, vp);
	int err = remote_chmod(ops->remote, vp, mode);

	free(vp);
	return err;
}

static int ops_be_chown(struct ops *ops, const char *path, uid_t uid, gid_t gid)
{
	OPS_BE_PATH(ops, path, vp);
	int err = remote_chown(ops->remote, vp, uid, gid);

	free(vp);
	return err;
}

static int ops_be_truncate(struct ops *ops, const char *path, off_t size)
{
	OPS_BE_PATH(ops, path, vp);
	int err = remote_truncate(ops->remote, vp, size);

	free(vp);
	return err;
}

static int ops_be_utimes(struct ops *ops, const char *path, time_t atime, time_t mtime)
{
	OPS_BE_PATH(ops, path, vp);
	int err = remote_utimes(ops->remote, vp, atime, mtime);

	free(vp);
	return err;
}

static int ops_be_statvfs(struct ops *ops, const char *path, struct statvfs *sv)
{
	OPS_BE_PATH(ops, path, vp);
	int err = remote_statvfs(ops->remote, vp, sv);

	free(vp);
	return err;
}

/* --- the open-file table ----------------------------------------------------- */

static size_t ops_hash(const char *s)
{
	size_t h = 5381;

	while (*s)
		h = h * 33 + (unsigned char)*s++;
	return h % OPS_BUCKETS;
}

/* Caller holds ops->lock. */
static struct ops_node *ops_node_find(struct ops *ops, const char *path)
{
	struct ops_node *n;

	for (n = ops->buckets[ops_hash(path)]; n; n = n->next)
		if (strcmp(n->path, path) == 0)
			return n;
	return NULL;
}

/* Caller holds ops->lock. */
static void ops_node_unhash(struct ops *ops, struct ops_node *node)
{
	struct ops_node **p;

	for (p = &ops->buckets[ops_hash(node->path)]; *p; p = &(*p)->next) {
		if (*p == node) {
			*p = node->next;
			node->next = NULL;
			return;
		}
	}
}

/* Caller holds ops->lock. */
static void ops_node_hash(struct ops *ops, struct ops_node *node)
{
	size_t b = ops_hash(node->path);

	node->next = ops->buckets[b];
	ops->buckets[b] = node;
}

/* Take a reference on the node of @path, making it if needed. */
static int ops_node_get(struct ops *ops, const char *path, struct ops_node **out)
{
	struct ops_node *n;
	int err = 0;

	pthread_mutex_lock(&ops->lock);
	n = ops_node_find(ops, path);
	if (!n) {
		n = calloc(1, sizeof(*n));
		if (n)
			n->path = strdup(path);
		if (!n || !n->path) {
			free(n);
			n = NULL;
			err = -ENOMEM;
			goto out;
		}
		ops_node_hash(ops, n);
	}
	n->opens++;
out:
	pthread_mutex_unlock(&ops->lock);
	*out = n;
	return err;
}

/*
 * Drop a reference. The last one of a hidden node deletes the hidden file on
 * the VM (outside the lock: nothing can find a hidden node by a visible name).
 */
static void ops_node_put(struct ops *ops, struct ops_node *node)
{
	int last;

	pthread_mutex_lock(&ops->lock);
	last = --node->opens == 0;
	if (last)
		ops_node_unhash(ops, node);
	pthread_mutex_unlock(&ops->lock);
	if (!last)
		return;
	if (node->hidden)
		ops_be_unlink(ops, node->path);
	free(node->path);
	free(node);
}

/* A fresh hidden sibling name of @path. Caller holds ops->lock. */
static char *ops_hidden_name(struct ops *ops, const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t dl = (size_t)(slash - path) + 1;
	char *s = malloc(dl + sizeof(OPS_HIDDEN_PREFIX) + 32);

	if (!s)
		return NULL;
	memcpy(s, path, dl);
	snprintf(s + dl, sizeof(OPS_HIDDEN_PREFIX) + 32, "%s%x_%lu", OPS_HIDDEN_PREFIX,
		 (unsigned int)getpid(), ++ops->hidden_seq);
	return s;
}

/*
 * @path is going away (unlink, or replaced by a rename): if it is open, move
 * it to a hidden sibling, set *hidden to its node and return 1; return 0 when
 * it is not open. Caller holds ops->lock.
 */
static int ops_hide_locked(struct ops *ops, const char *path, struct ops_node **hidden)
{
	struct ops_node *n = ops_node_find(ops, path);
	char *name = NULL;
	int err = 0, tries;

	*hidden = NULL;
	if (!n || n->hidden)
		return 0;
	for (tries = 0; tries < 5; tries++) {
		free(name);
		name = ops_hidden_name(ops, path);
		if (!name)
			return -ENOMEM;
		err = ops_be_rename(ops, path, name, RENAME_NOREPLACE);
		if (err != -EEXIST)
			break;
	}
	if (err) {
		free(name);
		return err;
	}
	ops_node_unhash(ops, n);
	free(n->path);
	n->path = name;
	n->hidden = 1;
	ops_node_hash(ops, n);
	*hidden = n;
	return 1;
}

/* Undo ops_hide_locked() of @n, which was @path (a rename over it failed). */
static void ops_unhide_locked(struct ops *ops, struct ops_node *n, const char *path)
{
	char *name = strdup(path);

	if (!name || ops_be_rename(ops, n->path, path, RENAME_NOREPLACE)) {
		free(name);
		return;
	}
	ops_node_unhash(ops, n);
	free(n->path);
	n->path = name;
	n->hidden = 0;
	ops_node_hash(ops, n);
}

/* After a rename of @from to @to, open files at or under @from follow it. */
static void ops_nodes_renamed_locked(struct ops *ops, const char *from, const char *to)
{
	size_t fl = strlen(from), tl = strlen(to), b;
	struct ops_node *n, *next, *moved = NULL;
	char *s;

	for (b = 0; b < OPS_BUCKETS; b++) {
		for (n = ops->buckets[b]; n; n = next) {
			next = n->next;
			if (n->hidden || strncmp(n->path, from, fl) != 0 ||
			    (n->path[fl] != '\0' && n->path[fl] != '/'))
				continue;
			s = malloc(tl + strlen(n->path + fl) + 1);
			if (!s)
				continue;	/* keeps the old name: only its hiding is lost */
			memcpy(s, to, tl);
			strcpy(s + tl, n->path + fl);
			ops_node_unhash(ops, n);
			free(n->path);
			n->path = s;
			n->next = moved;
			moved = n;
		}
	}
	for (n = moved; n; n = next) {
		next = n->next;
		ops_node_hash(ops, n);
	}
}

/* The path an operation is about: FUSE's, else (unlinked file) the handle's. */
static const char *ops_path(const char *path, struct fuse_file_info *fi, char **copy)
{
	struct ops_file *f;
	struct ops *ops;

	*copy = NULL;
	if (path || !fi)
		return path;
	f = (struct ops_file *)(uintptr_t)fi->fh;
	ops = ops_self();
	pthread_mutex_lock(&ops->lock);
	*copy = strdup(f->node->path);
	pthread_mutex_unlock(&ops->lock);
	return *copy;
}

static struct ops_file *ops_fh(struct fuse_file_info *fi)
{
	return (struct ops_file *)(uintptr_t)fi->fh;
}

/* --- the operations ------------------------------------------------------------ */

static void *ops_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	struct ops *ops = ops_self();

	cfg->hard_remove = 1;	/* we hide unlinked open files ourselves */
	cfg->nullpath_ok = 1;
	cfg->use_ino = 0;
	cfg->entry_timeout = ops->opts->attr_timeout_s;
	cfg->attr_timeout = ops->opts->attr_timeout_s;
	cfg->negative_timeout = 0;
	/* Close-to-open: the page cache is dropped on open (kernel_cache off). */
	cfg->kernel_cache = 0;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	return ops;
}

static int ops_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	if (fi)
		return remote_fstat(ops_fh(fi)->rf, st);
	return ops_be_lstat(ops_self(), path, st);
}

static int ops_access(const char *path, int mask)
{
	struct stat st;
	int err;

	err = ops_be_stat(ops_self(), path, &st);
	if (err)
		return err;
	/*
	 * The VM enforces permissions on every request; this only answers
	 * what it cannot: execute permission on a file without any x bit.
	 */
	if ((mask & X_OK) && S_ISREG(st.st_mode) && !(st.st_mode & 0111))
		return -EACCES;
	return 0;
}

struct ops_readdir {
	void *buf;
	fuse_fill_dir_t filler;
	enum fuse_fill_dir_flags flags;
};

static int ops_readdir_entry(const char *name, const struct stat *st, void *payload)
{
	struct ops_readdir *rd = payload;

	if (ops_is_hidden_name(name))
		return 0;
	/* Offset 0: libfuse keeps the whole listing; non-zero means out of memory. */
	return rd->filler(rd->buf, name, st, 0, rd->flags) ? 1 : 0;
}

static int ops_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
		       struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct ops_readdir rd = {
		.buf = buf,
		.filler = filler,
		.flags = (flags & FUSE_READDIR_PLUS) ? FUSE_FILL_DIR_PLUS : 0,
	};
	int err;

	err = ops_be_readdir(ops_self(), path, ops_readdir_entry, &rd);
	return err > 0 ? 0 : err;	/* >0: the filler failed and recorded why */
}

static int ops_open_common(const char *path, int flags, mode_t mode, struct fuse_file_info *fi)
{
	struct ops *ops = ops_self();
	struct ops_file *f;
	int err;

	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	/* Registered before the VM call, so a racing unlink sees it open. */
	err = ops_node_get(ops, path, &f->node);
	if (err)
		goto out;
	flags &= O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC | O_APPEND;
	err = ops_be_open(ops, path, flags, mode & 07777, &f->rf);
	if (err)
		goto out;
	fi->fh = (uint64_t)(uintptr_t)f;
	fi->keep_cache = 0;
out:
	if (err) {
		if (f->node)
			ops_node_put(ops, f->node);
		free(f);
	}
	return err;
}

static int ops_open(const char *path, struct fuse_file_info *fi)
{
	return ops_open_common(path, fi->flags, 0, fi);
}

static int ops_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	return ops_open_common(path, fi->flags | O_CREAT, mode, fi);
}

static int ops_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	/* At most max_read (1 MiB) bytes: the count fits an int. */
	return (int)remote_pread(ops_fh(fi)->rf, buf, size, off);
}

static int ops_write(const char *path, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	return (int)remote_pwrite(ops_fh(fi)->rf, buf, size, off);
}

/* Writes are on the VM when write() returns: nothing is buffered here. */
static int ops_flush(const char *path, struct fuse_file_info *fi)
{
	return 0;
}

static int ops_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	int err = remote_fsync(ops_fh(fi)->rf);

	/* Without fsync@openssh.com the server has the data; it is all we can do. */
	return err == -ENOTSUP || err == -EOPNOTSUPP ? 0 : err;
}

static int ops_release(const char *path, struct fuse_file_info *fi)
{
	struct ops_file *f = ops_fh(fi);
	struct ops *ops = ops_self();

	remote_close(f->rf);
	ops_node_put(ops, f->node);
	free(f);
	return 0;
}

static int ops_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	if (fi)
		return remote_ftruncate(ops_fh(fi)->rf, size);
	return ops_be_truncate(ops_self(), path, size);
}

static int ops_unlink(const char *path)
{
	struct ops *ops = ops_self();
	struct ops_node *hidden;
	int err;

	pthread_mutex_lock(&ops->lock);
	err = ops_hide_locked(ops, path, &hidden);
	pthread_mutex_unlock(&ops->lock);
	if (err == 0)
		err = ops_be_unlink(ops, path);
	return err < 0 ? err : 0;
}

static int ops_mkdir(const char *path, mode_t mode)
{
	return ops_be_mkdir(ops_self(), path, mode & 07777);
}

static int ops_rmdir(const char *path)
{
	return ops_be_rmdir(ops_self(), path);
}

/*
 * flags 0: replace @to atomically (an open @to is hidden first, so it stays
 * usable); RENAME_NOREPLACE: fail with EEXIST; RENAME_EXCHANGE and anything
 * else: EINVAL, since SFTP has no way to swap two names atomically.
 */
static int ops_rename(const char *from, const char *to, unsigned int flags)
{
	struct ops *ops = ops_self();
	struct ops_node *hidden = NULL;
	int err;

	if (flags & ~(unsigned int)RENAME_NOREPLACE)
		return -EINVAL;
	pthread_mutex_lock(&ops->lock);
	if (!flags) {
		err = ops_hide_locked(ops, to, &hidden);
		if (err < 0)
			goto out;
	}
	err = ops_be_rename(ops, from, to, flags);
	if (err && hidden)
		ops_unhide_locked(ops, hidden, to);
	if (!err)
		ops_nodes_renamed_locked(ops, from, to);
out:
	pthread_mutex_unlock(&ops->lock);
	return err;
}

static int ops_symlink(const char *target, const char *path)
{
	return ops_be_symlink(ops_self(), target, path);
}

static int ops_readlink(const char *path, char *buf, size_t size)
{
	return ops_be_readlink(ops_self(), path, buf, size);
}

static int ops_link(const char *from, const char *to)
{
	return ops_be_link(ops_self(), from, to);
}

static int ops_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	char *copy;
	const char *p = ops_path(path, fi, &copy);
	int err = p ? ops_be_chmod(ops_self(), p, mode & 07777) : -ENOMEM;

	free(copy);
	return err;
}

/* (uid_t)-1 and (gid_t)-1 mean "unchanged"; SFTP sets both, so fill them in. */
static int ops_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	struct ops *ops = ops_self();
	char *copy;
	const char *p = ops_path(path, fi, &copy);
	struct stat st;
	int err = p ? 0 : -ENOMEM;

	if (err)
		goto out;
	if (uid == (uid_t)-1 || gid == (gid_t)-1) {
		err = ops_be_stat(ops, p, &st);
		if (err)
			goto out;
		if (uid == (uid_t)-1)
			uid = st.st_uid;
		if (gid == (gid_t)-1)
			gid = st.st_gid;
	}
	err = ops_be_chown(ops, p, uid, gid);
out:
	free(copy);
	return err;
}

/* Resolve UTIME_NOW and UTIME_OMIT; SFTP v3 sets both times, in seconds. */
static int ops_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	struct ops *ops = ops_self();
	char *copy;
	const char *p = ops_path(path, fi, &copy);
	time_t t[2], now = time(NULL);
	struct stat st;
	int err = p ? 0 : -ENOMEM, i;

	if (err)
		goto out;
	if (tv && tv[0].tv_nsec == UTIME_OMIT && tv[1].tv_nsec == UTIME_OMIT)
		goto out;
	if (tv && (tv[0].tv_nsec == UTIME_OMIT || tv[1].tv_nsec == UTIME_OMIT)) {
		err = fi ? remote_fstat(ops_fh(fi)->rf, &st) : ops_be_stat(ops, p, &st);
		if (err)
			goto out;
	}
	for (i = 0; i < 2; i++) {
		if (!tv || tv[i].tv_nsec == UTIME_NOW)
			t[i] = now;
		else if (tv[i].tv_nsec == UTIME_OMIT)
			t[i] = i == 0 ? st.st_atime : st.st_mtime;
		else
			t[i] = tv[i].tv_sec;
	}
	err = ops_be_utimes(ops, p, t[0], t[1]);
out:
	free(copy);
	return err;
}

static int ops_statfs(const char *path, struct statvfs *sv)
{
	return ops_be_statvfs(ops_self(), "/", sv);
}

static const struct fuse_operations ops_operations = {
	.init = ops_init,
	.getattr = ops_getattr,
	.access = ops_access,
	.readdir = ops_readdir,
	.open = ops_open,
	.create = ops_create,
	.read = ops_read,
	.write = ops_write,
	.flush = ops_flush,
	.fsync = ops_fsync,
	.release = ops_release,
	.truncate = ops_truncate,
	.unlink = ops_unlink,
	.mkdir = ops_mkdir,
	.rmdir = ops_rmdir,
	.rename = ops_rename,
	.symlink = ops_symlink,
	.readlink = ops_readlink,
	.link = ops_link,
	.chmod = ops_chmod,
	.chown = ops_chown,
	.utimens = ops_utimens,
	.statfs = ops_statfs,
};

const struct fuse_operations *ops_table(void)
{
	return &ops_operations;
}

int ops_new(struct ops **out, struct remote *r, const struct options *o)
{
	struct ops *ops;
	size_t n;
	int err = -ENOMEM;

	*out = NULL;
	ops = calloc(1, sizeof(*ops));
	if (!ops)
		goto out;
	ops->remote = r;
	ops->opts = o;
	/* "" -> "." (login dir); "/" -> "" (paths start with '/'); "a/b/" -> "a/b". */
	ops->root = strdup(o->dir && *o->dir ? o->dir : ".");
	if (!ops->root)
		goto out;
	n = strlen(ops->root);
	while (n > 0 && ops->root[n - 1] == '/')
		ops->root[--n] = '\0';
	pthread_mutex_init(&ops->lock, NULL);
	*out = ops;
	ops = NULL;
	err = 0;
out:
	if (ops)
		free(ops->root);
	free(ops);
	return err;
}

void ops_free(struct ops *ops)
{
	struct ops_node *n, *next;
	size_t b;

	if (!ops)
		return;
	for (b = 0; b < OPS_BUCKETS; b++) {
		for (n = ops->buckets[b]; n; n = next) {
			next = n->next;
			free(n->path);
			free(n);
		}
	}
	pthread_mutex_destroy(&ops->lock);
	free(ops->root);
	free(ops);
}
