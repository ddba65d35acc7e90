/*
 * fs/sftp.c: the SFTP v3 packet codec.
 *
 * Requests are built by appending big-endian fields to a growable buffer;
 * replies are read with a cursor (struct rd) whose every getter checks the
 * remaining length first, so a hostile or truncated reply can only make a
 * decoder return -EPROTO. Decoders also reject trailing garbage where the
 * draft fixes the layout, which keeps a desynchronised stream from being
 * misread as a valid reply. This file holds the only SFTP status -> errno
 * table.
 */
#include "sftp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* --- writing ------------------------------------------------------------- */

void sftp_buf_init(struct sftp_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void sftp_buf_release(struct sftp_buf *b)
{
	if (!b)
		return;
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static int sftp_reserve(struct sftp_buf *b, size_t more)
{
	size_t need, cap;
	unsigned char *d;

	if (b->oom)
		return -ENOMEM;
	if (more > SIZE_MAX - b->len)
		goto fail;
	need = b->len + more;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	d = realloc(b->data, cap);
	if (!d)
		goto fail;
	b->data = d;
	b->cap = cap;
	return 0;
fail:
	b->oom = 1;
	return -ENOMEM;
}

static void sftp_put_u8(struct sftp_buf *b, uint8_t v)
{
	if (sftp_reserve(b, 1) == 0)
		b->data[b->len++] = v;
}

static void sftp_put_u32(struct sftp_buf *b, uint32_t v)
{
	if (sftp_reserve(b, 4))
		return;
	b->data[b->len++] = v >> 24;
	b->data[b->len++] = v >> 16;
	b->data[b->len++] = v >> 8;
	b->data[b->len++] = v;
}

static void sftp_put_u64(struct sftp_buf *b, uint64_t v)
{
	sftp_put_u32(b, v >> 32);
	sftp_put_u32(b, (uint32_t)v);
}

static void sftp_put_bytes(struct sftp_buf *b, const void *p, size_t n)
{
	if (n > UINT32_MAX) {
		b->oom = 1;
		return;
	}
	sftp_put_u32(b, (uint32_t)n);
	if (sftp_reserve(b, n) == 0 && n) {
		memcpy(b->data + b->len, p, n);
		b->len += n;
	}
}

static void sftp_put_str(struct sftp_buf *b, const char *s)
{
	sftp_put_bytes(b, s, strlen(s));
}

static void sftp_put_attrs(struct sftp_buf *b, const struct sftp_attrs *a)
{
	uint32_t fl = a ? a->flags & ~(uint32_t)SSH_FILEXFER_ATTR_EXTENDED : 0;

	sftp_put_u32(b, fl);
	if (fl & SSH_FILEXFER_ATTR_SIZE)
		sftp_put_u64(b, a->size);
	if (fl & SSH_FILEXFER_ATTR_UIDGID) {
		sftp_put_u32(b, a->uid);
		sftp_put_u32(b, a->gid);
	}
	if (fl & SSH_FILEXFER_ATTR_PERMISSIONS)
		sftp_put_u32(b, a->perm);
	if (fl & SSH_FILEXFER_ATTR_ACMODTIME) {
		sftp_put_u32(b, a->atime);
		sftp_put_u32(b, a->mtime);
	}
}

/* Start a packet: reserve the length, write type and id. Returns its start. */
static size_t sftp_begin(struct sftp_buf *b, int type, uint32_t id, int with_id)
{
	size_t start = b->len;

	sftp_put_u32(b, 0);
	sftp_put_u8(b, (uint8_t)type);
	if (with_id)
		sftp_put_u32(b, id);
	return start;
}

/* Finish a packet: patch its length. */
static int sftp_end(struct sftp_buf *b, size_t start)
{
	size_t n;

	if (b->oom)
		return -ENOMEM;
	n = b->len - start - 4;
	if (n > UINT32_MAX) {
		b->oom = 1;
		return -ENOMEM;
	}
	b->data[start] = n >> 24;
	b->data[start + 1] = n >> 16;
	b->data[start + 2] = n >> 8;
	b->data[start + 3] = n;
	return 0;
}

int sftp_enc_init(struct sftp_buf *b, uint32_t version)
{
	size_t s = sftp_begin(b, SSH_FXP_INIT, 0, 0);

	sftp_put_u32(b, version);
	return sftp_end(b, s);
}

int sftp_enc_path(struct sftp_buf *b, int type, uint32_t id, const char *path)
{
	size_t s = sftp_begin(b, type, id, 1);

	sftp_put_str(b, path);
	return sftp_end(b, s);
}

int sftp_enc_handle(struct sftp_buf *b, int type, uint32_t id, const void *h, size_t hlen)
{
	size_t s = sftp_begin(b, type, id, 1);

	sftp_put_bytes(b, h, hlen);
	return sftp_end(b, s);
}

int sftp_enc_open(struct sftp_buf *b, uint32_t id, const char *path, uint32_t pflags,
		  const struct sftp_attrs *a)
{
	size_t s = sftp_begin(b, SSH_FXP_OPEN, id, 1);

	sftp_put_str(b, path);
	sftp_put_u32(b, pflags);
	sftp_put_attrs(b, a);
	return sftp_end(b, s);
}

int sftp_enc_read(struct sftp_buf *b, uint32_t id, const void *h, size_t hlen, uint64_t off,
		  uint32_t len)
{
	size_t s = sftp_begin(b, SSH_FXP_READ, id, 1);

	sftp_put_bytes(b, h, hlen);
	sftp_put_u64(b, off);
	sftp_put_u32(b, len);
	return sftp_end(b, s);
}

int sftp_enc_write(struct sftp_buf *b, uint32_t id, const void *h, size_t hlen, uint64_t off,
		   const void *data, uint32_t len)
{
	size_t s = sftp_begin(b, SSH_FXP_WRITE, id, 1);

	sftp_put_bytes(b, h, hlen);
	sftp_put_u64(b, off);
	sftp_put_bytes(b, data, len);
	return sftp_end(b, s);
}

int sftp_enc_path_attrs(struct sftp_buf *b, int type, uint32_t id, const char *path,
			const struct sftp_attrs *a)
{
	size_t s = sftp_begin(b, type, id, 1);

	sftp_put_str(b, path);
	sftp_put_attrs(b, a);
	return sftp_end(b, s);
}

int sftp_enc_fsetstat(struct sftp_buf *b, uint32_t id, const void *h, size_t hlen,
		      const struct sftp_attrs *a)
{
	size_t s = sftp_begin(b, SSH_FXP_FSETSTAT, id, 1);

	sftp_put_bytes(b, h, hlen);
	sftp_put_attrs(b, a);
	return sftp_end(b, s);
}

static int sftp_enc_two(struct sftp_buf *b, int type, uint32_t id, const char *ext,
			const char *s1, const char *s2)
{
	size_t s = sftp_begin(b, type, id, 1);

	if (ext)
		sftp_put_str(b, ext);
	sftp_put_str(b, s1);
	sftp_put_str(b, s2);
	return sftp_end(b, s);
}

int sftp_enc_rename(struct sftp_buf *b, uint32_t id, const char *from, const char *to)
{
	return sftp_enc_two(b, SSH_FXP_RENAME, id, NULL, from, to);
}

/*
 * The draft orders SYMLINK as (linkpath, targetpath); OpenSSH's server has
 * always read them the other way round, and every client follows OpenSSH.
 */
int sftp_enc_symlink(struct sftp_buf *b, uint32_t id, const char *target, const char *linkpath)
{
	return sftp_enc_two(b, SSH_FXP_SYMLINK, id, NULL, target, linkpath);
}

int sftp_enc_posix_rename(struct sftp_buf *b, uint32_t id, const char *from, const char *to)
{
	return sftp_enc_two(b, SSH_FXP_EXTENDED, id, "posix-rename@openssh.com", from, to);
}

int sftp_enc_hardlink(struct sftp_buf *b, uint32_t id, const char *from, const char *to)
{
	return sftp_enc_two(b, SSH_FXP_EXTENDED, id, "hardlink@openssh.com", from, to);
}

int sftp_enc_statvfs(struct sftp_buf *b, uint32_t id, const char *path)
{
	size_t s = sftp_begin(b, SSH_FXP_EXTENDED, id, 1);

	sftp_put_str(b, "statvfs@openssh.com");
	sftp_put_str(b, path);
	return sftp_end(b, s);
}

int sftp_enc_fsync(struct sftp_buf *b, uint32_t id, const void *h, size_t hlen)
{
	size_t s = sftp_begin(b, SSH_FXP_EXTENDED, id, 1);

	sftp_put_str(b, "fsync@openssh.com");
	sftp_put_bytes(b, h, hlen);
	return sftp_end(b, s);
}

int sftp_enc_limits(struct sftp_buf *b, uint32_t id)
{
	size_t s = sftp_begin(b, SSH_FXP_EXTENDED, id, 1);

	sftp_put_str(b, "limits@openssh.com");
	return sftp_end(b, s);
}

/* --- reading ------------------------------------------------------------- */

struct rd {
	const unsigned char *p;
	size_t len, pos;
};

static int rd_u8(struct rd *r, uint8_t *v)
{
	if (r->len - r->pos < 1)
		return -EPROTO;
	*v = r->p[r->pos++];
	return 0;
}

static int rd_u32(struct rd *r, uint32_t *v)
{
	const unsigned char *q;

	if (r->len - r->pos < 4)
		return -EPROTO;
	q = r->p + r->pos;
	*v = (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3];
	r->pos += 4;
	return 0;
}

static int rd_u64(struct rd *r, uint64_t *v)
{
	uint32_t hi, lo;

	if (rd_u32(r, &hi) || rd_u32(r, &lo))
		return -EPROTO;
	*v = (uint64_t)hi << 32 | lo;
	return 0;
}

static int rd_str(struct rd *r, const unsigned char **s, size_t *n)
{
	uint32_t l;

	if (rd_u32(r, &l))
		return -EPROTO;
	if (l > r->len - r->pos)
		return -EPROTO;
	*s = r->p + r->pos;
	*n = l;
	r->pos += l;
	return 0;
}

static int rd_attrs(struct rd *r, struct sftp_attrs *a)
{
	uint32_t n, i;
	const unsigned char *s;
	size_t sl;

	memset(a, 0, sizeof(*a));
	if (rd_u32(r, &a->flags))
		return -EPROTO;
	if ((a->flags & SSH_FILEXFER_ATTR_SIZE) && rd_u64(r, &a->size))
		return -EPROTO;
	if ((a->flags & SSH_FILEXFER_ATTR_UIDGID) && (rd_u32(r, &a->uid) || rd_u32(r, &a->gid)))
		return -EPROTO;
	if ((a->flags & SSH_FILEXFER_ATTR_PERMISSIONS) && rd_u32(r, &a->perm))
		return -EPROTO;
	if ((a->flags & SSH_FILEXFER_ATTR_ACMODTIME) &&
	    (rd_u32(r, &a->atime) || rd_u32(r, &a->mtime)))
		return -EPROTO;
	if (a->flags & SSH_FILEXFER_ATTR_EXTENDED) {
		if (rd_u32(r, &n))
			return -EPROTO;
		for (i = 0; i < n; i++)
			if (rd_str(r, &s, &sl) || rd_str(r, &s, &sl))
				return -EPROTO;
	}
	return 0;
}

/* Open a reply of @type: check the type, skip the id. */
static int rd_begin(struct rd *r, const unsigned char *p, size_t len, int type)
{
	uint8_t t;
	uint32_t id;

	r->p = p;
	r->len = len;
	r->pos = 0;
	if (rd_u8(r, &t) || t != type)
		return -EPROTO;
	if (type != SSH_FXP_VERSION && rd_u32(r, &id))
		return -EPROTO;
	return 0;
}

static int rd_done(const struct rd *r)
{
	return r->pos == r->len ? 0 : -EPROTO;
}

int sftp_packet_len(const unsigned char *p, size_t avail, uint32_t *len)
{
	uint32_t n;

	if (avail < 4)
		return 0;
	n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	if (n == 0 || n > SFTP_MAX_PACKET)
		return -EPROTO;
	*len = n;
	return avail - 4 >= n;
}

int sftp_dec_header(const unsigned char *p, size_t len, uint8_t *type, uint32_t *id)
{
	struct rd r = { p, len, 0 };

	if (rd_u8(&r, type) || rd_u32(&r, id))
		return -EPROTO;
	return 0;
}

int sftp_dec_version(const unsigned char *p, size_t len, uint32_t *version, unsigned int *exts)
{
	static const struct {
		const char *name;
		unsigned int bit;
	} known[] = {
		{ "posix-rename@openssh.com", SFTP_EXT_POSIX_RENAME },
		{ "statvfs@openssh.com", SFTP_EXT_STATVFS },
		{ "fsync@openssh.com", SFTP_EXT_FSYNC },
		{ "hardlink@openssh.com", SFTP_EXT_HARDLINK },
		{ "limits@openssh.com", SFTP_EXT_LIMITS },
	};
	struct rd r;
	const unsigned char *name, *data;
	size_t nl, dl, i;

	*exts = 0;
	if (rd_begin(&r, p, len, SSH_FXP_VERSION) || rd_u32(&r, version))
		return -EPROTO;
	while (r.pos < r.len) {
		if (rd_str(&r, &name, &nl) || rd_str(&r, &data, &dl))
			return -EPROTO;
		for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (nl == strlen(known[i].name) && memcmp(name, known[i].name, nl) == 0)
				*exts |= known[i].bit;
	}
	return 0;
}

int sftp_dec_status(const unsigned char *p, size_t len, uint32_t *code)
{
	struct rd r;
	const unsigned char *s;
	size_t sl;

	if (rd_begin(&r, p, len, SSH_FXP_STATUS) || rd_u32(&r, code))
		return -EPROTO;
	/* Message and language tag are optional in practice (some servers omit them). */
	if (r.pos == r.len)
		return 0;
	if (rd_str(&r, &s, &sl) || rd_str(&r, &s, &sl))
		return -EPROTO;
	return rd_done(&r);
}

int sftp_dec_handle(const unsigned char *p, size_t len, const unsigned char **h, size_t *hlen)
{
	struct rd r;

	if (rd_begin(&r, p, len, SSH_FXP_HANDLE) || rd_str(&r, h, hlen))
		return -EPROTO;
	if (*hlen == 0 || *hlen > 256)
		return -EPROTO;
	return rd_done(&r);
}

int sftp_dec_data(const unsigned char *p, size_t len, const unsigned char **data, size_t *dlen)
{
	struct rd r;

	if (rd_begin(&r, p, len, SSH_FXP_DATA) || rd_str(&r, data, dlen))
		return -EPROTO;
	/* OpenSSH may append an end-of-file flag (a bool) after the data: allow it. */
	if (r.len - r.pos == 1)
		return 0;
	return rd_done(&r);
}

int sftp_dec_attrs(const unsigned char *p, size_t len, struct sftp_attrs *a)
{
	struct rd r;

	if (rd_begin(&r, p, len, SSH_FXP_ATTRS) || rd_attrs(&r, a))
		return -EPROTO;
	return rd_done(&r);
}

int sftp_dec_name(const unsigned char *p, size_t len, uint32_t *count, size_t *pos)
{
	struct rd r;

	if (rd_begin(&r, p, len, SSH_FXP_NAME) || rd_u32(&r, count))
		return -EPROTO;
	/* Each entry takes at least 12 bytes: a cheap bound against absurd counts. */
	if (*count > (r.len - r.pos) / 12)
		return -EPROTO;
	*pos = r.pos;
	return 0;
}

int sftp_dec_name_next(const unsigned char *p, size_t len, size_t *pos, char *name,
		       size_t namesz, struct sftp_attrs *a)
{
	struct rd r = { p, len, *pos };
	const unsigned char *s, *ln;
	size_t sl, lnl;

	if (*pos > len)
		return -EPROTO;
	if (rd_str(&r, &s, &sl) || rd_str(&r, &ln, &lnl) || rd_attrs(&r, a))
		return -EPROTO;
	if (memchr(s, '\0', sl))
		return -EPROTO;
	if (sl >= namesz)
		return -ENAMETOOLONG;
	memcpy(name, s, sl);
	name[sl] = '\0';
	*pos = r.pos;
	return 0;
}

int sftp_dec_statvfs(const unsigned char *p, size_t len, struct statvfs *sv)
{
	struct rd r;
	uint64_t v[11];
	int i;

	if (rd_begin(&r, p, len, SSH_FXP_EXTENDED_REPLY))
		return -EPROTO;
	for (i = 0; i < 11; i++)
		if (rd_u64(&r, &v[i]))
			return -EPROTO;
	if (rd_done(&r))
		return -EPROTO;
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = v[0];
	sv->f_frsize = v[1];
	sv->f_blocks = v[2];
	sv->f_bfree = v[3];
	sv->f_bavail = v[4];
	sv->f_files = v[5];
	sv->f_ffree = v[6];
	sv->f_favail = v[7];
	sv->f_fsid = v[8];
	sv->f_flag = v[9];
	sv->f_namemax = v[10];
	return 0;
}

int sftp_dec_limits(const unsigned char *p, size_t len, struct sftp_limits *l)
{
	struct rd r;

	if (rd_begin(&r, p, len, SSH_FXP_EXTENDED_REPLY) || rd_u64(&r, &l->max_packet) ||
	    rd_u64(&r, &l->max_read) || rd_u64(&r, &l->max_write) || rd_u64(&r, &l->max_handles))
		return -EPROTO;
	return rd_done(&r);
}

int sftp_status_errno(uint32_t code)
{
	switch (code) {
	case SSH_FX_OK:
		return 0;
	case SSH_FX_EOF:
		return -ENODATA;
	case SSH_FX_NO_SUCH_FILE:
		return -ENOENT;
	case SSH_FX_PERMISSION_DENIED:
		return -EACCES;
	case SSH_FX_BAD_MESSAGE:
		return -EINVAL;	/* OpenSSH: EINVAL, ENAMETOOLONG */
	case SSH_FX_OP_UNSUPPORTED:
		return -EOPNOTSUPP;
	case SSH_FX_NO_CONNECTION:
	case SSH_FX_CONNECTION_LOST:
	case SSH_FX_FAILURE:
	default:
		return -EIO;
	}
}

void sftp_attrs_to_stat(const struct sftp_attrs *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	if (a->flags & SSH_FILEXFER_ATTR_SIZE)
		st->st_size = (off_t)a->size;
	if (a->flags & SSH_FILEXFER_ATTR_UIDGID) {
		st->st_uid = a->uid;
		st->st_gid = a->gid;
	}
	if (a->flags & SSH_FILEXFER_ATTR_PERMISSIONS)
		st->st_mode = a->perm;
	if (a->flags & SSH_FILEXFER_ATTR_ACMODTIME) {
		st->st_atim.tv_sec = a->atime;
		st->st_mtim.tv_sec = a->mtime;
		st->st_ctim.tv_sec = a->mtime;
	}
	st->st_nlink = 1;
	st->st_blksize = 4096;
	st->st_blocks = (st->st_size + 511) / 512;
}
