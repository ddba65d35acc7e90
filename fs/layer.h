/*
 * fs/layer.h: the local layer of a mount (no network here).
 *
 * A layer is a directory on the laptop (the "upper" side of the union):
 *   <dir>/...                 files written through the mount, .git/, a clone;
 *                             a path present here wins over the VM's
 *   <dir>/.wakefs/journal     path states (fs/journal.h)
 *   <dir>/.wakefs/cache/      clean whole-file copies of VM files that were only
 *                             read, LRU-evicted under a size bound (never the
 *                             files in <dir>/ itself: dirty, held and conflict
 *                             copies live there and are never evicted)
 *   <dir>/.wakefs/tmp/        downloads in progress
 *   <dir>/.wakefs/conflicts/  the VM's version of conflicting paths (the flusher)
 * "/.wakefs" is hidden from the mount.
 *
 * The layer also keeps the attribute and directory caches of the remote side
 * (filled by fs/lops.c, invalidated by it and by the change feed), the write
 * generation of each path (so that the flusher can tell whether a file changed
 * while it was being sent) and the flusher's callbacks.
 *
 * Paths are mount paths with a leading '/' ("/" is the root), as FUSE gives
 * them. Every function is thread-safe and returns 0 or a negative errno
 * unless said otherwise. Lock order: layer's lock, then the journal's.
 */
#ifndef WAKEFS_LAYER_H
#define WAKEFS_LAYER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "journal.h"

struct layer;

struct layer_opts {
	const char *dir;		/* the layer directory (created if missing) */
	uint64_t cache_max;		/* bound on .wakefs/cache/ in bytes; 0: 4 GiB */
	uint64_t cache_file_max;	/* larger files are streamed, not cached; 0: 256 MiB or cache_max/4 */
	int attr_timeout_ms;		/* lifetime of cached remote attributes and listings; 0: 20000 */
};

/* The caller owns *out and frees it with layer_free() (accepts NULL). */
int layer_new(struct layer **out, const struct layer_opts *o);
void layer_free(struct layer *l);

/*
 * The default layer directory for a mount of @host:@remote_dir:
 * $XDG_DATA_HOME/wakefs/<slug>/ (else ~/.local/share/wakefs/<slug>/), the
 * slug made of host and directory with unsafe characters replaced.
 */
int layer_default_dir(const char *host, const char *remote_dir, char *buf, size_t len);

const char *layer_dir(struct layer *l);			/* borrowed */
struct journal *layer_journal(struct layer *l);		/* borrowed */
uint64_t layer_cache_file_max(struct layer *l);

/* 1 for "/.wakefs" and what is under it (never shown, never written). */
int layer_hidden(const char *path);

/* The mount path of entry @name of directory @dir ("/" or "/a/b"); -ENAMETOOLONG. */
int layer_child(const char *dir, const char *name, char *buf, size_t len);
/* The path of @path inside the layer directory; -ENAMETOOLONG. */
int layer_local_path(struct layer *l, const char *path, char *buf, size_t len);
/* lstat() of @path in the layer directory: 0, or -ENOENT when not local. */
int layer_local_stat(struct layer *l, const char *path, struct stat *st);

/* --- path states ----------------------------------------------------------- */

/* @path's journal state and base (@base may be NULL); -ENOENT when untracked. */
int layer_state(struct layer *l, const char *path, enum path_state *state, struct version *base);
/* Make the path states recorded so far durable (journal_sync). */
int layer_sync(struct layer *l);
/*
 * Record @path's state (journal_set: kept by a crash of the process when it
 * returns, durable after layer_sync(); a power loss is dealt with at the next
 * layer_new(), which marks the files changed since dirty again). This and
 * layer_forget() and layer_flushed() also update the caches of the VM's
 * side: what they say of @path itself goes; its parent's cached listing
 * gains @path's name when the state says the VM has it (CLEAN, flushed)
 * and loses it on layer_forget() (the VM does not have it).
 */
int layer_mark(struct layer *l, const char *path, enum path_state state,
	       const struct version *base);
/* Forget @path's state (journal_remove); 0 also when it had none. */
int layer_forget(struct layer *l, const char *path);
/* 1 when @path is whited out (deleted in the mount, maybe still on the VM). */
int layer_is_whiteout(struct layer *l, const char *path);
/* The stable inode number of @path (journal_ino). */
uint64_t layer_ino(struct layer *l, const char *path);

