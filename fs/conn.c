/*
 * fs/conn.c: the I/O thread that owns the SSH session, and the request queue
 * in front of it.
 *
 * Submitters append to c->subq under c->lock and kick an eventfd. The I/O
 * thread loops: splice the submissions onto its private send queue, write
 * as much as the channel takes, read every reply that has arrived (framing
 * by length, matching by id through a private hash), step the exec channels,
 * send keepalives, then poll(2) on the socket and the eventfd. A request is
 * completed under c->lock: its submitter, waiting on the request's own
 * condition with a deadline, takes the reply and frees the request; if the
 * submitter gave up first (abandoned), the I/O thread frees it instead. So a
 * request is freed by exactly one side, and a late reply never touches a
 * caller's memory.
 *
 * Port forwards (fs/forward.h) are served by the same loop: their listening
 * and client sockets join the poll set, and each round accepts and moves
 * their bytes; a lost session resets their connections, the listeners stay.
 *
 * Lock order: c->lock is a leaf; no libssh2 call is made while holding it.
 *
 * Request life: SUBMITTED -> SENDING [conn_send] -> IN FLIGHT [conn_send]
 * -> DONE [conn_complete]; on transport loss IN FLIGHT -> SENDING for
 * idempotent requests on a live stream, else -> DONE(-EIO) [conn_lost].
 */
#include "conn.h"
#include "forward.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define CONN_HASH 1024
#define CONN_BACKOFF_MAX_MS 30000
/*
 * Replies are read in two ways. Bytes are first read into a small staging
 * buffer (c->in, CONN_STAGE bytes), and the whole packets found there are
 * copied out; a packet that does not fit gets its own buffer, which takes
 * the bytes staged so far, and the rest of the packet is read from libssh2
 * straight into it (c->big). So a READ reply of 256 KiB is copied once, by
 * libssh2, instead of into the staging buffer, out of it again and, for its
 * tail, to the buffer's front.
 */
#define CONN_STAGE 16384
/*
 * Buffers for replies of CONN_POOL_MIN..CONN_POOL_CAP bytes (READ replies:
 * max_read is at most 256 KiB) are allocated CONN_POOL_CAP big and recycled
 * through a small pool (conn_reply_free): a read streaming at 100 MB/s
 * would otherwise have malloc hand back freshly mapped memory, and the
 * kernel fault it in page by page, for every reply. The pool is emptied
 * after a second without traffic.
 */
#define CONN_POOL_MIN (64u * 1024)
#define CONN_POOL_CAP (256u * 1024 + 1024)
#define CONN_POOL_MAX 40

struct conn_req {
	struct conn_req *next;	/* subq or sendq link */
	struct conn_req *hnext;	/* in-flight hash chain (I/O thread only) */
	uint32_t id;
	unsigned int flags, gen;
	unsigned char *pkt;	/* I/O thread only once submitted */
	size_t len, sent;
	/* Protected by conn.lock: */
	int done, err, abandoned;
	unsigned char *reply;
	size_t replylen;
	unsigned int reply_gen;	/* the session the reply came from */
	pthread_cond_t cond;
};

enum conn_exec_state { EXEC_NEW, EXEC_START, EXEC_READ, EXEC_CLOSE };

struct conn_exec {
	struct conn_exec *next;
	char *cmd;
	size_t max;
	/* I/O thread only: */
	enum conn_exec_state state;
	struct ssh_chan *chan;
	char *buf;
	size_t len;
	/* Protected by conn.lock: */
	int done, err, abandoned, status;
	pthread_cond_t cond;
};

struct conn {
	struct ssh_params sp;	/* strings below are owned copies */
	char *own[6 + SSH_MAX_IDENTITIES];
	int request_timeout_ms;
	int wakefd;
	pthread_t thread;
	pthread_condattr_t condattr;
	atomic_uint next_id;

	pthread_mutex_t lock;	/* a leaf lock; protects the fields down to the marker */
	struct conn_req *subq, **subq_tail;
	struct conn_exec *execq;	/* new exec jobs */
	struct conn_exec *execs;	/* jobs the I/O thread runs (it alone walks them) */
	int stop, connected;
	unsigned int gen, exts;
	size_t max_read, max_write;
	conn_redial_fn redial;
	void *redial_payload;
	unsigned char *pool[CONN_POOL_MAX];	/* spare reply buffers, CONN_POOL_CAP bytes */
	int npool;
	/* --- I/O thread only below --- */
	struct ssh *ssh;
	struct ssh_chan *sftp;
	struct conn_req *sendq, *sendq_tail;
	struct conn_req *hash[CONN_HASH];
	unsigned char *in;	/* CONN_STAGE bytes */
	size_t inlen;
	unsigned char *big;	/* the packet being read straight into its buffer */
	size_t big_len, big_have;
	int backoff_ms;
	int wait_first;		/* sleep the backoff before the next dial */
	struct fwd *fwd;	/* port forwards; NULL: none */
};

