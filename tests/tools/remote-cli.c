/*
 * tests/tools/remote-cli.c: drive fs/remote.h from shell scripts.
 *
 *   remote-cli [-o key=value[,key=value]...] HOST[:PORT] CMD ARGS...
 *   remote-cli [-o ...] HOST[:PORT] -        (commands from stdin, one per line)
 *
 * One connection serves every command, so a script on stdin can exercise a
 * reconnect between two commands ("sleep" and "wait-connected" help). In
 * script mode each command prints its output and then "OK" or "ERR <errno>";
 * in single mode an error goes to stderr and the exit status is 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "remote.h"

static int cli_ls_cb(const char *name, const struct stat *st, void *payload)
{
	(void)payload;
	printf("%s\t%o\t%lld\n", name, (unsigned int)st->st_mode, (long long)st->st_size);
	return 0;
}

static void cli_print_stat(const struct stat *st)
{
	printf("mode=%o size=%lld uid=%u gid=%u atime=%lld mtime=%lld\n", (unsigned int)st->st_mode,
	       (long long)st->st_size, (unsigned int)st->st_uid, (unsigned int)st->st_gid,
	       (long long)st->st_atim.tv_sec, (long long)st->st_mtim.tv_sec);
}

static int cli_cat(struct remote *r, const char *path, off_t off, long long len)
{
	struct remote_file *f;
	size_t bufsz = 8 << 20;
	char *buf;
	ssize_t n;
	int err;

	err = remote_open(r, path, O_RDONLY, 0, &f);
	if (err)
		return err;
	buf = malloc(bufsz);
	if (!buf) {
		remote_close(f);
		return -ENOMEM;
	}
	while (len != 0) {
		size_t want = len > 0 && (unsigned long long)len < bufsz ? (size_t)len : bufsz;

		n = remote_pread(f, buf, want, off);
		if (n < 0) {
			err = (int)n;
			break;
		}
		if (n == 0)
			break;
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n) {
			err = -EIO;
			break;
		}
		off += n;
		if (len > 0)
			len -= n;
	}
	free(buf);
	fflush(stdout);
	remote_close(f);
	return err;
}

static struct remote_file *cli_file;

/* The redial hook under test: the new "PORT" (or "HOST PORT") is read from a file. */
static const char *cli_redial_file;

static int cli_redial(void *payload, char *host, size_t hostlen, int *port)
{
	char h[256] = "";
	int p;
	FILE *f = fopen(cli_redial_file, "r");

	(void)payload;
	if (!f)
		return 0;	/* no file: redial the same address */
	if (fscanf(f, "%255s %d", h, &p) == 2) {
		snprintf(host, hostlen, "%s", h);
		*port = p;
	} else if (sscanf(h, "%d", &p) == 1) {
		*port = p;
	}
	fclose(f);
	return 0;
}

/* count PATH BS: read all of PATH in BS-byte calls; print the byte count. */
static int cli_count(struct remote *r, const char *path, size_t bs)
{
	struct remote_file *f;
	char *buf;
	off_t off = 0;
	ssize_t n;
	int err;

	err = remote_open(r, path, O_RDONLY, 0, &f);
	if (err)
		return err;
	buf = malloc(bs ? bs : 1);
	if (!buf) {
		remote_close(f);
		return -ENOMEM;
	}
	while ((n = remote_pread(f, buf, bs, off)) > 0)
		off += n;
	if (n < 0)
		err = (int)n;
	else
		printf("%lld\n", (long long)off);
	free(buf);
	remote_close(f);
	return err;
}

static int cli_cat_bs(struct remote *r, const char *path, size_t bs)
{
	struct remote_file *f;
	char *buf;
	off_t off = 0;
	ssize_t n;
	int err;

	if (bs == 0)
		return -EINVAL;
	err = remote_open(r, path, O_RDONLY, 0, &f);
	if (err)
		return err;
	buf = malloc(bs);
	if (!buf) {
		remote_close(f);
		return -ENOMEM;
	}
	while ((n = remote_pread(f, buf, bs, off)) > 0) {
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n) {
			n = -EIO;
			break;
		}
		off += n;
	}
	if (n < 0)
		err = (int)n;
	free(buf);
	fflush(stdout);
	remote_close(f);
	return err;
}

