/*
 * fs/lifecycle.c: the profile mount: wake the VM, mount it, keep it alive or
 * let it sleep, and deallocate it when the mount goes.
 *
 * mount (lifecycle_new, in the foreground, before main.c forks): config ->
 * vm_open -> vm_start unless running -> vm_address + vm_ssh_params -> wait
 * for the SSH banner -> a `host:dir MOUNTPOINT -o ...` command line for
 * options_parse(). From lifecycle_attach on, one thread of ours sends a
 * heartbeat over the mount's SSH session every minute (the VM-side watchdog
 * reads it) and watches for idleness. The VM's states, as this mount sees
 * them:
 *
 *   AWAKE  -> ASLEEP   [lifecycle_idle: no activity for idle_deallocate: flush, vm_stop]
 *   ASLEEP -> WAKING   [a filesystem call the layer cannot answer wants the VM]
 *   WAKING -> AWAKE    [lifecycle_redial, in the engine's I/O thread: vm_start, address]
 *
 * While ASLEEP the engine's redial hook blocks in lifecycle_redial until a
 * filesystem call sets `demand` (or the mount ends), so nothing but a user's
 * access wakes the VM. Calls the local layer answers (cached files, changes)
 * do not: a lookup that misses in the layer wakes the VM and runs again once
 * the session is back; a call stuck in the engine's queue (a download) wakes
 * it after LIFECYCLE_STUCK_MS; a write-through mount wakes it on any call.
 * unmount (lifecycle_finish, after the FUSE loop):
 * flush (bounded) -> guard over SSH -> vm_stop unless kept -> report. The
 * report goes to stderr and to a file next to the control socket, which
 * `wakefs umount` prints after the daemon has exited.
 *
 * Locks: lc->vm_lock serialises every use of the struct vm (the I/O thread's
 * redial and our thread both use it); lc->lock protects the fields marked
 * below and is a leaf: taken after vm_lock, never held across a call into
 * vmctl or the engine.
 */
#include "lifecycle.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "control.h"
#include "flush.h"
#include "layer.h"
#include "proc.h"
#include "provider.h"
#include "remote.h"

#define LIFECYCLE_SSH_WAIT_S 300	/* a VM's sshd may take minutes after boot */
#define LIFECYCLE_FLUSH_MS 30000	/* the unmount's flush bound */
#define LIFECYCLE_GUARD_MS 30000
#define LIFECYCLE_UMOUNT_WAIT_S 900	/* `wakefs umount` waits this long for the daemon */
#define LIFECYCLE_WAKE_WAIT_S 600	/* a call that woke the VM waits this long (reconnect_timeout) */
#define LIFECYCLE_STUCK_MS 3000	/* calls making no progress this long while asleep want the VM */

/*
 * The default guard: the user's python processes, Jupyter kernels and GPU
 * compute processes. Exit 0 with one line per job when some run.
 */
static const char lifecycle_default_guard[] =
	"found=$(ps -o pid=,args= -u \"$(id -u)\" 2>/dev/null | "
	"grep -E '(^|[ /])(python[0-9.]*|jupyter[-a-z]*|ipykernel_launcher)( |$)|ipykernel' | "
	"grep -v -e 'wakefs-guard' -e 'grep ' ); "
	"gpu=$(command -v nvidia-smi >/dev/null 2>&1 && "
	"nvidia-smi --query-compute-apps=pid,process_name --format=csv,noheader 2>/dev/null); "
	"[ -n \"$found$gpu\" ] || exit 1; "
	"printf '%s\\n' \"$found\" \"$gpu\" | sed '/^ *$/d' | sed 's/^ *//' | cut -c1-120 # wakefs-guard";

enum lifecycle_state { LC_AWAKE, LC_ASLEEP };

struct lifecycle {
	struct config *cfg;
	struct vm *vm;
	char *profile;
	char *config_path;	/* as loaded, for `wakefs status` (may be NULL: default) */
	int started;		/* this mount started the VM */
	int keep_vm;		/* keep_vm = yes */
	long idle_s;		/* idle_deallocate, 0: never */
	int heartbeat_s;
	char *guard_cmd;	/* NULL: the default guard */
	char host[256];
	int port;

	int argc;
	char **argv;		/* for options_parse; owned */

	struct remote *r;	/* borrowed */
	struct flusher *f;	/* borrowed, may be NULL */
	struct layer *layer;	/* borrowed, may be NULL (write-through) */
	char life_path[PATH_MAX];	/* the mount's record, for umount and status */
	char report_path[PATH_MAX + 16];
	char keep_path[PATH_MAX + 16];
	pthread_t thread;
	int thread_running;

	pthread_mutex_t vm_lock;	/* every vm_* call; taken before lock */
	pthread_mutex_t lock;		/* a leaf; protects the fields below */
	pthread_cond_t cond;
	enum lifecycle_state state;
	int demand;		/* ASLEEP: a filesystem call wants the VM */
	int stopping;
	time_t last_activity;
	int inflight;		/* calls entered while ASLEEP, still running */
	unsigned long inflight_done;	/* of those, how many returned */
};

/* One profile mount per process: the wrapped operations find it here. */
static struct lifecycle *lifecycle_self;
static struct fuse_operations lifecycle_table;
static const struct fuse_operations *lifecycle_inner;

static int lifecycle_is_tty;

int lifecycle_is_command(const char *word)
{
	return word && (!strcmp(word, "mount") || !strcmp(word, "umount"));
}

static time_t lifecycle_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void lifecycle_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void lifecycle_say(const char *fmt, ...)
{
	va_list ap;

	fputs("wakefs: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Progress of vm_start/vm_stop: one line per state, redrawn on a TTY. */
static void lifecycle_progress(const char *what, const char *state, long elapsed_s, void *payload)
{
	static char last[64];
	const char *profile = payload;

	if (lifecycle_is_tty) {
		fprintf(stderr, "\rwakefs: %s '%s': %s (%lds)\033[K", what, profile, state,
			elapsed_s);
		if (!strcmp(state, "running") || !strcmp(state, "deallocated"))
			fputc('\n', stderr);
		fflush(stderr);
	} else if (strcmp(last, state)) {
		lifecycle_say("%s '%s': %s", what, profile, state);
	}
	snprintf(last, sizeof(last), "%s", state);
}

/* 1 once @host:@port sends an SSH banner within @ms. */
static int lifecycle_ssh_answers(const char *host, int port, int ms)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL, *ai;
	char portstr[16], buf[4];
	struct pollfd pfd;
	int ok = 0, fd;

	snprintf(portstr, sizeof(portstr), "%d", port ? port : 22);
	if (getaddrinfo(host, portstr, &hints, &res))
		return 0;
	for (ai = res; ai && !ok; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    ai->ai_protocol);
		if (fd < 0)
			continue;
		pfd.fd = fd;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
			close(fd);
			continue;
		}
		pfd.events = POLLIN;
		if (poll(&pfd, 1, ms) > 0 && (pfd.revents & POLLIN))
			ok = read(fd, buf, 4) == 4 && !memcmp(buf, "SSH-", 4);
		close(fd);
	}
	freeaddrinfo(res);
	return ok;
}

