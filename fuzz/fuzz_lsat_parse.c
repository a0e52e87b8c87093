/*
 * libFuzzer target: the MS-LSAT answer decoders (src/lsat.c). The first
 * byte picks the parser (0 LsarOpenPolicy2, 1 LsarLookupSids2, 2 LsarClose,
 * modulo 3), the second is the number of SIDs asked (for the lookup), the
 * rest is the response stub. Seeds: fuzz/seeds/lsat_parse.
 */
#include <stdint.h>
#include <string.h>

#include "lsat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	const uint8_t *p = data + 2;
	size_t n = size - 2;
	ts_err e;
	memset(&e, 0, sizeof e);
	uint32_t status = 0;
	switch (data[0] % 3) {
	case 0: {
		uint8_t handle[LSAT_HANDLE_LEN];
		(void)lsat_parse_open_policy2(p, n, handle, &status, &e);
		break;
	}
	case 1: {
		lsat_names out = {0};
		if (lsat_parse_lookup_sids2(p, n, data[1], &out, &status, &e) == 0) {
			/* every entry is readable and NUL-terminated */
			size_t total = 0;
			for (size_t i = 0; i < out.n; i++)
				total += strlen(out.v[i].name) + strlen(out.v[i].domain);
			(void)total;
			if (out.n != data[1])
				__builtin_trap();
		}
		lsat_names_free(&out);
		break;
	}
	default:
		(void)lsat_parse_close(p, n, &status, &e);
		break;
	}
	return 0;
}
