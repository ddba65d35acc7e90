/*
 * check_sftp.c: the SFTP v3 codec. Requests are checked byte for byte;
 * replies are built here by hand, decoded, and then every truncation of each
 * (and a few hostile variants) must be rejected without reading past the end
 * (run under ASan/valgrind to catch overreads: each truncated copy lives in
 * its own exact-size allocation).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sftp.h"
#include "tap.h"

/* --- a little builder for replies -------------------------------------------- */

struct pk {
	unsigned char d[4096];
	size_t n;
};

static void pk_u8(struct pk *p, uint8_t v)
{
	p->d[p->n++] = v;
}

static void pk_u32(struct pk *p, uint32_t v)
{
	pk_u8(p, v >> 24);
	pk_u8(p, v >> 16);
	pk_u8(p, v >> 8);
	pk_u8(p, v);
}

static void pk_u64(struct pk *p, uint64_t v)
{
	pk_u32(p, v >> 32);
	pk_u32(p, (uint32_t)v);
}

static void pk_bytes(struct pk *p, const void *s, size_t n)
{
	pk_u32(p, (uint32_t)n);
	memcpy(p->d + p->n, s, n);
	p->n += n;
}

static void pk_str(struct pk *p, const char *s)
{
	pk_bytes(p, s, strlen(s));
}

static void pk_attrs_full(struct pk *p)
{
	pk_u32(p, SSH_FILEXFER_ATTR_SIZE | SSH_FILEXFER_ATTR_UIDGID | SSH_FILEXFER_ATTR_PERMISSIONS |
			  SSH_FILEXFER_ATTR_ACMODTIME | SSH_FILEXFER_ATTR_EXTENDED);
	pk_u64(p, 5ULL << 32);	/* > 4 GiB */
	pk_u32(p, 1000);
	pk_u32(p, 100);
	pk_u32(p, 0100644);
	pk_u32(p, 111);
	pk_u32(p, 222);
	pk_u32(p, 1);
	pk_str(p, "ext@example.com");
	pk_str(p, "value");
}

/* A copy of the first @n bytes in its own allocation, so overreads are caught. */
static unsigned char *dup_n(const struct pk *p, size_t n)
{
	unsigned char *c = malloc(n ? n : 1);

	ck_assert_ptr_nonnull(c);
	memcpy(c, p->d, n);
	return c;
}

/* --- requests ------------------------------------------------------------------- */

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

START_TEST(test_enc_open)
{
	struct sftp_buf b;
	struct sftp_attrs a = { .flags = SSH_FILEXFER_ATTR_PERMISSIONS, .perm = 0640 };
	struct pk want = { .n = 0 };

	pk_u32(&want, 0);	/* patched below */
	pk_u8(&want, SSH_FXP_OPEN);
	pk_u32(&want, 7);
	pk_str(&want, "/a b");
	pk_u32(&want, SSH_FXF_WRITE | SSH_FXF_CREAT | SSH_FXF_EXCL);
	pk_u32(&want, SSH_FILEXFER_ATTR_PERMISSIONS);
	pk_u32(&want, 0640);
	want.d[3] = (unsigned char)(want.n - 4);

	sftp_buf_init(&b);
	ck_assert_int_eq(sftp_enc_open(&b, 7, "/a b", SSH_FXF_WRITE | SSH_FXF_CREAT | SSH_FXF_EXCL, &a), 0);
	ck_assert_uint_eq(b.len, want.n);
	ck_assert_mem_eq(b.data, want.d, want.n);
	sftp_buf_release(&b);
}
END_TEST

