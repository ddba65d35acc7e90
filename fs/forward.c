/*
 * fs/forward.c: the listeners and forwarded connections behind fs/forward.h.
 *
 * A connection's life: OPENING (the direct-tcpip channel is being opened;
 * the client's bytes wait in its socket) -> OPEN (bytes move both ways
 * through two FWD_BUF buffers) -> CLOSING (the channel is closed politely)
 * -> freed. In OPEN, the client's EOF becomes the channel's EOF once the
 * buffer towards the VM is empty, and the channel's EOF becomes a
 * shutdown(SHUT_WR) of the client's socket once the buffer towards the
 * client is empty; when both have happened the connection closes. Any error
 * on either side resets the client's socket (so it sees the transfer did
 * not finish, rather than a clean end) and closes the channel.
 *
 * Memory per connection is the two buffers plus what libssh2 queues for the
 * channel, which its receive window (2 MiB in libssh2 1.10) bounds: a client
 * that does not read stops our reading of the channel, and the VM's sender
 * then stops when the window is used up.
 */
#include "forward.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ssh.h"

#define FWD_BUF (64 * 1024)

enum fwd_state { FC_OPENING, FC_OPEN, FC_CLOSING };

struct fwd_listener {
	struct fwd_spec spec;
	int fd;
};

struct fwd_conn {
	struct fwd_conn *next;
	const struct fwd_listener *l;
	int fd;			/* the local client; -1 once closed */
	struct ssh_chan *ch;
	enum fwd_state state;
	int local_eof, eof_sent;	/* client -> VM direction */
	int remote_eof, shut_wr;	/* VM -> client direction */
	size_t up_off, up_len;		/* client -> VM bytes in up[] */
	size_t down_off, down_len;	/* VM -> client bytes in down[] */
	unsigned char up[FWD_BUF], down[FWD_BUF];
};

struct fwd {
	struct fwd_listener l[FWD_MAX];
	int nl;
	struct fwd_conn *conns;
	int nconns;
	long accept_pause_until;	/* out of descriptors: stop polling the listeners till then */
	char label[256];
};

static long fwd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

static struct fwd_spec fwd_presets[FWD_MAX];
static int fwd_npresets;

__attribute__((format(printf, 1, 2))) static void fwd_log(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "wakefs: %s\n", msg);
}

/* --- specs ------------------------------------------------------------------ */

static int fwd_port(const char *s, size_t len, int *out)
{
	int v = 0;
	size_t i;

	if (len == 0 || len > 5)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return -EINVAL;
	*out = v;
	return 0;
}

int fwd_parse(const char *spec, struct fwd_spec *out, char *err, size_t errlen)
{
	const char *c1 = strchr(spec, ':'), *c2 = strrchr(spec, ':'), *h;
	size_t hl;

	memset(out, 0, sizeof(*out));
	if (!c1) {
		if (fwd_port(spec, strlen(spec), &out->lport))
			goto bad;
		out->rport = out->lport;
		snprintf(out->host, sizeof(out->host), "localhost");
		return 0;
	}
	if (c1 == c2 || fwd_port(spec, (size_t)(c1 - spec), &out->lport) ||
	    fwd_port(c2 + 1, strlen(c2 + 1), &out->rport))
		goto bad;
	h = c1 + 1;
	hl = (size_t)(c2 - h);
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(out->host))
		goto bad;
	memcpy(out->host, h, hl);
	out->host[hl] = '\0';
	return 0;
bad:
	snprintf(err, errlen, "bad forward '%s': expected PORT or LOCALPORT:HOST:REMOTEPORT "
		 "(ports 1 to 65535)", spec);
	return -EINVAL;
}

void fwd_preset(const struct fwd_spec *specs, int n)
{
	fwd_npresets = n < FWD_MAX ? n : FWD_MAX;
	if (fwd_npresets > 0)
		memcpy(fwd_presets, specs, sizeof(*specs) * (size_t)fwd_npresets);
}

/* --- listeners ------------------------------------------------------------------ */

