/*
 * fs/options.c: the command line -> one validated struct options.
 *
 * sshfs-like flags (-p, -F, -f, -d, -s, -o LIST) and the option lists that
 * mount(8)/mount.fuse3 hand over for `mount -t fuse.wakefs` and fstab
 * entries. Every -o item is either ours (identity=, known_hosts=, ...), a
 * mount flag we pass to the kernel (ro, nosuid, ...), or a generic fstab word
 * that means nothing to a FUSE daemon (rw, noauto, _netdev, ...) and is
 * accepted and ignored. Anything else is refused with a message naming it:
 * a typo must not silently mount with defaults. Nothing here touches the
 * network or exits; main.c prints the message.
 */
#include "options.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "remote.h"

/* Words fstab and mount(8) may pass that a FUSE daemon has no use for. */
static const char *const options_ignored[] = {
	"rw", "defaults", "auto", "noauto", "user", "users", "nouser", "owner",
	"group", "_netdev", "nofail", "async", "sync", "dirsync", "atime",
	"relatime", "strictatime", "norelatime", "lazytime", "nolazytime", "exec",
	"suid", "dev", "diratime", "nodiratime", "loud", "silent", "nonempty",
	"big_writes", NULL,
};

static const char options_expected[] =
	"expected identity=FILE, known_hosts=FILE, accept_new_hostkey, "
	"host_key_alias=NAME, ssh_config=FILE, port=N, reconnect_timeout=SECONDS, "
	"connect_timeout=SECONDS, cache_timeout=SECONDS, allow_other, allow_root, "
	"default_permissions, ro, nosuid, nodev, noexec, noatime, debug, "
	"writethrough, local=DIR, flush=tracked|unignored|all, debounce_ms=N, "
	"cache_max=SIZE or unmount_flush=SECONDS "
	"(see 'wakefs --help')";

static int options_error(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int options_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int options_set_str(char **slot, const char *value)
{
	char *copy = strdup(value);

	if (!copy)
		return -ENOMEM;
	free(*slot);
	*slot = copy;
	return 0;
}

/* A whole number in [min, max]; nothing else, no trailing garbage. */
static int options_int(const char *s, long min, long max, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

static int options_seconds(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0 && v <= 86400))
		return -EINVAL;
	*out = v;
	return 0;
}

static int options_port(struct options *o, const char *s, char *err, size_t errlen)
{
	if (options_int(s, 1, 65535, &o->port))
		return options_error(err, errlen,
				     "bad port '%s': expected a number from 1 to 65535", s);
	return 0;
}

/* A "key=value" item whose key is @key: returns the value, else NULL. */
static const char *options_value(const char *item, const char *key)
{
	size_t n = strlen(key);

	if (strncmp(item, key, n) == 0 && item[n] == '=')
		return item + n + 1;
	return NULL;
}

static int options_is_ignored(const char *item)
{
	size_t i;

	if (strncmp(item, "x-", 2) == 0 || options_value(item, "comment") ||
	    options_value(item, "fsname") || options_value(item, "subtype"))
		return 1;
	for (i = 0; options_ignored[i]; i++)
		if (strcmp(item, options_ignored[i]) == 0)
			return 1;
	return 0;
}

struct options_flag {
	const char *name;
	size_t offset;
};

static const struct options_flag options_flags[] = {
	{ "accept_new_hostkey", offsetof(struct options, accept_new_hostkey) },
	{ "allow_other", offsetof(struct options, allow_other) },
	{ "allow_root", offsetof(struct options, allow_root) },
	{ "default_permissions", offsetof(struct options, default_permissions) },
	{ "ro", offsetof(struct options, read_only) },
	{ "nosuid", offsetof(struct options, nosuid) },
	{ "nodev", offsetof(struct options, nodev) },
	{ "noexec", offsetof(struct options, noexec) },
	{ "noatime", offsetof(struct options, noatime) },
	{ "debug", offsetof(struct options, debug) },
	{ "writethrough", offsetof(struct options, writethrough) },
	{ NULL, 0 },
};

