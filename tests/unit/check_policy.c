/*
 * check_policy.c: the flush policy against real repositories made with the
 * git command in a temporary directory standing in for the local layer.
 */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy.h"
#include "tap.h"

static char layer[PATH_MAX];

/* Run a shell command inside the layer directory; fail the test if it fails. */
static void sh(const char *fmt, ...)
{
	char cmd[8192], line[8192 + 2 * PATH_MAX + 256];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	snprintf(line, sizeof(line),
		 "cd '%s' && export GIT_CONFIG_NOSYSTEM=1 HOME='%s' GIT_AUTHOR_NAME=t "
		 "GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t && (%s) >/dev/null 2>&1",
		 layer, layer, cmd);
	rc = system(line);
	ck_assert_msg(rc == 0, "command failed: %s", cmd);
}

static void setup(void)
{
	snprintf(layer, sizeof(layer), "%s/check_policy.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(layer));
}

static void teardown(void)
{
	char cmd[PATH_MAX + 32];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", layer);
	ck_assert_int_eq(system(cmd), 0);
}

static enum policy_verdict decide(struct policy *p, const char *path)
{
	enum policy_verdict v = (enum policy_verdict)-1;

	ck_assert_int_eq(policy_decide(p, path, &v), 0);
	return v;
}

static enum policy_verdict decide_removal(struct policy *p, const char *path)
{
	enum policy_verdict v = (enum policy_verdict)-1;

	ck_assert_int_eq(policy_decide_removal(p, path, &v), 0);
	return v;
}

static struct policy *mk(enum flush_mode mode)
{
	struct policy *p = NULL;

	ck_assert_int_eq(policy_new(&p, layer, mode), 0);
	ck_assert_ptr_nonnull(p);
	return p;
}

START_TEST(test_mode_parse)
{
	enum flush_mode m;

	ck_assert_int_eq(policy_mode_parse("tracked", &m), 0);
	ck_assert_int_eq(m, FLUSH_TRACKED);
	ck_assert_int_eq(policy_mode_parse("unignored", &m), 0);
	ck_assert_int_eq(m, FLUSH_UNIGNORED);
	ck_assert_int_eq(policy_mode_parse("all", &m), 0);
	ck_assert_int_eq(m, FLUSH_ALL);
	ck_assert_int_eq(policy_mode_parse("everything", &m), -EINVAL);
	ck_assert_int_eq(policy_mode_parse("", &m), -EINVAL);
	ck_assert_str_eq(policy_mode_name(FLUSH_UNIGNORED), "unignored");
	ck_assert_str_eq(policy_verdict_name(POLICY_HOLD), "hold");
}
END_TEST

START_TEST(test_plain_dir_flushes_all)
{
	struct policy *p = mk(FLUSH_TRACKED);

	sh("mkdir -p a/b && echo x > a/b/f");
	ck_assert_int_eq(decide(p, "/a/b/f"), POLICY_FLUSH);
	ck_assert_int_eq(decide(p, "a/b/f"), POLICY_FLUSH);
	ck_assert_int_eq(decide(p, "/new-file"), POLICY_FLUSH);
	ck_assert_int_eq(decide(p, "/a"), POLICY_FLUSH);
	ck_assert_int_eq(decide(p, "/"), POLICY_FLUSH);
	ck_assert_int_eq(decide_removal(p, "/a/b/f"), POLICY_FLUSH);
	policy_free(p);
}
END_TEST

START_TEST(test_git_dir_never)
{
	struct policy *p = mk(FLUSH_ALL);

	sh("git init -q && mkdir -p sub && git -C sub init -q");
	ck_assert_int_eq(decide(p, "/.git"), POLICY_NEVER);
	ck_assert_int_eq(decide(p, "/.git/index"), POLICY_NEVER);
	ck_assert_int_eq(decide(p, "/.git/objects/ab/cdef"), POLICY_NEVER);
	ck_assert_int_eq(decide(p, "/sub/.git/config.lock"), POLICY_NEVER);
	ck_assert_int_eq(decide(p, "/x/.git"), POLICY_NEVER);
	ck_assert_int_eq(decide_removal(p, "/.git/index.lock"), POLICY_NEVER);
	ck_assert_int_eq(decide(p, "/.wakefs/journal"), POLICY_NEVER);
	ck_assert_int_eq(decide(p, "/.wakefs"), POLICY_NEVER);
	ck_assert_int_eq(decide(p, "/.wakefsx"), POLICY_FLUSH);
	/* Only a whole component named .git counts. */
	ck_assert_int_eq(decide(p, "/.gitignore"), POLICY_FLUSH);
	ck_assert_int_eq(decide(p, "/a.git/x"), POLICY_FLUSH);
	ck_assert_int_eq(decide(p, "/.github/workflows/ci.yml"), POLICY_FLUSH);
	policy_free(p);
}
END_TEST

START_TEST(test_tracked_and_untracked)
{
	struct policy *p;

	sh("git init -q && mkdir -p src && echo a > src/a.py && echo b > notes.txt && git add src/a.py");
	p = mk(FLUSH_TRACKED);
	ck_assert_int_eq(decide(p, "/src/a.py"), POLICY_FLUSH);
	ck_assert_int_eq(decide(p, "/notes.txt"), POLICY_HOLD);
	ck_assert_int_eq(decide(p, "/src/new.py"), POLICY_HOLD);
	/* A directory holding tracked files is tracked; one without is not. */
	ck_assert_int_eq(decide(p, "/src"), POLICY_FLUSH);
	ck_assert_int_eq(decide(p, "/src/"), POLICY_FLUSH);
	sh("mkdir -p data");
	ck_assert_int_eq(decide(p, "/data"), POLICY_HOLD);
	/* "src" must not match "src2/...". */
	ck_assert_int_eq(decide(p, "/sr"), POLICY_HOLD);
	policy_free(p);
}
END_TEST

START_TEST(test_git_add_rereads_index)
{
	struct policy *p;

	sh("git init -q && echo a > a && echo b > b && git add a");
	p = mk(FLUSH_TRACKED);
	ck_assert_int_eq(decide(p, "/b"), POLICY_HOLD);
	sh("git add b");
	ck_assert_int_eq(decide(p, "/b"), POLICY_FLUSH);
	sh("git rm -q --cached a");
	ck_assert_int_eq(decide(p, "/a"), POLICY_HOLD);
	policy_free(p);
}
END_TEST

START_TEST(test_unignored)
{
	struct policy *p;

	sh("git init -q && printf '*.log\\nbuild/\\n' > .gitignore && echo x > keep.log && git add -f keep.log");
	p = mk(FLUSH_UNIGNORED);
	ck_assert_int_eq(decide(p, "/untracked.py"), POLICY_FLUSH);
	ck_assert_int_eq(decide(p, "/run.log"), POLICY_HOLD);
	ck_assert_int_eq(decide(p, "/build/out.o"), POLICY_HOLD);
	/* Tracked wins over ignored. */
	ck_assert_int_eq(decide(p, "/keep.log"), POLICY_FLUSH);
	ck_assert_int_eq(decide(p, "/.git/HEAD"), POLICY_NEVER);
	policy_free(p);

	p = mk(FLUSH_TRACKED);
	ck_assert_int_eq(decide(p, "/untracked.py"), POLICY_HOLD);
	ck_assert_int_eq(decide(p, "/keep.log"), POLICY_FLUSH);
	policy_free(p);

	p = mk(FLUSH_ALL);
	ck_assert_int_eq(decide(p, "/run.log"), POLICY_FLUSH);
	ck_assert_int_eq(decide(p, "/untracked.py"), POLICY_FLUSH);
	policy_free(p);
}
END_TEST

START_TEST(test_nearest_repo_decides)
{
	struct policy *p;

	sh("git init -q && echo o > outer && git add outer && mkdir -p lib/inner/d && "
	   "git -C lib/inner init -q && echo i > lib/inner/d/f && git -C lib/inner add d/f && "
	   "echo u > lib/inner/other");
	p = mk(FLUSH_TRACKED);
	ck_assert_int_eq(decide(p, "/outer"), POLICY_FLUSH);
	ck_assert_int_eq(decide(p, "/lib/inner/d/f"), POLICY_FLUSH);
	ck_assert_int_eq(decide(p, "/lib/inner/other"), POLICY_HOLD);
	ck_assert_int_eq(decide(p, "/lib/inner/d"), POLICY_FLUSH);
	policy_free(p);
}
END_TEST

START_TEST(test_removal_sees_head)
{
	struct policy *p;

	sh("git init -q && echo a > a && echo b > b && mkdir d && echo c > d/c && git add . && "
	   "git commit -qm one && git rm -q a && git rm -rq --cached d");
	p = mk(FLUSH_TRACKED);
	ck_assert_int_eq(decide(p, "/a"), POLICY_HOLD);
	ck_assert_int_eq(decide_removal(p, "/a"), POLICY_FLUSH);
	ck_assert_int_eq(decide_removal(p, "/d/c"), POLICY_FLUSH);
	ck_assert_int_eq(decide_removal(p, "/d"), POLICY_FLUSH);
	ck_assert_int_eq(decide_removal(p, "/never-there"), POLICY_HOLD);
	policy_free(p);
}
END_TEST

START_TEST(test_removal_unborn_branch)
{
	struct policy *p;

	sh("git init -q && echo a > a");
	p = mk(FLUSH_TRACKED);
	ck_assert_int_eq(decide_removal(p, "/a"), POLICY_HOLD);
	sh("git add a");
	ck_assert_int_eq(decide_removal(p, "/a"), POLICY_FLUSH);
	policy_free(p);
}
END_TEST

struct seen {
	char paths[16][256];
	int n;
};

static int collect(const char *path, void *payload)
{
	struct seen *s = payload;

	ck_assert_int_lt(s->n, 16);
	snprintf(s->paths[s->n++], sizeof(s->paths[0]), "%s", path);
	return 0;
}

static int seen_has(const struct seen *s, const char *path)
{
	int i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->paths[i], path) == 0)
			return 1;
	return 0;
}