START_TEST(test_enc_many_in_one_buffer)
{
	struct sftp_buf b;
	unsigned char h[3] = { 1, 2, 3 };
	char data[100000];
	size_t off = 0;
	int i;

	memset(data, 'x', sizeof(data));
	sftp_buf_init(&b);
	ck_assert_int_eq(sftp_enc_init(&b, 3), 0);
	ck_assert_int_eq(sftp_enc_read(&b, 1, h, 3, 1ULL << 33, 32768), 0);
	ck_assert_int_eq(sftp_enc_write(&b, 2, h, 3, 5, data, sizeof(data)), 0);
	ck_assert_int_eq(sftp_enc_path(&b, SSH_FXP_LSTAT, 3, "/x"), 0);
	/* Walk the packets by their length prefixes. */
	for (i = 0; i < 4; i++) {
		uint32_t n;

		ck_assert_int_eq(sftp_packet_len(b.data + off, b.len - off, &n), 1);
		off += 4 + n;
	}
	ck_assert_uint_eq(off, b.len);
	/* READ after the 9-byte INIT: len, type, id, handle, 64-bit offset, length. */
	ck_assert_int_eq(b.data[13], SSH_FXP_READ);
	ck_assert_uint_eq(be32(b.data + 14), 1);
	ck_assert_uint_eq(be32(b.data + 18), 3);
	ck_assert_uint_eq(be32(b.data + 25), 2);	/* high word of 1 << 33 */
	ck_assert_uint_eq(be32(b.data + 29), 0);
	ck_assert_uint_eq(be32(b.data + 33), 32768);
	sftp_buf_release(&b);
}
END_TEST

START_TEST(test_enc_symlink_openssh_order)
{
	struct sftp_buf b;
	struct pk want = { .n = 0 };

	pk_u32(&want, 0);
	pk_u8(&want, SSH_FXP_SYMLINK);
	pk_u32(&want, 9);
	pk_str(&want, "target");
	pk_str(&want, "/link");
	want.d[3] = (unsigned char)(want.n - 4);
	sftp_buf_init(&b);
	ck_assert_int_eq(sftp_enc_symlink(&b, 9, "target", "/link"), 0);
	ck_assert_mem_eq(b.data, want.d, want.n);
	sftp_buf_release(&b);
}
END_TEST

START_TEST(test_enc_extensions)
{
	struct sftp_buf b;
	struct pk want = { .n = 0 };
	unsigned char h[2] = { 0xab, 0xcd };

	pk_u32(&want, 0);
	pk_u8(&want, SSH_FXP_EXTENDED);
	pk_u32(&want, 4);
	pk_str(&want, "posix-rename@openssh.com");
	pk_str(&want, "/a");
	pk_str(&want, "/b");
	want.d[3] = (unsigned char)(want.n - 4);
	sftp_buf_init(&b);
	ck_assert_int_eq(sftp_enc_posix_rename(&b, 4, "/a", "/b"), 0);
	ck_assert_uint_eq(b.len, want.n);
	ck_assert_mem_eq(b.data, want.d, want.n);
	sftp_buf_release(&b);

	sftp_buf_init(&b);
	ck_assert_int_eq(sftp_enc_fsync(&b, 5, h, 2), 0);
	ck_assert_int_eq(sftp_enc_hardlink(&b, 6, "/a", "/b"), 0);
	ck_assert_int_eq(sftp_enc_statvfs(&b, 7, "/"), 0);
	ck_assert_int_eq(sftp_enc_limits(&b, 8), 0);
	ck_assert_ptr_nonnull(memmem(b.data, b.len, "fsync@openssh.com", 17));
	ck_assert_ptr_nonnull(memmem(b.data, b.len, "hardlink@openssh.com", 20));
	ck_assert_ptr_nonnull(memmem(b.data, b.len, "statvfs@openssh.com", 19));
	ck_assert_ptr_nonnull(memmem(b.data, b.len, "limits@openssh.com", 18));
	sftp_buf_release(&b);
}
END_TEST

START_TEST(test_enc_setstat_attrs)
{
	struct sftp_buf b;
	struct sftp_attrs a = { .flags = SSH_FILEXFER_ATTR_ACMODTIME | SSH_FILEXFER_ATTR_SIZE,
				.size = 10, .atime = 1, .mtime = 2 };
	size_t body;

	sftp_buf_init(&b);
	ck_assert_int_eq(sftp_enc_path_attrs(&b, SSH_FXP_SETSTAT, 1, "/p", &a), 0);
	/* len, type, id, "/p", flags, size(8), atime, mtime */
	body = 1 + 4 + 4 + 2 + 4 + 8 + 4 + 4;
	ck_assert_uint_eq(b.len, 4 + body);
	ck_assert_uint_eq(be32(b.data), body);
	ck_assert_uint_eq(be32(b.data + b.len - 4), 2);
	sftp_buf_release(&b);
}
END_TEST

/* --- framing ---------------------------------------------------------------------- */

