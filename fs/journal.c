/*
 * fs/journal.c: the crash-safe record of each path's state in the local layer.
 *
 * On disk: <layer>/.wakefs/journal starts with an 8-byte magic, then records
 *   u32 len | u32 crc32(payload) | payload[len]
 * whose payload is
 *   u8 op | u8 state | u8 base.valid | u8 0 | u64 size | i64 mtime | u64 ino |
 *   u16 n | path[n] | (op RENAME: u16 m | to[m])
 * in little-endian order. A change is one record appended with one write():
 * once journal_set() returns, the record is in the kernel's page cache, which
 * a crash of the daemon (kill -9) does not lose. It is made durable with
 * fdatasync() by journal_sync(), by the first change a second or more after
 * the oldest unsynced one, and at close: one fdatasync per change cost an
 * untar or a git checkout in the mount 0.4 ms a file. A crash leaves either
 * the whole record or a torn tail, which replay detects (short record or bad
 * checksum) and truncates away.
 *
 * A power loss can also lose the records of the last second. Each open
 * appends, durably, a SESSION record (the kernel's boot id and the time) and
 * each clean close another: a log whose last session was not closed and
 * belongs to another boot ended with the machine, and journal_unclean_since()
 * says when that session began, so that the layer can look again at what
 * changed since (fs/layer.c). A SESSION record's path field holds the boot
 * id, its state 0 (open) or 1 (closed), its size field the time.
 *
 * When the log holds many more
 * records than live entries it is compacted: the table is written to
 * journal.new, fsynced, and renamed over the log (then the directory fsynced),
 * so at every instant one complete log exists.
 *
 * In memory: a chained hash table from path to entry, behind one mutex
 * (j->lock), which also serialises appends.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "journal.h"

#define JOURNAL_MAGIC "WKFSJRN1"
#define JOURNAL_MAGIC_LEN 8
#define JOURNAL_REC_MAX (8 + 36 + 2 * (2 + PATH_MAX))

enum journal_op { JOP_SET = 1, JOP_RENAME = 2, JOP_REMOVE = 3, JOP_SESSION = 4 };

/* Unsynced records older than this are synced by the next change. */
#define JOURNAL_LAZY_MS 1000
#define JOURNAL_BOOT_ID_MAX 64

struct jentry {
	struct jentry *next;
	struct jentry *inext;	/* chain of j->ibuckets (by inode number) */
	char *path;
	enum path_state state;
	struct version base;
	uint64_t ino;
};

struct journal {
	pthread_mutex_t lock;	/* protects everything below */
	char *dir;		/* <layer>/.wakefs */
	char *file;		/* <layer>/.wakefs/journal */
	int fd;			/* the log, O_APPEND */
	int lock_fd;		/* <layer>/.wakefs/lock, flock()ed while open */
	off_t end;		/* where the next record goes */
	struct jentry **buckets;	/* by path */
	struct jentry **ibuckets;	/* by inode number, as many */
	size_t nbuckets;
	size_t count;
	size_t records;		/* records in the log since the last compaction */
	size_t unsynced;	/* records appended since the last fdatasync */
	int64_t unsynced_since;	/* CLOCK_MONOTONIC ms of the oldest of them */
	char boot[JOURNAL_BOOT_ID_MAX];	/* this session's boot id, and its start */
	int64_t started;
	/* Replay: the log's last session, and whether it was closed. */
	char last_boot[JOURNAL_BOOT_ID_MAX];
	int64_t last_started;
	int last_closed, have_last;
	int64_t unclean_since;	/* journal_unclean_since(); 0: clean */
	int opened;		/* journal_open() succeeded: close records the end */
};

/* --- small helpers ----------------------------------------------------------- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void journal_crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t journal_crc(const unsigned char *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;

	pthread_once(&crc_once, journal_crc_init);
	while (n--)
		c = crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

static uint64_t journal_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;	/* FNV-1a */

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ull;
	}
	return h;
}

uint64_t journal_ino_for(const char *path)
{
	uint64_t h;

	if (path[0] == '/')
		path++;
	if (!path[0])
		return 1;	/* the root */
	h = journal_hash(path);
	return h < 2 ? h + 2 : h;
}

