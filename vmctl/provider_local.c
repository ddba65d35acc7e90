/*
 * vmctl/provider_local.c: the `local` provider, a throwaway OpenSSH sshd on
 * 127.0.0.1 that starts and stops like a VM (the demo's and the tests' VM).
 *
 * Everything lives in a private state directory per profile,
 * $XDG_STATE_HOME/wakefs/local/<profile>/ (else ~/.local/state/...), made
 * 0700 on the first start: a host key, a client key, authorized_keys, a
 * known_hosts line naming the host key under the profile name (wakefs checks
 * host keys under that alias), the sshd_config, the port (picked free once,
 * then kept, like a VM's SSH port) and, while it runs, sshd.pid.
 *
 *   deallocated -> running       [local_start: sshd -D launched detached, waits for its banner]
 *   running     -> deallocated   [local_stop: SIGTERM to the recorded pid, then SIGKILL]
 *
 * The pid is only trusted when /proc says it is an sshd started with our
 * sshd_config, so a recycled pid is never signalled. The login is the local
 * user (sshd cannot switch users without root anyway).
 */
#include "provider.h"
#include "config.h"
#include "proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LOCAL_SSHD "/usr/sbin/sshd"
#define LOCAL_START_TIMEOUT_MS 20000

struct local {
	char dir[PATH_MAX - 64];	/* the state directory (room left for file names) */
};

static long local_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void local_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* @out = the state dir's @name. */
static int local_path(struct vm *vm, const char *name, char *out, size_t len)
{
	struct local *l = vm_data(vm);

	if ((size_t)snprintf(out, len, "%s/%s", l->dir, name) >= len)
		return -ENAMETOOLONG;
	return 0;
}

static int local_open(struct vm *vm)
{
	const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	struct local *l;
	int n;

	l = calloc(1, sizeof(*l));
	if (!l)
		return vm_error_set(vm_open_err(vm), VM_ECONFIG, 0, "nomem", "out of memory");
	if (state && *state)
		n = snprintf(l->dir, sizeof(l->dir), "%s/wakefs/local/%s", state,
			     vm_profile_name(vm));
	else if (home && *home)
		n = snprintf(l->dir, sizeof(l->dir), "%s/.local/state/wakefs/local/%s", home,
			     vm_profile_name(vm));
	else
		n = -1;
	if (n < 0 || (size_t)n >= sizeof(l->dir)) {
		free(l);
		return vm_error_set(vm_open_err(vm), VM_ECONFIG, 0, "config",
				    "profile [%s] uses provider local but neither XDG_STATE_HOME "
				    "nor HOME gives a usable state directory", vm_profile_name(vm));
	}
	vm_set_data(vm, l);
	return 0;
}

static void local_close(struct vm *vm)
{
	free(vm_data(vm));
	vm_set_data(vm, NULL);
}

/* mkdir -p @path, the last component with @mode. */
static int local_mkdirs(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	char *p;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return chmod(buf, mode) < 0 ? -errno : 0;
}

static int local_write_file(const char *path, const char *text, mode_t mode)
{
	char tmp[PATH_MAX + 8];
	size_t len = strlen(text);
	int fd, err = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len)
		err = -EIO;
	if (close(fd) < 0 && !err)
		err = -errno;
	if (!err && rename(tmp, path) < 0)
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

/* The first line of @path into @buf (without the newline). */
static int local_read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	int err = 0;

	if (!f)
		return -errno;
	if (!fgets(buf, (int)len, f))
		err = -EIO;
	else
		buf[strcspn(buf, "\r\n")] = 0;
	fclose(f);
	return err;
}

static int local_keygen(struct vm *vm, const char *name, const char *comment,
			struct vm_error *err)
{
	char path[PATH_MAX], pub[PATH_MAX + 8], tail[300];
	const char *argv[] = { "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment,
			       "-f", path, NULL };
	struct proc_result res;
	int rc;

