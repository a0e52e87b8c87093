/*
 * libFuzzer target: arbitrary bytes as the server's CHALLENGE message.
 *
 * Built and run by `make fuzz` / `make fuzz-short` (fuzz/README.md); seeds
 * in fuzz/seeds/ntlm_challenge, hand-made from MS-NLMP and captured from
 * the simulator's bind_acks.
 *
 * Each input runs against a fresh context in test mode (fixed client
 * challenge, session key and clock), so a finding always reproduces. When
 * the input is accepted, the derived keys are used for a sealed round so
 * that key setup is exercised as well as parsing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ntlmssp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t nt_hash[16] = {
		0xa4, 0xf4, 0x9c, 0x40, 0x65, 0x10, 0xbd, 0xca,
		0xb6, 0x82, 0x4e, 0xe7, 0xc3, 0x0f, 0xd8, 0x52,
	};
	ntlm_ctx c;
	uint8_t neg[NTLM_NEGOTIATE_MAX], out[NTLM_AUTH_MAX];
	uint8_t *copy;
	int n;

	if (ntlm_init(&c, "User", "Domain", "COMPUTER", NULL, nt_hash) != NTLM_OK)
		abort();
	c.fixed = 1;
	memset(c.fixed_client_challenge, 0xaa, 8);
	memset(c.fixed_session_key, 0x55, 16);
	c.fixed_time = 0;
	if (ntlm_negotiate(&c, neg, sizeof neg) <= 0)
		abort();

	/* an exact-size heap copy, so ASan sees any read past the end */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	n = ntlm_authenticate(&c, copy, size, out, sizeof out);
	free(copy);

	if (n > 0) {
		uint8_t pdu[48], sig[NTLM_SIG_LEN];

		if ((size_t)n > sizeof out || !c.have_keys)
			abort();
		memset(pdu, 0x42, sizeof pdu);
		if (ntlm_seal(&c, pdu, sizeof pdu, 16, 24, sig) != NTLM_OK)
			abort();
	} else if (n != NTLM_EPROTO && n != NTLM_ENOSUPP) {
		abort();
	}
	ntlm_wipe(&c);
	return 0;
}
