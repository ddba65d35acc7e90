/*
 * fs/ssh.c: the only file that includes <libssh2.h>.
 *
 * ssh_connect dials every address getaddrinfo gives (IPv6 and IPv4) with a
 * non-blocking connect bounded by the connect timeout, runs the handshake in
 * blocking mode with libssh2's own timeout, checks the host key against the
 * known_hosts file under the host key alias (accept-new appends one line to
 * the file, never rewriting it), then authenticates with the agent and the
 * key files in order. After that the owner switches the session to
 * non-blocking mode and drives it with poll(2); channels are small state
 * machines (open, then subsystem or exec) so that each step can be retried
 * after -EAGAIN. Host key fingerprints are SHA-256, base64 without padding,
 * as OpenSSH prints them; the hash lives here because libssh2 only hashes the
 * current key and a changed-key message must name the recorded one too.
 */
#include "ssh.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libssh2.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/*
 * libssh2 1.10 keeps one outgoing packet per session: when a send returns
 * EAGAIN half-way, the next send must be the same call again (any other
 * packet gets LIBSSH2_ERROR_BAD_USE), and a channel open in progress is
 * session state too. With many channels on one non-blocking session (SFTP,
 * exec, port forwards) that rule is kept here: @sending names the operation
 * (a channel's read, write, eof, start or close, or the keepalive) whose
 * packet is half-sent, and every other operation returns -EAGAIN without
 * touching libssh2 until it is through; @opening is the channel whose open
 * is in progress. Reads are held back as well, since a read may send a
 * window adjust.
 */
/*
 * libssh2's memory. libssh2 1.10 allocates a buffer for every SSH packet it
 * receives (channel data: up to 32 KiB and its header) and frees it once
 * the data is read out: thousands a second while a file streams. glibc hands
 * the freed top of the I/O thread's heap back to the kernel, and the next
 * packets fault fresh pages in one by one, which took a fifth of the I/O
 * thread's time reading at RTT 0. So blocks of packet size are kept for
 * reuse (at most SSH_HEAP_KEEP of them, dropped by ssh_trim when idle).
 * The session is used by one thread at a time: no lock.
 */
#define SSH_HEAP_MIN 4096			/* smaller requests: plain malloc */
#define SSH_HEAP_BLK (40u * 1024)		/* what a block holds (libssh2: packets <= 40000 bytes) */
#define SSH_HEAP_KEEP 320			/* the 8 MiB window in 32 KiB packets, and some */

/* In front of every block libssh2 gets: what it asked for, and where it came from. */
union ssh_blk {
	struct {
		size_t size;
		int pooled;	/* SSH_HEAP_BLK bytes follow */
	} h;
	max_align_t align;
};

struct ssh {
	int fd;
	LIBSSH2_SESSION *session;
	const void *sending;
	const void *opening;
	char keepalive_tag;
	union ssh_blk *spare[SSH_HEAP_KEEP];
	int nspare;
};

enum ssh_chan_state { CHAN_OPENING, CHAN_REQUESTING, CHAN_READY, CHAN_CLOSED };

enum ssh_op { OP_START, OP_READ, OP_WRITE, OP_EOF, OP_CLOSE, OP_COUNT };

struct ssh_chan {
	struct ssh *s;
	LIBSSH2_CHANNEL *ch;
	enum ssh_chan_state state;
	char *subsystem, *cmd;
	char *tcp_host;		/* direct-tcpip: connect to tcp_host:tcp_port on the server's side */
	int tcp_port, from_port;
	int eof_sent;
	char tags[OP_COUNT];	/* addresses that name this channel's operations in ssh.sending */
};

/* The receive window of each channel: enough for ~100 MB/s at 20 ms per window. */
#define SSH_WINDOW (8u * 1024 * 1024)

/* --- libssh2's allocator (see struct ssh) ------------------------------------ */

static void *ssh_heap_alloc(size_t count, void **abstract)
{
	struct ssh *s = *abstract;
	union ssh_blk *b = NULL;
	int pooled = count >= SSH_HEAP_MIN && count <= SSH_HEAP_BLK;

	if (pooled && s->nspare)
		b = s->spare[--s->nspare];
	else if (count <= SIZE_MAX - sizeof(*b) - SSH_HEAP_BLK)
		b = malloc(sizeof(*b) + (pooled ? SSH_HEAP_BLK : count));
	if (!b)
		return NULL;
	b->h.size = count;
	b->h.pooled = pooled;
	return b + 1;
}

static void ssh_heap_free(void *ptr, void **abstract)
{
	struct ssh *s = *abstract;
	union ssh_blk *b;

	if (!ptr)
		return;
	b = (union ssh_blk *)ptr - 1;
	if (b->h.pooled && s->nspare < SSH_HEAP_KEEP)
		s->spare[s->nspare++] = b;
	else
		free(b);
}

static void *ssh_heap_realloc(void *ptr, size_t count, void **abstract)
{
	union ssh_blk *b;
	void *n;

	if (!ptr)
		return ssh_heap_alloc(count, abstract);
	b = (union ssh_blk *)ptr - 1;
	if (b->h.pooled && count >= SSH_HEAP_MIN && count <= SSH_HEAP_BLK) {
		b->h.size = count;
		return ptr;
	}
	n = ssh_heap_alloc(count, abstract);
	if (!n)
		return NULL;
	memcpy(n, ptr, b->h.size < count ? b->h.size : count);
	ssh_heap_free(ptr, abstract);
	return n;
}

void ssh_trim(struct ssh *s)
{
	while (s && s->nspare)
		free(s->spare[--s->nspare]);
}

/* --- SHA-256 and base64, for fingerprints ---------------------------------- */

static const uint32_t ssh_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
	0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
	0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
	0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
	0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
	0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
	0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
	0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void ssh_sha256_block(uint32_t h[8], const unsigned char *p)
{
	uint32_t w[64], a, b, c, d, e, f, g, hh, t1, t2;
	int i;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (i = 16; i < 64; i++)
		w[i] = w[i - 16] + (ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3)) +
		       w[i - 7] + (ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10));
	a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
	for (i = 0; i < 64; i++) {
		t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + ssh_k[i] + w[i];
		t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
		hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
	}
	h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

