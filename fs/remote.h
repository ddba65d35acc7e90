/*
 * fs/remote.h: the VM's files in filesystem terms.
 *
 * A struct remote is one SSH connection carrying one SFTP v3 session (our own
 * engine, fs/sftp.c, over a libssh2 channel, fs/ssh.c). One I/O thread owns
 * the libssh2 session; every function here may be called from any thread at
 * once: it queues requests to the I/O thread and waits for their replies, so
 * many requests are in flight together.
 *
 * Every function returns 0 (or a byte count) on success and a negative errno
 * on failure; SFTP status codes are translated to errno in one table in
 * remote.c. When the transport is lost, the I/O thread reconnects with backoff
 * and reissues idempotent requests; a caller waits at most
 * remote_opts.request_timeout_ms and then gets -EIO. A struct remote_file
 * outlives a reconnect: its next use opens the file again by path (a read the
 * reconnect cut is retried once; writes that were in flight fail with -EIO,
 * reported by the handle's next call). Nothing here ever exits or aborts on a
 * bad reply from the server.
 *
 * Paths are absolute paths on the VM (the mount root already prepended by the
 * caller), or relative to the login directory.
 */
#ifndef WAKEFS_REMOTE_H
#define WAKEFS_REMOTE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>

struct remote;
struct remote_file;

struct remote_opts {
	const char *host;		/* host name, address, or ssh_config Host alias */
	const char *user;		/* NULL: ssh_config's User, else the local user */
	int port;			/* 0: ssh_config's Port, else 22 */
	const char *identity;		/* key file; NULL: agent, then ssh_config's IdentityFile, then ~/.ssh/id_* */
	const char *known_hosts;	/* NULL: ssh_config's UserKnownHostsFile, else ~/.ssh/known_hosts */
	const char *host_key_alias;	/* name the host key is looked up and recorded under (the profile name); NULL: host (and [host]:port) */
	const char *ssh_config;		/* NULL: ~/.ssh/config; resolved with `ssh -G` semantics */
	int accept_new_hostkey;		/* 1: an unknown key is recorded (accept-new); 0: refused */
	int connect_timeout_ms;		/* 0: 15000 */
	int request_timeout_ms;		/* how long a caller waits across a reconnect; 0: 60000 */
	int keepalive_s;		/* 0: 15 */
};

/*
 * Connect, verify the host key, authenticate, start the sftp subsystem and the
 * I/O thread. On failure returns -errno and writes a user-facing message
 * ("cannot connect to 'vm' (127.0.0.1:2222): Connection refused") into @err.
 * The caller owns *out and frees it with remote_free() (which accepts NULL).
 */
int remote_new(struct remote **out, const struct remote_opts *opts, char *err, size_t errlen);
void remote_free(struct remote *r);

/* Attributes. SFTP v3 carries seconds only: st_*tim.tv_nsec is 0. */
int remote_stat(struct remote *r, const char *path, struct stat *st);	/* follows symlinks */
int remote_lstat(struct remote *r, const char *path, struct stat *st);

/*
 * List @path: calls @cb once per entry (not "." or ".."), with the entry's
 * lstat attributes, from the calling thread. A non-zero return from @cb stops
 * the listing and is returned.
 */
typedef int (*remote_dirent_cb)(const char *name, const struct stat *st, void *payload);
int remote_readdir(struct remote *r, const char *path, remote_dirent_cb cb, void *payload);

/* Open with open(2) flags (O_RDONLY/O_WRONLY/O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_APPEND). */
int remote_open(struct remote *r, const char *path, int flags, mode_t mode, struct remote_file **out);
/* The most a handle read in order keeps requested ahead of its reader. */
#define REMOTE_RA_MAX (8u * 1024 * 1024)

/*
 * Read up to @len bytes at @off; returns the byte count (short only at end of
 * file) or -errno. Large reads are split into many requests in flight, and
 * sequential reads of one handle keep a read-ahead window in flight, sized to
 * fill the link at high latency.
 */
ssize_t remote_pread(struct remote_file *f, void *buf, size_t len, off_t off);
/*
 * Write all @len bytes at @off (pipelined); returns @len or -errno. Writes
 * are write-behind: the call returns once the requests are queued and at most
 * a few MiB of the handle's writes are unconfirmed; a write that fails later
 * is reported by the next remote_pwrite, remote_flush, remote_fsync,
 * remote_fstat, remote_ftruncate or remote_close of the same handle (ENOSPC
 * when the VM's disk is full, else as the server said). Reads of the handle
 * see its earlier writes.
 */
ssize_t remote_pwrite(struct remote_file *f, const void *buf, size_t len, off_t off);
int remote_fstat(struct remote_file *f, struct stat *st);
int remote_ftruncate(struct remote_file *f, off_t size);
int remote_flush(struct remote_file *f);	/* wait for the writes sent behind */
int remote_fsync(struct remote_file *f);	/* fsync@openssh.com; -ENOTSUP when not offered */
int remote_close(struct remote_file *f);	/* always frees @f */

/*
 * The VM path of mount path @path (with its leading '/') under @root, the
 * directory the mount shows (NULL or "": the login directory, so the path is
 * relative to it; trailing '/' ignored). -ENAMETOOLONG when over @len.
 */
