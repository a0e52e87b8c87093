/*
 * MS-LSAT over \PIPE\lsarpc: account names for SIDs (LsarOpenPolicy2,
 * LsarLookupSids2, LsarClose). Kept apart from the MS-TSTS calls: this file
 * encodes the requests and parses the answers (untrusted input) and makes
 * the three calls on a pipe someone else opened and bound.
 */
#ifndef TERMSRV_LSAT_H
#define TERMSRV_LSAT_H

#include <stddef.h>
#include <stdint.h>

#include "dcerpc.h"
#include "errors.h"
#include "ndr.h"

/* lsarpc: 12345778-1234-abcd-ef00-0123456789ab version 0.0 */
extern const rpc_iface IF_LSARPC;

#define LSAT_MAX_SIDS 20480    /* the range() of LSAPR_SID_ENUM_BUFFER.Entries */
#define LSAT_NAME_MAX 260
#define LSAT_HANDLE_LEN 20

/* SID_NAME_USE values (MS-LSAT 2.2.13) */
enum { LSAT_SID_USER = 1, LSAT_SID_UNKNOWN = 8 };

typedef struct lsat_name {
	int mapped;                     /* 1 when the server named the SID */
	int use;                        /* SID_NAME_USE */
	char name[LSAT_NAME_MAX];
	char domain[LSAT_NAME_MAX];     /* "" when the SID has no domain (Everyone) */
} lsat_name;

/* One lsat_name per SID asked, in the order asked. */
typedef struct lsat_names {
	lsat_name *v;
	size_t n;
	uint32_t mapped;                /* MappedCount as the server sent it */
} lsat_names;

void lsat_names_free(lsat_names *l);

/* "S-1-5-21-1-2-3-1001" -> binary SID (8 + 4 x sub-authorities bytes);
 * returns the length, or -1 when the text is not a SID. */
int lsat_sid_parse(const char *s, uint8_t *out, size_t cap);

/* Request stubs. */
void lsat_req_open_policy2(wbuf *w, uint32_t access);
/* sids: binary SIDs, lens[i] bytes each (checked with lsat_sid_parse). */
void lsat_req_lookup_sids2(wbuf *w, const uint8_t *handle, const uint8_t *const *sids,
			   const size_t *lens, size_t n);
void lsat_req_close(wbuf *w, const uint8_t *handle);

/* Answer parsers: 0 and the output filled, or -1 with e set. *status is the
 * NTSTATUS returned (a failure status is not a parse error). */
int lsat_parse_open_policy2(const uint8_t *p, size_t n, uint8_t *handle, uint32_t *status,
			    ts_err *e);
/* nsids: how many SIDs were asked (the answer must not name more). */
int lsat_parse_lookup_sids2(const uint8_t *p, size_t n, size_t nsids, lsat_names *out,
			    uint32_t *status, ts_err *e);
int lsat_parse_close(const uint8_t *p, size_t n, uint32_t *status, ts_err *e);

/* Names the SIDs over a bound lsarpc pipe (context ctx): open the policy,
 * look up, close. Returns 0 (out filled; SIDs the server does not know are
 * left unmapped) or -1 with e set (access denied, a fault, a bad answer). */
int lsat_lookup(rpc_conn *rpc, int ctx, const char *const *sids, size_t n, lsat_names *out,
		ts_err *e);

#endif