/* Wait until SSH answers on the VM's current address (held in lc->host/port). */
static int lifecycle_wait_ssh(struct lifecycle *lc, int limit_s, char *err, size_t errlen)
{
	time_t t0 = lifecycle_now();

	while (!lifecycle_ssh_answers(lc->host, lc->port, 2000)) {
		if (lifecycle_now() - t0 >= limit_s) {
			snprintf(err, errlen,
				 "the VM of '%s' runs but SSH does not answer on %s port %d after %lds",
				 lc->profile, lc->host, lc->port ? lc->port : 22,
				 (long)(lifecycle_now() - t0));
			return -ETIMEDOUT;
		}
		if (lifecycle_is_tty)
			lifecycle_progress("wait for SSH on", "waiting",
					   (long)(lifecycle_now() - t0), lc->profile);
		usleep(250 * 1000);
	}
	return 0;
}

/* Resolve the address and the login now (a deallocated VM's IP changes). Needs vm_lock. */
static int lifecycle_resolve(struct lifecycle *lc, struct vm_ssh_params *sp, char *err,
			     size_t errlen)
{
	struct vm_error ve;
	int rc;

	rc = vm_address(lc->vm, lc->host, sizeof(lc->host), &ve);
	if (!rc)
		rc = vm_ssh_params(lc->vm, sp, &ve);
	if (rc) {
		snprintf(err, errlen, "%s", ve.message);
		return -EHOSTUNREACH;
	}
	lc->port = sp->port;
	return 0;
}

/* Start the VM unless it runs. Needs vm_lock. Sets lc->started when we started it. */
static int lifecycle_wake(struct lifecycle *lc, char *err, size_t errlen)
{
	struct vm_status st;
	struct vm_error ve;
	int rc;

	rc = vm_status(lc->vm, &st, &ve);
	if (!rc && st.power == VM_POWER_RUNNING)
		return 0;
	rc = vm_start(lc->vm, &ve);
	if (rc) {
		snprintf(err, errlen, "cannot start the VM of '%s': %s", lc->profile, ve.message);
		return -EHOSTDOWN;
	}
	lc->started = 1;
	return 0;
}

/* Deallocate (needs vm_lock); the message of a failure goes to @err. */
static int lifecycle_stop_vm(struct lifecycle *lc, char *err, size_t errlen)
{
	struct vm_error ve;

	if (vm_stop(lc->vm, 0, &ve)) {
		snprintf(err, errlen, "%s", ve.message);
		return -EIO;
	}
	return 0;
}

/* Append @s to the argv under construction. */
static int lifecycle_push(struct lifecycle *lc, const char *s)
{
	char **v = realloc(lc->argv, sizeof(*v) * (size_t)(lc->argc + 2));

	if (!v)
		return -ENOMEM;
	lc->argv = v;
	v[lc->argc] = strdup(s);
	if (!v[lc->argc])
		return -ENOMEM;
	v[++lc->argc] = NULL;
	return 0;
}

/* "key=value," with commas escaped (options_parse reads "\," as a comma). */
static void lifecycle_opt(char *buf, size_t len, const char *key, const char *value)
{
	size_t n = strlen(buf);

	if (!value || !*value)
		return;
	n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s%s=", n ? "," : "", key);
	for (; *value && n + 3 < len; value++) {
		if (*value == ',' || *value == '\\')
			buf[n++] = '\\';
		buf[n++] = *value;
	}
	buf[n < len ? n : len - 1] = 0;
}

/* The VM directory as options_parse wants it: relative to the login dir, or absolute. */
static char *lifecycle_remote_dir(struct lifecycle *lc)
{
	const char *d = vm_profile_get(lc->vm, "remote_dir");
	char buf[PATH_MAX];

	if (!d || !*d) {
		snprintf(buf, sizeof(buf), "work/%s", lc->profile);
		return strdup(buf);
	}
	if (!strcmp(d, "~"))
		return strdup("");
	if (!strncmp(d, "~/", 2))
		return strdup(d + 2);
	return strdup(d);
}

/*
 * The local layer: the profile's `local`, else $XDG_DATA_HOME/wakefs/PROFILE
 * (~/.local/share/...): named after the profile, since a woken VM's address
 * may change. Caller frees; NULL when out of memory.
 */
static char *lifecycle_local_dir(struct lifecycle *lc)
{
	const char *l = vm_profile_get(lc->vm, "local"), *data = getenv("XDG_DATA_HOME");
	const char *home = getenv("HOME");
	char buf[PATH_MAX];

	if (l && *l)
		return config_expand_home(l);
	if (data && *data)
		snprintf(buf, sizeof(buf), "%s/wakefs/%s", data, lc->profile);
	else
		snprintf(buf, sizeof(buf), "%s/.local/share/wakefs/%s", home ? home : "",
			 lc->profile);
	return strdup(buf);
}

