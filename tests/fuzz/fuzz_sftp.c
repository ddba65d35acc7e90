/*
 * fuzz_sftp.c: libFuzzer target for the SFTP reply decoders (fs/sftp.c).
 * Every input is treated as a reply body of every type and walked the way
 * fs/remote.c walks it; ASan/UBSan turn any overread into a crash.
 * Built and run briefly by tests/integration/t-engine-fuzz.sh (clang).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sftp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const unsigned char *x;
	struct sftp_attrs a;
	struct sftp_limits l;
	struct statvfs sv;
	unsigned char *p;
	unsigned int exts;
	uint32_t u, count, plen;
	uint8_t type;
	size_t xl, pos;
	char name[64];

	/* An exact-size copy: reading one byte past it is caught. */
	p = malloc(size ? size : 1);
	if (!p)
		return 0;
	memcpy(p, data, size);
	sftp_packet_len(p, size, &plen);
	sftp_dec_header(p, size, &type, &u);
	sftp_dec_status(p, size, &u);
	sftp_dec_handle(p, size, &x, &xl);
	sftp_dec_data(p, size, &x, &xl);
	sftp_dec_attrs(p, size, &a);
	sftp_dec_version(p, size, &u, &exts);
	sftp_dec_statvfs(p, size, &sv);
	sftp_dec_limits(p, size, &l);
	if (sftp_dec_name(p, size, &count, &pos) == 0)
		while (count-- && sftp_dec_name_next(p, size, &pos, name, sizeof(name), &a) == 0)
			;
	free(p);
	return 0;
}