int remote_path_join(const char *root, const char *path, char *buf, size_t len);

/* Namespace operations. */
int remote_mkdir(struct remote *r, const char *path, mode_t mode);
int remote_rmdir(struct remote *r, const char *path);
int remote_unlink(struct remote *r, const char *path);
/*
 * Rename; @flags is 0 or RENAME_NOREPLACE (RENAME_EXCHANGE: -EINVAL). With
 * flags 0 an existing target is replaced atomically (posix-rename@openssh.com;
 * without it, a fallback that is not atomic).
 */
int remote_rename(struct remote *r, const char *from, const char *to, unsigned int flags);
int remote_symlink(struct remote *r, const char *target, const char *linkpath);
/* Writes the NUL-terminated target into @buf (truncated to @size - 1). */
int remote_readlink(struct remote *r, const char *path, char *buf, size_t size);
int remote_link(struct remote *r, const char *from, const char *to);	/* hardlink@openssh.com; -ENOTSUP when not offered */
int remote_chmod(struct remote *r, const char *path, mode_t mode);
int remote_chown(struct remote *r, const char *path, uid_t uid, gid_t gid);
int remote_truncate(struct remote *r, const char *path, off_t size);
/* Times in seconds; the caller resolves UTIME_NOW and UTIME_OMIT. */
int remote_utimes(struct remote *r, const char *path, time_t atime, time_t mtime);
int remote_statvfs(struct remote *r, const char *path, struct statvfs *sv);	/* statvfs@openssh.com, else made-up values */

/*
 * Whole-file transfers for the local layer, pipelined:
 * remote_download copies @path into @fd (from offset 0) and fills @st with
 * the attributes the copy was taken from; remote_upload copies all of @fd to
 * @path (created or truncated, @mode).
 */
int remote_download(struct remote *r, const char *path, int fd, struct stat *st);
/*
 * Copy all of @f, from offset 0, into @fd at the same offsets, @chunk bytes
 * per read (the handle's read-ahead keeps the link full between reads).
 * Before each read, @progress (may be NULL) gets the bytes copied so far; a
 * non-zero return stops the copy with it. *size: the bytes copied. 0 at the
 * end of @f, or -errno.
 */
typedef int (*remote_progress_fn)(off_t copied, void *payload);
int remote_recv_fd(struct remote_file *f, int fd, size_t chunk, remote_progress_fn progress,
		   void *payload, off_t *size);
int remote_upload(struct remote *r, int fd, const char *path, mode_t mode);
/*
 * Upload @fd to @path (created or truncated) and make it final: its data
 * fsynced (when the server offers it), then mode @mode and times set, then
 * closed, all in flight after the OPEN, so a small file takes two round
 * trips. *size: the bytes sent. With @check, an LSTAT of that path rides
 * along: its result goes to *check_err (0 or -errno) and *check_st. Returns
 * the upload's 0 or -errno.
 */
int remote_put(struct remote *r, int fd, const char *path, mode_t mode, time_t atime,
	       time_t mtime, off_t *size, const char *check, struct stat *check_st,
	       int *check_err);
/*
 * The same, on @f, a handle opened for writing that already has @fd's bytes
 * [0, @from) (written, or write-behind: their errors are this call's): sends
 * the rest of @fd, then finishes as remote_put. Always frees @f.
 */
int remote_put_from(struct remote_file *f, int fd, off_t from, mode_t mode, time_t atime,
		    time_t mtime, off_t *size, const char *check, struct stat *check_st,
		    int *check_err);

/*
 * Run @cmd on the VM through an exec channel of the same SSH session. The
 * command's stdout (at most @max bytes; NUL-terminated, caller frees) goes to
 * *out and its exit status to *status. Returns 0 or -errno (-ETIMEDOUT after
 * @timeout_ms).
 */
int remote_exec(struct remote *r, const char *cmd, size_t max, int timeout_ms,
		char **out, size_t *outlen, int *status);

/* Which OpenSSH extensions the server offered (for tests and `wakefs status`). */
enum remote_ext {
	REMOTE_EXT_POSIX_RENAME = 1 << 0,
	REMOTE_EXT_STATVFS = 1 << 1,
	REMOTE_EXT_FSYNC = 1 << 2,
	REMOTE_EXT_HARDLINK = 1 << 3,
	REMOTE_EXT_LIMITS = 1 << 4,
};
unsigned int remote_extensions(struct remote *r);
/* 1 while the transport is up, 0 while reconnecting. */
int remote_connected(struct remote *r);

/*
 * Reconnect hook for the lifecycle: before every redial after a lost
 * connection (not the first connect), the I/O thread calls @redial, which may
 * wake the VM and rewrite @host (a NUL-terminated buffer of @hostlen bytes,
 * holding the current address) and *port. It returns 0, or -errno to count
 * the attempt as failed (retried after the backoff). @payload is borrowed.
 */
void remote_set_redial(struct remote *r,
		       int (*redial)(void *payload, char *host, size_t hostlen, int *port),
		       void *payload);

#endif