static int lifecycle_build_argv(struct lifecycle *lc, const char *argv0, const char *mnt,
				const struct vm_ssh_params *sp, char **rest, int nrest)
{
	char src[PATH_MAX + 512], o[3 * PATH_MAX], port[16];
	char *dir = lifecycle_remote_dir(lc), *local;
	int rc, i;

	if (!dir)
		return -ENOMEM;
	snprintf(src, sizeof(src), "%s%s%s%s%s:%s", sp->user[0] ? sp->user : "",
		 sp->user[0] ? "@" : "", strchr(lc->host, ':') ? "[" : "", lc->host,
		 strchr(lc->host, ':') ? "]" : "", dir);
	free(dir);
	o[0] = 0;
	lifecycle_opt(o, sizeof(o), "host_key_alias", lc->profile);
	if (sp->port) {
		snprintf(port, sizeof(port), "%d", sp->port);
		lifecycle_opt(o, sizeof(o), "port", port);
	}
	lifecycle_opt(o, sizeof(o), "identity", sp->identity);
	lifecycle_opt(o, sizeof(o), "known_hosts", sp->known_hosts);
	if (lc->idle_s)	/* a call that wakes the VM waits for its start */
		lifecycle_opt(o, sizeof(o), "reconnect_timeout", "600");
	lifecycle_opt(o, sizeof(o), "flush", vm_profile_get(lc->vm, "flush"));
	{	/* the profile's port forwards, one forward= each (fs/forward.h) */
		const struct config_value *fw = NULL;

		while ((fw = config_next(vm_section(lc->vm), "forward", fw)))
			lifecycle_opt(o, sizeof(o), "forward", fw->value);
	}
	local = lifecycle_local_dir(lc);
	if (!local)
		return -ENOMEM;
	lifecycle_opt(o, sizeof(o), "local", local);
	free(local);
	rc = lifecycle_push(lc, argv0);
	if (!rc)
		rc = lifecycle_push(lc, src);
	if (!rc)
		rc = lifecycle_push(lc, mnt);
	if (!rc && o[0])
		rc = lifecycle_push(lc, "-o");
	if (!rc && o[0])
		rc = lifecycle_push(lc, o);
	for (i = 0; !rc && i < nrest; i++)
		rc = lifecycle_push(lc, rest[i]);
	return rc;
}

/* The profile's lifecycle settings. */
static int lifecycle_settings(struct lifecycle *lc, char *err, size_t errlen)
{
	const struct config_section *sec = vm_section(lc->vm);
	const char *g = vm_profile_get(lc->vm, "guard_cmd"), *hb = getenv("WAKEFS_HEARTBEAT_S");
	int rc;

	rc = config_get_bool(sec, "keep_vm", 0, &lc->keep_vm, err, errlen);
	if (!rc)
		rc = config_get_duration(sec, "idle_deallocate", 0, &lc->idle_s, err, errlen);
	if (rc)
		return rc;
	if (g && *g && !(lc->guard_cmd = strdup(g)))
		return -ENOMEM;
	lc->heartbeat_s = hb && atoi(hb) > 0 ? atoi(hb) : 60;
	return 0;
}

int lifecycle_new(struct lifecycle **out, int argc, char **argv, char *err, size_t errlen)
{
	struct lifecycle *lc;
	struct vm_ssh_params sp;
	struct vm_error ve;
	char msg[1024], stopmsg[512];
	char **rest = NULL;
	const char *profile = NULL, *mnt = NULL, *cfgpath = NULL;
	int nrest = 0, rc, i;

	*out = NULL;
	lifecycle_is_tty = isatty(2);
	lc = calloc(1, sizeof(*lc));
	rest = calloc((size_t)argc + 1, sizeof(*rest));
	if (!lc || !rest) {
		free(lc);
		free(rest);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&lc->vm_lock, NULL);
	pthread_mutex_init(&lc->lock, NULL);
	pthread_cond_init(&lc->cond, NULL);
	lc->last_activity = lifecycle_now();

	/* argv: wakefs mount [--config FILE] PROFILE MOUNTPOINT [options...] */
	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--config") && i + 1 < argc)
			cfgpath = argv[++i];
		else if (!strncmp(argv[i], "--config=", 9))
			cfgpath = argv[i] + 9;
		else if (!profile && argv[i][0] != '-')
			profile = argv[i];
		else if (!mnt && profile && argv[i][0] != '-')
			mnt = argv[i];
		else
			rest[nrest++] = argv[i];
	}
	if (!profile || !mnt) {
		snprintf(err, errlen,
			 "usage: wakefs mount [--config FILE] PROFILE MOUNTPOINT [options]");
		rc = -EINVAL;
		goto fail;
	}
	rc = config_load(&lc->cfg, cfgpath, msg, sizeof(msg));
	if (rc) {
		snprintf(err, errlen, "%s", msg);
		goto fail;
	}
	if (cfgpath && !(lc->config_path = strdup(cfgpath))) {
		rc = -ENOMEM;
		goto fail;
	}
	if (!(lc->profile = strdup(profile))) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = vm_open(&lc->vm, lc->cfg, profile, &ve);
	if (rc) {
		snprintf(err, errlen, "%s", ve.message);
		rc = -EINVAL;
		goto fail;
	}
	rc = lifecycle_settings(lc, err, errlen);
	if (rc)
		goto fail;
	vm_set_progress(lifecycle_progress, lc->profile);
	rc = lifecycle_wake(lc, err, errlen);
	if (!rc)
		rc = lifecycle_resolve(lc, &sp, err, errlen);
	if (!rc)
		rc = lifecycle_wait_ssh(lc, LIFECYCLE_SSH_WAIT_S, err, errlen);
	if (!rc)
		rc = lifecycle_build_argv(lc, argv[0], mnt, &sp, rest, nrest);
	if (rc == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	if (rc && lc->started) {
		size_t n = strlen(err);

		if (lifecycle_stop_vm(lc, stopmsg, sizeof(stopmsg)) == 0)
			snprintf(err + n, errlen - n, " (deallocated '%s' again)", lc->profile);
		else
			snprintf(err + n, errlen - n,
				 " (and it could not be deallocated again: %s; run 'vmctl -p %s stop')",
				 stopmsg, lc->profile);
	}
	if (rc)
		goto fail;
	free(rest);
	*out = lc;
	return 0;
fail:
	free(rest);
	lifecycle_free(lc);
	return rc;
}

int lifecycle_argc(const struct lifecycle *lc)
{
	return lc->argc;
}

char **lifecycle_argv(const struct lifecycle *lc)
{
	return lc->argv;
}

/* --- while mounted ---------------------------------------------------------- */

/*
 * A filesystem call begins: note the activity. Returns 1 when the VM sleeps;
 * the call then runs against the local layer first (as with the VM out of
 * reach) and is counted until lifecycle_leave(). Without a layer
 * (write-through) every call needs the VM: @wake makes it wanted at once.
 */
