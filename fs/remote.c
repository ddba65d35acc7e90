/*
 * fs/remote.c: the VM's files in filesystem terms, over fs/conn.c.
 *
 * Each operation encodes its request with fs/sftp.c, sends it through the
 * multiplexer and decodes the reply in the calling thread. Path requests
 * that only read (stat, readlink, realpath, opening for reading) are marked
 * idempotent, so a reconnect sends them again; everything else fails with
 * -EIO when the transport goes away under it. OpenSSH's server reports most
 * errno values as a generic FAILURE, so after a failure the operations that
 * POSIX callers check closely (mkdir, rmdir, unlink, symlink, rename) look at
 * the path once more to return EEXIST, ENOTEMPTY, EISDIR or ENOTDIR.
 *
 * Large reads and writes are split into chunks of the server's limits and
 * kept many in flight (REMOTE_WINDOW bytes); a handle read sequentially keeps
 * a read-ahead window of chunks in flight between calls (struct remote_ra).
 */
#include "remote.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "sftp.h"
#include "sshconf.h"

/* Bytes of READ or WRITE requests kept in flight for one call. */
#define REMOTE_WINDOW (4u * 1024 * 1024)
#define REMOTE_NAME_MAX 255

struct remote {
	struct conn *conn;
};

/* Bytes of acknowledged-but-unconfirmed writes a handle may have in flight. */
#define REMOTE_WB_MAX (8u * 1024 * 1024)

/* One READ of the read-ahead window, in offset order. */
struct remote_chunk {
	struct remote_chunk *next;
	uint64_t off;
	uint32_t len;
	struct conn_req *q;	/* NULL once the reply is in */
	unsigned char *reply;	/* the whole reply packet (freed with remote_chunk_free) */
	size_t reply_len;
	const unsigned char *data;	/* its payload; data_len bytes from off */
	size_t data_len;
	int err;		/* 0, or the read's -errno */
};

/* One WRITE in flight (write-behind). */
struct remote_wreq {
	struct remote_wreq *next;
	struct conn_req *q;
	size_t len;
};

struct remote_file {
	struct remote *r;
	unsigned char handle[256];
	size_t hlen;
	unsigned int gen;	/* the session the handle belongs to */
	char *path;		/* for reopening after a reconnect (NULL: directories) */
	uint32_t reopen_pflags;
	pthread_mutex_t lock;	/* protects everything below; taken before conn's lock */
	/* read-ahead: chunks cover [ra_head->off, ra_end) contiguously */
	struct remote_chunk *ra_head, *ra_tail;
	uint64_t ra_end;
	uint64_t ra_expect;	/* where a sequential reader reads next */
	int ra_hits;		/* consecutive sequential reads */
	/* write-behind */
	struct remote_wreq *wb_head, *wb_tail;
	size_t wb_bytes;
	int wb_err;		/* the first failed write, reported once */
};

/* --- helpers ------------------------------------------------------------------ */

static int remote_check_path(const char *path)
{
	const char *p = path, *slash;
	size_t n;

	if (!path)
		return -EINVAL;
	if (strlen(path) >= 4096)
		return -ENAMETOOLONG;
	while (*p) {
		slash = strchr(p, '/');
		n = slash ? (size_t)(slash - p) : strlen(p);
		if (n > REMOTE_NAME_MAX)
			return -ENAMETOOLONG;
		if (!slash)
			break;
		p = slash + 1;
	}
	return 0;
}

/*
 * Check a reply's type: 0 if it is @want, else the errno of a STATUS reply
 * (a STATUS OK where @want is another type is a protocol error: -EIO).
 */
static int remote_reply(const unsigned char *p, size_t len, int want)
{
	uint8_t type;
	uint32_t id, code;
	int err;

	if (sftp_dec_header(p, len, &type, &id))
		return -EIO;
	if (type == want)
		return 0;
	if (type != SSH_FXP_STATUS || sftp_dec_status(p, len, &code))
		return -EIO;
	err = sftp_status_errno(code);
	return err ? err : -EIO;
}

/* Send the request in @b and wait for a STATUS; returns its errno. */
static int remote_status_call(struct remote *r, struct sftp_buf *b, uint32_t id,
			      unsigned int flags, unsigned int gen)
{
	unsigned char *p;
	size_t len;
	uint32_t code;
	int err;

	err = conn_call(r->conn, b, id, flags, gen, &p, &len);
	if (err)
		return err;
	err = sftp_dec_status(p, len, &code) ? -EIO : sftp_status_errno(code);
	free(p);
	return err;
}

/* --- attributes ------------------------------------------------------------------ */

static int remote_attrs_reply(unsigned char *p, size_t len, struct stat *st)
{
	struct sftp_attrs a;
	int err = remote_reply(p, len, SSH_FXP_ATTRS);

	if (!err)
		err = sftp_dec_attrs(p, len, &a) ? -EIO : 0;
	if (!err)
		sftp_attrs_to_stat(&a, st);
	free(p);
	return err;
}

static int remote_stat_type(struct remote *r, int type, const char *path, struct stat *st)
{
	struct sftp_buf b;
	unsigned char *p;
	size_t len;
	uint32_t id = conn_next_id(r->conn);
	int err = remote_check_path(path);

	if (err)
		return err;
	sftp_buf_init(&b);
	sftp_enc_path(&b, type, id, path);
	err = conn_call(r->conn, &b, id, CONN_IDEMPOTENT, 0, &p, &len);
	if (err)
		return err;
	return remote_attrs_reply(p, len, st);
}

int remote_stat(struct remote *r, const char *path, struct stat *st)
{
	return remote_stat_type(r, SSH_FXP_STAT, path, st);
}

int remote_lstat(struct remote *r, const char *path, struct stat *st)
{
	return remote_stat_type(r, SSH_FXP_LSTAT, path, st);
}

static int remote_setstat(struct remote *r, const char *path, const struct sftp_attrs *a)
{
	struct sftp_buf b;
	uint32_t id = conn_next_id(r->conn);
	int err = remote_check_path(path);

	if (err)
		return err;
	sftp_buf_init(&b);
	sftp_enc_path_attrs(&b, SSH_FXP_SETSTAT, id, path, a);
	/* Setting absolute values is idempotent. */
	return remote_status_call(r, &b, id, CONN_IDEMPOTENT, 0);
}

int remote_chmod(struct remote *r, const char *path, mode_t mode)
{
	struct sftp_attrs a = { .flags = SSH_FILEXFER_ATTR_PERMISSIONS, .perm = mode & 07777 };

	return remote_setstat(r, path, &a);
}