START_TEST(test_packet_len)
{
	unsigned char p[8] = { 0, 0, 0, 4, 1, 2, 3, 4 };
	uint32_t n = 0;

	ck_assert_int_eq(sftp_packet_len(p, 3, &n), 0);
	ck_assert_int_eq(sftp_packet_len(p, 7, &n), 0);
	ck_assert_int_eq(sftp_packet_len(p, 8, &n), 1);
	ck_assert_uint_eq(n, 4);
	p[3] = 0;
	ck_assert_int_eq(sftp_packet_len(p, 8, &n), -EPROTO);
	p[0] = 0xff;
	ck_assert_int_eq(sftp_packet_len(p, 8, &n), -EPROTO);
	p[0] = 0;
	p[1] = 0x10;	/* 1 MiB: the limit */
	p[3] = 0;
	ck_assert_int_eq(sftp_packet_len(p, 8, &n), 0);
	p[3] = 1;
	ck_assert_int_eq(sftp_packet_len(p, 8, &n), -EPROTO);
}
END_TEST

/* --- replies ------------------------------------------------------------------------ */

static void build_status(struct pk *p, uint32_t code)
{
	p->n = 0;
	pk_u8(p, SSH_FXP_STATUS);
	pk_u32(p, 42);
	pk_u32(p, code);
	pk_str(p, "No such file");
	pk_str(p, "en");
}

START_TEST(test_status)
{
	struct pk p;
	uint32_t code, id;
	uint8_t type;
	size_t n;
	unsigned char *c;

	build_status(&p, SSH_FX_NO_SUCH_FILE);
	ck_assert_int_eq(sftp_dec_header(p.d, p.n, &type, &id), 0);
	ck_assert_uint_eq(type, SSH_FXP_STATUS);
	ck_assert_uint_eq(id, 42);
	ck_assert_int_eq(sftp_dec_status(p.d, p.n, &code), 0);
	ck_assert_uint_eq(code, SSH_FX_NO_SUCH_FILE);
	for (n = 0; n < p.n; n++) {
		c = dup_n(&p, n);
		/* Only the bare code without message and language is a valid short form. */
		if (n != 9)
			ck_assert_int_eq(sftp_dec_status(c, n, &code), -EPROTO);
		else
			ck_assert_int_eq(sftp_dec_status(c, n, &code), 0);
		free(c);
	}
	/* Trailing garbage and a wrong type are rejected. */
	pk_u8(&p, 0);
	ck_assert_int_eq(sftp_dec_status(p.d, p.n, &code), -EPROTO);
	p.d[0] = SSH_FXP_HANDLE;
	ck_assert_int_eq(sftp_dec_status(p.d, p.n - 1, &code), -EPROTO);
}
END_TEST

START_TEST(test_handle)
{
	struct pk p = { .n = 0 };
	const unsigned char *h;
	unsigned char big[300] = { 0 }, *c;
	size_t hl, n;

	pk_u8(&p, SSH_FXP_HANDLE);
	pk_u32(&p, 1);
	pk_bytes(&p, "\0\1\2\3", 4);
	ck_assert_int_eq(sftp_dec_handle(p.d, p.n, &h, &hl), 0);
	ck_assert_uint_eq(hl, 4);
	ck_assert_mem_eq(h, "\0\1\2\3", 4);
	for (n = 0; n < p.n; n++) {
		c = dup_n(&p, n);
		ck_assert_int_eq(sftp_dec_handle(c, n, &h, &hl), -EPROTO);
		free(c);
	}
	/* Oversized (> 256 bytes) and empty handles. */
	p.n = 0;
	pk_u8(&p, SSH_FXP_HANDLE);
	pk_u32(&p, 1);
	pk_bytes(&p, big, sizeof(big));
	ck_assert_int_eq(sftp_dec_handle(p.d, p.n, &h, &hl), -EPROTO);
	p.n = 0;
	pk_u8(&p, SSH_FXP_HANDLE);
	pk_u32(&p, 1);
	pk_bytes(&p, big, 0);
	ck_assert_int_eq(sftp_dec_handle(p.d, p.n, &h, &hl), -EPROTO);
}
END_TEST

