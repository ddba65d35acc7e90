/*
 * vmctl/watchdog.c: put the VM-side cost watchdog on the VM, report on it,
 * take it off (see watchdog.h).
 *
 * Each action is one shell script run on the VM by `ssh ... sh -s` with the
 * script on ssh's stdin: a prelude of single-quoted variables (profile, VM id,
 * ARM endpoint, limit, the test hooks) and then a fixed part. The whole fixed
 * part sits in one `{ ...; } </dev/null` group, so the VM's shell has read all
 * of it, here-documents included, before any command runs, and no command
 * (sudo, systemctl) can swallow the rest of the script from stdin. The files
 * installed are the ones in scripts/, compiled in (vmctl/watchdog-files.h), so
 * vmctl works from anywhere. Nothing secret crosses: the VM takes its own
 * token from IMDS when it deallocates itself.
 */
#include "watchdog.h"
#include "azure.h"
#include "config.h"
#include "provider.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmctl/watchdog-files.h"	/* watchdog_sh, watchdog_service, watchdog_timer */

#define WATCHDOG_EOF "WAKEFS_WATCHDOG_EOF_3c5e"
#define WATCHDOG_MINUTES_DEFAULT 60
#define WATCHDOG_MINUTES_MAX (7 * 24 * 60)

extern char **environ;

/* Shared by every action: where things live, fail(), sudo when needed. */
static const char watchdog_common[] =
	"fail() { printf 'vmctl: watchdog: %s\\n' \"$*\" >&2; exit 3; }\n"
	"LIB=$R/usr/local/lib/wakefs\n"
	"UNITS=$R/etc/systemd/system\n"
	"STATE=$R/var/lib/wakefs-watchdog\n"
	"SUDO=\n"
	"have_sc() { command -v \"$SC\" >/dev/null 2>&1; }\n"
	"need_root() {\n"
	"\t[ \"$(id -u)\" != 0 ] || return 0\n"
	"\tcommand -v sudo >/dev/null 2>&1 ||\n"
	"\t\tfail \"'$P': $(id -un) is not root and the VM has no sudo (log in as root, or install sudo)\"\n"
	"\tsudo -n true 2>/dev/null ||\n"
	"\t\tfail \"'$P': sudo -n does not work for $(id -un) on the VM (it needs passwordless sudo, as\"\n"
	"\t\t\"a Data Science VM's user has; or log in as root)\"\n"
	"\tSUDO='sudo -n'\n"
	"}\n";

static const char watchdog_install_head[] =
	"why=\"the watchdog runs from a systemd timer, and this VM does not run systemd\"\n"
	"have_sc || fail \"'$P' has no systemctl ($SC not found): $why (nothing installed)\"\n"
	"command -v curl >/dev/null 2>&1 ||\n"
	"\tfail \"'$P' has no curl, which the watchdog needs (sudo apt-get install curl; nothing installed)\"\n"
	"need_root\n"
	"tmp=$(mktemp -d) || fail \"cannot make a temporary directory on '$P'\"\n"
	"trap 'rm -rf \"$tmp\"' EXIT\n";

