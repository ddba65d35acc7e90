/*
 * fs/dirlist.c: an open directory's listing, handed out at offsets (see
 * dirlist.h for why).
 */
#include "dirlist.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct dirent_copy {
	char *name;
	struct stat st;
	int has_st;
	enum fuse_fill_dir_flags fill;
};

struct dirlist {
	char *path;
	struct dirent_copy *v;
	size_t n, cap;
	int listed;	/* v holds a listing */
	int oom;	/* dirlist_filler ran out of memory */
};

static void dirlist_clear(struct dirlist *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].name);
	d->n = 0;
	d->listed = 0;
	d->oom = 0;
}

struct dirlist *dirlist_new(const char *path)
{
	struct dirlist *d = calloc(1, sizeof(*d));

	if (d && path && !(d->path = strdup(path))) {
		free(d);
		d = NULL;
	}
	return d;
}

void dirlist_free(struct dirlist *d)
{
	if (!d)
		return;
	dirlist_clear(d);
	free(d->v);
	free(d->path);
	free(d);
}

const char *dirlist_path(const struct dirlist *d)
{
	return d->path;
}

int dirlist_add(struct dirlist *d, const char *name, const struct stat *st,
		enum fuse_fill_dir_flags fill)
{
	struct dirent_copy *e;

	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;

		e = realloc(d->v, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		d->v = e;
		d->cap = cap;
	}
	e = &d->v[d->n];
	e->name = strdup(name);
	if (!e->name)
		return -ENOMEM;
	e->has_st = st != NULL;
	if (st)
		e->st = *st;
	e->fill = fill;
	d->n++;
	return 0;
}

int dirlist_filler(void *buf, const char *name, const struct stat *st, off_t off,
		   enum fuse_fill_dir_flags fill)
{
	struct dirlist *d = buf;

	(void)off;
	if (dirlist_add(d, name, st, fill)) {
		d->oom = 1;
		return 1;
	}
	return 0;
}

int dirlist_readdir(struct dirlist *d, off_t off, void *buf, fuse_fill_dir_t filler,
		    dirlist_list_fn list, void *payload)
{
	int err;

	if (off < 0)
		return -EINVAL;
	if (off == 0 || !d->listed) {
		dirlist_clear(d);
		err = list(d, payload);
		if (!err && d->oom)
			err = -ENOMEM;
		if (err) {
			dirlist_clear(d);
			return err;
		}
		d->listed = 1;
	}
	for (size_t i = (size_t)off; i < d->n; i++) {
		struct dirent_copy *e = &d->v[i];

		if (filler(buf, e->name, e->has_st ? &e->st : NULL, (off_t)i + 1, e->fill))
			break;	/* the kernel's buffer is full: it asks again from here */
	}
	return 0;
}
