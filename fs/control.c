/*
 * fs/control.c: the control socket of a mount and its command-line client.
 *
 * Server: one thread accepts connections on the unix socket and hands each to
 * a detached handler thread, so that a long `wakefs flush` does not stop
 * `wakefs status` from answering. A handler reads the request (NUL-separated
 * words until end of file), runs it against the flusher and the layer, and
 * writes "<exit status>\n<stdout>\0<stderr>". control_free() wakes the accept
 * loop through a pipe, then waits until no handler runs (a handler waiting in
 * flush_all() checks for the stop every second).
 *
 * Client: computes the same socket path from the mountpoint (resolving only
 * its parent directory, so a hung mount cannot hang it), turns PATH arguments
 * into mount paths ("/src/a.py") lexically, sends, and prints the answer.
 *
 * Locking: struct control.lock guards stop and nhandlers only; it is never
 * held while calling the flusher or the layer.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "flush.h"
#include "journal.h"
#include "layer.h"

#define CONTROL_MAX_REQUEST (1 << 20)
#define CONTROL_LIST_MAX 50	/* paths listed per state in the text status */

struct control {
	int fd;			/* listening socket */
	int wake[2];		/* written by control_free to stop the accept loop */
	char *sock_path;
	char *mountpoint;	/* canonical */
	char *remote, *policy;
	struct flusher *f;
	struct layer *l;
	pthread_t thread;
	int started;

	pthread_mutex_t lock;	/* guards stop and nhandlers */
	pthread_cond_t idle;	/* broadcast when nhandlers drops */
	int stop;
	int nhandlers;
};

/* --- a growable string -------------------------------------------------------- */

struct cbuf {
	char *s;
	size_t len, cap;
	int oom;
};

static void cbuf_add(struct cbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->s, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

__attribute__((format(printf, 2, 3)))
static void cbuf_printf(struct cbuf *b, const char *fmt, ...)
{
	char small[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		cbuf_add(b, small, (size_t)n);
		return;
	}
	{
		char *big = malloc((size_t)n + 1);

		if (!big) {
			b->oom = 1;
			return;
		}
		va_start(ap, fmt);
		vsnprintf(big, (size_t)n + 1, fmt, ap);
		va_end(ap);
		cbuf_add(b, big, (size_t)n);
		free(big);
	}
}

/* A JSON string literal of @s (bytes >= 0x80 passed through). */
static void cbuf_json_str(struct cbuf *b, const char *s)
{
	cbuf_add(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };

			cbuf_add(b, e, 2);
		} else if (c < 0x20) {
			cbuf_printf(b, "\\u%04x", c);
		} else {
			cbuf_add(b, s, 1);
		}
	}
	cbuf_add(b, "\"", 1);
}

/* --- socket path ----------------------------------------------------------------- */

static uint64_t control_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ull;
	}
	return h;
}

/* The canonical form of @mnt (see control_socket_path). */
static int control_canon(const char *mnt, char *buf, size_t len)
{
	char copy[PATH_MAX], parent[PATH_MAX];
	const char *base;
	char *slash;
	size_t n;
	int r;

	if (snprintf(copy, sizeof(copy), "%s", mnt) >= (int)sizeof(copy) || !copy[0])
		return -EINVAL;
	n = strlen(copy);
	while (n > 1 && copy[n - 1] == '/')
		copy[--n] = '\0';
	slash = strrchr(copy, '/');
	base = slash ? slash + 1 : copy;
	if (!strcmp(base, ".") || !strcmp(base, "..") || !strcmp(copy, "/")) {
		if (!realpath(copy, parent))
			return -errno;
		r = snprintf(buf, len, "%s", parent);
		return r < 0 || (size_t)r >= len ? -ENAMETOOLONG : 0;
	}
	if (slash == copy) {
		strcpy(parent, "/");
	} else if (slash) {
		*slash = '\0';
		if (!realpath(copy, parent))
			return -errno;
	} else if (!realpath(".", parent)) {
		return -errno;
	}
	r = snprintf(buf, len, "%s%s%s", parent, strcmp(parent, "/") ? "/" : "", base);
	return r < 0 || (size_t)r >= len ? -ENAMETOOLONG : 0;
}

