/*
 * fs/options.h: the wakefs command line, parsed and validated into one
 * struct options that the rest of the program reads as const.
 *
 * Grammar (sshfs-like, and what mount.fuse3 passes for fstab entries):
 *   wakefs [options] [user@]host:[dir] MOUNTPOINT
 * where options may also follow the positional arguments.
 *
 * Strings in struct options are owned by it and freed by options_release().
 */
#ifndef WAKEFS_OPTIONS_H
#define WAKEFS_OPTIONS_H

#include <stddef.h>

#include "forward.h"

struct remote_opts;

enum options_action {
	OPTIONS_MOUNT = 0,	/* mount and serve */
	OPTIONS_HELP,		/* print options_usage() to stdout, exit 0 */
	OPTIONS_VERSION,	/* print the version, exit 0 */
};

struct options {
	enum options_action action;

	/* The VM side: [user@]host:[dir]. */
	char *source;		/* the argument as given (the mount's fsname) */
	char *user;		/* NULL: ssh_config's User, else the local user */
	char *host;		/* host, address (IPv6 without brackets) or ssh_config alias */
	char *dir;		/* "" : the login directory */
	int port;		/* 0: ssh_config's Port, else 22 */
	char *identity;
	char *known_hosts;
	char *host_key_alias;
	char *ssh_config;
	int accept_new_hostkey;
	int connect_timeout_s;		/* 0: the engine's default */
	int reconnect_timeout_s;	/* how long a call waits across a reconnect, then EIO */
	struct fwd_spec forward[FWD_MAX];	/* -o forward=SPEC, repeatable */
	int nforward;

	/* The mount. */
	char *mountpoint;	/* absolute path */
	int foreground;		/* -f (and -d) */
	int debug;		/* -d: libfuse's request trace on stderr */
	int single_thread;	/* -s */
	int allow_other;	/* other users may use the mount (implies default_permissions) */
	int allow_root;		/* only root besides the owner */
	int default_permissions;	/* the kernel checks mode bits */
	int read_only;
	int nosuid, nodev, noexec, noatime;
	double attr_timeout_s;	/* attribute and name cache lifetime */

	/* The local layer (fs/layer.h), the default mode. */
	int writethrough;	/* -o writethrough: no layer, every change on the VM at once */
	char *local;		/* -o local=DIR; NULL: layer_default_dir() */
	char *flush;		/* -o flush=tracked|unignored|all; NULL: tracked */
	int debounce_ms;	/* -o debounce_ms=N; 0: the flusher's default (1000) */
	unsigned long long cache_max;	/* -o cache_max=SIZE in bytes; 0: the layer's default */
	int unmount_flush_s;	/* -o unmount_flush=SECONDS: flush bound at unmount; 0: 30 */
};

/*
 * Parse @argc/@argv (argv[0] is the program) into @o, which the caller
 * provides; defaults first, then the arguments in order. Returns 0, or -EINVAL
 * with a one-line user-facing message in @err ("bad option 'xyz': expected
 * ..."), without the "wakefs: " prefix. Call options_release() in both cases.
 */
int options_parse(struct options *o, int argc, char **argv, char *err, size_t errlen);
void options_release(struct options *o);

/*
 * Fill @ro for remote_new(); its strings are borrowed from @o. The forwards,
 * which struct remote_opts has no room for, are handed to the engine with
 * fwd_preset() (fs/forward.h) here too.
 */
void options_remote(const struct options *o, struct remote_opts *ro);

/* The --help text. */
const char *options_usage(void);

#endif
