/*
 * vmctl/proc.c: run a program with a timeout and capture stdout and stderr.
 *
 * fork + execvp with both output pipes drained by one poll() loop (so a chatty
 * child never blocks on a full pipe); the child leads a new process group so
 * the timeout kills the shell and everything it started. Output beyond
 * PROC_MAX_OUTPUT bytes is read and dropped.
 */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROC_MAX_OUTPUT (256 * 1024)

static long proc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

struct proc_buf {
	char *data;
	size_t len, cap;
};

static int proc_buf_read(int fd, struct proc_buf *b)
{
	char tmp[8192];
	ssize_t n = read(fd, tmp, sizeof(tmp));

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 1 : 0;
	if (n == 0)
		return 0;
	if (b->len + (size_t)n > PROC_MAX_OUTPUT)
		n = (ssize_t)(PROC_MAX_OUTPUT - b->len);
	if (n > 0) {
		if (b->len + (size_t)n + 1 > b->cap) {
			size_t cap = (b->len + (size_t)n + 1) * 2;
			char *d = realloc(b->data, cap);

			if (!d)
				return 0;
			b->data = d;
			b->cap = cap;
		}
		memcpy(b->data + b->len, tmp, (size_t)n);
		b->len += (size_t)n;
		b->data[b->len] = 0;
	}
	return 1;
}

static void proc_child(const char *const argv[], const char *const envp[], int out, int err)
{
	int null = open("/dev/null", O_RDONLY);
	size_t i;

	setpgid(0, 0);
	if (null >= 0)
		dup2(null, 0);
	dup2(out, 1);
	dup2(err, 2);
	for (i = 0; envp && envp[i]; i++)
		putenv((char *)envp[i]);
	execvp(argv[0], (char *const *)argv);
	_exit(errno == ENOENT ? 127 : 126);
}

int proc_run(const char *const argv[], const char *const envp[], long timeout_ms,
	     struct proc_result *res)
{
	int po[2] = { -1, -1 }, pe[2] = { -1, -1 }, status = 0, rc = 0, open_fds = 2;
	struct proc_buf bo = { 0 }, be = { 0 };
	long deadline = proc_now_ms() + timeout_ms;
	pid_t pid;

	memset(res, 0, sizeof(*res));
	res->exit_code = -1;
	if (pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC)) {
		rc = -errno;
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		goto out;
	}
	if (pid == 0)
		proc_child(argv, envp, po[1], pe[1]);
	setpgid(pid, pid);	/* both sides, to win the race with kill() */
	close(po[1]);
	close(pe[1]);
	po[1] = pe[1] = -1;
	while (open_fds > 0) {
		struct pollfd pfd[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };
		long left = deadline - proc_now_ms();
		int n;

		if (left <= 0) {
			res->timed_out = 1;
			kill(-pid, SIGKILL);
			break;
		}
		n = poll(pfd, 2, (int)(left > 1000 ? 1000 : left));
		if (n < 0 && errno != EINTR)
			break;
		if (n <= 0)
			continue;
		if (pfd[0].revents && !proc_buf_read(po[0], &bo)) {
			close(po[0]);
			po[0] = -1;
			open_fds--;
		}
		if (pfd[1].revents && !proc_buf_read(pe[0], &be)) {
			close(pe[0]);
			pe[0] = -1;
			open_fds--;
		}
	}
	/* The pipes closed; the child may still linger: bound that wait too. */
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (proc_now_ms() >= deadline) {
			res->timed_out = 1;
			kill(-pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		usleep(10000);
	}
	if (WIFEXITED(status))
		res->exit_code = WEXITSTATUS(status);
	else if (WIFSIGNALED(status))
		res->exit_code = 128 + WTERMSIG(status);
	if (res->exit_code == 127 && !res->timed_out && !be.len)
		rc = -ENOENT;
out:
	for (int i = 0; i < 2; i++) {
		if (po[i] >= 0)
			close(po[i]);
		if (pe[i] >= 0)
			close(pe[i]);
	}
	res->out = bo.data ? bo.data : strdup("");
	res->err = be.data ? be.data : strdup("");
	res->out_len = bo.len;
	res->err_len = be.len;
	return rc;
}

void proc_result_release(struct proc_result *res)
{
	if (!res)
		return;
	free(res->out);
	free(res->err);
	res->out = res->err = NULL;
}

void proc_tail(const char *s, char *buf, size_t len)
{
	const char *end, *start;

	if (!len)
		return;
	buf[0] = 0;
	if (!s)
		return;
	end = s + strlen(s);
	while (end > s && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
		end--;
	start = end;
	while (start > s && start[-1] != '\n')
		start--;
	while (start < end && (*start == ' ' || *start == '\t'))
		start++;
	if ((size_t)(end - start) >= len)
		start = end - (len - 1);
	memcpy(buf, start, (size_t)(end - start));
	buf[end - start] = 0;
}