const char *journal_state_name(enum path_state s)
{
	switch (s) {
	case PATH_CLEAN: return "clean";
	case PATH_DIRTY: return "dirty";
	case PATH_HELD: return "held";
	case PATH_CONFLICT: return "conflict";
	case PATH_WHITEOUT: return "whiteout";
	}
	return "unknown";
}

/* "/a/b" from "a/b", "/a/b/" or "/a/b"; NULL on ENOMEM. */
static char *journal_norm(const char *path)
{
	size_t n = strlen(path);
	char *s;

	while (n > 1 && path[n - 1] == '/')
		n--;
	s = malloc(n + 2);
	if (!s)
		return NULL;
	if (path[0] == '/') {
		memcpy(s, path, n);
		s[n] = '\0';
	} else {
		s[0] = '/';
		memcpy(s + 1, path, n);
		s[n + 1] = '\0';
	}
	return s;
}

static void put_u16(unsigned char **p, uint16_t v)
{
	(*p)[0] = v & 0xFF;
	(*p)[1] = v >> 8;
	*p += 2;
}

static void put_u32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (v >> (8 * i)) & 0xFF;
}

static void put_u64(unsigned char **p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		(*p)[i] = (v >> (8 * i)) & 0xFF;
	*p += 8;
}

static uint32_t get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* --- the table ------------------------------------------------------------------ */

static struct jentry **journal_slot(struct journal *j, const char *path)
{
	struct jentry **e = &j->buckets[journal_hash(path) % j->nbuckets];

	while (*e && strcmp((*e)->path, path) != 0)
		e = &(*e)->next;
	return e;
}

static int journal_grow(struct journal *j)
{
	size_t n = j->nbuckets * 2, i;
	struct jentry **b = calloc(n, sizeof(*b)), **ib = calloc(n, sizeof(*ib));

	if (!b || !ib) {
		free(b);
		free(ib);
		return -ENOMEM;
	}
	for (i = 0; i < j->nbuckets; i++) {
		struct jentry *e = j->buckets[i], *next;
		for (; e; e = next) {
			size_t h = journal_hash(e->path) % n;
			next = e->next;
			e->next = b[h];
			b[h] = e;
			e->inext = ib[e->ino % n];
			ib[e->ino % n] = e;
		}
	}
	free(j->buckets);
	free(j->ibuckets);
	j->buckets = b;
	j->ibuckets = ib;
	j->nbuckets = n;
	return 0;
}

static void journal_iadd(struct journal *j, struct jentry *e)
{
	struct jentry **head = &j->ibuckets[e->ino % j->nbuckets];

	e->inext = *head;
	*head = e;
}

static void journal_irm(struct journal *j, struct jentry *e)
{
	struct jentry **pe = &j->ibuckets[e->ino % j->nbuckets];

	while (*pe && *pe != e)
		pe = &(*pe)->inext;
	if (*pe)
		*pe = e->inext;
}

/* 1 when an entry at another path than @path has inode number @ino. */
static int journal_ino_taken(struct journal *j, uint64_t ino, const char *path)
{
	for (struct jentry *e = j->ibuckets[ino % j->nbuckets]; e; e = e->inext)
		if (e->ino == ino && strcmp(e->path, path) != 0)
			return 1;
	return 0;
}

/*
 * The inode number of @path (normalised): its entry's, else the hash of the
 * path, stepped on while another entry holds it (a file renamed away keeps
 * the number of its old name, which a new file there must not share).
 * Deterministic for a given journal, so stable across remounts.
 */
static uint64_t journal_ino_locked(struct journal *j, const char *path)
{
	struct jentry *e = *journal_slot(j, path);
	uint64_t h;

	if (e)
		return e->ino;
	h = journal_ino_for(path);
	while (journal_ino_taken(j, h, path)) {
		h = h * 6364136223846793005ull + 1442695040888963407ull;
		if (h < 2)
			h += 2;
	}
	return h;
}

