/*
 * libFuzzer target: the DCE/RPC engine (rpc_bind, then rpc_call until the
 * input ends or the connection breaks) reading the server's side of one
 * pipe from the input, with NTLM packet privacy in test mode (fixed keys), so that the
 * seeds -- sealed conversations captured from the simulator -- verify and
 * the fuzzer works past the signature check: sec_trailer, auth_length,
 * padding and fragment fields around the seal, faults without verifier.
 * Input layout: see harness_engine in harness.h. Seeds: fuzz/seeds/rpc_sealed.
 */
#include <stdint.h>

#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	harness_result r;
	harness_engine(data, size, 1, -1, &r);
	return 0;
}
