/*
 * fs/ops.h: the FUSE operations of a wakefs mount (libfuse3 high-level API).
 *
 * struct ops is the mount's state below FUSE: the VM connection (borrowed),
 * the options (borrowed) and the table of open files. main.c creates it,
 * passes it as fuse_new()'s user data, and frees it after the loop ends.
 */
#ifndef WAKEFS_OPS_H
#define WAKEFS_OPS_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312
#endif
#include <fuse.h>

struct ops;
struct options;
struct remote;

/*
 * Make the mount state for @r and @o, which must outlive it (not owned).
 * Returns 0 or -ENOMEM; the caller frees *out with ops_free() (NULL is fine).
 */
int ops_new(struct ops **out, struct remote *r, const struct options *o);
void ops_free(struct ops *ops);

/* The operations table for fuse_new(); its user data must be a struct ops. */
const struct fuse_operations *ops_table(void);

/* Names starting with this are files unlinked while open; readdir hides them. */
#define OPS_HIDDEN_PREFIX ".wakefs_hidden_"

#endif
