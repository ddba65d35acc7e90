/*
 * fs/control.h: the daemon's control socket and its client, behind
 * `wakefs status|flush|push|resolve MOUNTPOINT`.
 *
 * The daemon listens on a unix socket named after the canonical mountpoint
 * ($XDG_RUNTIME_DIR/wakefs/ctl-<hash>.sock, else /tmp/wakefs-<uid>/...; the
 * directory is private to the user). The client finds it from the mountpoint
 * alone, without touching the mount (a hung mount cannot hang it). One request
 * per connection: NUL-separated words, then end of file; the answer is
 * "<exit status>\n<stdout text>\0<stderr text>".
 *
 * Functions return 0 or a negative errno unless said otherwise.
 */
#ifndef WAKEFS_CONTROL_H
#define WAKEFS_CONTROL_H

#include <stddef.h>

struct control;
struct flusher;
struct layer;

struct control_opts {
	const char *mountpoint;	/* as given on the command line (made canonical here) */
	const char *remote;	/* what is mounted, for `status` ("vm:work/aind") */
	const char *policy;	/* the flush mode's name, for `status` */
	struct flusher *f;	/* borrowed; must outlive the control */
	struct layer *l;	/* borrowed; must outlive the control */
};

/*
 * The socket path for @mountpoint into @buf. Canonical: the parent directory
 * is resolved with realpath(), the last component is not (so that the mount
 * itself is not looked at).
 */
int control_socket_path(const char *mountpoint, char *buf, size_t len);

/*
 * Bind the socket (replacing a stale one; -EADDRINUSE when a live daemon
 * answers there) and start serving from a thread. Call it while the
 * mountpoint is still meaningful to realpath() (before daemonizing changes
 * the working directory). The caller owns *out and frees it with
 * control_free() (accepts NULL), which stops serving, waits for requests in
 * progress and removes the socket.
 */
int control_new(struct control **out, const struct control_opts *o);
void control_free(struct control *c);

/* A profile mount's VM, for `status --json` (fs/lifecycle.c finds it). */
struct control_vm {
	const char *profile;
	const char *power;	/* NULL when unknown: then error says why */
	const char *error;
	long running_s;		/* for how long it has been running; -1: not running or unknown */
};

/*
 * The client: @argv is { "status"|"flush"|"push"|"resolve", MOUNTPOINT,
 * ... }. Prints the daemon's answer and returns the process exit status
 * (0 done, 1 the operation failed or is incomplete, 2 usage or no daemon).
 * With @vm, `status --json` adds it to its object as member "vm".
 */
int control_client_main(int argc, char **argv, const struct control_vm *vm);

/* 1 when @cmd is one of the client's commands. */
int control_is_command(const char *cmd);

#endif
