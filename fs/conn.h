/*
 * fs/conn.h: the SFTP request multiplexer over one SSH session.
 *
 * A struct conn owns one I/O thread, which alone touches the SSH session:
 * it sends queued request packets, matches replies to requests by id, runs
 * exec channels, sends keepalives and, when the transport is lost,
 * reconnects with backoff (1 s, 2 s, 4 s .. 30 s). Any thread may submit;
 * the submitter waits for its own reply (per-request condition), at most
 * the request timeout, so many requests are in flight at once.
 *
 * On a reconnect, requests marked CONN_IDEMPOTENT are sent again on the new
 * session; others that were in flight fail with -EIO, and so do requests
 * tied to handles of an older session (their @gen differs).
 */
#ifndef WAKEFS_CONN_H
#define WAKEFS_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "sftp.h"
#include "ssh.h"

struct conn;
struct conn_req;

enum conn_flags {
	CONN_IDEMPOTENT = 1 << 0,	/* safe to send again after a reconnect */
	CONN_DETACHED = 1 << 1,		/* sent even when abandoned before (conn_send_detached) */
};

/* Redial hook: may rewrite the host and port before every reconnect (0 or -errno). */
typedef int (*conn_redial_fn)(void *payload, char *host, size_t hostlen, int *port);

/*
 * Connect (in the calling thread, so errors reach the caller's @err), start
 * SFTP and the I/O thread. @sp's strings are copied. The caller owns *out.
 */
int conn_new(struct conn **out, const struct ssh_params *sp, int request_timeout_ms, char *err,
	     size_t errlen);
/* Stops the I/O thread; requests still waiting fail with -EIO first. Accepts NULL. */
void conn_free(struct conn *c);
void conn_set_redial(struct conn *c, conn_redial_fn fn, void *payload);

/* A fresh request id, for the encoder. */
uint32_t conn_next_id(struct conn *c);
/* The session generation: handles opened now belong to it. */
unsigned int conn_gen(struct conn *c);
unsigned int conn_extensions(struct conn *c);	/* enum sftp_ext */
/* The largest READ and WRITE payload to use per request. */
size_t conn_max_read(struct conn *c);
size_t conn_max_write(struct conn *c);
int conn_connected(struct conn *c);

/*
 * Queue the packet in @b (holding one request with id @id); the conn takes
 * the buffer's memory (@b is reset). @gen: 0, or the generation the request's
 * handle belongs to. On success *out must be passed to conn_wait or
 * conn_abandon exactly once.
 */
int conn_submit(struct conn *c, struct sftp_buf *b, uint32_t id, unsigned int flags,
		unsigned int gen, struct conn_req **out);
/*
 * Wait for the reply to @q and consume @q. Returns 0 with the reply body in
 * *reply (the caller frees it), or -EIO (timeout, transport lost, bad reply
 * stream) or -ENOMEM.
 */
int conn_wait(struct conn *c, struct conn_req *q, unsigned char **reply, size_t *len);
/* conn_wait, also telling which session generation the reply came from. */
int conn_wait_gen(struct conn *c, struct conn_req *q, unsigned char **reply, size_t *len,
		  unsigned int *gen);
/*
 * Free a reply from conn_wait (@len: its length): the buffers of large
 * replies go back to a pool for the next ones. free() is fine too.
 */
void conn_reply_free(struct conn *c, unsigned char *reply, size_t len);
/*
 * Queue a request whose reply nobody waits for (closing a directory handle):
 * it is sent, and its reply dropped. Returns 0 or -ENOMEM.
 */
int conn_send_detached(struct conn *c, struct sftp_buf *b, uint32_t id, unsigned int gen);
/* Give up on @q without waiting (a read-ahead nobody wants): consumes @q. */
void conn_abandon(struct conn *c, struct conn_req *q);
/* conn_submit + conn_wait. */
int conn_call(struct conn *c, struct sftp_buf *b, uint32_t id, unsigned int flags,
	      unsigned int gen, unsigned char **reply, size_t *len);

/* Run @cmd in an exec channel; see remote_exec. */
int conn_exec(struct conn *c, const char *cmd, size_t max, int timeout_ms, char **out,
	      size_t *outlen, int *status);

#endif