struct options_string {
	const char *name;
	size_t offset;
};

static const struct options_string options_strings[] = {
	{ "identity", offsetof(struct options, identity) },
	{ "IdentityFile", offsetof(struct options, identity) },
	{ "known_hosts", offsetof(struct options, known_hosts) },
	{ "host_key_alias", offsetof(struct options, host_key_alias) },
	{ "ssh_config", offsetof(struct options, ssh_config) },
	{ "local", offsetof(struct options, local) },
	{ "flush", offsetof(struct options, flush) },
	{ NULL, 0 },
};

/* A size in bytes with an optional K, M, G or T suffix (powers of 1024). */
static int options_size(const char *s, unsigned long long *out)
{
	unsigned long long v;
	char *end;
	int shift = 0;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'K': case 'k': shift = 10; end++; break;
	case 'M': case 'm': shift = 20; end++; break;
	case 'G': case 'g': shift = 30; end++; break;
	case 'T': case 't': shift = 40; end++; break;
	}
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end || v == 0 || v > (~0ULL >> shift))
		return -EINVAL;
	*out = v << shift;
	return 0;
}

/* The local layer's items (fs/layer.h, fs/flush.h): 1 when @item was one. */
static int options_layer_item(struct options *o, const char *item, int *rc, char *err,
			      size_t errlen)
{
	const char *v;

	if ((v = options_value(item, "debounce_ms"))) {
		if (options_int(v, 0, 3600000, &o->debounce_ms))
			*rc = options_error(err, errlen,
					    "bad option '%s': expected debounce_ms=MILLISECONDS (0 to 3600000)",
					    item);
		else if (o->debounce_ms == 0)
			o->debounce_ms = -1;	/* 0 asked: no debounce (the flusher's 0 means default) */
		return 1;
	}
	if ((v = options_value(item, "cache_max"))) {
		if (options_size(v, &o->cache_max))
			*rc = options_error(err, errlen,
					    "bad option '%s': expected cache_max=SIZE (bytes, or with K, M, G)",
					    item);
		return 1;
	}
	if ((v = options_value(item, "unmount_flush"))) {
		if (options_int(v, 1, 86400, &o->unmount_flush_s))
			*rc = options_error(err, errlen,
					    "bad option '%s': expected unmount_flush=SECONDS (1 to 86400)",
					    item);
		return 1;
	}
	if ((v = options_value(item, "flush"))) {
		if (strcmp(v, "tracked") && strcmp(v, "unignored") && strcmp(v, "all")) {
			*rc = options_error(err, errlen,
					    "bad option '%s': expected flush=tracked, unignored or all",
					    item);
			return 1;
		}
	}
	return 0;
}

