/*
 * fs/policy.c: the flush policy, the only file that includes <git2.h>.
 *
 * For a path, the nearest directory of the local layer above it that holds a
 * `.git` (directory or gitdir file) names the repository that decides. Each
 * repository is opened once and kept in a small table; its git_index is
 * re-read with a forced git_index_read() only when the index file's inode,
 * size or mtime changed (git replaces the index by renaming index.lock over
 * it, so the inode changes on every write).
 *
 * For policy_newly_tracked() each repository also keeps a sorted snapshot of
 * the index's paths as of the last report (or of the first open); a changed
 * index is compared with it by one merge walk.
 *
 * Locking: one mutex (struct policy.lock) guards the table and every libgit2
 * object; it is a leaf lock (nothing else is taken while holding it).
 */
#include <errno.h>
#include <git2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "policy.h"

struct policy_stamp {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	int exists;
};

struct policy_repo {
	char *dir;			/* relative to the layer root; "" for the root */
	git_repository *repo;		/* NULL while it cannot be opened */
	git_index *index;		/* borrowed from repo, owned by us via git_index_free */
	struct policy_stamp stamp;	/* of the index file as last read into index */
	char **snap;			/* sorted index paths at the last report */
	size_t nsnap;
	struct policy_stamp snap_stamp;	/* stamp the snapshot was taken at */
	int have_snap;
	int open_failed;		/* an open failed before: start from an empty snapshot */
};

struct policy {
	pthread_mutex_t lock;		/* guards everything below and all libgit2 calls */
	char *layer_dir;
	enum flush_mode mode;
	struct policy_repo *repos;
	size_t nrepos;
};

static const char *const policy_mode_names[] = {
	[FLUSH_TRACKED] = "tracked",
	[FLUSH_UNIGNORED] = "unignored",
	[FLUSH_ALL] = "all",
};

