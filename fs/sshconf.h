/*
 * fs/sshconf.h: what OpenSSH would use to reach a host alias.
 *
 * sshconf_resolve runs `ssh -G [-F FILE] HOST` (so Match, Include and
 * wildcards behave exactly as in OpenSSH) and keeps the settings the engine
 * needs. When ssh is not installed, the alias is taken as the host name with
 * the defaults. The caller owns the struct's strings and releases them with
 * sshconf_release (which accepts NULL).
 */
#ifndef WAKEFS_SSHCONF_H
#define WAKEFS_SSHCONF_H

#include <stddef.h>

#define SSHCONF_MAX_IDENTITIES 8

struct sshconf {
	char *hostname;			/* never NULL after success */
	char *user;			/* never NULL after success */
	int port;
	char *identities[SSHCONF_MAX_IDENTITIES];	/* tilde-expanded */
	int nidentities;
	char *known_hosts;		/* the first UserKnownHostsFile, tilde-expanded */
	char *host_key_alias;		/* NULL unless HostKeyAlias is set */
};

/* Returns 0 or -errno, with a message in @err. */
int sshconf_resolve(const char *host, const char *config, struct sshconf *out, char *err,
		    size_t errlen);
void sshconf_release(struct sshconf *c);

/* Parse `ssh -G` output (exposed for the unit tests). */
int sshconf_parse(const char *text, struct sshconf *out);

/* "~/x" -> "$HOME/x" (malloc'd); other paths are copied. */
char *sshconf_expand(const char *path);

#endif
