/*
 * scripts/fuse-floor.c: a libfuse passthrough of a local directory that does
 * nothing else, for scripts/bench: what any FUSE filesystem costs on this
 * machine. Its rows are the floor under wakefs's local-layer rows (untar,
 * write(), git status warm): the same work on the same disk, through the
 * same kernel round trips and the same libfuse API (high-level, one thread
 * per request), with the same cache lifetimes, and nothing of wakefs's own.
 *
 *   fuse-floor [-f] [-o OPTIONS] DIR MOUNTPOINT
 */
#define FUSE_USE_VERSION 312

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fuse.h>

static char floor_root[PATH_MAX];

/* The backing path of @path into @buf; -ENAMETOOLONG. */
static int floor_path(const char *path, char *buf)
{
	return snprintf(buf, PATH_MAX, "%s%s", floor_root, path) < PATH_MAX ? 0 : -ENAMETOOLONG;
}

#define FLOOR_PATH(buf, path)                    \
	char buf[PATH_MAX];                      \
	do {                                     \
		int e_ = floor_path(path, buf); \
		if (e_)                          \
			return e_;               \
	} while (0)

static int floor_ret(int r)
{
	return r < 0 ? -errno : 0;
}

static int floor_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	if (fi)
		return floor_ret(fstat((int)fi->fh, st));
	FLOOR_PATH(p, path);
	return floor_ret(lstat(p, st));
}

static int floor_open_common(const char *path, int flags, mode_t mode, struct fuse_file_info *fi)
{
	FLOOR_PATH(p, path);
	int fd = open(p, flags, mode);

	if (fd < 0)
		return -errno;
	fi->fh = (uint64_t)fd;
	return 0;
}

static int floor_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	return floor_open_common(path, fi->flags | O_CREAT, mode, fi);
}

static int floor_open(const char *path, struct fuse_file_info *fi)
{
	return floor_open_common(path, fi->flags, 0, fi);
}

/* Reads splice the backing file's pages to the kernel, as wakefs's do. */
static int floor_read_buf(const char *path, struct fuse_bufvec **bufp, size_t size, off_t off,
			  struct fuse_file_info *fi)
{
	struct fuse_bufvec *bv = malloc(sizeof(*bv));

	(void)path;
	if (!bv)
		return -ENOMEM;
	*bv = (struct fuse_bufvec)FUSE_BUFVEC_INIT(size);
	bv->buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	bv->buf[0].fd = (int)fi->fh;
	bv->buf[0].pos = off;
	*bufp = bv;
	return 0;
}

static int floor_write(const char *path, const char *buf, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	ssize_t n = pwrite((int)fi->fh, buf, size, off);

	(void)path;
	return n < 0 ? -errno : (int)n;
}

static int floor_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	close((int)fi->fh);
	return 0;
}

static int floor_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	return floor_ret(datasync ? fdatasync((int)fi->fh) : fsync((int)fi->fh));
}

static int floor_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	if (fi)
		return floor_ret(ftruncate((int)fi->fh, size));
	FLOOR_PATH(p, path);
	return floor_ret(truncate(p, size));
}

static int floor_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	if (fi)
		return floor_ret(fchmod((int)fi->fh, mode));
	FLOOR_PATH(p, path);
	return floor_ret(chmod(p, mode));
}

static int floor_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	if (fi)
		return floor_ret(fchown((int)fi->fh, uid, gid));
	FLOOR_PATH(p, path);
	return floor_ret(lchown(p, uid, gid));
}

static int floor_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	if (fi)
		return floor_ret(futimens((int)fi->fh, tv));
	FLOOR_PATH(p, path);
	return floor_ret(utimensat(AT_FDCWD, p, tv, AT_SYMLINK_NOFOLLOW));
}

static int floor_mkdir(const char *path, mode_t mode)
{
	FLOOR_PATH(p, path);
	return floor_ret(mkdir(p, mode));
}

static int floor_unlink(const char *path)
{
	FLOOR_PATH(p, path);
	return floor_ret(unlink(p));
}

static int floor_rmdir(const char *path)
{
	FLOOR_PATH(p, path);
	return floor_ret(rmdir(p));
}

static int floor_symlink(const char *target, const char *path)
{
	FLOOR_PATH(p, path);
	return floor_ret(symlink(target, p));
}

static int floor_readlink(const char *path, char *buf, size_t len)
{
	FLOOR_PATH(p, path);
	ssize_t n = readlink(p, buf, len - 1);

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

static int floor_rename(const char *from, const char *to, unsigned int flags)
{
	FLOOR_PATH(f, from);
	FLOOR_PATH(t, to);
	if (flags)
		return -EINVAL;
	return floor_ret(rename(f, t));
}

static int floor_link(const char *from, const char *to)
{
	FLOOR_PATH(f, from);
	FLOOR_PATH(t, to);
	return floor_ret(link(f, t));
}

static int floor_statfs(const char *path, struct statvfs *sv)
{
	(void)path;
	return floor_ret(statvfs(floor_root, sv));
}

/* Listings with attributes, as wakefs answers them (readdirplus). */
static int floor_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
			 struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	FLOOR_PATH(p, path);
	DIR *d = opendir(p);
	struct dirent *de;

	(void)off;
	(void)fi;
	(void)flags;
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		struct stat st;

		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (fill(buf, de->d_name, &st, 0, FUSE_FILL_DIR_PLUS))
			break;
	}
	closedir(d);
	return 0;
}

static void *floor_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	cfg->use_ino = 1;
	cfg->entry_timeout = 1.0;	/* wakefs's default cache lifetimes */
	cfg->attr_timeout = 1.0;
	cfg->negative_timeout = 0;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	conn->want |= conn->capable & (FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
	return NULL;
}

static const struct fuse_operations floor_ops = {
	.init = floor_init,
	.getattr = floor_getattr,
	.readlink = floor_readlink,
	.mkdir = floor_mkdir,
	.unlink = floor_unlink,
	.rmdir = floor_rmdir,
	.symlink = floor_symlink,
	.rename = floor_rename,
	.link = floor_link,
	.chmod = floor_chmod,
	.chown = floor_chown,
	.truncate = floor_truncate,
	.open = floor_open,
	.read_buf = floor_read_buf,
	.write = floor_write,
	.statfs = floor_statfs,
	.release = floor_release,
	.fsync = floor_fsync,
	.readdir = floor_readdir,
	.create = floor_create,
	.utimens = floor_utimens,
};

int main(int argc, char **argv)
{
	int i;

	/* The first argument that is not an option (or an option's value) is DIR. */
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-o")) {
			i++;
			continue;
		}
		if (argv[i][0] != '-')
			break;
	}
	if (i >= argc - 1) {
		fprintf(stderr, "usage: fuse-floor [-f] [-o OPTIONS] DIR MOUNTPOINT\n");
		return 2;
	}
	if (!realpath(argv[i], floor_root)) {
		fprintf(stderr, "fuse-floor: cannot use '%s' as the directory to pass through: %s\n",
			argv[i], strerror(errno));
		return 1;
	}
	memmove(argv + i, argv + i + 1, (size_t)(argc - i) * sizeof(*argv));	/* keeps the NULL */
	return fuse_main(argc - 1, argv, &floor_ops, NULL);
}