static const char watchdog_install_tail[] =
	"if [ -n \"$R\" ]; then\n"
	"\tsed \"s#/usr/local/lib/wakefs/#$LIB/#\" \"$tmp/wakefs-watchdog.service\" >\"$tmp/unit\" &&\n"
	"\t\tmv \"$tmp/unit\" \"$tmp/wakefs-watchdog.service\" || fail \"cannot write in $tmp on '$P'\"\n"
	"fi\n"
	"{\n"
	"\tprintf '# written by vmctl watchdog install for profile [%s]; see vmctl(1)\\n' \"$P\"\n"
	"\tprintf '# WAKEFS_WATCHDOG_* variables in the environment win over these\\n'\n"
	"\tprintf 'WAKEFS_WATCHDOG_VM_ID=%s\\n' \"$VM_ID\"\n"
	"\tprintf 'WAKEFS_WATCHDOG_ARM=%s\\n' \"$ARM\"\n"
	"\tprintf 'WAKEFS_WATCHDOG_MINUTES=%s\\n' \"$MINUTES\"\n"
	"\tprintf 'WAKEFS_WATCHDOG_HEARTBEAT=%s\\n' \"$R$HOME/.cache/wakefs/heartbeat\"\n"
	"\tprintf 'WAKEFS_WATCHDOG_STATE=%s\\n' \"$STATE\"\n"
	"} >\"$tmp/wakefs-watchdog.conf\" || fail \"cannot write in $tmp on '$P'\"\n"
	"$SUDO mkdir -p \"$LIB\" \"$UNITS\" || fail \"cannot create $LIB and $UNITS on '$P'\"\n"
	"$SUDO install -m 0755 \"$tmp/wakefs-watchdog.sh\" \"$LIB/wakefs-watchdog.sh\" &&\n"
	"\t$SUDO install -m 0644 \"$tmp/wakefs-watchdog.conf\" \"$LIB/wakefs-watchdog.conf\" &&\n"
	"\t$SUDO install -m 0644 \"$tmp/wakefs-watchdog.service\" \"$UNITS/wakefs-watchdog.service\" &&\n"
	"\t$SUDO install -m 0644 \"$tmp/wakefs-watchdog.timer\" \"$UNITS/wakefs-watchdog.timer\" ||\n"
	"\tfail \"cannot copy the watchdog's files into $LIB and $UNITS on '$P'\"\n"
	"$SUDO \"$SC\" daemon-reload || fail \"'$SC daemon-reload' failed on '$P'\"\n"
	"$SUDO \"$SC\" enable --now wakefs-watchdog.timer ||\n"
	"\tfail \"cannot enable wakefs-watchdog.timer on '$P' (see 'systemctl status wakefs-watchdog.timer' there)\"\n"
	"what=\"after $MINUTES min without a mount's heartbeat while CPU and GPU idle\"\n"
	"printf \"watchdog installed on '%s': it deallocates the VM %s \"'(checked every 5 min; '"
	"\"'vmctl watchdog status'\"')\\n' \"$P\" \"$what\"\n";

static const char watchdog_status_body[] =
	"if [ ! -f \"$LIB/wakefs-watchdog.sh\" ]; then\n"
	"\tprintf \"watchdog: not installed on '%s' (vmctl watchdog install)\\n\" \"$P\"\n"
	"\texit 0\n"
	"fi\n"
	"if have_sc; then\n"
	"\ten=$(\"$SC\" is-enabled wakefs-watchdog.timer 2>/dev/null)\n"
	"\tact=$(\"$SC\" is-active wakefs-watchdog.timer 2>/dev/null)\n"
	"\tprintf \"watchdog: installed on '%s', timer %s, %s\\n\" \"$P\" \"${en:-not enabled}\" \"${act:-not active}\"\n"
	"else\n"
	"\tprintf \"watchdog: installed on '%s', but it has no systemctl ($SC not found): nothing runs it\\n\" \"$P\"\n"
	"fi\n"
	"sh \"$LIB/wakefs-watchdog.sh\" --status\n";

static const char watchdog_remove_body[] =
	"if [ ! -e \"$LIB/wakefs-watchdog.sh\" ] && [ ! -e \"$UNITS/wakefs-watchdog.timer\" ] &&\n"
	"\t[ ! -e \"$UNITS/wakefs-watchdog.service\" ] && [ ! -e \"$STATE\" ]; then\n"
	"\tprintf \"watchdog: not installed on '%s' (nothing to remove)\\n\" \"$P\"\n"
	"\texit 0\n"
	"fi\n"
	"need_root\n"
	"if have_sc; then\n"
	"\t$SUDO \"$SC\" disable --now wakefs-watchdog.timer >/dev/null 2>&1 ||\n"
	"\t\tprintf \"vmctl: watchdog: warning: cannot disable wakefs-watchdog.timer on '%s'; removing its files anyway\\n\" \"$P\" >&2\n"
	"fi\n"
	"$SUDO rm -f \"$LIB/wakefs-watchdog.sh\" \"$LIB/wakefs-watchdog.conf\" \\\n"
	"\t\"$UNITS/wakefs-watchdog.service\" \"$UNITS/wakefs-watchdog.timer\" &&\n"
	"\t$SUDO rm -rf \"$STATE\" || fail \"cannot remove the watchdog's files from '$P'\"\n"
	"$SUDO rmdir \"$LIB\" 2>/dev/null\n"
	"if have_sc; then $SUDO \"$SC\" daemon-reload || fail \"'$SC daemon-reload' failed on '$P'\"; fi\n"
	"printf \"watchdog removed from '%s'\\n\" \"$P\"\n";