static void ssh_sha256(const unsigned char *p, size_t len, unsigned char out[32])
{
	uint32_t h[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
			  0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
	unsigned char tail[128] = { 0 };
	size_t full = len / 64 * 64, rest = len - full, tl;
	uint64_t bits = (uint64_t)len * 8;
	size_t i;

	for (i = 0; i < full; i += 64)
		ssh_sha256_block(h, p + i);
	memcpy(tail, p + full, rest);
	tail[rest] = 0x80;
	tl = rest < 56 ? 64 : 128;
	for (i = 0; i < 8; i++)
		tail[tl - 1 - i] = (unsigned char)(bits >> (8 * i));
	for (i = 0; i < tl; i += 64)
		ssh_sha256_block(h, tail + i);
	for (i = 0; i < 8; i++) {
		out[4 * i] = h[i] >> 24;
		out[4 * i + 1] = h[i] >> 16;
		out[4 * i + 2] = h[i] >> 8;
		out[4 * i + 3] = h[i];
	}
}

static const char ssh_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void ssh_fingerprint(const unsigned char *blob, size_t len, char *out, size_t outlen)
{
	unsigned char d[33] = { 0 };
	char s[64] = "SHA256:";
	size_t i, o = 7;

	ssh_sha256(blob, len, d);
	for (i = 0; i < 32; i += 3) {
		uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
		s[o++] = ssh_b64[v >> 18 & 63];
		s[o++] = ssh_b64[v >> 12 & 63];
		s[o++] = ssh_b64[v >> 6 & 63];
		if (i + 2 < 32)
			s[o++] = ssh_b64[v & 63];
	}
	s[o] = '\0';
	snprintf(out, outlen, "%s", s);
}

/* Decode base64 (stops at '=' or the end); returns the length or -1. */
static ssize_t ssh_unbase64(const char *in, unsigned char *out, size_t outlen)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;
	const char *q;

	for (; *in && *in != '='; in++) {
		q = strchr(ssh_b64, *in);
		if (!q || !*in)
			return -1;
		acc = acc << 6 | (uint32_t)(q - ssh_b64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= outlen)
				return -1;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	return (ssize_t)o;
}

/* --- connecting ------------------------------------------------------------ */

static pthread_once_t ssh_once = PTHREAD_ONCE_INIT;
static int ssh_init_rc;

static void ssh_global_init(void)
{
	ssh_init_rc = libssh2_init(0);
}

static long ssh_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/* Non-blocking connect to one address within @deadline; returns fd or -errno. */
static int ssh_dial_one(const struct addrinfo *ai, long deadline, unsigned int user_timeout)
{
	struct pollfd pfd;
	int fd, rc, soerr = 0, one = 1;
	socklen_t sl = sizeof(soerr);
	long left;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return -errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS) {
			rc = -errno;
			goto fail;
		}
		for (;;) {
			left = deadline - ssh_now_ms();
			if (left <= 0) {
				rc = -ETIMEDOUT;
				goto fail;
			}
			pfd.fd = fd;
			pfd.events = POLLOUT;
			rc = poll(&pfd, 1, (int)left);
			if (rc < 0 && errno == EINTR)
				continue;
			if (rc < 0) {
				rc = -errno;
				goto fail;
			}
			if (rc > 0)
				break;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
			rc = soerr ? -soerr : -errno;
			goto fail;
		}
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	/*
	 * A link that silently dies (a deallocated VM, a laptop changing networks)
	 * never sends a reset: with keepalives going out every keepalive_s,
	 * unacknowledged data for three intervals means the peer is gone.
	 */
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));
	return fd;