int remote_chown(struct remote *r, const char *path, uid_t uid, gid_t gid)
{
	struct sftp_attrs a = { .flags = SSH_FILEXFER_ATTR_UIDGID, .uid = uid, .gid = gid };
	struct stat st;
	int err;

	if (uid == (uid_t)-1 || gid == (gid_t)-1) {
		err = remote_lstat(r, path, &st);
		if (err)
			return err;
		if (uid == (uid_t)-1)
			a.uid = st.st_uid;
		if (gid == (gid_t)-1)
			a.gid = st.st_gid;
	}
	return remote_setstat(r, path, &a);
}

int remote_truncate(struct remote *r, const char *path, off_t size)
{
	struct sftp_attrs a = { .flags = SSH_FILEXFER_ATTR_SIZE, .size = (uint64_t)size };

	if (size < 0)
		return -EINVAL;
	return remote_setstat(r, path, &a);
}

int remote_utimes(struct remote *r, const char *path, time_t atime, time_t mtime)
{
	struct sftp_attrs a = { .flags = SSH_FILEXFER_ATTR_ACMODTIME,
				.atime = (uint32_t)atime,
				.mtime = (uint32_t)mtime };

	return remote_setstat(r, path, &a);
}

int remote_statvfs(struct remote *r, const char *path, struct statvfs *sv)
{
	struct sftp_buf b;
	unsigned char *p;
	size_t len;
	uint32_t id;
	int err = remote_check_path(path);

	if (err)
		return err;
	if (!(conn_extensions(r->conn) & SFTP_EXT_STATVFS)) {
		/* What sshfs reports without the extension: big, empty, unknown. */
		memset(sv, 0, sizeof(*sv));
		sv->f_bsize = sv->f_frsize = 4096;
		sv->f_blocks = sv->f_bfree = sv->f_bavail = 1000ULL * 1024 * 1024 * 1024 / 4096;
		sv->f_files = sv->f_ffree = sv->f_favail = 1000000000;
		sv->f_namemax = REMOTE_NAME_MAX;
		return 0;
	}
	id = conn_next_id(r->conn);
	sftp_buf_init(&b);
	sftp_enc_statvfs(&b, id, path);
	err = conn_call(r->conn, &b, id, CONN_IDEMPOTENT, 0, &p, &len);
	if (err)
		return err;
	err = remote_reply(p, len, SSH_FXP_EXTENDED_REPLY);
	if (!err && sftp_dec_statvfs(p, len, sv))
		err = -EIO;
	free(p);
	return err;
}

/* --- directories ----------------------------------------------------------------- */

/* Send an OPEN or OPENDIR in @b; the handle and its session generation come back. */
static int remote_handle_call(struct remote *r, struct sftp_buf *b, uint32_t id, unsigned int flags,
			      unsigned char *handle, size_t *hlen, unsigned int *gen)
{
	struct conn_req *q;
	const unsigned char *h;
	unsigned char *p;
	size_t len;
	int err;

	err = conn_submit(r->conn, b, id, flags, 0, &q);
	if (err)
		return err;
	err = conn_wait_gen(r->conn, q, &p, &len, gen);
	if (err)
		return err;
	err = remote_reply(p, len, SSH_FXP_HANDLE);
	if (!err && sftp_dec_handle(p, len, &h, hlen))
		err = -EIO;
	if (!err)
		memcpy(handle, h, *hlen);
	free(p);
	return err;
}

static int remote_open_handle(struct remote *r, struct sftp_buf *b, uint32_t id, unsigned int flags,
			      struct remote_file **out)
{
	struct remote_file *f;
	int err;

	*out = NULL;
	f = calloc(1, sizeof(*f));
	if (!f) {
		sftp_buf_release(b);
		return -ENOMEM;
	}
	err = remote_handle_call(r, b, id, flags, f->handle, &f->hlen, &f->gen);
	if (err) {
		free(f);
		return err;
	}
	f->r = r;
	pthread_mutex_init(&f->lock, NULL);
	*out = f;
	return 0;
}

static int remote_close_handle(struct remote_file *f)
{
	struct sftp_buf b;
	uint32_t id;

	if (f->gen != conn_gen(f->r->conn))
		return -EIO;	/* that session and its handles are gone */
	id = conn_next_id(f->r->conn);
	sftp_buf_init(&b);
	sftp_enc_handle(&b, SSH_FXP_CLOSE, id, f->handle, f->hlen);
	return remote_status_call(f->r, &b, id, 0, f->gen);
}

/*
 * Close a directory handle without waiting for the server's answer, which
 * nothing would act on: a round trip less per directory listed.
 */
static void remote_close_dir(struct remote_file *d)
{
	struct sftp_buf b;
	uint32_t id;

	if (d->gen != conn_gen(d->r->conn))
		return;	/* that session and its handles are gone */
	id = conn_next_id(d->r->conn);
	sftp_buf_init(&b);
	sftp_enc_handle(&b, SSH_FXP_CLOSE, id, d->handle, d->hlen);
	conn_send_detached(d->r->conn, &b, id, d->gen);
}

/*
 * READDIR requests kept in flight on one directory handle: two at first (a
 * batch and, for most directories, the end), eight once a directory proves
 * bigger than a batch.
 */
#define REMOTE_READDIR_FIRST 2
#define REMOTE_READDIR_AHEAD 8

static int remote_submit_readdir(struct remote_file *d, struct conn_req **q)
{
	struct sftp_buf b;
	uint32_t id = conn_next_id(d->r->conn);

	sftp_buf_init(&b);
	sftp_enc_handle(&b, SSH_FXP_READDIR, id, d->handle, d->hlen);
	return conn_submit(d->r->conn, &b, id, 0, d->gen, q);
}

/*
 * Hand one READDIR reply's entries to @cb. Returns 1 at end of directory, 0
 * after a batch, or -errno (or the callback's value). Frees @p.
 */
static int remote_readdir_batch(unsigned char *p, size_t len, remote_dirent_cb cb, void *payload)
{
	struct sftp_attrs a;
	struct stat st;
	size_t pos;
	uint32_t count, i;
	char name[REMOTE_NAME_MAX * 4 + 1];
	int err;

	err = remote_reply(p, len, SSH_FXP_NAME);
	if (err == -ENODATA) {
		err = 1;
		goto out;
	}
	if (err)
		goto out;
	err = sftp_dec_name(p, len, &count, &pos) ? -EIO : 0;
	for (i = 0; i < count && !err; i++) {
		err = sftp_dec_name_next(p, len, &pos, name, sizeof(name), &a);
		if (err == -ENAMETOOLONG) {
			err = 0;	/* not representable here; skip it */
			continue;
		}
		if (err) {
			err = -EIO;
			break;
		}
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strchr(name, '/'))
			continue;
		sftp_attrs_to_stat(&a, &st);
		err = cb(name, &st, payload);
	}