START_TEST(test_newly_tracked)
{
	struct policy *p;
	struct seen s;

	sh("git init -q && echo a > a && mkdir -p sub && echo b > sub/b && echo c > c && git add a");
	p = mk(FLUSH_TRACKED);
	ck_assert_int_eq(decide(p, "/sub/b"), POLICY_HOLD);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(policy_newly_tracked(p, collect, &s), 0);
	sh("git add sub/b c");
	ck_assert_int_eq(policy_newly_tracked(p, collect, &s), 2);
	ck_assert_int_eq(s.n, 2);
	ck_assert(seen_has(&s, "/sub/b"));
	ck_assert(seen_has(&s, "/c"));
	/* Reported once. */
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(policy_newly_tracked(p, collect, &s), 0);
	/* A decide in between (which re-reads the index) does not hide additions. */
	sh("echo d > d && git add d");
	ck_assert_int_eq(decide(p, "/d"), POLICY_FLUSH);
	ck_assert_int_eq(policy_newly_tracked(p, collect, &s), 1);
	ck_assert_str_eq(s.paths[0], "/d");
	/* Removals are not reported. */
	memset(&s, 0, sizeof(s));
	sh("git rm -q --cached c");
	ck_assert_int_eq(policy_newly_tracked(p, collect, &s), 0);
	policy_free(p);
}
END_TEST