/* One item of a -o list. */
static int options_item(struct options *o, const char *item, char *err, size_t errlen)
{
	const char *v;
	size_t i;
	int rc = 0;

	if (!*item)
		return 0;
	if (options_layer_item(o, item, &rc, err, errlen))
		return rc;
	for (i = 0; options_flags[i].name; i++) {
		if (strcmp(item, options_flags[i].name) == 0) {
			*(int *)((char *)o + options_flags[i].offset) = 1;
			return 0;
		}
	}
	for (i = 0; options_strings[i].name; i++) {
		v = options_value(item, options_strings[i].name);
		if (!v)
			continue;
		if (!*v)
			return options_error(err, errlen, "bad option '%s': expected %s=VALUE",
					     item, options_strings[i].name);
		return options_set_str((char **)((char *)o + options_strings[i].offset), v);
	}
	if ((v = options_value(item, "port")))
		return options_port(o, v, err, errlen);
	if ((v = options_value(item, "forward"))) {
		if (o->nforward >= FWD_MAX)
			return options_error(err, errlen, "bad option '%s': at most %d forwards",
					     item, FWD_MAX);
		if (fwd_parse(v, &o->forward[o->nforward], err, errlen))
			return -EINVAL;
		o->nforward++;
		return 0;
	}
	if ((v = options_value(item, "reconnect_timeout"))) {
		if (options_int(v, 1, 86400, &o->reconnect_timeout_s))
			return options_error(err, errlen,
					     "bad option '%s': expected reconnect_timeout=SECONDS (1 to 86400)",
					     item);
		return 0;
	}
	if ((v = options_value(item, "connect_timeout"))) {
		if (options_int(v, 1, 3600, &o->connect_timeout_s))
			return options_error(err, errlen,
					     "bad option '%s': expected connect_timeout=SECONDS (1 to 3600)",
					     item);
		return 0;
	}
	if ((v = options_value(item, "cache_timeout"))) {
		if (options_seconds(v, &o->attr_timeout_s))
			return options_error(err, errlen,
					     "bad option '%s': expected cache_timeout=SECONDS (0 to 86400)",
					     item);
		return 0;
	}
	if (options_is_ignored(item))
		return 0;
	if (options_value(item, "uid") || options_value(item, "gid"))
		return options_error(err, errlen,
				     "bad option '%s': uid/gid remapping is not supported", item);
	return options_error(err, errlen, "bad option '%s': %s", item, options_expected);
}

/* A comma-separated -o list; "\," is a literal comma inside an item. */
static int options_list(struct options *o, const char *list, char *err, size_t errlen)
{
	char *item = malloc(strlen(list) + 1);
	const char *s;
	size_t n = 0;
	int rc = 0;

	if (!item)
		return -ENOMEM;
	for (s = list;; s++) {
		if (*s == '\\' && s[1]) {
			item[n++] = *++s;
			continue;
		}
		if (*s && *s != ',') {
			item[n++] = *s;
			continue;
		}
		item[n] = '\0';
		rc = options_item(o, item, err, errlen);
		if (rc || !*s)
			break;
		n = 0;
	}
	free(item);
	return rc;
}

/*
 * [user@]host:[dir], host possibly a bracketed IPv6 address. The user is
 * everything before the last '@' ahead of the host.
 */
static int options_source(struct options *o, const char *arg, char *err, size_t errlen)
{
	const char *p, *colon, *start = arg, *host, *hend;
	int rc;

	/* The user ends at the last '@' before the host (the dir may hold '@'). */
	for (p = arg; *p && *p != ':' && *p != '['; p++)
		if (*p == '@')
			start = p + 1;
	if (start == arg + 1)
		goto bad;
	host = start;
	if (*host == '[') {
		hend = strchr(host, ']');
		if (!hend || hend[1] != ':')
			goto bad;
		colon = hend + 1;
		host++;
	} else {
		colon = strchr(host, ':');
		if (!colon)
			goto bad;
		hend = colon;
	}
	if (hend == host)
		goto bad;
	rc = options_set_str(&o->source, arg);
	if (!rc && start != arg) {
		o->user = strndup(arg, (size_t)(start - 1 - arg));
		if (!o->user)
			rc = -ENOMEM;
	}
	if (!rc) {
		o->host = strndup(host, (size_t)(hend - host));
		o->dir = strdup(colon + 1);
		if (!o->host || !o->dir)
			rc = -ENOMEM;
	}
	return rc;
bad:
	return options_error(err, errlen,
			     "bad remote '%s': expected [user@]host:[dir], e.g. vm:work/project",
			     arg);
}

static int options_mountpoint(struct options *o, const char *arg, char *err, size_t errlen)
{
	struct stat st;
	char *abs;

	abs = realpath(arg, NULL);
	if (!abs)
		return options_error(err, errlen, "cannot mount on '%s': %s", arg,
				     strerror(errno));
	if (stat(abs, &st) || !S_ISDIR(st.st_mode)) {
		free(abs);
		return options_error(err, errlen,
				     "cannot mount on '%s': not a directory", arg);
	}
	free(o->mountpoint);
	o->mountpoint = abs;
	return 0;
}

