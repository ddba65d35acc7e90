/*
 * fs/layer.c: the local layer of a mount: its directory, path states, the
 * caches of the remote side and the clean whole-file copies (no network).
 *
 * Files written through the mount live in the layer directory itself and are
 * never evicted; files that were only read are cached in .wakefs/cache/ under
 * a name made from a hash of their path, with the VM's mtime set on them: a
 * copy is valid while its size and mtime equal the VM's. Those copies are
 * evicted least recently used first when their total passes cache_max.
 *
 * Everything in memory (attribute and listing caches, write generations, the
 * LRU list, the callbacks) is protected by l->lock. Lock order: l->lock before
 * the journal's lock; callbacks are called without l->lock.
 *
 * What is cached about the VM expires after attr_ms, unless the change feed
 * vouches for it: while the feed keeps scanning (layer_trust_for), a listing
 * stays valid until the feed drops it, and so do the attributes of the root
 * and of a path whose parent's listing is cached (a creation, deletion or
 * rename on the VM changes the parent, which the feed then drops). A bulk scan of the whole
 * tree (layer_learn_begin/end) fills both caches at mount; lookups that miss
 * meanwhile may wait for it (layer_learn_wait).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "layer.h"

#define LAYER_DEFAULT_CACHE_MAX (4ull << 30)
#define LAYER_DEFAULT_FILE_MAX (256ull << 20)
#define LAYER_DEFAULT_ATTR_MS 20000

/* --- a small string-keyed hash map -------------------------------------------- */

struct lmap_ent {
	struct lmap_ent *next;
	char *key;
	void *val;
};

struct lmap {
	struct lmap_ent **b;
	size_t nb, n;
	void (*free_val)(void *);
};

static uint64_t layer_strhash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ull;
	}
	return h;
}

static int lmap_init(struct lmap *m, void (*free_val)(void *))
{
	m->nb = 64;
	m->n = 0;
	m->free_val = free_val;
	m->b = calloc(m->nb, sizeof(*m->b));
	return m->b ? 0 : -ENOMEM;
}

static struct lmap_ent **lmap_slot(struct lmap *m, const char *key)
{
	struct lmap_ent **e = &m->b[layer_strhash(key) % m->nb];

	while (*e && strcmp((*e)->key, key) != 0)
		e = &(*e)->next;
	return e;
}

static void *lmap_get(struct lmap *m, const char *key)
{
	struct lmap_ent *e = *lmap_slot(m, key);

	return e ? e->val : NULL;
}

static void lmap_grow(struct lmap *m)
{
	size_t nb = m->nb * 2;
	struct lmap_ent **b = calloc(nb, sizeof(*b));

	if (!b)
		return;
	for (size_t i = 0; i < m->nb; i++) {
		struct lmap_ent *e = m->b[i], *next;
		for (; e; e = next) {
			size_t h = layer_strhash(e->key) % nb;
			next = e->next;
			e->next = b[h];
			b[h] = e;
		}
	}
	free(m->b);
	m->b = b;
	m->nb = nb;
}

/* Store @val under @key (replacing and freeing an old value); -ENOMEM frees @val. */
static int lmap_put(struct lmap *m, const char *key, void *val)
{
	struct lmap_ent **slot = lmap_slot(m, key), *e = *slot;

	if (e) {
		if (m->free_val && e->val != val)
			m->free_val(e->val);
		e->val = val;
		return 0;
	}
	e = calloc(1, sizeof(*e));
	if (!e || !(e->key = strdup(key))) {
		free(e);
		if (m->free_val)
			m->free_val(val);
		return -ENOMEM;
	}
	e->val = val;
	*slot = e;
	if (++m->n > m->nb * 2)
		lmap_grow(m);
	return 0;
}

static void lmap_del(struct lmap *m, const char *key)
{
	struct lmap_ent **slot = lmap_slot(m, key), *e = *slot;

	if (!e)
		return;
	*slot = e->next;
	if (m->free_val)
		m->free_val(e->val);
	free(e->key);
	free(e);
	m->n--;
}

static void lmap_clear(struct lmap *m)
{
	if (!m->b)
		return;
	for (size_t i = 0; i < m->nb; i++) {
		struct lmap_ent *e = m->b[i], *next;
		for (; e; e = next) {
			next = e->next;
			if (m->free_val)
				m->free_val(e->val);
			free(e->key);
			free(e);
		}
		m->b[i] = NULL;
	}
	m->n = 0;
}

static void lmap_release(struct lmap *m)
{
	lmap_clear(m);
	free(m->b);
	m->b = NULL;
}

/* --- the layer ------------------------------------------------------------------ */

struct lattr {
	struct stat st;
	int negative;
	uint64_t t_ms;
};

struct layer_listing {
	char **names;
	struct stat *sts;
	size_t n, cap;
	uint64_t t_ms;
};

/* A clean cached copy, on the LRU list (head: most recently used). */
struct lcache {
	char name[17];	/* file name in .wakefs/cache/ */
	uint64_t size;
	struct lcache *prev, *next;
};

struct layer {
	char *dir;
	char *cache_dir;
	char *tmp_dir;
	struct journal *j;
	uint64_t cache_max, file_max;
	int attr_ms;

