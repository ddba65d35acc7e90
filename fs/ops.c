/*
 * fs/ops.c: the fuse_operations table of a wakefs mount.
 *
 * We use libfuse's HIGH-level, path-based API: the VM side is path-based SFTP
 * and the local layer that slots in under this file is path-based too, so an
 * inode table of our own (the low-level API) would only translate inodes back
 * into the paths both sides want. libfuse keeps the inode <-> path map.
 *
 * This is the -o writethrough mount: every change is on the VM when the call
 * returns (the default mount, with the local layer, is fs/lops.c). The table
 * is thin: each operation resolves what FUSE leaves to the filesystem
 * (UTIME_NOW/UTIME_OMIT, chown's -1, rename flags, the handle of an open
 * file) and delegates to the "backend" helpers (ops_be_*), the only calls to
 * the VM by path in this file, which also map mount paths to VM paths.
 *
 * Unlinked-but-open files (hide-on-unlink): libfuse renames a path that is
 * unlinked, or replaced by a rename, while open to a hidden sibling
 * ".fuse_hidden<n>" and unlinks that when the last handle is released; its
 * node keeps that name, so every operation on the open file (read, write,
 * fstat, ftruncate, fchmod, futimens) still has a path. On the VM that name
 * is spelled OPS_HIDDEN_PREFIX<n> (ops_vm_path() translates the last
 * component), and readdir never shows such names. Whatever the server does
 * with open deleted files, the file stays usable until closed.
 */
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dirlist.h"
#include "options.h"
#include "remote.h"

struct ops {
	struct remote *remote;		/* borrowed */
	const struct options *opts;	/* borrowed */
	char *root;			/* the VM directory, no trailing '/'; "." = login dir */
};

static struct ops *ops_self(void)
{
	return fuse_get_context()->private_data;
}

/* --- paths ----------------------------------------------------------------- */

#define OPS_FUSE_HIDDEN ".fuse_hidden"

/*
 * The VM path of mount path @path ("/" or "/a/b") into *out (caller frees),
 * with libfuse's hidden name spelled ours. Returns 0, -ENAMETOOLONG for a
 * last component longer than NAME_MAX (SFTP servers report it as a generic
 * failure), or -ENOMEM.
 */
static int ops_vm_path(const struct ops *ops, const char *path, char **out)
{
	const size_t fl = sizeof(OPS_FUSE_HIDDEN) - 1, hl = sizeof(OPS_HIDDEN_PREFIX) - 1;
	size_t rl = strlen(ops->root), pl = strlen(path), dl;
	const char *base;
	char *s;

	*out = NULL;
	if (strcmp(path, "/") == 0) {
		*out = strdup(rl ? ops->root : "/");
		return *out ? 0 : -ENOMEM;
	}
	base = strrchr(path, '/') + 1;
	if (strlen(base) > NAME_MAX)
		return -ENAMETOOLONG;
	dl = (size_t)(base - path);
	s = malloc(rl + pl + hl + 1);
	if (!s)
		return -ENOMEM;
	memcpy(s, ops->root, rl);
	if (strncmp(base, OPS_FUSE_HIDDEN, fl) == 0) {
		memcpy(s + rl, path, dl);
		memcpy(s + rl + dl, OPS_HIDDEN_PREFIX, hl);
		strcpy(s + rl + dl + hl, base + fl);
	} else {
		memcpy(s + rl, path, pl + 1);
	}
	*out = s;
	return 0;
}

static int ops_is_hidden_name(const char *name)
{
	return strncmp(name, OPS_HIDDEN_PREFIX, sizeof(OPS_HIDDEN_PREFIX) - 1) == 0;
}

/* --- the backend: every call to the VM goes through these ------------------ */