/*
 * Write generations: fs/lops.c calls layer_bump() on every change of a file's
 * content or attributes. The flusher reads layer_gen() before it sends a file
 * and reports with layer_flushed() afterwards: the path becomes CLEAN with
 * @new_base only if nothing changed meanwhile; otherwise it stays DIRTY but
 * its base becomes @new_base (the VM now has what was sent).
 */
uint64_t layer_gen(struct layer *l, const char *path);
/* Also marks @path DIRTY unless it is DIRTY, HELD or CONFLICT already. */
int layer_bump(struct layer *l, const char *path);
/*
 * The same, and in one step with it: @path's generation before (*prev, 0
 * when none) and after (*now) this bump (either may be NULL). A presend
 * (fs/presend.h) tells from them whether anyone else changed the path.
 */
int layer_bump_gen(struct layer *l, const char *path, uint64_t *prev, uint64_t *now);
int layer_flushed(struct layer *l, const char *path, uint64_t gen, const struct version *new_base);

/* --- the flusher's callbacks ------------------------------------------------ */

enum layer_event {
	LAYER_EV_CLOSED_DIRTY,	/* a written (created, truncated, linked) file was closed */
	LAYER_EV_UNLINK,	/* @path was unlinked (a whiteout if the VM may have it) */
	LAYER_EV_RENAME,	/* @path was renamed to @to (files only; dirs: EXDEV unless local-only) */
	LAYER_EV_MKDIR,
	LAYER_EV_RMDIR,
	LAYER_EV_CHMOD,
	LAYER_EV_UTIMES,
	LAYER_EV_SYMLINK,	/* a symlink was made at @path */
};

/*
 * @notify is called after the local change is done and journaled, from the
 * FUSE thread that made it, without the layer's lock held; @to is NULL except
 * for LAYER_EV_RENAME. It must not block for long (queue and return).
 */
typedef void (*layer_notify_cb)(void *payload, const char *path, int event, const char *to);
void layer_set_notify(struct layer *l, layer_notify_cb notify, void *payload);
/*
 * @fsync is called by fsync() through the mount and waited for: return 0
 * when the VM has @path (or the policy holds it), else -errno.
 */
typedef int (*layer_fsync_cb)(void *payload, const char *path);
void layer_set_fsync(struct layer *l, layer_fsync_cb fsync, void *payload);

/*
 * @presend is called by a handle that has written the start of a large file
 * in order: @fd is its local file, @gen the generation after its last write.
 * It returns a presend (fs/presend.h) when the file may be sent while it is
 * written, with a reference for the handle; else NULL.
 */
struct presend;
typedef struct presend *(*layer_presend_cb)(void *payload, const char *path, int fd,
					     uint64_t gen);
void layer_set_presend(struct layer *l, layer_presend_cb presend, void *payload);

/* Used by fs/lops.c: call the registered callback (no-op / 0 / NULL without one). */
void layer_notify(struct layer *l, const char *path, int event, const char *to);
int layer_fsync(struct layer *l, const char *path);
struct presend *layer_presend(struct layer *l, const char *path, int fd, uint64_t gen);

/* --- caches of the remote side ------------------------------------------------ */

/*
 * Attributes: 0 and *st on a hit, -ENOENT on a negative hit (the VM has no
 * such path), -EAGAIN when unknown or expired. layer_attr_put(l, p, NULL)
 * records a negative entry.
 */
int layer_attr_get(struct layer *l, const char *path, struct stat *st);
/*
 * The same, with entries older than @max_age_ms counted as expired (at most
 * the cache's lifetime); @max_age_ms < 0: any age (the VM is out of reach).
 */
int layer_attr_get_max(struct layer *l, const char *path, struct stat *st, int max_age_ms);
void layer_attr_put(struct layer *l, const char *path, const struct stat *st);

/*
 * Listings: a struct layer_listing is built with layer_listing_add() and
 * handed to layer_dir_put() (which takes ownership and also records each
 * entry's attributes). layer_dir_get() calls @cb per entry from a copy taken
 * under the lock; -EAGAIN when unknown or expired.
 */
