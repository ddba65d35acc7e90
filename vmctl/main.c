/*
 * vmctl/main.c: the vmctl command line, the VM's remote control.
 *
 * Parses the global options (--config, --profile, --debug) and a command,
 * loads the configuration, opens the profile's VM through provider.h and runs
 * the command. Azure-only commands (create, delete, accept-terms,
 * autoshutdown, list) go to azure.h. This is the only vmctl file that prints
 * to stdout or exits; every error is printed once, here, as
 * "vmctl: <message>", and mapped to the exit codes of vmctl(1):
 *   0 ok, 1 operation failed, 2 usage or configuration, 3 authentication,
 *   4 not found, 5 conflict (VM busy), 6 timeout.
 */
#include "azure.h"
#include "config.h"
#include "provider.h"
#include "watchdog.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum main_exit {
	EXIT_OK = 0,
	EXIT_FAILED = 1,
	EXIT_USAGE = 2,
	EXIT_AUTH = 3,
	EXIT_NOTFOUND = 4,
	EXIT_CONFLICT = 5,
	EXIT_TIMEOUT = 6,
};

struct main_opts {
	const char *config;
	const char *profile;
	int debug;
	const char *cmd;
	int argc;		/* the command's own arguments */
	char **argv;
	int rest_argc;		/* after "--" */
	char **rest_argv;
};

static const char main_usage[] =
	"usage: vmctl [--config FILE] [--profile NAME] [--debug] COMMAND [ARGS]\n"
	"\n"
	"commands:\n"
	"  start                     start the VM and wait until it runs\n"
	"  stop [--power-off]        deallocate the VM (billing stops); --power-off only\n"
	"                            powers it off, and it still bills\n"
	"  status [--json]           power state and address\n"
	"  ip                        the VM's address (resolved now)\n"
	"  wait [--timeout SECONDS]  wait until SSH answers on the VM (default 300)\n"
	"  ssh [--print] [--no-forward] [-L SPEC]... [-- ARGS]\n"
	"                            ssh to the VM with -L 8888:localhost:8888\n"
	"  create                    deploy the VM template (resource group, network, VM)\n"
	"  delete [--yes]            delete the resource group and everything in it\n"
	"  accept-terms              accept the marketplace terms of the VM image\n"
	"  autoshutdown TIME [--tz ZONE] | off\n"
	"                            daily auto-shutdown at TIME (HHMM), or none\n"
	"  list                      the VMs of the resource group and their state\n"
	"  watchdog install|status|remove [-- SSH_OPTIONS]\n"
	"                            the VM deallocates itself when no mount has sent\n"
	"                            a heartbeat for watchdog_minutes and it idles\n"
	"  version                   print the version\n"
	"  help                      this text\n"
	"\n"
	"See vmctl(1) for the configuration and exit codes.\n";

static int main_exit_of(int rc)
{
	switch (rc) {
	case VM_OK: return EXIT_OK;
	case VM_EAUTH: return EXIT_AUTH;
	case VM_ENOTFOUND: return EXIT_NOTFOUND;
	case VM_ECONFLICT: return EXIT_CONFLICT;
	case VM_ETIMEOUT: return EXIT_TIMEOUT;
	case VM_ECONFIG: return EXIT_USAGE;
	}
	return EXIT_FAILED;
}

static int main_fail(int rc, const struct vm_error *err)
{
	fprintf(stderr, "vmctl: %s\n", err->message[0] ? err->message : vm_strerror(rc));
	return main_exit_of(rc);
}

static int main_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int main_usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("vmctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see 'vmctl help')\n", stderr);
	return EXIT_USAGE;
}

/* On a terminal: "vmctl: start: in progress (12s)" rewritten in place. */
static void main_progress(const char *what, const char *state, long elapsed, void *payload)
{
	fprintf(stderr, "\r\033[Kvmctl: %s: %s (%lds)", what, state, elapsed);
	*(int *)payload = 1;
}

static int main_progress_shown;

