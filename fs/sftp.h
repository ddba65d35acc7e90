/*
 * fs/sftp.h: the SFTP v3 wire format (draft-ietf-secsh-filexfer-02) with
 * OpenSSH's extensions, as pure functions over byte buffers.
 *
 * Encoders append one complete packet (4-byte length included) to a struct
 * sftp_buf, which owns its memory (sftp_buf_release frees it). Decoders read
 * one reply packet *without* its length prefix (what sftp_packet_len framed);
 * every read is bounds-checked and a short, oversized or malformed packet
 * yields -EPROTO, never an overread. Decoded strings point into the packet and
 * live as long as it does. No libssh2 type appears here.
 */
#ifndef WAKEFS_SFTP_H
#define WAKEFS_SFTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

enum sftp_type {
	SSH_FXP_INIT = 1,
	SSH_FXP_VERSION = 2,
	SSH_FXP_OPEN = 3,
	SSH_FXP_CLOSE = 4,
	SSH_FXP_READ = 5,
	SSH_FXP_WRITE = 6,
	SSH_FXP_LSTAT = 7,
	SSH_FXP_FSTAT = 8,
	SSH_FXP_SETSTAT = 9,
	SSH_FXP_FSETSTAT = 10,
	SSH_FXP_OPENDIR = 11,
	SSH_FXP_READDIR = 12,
	SSH_FXP_REMOVE = 13,
	SSH_FXP_MKDIR = 14,
	SSH_FXP_RMDIR = 15,
	SSH_FXP_REALPATH = 16,
	SSH_FXP_STAT = 17,
	SSH_FXP_RENAME = 18,
	SSH_FXP_READLINK = 19,
	SSH_FXP_SYMLINK = 20,
	SSH_FXP_STATUS = 101,
	SSH_FXP_HANDLE = 102,
	SSH_FXP_DATA = 103,
	SSH_FXP_NAME = 104,
	SSH_FXP_ATTRS = 105,
	SSH_FXP_EXTENDED = 200,
	SSH_FXP_EXTENDED_REPLY = 201,
};

enum sftp_status {
	SSH_FX_OK = 0,
	SSH_FX_EOF = 1,
	SSH_FX_NO_SUCH_FILE = 2,
	SSH_FX_PERMISSION_DENIED = 3,
	SSH_FX_FAILURE = 4,
	SSH_FX_BAD_MESSAGE = 5,
	SSH_FX_NO_CONNECTION = 6,
	SSH_FX_CONNECTION_LOST = 7,
	SSH_FX_OP_UNSUPPORTED = 8,
};

enum sftp_attr_flags {
	SSH_FILEXFER_ATTR_SIZE = 1 << 0,
	SSH_FILEXFER_ATTR_UIDGID = 1 << 1,
	SSH_FILEXFER_ATTR_PERMISSIONS = 1 << 2,
	SSH_FILEXFER_ATTR_ACMODTIME = 1 << 3,
	SSH_FILEXFER_ATTR_EXTENDED = (int)(1u << 31),
};

enum sftp_open_flags {
	SSH_FXF_READ = 1 << 0,
	SSH_FXF_WRITE = 1 << 1,
	SSH_FXF_APPEND = 1 << 2,
	SSH_FXF_CREAT = 1 << 3,
	SSH_FXF_TRUNC = 1 << 4,
	SSH_FXF_EXCL = 1 << 5,
};

/* The OpenSSH extensions we use, as bits (the same values as enum remote_ext). */
enum sftp_ext {
	SFTP_EXT_POSIX_RENAME = 1 << 0,
	SFTP_EXT_STATVFS = 1 << 1,
	SFTP_EXT_FSYNC = 1 << 2,
	SFTP_EXT_HARDLINK = 1 << 3,
	SFTP_EXT_LIMITS = 1 << 4,
};

/* The largest reply we accept (OpenSSH's server sends at most 256 KiB + header). */
#define SFTP_MAX_PACKET (1024 * 1024)

struct sftp_attrs {
	uint32_t flags;		/* SSH_FILEXFER_ATTR_* present */
	uint64_t size;
	uint32_t uid, gid;
	uint32_t perm;
	uint32_t atime, mtime;
};

struct sftp_buf {
	unsigned char *data;
	size_t len, cap;
	int oom;		/* an append failed: the buffer is unusable */
};

void sftp_buf_init(struct sftp_buf *b);
void sftp_buf_release(struct sftp_buf *b);	/* frees data; the struct is reusable after init */