fail:
	close(fd);
	return rc;
}

static int ssh_dial(const struct ssh_params *p, long deadline, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL, *ai;
	char port[16];
	int rc, fd = -ECONNREFUSED;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%d", p->port);
	rc = getaddrinfo(p->host, port, &hints, &res);
	if (rc) {
		snprintf(err, errlen, "cannot resolve '%s' (%s): %s", p->name, p->host,
			 gai_strerror(rc));
		return rc == EAI_SYSTEM ? -errno : -EHOSTUNREACH;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = ssh_dial_one(ai, deadline,
				  (unsigned int)(p->keepalive_s > 0 ? p->keepalive_s : 15) * 3000u);
		if (fd >= 0)
			break;
	}
	freeaddrinfo(res);
	if (fd < 0)
		snprintf(err, errlen, "cannot connect to '%s' (%s:%d): %s", p->name, p->host,
			 p->port, strerror(-fd));
	return fd;
}

static int ssh_kh_keytype(int hostkey_type)
{
	switch (hostkey_type) {
	case LIBSSH2_HOSTKEY_TYPE_RSA:
		return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
	case LIBSSH2_HOSTKEY_TYPE_DSS:
		return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
#ifdef LIBSSH2_HOSTKEY_TYPE_ECDSA_256
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
		return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
		return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
		return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
#endif
#ifdef LIBSSH2_HOSTKEY_TYPE_ED25519
	case LIBSSH2_HOSTKEY_TYPE_ED25519:
		return LIBSSH2_KNOWNHOST_KEY_ED25519;
#endif
	default:
		return LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
	}
}

/* OpenSSH host patterns: '*' and '?' wildcards, case-insensitive. */
static int ssh_pattern_match(const char *pat, size_t plen, const char *s)
{
	if (plen == 0)
		return *s == '\0';
	if (*pat == '*') {
		for (;; s++) {
			if (ssh_pattern_match(pat + 1, plen - 1, s))
				return 1;
			if (!*s)
				return 0;
		}
	}
	if (!*s)
		return 0;
	if (*pat != '?' && tolower((unsigned char)*pat) != tolower((unsigned char)*s))
		return 0;
	return ssh_pattern_match(pat + 1, plen - 1, s + 1);
}

/* Does the comma-separated @hosts field name @name (negations honoured)? */
static int ssh_hosts_match(const char *hosts, size_t len, const char *name)
{
	const char *p = hosts, *end = hosts + len, *comma;
	int hit = 0, neg;

	while (p < end) {
		comma = memchr(p, ',', (size_t)(end - p));
		if (!comma)
			comma = end;
		neg = *p == '!';
		if (ssh_pattern_match(p + neg, (size_t)(comma - p - neg), name)) {
			if (neg)
				return 0;
			hit = 1;
		}
		p = comma + 1;
	}
	return hit;
}

enum ssh_kh_result { KH_NOTFOUND, KH_MATCH, KH_MISMATCH };

/*
 * Look @name up in the known_hosts file @file. Plain host lines are matched
 * here (libssh2 1.10 takes any host field of two characters or fewer, like
 * "vm", for a hashed one and drops it); hashed lines (|1|salt|hash) go to
 * libssh2's parser, which can hash. A line of the key's own type decides:
 * the same key is a match, another key a mismatch (its blob in *old, malloc'd).
 */
