/*
 * vmctl/provider.c: the provider table, the struct vm every caller holds, and
 * the two simplest providers.
 *
 * vm_open() finds the profile's section, picks the provider named by its
 * `provider` key (default local) and lets it validate the profile. The
 * wrappers vm_start/stop/status/address only dispatch and make sure @err is
 * always filled on failure, so callers can print err->message unconditionally.
 *
 *   none:    an always-on SSH host: start/stop succeed doing nothing, status is
 *            RUNNING, the address is the `host` key.
 *   command: the user's shell commands (start_cmd, stop_cmd, status_cmd,
 *            address_cmd) run with /bin/sh -c under command_timeout (default
 *            300s); a failure reports the exit code and the stderr tail.
 */
#include "provider.h"
#include "config.h"
#include "proc.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct vm {
	const struct vm_provider *prov;
	const struct config *cfg;
	const struct config_section *sec;
	char *profile;
	void *data;
	struct vm_error open_err;	/* filled by a provider's open() */
};

static const struct vm_provider *const vm_providers[] = {
	&vm_provider_azure,
	&vm_provider_none,
	&vm_provider_command,
#ifdef WAKEFS_HAVE_PROVIDER_LOCAL
	&vm_provider_local,
#endif
};

static int vm_debug_on;
static vm_progress_fn vm_progress_cb;
static void *vm_progress_payload;

const struct vm_provider *vm_provider_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(vm_providers) / sizeof(vm_providers[0]); i++)
		if (strcmp(vm_providers[i]->name, name) == 0)
			return vm_providers[i];
	return NULL;
}

void vm_set_debug(int on)
{
	vm_debug_on = on;
}

int vm_debug_enabled(void)
{
	return vm_debug_on;
}