/* -f, -d, -s, alone or together ("-fd"). */
static int options_short_flags(struct options *o, const char *arg)
{
	const char *c;

	for (c = arg + 1; *c; c++)
		if (*c != 'f' && *c != 'd' && *c != 's')
			return -EINVAL;
	for (c = arg + 1; *c; c++) {
		if (*c == 'f')
			o->foreground = 1;
		else if (*c == 'd')
			o->debug = 1;
		else
			o->single_thread = 1;
	}
	return 0;
}

/* -X VALUE or -XVALUE: the value, advancing *i past it; NULL when missing. */
static const char *options_arg(int argc, char **argv, int *i)
{
	if (argv[*i][2])
		return argv[*i] + 2;
	if (*i + 1 >= argc)
		return NULL;
	return argv[++*i];
}

int options_parse(struct options *o, int argc, char **argv, char *err, size_t errlen)
{
	const char *pos[2] = { NULL, NULL }, *a, *v;
	int i, npos = 0, dashdash = 0, rc = 0;

	memset(o, 0, sizeof(*o));
	o->reconnect_timeout_s = 60;
	o->attr_timeout_s = 1.0;
	if (errlen)
		err[0] = '\0';

	for (i = 1; i < argc && !rc; i++) {
		a = argv[i];
		if (dashdash || a[0] != '-' || !a[1]) {
			if (npos == 2) {
				rc = options_error(err, errlen,
						   "too many arguments: '%s' (expected [user@]host:[dir] MOUNTPOINT)",
						   a);
				break;
			}
			pos[npos++] = a;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			dashdash = 1;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			o->action = OPTIONS_HELP;
			return 0;
		} else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			o->action = OPTIONS_VERSION;
			return 0;
		} else if (a[1] == 'o' || a[1] == 'p' || a[1] == 'F') {
			v = options_arg(argc, argv, &i);
			if (!v)
				rc = options_error(err, errlen, "option '-%c' needs a value", a[1]);
			else if (a[1] == 'o')
				rc = options_list(o, v, err, errlen);
			else if (a[1] == 'p')
				rc = options_port(o, v, err, errlen);
			else
				rc = options_set_str(&o->ssh_config, v);
		} else if (options_short_flags(o, a)) {
			rc = options_error(err, errlen,
					   "bad option '%s': expected -p PORT, -F FILE, -o LIST, -f, -d, -s, --help or --version",
					   a);
		}
	}
	if (rc)
		return rc;
	if (npos < 2)
		return options_error(err, errlen,
				     "missing %s: usage: wakefs [options] [user@]host:[dir] MOUNTPOINT (see 'wakefs --help')",
				     npos ? "MOUNTPOINT" : "[user@]host:[dir] and MOUNTPOINT");
	rc = options_source(o, pos[0], err, errlen);
	if (!rc)
		rc = options_mountpoint(o, pos[1], err, errlen);
	if (rc)
		return rc;
	if (o->debug)
		o->foreground = 1;
	if (o->allow_other && o->allow_root)
		return options_error(err, errlen,
				     "bad options 'allow_other' and 'allow_root': choose one");
	/* Other users in a mount are checked by the kernel against mode bits. */
	if (o->allow_other || o->allow_root)
		o->default_permissions = 1;
	return 0;
}

void options_release(struct options *o)
{
	if (!o)
		return;
	free(o->source);
	free(o->user);
	free(o->host);
	free(o->dir);
	free(o->identity);
	free(o->known_hosts);
	free(o->host_key_alias);
	free(o->ssh_config);
	free(o->mountpoint);
	free(o->local);
	free(o->flush);
	memset(o, 0, sizeof(*o));
}