static int lifecycle_enter(int wake)
{
	struct lifecycle *lc = lifecycle_self;
	int asleep;

	if (!lc)
		return 0;
	pthread_mutex_lock(&lc->lock);
	lc->last_activity = lifecycle_now();
	asleep = lc->state == LC_ASLEEP;
	if (asleep) {
		lc->inflight++;
		if (wake && !lc->layer && !lc->demand) {
			lc->demand = 1;
			pthread_cond_broadcast(&lc->cond);
		}
	}
	pthread_mutex_unlock(&lc->lock);
	return asleep;
}

static void lifecycle_leave(int asleep)
{
	struct lifecycle *lc = lifecycle_self;

	if (!lc || !asleep)
		return;
	pthread_mutex_lock(&lc->lock);
	lc->inflight--;
	lc->inflight_done++;
	pthread_mutex_unlock(&lc->lock);
}

struct lifecycle_find {
	const char *name;
	int found;
};

static int lifecycle_find_cb(const char *name, const struct stat *st, void *payload)
{
	struct lifecycle_find *fd = payload;

	(void)st;
	if (!strcmp(name, fd->name))
		fd->found = 1;
	return 0;
}

/*
 * 1 when the layer knows that the VM lacks @path: a deallocated VM changes
 * nothing on its disk, so what the layer learnt before the sleep still holds.
 * Known: a hidden or deleted name, a negative entry for it or an ancestor, or
 * a listing of its directory (or an ancestor's) that lacks it.
 */
static int lifecycle_known_missing(struct lifecycle *lc, const char *path)
{
	char p[PATH_MAX], *slash;
	struct lifecycle_find fd;
	struct stat st;

	if (!lc->layer || !path || path[0] != '/' || strlen(path) >= sizeof(p))
		return 0;
	if (layer_hidden(path) || layer_is_whiteout(lc->layer, path))
		return 1;
	snprintf(p, sizeof(p), "%s", path);
	while (p[1]) {	/* p, then each ancestor below the root */
		if (layer_attr_get_max(lc->layer, p, &st, -1) == -ENOENT)
			return 1;
		slash = strrchr(p, '/');
		fd.name = slash + 1;
		fd.found = 0;
		*slash = 0;
		if (layer_dir_get_stale(lc->layer, p[0] ? p : "/", lifecycle_find_cb, &fd) == 0 &&
		    !fd.found)
			return 1;
		if (!p[0])
			break;
	}
	return 0;
}

/*
 * What a call of @path answered from the layer alone, when the VM may have
 * another answer: a failure to reach it, or a name the layer knows nothing of.
 */
static int lifecycle_missed_path(int rc, const char *path)
{
	if (rc == -ENOENT)
		return lifecycle_self && !lifecycle_known_missing(lifecycle_self, path);
	return rc == -EIO || rc == -ENOTCONN || rc == -ETIMEDOUT || rc == -EHOSTDOWN ||
	       rc == -EHOSTUNREACH || rc == -ECONNRESET || rc == -ESHUTDOWN || rc == -EAGAIN;
}

/*
 * A call needs the sleeping VM: want it, and wait until it is awake and the
 * engine connected again (bounded). 0 when it is, else -ETIMEDOUT or
 * -ESHUTDOWN (the mount ends).
 */
static int lifecycle_wait_awake(void)
{
	struct lifecycle *lc = lifecycle_self;
	struct timespec ts;
	time_t t0 = lifecycle_now();
	int rc = 0;

	if (!lc)
		return -ESHUTDOWN;
	pthread_mutex_lock(&lc->lock);
	for (;;) {
		if (lc->stopping) {
			rc = -ESHUTDOWN;
			break;
		}
		if (lc->state == LC_AWAKE) {
			/* the redial hook is done; the session follows it */
			pthread_mutex_unlock(&lc->lock);
			rc = remote_connected(lc->r) ? 0 : -EAGAIN;
			pthread_mutex_lock(&lc->lock);
			if (!rc)
				break;
		} else if (!lc->demand) {
			lc->demand = 1;
			pthread_cond_broadcast(&lc->cond);
		}
		if (lifecycle_now() - t0 >= LIFECYCLE_WAKE_WAIT_S) {
			rc = -ETIMEDOUT;
			break;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&lc->cond, &lc->lock, &ts);
	}
	lc->last_activity = lifecycle_now();
	pthread_mutex_unlock(&lc->lock);
	return rc;
}

/*
 * The engine's redial hook (its I/O thread), before every reconnect: while
 * the VM sleeps, wait for a filesystem call to want it; then start it unless
 * it runs (the watchdog or the user may have deallocated it too) and give
 * the current address.
 */
static int lifecycle_redial(void *payload, char *host, size_t hostlen, int *port)
{
	struct lifecycle *lc = payload;
	struct vm_ssh_params sp;
	char err[512];
	int rc, asleep;

	pthread_mutex_lock(&lc->lock);
	while (lc->state == LC_ASLEEP && !lc->demand && !lc->stopping)
		pthread_cond_wait(&lc->cond, &lc->lock);
	rc = lc->stopping ? -ESHUTDOWN : 0;
	pthread_mutex_unlock(&lc->lock);
	if (rc)
		return rc;
	pthread_mutex_lock(&lc->vm_lock);
	rc = lifecycle_wake(lc, err, sizeof(err));
	if (!rc)
		rc = lifecycle_resolve(lc, &sp, err, sizeof(err));
	if (!rc)
		rc = lifecycle_wait_ssh(lc, LIFECYCLE_SSH_WAIT_S, err, sizeof(err));
	if (!rc) {
		snprintf(host, hostlen, "%s", lc->host);
		if (sp.port)
			*port = sp.port;
	}
	pthread_mutex_unlock(&lc->vm_lock);
	if (rc) {
		lifecycle_say("%s", err);
		return rc;
	}
	pthread_mutex_lock(&lc->lock);
	asleep = lc->state == LC_ASLEEP;
	pthread_mutex_unlock(&lc->lock);
	if (asleep) {
		lifecycle_say("woke the VM of '%s' for an access", lc->profile);
		/*
		 * What the layer knows of the VM is from before the sleep: ask
		 * again (the change feed catches up only at its next scan).
		 */
		if (lc->layer)
			layer_invalidate_all(lc->layer);
	}
	pthread_mutex_lock(&lc->lock);
	lc->state = LC_AWAKE;
	lc->demand = 0;
	lc->last_activity = lifecycle_now();
	pthread_cond_broadcast(&lc->cond);
	pthread_mutex_unlock(&lc->lock);
	return 0;
}