static void main_progress_end(void)
{
	if (main_progress_shown) {
		fputs("\r\033[K", stderr);
		main_progress_shown = 0;
	}
}

static int main_parse(int argc, char **argv, struct main_opts *o)
{
	static char *none[1];
	int i;

	memset(o, 0, sizeof(*o));
	o->argv = o->rest_argv = none;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--")) {
			o->rest_argc = argc - i - 1;
			o->rest_argv = argv + i + 1;
			break;
		}
		if (!strcmp(a, "--config") || !strcmp(a, "--profile") || !strcmp(a, "-p")) {
			if (i + 1 >= argc)
				return main_usage_error("option '%s' needs a value", a);
			if (!strcmp(a, "--config"))
				o->config = argv[++i];
			else
				o->profile = argv[++i];
		} else if (!strncmp(a, "--config=", 9)) {
			o->config = a + 9;
		} else if (!strncmp(a, "--profile=", 10)) {
			o->profile = a + 10;
		} else if (!strcmp(a, "--debug")) {
			o->debug = 1;
		} else if (!strcmp(a, "--version")) {
			o->cmd = "version";
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			o->cmd = "help";
		} else if (!o->cmd) {
			if (a[0] == '-')
				return main_usage_error("unknown option '%s'", a);
			o->cmd = a;
			o->argv = argv + i + 1;
			o->argc = 0;
		} else {
			o->argc++;	/* the command's arguments stay in order */
			if (o->argv + o->argc - 1 != argv + i) {
				/* a global option sat between them: move this one up */
				o->argv[o->argc - 1] = argv[i];
			}
		}
	}
	return 0;
}

static int main_has(struct main_opts *o, const char *flag)
{
	int i;

	for (i = 0; i < o->argc; i++)
		if (!strcmp(o->argv[i], flag))
			return 1;
	return 0;
}

/* Reject arguments the command does not take. @allowed: flags; @valued: flags with a value. */
static int main_check_args(struct main_opts *o, const char *const *allowed,
			   const char *const *valued, int positional)
{
	int i, npos = 0;

	for (i = 0; i < o->argc; i++) {
		const char *a = o->argv[i];
		int ok = 0;

		for (const char *const *f = allowed; f && *f; f++)
			ok |= !strcmp(a, *f);
		for (const char *const *f = valued; !ok && f && *f; f++) {
			if (!strcmp(a, *f)) {
				if (i + 1 >= o->argc)
					return main_usage_error("option '%s' needs a value", a);
				ok = 1;
				i++;
			}
		}
		if (!ok && a[0] != '-' && npos < positional) {
			npos++;
			ok = 1;
		}
		if (!ok)
			return a[0] == '-' ? main_usage_error("unknown option '%s'", a) :
		       main_usage_error("unexpected argument '%s'", a);
	}
	return 0;
}

static const char *main_value(struct main_opts *o, const char *flag)
{
	int i;

	for (i = 0; i + 1 < o->argc; i++)
		if (!strcmp(o->argv[i], flag))
			return o->argv[i + 1];
	return NULL;
}