static long conn_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

__attribute__((format(printf, 1, 2))) static void conn_log(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "wakefs: %s\n", msg);
}

static void conn_wake(struct conn *c)
{
	uint64_t one = 1;
	ssize_t n = write(c->wakefd, &one, sizeof(one));

	(void)n;
}

/* --- reply buffers ------------------------------------------------------------ */

static int conn_poolable(size_t len)
{
	return len >= CONN_POOL_MIN && len <= CONN_POOL_CAP;
}

/* A buffer for a reply of @len bytes (NULL: out of memory). */
static unsigned char *conn_buf_get(struct conn *c, size_t len)
{
	unsigned char *p = NULL;

	if (!conn_poolable(len))
		return malloc(len);
	pthread_mutex_lock(&c->lock);
	if (c->npool)
		p = c->pool[--c->npool];
	pthread_mutex_unlock(&c->lock);
	return p ? p : malloc(CONN_POOL_CAP);
}

void conn_reply_free(struct conn *c, unsigned char *reply, size_t len)
{
	if (reply && conn_poolable(len)) {
		pthread_mutex_lock(&c->lock);
		if (c->npool < CONN_POOL_MAX) {
			c->pool[c->npool++] = reply;
			reply = NULL;
		}
		pthread_mutex_unlock(&c->lock);
	}
	free(reply);
}

static void conn_pool_drain(struct conn *c)
{
	unsigned char *spare[CONN_POOL_MAX];
	int n, i;

	pthread_mutex_lock(&c->lock);
	n = c->npool;
	memcpy(spare, c->pool, (size_t)n * sizeof(spare[0]));
	c->npool = 0;
	pthread_mutex_unlock(&c->lock);
	for (i = 0; i < n; i++)
		free(spare[i]);
}

/* --- completing requests (I/O thread) -------------------------------------- */

static void conn_req_free(struct conn_req *q)
{
	if (!q)
		return;
	free(q->pkt);
	free(q->reply);
	pthread_cond_destroy(&q->cond);
	free(q);
}

/* Hand @q its result; the caller of this function must not touch @q after. */
static void conn_complete(struct conn *c, struct conn_req *q, int err, unsigned char *reply,
			  size_t len)
{
	pthread_mutex_lock(&c->lock);
	if (q->abandoned) {
		pthread_mutex_unlock(&c->lock);
		conn_reply_free(c, reply, len);
		conn_req_free(q);
		return;
	}
	q->done = 1;
	q->err = err;
	q->reply = reply;
	q->replylen = len;
	q->reply_gen = c->gen;
	free(q->pkt);
	q->pkt = NULL;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&c->lock);
}

static void conn_hash_add(struct conn *c, struct conn_req *q)
{
	struct conn_req **b = &c->hash[q->id % CONN_HASH];

	q->hnext = *b;
	*b = q;
}

static struct conn_req *conn_hash_take(struct conn *c, uint32_t id)
{
	struct conn_req **p;
	struct conn_req *q;

	for (p = &c->hash[id % CONN_HASH]; *p; p = &(*p)->hnext) {
		if ((*p)->id == id) {
			q = *p;
			*p = q->hnext;
			q->hnext = NULL;
			return q;
		}
	}
	return NULL;
}

static void conn_sendq_push_front(struct conn *c, struct conn_req *q)
{
	q->next = c->sendq;
	c->sendq = q;
	if (!c->sendq_tail)
		c->sendq_tail = q;
}

static struct conn_req *conn_sendq_pop(struct conn *c)
{
	struct conn_req *q = c->sendq;

	if (q) {
		c->sendq = q->next;
		if (!c->sendq)
			c->sendq_tail = NULL;
		q->next = NULL;
	}
	return q;
}

/* Move new submissions and exec jobs to the I/O thread's lists; returns stop. */
static int conn_take_submissions(struct conn *c)
{
	struct conn_req *q;
	struct conn_exec *e;
	int stop;

	pthread_mutex_lock(&c->lock);
	q = c->subq;
	c->subq = NULL;
	c->subq_tail = &c->subq;
	while ((e = c->execq)) {
		c->execq = e->next;
		e->next = c->execs;
		c->execs = e;
	}
	stop = c->stop;
	pthread_mutex_unlock(&c->lock);
	if (q) {
		if (c->sendq_tail)
			c->sendq_tail->next = q;
		else
			c->sendq = q;
		while (q->next)
			q = q->next;
		c->sendq_tail = q;
	}
	return stop;
}

/* --- exec jobs -------------------------------------------------------------- */

static void conn_exec_free(struct conn_exec *e)
{
	if (!e)
		return;
	ssh_chan_free(e->chan);
	free(e->cmd);
	free(e->buf);
	pthread_cond_destroy(&e->cond);
	free(e);
}