/* Insert or update; takes nothing over from the caller. */
static int journal_put(struct journal *j, const char *path, enum path_state state,
		       const struct version *base, uint64_t ino)
{
	struct jentry **slot = journal_slot(j, path), *e = *slot;

	if (e) {
		e->state = state;
		if (base)
			e->base = *base;
		if (ino && ino != e->ino) {
			journal_irm(j, e);
			e->ino = ino;
			journal_iadd(j, e);
		}
		return 0;
	}
	e = calloc(1, sizeof(*e));
	if (!e || !(e->path = strdup(path))) {
		free(e);
		return -ENOMEM;
	}
	e->state = state;
	if (base)
		e->base = *base;
	e->ino = ino ? ino : journal_ino_locked(j, path);
	*slot = e;
	journal_iadd(j, e);
	j->count++;
	if (j->count > j->nbuckets * 2)
		journal_grow(j);	/* failure only costs speed */
	return 0;
}

static void journal_del(struct journal *j, const char *path)
{
	struct jentry **slot = journal_slot(j, path), *e = *slot;

	if (!e)
		return;
	*slot = e->next;
	journal_irm(j, e);
	free(e->path);
	free(e);
	j->count--;
}

static int journal_is_under(const char *path, const char *dir, size_t dlen)
{
	if (strncmp(path, dir, dlen) != 0)
		return 0;
	return path[dlen] == '\0' || path[dlen] == '/' || (dlen == 1 && dir[0] == '/');
}

/* Move @from and everything under it to @to. */
static int journal_move(struct journal *j, const char *from, const char *to)
{
	size_t flen = strlen(from), tlen = strlen(to), i, n = 0, moved = 0;
	struct jentry **list = NULL;
	int err = 0;

	/* Entries under @to are replaced (rename over a directory or file). */
	for (i = 0; i < j->nbuckets; i++)
		for (struct jentry *e = j->buckets[i]; e; e = e->next)
			if (journal_is_under(e->path, from, flen))
				n++;
	if (!n)
		return -ENOENT;
	list = calloc(n, sizeof(*list));
	if (!list)
		return -ENOMEM;
	for (i = 0; i < j->nbuckets; i++) {
		struct jentry **pe = &j->buckets[i];
		while (*pe) {
			struct jentry *e = *pe;
			if (journal_is_under(e->path, from, flen)) {
				*pe = e->next;
				journal_irm(j, e);
				list[moved++] = e;
				j->count--;
			} else {
				pe = &e->next;
			}
		}
	}
	for (i = 0; i < moved; i++) {
		struct jentry *e = list[i];
		size_t rest = strlen(e->path) - flen;
		char *np = malloc(tlen + rest + 1);
		if (!np) {
			err = -ENOMEM;
		} else {
			memcpy(np, to, tlen);
			memcpy(np + tlen, e->path + flen, rest + 1);
			journal_del(j, np);
			if (journal_put(j, np, e->state, &e->base, e->ino))
				err = -ENOMEM;
		}
		free(np);
		free(e->path);
		free(e);
	}
	free(list);
	return err;
}

/* --- the log ---------------------------------------------------------------------- */

/* Encode one record into @buf (JOURNAL_REC_MAX bytes); returns its length. */
static size_t journal_encode(unsigned char *buf, enum journal_op op, enum path_state state,
			     const struct version *base, uint64_t ino, const char *path,
			     const char *to)
{
	unsigned char *p = buf + 8;
	size_t n = strlen(path), len;

	*p++ = op;
	*p++ = state;
	*p++ = base ? base->valid != 0 : 0;
	*p++ = base ? 1 : 0;	/* 1: base given (else keep) */
	put_u64(&p, base ? base->size : 0);
	put_u64(&p, base ? (uint64_t)base->mtime : 0);
	put_u64(&p, ino);
	put_u16(&p, n);
	memcpy(p, path, n);
	p += n;
	if (op == JOP_RENAME) {
		size_t m = strlen(to);
		put_u16(&p, m);
		memcpy(p, to, m);
		p += m;
	}
	len = p - (buf + 8);
	put_u32(buf, len);
	put_u32(buf + 4, journal_crc(buf + 8, len));
	return len + 8;
}

