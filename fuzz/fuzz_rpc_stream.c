/*
 * libFuzzer target: the DCE/RPC engine (rpc_bind, then rpc_call until the
 * input ends or the connection breaks) reading the server's side of one
 * pipe from the input, without RPC authentication: fragment headers, reassembly of
 * multi-fragment responses, faults, bind_ack and bind_nak, call ids.
 * Input layout: see harness_engine in harness.h. Seeds: fuzz/seeds/rpc_stream.
 */
#include <stdint.h>

#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	harness_result r;
	harness_engine(data, size, 0, -1, &r);
	return 0;
}
