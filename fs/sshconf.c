/*
 * fs/sshconf.c: resolve a Host alias through `ssh -G`.
 *
 * Re-implementing ssh_config (Match exec, Include, canonicalisation, token
 * expansion) would drift from OpenSSH; asking ssh itself costs one fork per
 * mount. The child runs with stdin and stderr on /dev/null; its stdout is
 * read whole (it is a few KiB) and parsed as "keyword value" lines.
 */
#include "sshconf.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

char *sshconf_expand(const char *path)
{
	const char *home;
	struct passwd *pw;
	char *out;

	if (path[0] != '~' || (path[1] != '/' && path[1] != '\0'))
		return strdup(path);
	home = getenv("HOME");
	if (!home || !*home) {
		pw = getpwuid(getuid());
		home = pw ? pw->pw_dir : "/";
	}
	if (asprintf(&out, "%s%s", home, path + 1) < 0)
		return NULL;
	return out;
}

void sshconf_release(struct sshconf *c)
{
	int i;

	if (!c)
		return;
	free(c->hostname);
	free(c->user);
	for (i = 0; i < c->nidentities; i++)
		free(c->identities[i]);
	free(c->known_hosts);
	free(c->host_key_alias);
	memset(c, 0, sizeof(*c));
}

static int sshconf_set(char **dst, const char *v, int expand)
{
	char *s = expand ? sshconf_expand(v) : strdup(v);

	if (!s)
		return -ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

static int sshconf_line(struct sshconf *c, char *line)
{
	char *key = line, *val, *sp;

	val = strchr(line, ' ');
	if (!val)
		return 0;
	*val++ = '\0';
	if (strcmp(key, "hostname") == 0)
		return sshconf_set(&c->hostname, val, 0);
	if (strcmp(key, "user") == 0)
		return sshconf_set(&c->user, val, 0);
	if (strcmp(key, "port") == 0) {
		c->port = atoi(val);
		return 0;
	}
	if (strcmp(key, "hostkeyalias") == 0)
		return sshconf_set(&c->host_key_alias, val, 0);
	if (strcmp(key, "userknownhostsfile") == 0) {
		sp = strchr(val, ' ');	/* the first of the list */
		if (sp)
			*sp = '\0';
		return sshconf_set(&c->known_hosts, val, 1);
	}
	if (strcmp(key, "identityfile") == 0) {
		if (c->nidentities >= SSHCONF_MAX_IDENTITIES)
			return 0;
		c->identities[c->nidentities] = sshconf_expand(val);
		if (!c->identities[c->nidentities])
			return -ENOMEM;
		c->nidentities++;
	}
	return 0;
}

int sshconf_parse(const char *text, struct sshconf *out)
{
	char *copy = strdup(text), *line, *save = NULL;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	for (line = strtok_r(copy, "\n", &save); line && !rc; line = strtok_r(NULL, "\n", &save)) {
		line[strcspn(line, "\r")] = '\0';
		rc = sshconf_line(out, line);
	}
	free(copy);
	if (!rc && (!out->hostname || !out->user))
		rc = -EINVAL;
	return rc;
}

/* Run ssh -G; returns its stdout (malloc'd) or NULL with *rc set. */
static char *sshconf_run(const char *host, const char *config, int *rc)
{
	posix_spawn_file_actions_t fa;
	const char *argv[7];
	int pfd[2], n = 0, status;
	char *buf = NULL, *nb;
	size_t len = 0, cap = 0;
	ssize_t r;
	pid_t pid;

	argv[n++] = "ssh";
	argv[n++] = "-G";
	if (config) {
		argv[n++] = "-F";
		argv[n++] = config;
	}
	argv[n++] = "--";
	argv[n++] = host;
	argv[n] = NULL;
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		*rc = -errno;
		return NULL;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	*rc = -posix_spawnp(&pid, "ssh", &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	if (*rc) {
		close(pfd[0]);
		return NULL;
	}
	for (;;) {
		if (cap - len < 4096) {
			nb = realloc(buf, cap + 65536);
			if (!nb) {
				*rc = -ENOMEM;
				break;
			}
			buf = nb;
			cap += 65536;
		}
		r = read(pfd[0], buf + len, cap - len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!*rc && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
		*rc = -EINVAL;
	if (*rc) {
		free(buf);
		return NULL;
	}
	buf[len] = '\0';
	return buf;
}

int sshconf_resolve(const char *host, const char *config, struct sshconf *out, char *err,
		    size_t errlen)
{
	struct passwd *pw;
	char *text;
	int rc;

	memset(out, 0, sizeof(*out));
	text = sshconf_run(host, config, &rc);
	if (text) {
		rc = sshconf_parse(text, out);
		free(text);
		if (rc)
			snprintf(err, errlen, "cannot understand 'ssh -G %s' output", host);
		goto out;
	}
	if (rc == -ENOENT) {
		/* No ssh client: the alias is the host name, with the defaults. */
		pw = getpwuid(getuid());
		out->hostname = strdup(host);
		out->user = strdup(pw ? pw->pw_name : "root");
		out->port = 22;
		out->known_hosts = sshconf_expand("~/.ssh/known_hosts");
		rc = out->hostname && out->user && out->known_hosts ? 0 : -ENOMEM;
		goto out;
	}
	snprintf(err, errlen, "cannot resolve '%s' with 'ssh -G%s%s': it failed (check the ssh config)",
		 host, config ? " -F " : "", config ? config : "");
out:
	if (rc)
		sshconf_release(out);
	return rc;
}