/* Tell the VM-side watchdog that a mount is alive. */
static void lifecycle_heartbeat(struct lifecycle *lc)
{
	char *out = NULL;
	int status = 0;

	if (!remote_connected(lc->r))
		return;
	if (remote_exec(lc->r, "mkdir -p ~/.cache/wakefs && touch ~/.cache/wakefs/heartbeat", 256,
			10000, &out, NULL, &status) == 0 && status != 0)
		lifecycle_say("cannot record the heartbeat on '%s' (exit %d)", lc->profile, status);
	free(out);
}

/* Idle for idle_deallocate: flush, then deallocate while staying mounted. */
static void lifecycle_idle(struct lifecycle *lc)
{
	char err[512];
	int rc = 0;

	if (lc->f)
		rc = flush_all(lc->f, LIFECYCLE_FLUSH_MS);
	if (rc) {
		lifecycle_say("idle, but changes are still unflushed (%s): keeping '%s' running",
			      strerror(-rc), lc->profile);
		pthread_mutex_lock(&lc->lock);
		lc->last_activity = lifecycle_now();
		pthread_mutex_unlock(&lc->lock);
		return;
	}
	pthread_mutex_lock(&lc->lock);
	lc->state = LC_ASLEEP;	/* first, so that the lost connection waits for demand */
	lc->demand = 0;
	pthread_mutex_unlock(&lc->lock);
	pthread_mutex_lock(&lc->vm_lock);
	rc = lifecycle_stop_vm(lc, err, sizeof(err));
	pthread_mutex_unlock(&lc->vm_lock);
	pthread_mutex_lock(&lc->lock);
	if (rc) {
		lc->state = LC_AWAKE;
		lc->last_activity = lifecycle_now();
		pthread_cond_broadcast(&lc->cond);
	}
	pthread_mutex_unlock(&lc->lock);
	if (rc)
		lifecycle_say("idle, but cannot deallocate '%s': %s", lc->profile, err);
	else
		lifecycle_say("idle for %lds: deallocated '%s' (the next access wakes it)",
			      lc->idle_s, lc->profile);
}

static void *lifecycle_main(void *arg)
{
	struct lifecycle *lc = arg;
	time_t last_hb = 0, now, progress = 0;
	unsigned long done_seen = 0;
	struct timespec ts;
	int idle, awake, stuck = 0;

	pthread_mutex_lock(&lc->lock);
	while (!lc->stopping) {
		now = lifecycle_now();
		awake = lc->state == LC_AWAKE;
		idle = awake && lc->idle_s > 0 && now - lc->last_activity >= lc->idle_s;
		/*
		 * A call the layer cannot answer while the VM sleeps waits in
		 * the engine's queue: calls that make no progress for a while
		 * want the VM (the layer answers the others at local speed).
		 */
		if (awake || !lc->inflight || lc->demand || lc->inflight_done != done_seen) {
			done_seen = lc->inflight_done;
			progress = now;
		} else if ((now - progress) * 1000 >= LIFECYCLE_STUCK_MS) {
			lc->demand = 1;
			pthread_cond_broadcast(&lc->cond);
			stuck = 1;
		}
		pthread_mutex_unlock(&lc->lock);
		if (stuck)
			lifecycle_say("an access to '%s' waits for the VM: waking it", lc->profile);
		stuck = 0;
		if (awake && (!last_hb || now - last_hb >= lc->heartbeat_s)) {
			lifecycle_heartbeat(lc);
			last_hb = now;
		}
		if (idle)
			lifecycle_idle(lc);
		pthread_mutex_lock(&lc->lock);
		if (lc->stopping)
			break;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&lc->cond, &lc->lock, &ts);
	}
	pthread_mutex_unlock(&lc->lock);
	return NULL;
}

/* The mount's record: $control_socket_path minus ".sock", plus @suffix. */
static int lifecycle_record_path(const char *mountpoint, const char *suffix, char *buf,
				 size_t len)
{
	char sock[PATH_MAX];
	size_t n;
	int rc = control_socket_path(mountpoint, sock, sizeof(sock));

	if (rc)
		return rc;
	n = strlen(sock);
	if (n > 5 && !strcmp(sock + n - 5, ".sock"))
		sock[n - 5] = 0;
	/* the control socket's private directory may not exist yet */
	{
		char *slash = strrchr(sock, '/');

		if (slash && slash != sock) {
			*slash = 0;
			if (mkdir(sock, 0700) < 0 && errno != EEXIST)
				return -errno;
			*slash = '/';
		}
	}
	if ((size_t)snprintf(buf, len, "%s%s", sock, suffix) >= len)
		return -ENAMETOOLONG;
	return 0;
}