void vm_debugf(const char *fmt, ...)
{
	va_list ap;

	if (!vm_debug_on)
		return;
	fputs("vmctl: debug: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void vm_set_progress(vm_progress_fn cb, void *payload)
{
	vm_progress_cb = cb;
	vm_progress_payload = payload;
}

void vm_progress(const char *what, const char *state, long elapsed_s)
{
	if (vm_progress_cb)
		vm_progress_cb(what, state, elapsed_s, vm_progress_payload);
}

int vm_error_set(struct vm_error *err, int code, int http_status, const char *errcode,
		 const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	err->http_status = http_status;
	snprintf(err->code, sizeof(err->code), "%s", errcode ? errcode : "");
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return code;
}

const char *vm_power_name(enum vm_power power)
{
	switch (power) {
	case VM_POWER_RUNNING: return "running";
	case VM_POWER_STARTING: return "starting";
	case VM_POWER_STOPPING: return "stopping";
	case VM_POWER_STOPPED: return "stopped";
	case VM_POWER_DEALLOCATING: return "deallocating";
	case VM_POWER_DEALLOCATED: return "deallocated";
	case VM_POWER_UNKNOWN: break;
	}
	return "unknown";
}

enum vm_power vm_power_parse(const char *s)
{
	static const enum vm_power all[] = {
		VM_POWER_RUNNING, VM_POWER_STARTING, VM_POWER_STOPPING, VM_POWER_STOPPED,
		VM_POWER_DEALLOCATING, VM_POWER_DEALLOCATED,
	};
	char word[32];
	size_t i = 0;

	if (!s)
		return VM_POWER_UNKNOWN;
	if (!strncasecmp(s, "PowerState/", 11))
		s += 11;
	else if (!strncasecmp(s, "VM ", 3))
		s += 3;
	while (*s == ' ' || *s == '\t')
		s++;
	while (s[i] && !isspace((unsigned char)s[i]) && i < sizeof(word) - 1) {
		word[i] = s[i];
		i++;
	}
	word[i] = 0;
	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (!strcasecmp(word, vm_power_name(all[i])))
			return all[i];
	return VM_POWER_UNKNOWN;
}

const char *vm_strerror(int err)
{
	switch (err) {
	case VM_OK: return "success";
	case VM_EAUTH: return "authentication failed";
	case VM_EHTTP: return "request failed";
	case VM_ENOTFOUND: return "not found";
	case VM_ECONFLICT: return "conflict: another operation is in progress";
	case VM_ETIMEOUT: return "timed out";
	case VM_EPARSE: return "unexpected response";
	case VM_ECONFIG: return "configuration error";
	case VM_ECMD: return "command failed";
	}
	return "unknown error";
}

int vm_open(struct vm **out, const struct config *cfg, const char *profile,
	    struct vm_error *err)
{
	const struct config_section *sec = NULL;
	const char *pname, *file = config_file(cfg) ? config_file(cfg) : "the configuration";
	struct vm *vm = NULL;
	int rc = 0;

	*out = NULL;
	if (err)
		memset(err, 0, sizeof(*err));
	if (profile) {
		sec = config_section(cfg, profile);
	} else {
		sec = config_section(cfg, "default");
		if (!sec && config_section_count(cfg) == 1)
			sec = config_section_at(cfg, 0);
	}
	if (!sec) {
		if (profile)
			rc = vm_error_set(err, VM_ECONFIG, 0, "config",
					  "no profile [%s] in %s (add a [%s] section)", profile,
					  file, profile);
		else
			rc = vm_error_set(err, VM_ECONFIG, 0, "config",
					  "no profile chosen and %s has %zu profiles (use --profile NAME)",
					  file, config_section_count(cfg));
		goto out;
	}
	pname = config_get(sec, "provider");
	if (!pname || !*pname)
		pname = "local";
	vm = calloc(1, sizeof(*vm));
	if (!vm || !(vm->profile = strdup(config_section_name(sec)))) {
		rc = vm_error_set(err, VM_ECONFIG, 0, "nomem", "out of memory");
		goto out;
	}
	vm->cfg = cfg;
	vm->sec = sec;
	vm->prov = vm_provider_find(pname);
	if (!vm->prov) {
		rc = vm_error_set(err, VM_ECONFIG, 0, "config",
				  "provider '%s' of profile [%s] is not built into this binary",
				  pname, vm->profile);
		goto out;
	}
	if (vm->prov->open) {
		rc = vm->prov->open(vm);
		if (rc) {
			if (!vm->open_err.message[0])
				vm_error_set(&vm->open_err, rc, 0, "config",
					     "cannot open profile [%s]: %s", vm->profile,
					     vm_strerror(rc));
			if (err)
				*err = vm->open_err;
		}
	}
out:
	if (rc) {
		/* open() failed: it cleaned up after itself */
		if (vm)
			free(vm->profile);
		free(vm);
		vm = NULL;
	}
	*out = vm;
	return rc;
}

void vm_free(struct vm *vm)
{
	if (!vm)
		return;
	if (vm->prov->close)
		vm->prov->close(vm);
	free(vm->profile);
	free(vm);
}

static void vm_clear(struct vm_error *err)
{
	if (err)
		memset(err, 0, sizeof(*err));
}

/* Every failure leaves a message, whatever the provider did. */
static int vm_done(struct vm *vm, const char *what, int rc, struct vm_error *err)
{
	if (rc && err && !err->message[0]) {
		char code[sizeof(err->code)];

		memcpy(code, err->code, sizeof(code));
		vm_error_set(err, rc, err->http_status, code, "%s '%s' failed: %s", what,
			     vm->profile, vm_strerror(rc));
	}
	return rc;
}

int vm_start(struct vm *vm, struct vm_error *err)
{
	vm_clear(err);
	return vm_done(vm, "start", vm->prov->start(vm, err), err);
}

int vm_stop(struct vm *vm, int power_off, struct vm_error *err)
{
	vm_clear(err);
	return vm_done(vm, "stop", vm->prov->stop(vm, power_off, err), err);
}

int vm_status(struct vm *vm, struct vm_status *st, struct vm_error *err)
{
	vm_clear(err);
	st->power = VM_POWER_UNKNOWN;
	st->since = 0;
	return vm_done(vm, "status of", vm->prov->status(vm, st, err), err);
}

int vm_address(struct vm *vm, char *host, size_t len, struct vm_error *err)
{
	vm_clear(err);
	if (len)
		host[0] = 0;
	return vm_done(vm, "address of", vm->prov->address(vm, host, len, err), err);
}

void vm_ssh_login(struct vm *vm, const struct vm_ssh_params *sp, const char *addr,
		  struct vm_ssh_login *l)
{
	memset(l, 0, sizeof(*l));
	snprintf(l->alias, sizeof(l->alias), "HostKeyAlias=%s", vm_profile_name(vm));
	l->opt[l->nopt++] = "-o";
	l->opt[l->nopt++] = l->alias;
	if (sp->known_hosts[0]) {
		snprintf(l->known_hosts, sizeof(l->known_hosts), "UserKnownHostsFile=%s",
			 sp->known_hosts);
		l->opt[l->nopt++] = "-o";
		l->opt[l->nopt++] = l->known_hosts;
	}
	if (sp->port > 0) {
		snprintf(l->port, sizeof(l->port), "%d", sp->port);
		l->opt[l->nopt++] = "-p";
		l->opt[l->nopt++] = l->port;
	}
	if (sp->identity[0]) {
		l->opt[l->nopt++] = "-i";
		l->opt[l->nopt++] = (char *)sp->identity;
	}
	if (sp->user[0])
		snprintf(l->dest, sizeof(l->dest), "%s@%s", sp->user, addr);
	else
		snprintf(l->dest, sizeof(l->dest), "%s", addr);
}

int vm_ssh_params(struct vm *vm, struct vm_ssh_params *out, struct vm_error *err)
{
	const char *user = vm_profile_get(vm, "user");
	const char *id = vm_profile_get(vm, "identity");
	const char *port = vm_profile_get(vm, "port");
	char *exp;

	vm_clear(err);
	memset(out, 0, sizeof(*out));
	if (user)
		snprintf(out->user, sizeof(out->user), "%s", user);
	if (port)
		out->port = atoi(port);
	if (id) {
		exp = config_expand_home(id);
		if (!exp)
			return vm_error_set(err, VM_ECONFIG, 0, "nomem", "out of memory");
		snprintf(out->identity, sizeof(out->identity), "%s", exp);
		free(exp);
	}
	if (!vm->prov->ssh_params)
		return 0;
	return vm_done(vm, "login of", vm->prov->ssh_params(vm, out, err), err);
}

const char *vm_profile_get(struct vm *vm, const char *key)
{
	return config_get(vm->sec, key);
}

const struct config_section *vm_section(struct vm *vm)
{
	return vm->sec;
}

const char *vm_profile_name(struct vm *vm)
{
	return vm->profile;
}

const struct config *vm_config(struct vm *vm)
{
	return vm->cfg;
}

const struct vm_provider *vm_provider_of(struct vm *vm)
{
	return vm->prov;
}

struct vm_error *vm_open_err(struct vm *vm)
{
	return &vm->open_err;
}

void *vm_data(struct vm *vm)
{
	return vm->data;
}

void vm_set_data(struct vm *vm, void *data)
{
	vm->data = data;
}

/* ---- none: an always-on host ---- */

static int none_open(struct vm *vm)
{
	const char *host = vm_profile_get(vm, "host");

	if (!host || !*host)
		return vm_error_set(&vm->open_err, VM_ECONFIG, 0, "config",
				    "profile [%s] uses provider none but sets no 'host' "
				    "(add host = NAME or IP)", vm->profile);
	return 0;
}

static int none_start(struct vm *vm, struct vm_error *err)
{
	return 0;
}

static int none_stop(struct vm *vm, int power_off, struct vm_error *err)
{
	return 0;
}

static int none_status(struct vm *vm, struct vm_status *st, struct vm_error *err)
{
	st->power = VM_POWER_RUNNING;
	return 0;
}

static int none_address(struct vm *vm, char *host, size_t len, struct vm_error *err)
{
	const char *h = vm_profile_get(vm, "host");

	if ((size_t)snprintf(host, len, "%s", h) >= len)
		return vm_error_set(err, VM_ECONFIG, 0, "config", "host '%s' is too long", h);
	return 0;
}

const struct vm_provider vm_provider_none = {
	.name = "none",
	.open = none_open,
	.start = none_start,
	.stop = none_stop,
	.status = none_status,
	.address = none_address,
};

/* ---- command: the user's shell commands ---- */

static int command_open(struct vm *vm)
{
	static const char *const need[] = { "start_cmd", "stop_cmd", "status_cmd" };
	char msg[512];
	long t;
	size_t i;

	for (i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		const char *v = vm_profile_get(vm, need[i]);

		if (!v || !*v)
			return vm_error_set(&vm->open_err, VM_ECONFIG, 0, "config",
					    "profile [%s] uses provider command but sets no '%s'",
					    vm->profile, need[i]);
	}
	if (!vm_profile_get(vm, "address_cmd") && !vm_profile_get(vm, "host"))
		return vm_error_set(&vm->open_err, VM_ECONFIG, 0, "config",
				    "profile [%s] uses provider command but sets neither "
				    "'address_cmd' nor 'host'", vm->profile);
	if (config_get_duration(vm->sec, "command_timeout", 300, &t, msg, sizeof(msg)))
		return vm_error_set(&vm->open_err, VM_ECONFIG, 0, "config", "%s", msg);
	return 0;
}

/*
 * Run the profile's @key command; on success @res holds its output (caller
 * releases). The command sees WAKEFS_PROFILE and WAKEFS_POWER_OFF.
 */
static int command_run(struct vm *vm, const char *key, int power_off, struct proc_result *res,
		       struct vm_error *err)
{
	const char *cmd = vm_profile_get(vm, key);
	char envp_profile[300], envp_off[32], tail[300];
	const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	const char *envp[] = { envp_profile, envp_off, NULL };
	long timeout = 300;
	int rc;

	config_get_duration(vm->sec, "command_timeout", 300, &timeout, NULL, 0);
	snprintf(envp_profile, sizeof(envp_profile), "WAKEFS_PROFILE=%s", vm->profile);
	snprintf(envp_off, sizeof(envp_off), "WAKEFS_POWER_OFF=%d", power_off);
	vm_debugf("running %s of profile [%s]: %s", key, vm->profile, cmd);
	rc = proc_run(argv, envp, timeout * 1000, res);
	if (rc) {
		proc_result_release(res);
		return vm_error_set(err, VM_ECMD, 0, "command", "cannot run %s of [%s]: %s", key,
				    vm->profile, strerror(-rc));
	}
	proc_tail(res->err, tail, sizeof(tail));
	if (res->timed_out) {
		rc = vm_error_set(err, VM_ETIMEOUT, 0, "timeout",
				  "%s of [%s] did not finish within %lds (raise command_timeout)%s%s",
				  key, vm->profile, timeout, tail[0] ? ": " : "", tail);
	} else if (res->exit_code != 0) {
		rc = vm_error_set(err, VM_ECMD, 0, "command", "%s of [%s] exited with %d%s%s", key,
				  vm->profile, res->exit_code, tail[0] ? ": " : "", tail);
	}
	if (rc)
		proc_result_release(res);
	return rc;
}

static int command_start(struct vm *vm, struct vm_error *err)
{
	struct proc_result res;
	int rc = command_run(vm, "start_cmd", 0, &res, err);

	if (!rc)
		proc_result_release(&res);
	return rc;
}

static int command_stop(struct vm *vm, int power_off, struct vm_error *err)
{
	struct proc_result res;
	int rc = command_run(vm, "stop_cmd", power_off, &res, err);

	if (!rc)
		proc_result_release(&res);
	return rc;
}

static int command_status(struct vm *vm, struct vm_status *st, struct vm_error *err)
{
	struct proc_result res;
	char first[64];
	int rc = command_run(vm, "status_cmd", 0, &res, err);
	size_t i = 0;
	const char *s;

	if (rc)
		return rc;
	for (s = res.out; isspace((unsigned char)*s); s++)
		;
	while (s[i] && s[i] != '\n' && i < sizeof(first) - 1) {
		first[i] = s[i];
		i++;
	}
	first[i] = 0;
	while (i > 0 && isspace((unsigned char)first[i - 1]))
		first[--i] = 0;
	st->power = vm_power_parse(first);
	if (st->power == VM_POWER_UNKNOWN && strcasecmp(first, "unknown"))
		rc = vm_error_set(err, VM_EPARSE, 0, "command",
				  "status_cmd of [%s] printed '%s' (expected running, stopped, "
				  "deallocated, starting, stopping, deallocating)", vm->profile, first);
	proc_result_release(&res);
	return rc;
}

static int command_address(struct vm *vm, char *host, size_t len, struct vm_error *err)
{
	struct proc_result res;
	const char *s;
	size_t i = 0;
	int rc;

	if (!vm_profile_get(vm, "address_cmd"))
		return none_address(vm, host, len, err);
	rc = command_run(vm, "address_cmd", 0, &res, err);
	if (rc)
		return rc;
	for (s = res.out; isspace((unsigned char)*s); s++)
		;
	while (s[i] && !isspace((unsigned char)s[i]) && i < len - 1) {
		host[i] = s[i];
		i++;
	}
	host[i] = 0;
	if (!i)
		rc = vm_error_set(err, VM_EPARSE, 0, "command",
				  "address_cmd of [%s] printed no address", vm->profile);
	proc_result_release(&res);
	return rc;
}

const struct vm_provider vm_provider_command = {
	.name = "command",
	.open = command_open,
	.start = command_start,
	.stop = command_stop,
	.status = command_status,
	.address = command_address,
};
