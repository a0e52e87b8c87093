/*
 * NTLMSSP client for DCE/RPC packet privacy (MS-NLMP): NTLMv2 with extended
 * session security, key exchange and 128-bit keys; sign + seal of PDUs and
 * verification of the server's signature.
 *
 * One ntlm_ctx per security context (per pipe). No allocation: everything
 * lives in the struct, which the caller wipes with ntlm_wipe() when done.
 */
#ifndef TERMSRV_NTLMSSP_H
#define TERMSRV_NTLMSSP_H

#include <stddef.h>
#include <stdint.h>

#include <nettle/arcfour.h>

#define NTLM_SIG_LEN 16
/* Largest AUTHENTICATE message we build: fixed part, LM/NT responses (the NT
 * response embeds the server's target info, at most NTLM_MAX_TARGET_INFO),
 * names, session key. */
#define NTLM_MAX_TARGET_INFO 1024
#define NTLM_MAX_NAME 256 /* UTF-8 bytes of user / domain / workstation */
#define NTLM_AUTH_MAX (88 + 24 + 48 + NTLM_MAX_TARGET_INFO + 3 * 2 * NTLM_MAX_NAME + 16)
#define NTLM_NEGOTIATE_MAX 40

enum ntlm_rc {
	NTLM_OK = 0,
	NTLM_EINVAL = -1,    /* bad argument (e.g. name too long, bad hex hash) */
	NTLM_EPROTO = -2,    /* malformed / unexpected CHALLENGE from the server */
	NTLM_ENOSUPP = -3,   /* server did not agree to NTLMv2 ESS + seal + 128 + key exchange */
	NTLM_EBADSIG = -4,   /* signature or sequence number of a sealed PDU did not verify */
	NTLM_ESMALL = -5,    /* output buffer too small */
	NTLM_ERANDOM = -6,   /* no randomness available */
};

typedef struct ntlm_ctx {
	/* inputs (set by ntlm_init) */
	char user[NTLM_MAX_NAME + 1];
	char domain[NTLM_MAX_NAME + 1];
	char workstation[NTLM_MAX_NAME + 1];
	uint8_t nt_hash[16];        /* MD4(UTF-16LE(password)), or given directly */

	/* negotiation state */
	uint32_t neg_flags;         /* flags we sent in NEGOTIATE */
	uint32_t flags;             /* flags agreed (from CHALLENGE) */
	int have_keys;

	/* derived keys and per-direction state (connection-oriented: RC4 is
	 * keyed once and never reset; sequence numbers count per PDU) */
	uint8_t session_key[16];    /* ExportedSessionKey */
	uint8_t client_sign_key[16];
	uint8_t server_sign_key[16];
	struct arcfour_ctx client_seal;   /* our sending direction */
	struct arcfour_ctx server_seal;   /* the server's sending direction */
	uint32_t send_seq;
	uint32_t recv_seq;

	/* test hooks: when set, used instead of random bytes / the clock */
	int fixed;                  /* 1 = use the fields below */
	uint8_t fixed_client_challenge[8];
	uint8_t fixed_session_key[16];
	uint64_t fixed_time;        /* FILETIME used when the server sent none */

	/* set when a received signature failed: the RC4 stream is out of step,
	 * so every later ntlm_seal / ntlm_unseal refuses with NTLM_EBADSIG */
	int broken;
} ntlm_ctx;

/* NegotiateFlags bits (MS-NLMP 2.2.2.5) that this client uses. */
#define NTLMSSP_NEGOTIATE_UNICODE        0x00000001u
#define NTLMSSP_REQUEST_TARGET           0x00000004u
#define NTLMSSP_NEGOTIATE_SIGN           0x00000010u
#define NTLMSSP_NEGOTIATE_SEAL           0x00000020u
#define NTLMSSP_NEGOTIATE_NTLM           0x00000200u
#define NTLMSSP_NEGOTIATE_ALWAYS_SIGN    0x00008000u
#define NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY 0x00080000u
#define NTLMSSP_NEGOTIATE_TARGET_INFO    0x00800000u
#define NTLMSSP_NEGOTIATE_VERSION        0x02000000u
#define NTLMSSP_NEGOTIATE_128            0x20000000u
#define NTLMSSP_NEGOTIATE_KEY_EXCH       0x40000000u
#define NTLMSSP_NEGOTIATE_56             0x80000000u

/* What NEGOTIATE asks for, and what the CHALLENGE must grant (else
 * NTLM_ENOSUPP): no fallback to NTLMv1, to OEM strings or to weak keys. */
#define NTLM_CLIENT_FLAGS (NTLMSSP_NEGOTIATE_UNICODE | NTLMSSP_REQUEST_TARGET | \
	NTLMSSP_NEGOTIATE_SIGN | NTLMSSP_NEGOTIATE_SEAL | NTLMSSP_NEGOTIATE_NTLM | \
	NTLMSSP_NEGOTIATE_ALWAYS_SIGN | NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY | \
	NTLMSSP_NEGOTIATE_128 | NTLMSSP_NEGOTIATE_KEY_EXCH | NTLMSSP_NEGOTIATE_56)