START_TEST(test_data)
{
	struct pk p = { .n = 0 };
	const unsigned char *d;
	unsigned char *c;
	size_t dl, n;

	pk_u8(&p, SSH_FXP_DATA);
	pk_u32(&p, 1);
	pk_bytes(&p, "abcdef", 6);
	ck_assert_int_eq(sftp_dec_data(p.d, p.n, &d, &dl), 0);
	ck_assert_uint_eq(dl, 6);
	ck_assert_mem_eq(d, "abcdef", 6);
	for (n = 0; n < p.n; n++) {
		c = dup_n(&p, n);
		ck_assert_int_eq(sftp_dec_data(c, n, &d, &dl), -EPROTO);
		free(c);
	}
	/* A length that claims more than the packet holds. */
	p.d[5 + 3] = 200;
	ck_assert_int_eq(sftp_dec_data(p.d, p.n, &d, &dl), -EPROTO);
	p.d[5] = 0xff;
	ck_assert_int_eq(sftp_dec_data(p.d, p.n, &d, &dl), -EPROTO);
}
END_TEST

START_TEST(test_attrs)
{
	struct pk p = { .n = 0 };
	struct sftp_attrs a;
	struct stat st;
	unsigned char *c;
	size_t n;

	pk_u8(&p, SSH_FXP_ATTRS);
	pk_u32(&p, 1);
	pk_attrs_full(&p);
	ck_assert_int_eq(sftp_dec_attrs(p.d, p.n, &a), 0);
	ck_assert_uint_eq(a.size, 5ULL << 32);
	ck_assert_uint_eq(a.uid, 1000);
	ck_assert_uint_eq(a.gid, 100);
	ck_assert_uint_eq(a.perm, 0100644);
	ck_assert_uint_eq(a.atime, 111);
	ck_assert_uint_eq(a.mtime, 222);
	sftp_attrs_to_stat(&a, &st);
	ck_assert_int_eq(st.st_size, (off_t)(5ULL << 32));
	ck_assert_uint_eq(st.st_mode, 0100644);
	ck_assert_int_eq(st.st_mtim.tv_sec, 222);
	ck_assert_int_eq(st.st_mtim.tv_nsec, 0);
	for (n = 0; n < p.n; n++) {
		c = dup_n(&p, n);
		ck_assert_int_eq(sftp_dec_attrs(c, n, &a), -EPROTO);
		free(c);
	}
	/* Absent fields are zero. */
	p.n = 0;
	pk_u8(&p, SSH_FXP_ATTRS);
	pk_u32(&p, 1);
	pk_u32(&p, 0);
	ck_assert_int_eq(sftp_dec_attrs(p.d, p.n, &a), 0);
	sftp_attrs_to_stat(&a, &st);
	ck_assert_int_eq(st.st_size, 0);
}
END_TEST

static void build_name(struct pk *p)
{
	p->n = 0;
	pk_u8(p, SSH_FXP_NAME);
	pk_u32(p, 3);
	pk_u32(p, 2);
	pk_str(p, "with space");
	pk_str(p, "-rw-r--r-- 1 u g 0 Jan 1 with space");
	pk_attrs_full(p);
	pk_str(p, "\xc3\xbc\n");
	pk_str(p, "");
	pk_u32(p, SSH_FILEXFER_ATTR_PERMISSIONS);
	pk_u32(p, 040755);
}

/* Decode a NAME fully: 0, or the first error. */
static int decode_name(const unsigned char *d, size_t n, char names[2][64])
{
	struct sftp_attrs a;
	uint32_t count, i;
	size_t pos;
	int rc;

	rc = sftp_dec_name(d, n, &count, &pos);
	if (rc)
		return rc;
	if (count != 2)
		return -EINVAL;
	for (i = 0; i < count; i++) {
		rc = sftp_dec_name_next(d, n, &pos, names[i], 64, &a);
		if (rc)
			return rc;
	}
	return pos == n ? 0 : -EPROTO;
}