static enum ssh_kh_result ssh_kh_lookup(struct ssh *s, const char *file, const char *name,
					int lport, const unsigned char *blob, size_t bloblen,
					int typemask, unsigned char **old, size_t *oldlen)
{
	LIBSSH2_KNOWNHOSTS *kh = NULL;
	struct libssh2_knownhost *known = NULL;
	enum ssh_kh_result res = KH_NOTFOUND;
	FILE *f = fopen(file, "re");
	char *line = NULL, *hosts, *type, *key, *save;
	const unsigned char *btype = blob + 4;
	size_t cap = 0, btlen = 0;
	unsigned char *dec = NULL;
	ssize_t n, dl;
	int rc;

	*old = NULL;
	*oldlen = 0;
	if (bloblen >= 4)
		btlen = (size_t)blob[0] << 24 | (size_t)blob[1] << 16 | (size_t)blob[2] << 8 | blob[3];
	if (btlen > bloblen - 4)
		btlen = 0;
	if (!f)
		return KH_NOTFOUND;
	while (res != KH_MATCH && (n = getline(&line, &cap, f)) > 0) {
		save = NULL;
		hosts = strtok_r(line, " \t\r\n", &save);
		if (!hosts || hosts[0] == '#' || hosts[0] == '@')
			continue;	/* comments; @cert-authority and @revoked are not supported */
		if (strncmp(hosts, "|1|", 3) == 0) {
			if (!kh)
				kh = libssh2_knownhost_init(s->session);
			if (kh) {
				hosts[strlen(hosts)] = ' ';	/* undo strtok for the first field */
				libssh2_knownhost_readline(kh, line, strlen(line),
							   LIBSSH2_KNOWNHOST_FILE_OPENSSH);
			}
			continue;
		}
		type = strtok_r(NULL, " \t\r\n", &save);
		key = strtok_r(NULL, " \t\r\n", &save);
		if (!type || !key || !ssh_hosts_match(hosts, strlen(hosts), name))
			continue;
		if (strlen(type) != btlen || memcmp(type, btype, btlen) != 0)
			continue;	/* a key of another type says nothing about this one */
		free(dec);
		dec = malloc(strlen(key));
		dl = dec ? ssh_unbase64(key, dec, strlen(key)) : -1;
		if (dl == (ssize_t)bloblen && memcmp(dec, blob, bloblen) == 0) {
			res = KH_MATCH;
		} else if (dl > 0 && !*old) {
			*old = dec;
			*oldlen = (size_t)dl;
			dec = NULL;
			res = KH_MISMATCH;
		}
	}
	free(dec);
	free(line);
	fclose(f);
	if (res != KH_MATCH && kh) {
		rc = libssh2_knownhost_checkp(kh, name, lport, (const char *)blob, bloblen, typemask,
					      &known);
		if (rc == LIBSSH2_KNOWNHOST_CHECK_MATCH) {
			res = KH_MATCH;
		} else if (rc == LIBSSH2_KNOWNHOST_CHECK_MISMATCH && !*old) {
			res = KH_MISMATCH;
			if (known && known->key) {
				*old = malloc(strlen(known->key));
				dl = *old ? ssh_unbase64(known->key, *old, strlen(known->key)) : -1;
				*oldlen = dl > 0 ? (size_t)dl : 0;
			}
		}
	}
	if (res == KH_MATCH) {
		free(*old);
		*old = NULL;
		*oldlen = 0;
	}
	if (kh)
		libssh2_knownhost_free(kh);
	return res;
}

/* Append the session's key under @name to the known_hosts file. */
static int ssh_kh_append(LIBSSH2_KNOWNHOSTS *kh, const char *file, const char *name,
			 const char *key, size_t keylen, int typemask)
{
	struct libssh2_knownhost *node = NULL;
	char line[8192];
	size_t outlen = 0;
	FILE *f;
	int rc = 0;

	if (libssh2_knownhost_addc(kh, name, NULL, key, keylen, NULL, 0, typemask, &node) ||
	    libssh2_knownhost_writeline(kh, node, line, sizeof(line), &outlen,
					LIBSSH2_KNOWNHOST_FILE_OPENSSH))
		return -EINVAL;
	f = fopen(file, "ae");
	if (!f)
		return -errno;
	if (fwrite(line, 1, outlen, f) != outlen)
		rc = -EIO;
	if (fclose(f) && !rc)
		rc = -errno;
	return rc;
}

