/*
 * fs/flush.h: the flusher, which turns local changes into remote ones.
 *
 * One thread per mount. The local layer tells it (layer_set_notify) when a
 * written file is closed, a path is unlinked, renamed, made or removed; it
 * asks the policy whether the path may leave the laptop, waits for the
 * debounce, then replaces the file on the VM atomically: upload to a
 * temporary sibling (".name.wakefs-tmp.TAG", TAG fixed per laptop and
 * layer, so a retry reuses it), remote_fsync, rename over the target, then
 * mode and mtime. Before replacing, the VM's current size
 * and mtime are compared with the version the local copy was based on; when
 * the VM changed it meanwhile nothing is overwritten, the VM's version is
 * fetched into <layer>/.wakefs/conflicts/<path> and the path becomes
 * CONFLICT. A path becomes CLEAN in the journal only after the VM has it.
 * Failures are retried with backoff, never dropped; at startup the journal's
 * DIRTY paths are queued again (crash recovery).
 *
 * Paths are mount paths with a leading '/'. Every function is thread-safe and
 * returns 0 or a negative errno.
 */
#ifndef WAKEFS_FLUSH_H
#define WAKEFS_FLUSH_H

#include <stddef.h>
#include <stdint.h>

struct flusher;
struct remote;
struct layer;
struct policy;
struct presender;

struct flush_opts {
	const char *remote_root;	/* the VM directory the mount shows ("" or NULL: login dir) */
	int debounce_ms;		/* after the last close; 0: 1000, <0: none */
	int retry_min_ms;		/* first retry delay; 0: 250 */
	int retry_max_ms;		/* backoff cap; 0: 30000 */
	int threads;			/* paths sent at once; 0: 16 */
	struct presender *presender;	/* large files sent while written (borrowed), or NULL */
};

/*
 * Start the flusher thread over @r, @l and @p (borrowed: they must outlive
 * the flusher), register it with layer_set_notify() and queue the journal's
 * DIRTY paths. The caller owns *out and frees it with flush_free().
 */
int flush_new(struct flusher **out, struct remote *r, struct layer *l, struct policy *p,
	      const struct flush_opts *o);
/* Stop the thread (what is still dirty stays dirty in the journal). Accepts NULL. */
void flush_free(struct flusher *f);

/*
 * Flush @path now and wait until the VM has it (fsync). Returns 0 also when
 * the policy holds the path (nothing to send), -ESTALE on a conflict, else the
 * remote error.
 */
int flush_path(struct flusher *f, const char *path);

/*
 * Send everything queued or dirty and wait up to @timeout_ms (<= 0: no
 * limit). Returns 0 when nothing dirty is left, -ETIMEDOUT when the bound
 * passed first, -EIO when some paths failed (they stay queued).
 */
int flush_all(struct flusher *f, int timeout_ms);

/* Send a held path anyway (`wakefs push`) and wait; -ENOENT when not local. */
int flush_push(struct flusher *f, const char *path);

enum flush_keep { FLUSH_KEEP_LOCAL, FLUSH_KEEP_REMOTE };
/*
 * Settle a conflict (`wakefs resolve`): FLUSH_KEEP_LOCAL overwrites the VM's
 * version with the local one; FLUSH_KEEP_REMOTE replaces the local copy with
 * the VM's version. Either way the copy kept under .wakefs/conflicts goes.
 * -EINVAL when @path is not in conflict.
 */
int flush_resolve(struct flusher *f, const char *path, enum flush_keep keep);

struct flush_stats {
	size_t queued;		/* paths waiting in the queue (debounce or retry) */
	size_t dirty, held, conflict;	/* journal counts */
	uint64_t flushed;	/* operations done on the VM since start */
	uint64_t failures;	/* failed attempts since start (each is retried) */
	int connected;		/* remote_connected() */
	char last_error[256];	/* the latest failure's message, "" when none */
};
int flush_stats(struct flusher *f, struct flush_stats *out);

/* The latest failure messages, oldest first (at most 16 kept). */
int flush_errors(struct flusher *f, void (*cb)(const char *msg, void *payload), void *payload);

#endif
