/*
 * fs/bootstrap.c: the VM's ".git" copied into a fresh local layer (see
 * bootstrap.h). One bulk transfer rather than a walk over SFTP: a repository
 * is thousands of small files, and one round trip per file over a long link
 * takes minutes where a streamed archive takes the time of its bytes.
 */
#include "bootstrap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <git2.h>

#include "journal.h"
#include "layer.h"
#include "remote.h"

/* How long the VM may take to archive its .git (a huge one on a slow disk). */
#define BOOT_EXEC_TIMEOUT_MS (60 * 60 * 1000)
/* At most this much of the archiving command's output is kept (tar's complaints). */
#define BOOT_EXEC_MAX 16384
/* The line the archiving command ends with, followed by the archive's path on the VM. */
#define BOOT_MARK "wakefs-archive:"
/* Temporary directories in <layer>/.wakefs/tmp/ start with this. */
#define BOOT_PREFIX "git-boot."

extern char **environ;

/* @s single-quoted for sh; the caller frees. */
static char *boot_shquote(const char *s)
{
	size_t n = 3;
	char *q, *o;

	for (const char *p = s; *p; p++)
		n += *p == '\'' ? 4 : 1;
	q = malloc(n);
	if (!q)
		return NULL;
	o = q;
	*o++ = '\'';
	for (const char *p = s; *p; p++) {
		if (*p == '\'') {
			memcpy(o, "'\\''", 4);
			o += 4;
		} else {
			*o++ = *p;
		}
	}
	*o++ = '\'';
	*o = '\0';
	return q;
}

static int boot_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

/* rm -rf @path (best effort; symlinks are removed, not followed). */
static void boot_rmtree(const char *path)
{
	nftw(path, boot_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Remove what a crashed bootstrap left in @tmpdir. */
static void boot_clean(const char *tmpdir)
{
	char path[PATH_MAX];
	DIR *d;
	struct dirent *de;

	d = opendir(tmpdir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, BOOT_PREFIX, strlen(BOOT_PREFIX)) != 0)
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", tmpdir, de->d_name) < (int)sizeof(path))
			boot_rmtree(path);
	}
	closedir(d);
}

static double boot_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void boot_size(uint64_t n, char *buf, size_t len)
{
	if (n >= 1024 * 1024)
		snprintf(buf, len, "%.1f MiB", (double)n / (1024.0 * 1024.0));
	else
		snprintf(buf, len, "%.1f KiB", (double)n / 1024.0);
}

/*
 * Archive @vmdir/.git into a temporary file on the VM; its path goes into
 * @path. Returns 0 or -errno after a message.
 */
static int boot_archive(struct remote *r, const char *vmdir, const char *source, char *path,
			size_t len)
{
	char *q = boot_shquote(vmdir), *cmd = NULL, *out = NULL, *mark, *end;
	size_t outlen = 0, n;
	int err = -ENOMEM, status = 0;

	if (!q)
		goto out;
	n = strlen(q) + 512;
	cmd = malloc(n);
	if (!cmd)
		goto out;
	snprintf(cmd, n,
		 "cd %s || exit 2; t=$(mktemp \"${TMPDIR:-/tmp}/wakefs-git.XXXXXX\") || exit 3; "
		 "if tar -cf \"$t\" .git 2>&1; then echo \"" BOOT_MARK "$t\"; "
		 "else rm -f \"$t\"; exit 4; fi", q);
	err = remote_exec(r, cmd, BOOT_EXEC_MAX, BOOT_EXEC_TIMEOUT_MS, &out, &outlen, &status);
	if (err) {
		fprintf(stderr, "wakefs: cannot archive the VM's .git of '%s' (%s); copying it "
			"file by file over SFTP instead (slower)\n", source, strerror(-err));
		goto out;
	}
	mark = out ? strstr(out, BOOT_MARK) : NULL;
	if (status != 0 || !mark) {
		while (outlen && (out[outlen - 1] == '\n' || out[outlen - 1] == '\r'))
			out[--outlen] = '\0';
		fprintf(stderr, "wakefs: cannot archive the VM's .git of '%s' with tar (exit "
			"status %d%s%s); copying it file by file over SFTP instead (slower)\n",
			source, status, outlen ? ": " : "", outlen ? out : "");
		err = -EIO;
		goto out;
	}
	mark += strlen(BOOT_MARK);
	end = mark + strcspn(mark, "\r\n");
	*end = '\0';
	if ((size_t)snprintf(path, len, "%s", mark) >= len) {
		err = -ENAMETOOLONG;
		fprintf(stderr, "wakefs: the VM's temporary file name is too long: '%s'\n", mark);
		remote_unlink(r, mark);
		goto out;
	}
	err = 0;
out:
	free(q);
	free(cmd);
	free(out);
	return err;
}