out:
	free(p);
	return err;
}

/*
 * Read a directory with up to REMOTE_READDIR_AHEAD requests in flight:
 * OpenSSH's server answers requests on a handle in order, each with the next
 * batch, so a big directory costs one round trip per eight batches, not per
 * batch, and a small one is not sent six requests past its end.
 */
static int remote_readdir_handle(struct remote_file *d, remote_dirent_cb cb, void *payload)
{
	struct conn_req *q[REMOTE_READDIR_AHEAD];
	unsigned char *p;
	size_t len, head = 0, tail = 0, ahead = REMOTE_READDIR_FIRST;
	int err = 0, done = 0;

	while (!done) {
		while (head - tail < ahead) {
			err = remote_submit_readdir(d, &q[head % REMOTE_READDIR_AHEAD]);
			if (err)
				break;
			head++;
		}
		if (head == tail)
			break;
		err = conn_wait(d->r->conn, q[tail++ % REMOTE_READDIR_AHEAD], &p, &len);
		if (!err)
			err = remote_readdir_batch(p, len, cb, payload);
		if (err)
			done = 1;
		ahead = REMOTE_READDIR_AHEAD;	/* more than a batch: read ahead further */
	}
	while (tail < head)	/* the requests after the end: their replies are not wanted */
		conn_abandon(d->r->conn, q[tail++ % REMOTE_READDIR_AHEAD]);
	return err == 1 ? 0 : err;
}

int remote_readdir(struct remote *r, const char *path, remote_dirent_cb cb, void *payload)
{
	struct remote_file *d = NULL;
	struct sftp_buf b;
	uint32_t id = conn_next_id(r->conn);
	int err = remote_check_path(path);

	if (err)
		return err;
	sftp_buf_init(&b);
	sftp_enc_path(&b, SSH_FXP_OPENDIR, id, path);
	err = remote_open_handle(r, &b, id, CONN_IDEMPOTENT, &d);
	if (err)
		return err;
	err = remote_readdir_handle(d, cb, payload);
	remote_close_dir(d);
	pthread_mutex_destroy(&d->lock);
	free(d);
	return err;
}

/* --- files ------------------------------------------------------------------------- */

int remote_open(struct remote *r, const char *path, int flags, mode_t mode, struct remote_file **out)
{
	struct sftp_attrs a = { 0 };
	struct sftp_buf b;
	uint32_t pflags = 0, id;
	unsigned int cflags = 0;
	int err = remote_check_path(path);

	*out = NULL;
	if (err)
		return err;
	switch (flags & O_ACCMODE) {
	case O_RDONLY:
		pflags = SSH_FXF_READ;
		break;
	case O_WRONLY:
		pflags = SSH_FXF_WRITE;
		break;
	default:
		pflags = SSH_FXF_READ | SSH_FXF_WRITE;
		break;
	}
	if (flags & O_CREAT) {
		pflags |= SSH_FXF_CREAT;
		a.flags = SSH_FILEXFER_ATTR_PERMISSIONS;
		a.perm = mode & 07777;
	}
	if (flags & O_EXCL)
		pflags |= SSH_FXF_EXCL;
	if (flags & O_TRUNC)
		pflags |= SSH_FXF_TRUNC;
	if (flags & O_APPEND)
		pflags |= SSH_FXF_APPEND;
	if (!(flags & (O_CREAT | O_TRUNC)))
		cflags = CONN_IDEMPOTENT;
	id = conn_next_id(r->conn);
	sftp_buf_init(&b);
	sftp_enc_open(&b, id, path, pflags, &a);
	err = remote_open_handle(r, &b, id, cflags, out);
	if (!err) {
		/* What a reconnect needs to open the same file again. */
		(*out)->path = strdup(path);
		(*out)->reopen_pflags = pflags & ~(uint32_t)(SSH_FXF_CREAT | SSH_FXF_EXCL | SSH_FXF_TRUNC);
	}
	if (err == -EIO && (flags & O_CREAT) && (flags & O_EXCL)) {
		struct stat st;

		if (remote_lstat(r, path, &st) == 0)
			err = -EEXIST;
	}
	return err;
}

/* Decode one READ reply into @dst; returns the byte count, 0 at EOF, or -errno. */
static ssize_t remote_read_reply(struct remote *r, unsigned char *p, size_t len, void *dst,
				 size_t want)
{
	const unsigned char *data;
	size_t dlen;
	ssize_t n;
	int err;

	err = remote_reply(p, len, SSH_FXP_DATA);
	if (err == -ENODATA)
		n = 0;
	else if (err)
		n = err;
	else if (sftp_dec_data(p, len, &data, &dlen) || dlen > want)
		n = -EIO;
	else {
		memcpy(dst, data, dlen);
		n = (ssize_t)dlen;
	}
	conn_reply_free(r->conn, p, len);
	return n;
}

static int remote_submit_read(struct remote_file *f, uint64_t off, uint32_t len, struct conn_req **q)
{
	struct sftp_buf b;
	uint32_t id = conn_next_id(f->r->conn);

	sftp_buf_init(&b);
	sftp_enc_read(&b, id, f->handle, f->hlen, off, len);
	return conn_submit(f->r->conn, &b, id, 0, f->gen, q);
}

/*
 * Read [off, off+len) with up to REMOTE_WINDOW bytes of requests in flight.
 * Returns the bytes read before the first short chunk (end of file, or a
 * server that returned less: the caller asks again for the rest).
 */
