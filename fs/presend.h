/*
 * fs/presend.h: a large file being written, sent to the VM while it grows.
 *
 * The flusher sends a file when it is closed (after the debounce) or
 * fsynced. For a large file written from start to end (a `dd`, a `cp`, a
 * build's output) that means the upload starts only once the local write is
 * done. A presend starts while the file is still being written: a thread
 * copies what has been written so far to the flusher's temporary sibling on
 * the VM, and follows the writer. When the flusher comes to the file it
 * claims the presend: if every byte sent is still the local file's, it sends
 * only the rest, then fsyncs and renames as usual; otherwise it drops the
 * presend and sends the whole file.
 *
 * A presend is only ever a head start, never the source of truth: the VM's
 * file is still replaced by the flusher's rename, so a presend cut short (a
 * crash, a lost link, an unmount) leaves at most the temporary, which the
 * next send of the path truncates. It stays valid only while the file is
 * appended to by the one handle that started it. Any other change cancels
 * it: a write below what may have been read, a write through another handle,
 * a truncate, a chmod, a rename or an unlink of the path, a hard link. Every
 * change of a file bumps its generation in the layer (layer_bump_gen), and
 * the writer's bumps are checked here against the generation the presend
 * last saw, so a bump by anyone else breaks the chain. The flusher also
 * checks the generation, the inode and its link count before it takes one.
 *
 * Paths are mount paths; @tmp is the VM path of the temporary. Lock order:
 * the presender's lock, then a presend's lock.
 */
#ifndef WAKEFS_PRESEND_H
#define WAKEFS_PRESEND_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

struct presender;
struct presend;
struct remote;
struct remote_file;

/* At most @max presends at once over @r (borrowed). 0 or -errno. */
int presender_new(struct presender **out, struct remote *r, unsigned max);
/*
 * Stop every presend, wait for their threads and close their VM handles
 * (each temporary stays, for the next send of its path to replace).
 * Accepts NULL.
 */
void presender_free(struct presender *pr);

/*
 * Start sending the layer's file @fd (opened again to read; the caller keeps @fd) of
 * @path to @tmp on the VM, from offset 0 to its current size, then what the
 * writer appends. @gen is the path's generation after the writer's last
 * change. *out holds the writer's reference (presend_put). -EAGAIN when
 * @path has a presend or is being flushed, or @max run; -errno.
 */
int presend_start(struct presender *pr, const char *path, const char *tmp, int fd, uint64_t gen,
		  struct presend **out);

/*
 * The writer's change of [@off, @off + @len) of @path (its current path),
 * in the two steps of a write: before the data lands, with the generations
 * before and after the first bump (@prev, @now), and after, with those of
 * the second. A write below the bytes the thread may read, a renamed path or
 * a generation that moved under another handle cancels the presend.
 */
void presend_write_begin(struct presend *ps, const char *path, off_t off, uint64_t prev,
			 uint64_t now);
void presend_write_end(struct presend *ps, off_t off, size_t len, uint64_t prev, uint64_t now);
/* Cancel: the writer's file changed in a way a presend cannot follow. */
void presend_cancel(struct presend *ps);
/* The writer's handle is closed: drop its reference (the presend goes on). Accepts NULL. */
void presend_put(struct presend *ps);

/* 1 when @path has a presend still valid (its close is worth flushing at once). */
int presender_live(struct presender *pr, const char *path);

/*
 * The flusher is about to make the VM match @path: no presend of @path
 * starts until presender_unclaim(). @path's presend, if any, is stopped
 * (its thread waited for) and returned; else NULL.
 */
struct presend *presender_claim(struct presender *pr, const char *path);
/*
 * Take the claimed @ps's open temporary when it holds the start of the local
 * file: @gen is the path's generation the flusher read, @st the fstat of the
 * file it sends. 1: *rf (now the caller's) has bytes [0, *sent) written
 * (write-behind: errors show at its next sync point). 0: not usable; its
 * handle is then closed (its writes done), so the caller may write @tmp.
 */
int presend_take(struct presend *ps, uint64_t gen, const struct stat *st,
		 struct remote_file **rf, off_t *sent);
/*
 * The flusher is done with @path. @ps (NULL or presender_claim's) is freed;
 * a temporary it made but nobody took or replaced is removed from the VM.
 */
void presender_unclaim(struct presender *pr, const char *path, struct presend *ps);

#endif