void options_remote(const struct options *o, struct remote_opts *ro)
{
	memset(ro, 0, sizeof(*ro));
	ro->host = o->host;
	ro->user = o->user;
	ro->port = o->port;
	ro->identity = o->identity;
	ro->known_hosts = o->known_hosts;
	ro->host_key_alias = o->host_key_alias;
	ro->ssh_config = o->ssh_config;
	ro->accept_new_hostkey = o->accept_new_hostkey;
	ro->connect_timeout_ms = o->connect_timeout_s * 1000;
	ro->request_timeout_ms = o->reconnect_timeout_s * 1000;
	fwd_preset(o->forward, o->nforward);
}

const char *options_usage(void)
{
	return "usage: wakefs [options] [user@]host:[dir] MOUNTPOINT\n"
	       "\n"
	       "Mount the directory DIR of HOST (default: the login directory) over SSH/SFTP.\n"
	       "\n"
	       "options:\n"
	       "  -p PORT                    SSH port (default: ssh_config's Port, else 22)\n"
	       "  -F FILE                    ssh_config file (default: ~/.ssh/config)\n"
	       "  -f                         stay in the foreground\n"
	       "  -d                         print every FUSE request (implies -f)\n"
	       "  -s                         serve requests on one thread\n"
	       "  -o LIST                    comma-separated options:\n"
	       "     identity=FILE           private key file (default: agent, then ssh_config, then ~/.ssh/id_*)\n"
	       "     known_hosts=FILE        known_hosts file (default: ssh_config's, else ~/.ssh/known_hosts)\n"
	       "     accept_new_hostkey      record an unknown host key instead of refusing it\n"
	       "     host_key_alias=NAME     look the host key up (and record it) under NAME\n"
	       "     ssh_config=FILE         same as -F FILE\n"
	       "     port=N                  same as -p N\n"
	       "     forward=SPEC            while mounted, 127.0.0.1:LOCALPORT reaches the VM's\n"
	       "                             HOST:REMOTEPORT through the mount's SSH connection;\n"
	       "                             SPEC is PORT (localhost:PORT) or LOCALPORT:HOST:REMOTEPORT;\n"
	       "                             repeatable (a taken local port is a warning)\n"
	       "     connect_timeout=SECONDS give up connecting after SECONDS (default 15)\n"
	       "     reconnect_timeout=SECONDS  a call waits this long for a lost connection\n"
	       "                             to come back, then fails with EIO (default 60)\n"
	       "     cache_timeout=SECONDS   attribute and name cache lifetime (default 1)\n"
	       "     allow_other             let other users use the mount (checked by mode bits)\n"
	       "     allow_root              let root use the mount too\n"
	       "     default_permissions     let the kernel check mode bits\n"
	       "     ro                      mount read-only\n"
	       "     nosuid, nodev, noexec, noatime   passed to the kernel\n"
	       "     debug                   same as -d\n"
	       "     writethrough            no local layer: every change is on the VM when the call\n"
	       "                             returns (the default is the local write-back layer)\n"
	       "     local=DIR               the local layer directory, which may be an existing clone\n"
	       "                             (default: $XDG_DATA_HOME/wakefs/HOST-DIR)\n"
	       "     flush=tracked|unignored|all  what goes to the VM (default: git-tracked files)\n"
	       "     debounce_ms=N           send a file N ms after its last close (default 1000)\n"
	       "     cache_max=SIZE          bound on the clean cached copies (default 4G)\n"
	       "     unmount_flush=SECONDS   how long unmount waits for the flush (default 30)\n"
	       "  -h, --help                 print this help\n"
	       "  -V, --version              print the version\n"
	       "\n"
	       "fstab words such as rw, defaults, noauto, user, _netdev and nofail are\n"
	       "accepted and ignored, so 'mount -t fuse.wakefs host:dir MOUNTPOINT -o LIST'\n"
	       "and fstab entries work.\n";
}