	rc = local_path(vm, name, path, sizeof(path));
	if (rc)
		return vm_error_set(err, VM_ECONFIG, 0, "local", "state path too long");
	snprintf(pub, sizeof(pub), "%s.pub", path);
	if (access(path, R_OK) == 0 && access(pub, R_OK) == 0)
		return 0;
	unlink(path);
	unlink(pub);
	rc = proc_run(argv, NULL, 30000, &res);
	if (rc)
		return vm_error_set(err, VM_ECMD, 0, "local",
				    "cannot run ssh-keygen: %s (install openssh-client)",
				    strerror(-rc));
	proc_tail(res.err, tail, sizeof(tail));
	if (res.exit_code != 0)
		rc = vm_error_set(err, VM_ECMD, 0, "local", "ssh-keygen failed for '%s'%s%s", path,
				  tail[0] ? ": " : "", tail);
	proc_result_release(&res);
	return rc;
}

/* A free port on 127.0.0.1 (the kernel's pick), or -errno. */
static int local_free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int fd, port;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
		port = -errno;
	else
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* The kept port (picked on the first call). */
static int local_port(struct vm *vm, int *port, struct vm_error *err)
{
	char path[PATH_MAX], line[32];
	int p;

	local_path(vm, "port", path, sizeof(path));
	if (local_read_line(path, line, sizeof(line)) == 0 && (p = atoi(line)) > 0 &&
	    p < 65536) {
		*port = p;
		return 0;
	}
	p = local_free_port();
	if (p < 0)
		return vm_error_set(err, VM_ECMD, 0, "local",
				    "cannot find a free port on 127.0.0.1: %s", strerror(-p));
	snprintf(line, sizeof(line), "%d\n", p);
	if (local_write_file(path, line, 0600))
		return vm_error_set(err, VM_ECMD, 0, "local", "cannot write '%s': %s", path,
				    strerror(errno));
	*port = p;
	return 0;
}

/* Create what the state directory lacks: keys, authorized_keys, known_hosts, sshd_config. */
static int local_setup(struct vm *vm, int *port, struct vm_error *err)
{
	struct local *l = vm_data(vm);
	char path[PATH_MAX], pub[PATH_MAX], line[1024], text[4096 + 3 * PATH_MAX];
	int rc;

	rc = local_mkdirs(l->dir, 0700);
	if (rc)
		return vm_error_set(err, VM_ECMD, 0, "local", "cannot create '%s': %s", l->dir,
				    strerror(-rc));
	rc = local_keygen(vm, "host_ed25519", "wakefs-local-host", err);
	if (!rc)
		rc = local_keygen(vm, "id_ed25519", "wakefs-local-client", err);
	if (!rc)
		rc = local_port(vm, port, err);
	if (rc)
		return rc;

	local_path(vm, "id_ed25519.pub", pub, sizeof(pub));
	local_path(vm, "authorized_keys", path, sizeof(path));
	if (local_read_line(pub, line, sizeof(line)) ||
	    snprintf(text, sizeof(text), "%s\n", line) < 0 || local_write_file(path, text, 0600))
		return vm_error_set(err, VM_ECMD, 0, "local", "cannot write '%s'", path);

	/* known_hosts: the host key under the profile name, the alias wakefs checks. */
	local_path(vm, "host_ed25519.pub", pub, sizeof(pub));
	local_path(vm, "known_hosts", path, sizeof(path));
	if (local_read_line(pub, line, sizeof(line)))
		return vm_error_set(err, VM_ECMD, 0, "local", "cannot read '%s'", pub);
	{
		char type[64], key[900];

		if (sscanf(line, "%63s %899s", type, key) != 2)
			return vm_error_set(err, VM_EPARSE, 0, "local", "bad public key in '%s'",
					    pub);
		snprintf(text, sizeof(text), "%s %s %s\n[127.0.0.1]:%d %s %s\n",
			 vm_profile_name(vm), type, key, *port, type, key);
	}
	if (local_write_file(path, text, 0600))
		return vm_error_set(err, VM_ECMD, 0, "local", "cannot write '%s'", path);

	local_path(vm, "sshd_config", path, sizeof(path));
	snprintf(text, sizeof(text),
		 "# the local provider's \"VM\" for profile [%s] (written by wakefs)\n"
		 "ListenAddress 127.0.0.1:%d\n"
		 "HostKey %s/host_ed25519\n"
		 "PidFile none\n"
		 "AuthorizedKeysFile %s/authorized_keys\n"
		 "StrictModes no\n"
		 "PasswordAuthentication no\n"
		 "KbdInteractiveAuthentication no\n"
		 "PermitRootLogin prohibit-password\n"
		 "UsePAM no\n"
		 "Subsystem sftp internal-sftp\n"
		 "AllowTcpForwarding yes\n"
		 "MaxSessions 50\n"
		 "MaxStartups 50\n"
		 /*
		  * bash, the login shell of a command sshd runs, sources
		  * ~/.bashrc only at shell level 1: this "VM" shares the
		  * laptop user's home, and that user's interactive set-up
		  * (e.g. a pyenv rehash waiting a minute on a lock) is not
		  * the VM's.
		  */
		 "SetEnv SHLVL=1\n",
		 vm_profile_name(vm), *port, l->dir, l->dir);
	if (local_write_file(path, text, 0600))
		return vm_error_set(err, VM_ECMD, 0, "local", "cannot write '%s'", path);
	return 0;
}