/* write PATH OFF: stdin's bytes at OFF (the file is created if needed). */
static int cli_write(struct remote *r, const char *path, off_t off, int flags)
{
	struct remote_file *f;
	char buf[1 << 16];
	size_t n;
	ssize_t w;
	int err;

	err = remote_open(r, path, flags, 0644, &f);
	if (err)
		return err;
	while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0) {
		w = remote_pwrite(f, buf, n, off);
		if (w < 0) {
			err = (int)w;
			break;
		}
		off += (off_t)n;
	}
	if (!err)
		err = remote_close(f);
	else
		remote_close(f);
	return err;
}

static int cli_exec(struct remote *r, int argc, char **argv)
{
	char cmd[8192] = "", *out = NULL;
	size_t outlen = 0;
	int i, status = -1, err;

	for (i = 0; i < argc; i++) {
		strncat(cmd, argv[i], sizeof(cmd) - strlen(cmd) - 2);
		if (i + 1 < argc)
			strcat(cmd, " ");
	}
	err = remote_exec(r, cmd, 1 << 20, 30000, &out, &outlen, &status);
	if (err)
		return err;
	fwrite(out, 1, outlen, stdout);
	printf("status=%d\n", status);
	free(out);
	return 0;
}

static int cli_one(struct remote *r, int argc, char **argv)
{
	const char *c = argv[0];
	struct remote_file *f;
	struct statvfs sv;
	struct stat st;
	char buf[4096];
	int err;

#define NEED(n)                      \
	do {                         \
		if (argc < (n) + 1)  \
			return -EINVAL; \
	} while (0)
	if (strcmp(c, "ls") == 0) {
		NEED(1);
		return remote_readdir(r, argv[1], cli_ls_cb, NULL);
	}
	if (strcmp(c, "stat") == 0 || strcmp(c, "lstat") == 0) {
		NEED(1);
		err = c[0] == 's' ? remote_stat(r, argv[1], &st) : remote_lstat(r, argv[1], &st);
		if (!err)
			cli_print_stat(&st);
		return err;
	}
	if (strcmp(c, "fstat") == 0) {
		NEED(1);
		err = remote_open(r, argv[1], O_RDONLY, 0, &f);
		if (err)
			return err;
		err = remote_fstat(f, &st);
		if (!err)
			cli_print_stat(&st);
		remote_close(f);
		return err;
	}
	if (strcmp(c, "get") == 0) {
		int fd;

		NEED(2);
		fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0)
			return -errno;
		err = remote_download(r, argv[1], fd, &st);
		close(fd);
		if (!err)
			cli_print_stat(&st);
		return err;
	}
	if (strcmp(c, "put") == 0) {
		int fd;

		NEED(2);
		fd = open(argv[1], O_RDONLY);
		if (fd < 0)
			return -errno;
		err = remote_upload(r, fd, argv[2], argc > 3 ? (mode_t)strtol(argv[3], NULL, 8) : 0644);
		close(fd);
		return err;
	}
	if (strcmp(c, "cat") == 0) {
		NEED(1);
		return cli_cat(r, argv[1], 0, -1);
	}
	if (strcmp(c, "catbs") == 0) {
		/* cat in reads of BS bytes, like the kernel's FUSE requests */
		NEED(2);
		return cli_cat_bs(r, argv[1], (size_t)strtoull(argv[2], NULL, 0));
	}
	/* One handle kept open across commands (script mode): fopen, fread, fwrite, fclose. */
	if (strcmp(c, "fopen") == 0) {
		NEED(1);
		if (cli_file)
			return -EBUSY;
		return remote_open(r, argv[1], O_RDWR, 0, &cli_file);
	}
	if (strcmp(c, "fread") == 0) {
		ssize_t n;

		NEED(2);
		if (!cli_file)
			return -EBADF;
		n = remote_pread(cli_file, buf, (size_t)strtoull(argv[2], NULL, 0) % sizeof(buf),
				 strtoll(argv[1], NULL, 0));
		if (n < 0)
			return (int)n;
		printf("%.*s\n", (int)n, buf);
		return 0;
	}
	if (strcmp(c, "fwrite") == 0) {
		ssize_t n;

		NEED(2);
		if (!cli_file)
			return -EBADF;
		n = remote_pwrite(cli_file, argv[2], strlen(argv[2]), strtoll(argv[1], NULL, 0));
		return n < 0 ? (int)n : 0;
	}
	if (strcmp(c, "fclose") == 0) {
		err = remote_close(cli_file);
		cli_file = NULL;
		return err;
	}
	if (strcmp(c, "count") == 0) {
		NEED(2);
		return cli_count(r, argv[1], (size_t)strtoull(argv[2], NULL, 0));
	}
	if (strcmp(c, "read") == 0) {
		NEED(3);
		return cli_cat(r, argv[1], strtoll(argv[2], NULL, 0), strtoll(argv[3], NULL, 0));
	}
	if (strcmp(c, "write") == 0) {
		NEED(2);
		return cli_write(r, argv[1], strtoll(argv[2], NULL, 0), O_WRONLY | O_CREAT);
	}
	if (strcmp(c, "create-excl") == 0) {
		NEED(1);
		err = remote_open(r, argv[1], O_WRONLY | O_CREAT | O_EXCL, 0600, &f);
		if (!err)
			err = remote_close(f);
		return err;
	}
	if (strcmp(c, "ftruncate") == 0) {
		NEED(2);
		err = remote_open(r, argv[1], O_WRONLY, 0, &f);
		if (err)
			return err;
		err = remote_ftruncate(f, strtoll(argv[2], NULL, 0));
		remote_close(f);
		return err;
	}
	if (strcmp(c, "fsync") == 0) {
		NEED(1);
		err = remote_open(r, argv[1], O_WRONLY, 0, &f);
		if (err)
			return err;
		err = remote_fsync(f);
		remote_close(f);
		return err;
	}
	if (strcmp(c, "mkdir") == 0) {
		NEED(1);
		return remote_mkdir(r, argv[1], argc > 2 ? (mode_t)strtol(argv[2], NULL, 8) : 0755);
	}
	if (strcmp(c, "rmdir") == 0) {
		NEED(1);
		return remote_rmdir(r, argv[1]);
	}
	if (strcmp(c, "rm") == 0) {
		NEED(1);
		return remote_unlink(r, argv[1]);
	}
	if (strcmp(c, "mv") == 0) {
		NEED(2);
		return remote_rename(r, argv[1], argv[2],
				     argc > 3 && strcmp(argv[3], "noreplace") == 0 ? RENAME_NOREPLACE
					     : argc > 3 ? RENAME_EXCHANGE : 0);
	}
	if (strcmp(c, "symlink") == 0) {
		NEED(2);
		return remote_symlink(r, argv[1], argv[2]);
	}
	if (strcmp(c, "readlink") == 0) {
		NEED(1);
		err = remote_readlink(r, argv[1], buf, sizeof(buf));
		if (!err)
			printf("%s\n", buf);
		return err;
	}
	if (strcmp(c, "link") == 0) {
		NEED(2);
		return remote_link(r, argv[1], argv[2]);
	}
	if (strcmp(c, "chmod") == 0) {
		NEED(2);
		return remote_chmod(r, argv[2], (mode_t)strtol(argv[1], NULL, 8));
	}
	if (strcmp(c, "chown") == 0) {
		NEED(3);
		return remote_chown(r, argv[3], (uid_t)strtol(argv[1], NULL, 0),
				    (gid_t)strtol(argv[2], NULL, 0));
	}
	if (strcmp(c, "utimes") == 0) {
		NEED(3);
		return remote_utimes(r, argv[1], strtoll(argv[2], NULL, 0), strtoll(argv[3], NULL, 0));
	}
	if (strcmp(c, "truncate") == 0) {
		NEED(2);
		return remote_truncate(r, argv[1], strtoll(argv[2], NULL, 0));
	}
	if (strcmp(c, "statvfs") == 0) {
		NEED(1);
		err = remote_statvfs(r, argv[1], &sv);
		if (!err)
			printf("bsize=%lu blocks=%llu bfree=%llu namemax=%lu\n", sv.f_bsize,
			       (unsigned long long)sv.f_blocks, (unsigned long long)sv.f_bfree,
			       sv.f_namemax);
		return err;
	}
	if (strcmp(c, "ext") == 0) {
		printf("%u\n", remote_extensions(r));
		return 0;
	}
	if (strcmp(c, "connected") == 0) {
		printf("%d\n", remote_connected(r));
		return 0;
	}
	if (strcmp(c, "sleep") == 0) {
		NEED(1);
		usleep((useconds_t)(atof(argv[1]) * 1e6));
		return 0;
	}
	if (strcmp(c, "echo") == 0) {
		NEED(1);
		printf("%s\n", argv[1]);
		fflush(stdout);
		return 0;
	}
	if (strcmp(c, "exec") == 0) {
		NEED(1);
		return cli_exec(r, argc - 1, argv + 1);
	}
	return -ENOSYS;
