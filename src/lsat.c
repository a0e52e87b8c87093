/*
 * MS-LSAT name lookup: LsarOpenPolicy2 (opnum 44), LsarLookupSids2 (57),
 * LsarClose (0) on \PIPE\lsarpc. Everything in an answer is untrusted:
 * every count is checked against what we asked and what was received.
 */
#include "lsat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const rpc_iface IF_LSARPC = {"lsarpc",
	{0x78, 0x57, 0x34, 0x12, 0x34, 0x12, 0xcd, 0xab, 0xef, 0x00, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab},
	0, 0};

enum { OP_CLOSE = 0, OP_OPEN_POLICY2 = 44, OP_LOOKUP_SIDS2 = 57 };
#define POLICY_LOOKUP_NAMES 0x00000800u
#define LOOKUP_WKSTA 1                 /* LSAP_LOOKUP_LEVEL LsapLookupWksta */
#define CLIENT_REVISION_1 1
#define STATUS_SOME_NOT_MAPPED 0x00000107u
#define STATUS_NONE_MAPPED 0xC0000073u
#define MAX_SID_SUBAUTH 15
#define MAX_SID_LEN (8 + 4 * MAX_SID_SUBAUTH)
#define MAX_NAME_UNITS 0x8000u         /* RPC_UNICODE_STRING: a USHORT byte length */