#define NTLM_REQUIRED_FLAGS (NTLMSSP_NEGOTIATE_UNICODE | NTLMSSP_NEGOTIATE_SIGN | \
	NTLMSSP_NEGOTIATE_SEAL | NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY | \
	NTLMSSP_NEGOTIATE_128 | NTLMSSP_NEGOTIATE_KEY_EXCH)

/* Sets up a context. Exactly one of password / nt_hash must be non-NULL
 * (nt_hash is 16 raw bytes). Names are UTF-8; workstation may be NULL. */
int ntlm_init(ntlm_ctx *c, const char *user, const char *domain,
	      const char *workstation, const char *password,
	      const uint8_t nt_hash[16]);

/* Test mode: the values a context uses instead of random bytes and the
 * clock (client challenge, exported session key, timestamp), so that its
 * keys depend on nothing else. For the fuzzers, the corpus replay and the
 * capture tool; never set in production. */
typedef struct ntlm_fixed {
	uint8_t client_challenge[8];
	uint8_t session_key[16];
	uint64_t time;
} ntlm_fixed;
/* Puts an initialised context into test mode with f's values. */
void ntlm_fix(ntlm_ctx *c, const ntlm_fixed *f);

/* Builds the NEGOTIATE message into out (at least NTLM_NEGOTIATE_MAX bytes);
 * returns its length or a negative ntlm_rc. */
int ntlm_negotiate(ntlm_ctx *c, uint8_t *out, size_t cap);

/* Parses the server's CHALLENGE (untrusted input: every offset and length is
 * checked), builds the AUTHENTICATE message into out (NTLM_AUTH_MAX is always
 * enough), and derives the session keys. Returns the message length or a
 * negative ntlm_rc. Needs a prior ntlm_negotiate and works once per context;
 * on success the NT hash is wiped from the context, as nothing needs it any
 * more. */
int ntlm_authenticate(ntlm_ctx *c, const uint8_t *challenge, size_t clen,
		      uint8_t *out, size_t cap);

/* The four 128-bit keys derived from an ExportedSessionKey (MS-NLMP 3.4.5.2
 * SIGNKEY, 3.4.5.3 SEALKEY with NEGOTIATE_128). ntlm_authenticate keys the
 * context with them; exposed for the test kit and for diagnostics. */
struct ntlm_keys {
	uint8_t client_sign[16];
	uint8_t server_sign[16];
	uint8_t client_seal[16];
	uint8_t server_seal[16];
};
void ntlm_derive_keys(const uint8_t session_key[16], struct ntlm_keys *k);

/* Building blocks of the NTLMv2 response (MS-NLMP 3.3.2), pure functions,
 * exposed so that the spec's intermediate values can be tested:
 *   ntlm_ntowfv2: ResponseKeyNT = HMAC_MD5(NT hash, UTF-16LE(UPPER(user) ||
 *     domain)); names are UTF-8 of at most NTLM_MAX_NAME bytes, else
 *     NTLM_EINVAL.
 *   ntlm_v2_proof: NTProofStr = HMAC_MD5(key, server_challenge || temp) and
 *     SessionBaseKey = HMAC_MD5(key, NTProofStr). */
int ntlm_ntowfv2(const char *user, const char *domain, const uint8_t nt_hash[16],
		 uint8_t out[16]);
void ntlm_v2_proof(const uint8_t response_key[16], const uint8_t server_challenge[8],
		   const uint8_t *temp, size_t temp_len, uint8_t nt_proof[16],
		   uint8_t session_base_key[16]);

/* Seals one outgoing PDU fragment in place and writes its 16-byte signature.
 *   pdu, pdu_len: the whole fragment EXCEPT the trailing 16-byte token
 *                 (header, stub, auth padding, sec_trailer), in plaintext.
 *   body_off, body_len: the region to encrypt (stub + auth padding).
 * The signature covers seq || pdu[0..pdu_len) before encryption. */
int ntlm_seal(ntlm_ctx *c, uint8_t *pdu, size_t pdu_len, size_t body_off,
	      size_t body_len, uint8_t sig[NTLM_SIG_LEN]);

/* Unseals one incoming PDU fragment in place and verifies the server's
 * signature (version, checksum and sequence number). Same layout as
 * ntlm_seal. Returns NTLM_OK or NTLM_EBADSIG; after NTLM_EBADSIG the context
 * must not be used again (the RC4 stream is out of step). On NTLM_EBADSIG the
 * body region is zeroed, so unverified plaintext is never left behind.
 * (Caller errors -- no keys yet, region outside the PDU -- give NTLM_EINVAL
 * and leave the context and the PDU untouched; ntlm_seal does the same.) */
int ntlm_unseal(ntlm_ctx *c, uint8_t *pdu, size_t pdu_len, size_t body_off,
		size_t body_len, const uint8_t sig[NTLM_SIG_LEN]);

/* Computes the NT hash of a UTF-8 password (UTF-16LE then MD4). */
int ntlm_nt_hash(const char *password, uint8_t out[16]);

/* Wipes every secret in the context (keys, hash, RC4 states). */
void ntlm_wipe(ntlm_ctx *c);

/* Best-effort memory wipe that the compiler cannot drop. */
void ntlm_memwipe(void *p, size_t n);

#endif