static void main_json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static int main_status(struct vm *vm, struct main_opts *o)
{
	struct vm_status st;
	struct vm_error err, aerr;
	char addr[256] = "", since[64] = "";
	int rc, arc = -1, json = main_has(o, "--json");

	rc = vm_status(vm, &st, &err);
	if (rc)
		return main_fail(rc, &err);
	if (st.power == VM_POWER_RUNNING || st.power == VM_POWER_STARTING)
		arc = vm_address(vm, addr, sizeof(addr), &aerr);
	if (st.since) {
		struct tm tm;

		gmtime_r(&st.since, &tm);
		strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	if (json) {
		printf("{\"profile\":");
		main_json_string(vm_profile_name(vm));
		printf(",\"provider\":");
		main_json_string(vm_provider_of(vm)->name);
		printf(",\"power_state\":");
		main_json_string(vm_power_name(st.power));
		printf(",\"since\":");
		if (since[0])
			main_json_string(since);
		else
			printf("null");
		printf(",\"address\":");
		if (arc == 0)
			main_json_string(addr);
		else
			printf("null");
		printf("}\n");
	} else {
		printf("%s: %s", vm_profile_name(vm), vm_power_name(st.power));
		if (since[0])
			printf(" since %s", since);
		if (arc == 0)
			printf(", address %s", addr);
		printf("\n");
		if (st.power == VM_POWER_STOPPED)
			printf("note: stopped but still allocated: it still bills (vmctl stop deallocates)\n");
	}
	if (arc > 0 || (arc < 0 && arc != -1))
		fprintf(stderr, "vmctl: %s\n", aerr.message);
	return EXIT_OK;
}

/* Connect to @ai within @ms milliseconds; the socket or -1. */
static int main_connect(const struct addrinfo *ai, int ms)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			ai->ai_protocol), soerr = 0;
	struct pollfd pfd = { fd, POLLOUT, 0 };
	socklen_t len = sizeof(soerr);

	if (fd < 0)
		return -1;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno == EINPROGRESS && poll(&pfd, 1, ms) == 1 &&
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr == 0)
		return fd;
	close(fd);
	return -1;
}

/* Does an SSH server answer on @host:@port (its banner starts with "SSH-")? */
static int main_ssh_answers(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL, *p;
	int ok = 0;

	if (getaddrinfo(host, port, &hints, &ai))
		return 0;
	for (p = ai; p && !ok; p = p->ai_next) {
		int fd = main_connect(p, 3000);
		struct pollfd pfd = { fd, POLLIN, 0 };
		char buf[8] = "";

		if (fd < 0)
			continue;
		if (poll(&pfd, 1, 5000) == 1 && read(fd, buf, 4) == 4 && !memcmp(buf, "SSH-", 4))
			ok = 1;
		close(fd);
	}
	freeaddrinfo(ai);
	return ok;
}

static int main_wait(struct vm *vm, struct main_opts *o)
{
	static const char *const valued[] = { "--timeout", NULL };
	const char *t = main_value(o, "--timeout");
	char addr[256], port[16];
	struct vm_ssh_params sp;
	struct vm_error err;
	long timeout = 300;
	time_t start = time(NULL);
	int rc = main_check_args(o, NULL, valued, 0);

	if (rc)
		return rc;
	if (t && config_parse_duration(t, &timeout))
		return main_usage_error("bad timeout '%s' (expected seconds, or e.g. 5m)", t);
	rc = vm_ssh_params(vm, &sp, &err);
	if (rc)
		return main_fail(rc, &err);
	snprintf(port, sizeof(port), "%d", sp.port > 0 ? sp.port : 22);
	for (;;) {
		long elapsed = (long)(time(NULL) - start);

		rc = vm_address(vm, addr, sizeof(addr), &err);
		if (rc == 0 && main_ssh_answers(addr, port)) {
			main_progress_end();
			return EXIT_OK;
		}
		if (rc == VM_EAUTH || rc == VM_ECONFIG || rc == VM_EPARSE)
			return main_fail(rc, &err);
		if (elapsed >= timeout) {
			main_progress_end();
			fprintf(stderr, "vmctl: SSH on '%s' did not answer within %lds%s%s\n",
				vm_profile_name(vm), timeout, rc ? ": " : "", rc ? err.message : "");
			return EXIT_TIMEOUT;
		}
		vm_progress("wait", rc ? "no address yet" : "waiting for SSH", elapsed);
		sleep(1);
	}
}