int watchdog_action_parse(const char *word)
{
	if (!word)
		return -1;
	if (!strcmp(word, "install"))
		return WATCHDOG_INSTALL;
	if (!strcmp(word, "status"))
		return WATCHDOG_STATUS;
	if (!strcmp(word, "remove"))
		return WATCHDOG_REMOVE;
	return -1;
}

/* NAME='VALUE' with VALUE single-quoted for sh. */
static void watchdog_assign(FILE *f, const char *name, const char *value)
{
	fprintf(f, "%s='", name);
	for (; *value; value++)
		if (*value == '\'')
			fputs("'\\''", f);
		else
			fputc(*value, f);
	fputs("'\n", f);
}

/* A file as a here-document into "$tmp/NAME". */
static void watchdog_heredoc(FILE *f, const char *name, const char *text)
{
	fprintf(f, "cat >\"$tmp/%s\" <<'%s' || fail \"cannot write in $tmp on '$P'\"\n%s%s\n",
		name, WATCHDOG_EOF, text, WATCHDOG_EOF);
}

/* The ARM endpoint the VM deallocates itself through: the profile's, else its cloud's. */
static const char *watchdog_arm(struct vm *vm)
{
	const char *cloud = vm_profile_get(vm, "cloud");

	if (vm_profile_get(vm, "arm_endpoint"))
		return vm_profile_get(vm, "arm_endpoint");
	if (cloud && !strcasecmp(cloud, "AzureChinaCloud"))
		return "https://management.chinacloudapi.cn";
	if (cloud && !strcasecmp(cloud, "AzureUSGovernment"))
		return "https://management.usgovcloudapi.net";
	return "https://management.azure.com";
}

int watchdog_script(struct vm *vm, enum watchdog_action action, char **out,
		    struct vm_error *err)
{
	const char *root = getenv("WAKEFS_WATCHDOG_ROOT"), *sc = getenv("WAKEFS_SYSTEMCTL");
	char msg[512], minutes[32];
	size_t size = 0;
	long m;
	FILE *f;

	*out = NULL;
	if (strcmp(vm_provider_of(vm)->name, "azure"))
		return vm_error_set(err, VM_ECONFIG, 0, "config",
				    "the watchdog is Azure-only: the VM deallocates itself through "
				    "ARM with its managed identity, and [%s] uses provider %s "
				    "(for other VMs, the mount's idle_deallocate stops them)",
				    vm_profile_name(vm), vm_provider_of(vm)->name);
	if (config_get_long(vm_section(vm), "watchdog_minutes", WATCHDOG_MINUTES_DEFAULT, 1,
			    WATCHDOG_MINUTES_MAX, &m, msg, sizeof(msg)))
		return vm_error_set(err, VM_ECONFIG, 0, "config", "%s", msg);
	snprintf(minutes, sizeof(minutes), "%ld", m);
	f = open_memstream(out, &size);
	if (!f)
		return vm_error_set(err, VM_EHTTP, 0, "nomem", "out of memory");
	fputs("# vmctl watchdog: run by sh on the VM\n", f);
	watchdog_assign(f, "P", vm_profile_name(vm));
	watchdog_assign(f, "R", root ? root : "");
	watchdog_assign(f, "SC", sc && *sc ? sc : "systemctl");
	watchdog_assign(f, "VM_ID", azure_vm_id(vm));
	watchdog_assign(f, "ARM", watchdog_arm(vm));
	watchdog_assign(f, "MINUTES", minutes);
	fputs("{\n", f);
	fputs(watchdog_common, f);
	switch (action) {
	case WATCHDOG_INSTALL:
		fputs(watchdog_install_head, f);
		watchdog_heredoc(f, "wakefs-watchdog.sh", watchdog_sh);
		watchdog_heredoc(f, "wakefs-watchdog.service", watchdog_service);
		watchdog_heredoc(f, "wakefs-watchdog.timer", watchdog_timer);
		fputs(watchdog_install_tail, f);
		break;
	case WATCHDOG_STATUS:
		fputs(watchdog_status_body, f);
		break;
	case WATCHDOG_REMOVE:
		fputs(watchdog_remove_body, f);
		break;
	}
	fputs("} </dev/null\n", f);
	if (fclose(f) || !*out) {
		free(*out);
		*out = NULL;
		return vm_error_set(err, VM_EHTTP, 0, "nomem", "out of memory");
	}
	return 0;
}

