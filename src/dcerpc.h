/*
 * Connection-oriented DCE/RPC (C706 + MS-RPCE) over a byte transport that
 * carries one PDU fragment per write: bind with several presentation
 * contexts, packet privacy through a security provider (rpcsec.h: NTLM in
 * bind / bind_ack / rpc_auth_3, Kerberos in bind / bind_ack /
 * alter_context or rpc_auth_3), requests and responses fragmented at the
 * negotiated sizes, faults.
 *
 * The transport is two callbacks, so the layer runs over an SMB pipe in
 * production and over memory buffers in the unit tests and fuzzers.
 */
#ifndef TERMSRV_DCERPC_H
#define TERMSRV_DCERPC_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "ndr.h"
#include "rpcsec.h"

#define RPC_MAX_CTX 4
#define RPC_DEFAULT_FRAG 4280   /* what Windows clients offer on named pipes */
#define RPC_MIN_FRAG 1432       /* MUST_RECV_FRAG_SIZE (MS-RPCE 3.3.3.5.4) */
#define RPC_MAX_RESPONSE (16u * 1024u * 1024u)

enum { PT_REQUEST = 0, PT_RESPONSE = 2, PT_FAULT = 3, PT_BIND = 11, PT_BIND_ACK = 12,
       PT_BIND_NAK = 13, PT_ALTER = 14, PT_ALTER_RESP = 15, PT_AUTH3 = 16 };
enum { PFC_FIRST_FRAG = 0x01, PFC_LAST_FRAG = 0x02, PFC_SUPPORT_HEADER_SIGN = 0x04 };
enum { AUTH_LEVEL_NONE = 1, AUTH_LEVEL_PRIVACY = 6 };

typedef struct rpc_io {
	void *ud;
	/* writes one whole fragment */
	int (*write)(void *ud, const uint8_t *p, size_t n, ts_err *e);
	/* reads exactly n bytes */
	int (*read)(void *ud, uint8_t *p, size_t n, ts_err *e);
} rpc_io;

typedef struct rpc_iface {
	const char *name;
	uint8_t uuid[16];   /* wire order (first three fields little-endian) */
	uint16_t vmajor, vminor;
} rpc_iface;

typedef struct rpc_stats {
	uint64_t calls;       /* requests answered (response or fault) */
	uint64_t binds;
	uint64_t frags_out;   /* PDU fragments written */
	uint64_t frags_in;    /* PDU fragments read */
	uint64_t bytes_out, bytes_in;
} rpc_stats;

typedef struct rpc_conn {
	rpc_io io;
	const char *where;      /* pipe name, for error messages */
	uint16_t max_xmit;      /* largest fragment we may send */
	uint16_t max_recv;      /* largest fragment we accept (we advertise it) */
	uint32_t call_id;       /* last call id used */
	rpc_sec *sec;           /* packet privacy provider; NULL = no RPC auth (SMB identity) */
	uint32_t auth_ctx_id;
	int bound;
	int broken;             /* a protocol or signature failure: do not reuse */
	int calls_since_bind;
	int nctx;
	const rpc_iface *ctx[RPC_MAX_CTX];
	int ctx_ok[RPC_MAX_CTX];
	uint16_t ctx_reason[RPC_MAX_CTX];
	rpc_stats *stats;       /* optional, shared with the owner */
} rpc_conn;

/* Prepares a connection; max_recv 0 = RPC_DEFAULT_FRAG. */
void rpc_init(rpc_conn *c, rpc_io io, const char *where, uint16_t max_recv, rpc_stats *stats);

/* Binds the given interfaces as presentation contexts 0..n-1. Succeeds when
 * at least one context is accepted (check ctx_ok for each). */
int rpc_bind(rpc_conn *c, const rpc_iface *const *ifaces, int n, ts_err *e);

/* One call: sends stub (fragmenting as needed) on context ctx, reads the
 * whole response (reassembling fragments) into out (reset first). A fault
 * PDU gives -1 with e->kind = TS_K_FAULT. */
int rpc_call(rpc_conn *c, int ctx, uint16_t opnum, const uint8_t *stub, size_t len,
	     wbuf *out, ts_err *e);

/* Parsers exposed for the tests and fuzzers. */
typedef struct rpc_hdr {
	uint8_t ptype, flags;
	uint16_t frag_len, auth_len;
	uint32_t call_id;
} rpc_hdr;
int rpc_parse_header(const uint8_t *p, size_t n, rpc_hdr *h, ts_err *e);

typedef struct rpc_bind_ack {
	uint16_t max_xmit, max_recv;
	uint32_t assoc_group;
	int nresults;
	uint16_t result[RPC_MAX_CTX], reason[RPC_MAX_CTX];
	const uint8_t *auth_token;   /* points into the PDU, or NULL */
	size_t auth_len;
	uint32_t auth_ctx_id;
	uint8_t auth_type, auth_level;
} rpc_bind_ack;
/* Parses a whole bind_ack / alter_context_resp PDU. */
int rpc_parse_bind_ack(const uint8_t *pdu, size_t n, rpc_bind_ack *ack, ts_err *e);

extern const rpc_iface IF_TSENUM, IF_TSSESSION, IF_RCMPUBLIC, IF_LEGACY;

#endif