/*
 * The recorded sshd's pid if it is alive and really our sshd (its command
 * line names our sshd_config), else 0. *since: when it was started.
 */
static pid_t local_pid(struct vm *vm, time_t *since)
{
	char path[PATH_MAX], conf[PATH_MAX], line[64], cmd[8192], stat_path[64];
	struct stat st;
	ssize_t n;
	pid_t pid;
	int fd, ours = 0;

	local_path(vm, "sshd.pid", path, sizeof(path));
	local_path(vm, "sshd_config", conf, sizeof(conf));
	if (local_read_line(path, line, sizeof(line)) || (pid = (pid_t)atol(line)) <= 1)
		return 0;
	snprintf(stat_path, sizeof(stat_path), "/proc/%ld/cmdline", (long)pid);
	fd = open(stat_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, cmd, sizeof(cmd) - 1);
	close(fd);
	if (n > 0) {
		size_t cl = strlen(conf);
		char *p;

		/*
		 * argv is NUL-separated, but sshd retitles itself ("sshd: /usr/sbin/sshd
		 * -D -e -f CONF [listener] ..."): look at it as one spaced string.
		 */
		cmd[n] = 0;
		for (p = cmd; p < cmd + n; p++)
			if (!*p)
				*p = ' ';
		for (p = strstr(cmd, conf); p && !ours; p = strstr(p + 1, conf))
			ours = p > cmd && p[-1] == ' ' && (p[cl] == ' ' || !p[cl]);
		ours = ours && strstr(cmd, "sshd");
	}
	if (!ours)
		return 0;
	snprintf(stat_path, sizeof(stat_path), "/proc/%ld/stat", (long)pid);
	fd = open(stat_path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, cmd, sizeof(cmd) - 1);
		close(fd);
		if (n > 0) {
			char *rp;

			cmd[n] = 0;
			rp = strrchr(cmd, ')');
			if (rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'))
				return 0;	/* a zombie is not running */
		}
	}
	if (since)
		*since = stat(path, &st) == 0 ? st.st_mtime : 0;
	return pid;
}

