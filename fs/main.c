/*
 * fs/main.c: wakefs entry point: options -> VM connection -> FUSE mount ->
 * request loop, unwound in reverse order. The only file that exits.
 *
 * Daemonizing is done here rather than with fuse_daemonize(): the SFTP
 * engine runs an I/O thread, and threads do not survive fork(), so the fork
 * must come before remote_new(). The parent then waits on a pipe until the
 * child has connected and mounted, and exits with the child's verdict: errors
 * reach the terminal and `wakefs host:dir mnt && ls mnt` works.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bootstrap.h"
#include "control.h"
#include "lifecycle.h"
#include "feed.h"
#include "flush.h"
#include "layer.h"
#include "lops.h"
#include "ops.h"
#include "policy.h"
#include "presend.h"
#include "options.h"
#include "remote.h"

enum {
	MAIN_OK = 0,
	MAIN_FAIL = 1,	/* could not connect, mount or serve */
	MAIN_USAGE = 2,	/* bad command line */
};

/*
 * Fork; the parent waits for the child's status byte on a pipe and exits with
 * it (MAIN_FAIL when the child died first). Returns the write end in the
 * child, or -1 when fork is impossible (then we stay in the foreground).
 */
static int main_fork(void)
{
	int p[2];
	unsigned char status = MAIN_FAIL;
	ssize_t n;
	pid_t pid;

	if (pipe(p))
		return -1;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		close(p[0]);
		setsid();
		return p[1];
	}
	close(p[1]);
	do
		n = read(p[0], &status, 1);
	while (n < 0 && errno == EINTR);
	_exit(n == 1 ? status : MAIN_FAIL);
}

/* Tell the waiting parent how it went; detach from the terminal on success. */
static void main_report(int *ready_fd, unsigned char status)
{
	int null;

	if (*ready_fd < 0)
		return;
	if (status == MAIN_OK) {
		if (chdir("/") != 0)
			(void)0;	/* the mount works without it */
		null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
			if (null > 2)
				close(null);
		}
	}
	if (write(*ready_fd, &status, 1) != 1)
		(void)0;	/* the parent is gone: nobody to tell */
	close(*ready_fd);
	*ready_fd = -1;
}

/* The libfuse arguments for @o: mount options and debug. */
static int main_fuse_args(const struct options *o, struct fuse_args *args)
{
	char *opts = NULL, *fsname = NULL;
	int err = 0;

	err |= fuse_opt_add_arg(args, "wakefs");
	err |= fuse_opt_add_opt(&opts, "subtype=wakefs");
	fsname = malloc(strlen("fsname=") + strlen(o->source) + 1);
	if (!fsname)
		goto out;
	strcpy(fsname, "fsname=");
	strcat(fsname, o->source);
	err |= fuse_opt_add_opt_escaped(&opts, fsname);
	if (o->allow_other)
		err |= fuse_opt_add_opt(&opts, "allow_other");
	if (o->allow_root)
		err |= fuse_opt_add_opt(&opts, "allow_root");
	if (o->default_permissions)
		err |= fuse_opt_add_opt(&opts, "default_permissions");
	if (o->read_only)
		err |= fuse_opt_add_opt(&opts, "ro");
	if (o->nosuid)
		err |= fuse_opt_add_opt(&opts, "nosuid");
	if (o->nodev)
		err |= fuse_opt_add_opt(&opts, "nodev");
	if (o->noexec)
		err |= fuse_opt_add_opt(&opts, "noexec");
	if (o->noatime)
		err |= fuse_opt_add_opt(&opts, "noatime");
	if (o->debug)
		err |= fuse_opt_add_opt(&opts, "debug");
	if (!err)
		err |= fuse_opt_add_arg(args, "-o");
	if (!err)
		err |= fuse_opt_add_arg(args, opts);
	free(fsname);
	free(opts);
	return err ? -ENOMEM : 0;
out:
	free(opts);
	return -ENOMEM;
}

