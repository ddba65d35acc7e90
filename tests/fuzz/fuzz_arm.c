/*
 * tests/fuzz/fuzz_arm.c: a libFuzzer target for vmctl's ARM and token
 * response handling (every azure_parse_* function and azure_parse_error).
 *
 * With clang and libFuzzer:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -DWAKEFS_LIBFUZZER \
 *     -I. -Ivmctl tests/fuzz/fuzz_arm.c vmctl/azure.c vmctl/provider.c \
 *     vmctl/config.c vmctl/proc.c vmctl/http.c vmctl/auth.c \
 *     -DWAKEFS_VERSION='"fuzz"' -D_GNU_SOURCE -Ibuild/DIR -lcjson -lcurl -o fuzz_arm
 *   ./fuzz_arm tests/fixtures/arm/
 * (build/DIR is a build directory holding the generated vmctl/azure-template.h.)
 * Without -DWAKEFS_LIBFUZZER it builds as a plain program that runs the
 * target once over each file named on its command line (the fixtures), so the
 * normal build keeps it compiling and the corpus crash-free.
 */
#include "azure.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_name(const char *name, void *payload)
{
	(void)name;
	(*(size_t *)payload)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body = malloc(size + 1), buf[1024], loc[64], code[64], msg[400], *tok, *next, *out;
	struct vm_error err;
	struct vm_status st;
	size_t names = 0;
	time_t exp;
	int already, k;

	if (!body)
		return 0;
	memcpy(body, data, size);
	body[size] = 0;
	azure_parse_power(body, &st, &err);
	azure_parse_vm_nic(body, buf, sizeof(buf), loc, sizeof(loc), &err);
	azure_parse_nic_pip(body, buf, sizeof(buf), &err);
	azure_parse_pip_address(body, buf, sizeof(buf), &err);
	azure_parse_async_status(body, &err);
	azure_parse_error(body, code, sizeof(code), msg, sizeof(msg));
	for (k = AZURE_TOKEN_AAD; k <= AZURE_TOKEN_IMDS; k++)
		if (azure_parse_token(body, (enum azure_token_kind)k, &tok, &exp, &err) == 0)
			free(tok);
	if (azure_parse_vm_list(body, fuzz_name, &names, &next, &err) == 0)
		free(next);
	if (azure_terms_accepted(body, &out, &already, &err) == 0)
		free(out);
	free(body);
	return 0;
}

#ifndef WAKEFS_LIBFUZZER
int main(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		uint8_t *data;
		long n;

		if (!f) {
			fprintf(stderr, "fuzz_arm: cannot open '%s'\n", argv[i]);
			return 1;
		}
		fseek(f, 0, SEEK_END);
		n = ftell(f);
		rewind(f);
		data = malloc((size_t)n + 1);
		if (!data || fread(data, 1, (size_t)n, f) != (size_t)n) {
			fclose(f);
			free(data);
			return 1;
		}
		fclose(f);
		LLVMFuzzerTestOneInput(data, (size_t)n);
		free(data);
	}
	return 0;
}
#endif