int policy_mode_parse(const char *s, enum flush_mode *out)
{
	size_t i;

	for (i = 0; i < sizeof(policy_mode_names) / sizeof(policy_mode_names[0]); i++) {
		if (strcmp(s, policy_mode_names[i]) == 0) {
			*out = (enum flush_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *policy_mode_name(enum flush_mode mode)
{
	if ((size_t)mode < sizeof(policy_mode_names) / sizeof(policy_mode_names[0]))
		return policy_mode_names[mode];
	return "?";
}

const char *policy_verdict_name(enum policy_verdict v)
{
	switch (v) {
	case POLICY_FLUSH:
		return "flush";
	case POLICY_HOLD:
		return "hold";
	case POLICY_NEVER:
		return "never";
	}
	return "?";
}

int policy_new(struct policy **out, const char *layer_dir, enum flush_mode mode)
{
	struct policy *p;
	int err = 0;

	*out = NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->layer_dir = strdup(layer_dir);
	if (!p->layer_dir) {
		free(p);
		return -ENOMEM;
	}
	/* Keep one trailing slash off, so joins are "<dir>/<rel>". */
	while (strlen(p->layer_dir) > 1 && p->layer_dir[strlen(p->layer_dir) - 1] == '/')
		p->layer_dir[strlen(p->layer_dir) - 1] = '\0';
	p->mode = mode;
	pthread_mutex_init(&p->lock, NULL);
	if (git_libgit2_init() < 0) {
		err = -EIO;
		pthread_mutex_destroy(&p->lock);
		free(p->layer_dir);
		free(p);
		goto out;
	}
	*out = p;
out:
	return err;
}

static void policy_snap_free(struct policy_repo *pr)
{
	size_t i;

	for (i = 0; i < pr->nsnap; i++)
		free(pr->snap[i]);
	free(pr->snap);
	pr->snap = NULL;
	pr->nsnap = 0;
	pr->have_snap = 0;
}

void policy_free(struct policy *p)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; i < p->nrepos; i++) {
		git_index_free(p->repos[i].index);
		git_repository_free(p->repos[i].repo);
		policy_snap_free(&p->repos[i]);
		free(p->repos[i].dir);
	}
	free(p->repos);
	pthread_mutex_destroy(&p->lock);
	free(p->layer_dir);
	free(p);
	git_libgit2_shutdown();
}

/*
 * Copy @path without leading and trailing slashes into a new string. Returns
 * NULL on allocation failure.
 */
static char *policy_norm(const char *path)
{
	size_t len;
	char *s;

	while (*path == '/')
		path++;
	len = strlen(path);
	while (len > 0 && path[len - 1] == '/')
		len--;
	s = malloc(len + 1);
	if (!s)
		return NULL;
	memcpy(s, path, len);
	s[len] = '\0';
	return s;
}

/* 1 when a component of @rel is ".git". */
static int policy_in_git_dir(const char *rel)
{
	const char *c = rel;

	while (*c) {
		const char *end = strchr(c, '/');
		size_t n = end ? (size_t)(end - c) : strlen(c);

		if (n == 4 && memcmp(c, ".git", 4) == 0)
			return 1;
		if (!end)
			break;
		c = end + 1;
	}
	return 0;
}

static int policy_has_dotgit(struct policy *p, const char *dir, size_t dirlen)
{
	char buf[4096];
	struct stat st;
	int n;

	if (dirlen)
		n = snprintf(buf, sizeof(buf), "%s/%.*s/.git", p->layer_dir, (int)dirlen, dir);
	else
		n = snprintf(buf, sizeof(buf), "%s/.git", p->layer_dir);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return 0;
	return lstat(buf, &st) == 0;
}

/*
 * The directory (relative, length in *dirlen) of the nearest repository
 * enclosing @rel, searching from @rel's parent up to the layer root. Returns
 * 1 when found, 0 when @rel is outside any repository.
 */
static int policy_find_repo_dir(struct policy *p, const char *rel, size_t *dirlen)
{
	const char *slash = strrchr(rel, '/');
	size_t len = slash ? (size_t)(slash - rel) : 0;

	for (;;) {
		if (policy_has_dotgit(p, rel, len)) {
			*dirlen = len;
			return 1;
		}
		if (len == 0)
			return 0;
		while (len > 0 && rel[len - 1] != '/')
			len--;
		if (len > 0)
			len--;	/* drop the '/' */
	}
}

static void policy_stamp_of(const char *file, struct policy_stamp *s)
{
	struct stat st;

	memset(s, 0, sizeof(*s));
	if (stat(file, &st) != 0)
		return;
	s->exists = 1;
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	s->size = st.st_size;
	s->mtime = st.st_mtim;
}

static int policy_stamp_eq(const struct policy_stamp *a, const struct policy_stamp *b)
{
	return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino &&
	       a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static int policy_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Take a sorted snapshot of @pr's index paths (stage 0 and conflicts alike, deduplicated). */
static int policy_snap_take(struct policy_repo *pr)
{
	size_t n = git_index_entrycount(pr->index), i, k = 0;
	char **v;

	v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		const git_index_entry *e = git_index_get_byindex(pr->index, i);

		if (!e)
			continue;
		v[k] = strdup(e->path);
		if (!v[k]) {
			while (k > 0)
				free(v[--k]);
			free(v);
			return -ENOMEM;
		}
		k++;
	}
	qsort(v, k, sizeof(*v), policy_cmp_str);
	/* Conflicted paths appear once per stage: keep one. */
	n = 0;
	for (i = 0; i < k; i++) {
		if (n > 0 && strcmp(v[n - 1], v[i]) == 0) {
			free(v[i]);
			continue;
		}
		v[n++] = v[i];
	}
	policy_snap_free(pr);
	pr->snap = v;
	pr->nsnap = n;
	pr->snap_stamp = pr->stamp;
	pr->have_snap = 1;
	return 0;
}

/* Open @pr's repository and index if not open yet; re-read the index when its file changed. */
static int policy_repo_ready(struct policy *p, struct policy_repo *pr)
{
	char buf[4096];
	struct policy_stamp now;
	int n;

	if (!pr->repo) {
		if (pr->dir[0])
			n = snprintf(buf, sizeof(buf), "%s/%s", p->layer_dir, pr->dir);
		else
			n = snprintf(buf, sizeof(buf), "%s", p->layer_dir);
		if (n < 0 || (size_t)n >= sizeof(buf))
			return -ENAMETOOLONG;
		if (git_repository_open_ext(&pr->repo, buf, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0) {
			pr->repo = NULL;
			pr->open_failed = 1;
			return -EAGAIN;
		}
		if (git_repository_is_bare(pr->repo) || git_repository_index(&pr->index, pr->repo) < 0) {
			git_repository_free(pr->repo);
			pr->repo = NULL;
			pr->index = NULL;
			pr->open_failed = 1;
			return -EAGAIN;
		}
		memset(&pr->stamp, 0, sizeof(pr->stamp));
		pr->stamp.exists = -1;	/* force the first read */
		if (pr->open_failed) {
			/* Paths held meanwhile must be reported once tracked. */
			policy_snap_free(pr);
			pr->have_snap = 1;
			memset(&pr->snap_stamp, 0, sizeof(pr->snap_stamp));
			pr->snap_stamp.exists = -2;
		}
	}
	n = snprintf(buf, sizeof(buf), "%s", git_index_path(pr->index));
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -ENAMETOOLONG;
	policy_stamp_of(buf, &now);
	if (!policy_stamp_eq(&now, &pr->stamp)) {
		if (git_index_read(pr->index, 1) < 0) {
			/* A torn or locked index: decide on the last good one, retry later. */
			return pr->stamp.exists == -1 ? -EAGAIN : 0;
		}
		pr->stamp = now;
	}
	if (!pr->have_snap)
		return policy_snap_take(pr);
	return 0;
}

/* The table entry for repository directory @dir (length @len), made when missing. */
static struct policy_repo *policy_repo_get(struct policy *p, const char *dir, size_t len)
{
	struct policy_repo *v;
	size_t i;

	for (i = 0; i < p->nrepos; i++) {
		if (strlen(p->repos[i].dir) == len && memcmp(p->repos[i].dir, dir, len) == 0)
			return &p->repos[i];
	}
	v = realloc(p->repos, (p->nrepos + 1) * sizeof(*v));
	if (!v)
		return NULL;
	p->repos = v;
	memset(&v[p->nrepos], 0, sizeof(v[0]));
	v[p->nrepos].dir = strndup(dir, len);
	if (!v[p->nrepos].dir)
		return NULL;
	return &p->repos[p->nrepos++];
}

/* 1 when @rel (relative to the repository) or a path under it is in the index. */
static int policy_in_index(struct policy_repo *pr, const char *rel)
{
	size_t pos, len = strlen(rel);
	char *prefix;
	int found;

	if (git_index_find(&pos, pr->index, rel) == 0)
		return 1;
	prefix = malloc(len + 2);
	if (!prefix)
		return 0;
	memcpy(prefix, rel, len);
	prefix[len] = '/';
	prefix[len + 1] = '\0';
	found = git_index_find_prefix(&pos, pr->index, prefix) == 0;
	free(prefix);
	return found;
}

/* 1 when @rel is in the tree of HEAD (0 on an unborn branch). */
static int policy_in_head(struct policy_repo *pr, const char *rel)
{
	git_reference *head = NULL;
	git_object *tree = NULL;
	git_tree_entry *e = NULL;
	int found = 0;

	if (git_repository_head(&head, pr->repo) < 0)
		goto out;
	if (git_reference_peel(&tree, head, GIT_OBJECT_TREE) < 0)
		goto out;
	if (git_tree_entry_bypath(&e, (git_tree *)tree, rel) == 0)
		found = 1;
out:
	git_tree_entry_free(e);
	git_object_free(tree);
	git_reference_free(head);
	return found;
}

static int policy_decide_locked(struct policy *p, const char *path, int removal,
				enum policy_verdict *out)
{
	struct policy_repo *pr;
	const char *rel;
	size_t dirlen;
	char *norm;
	int err = 0, ignored = 0;

	norm = policy_norm(path);
	if (!norm)
		return -ENOMEM;
	if (policy_in_git_dir(norm) || strcmp(norm, ".wakefs") == 0 ||
	    strncmp(norm, ".wakefs/", 8) == 0) {
		*out = POLICY_NEVER;
		goto out;
	}
	if (!norm[0] || !policy_find_repo_dir(p, norm, &dirlen) || p->mode == FLUSH_ALL) {
		*out = POLICY_FLUSH;
		goto out;
	}
	pr = policy_repo_get(p, norm, dirlen);
	if (!pr) {
		err = -ENOMEM;
		goto out;
	}
	err = policy_repo_ready(p, pr);
	if (err == -EAGAIN) {
		/* .git is there but not a readable repository yet (a clone starting). */
		*out = POLICY_HOLD;
		err = 0;
		goto out;
	}
	if (err)
		goto out;
	rel = norm + dirlen + (dirlen ? 1 : 0);
	if (policy_in_index(pr, rel) || (removal && policy_in_head(pr, rel))) {
		*out = POLICY_FLUSH;
		goto out;
	}
	if (p->mode == FLUSH_UNIGNORED &&
	    git_ignore_path_is_ignored(&ignored, pr->repo, rel) == 0 && !ignored) {
		*out = POLICY_FLUSH;
		goto out;
	}
	*out = POLICY_HOLD;
out:
	free(norm);
	return err;
}

int policy_decide(struct policy *p, const char *path, enum policy_verdict *out)
{
	int err;

	pthread_mutex_lock(&p->lock);
	err = policy_decide_locked(p, path, 0, out);
	pthread_mutex_unlock(&p->lock);
	return err;
}

int policy_decide_removal(struct policy *p, const char *path, enum policy_verdict *out)
{
	int err;

	pthread_mutex_lock(&p->lock);
	err = policy_decide_locked(p, path, 1, out);
	pthread_mutex_unlock(&p->lock);
	return err;
}

/*
 * Report the paths of @pr's current index missing from its snapshot, then
 * make the current index the snapshot. Returns the count or -errno.
 */
static int policy_repo_report(struct policy_repo *pr, int (*cb)(const char *, void *),
			      void *payload)
{
	char **old = pr->snap, **cur;
	size_t nold = pr->nsnap, ncur, i = 0, j = 0;
	int count = 0, err;
	char buf[4096];

	pr->snap = NULL;
	pr->nsnap = 0;
	pr->have_snap = 0;
	err = policy_snap_take(pr);
	if (err) {
		pr->snap = old;
		pr->nsnap = nold;
		pr->have_snap = 1;
		return err;
	}
	cur = pr->snap;
	ncur = pr->nsnap;
	while (j < ncur) {
		int c = i < nold ? strcmp(old[i], cur[j]) : 1;

		if (c < 0) {
			i++;
			continue;
		}
		if (c == 0) {
			i++;
			j++;
			continue;
		}
		if (pr->dir[0])
			snprintf(buf, sizeof(buf), "/%s/%s", pr->dir, cur[j]);
		else
			snprintf(buf, sizeof(buf), "/%s", cur[j]);
		j++;
		count++;
		err = cb(buf, payload);
		if (err) {
			count = err;
			break;
		}
	}
	for (i = 0; i < nold; i++)
		free(old[i]);
	free(old);
	return count;
}

int policy_newly_tracked(struct policy *p, int (*cb)(const char *path, void *payload),
			 void *payload)
{
	size_t i;
	int total = 0, n;

	pthread_mutex_lock(&p->lock);
	for (i = 0; i < p->nrepos; i++) {
		struct policy_repo *pr = &p->repos[i];

		if (policy_repo_ready(p, pr) != 0)
			continue;
		if (pr->have_snap && policy_stamp_eq(&pr->snap_stamp, &pr->stamp))
			continue;
		n = policy_repo_report(pr, cb, payload);
		if (n < 0) {
			total = n;
			break;
		}
		total += n;
	}
	pthread_mutex_unlock(&p->lock);
	return total;
}