static int lifecycle_write_file(const char *path, const char *text)
{
	char tmp[PATH_MAX + 8];
	FILE *f;
	int err = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	if (fputs(text, f) < 0)
		err = -EIO;
	if (fclose(f) && !err)
		err = -errno;
	if (!err && rename(tmp, path) < 0)
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

void lifecycle_set_layer(struct lifecycle *lc, struct layer *l)
{
	if (lc)
		lc->layer = l;
}

int lifecycle_attach(struct lifecycle *lc, struct remote *r, struct flusher *f,
		     const char *mountpoint)
{
	char text[PATH_MAX + 512], cfg[PATH_MAX];
	int rc;

	lc->r = r;
	lc->f = f;
	remote_set_redial(r, lifecycle_redial, lc);
	rc = lifecycle_record_path(mountpoint, ".life", lc->life_path, sizeof(lc->life_path));
	if (!rc) {
		snprintf(lc->report_path, sizeof(lc->report_path), "%s.report", lc->life_path);
		snprintf(lc->keep_path, sizeof(lc->keep_path), "%s.keep", lc->life_path);
		unlink(lc->report_path);
		unlink(lc->keep_path);
		if (lc->config_path && realpath(lc->config_path, cfg))
			;
		else if (lc->config_path)
			snprintf(cfg, sizeof(cfg), "%s", lc->config_path);
		else
			cfg[0] = 0;
		snprintf(text, sizeof(text), "%ld\n%s\n%s\n", (long)getpid(), lc->profile, cfg);
		rc = lifecycle_write_file(lc->life_path, text);
	}
	if (rc)
		lifecycle_say("cannot record the mount for 'wakefs umount': %s", strerror(-rc));
	lifecycle_self = lc;
	rc = -pthread_create(&lc->thread, NULL, lifecycle_main, lc);
	if (rc)
		return rc;
	lc->thread_running = 1;
	return 0;
}

/* --- the wrapped operations ---------------------------------------------------- */

/*
 * Each call notes the activity. While the VM sleeps, a lookup runs against
 * the layer first; when that misses (a name, listing or content it does not
 * hold) it wakes the VM, waits for the session and runs again. Changes go to
 * the layer as with the VM out of reach and reach the VM after the wake.
 */
#define LC_WRAP(name, params, args)                         \
	static int lifecycle_op_##name params               \
	{                                                   \
		int asleep_ = lifecycle_enter(1), rc_;      \
		rc_ = lifecycle_inner->name args;           \
		lifecycle_leave(asleep_);                   \
		return rc_;                                 \
	}

#define LC_LOOKUP(name, params, args)                                                \
	static int lifecycle_op_##name params                                        \
	{                                                                            \
		int asleep_ = lifecycle_enter(1), rc_;                               \
		rc_ = lifecycle_inner->name args;                                    \
		if (asleep_ && lifecycle_missed_path(rc_, p) && !lifecycle_wait_awake()) \
			rc_ = lifecycle_inner->name args;                            \
		lifecycle_leave(asleep_);                                            \
		return rc_;                                                          \
	}

LC_LOOKUP(getattr, (const char *p, struct stat *st, struct fuse_file_info *fi), (p, st, fi))
LC_LOOKUP(readlink, (const char *p, char *b, size_t n), (p, b, n))
LC_WRAP(mknod, (const char *p, mode_t m, dev_t d), (p, m, d))
LC_WRAP(mkdir, (const char *p, mode_t m), (p, m))
LC_WRAP(unlink, (const char *p), (p))
LC_WRAP(rmdir, (const char *p), (p))
LC_WRAP(symlink, (const char *a, const char *b), (a, b))
LC_WRAP(rename, (const char *a, const char *b, unsigned int fl), (a, b, fl))
LC_WRAP(link, (const char *a, const char *b), (a, b))
LC_WRAP(chmod, (const char *p, mode_t m, struct fuse_file_info *fi), (p, m, fi))
LC_WRAP(chown, (const char *p, uid_t u, gid_t g, struct fuse_file_info *fi), (p, u, g, fi))
LC_WRAP(truncate, (const char *p, off_t o, struct fuse_file_info *fi), (p, o, fi))
LC_LOOKUP(open, (const char *p, struct fuse_file_info *fi), (p, fi))
LC_WRAP(read, (const char *p, char *b, size_t n, off_t o, struct fuse_file_info *fi),
	(p, b, n, o, fi))
LC_WRAP(write, (const char *p, const char *b, size_t n, off_t o, struct fuse_file_info *fi),
	(p, b, n, o, fi))
LC_WRAP(statfs, (const char *p, struct statvfs *s), (p, s))
LC_WRAP(fsync, (const char *p, int d, struct fuse_file_info *fi), (p, d, fi))
LC_LOOKUP(opendir, (const char *p, struct fuse_file_info *fi), (p, fi))
LC_WRAP(fsyncdir, (const char *p, int d, struct fuse_file_info *fi), (p, d, fi))
LC_LOOKUP(access, (const char *p, int m), (p, m))
LC_WRAP(create, (const char *p, mode_t m, struct fuse_file_info *fi), (p, m, fi))
LC_WRAP(utimens, (const char *p, const struct timespec tv[2], struct fuse_file_info *fi),
	(p, tv, fi))
LC_WRAP(fallocate, (const char *p, int m, off_t o, off_t l, struct fuse_file_info *fi),
	(p, m, o, l, fi))

/* Closing needs no VM and is no activity of the user's to wait for. */
static int lifecycle_op_flush(const char *p, struct fuse_file_info *fi)
{
	return lifecycle_inner->flush(p, fi);
}

static int lifecycle_op_release(const char *p, struct fuse_file_info *fi)
{
	return lifecycle_inner->release(p, fi);
}

static int lifecycle_op_releasedir(const char *p, struct fuse_file_info *fi)
{
	return lifecycle_inner->releasedir(p, fi);
}

/* A filler that keeps nothing: a listing tried against the layer alone. */
static int lifecycle_dry_fill(void *buf, const char *name, const struct stat *st, off_t off,
			      enum fuse_fill_dir_flags flags)
{
	(void)buf;
	(void)name;
	(void)st;
	(void)off;
	(void)flags;
	return 0;
}

/* A listing fills the kernel's buffer as it goes: try it dry while the VM sleeps. */
static int lifecycle_op_readdir(const char *p, void *b, fuse_fill_dir_t fill, off_t o,
				struct fuse_file_info *fi, enum fuse_readdir_flags fl)
{
	int asleep = lifecycle_enter(1), rc = 0;

	if (asleep) {
		rc = lifecycle_inner->readdir(p, NULL, lifecycle_dry_fill, o, fi, fl);
		if (lifecycle_missed_path(rc, p))
			lifecycle_wait_awake();
	}
	rc = lifecycle_inner->readdir(p, b, fill, o, fi, fl);
	lifecycle_leave(asleep);
	return rc;
}

#define LC_SET(name)                                                    \
	do {                                                            \
		if (inner->name)                                        \
			lifecycle_table.name = lifecycle_op_##name;     \
	} while (0)

const struct fuse_operations *lifecycle_ops(struct lifecycle *lc,
					    const struct fuse_operations *inner)
{
	if (!lc)
		return inner;
	lifecycle_inner = inner;
	lifecycle_table = *inner;
	LC_SET(getattr);
	LC_SET(readlink);
	LC_SET(mknod);
	LC_SET(mkdir);
	LC_SET(unlink);
	LC_SET(rmdir);
	LC_SET(symlink);
	LC_SET(rename);
	LC_SET(link);
	LC_SET(chmod);
	LC_SET(chown);
	LC_SET(truncate);
	LC_SET(open);
	LC_SET(read);
	LC_SET(write);
	LC_SET(statfs);
	LC_SET(flush);
	LC_SET(release);
	LC_SET(fsync);
	LC_SET(opendir);
	LC_SET(readdir);
	LC_SET(releasedir);
	LC_SET(fsyncdir);
	LC_SET(access);
	LC_SET(create);
	LC_SET(utimens);
	LC_SET(fallocate);
	return &lifecycle_table;
}

/* --- the end ------------------------------------------------------------------- */

void lifecycle_abort(struct lifecycle *lc)
{
	char err[512];

	if (!lc || !lc->vm || !lc->started)
		return;
	pthread_mutex_lock(&lc->vm_lock);
	if (lifecycle_stop_vm(lc, err, sizeof(err)) == 0)
		lifecycle_say("deallocated '%s' again: it was started for this mount",
			      lc->profile);
	else
		lifecycle_say("the VM of '%s' was started for this mount and could not be "
			      "deallocated again: %s (run 'vmctl -p %s stop')",
			      lc->profile, err, lc->profile);
	pthread_mutex_unlock(&lc->vm_lock);
}

/* Stop our thread and make the redial hook give up (before the engine is freed). */
static void lifecycle_stop_thread(struct lifecycle *lc)
{
	pthread_mutex_lock(&lc->lock);
	lc->stopping = 1;
	pthread_cond_broadcast(&lc->cond);
	pthread_mutex_unlock(&lc->lock);
	if (lc->thread_running) {
		pthread_join(lc->thread, NULL);
		lc->thread_running = 0;
	}
}

/* Run the guard: 1 when jobs run (listed in @jobs), 0 when none, -errno when unknown. */
static int lifecycle_guard(struct lifecycle *lc, char *jobs, size_t len)
{
	char *out = NULL;
	int status = -1, rc;

	jobs[0] = 0;
	if (!remote_connected(lc->r))
		return -ENOTCONN;
	rc = remote_exec(lc->r, lc->guard_cmd ? lc->guard_cmd : lifecycle_default_guard, 8192,
			 LIFECYCLE_GUARD_MS, &out, NULL, &status);
	if (rc)
		return rc;
	snprintf(jobs, len, "%s", out ? out : "");
	free(out);
	while (*jobs && jobs[strlen(jobs) - 1] == '\n')
		jobs[strlen(jobs) - 1] = 0;
	return status == 0 ? 1 : 0;
}

int lifecycle_finish(struct lifecycle *lc)
{
	char report[8192], jobs[4096], err[512], line[1024];
	int status = 0, keep, asleep, rc;
	size_t n = 0;

	if (!lc)
		return 0;
	report[0] = 0;
#define LC_REPORT(...)                                                                     \
	do {                                                                               \
		snprintf(line, sizeof(line), __VA_ARGS__);                                 \
		lifecycle_say("%s", line);                                                 \
		n += (size_t)snprintf(report + n, n < sizeof(report) ? sizeof(report) - n : 0, \
				      "%s\n", line);                                       \
	} while (0)

	lifecycle_stop_thread(lc);
	pthread_mutex_lock(&lc->lock);
	asleep = lc->state == LC_ASLEEP;
	pthread_mutex_unlock(&lc->lock);
	keep = lc->keep_vm || (lc->keep_path[0] && access(lc->keep_path, F_OK) == 0);

	if (lc->f && !asleep) {
		rc = flush_all(lc->f, LIFECYCLE_FLUSH_MS);
		if (rc) {
			LC_REPORT("not everything was flushed (%s): it stays in the local layer "
				  "and is sent at the next mount", strerror(-rc));
			status = 1;
		} else {
			LC_REPORT("flushed every change to '%s'", lc->profile);
		}
	}
	if (asleep) {
		LC_REPORT("'%s' is already deallocated (idle)", lc->profile);
	} else if (keep) {
		LC_REPORT("kept '%s' running (%s); stop it with 'vmctl -p %s stop'", lc->profile,
			  lc->keep_vm ? "keep_vm = yes" : "--keep-vm", lc->profile);
	} else {
		rc = lifecycle_guard(lc, jobs, sizeof(jobs));
		if (rc < 0)
			LC_REPORT("could not run the guard on '%s' (%s): deallocating anyway",
				  lc->profile, strerror(-rc));
		if (rc == 1) {
			LC_REPORT("kept '%s' running: jobs still run on it:", lc->profile);
			n += (size_t)snprintf(report + n,
					      n < sizeof(report) ? sizeof(report) - n : 0,
					      "%s\n", jobs);
			fprintf(stderr, "%s\n", jobs);
			LC_REPORT("stop it when they are done with 'vmctl -p %s stop'%s",
				  lc->profile,
				  vm_profile_get(lc->vm, "watchdog_minutes")
					  ? " (or let its watchdog do it)" : "");
		} else {
			pthread_mutex_lock(&lc->vm_lock);
			rc = lifecycle_stop_vm(lc, err, sizeof(err));
			pthread_mutex_unlock(&lc->vm_lock);
			if (rc) {
				LC_REPORT("cannot deallocate '%s': %s (it still bills; run "
					  "'vmctl -p %s stop')", lc->profile, err, lc->profile);
				status = 1;
			} else {
				LC_REPORT("deallocated '%s': billing stops", lc->profile);
			}
		}
	}
#undef LC_REPORT
	if (lc->life_path[0]) {
		snprintf(line, sizeof(line), "%d\n", status);
		if (strlen(line) + n < sizeof(report)) {
			memmove(report + strlen(line), report, n + 1);
			memcpy(report, line, strlen(line));
		}
		lifecycle_write_file(lc->report_path, report);
		unlink(lc->life_path);
		unlink(lc->keep_path);
	}
	return status;
}

void lifecycle_free(struct lifecycle *lc)
{
	int i;

	if (!lc)
		return;
	lifecycle_stop_thread(lc);
	if (lifecycle_self == lc)
		lifecycle_self = NULL;
	vm_set_progress(NULL, NULL);
	vm_free(lc->vm);
	config_free(lc->cfg);
	for (i = 0; i < lc->argc; i++)
		free(lc->argv[i]);
	free(lc->argv);
	free(lc->guard_cmd);
	free(lc->profile);
	free(lc->config_path);
	pthread_cond_destroy(&lc->cond);
	pthread_mutex_destroy(&lc->lock);
	pthread_mutex_destroy(&lc->vm_lock);
	free(lc);
}

/* --- the clients: umount and status ---------------------------------------------- */

/* The daemon's pid, profile and config from the mount's record; 0 or -errno. */
static int lifecycle_read_record(const char *path, long *pid, char *profile, size_t plen,
				 char *cfg, size_t clen)
{
	char line[PATH_MAX];
	FILE *f = fopen(path, "re");
	int rc = -EINVAL;

	if (!f)
		return -errno;
	if (fgets(line, sizeof(line), f) && (*pid = atol(line)) > 0 &&
	    fgets(profile, (int)plen, f)) {
		profile[strcspn(profile, "\n")] = 0;
		cfg[0] = 0;
		if (fgets(cfg, (int)clen, f))
			cfg[strcspn(cfg, "\n")] = 0;
		rc = 0;
	}
	fclose(f);
	return rc;
}

int lifecycle_umount_main(int argc, char **argv)
{
	char life[PATH_MAX], report[PATH_MAX + 16], keep[PATH_MAX + 16], profile[256],
		cfg[PATH_MAX], tail[300], text[8192];
	const char *mnt = NULL;
	struct proc_result res;
	int keep_vm = 0, i, rc, have, status = 0;
	long pid = 0;
	time_t t0;
	FILE *f;
	size_t len;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--keep-vm"))
			keep_vm = 1;
		else if (argv[i][0] != '-' && !mnt)
			mnt = argv[i];
		else {
			fprintf(stderr, "wakefs: usage: wakefs umount MOUNTPOINT [--keep-vm]\n");
			return 2;
		}
	}
	if (!mnt) {
		fprintf(stderr, "wakefs: usage: wakefs umount MOUNTPOINT [--keep-vm]\n");
		return 2;
	}
	rc = lifecycle_record_path(mnt, ".life", life, sizeof(life));
	if (rc) {
		fprintf(stderr, "wakefs: cannot umount '%s': %s\n", mnt, strerror(-rc));
		return 2;
	}
	snprintf(report, sizeof(report), "%s.report", life);
	snprintf(keep, sizeof(keep), "%s.keep", life);
	have = lifecycle_read_record(life, &pid, profile, sizeof(profile), cfg, sizeof(cfg)) == 0 &&
	       kill((pid_t)pid, 0) == 0;
	if (have) {
		unlink(report);
		if (keep_vm && lifecycle_write_file(keep, "keep\n"))
			fprintf(stderr, "wakefs: cannot record --keep-vm for '%s'\n", mnt);
	} else if (keep_vm) {
		fprintf(stderr, "wakefs: '%s' is not a profile mount: --keep-vm has nothing to keep\n",
			mnt);
	}
	{
		const char *fargv[] = { "fusermount3", "-u", mnt, NULL };

		rc = proc_run(fargv, NULL, 60000, &res);
	}
	if (rc || res.exit_code != 0) {
		tail[0] = 0;
		if (!rc)
			proc_tail(res.err, tail, sizeof(tail));
		fprintf(stderr, "wakefs: cannot unmount '%s': %s\n", mnt,
			rc ? strerror(-rc) : tail[0] ? tail : "fusermount3 failed");
		if (!rc)
			proc_result_release(&res);
		unlink(keep);
		return 1;
	}
	proc_result_release(&res);
	if (!have)
		return 0;
	/* The daemon flushes, runs the guard and deallocates as it exits. */
	t0 = time(NULL);
	while (kill((pid_t)pid, 0) == 0) {
		if (time(NULL) - t0 > LIFECYCLE_UMOUNT_WAIT_S) {
			fprintf(stderr,
				"wakefs: unmounted '%s', but its daemon (pid %ld) is still busy after "
				"%ds: check 'vmctl -p %s status'\n", mnt, pid,
				LIFECYCLE_UMOUNT_WAIT_S, profile);
			return 1;
		}
		usleep(100 * 1000);
	}
	f = fopen(report, "re");
	if (!f) {
		fprintf(stderr, "wakefs: unmounted '%s', but its daemon left no report: check "
			"'vmctl -p %s status'\n", mnt, profile);
		return 1;
	}
	len = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	unlink(report);
	text[len] = 0;
	status = atoi(text);
	fputs(strchr(text, '\n') ? strchr(text, '\n') + 1 : "", stdout);
	return status ? 1 : 0;
}