START_TEST(test_name)
{
	struct pk p;
	char names[2][64], small[4];
	struct sftp_attrs a;
	unsigned char *c;
	uint32_t count;
	size_t n, pos;

	build_name(&p);
	ck_assert_int_eq(decode_name(p.d, p.n, names), 0);
	ck_assert_str_eq(names[0], "with space");
	ck_assert_str_eq(names[1], "\xc3\xbc\n");
	for (n = 0; n < p.n; n++) {
		c = dup_n(&p, n);
		ck_assert_int_eq(decode_name(c, n, names), -EPROTO);
		free(c);
	}
	/* A name that does not fit the caller's buffer. */
	ck_assert_int_eq(sftp_dec_name(p.d, p.n, &count, &pos), 0);
	ck_assert_int_eq(sftp_dec_name_next(p.d, p.n, &pos, small, sizeof(small), &a), -ENAMETOOLONG);
	/* An absurd count is refused up front. */
	p.d[5] = 0x7f;
	ck_assert_int_eq(sftp_dec_name(p.d, p.n, &count, &pos), -EPROTO);
	/* A name with a NUL inside. */
	build_name(&p);
	p.d[9 + 4] = '\0';
	ck_assert_int_eq(decode_name(p.d, p.n, names), -EPROTO);
	/* A position beyond the packet. */
	pos = p.n + 10;
	ck_assert_int_eq(sftp_dec_name_next(p.d, p.n, &pos, names[0], 64, &a), -EPROTO);
}
END_TEST

START_TEST(test_version)
{
	struct pk p = { .n = 0 };
	unsigned int exts;
	uint32_t v;
	size_t n, bounds[8], nb = 0, i;
	unsigned char *c;
	int valid;

	pk_u8(&p, SSH_FXP_VERSION);
	pk_u32(&p, 3);
	bounds[nb++] = p.n;
	pk_str(&p, "posix-rename@openssh.com");
	pk_str(&p, "1");
	bounds[nb++] = p.n;
	pk_str(&p, "statvfs@openssh.com");
	pk_str(&p, "2");
	bounds[nb++] = p.n;
	pk_str(&p, "unknown@example.com");
	pk_str(&p, "x");
	bounds[nb++] = p.n;
	pk_str(&p, "fsync@openssh.com");
	pk_str(&p, "1");
	bounds[nb++] = p.n;
	pk_str(&p, "hardlink@openssh.com");
	pk_str(&p, "1");
	bounds[nb++] = p.n;
	pk_str(&p, "limits@openssh.com");
	pk_str(&p, "1");
	bounds[nb++] = p.n;
	ck_assert_int_eq(sftp_dec_version(p.d, p.n, &v, &exts), 0);
	ck_assert_uint_eq(v, 3);
	ck_assert_uint_eq(exts, SFTP_EXT_POSIX_RENAME | SFTP_EXT_STATVFS | SFTP_EXT_FSYNC |
					SFTP_EXT_HARDLINK | SFTP_EXT_LIMITS);
	/* Truncations: valid only between whole extension pairs. */
	for (n = 0; n < p.n; n++) {
		valid = 0;
		for (i = 0; i < nb; i++)
			valid |= bounds[i] == n;
		c = dup_n(&p, n);
		ck_assert_int_eq(sftp_dec_version(c, n, &v, &exts), valid ? 0 : -EPROTO);
		free(c);
	}
	/* A prefix of a known name is not that extension. */
	p.n = 0;
	pk_u8(&p, SSH_FXP_VERSION);
	pk_u32(&p, 3);
	pk_str(&p, "posix-rename@openssh.co");
	pk_str(&p, "1");
	ck_assert_int_eq(sftp_dec_version(p.d, p.n, &v, &exts), 0);
	ck_assert_uint_eq(exts, 0);
}
END_TEST

START_TEST(test_statvfs_limits)
{
	struct pk p = { .n = 0 };
	struct statvfs sv;
	struct sftp_limits l;
	unsigned char *c;
	size_t n;
	int i;

	pk_u8(&p, SSH_FXP_EXTENDED_REPLY);
	pk_u32(&p, 1);
	for (i = 0; i < 11; i++)
		pk_u64(&p, 1000 + i);
	ck_assert_int_eq(sftp_dec_statvfs(p.d, p.n, &sv), 0);
	ck_assert_uint_eq(sv.f_bsize, 1000);
	ck_assert_uint_eq(sv.f_blocks, 1002);
	ck_assert_uint_eq(sv.f_namemax, 1010);
	for (n = 0; n < p.n; n++) {
		c = dup_n(&p, n);
		ck_assert_int_eq(sftp_dec_statvfs(c, n, &sv), -EPROTO);
		free(c);
	}
	p.n = 0;
	pk_u8(&p, SSH_FXP_EXTENDED_REPLY);
	pk_u32(&p, 1);
	pk_u64(&p, 262144);
	pk_u64(&p, 261120);
	pk_u64(&p, 261120);
	pk_u64(&p, 0);
	ck_assert_int_eq(sftp_dec_limits(p.d, p.n, &l), 0);
	ck_assert_uint_eq(l.max_read, 261120);
	for (n = 0; n < p.n; n++) {
		c = dup_n(&p, n);
		ck_assert_int_eq(sftp_dec_limits(c, n, &l), -EPROTO);
		free(c);
	}
}
END_TEST