/* tar -xf @archive in @dir, locally. Returns 0 or -errno. */
static int boot_extract(const char *archive, const char *dir)
{
	char *argv[] = { "tar", "--no-same-owner", "-xf", (char *)archive, "-C", (char *)dir, NULL };
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int rc, status;

	if (posix_spawn_file_actions_init(&fa))
		return -ENOMEM;
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	rc = posix_spawnp(&pid, "tar", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc)
		return -rc;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

/* Everything written under @path reaches the disk (its filesystem's writes). */
static int boot_sync(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (syncfs(fd) < 0)
		err = -errno;
	close(fd);
	return err;
}

/* Stream the VM's archive @vmpath into @work/git.tar and unpack it into @work/x. */
static int boot_fetch(struct remote *r, const char *vmpath, const char *work, const char *source,
		      uint64_t *bytes)
{
	char tarpath[PATH_MAX], x[PATH_MAX];
	struct stat st;
	int fd, err;

	snprintf(tarpath, sizeof(tarpath), "%s/git.tar", work);
	snprintf(x, sizeof(x), "%s/x", work);
	fd = open(tarpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = -errno;
		fprintf(stderr, "wakefs: cannot create '%s' in the local layer: %s\n", tarpath,
			strerror(-err));
		return err;
	}
	err = remote_download(r, vmpath, fd, &st);
	close(fd);
	if (err) {
		fprintf(stderr, "wakefs: cannot download the VM's .git of '%s': %s; retry the "
			"mount\n", source, strerror(-err));
		return err;
	}
	*bytes = (uint64_t)st.st_size;
	if (mkdir(x, 0700) < 0) {
		err = -errno;
		fprintf(stderr, "wakefs: cannot create '%s': %s\n", x, strerror(-err));
		return err;
	}
	err = boot_extract(tarpath, x);
	if (err) {
		fprintf(stderr, "wakefs: cannot unpack the VM's .git of '%s' into the local layer "
			"(tar -xf failed: %s); check the local disk's free space\n", source,
			strerror(-err));
		return err;
	}
	unlink(tarpath);
	return 0;
}

/* One directory's entries, listed before any is copied (no request nests in a listing). */
struct boot_list {
	char **names;
	struct stat *sts;
	size_t n, cap;
};

static int boot_list_cb(const char *name, const struct stat *st, void *payload)
{
	struct boot_list *bl = payload;

	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	if (bl->n == bl->cap) {
		size_t cap = bl->cap ? bl->cap * 2 : 64;
		char **names = realloc(bl->names, cap * sizeof(*names));
		struct stat *sts;

		if (!names)
			return -ENOMEM;
		bl->names = names;
		sts = realloc(bl->sts, cap * sizeof(*sts));
		if (!sts)
			return -ENOMEM;
		bl->sts = sts;
		bl->cap = cap;
	}
	bl->names[bl->n] = strdup(name);
	if (!bl->names[bl->n])
		return -ENOMEM;
	bl->sts[bl->n++] = *st;
	return 0;
}

/*
 * Copy the VM's directory @vm into the existing local directory @local, file
 * by file over SFTP (when the VM cannot make an archive). *bytes grows by the
 * size of each file copied. Returns 0 or -errno.
 */
static int boot_walk(struct remote *r, const char *vm, const char *local, uint64_t *bytes)
{
	struct boot_list bl = { 0 };
	char vc[PATH_MAX], lc[PATH_MAX], target[PATH_MAX];
	struct stat st;
	int err, fd;

	err = remote_readdir(r, vm, boot_list_cb, &bl);
	for (size_t i = 0; !err && i < bl.n; i++) {
		mode_t mode = bl.sts[i].st_mode;

		if ((size_t)snprintf(vc, sizeof(vc), "%s/%s", vm, bl.names[i]) >= sizeof(vc) ||
		    (size_t)snprintf(lc, sizeof(lc), "%s/%s", local, bl.names[i]) >= sizeof(lc)) {
			err = -ENAMETOOLONG;
		} else if (S_ISDIR(mode)) {
			if (mkdir(lc, (mode & 07777) | 0700) < 0)
				err = -errno;
			else
				err = boot_walk(r, vc, lc, bytes);
		} else if (S_ISREG(mode)) {
			fd = open(lc, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
			if (fd < 0) {
				err = -errno;
				continue;
			}
			err = remote_download(r, vc, fd, &st);
			if (!err && fchmod(fd, mode & 07777) < 0)
				err = -errno;
			close(fd);
			if (!err)
				*bytes += (uint64_t)st.st_size;
		} else if (S_ISLNK(mode)) {
			err = remote_readlink(r, vc, target, sizeof(target));
			if (!err && symlink(target, lc) < 0)
				err = -errno;
		}	/* sockets, fifos: nothing git needs */
	}
	for (size_t i = 0; i < bl.n; i++)
		free(bl.names[i]);
	free(bl.names);
	free(bl.sts);
	return err;
}

int bootstrap_git(struct remote *r, const char *remote_dir, const char *layer_dir,
		  const char *source)
{
	const char *vmdir = remote_dir && *remote_dir ? remote_dir : ".";
	char local[PATH_MAX], tmpdir[PATH_MAX - 64], work[PATH_MAX - 32], got[PATH_MAX];
	char vmpath[PATH_MAX];
	char vmgit[PATH_MAX], size[32];
	struct stat st;
	uint64_t bytes = 0;
	double t0;
	int err, moved = 0;

	if ((size_t)snprintf(local, sizeof(local), "%s/.git", layer_dir) >= sizeof(local) ||
	    (size_t)snprintf(tmpdir, sizeof(tmpdir), "%s/.wakefs/tmp", layer_dir) >= sizeof(tmpdir) ||
	    (size_t)snprintf(vmgit, sizeof(vmgit), "%s/.git", vmdir) >= sizeof(vmgit))
		return -ENAMETOOLONG;
	boot_clean(tmpdir);
	if (lstat(local, &st) == 0)
		return 0;	/* the layer's own repository: never replaced */
	if (errno != ENOENT) {
		err = -errno;
		fprintf(stderr, "wakefs: cannot look at '%s': %s\n", local, strerror(-err));
		return err;
	}
	err = remote_lstat(r, vmgit, &st);
	if (err == -ENOENT)
		return 0;
	if (err) {
		fprintf(stderr, "wakefs: cannot look at the VM's .git of '%s': %s\n", source,
			strerror(-err));
		return err;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "wakefs: note: the VM's .git of '%s' is not a directory (a git "
			"worktree or submodule whose repository is elsewhere?): it is not copied "
			"to the local layer, so git in the mount will not find a repository and "
			"the flush policy sees none; mount the repository's own directory for "
			"that\n", source);
		return 0;
	}

	t0 = boot_now();
	if ((size_t)snprintf(work, sizeof(work), "%s/" BOOT_PREFIX "XXXXXX", tmpdir) >= sizeof(work))
		err = -ENAMETOOLONG;
	else if (!mkdtemp(work))
		err = -errno;
	if (err) {
		fprintf(stderr, "wakefs: cannot create a temporary directory in '%s': %s\n",
			tmpdir, strerror(-err));
		return err;
	}
	snprintf(got, sizeof(got), "%s/x/.git", work);
	/* Test hook: the copy file by file, as for a VM without a shell or tar. */
	if (getenv("WAKEFS_TEST_BOOTSTRAP_SFTP"))
		err = -ENOTSUP;
	else
		err = boot_archive(r, vmdir, source, vmpath, sizeof(vmpath));
	if (!err) {
		if (remote_stat(r, vmpath, &st) == 0)
			boot_size((uint64_t)st.st_size, size, sizeof(size));
		else
			snprintf(size, sizeof(size), "size unknown");
		fprintf(stderr, "wakefs: copying the VM's .git of '%s' (%s) into the local layer, "
			"once...\n", source, size);
		err = boot_fetch(r, vmpath, work, source, &bytes);
		remote_unlink(r, vmpath);
	} else {
		fprintf(stderr, "wakefs: copying the VM's .git of '%s' file by file into the local "
			"layer, once...\n", source);
		snprintf(vmpath, sizeof(vmpath), "%s/x", work);
		if (mkdir(vmpath, 0700) < 0 || mkdir(got, 0700) < 0)
			err = -errno;
		else
			err = boot_walk(r, vmgit, got, &bytes);
		if (err)
			fprintf(stderr, "wakefs: cannot copy the VM's .git of '%s' over SFTP: %s; "
				"retry the mount, or mount with -o writethrough (no local layer)\n",
				source, strerror(-err));
	}
	if (!err && (lstat(got, &st) < 0 || !S_ISDIR(st.st_mode))) {
		fprintf(stderr, "wakefs: the VM's copy of '%s' held no .git directory\n", source);
		err = -EIO;
	}
	if (!err && (err = boot_sync(got)))
		fprintf(stderr, "wakefs: cannot sync the copied .git to disk: %s\n", strerror(-err));
	if (!err && rename(got, local) < 0) {
		err = -errno;
		if (err == -EEXIST || err == -ENOTEMPTY)
			err = 0;	/* one appeared meanwhile: it stays, ours goes */
		else
			fprintf(stderr, "wakefs: cannot move the copied .git to '%s': %s\n", local,
				strerror(-err));
	} else if (!err) {
		moved = 1;
	}
	if (!err)
		err = journal_fsync_dir(layer_dir);
	boot_rmtree(work);
	if (!err) {
		boot_size(bytes, size, sizeof(size));
		fprintf(stderr, "wakefs: the VM's .git (%s) is in the local layer (%.1f s); from "
			"now on the mount's .git is the laptop's and never goes to the VM\n", size,
			boot_now() - t0);
	}
	return err ? err : moved;
}

/* Does index entry mode @m (regular, executable, symlink) name the type of @st? */
static int boot_same_type(uint32_t m, const struct stat *st)
{
	return (m & 0170000) == 0100000 ? S_ISREG(st->st_mode)
	       : (m & 0170000) == 0120000 ? S_ISLNK(st->st_mode) : 0;
}

int bootstrap_restat(struct layer *l, const char *layer_dir)
{
	char index[PATH_MAX], path[PATH_MAX];
	struct stat ist, now, st;
	git_index *idx = NULL;
	size_t i, n, done = 0;
	int err = 0;

	if ((size_t)snprintf(index, sizeof(index), "%s/.git/index", layer_dir) >= sizeof(index))
		return -ENAMETOOLONG;
	if (stat(index, &ist) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (git_libgit2_init() < 0)
		return -ENOMEM;
	if (git_index_open(&idx, index) < 0) {
		err = -EIO;
		goto out;
	}
	n = git_index_entrycount(idx);
	for (i = 0; i < n; i++) {
		const git_index_entry *e = git_index_get_byindex(idx, i);
		git_index_entry ne;

		if (!e || GIT_INDEX_ENTRY_STAGE(e) != 0 ||
		    (size_t)snprintf(path, sizeof(path), "/%s", e->path) >= sizeof(path) ||
		    layer_attr_get(l, path, &st) != 0 || !boot_same_type(e->mode, &st))
			continue;
		/*
		 * Only what git on the VM would also call unchanged by its stat
		 * data, and not "racily clean" (changed in the index's second):
		 * git checks the content of those itself.
		 */
		if (e->file_size != (uint32_t)st.st_size || (int64_t)e->mtime.seconds != st.st_mtime ||
		    (int64_t)e->mtime.seconds >= ist.st_mtime)
			continue;
		ne = *e;
		ne.mtime.nanoseconds = 0;
		ne.ctime.seconds = (int32_t)st.st_mtime;	/* the mount's ctime is the mtime */
		ne.ctime.nanoseconds = 0;
		ne.ino = (uint32_t)layer_ino(l, path);
		ne.uid = st.st_uid;
		ne.gid = st.st_gid;
		if (ne.ino == e->ino && ne.ctime.seconds == e->ctime.seconds &&
		    !e->ctime.nanoseconds && !e->mtime.nanoseconds && ne.uid == e->uid &&
		    ne.gid == e->gid)
			continue;
		if (git_index_add(idx, &ne) < 0) {
			err = -EIO;
			goto out;
		}
		done++;
	}
	/* Written only if git has not changed the index meanwhile. */
	if (done && stat(index, &now) == 0 && now.st_ino == ist.st_ino &&
	    now.st_size == ist.st_size && now.st_mtim.tv_sec == ist.st_mtim.tv_sec &&
	    now.st_mtim.tv_nsec == ist.st_mtim.tv_nsec && git_index_write(idx) < 0)
		err = -EIO;
out:
	if (err)
		fprintf(stderr, "wakefs: note: could not give the index of '%s' the mount's stat "
			"data (%s): the first git status reads every file once\n", layer_dir,
			git_error_last() ? git_error_last()->message : strerror(-err));
	git_index_free(idx);
	git_libgit2_shutdown();
	return err;
}
