/*
 * fs/forward.h: local port forwards over the mount's own SSH session.
 *
 * `-o forward=SPEC` (and a profile's `forward = SPEC` lines) make the VM's
 * HOST:REMOTEPORT reachable at 127.0.0.1:LOCALPORT while mounted; SPEC is
 * PORT (localhost:PORT on the VM, at the same local port) or
 * LOCALPORT:HOST:REMOTEPORT, HOST possibly a bracketed IPv6 address.
 *
 * A struct fwd holds the listening sockets and the forwarded connections.
 * The listeners are bound by fwd_new in the thread that creates the
 * connection, so that a taken port is reported at mount time; everything
 * after that (accepting, opening a direct-tcpip channel per connection,
 * moving bytes both ways) runs in the engine's I/O thread (fs/conn.c), which
 * alone touches the SSH session: it adds fwd_pollfds to its poll set and
 * calls fwd_service after every wake-up. Each connection has a bounded
 * buffer per direction: a slow reader on either side stops the reading of
 * the other (the SSH window does the rest), so memory stays bounded. EOF is
 * passed on in both directions; a connection ends when both directions have.
 *
 * Since the engine's options (struct remote_opts) carry no forwards, the
 * command line hands them over with fwd_preset, and the engine's connection
 * takes them with fwd_new(..., NULL specs). Functions return 0 or -errno.
 */
#ifndef WAKEFS_FORWARD_H
#define WAKEFS_FORWARD_H

#include <poll.h>
#include <stddef.h>

struct fwd;
struct ssh;

#define FWD_MAX 16		/* forwards per mount */
#define FWD_MAX_CONNS 64	/* connections at once; more wait in the listen backlog */

struct fwd_spec {
	int lport;		/* 127.0.0.1:lport on this machine */
	char host[256];		/* connected to from the VM */
	int rport;
};

/* Parse SPEC; on failure writes "bad forward 'x': ..." to @err. */
int fwd_parse(const char *spec, struct fwd_spec *out, char *err, size_t errlen);

/* Remember the forwards the next fwd_new(NULL) will open (copied; replaces earlier ones). */
void fwd_preset(const struct fwd_spec *specs, int n);

/*
 * Bind a listener per spec (@specs NULL: the preset ones, which are then
 * forgotten, so that only one connection serves them) on 127.0.0.1.
 * A port that cannot be bound is not fatal: a warning naming the port and
 * @label (the profile or host) goes to stderr and the other forwards work.
 * *out is NULL when there is nothing to forward. The caller owns *out.
 */
int fwd_new(struct fwd **out, const struct fwd_spec *specs, int n, const char *label);
/* Close every connection and listener. Accepts NULL. */
void fwd_free(struct fwd *f);

/* I/O thread only, below. */

/* The most pollfd entries fwd_pollfds fills. */
int fwd_max_fds(const struct fwd *f);
/* Fill @pfd with what the forwards wait for; returns the count. */
int fwd_pollfds(const struct fwd *f, struct pollfd *pfd, int max);
/*
 * Accept new connections and move what can be moved without blocking, on
 * session @s; *moved grows by the bytes moved. Errors of one connection end
 * that connection only.
 */
void fwd_service(struct fwd *f, struct ssh *s, size_t *moved);
/* 1 if a connection could read data libssh2 already holds for its channel. */
int fwd_pending(const struct fwd *f);
/*
 * The session is gone (call before freeing it): every forwarded connection
 * is reset; the listeners stay, and connections accepted later use the next
 * session.
 */
void fwd_lost(struct fwd *f);

#endif
