/* fs/main.c: wakefs entry point (being written: the mount lands with issue 3). */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("wakefs %s\n", WAKEFS_VERSION);
		return 0;
	}
	fprintf(stderr, "wakefs: not built yet\n");
	return 2;
}