static int main_ssh(struct vm *vm, struct main_opts *o)
{
	static const char *const allowed[] = { "--print", "--no-forward", NULL };
	static const char *const valued[] = { "-L", NULL };
	const struct config_value *fw = NULL;
	char addr[256], **av, **owned;
	struct vm_ssh_params sp;
	struct vm_ssh_login login;
	size_t nowned = 0;
	struct vm_error err;
	int rc = main_check_args(o, allowed, valued, 0), n = 0, i, print = main_has(o, "--print");

	if (rc)
		return rc;
	rc = vm_address(vm, addr, sizeof(addr), &err);
	if (!rc)
		rc = vm_ssh_params(vm, &sp, &err);
	if (rc)
		return main_fail(rc, &err);
	av = calloc((size_t)(24 + 2 * o->argc + 2 * (int)config_count(vm_section(vm), "forward") +
			     o->rest_argc), sizeof(*av));
	owned = calloc(config_count(vm_section(vm), "forward") + 1, sizeof(*owned));
	if (!av || !owned) {
		free(av);
		free(owned);
		return EXIT_FAILED;
	}
	vm_ssh_login(vm, &sp, addr, &login);
	av[n++] = "ssh";
	for (i = 0; i < login.nopt; i++)
		av[n++] = login.opt[i];
	if (!main_has(o, "--no-forward")) {
		av[n++] = "-L";
		av[n++] = "8888:localhost:8888";
	}
	while ((fw = config_next(vm_section(vm), "forward", fw))) {
		char *spec;

		if (strchr(fw->value, ':'))
			spec = strdup(fw->value);
		else if (asprintf(&spec, "%s:localhost:%s", fw->value, fw->value) < 0)
			spec = NULL;
		if (spec) {
			av[n++] = "-L";
			av[n++] = spec;
			owned[nowned++] = spec;
		}
	}
	for (i = 0; i + 1 < o->argc; i++) {
		if (!strcmp(o->argv[i], "-L")) {
			av[n++] = "-L";
			av[n++] = o->argv[++i];
		}
	}
	av[n++] = login.dest;
	for (i = 0; i < o->rest_argc; i++)
		av[n++] = o->rest_argv[i];
	av[n] = NULL;
	if (print) {
		for (i = 0; i < n; i++) {
			const char *a = av[i];
			int quote = !*a || strpbrk(a, " \t\n'\"\\$`;&|<>()*?[]{}~#!") != NULL;

			if (i)
				putchar(' ');
			if (!quote) {
				fputs(a, stdout);
				continue;
			}
			putchar('\'');
			for (; *a; a++)
				if (*a == '\'')
					fputs("'\\''", stdout);
				else
					putchar(*a);
			putchar('\'');
		}
		putchar('\n');
		rc = EXIT_OK;
		goto out;
	}
	fflush(NULL);
	execvp(av[0], av);
	fprintf(stderr, "vmctl: cannot run ssh: %s (install the OpenSSH client)\n", strerror(errno));
	rc = EXIT_FAILED;
out:
	while (nowned)
		free(owned[--nowned]);
	free(owned);
	free(av);
	return rc;
}

static int main_need_azure(struct vm *vm, const char *cmd)
{
	if (strcmp(vm_provider_of(vm)->name, "azure")) {
		fprintf(stderr, "vmctl: '%s' needs an Azure profile, and [%s] uses provider %s\n",
			cmd, vm_profile_name(vm), vm_provider_of(vm)->name);
		return EXIT_USAGE;
	}
	return 0;
}

static int main_list(struct vm *vm)
{
	struct azure_vm_info *v;
	struct vm_error err;
	size_t n, i;
	int rc = azure_list(vm, &v, &n, &err);

	if (rc)
		return main_fail(rc, &err);
	for (i = 0; i < n; i++)
		printf("%-32s %s\n", v[i].name, vm_power_name(v[i].power));
	free(v);
	return EXIT_OK;
}

static int main_create(struct vm *vm)
{
	struct stat sb;
	const char *dir = stat("infra", &sb) == 0 && S_ISDIR(sb.st_mode) ? "infra" : ".";
	struct vm_error err;
	int rc = azure_create(vm, dir, &err);

	main_progress_end();
	if (rc)
		return main_fail(rc, &err);
	printf("created '%s'; wrote %s/.vm-id\n", vm_profile_get(vm, "vm") ?
	       vm_profile_get(vm, "vm") : vm_profile_name(vm), dir);
	return EXIT_OK;
}