/* Serve until unmounted or signalled; returns MAIN_OK or MAIN_FAIL. */
static int main_loop(struct fuse *fuse, const struct options *o)
{
	struct fuse_loop_config *cfg;
	int rc;

	if (o->single_thread)
		return fuse_loop(fuse) == 0 ? MAIN_OK : MAIN_FAIL;
	cfg = fuse_loop_cfg_create();
	if (!cfg)
		return MAIN_FAIL;
	fuse_loop_cfg_set_clone_fd(cfg, 0);
	fuse_loop_cfg_set_max_threads(cfg, 16);
	rc = fuse_loop_mt(fuse, cfg);
	fuse_loop_cfg_destroy(cfg);
	return rc == 0 ? MAIN_OK : MAIN_FAIL;
}

/*
 * The local layer and what runs over it: the default mode (fs/lops.h);
 * -o writethrough mounts fs/ops.c's table instead. Started once the VM is
 * connected; flushed (with a bound) after the unmount, freed before the
 * connection.
 */
/* Large files sent to the VM while they are written, at most this many at once. */
#define MAIN_PRESENDS 4
/* How long a mount waits for another daemon to release its local layer. */
#define MAIN_LAYER_WAIT_S 15

struct main_layer {
	struct layer *layer;
	struct policy *policy;
	struct flusher *flusher;
	struct presender *presender;
	struct control *control;
	struct feed *feed;
	struct lops *lops;
	int bootstrapped;	/* this mount copied the VM's .git into the layer */
};

/* The feed learnt the VM's tree: a freshly copied index gets the mount's stat data. */
static void main_learned(void *payload)
{
	struct main_layer *ml = payload;

	if (ml->bootstrapped) {
		ml->bootstrapped = 0;
		bootstrap_restat(ml->layer, layer_dir(ml->layer));
	}
}

/*
 * The directory to mount must exist on the VM and be one: a typo in the dir
 * would otherwise give an empty mount whose first write fails far from its
 * cause. Returns 0, or -errno after saying why on stderr.
 */
static int main_check_dir(struct remote *remote, const struct options *o)
{
	const char *dir = o->dir && *o->dir ? o->dir : ".";
	const char *shown = o->dir && *o->dir ? o->dir : "~";
	struct stat st;
	int err;

	err = remote_stat(remote, dir, &st);
	if (!err && !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "wakefs: '%s:%s' is not a directory on the VM; pick a directory "
			"to mount\n", o->host, shown);
		err = -ENOTDIR;
	} else if (err == -ENOENT || err == -ENOTDIR) {	/* ENOTDIR: a component is a file */
		fprintf(stderr, "wakefs: '%s:%s' does not exist on the VM; create it or pick "
			"another dir\n", o->host, shown);
	} else if (err) {
		fprintf(stderr, "wakefs: cannot look at '%s:%s' on the VM: %s\n", o->host, shown,
			strerror(-err));
	}
	return err;
}