/* Apply one record's payload to the table; -EINVAL when malformed. */
static int journal_apply(struct journal *j, const unsigned char *p, size_t len)
{
	struct version base;
	uint64_t ino;
	size_t n, m;
	char path[PATH_MAX + 2], to[PATH_MAX + 2];
	int op, state, has_base;

	if (len < 30)
		return -EINVAL;
	op = p[0];
	state = p[1];
	if (op == JOP_SESSION) {
		n = p[28] | (size_t)p[29] << 8;
		if (30 + n > len || n >= JOURNAL_BOOT_ID_MAX)
			return -EINVAL;
		if (state == 0) {
			memcpy(j->last_boot, p + 30, n);
			j->last_boot[n] = '\0';
			j->last_started = (int64_t)get_u64(p + 4);
			j->last_closed = 0;
			j->have_last = 1;
		} else if (j->have_last && n == strlen(j->last_boot) &&
			   memcmp(j->last_boot, p + 30, n) == 0) {
			j->last_closed = 1;
		}
		return 0;
	}
	base.valid = p[2];
	has_base = p[3];
	base.size = get_u64(p + 4);
	base.mtime = (int64_t)get_u64(p + 12);
	ino = get_u64(p + 20);
	n = p[28] | (size_t)p[29] << 8;
	if (30 + n > len || n > PATH_MAX || state > PATH_WHITEOUT)
		return -EINVAL;
	memcpy(path, p + 30, n);
	path[n] = '\0';
	switch (op) {
	case JOP_SET:
		return journal_put(j, path, state, has_base ? &base : NULL, ino);
	case JOP_REMOVE:
		journal_del(j, path);
		return 0;
	case JOP_RENAME:
		if (30 + n + 2 > len)
			return -EINVAL;
		m = p[30 + n] | (size_t)p[31 + n] << 8;
		if (32 + n + m > len || m > PATH_MAX)
			return -EINVAL;
		memcpy(to, p + 32 + n, m);
		to[m] = '\0';
		journal_move(j, path, to);
		return 0;
	}
	return -EINVAL;
}

static int64_t journal_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int journal_sync_locked(struct journal *j)
{
	if (!j->unsynced)
		return 0;
	if (fdatasync(j->fd) < 0)
		return -errno;
	j->unsynced = 0;
	return 0;
}

/* Append one record; @sync: durable before it returns (else see the top). */
static int journal_append(struct journal *j, const unsigned char *rec, size_t len, int sync)
{
	ssize_t w = pwrite(j->fd, rec, len, j->end);
	int err = 0;

	if (w < 0)
		err = -errno;
	else if ((size_t)w != len)
		err = -ENOSPC;
	if (err) {
		/* Leave no partial record behind for the next append. */
		if (ftruncate(j->fd, j->end) == 0)
			fdatasync(j->fd);
		return err;
	}
	j->end += len;
	j->records++;
	if (!j->unsynced++)
		j->unsynced_since = journal_ms();
	if (sync)
		return journal_sync_locked(j);
	/* The record stands either way; a failed sync is tried again by the next. */
	if (journal_ms() - j->unsynced_since >= JOURNAL_LAZY_MS)
		journal_sync_locked(j);
	return 0;
}

int journal_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		err = -errno;
	close(fd);
	return err;
}

/* Rewrite the log as one SET record per entry. */
static int journal_compact(struct journal *j)
{
	size_t tlen = strlen(j->file) + 5;
	char *tmp = malloc(tlen);
	unsigned char *rec = malloc(JOURNAL_REC_MAX);
	FILE *f = NULL;
	int fd = -1, err = 0;
	off_t end = JOURNAL_MAGIC_LEN;

	if (!tmp || !rec) {
		err = -ENOMEM;
		goto out;
	}
	snprintf(tmp, tlen, "%s.new", j->file);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	f = fdopen(fd, "w");
	if (!f) {
		err = -errno;
		close(fd);
		goto out;
	}
	fwrite(JOURNAL_MAGIC, 1, JOURNAL_MAGIC_LEN, f);
	/* This session's record first, so that a crash after this is seen. */
	{
		size_t n = journal_encode(rec, JOP_SESSION, 0, &(struct version){ .size = j->started },
					  0, j->boot, NULL);
		fwrite(rec, 1, n, f);
		end += n;
	}
	for (size_t i = 0; i < j->nbuckets; i++)
		for (struct jentry *e = j->buckets[i]; e; e = e->next) {
			size_t n = journal_encode(rec, JOP_SET, e->state, &e->base, e->ino, e->path, NULL);
			fwrite(rec, 1, n, f);
			end += n;
		}
	if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) < 0) {
		err = errno ? -errno : -EIO;
		goto out;
	}
	if (rename(tmp, j->file) < 0) {
		err = -errno;
		goto out;
	}
	journal_fsync_dir(j->dir);
	fd = open(j->file, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	close(j->fd);
	j->fd = fd;
	j->end = end;
	j->records = j->count;
	j->unsynced = 0;
out:
	if (f)
		fclose(f);
	if (err)
		unlink(tmp);
	free(tmp);
	free(rec);
	return err;
}