static ssize_t remote_read_window(struct remote_file *f, unsigned char *buf, size_t len, off_t off)
{
	size_t chunk = conn_max_read(f->r->conn);
	size_t n = (len + chunk - 1) / chunk, maxq = REMOTE_WINDOW / chunk, head = 0, tail = 0;
	struct conn_req **q;
	unsigned char *p;
	size_t plen, want, total = 0;
	ssize_t got;
	int err = 0, stop = 0;

	if (maxq < 1)
		maxq = 1;
	q = calloc(n ? n : 1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	while (tail < n) {
		while (!stop && head < n && head - tail < maxq) {
			want = head == n - 1 ? len - head * chunk : chunk;
			err = remote_submit_read(f, (uint64_t)off + head * chunk, (uint32_t)want, &q[head]);
			if (err) {
				stop = 1;
				break;
			}
			head++;
		}
		if (tail == head)
			break;
		want = tail == n - 1 ? len - tail * chunk : chunk;
		err = conn_wait(f->r->conn, q[tail], &p, &plen);
		got = err ? err : remote_read_reply(f->r, p, plen, buf + tail * chunk, want);
		tail++;
		if (stop)
			continue;	/* only collecting what is in flight */
		if (got < 0) {
			err = (int)got;
			stop = 1;
		} else {
			total += (size_t)got;
			if ((size_t)got < want)
				stop = 1;
		}
	}
	free(q);
	if (total == 0 && err)
		return err;
	return (ssize_t)total;
}

static int remote_wb_drain(struct remote_file *f);
static void remote_ra_drop(struct remote_file *f);

/* Free a read-ahead chunk, giving up on its reply if it is still to come. */
static void remote_chunk_free(struct remote_file *f, struct remote_chunk *c)
{
	conn_abandon(f->r->conn, c->q);
	conn_reply_free(f->r->conn, c->reply, c->reply_len);
	free(c);
}

/*
 * The handle belongs to a session that is gone (or, with @force, to one that
 * is going): open the file again by path (f->lock held). The OPEN is
 * idempotent, so while the transport is down it waits for the reconnect.
 * Writes that were in flight failed; their error stays for the caller.
 */
static int remote_file_revive(struct remote_file *f, int force)
{
	struct sftp_attrs none = { 0 };
	struct sftp_buf b;
	uint32_t id;
	int err;

	if (!force && f->gen == conn_gen(f->r->conn))
		return 0;
	if (!f->path)
		return -EIO;
	remote_ra_drop(f);
	f->ra_hits = 0;
	err = remote_wb_drain(f);
	if (err)
		f->wb_err = err;
	id = conn_next_id(f->r->conn);
	sftp_buf_init(&b);
	sftp_enc_open(&b, id, f->path, f->reopen_pflags, &none);
	err = remote_handle_call(f->r, &b, id, CONN_IDEMPOTENT, f->handle, &f->hlen, &f->gen);
	return err == -ENOENT ? -EIO : err;	/* unlinked meanwhile: that data is gone */
}

/* Read without read-ahead: a loop over pipelined windows. */
static ssize_t remote_pread_direct(struct remote_file *f, void *buf, size_t len, off_t off)
{
	size_t total = 0;
	ssize_t n;

	while (total < len) {
		n = remote_read_window(f, (unsigned char *)buf + total, len - total,
				       off + (off_t)total);
		if (n < 0)
			return total ? (ssize_t)total : n;
		if (n == 0)
			break;
		total += (size_t)n;
	}
	return (ssize_t)total;
}

/* Forget the read-ahead window (its replies are freed as they arrive). */
static void remote_ra_drop(struct remote_file *f)
{
	struct remote_chunk *c;

	while ((c = f->ra_head)) {
		f->ra_head = c->next;
		remote_chunk_free(f, c);
	}
	f->ra_tail = NULL;
}

/* Queue READs until the window reaches @until. */
static int remote_ra_fill(struct remote_file *f, uint64_t until)
{
	size_t chunk = conn_max_read(f->r->conn);
	struct remote_chunk *c;
	int err;

	while (f->ra_end < until) {
		c = calloc(1, sizeof(*c));
		if (!c)
			return -ENOMEM;
		c->off = f->ra_end;
		c->len = (uint32_t)chunk;
		err = remote_submit_read(f, c->off, c->len, &c->q);
		if (err) {
			free(c);
			return err;
		}
		if (f->ra_tail)
			f->ra_tail->next = c;
		else
			f->ra_head = c;
		f->ra_tail = c;
		f->ra_end += chunk;
	}
	return 0;
}

/* Wait for the head chunk's reply and decode it in place. */
static void remote_ra_settle(struct remote_file *f, struct remote_chunk *c)
{
	size_t plen;
	int err;

	if (!c->q)
		return;
	err = conn_wait(f->r->conn, c->q, &c->reply, &plen);
	c->q = NULL;
	c->reply_len = plen;
	if (!err) {
		err = remote_reply(c->reply, plen, SSH_FXP_DATA);
		if (err == -ENODATA)
			err = 0;	/* end of file: no data */
		else if (!err && (sftp_dec_data(c->reply, plen, &c->data, &c->data_len) ||
				  c->data_len > c->len))
			err = -EIO;
	}
	c->err = err;
}

/*
 * Serve a sequential read from the read-ahead window (f->lock held): the
 * window starts at @off, is topped up to @len plus up to REMOTE_RA_MAX beyond
 * it, and consumed chunks leave it. A short chunk is the end of the file (or
 * a server that sent less): what follows it is dropped and asked again.
 */
static ssize_t remote_pread_ra(struct remote_file *f, unsigned char *buf, size_t len, uint64_t off)
{
	struct remote_chunk *c;
	size_t total = 0, skip, n, window;
	int err;

	window = (size_t)256 * 1024 << (f->ra_hits < 6 ? f->ra_hits : 6);
	if (window > REMOTE_RA_MAX)
		window = REMOTE_RA_MAX;
	while ((c = f->ra_head) && c->off + c->len <= off) {
		/* Chunks the reader skipped over. */
		f->ra_head = c->next;
		if (!f->ra_head)
			f->ra_tail = NULL;
		remote_chunk_free(f, c);
	}
	if (!f->ra_head)
		f->ra_end = off;
	err = remote_ra_fill(f, off + len + window);
	while (total < len && (c = f->ra_head)) {
		remote_ra_settle(f, c);
		if (c->err) {
			err = c->err;
			remote_ra_drop(f);
			break;
		}
		skip = off + total - c->off;	/* bytes of this chunk already consumed */
		n = c->data_len > skip ? c->data_len - skip : 0;
		if (n > len - total)
			n = len - total;
		if (n)	/* an empty chunk at end of file may have no buffer */
			memcpy(buf + total, c->data + skip, n);
		total += n;
		if (c->data_len < c->len && skip + n >= c->data_len) {
			/* Short: nothing after it in the window is valid. */
			remote_ra_drop(f);
			f->ra_end = off + total;
			break;
		}
		if (skip + n == c->len) {
			f->ra_head = c->next;
			if (!f->ra_head)
				f->ra_tail = NULL;
			remote_chunk_free(f, c);
		}
	}
	if (total == 0 && err)
		return err;
	return (ssize_t)total;
}

static ssize_t remote_pread_locked(struct remote_file *f, void *buf, size_t len, off_t off);

ssize_t remote_pread(struct remote_file *f, void *buf, size_t len, off_t off)
{
	ssize_t n;
	int err;

	if (off < 0)
		return -EINVAL;
	if (len == 0)
		return 0;
	pthread_mutex_lock(&f->lock);
	err = remote_file_revive(f, 0);
	if (!err)
		err = remote_wb_drain(f);	/* read what was written */
	if (err) {
		pthread_mutex_unlock(&f->lock);
		return err;
	}
	n = remote_pread_locked(f, buf, len, off);
	if (n == -EIO && f->path &&
	    (f->gen != conn_gen(f->r->conn) || !conn_connected(f->r->conn))) {
		/* The connection went away under the read: reopen and read again. */
		err = remote_file_revive(f, 1);
		n = err ? err : remote_pread_locked(f, buf, len, off);
	}
	pthread_mutex_unlock(&f->lock);
	return n;
}

/* One read of @f (f->lock held), through the read-ahead window when sequential. */
static ssize_t remote_pread_locked(struct remote_file *f, void *buf, size_t len, off_t off)
{
	uint64_t o = (uint64_t)off;
	ssize_t n;

	if (f->ra_head && f->ra_head->off <= o && o < f->ra_end) {
		/* Inside the window: the kernel's parallel readers arrive a little out of order. */
		f->ra_hits++;
		n = remote_pread_ra(f, buf, len, o);
	} else if (o == f->ra_expect) {
		f->ra_hits++;
		remote_ra_drop(f);
		f->ra_end = o;
		n = remote_pread_ra(f, buf, len, o);
	} else if (f->ra_head && o < f->ra_head->off && f->ra_head->off - o <= REMOTE_RA_MAX) {
		/* Just behind the window (a late out-of-order read): keep the window. */
		return remote_pread_direct(f, buf, len, off);
	} else {
		f->ra_hits = 0;
		remote_ra_drop(f);
		n = remote_pread_direct(f, buf, len, off);
	}
	if (n > 0)
		f->ra_expect = o + (uint64_t)n;
	return n;
}

static int remote_submit_write(struct remote_file *f, uint64_t off, const void *data, uint32_t len,
			       struct conn_req **q)
{
	struct sftp_buf b;
	uint32_t id = conn_next_id(f->r->conn);

	sftp_buf_init(&b);
	sftp_enc_write(&b, id, f->handle, f->hlen, off, data, len);
	return conn_submit(f->r->conn, &b, id, 0, f->gen, q);
}

/* Wait for a STATUS reply: 0 or -errno; *code: the status (SSH_FX_OK unless one came). */
static int remote_status_code_wait(struct remote *r, struct conn_req *q, uint32_t *code)
{
	unsigned char *p;
	size_t len;
	int err;

	*code = SSH_FX_OK;
	err = conn_wait(r->conn, q, &p, &len);
	if (err)
		return err;
	err = sftp_dec_status(p, len, code) ? -EIO : sftp_status_errno(*code);
	free(p);
	return err;
}

static int remote_status_wait(struct remote *r, struct conn_req *q)
{
	uint32_t code;

	return remote_status_code_wait(r, q, &code);
}

/*
 * A WRITE answered SSH_FX_FAILURE (f->lock held). SFTP v3 has no status for a
 * full disk: OpenSSH's server answers any failed write(2) with FAILURE. When
 * the file's file system on the VM has no room left for @len bytes, say so,
 * as a local disk would; anything else stays EIO.
 */
static int remote_write_failure(struct remote_file *f, size_t len)
{
	struct statvfs sv;

	if (f->path && (conn_extensions(f->r->conn) & SFTP_EXT_STATVFS) &&
	    remote_statvfs(f->r, f->path, &sv) == 0 &&
	    (unsigned long long)sv.f_bavail * (sv.f_frsize ? sv.f_frsize : sv.f_bsize) < len)
		return -ENOSPC;
	return -EIO;
}

/* Collect the oldest write in flight (f->lock held); keeps the first error. */
static void remote_wb_reap_one(struct remote_file *f)
{
	struct remote_wreq *w = f->wb_head;
	uint32_t code;
	int err;

	f->wb_head = w->next;
	if (!f->wb_head)
		f->wb_tail = NULL;
	err = remote_status_code_wait(f->r, w->q, &code);
	if (err && !f->wb_err)
		f->wb_err = code == SSH_FX_FAILURE ? remote_write_failure(f, w->len) : err;
	f->wb_bytes -= w->len;
	free(w);
}

/* Wait for every write in flight; returns (and clears) the first error. */
static int remote_wb_drain(struct remote_file *f)
{
	int err;

	while (f->wb_head)
		remote_wb_reap_one(f);
	err = f->wb_err;
	f->wb_err = 0;
	return err;
}

/*
 * Write-behind: queue the WRITEs and return once at most REMOTE_WB_MAX bytes
 * are left unconfirmed, so sequential writes stream at the link's speed. A
 * failure is returned by the next pwrite, fsync, fstat, ftruncate or close of
 * the handle.
 */
ssize_t remote_pwrite(struct remote_file *f, const void *buf, size_t len, off_t off)
{
	size_t chunk = conn_max_write(f->r->conn), done = 0, want;
	struct remote_wreq *w;
	int err;

	if (off < 0)
		return -EINVAL;
	if (len == 0)
		return 0;
	pthread_mutex_lock(&f->lock);
	remote_ra_drop(f);	/* the read-ahead may hold what this overwrites */
	f->ra_hits = 0;
	err = remote_file_revive(f, 0);
	if (!err) {
		err = f->wb_err;
		f->wb_err = 0;
	}
	while (!err && done < len) {
		while (f->wb_head && f->wb_bytes >= REMOTE_WB_MAX)
			remote_wb_reap_one(f);
		want = len - done < chunk ? len - done : chunk;
		w = calloc(1, sizeof(*w));
		if (!w) {
			err = -ENOMEM;
			break;
		}
		err = remote_submit_write(f, (uint64_t)off + done, (const unsigned char *)buf + done,
					  (uint32_t)want, &w->q);
		if (err) {
			free(w);
			break;
		}
		w->len = want;
		if (f->wb_tail)
			f->wb_tail->next = w;
		else
			f->wb_head = w;
		f->wb_tail = w;
		f->wb_bytes += want;
		done += want;
	}
	if (!err) {
		err = f->wb_err;
		f->wb_err = 0;
	}
	pthread_mutex_unlock(&f->lock);
	return err ? err : (ssize_t)len;
}

/* close(2) of a descriptor: the writes sent behind it have landed, or their error. */
int remote_flush(struct remote_file *f)
{
	int err;

	if (!f)
		return 0;
	pthread_mutex_lock(&f->lock);
	err = remote_wb_drain(f);
	pthread_mutex_unlock(&f->lock);
	return err;
}

/* Drain the writes of @f before an operation that must see them. */
static int remote_file_sync_point(struct remote_file *f)
{
	int err;

	pthread_mutex_lock(&f->lock);
	err = remote_wb_drain(f);
	if (!err)
		err = remote_file_revive(f, 0);
	pthread_mutex_unlock(&f->lock);
	return err;
}

int remote_fstat(struct remote_file *f, struct stat *st)
{
	struct sftp_buf b;
	unsigned char *p;
	size_t len;
	uint32_t id;
	int err = remote_file_sync_point(f);

	if (err)
		return err;
	id = conn_next_id(f->r->conn);
	sftp_buf_init(&b);
	sftp_enc_handle(&b, SSH_FXP_FSTAT, id, f->handle, f->hlen);
	err = conn_call(f->r->conn, &b, id, 0, f->gen, &p, &len);
	if (err)
		return err;
	return remote_attrs_reply(p, len, st);
}

int remote_ftruncate(struct remote_file *f, off_t size)
{
	struct sftp_attrs a = { .flags = SSH_FILEXFER_ATTR_SIZE, .size = (uint64_t)size };
	struct sftp_buf b;
	uint32_t id;
	int err;

	if (size < 0)
		return -EINVAL;
	err = remote_file_sync_point(f);
	if (err)
		return err;
	pthread_mutex_lock(&f->lock);
	remote_ra_drop(f);
	f->ra_hits = 0;
	pthread_mutex_unlock(&f->lock);
	id = conn_next_id(f->r->conn);
	sftp_buf_init(&b);
	sftp_enc_fsetstat(&b, id, f->handle, f->hlen, &a);
	return remote_status_call(f->r, &b, id, 0, f->gen);
}

int remote_fsync(struct remote_file *f)
{
	struct sftp_buf b;
	uint32_t id;
	int err = remote_file_sync_point(f);

	if (err)
		return err;
	if (!(conn_extensions(f->r->conn) & SFTP_EXT_FSYNC))
		return -ENOTSUP;
	id = conn_next_id(f->r->conn);
	sftp_buf_init(&b);
	sftp_enc_fsync(&b, id, f->handle, f->hlen);
	return remote_status_call(f->r, &b, id, 0, f->gen);
}

int remote_close(struct remote_file *f)
{
	int err, e;

	if (!f)
		return 0;
	pthread_mutex_lock(&f->lock);
	remote_ra_drop(f);
	e = remote_wb_drain(f);
	pthread_mutex_unlock(&f->lock);
	err = f->gen == conn_gen(f->r->conn) ? remote_close_handle(f) : 0;	/* else gone with its session */
	if (e)
		err = e;
	pthread_mutex_destroy(&f->lock);
	free(f->path);
	free(f);
	return err;
}

/* --- namespace ---------------------------------------------------------------------- */

/* After a generic failure, is @path there (and is it a directory)? */
static int remote_probe(struct remote *r, const char *path, int *isdir)
{
	struct stat st;
	int err = remote_lstat(r, path, &st);

	if (!err && isdir)
		*isdir = S_ISDIR(st.st_mode);
	return err;
}

static int remote_path_status(struct remote *r, int type, const char *path)
{
	struct sftp_buf b;
	uint32_t id = conn_next_id(r->conn);
	int err = remote_check_path(path);

	if (err)
		return err;
	sftp_buf_init(&b);
	sftp_enc_path(&b, type, id, path);
	return remote_status_call(r, &b, id, 0, 0);
}

int remote_mkdir(struct remote *r, const char *path, mode_t mode)
{
	struct sftp_attrs a = { .flags = SSH_FILEXFER_ATTR_PERMISSIONS, .perm = mode & 07777 };
	struct sftp_buf b;
	uint32_t id = conn_next_id(r->conn);
	int err = remote_check_path(path);

	if (err)
		return err;
	sftp_buf_init(&b);
	sftp_enc_path_attrs(&b, SSH_FXP_MKDIR, id, path, &a);
	err = remote_status_call(r, &b, id, 0, 0);
	if (err == -EIO && remote_probe(r, path, NULL) == 0)
		err = -EEXIST;
	return err;
}

int remote_rmdir(struct remote *r, const char *path)
{
	int err = remote_path_status(r, SSH_FXP_RMDIR, path), isdir = 0;

	if ((err == -EIO || err == -ENOENT) && remote_probe(r, path, &isdir) == 0)
		err = isdir ? -ENOTEMPTY : -ENOTDIR;
	return err;
}

int remote_unlink(struct remote *r, const char *path)
{
	int err = remote_path_status(r, SSH_FXP_REMOVE, path), isdir = 0;

	if ((err == -EIO || err == -EACCES) && remote_probe(r, path, &isdir) == 0 && isdir)
		err = -EISDIR;
	return err;
}

static int remote_two_paths(struct remote *r, int (*enc)(struct sftp_buf *, uint32_t, const char *,
							  const char *),
			    const char *a, const char *b2)
{
	struct sftp_buf b;
	uint32_t id = conn_next_id(r->conn);
	int err = remote_check_path(a);

	if (!err)
		err = remote_check_path(b2);
	if (err)
		return err;
	sftp_buf_init(&b);
	enc(&b, id, a, b2);
	return remote_status_call(r, &b, id, 0, 0);
}

/* Why a rename failed, when the server only said FAILURE. */
static int remote_rename_errno(struct remote *r, const char *from, const char *to, int err)
{
	int fdir = 0, tdir = 0;

	/* OpenSSH reports ENOTDIR as NO_SUCH_FILE and the rest as FAILURE. */
	if (err != -EIO && err != -ENOENT)
		return err;
	if (remote_probe(r, from, &fdir))
		return -ENOENT;
	if (remote_probe(r, to, &tdir) == 0) {
		if (fdir && !tdir)
			return -ENOTDIR;
		if (!fdir && tdir)
			return -EISDIR;
		if (fdir && tdir)
			return -ENOTEMPTY;
	}
	return err;
}

int remote_rename(struct remote *r, const char *from, const char *to, unsigned int flags)
{
	int err;

	if (flags & ~(unsigned int)RENAME_NOREPLACE)
		return -EINVAL;
	if (flags & RENAME_NOREPLACE) {
		/* Plain SFTP RENAME never replaces (OpenSSH: link + unlink, or stat + rename). */
		if (remote_probe(r, to, NULL) == 0)
			return -EEXIST;
		err = remote_two_paths(r, sftp_enc_rename, from, to);
		if (err == -EIO && remote_probe(r, to, NULL) == 0 && remote_probe(r, from, NULL) == 0)
			return -EEXIST;
		return remote_rename_errno(r, from, to, err);
	}
	if (conn_extensions(r->conn) & SFTP_EXT_POSIX_RENAME) {
		err = remote_two_paths(r, sftp_enc_posix_rename, from, to);
		return remote_rename_errno(r, from, to, err);
	}
	/* No posix-rename: remove the target first (not atomic). */
	err = remote_two_paths(r, sftp_enc_rename, from, to);
	if (err == -EIO && remote_probe(r, from, NULL) == 0 && remote_probe(r, to, NULL) == 0) {
		err = remote_unlink(r, to);
		if (err == -EISDIR)
			err = remote_rmdir(r, to);
		if (!err)
			err = remote_two_paths(r, sftp_enc_rename, from, to);
	}
	return remote_rename_errno(r, from, to, err);
}

int remote_symlink(struct remote *r, const char *target, const char *linkpath)
{
	int err;

	if (!target || strlen(target) >= 4096)
		return -ENAMETOOLONG;
	err = remote_two_paths(r, sftp_enc_symlink, target, linkpath);
	if (err == -EIO && remote_probe(r, linkpath, NULL) == 0)
		err = -EEXIST;
	return err;
}

int remote_link(struct remote *r, const char *from, const char *to)
{
	int err, isdir = 0;

	if (!(conn_extensions(r->conn) & SFTP_EXT_HARDLINK))
		return -ENOTSUP;
	err = remote_two_paths(r, sftp_enc_hardlink, from, to);
	if (err == -EIO && remote_probe(r, to, NULL) == 0)
		err = -EEXIST;
	else if (err == -EIO && remote_probe(r, from, &isdir) == 0 && isdir)
		err = -EPERM;
	return err;
}

int remote_readlink(struct remote *r, const char *path, char *buf, size_t size)
{
	struct sftp_buf b;
	struct sftp_attrs a;
	unsigned char *p;
	size_t len, pos;
	uint32_t id = conn_next_id(r->conn), count;
	char *name;
	int err = remote_check_path(path);

	if (err)
		return err;
	if (size == 0)
		return -EINVAL;
	sftp_buf_init(&b);
	sftp_enc_path(&b, SSH_FXP_READLINK, id, path);
	err = conn_call(r->conn, &b, id, CONN_IDEMPOTENT, 0, &p, &len);
	if (err)
		return err;
	name = malloc(len + 1);
	err = remote_reply(p, len, SSH_FXP_NAME);
	if (!err && !name)
		err = -ENOMEM;
	if (!err && (sftp_dec_name(p, len, &count, &pos) || count != 1 ||
		     sftp_dec_name_next(p, len, &pos, name, len + 1, &a)))
		err = -EIO;
	if (!err)
		snprintf(buf, size, "%s", name);
	free(name);
	free(p);
	return err;
}

int remote_path_join(const char *root, const char *path, char *buf, size_t len)
{
	size_t rl = root ? strlen(root) : 0;
	int n;

	while (rl > 1 && root[rl - 1] == '/')
		rl--;
	while (*path == '/')
		path++;
	if (!rl)
		n = snprintf(buf, len, "%s", *path ? path : ".");
	else if (!*path)
		n = snprintf(buf, len, "%.*s", (int)rl, root);
	else
		n = snprintf(buf, len, "%.*s%s%s", (int)rl, root, root[rl - 1] == '/' ? "" : "/",
			     path);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* --- whole files --------------------------------------------------------------------- */

int remote_recv_fd(struct remote_file *f, int fd, size_t chunk, remote_progress_fn progress,
		   void *payload, off_t *size)
{
	unsigned char *buf = malloc(chunk);
	off_t off = 0;
	int err = 0;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n, w, k;

		if (progress && (err = progress(off, payload)))
			break;
		n = remote_pread(f, buf, chunk, off);
		if (n <= 0) {
			err = (int)n;
			break;
		}
		for (w = 0; w < n; w += k) {
			k = pwrite(fd, buf + w, (size_t)(n - w), off + w);
			if (k < 0 && errno == EINTR) {
				k = 0;
				continue;
			}
			if (k <= 0) {
				err = k < 0 ? -errno : -EIO;
				break;
			}
		}
		if (err)
			break;
		off += n;
	}
	free(buf);
	*size = off;
	return err;
}

int remote_download(struct remote *r, const char *path, int fd, struct stat *st)
{
	struct remote_file *f = NULL;
	off_t size;
	int err, e;

	err = remote_open(r, path, O_RDONLY, 0, &f);
	if (err)
		return err;
	err = remote_fstat(f, st);
	if (!err)
		err = remote_recv_fd(f, fd, REMOTE_WINDOW, NULL, NULL, &size);
	if (!err && ftruncate(fd, size) < 0)
		err = -errno;
	e = remote_close(f);
	return err ? err : e;
}

/*
 * Write @fd from offset @from to its end to @f at the same offsets
 * (write-behind: errors may come at the next sync point); *size: the end.
 */
static int remote_send_fd(struct remote_file *f, int fd, off_t from, off_t *size)
{
	unsigned char *buf = malloc(REMOTE_WINDOW);
	off_t off = from;
	ssize_t n, w;
	int err = 0;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		n = pread(fd, buf, REMOTE_WINDOW, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			err = -errno;
		if (n <= 0)
			break;
		w = remote_pwrite(f, buf, (size_t)n, off);
		if (w < 0) {
			err = (int)w;
			break;
		}
		off += n;
	}
	free(buf);
	*size = off;
	return err;
}

int remote_upload(struct remote *r, int fd, const char *path, mode_t mode)
{
	struct remote_file *f = NULL;
	off_t size;
	int err, e;

	err = remote_open(r, path, O_WRONLY | O_CREAT | O_TRUNC, mode, &f);
	if (err)
		return err;
	err = remote_send_fd(f, fd, 0, &size);
	e = remote_close(f);
	return err ? err : e;
}

/* Submit the request in @b on @f's session without waiting; *q to collect. */
static int remote_submit_on(struct remote_file *f, struct sftp_buf *b, uint32_t id,
			    struct conn_req **q)
{
	return conn_submit(f->r->conn, b, id, 0, f->gen, q);
}

int remote_put(struct remote *r, int fd, const char *path, mode_t mode, time_t atime,
	       time_t mtime, off_t *size, const char *check, struct stat *check_st, int *check_err)
{
	struct remote_file *f = NULL;
	int err;

	*check_err = -EIO;
	*size = 0;
	/* A target no VM accepts is refused before anything is made there. */
	if (check && (err = remote_check_path(check)))
		return err;
	err = remote_open(r, path, O_WRONLY | O_CREAT | O_TRUNC, mode, &f);
	if (err)
		return err;
	return remote_put_from(f, fd, 0, mode, atime, mtime, size, check, check_st, check_err);
}

int remote_put_from(struct remote_file *f, int fd, off_t from, mode_t mode, time_t atime,
		    time_t mtime, off_t *size, const char *check, struct stat *check_st,
		    int *check_err)
{
	struct remote *r = f->r;
	struct conn_req *qs = NULL, *qa = NULL, *qc = NULL, *ql = NULL;
	struct sftp_attrs a = { .flags = SSH_FILEXFER_ATTR_PERMISSIONS | SSH_FILEXFER_ATTR_ACMODTIME,
				.perm = (uint32_t)(mode & 07777),
				.atime = (uint32_t)atime,
				.mtime = (uint32_t)mtime };
	struct sftp_buf b;
	unsigned char *p;
	size_t len;
	uint32_t id;
	int err, e;

	*check_err = -EIO;
	*size = 0;
	if (check && (err = remote_check_path(check))) {
		remote_close(f);
		return err;
	}
	err = remote_send_fd(f, fd, from, size);
	if (err) {
		remote_close(f);
		return err;
	}
	/*
	 * The server answers in order: the fsync comes after the writes, the
	 * mode and times after the data, the close last; the LSTAT of the file
	 * to replace rides along.
	 */
	if (conn_extensions(r->conn) & SFTP_EXT_FSYNC) {
		id = conn_next_id(r->conn);
		sftp_buf_init(&b);
		sftp_enc_fsync(&b, id, f->handle, f->hlen);
		err = remote_submit_on(f, &b, id, &qs);
	}
	if (!err) {
		id = conn_next_id(r->conn);
		sftp_buf_init(&b);
		sftp_enc_fsetstat(&b, id, f->handle, f->hlen, &a);
		err = remote_submit_on(f, &b, id, &qa);
	}
	if (!err) {
		id = conn_next_id(r->conn);
		sftp_buf_init(&b);
		sftp_enc_handle(&b, SSH_FXP_CLOSE, id, f->handle, f->hlen);
		err = remote_submit_on(f, &b, id, &qc);
	}
	if (!err && check) {
		id = conn_next_id(r->conn);
		sftp_buf_init(&b);
		sftp_enc_path(&b, SSH_FXP_LSTAT, id, check);
		err = conn_submit(r->conn, &b, id, CONN_IDEMPOTENT, 0, &ql);
	}
	pthread_mutex_lock(&f->lock);
	e = remote_wb_drain(f);
	pthread_mutex_unlock(&f->lock);
	if (e && !err)
		err = e;
	if (qs && (e = remote_status_wait(r, qs)) && !err && e != -EOPNOTSUPP && e != -ENOTSUP)
		err = e;
	if (qa && (e = remote_status_wait(r, qa)) && !err)
		err = e;
	if (qc && (e = remote_status_wait(r, qc)) && !err)
		err = e;
	if (ql) {
		e = conn_wait(r->conn, ql, &p, &len);
		*check_err = e ? e : remote_attrs_reply(p, len, check_st);
	}
	if (!qc && f->gen == conn_gen(r->conn))
		remote_close_handle(f);	/* the pipelined CLOSE was not sent */
	pthread_mutex_destroy(&f->lock);
	free(f->path);
	free(f);
	return err;
}

/* --- the session ---------------------------------------------------------------------- */

int remote_exec(struct remote *r, const char *cmd, size_t max, int timeout_ms, char **out,
		size_t *outlen, int *status)
{
	return conn_exec(r->conn, cmd, max, timeout_ms, out, outlen, status);
}

unsigned int remote_extensions(struct remote *r)
{
	return conn_extensions(r->conn);	/* enum sftp_ext has enum remote_ext's values */
}

int remote_connected(struct remote *r)
{
	return conn_connected(r->conn);
}

void remote_set_redial(struct remote *r, int (*redial)(void *payload, char *host, size_t hostlen,
						       int *port),
		       void *payload)
{
	conn_set_redial(r->conn, redial, payload);
}

int remote_new(struct remote **out, const struct remote_opts *o, char *err, size_t errlen)
{
	struct ssh_params sp;
	struct sshconf sc;
	struct remote *r = NULL;
	char *kh = NULL, *id = NULL;
	int rc, i;

	*out = NULL;
	if (errlen)
		err[0] = '\0';
	if (!o->host || !*o->host) {
		snprintf(err, errlen, "no host given");
		return -EINVAL;
	}
	rc = sshconf_resolve(o->host, o->ssh_config, &sc, err, errlen);
	if (rc)
		return rc;
	memset(&sp, 0, sizeof(sp));
	sp.name = o->host;
	sp.host = sc.hostname;
	sp.port = o->port > 0 ? o->port : sc.port > 0 ? sc.port : 22;
	sp.user = o->user ? o->user : sc.user;
	sp.use_agent = 1;
	if (o->identity) {
		id = sshconf_expand(o->identity);
		sp.identities[0] = id;
		sp.nidentities = 1;
	} else {
		for (i = 0; i < sc.nidentities && i < SSH_MAX_IDENTITIES; i++)
			sp.identities[i] = sc.identities[i];
		sp.nidentities = i;
	}
	kh = sshconf_expand(o->known_hosts ? o->known_hosts
					   : sc.known_hosts ? sc.known_hosts : "~/.ssh/known_hosts");
	sp.known_hosts = kh;
	sp.host_key_alias = o->host_key_alias ? o->host_key_alias : sc.host_key_alias;
	sp.accept_new_hostkey = o->accept_new_hostkey;
	sp.connect_timeout_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 15000;
	sp.keepalive_s = o->keepalive_s > 0 ? o->keepalive_s : 15;
	r = calloc(1, sizeof(*r));
	if (!r || !kh || (o->identity && !id)) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	rc = conn_new(&r->conn, &sp, o->request_timeout_ms > 0 ? o->request_timeout_ms : 60000, err,
		      errlen);
	if (rc)
		goto out;
	*out = r;
	r = NULL;
out:
	free(r);
	free(kh);
	free(id);
	sshconf_release(&sc);
	return rc;
}

void remote_free(struct remote *r)
{
	if (!r)
		return;
	conn_free(r->conn);
	free(r);
}