struct layer_listing;
int layer_listing_new(struct layer_listing **out);
int layer_listing_add(struct layer_listing *ls, const char *name, const struct stat *st);
void layer_listing_free(struct layer_listing *ls);
void layer_dir_put(struct layer *l, const char *path, struct layer_listing *ls);
int layer_dir_get(struct layer *l, const char *path,
		  int (*cb)(const char *name, const struct stat *st, void *payload), void *payload);
/* The same, any age allowed (the VM is out of reach): -EAGAIN only when never listed. */
int layer_dir_get_stale(struct layer *l, const char *path,
			int (*cb)(const char *name, const struct stat *st, void *payload),
			void *payload);

/*
 * Whether the fresh listing of directory @dir holds @name: 1 yes, 0 no,
 * -EAGAIN when @dir's listing is unknown or expired.
 */
int layer_dir_has(struct layer *l, const char *dir, const char *name);

/* 1 when @dir's listing is cached, fresh or not. */
int layer_dir_cached(struct layer *l, const char *dir);
/*
 * The flusher made directory @path on the VM (attributes @st): it is empty
 * there, and its parent's cached listing has its name now.
 */
void layer_dir_made(struct layer *l, const char *path, const struct stat *st);

/*
 * The VM has @path now (a directory the flusher made as a parent of what it
 * sent, or found there): what is cached of @path goes, and its parent's
 * cached listing gets its name.
 */
void layer_vm_has(struct layer *l, const char *path);

/* Drop what is cached about @path: its attributes, its listing, its parent's listing. */
void layer_invalidate(struct layer *l, const char *path);
void layer_invalidate_all(struct layer *l);
/*
 * Drop @path's attributes and its own listing; its parent's listing stays.
 * The change feed calls it for each path it saw change on the VM (a
 * creation, deletion or rename changes the parent too, and the feed reports
 * that as well); fs/lops.c for each local change, which leaves the VM, and
 * so the parent's listing of the VM, as it was.
 */
void layer_invalidate_changed(struct layer *l, const char *path);

/*
 * The change feed vouches for the caches for the next @ms (0: no longer):
 * meanwhile listings, and attributes whose parent is listed, do not expire
 * by age; the feed drops what changes on the VM.
 */
void layer_trust_for(struct layer *l, int ms);
/*
 * A bulk scan of the VM's tree is filling the caches: lookups that miss may
 * wait for it with layer_learn_wait (until @max_ms after the scan began)
 * instead of asking the VM name by name. layer_learn_end records how many
 * paths it learnt (0: it failed; the previous figure stays), shown by
 * layer_learned.
 */
void layer_learn_begin(struct layer *l);
void layer_learn_end(struct layer *l, uint64_t learned);
int layer_learn_wait(struct layer *l, int max_ms);	/* 1 if it had to wait */
uint64_t layer_learned(struct layer *l);

/* --- whole-file copies --------------------------------------------------------- */

/*
 * A new empty temporary file in .wakefs/tmp/ (mode 0600), open O_RDWR; its
 * path goes into @name. Returns the fd or -errno.
 */
int layer_tmpfile(struct layer *l, char *name, size_t len);
/*
 * The clean cached copy of @path, opened O_RDONLY, if its size and mtime
 * equal @remote's; a stale copy is dropped. Returns the fd or -ENOENT.
 */
int layer_cache_open(struct layer *l, const char *path, const struct stat *remote);
/*
 * Make the downloaded @tmpname the cached copy of @path (mtime set to
 * @remote's), then evict least recently used copies over the bound.
 */
int layer_cache_commit(struct layer *l, const char *path, const char *tmpname,
		       const struct stat *remote);
void layer_cache_drop(struct layer *l, const char *path);
uint64_t layer_cache_usage(struct layer *l);

/* Create @path's missing parent directories in the layer directory (0755). */
int layer_mkparents(struct layer *l, const char *path);
/*
 * Copy-up: move @tmpname (a full copy) to @path in the layer directory, or,
 * with @tmpname NULL, move @path's valid cached copy there (-ENOENT when
 * there is none matching @remote). Parents are created.
 */
int layer_install(struct layer *l, const char *path, const char *tmpname,
		  const struct stat *remote);

#endif