static int journal_record(struct journal *j, enum journal_op op, enum path_state state,
			  const struct version *base, uint64_t ino, const char *path, const char *to)
{
	unsigned char *rec = malloc(JOURNAL_REC_MAX);
	int err;

	if (!rec)
		return -ENOMEM;
	err = journal_append(j, rec, journal_encode(rec, op, state, base, ino, path, to),
			     op == JOP_SESSION);
	free(rec);
	return err;
}

static void journal_maybe_compact(struct journal *j)
{
	if (j->records > 4096 && j->records > 4 * j->count)
		journal_compact(j);	/* on failure the long log stays valid */
}

/* Read the whole log, apply the valid prefix, cut off the rest. */
static int journal_replay(struct journal *j)
{
	struct stat st;
	unsigned char *buf = NULL;
	size_t len, off;
	int err = 0;

	if (fstat(j->fd, &st) < 0)
		return -errno;
	len = st.st_size;
	if (len < JOURNAL_MAGIC_LEN) {
		/* New, or torn while being created: start it over. */
		if (ftruncate(j->fd, 0) < 0 ||
		    pwrite(j->fd, JOURNAL_MAGIC, JOURNAL_MAGIC_LEN, 0) != JOURNAL_MAGIC_LEN ||
		    fsync(j->fd) < 0)
			return errno ? -errno : -EIO;
		j->end = JOURNAL_MAGIC_LEN;
		return 0;
	}
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	if (pread(j->fd, buf, len, 0) != (ssize_t)len) {
		err = -EIO;
		goto out;
	}
	if (memcmp(buf, JOURNAL_MAGIC, JOURNAL_MAGIC_LEN) != 0) {
		err = -EINVAL;	/* not our file: never overwrite it */
		goto out;
	}
	off = JOURNAL_MAGIC_LEN;
	while (off + 8 <= len) {
		uint32_t rlen = get_u32(buf + off), crc = get_u32(buf + off + 4);
		if (rlen > JOURNAL_REC_MAX || off + 8 + rlen > len ||
		    journal_crc(buf + off + 8, rlen) != crc)
			break;
		err = journal_apply(j, buf + off + 8, rlen);
		if (err == -ENOMEM)
			goto out;
		err = 0;
		off += 8 + rlen;
		j->records++;
	}
	if (off != len) {
		/* A torn tail: what follows the last whole record never returned. */
		if (ftruncate(j->fd, off) < 0 || fsync(j->fd) < 0) {
			err = -errno;
			goto out;
		}
	}
	j->end = off;
out:
	free(buf);
	return err;
}

/*
 * The kernel's boot id, which changes at every boot: a session left open by
 * another boot ended with the machine. WAKEFS_BOOT_ID stands in for it in
 * tests that play a power loss. "" when unknown.
 */
