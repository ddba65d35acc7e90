/*
 * latency-proxy: a TCP proxy on loopback that emulates a laptop-to-cloud link
 * for the tests and the benchmark. It adds a round-trip time (half of it on
 * each direction) without capping throughput, and optionally limits bandwidth.
 *
 * Design: one thread, one epoll set, non-blocking sockets. Every accepted
 * connection owns two directions (client -> server, server -> client); each
 * direction is a FIFO of chunks. A chunk is what one read() returned, stamped
 * with the time it may be delivered: arrival + RTT/2, or, with a bandwidth
 * limit, the time the emulated link has finished serialising it + RTT/2 (a
 * token bucket without burst, computed as a departure schedule shared by all
 * connections of that direction, like one physical link). Reading never waits
 * for delivery, so as many bytes are in flight as the peers send: the proxy
 * adds latency, not a window. A timerfd armed at the earliest due chunk wakes
 * the loop. Memory is bounded: a side is not read while its direction's queue
 * holds more than --queue-limit bytes (back-pressure to the sender through
 * TCP), a limit far above one RTT's worth of bytes at loopback speed.
 *
 * End of stream travels like data: a read() of 0 queues an EOF marker that is
 * delivered (as shutdown(SHUT_WR)) RTT/2 later, so half-closes propagate. A
 * connection ends when both directions have delivered their EOF, or at once
 * on a socket error (both sides are then closed). SIGTERM and SIGINT close
 * everything and exit 0.
 *
 * What it does not emulate: the upstream TCP handshake is not delayed, and
 * there is no loss or jitter.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define PROXY_READ_SIZE (256 * 1024)
#define PROXY_SMALL_READ (16 * 1024)	/* reads up to this size are copied to a fitting chunk */
#define PROXY_POOL_MAX 64		/* full-size chunks kept for reuse */
#define PROXY_DEFAULT_QUEUE_LIMIT (16 * 1024 * 1024)
#define PROXY_NSEC 1000000000LL

/* What an epoll event's data.u64 points at: tag in the low bits, index above. */
enum proxy_tag {
	PROXY_TAG_LISTEN = 1,
	PROXY_TAG_SIGNAL,
	PROXY_TAG_TIMER,
	PROXY_TAG_CONN,
};

struct proxy_chunk {
	struct proxy_chunk *next;
	int64_t due;		/* CLOCK_MONOTONIC ns when it may be written */
	size_t len;		/* 0 = end of stream */
	size_t off;		/* bytes of it already written */
	size_t cap;		/* size of data[] */
	char data[];
};

/* One direction of a connection: bytes read from src, queued, written to dst. */
struct proxy_dir {
	struct proxy_chunk *head, *tail;
	size_t queued;		/* bytes in the queue, for the back-pressure limit */
	int src_eof;		/* src said EOF (or we stopped reading it) */
	int dst_shut;		/* the EOF was delivered: dst is shut down for writing */
	int dst_blocked;	/* the last write to dst hit EAGAIN */
};

/*
 * A proxied connection. fd[0] is the client, fd[1] the server; dir[0] carries
 * client -> server, dir[1] server -> client. Owned by the proxy's list.
 */
struct proxy_conn {
	struct proxy_conn *prev, *next;
	int fd[2];
	uint32_t events[2];	/* what each fd is registered for in epoll */
	int watched[2];		/* fd is in the epoll set (only while it needs something) */
	int connecting;		/* the connect() to the server is in progress */
	int dead;		/* closed; freed at the end of the event batch */
	struct proxy_dir dir[2];
};

struct proxy_opts {
	struct sockaddr_in listen;
	struct sockaddr_in to;
	int64_t half_rtt;	/* ns */
	double bytes_per_ns;	/* 0 = unlimited */
	size_t queue_limit;
	const char *port_file;
	int verbose;
};