void lsat_names_free(lsat_names *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int malformed(ts_err *e, const char *method)
{
	return ts_fail(e, TS_K_NONE, 0, "malformed_response", "%s: malformed response", method);
}

int lsat_sid_parse(const char *s, uint8_t *out, size_t cap)
{
	if (strncmp(s, "S-1-", 4) != 0 || cap < 8)
		return -1;
	const char *q = s + 4;
	char *end;
	if (*q < '0' || *q > '9')
		return -1;
	errno = 0;
	unsigned long long auth = strtoull(q, &end, 10);
	if (errno || auth > 0xFFFFFFFFFFFFull)
		return -1;
	out[0] = 1;
	for (int i = 0; i < 6; i++)
		out[2 + i] = (uint8_t)(auth >> (8 * (5 - i)));
	int nsub = 0;
	q = end;
	while (*q == '-') {
		q++;
		if (*q < '0' || *q > '9' || nsub == MAX_SID_SUBAUTH || cap < 8 + 4 * (size_t)(nsub + 1))
			return -1;
		errno = 0;
		unsigned long v = strtoul(q, &end, 10);
		if (errno || v > 0xFFFFFFFFul)
			return -1;
		st32(out + 8 + 4 * nsub, (uint32_t)v);
		nsub++;
		q = end;
	}
	if (*q != '\0')
		return -1;
	out[1] = (uint8_t)nsub;
	return 8 + 4 * nsub;
}

void lsat_req_open_policy2(wbuf *w, uint32_t access)
{
	wb_u32(w, 0);          /* SystemName: NULL (the server ignores it) */
	wb_u32(w, 24);         /* LSAPR_OBJECT_ATTRIBUTES.Length */
	wb_u32(w, 0);          /* RootDirectory */
	wb_u32(w, 0);          /* ObjectName */
	wb_u32(w, 0);          /* Attributes */
	wb_u32(w, 0);          /* SecurityDescriptor */
	wb_u32(w, 0);          /* SecurityQualityOfService */
	wb_u32(w, access);
}

void lsat_req_lookup_sids2(wbuf *w, const uint8_t *handle, const uint8_t *const *sids,
			   const size_t *lens, size_t n)
{
	wb_bytes(w, handle, LSAT_HANDLE_LEN);
	/* LSAPR_SID_ENUM_BUFFER: Entries, SidInfo (unique), then the array of
	 * PRPC_SID and each SID (a conformant struct: the sub-authority count
	 * as the conformance, then the SID bytes) */
	wb_u32(w, (uint32_t)n);
	wb_u32(w, n ? 0x00020000u : 0);
	if (n) {
		wb_u32(w, (uint32_t)n);
		for (size_t i = 0; i < n; i++)
			wb_u32(w, 0x00020004u + 4u * (uint32_t)i);
		for (size_t i = 0; i < n; i++) {
			wb_u32(w, sids[i][1]);
			wb_bytes(w, sids[i], lens[i]);
		}
	}
	wb_u32(w, 0);          /* TranslatedNames.Entries */
	wb_u32(w, 0);          /* TranslatedNames.Names: NULL */
	wb_u16(w, LOOKUP_WKSTA);
	wb_align(w, 4);
	wb_u32(w, 0);          /* MappedCount */
	wb_u32(w, 0);          /* LookupOptions */
	wb_u32(w, CLIENT_REVISION_1);
}

void lsat_req_close(wbuf *w, const uint8_t *handle)
{
	wb_bytes(w, handle, LSAT_HANDLE_LEN);
}

int lsat_parse_open_policy2(const uint8_t *p, size_t n, uint8_t *handle, uint32_t *status,
			    ts_err *e)
{
	if (n != LSAT_HANDLE_LEN + 4)
		return malformed(e, "LsarOpenPolicy2");
	memcpy(handle, p, LSAT_HANDLE_LEN);
	*status = ld32(p + LSAT_HANDLE_LEN);
	return 0;
}

int lsat_parse_close(const uint8_t *p, size_t n, uint32_t *status, ts_err *e)
{
	if (n != LSAT_HANDLE_LEN + 4)
		return malformed(e, "LsarClose");
	*status = ld32(p + LSAT_HANDLE_LEN);
	return 0;
}

/* An RPC_UNICODE_STRING's deferred buffer (conformant varying WCHARs). */
static int unicode_buffer(rbuf *r, uint16_t len, char *out, size_t cap)
{
	rb_align(r, 4);
	uint32_t max = rb_u32(r), offset = rb_u32(r), actual = rb_u32(r);
	if (r->err || offset != 0 || actual > max || max > MAX_NAME_UNITS ||
	    (size_t)actual * 2 > len || (size_t)actual * 2 > rb_left(r)) {
		rb_fail(r);
		return -1;
	}
	const uint8_t *w = rb_take(r, (size_t)actual * 2);
	if (!w)
		return -1;
	utf16_to_utf8(w, actual, out, cap);
	return 0;
}

/* LsarLookupSids2 answer: ReferencedDomains (a unique pointer to
 * LSAPR_REFERENCED_DOMAIN_LIST { Entries, Domains (unique), MaxEntries },
 * the array of LSAPR_TRUST_INFORMATION { RPC_UNICODE_STRING Name, PRPC_SID
 * Sid } and their deferred buffers and SIDs), TranslatedNames
 * (LSAPR_TRANSLATED_NAMES_EX { Entries, Names (unique) }, the array of
 * LSAPR_TRANSLATED_NAME_EX { SID_NAME_USE (16 bits), RPC_UNICODE_STRING,
 * DomainIndex, Flags } and the name buffers), MappedCount, NTSTATUS. */
int lsat_parse_lookup_sids2(const uint8_t *p, size_t n, size_t nsids, lsat_names *out,
			    uint32_t *status, ts_err *e)
{
	static const char M[] = "LsarLookupSids2";
	char (*domains)[LSAT_NAME_MAX] = NULL;
	uint32_t ndom = 0;
	int rc = -1;
	rbuf r;
	rb_init(&r, p, n);
	out->v = NULL;
	out->n = 0;
	if (nsids > LSAT_MAX_SIDS)
		return malformed(e, M);
	uint32_t ref_dom = rb_u32(&r);
	if (ref_dom) {
		ndom = rb_u32(&r);
		uint32_t ref_arr = rb_u32(&r);
		uint32_t max_entries = rb_u32(&r);
		(void)max_entries;
		if (r.err || ndom > nsids || (ndom && !ref_arr) || (size_t)ndom * 12 > rb_left(&r))
			goto bad;
		if (ref_arr) {
			if (rb_u32(&r) != ndom || r.err)
				goto bad;
			const uint8_t *fixed = rb_take(&r, (size_t)ndom * 12);
			if (!fixed)
				goto bad;
			domains = calloc(ndom ? ndom : 1, sizeof *domains);
			if (!domains) {
				rc = ts_fail(e, TS_K_ERRNO, ENOMEM, NULL, "allocate result");
				goto done;
			}
			for (uint32_t i = 0; i < ndom; i++) {
				const uint8_t *f = fixed + (size_t)i * 12;
				if (ld32(f + 4) && unicode_buffer(&r, ld16(f), domains[i], LSAT_NAME_MAX) < 0)
					goto bad;
				if (ld32(f + 8)) {
					rb_align(&r, 4);
					uint32_t count = rb_u32(&r);
					const uint8_t *sid = count <= MAX_SID_SUBAUTH ?
						rb_take(&r, 8 + 4 * (size_t)count) : NULL;
					if (!sid || sid[0] != 1 || sid[1] != count)
						goto bad;
				}
			}
		}
	}
	rb_align(&r, 4);   /* after a name buffer of an odd number of WCHARs */
	uint32_t nnames = rb_u32(&r);
	uint32_t ref_names = rb_u32(&r);
	if (r.err || nnames > nsids || (nnames && !ref_names) || (size_t)nnames * 20 > rb_left(&r))
		goto bad;
	out->v = calloc(nsids ? nsids : 1, sizeof *out->v);
	if (!out->v) {
		rc = ts_fail(e, TS_K_ERRNO, ENOMEM, NULL, "allocate result");
		goto done;
	}
	out->n = nsids;
	if (ref_names) {
		if (rb_u32(&r) != nnames || r.err)
			goto bad;
		const uint8_t *fixed = rb_take(&r, (size_t)nnames * 20);
		if (!fixed)
			goto bad;
		for (uint32_t i = 0; i < nnames; i++) {
			const uint8_t *f = fixed + (size_t)i * 20;
			lsat_name *nm = &out->v[i];
			nm->use = ld16(f);
			int32_t dom = (int32_t)ld32(f + 12);
			if (dom < -1 || (dom >= 0 && (uint32_t)dom >= ndom))
				goto bad;
			if (ld32(f + 8) && unicode_buffer(&r, ld16(f + 4), nm->name, sizeof nm->name) < 0)
				goto bad;
			if (dom >= 0 && domains)
				memcpy(nm->domain, domains[dom], sizeof nm->domain);
			nm->mapped = nm->use != LSAT_SID_UNKNOWN && nm->use != 0 && nm->name[0] != '\0';
		}
	}
	rb_align(&r, 4);
	out->mapped = rb_u32(&r);
	*status = rb_u32(&r);
	if (r.err || rb_left(&r) != 0 || out->mapped > nnames)
		goto bad;
	rc = 0;
	goto done;
bad:
	rc = malformed(e, M);
done:
	if (rc < 0)
		lsat_names_free(out);
	free(domains);
	return rc;
}

/* One call; on failure e->what names the method. */
static int lsa_call(rpc_conn *rpc, int ctx, uint16_t opnum, const char *method, const wbuf *q,
		    wbuf *a, ts_err *e)
{
	if (q->err)
		return ts_fail(e, TS_K_ERRNO, ENOMEM, NULL, "%s: build the request", method);
	if (rpc_call(rpc, ctx, opnum, q->p, q->len, a, e) == 0)
		return 0;
	char was[sizeof e->what];
	memcpy(was, e->what, sizeof was);
	if (e->kind == TS_K_FAULT)
		(void)snprintf(e->what, sizeof e->what, "%s", method);
	else
		(void)snprintf(e->what, sizeof e->what, "%s: %.100s", method, was);
	return -1;
}

static int lookup(rpc_conn *rpc, int ctx, const uint8_t *handle, const char *const *sids,
		  size_t n, lsat_names *out, ts_err *e)
{
	uint8_t (*bin)[MAX_SID_LEN] = calloc(n ? n : 1, sizeof *bin);
	const uint8_t **ptrs = calloc(n ? n : 1, sizeof *ptrs);
	size_t *lens = calloc(n ? n : 1, sizeof *lens);
	wbuf q, a;
	wb_init(&q);
	wb_init(&a);
	int rc = -1;
	if (!bin || !ptrs || !lens) {
		rc = ts_fail(e, TS_K_ERRNO, ENOMEM, NULL, "allocate request");
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		int len = lsat_sid_parse(sids[i], bin[i], sizeof bin[i]);
		if (len < 0) {
			rc = ts_fail(e, TS_K_NONE, 0, "invalid_parameter", "LsarLookupSids2: %.60s is not a SID",
				     sids[i]);
			goto done;
		}
		ptrs[i] = bin[i];
		lens[i] = (size_t)len;
	}
	lsat_req_lookup_sids2(&q, handle, ptrs, lens, n);
	if (lsa_call(rpc, ctx, OP_LOOKUP_SIDS2, "LsarLookupSids2", &q, &a, e) < 0)
		goto done;
	uint32_t status = 0;
	if (lsat_parse_lookup_sids2(a.p, a.len, n, out, &status, e) < 0)
		goto done;
	if (status != 0 && status != STATUS_SOME_NOT_MAPPED && status != STATUS_NONE_MAPPED) {
		lsat_names_free(out);
		rc = ts_fail(e, TS_K_NTSTATUS, status, NULL, "LsarLookupSids2");
		goto done;
	}
	rc = 0;
done:
	wb_free(&q);
	wb_free(&a);
	free(bin);
	free(ptrs);
	free(lens);
	return rc;
}

int lsat_lookup(rpc_conn *rpc, int ctx, const char *const *sids, size_t n, lsat_names *out,
		ts_err *e)
{
	out->v = NULL;
	out->n = 0;
	if (n > LSAT_MAX_SIDS)
		return ts_fail(e, TS_K_NONE, 0, "invalid_parameter",
			       "LsarLookupSids2: more than %d SIDs", LSAT_MAX_SIDS);
	wbuf q, a;
	wb_init(&q);
	wb_init(&a);
	uint8_t handle[LSAT_HANDLE_LEN];
	uint32_t status = 0;
	int rc = -1;
	lsat_req_open_policy2(&q, POLICY_LOOKUP_NAMES);
	if (lsa_call(rpc, ctx, OP_OPEN_POLICY2, "LsarOpenPolicy2", &q, &a, e) < 0 ||
	    lsat_parse_open_policy2(a.p, a.len, handle, &status, e) < 0)
		goto done;
	if (status != 0) {
		rc = ts_fail(e, TS_K_NTSTATUS, status, NULL, "LsarOpenPolicy2");
		goto done;
	}
	rc = lookup(rpc, ctx, handle, sids, n, out, e);
	/* The handle is closed whatever the lookup gave; a failed close does
	 * not undo a lookup that worked (the handle dies with the pipe). */
	wb_reset(&q);
	lsat_req_close(&q, handle);
	ts_err ce = {0};
	if (lsa_call(rpc, ctx, OP_CLOSE, "LsarClose", &q, &a, &ce) == 0)
		(void)lsat_parse_close(a.p, a.len, &status, &ce);
done:
	wb_free(&q);
	wb_free(&a);
	return rc;
}