START_TEST(test_newly_tracked_nested)
{
	struct policy *p;
	struct seen s;

	sh("mkdir -p proj/x && git -C proj init -q && echo y > proj/x/y");
	p = mk(FLUSH_TRACKED);
	ck_assert_int_eq(decide(p, "/proj/x/y"), POLICY_HOLD);
	sh("git -C proj add x/y");
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(policy_newly_tracked(p, collect, &s), 1);
	ck_assert_str_eq(s.paths[0], "/proj/x/y");
	policy_free(p);
}
END_TEST

static int stop_cb(const char *path, void *payload)
{
	(void)path;
	(void)payload;
	return -ECANCELED;
}

START_TEST(test_newly_tracked_stops)
{
	struct policy *p;

	sh("git init -q && echo a > a && echo b > b");
	p = mk(FLUSH_TRACKED);
	ck_assert_int_eq(decide(p, "/a"), POLICY_HOLD);
	sh("git add a b");
	ck_assert_int_eq(policy_newly_tracked(p, stop_cb, NULL), -ECANCELED);
	policy_free(p);
}
END_TEST

START_TEST(test_clone_in_progress)
{
	struct policy *p;
	struct seen s;

	/* A .git that is not a repository yet (a clone just started) holds. */
	sh("mkdir -p .git && echo f > f");
	p = mk(FLUSH_TRACKED);
	ck_assert_int_eq(decide(p, "/f"), POLICY_HOLD);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(policy_newly_tracked(p, collect, &s), 0);
	/* The repository becomes whole and the checkout's index lands. */
	sh("rmdir .git && git init -q && git add f");
	ck_assert_int_eq(policy_newly_tracked(p, collect, &s), 1);
	ck_assert_str_eq(s.paths[0], "/f");
	ck_assert_int_eq(decide(p, "/f"), POLICY_FLUSH);
	policy_free(p);
}
END_TEST