/* 1 while @pid exists and is not a zombie (whatever it runs: it may still be exec'ing). */
static int local_alive(pid_t pid)
{
	char path[64], buf[512], *rp;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	rp = strrchr(buf, ')');
	return !(rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'));
}

/* 1 once something on 127.0.0.1:@port sends an SSH banner. */
static int local_answers(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct pollfd pfd;
	char buf[8];
	int fd, ok = 0;
	ssize_t n;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 2000) > 0) {
			n = read(fd, buf, 4);
			ok = n == 4 && memcmp(buf, "SSH-", 4) == 0;
		}
	}
	close(fd);
	return ok;
}

/*
 * Launch sshd detached (double fork: it is nobody's child here, so it never
 * lingers as our zombie) with stdout/stderr to sshd.log; its pid goes to
 * sshd.pid. Returns the pid or -errno.
 */
static pid_t local_spawn(struct vm *vm)
{
	char conf[PATH_MAX], logp[PATH_MAX], pidp[PATH_MAX], line[32];
	int p[2], status;
	pid_t mid, pid = -1;
	ssize_t n;

	local_path(vm, "sshd_config", conf, sizeof(conf));
	local_path(vm, "sshd.log", logp, sizeof(logp));
	local_path(vm, "sshd.pid", pidp, sizeof(pidp));
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	mid = fork();
	if (mid < 0) {
		close(p[0]);
		close(p[1]);
		return -errno;
	}
	if (mid == 0) {
		pid_t child;
		int fd;

		setsid();
		child = fork();
		if (child == 0) {
			const char *argv[] = { LOCAL_SSHD, "-D", "-e", "-f", conf, NULL };
			sigset_t none;

			sigemptyset(&none);
			sigprocmask(SIG_SETMASK, &none, NULL);
			signal(SIGPIPE, SIG_DFL);
			fd = open("/dev/null", O_RDONLY);
			if (fd >= 0)
				dup2(fd, 0);
			fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0600);
			if (fd >= 0) {
				dup2(fd, 1);
				dup2(fd, 2);
			}
			if (chdir("/") < 0)
				_exit(127);
			execv(argv[0], (char *const *)argv);
			_exit(127);
		}
		if (write(p[1], &child, sizeof(child)) != (ssize_t)sizeof(child))
			_exit(1);
		_exit(child > 0 ? 0 : 1);
	}
	close(p[1]);
	do
		n = read(p[0], &pid, sizeof(pid));
	while (n < 0 && errno == EINTR);
	close(p[0]);
	while (waitpid(mid, &status, 0) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof(pid) || pid <= 0)
		return -ECHILD;
	snprintf(line, sizeof(line), "%ld\n", (long)pid);
	if (local_write_file(pidp, line, 0600)) {
		kill(pid, SIGTERM);
		return -EIO;
	}
	return pid;
}

