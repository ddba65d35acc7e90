/*
 * fs/dirlist.h: an open directory's listing, for the readdir of both mounts
 * (fs/ops.c, fs/lops.c).
 *
 * The listing is taken whole by the readdir at offset 0 (opendir, rewinddir)
 * and handed out with each entry's index + 1 as its offset, never 0: libfuse
 * 3.14's high-level API drops the attributes of a READDIRPLUS entry filled
 * with offset 0, and the kernel then sends a LOOKUP per name. The kernel asks
 * again from a later offset when its buffer fills; those calls, and a first
 * call at a later offset (a seekdir), are served from this listing.
 *
 * One handle is used by one readdir at a time (the kernel serialises them).
 */
#ifndef WAKEFS_DIRLIST_H
#define WAKEFS_DIRLIST_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312
#endif
#include <fuse.h>
#include <sys/stat.h>

struct dirlist;

/* Fills @d (with dirlist_add or dirlist_filler); 0 or -errno. */
typedef int (*dirlist_list_fn)(struct dirlist *d, void *payload);

/* A new, empty listing remembering @path (copied; NULL: none). NULL when out of memory. */
struct dirlist *dirlist_new(const char *path);
void dirlist_free(struct dirlist *d);	/* accepts NULL */
const char *dirlist_path(const struct dirlist *d);

/* Add an entry; @st NULL: none, the kernel looks the name up. 0 or -ENOMEM. */
int dirlist_add(struct dirlist *d, const char *name, const struct stat *st,
		enum fuse_fill_dir_flags fill);
/* A fuse_fill_dir_t that adds to the struct dirlist passed as @buf (1: out of memory). */
int dirlist_filler(void *buf, const char *name, const struct stat *st, off_t off,
		   enum fuse_fill_dir_flags fill);

/*
 * The readdir: at offset 0, or when nothing was listed yet, @list(@d, @payload)
 * fills @d afresh; then the entries from @off go to @filler until its buffer
 * is full. Returns 0 or -errno (of @list, or -EINVAL for a negative @off).
 */
int dirlist_readdir(struct dirlist *d, off_t off, void *buf, fuse_fill_dir_t filler,
		    dirlist_list_fn list, void *payload);

#endif
