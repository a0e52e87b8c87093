/*
 * SPNEGO (RFC 4178) as DCE/RPC's auth type 9 uses it with Kerberos: the
 * client's NegTokenInit (mechTypes MS-KRB5 + KRB5, mechToken = a
 * GSS-framed AP-REQ), its NegTokenResp for the third leg, and the parser
 * for the server's NegTokenResp. Hand-written DER, every length checked
 * against the bytes present (server bytes are untrusted). No GSS calls
 * here, so the fuzzers link it alone.
 */
#ifndef TERMSRV_SPNEGO_H
#define TERMSRV_SPNEGO_H

#include <stddef.h>
#include <stdint.h>

#include "ndr.h"

enum { SPNEGO_ACCEPT_COMPLETED = 0, SPNEGO_ACCEPT_INCOMPLETE = 1, SPNEGO_REJECT = 2,
       SPNEGO_REQUEST_MIC = 3, SPNEGO_NO_STATE = -1 };

typedef struct spnego_resp {
	int state;                 /* negState, or SPNEGO_NO_STATE */
	int mech_krb5;             /* supportedMech: 1 = a Kerberos OID, 0 = absent */
	const uint8_t *token;      /* responseToken (points into the input), or NULL */
	size_t token_len;
	const uint8_t *mic;        /* mechListMIC, or NULL */
	size_t mic_len;
} spnego_resp;

/* Parses a NegTokenResp ([1] SEQUENCE {...}). Returns 0, or -1 when it is
 * not well-formed DER, names a mechanism other than Kerberos, or has
 * trailing bytes. */
int spnego_parse_resp(const uint8_t *p, size_t n, spnego_resp *r);

/* Appends the GSS-API InitialContextToken carrying a NegTokenInit whose
 * mechToken is the AP-REQ (framed here with the KRB5 OID and TOK_ID 01 00).
 * The DER of the mechTypes list (what a mechListMIC covers) is appended to
 * mechtypes when it is not NULL. */
void spnego_init_token(wbuf *out, const uint8_t *ap_req, size_t len, wbuf *mechtypes);

/* Appends a NegTokenResp carrying only responseToken. */
void spnego_resp_token(wbuf *out, const uint8_t *token, size_t len);

/* Strips the GSS-API framing (0x60, the KRB5 OID, a 2-byte TOK_ID) off a
 * token: *inner / *inner_len get what follows the TOK_ID, *tok_id the
 * TOK_ID. -1 when the framing is malformed or not KRB5. */
int spnego_gss_unframe(const uint8_t *p, size_t n, const uint8_t **inner, size_t *inner_len,
		       uint16_t *tok_id);

/* The error-code of a raw KRB-ERROR ([APPLICATION 30], RFC 4120 5.9.1),
 * which MIT's initiator does not decode in DCE style. 0 and *code, or -1
 * when p is not a well-formed KRB-ERROR. */
int spnego_krb_error(const uint8_t *p, size_t n, int32_t *code);

#endif
