/*
 * libFuzzer target: one PDU as the server sent it, through the two pure
 * DCE/RPC parsers: the common header (rpc_parse_header) and bind_ack /
 * alter_context_resp (rpc_parse_bind_ack). Seeds: fuzz/seeds/rpc_pdu.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dcerpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-size heap copy, so ASan sees any read past the end */
	uint8_t *p = malloc(size ? size : 1);
	if (!p)
		return 0;
	if (size)
		memcpy(p, data, size);
	ts_err e = {0};
	rpc_hdr h;
	if (rpc_parse_header(p, size, &h, &e) == 0) {
		if (h.frag_len < 16 || (h.auth_len && (size_t)h.auth_len + 24 > h.frag_len))
			abort();
	}
	rpc_bind_ack ack;
	if (rpc_parse_bind_ack(p, size, &ack, &e) == 0) {
		if (ack.nresults < 1 || ack.nresults > RPC_MAX_CTX)
			abort();
		if (ack.auth_token &&
		    (ack.auth_token < p || ack.auth_token + ack.auth_len > p + size))
			abort();
	}
	free(p);
	return 0;
}
