/*
 * fs/journal.h: the crash-safe record of each path's state in the local layer.
 *
 * The journal is an append-only log file (<layer>/.wakefs/journal) of
 * checksummed records, replayed into an in-memory table at open. A torn tail
 * (kill -9 or power loss mid-append) is detected by its checksum and cut off.
 * After a kill -9 every record whose call returned is kept. Records are made
 * durable within a second of changes, or by journal_sync(): a power loss may
 * cost the last second's, and the next open says so (journal_unclean_since).
 * The log is compacted
 * (rewritten to a temporary file, fsynced, renamed over) when it grows much
 * larger than the table.
 *
 * Paths are mount paths with a leading '/' ("/src/a.py"); a path without one
 * is taken as relative to the mount root. Every function is thread-safe (one
 * mutex inside) and returns 0 or a negative errno.
 */
#ifndef WAKEFS_JOURNAL_H
#define WAKEFS_JOURNAL_H

#include <stdint.h>

struct journal;

/*
 * Transitions (made by the layer and the flusher, recorded here):
 *   (none)   -> DIRTY     [a write, create, truncate, chmod... through the mount]
 *   (none)   -> WHITEOUT  [unlink/rmdir of a path the VM may still have]
 *   DIRTY    -> CLEAN     [the flusher: the VM has the file]
 *   DIRTY    -> HELD      [the flusher: the policy keeps it local]
 *   HELD     -> DIRTY     [the path became tracked, or `wakefs push`]
 *   DIRTY    -> CONFLICT  [the flusher: the VM changed it since base]
 *   CONFLICT -> DIRTY/CLEAN [`wakefs resolve`]
 *   WHITEOUT -> (none)    [the flusher: the VM no longer has it]
 */
enum path_state { PATH_CLEAN, PATH_DIRTY, PATH_HELD, PATH_CONFLICT, PATH_WHITEOUT };

/* The remote version a local copy was based on (valid = 0: unknown or new). */
struct version {
	uint64_t size;
	int64_t mtime;
	int valid;
};

/*
 * One tracked path. @path is borrowed: valid only during the call that hands
 * the entry out (journal_foreach's callback) or until the next change of that
 * path (journal_get; copy it if you keep it).
 */
struct journal_entry {
	const char *path;
	enum path_state state;
	struct version base;
	uint64_t ino;	/* stable inode number, kept across renames and remounts */
};

/*
 * Open (creating <layer_dir>/.wakefs/ and the log if needed) and replay.
 * -EBUSY when another open journal holds the layer (one daemon a layer).
 * The caller owns *out and frees it with journal_close() (accepts NULL).
 */
int journal_open(struct journal **out, const char *layer_dir);
void journal_close(struct journal *j);

/*
 * Record @path's state and base (NULL: keep the current base, or none).
 * Survives a crash of the process when it returns; durable against a power
 * loss after journal_sync(). A new entry gets the inode number
 * journal_ino(path) had.
 */
int journal_set(struct journal *j, const char *path, enum path_state state,
		const struct version *base);
/* Make every record so far durable (fdatasync when any is not yet). */
int journal_sync(struct journal *j);
/*
 * When the log's previous session began (seconds since the epoch) if it ended
 * with the machine, not with journal_close() (a power loss or a kernel crash:
 * its last records may be lost); 0 when it ended cleanly or was a crash of
 * the process alone (same boot), or for a new log.
 */
int64_t journal_unclean_since(struct journal *j);
/* Copy @path's entry into *out; -ENOENT when untracked. out->path: see above. */
int journal_get(struct journal *j, const char *path, struct journal_entry *out);
/*
 * Move @from's entry, and the entries of everything under @from/, to @to
 * (replacing what @to had). Inode numbers move with them. -ENOENT when
 * nothing was under @from (not an error for callers that rename freely).
 */
int journal_rename(struct journal *j, const char *from, const char *to);
/* Forget @path (only that path). -ENOENT when untracked. */
int journal_remove(struct journal *j, const char *path);
/*
 * Call @cb for every entry (in no particular order, under the journal's lock:
 * @cb must not call back into the journal). A non-zero return stops the walk
 * and is returned.
 */
int journal_foreach(struct journal *j, int (*cb)(const struct journal_entry *, void *),
		    void *payload);
/* Number of entries in each state, indexed by enum path_state (5 slots). */
void journal_counts(struct journal *j, uint64_t counts[5]);

/* The inode number of a path that has no entry: a 64-bit hash of the path. */
uint64_t journal_ino_for(const char *path);
/*
 * The inode number of @path: its entry's, else journal_ino_for(path) unless
 * an entry elsewhere holds that number (a file renamed away from @path keeps
 * it): then a number derived from it that no entry holds.
 */
uint64_t journal_ino(struct journal *j, const char *path);

const char *journal_state_name(enum path_state s);

/*
 * fsync the directory @dir, so that a create, rename or unlink in it survives
 * a power loss (the layer's crash safety uses it beyond the journal too).
 * Returns 0 or -errno.
 */
int journal_fsync_dir(const char *dir);

#endif
