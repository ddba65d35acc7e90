/*
 * vmctl/proc.h: run a program with a timeout and capture its output.
 *
 * Used by the command provider (the user's shell commands) and by the Azure
 * CLI credential. The child runs in its own process group, which is killed as
 * a whole when the timeout expires. stdin is /dev/null.
 */
#ifndef WAKEFS_PROC_H
#define WAKEFS_PROC_H

#include <stddef.h>

struct proc_result {
	int exit_code;		/* exit status, 128+signal if killed, -1 if not run */
	int timed_out;
	char *out;		/* stdout, NUL-terminated (at most 256 KiB kept); caller frees */
	char *err;		/* stderr, same */
	size_t out_len, err_len;
};

/*
 * Run @argv (argv[0] looked up in PATH) with extra environment @envp
 * ("K=V" strings added to ours; may be NULL), wait at most @timeout_ms.
 * Returns 0 when the program ran (look at res->exit_code / timed_out), or
 * -errno when it could not be started (-ENOENT: not found).
 * Release the result with proc_result_release().
 */
int proc_run(const char *const argv[], const char *const envp[], long timeout_ms,
	     struct proc_result *res);
void proc_result_release(struct proc_result *res);

/* The last line of @s that is not blank, trimmed, into @buf (for messages). */
void proc_tail(const char *s, char *buf, size_t len);

#endif