/* Encoders: append one packet; return 0 or -ENOMEM. */
int sftp_enc_init(struct sftp_buf *b, uint32_t version);
/* LSTAT, STAT, OPENDIR, REMOVE, RMDIR, REALPATH, READLINK: one path. */
int sftp_enc_path(struct sftp_buf *b, int type, uint32_t id, const char *path);
/* CLOSE, FSTAT, READDIR: one handle. */
int sftp_enc_handle(struct sftp_buf *b, int type, uint32_t id, const void *h, size_t hlen);
int sftp_enc_open(struct sftp_buf *b, uint32_t id, const char *path, uint32_t pflags,
		  const struct sftp_attrs *a);
int sftp_enc_read(struct sftp_buf *b, uint32_t id, const void *h, size_t hlen, uint64_t off,
		  uint32_t len);
int sftp_enc_write(struct sftp_buf *b, uint32_t id, const void *h, size_t hlen, uint64_t off,
		   const void *data, uint32_t len);
/* SETSTAT and MKDIR (path + attrs), FSETSTAT (handle + attrs). */
int sftp_enc_path_attrs(struct sftp_buf *b, int type, uint32_t id, const char *path,
			const struct sftp_attrs *a);
int sftp_enc_fsetstat(struct sftp_buf *b, uint32_t id, const void *h, size_t hlen,
		      const struct sftp_attrs *a);
/* RENAME (from, to) and SYMLINK (target, linkpath: OpenSSH's reversed order). */
int sftp_enc_rename(struct sftp_buf *b, uint32_t id, const char *from, const char *to);
int sftp_enc_symlink(struct sftp_buf *b, uint32_t id, const char *target, const char *linkpath);
/* EXTENDED requests. */
int sftp_enc_posix_rename(struct sftp_buf *b, uint32_t id, const char *from, const char *to);
int sftp_enc_hardlink(struct sftp_buf *b, uint32_t id, const char *from, const char *to);
int sftp_enc_statvfs(struct sftp_buf *b, uint32_t id, const char *path);
int sftp_enc_fsync(struct sftp_buf *b, uint32_t id, const void *h, size_t hlen);
int sftp_enc_limits(struct sftp_buf *b, uint32_t id);

/*
 * Framing: given the first @avail bytes of the input stream, sets *len to
 * the body length of the next packet (after its 4-byte prefix). Returns 1 if
 * the whole packet is there, 0 if more bytes are needed, -EPROTO if the
 * length is 0 or above SFTP_MAX_PACKET.
 */
int sftp_packet_len(const unsigned char *p, size_t avail, uint32_t *len);

/* The type and id of a reply body (VERSION has no id: *id is its version). */
int sftp_dec_header(const unsigned char *p, size_t len, uint8_t *type, uint32_t *id);

/* VERSION: the version and the OpenSSH extensions we know (enum sftp_ext). */
int sftp_dec_version(const unsigned char *p, size_t len, uint32_t *version, unsigned int *exts);
/* STATUS: the code (message and language are checked but not returned). */
int sftp_dec_status(const unsigned char *p, size_t len, uint32_t *code);
/* HANDLE: points into the packet; at most 256 bytes as the draft says. */
int sftp_dec_handle(const unsigned char *p, size_t len, const unsigned char **h, size_t *hlen);
/* DATA: points into the packet. */
int sftp_dec_data(const unsigned char *p, size_t len, const unsigned char **data, size_t *dlen);
int sftp_dec_attrs(const unsigned char *p, size_t len, struct sftp_attrs *a);

/*
 * NAME: *count entries follow; call sftp_dec_name_next @count times with
 * *pos starting at the value sftp_dec_name set. Names are NOT NUL-terminated
 * in the packet: they are copied into @name (of @namesz bytes; -ENAMETOOLONG
 * when they do not fit) so callers get C strings.
 */
int sftp_dec_name(const unsigned char *p, size_t len, uint32_t *count, size_t *pos);
int sftp_dec_name_next(const unsigned char *p, size_t len, size_t *pos, char *name,
		       size_t namesz, struct sftp_attrs *a);

/* EXTENDED_REPLY bodies. */
int sftp_dec_statvfs(const unsigned char *p, size_t len, struct statvfs *sv);
struct sftp_limits {
	uint64_t max_packet, max_read, max_write, max_handles;
};
int sftp_dec_limits(const unsigned char *p, size_t len, struct sftp_limits *l);

/* The one table from SFTP status codes to negative errno (OK -> 0). */
int sftp_status_errno(uint32_t code);

/* Attributes <-> struct stat (times in seconds; absent fields are 0). */
void sftp_attrs_to_stat(const struct sftp_attrs *a, struct stat *st);

#endif
