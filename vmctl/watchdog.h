/*
 * vmctl/watchdog.h: `vmctl watchdog install|status|remove`, the VM-side cost
 * watchdog.
 *
 * The watchdog is a POSIX shell script and a systemd timer on the VM
 * (scripts/wakefs-watchdog.{sh,service,timer}, compiled into vmctl): it
 * deallocates the VM through ARM with the VM's managed identity when no
 * wakefs mount has sent a heartbeat for `watchdog_minutes` (default 60) and
 * CPU and GPU idle. vmctl puts it there, reports on it and takes it off over
 * the system ssh, logged in as `vmctl ssh` would (the profile's user, key,
 * port, host key alias, the address resolved now), with sudo when that user
 * is not root. Azure profiles only.
 *
 * Test hooks (environment of vmctl, applied on the VM): WAKEFS_WATCHDOG_ROOT
 * installs under that directory as if it were / (paths inside the installed
 * files too), WAKEFS_SYSTEMCTL names the systemctl to run.
 */
#ifndef WAKEFS_WATCHDOG_H
#define WAKEFS_WATCHDOG_H

#include <stddef.h>

#include "provider.h"

enum watchdog_action {
	WATCHDOG_INSTALL,
	WATCHDOG_STATUS,
	WATCHDOG_REMOVE,
};

/* "install", "status", "remove" -> the action; -1 for anything else. */
int watchdog_action_parse(const char *word);

/*
 * The shell script that does @action on the VM of @vm, fed to `sh -s` there
 * (caller frees *out). VM_ECONFIG (message in @err) for a profile that is not
 * Azure or has a bad watchdog_minutes.
 */
int watchdog_script(struct vm *vm, enum watchdog_action action, char **out,
		    struct vm_error *err);

/*
 * Do @action on the VM: resolve its address, run ssh (with @nopts extra ssh
 * options @opts before the destination) and feed it watchdog_script(). What
 * the VM prints goes to our stdout and stderr. Returns 0 or a negative enum
 * vm_err; err->code "remote" means the VM already printed why it failed.
 */
int watchdog_run(struct vm *vm, enum watchdog_action action, int nopts, char **opts,
		 struct vm_error *err);

#endif