struct proxy {
	const struct proxy_opts *opts;
	int epfd, lfd, sfd, tfd;
	struct proxy_conn *conns;	/* live connections */
	struct proxy_conn *dead;	/* closed during this event batch, to free */
	int64_t link_free[2];	/* per direction: when the emulated link is idle again */
	int64_t timer_at;	/* what the timerfd is armed for, 0 = disarmed */
	/*
	 * Full-size chunks are recycled: reads land directly in them (no copy),
	 * and the allocator never sees the churn (with ASan's quarantine, fresh
	 * pages per chunk cost more than everything else).
	 */
	struct proxy_chunk *spare;	/* the chunk the next read lands in */
	struct proxy_chunk *pool;	/* free full-size chunks */
	int npool;
};

static int64_t proxy_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * PROXY_NSEC + ts.tv_nsec;
}

/* With -v, says what happened to one connection; @err is a negative errno. */
static void proxy_log(const struct proxy *p, const char *what, int err)
{
	if (p->opts->verbose)
		fprintf(stderr, "latency-proxy: %s: %s\n", what, strerror(-err));
}

static int proxy_parse_addr(const char *s, struct sockaddr_in *out)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	char *end;
	long port;
	size_t n;

	if (!colon)
		return -EINVAL;
	n = (size_t)(colon - s);
	if (n == 0 || n >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, n);
	host[n] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port < 0 || port > 65535)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	out->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &out->sin_addr) != 1)
		return -EINVAL;
	return 0;
}

