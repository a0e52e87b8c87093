/*
 * libFuzzer target: the whole MS-TSTS client -- every ts_* call from
 * listing to shutdown, with its fallbacks, context handles and the small
 * answers parsed inline in src/tsts.c -- against a server whose every byte
 * comes from the input, through the memory transport (fuzz/memtransport.c)
 * in place of libsmbclient, with NTLM in test mode (ts_opts.ntlm_fixed) so
 * that sealed seeds replay. Input layout: see harness_client in harness.h. Seeds:
 * fuzz/seeds/tsts_client, whole conversations captured from the simulator.
 */
#include <stdint.h>

#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	harness_result r;
	harness_client(data, size, &r);
	return 0;
}