/* Finish @e, which is on no list any more. */
static void conn_exec_complete(struct conn *c, struct conn_exec *e, int err)
{
	ssh_chan_free(e->chan);
	e->chan = NULL;
	pthread_mutex_lock(&c->lock);
	if (e->abandoned) {
		pthread_mutex_unlock(&c->lock);
		conn_exec_free(e);
		return;
	}
	e->done = 1;
	e->err = err;
	pthread_cond_signal(&e->cond);
	pthread_mutex_unlock(&c->lock);
}

/* One step of @e; returns 1 when it finished, with its result in *res. */
static int conn_exec_step(struct conn *c, struct conn_exec *e, int *res)
{
	char tmp[16384];
	ssize_t n;
	int rc, abandoned;

	pthread_mutex_lock(&c->lock);
	abandoned = e->abandoned;
	pthread_mutex_unlock(&c->lock);
	if (abandoned && e->state != EXEC_CLOSE) {
		if (!e->chan) {
			*res = -EIO;
			return 1;
		}
		e->state = EXEC_CLOSE;
	}
	switch (e->state) {
	case EXEC_NEW:
		rc = ssh_chan_new(c->ssh, NULL, e->cmd, &e->chan);
		if (rc)
			goto fail;
		e->state = EXEC_START;
		/* fall through */
	case EXEC_START:
		rc = ssh_chan_start(e->chan);
		if (rc == -EAGAIN)
			return 0;
		if (rc)
			goto fail;
		e->state = EXEC_READ;
		/* fall through */
	case EXEC_READ:
		for (;;) {
			n = ssh_chan_read(e->chan, 0, tmp, sizeof(tmp));
			if (n == -EAGAIN || n == 0)
				break;
			if (n < 0) {
				rc = (int)n;
				goto fail;
			}
			if (e->len < e->max) {
				size_t k = (size_t)n < e->max - e->len ? (size_t)n : e->max - e->len;
				memcpy(e->buf + e->len, tmp, k);
				e->len += k;
			}
		}
		while (ssh_chan_read(e->chan, 1, tmp, sizeof(tmp)) > 0)
			;	/* stderr is not returned; drain it so the window stays open */
		if (!ssh_chan_eof(e->chan))
			return 0;
		e->state = EXEC_CLOSE;
		/* fall through */
	case EXEC_CLOSE:
		rc = ssh_chan_close(e->chan);
		if (rc == -EAGAIN)
			return 0;
		e->buf[e->len] = '\0';
		pthread_mutex_lock(&c->lock);
		e->status = ssh_chan_exit_status(e->chan);
		pthread_mutex_unlock(&c->lock);
		*res = 0;
		return 1;
	}
	return 0;
fail:
	*res = rc == -EAGAIN ? -EIO : rc;
	return 1;
}

/* Step every exec job; c->execs is only changed by the I/O thread. */
static void conn_exec_all(struct conn *c)
{
	struct conn_exec **p = &c->execs, *e;
	int res;

	while ((e = *p)) {
		if (conn_exec_step(c, e, &res)) {
			*p = e->next;
			conn_exec_complete(c, e, res);
		} else {
			p = &e->next;
		}
	}
}

/*
 * Is there data libssh2 has already taken off the socket for a channel we
 * read? Then the loop must not sleep in poll(2): the socket shows nothing.
 */
static int conn_pending(struct conn *c)
{
	const struct conn_exec *e;

	if (ssh_chan_pending(c->sftp))
		return 1;
	for (e = c->execs; e; e = e->next)
		if (e->state == EXEC_READ && ssh_chan_pending(e->chan))
			return 1;
	return fwd_pending(c->fwd);
}

/* --- the SFTP stream -------------------------------------------------------- */

/* Write queued requests until the channel takes no more; *moved counts bytes. */
static int conn_send(struct conn *c, size_t *moved)
{
	struct conn_req *q;
	ssize_t n;
	int skip;

	while ((q = c->sendq)) {
		if (q->sent == 0) {
			pthread_mutex_lock(&c->lock);
			skip = (q->abandoned && !(q->flags & CONN_DETACHED)) ? 1
			       : (q->gen && q->gen != c->gen) ? 2 : 0;
			pthread_mutex_unlock(&c->lock);
			if (skip) {
				conn_sendq_pop(c);
				conn_complete(c, q, -EIO, NULL, 0);
				continue;
			}
		}
		n = ssh_chan_write(c->sftp, q->pkt + q->sent, q->len - q->sent);
		if (n == -EAGAIN || n == 0)
			return 0;
		if (n < 0)
			return (int)n;
		q->sent += (size_t)n;
		*moved += (size_t)n;
		if (q->sent == q->len) {
			conn_sendq_pop(c);
			conn_hash_add(c, q);
		}
	}
	return 0;
}