static int proxy_parse_number(const char *s, double max, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || end == s || !(v >= 0) || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static void proxy_usage(FILE *f)
{
	fputs("usage: latency-proxy --listen 127.0.0.1:PORT --to 127.0.0.1:PORT --rtt MS\n"
	      "                     [--bandwidth MBIT] [--port-file FILE] [--queue-limit BYTES] [-v]\n"
	      "Forwards TCP connections from --listen to --to, adding MS milliseconds of round-trip\n"
	      "time (half each way) without capping throughput; --bandwidth limits each direction\n"
	      "to MBIT megabits per second. Listen port 0 picks a free port; --port-file receives it.\n",
	      f);
}

/* Returns 0, or 2 (the usage exit code) after saying what is wrong. */
static int proxy_parse_opts(int argc, char **argv, struct proxy_opts *o)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "to", required_argument, NULL, 't' },
		{ "rtt", required_argument, NULL, 'r' },
		{ "bandwidth", required_argument, NULL, 'b' },
		{ "port-file", required_argument, NULL, 'p' },
		{ "queue-limit", required_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int have_listen = 0, have_to = 0, have_rtt = 0, c;
	double v;

	memset(o, 0, sizeof(*o));
	o->queue_limit = PROXY_DEFAULT_QUEUE_LIMIT;
	while ((c = getopt_long(argc, argv, "v", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (proxy_parse_addr(optarg, &o->listen)) {
				fprintf(stderr, "latency-proxy: bad --listen '%s': expected IPV4:PORT, e.g. 127.0.0.1:0\n", optarg);
				return 2;
			}
			have_listen = 1;
			break;
		case 't':
			if (proxy_parse_addr(optarg, &o->to) || o->to.sin_port == 0) {
				fprintf(stderr, "latency-proxy: bad --to '%s': expected IPV4:PORT with a non-zero port\n", optarg);
				return 2;
			}
			have_to = 1;
			break;
		case 'r':
			if (proxy_parse_number(optarg, 600000, &v)) {
				fprintf(stderr, "latency-proxy: bad --rtt '%s': expected milliseconds, 0 to 600000\n", optarg);
				return 2;
			}
			o->half_rtt = (int64_t)(v * 1e6 / 2);
			have_rtt = 1;
			break;
		case 'b':
			if (proxy_parse_number(optarg, 1e6, &v) || v == 0) {
				fprintf(stderr, "latency-proxy: bad --bandwidth '%s': expected megabits per second, above 0\n", optarg);
				return 2;
			}
			o->bytes_per_ns = v * 1e6 / 8 / 1e9;
			break;
		case 'p':
			o->port_file = optarg;
			break;
		case 'q':
			if (proxy_parse_number(optarg, (double)(1ULL << 40), &v) || v < 1) {
				fprintf(stderr, "latency-proxy: bad --queue-limit '%s': expected a number of bytes, at least 1\n", optarg);
				return 2;
			}
			o->queue_limit = (size_t)v;
			break;
		case 'v':
			o->verbose = 1;
			break;
		case 'h':
			proxy_usage(stdout);
			exit(0);
		default:
			proxy_usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "latency-proxy: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (!have_listen || !have_to || !have_rtt) {
		fprintf(stderr, "latency-proxy: --listen, --to and --rtt are required\n");
		proxy_usage(stderr);
		return 2;
	}
	return 0;
}

static uint64_t proxy_key(enum proxy_tag tag, struct proxy_conn *c, int side)
{
	/* Connections are at least 8-byte aligned: the low 3 bits carry the side. */
	if (tag == PROXY_TAG_CONN)
		return (uint64_t)(uintptr_t)c | (uint64_t)side;
	return (uint64_t)tag << 3;
}

static int proxy_epoll_add(struct proxy *p, int fd, uint64_t key, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.u64 = key };

	return epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

/* Writes the listening port to @path atomically (temp file + rename). */
static int proxy_write_port_file(const char *path, int port)
{
	char tmp[PATH_MAX];
	FILE *f;
	int err = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fprintf(f, "%d\n", port);
	if (fclose(f))
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

static int proxy_listen(struct proxy *p)
{
	struct sockaddr_in sa = p->opts->listen;
	socklen_t len = sizeof(sa);
	int one = 1, err;

	p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->lfd < 0)
		return -errno;
	setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(p->lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(p->lfd, 512))
		return -errno;
	if (getsockname(p->lfd, (struct sockaddr *)&sa, &len))
		return -errno;
	err = proxy_epoll_add(p, p->lfd, proxy_key(PROXY_TAG_LISTEN, NULL, 0), EPOLLIN);
	if (err)
		return err;
	if (p->opts->port_file) {
		err = proxy_write_port_file(p->opts->port_file, ntohs(sa.sin_port));
		if (err) {
			fprintf(stderr, "latency-proxy: cannot write the port file '%s': %s\n",
				p->opts->port_file, strerror(-err));
			return err;
		}
	}
	return 0;
}

/* A chunk of @cap bytes, from the pool when it is a full-size one; NULL when out of memory. */
static struct proxy_chunk *proxy_chunk_get(struct proxy *p, size_t cap)
{
	struct proxy_chunk *ch;

	if (cap == PROXY_READ_SIZE && p->pool) {
		ch = p->pool;
		p->pool = ch->next;
		p->npool--;
		return ch;
	}
	ch = malloc(sizeof(*ch) + cap);
	if (ch)
		ch->cap = cap;
	return ch;
}

static void proxy_chunk_put(struct proxy *p, struct proxy_chunk *ch)
{
	if (ch && ch->cap == PROXY_READ_SIZE && p->npool < PROXY_POOL_MAX) {
		ch->next = p->pool;
		p->pool = ch;
		p->npool++;
		return;
	}
	free(ch);
}

static void proxy_dir_release(struct proxy *p, struct proxy_dir *d)
{
	struct proxy_chunk *ch, *next;

	for (ch = d->head; ch; ch = next) {
		next = ch->next;
		proxy_chunk_put(p, ch);
	}
	d->head = d->tail = NULL;
	d->queued = 0;
}

/*
 * Closes @c and moves it to the dead list: events of the current batch may
 * still name it, so it is freed only by proxy_reap() after the batch.
 */
static void proxy_conn_kill(struct proxy *p, struct proxy_conn *c)
{
	int i;

	for (i = 0; i < 2; i++) {
		if (c->fd[i] >= 0)
			close(c->fd[i]);	/* also removes it from the epoll set */
		c->fd[i] = -1;
		proxy_dir_release(p, &c->dir[i]);
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		p->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->dead = 1;
	c->prev = NULL;
	c->next = p->dead;
	p->dead = c;
}

static void proxy_reap(struct proxy *p)
{
	struct proxy_conn *c;

	while ((c = p->dead)) {
		p->dead = c->next;
		free(c);
	}
}

/* Queues @ch, holding @ch->len bytes (0 = EOF), on direction @i; takes @ch. */
static void proxy_enqueue(struct proxy *p, struct proxy_dir *d, int i, struct proxy_chunk *ch)
{
	size_t len = ch->len;
	int64_t now = proxy_now(), sent = now;

	if (p->opts->bytes_per_ns > 0 && len > 0) {
		/* The link transmits chunks back to back: this one leaves after the previous. */
		if (p->link_free[i] > now)
			sent = p->link_free[i];
		sent += (int64_t)((double)len / p->opts->bytes_per_ns);
		p->link_free[i] = sent;
	}
	ch->next = NULL;
	ch->due = sent + p->opts->half_rtt;
	if (d->tail && ch->due < d->tail->due)
		ch->due = d->tail->due;	/* keep delivery in order */
	ch->off = 0;
	if (d->tail)
		d->tail->next = ch;
	else
		d->head = ch;
	d->tail = ch;
	d->queued += len;
}

/*
 * Reads what side @i has to say into direction @i, until EAGAIN, EOF or the
 * queue limit. Returns 0 or -errno (the connection is then dropped).
 */
static int proxy_read_side(struct proxy *p, struct proxy_conn *c, int i)
{
	struct proxy_dir *d = &c->dir[i];
	struct proxy_chunk *ch;
	int rounds = 4;
	ssize_t n;

	while (!d->src_eof && d->queued < p->opts->queue_limit && rounds-- > 0) {
		if (!p->spare)
			p->spare = proxy_chunk_get(p, PROXY_READ_SIZE);
		if (!p->spare)
			return -ENOMEM;
		n = recv(c->fd[i], p->spare->data, PROXY_READ_SIZE, 0);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n > PROXY_SMALL_READ) {
			ch = p->spare;
			p->spare = NULL;
		} else {
			/* Small reads (interactive traffic) get a fitting chunk. */
			ch = proxy_chunk_get(p, (size_t)n);
			if (!ch)
				return -ENOMEM;
			memcpy(ch->data, p->spare->data, (size_t)n);
		}
		ch->len = (size_t)n;
		proxy_enqueue(p, d, i, ch);
		if (n == 0)
			d->src_eof = 1;
	}
	return 0;
}

/*
 * Writes the due chunks of direction @i to the other side. Returns 0 or
 * -errno (the connection is then dropped).
 */
static int proxy_write_side(struct proxy *p, struct proxy_conn *c, int i, int64_t now)
{
	struct proxy_dir *d = &c->dir[i];
	int dst = c->fd[1 - i];
	struct proxy_chunk *ch;
	ssize_t n;

	if (c->connecting)
		return 0;
	d->dst_blocked = 0;
	while ((ch = d->head) && ch->due <= now) {
		if (ch->len == 0) {
			if (shutdown(dst, SHUT_WR) && errno != ENOTCONN)
				return -errno;
			d->dst_shut = 1;
		} else {
			n = send(dst, ch->data + ch->off, ch->len - ch->off, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK) {
					d->dst_blocked = 1;
					return 0;
				}
				if (errno == EINTR)
					continue;
				return -errno;
			}
			ch->off += (size_t)n;
			d->queued -= (size_t)n;
			if (ch->off < ch->len)
				continue;
		}
		d->head = ch->next;
		if (!d->head)
			d->tail = NULL;
		proxy_chunk_put(p, ch);
	}
	return 0;
}

/* Registers each fd for what it can usefully do now; returns 0 or -errno. */
static int proxy_conn_update(struct proxy *p, struct proxy_conn *c)
{
	int i;

	for (i = 0; i < 2; i++) {
		struct proxy_dir *rd = &c->dir[i];	/* fd[i] is its source */
		struct proxy_dir *wd = &c->dir[1 - i];	/* fd[i] is its destination */
		uint32_t ev = 0;
		struct epoll_event e;
		int op;

		if (!rd->src_eof && rd->queued < p->opts->queue_limit && !(i == 0 && c->connecting))
			ev |= EPOLLIN;
		if ((i == 1 && c->connecting) || wd->dst_blocked)
			ev |= EPOLLOUT;
		if (ev == c->events[i] && (ev != 0) == c->watched[i])
			continue;
		/*
		 * An fd with nothing to wait for leaves the set: epoll reports
		 * EPOLLHUP even when not asked, which would spin until the
		 * other direction's EOF is due.
		 */
		e.events = ev;
		e.data.u64 = proxy_key(PROXY_TAG_CONN, c, i);
		op = !ev ? EPOLL_CTL_DEL : c->watched[i] ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
		if (epoll_ctl(p->epfd, op, c->fd[i], &e))
			return -errno;
		c->watched[i] = ev != 0;
		c->events[i] = ev;
	}
	return 0;
}

static int proxy_conn_done(const struct proxy_conn *c)
{
	return c->dir[0].dst_shut && c->dir[1].dst_shut;
}

/* Moves what can move on @c; frees it when it is over. */
static void proxy_conn_pump(struct proxy *p, struct proxy_conn *c, int64_t now)
{
	int err = 0, i;

	for (i = 0; i < 2 && !err; i++)
		err = proxy_write_side(p, c, i, now);
	if (!err && proxy_conn_done(c)) {
		proxy_conn_kill(p, c);
		return;
	}
	if (!err)
		err = proxy_conn_update(p, c);
	if (err) {
		proxy_log(p, "connection dropped", err);
		proxy_conn_kill(p, c);
	}
}

/* The server refused: tell the client the way a refused connection would, with a reset. */
static void proxy_conn_refuse(struct proxy *p, struct proxy_conn *c, int err)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(c->fd[0], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	proxy_log(p, "cannot connect to the server", err);
	proxy_conn_kill(p, c);
}

static int proxy_conn_finish_connect(struct proxy_conn *c)
{
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	if (getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &soerr, &len))
		return -errno;
	if (soerr == EINPROGRESS)
		return 0;
	if (soerr)
		return -soerr;
	c->connecting = 0;
	return 0;
}