#define OPS_BE_PATH(ops, path, vp)			\
	char *vp;					\
	int vp##_err = ops_vm_path(ops, path, &vp);	\
	if (vp##_err)					\
		return vp##_err

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
	char *vf = NULL, *vt = NULL;
	int err;

	err = ops_vm_path(ops, from, &vf);
	if (!err)
		err = ops_vm_path(ops, to, &vt);
	if (!err)
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
	char *vf = NULL, *vt = NULL;
	int err;

	err = ops_vm_path(ops, from, &vf);
	if (!err)
		err = ops_vm_path(ops, to, &vt);
	if (!err)
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

/* --- the operations ------------------------------------------------------------ */

static struct remote_file *ops_fh(struct fuse_file_info *fi)
{
	return (struct remote_file *)(uintptr_t)fi->fh;
}

static void *ops_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	struct ops *ops = ops_self();

	cfg->hard_remove = 0;	/* hide unlinked open files (see the top) */
	cfg->nullpath_ok = 0;
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
		return remote_fstat(ops_fh(fi), st);
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

/* An open directory: its listing (fs/dirlist.h), taken at offset 0 from the VM. */
struct ops_list {
	const char *path;
	struct dirlist *d;
	enum fuse_fill_dir_flags fill;
};

static int ops_dir_add(const char *name, const struct stat *st, void *payload)
{
	struct ops_list *ol = payload;

	return ops_is_hidden_name(name) ? 0 : dirlist_add(ol->d, name, st, ol->fill);
}

static int ops_dir_list(struct dirlist *d, void *payload)
{
	struct ops_list *ol = payload;

	ol->d = d;
	return ops_be_readdir(ops_self(), ol->path, ops_dir_add, ol);
}

static int ops_opendir(const char *path, struct fuse_file_info *fi)
{
	struct dirlist *d = dirlist_new(NULL);

	if (!d)
		return -ENOMEM;
	fi->fh = (uint64_t)(uintptr_t)d;
	return 0;
}

static int ops_releasedir(const char *path, struct fuse_file_info *fi)
{
	dirlist_free((struct dirlist *)(uintptr_t)fi->fh);
	return 0;
}

static int ops_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
		       struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct ops_list ol = {
		.path = path,
		.fill = (flags & FUSE_READDIR_PLUS) ? FUSE_FILL_DIR_PLUS : 0,
	};

	if (!path)
		return -ENOENT;	/* removed while open: nothing to list */
	return dirlist_readdir((struct dirlist *)(uintptr_t)fi->fh, off, buf, filler,
			       ops_dir_list, &ol);
}

static int ops_open_common(const char *path, int flags, mode_t mode, struct fuse_file_info *fi)
{
	struct remote_file *rf;
	int err;

	flags &= O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC | O_APPEND;
	err = ops_be_open(ops_self(), path, flags, mode & 07777, &rf);
	if (err)
		return err;
	fi->fh = (uint64_t)(uintptr_t)rf;
	fi->keep_cache = 0;
	return 0;
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
	return (int)remote_pread(ops_fh(fi), buf, size, off);
}

static int ops_write(const char *path, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	return (int)remote_pwrite(ops_fh(fi), buf, size, off);
}

/*
 * close(2): writes are sent behind write() (remote_pwrite), so one the VM
 * refused after write() returned is reported here, as NFS and sshfs do.
 */
static int ops_flush(const char *path, struct fuse_file_info *fi)
{
	return remote_flush(ops_fh(fi));
}

static int ops_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	int err = remote_fsync(ops_fh(fi));

	/* Without fsync@openssh.com the server has the data; it is all we can do. */
	return err == -ENOTSUP || err == -EOPNOTSUPP ? 0 : err;
}

static int ops_release(const char *path, struct fuse_file_info *fi)
{
	remote_close(ops_fh(fi));
	return 0;
}

static int ops_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	if (fi)
		return remote_ftruncate(ops_fh(fi), size);
	return ops_be_truncate(ops_self(), path, size);
}

static int ops_unlink(const char *path)
{
	return ops_be_unlink(ops_self(), path);
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
 * flags 0: replace @to atomically (libfuse has hidden an open @to first, so
 * it stays usable); RENAME_NOREPLACE: fail with EEXIST; RENAME_EXCHANGE and
 * anything else: EINVAL, since SFTP cannot swap two names atomically.
 */
static int ops_rename(const char *from, const char *to, unsigned int flags)
{
	if (flags & ~(unsigned int)RENAME_NOREPLACE)
		return -EINVAL;
	return ops_be_rename(ops_self(), from, to, flags);
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
	return ops_be_chmod(ops_self(), path, mode & 07777);
}

/* (uid_t)-1 and (gid_t)-1 mean "unchanged"; SFTP sets both, so fill them in. */
static int ops_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	struct ops *ops = ops_self();
	struct stat st;
	int err = 0;

	if (uid == (uid_t)-1 || gid == (gid_t)-1) {
		err = ops_be_stat(ops, path, &st);
		if (err)
			goto out;
		if (uid == (uid_t)-1)
			uid = st.st_uid;
		if (gid == (gid_t)-1)
			gid = st.st_gid;
	}
	err = ops_be_chown(ops, path, uid, gid);
out:
	return err;
}

/* Resolve UTIME_NOW and UTIME_OMIT; SFTP v3 sets both times, in seconds. */
static int ops_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	struct ops *ops = ops_self();
	time_t t[2], now = time(NULL);
	struct stat st;
	int err = 0, i;

	if (tv && tv[0].tv_nsec == UTIME_OMIT && tv[1].tv_nsec == UTIME_OMIT)
		goto out;
	if (tv && (tv[0].tv_nsec == UTIME_OMIT || tv[1].tv_nsec == UTIME_OMIT)) {
		err = fi ? remote_fstat(ops_fh(fi), &st) : ops_be_stat(ops, path, &st);
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
	err = ops_be_utimes(ops, path, t[0], t[1]);
out:
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
	.opendir = ops_opendir,
	.readdir = ops_readdir,
	.releasedir = ops_releasedir,
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
	if (!ops)
		return;
	free(ops->root);
	free(ops);
}