/* Hand the reply packet @p (owned, from conn_buf_get) to its request. */
static int conn_dispatch(struct conn *c, unsigned char *p, size_t len)
{
	struct conn_req *q;
	uint8_t type;
	uint32_t id;

	if (sftp_dec_header(p, len, &type, &id)) {
		conn_reply_free(c, p, len);
		return -EPROTO;
	}
	q = conn_hash_take(c, id);
	if (!q) {
		conn_log("ignoring an SFTP reply with unknown id %u from '%s'", id, c->sp.name);
		conn_reply_free(c, p, len);
		return 0;
	}
	conn_complete(c, q, 0, p, len);
	return 0;
}

/* Read the rest of the packet in c->big; a whole one is dispatched. */
static ssize_t conn_recv_big(struct conn *c)
{
	unsigned char *p;
	ssize_t n;
	int rc;

	n = ssh_chan_read(c->sftp, 0, c->big + c->big_have, c->big_len - c->big_have);
	if (n <= 0)
		return n;
	c->big_have += (size_t)n;
	if (c->big_have == c->big_len) {
		p = c->big;
		c->big = NULL;
		rc = conn_dispatch(c, p, c->big_len);
		if (rc)
			return rc;
	}
	return n;
}

/*
 * Dispatch the whole packets staged in c->in; a partial one whose length is
 * known moves to its own buffer (c->big), which the next reads fill.
 */
static int conn_recv_staged(struct conn *c)
{
	unsigned char *p;
	size_t off = 0, have;
	uint32_t plen = 0;
	int rc;

	while ((rc = sftp_packet_len(c->in + off, c->inlen - off, &plen)) == 1) {
		p = conn_buf_get(c, plen);
		if (!p)
			return -ENOMEM;	/* the stream cannot be resumed mid-packet */
		memcpy(p, c->in + off + 4, plen);
		rc = conn_dispatch(c, p, plen);
		if (rc)
			return rc;
		off += 4 + plen;
	}
	if (rc < 0) {
		conn_log("bad SFTP packet length from '%s'", c->sp.name);
		return rc;
	}
	have = c->inlen - off;
	if (have >= 4) {
		c->big = conn_buf_get(c, plen);
		if (!c->big)
			return -ENOMEM;
		c->big_len = plen;
		c->big_have = have - 4;
		memcpy(c->big, c->in + off + 4, c->big_have);
		have = 0;
	}
	memmove(c->in, c->in + off, have);
	c->inlen = have;
	return 0;
}

/* Read and dispatch every reply that has arrived; *moved counts bytes. */
static int conn_recv(struct conn *c, size_t *moved)
{
	char junk[4096];
	ssize_t n;
	int rc, big;

	for (;;) {
		big = c->big != NULL;
		if (big)
			n = conn_recv_big(c);
		else
			n = ssh_chan_read(c->sftp, 0, c->in + c->inlen, CONN_STAGE - c->inlen);
		if (n == -EAGAIN)
			break;
		if (n < 0)
			return (int)n;
		if (n == 0) {
			if (ssh_chan_eof(c->sftp))
				return -ECONNRESET;
			break;
		}
		*moved += (size_t)n;
		if (big)
			continue;
		c->inlen += (size_t)n;
		rc = conn_recv_staged(c);
		if (rc)
			return rc;
	}
	while (ssh_chan_read(c->sftp, 1, junk, sizeof(junk)) > 0)
		;	/* the server's stderr */
	return 0;
}

/* --- connecting ------------------------------------------------------------- */