static int ssh_check_hostkey(struct ssh *s, const struct ssh_params *p, char *err, size_t errlen)
{
	LIBSSH2_KNOWNHOSTS *kh = NULL;
	const char *key;
	char namebuf[300], fp_new[80], fp_old[80] = "(unreadable)";
	unsigned char *old = NULL;
	size_t keylen, oldlen;
	int type, typemask, rc, lport = -1;

	key = libssh2_session_hostkey(s->session, &keylen, &type);
	if (!key) {
		snprintf(err, errlen, "cannot get the host key of '%s'", p->name);
		return -EPROTO;
	}
	ssh_fingerprint((const unsigned char *)key, keylen, fp_new, sizeof(fp_new));
	if (p->host_key_alias)
		snprintf(namebuf, sizeof(namebuf), "%s", p->host_key_alias);
	else if (p->port != 22)
		snprintf(namebuf, sizeof(namebuf), "[%s]:%d", p->host, p->port);
	else
		snprintf(namebuf, sizeof(namebuf), "%s", p->host);
	if (!p->host_key_alias && p->port != 22)
		lport = p->port;
	typemask = LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | ssh_kh_keytype(type);
	switch (ssh_kh_lookup(s, p->known_hosts, namebuf, lport, (const unsigned char *)key, keylen,
			      typemask, &old, &oldlen)) {
	case KH_MATCH:
		rc = 0;
		break;
	case KH_MISMATCH:
		if (old && oldlen)
			ssh_fingerprint(old, oldlen, fp_old, sizeof(fp_old));
		snprintf(err, errlen,
			 "refusing '%s': its host key CHANGED: '%s' in %s has %s, the server sent %s "
			 "(if the VM was recreated, remove the old line with "
			 "ssh-keygen -R '%s' -f '%s')",
			 p->name, namebuf, p->known_hosts, fp_old, fp_new, namebuf, p->known_hosts);
		rc = -EACCES;
		break;
	case KH_NOTFOUND:
	default:
		if (!p->accept_new_hostkey) {
			snprintf(err, errlen,
				 "refusing '%s': its host key %s is not in %s under '%s' "
				 "(check it, then connect once with -o accept_new_hostkey)",
				 p->name, fp_new, p->known_hosts, namebuf);
			rc = -EACCES;
			break;
		}
		kh = libssh2_knownhost_init(s->session);
		rc = kh ? ssh_kh_append(kh, p->known_hosts, namebuf, key, keylen, typemask) : -ENOMEM;
		if (rc)
			snprintf(err, errlen, "cannot record the host key of '%s' in %s: %s",
				 p->name, p->known_hosts, strerror(-rc));
		break;
	}
	free(old);
	if (kh)
		libssh2_knownhost_free(kh);
	return rc;
}

static int ssh_auth_agent(struct ssh *s, const char *user)
{
	LIBSSH2_AGENT *agent;
	struct libssh2_agent_publickey *id = NULL, *prev = NULL;
	int rc = -EACCES;

	if (!getenv("SSH_AUTH_SOCK"))
		return -ENOENT;
	agent = libssh2_agent_init(s->session);
	if (!agent)
		return -ENOMEM;
	if (libssh2_agent_connect(agent) || libssh2_agent_list_identities(agent))
		goto out;
	while (libssh2_agent_get_identity(agent, &id, prev) == 0) {
		if (libssh2_agent_userauth(agent, user, id) == 0) {
			rc = 0;
			break;
		}
		prev = id;
	}
	libssh2_agent_disconnect(agent);
out:
	libssh2_agent_free(agent);
	return rc;
}

static int ssh_auth(struct ssh *s, const struct ssh_params *p, char *err, size_t errlen)
{
	char *methods, pub[4096];
	int i, tried = 0;

	methods = libssh2_userauth_list(s->session, p->user, (unsigned int)strlen(p->user));
	if (!methods && libssh2_userauth_authenticated(s->session))
		return 0;
	if (!methods || !strstr(methods, "publickey")) {
		snprintf(err, errlen, "cannot log in to '%s' as '%s': the server offers no public key authentication (%s)",
			 p->name, p->user, methods ? methods : "no methods");
		return -EACCES;
	}
	if (p->use_agent && ssh_auth_agent(s, p->user) == 0)
		return 0;
	for (i = 0; i < p->nidentities; i++) {
		if (access(p->identities[i], R_OK))
			continue;
		tried++;
		if (libssh2_userauth_publickey_fromfile(s->session, p->user, NULL,
							p->identities[i], NULL) == 0)
			return 0;
		snprintf(pub, sizeof(pub), "%s.pub", p->identities[i]);
		if (access(pub, R_OK) == 0 &&
		    libssh2_userauth_publickey_fromfile(s->session, p->user, pub, p->identities[i],
							NULL) == 0)
			return 0;
	}
	snprintf(err, errlen,
		 "cannot log in to '%s' as '%s': no key was accepted (tried the agent and %d key file%s; "
		 "set -o identity=FILE)",
		 p->name, p->user, tried, tried == 1 ? "" : "s");
	return -EACCES;
}

