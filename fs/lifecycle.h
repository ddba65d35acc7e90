/*
 * fs/lifecycle.h: the profile mount, which joins the mount and the VM's life.
 *
 *   wakefs mount PROFILE MOUNTPOINT [options]
 *     load the configuration, open the profile's VM (vmctl/provider.h), start
 *     it unless it runs (progress on a TTY), wait until SSH answers at the
 *     freshly resolved address, then mount its remote_dir (default
 *     ~/work/PROFILE) with the host key checked under the profile name.
 *   wakefs umount MOUNTPOINT [--keep-vm]   (and plain fusermount3 -u)
 *     flush (bounded), run the guard over SSH, deallocate unless jobs run or
 *     --keep-vm (or keep_vm = yes), and report.
 *   idle_deallocate = DURATION
 *     no filesystem activity for that long: flush, deallocate, keep the
 *     mount; the next access wakes the VM again (through the engine's redial
 *     hook, remote_set_redial).
 *
 * main.c calls, in order: lifecycle_new() (before options_parse, which then
 * reads lifecycle_argv()), lifecycle_attach() after remote_new(),
 * lifecycle_ops() around the operations table, and lifecycle_finish() after
 * the FUSE loop ends but before remote_free(), or lifecycle_abort() when the
 * mount failed. One profile mount per process.
 *
 * Functions return 0 or a negative errno; messages are one line, lowercase,
 * without the "wakefs: " prefix. The struct lifecycle is owned by the caller
 * of lifecycle_new() (lifecycle_free() accepts NULL); the remote and the
 * flusher given to lifecycle_attach() are borrowed.
 */
#ifndef WAKEFS_LIFECYCLE_H
#define WAKEFS_LIFECYCLE_H

#include <stddef.h>
#include <stdio.h>

#include "control.h"

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312
#endif
#include <fuse.h>

struct lifecycle;
struct remote;
struct flusher;
struct layer;

/* 1 for the words this module handles as argv[1]: "mount", "umount". */
int lifecycle_is_command(const char *word);

/*
 * `wakefs mount PROFILE MOUNTPOINT [options]`: wake the VM and turn the
 * command line into the `[user@]host:dir MOUNTPOINT -o ...` form
 * options_parse() reads (lifecycle_argc/argv, owned by @lc). On failure
 * @err says why; a VM started here and left unusable is deallocated again
 * (and @err says so).
 */
int lifecycle_new(struct lifecycle **out, int argc, char **argv, char *err, size_t errlen);
int lifecycle_argc(const struct lifecycle *lc);
char **lifecycle_argv(const struct lifecycle *lc);

/*
 * The mount is connected: install the redial hook, start the heartbeat and
 * idle thread, record the mount for `wakefs umount|status`. @f may be NULL
 * (a write-through mount has nothing to flush).
 */
int lifecycle_attach(struct lifecycle *lc, struct remote *r, struct flusher *f,
		     const char *mountpoint);

/*
 * The local layer under the mount (before lifecycle_attach; none for a
 * write-through mount): while the VM sleeps the layer answers what it can,
 * and a wake drops what it knew of the VM. Borrowed.
 */
void lifecycle_set_layer(struct lifecycle *lc, struct layer *l);

/*
 * The operations table to give fuse_new(): @inner's operations, each noting
 * the activity (for idle_deallocate) and waking a sleeping VM when it needs
 * it (see lifecycle_set_layer). The user data stays @inner's.
 */
const struct fuse_operations *lifecycle_ops(struct lifecycle *lc,
					    const struct fuse_operations *inner);

/*
 * The mount could not be made: deallocate the VM if this mount started it,
 * and say so on stderr.
 */
void lifecycle_abort(struct lifecycle *lc);

/*
 * The FUSE loop has ended (unmounted or signalled): stop the threads, flush
 * (bounded), run the guard, deallocate unless kept, and report (stderr and
 * the report `wakefs umount` prints). Returns 0, or 1 when the VM could not
 * be deallocated or something stayed unflushed.
 */
int lifecycle_finish(struct lifecycle *lc);
void lifecycle_free(struct lifecycle *lc);

/* `wakefs umount MOUNTPOINT [--keep-vm]`: returns the exit status (0, 1, 2 usage). */
int lifecycle_umount_main(int argc, char **argv);

/*
 * For `wakefs status MOUNTPOINT`: when @mountpoint is a profile mount, print
 * "vm: PROFILE running for 1h02m" (or the power state) to @out.
 */
void lifecycle_status(const char *mountpoint, FILE *out);
/*
 * What that line says, for `wakefs status --json` too: 1 with *vm filled
 * (its strings point into @buf of @len), 0 when @mountpoint is not the mount
 * of a live profile daemon.
 */
int lifecycle_status_vm(const char *mountpoint, struct control_vm *vm, char *buf, size_t len);

#endif
