/*
 * fs/policy.h: which local changes go to the VM (the flush policy).
 *
 * The nearest git repository enclosing a path in the local layer decides:
 * with FLUSH_TRACKED (the default) a path is flushed when it is in that
 * repository's index, with FLUSH_UNIGNORED when it is tracked or not ignored,
 * with FLUSH_ALL always. Anything under a `.git` component, and the layer's
 * own "/.wakefs", never leaves the laptop. Paths outside any repository are flushed (a plain directory behaves
 * like a write-back sshfs).
 *
 * Repositories are read from the local layer directory directly with libgit2
 * (never through the mountpoint). Each repository's index is re-read only
 * when its file changed (inode, size or mtime), not per call.
 *
 * Paths are relative to the mount root; a leading '/' is accepted and
 * ignored ("/src/a.py" and "src/a.py" are the same path). Every function is
 * thread-safe (one mutex inside: libgit2 objects are not shared across
 * threads) and returns 0 or a negative errno.
 */
#ifndef WAKEFS_POLICY_H
#define WAKEFS_POLICY_H

struct policy;

enum flush_mode {
	FLUSH_TRACKED,		/* in the index of the enclosing repository */
	FLUSH_UNIGNORED,	/* tracked, or not ignored by .gitignore & co */
	FLUSH_ALL,		/* everything but .git */
};

enum policy_verdict {
	POLICY_FLUSH,		/* send to the VM */
	POLICY_HOLD,		/* keep local until tracked or `wakefs push` */
	POLICY_NEVER,		/* .git/ and the like: never leaves */
};

/*
 * Make a policy over the local layer directory @layer_dir (copied). The
 * caller owns *out and frees it with policy_free() (which accepts NULL).
 */
int policy_new(struct policy **out, const char *layer_dir, enum flush_mode mode);
void policy_free(struct policy *p);

/* Parse "tracked", "unignored" or "all"; -EINVAL otherwise. */
int policy_mode_parse(const char *s, enum flush_mode *out);
const char *policy_mode_name(enum flush_mode mode);
const char *policy_verdict_name(enum policy_verdict v);

/*
 * Decide for a file or directory path that exists (or is being written) in
 * the mount. A directory counts as tracked when the index holds a path under
 * it. A repository whose .git exists but cannot be opened yet (a clone in
 * progress) holds in FLUSH_TRACKED mode.
 */
int policy_decide(struct policy *p, const char *path, enum policy_verdict *out);

/*
 * Decide for a path being deleted or renamed away: like policy_decide, but
 * a path also counts as tracked when it is in the HEAD commit, so that
 * `git rm` and `git mv` (which update the index around the unlink/rename)
 * reach the VM whatever the order.
 */
int policy_decide_removal(struct policy *p, const char *path, enum policy_verdict *out);

/*
 * Re-read every known repository's index whose file changed since the last
 * call (or since policy_decide first opened it) and call @cb for each path
 * (with a leading '/') that is in the new index but was not in the old one.
 * The flusher flushes those of them it holds. A non-zero return of @cb stops
 * the walk and is returned. Returns the number of paths reported, or -errno.
 */
int policy_newly_tracked(struct policy *p, int (*cb)(const char *path, void *payload),
			 void *payload);

#endif