int ssh_connect(struct ssh **out, const struct ssh_params *p, char *err, size_t errlen)
{
	struct ssh *s = NULL;
	long deadline;
	int rc;

	*out = NULL;
	pthread_once(&ssh_once, ssh_global_init);
	if (ssh_init_rc) {
		snprintf(err, errlen, "cannot initialise libssh2");
		return -ENOMEM;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		rc = -ENOMEM;
		goto out;
	}
	s->fd = -1;
	deadline = ssh_now_ms() + (p->connect_timeout_ms > 0 ? p->connect_timeout_ms : 15000);
	rc = ssh_dial(p, deadline, err, errlen);
	if (rc < 0)
		goto out;
	s->fd = rc;
	s->session = libssh2_session_init_ex(ssh_heap_alloc, ssh_heap_free, ssh_heap_realloc, s);
	if (!s->session) {
		rc = -ENOMEM;
		goto out;
	}
	libssh2_session_set_blocking(s->session, 1);
	libssh2_session_set_timeout(s->session, p->connect_timeout_ms > 0 ? p->connect_timeout_ms : 15000);
	if (libssh2_session_handshake(s->session, s->fd)) {
		char *msg = NULL;

		libssh2_session_last_error(s->session, &msg, NULL, 0);
		snprintf(err, errlen, "cannot start SSH with '%s' (%s:%d): %s", p->name, p->host,
			 p->port, msg ? msg : "handshake failed");
		rc = -ECONNRESET;
		goto out;
	}
	rc = ssh_check_hostkey(s, p, err, errlen);
	if (rc)
		goto out;
	rc = ssh_auth(s, p, err, errlen);
	if (rc)
		goto out;
	/*
	 * No reply wanted: libssh2 never takes the server's REQUEST_FAILURE
	 * off its packet list, so one would pile up per keepalive for the
	 * session's life. The TCP ACK of the keepalive is what TCP_USER_TIMEOUT
	 * watches to notice a dead link.
	 */
	libssh2_keepalive_config(s->session, 0, p->keepalive_s > 0 ? (unsigned)p->keepalive_s : 15);
	*out = s;
	s = NULL;
	rc = 0;
out:
	ssh_free(s);
	return rc;
}

void ssh_free(struct ssh *s)
{
	if (!s)
		return;
	if (s->session) {
		/* A dead peer must not stall the teardown. */
		libssh2_session_set_blocking(s->session, 1);
		libssh2_session_set_timeout(s->session, 2000);
		libssh2_session_disconnect(s->session, "bye");
		libssh2_session_free(s->session);
	}
	if (s->fd >= 0)
		close(s->fd);
	ssh_trim(s);
	free(s);
}

int ssh_fd(const struct ssh *s)
{
	return s->fd;
}

void ssh_set_blocking(struct ssh *s, int blocking)
{
	libssh2_session_set_blocking(s->session, blocking);
}

short ssh_poll_events(struct ssh *s)
{
	int dirs = libssh2_session_block_directions(s->session);
	short ev = POLLIN;

	if (dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND)
		ev |= POLLOUT;
	return ev;
}

/* May @who make a libssh2 call now (nobody else has a packet half-sent)? */
static int ssh_may(struct ssh *s, const void *who)
{
	return !s->sending || s->sending == who;
}

/* After @who's libssh2 call: a packet left half-sent is @who's to finish. */
static void ssh_done(struct ssh *s, const void *who)
{
	if (libssh2_session_block_directions(s->session) & LIBSSH2_SESSION_BLOCK_OUTBOUND)
		s->sending = who;
	else if (s->sending == who)
		s->sending = NULL;
}

int ssh_keepalive(struct ssh *s, int *next_s)
{
	int rc, queued = 0, sndbuf = 0;
	socklen_t sl = sizeof(sndbuf);

	/*
	 * libssh2 drops the EAGAIN of a keepalive it could only half send, and
	 * never finishes that packet: send one only when nothing is pending and
	 * the socket's buffer has ample room, so that it goes out whole.
	 */
	if (s->sending || ioctl(s->fd, SIOCOUTQ, &queued) < 0 ||
	    getsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &sl) < 0 || queued > sndbuf / 2) {
		*next_s = 1;
		return 0;
	}
	rc = libssh2_keepalive_send(s->session, next_s);
	ssh_done(s, &s->keepalive_tag);
	if (rc == LIBSSH2_ERROR_EAGAIN) {
		*next_s = 1;
		return 0;
	}
	return rc ? -EIO : 0;
}