static int conn_chan_write_all(struct ssh_chan *ch, const unsigned char *p, size_t len)
{
	ssize_t n;

	while (len) {
		n = ssh_chan_write(ch, p, len);
		if (n <= 0)
			return n < 0 ? (int)n : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int conn_chan_read_all(struct ssh_chan *ch, unsigned char *p, size_t len)
{
	ssize_t n;

	while (len) {
		n = ssh_chan_read(ch, 0, p, len);
		if (n <= 0)
			return n < 0 ? (int)n : -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Blocking: read one whole packet body into a malloc'd buffer. */
static int conn_read_packet(struct ssh_chan *ch, unsigned char **out, size_t *len)
{
	unsigned char hdr[4];
	uint32_t n;
	int rc;

	*out = NULL;
	rc = conn_chan_read_all(ch, hdr, 4);
	if (rc)
		return rc;
	if (sftp_packet_len(hdr, 4, &n) < 0)
		return -EPROTO;
	*out = malloc(n);
	if (!*out)
		return -ENOMEM;
	rc = conn_chan_read_all(ch, *out, n);
	if (rc) {
		free(*out);
		*out = NULL;
		return rc;
	}
	*len = n;
	return 0;
}

/* Start SFTP on a fresh session (blocking mode): INIT/VERSION, then limits. */
static int conn_sftp_start(struct conn *c, struct ssh *s, struct ssh_chan **out, unsigned int *exts,
			   size_t *max_read, size_t *max_write, char *err, size_t errlen)
{
	struct sftp_buf b;
	struct sftp_limits lim;
	struct ssh_chan *ch = NULL;
	unsigned char *p = NULL;
	size_t len;
	uint32_t version;
	int rc;

	sftp_buf_init(&b);
	*max_read = *max_write = 32768;
	rc = ssh_chan_new(s, "sftp", NULL, &ch);
	if (!rc)
		rc = ssh_chan_start(ch);
	if (rc) {
		snprintf(err, errlen, "cannot start the sftp subsystem on '%s' (is sftp-server installed?)",
			 c->sp.name);
		goto out;
	}
	rc = sftp_enc_init(&b, 3);
	if (!rc)
		rc = conn_chan_write_all(ch, b.data, b.len);
	if (!rc)
		rc = conn_read_packet(ch, &p, &len);
	if (!rc)
		rc = sftp_dec_version(p, len, &version, exts);
	if (!rc && version < 3)
		rc = -EPROTO;
	if (rc) {
		snprintf(err, errlen, "cannot start SFTP with '%s': %s", c->sp.name,
			 rc == -EPROTO ? "bad VERSION reply" : strerror(-rc));
		goto out;
	}
	if (*exts & SFTP_EXT_LIMITS) {
		free(p);
		p = NULL;
		sftp_buf_release(&b);
		rc = sftp_enc_limits(&b, 0);
		if (!rc)
			rc = conn_chan_write_all(ch, b.data, b.len);
		if (!rc)
			rc = conn_read_packet(ch, &p, &len);
		if (!rc && sftp_dec_limits(p, len, &lim) == 0) {
			if (lim.max_read)
				*max_read = lim.max_read < 256 * 1024 ? lim.max_read : 256 * 1024;
			if (lim.max_write)
				*max_write = lim.max_write < 256 * 1024 ? lim.max_write : 256 * 1024;
			if (*max_read < 1024 || *max_write < 1024)
				*max_read = *max_write = 32768;
		}
		if (rc) {
			snprintf(err, errlen, "cannot start SFTP with '%s': %s", c->sp.name,
				 strerror(-rc));
			goto out;
		}
	}
	*out = ch;
	ch = NULL;
out:
	free(p);
	sftp_buf_release(&b);
	ssh_chan_free(ch);
	return rc;
}

/* Dial, authenticate and start SFTP; on success the session is the conn's. */
static int conn_dial(struct conn *c, char *err, size_t errlen)
{
	struct ssh_params p = c->sp;
	struct ssh *s = NULL;
	struct ssh_chan *ch = NULL;
	char host[256];
	conn_redial_fn redial;
	void *payload;
	size_t mr, mw;
	unsigned int exts = 0;
	int port = c->sp.port, rc;

	snprintf(host, sizeof(host), "%s", c->sp.host);
	pthread_mutex_lock(&c->lock);
	redial = c->redial;
	payload = c->redial_payload;
	pthread_mutex_unlock(&c->lock);
	if (redial) {
		rc = redial(payload, host, sizeof(host), &port);
		if (rc) {
			snprintf(err, errlen, "cannot wake or find '%s': %s", c->sp.name, strerror(-rc));
			return rc;
		}
	}
	p.host = host;
	p.port = port;
	rc = ssh_connect(&s, &p, err, errlen);
	if (rc)
		return rc;
	rc = conn_sftp_start(c, s, &ch, &exts, &mr, &mw, err, errlen);
	if (rc) {
		ssh_free(s);
		return rc;
	}
	ssh_set_blocking(s, 0);
	c->ssh = s;
	c->sftp = ch;
	c->inlen = 0;
	pthread_mutex_lock(&c->lock);
	c->gen++;
	c->connected = 1;
	c->exts = exts;
	c->max_read = mr;
	c->max_write = mw;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/*
 * The transport is gone (or the stream is corrupt, @proto): drop the
 * session; requests in flight are sent again if idempotent and the stream
 * was merely cut, else they fail. Queued requests wait for the next session.
 */
static void conn_lost(struct conn *c, int proto)
{
	struct conn_req *q, *requeue = NULL;
	struct conn_exec *e;
	int i;

	pthread_mutex_lock(&c->lock);
	c->connected = 0;
	e = c->execs;
	c->execs = NULL;
	pthread_mutex_unlock(&c->lock);
	while (e) {
		struct conn_exec *next = e->next;

		conn_exec_complete(c, e, -EIO);
		e = next;
	}
	if (c->sendq && c->sendq->sent) {
		q = conn_sendq_pop(c);
		q->hnext = NULL;
		conn_hash_add(c, q);	/* treated like the ones in flight */
	}
	for (i = 0; i < CONN_HASH; i++) {
		while ((q = c->hash[i])) {
			c->hash[i] = q->hnext;
			q->hnext = NULL;
			if ((q->flags & CONN_IDEMPOTENT) && !proto) {
				q->sent = 0;
				q->next = requeue;
				requeue = q;
			} else {
				conn_complete(c, q, -EIO, NULL, 0);
			}
		}
	}
	while ((q = requeue)) {
		requeue = q->next;
		conn_sendq_push_front(c, q);
	}
	fwd_lost(c->fwd);	/* its channels go before the session */
	ssh_chan_free(c->sftp);
	c->sftp = NULL;
	ssh_free(c->ssh);
	c->ssh = NULL;
	c->inlen = 0;
	conn_reply_free(c, c->big, c->big_len);
	c->big = NULL;
}

/* Wait up to @ms for a wake-up; returns 1 if we are stopping. */
static int conn_sleep(struct conn *c, int ms)
{
	struct pollfd pfd = { .fd = c->wakefd, .events = POLLIN };
	uint64_t v;
	ssize_t n;
	int stop;

	if (poll(&pfd, 1, ms) > 0)
		n = read(c->wakefd, &v, sizeof(v));
	(void)n;
	pthread_mutex_lock(&c->lock);
	stop = c->stop;
	pthread_mutex_unlock(&c->lock);
	return stop;
}

static void conn_reconnect(struct conn *c)
{
	char err[512];
	long until;
	int rc;

	if (c->wait_first) {
		/* The server spoke garbage: redialling at once would only hear it again. */
		c->wait_first = 0;
		until = conn_now_ms() + c->backoff_ms;
		while (conn_now_ms() < until) {
			if (conn_sleep(c, (int)(until - conn_now_ms())))
				return;
			conn_take_submissions(c);
		}
	}
	rc = conn_dial(c, err, sizeof(err));
	if (rc == 0) {
		conn_log("reconnected to '%s'", c->sp.name);
		c->backoff_ms = 1000;
		return;
	}
	conn_log("%s (retrying in %d s)", err, c->backoff_ms / 1000);
	/* Sleep the backoff, but keep failing requests whose handles are stale. */
	until = conn_now_ms() + c->backoff_ms;
	while (conn_now_ms() < until) {
		if (conn_sleep(c, (int)(until - conn_now_ms())))
			return;
		conn_take_submissions(c);
	}
	c->backoff_ms = c->backoff_ms * 2 > CONN_BACKOFF_MAX_MS ? CONN_BACKOFF_MAX_MS
							       : c->backoff_ms * 2;
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct pollfd pfd[2 + FWD_MAX + FWD_MAX_CONNS];
	struct conn_req *q;
	struct conn_exec *e;
	uint64_t v;
	ssize_t n;
	size_t moved;
	int rc, next_s, i, nfd;

	while (!conn_take_submissions(c)) {
		if (!c->ssh) {
			conn_reconnect(c);
			continue;
		}
		/*
		 * Reading may consume a window adjust that lets more be sent, and
		 * sending may consume replies: go round until neither moves a
		 * byte, and only then sleep in poll.
		 */
		moved = 0;
		rc = conn_send(c, &moved);
		if (!rc)
			rc = conn_recv(c, &moved);
		if (!rc)
			rc = conn_send(c, &moved);
		if (!rc)
			conn_exec_all(c);
		if (!rc)
			fwd_service(c->fwd, c->ssh, &moved);
		next_s = 1;
		if (!rc)
			rc = ssh_keepalive(c->ssh, &next_s);
		if (rc) {
			if (rc == -EPROTO)
				conn_log("dropping the connection to '%s': %s", c->sp.name,
					 "the SFTP server sent a malformed reply");
			else
				conn_log("lost the connection to '%s' (%s)", c->sp.name, strerror(-rc));
			conn_lost(c, rc == -EPROTO);
			c->wait_first = rc == -EPROTO;
			continue;
		}
		if (moved || conn_pending(c))
			continue;
		pfd[0].fd = c->wakefd;
		pfd[0].events = POLLIN;
		pfd[1].fd = ssh_fd(c->ssh);
		pfd[1].events = ssh_poll_events(c->ssh);
		pfd[0].revents = pfd[1].revents = 0;
		nfd = 2 + fwd_pollfds(c->fwd, pfd + 2, FWD_MAX + FWD_MAX_CONNS);
		rc = poll(pfd, (nfds_t)nfd, 1000);
		if (rc > 0 && (pfd[0].revents & POLLIN))
			n = read(c->wakefd, &v, sizeof(v));
		else if (rc == 0) {
			/* A second without traffic: give back the buffers kept for streaming. */
			conn_pool_drain(c);
			ssh_trim(c->ssh);
		}
	}
	(void)n;
	/* Stopping: fail everything still here. */
	if (c->ssh)
		conn_lost(c, 1);
	while ((q = conn_sendq_pop(c)))
		conn_complete(c, q, -EIO, NULL, 0);
	for (i = 0; i < CONN_HASH; i++)
		while ((q = c->hash[i])) {
			c->hash[i] = q->hnext;
			conn_complete(c, q, -EIO, NULL, 0);
		}
	pthread_mutex_lock(&c->lock);
	e = c->execs;
	c->execs = NULL;
	pthread_mutex_unlock(&c->lock);
	while (e) {
		struct conn_exec *next = e->next;

		conn_exec_complete(c, e, -EIO);
		e = next;
	}
	return NULL;
}

/* --- public ------------------------------------------------------------------ */

static const char *conn_own(struct conn *c, int slot, const char *s)
{
	if (!s)
		return NULL;
	c->own[slot] = strdup(s);
	return c->own[slot];
}

int conn_new(struct conn **out, const struct ssh_params *sp, int request_timeout_ms, char *err,
	     size_t errlen)
{
	struct conn *c;
	int rc, i;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->wakefd = -1;
	c->in = malloc(CONN_STAGE);
	c->sp = *sp;
	c->sp.name = conn_own(c, 0, sp->name);
	c->sp.host = conn_own(c, 1, sp->host);
	c->sp.user = conn_own(c, 2, sp->user);
	c->sp.known_hosts = conn_own(c, 3, sp->known_hosts);
	c->sp.host_key_alias = conn_own(c, 4, sp->host_key_alias);
	for (i = 0; i < sp->nidentities && i < SSH_MAX_IDENTITIES; i++)
		c->sp.identities[i] = conn_own(c, 6 + i, sp->identities[i]);
	c->request_timeout_ms = request_timeout_ms > 0 ? request_timeout_ms : 60000;
	c->backoff_ms = 1000;
	c->subq_tail = &c->subq;
	atomic_init(&c->next_id, 1);
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_init(&c->condattr);
	pthread_condattr_setclock(&c->condattr, CLOCK_MONOTONIC);
	c->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!c->in || !c->sp.name || !c->sp.host || !c->sp.user || !c->sp.known_hosts ||
	    c->wakefd < 0) {
		snprintf(err, errlen, "cannot set up the connection to '%s': out of memory",
			 sp->name ? sp->name : "?");
		rc = -ENOMEM;
		goto fail;
	}
	rc = conn_dial(c, err, errlen);
	if (rc)
		goto fail;
	/* The command line's forwards (fwd_preset); before the thread, which owns them after. */
	rc = fwd_new(&c->fwd, NULL, 0, sp->host_key_alias ? sp->host_key_alias : sp->name);
	if (rc) {
		snprintf(err, errlen, "cannot set up the port forwards: %s", strerror(-rc));
		goto fail;
	}
	rc = -pthread_create(&c->thread, NULL, conn_main, c);
	if (rc) {
		snprintf(err, errlen, "cannot start the I/O thread: %s", strerror(-rc));
		goto fail;
	}
	*out = c;
	return 0;
fail:
	ssh_chan_free(c->sftp);
	c->sftp = NULL;
	ssh_free(c->ssh);
	c->ssh = NULL;
	c->stop = 2;	/* no thread to join */
	conn_free(c);
	return rc;
}

void conn_free(struct conn *c)
{
	int i, joined;

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	joined = c->stop == 2;
	c->stop = 1;
	pthread_mutex_unlock(&c->lock);
	if (!joined) {
		conn_wake(c);
		pthread_join(c->thread, NULL);
	}
	fwd_free(c->fwd);
	if (c->wakefd >= 0)
		close(c->wakefd);
	free(c->in);
	free(c->big);
	conn_pool_drain(c);
	for (i = 0; i < (int)(sizeof(c->own) / sizeof(c->own[0])); i++)
		free(c->own[i]);
	pthread_condattr_destroy(&c->condattr);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void conn_set_redial(struct conn *c, conn_redial_fn fn, void *payload)
{
	pthread_mutex_lock(&c->lock);
	c->redial = fn;
	c->redial_payload = payload;
	pthread_mutex_unlock(&c->lock);
}

uint32_t conn_next_id(struct conn *c)
{
	uint32_t id = atomic_fetch_add(&c->next_id, 1);

	if (id == 0)	/* 0 is for the handshake's own requests */
		id = atomic_fetch_add(&c->next_id, 1);
	return id;
}

#define CONN_GETTER(type, name, field)          \
	type name(struct conn *c)               \
	{                                       \
		type v;                         \
		pthread_mutex_lock(&c->lock);   \
		v = c->field;                   \
		pthread_mutex_unlock(&c->lock); \
		return v;                       \
	}
CONN_GETTER(unsigned int, conn_gen, gen)
CONN_GETTER(unsigned int, conn_extensions, exts)
CONN_GETTER(size_t, conn_max_read, max_read)
CONN_GETTER(size_t, conn_max_write, max_write)
CONN_GETTER(int, conn_connected, connected)

int conn_submit(struct conn *c, struct sftp_buf *b, uint32_t id, unsigned int flags,
		unsigned int gen, struct conn_req **out)
{
	struct conn_req *q;

	*out = NULL;
	if (b->oom || !b->data) {
		sftp_buf_release(b);
		return -ENOMEM;
	}
	q = calloc(1, sizeof(*q));
	if (!q) {
		sftp_buf_release(b);
		return -ENOMEM;
	}
	q->id = id;
	q->flags = flags;
	q->gen = gen;
	q->pkt = b->data;
	q->len = b->len;
	sftp_buf_init(b);
	pthread_cond_init(&q->cond, &c->condattr);
	pthread_mutex_lock(&c->lock);
	*c->subq_tail = q;
	c->subq_tail = &q->next;
	pthread_mutex_unlock(&c->lock);
	conn_wake(c);
	*out = q;
	return 0;
}

static void conn_deadline(struct conn *c, int ms, struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

int conn_wait(struct conn *c, struct conn_req *q, unsigned char **reply, size_t *len)
{
	return conn_wait_gen(c, q, reply, len, NULL);
}

int conn_wait_gen(struct conn *c, struct conn_req *q, unsigned char **reply, size_t *len,
		  unsigned int *gen)
{
	struct timespec ts;
	int rc;

	*reply = NULL;
	*len = 0;
	conn_deadline(c, c->request_timeout_ms, &ts);
	pthread_mutex_lock(&c->lock);
	while (!q->done) {
		if (pthread_cond_timedwait(&q->cond, &c->lock, &ts) == ETIMEDOUT && !q->done) {
			q->abandoned = 1;	/* the I/O thread frees it */
			pthread_mutex_unlock(&c->lock);
			return -EIO;
		}
	}
	pthread_mutex_unlock(&c->lock);
	rc = q->err;
	if (!rc) {
		*reply = q->reply;
		*len = q->replylen;
		q->reply = NULL;
		if (gen)
			*gen = q->reply_gen;
	}
	conn_req_free(q);
	return rc;
}

void conn_abandon(struct conn *c, struct conn_req *q)
{
	int done;

	if (!q)
		return;
	pthread_mutex_lock(&c->lock);
	done = q->done;
	if (!done)
		q->abandoned = 1;	/* the I/O thread frees it */
	pthread_mutex_unlock(&c->lock);
	if (done)
		conn_req_free(q);
}

int conn_send_detached(struct conn *c, struct sftp_buf *b, uint32_t id, unsigned int gen)
{
	struct conn_req *q;
	int rc;

	rc = conn_submit(c, b, id, CONN_DETACHED, gen, &q);
	if (!rc)
		conn_abandon(c, q);
	return rc;
}

int conn_call(struct conn *c, struct sftp_buf *b, uint32_t id, unsigned int flags,
	      unsigned int gen, unsigned char **reply, size_t *len)
{
	struct conn_req *q;
	int rc;

	rc = conn_submit(c, b, id, flags, gen, &q);
	if (rc)
		return rc;
	return conn_wait(c, q, reply, len);
}

int conn_exec(struct conn *c, const char *cmd, size_t max, int timeout_ms, char **out,
	      size_t *outlen, int *status)
{
	struct conn_exec *e;
	struct timespec ts;
	int rc;

	*out = NULL;
	if (outlen)
		*outlen = 0;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->cmd = strdup(cmd);
	e->max = max;
	e->buf = malloc(max + 1);
	if (!e->cmd || !e->buf) {
		free(e->cmd);
		free(e->buf);
		free(e);
		return -ENOMEM;
	}
	pthread_cond_init(&e->cond, &c->condattr);
	conn_deadline(c, timeout_ms > 0 ? timeout_ms : c->request_timeout_ms, &ts);
	pthread_mutex_lock(&c->lock);
	e->next = c->execq;
	c->execq = e;
	pthread_mutex_unlock(&c->lock);
	conn_wake(c);
	pthread_mutex_lock(&c->lock);
	while (!e->done) {
		if (pthread_cond_timedwait(&e->cond, &c->lock, &ts) == ETIMEDOUT && !e->done) {
			e->abandoned = 1;
			pthread_mutex_unlock(&c->lock);
			conn_wake(c);
			return -ETIMEDOUT;
		}
	}
	pthread_mutex_unlock(&c->lock);
	rc = e->err;
	if (!rc) {
		*out = e->buf;
		if (outlen)
			*outlen = e->len;
		if (status)
			*status = e->status;
		e->buf = NULL;
	}
	conn_exec_free(e);
	return rc;
}