	pthread_mutex_t lock;	/* protects all below; taken before the journal's */
	struct lmap attrs;	/* path -> struct lattr */
	struct lmap dirs;	/* path -> struct layer_listing */
	struct lmap gens;	/* path -> (uintptr_t) generation */
	uint64_t gen;		/* the last generation handed out */
	struct lmap cached;	/* cache file name -> struct lcache */
	struct lcache *lru_head, *lru_tail;
	uint64_t cache_usage;
	unsigned long tmp_seq;
	layer_notify_cb notify;
	void *notify_payload;
	layer_fsync_cb fsync;
	void *fsync_payload;
	layer_presend_cb presend;
	void *presend_payload;
	uint64_t trust_until;	/* the feed vouches for the caches until then */
	int learning;		/* a bulk scan is filling the caches */
	uint64_t learn_since;	/* since when */
	uint64_t learned;	/* paths the last bulk scan recorded */
	pthread_cond_t learn_cond;	/* signalled when learning ends */
};

static uint64_t layer_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void layer_free_ptr(void *p)
{
	free(p);
}

static void layer_listing_free_void(void *p)
{
	layer_listing_free(p);
}

static char *layer_join(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 1;
	char *s = malloc(n);

	if (s)
		snprintf(s, n, "%s%s", a, b);
	return s;
}

/* Remove the files (not directories) directly inside @dir. */
static void layer_clear_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
}

static void layer_lru_unlink(struct layer *l, struct lcache *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		l->lru_head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		l->lru_tail = c->prev;
	c->prev = c->next = NULL;
}

static void layer_lru_push(struct layer *l, struct lcache *c)
{
	c->prev = NULL;
	c->next = l->lru_head;
	if (l->lru_head)
		l->lru_head->prev = c;
	l->lru_head = c;
	if (!l->lru_tail)
		l->lru_tail = c;
}

/* Forget a cached copy (not its file). Called with l->lock held. */
static void layer_cache_forget(struct layer *l, const char *name)
{
	struct lcache *c = lmap_get(&l->cached, name);

	if (!c)
		return;
	layer_lru_unlink(l, c);
	l->cache_usage -= c->size;
	lmap_del(&l->cached, name);
}

static int layer_cache_track(struct layer *l, const char *name, uint64_t size)
{
	struct lcache *c = lmap_get(&l->cached, name);

	if (c) {
		l->cache_usage -= c->size;
		layer_lru_unlink(l, c);
	} else {
		c = calloc(1, sizeof(*c));
		if (!c)
			return -ENOMEM;
		snprintf(c->name, sizeof(c->name), "%s", name);
		if (lmap_put(&l->cached, name, c))
			return -ENOMEM;
	}
	c->size = size;
	l->cache_usage += size;
	layer_lru_push(l, c);
	return 0;
}

/* The cache file name of @path: 16 hex digits of its hash. */
static void layer_cache_name(const char *path, char name[17])
{
	snprintf(name, 17, "%016llx", (unsigned long long)journal_ino_for(path));
}

static int layer_cache_file(struct layer *l, const char *name, char *buf, size_t len)
{
	if ((size_t)snprintf(buf, len, "%s/%s", l->cache_dir, name) >= len)
		return -ENAMETOOLONG;
	return 0;
}

/* Evict least recently used copies over the bound. Called with l->lock held. */
static void layer_cache_evict(struct layer *l)
{
	char file[PATH_MAX];

	while (l->cache_usage > l->cache_max && l->lru_tail) {
		struct lcache *c = l->lru_tail;
		if (layer_cache_file(l, c->name, file, sizeof(file)) == 0)
			unlink(file);
		layer_cache_forget(l, c->name);
	}
}

static void layer_cache_scan(struct layer *l)
{
	DIR *d = opendir(l->cache_dir);
	struct dirent *de;
	struct stat st;

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (strlen(de->d_name) != 16 || fstatat(dirfd(d), de->d_name, &st, 0) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		layer_cache_track(l, de->d_name, st.st_size);
	}
	closedir(d);
	layer_cache_evict(l);
}

/* mkdir -p @dir (0755; the last component 0700 when new: the user's data). */
static int layer_mkdirs(const char *dir)
{
	char *p = strdup(dir);
	int err = 0;

	if (!p)
		return -ENOMEM;
	for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			err = -errno;
		*s = '/';
		if (err)
			goto out;
	}
	if (mkdir(p, 0700) < 0 && errno != EEXIST)
		err = -errno;
out:
	free(p);
	return err;
}

/*
 * The base a path keeps when it becomes DIRTY (NULL: its current one). A
 * CLEAN file's, and a whiteout's, is the VM version that the change (or,
 * over a whiteout, the new file, directory or symlink) replaces: the flush
 * replaces it only if the VM did not change it, and a delete of the new path
 * hides it again. Anything else starts with none.
 */
static const struct version *layer_dirty_base(int have, enum path_state s)
{
	static const struct version none = { 0 };

	return have && (s == PATH_CLEAN || s == PATH_WHITEOUT) ? NULL : &none;
}

