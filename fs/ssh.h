/*
 * fs/ssh.h: one SSH session over TCP (libssh2 hidden behind it).
 *
 * ssh_connect dials, checks the host key against an OpenSSH known_hosts file,
 * authenticates and returns a session in blocking mode. Once set non-blocking
 * (ssh_set_blocking), a session and its channels belong to one thread: every
 * call may return -EAGAIN, and ssh_poll_events says what to wait for on
 * ssh_fd before calling again. All functions return 0 (or a byte count) or a
 * negative errno. The caller owns what ssh_connect and ssh_chan_new return
 * and frees it with ssh_free / ssh_chan_free (both accept NULL); channels must
 * be freed before their session.
 *
 * Operations of different channels may be interleaved freely: when one has a
 * packet half-sent, the others return -EAGAIN until it has been called again
 * and finished (libssh2 keeps one outgoing packet per session), so an owner
 * must call an operation that returned -EAGAIN again before giving up on it.
 */
#ifndef WAKEFS_SSH_H
#define WAKEFS_SSH_H

#include <stddef.h>
#include <sys/types.h>

struct ssh;
struct ssh_chan;

#define SSH_MAX_IDENTITIES 8

struct ssh_params {
	const char *name;		/* what the user called the host, for messages */
	const char *host;		/* address or DNS name to dial */
	int port;
	const char *user;
	const char *identities[SSH_MAX_IDENTITIES];	/* key files tried in order after the agent */
	int nidentities;
	int use_agent;
	const char *known_hosts;	/* OpenSSH known_hosts file */
	const char *host_key_alias;	/* NULL: look up [host]:port (host when port 22) */
	int accept_new_hostkey;
	int connect_timeout_ms;
	int keepalive_s;
};

/* Connect and authenticate; on failure writes a user-facing message to @err. */
int ssh_connect(struct ssh **out, const struct ssh_params *p, char *err, size_t errlen);
void ssh_free(struct ssh *s);
/* Give back the packet buffers kept for reuse (call when the link is idle). */
void ssh_trim(struct ssh *s);

int ssh_fd(const struct ssh *s);
void ssh_set_blocking(struct ssh *s, int blocking);
/* POLLIN, plus POLLOUT while the session has output waiting to be sent. */
short ssh_poll_events(struct ssh *s);
/* Send a keepalive when due; *next_s is set to the seconds until the next one. */
int ssh_keepalive(struct ssh *s, int *next_s);

/*
 * A session channel running the @subsystem (non-NULL) or the command @cmd.
 * ssh_chan_new allocates it without I/O; ssh_chan_start makes progress until
 * it returns 0 (open, request accepted) or an error other than -EAGAIN.
 */
int ssh_chan_new(struct ssh *s, const char *subsystem, const char *cmd, struct ssh_chan **out);
/*
 * A direct-tcpip channel (a port forward): the server connects to
 * @host:@port on its side; @from_port is the local client's port, for the
 * server's logs. Started with ssh_chan_start like the others, which returns
 * -ECONNREFUSED when the server refuses (nothing listens there, or
 * forwarding is disabled).
 */
int ssh_chan_new_tcpip(struct ssh *s, const char *host, int port, int from_port,
		       struct ssh_chan **out);
int ssh_chan_start(struct ssh_chan *c);
/* Read stdout (@ext 0) or stderr (@ext 1); 0 means nothing now or end of file. */
ssize_t ssh_chan_read(struct ssh_chan *c, int ext, void *buf, size_t len);
ssize_t ssh_chan_write(struct ssh_chan *c, const void *buf, size_t len);
/* 1 once the server sent EOF (or closed) and everything before it was read. */
int ssh_chan_eof(struct ssh_chan *c);
/*
 * 1 if data for @c already sits in libssh2's buffers (read from the socket
 * by a call on another channel), so poll(2) on the socket would not show it.
 */
int ssh_chan_pending(struct ssh_chan *c);
/* Tell the server we send no more (may return -EAGAIN; call again). */
int ssh_chan_send_eof(struct ssh_chan *c);
int ssh_chan_exit_status(struct ssh_chan *c);
/*
 * Close politely (may return -EAGAIN; call again), then free with
 * ssh_chan_free. An operation of @c left half-sent is finished first (a
 * read's data is dropped), so a channel can be given up at any point.
 */
int ssh_chan_close(struct ssh_chan *c);
void ssh_chan_free(struct ssh_chan *c);

/* "SHA256:..." (OpenSSH's form) of a key blob, into @out (at least 64 bytes). */
void ssh_fingerprint(const unsigned char *blob, size_t len, char *out, size_t outlen);

#endif