/* The last line of the log @path into @buf ("" when none). */
static void local_log_tail(const char *path, char *buf, size_t len)
{
	char text[4096];
	ssize_t n = -1;
	off_t size;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	buf[0] = 0;
	if (fd < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	if (size >= 0 && lseek(fd, size > (off_t)sizeof(text) - 1 ? size - (off_t)sizeof(text) + 1 : 0,
			       SEEK_SET) >= 0)
		n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return;
	text[n] = 0;
	proc_tail(text, buf, len);
}

static int local_start(struct vm *vm, struct vm_error *err)
{
	char logp[PATH_MAX], tail[300];
	long t0 = local_now_ms();
	int port, rc;
	pid_t pid;

	rc = local_setup(vm, &port, err);
	if (rc)
		return rc;
	if (local_pid(vm, NULL) && local_answers(port))
		return 0;
	if (access(LOCAL_SSHD, X_OK) < 0)
		return vm_error_set(err, VM_ECMD, 0, "local",
				    "cannot start the local VM: %s is missing (install openssh-server)",
				    LOCAL_SSHD);
	/* privilege separation wants this directory when sshd runs as root */
	if (geteuid() == 0)
		local_mkdirs("/run/sshd", 0755);
	pid = local_pid(vm, NULL);
	if (!pid) {
		vm_progress("start", "starting", 0);
		pid = local_spawn(vm);
		if (pid < 0)
			return vm_error_set(err, VM_ECMD, 0, "local", "cannot launch %s: %s",
					    LOCAL_SSHD, strerror((int)-pid));
		vm_debugf("local: sshd of [%s] is pid %ld on 127.0.0.1:%d", vm_profile_name(vm),
			  (long)pid, port);
	}
	while (!local_answers(port)) {
		if (!local_alive(pid) || local_now_ms() - t0 > LOCAL_START_TIMEOUT_MS) {
			local_path(vm, "sshd.log", logp, sizeof(logp));
			local_log_tail(logp, tail, sizeof(tail));
			if (local_pid(vm, NULL))
				kill(local_pid(vm, NULL), SIGTERM);
			return vm_error_set(err, VM_ETIMEOUT, 0, "local",
					    "the local VM of [%s] (sshd on 127.0.0.1:%d) did not "
					    "answer%s%s (see %s)", vm_profile_name(vm), port,
					    tail[0] ? ": " : "", tail, logp);
		}
		vm_progress("start", "starting", (local_now_ms() - t0) / 1000);
		local_sleep_ms(100);
	}
	vm_progress("start", "running", (local_now_ms() - t0) / 1000);
	return 0;
}

static int local_stop(struct vm *vm, int power_off, struct vm_error *err)
{
	char pidp[PATH_MAX];
	long t0 = local_now_ms();
	pid_t pid = local_pid(vm, NULL);

	(void)power_off;	/* a process has no "stopped but allocated" state */
	local_path(vm, "sshd.pid", pidp, sizeof(pidp));
	if (pid) {
		vm_progress("deallocate", "deallocating", 0);
		kill(pid, SIGTERM);
		while (local_pid(vm, NULL) == pid && local_now_ms() - t0 < 5000)
			local_sleep_ms(50);
		if (local_pid(vm, NULL) == pid) {
			kill(pid, SIGKILL);
			while (local_pid(vm, NULL) == pid && local_now_ms() - t0 < 10000)
				local_sleep_ms(50);
		}
		if (local_pid(vm, NULL) == pid)
			return vm_error_set(err, VM_ETIMEOUT, 0, "local",
					    "the local VM of [%s] (sshd pid %ld) did not stop",
					    vm_profile_name(vm), (long)pid);
		vm_progress("deallocate", "deallocated", (local_now_ms() - t0) / 1000);
	}
	unlink(pidp);
	return 0;
}

static int local_status(struct vm *vm, struct vm_status *st, struct vm_error *err)
{
	time_t since = 0;

	(void)err;
	if (local_pid(vm, &since)) {
		st->power = VM_POWER_RUNNING;
		st->since = since;
	} else {
		st->power = VM_POWER_DEALLOCATED;
	}
	return 0;
}

static int local_address(struct vm *vm, char *host, size_t len, struct vm_error *err)
{
	(void)vm;
	(void)err;
	snprintf(host, len, "127.0.0.1");
	return 0;
}

static int local_ssh_params(struct vm *vm, struct vm_ssh_params *out, struct vm_error *err)
{
	struct passwd *pw = getpwuid(geteuid());
	int port, rc;

	rc = local_setup(vm, &port, err);
	if (rc)
		return rc;
	out->port = port;
	/* sshd (not root) can only let its own user in */
	snprintf(out->user, sizeof(out->user), "%s", pw ? pw->pw_name : "root");
	local_path(vm, "id_ed25519", out->identity, sizeof(out->identity));
	local_path(vm, "known_hosts", out->known_hosts, sizeof(out->known_hosts));
	return 0;
}

const struct vm_provider vm_provider_local = {
	.name = "local",
	.open = local_open,
	.start = local_start,
	.stop = local_stop,
	.status = local_status,
	.address = local_address,
	.close = local_close,
	.ssh_params = local_ssh_params,
};
