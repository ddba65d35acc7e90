/*
 * fs/lops.h: the FUSE operations of a mount with a local layer (the default
 * mode; fs/ops.h is the write-through one).
 *
 * The mount shows the union of the local layer (fs/layer.h), which wins, and
 * the VM's directory, which shows through. Every change is made in the layer
 * and journaled; the flusher (fs/flush.h), told through layer_notify(), sends
 * it to the VM later. struct lops holds the VM connection and the layer
 * (both borrowed); main.c passes it as fuse_new()'s user data.
 */
#ifndef WAKEFS_LOPS_H
#define WAKEFS_LOPS_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312
#endif
#include <fuse.h>

struct lops;
struct layer;
struct options;
struct remote;

/*
 * Make the mount state over @r (may be NULL: the VM is unreachable and only
 * the layer is shown), @l and @o, which must outlive it. Returns 0 or
 * -ENOMEM; the caller frees *out with lops_free() (accepts NULL).
 */
int lops_new(struct lops **out, struct remote *r, struct layer *l, const struct options *o);
void lops_free(struct lops *lo);

/* The operations table for fuse_new(); its user data must be a struct lops. */
const struct fuse_operations *lops_table(void);

#endif
