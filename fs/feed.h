/*
 * fs/feed.h: the change feed from the VM, which keeps the layer's caches of
 * the remote side fresh without a round trip per file.
 *
 * A thread runs one scan command over the mount's SSH connection every
 * interval: GNU find lists what changed on the VM (inode change time) since
 * the previous scan, by the VM's own clock, and each such path is dropped from
 * the layer's attribute and listing caches (layer_invalidate). The scan is
 * time-based, so a disconnection loses nothing: the next scan covers the gap.
 *
 * Functions return 0 or a negative errno.
 */
#ifndef WAKEFS_FEED_H
#define WAKEFS_FEED_H

#include <stdint.h>

struct feed;
struct remote;
struct layer;

struct feed_opts {
	const char *remote_root;	/* the VM directory the mount shows ("" or NULL: login dir) */
	int interval_ms;		/* between scans; 0: 2000 */
	/* Called in the feed's thread once a scan learnt the whole tree, before lookups go on. */
	void (*learned)(void *payload);
	void *payload;
};

/*
 * Start the feed over @r and @l (borrowed: they must outlive it). The caller
 * owns *out and frees it with feed_free() (accepts NULL).
 */
int feed_new(struct feed **out, struct remote *r, struct layer *l, const struct feed_opts *o);
void feed_free(struct feed *fd);

/* Scans completed, and paths invalidated, since the start (for status and tests). */
uint64_t feed_scans(struct feed *fd);
uint64_t feed_invalidated(struct feed *fd);

#endif