/* Write all of @buf to @fd; 0 or -errno (EPIPE when ssh went away early). */
static int watchdog_write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Spawn @argv with @script on its stdin, wait for it: its exit status, or -errno. */
static int watchdog_spawn(char **argv, const char *script)
{
	posix_spawn_file_actions_t fa;
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	int fds[2], rc, status = 0;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC))
		return -errno;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[0], 0);
	fflush(NULL);
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[0]);
	if (rc) {
		close(fds[1]);
		return -rc;
	}
	sigaction(SIGPIPE, &ign, &old);	/* ssh may exit before it read the script */
	watchdog_write_all(fds[1], script, strlen(script));
	close(fds[1]);
	sigaction(SIGPIPE, &old, NULL);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

int watchdog_run(struct vm *vm, enum watchdog_action action, int nopts, char **opts,
		 struct vm_error *err)
{
	static const char *const names[] = { "install", "status", "remove" };
	char addr[256], *script = NULL;
	const char *what = names[action];
	struct vm_ssh_params sp;
	struct vm_ssh_login login;
	char **av = NULL;
	int rc, n = 0, i;

	rc = watchdog_script(vm, action, &script, err);
	if (!rc)
		rc = vm_address(vm, addr, sizeof(addr), err);
	if (!rc)
		rc = vm_ssh_params(vm, &sp, err);
	if (rc)
		goto out;
	av = calloc((size_t)nopts + 24, sizeof(*av));
	if (!av) {
		rc = vm_error_set(err, VM_EHTTP, 0, "nomem", "out of memory");
		goto out;
	}
	/*
	 * Logged in as by `vmctl ssh`: the host key under the profile's name.
	 * The caller's options come first: for ssh the first value of an option wins.
	 */
	vm_ssh_login(vm, &sp, addr, &login);
	av[n++] = "ssh";
	for (i = 0; i < nopts; i++)
		av[n++] = opts[i];
	for (i = 0; i < login.nopt; i++)
		av[n++] = login.opt[i];
	av[n++] = "-T";
	av[n++] = "-o";
	av[n++] = "ConnectTimeout=30";
	av[n++] = "-o";
	av[n++] = "ServerAliveInterval=15";
	av[n++] = login.dest;
	av[n++] = "sh";
	av[n++] = "-s";
	av[n] = NULL;
	vm_debugf("watchdog %s: ssh to %s", what, login.dest);
	rc = watchdog_spawn(av, script);
	if (rc < 0) {
		rc = vm_error_set(err, VM_ECMD, 0, "ssh", "cannot run ssh for watchdog %s: %s "
				  "(install the OpenSSH client)", what, strerror(-rc));
	} else if (rc == 255) {
		rc = vm_error_set(err, VM_ECMD, 0, "ssh", "watchdog %s: cannot log in to '%s' at "
				  "%s over ssh (ssh said why above; 'vmctl ssh' should work first)",
				  what, vm_profile_name(vm), addr);
	} else if (rc == 3) {
		rc = vm_error_set(err, VM_ECMD, 0, "remote", "watchdog %s failed on '%s'", what,
				  vm_profile_name(vm));
	} else if (rc) {
		rc = vm_error_set(err, VM_ECMD, 0, "ssh", "watchdog %s on '%s': the VM's shell "
				  "exited with %d", what, vm_profile_name(vm), rc);
	}
out:
	free(av);
	free(script);
	return rc;
}