static int fwd_listen(int port)
{
	struct sockaddr_in sa;
	int fd, one = 1, rc;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A previous mount's connections in TIME_WAIT must not keep the port. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

int fwd_new(struct fwd **out, const struct fwd_spec *specs, int n, const char *label)
{
	struct fwd *f;
	int i, fd;

	*out = NULL;
	if (!specs) {	/* the preset ones, taken once */
		specs = fwd_presets;
		n = fwd_npresets;
		fwd_npresets = 0;
	}
	if (n <= 0)
		return 0;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	snprintf(f->label, sizeof(f->label), "%s", label ? label : "?");
	for (i = 0; i < n && i < FWD_MAX; i++) {
		fd = fwd_listen(specs[i].lport);
		/*
		 * A taken port warns and the mount goes on: the files are what the
		 * mount is for, and the usual culprit is an old tunnel to the same
		 * service (a `vmctl ssh` still open) that the user can keep using
		 * or close; refusing to mount over it would be worse.
		 */
		if (fd < 0) {
			fwd_log("warning: forward %d:%s:%d of '%s' is off: cannot listen on "
				"127.0.0.1:%d: %s (%s); the mount goes on without it",
				specs[i].lport, specs[i].host, specs[i].rport, f->label,
				specs[i].lport, strerror(-fd),
				fd == -EADDRINUSE ? "another program uses that port: stop it or "
						    "pick another local port in the forward"
						  : "pick another local port in the forward");
			continue;
		}
		f->l[f->nl].spec = specs[i];
		f->l[f->nl].fd = fd;
		f->nl++;
	}
	*out = f;
	return 0;
}

/* --- connections ---------------------------------------------------------------- */

/* Close the client's socket with a reset: the transfer did not finish. */
static void fwd_reset(struct fwd_conn *k)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (k->fd < 0)
		return;
	setsockopt(k->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(k->fd);
	k->fd = -1;
}

static void fwd_conn_free(struct fwd_conn *k)
{
	if (k->fd >= 0)
		close(k->fd);
	ssh_chan_free(k->ch);
	free(k);
}

/* Something failed: reset the client, close the channel. */
static void fwd_abort(struct fwd_conn *k)
{
	fwd_reset(k);
	k->state = FC_CLOSING;
}

static void fwd_accept(struct fwd *f, struct fwd_listener *l, struct ssh *s)
{
	struct sockaddr_in sa;
	socklen_t sl;
	struct fwd_conn *k;
	int fd;

	while (f->nconns < FWD_MAX_CONNS) {
		sl = sizeof(sa);
		fd = accept4(l->fd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0 && (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			       errno == ENOMEM)) {
			/* The connection stays queued; a listener polled meanwhile would spin. */
			fwd_log("forward %d: cannot accept a connection: %s (retrying in a second)",
				l->spec.lport, strerror(errno));
			f->accept_pause_until = fwd_now_ms() + 1000;
			return;
		}
		if (fd < 0)
			return;	/* EAGAIN, or the client's own error */
		k = calloc(1, sizeof(*k));
		if (!k || ssh_chan_new_tcpip(s, l->spec.host, l->spec.rport, ntohs(sa.sin_port),
					     &k->ch)) {
			fwd_log("forward %d: out of memory, dropping a connection", l->spec.lport);
			free(k);
			close(fd);
			continue;
		}
		k->l = l;
		k->fd = fd;
		k->next = f->conns;
		f->conns = k;
		f->nconns++;
	}
}

/* Move bytes both ways once; the caller steps again while bytes move. */
static void fwd_move(struct fwd_conn *k, size_t *moved)
{
	ssize_t n;
	int rc;

	/* The client -> the VM. */
	if (!k->local_eof && k->up_len < FWD_BUF) {
		if (k->up_off && k->up_off == k->up_len)
			k->up_off = k->up_len = 0;
		n = read(k->fd, k->up + k->up_len, FWD_BUF - k->up_len);
		if (n > 0) {
			k->up_len += (size_t)n;
			*moved += (size_t)n;
		} else if (n == 0) {
			k->local_eof = 1;
		} else if (errno != EAGAIN && errno != EINTR) {
			fwd_abort(k);
			return;
		}
	}
	while (k->up_off < k->up_len) {
		n = ssh_chan_write(k->ch, k->up + k->up_off, k->up_len - k->up_off);
		if (n == -EAGAIN || n == 0)
			break;
		if (n < 0) {
			fwd_abort(k);
			return;
		}
		k->up_off += (size_t)n;
		*moved += (size_t)n;
	}
	if (k->up_off == k->up_len)
		k->up_off = k->up_len = 0;
	if (k->local_eof && !k->up_len && !k->eof_sent) {
		rc = ssh_chan_send_eof(k->ch);
		if (rc == 0)
			k->eof_sent = 1;
		else if (rc != -EAGAIN) {
			fwd_abort(k);
			return;
		}
	}

	/* The VM -> the client. */
	if (k->down_off == k->down_len)
		k->down_off = k->down_len = 0;
	else if (k->down_off && k->down_len == FWD_BUF) {
		memmove(k->down, k->down + k->down_off, k->down_len - k->down_off);
		k->down_len -= k->down_off;
		k->down_off = 0;
	}
	while (!k->remote_eof && k->down_len < FWD_BUF) {
		n = ssh_chan_read(k->ch, 0, k->down + k->down_len, FWD_BUF - k->down_len);
		if (n == -EAGAIN)
			break;
		if (n < 0) {
			fwd_abort(k);
			return;
		}
		if (n == 0) {
			if (ssh_chan_eof(k->ch))
				k->remote_eof = 1;
			break;
		}
		k->down_len += (size_t)n;
		*moved += (size_t)n;
	}
	while (k->down_off < k->down_len) {
		n = send(k->fd, k->down + k->down_off, k->down_len - k->down_off, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n <= 0) {
			fwd_abort(k);
			return;
		}
		k->down_off += (size_t)n;
		*moved += (size_t)n;
	}
	if (k->remote_eof && k->down_off == k->down_len && !k->shut_wr) {
		shutdown(k->fd, SHUT_WR);
		k->shut_wr = 1;
	}
	if (k->eof_sent && k->shut_wr)
		k->state = FC_CLOSING;
}

/* One step of @k; returns 1 when it is finished and may be freed. */
static int fwd_step(struct fwd *f, struct fwd_conn *k, size_t *moved)
{
	int rc;

	if (k->state == FC_OPENING) {
		rc = ssh_chan_start(k->ch);
		if (rc == -EAGAIN)
			return 0;
		if (rc) {
			fwd_log("forward %d: cannot connect to %s:%d from '%s': %s", k->l->spec.lport,
				k->l->spec.host, k->l->spec.rport, f->label,
				rc == -ECONNREFUSED ? "refused there (is the service running on the VM?)"
						    : strerror(-rc));
			fwd_reset(k);
			return 1;
		}
		k->state = FC_OPEN;
	}
	if (k->state == FC_OPEN)
		fwd_move(k, moved);
	if (k->state == FC_CLOSING) {
		if (ssh_chan_close(k->ch) == -EAGAIN)
			return 0;
		return 1;
	}
	return 0;
}

int fwd_max_fds(const struct fwd *f)
{
	return f ? f->nl + FWD_MAX_CONNS : 0;
}

int fwd_pollfds(const struct fwd *f, struct pollfd *pfd, int max)
{
	const struct fwd_conn *k;
	short ev;
	int i, n = 0;

	if (!f)
		return 0;
	for (i = 0; i < f->nl && n < max && f->nconns < FWD_MAX_CONNS &&
		    fwd_now_ms() >= f->accept_pause_until; i++) {
		pfd[n].fd = f->l[i].fd;
		pfd[n].events = POLLIN;
		pfd[n++].revents = 0;
	}
	for (k = f->conns; k && n < max; k = k->next) {
		if (k->state != FC_OPEN || k->fd < 0)
			continue;
		/* Only what we want: a hung-up socket polled for nothing would spin. */
		ev = 0;
		if (!k->local_eof && k->up_len < FWD_BUF)
			ev |= POLLIN;
		if (k->down_off < k->down_len)
			ev |= POLLOUT;
		if (!ev)
			continue;
		pfd[n].fd = k->fd;
		pfd[n].events = ev;
		pfd[n++].revents = 0;
	}
	return n;
}

int fwd_pending(const struct fwd *f)
{
	const struct fwd_conn *k;

	for (k = f ? f->conns : NULL; k; k = k->next)
		if (k->state == FC_OPEN && k->ch && !k->remote_eof && k->down_len < FWD_BUF &&
		    ssh_chan_pending(k->ch))
			return 1;
	return 0;
}

void fwd_service(struct fwd *f, struct ssh *s, size_t *moved)
{
	struct fwd_conn **p, *k;
	int i;

	if (!f)
		return;
	for (i = 0; i < f->nl && fwd_now_ms() >= f->accept_pause_until; i++)
		fwd_accept(f, &f->l[i], s);
	p = &f->conns;
	while ((k = *p)) {
		if (fwd_step(f, k, moved)) {
			*p = k->next;
			f->nconns--;
			fwd_conn_free(k);
		} else {
			p = &k->next;
		}
	}
}

void fwd_lost(struct fwd *f)
{
	struct fwd_conn *k;

	if (!f)
		return;
	while ((k = f->conns)) {
		f->conns = k->next;
		fwd_reset(k);
		fwd_conn_free(k);
	}
	f->nconns = 0;
}

void fwd_free(struct fwd *f)
{
	int i;

	if (!f)
		return;
	fwd_lost(f);
	for (i = 0; i < f->nl; i++)
		close(f->l[i].fd);
	free(f);
}