#undef NEED
}

static int cli_opt(struct remote_opts *o, char *spec)
{
	char *save = NULL, *kv, *v;

	for (kv = strtok_r(spec, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		v = strchr(kv, '=');
		if (v)
			*v++ = '\0';
		if (strcmp(kv, "accept_new_hostkey") == 0)
			o->accept_new_hostkey = v ? atoi(v) : 1;
		else if (!v)
			return -1;
		else if (strcmp(kv, "user") == 0)
			o->user = v;
		else if (strcmp(kv, "identity") == 0)
			o->identity = v;
		else if (strcmp(kv, "known_hosts") == 0)
			o->known_hosts = v;
		else if (strcmp(kv, "host_key_alias") == 0)
			o->host_key_alias = v;
		else if (strcmp(kv, "ssh_config") == 0)
			o->ssh_config = v;
		else if (strcmp(kv, "connect_timeout_ms") == 0)
			o->connect_timeout_ms = atoi(v);
		else if (strcmp(kv, "request_timeout_ms") == 0)
			o->request_timeout_ms = atoi(v);
		else if (strcmp(kv, "keepalive_s") == 0)
			o->keepalive_s = atoi(v);
		else if (strcmp(kv, "redial_file") == 0)
			cli_redial_file = v;
		else
			return -1;
	}
	return 0;
}

static const char *cli_errname(int err)
{
	static char buf[32];

	switch (-err) {
#define E(x)      \
	case x:   \
		return #x
		E(ENOENT);
		E(EEXIST);
		E(ENOTEMPTY);
		E(EISDIR);
		E(ENOTDIR);
		E(EACCES);
		E(EPERM);
		E(EIO);
		E(EINVAL);
		E(ENAMETOOLONG);
		E(ENOTSUP);
		E(ETIMEDOUT);
		E(ENOSYS);
		E(ENOMEM);
#undef E
	}
	snprintf(buf, sizeof(buf), "E%d", -err);
	return buf;
}

static int cli_script(struct remote *r)
{
	char line[8192], *argv[64], *save, *t;
	int argc, err, failed = 0;

	while (fgets(line, sizeof(line), stdin)) {
		argc = 0;
		save = NULL;
		for (t = strtok_r(line, " \t\n", &save); t && argc < 63; t = strtok_r(NULL, " \t\n", &save))
			argv[argc++] = t;
		if (argc == 0)
			continue;
		argv[argc] = NULL;
		err = cli_one(r, argc, argv);
		if (err) {
			failed = 1;
			printf("ERR %s\n", cli_errname(err));
		} else {
			printf("OK\n");
		}
		fflush(stdout);
	}
	return failed;
}

int main(int argc, char **argv)
{
	struct remote_opts o;
	struct remote *r = NULL;
	char host[512], errbuf[1024], *colon;
	struct timespec t0, t1;
	int opt, err;

	memset(&o, 0, sizeof(o));
	while ((opt = getopt(argc, argv, "+o:")) != -1) {
		if (opt != 'o' || cli_opt(&o, optarg)) {
			fprintf(stderr, "usage: remote-cli [-o key=value,...] HOST[:PORT] CMD ARGS...\n");
			return 2;
		}
	}
	if (argc - optind < 2) {
		fprintf(stderr, "usage: remote-cli [-o key=value,...] HOST[:PORT] CMD ARGS...\n");
		return 2;
	}
	snprintf(host, sizeof(host), "%s", argv[optind]);
	colon = strrchr(host, ':');
	if (colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1) &&
	    (!strchr(host, ':') || strchr(host, ':') == colon || host[0] == '[')) {
		*colon = '\0';
		o.port = atoi(colon + 1);
	}
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	o.host = host;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	err = remote_new(&r, &o, errbuf, sizeof(errbuf));
	if (err) {
		fprintf(stderr, "remote-cli: %s\n", errbuf);
		return 1;
	}
	if (cli_redial_file)
		remote_set_redial(r, cli_redial, NULL);
	if (strcmp(argv[optind + 1], "-") == 0) {
		err = cli_script(r);
	} else {
		err = cli_one(r, argc - optind - 1, argv + optind + 1);
		if (err)
			fprintf(stderr, "remote-cli: %s: %s (%s)\n", argv[optind + 1], strerror(-err),
				cli_errname(err));
	}
	remote_close(cli_file);
	remote_free(r);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	(void)t1;
	return err ? 1 : 0;
}