/* --- channels ------------------------------------------------------------ */

static int ssh_rc(struct ssh *s, int rc)
{
	if (rc >= 0)
		return rc;
	if (rc == LIBSSH2_ERROR_EAGAIN)
		return -EAGAIN;
	(void)s;
	return -EIO;
}

int ssh_chan_new(struct ssh *s, const char *subsystem, const char *cmd, struct ssh_chan **out)
{
	struct ssh_chan *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c)
		return -ENOMEM;
	c->s = s;
	c->subsystem = subsystem ? strdup(subsystem) : NULL;
	c->cmd = cmd ? strdup(cmd) : NULL;
	if ((subsystem && !c->subsystem) || (cmd && !c->cmd)) {
		ssh_chan_free(c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

int ssh_chan_new_tcpip(struct ssh *s, const char *host, int port, int from_port,
		       struct ssh_chan **out)
{
	struct ssh_chan *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c)
		return -ENOMEM;
	c->s = s;
	c->tcp_host = strdup(host);
	c->tcp_port = port;
	c->from_port = from_port;
	if (!c->tcp_host) {
		ssh_chan_free(c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

/* Open the channel (one open at a time per session: libssh2 keeps its state there). */
static int ssh_chan_open(struct ssh_chan *c)
{
	struct ssh *s = c->s;
	int err;

	if (s->opening && s->opening != c)
		return -EAGAIN;
	if (c->tcp_host)
		c->ch = libssh2_channel_direct_tcpip_ex(s->session, c->tcp_host, c->tcp_port,
							"127.0.0.1", c->from_port);
	else
		c->ch = libssh2_channel_open_ex(s->session, "session", sizeof("session") - 1,
						SSH_WINDOW, LIBSSH2_CHANNEL_PACKET_DEFAULT, NULL, 0);
	if (c->ch) {
		s->opening = NULL;
		return 0;
	}
	err = libssh2_session_last_errno(s->session);
	if (err == LIBSSH2_ERROR_EAGAIN) {
		s->opening = c;
		return -EAGAIN;
	}
	s->opening = NULL;
	/* The server's refusal (nothing listens there, or forwarding is off). */
	return err == LIBSSH2_ERROR_CHANNEL_FAILURE ? -ECONNREFUSED : -EIO;
}

int ssh_chan_start(struct ssh_chan *c)
{
	const void *who = &c->tags[OP_START];
	int rc = 0;

	if (!ssh_may(c->s, who))
		return -EAGAIN;
	if (c->state == CHAN_OPENING) {
		rc = ssh_chan_open(c);
		if (!rc)
			c->state = c->tcp_host ? CHAN_READY : CHAN_REQUESTING;
	}
	if (!rc && c->state == CHAN_REQUESTING) {
		if (c->subsystem)
			rc = libssh2_channel_process_startup(c->ch, "subsystem", sizeof("subsystem") - 1,
							     c->subsystem,
							     (unsigned int)strlen(c->subsystem));
		else
			rc = libssh2_channel_process_startup(c->ch, "exec", sizeof("exec") - 1, c->cmd,
							     (unsigned int)strlen(c->cmd));
		rc = ssh_rc(c->s, rc);
		if (!rc)
			c->state = CHAN_READY;
	}
	ssh_done(c->s, who);
	if (rc)
		return rc;
	return c->state == CHAN_READY ? 0 : -EIO;
}

ssize_t ssh_chan_read(struct ssh_chan *c, int ext, void *buf, size_t len)
{
	const void *who = &c->tags[OP_READ];
	ssize_t n;

	if (!ssh_may(c->s, who))
		return -EAGAIN;
	n = libssh2_channel_read_ex(c->ch, ext ? SSH_EXTENDED_DATA_STDERR : 0, buf, len);
	ssh_done(c->s, who);
	if (n == LIBSSH2_ERROR_EAGAIN)
		return -EAGAIN;
	return n < 0 ? -EIO : n;
}

ssize_t ssh_chan_write(struct ssh_chan *c, const void *buf, size_t len)
{
	const void *who = &c->tags[OP_WRITE];
	ssize_t n;

	if (!ssh_may(c->s, who))
		return -EAGAIN;
	n = libssh2_channel_write_ex(c->ch, 0, buf, len);
	ssh_done(c->s, who);
	if (n == LIBSSH2_ERROR_EAGAIN)
		return -EAGAIN;
	return n < 0 ? -EIO : n;
}

/*
 * libssh2 builds the EOF packet on its stack, so a half-sent one can only be
 * finished by a call from the very same stack depth: rather than rely on
 * that, wait here (briefly: it is a few bytes) until the socket takes it.
 */
int ssh_chan_send_eof(struct ssh_chan *c)
{
	const void *who = &c->tags[OP_EOF];
	struct pollfd pfd = { .fd = c->s->fd, .events = POLLOUT };
	long deadline = ssh_now_ms() + 10000;
	int rc;

	if (c->eof_sent || !c->ch)
		return 0;
	if (!ssh_may(c->s, who))
		return -EAGAIN;
	for (;;) {
		rc = libssh2_channel_send_eof(c->ch);
		if (rc != LIBSSH2_ERROR_EAGAIN ||
		    !(libssh2_session_block_directions(c->s->session) & LIBSSH2_SESSION_BLOCK_OUTBOUND))
			break;
		if (ssh_now_ms() > deadline) {
			rc = LIBSSH2_ERROR_TIMEOUT;
			break;
		}
		poll(&pfd, 1, 100);
	}
	ssh_done(c->s, who);
	if (rc == 0)
		c->eof_sent = 1;
	return ssh_rc(c->s, rc);
}

/*
 * Finish whatever operation of @c has a packet half-sent, for a channel
 * being given up: a read's data is dropped. 0 when nothing is pending.
 */
static int ssh_chan_finish(struct ssh_chan *c)
{
	char scratch[4096] = { 0 };
	const void *who = c->s->sending;
	int rc = 0;

	if (who == &c->tags[OP_WRITE])
		/* The packet already holds the data; the retry only sends the rest. */
		rc = (int)libssh2_channel_write_ex(c->ch, 0, scratch, 1);
	else if (who == &c->tags[OP_READ])
		rc = (int)libssh2_channel_read_ex(c->ch, 0, scratch, sizeof(scratch));
	else if (who == &c->tags[OP_START])
		return ssh_chan_start(c) == -EAGAIN ? -EAGAIN : 0;
	else
		return 0;
	ssh_done(c->s, who);
	return rc == LIBSSH2_ERROR_EAGAIN && c->s->sending == who ? -EAGAIN : 0;
}

int ssh_chan_pending(struct ssh_chan *c)
{
	unsigned long avail = 0;

	/*
	 * A libssh2 read on any channel drains the socket into the session's
	 * packet list, for every channel: a reply can sit there while the
	 * socket is empty, and poll(2) would not see it. Counted only when a
	 * read may run now; otherwise the half-sent packet's POLLOUT wakes us.
	 */
	if (!c->ch || c->state != CHAN_READY || !ssh_may(c->s, &c->tags[OP_READ]))
		return 0;
	libssh2_channel_window_read_ex(c->ch, &avail, NULL);
	return avail > 0;
}

int ssh_chan_eof(struct ssh_chan *c)
{
	return c->ch ? libssh2_channel_eof(c->ch) : 1;
}

int ssh_chan_exit_status(struct ssh_chan *c)
{
	return c->ch ? libssh2_channel_get_exit_status(c->ch) : -1;
}

int ssh_chan_close(struct ssh_chan *c)
{
	const void *who = &c->tags[OP_CLOSE];
	int rc;

	if (!c->ch || c->state == CHAN_CLOSED)
		return 0;
	if (ssh_chan_finish(c))
		return -EAGAIN;
	if (!c->ch)
		return 0;
	if (!ssh_may(c->s, who))
		return -EAGAIN;
	/* Our EOF first, so that the close does not send one from its own stack. */
	rc = ssh_chan_send_eof(c);
	if (rc == -EAGAIN)
		return rc;
	rc = libssh2_channel_close(c->ch);
	ssh_done(c->s, who);
	if (rc == LIBSSH2_ERROR_EAGAIN)
		return -EAGAIN;
	c->state = CHAN_CLOSED;
	return 0;
}

void ssh_chan_free(struct ssh_chan *c)
{
	int i;

	if (!c)
		return;
	/*
	 * A channel freed with its packet half-sent or its open in progress
	 * leaves the session unable to send anything else; the next send
	 * fails and the owner reconnects. Owners finish those steps first.
	 */
	for (i = 0; i < OP_COUNT; i++)
		if (c->s->sending == &c->tags[i])
			c->s->sending = NULL;
	if (c->s->opening == c)
		c->s->opening = NULL;
	if (c->ch)
		libssh2_channel_free(c->ch);
	free(c->subsystem);
	free(c->cmd);
	free(c->tcp_host);
	free(c);
}