static int main_delete(struct vm *vm, struct main_opts *o)
{
	static const char *const allowed[] = { "--yes", "-y", NULL };
	const char *id = azure_vm_id(vm), *rg0 = strstr(id, "/resourceGroups/");
	char rg[256] = "", answer[256];
	struct vm_error err;
	int rc = main_check_args(o, allowed, NULL, 0);

	if (rc)
		return rc;
	if (rg0)
		sscanf(rg0 + 16, "%255[^/]", rg);
	if (!main_has(o, "--yes") && !main_has(o, "-y")) {
		if (!isatty(0)) {
			fprintf(stderr, "vmctl: refusing to delete resource group '%s' without "
				"confirmation (add --yes)\n", rg);
			return EXIT_USAGE;
		}
		fprintf(stderr, "delete resource group '%s' and everything in it? "
			"type its name to confirm: ", rg);
		if (!fgets(answer, sizeof(answer), stdin) ||
		    (answer[strcspn(answer, "\n")] = 0, strcmp(answer, rg))) {
			fprintf(stderr, "vmctl: not deleted\n");
			return EXIT_USAGE;
		}
	}
	rc = azure_delete(vm, &err);
	main_progress_end();
	if (rc)
		return main_fail(rc, &err);
	printf("deleted resource group '%s'\n", rg);
	return EXIT_OK;
}

static int main_terms(struct vm *vm)
{
	struct vm_error err;
	int already, rc = azure_accept_terms(vm, &already, &err);

	if (rc)
		return main_fail(rc, &err);
	printf(already ? "terms already accepted\n" : "terms accepted\n");
	return EXIT_OK;
}

static int main_autoshutdown(struct vm *vm, struct main_opts *o)
{
	static const char *const valued[] = { "--tz", NULL };
	const char *t = NULL, *tz = main_value(o, "--tz");
	char hhmm[8];
	struct vm_error err;
	int rc = main_check_args(o, NULL, valued, 1), i;

	if (rc)
		return rc;
	for (i = 0; i < o->argc; i++) {
		if (!strcmp(o->argv[i], "--tz"))
			i++;
		else
			t = o->argv[i];
	}
	if (!t)
		t = vm_profile_get(vm, "autoshutdown_time");
	if (!tz)
		tz = vm_profile_get(vm, "autoshutdown_tz");
	if (!t)
		return main_usage_error("%s", "autoshutdown needs a TIME (HHMM) or 'off'");
	if (strcmp(t, "off")) {
		int h, m;
		char c;

		if ((strlen(t) == 4 && sscanf(t, "%2d%2d%c", &h, &m, &c) == 2) ||
		    (strlen(t) == 5 && t[2] == ':' && sscanf(t, "%2d:%2d%c", &h, &m, &c) == 2)) {
			if (h < 0 || h > 23 || m < 0 || m > 59 || t[0] < '0' || t[0] > '9')
				return main_usage_error("bad time '%s' (expected HHMM, 24-hour)", t);
		} else {
			return main_usage_error("bad time '%s' (expected HHMM, 24-hour)", t);
		}
		snprintf(hhmm, sizeof(hhmm), "%02d%02d", h, m);
	}
	rc = azure_autoshutdown(vm, strcmp(t, "off") ? hhmm : NULL, tz, &err);
	if (rc)
		return main_fail(rc, &err);
	if (strcmp(t, "off"))
		printf("auto-shutdown set daily at %s %s\n", hhmm, tz ? tz : "UTC");
	else
		printf("auto-shutdown removed\n");
	return EXIT_OK;
}

static int main_watchdog(struct vm *vm, struct main_opts *o)
{
	int action = o->argc == 1 ? watchdog_action_parse(o->argv[0]) : -1, rc;
	struct vm_error err;

	if (action < 0)
		return main_usage_error("%s", "watchdog needs one of install, status, remove");
	rc = watchdog_run(vm, action, o->rest_argc, o->rest_argv, &err);
	if (rc && !strcmp(err.code, "remote"))
		return main_exit_of(rc);	/* the VM said why */
	return rc ? main_fail(rc, &err) : EXIT_OK;
}