/*
 * After a power loss (journal_unclean_since): the journal may have lost the
 * last second of records of its previous session, while the files they were
 * about reached the disk. Look at every file of the layer changed (ctime)
 * since that session began: one with no entry, or a whiteout, or a CLEAN one
 * whose size or mtime is no longer the VM version's it recorded, is DIRTY
 * again, so that the flusher sends it (against the base layer_dirty_base
 * keeps, so that a VM change is still a conflict). A file that was sent and not changed
 * since keeps its state. @rel: the mount path so far ("" for the root).
 */
struct layer_recheck {
	struct layer *l;
	int64_t since;
	size_t marked;
};

static void layer_recheck_dir(struct layer_recheck *rc, char *rel, size_t rlen)
{
	char lp[PATH_MAX];
	DIR *d;
	struct dirent *de;

	if (snprintf(lp, sizeof(lp), "%s%s", rc->l->dir, rel) >= (int)sizeof(lp))
		return;
	d = opendir(lp);
	if (!d)
		return;
	while ((de = readdir(d))) {
		struct journal_entry e;
		struct stat st;
		size_t n = strlen(de->d_name);
		int have, stale;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    (rlen == 0 && !strcmp(de->d_name, ".wakefs")) || rlen + 1 + n >= PATH_MAX)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		rel[rlen] = '/';
		memcpy(rel + rlen + 1, de->d_name, n + 1);
		if (S_ISDIR(st.st_mode)) {
			layer_recheck_dir(rc, rel, rlen + 1 + n);
		} else if (st.st_ctime >= rc->since - 1) {
			have = journal_get(rc->l->j, rel, &e) == 0;
			stale = !have || e.state == PATH_WHITEOUT ||
				(e.state == PATH_CLEAN &&
				 (!e.base.valid || e.base.size != (uint64_t)st.st_size ||
				  e.base.mtime != (int64_t)st.st_mtime));
			if (stale && journal_set(rc->l->j, rel, PATH_DIRTY,
						 layer_dirty_base(have, e.state)) == 0)
				rc->marked++;
		}
		rel[rlen] = '\0';
	}
	closedir(d);
}

static void layer_recheck(struct layer *l)
{
	struct layer_recheck rc = { .l = l, .since = journal_unclean_since(l->j) };
	char rel[PATH_MAX] = "";

	if (!rc.since)
		return;
	layer_recheck_dir(&rc, rel, 0);
	journal_sync(l->j);
	fprintf(stderr, "wakefs: the last mount of the local layer %s ended with the machine "
		"(a power loss or a crash of the system): %zu file%s changed during it %s "
		"marked dirty again and will be sent\n", l->dir, rc.marked,
		rc.marked == 1 ? "" : "s", rc.marked == 1 ? "is" : "are");
}