static int main_layer_start(struct main_layer *ml, struct remote *remote, const struct options *o)
{
	struct layer_opts lopts = { .cache_max = o->cache_max };
	struct flush_opts fopts = { .remote_root = o->dir, .debounce_ms = o->debounce_ms };
	struct control_opts copts = { .mountpoint = o->mountpoint, .remote = o->source };
	enum flush_mode mode = FLUSH_TRACKED;
	char dir[4096];
	int err;

	if (o->flush && policy_mode_parse(o->flush, &mode)) {
		fprintf(stderr, "wakefs: bad flush mode '%s': expected tracked, unignored or all\n",
			o->flush);
		return -EINVAL;
	}
	if (o->local) {
		snprintf(dir, sizeof(dir), "%s", o->local);
	} else if ((err = layer_default_dir(o->host, o->dir, dir, sizeof(dir)))) {
		fprintf(stderr, "wakefs: cannot find a place for the local layer: set "
			"XDG_DATA_HOME or HOME, or give -o local=DIR\n");
		return err;
	}
	lopts.dir = dir;
	/*
	 * One daemon a layer. The previous mount's daemon may still be sending
	 * what its unmount left (umount returns before it exits): wait for it.
	 */
	for (int tenths = 0; (err = layer_new(&ml->layer, &lopts)) == -EBUSY &&
			     tenths < MAIN_LAYER_WAIT_S * 10; tenths++) {
		if (tenths == 10)
			fprintf(stderr, "wakefs: the local layer '%s' is in use by another wakefs; "
				"waiting up to %d s for it to exit\n", dir, MAIN_LAYER_WAIT_S);
		usleep(100 * 1000);
	}
	if (err == -EBUSY) {
		fprintf(stderr, "wakefs: the local layer '%s' is in use by another wakefs mount: "
			"unmount that one first, or give this mount a layer of its own with "
			"-o local=DIR\n", dir);
		return err;
	}
	if (err) {
		fprintf(stderr, "wakefs: cannot open the local layer '%s': %s\n", dir, strerror(-err));
		return err;
	}
	/* A VM clone's .git comes to the layer before git or the policy can look for it. */
	err = bootstrap_git(remote, o->dir, dir, o->source);
	if (err < 0)
		return err;
	ml->bootstrapped = err > 0;
	err = policy_new(&ml->policy, dir, mode);
	if (!err)
		err = presender_new(&ml->presender, remote, MAIN_PRESENDS);
	fopts.presender = ml->presender;
	if (!err)
		err = flush_new(&ml->flusher, remote, ml->layer, ml->policy, &fopts);
	if (err) {
		fprintf(stderr, "wakefs: cannot start flushing the local layer '%s': %s\n", dir,
			strerror(-err));
		return err;
	}
	copts.policy = policy_mode_name(mode);
	copts.f = ml->flusher;
	copts.l = ml->layer;
	err = control_new(&ml->control, &copts);
	if (err) {
		fprintf(stderr, "wakefs: cannot open the control socket of '%s': %s\n",
			o->mountpoint, strerror(-err));
		return err;
	}
	/* Without the feed the mount still works: it only keeps caches fresher. */
	err = feed_new(&ml->feed, remote, ml->layer,
		       &(struct feed_opts){ .remote_root = o->dir, .learned = main_learned,
					    .payload = ml });
	if (err)
		fprintf(stderr, "wakefs: cannot start the change feed of '%s': %s (caches then "
			"expire by time only)\n", o->source, strerror(-err));
	err = lops_new(&ml->lops, remote, ml->layer, o);
	if (err)
		fprintf(stderr, "wakefs: out of memory\n");
	return err;
}

/* After the unmount: send what is dirty, within a bound. 1 when something stays unsent. */
static int main_layer_flush(struct main_layer *ml, const struct options *o)
{
	int err, bound = o->unmount_flush_s ? o->unmount_flush_s : 30;

	control_free(ml->control);
	ml->control = NULL;
	if (!ml->flusher)
		return 0;
	err = flush_all(ml->flusher, bound * 1000);
	if (err)
		fprintf(stderr, "wakefs: some changes of '%s' did not reach the VM (%s); they stay "
			"in the local layer and are sent on the next mount\n", o->source,
			strerror(-err));
	return err ? 1 : 0;
}