START_TEST(test_repo_appears_later)
{
	struct policy *p = mk(FLUSH_TRACKED);

	sh("echo a > a");
	ck_assert_int_eq(decide(p, "/a"), POLICY_FLUSH);
	sh("git init -q");
	ck_assert_int_eq(decide(p, "/a"), POLICY_HOLD);
	sh("git add a");
	ck_assert_int_eq(decide(p, "/a"), POLICY_FLUSH);
	policy_free(p);
}
END_TEST

START_TEST(test_layer_dir_trailing_slash)
{
	struct policy *p = NULL;
	char dir[PATH_MAX + 2];

	sh("git init -q && echo a > a && git add a");
	snprintf(dir, sizeof(dir), "%s/", layer);
	ck_assert_int_eq(policy_new(&p, dir, FLUSH_TRACKED), 0);
	ck_assert_int_eq(decide(p, "/a"), POLICY_FLUSH);
	ck_assert_int_eq(decide(p, "/b"), POLICY_HOLD);
	policy_free(p);
	policy_free(NULL);
}
END_TEST

static Suite *policy_suite(void)
{
	Suite *s = suite_create("policy");
	struct {
		const char *name;
		const TTest *test;
	} cases[] = {
		{ "mode_parse", test_mode_parse },
		{ "plain_dir_flushes_all", test_plain_dir_flushes_all },
		{ "git_dir_never", test_git_dir_never },
		{ "tracked_and_untracked", test_tracked_and_untracked },
		{ "git_add_rereads_index", test_git_add_rereads_index },
		{ "unignored", test_unignored },
		{ "nearest_repo_decides", test_nearest_repo_decides },
		{ "removal_sees_head", test_removal_sees_head },
		{ "removal_unborn_branch", test_removal_unborn_branch },
		{ "newly_tracked", test_newly_tracked },
		{ "newly_tracked_nested", test_newly_tracked_nested },
		{ "newly_tracked_stops", test_newly_tracked_stops },
		{ "clone_in_progress", test_clone_in_progress },
		{ "repo_appears_later", test_repo_appears_later },
		{ "layer_dir_trailing_slash", test_layer_dir_trailing_slash },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		TCase *tc = tcase_create(cases[i].name);

		tcase_add_checked_fixture(tc, setup, teardown);
		tcase_set_timeout(tc, 60);
		tcase_add_test(tc, cases[i].test);
		suite_add_tcase(s, tc);
	}
	return s;
}

TAP_MAIN(policy_suite)