START_TEST(test_garbage_never_crashes)
{
	unsigned char buf[64];
	const unsigned char *x;
	struct sftp_attrs a;
	struct statvfs sv;
	struct sftp_limits l;
	unsigned int exts;
	uint32_t u, count;
	size_t xl, pos;
	char name[16];
	int i, j;

	srand(1);
	for (i = 0; i < 20000; i++) {
		size_t n = (size_t)(rand() % (int)sizeof(buf));
		unsigned char *c;

		for (j = 0; j < (int)n; j++)
			buf[j] = (unsigned char)(rand() % 4 == 0 ? 0xff : rand() % 8);
		if (n)
			buf[0] = (unsigned char)(100 + rand() % 6);
		c = malloc(n ? n : 1);
		memcpy(c, buf, n);
		sftp_dec_status(c, n, &u);
		sftp_dec_handle(c, n, &x, &xl);
		sftp_dec_data(c, n, &x, &xl);
		sftp_dec_attrs(c, n, &a);
		sftp_dec_version(c, n, &u, &exts);
		sftp_dec_statvfs(c, n, &sv);
		sftp_dec_limits(c, n, &l);
		if (sftp_dec_name(c, n, &count, &pos) == 0)
			while (count-- && sftp_dec_name_next(c, n, &pos, name, sizeof(name), &a) == 0)
				;
		free(c);
	}
}
END_TEST

START_TEST(test_status_errno)
{
	ck_assert_int_eq(sftp_status_errno(SSH_FX_OK), 0);
	ck_assert_int_eq(sftp_status_errno(SSH_FX_EOF), -ENODATA);
	ck_assert_int_eq(sftp_status_errno(SSH_FX_NO_SUCH_FILE), -ENOENT);
	ck_assert_int_eq(sftp_status_errno(SSH_FX_PERMISSION_DENIED), -EACCES);
	ck_assert_int_eq(sftp_status_errno(SSH_FX_FAILURE), -EIO);
	ck_assert_int_eq(sftp_status_errno(SSH_FX_BAD_MESSAGE), -EINVAL);
	ck_assert_int_eq(sftp_status_errno(SSH_FX_NO_CONNECTION), -EIO);
	ck_assert_int_eq(sftp_status_errno(SSH_FX_CONNECTION_LOST), -EIO);
	ck_assert_int_eq(sftp_status_errno(SSH_FX_OP_UNSUPPORTED), -EOPNOTSUPP);
	ck_assert_int_eq(sftp_status_errno(12345), -EIO);
}
END_TEST

static Suite *sftp_suite(void)
{
	Suite *s = suite_create("sftp");
	TCase *tc;

	tc = tcase_create("requests are encoded byte for byte");
	tcase_add_test(tc, test_enc_open);
	tcase_add_test(tc, test_enc_many_in_one_buffer);
	tcase_add_test(tc, test_enc_symlink_openssh_order);
	tcase_add_test(tc, test_enc_extensions);
	tcase_add_test(tc, test_enc_setstat_attrs);
	suite_add_tcase(s, tc);
	tc = tcase_create("framing rejects empty and oversized packets");
	tcase_add_test(tc, test_packet_len);
	suite_add_tcase(s, tc);
	tc = tcase_create("replies decode and every truncation is rejected");
	tcase_add_test(tc, test_status);
	tcase_add_test(tc, test_handle);
	tcase_add_test(tc, test_data);
	tcase_add_test(tc, test_attrs);
	tcase_add_test(tc, test_name);
	tcase_add_test(tc, test_version);
	tcase_add_test(tc, test_statvfs_limits);
	tcase_add_test(tc, test_garbage_never_crashes);
	suite_add_tcase(s, tc);
	tc = tcase_create("status codes map to errno in one table");
	tcase_add_test(tc, test_status_errno);
	suite_add_tcase(s, tc);
	return s;
}

TAP_MAIN(sftp_suite)
