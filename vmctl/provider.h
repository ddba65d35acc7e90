/*
 * vmctl/provider.h: the VM lifecycle contract.
 *
 * A profile of the configuration names a provider (`provider = azure | local
 * | none | command`, default local). vm_open() picks it and opens one
 * profile's VM; vm_start/stop/status/address drive it. Providers live in
 * provider.c's table; each implements struct vm_provider and keeps its state
 * behind vm_data()/vm_set_data().
 *
 * Return values: 0 or a negative enum vm_err. On failure @err (which may be
 * NULL) holds what the user should read: the HTTP status when there was one,
 * a code (an ARM code like "AllocationFailed", or a short word of ours) and a
 * one-line message (lowercase, no program prefix, no newline).
 *
 * Ownership: vm_open() makes the caller the owner of the struct vm (release
 * with vm_free()); the struct config must outlive it; strings returned by
 * getters are borrowed from the vm or the config.
 *
 * Threads: a struct vm is used by one thread at a time.
 */
#ifndef WAKEFS_PROVIDER_H
#define WAKEFS_PROVIDER_H

#include <stddef.h>
#include <time.h>

struct config;
struct config_section;

enum vm_power {
	VM_POWER_UNKNOWN,
	VM_POWER_RUNNING,
	VM_POWER_STARTING,
	VM_POWER_STOPPING,
	VM_POWER_STOPPED,	/* powered off but allocated: still bills */
	VM_POWER_DEALLOCATING,
	VM_POWER_DEALLOCATED,
};

enum vm_err {
	VM_OK = 0,
	VM_EAUTH = -1,		/* no credentials, token refused, 401/403 */
	VM_EHTTP = -2,		/* transport error or unexpected HTTP status */
	VM_ENOTFOUND = -3,	/* VM, NIC, IP or resource group does not exist */
	VM_ECONFLICT = -4,	/* 409: another operation is in progress */
	VM_ETIMEOUT = -5,	/* an operation or wait did not finish in time */
	VM_EPARSE = -6,		/* a malformed or unexpected response */
	VM_ECONFIG = -7,	/* the profile is incomplete or wrong */
	VM_ECMD = -8,		/* a provider command failed (command provider, az) */
};

/* User-facing detail of a failure. */
struct vm_error {
	int http_status;	/* 0 when no HTTP response */
	char code[64];		/* ARM error code or our short code, "" if none */
	char message[512];	/* one line */
};

struct vm_status {
	enum vm_power power;
	time_t since;		/* when the power state began, 0 unknown */
};

struct vm;	/* opaque: one profile's VM */

/*
 * How wakefs logs in to the VM: "" / 0 mean "not set" (ssh_config, then the
 * defaults decide). The local provider gives its own throwaway files.
 */
struct vm_ssh_params {
	char user[128];
	int port;
	char identity[4096];
	char known_hosts[4096];
};

struct vm_provider {
	const char *name;
	/* Validate the profile and set up state (vm_set_data). May be NULL. */
	int (*open)(struct vm *);
	int (*start)(struct vm *, struct vm_error *);
	/* Deallocate, or merely power off when @power_off (still bills). */
	int (*stop)(struct vm *, int power_off, struct vm_error *);
	int (*status)(struct vm *, struct vm_status *, struct vm_error *);
	/* The SSH address (host name or IP) to reach the VM now. */
	int (*address)(struct vm *, char *host, size_t len, struct vm_error *);
	/* Free what open() set up. May be NULL. */
	void (*close)(struct vm *);
	/* How to log in (see vm_ssh_params); may be NULL: the profile's keys. */
	int (*ssh_params)(struct vm *, struct vm_ssh_params *, struct vm_error *);
};

/*
 * Open @profile (a section of @cfg; NULL = "default" if present, else the only
 * section) with the provider its `provider` key names. A missing profile is
 * VM_ECONFIG with a message naming the config file.
 */
int vm_open(struct vm **out, const struct config *cfg, const char *profile,
	    struct vm_error *err);
void vm_free(struct vm *vm);

int vm_start(struct vm *vm, struct vm_error *err);
int vm_stop(struct vm *vm, int power_off, struct vm_error *err);
int vm_status(struct vm *vm, struct vm_status *st, struct vm_error *err);
int vm_address(struct vm *vm, char *host, size_t len, struct vm_error *err);
/*
 * The login of @vm: the profile's user, port and identity (identity with
 * "~/" expanded), then whatever the provider's ssh_params adds.
 */
int vm_ssh_params(struct vm *vm, struct vm_ssh_params *out, struct vm_error *err);

/*
 * How the system ssh logs in to @vm at @addr as @sp says (`vmctl ssh` and
 * `vmctl watchdog`): the options -o HostKeyAlias=PROFILE (the host key is
 * known under the profile's name: a deallocated VM's IP changes), and, when
 * set, -o UserKnownHostsFile=, -p and -i; and the destination [USER@]ADDR.
 * The strings live in @l.
 */
struct vm_ssh_login {
	char alias[300], known_hosts[4200], port[16], dest[400];
	char *opt[8];
	int nopt;
};
void vm_ssh_login(struct vm *vm, const struct vm_ssh_params *sp, const char *addr,
		  struct vm_ssh_login *l);

/* "running", "starting", "stopping", "stopped", "deallocating", "deallocated", "unknown". */
const char *vm_power_name(enum vm_power power);
/* The reverse (case-insensitive, accepts "PowerState/running", "VM running"); UNKNOWN if not. */
enum vm_power vm_power_parse(const char *s);
/* A short English name of an enum vm_err ("authentication failed", ...). */
const char *vm_strerror(int err);

/* The profile's raw value of @key (NULL if unset), its section, its name, its config. */
const char *vm_profile_get(struct vm *vm, const char *key);
const struct config_section *vm_section(struct vm *vm);
const char *vm_profile_name(struct vm *vm);
const struct config *vm_config(struct vm *vm);
const struct vm_provider *vm_provider_of(struct vm *vm);

/* Where a provider's open() describes why it failed (vm_open copies it out). */
struct vm_error *vm_open_err(struct vm *vm);

/* Provider-private state. */
void *vm_data(struct vm *vm);
void vm_set_data(struct vm *vm, void *data);

/* Debug output (to stderr, prefixed) for providers; never pass secrets. */
void vm_set_debug(int on);
int vm_debug_enabled(void);
void vm_debugf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Progress of long operations (the CLI shows it on a TTY): @what is the
 * operation ("start"), @state the current state, @elapsed_s since it began.
 * Process-wide; NULL callback = quiet (the default).
 */
typedef void (*vm_progress_fn)(const char *what, const char *state, long elapsed_s,
			       void *payload);
void vm_set_progress(vm_progress_fn cb, void *payload);
void vm_progress(const char *what, const char *state, long elapsed_s);

/*
 * Fill @err (may be NULL) and return @code: a helper for providers.
 */
int vm_error_set(struct vm_error *err, int code, int http_status, const char *errcode,
		 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Look up a provider by name (NULL if unknown); the known names for messages. */
const struct vm_provider *vm_provider_find(const char *name);

extern const struct vm_provider vm_provider_azure;
extern const struct vm_provider vm_provider_none;
extern const struct vm_provider vm_provider_command;
extern const struct vm_provider vm_provider_local;	/* vmctl/provider_local.c (lifecycle) */

#endif
