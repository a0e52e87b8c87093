/*
 * libFuzzer target: the NDR decoders of the MS-TSTS responses
 * (tsts_parse_*). The first byte picks the parser (modulo their number, in
 * the order of harness_parser_names), the rest is the response stub as
 * rpc_call hands it over. Seeds: fuzz/seeds/tsts_parse, stubs the
 * simulator returned, named after their parser.
 */
#include <stdint.h>

#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *code;
	if (size < 1)
		return 0;
	(void)harness_parse(data[0] % HP_COUNT, data + 1, size - 1, &code);
	return 0;
}
