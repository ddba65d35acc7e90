/* vmctl/main.c: vmctl entry point (being written: lands with issue 6). */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("vmctl %s\n", WAKEFS_VERSION);
		return 0;
	}
	fprintf(stderr, "vmctl: not built yet\n");
	return 2;
}