static void main_layer_free(struct main_layer *ml)
{
	control_free(ml->control);
	feed_free(ml->feed);
	flush_free(ml->flusher);
	policy_free(ml->policy);
	lops_free(ml->lops);
	presender_free(ml->presender);	/* after the flusher and the handles that used it */
	layer_free(ml->layer);
	memset(ml, 0, sizeof(*ml));
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct remote_opts ro;
	struct options o;
	struct remote *remote = NULL;
	struct ops *ops = NULL;
	struct main_layer ml = { 0 };
	struct fuse *fuse = NULL;
	struct lifecycle *lc = NULL;
	char err[1024];
	int status = MAIN_FAIL, ready_fd = -1, mounted = 0, handlers = 0, rc;

	signal(SIGPIPE, SIG_IGN);
	/* `wakefs status|flush|push|resolve MOUNTPOINT ...`: a client of the daemon. */
	if (argc > 1 && control_is_command(argv[1])) {
		struct control_vm vm;
		char vmbuf[1024];
		int json = !strcmp(argv[1], "status") && argc == 4 && !strcmp(argv[3], "--json");

		/* a profile mount's status also says how its VM is */
		json = json && lifecycle_status_vm(argv[2], &vm, vmbuf, sizeof(vmbuf));
		rc = control_client_main(argc - 1, argv + 1, json ? &vm : NULL);
		if (rc == 0 && !strcmp(argv[1], "status") && argc == 3)
			lifecycle_status(argv[2], stdout);
		return rc;
	}
	/* `wakefs umount MOUNTPOINT`; `wakefs mount PROFILE MOUNTPOINT` wakes the VM first. */
	if (argc > 1 && !strcmp(argv[1], "umount"))
		return lifecycle_umount_main(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "mount")) {
		if (lifecycle_new(&lc, argc, argv, err, sizeof(err))) {
			fprintf(stderr, "wakefs: %s\n", err);
			return MAIN_FAIL;
		}
		argc = lifecycle_argc(lc);
		argv = lifecycle_argv(lc);
	}
	if (options_parse(&o, argc, argv, err, sizeof(err))) {
		fprintf(stderr, "wakefs: %s\n", err);
		status = MAIN_USAGE;
		goto out;
	}
	if (o.action == OPTIONS_HELP) {
		fputs(options_usage(), stdout);
		status = MAIN_OK;
		goto out;
	}
	if (o.action == OPTIONS_VERSION) {
		printf("wakefs %s\n", WAKEFS_VERSION);
		status = MAIN_OK;
		goto out;
	}

	if (!o.foreground)
		ready_fd = main_fork();

	options_remote(&o, &ro);
	err[0] = '\0';
	rc = remote_new(&remote, &ro, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "wakefs: %s\n", *err ? err : strerror(-rc));
		goto out;
	}
	if (main_check_dir(remote, &o))
		goto out;
	if (!o.writethrough && main_layer_start(&ml, remote, &o))
		goto out;
	lifecycle_set_layer(lc, ml.layer);
	if (lc && lifecycle_attach(lc, remote, ml.flusher, o.mountpoint)) {
		fprintf(stderr, "wakefs: cannot start the lifecycle thread\n");
		goto out;
	}
	if (ops_new(&ops, remote, &o) || main_fuse_args(&o, &args)) {
		fprintf(stderr, "wakefs: out of memory\n");
		goto out;
	}
	if (o.writethrough)
		fuse = fuse_new(&args, lifecycle_ops(lc, ops_table()), sizeof(*ops_table()), ops);
	else
		fuse = fuse_new(&args, lifecycle_ops(lc, lops_table()), sizeof(*lops_table()), ml.lops);
	if (!fuse) {
		fprintf(stderr, "wakefs: cannot set up the FUSE session for '%s'\n", o.source);
		goto out;
	}
	if (fuse_mount(fuse, o.mountpoint)) {
		fprintf(stderr, "wakefs: cannot mount '%s' on '%s' (see the message above)\n",
			o.source, o.mountpoint);
		goto out;
	}
	mounted = 1;
	if (fuse_set_signal_handlers(fuse_get_session(fuse))) {
		fprintf(stderr, "wakefs: cannot install signal handlers\n");
		goto out;
	}
	handlers = 1;
	main_report(&ready_fd, MAIN_OK);
	status = main_loop(fuse, &o);
out:
	main_report(&ready_fd, (unsigned char)status);
	if (handlers)
		fuse_remove_signal_handlers(fuse_get_session(fuse));
	if (mounted)
		fuse_unmount(fuse);
	if (fuse)
		fuse_destroy(fuse);
	fuse_opt_free_args(&args);
	if (main_layer_flush(&ml, &o) && status == MAIN_OK)
		status = MAIN_FAIL;
	if (lc && status == MAIN_OK)
		status = lifecycle_finish(lc) ? MAIN_FAIL : MAIN_OK;
	else if (lc)
		lifecycle_abort(lc);
	main_layer_free(&ml);
	ops_free(ops);
	remote_free(remote);
	lifecycle_free(lc);
	options_release(&o);
	return status;
}
