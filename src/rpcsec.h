/*
 * The security-provider seam between DCE/RPC and an authentication
 * mechanism (Samba's gensec in miniature): dcerpc.c frames bind, bind_ack,
 * alter_context, rpc_auth_3 and the sec_trailer of every fragment; a
 * provider makes the tokens and protects / checks the fragments. One
 * provider per security context (per pipe). Providers: NTLMSSP (rpcsec.c),
 * Kerberos through SPNEGO or raw (krb5sec.c); NULL means no RPC auth.
 */
#ifndef TERMSRV_RPCSEC_H
#define TERMSRV_RPCSEC_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "ndr.h"
#include "ntlmssp.h"

enum { AUTH_TYPE_SPNEGO = 9, AUTH_TYPE_NTLM = 10, AUTH_TYPE_KRB5 = 16 };

typedef struct rpc_sec rpc_sec;

typedef struct rpc_sec_ops {
	/* The bind's token (leg 1) appended to out. */
	int (*first)(rpc_sec *s, wbuf *out, ts_err *e);
	/* The server's token (bind_ack, then alter_context_resp if any):
	 * appends the next token to out (nothing = none to send) and sets
	 * *done once the context is established. */
	int (*next)(rpc_sec *s, const uint8_t *in, size_t n, wbuf *out, int *done, ts_err *e);
	/* Protects one outgoing fragment in place. pdu[0, pdu_len) is the
	 * fragment without its verifier (header, stub + auth padding at
	 * [body_off, body_off + body_len), sec_trailer); sig receives sig_len
	 * bytes. */
	int (*seal)(rpc_sec *s, uint8_t *pdu, size_t pdu_len, size_t body_off, size_t body_len,
		    uint8_t *sig, ts_err *e);
	/* Checks and decrypts one incoming fragment in place (same layout,
	 * sig = the verifier received, sig_len bytes). Any failure: -1. */
	int (*unseal)(rpc_sec *s, uint8_t *pdu, size_t pdu_len, size_t body_off, size_t body_len,
		      const uint8_t *sig, size_t sig_len, ts_err *e);
	/* Releases and wipes everything the provider holds. */
	void (*wipe)(rpc_sec *s);
} rpc_sec_ops;

struct rpc_sec {
	const rpc_sec_ops *ops;
	void *state;
	uint8_t auth_type;       /* the sec_trailer's auth_type */
	int third_leg_alter;     /* a token after the bind_ack goes in an alter_context
				  * (SPNEGO) rather than an rpc_auth_3 */
	int offer_header_sign;   /* set PFC_SUPPORT_HEADER_SIGN in the bind */
	int header_sign;         /* dcerpc: the bind_ack echoed it */
	size_t sig_len;          /* verifier length we send, known once established */
	int sig_len_varies;      /* the peer's verifiers may differ in length (Kerberos:
				  * the wrap token's EC is the sender's choice); GSS
				  * checks what arrives. 0: exactly sig_len (NTLM) */
	const char *mech;        /* "NTLM", "Kerberos" for messages */
};

/* NTLMSSP packet privacy over a context the caller set up with ntlm_init
 * (and owns: wipe() wipes it, does not free it). */
void rpc_sec_ntlm(rpc_sec *s, ntlm_ctx *ntlm);

/* Calls the provider's wipe and clears s; safe on a cleared s. */
void rpc_sec_wipe(rpc_sec *s);

#endif