static int main_run(struct vm *vm, struct main_opts *o)
{
	static const char *const stop_flags[] = { "--power-off", NULL };
	static const char *const status_flags[] = { "--json", NULL };
	struct vm_error err;
	char addr[256];
	int rc;
	const char *c = o->cmd;

	if (!strcmp(c, "start") || !strcmp(c, "ip") || !strcmp(c, "list") ||
	    !strcmp(c, "create") || !strcmp(c, "accept-terms")) {
		rc = main_check_args(o, NULL, NULL, 0);
		if (rc)
			return rc;
	}
	if (!strcmp(c, "start")) {
		rc = vm_start(vm, &err);
		main_progress_end();
		if (rc)
			return main_fail(rc, &err);
		return EXIT_OK;
	}
	if (!strcmp(c, "stop")) {
		int off = main_has(o, "--power-off");

		rc = main_check_args(o, stop_flags, NULL, 0);
		if (rc)
			return rc;
		if (off)
			fprintf(stderr, "vmctl: warning: powering off without deallocating: "
				"'%s' stays allocated and still bills (plain 'stop' deallocates)\n",
				vm_profile_name(vm));
		rc = vm_stop(vm, off, &err);
		main_progress_end();
		if (rc)
			return main_fail(rc, &err);
		return EXIT_OK;
	}
	if (!strcmp(c, "status")) {
		rc = main_check_args(o, status_flags, NULL, 0);
		return rc ? rc : main_status(vm, o);
	}
	if (!strcmp(c, "ip")) {
		rc = vm_address(vm, addr, sizeof(addr), &err);
		if (rc)
			return main_fail(rc, &err);
		printf("%s\n", addr);
		return EXIT_OK;
	}
	if (!strcmp(c, "wait"))
		return main_wait(vm, o);
	if (!strcmp(c, "ssh"))
		return main_ssh(vm, o);
	if (!strcmp(c, "watchdog"))
		return main_watchdog(vm, o);
	if ((rc = main_need_azure(vm, c)))
		return rc;
	if (!strcmp(c, "list"))
		return main_list(vm);
	if (!strcmp(c, "create"))
		return main_create(vm);
	if (!strcmp(c, "delete"))
		return main_delete(vm, o);
	if (!strcmp(c, "accept-terms"))
		return main_terms(vm);
	return main_autoshutdown(vm, o);
}

int main(int argc, char **argv)
{
	static const char *const known[] = { "start", "stop", "status", "ip", "wait", "ssh",
					     "create", "delete", "accept-terms", "autoshutdown",
					     "list", "watchdog", NULL };
	struct main_opts o;
	struct config *cfg = NULL;
	struct vm *vm = NULL;
	struct vm_error err;
	char msg[1024] = "";
	int rc, found = 0;

	rc = main_parse(argc, argv, &o);
	if (rc)
		return rc;
	if (!o.cmd || !strcmp(o.cmd, "help")) {
		fputs(main_usage, o.cmd ? stdout : stderr);
		return o.cmd ? EXIT_OK : EXIT_USAGE;
	}
	if (!strcmp(o.cmd, "version")) {
		printf("vmctl %s\n", WAKEFS_VERSION);
		return EXIT_OK;
	}
	for (const char *const *k = known; *k; k++)
		found |= !strcmp(*k, o.cmd);
	if (!found)
		return main_usage_error("unknown command '%s'", o.cmd);
	vm_set_debug(o.debug);
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());
	if (isatty(2) && !o.debug)
		vm_set_progress(main_progress, &main_progress_shown);
	rc = config_load(&cfg, o.config, msg, sizeof(msg));
	if (rc) {
		fprintf(stderr, "vmctl: %s\n", msg);
		return EXIT_USAGE;
	}
	rc = vm_open(&vm, cfg, o.profile, &err);
	if (rc) {
		rc = main_fail(rc, &err);
		goto out;
	}
	rc = main_run(vm, &o);
out:
	main_progress_end();
	vm_free(vm);
	config_free(cfg);
	return rc;
}