static void proxy_on_conn_event(struct proxy *p, struct proxy_conn *c, int side, uint32_t events)
{
	int err = 0;

	if (side == 1 && c->connecting) {
		err = proxy_conn_finish_connect(c);
		if (err) {
			proxy_conn_refuse(p, c, err);
			return;
		}
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		err = proxy_read_side(p, c, side);
	if (err) {
		proxy_log(p, "connection dropped", err);
		proxy_conn_kill(p, c);
		return;
	}
	proxy_conn_pump(p, c, proxy_now());
}

static void proxy_accept(struct proxy *p)
{
	struct proxy_conn *c;
	int fd, one = 1, i, err;

	for (;;) {
		fd = accept4(p->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				proxy_log(p, "accept failed", -errno);
			return;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd[0] = fd;
		c->fd[1] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		c->next = p->conns;
		if (p->conns)
			p->conns->prev = c;
		p->conns = c;
		if (c->fd[1] < 0) {
			proxy_conn_kill(p, c);
			continue;
		}
		for (i = 0; i < 2; i++)
			setsockopt(c->fd[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->connecting = 1;
		if (connect(c->fd[1], (const struct sockaddr *)&p->opts->to, sizeof(p->opts->to)) == 0)
			c->connecting = 0;
		else if (errno != EINPROGRESS) {
			proxy_conn_refuse(p, c, -errno);
			continue;
		}
		err = proxy_conn_update(p, c);
		if (err) {
			proxy_log(p, "cannot watch a connection", err);
			proxy_conn_kill(p, c);
		}
	}
}

/* Delivers what is due everywhere and arms the timer for the next due chunk. */
static int proxy_tick(struct proxy *p)
{
	struct proxy_conn *c, *next;
	int64_t now = proxy_now(), next_due = 0;
	struct itimerspec its;
	int i;

	for (c = p->conns; c; c = next) {
		next = c->next;
		for (i = 0; i < 2; i++) {
			struct proxy_chunk *h = c->dir[i].head;

			if (h && h->due <= now && !c->dir[i].dst_blocked && !c->connecting) {
				proxy_conn_pump(p, c, now);
				break;
			}
		}
	}
	for (c = p->conns; c; c = c->next) {
		for (i = 0; i < 2; i++) {
			struct proxy_chunk *h = c->dir[i].head;

			if (h && h->due > now && (!next_due || h->due < next_due))
				next_due = h->due;
		}
	}
	if (next_due == p->timer_at)
		return 0;
	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = next_due / PROXY_NSEC;
	its.it_value.tv_nsec = next_due % PROXY_NSEC;
	if (timerfd_settime(p->tfd, TFD_TIMER_ABSTIME, &its, NULL))
		return -errno;
	p->timer_at = next_due;
	return 0;
}

static int proxy_setup(struct proxy *p, const struct proxy_opts *o)
{
	sigset_t mask;
	int err;

	memset(p, 0, sizeof(*p));
	p->opts = o;
	/*
	 * Chunks beyond the pool come and go at memory speed: keep freed heap
	 * for reuse rather than returning it to the kernel, or every chunk
	 * faults in fresh pages.
	 */
	mallopt(M_MMAP_THRESHOLD, 4 * PROXY_READ_SIZE);
	mallopt(M_TRIM_THRESHOLD, 2 * PROXY_DEFAULT_QUEUE_LIMIT);
	p->lfd = p->sfd = p->tfd = -1;
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (p->epfd < 0)
		return -errno;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	if (sigprocmask(SIG_BLOCK, &mask, NULL))
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	p->sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	p->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (p->sfd < 0 || p->tfd < 0)
		return -errno;
	err = proxy_epoll_add(p, p->sfd, proxy_key(PROXY_TAG_SIGNAL, NULL, 0), EPOLLIN);
	if (!err)
		err = proxy_epoll_add(p, p->tfd, proxy_key(PROXY_TAG_TIMER, NULL, 0), EPOLLIN);
	if (!err)
		err = proxy_listen(p);
	return err;
}

static void proxy_release(struct proxy *p)
{
	while (p->conns)
		proxy_conn_kill(p, p->conns);
	proxy_reap(p);
	if (p->lfd >= 0)
		close(p->lfd);
	if (p->sfd >= 0)
		close(p->sfd);
	if (p->tfd >= 0)
		close(p->tfd);
	if (p->epfd >= 0)
		close(p->epfd);
	free(p->spare);
	while (p->pool) {
		struct proxy_chunk *ch = p->pool;

		p->pool = ch->next;
		free(ch);
	}
}

/* The event loop; returns 0 on SIGTERM/SIGINT, -errno on a failure. */
static int proxy_run(struct proxy *p)
{
	struct epoll_event evs[64];
	int n, i, err;

	for (;;) {
		n = epoll_wait(p->epfd, evs, 64, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (i = 0; i < n; i++) {
			uint64_t key = evs[i].data.u64;
			uint64_t drain;

			if (key == proxy_key(PROXY_TAG_SIGNAL, NULL, 0))
				return 0;
			if (key == proxy_key(PROXY_TAG_LISTEN, NULL, 0)) {
				proxy_accept(p);
			} else if (key == proxy_key(PROXY_TAG_TIMER, NULL, 0)) {
				if (read(p->tfd, &drain, sizeof(drain)) < 0 && errno != EAGAIN)
					return -errno;
				p->timer_at = 0;
			} else {
				struct proxy_conn *c = (struct proxy_conn *)(uintptr_t)(key & ~(uint64_t)7);

				/* An earlier event of this batch may have closed it. */
				if (!c->dead)
					proxy_on_conn_event(p, c, (int)(key & 7), evs[i].events);
			}
		}
		err = proxy_tick(p);
		proxy_reap(p);
		if (err)
			return err;
	}
}

int main(int argc, char **argv)
{
	struct proxy_opts opts;
	struct proxy p;
	int rc, err;

	rc = proxy_parse_opts(argc, argv, &opts);
	if (rc)
		return rc;
	err = proxy_setup(&p, &opts);
	if (!err)
		err = proxy_run(&p);
	if (err)
		fprintf(stderr, "latency-proxy: stopped: %s\n", strerror(-err));
	proxy_release(&p);
	return err ? 1 : 0;
}
