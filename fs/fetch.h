/*
 * fs/fetch.h: whole-file downloads that can be read while they arrive.
 *
 * The layered mount (fs/lops.c) keeps a whole local copy of each VM file it
 * opens for reading, up to the cache's size limit. A fetch is the copy of one
 * such file: open() opens the VM file itself (so a missing file or a denied
 * open is still open()'s error) and hands it to a fetch, whose thread copies
 * it into a temporary file of the layer. read()s of bytes already copied are
 * served from that file at once; a read() further on waits for its bytes.
 * Once the whole file is there the thread calls the done callback, which
 * makes the copy durable and commits it to the cache.
 *
 * The fetcher is the mount's set of fetches: it bounds how many run at once
 * and, when freed (unmount), stops them and waits for their threads.
 *
 * Two opens of one file while it arrives share its copy (fetch_attach).
 *
 * Lock order: the fetcher's lock before a fetch's lock; neither is held
 * while the done callback runs.
 */
#ifndef WAKEFS_FETCH_H
#define WAKEFS_FETCH_H

#include <sys/stat.h>
#include <sys/types.h>

struct fetcher;
struct fetch;
struct remote_file;

/*
 * Called once per fetch, from its thread, after the copy ended: @err is 0
 * when all of the file is in @fd (still open; closed after the callback),
 * else the error (-ECANCELED when the fetcher stopped it). @payload is
 * fetch_start's.
 */
typedef void (*fetch_done_fn)(int err, int fd, void *payload);

/* A fetcher running at most @max fetches at once. 0 or -errno. */
int fetcher_new(struct fetcher **out, unsigned max);
/* Stop every fetch, wait for their threads, free. Accepts NULL. */
void fetcher_free(struct fetcher *fr);

/*
 * Copy @rf into @fd (an empty file, named @name) from offset 0 in a new
 * thread. Both are taken over when this returns 0 (closed by the fetch), and
 * *out holds a reference for the caller (fetch_put). @size is the file's size
 * on the VM: how far a fetch_wait can expect bytes before the end. @key names
 * what is copied (the caller's choice: the path and the VM's version) for
 * fetch_attach. -EAGAIN when @fr already runs its maximum, or is stopping:
 * then nothing is taken over.
 */
int fetch_start(struct fetcher *fr, struct remote_file *rf, int fd, const char *name,
		const char *key, off_t size, fetch_done_fn done, void *payload,
		struct fetch **out);

/*
 * Join the copy of @key if it is still arriving, or being made durable: *out
 * gets a reference and *fd a new read-only descriptor of the copy. -ENOENT
 * when there is none (or its copy failed, or has just been renamed by the
 * done callback: then the cache has it), or -errno.
 */
int fetch_attach(struct fetcher *fr, const char *key, struct fetch **out, int *fd);

/*
 * Wait until the copy holds bytes [0, @end) (or the whole file, if shorter),
 * or has ended. 0: a pread of the range sees the VM's bytes; else the copy's
 * error (-EIO for one the fetcher stopped), when the copy ended before it
 * reached @end.
 */
int fetch_wait(struct fetch *f, off_t end);

/*
 * How long, in seconds, a read of bytes up to @end would wait for the copy,
 * at the pace it has kept so far (*pace, bytes a second): 0 when they are
 * there or the copy has ended, and for bytes past the VM's size at open (only
 * the end of the copy tells about those).
 */
double fetch_eta(struct fetch *f, off_t end, double *pace);

/* Drop the caller's reference (the copy goes on). Accepts NULL. */
void fetch_put(struct fetch *f);

#endif