static void journal_boot_id(char *buf, size_t len)
{
	const char *env = getenv("WAKEFS_BOOT_ID");
	FILE *f;

	buf[0] = '\0';
	if (env) {
		snprintf(buf, len, "%s", env);
		return;
	}
	f = fopen("/proc/sys/kernel/random/boot_id", "re");
	if (!f)
		return;
	if (!fgets(buf, (int)len, f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
}

/* This session's record: its boot id, its start (in the size field), open or @closed. */
static int journal_session_record(struct journal *j, int closed)
{
	return journal_record(j, JOP_SESSION, closed ? 1 : 0, &(struct version){ .size = j->started },
			      0, j->boot, NULL);
}

/* After replay: was the last session ended by the machine? Then open ours. */
static int journal_session_open(struct journal *j)
{
	struct timespec now;

	journal_boot_id(j->boot, sizeof(j->boot));
	clock_gettime(CLOCK_REALTIME, &now);
	j->started = now.tv_sec;
	if (j->have_last && !j->last_closed &&
	    (!j->boot[0] || !j->last_boot[0] || strcmp(j->boot, j->last_boot) != 0))
		j->unclean_since = j->last_started > 0 ? j->last_started : 1;
	return journal_session_record(j, 0);
}

/* --- the interface ------------------------------------------------------------------- */

int journal_open(struct journal **out, const char *layer_dir)
{
	struct journal *j = calloc(1, sizeof(*j));
	size_t n = strlen(layer_dir) + 32;
	char lockp[PATH_MAX];
	int err = 0;

	*out = NULL;
	if (!j)
		return -ENOMEM;
	j->fd = -1;
	j->lock_fd = -1;
	pthread_mutex_init(&j->lock, NULL);
	j->nbuckets = 256;
	j->buckets = calloc(j->nbuckets, sizeof(*j->buckets));
	j->ibuckets = calloc(j->nbuckets, sizeof(*j->ibuckets));
	j->dir = malloc(n);
	j->file = malloc(n);
	if (!j->buckets || !j->ibuckets || !j->dir || !j->file) {
		err = -ENOMEM;
		goto out;
	}
	snprintf(j->dir, n, "%s/.wakefs", layer_dir);
	snprintf(j->file, n, "%s/.wakefs/journal", layer_dir);
	if (mkdir(layer_dir, 0755) < 0 && errno != EEXIST) {
		err = -errno;
		goto out;
	}
	if (mkdir(j->dir, 0700) < 0 && errno != EEXIST) {
		err = -errno;
		goto out;
	}
	/*
	 * One daemon a layer: two would interleave their records. The lock is
	 * on a file of its own, as compaction replaces the log's inode.
	 */
	snprintf(lockp, sizeof(lockp), "%s/lock", j->dir);
	j->lock_fd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (j->lock_fd < 0) {
		err = -errno;
		goto out;
	}
	if (flock(j->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		err = errno == EWOULDBLOCK ? -EBUSY : -errno;
		goto out;
	}
	j->fd = open(j->file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (j->fd < 0) {
		err = -errno;
		goto out;
	}
	err = journal_replay(j);
	if (!err)
		err = journal_session_open(j);
	if (!err)
		journal_fsync_dir(j->dir);
	if (!err)
		j->opened = 1;
out:
	if (err) {
		journal_close(j);
		return err;
	}
	*out = j;
	return 0;
}

void journal_close(struct journal *j)
{
	if (!j)
		return;
	if (j->opened)	/* a clean close: the next open need not look again */
		journal_session_record(j, 1);
	if (j->buckets) {
		for (size_t i = 0; i < j->nbuckets; i++) {
			struct jentry *e = j->buckets[i], *next;
			for (; e; e = next) {
				next = e->next;
				free(e->path);
				free(e);
			}
		}
	}
	if (j->fd >= 0)
		close(j->fd);
	if (j->lock_fd >= 0)
		close(j->lock_fd);	/* releases the flock */
	pthread_mutex_destroy(&j->lock);
	free(j->buckets);
	free(j->ibuckets);
	free(j->dir);
	free(j->file);
	free(j);
}

int journal_set(struct journal *j, const char *path, enum path_state state,
		const struct version *base)
{
	char *p = journal_norm(path);
	struct jentry *e;
	uint64_t ino;
	int err;

	if (!p)
		return -ENOMEM;
	if (strlen(p) > PATH_MAX || (unsigned int)state > PATH_WHITEOUT) {
		free(p);
		return -EINVAL;
	}
	pthread_mutex_lock(&j->lock);
	e = *journal_slot(j, p);
	ino = e ? e->ino : journal_ino_locked(j, p);
	if (e && e->state == state &&
	    (!base || (base->valid == e->base.valid && base->size == e->base.size &&
		       base->mtime == e->base.mtime))) {
		err = 0;	/* already recorded */
		goto out;
	}
	err = journal_record(j, JOP_SET, state, base, ino, p, NULL);
	if (!err)
		err = journal_put(j, p, state, base, ino);
	if (!err)
		journal_maybe_compact(j);
out:
	pthread_mutex_unlock(&j->lock);
	free(p);
	return err;
}

int journal_get(struct journal *j, const char *path, struct journal_entry *out)
{
	char *p = journal_norm(path);
	struct jentry *e;
	int err = -ENOENT;

	if (!p)
		return -ENOMEM;
	pthread_mutex_lock(&j->lock);
	e = *journal_slot(j, p);
	if (e) {
		out->path = e->path;
		out->state = e->state;
		out->base = e->base;
		out->ino = e->ino;
		err = 0;
	}
	pthread_mutex_unlock(&j->lock);
	free(p);
	return err;
}

uint64_t journal_ino(struct journal *j, const char *path)
{
	char *p = journal_norm(path);
	uint64_t ino;

	if (!p)
		return journal_ino_for(path);
	pthread_mutex_lock(&j->lock);
	ino = journal_ino_locked(j, p);
	pthread_mutex_unlock(&j->lock);
	free(p);
	return ino;
}

int journal_rename(struct journal *j, const char *from, const char *to)
{
	char *f = journal_norm(from), *t = journal_norm(to);
	size_t flen;
	int err = -ENOENT;

	if (!f || !t) {
		err = -ENOMEM;
		goto out;
	}
	if (strlen(f) > PATH_MAX || strlen(t) > PATH_MAX) {
		err = -EINVAL;
		goto out;
	}
	flen = strlen(f);
	pthread_mutex_lock(&j->lock);
	for (size_t i = 0; i < j->nbuckets && err == -ENOENT; i++)
		for (struct jentry *e = j->buckets[i]; e; e = e->next)
			if (journal_is_under(e->path, f, flen)) {
				err = 0;
				break;
			}
	if (!err)
		err = journal_record(j, JOP_RENAME, 0, NULL, 0, f, t);
	if (!err)
		err = journal_move(j, f, t);
	if (!err)
		journal_maybe_compact(j);
	pthread_mutex_unlock(&j->lock);
out:
	free(f);
	free(t);
	return err;
}

int journal_remove(struct journal *j, const char *path)
{
	char *p = journal_norm(path);
	int err = -ENOENT;

	if (!p)
		return -ENOMEM;
	pthread_mutex_lock(&j->lock);
	if (*journal_slot(j, p)) {
		err = journal_record(j, JOP_REMOVE, 0, NULL, 0, p, NULL);
		if (!err)
			journal_del(j, p);
		if (!err)
			journal_maybe_compact(j);
	}
	pthread_mutex_unlock(&j->lock);
	free(p);
	return err;
}

int journal_sync(struct journal *j)
{
	int err;

	pthread_mutex_lock(&j->lock);
	err = journal_sync_locked(j);
	pthread_mutex_unlock(&j->lock);
	return err;
}

int64_t journal_unclean_since(struct journal *j)
{
	return j->unclean_since;
}

int journal_foreach(struct journal *j, int (*cb)(const struct journal_entry *, void *),
		    void *payload)
{
	int ret = 0;

	pthread_mutex_lock(&j->lock);
	for (size_t i = 0; i < j->nbuckets && !ret; i++)
		for (struct jentry *e = j->buckets[i]; e && !ret; e = e->next) {
			struct journal_entry je = {
				.path = e->path, .state = e->state, .base = e->base, .ino = e->ino,
			};
			ret = cb(&je, payload);
		}
	pthread_mutex_unlock(&j->lock);
	return ret;
}

void journal_counts(struct journal *j, uint64_t counts[5])
{
	memset(counts, 0, 5 * sizeof(counts[0]));
	pthread_mutex_lock(&j->lock);
	for (size_t i = 0; i < j->nbuckets; i++)
		for (struct jentry *e = j->buckets[i]; e; e = e->next)
			counts[e->state]++;
	pthread_mutex_unlock(&j->lock);
}
