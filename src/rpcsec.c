/*
 * The NTLMSSP provider of the security seam (rpcsec.h): NEGOTIATE in the
 * bind, CHALLENGE from the bind_ack, AUTHENTICATE in rpc_auth_3; sealing is
 * ntlmssp.c's.
 */
#include "rpcsec.h"

#include <string.h>

static int ntlm_first(rpc_sec *s, wbuf *out, ts_err *e)
{
	uint8_t neg[NTLM_NEGOTIATE_MAX];
	int n = ntlm_negotiate(s->state, neg, sizeof neg);
	if (n < 0)
		return ts_fail(e, TS_K_NONE, 0, "auth_failed", "NTLM negotiate failed (%d)", n);
	wb_bytes(out, neg, (size_t)n);
	return 0;
}

static int ntlm_next(rpc_sec *s, const uint8_t *in, size_t n, wbuf *out, int *done, ts_err *e)
{
	uint8_t auth[NTLM_AUTH_MAX];
	int alen = ntlm_authenticate(s->state, in, n, auth, sizeof auth);
	if (alen < 0)
		return ts_fail(e, TS_K_NONE, 0, alen == NTLM_ENOSUPP ? "auth_failed" : "malformed_response",
			       "NTLM challenge %s",
			       alen == NTLM_ENOSUPP ? "lacks packet privacy (NTLMv2 session security, "
						      "sealing, 128-bit keys)"
						    : "is malformed");
	wb_bytes(out, auth, (size_t)alen);
	ntlm_memwipe(auth, sizeof auth);
	*done = 1;
	return 0;
}

static int ntlm_seal_frag(rpc_sec *s, uint8_t *pdu, size_t pdu_len, size_t body_off,
			  size_t body_len, uint8_t *sig, ts_err *e)
{
	if (ntlm_seal(s->state, pdu, pdu_len, body_off, body_len, sig) != NTLM_OK)
		return ts_fail(e, TS_K_NONE, 0, "auth_failed", "sealing a request failed");
	return 0;
}

static int ntlm_unseal_frag(rpc_sec *s, uint8_t *pdu, size_t pdu_len, size_t body_off,
			    size_t body_len, const uint8_t *sig, size_t sig_len, ts_err *e)
{
	(void)sig_len; /* dcerpc checked it is NTLM_SIG_LEN */
	if (ntlm_unseal(s->state, pdu, pdu_len, body_off, body_len, sig) != NTLM_OK)
		return ts_fail(e, TS_K_NONE, 0, "bad_signature", "NTLM signature verification failed");
	return 0;
}

static void ntlm_wipe_sec(rpc_sec *s) { ntlm_wipe(s->state); }

static const rpc_sec_ops ntlm_ops = {ntlm_first, ntlm_next, ntlm_seal_frag, ntlm_unseal_frag,
				     ntlm_wipe_sec};

void rpc_sec_ntlm(rpc_sec *s, ntlm_ctx *ntlm)
{
	memset(s, 0, sizeof *s);
	s->ops = &ntlm_ops;
	s->state = ntlm;
	s->auth_type = AUTH_TYPE_NTLM;
	s->sig_len = NTLM_SIG_LEN;
	s->mech = "NTLM";
}

void rpc_sec_wipe(rpc_sec *s)
{
	if (s->ops && s->ops->wipe)
		s->ops->wipe(s);
	memset(s, 0, sizeof *s);
}