/* The private directory holding the sockets, created if needed. */
static int control_dir(char *buf, size_t len, int create)
{
	const char *rt = getenv("XDG_RUNTIME_DIR");
	struct stat st;
	int n;

	if (rt && rt[0] == '/' && stat(rt, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == getuid())
		n = snprintf(buf, len, "%s/wakefs", rt);
	else
		n = snprintf(buf, len, "/tmp/wakefs-%u", (unsigned)getuid());
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	if (create && mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (lstat(buf, &st) < 0)
		return create ? -errno : 0;
	/* Someone else's directory (or a symlink) in /tmp: refuse it. */
	if (!S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 077))
		return -EPERM;
	return 0;
}

int control_socket_path(const char *mountpoint, char *buf, size_t len)
{
	char canon[PATH_MAX], dir[PATH_MAX];
	int err, n;

	err = control_canon(mountpoint, canon, sizeof(canon));
	if (!err)
		err = control_dir(dir, sizeof(dir), 0);
	if (err)
		return err;
	n = snprintf(buf, len, "%s/ctl-%016llx.sock", dir,
		     (unsigned long long)control_hash(canon));
	if (n < 0 || (size_t)n >= len || (size_t)n >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return -ENAMETOOLONG;
	return 0;
}

static int control_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

/* --- commands (server side) ----------------------------------------------------- */

struct control_list {
	char **v;
	size_t n, cap;
	size_t git;	/* held paths under .git/, counted, not listed */
	int oom;
};

struct control_lists {
	struct control_list s[5];	/* by enum path_state */
};

static int control_under_git(const char *path)
{
	return strstr(path, "/.git/") != NULL || !strcmp(path, "/.git") ||
	       (strlen(path) >= 5 && !strcmp(path + strlen(path) - 5, "/.git"));
}

static int control_collect_cb(const struct journal_entry *e, void *payload)
{
	struct control_lists *ls = payload;
	struct control_list *l;

	if ((unsigned)e->state >= 5)
		return 0;
	l = &ls->s[e->state];
	if (e->state == PATH_CLEAN)
		return 0;
	if (e->state == PATH_HELD && control_under_git(e->path)) {
		l->git++;
		return 0;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		char **v = realloc(l->v, cap * sizeof(*v));

		if (!v) {
			l->oom = 1;
			return 0;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n] = strdup(e->path);
	if (l->v[l->n])
		l->n++;
	return 0;
}

static int control_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void control_lists_free(struct control_lists *ls)
{
	size_t i, k;

	for (k = 0; k < 5; k++) {
		for (i = 0; i < ls->s[k].n; i++)
			free(ls->s[k].v[i]);
		free(ls->s[k].v);
	}
}

static void control_err_cb(const char *msg, void *payload)
{
	struct cbuf *b = payload;

	if (b->len && b->s[b->len - 1] != '[')
		cbuf_add(b, ",", 1);
	cbuf_json_str(b, msg);
}

static void control_err_text_cb(const char *msg, void *payload)
{
	cbuf_printf(payload, "  %s\n", msg);
}

static void control_conflict_copy(struct control *c, const char *path, char *buf, size_t len)
{
	snprintf(buf, len, "%s/.wakefs/conflicts/%s", layer_dir(c->l), path + (path[0] == '/'));
}

static void control_status_json(struct control *c, const struct flush_stats *st,
				struct control_lists *ls, struct cbuf *out)
{
	static const char *const names[5] = { "clean", "dirty", "held", "conflict", "whiteout" };
	char cp[PATH_MAX];
	size_t i, k;

	cbuf_add(out, "{\"mountpoint\":", 14);
	cbuf_json_str(out, c->mountpoint);
	cbuf_add(out, ",\"remote\":", 10);
	cbuf_json_str(out, c->remote);
	cbuf_add(out, ",\"layer\":", 9);
	cbuf_json_str(out, layer_dir(c->l));
	cbuf_add(out, ",\"policy\":", 10);
	cbuf_json_str(out, c->policy);
	cbuf_printf(out, ",\"connected\":%s,\"queued\":%zu,\"flushed\":%llu,\"failures\":%llu",
		    st->connected ? "true" : "false", st->queued,
		    (unsigned long long)st->flushed, (unsigned long long)st->failures);
	cbuf_printf(out, ",\"counts\":{\"dirty\":%zu,\"held\":%zu,\"conflict\":%zu,\"whiteout\":%zu}",
		    ls->s[PATH_DIRTY].n, ls->s[PATH_HELD].n + ls->s[PATH_HELD].git,
		    ls->s[PATH_CONFLICT].n, ls->s[PATH_WHITEOUT].n);
	cbuf_printf(out, ",\"held_under_git\":%zu", ls->s[PATH_HELD].git);
	cbuf_printf(out, ",\"learned\":%llu", (unsigned long long)layer_learned(c->l));
	for (k = PATH_DIRTY; k < 5; k++) {
		cbuf_printf(out, ",\"%s\":[", names[k]);
		for (i = 0; i < ls->s[k].n; i++) {
			if (i)
				cbuf_add(out, ",", 1);
			if (k == PATH_CONFLICT) {
				cbuf_add(out, "{\"path\":", 8);
				cbuf_json_str(out, ls->s[k].v[i]);
				control_conflict_copy(c, ls->s[k].v[i], cp, sizeof(cp));
				cbuf_add(out, ",\"remote_copy\":", 15);
				cbuf_json_str(out, cp);
				cbuf_add(out, "}", 1);
			} else {
				cbuf_json_str(out, ls->s[k].v[i]);
			}
		}
		cbuf_add(out, "]", 1);
	}
	cbuf_add(out, ",\"last_error\":", 14);
	cbuf_json_str(out, st->last_error);
	cbuf_add(out, ",\"errors\":[", 11);
	flush_errors(c->f, control_err_cb, out);
	cbuf_add(out, "]}\n", 3);
}

static void control_status_list(struct control *c, struct cbuf *out, const char *title,
				struct control_list *l, int conflict)
{
	char cp[PATH_MAX];
	size_t i;

	cbuf_printf(out, "%-11s %zu", title, l->n + l->git);
	if (l->git)
		cbuf_printf(out, " (%zu under .git/, not listed)", l->git);
	cbuf_add(out, "\n", 1);
	for (i = 0; i < l->n && i < CONTROL_LIST_MAX; i++) {
		if (conflict) {
			control_conflict_copy(c, l->v[i], cp, sizeof(cp));
			cbuf_printf(out, "  %s  (the VM's version: %s)\n", l->v[i], cp);
		} else {
			cbuf_printf(out, "  %s\n", l->v[i]);
		}
	}
	if (l->n > CONTROL_LIST_MAX)
		cbuf_printf(out, "  ... and %zu more (see --json)\n", l->n - CONTROL_LIST_MAX);
}

static int control_status(struct control *c, int json, struct cbuf *out, struct cbuf *err)
{
	struct control_lists ls;
	struct flush_stats st;
	size_t k;

	memset(&ls, 0, sizeof(ls));
	flush_stats(c->f, &st);
	journal_foreach(layer_journal(c->l), control_collect_cb, &ls);
	for (k = 0; k < 5; k++) {
		if (ls.s[k].n)
			qsort(ls.s[k].v, ls.s[k].n, sizeof(char *), control_cmp);
		if (ls.s[k].oom)
			cbuf_printf(err, "wakefs: status of '%s': out of memory, lists are incomplete\n",
				    c->mountpoint);
	}
	if (json) {
		control_status_json(c, &st, &ls, out);
	} else {
		cbuf_printf(out, "mount:      %s (%s)\n", c->mountpoint, c->remote);
		cbuf_printf(out, "layer:      %s\n", layer_dir(c->l));
		cbuf_printf(out, "policy:     flush %s\n", c->policy);
		cbuf_printf(out, "connection: %s\n", st.connected ? "up" : "down (reconnecting)");
		if (layer_learned(c->l))
			cbuf_printf(out, "cache:      %llu paths learnt from the VM in one scan\n",
				    (unsigned long long)layer_learned(c->l));
		cbuf_printf(out, "queue:      %zu waiting; %llu sent, %llu failed attempts since mount\n",
			    st.queued, (unsigned long long)st.flushed,
			    (unsigned long long)st.failures);
		control_status_list(c, out, "dirty:", &ls.s[PATH_DIRTY], 0);
		control_status_list(c, out, "held:", &ls.s[PATH_HELD], 0);
		control_status_list(c, out, "conflict:", &ls.s[PATH_CONFLICT], 1);
		control_status_list(c, out, "deleted:", &ls.s[PATH_WHITEOUT], 0);
		if (st.last_error[0]) {
			cbuf_add(out, "last errors:\n", 13);
			flush_errors(c->f, control_err_text_cb, out);
		}
	}
	control_lists_free(&ls);
	return 0;
}

static int control_stopping(struct control *c)
{
	int s;

	pthread_mutex_lock(&c->lock);
	s = c->stop;
	pthread_mutex_unlock(&c->lock);
	return s;
}

static int control_flush(struct control *c, const char *timeout, struct cbuf *out, struct cbuf *err)
{
	long limit = timeout ? strtol(timeout, NULL, 10) : 0;
	struct flush_stats st;
	long waited = 0;
	int rc;

	/* In slices, so that an unmount does not wait for a flush without bound. */
	for (;;) {
		rc = flush_all(c->f, 1000);
		waited += 1000;
		if (rc != -ETIMEDOUT || control_stopping(c) || (limit > 0 && waited >= limit))
			break;
	}
	if (!rc) {
		cbuf_printf(out, "flushed: the VM has every change\n");
		return 0;
	}
	flush_stats(c->f, &st);
	if (rc == -ESTALE)
		cbuf_printf(err, "wakefs: flush of '%s' incomplete: %zu path(s) in conflict "
			    "(see 'wakefs status')\n", c->mountpoint, st.conflict);
	else if (rc == -ETIMEDOUT)
		cbuf_printf(err, "wakefs: flush of '%s' incomplete: timed out with %zu path(s) "
			    "waiting (see 'wakefs status')\n", c->mountpoint, st.queued);
	else
		cbuf_printf(err, "wakefs: flush of '%s' incomplete: %zu path(s) could not be sent: "
			    "%s (they stay dirty and are retried; see 'wakefs status')\n",
			    c->mountpoint, st.queued, st.last_error[0] ? st.last_error : strerror(-rc));
	return 1;
}

static int control_push(struct control *c, int argc, char **argv, struct cbuf *out,
			struct cbuf *err)
{
	int i, rc = 0, e;

	for (i = 0; i < argc; i++) {
		e = flush_push(c->f, argv[i]);
		if (!e) {
			cbuf_printf(out, "pushed: %s\n", argv[i]);
			continue;
		}
		rc = 1;
		if (e == -EPERM)
			cbuf_printf(err, "wakefs: cannot push '%s': .git and the layer's own files "
				    "never leave the laptop\n", argv[i]);
		else if (e == -ENOENT)
			cbuf_printf(err, "wakefs: cannot push '%s': no such file in the local layer\n",
				    argv[i]);
		else if (e == -ESTALE)
			cbuf_printf(err, "wakefs: cannot push '%s': the VM changed it since it was "
				    "cached (kept both; see 'wakefs status', then 'wakefs resolve')\n",
				    argv[i]);
		else
			cbuf_printf(err, "wakefs: cannot push '%s': %s (it stays queued and is "
				    "retried)\n", argv[i], strerror(-e));
	}
	return rc;
}

static int control_resolve(struct control *c, const char *keep, int argc, char **argv,
			   struct cbuf *out, struct cbuf *err)
{
	enum flush_keep k;
	int i, rc = 0, e;

	if (!strcmp(keep, "local")) {
		k = FLUSH_KEEP_LOCAL;
	} else if (!strcmp(keep, "remote")) {
		k = FLUSH_KEEP_REMOTE;
	} else {
		cbuf_printf(err, "wakefs: bad option '--keep=%s': expected local or remote\n", keep);
		return 2;
	}
	for (i = 0; i < argc; i++) {
		e = flush_resolve(c->f, argv[i], k);
		if (!e) {
			cbuf_printf(out, "resolved: %s (kept the %s version)\n", argv[i], keep);
			continue;
		}
		rc = 1;
		if (e == -EINVAL)
			cbuf_printf(err, "wakefs: cannot resolve '%s': it is not in conflict\n",
				    argv[i]);
		else
			cbuf_printf(err, "wakefs: cannot resolve '%s': %s\n", argv[i], strerror(-e));
	}
	return rc;
}

static int control_run(struct control *c, int argc, char **argv, struct cbuf *out,
		       struct cbuf *err)
{
	if (argc >= 1 && !strcmp(argv[0], "status"))
		return control_status(c, argc > 1 && !strcmp(argv[1], "--json"), out, err);
	if (argc >= 1 && !strcmp(argv[0], "flush"))
		return control_flush(c, argc > 1 ? argv[1] : NULL, out, err);
	if (argc >= 1 && !strcmp(argv[0], "push"))
		return control_push(c, argc - 1, argv + 1, out, err);
	if (argc >= 2 && !strcmp(argv[0], "resolve"))
		return control_resolve(c, argv[1], argc - 2, argv + 2, out, err);
	cbuf_printf(err, "wakefs: bad control request '%s'\n", argc ? argv[0] : "");
	return 2;
}

/* --- server ------------------------------------------------------------------------ */

struct control_conn {
	struct control *c;
	int fd;
};

static int control_write_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -errno;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Split the NUL-separated words of @req (@len bytes) into a new argv. */
static char **control_split(char *req, size_t len, int *argc)
{
	size_t i, n = 0;
	char **v;
	int k = 0;

	for (i = 0; i < len; i++)
		if (!req[i])
			n++;
	v = calloc(n + 2, sizeof(*v));
	if (!v)
		return NULL;
	for (i = 0; i < len; i += strlen(req + i) + 1)
		v[k++] = req + i;
	*argc = k;
	return v;
}

static void *control_handler(void *arg)
{
	struct control_conn *cc = arg;
	struct control *c = cc->c;
	struct cbuf req = { 0 }, out = { 0 }, err = { 0 };
	char buf[4096], head[32];
	char **argv = NULL;
	int argc = 0, rc = 2;
	struct timeval tv = { 30, 0 };
	ssize_t n;

	setsockopt(cc->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (;;) {
		n = recv(cc->fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		cbuf_add(&req, buf, (size_t)n);
		if (req.len > CONTROL_MAX_REQUEST)
			break;
	}
	if (req.oom || n < 0 || req.len > CONTROL_MAX_REQUEST) {
		cbuf_printf(&err, "wakefs: bad control request (too long or cut off)\n");
	} else {
		/* cbuf keeps a NUL after the data: the last word is terminated. */
		argv = control_split(req.s ? req.s : (char *)"", req.len, &argc);
		if (!argv)
			cbuf_printf(&err, "wakefs: out of memory\n");
		else
			rc = control_run(c, argc, argv, &out, &err);
	}
	if (out.oom || err.oom)
		rc = 2;
	snprintf(head, sizeof(head), "%d\n", rc);
	if (!control_write_all(cc->fd, head, strlen(head)) &&
	    !control_write_all(cc->fd, out.s ? out.s : "", out.len) &&
	    !control_write_all(cc->fd, "", 1))
		control_write_all(cc->fd, err.s ? err.s : "", err.len);
	close(cc->fd);
	free(argv);
	free(req.s);
	free(out.s);
	free(err.s);
	free(cc);
	pthread_mutex_lock(&c->lock);
	c->nhandlers--;
	pthread_cond_broadcast(&c->idle);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static void *control_accept_loop(void *arg)
{
	struct control *c = arg;
	struct pollfd pfd[2];

	pfd[0].fd = c->fd;
	pfd[0].events = POLLIN;
	pfd[1].fd = c->wake[0];
	pfd[1].events = POLLIN;
	for (;;) {
		struct control_conn *cc;
		pthread_attr_t attr;
		pthread_t t;
		int fd;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents)
			break;
		if (!(pfd[0].revents & POLLIN))
			continue;
		fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		cc = malloc(sizeof(*cc));
		if (!cc) {
			close(fd);
			continue;
		}
		cc->c = c;
		cc->fd = fd;
		pthread_mutex_lock(&c->lock);
		c->nhandlers++;
		pthread_mutex_unlock(&c->lock);
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &attr, control_handler, cc) != 0) {
			close(fd);
			free(cc);
			pthread_mutex_lock(&c->lock);
			c->nhandlers--;
			pthread_cond_broadcast(&c->idle);
			pthread_mutex_unlock(&c->lock);
		}
		pthread_attr_destroy(&attr);
	}
	return NULL;
}

/* 1 when a live daemon answers on @path. */
static int control_alive(const char *path)
{
	struct sockaddr_un sa;
	int fd, alive;

	if (control_addr(path, &sa))
		return 0;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	alive = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return alive;
}

int control_new(struct control **out, const struct control_opts *o)
{
	char canon[PATH_MAX], path[PATH_MAX], dir[PATH_MAX];
	struct sockaddr_un sa;
	struct control *c;
	int err;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fd = -1;
	c->wake[0] = c->wake[1] = -1;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->idle, NULL);
	c->f = o->f;
	c->l = o->l;
	err = control_canon(o->mountpoint, canon, sizeof(canon));
	if (!err)
		err = control_dir(dir, sizeof(dir), 1);
	if (!err)
		err = control_socket_path(canon, path, sizeof(path));
	if (!err)
		err = control_addr(path, &sa);
	if (err)
		goto out;
	c->mountpoint = strdup(canon);
	c->sock_path = strdup(path);
	c->remote = strdup(o->remote ? o->remote : "");
	c->policy = strdup(o->policy ? o->policy : "tracked");
	if (!c->mountpoint || !c->sock_path || !c->remote || !c->policy) {
		err = -ENOMEM;
		goto out;
	}
	if (control_alive(path)) {
		err = -EADDRINUSE;
		goto out;
	}
	unlink(path);	/* a stale socket of a daemon that died */
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(c->fd, 16) < 0 || pipe2(c->wake, O_CLOEXEC) < 0) {
		err = -errno;
		goto out;
	}
	chmod(path, 0600);
	err = -pthread_create(&c->thread, NULL, control_accept_loop, c);
	if (err)
		goto out;
	c->started = 1;
	*out = c;
out:
	if (err)
		control_free(c);
	return err;
}

void control_free(struct control *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->stop = 1;
	pthread_mutex_unlock(&c->lock);
	if (c->started) {
		if (write(c->wake[1], "x", 1) < 0)
			pthread_cancel(c->thread);
		pthread_join(c->thread, NULL);
	}
	pthread_mutex_lock(&c->lock);
	while (c->nhandlers > 0)
		pthread_cond_wait(&c->idle, &c->lock);
	pthread_mutex_unlock(&c->lock);
	if (c->fd >= 0) {
		close(c->fd);
		if (c->sock_path)
			unlink(c->sock_path);
	}
	if (c->wake[0] >= 0)
		close(c->wake[0]);
	if (c->wake[1] >= 0)
		close(c->wake[1]);
	pthread_cond_destroy(&c->idle);
	pthread_mutex_destroy(&c->lock);
	free(c->sock_path);
	free(c->mountpoint);
	free(c->remote);
	free(c->policy);
	free(c);
}

/* --- client -------------------------------------------------------------------------- */

static const char *const control_commands[] = { "status", "flush", "push", "resolve" };

int control_is_command(const char *cmd)
{
	size_t i;

	for (i = 0; i < sizeof(control_commands) / sizeof(control_commands[0]); i++)
		if (!strcmp(cmd, control_commands[i]))
			return 1;
	return 0;
}

static void control_usage(FILE *fp)
{
	fputs("usage: wakefs status MOUNTPOINT [--json]\n"
	      "       wakefs flush MOUNTPOINT [--timeout=SECONDS]\n"
	      "       wakefs push MOUNTPOINT PATH...\n"
	      "       wakefs resolve MOUNTPOINT PATH... --keep=local|remote\n",
	      fp);
}

/*
 * Lexically normalise absolute @in ("/a/./b/../c/" -> "/a/c") into @out.
 */
static void control_normalize(const char *in, char *out, size_t len)
{
	size_t o = 0;
	const char *p = in;

	out[0] = '\0';
	while (*p) {
		const char *end;
		size_t n;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		end = strchr(p, '/');
		n = end ? (size_t)(end - p) : strlen(p);
		if (n == 1 && p[0] == '.') {
			/* skip */
		} else if (n == 2 && p[0] == '.' && p[1] == '.') {
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
			out[o] = '\0';
		} else if (o + n + 2 < len) {
			out[o++] = '/';
			memcpy(out + o, p, n);
			o += n;
			out[o] = '\0';
		}
		p += n;
	}
	if (!o && len > 1) {
		out[0] = '/';
		out[1] = '\0';
	}
}

/*
 * The mount path of user argument @arg: an absolute path, or one relative to
 * the working directory, inside @mnt loses the @mnt prefix; a relative path
 * outside it is taken as relative to the mount root.
 */
static int control_mount_path(const char *mnt, const char *arg, char *out, size_t len)
{
	char abs[PATH_MAX * 2], norm[PATH_MAX * 2], cwd[PATH_MAX];
	size_t ml = strlen(mnt);

	if (arg[0] == '/') {
		snprintf(abs, sizeof(abs), "%s", arg);
	} else if (getcwd(cwd, sizeof(cwd))) {
		snprintf(abs, sizeof(abs), "%s/%s", cwd, arg);
	} else {
		abs[0] = '\0';
	}
	control_normalize(abs, norm, sizeof(norm));
	if (abs[0] && !strncmp(norm, mnt, ml) && (norm[ml] == '/' || !norm[ml])) {
		snprintf(out, len, "%s", norm[ml] ? norm + ml : "/");
		return 0;
	}
	if (arg[0] == '/')
		return -EINVAL;
	snprintf(abs, sizeof(abs), "/%s", arg);
	control_normalize(abs, out, len);
	return 0;
}

static int control_send(int fd, const char *word)
{
	return control_write_all(fd, word, strlen(word) + 1);
}

/* Print ',"vm":{...}' for `status --json`: the members that go inside the daemon's object. */
static void control_vm_json(const struct control_vm *vm)
{
	struct cbuf b = { 0 };

	cbuf_add(&b, ",\"vm\":{\"profile\":", 17);
	cbuf_json_str(&b, vm->profile);
	cbuf_add(&b, ",\"power\":", 9);
	if (vm->power)
		cbuf_json_str(&b, vm->power);
	else
		cbuf_add(&b, "null", 4);
	if (vm->error) {
		cbuf_add(&b, ",\"error\":", 9);
		cbuf_json_str(&b, vm->error);
	}
	if (vm->running_s >= 0)
		cbuf_printf(&b, ",\"running_s\":%ld", vm->running_s);
	cbuf_add(&b, "}", 1);
	if (!b.oom && b.s)
		fwrite(b.s, 1, b.len, stdout);
	free(b.s);
}

int control_client_main(int argc, char **argv, const struct control_vm *vm)
{
	char sock[PATH_MAX], canon[PATH_MAX], mp[PATH_MAX], opt[64];
	const char *cmd, *keep = NULL, *timeout = NULL;
	struct cbuf ans = { 0 };
	struct sockaddr_un sa;
	int fd = -1, i, rc = 2, json = 0, npaths = 0, err;
	char buf[4096];
	ssize_t n;

	if (argc < 2 || !control_is_command(argv[0])) {
		control_usage(stderr);
		return 2;
	}
	cmd = argv[0];
	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--json") && !strcmp(cmd, "status"))
			json = 1;
		else if (!strncmp(argv[i], "--keep=", 7) && !strcmp(cmd, "resolve"))
			keep = argv[i] + 7;
		else if (!strncmp(argv[i], "--timeout=", 10) && !strcmp(cmd, "flush"))
			timeout = argv[i] + 10;
		else if (argv[i][0] == '-' && argv[i][1] == '-' && strcmp(argv[i], "--") != 0) {
			fprintf(stderr, "wakefs: bad option '%s' for '%s'\n", argv[i], cmd);
			control_usage(stderr);
			return 2;
		} else
			npaths++;
	}
	if ((!strcmp(cmd, "push") || !strcmp(cmd, "resolve")) && !npaths) {
		fprintf(stderr, "wakefs: '%s' needs at least one PATH\n", cmd);
		control_usage(stderr);
		return 2;
	}
	if ((!strcmp(cmd, "status") || !strcmp(cmd, "flush")) && npaths) {
		fprintf(stderr, "wakefs: '%s' takes no PATH\n", cmd);
		control_usage(stderr);
		return 2;
	}
	if (!strcmp(cmd, "resolve") && (!keep || (strcmp(keep, "local") && strcmp(keep, "remote")))) {
		fprintf(stderr, "wakefs: 'resolve' needs --keep=local or --keep=remote\n");
		return 2;
	}
	if (timeout) {
		char *end;
		double s = strtod(timeout, &end);

		if (end == timeout || *end || s < 0 || s > 86400 * 7) {
			fprintf(stderr, "wakefs: bad option '--timeout=%s': expected seconds\n", timeout);
			return 2;
		}
		snprintf(opt, sizeof(opt), "%ld", (long)(s * 1000));
	}
	err = control_canon(argv[1], canon, sizeof(canon));
	if (!err)
		err = control_socket_path(canon, sock, sizeof(sock));
	if (!err)
		err = control_addr(sock, &sa);
	if (err) {
		fprintf(stderr, "wakefs: cannot find the control socket of '%s': %s\n", argv[1],
			strerror(-err));
		return 2;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "wakefs: no wakefs daemon serves '%s' (is it mounted?): %s\n",
			canon, strerror(errno));
		goto out;
	}
	err = control_send(fd, cmd);
	if (!err && json)
		err = control_send(fd, "--json");
	if (!err && !strcmp(cmd, "flush"))
		err = control_send(fd, timeout ? opt : "0");
	if (!err && keep)
		err = control_send(fd, keep);
	for (i = 2; i < argc && !err; i++) {
		if (argv[i][0] == '-' && argv[i][1] == '-' && strcmp(argv[i], "--") != 0)
			continue;
		if (!strcmp(argv[i], "--"))
			continue;
		if (control_mount_path(canon, argv[i], mp, sizeof(mp))) {
			fprintf(stderr, "wakefs: '%s' is not inside the mount '%s'\n", argv[i], canon);
			goto out;
		}
		err = control_send(fd, mp);
	}
	if (err || shutdown(fd, SHUT_WR) < 0) {
		fprintf(stderr, "wakefs: cannot talk to the daemon of '%s': %s\n", canon,
			strerror(err ? -err : errno));
		goto out;
	}
	for (;;) {
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		cbuf_add(&ans, buf, (size_t)n);
	}
	if (n < 0 || ans.oom || !ans.s || !strchr(ans.s, '\n')) {
		fprintf(stderr, "wakefs: no answer from the daemon of '%s'\n", canon);
		goto out;
	}
	{
		char *nl = strchr(ans.s, '\n');
		char *o = nl + 1;
		size_t olen = strnlen(o, ans.len - (size_t)(o - ans.s));

		rc = atoi(ans.s);
		if (json && vm && olen >= 2 && o[olen - 1] == '\n' && o[olen - 2] == '}') {
			fwrite(o, 1, olen - 2, stdout);
			control_vm_json(vm);
			fputs("}\n", stdout);
		} else {
			fwrite(o, 1, olen, stdout);
		}
		fflush(stdout);
		if (o + olen < ans.s + ans.len)
			fwrite(o + olen + 1, 1, ans.len - (size_t)(o + olen + 1 - ans.s), stderr);
	}
out:
	if (fd >= 0)
		close(fd);
	free(ans.s);
	return rc;
}