int layer_new(struct layer **out, const struct layer_opts *o)
{
	struct layer *l = calloc(1, sizeof(*l));
	int err = 0;

	*out = NULL;
	if (!l)
		return -ENOMEM;
	pthread_mutex_init(&l->lock, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&l->learn_cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	l->cache_max = o->cache_max ? o->cache_max : LAYER_DEFAULT_CACHE_MAX;
	l->file_max = o->cache_file_max ? o->cache_file_max : LAYER_DEFAULT_FILE_MAX;
	if (!o->cache_file_max && l->file_max > l->cache_max / 4)
		l->file_max = l->cache_max / 4;	/* a few whole files fit in the bound */
	l->attr_ms = o->attr_timeout_ms ? o->attr_timeout_ms : LAYER_DEFAULT_ATTR_MS;
	l->dir = strdup(o->dir);
	if (!l->dir) {
		err = -ENOMEM;
		goto out;
	}
	/* "/x/layer/" and "/x/layer" are the same directory. */
	for (size_t n = strlen(l->dir); n > 1 && l->dir[n - 1] == '/'; n--)
		l->dir[n - 1] = '\0';
	err = layer_mkdirs(l->dir);
	if (err)
		goto out;
	l->cache_dir = layer_join(l->dir, "/.wakefs/cache");
	l->tmp_dir = layer_join(l->dir, "/.wakefs/tmp");
	if (!l->cache_dir || !l->tmp_dir) {
		err = -ENOMEM;
		goto out;
	}
	if ((err = lmap_init(&l->attrs, layer_free_ptr)) ||
	    (err = lmap_init(&l->dirs, layer_listing_free_void)) ||
	    (err = lmap_init(&l->gens, NULL)) || (err = lmap_init(&l->cached, layer_free_ptr)))
		goto out;
	err = journal_open(&l->j, l->dir);
	if (err)
		goto out;
	if ((mkdir(l->cache_dir, 0700) < 0 && errno != EEXIST) ||
	    (mkdir(l->tmp_dir, 0700) < 0 && errno != EEXIST)) {
		err = -errno;
		goto out;
	}
	layer_clear_dir(l->tmp_dir);	/* downloads a crash interrupted */
	layer_cache_scan(l);
	layer_recheck(l);
out:
	if (err) {
		layer_free(l);
		return err;
	}
	*out = l;
	return 0;
}

void layer_free(struct layer *l)
{
	if (!l)
		return;
	journal_close(l->j);
	lmap_release(&l->attrs);
	lmap_release(&l->dirs);
	lmap_release(&l->gens);
	lmap_release(&l->cached);
	pthread_cond_destroy(&l->learn_cond);
	pthread_mutex_destroy(&l->lock);
	free(l->dir);
	free(l->cache_dir);
	free(l->tmp_dir);
	free(l);
}

int layer_default_dir(const char *host, const char *remote_dir, char *buf, size_t len)
{
	const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
	char slug[256];
	size_t n = 0;
	int w;

	for (const char *s = host; *s && n < 120; s++)
		slug[n++] = (strchr("/:\\ ", *s) || *s < 0x20) ? '_' : *s;
	if (remote_dir && *remote_dir) {
		slug[n++] = '-';
		while (*remote_dir == '/')
			remote_dir++;
		for (const char *s = remote_dir; *s && n < sizeof(slug) - 1; s++)
			slug[n++] = (strchr("/:\\ ", *s) || *s < 0x20) ? '_' : *s;
	}
	while (n > 1 && slug[n - 1] == '_')
		n--;
	slug[n] = '\0';
	if (slug[0] == '.')
		slug[0] = '_';
	if (xdg && xdg[0] == '/')
		w = snprintf(buf, len, "%s/wakefs/%s", xdg, slug);
	else if (home && *home)
		w = snprintf(buf, len, "%s/.local/share/wakefs/%s", home, slug);
	else
		return -ENOENT;
	return w < 0 || (size_t)w >= len ? -ENAMETOOLONG : 0;
}

const char *layer_dir(struct layer *l)
{
	return l->dir;
}

struct journal *layer_journal(struct layer *l)
{
	return l->j;
}

uint64_t layer_cache_file_max(struct layer *l)
{
	return l->file_max;
}

int layer_hidden(const char *path)
{
	while (*path == '/')
		path++;
	return strncmp(path, ".wakefs", 7) == 0 && (path[7] == '\0' || path[7] == '/');
}

int layer_child(const char *dir, const char *name, char *buf, size_t len)
{
	int w = snprintf(buf, len, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, name);

	return w < 0 || (size_t)w >= len ? -ENAMETOOLONG : 0;
}

int layer_local_path(struct layer *l, const char *path, char *buf, size_t len)
{
	int w;

	while (*path == '/')
		path++;
	w = snprintf(buf, len, "%s/%s", l->dir, path);
	return w < 0 || (size_t)w >= len ? -ENAMETOOLONG : 0;
}

int layer_local_stat(struct layer *l, const char *path, struct stat *st)
{
	char lp[PATH_MAX];
	int err;

	if (layer_hidden(path))
		return -ENOENT;
	err = layer_local_path(l, path, lp, sizeof(lp));
	if (err)
		return err;
	return lstat(lp, st) < 0 ? -errno : 0;
}

/* --- path states --------------------------------------------------------------- */

int layer_state(struct layer *l, const char *path, enum path_state *state, struct version *base)
{
	struct journal_entry e;
	int err = journal_get(l->j, path, &e);

	if (err)
		return err;
	if (state)
		*state = e.state;
	if (base)
		*base = e.base;
	return 0;
}

/*
 * The VM has @path now (@has: the flusher sent it, or it was there) or has
 * not (the flusher deleted it, or it never had it): what the caches say of
 * @path itself is stale, and its parent's listing, when cached, gets or
 * loses its name. Keeping that listing, rather than dropping it, keeps the
 * lookups of names the VM lacks local while files are written into a
 * directory (an untar, a checkout): each would otherwise cost a round trip.
 */
static int layer_parent(const char *path, char *buf, size_t len);

static void layer_vm_now(struct layer *l, const char *path, int has)
{
	char parent[PATH_MAX], lp[PATH_MAX];
	struct layer_listing *ls;
	const char *name = strrchr(path, '/');
	struct stat st;
	size_t i;
	int known = has && layer_local_path(l, path, lp, sizeof(lp)) == 0 && lstat(lp, &st) == 0;

	pthread_mutex_lock(&l->lock);
	lmap_del(&l->attrs, path);
	lmap_del(&l->dirs, path);
	ls = name && name[1] && layer_parent(path, parent, sizeof(parent)) == 0
		     ? lmap_get(&l->dirs, parent) : NULL;
	if (ls) {
		name++;
		for (i = 0; i < ls->n && strcmp(ls->names[i], name) != 0; i++)
			;
		if (has && !known) {
			lmap_del(&l->dirs, parent);	/* what it is there is not known here */
		} else if (has && i < ls->n) {
			ls->sts[i] = st;
		} else if (has && layer_listing_add(ls, name, &st)) {
			lmap_del(&l->dirs, parent);	/* out of memory: forget the listing */
		} else if (!has && i < ls->n) {
			free(ls->names[i]);
			ls->names[i] = ls->names[ls->n - 1];
			ls->sts[i] = ls->sts[ls->n - 1];
			ls->n--;
		}
	}
	pthread_mutex_unlock(&l->lock);
}

/*
 * A state change may follow a change on the VM (the flusher sent or deleted
 * the path): CLEAN means the VM has it; the other states leave the VM as it
 * was, and only what is cached of @path itself goes.
 */
int layer_mark(struct layer *l, const char *path, enum path_state state,
	       const struct version *base)
{
	int err = journal_set(l->j, path, state, base);

	if (state == PATH_CLEAN)
		layer_vm_now(l, path, 1);
	else
		layer_invalidate_changed(l, path);
	return err;
}

int layer_sync(struct layer *l)
{
	return journal_sync(l->j);
}

/* The journal forgets a path the VM does not have (deleted there, or never sent). */
int layer_forget(struct layer *l, const char *path)
{
	int err = journal_remove(l->j, path);

	layer_vm_now(l, path, 0);
	return err == -ENOENT ? 0 : err;
}

int layer_is_whiteout(struct layer *l, const char *path)
{
	enum path_state s;

	return layer_state(l, path, &s, NULL) == 0 && s == PATH_WHITEOUT;
}

uint64_t layer_ino(struct layer *l, const char *path)
{
	return journal_ino(l->j, path);
}

uint64_t layer_gen(struct layer *l, const char *path)
{
	uint64_t g;

	pthread_mutex_lock(&l->lock);
	g = (uintptr_t)lmap_get(&l->gens, path);
	pthread_mutex_unlock(&l->lock);
	return g;
}

/*
 * A change through the mount: (none)/CLEAN/WHITEOUT -> DIRTY. HELD and
 * CONFLICT stay: the flusher decides again when the file is closed.
 */
int layer_bump(struct layer *l, const char *path)
{
	return layer_bump_gen(l, path, NULL, NULL);
}

int layer_bump_gen(struct layer *l, const char *path, uint64_t *prev, uint64_t *now)
{
	enum path_state s;
	int err = 0, have;

	pthread_mutex_lock(&l->lock);
	if (prev)
		*prev = (uintptr_t)lmap_get(&l->gens, path);
	l->gen++;
	if (now)
		*now = l->gen;
	lmap_put(&l->gens, path, (void *)(uintptr_t)l->gen);	/* ENOMEM: gen 0, stays dirty */
	have = layer_state(l, path, &s, NULL) == 0;
	if (!have || (s != PATH_DIRTY && s != PATH_HELD && s != PATH_CONFLICT))
		err = journal_set(l->j, path, PATH_DIRTY, layer_dirty_base(have, s));
	pthread_mutex_unlock(&l->lock);
	return err;
}

/* DIRTY -> CLEAN [the flusher, nothing written meanwhile], else stays DIRTY with the new base. */
int layer_flushed(struct layer *l, const char *path, uint64_t gen, const struct version *new_base)
{
	uint64_t cur;
	int err;

	pthread_mutex_lock(&l->lock);
	cur = (uintptr_t)lmap_get(&l->gens, path);
	err = journal_set(l->j, path, cur == gen ? PATH_CLEAN : PATH_DIRTY, new_base);
	pthread_mutex_unlock(&l->lock);
	layer_vm_now(l, path, 1);
	return err;
}

/* --- callbacks ------------------------------------------------------------------ */

void layer_set_notify(struct layer *l, layer_notify_cb notify, void *payload)
{
	pthread_mutex_lock(&l->lock);
	l->notify = notify;
	l->notify_payload = payload;
	pthread_mutex_unlock(&l->lock);
}

void layer_set_fsync(struct layer *l, layer_fsync_cb fsync, void *payload)
{
	pthread_mutex_lock(&l->lock);
	l->fsync = fsync;
	l->fsync_payload = payload;
	pthread_mutex_unlock(&l->lock);
}

void layer_set_presend(struct layer *l, layer_presend_cb presend, void *payload)
{
	pthread_mutex_lock(&l->lock);
	l->presend = presend;
	l->presend_payload = payload;
	pthread_mutex_unlock(&l->lock);
}

struct presend *layer_presend(struct layer *l, const char *path, int fd, uint64_t gen)
{
	layer_presend_cb cb;
	void *payload;

	pthread_mutex_lock(&l->lock);
	cb = l->presend;
	payload = l->presend_payload;
	pthread_mutex_unlock(&l->lock);
	return cb ? cb(payload, path, fd, gen) : NULL;
}

void layer_notify(struct layer *l, const char *path, int event, const char *to)
{
	layer_notify_cb cb;
	void *payload;

	pthread_mutex_lock(&l->lock);
	cb = l->notify;
	payload = l->notify_payload;
	pthread_mutex_unlock(&l->lock);
	if (cb)
		cb(payload, path, event, to);
}

int layer_fsync(struct layer *l, const char *path)
{
	layer_fsync_cb cb;
	void *payload;

	pthread_mutex_lock(&l->lock);
	cb = l->fsync;
	payload = l->fsync_payload;
	pthread_mutex_unlock(&l->lock);
	return cb ? cb(payload, path) : 0;
}

/* --- caches of the remote side ------------------------------------------------------- */

/* The directory holding @path into @buf ("/" for "/x"); -1 without a '/' or when too long. */
static int layer_parent(const char *path, char *buf, size_t len)
{
	const char *slash = strrchr(path, '/');
	size_t n;

	if (!slash)
		return -1;
	n = slash == path ? 1 : (size_t)(slash - path);
	if (n >= len)
		return -1;
	memcpy(buf, path, n);
	buf[n] = '\0';
	return 0;
}

/* Called with l->lock held: does the feed vouch for the caches now? */
static int layer_trusted_locked(struct layer *l, uint64_t now)
{
	return now < l->trust_until;
}

/* Called with l->lock held: is @path's parent listing cached (and so watched)? */
static int layer_parent_listed_locked(struct layer *l, const char *path)
{
	char parent[PATH_MAX];

	return strcmp(path, "/") != 0 && layer_parent(path, parent, sizeof(parent)) == 0 &&
	       lmap_get(&l->dirs, parent) != NULL;
}

static int layer_attr_lookup(struct layer *l, const char *path, struct stat *st, uint64_t max,
			     int trust)
{
	struct lattr *a;
	uint64_t now = layer_now_ms();
	int err = -EAGAIN;

	pthread_mutex_lock(&l->lock);
	a = lmap_get(&l->attrs, path);
	if (a && (now - a->t_ms < max ||
		  (trust && layer_trusted_locked(l, now) &&
		   (strcmp(path, "/") == 0 || layer_parent_listed_locked(l, path))))) {
		if (a->negative) {
			err = -ENOENT;
		} else {
			*st = a->st;
			err = 0;
		}
	}
	pthread_mutex_unlock(&l->lock);
	return err;
}

int layer_attr_get(struct layer *l, const char *path, struct stat *st)
{
	return layer_attr_lookup(l, path, st, (uint64_t)l->attr_ms, 1);
}

int layer_attr_get_max(struct layer *l, const char *path, struct stat *st, int max_age_ms)
{
	uint64_t max = max_age_ms < 0 ? UINT64_MAX
		     : (uint64_t)(max_age_ms < l->attr_ms ? max_age_ms : l->attr_ms);

	return layer_attr_lookup(l, path, st, max, 0);
}

/* Called with l->lock held. */
static void layer_attr_put_locked(struct layer *l, const char *path, const struct stat *st)
{
	struct lattr *a = calloc(1, sizeof(*a));

	if (!a)
		return;
	if (st)
		a->st = *st;
	a->negative = !st;
	a->t_ms = layer_now_ms();
	lmap_put(&l->attrs, path, a);
}

void layer_attr_put(struct layer *l, const char *path, const struct stat *st)
{
	pthread_mutex_lock(&l->lock);
	layer_attr_put_locked(l, path, st);
	pthread_mutex_unlock(&l->lock);
}

int layer_listing_new(struct layer_listing **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

int layer_listing_add(struct layer_listing *ls, const char *name, const struct stat *st)
{
	if (ls->n == ls->cap) {
		size_t cap = ls->cap ? ls->cap * 2 : 16;
		char **names = realloc(ls->names, cap * sizeof(*names));
		struct stat *sts;
		if (!names)
			return -ENOMEM;
		ls->names = names;
		sts = realloc(ls->sts, cap * sizeof(*sts));
		if (!sts)
			return -ENOMEM;
		ls->sts = sts;
		ls->cap = cap;
	}
	ls->names[ls->n] = strdup(name);
	if (!ls->names[ls->n])
		return -ENOMEM;
	ls->sts[ls->n++] = *st;
	return 0;
}

void layer_listing_free(struct layer_listing *ls)
{
	if (!ls)
		return;
	for (size_t i = 0; i < ls->n; i++)
		free(ls->names[i]);
	free(ls->names);
	free(ls->sts);
	free(ls);
}

static int layer_cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * With l->lock held: @path's listing @old is replaced by @ls; the
 * attributes kept for names @ls no longer has go (the VM deleted them: a
 * listed directory's entries are trusted while the feed runs). Out of
 * memory, every entry of @old goes.
 */
static void layer_dir_drop_gone_locked(struct layer *l, const char *path,
				       const struct layer_listing *old,
				       const struct layer_listing *ls)
{
	char child[PATH_MAX];
	char **sorted = ls->n ? malloc(ls->n * sizeof(*sorted)) : NULL;

	if (sorted) {
		memcpy(sorted, ls->names, ls->n * sizeof(*sorted));
		qsort(sorted, ls->n, sizeof(*sorted), layer_cmp_name);
	}
	for (size_t i = 0; i < old->n; i++) {
		if (sorted && bsearch(&old->names[i], sorted, ls->n, sizeof(*sorted), layer_cmp_name))
			continue;
		if (layer_child(path, old->names[i], child, sizeof(child)) == 0)
			lmap_del(&l->attrs, child);
	}
	free(sorted);
}

void layer_dir_put(struct layer *l, const char *path, struct layer_listing *ls)
{
	char child[PATH_MAX];
	struct layer_listing *old;

	ls->t_ms = layer_now_ms();
	pthread_mutex_lock(&l->lock);
	old = lmap_get(&l->dirs, path);
	if (old)
		layer_dir_drop_gone_locked(l, path, old, ls);
	for (size_t i = 0; i < ls->n; i++)
		if (layer_child(path, ls->names[i], child, sizeof(child)) == 0)
			layer_attr_put_locked(l, child, &ls->sts[i]);
	lmap_put(&l->dirs, path, ls);
	pthread_mutex_unlock(&l->lock);
}

static int layer_dir_get_age(struct layer *l, const char *path,
			     int (*cb)(const char *name, const struct stat *st, void *payload),
			     void *payload, uint64_t max)
{
	struct layer_listing *ls, *copy = NULL;
	uint64_t now = layer_now_ms();
	int err = -EAGAIN;

	pthread_mutex_lock(&l->lock);
	ls = lmap_get(&l->dirs, path);
	if (ls && (now - ls->t_ms < max || layer_trusted_locked(l, now))) {
		err = layer_listing_new(&copy);
		for (size_t i = 0; !err && i < ls->n; i++)
			err = layer_listing_add(copy, ls->names[i], &ls->sts[i]);
	}
	pthread_mutex_unlock(&l->lock);
	if (err)
		goto out;
	for (size_t i = 0; !err && i < copy->n; i++)
		err = cb(copy->names[i], &copy->sts[i], payload);
out:
	layer_listing_free(copy);
	return err;
}

int layer_dir_get(struct layer *l, const char *path,
		  int (*cb)(const char *name, const struct stat *st, void *payload), void *payload)
{
	return layer_dir_get_age(l, path, cb, payload, l->attr_ms);
}

int layer_dir_cached(struct layer *l, const char *dir)
{
	int has;

	pthread_mutex_lock(&l->lock);
	has = lmap_get(&l->dirs, dir) != NULL;
	pthread_mutex_unlock(&l->lock);
	return has;
}

void layer_vm_has(struct layer *l, const char *path)
{
	layer_vm_now(l, path, 1);
}

void layer_dir_made(struct layer *l, const char *path, const struct stat *st)
{
	struct layer_listing *ls;

	layer_vm_now(l, path, 1);
	if (layer_listing_new(&ls))
		return;
	layer_attr_put(l, path, st);
	layer_dir_put(l, path, ls);
}

int layer_dir_has(struct layer *l, const char *dir, const char *name)
{
	struct layer_listing *ls;
	uint64_t now = layer_now_ms();
	int ret = -EAGAIN;

	pthread_mutex_lock(&l->lock);
	ls = lmap_get(&l->dirs, dir);
	if (ls && (now - ls->t_ms < (uint64_t)l->attr_ms || layer_trusted_locked(l, now))) {
		ret = 0;
		for (size_t i = 0; i < ls->n && !ret; i++)
			ret = strcmp(ls->names[i], name) == 0;
	}
	pthread_mutex_unlock(&l->lock);
	return ret;
}

int layer_dir_get_stale(struct layer *l, const char *path,
			int (*cb)(const char *name, const struct stat *st, void *payload),
			void *payload)
{
	return layer_dir_get_age(l, path, cb, payload, UINT64_MAX);
}

void layer_invalidate(struct layer *l, const char *path)
{
	char parent[PATH_MAX];

	pthread_mutex_lock(&l->lock);
	lmap_del(&l->attrs, path);
	lmap_del(&l->dirs, path);
	if (layer_parent(path, parent, sizeof(parent)) == 0)
		lmap_del(&l->dirs, parent);
	pthread_mutex_unlock(&l->lock);
}

void layer_invalidate_changed(struct layer *l, const char *path)
{
	pthread_mutex_lock(&l->lock);
	lmap_del(&l->attrs, path);
	lmap_del(&l->dirs, path);
	pthread_mutex_unlock(&l->lock);
}

void layer_invalidate_all(struct layer *l)
{
	pthread_mutex_lock(&l->lock);
	lmap_clear(&l->attrs);
	lmap_clear(&l->dirs);
	pthread_mutex_unlock(&l->lock);
}

void layer_trust_for(struct layer *l, int ms)
{
	pthread_mutex_lock(&l->lock);
	l->trust_until = ms > 0 ? layer_now_ms() + (uint64_t)ms : 0;
	pthread_mutex_unlock(&l->lock);
}

void layer_learn_begin(struct layer *l)
{
	pthread_mutex_lock(&l->lock);
	if (!l->learning)
		l->learn_since = layer_now_ms();
	l->learning = 1;
	pthread_mutex_unlock(&l->lock);
}

void layer_learn_end(struct layer *l, uint64_t learned)
{
	pthread_mutex_lock(&l->lock);
	l->learning = 0;
	if (learned)
		l->learned = learned;
	pthread_cond_broadcast(&l->learn_cond);
	pthread_mutex_unlock(&l->lock);
}

int layer_learn_wait(struct layer *l, int max_ms)
{
	struct timespec ts;
	uint64_t until;
	int waited = 0;

	pthread_mutex_lock(&l->lock);
	/* Counted from the scan's start: a slow scan holds up lookups once, not each. */
	until = l->learn_since + (uint64_t)max_ms;
	if (l->learning && layer_now_ms() < until) {
		waited = 1;
		/* learn_cond runs on CLOCK_MONOTONIC, layer_now_ms()'s clock */
		ts.tv_sec = (time_t)(until / 1000);
		ts.tv_nsec = (long)(until % 1000) * 1000000;
		while (l->learning && pthread_cond_timedwait(&l->learn_cond, &l->lock, &ts) == 0)
			;
	}
	pthread_mutex_unlock(&l->lock);
	return waited;
}

uint64_t layer_learned(struct layer *l)
{
	uint64_t n;

	pthread_mutex_lock(&l->lock);
	n = l->learned;
	pthread_mutex_unlock(&l->lock);
	return n;
}

/* --- whole-file copies ------------------------------------------------------------- */

int layer_tmpfile(struct layer *l, char *name, size_t len)
{
	unsigned long seq;
	int fd, w;

	pthread_mutex_lock(&l->lock);
	seq = ++l->tmp_seq;
	pthread_mutex_unlock(&l->lock);
	w = snprintf(name, len, "%s/dl.%lu.XXXXXX", l->tmp_dir, seq);
	if (w < 0 || (size_t)w >= len)
		return -ENAMETOOLONG;
	fd = mkostemp(name, O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int layer_same_version(const struct stat *a, const struct stat *b)
{
	return a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec;
}

int layer_cache_open(struct layer *l, const char *path, const struct stat *remote)
{
	char name[17], file[PATH_MAX];
	struct stat st;
	int fd, err;

	layer_cache_name(path, name);
	err = layer_cache_file(l, name, file, sizeof(file));
	if (err)
		return err;
	pthread_mutex_lock(&l->lock);
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -ENOENT;
		layer_cache_forget(l, name);
	} else if (fstat(fd, &st) < 0 || !layer_same_version(&st, remote)) {
		err = -ENOENT;
		close(fd);
		unlink(file);
		layer_cache_forget(l, name);
	} else {
		struct lcache *c = lmap_get(&l->cached, name);
		if (c) {
			layer_lru_unlink(l, c);
			layer_lru_push(l, c);
		}
	}
	pthread_mutex_unlock(&l->lock);
	return err ? err : fd;
}

int layer_cache_commit(struct layer *l, const char *path, const char *tmpname,
		       const struct stat *remote)
{
	struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, remote->st_mtim };
	char name[17], file[PATH_MAX];
	struct stat st;
	int err;

	ts[1].tv_nsec = 0;
	layer_cache_name(path, name);
	err = layer_cache_file(l, name, file, sizeof(file));
	if (err)
		return err;
	if (utimensat(AT_FDCWD, tmpname, ts, 0) < 0 || stat(tmpname, &st) < 0)
		return -errno;
	pthread_mutex_lock(&l->lock);
	if (rename(tmpname, file) < 0) {
		err = -errno;
	} else {
		err = layer_cache_track(l, name, st.st_size);
		layer_cache_evict(l);
	}
	pthread_mutex_unlock(&l->lock);
	return err;
}

void layer_cache_drop(struct layer *l, const char *path)
{
	char name[17], file[PATH_MAX];

	layer_cache_name(path, name);
	if (layer_cache_file(l, name, file, sizeof(file)))
		return;
	pthread_mutex_lock(&l->lock);
	unlink(file);
	layer_cache_forget(l, name);
	pthread_mutex_unlock(&l->lock);
}

uint64_t layer_cache_usage(struct layer *l)
{
	uint64_t u;

	pthread_mutex_lock(&l->lock);
	u = l->cache_usage;
	pthread_mutex_unlock(&l->lock);
	return u;
}

int layer_mkparents(struct layer *l, const char *path)
{
	char lp[PATH_MAX];
	size_t base = strlen(l->dir) + 1;
	int err = layer_local_path(l, path, lp, sizeof(lp));

	if (err)
		return err;
	for (char *p = lp + base; (p = strchr(p, '/')); p++) {
		*p = '\0';
		if (mkdir(lp, 0755) < 0 && errno != EEXIST)
			err = -errno;
		*p = '/';
		if (err)
			return err;
	}
	return 0;
}

int layer_install(struct layer *l, const char *path, const char *tmpname,
		  const struct stat *remote)
{
	char lp[PATH_MAX], name[17], file[PATH_MAX];
	struct stat st;
	int err;

	if (layer_hidden(path))
		return -EPERM;
	err = layer_local_path(l, path, lp, sizeof(lp));
	if (!err)
		err = layer_mkparents(l, path);
	if (err)
		return err;
	if (tmpname) {
		if (remote) {
			struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { remote->st_mtim.tv_sec, 0 } };
			utimensat(AT_FDCWD, tmpname, ts, 0);
			chmod(tmpname, remote->st_mode & 07777);
		}
		return rename(tmpname, lp) < 0 ? -errno : 0;
	}
	layer_cache_name(path, name);
	err = layer_cache_file(l, name, file, sizeof(file));
	if (err)
		return err;
	pthread_mutex_lock(&l->lock);
	if (stat(file, &st) < 0 || !remote || !layer_same_version(&st, remote)) {
		err = -ENOENT;
	} else {
		if (remote)
			chmod(file, remote->st_mode & 07777);
		if (rename(file, lp) < 0)
			err = -errno;
		else
			layer_cache_forget(l, name);
	}
	pthread_mutex_unlock(&l->lock);
	return err;
}