static void lifecycle_duration(long s, char *buf, size_t len)
{
	if (s >= 86400)
		snprintf(buf, len, "%ldd%02ldh", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(buf, len, "%ldh%02ldm", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(buf, len, "%ldm%02lds", s / 60, s % 60);
	else
		snprintf(buf, len, "%lds", s);
}

int lifecycle_status_vm(const char *mountpoint, struct control_vm *out, char *buf, size_t len)
{
	char life[PATH_MAX], cfgpath[PATH_MAX], *msg;
	struct config *cfg = NULL;
	struct vm *vm = NULL;
	struct vm_status st;
	struct vm_error ve;
	size_t plen = len / 2;
	long pid;

	/* a record whose daemon is gone (killed) says nothing about this mount */
	if (len < 2 || lifecycle_record_path(mountpoint, ".life", life, sizeof(life)) ||
	    lifecycle_read_record(life, &pid, buf, plen, cfgpath, sizeof(cfgpath)) ||
	    kill((pid_t)pid, 0) < 0)
		return 0;
	msg = buf + plen;	/* the profile name, then the error, in @buf */
	*out = (struct control_vm){ .profile = buf, .running_s = -1 };
	if (config_load(&cfg, cfgpath[0] ? cfgpath : NULL, msg, len - plen)) {
		char why[512];

		snprintf(why, sizeof(why), "%s", msg);
		snprintf(msg, len - plen, "cannot read its configuration: %s", why);
		out->error = msg;
	} else if (vm_open(&vm, cfg, buf, &ve) || vm_status(vm, &st, &ve)) {
		snprintf(msg, len - plen, "status unknown: %s", ve.message);
		out->error = msg;
	} else {
		out->power = vm_power_name(st.power);
		if (st.power == VM_POWER_RUNNING && st.since > 0)
			out->running_s = (long)(time(NULL) - st.since);
	}
	vm_free(vm);
	config_free(cfg);
	return 1;
}

void lifecycle_status(const char *mountpoint, FILE *out)
{
	char buf[1024], dur[64];
	struct control_vm vm;

	if (!lifecycle_status_vm(mountpoint, &vm, buf, sizeof(buf)))
		return;
	if (vm.error) {
		fprintf(out, "vm:         %s (%s)\n", vm.profile, vm.error);
	} else if (vm.running_s >= 0) {
		lifecycle_duration(vm.running_s, dur, sizeof(dur));
		fprintf(out, "vm:         %s running for %s\n", vm.profile, dur);
	} else {
		fprintf(out, "vm:         %s %s\n", vm.profile, vm.power);
	}
}
