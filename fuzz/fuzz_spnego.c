/*
 * libFuzzer target: arbitrary bytes as the server's Kerberos token in a
 * bind_ack / alter_context_resp: SPNEGO NegTokenResp, GSS-framed token,
 * raw KRB-ERROR (src/spnego.c). Every pointer a parser returns must lie in
 * the input; what the encoders write must parse back to what went in.
 *
 * Built and run by `make fuzz` / `make fuzz-short`; seeds in
 * fuzz/seeds/spnego (made by the simulator's encoder, sim/tssim/krb.py).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spnego.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void within(const uint8_t *p, size_t n, const uint8_t *data, size_t size)
{
	if (p && (p < data || n > size || p + n > data + size)) {
		fprintf(stderr, "spnego: a parser pointed outside its input\n");
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	spnego_resp r;
	if (spnego_parse_resp(data, size, &r) == 0) {
		within(r.token, r.token_len, data, size);
		within(r.mic, r.mic_len, data, size);
		if (r.token) {
			/* our own encoding of that token parses back to it */
			wbuf w;
			wb_init(&w);
			spnego_resp_token(&w, r.token, r.token_len);
			spnego_resp back;
			if (w.err || spnego_parse_resp(w.p, w.len, &back) < 0 ||
			    back.token_len != r.token_len || memcmp(back.token, r.token, r.token_len) != 0)
				abort();
			wb_free(&w);
		}
	}
	const uint8_t *inner;
	size_t len;
	uint16_t tok;
	if (spnego_gss_unframe(data, size, &inner, &len, &tok) == 0)
		within(inner, len, data, size);
	int32_t code;
	(void)spnego_krb_error(data, size, &code);
	/* the NegTokenInit around these bytes is well-formed GSS framing whose
	 * outer length covers exactly what was written */
	wbuf w, mt;
	wb_init(&w);
	wb_init(&mt);
	spnego_init_token(&w, data, size, &mt);
	if (!w.err) {
		if (w.len < 2 || w.p[0] != 0x60)
			abort();
		size_t l = w.p[1], hdr = 2;
		if (l & 0x80) {
			size_t k = l & 0x7f;
			l = 0;
			for (size_t i = 0; i < k; i++)
				l = l << 8 | w.p[2 + i];
			hdr += k;
		}
		if (hdr + l != w.len)
			abort();
	}
	wb_free(&w);
	wb_free(&mt);
	return 0;
}
