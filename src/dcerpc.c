/*
 * Connection-oriented DCE/RPC client. Everything read from the peer is
 * untrusted: every length is checked against what was actually received
 * and against what we advertised, and any violation marks the connection
 * broken so that no later call can read a desynchronised stream.
 */
#include "dcerpc.h"

#include <stdio.h>
#include <string.h>

const rpc_iface IF_TSENUM = {"TermSrvEnumeration",
	{0xd0, 0x3f, 0x14, 0x88, 0x8d, 0xc2, 0x2b, 0x4b, 0x8f, 0xef, 0x8d, 0x88, 0x2f, 0x6a, 0x93, 0x90},
	1, 0};
const rpc_iface IF_TSSESSION = {"TermSrvSession",
	{0xd6, 0x09, 0x48, 0x48, 0x39, 0x42, 0x1b, 0x47, 0xb5, 0xbc, 0x61, 0xdf, 0x8c, 0x23, 0xac, 0x48},
	1, 0};
const rpc_iface IF_RCMPUBLIC = {"RCMPublic",
	{0xdf, 0x5f, 0xe9, 0xbd, 0xe0, 0xee, 0xde, 0x45, 0x9e, 0x12, 0xe5, 0xa6, 0x1c, 0xd0, 0xd4, 0xfe},
	1, 0};
const rpc_iface IF_LEGACY = {"LegacyAPI",
	{0x60, 0xa7, 0xa4, 0x5c, 0xb1, 0xeb, 0xcf, 0x11, 0x86, 0x11, 0x00, 0xa0, 0x24, 0x54, 0x20, 0xed},
	1, 0};

static const uint8_t NDR20[16] = {0x04, 0x5d, 0x88, 0x8a, 0xeb, 0x1c, 0xc9, 0x11,
				  0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10, 0x48, 0x60};

#define HDR_LEN 16
#define REQ_HDR_LEN 24
#define TRAILER_LEN 8
/* Request stubs are padded to this before the sec_trailer: MS-RPCE asks for
 * 16-byte alignment of the verifier for packet privacy. */
#define AUTH_PAD 16

void rpc_init(rpc_conn *c, rpc_io io, const char *where, uint16_t max_recv, rpc_stats *stats)
{
	memset(c, 0, sizeof *c);
	c->io = io;
	c->where = where;
	c->max_recv = max_recv >= RPC_MIN_FRAG ? max_recv : RPC_DEFAULT_FRAG;
	c->max_xmit = RPC_DEFAULT_FRAG;
	c->stats = stats;
	c->auth_ctx_id = 0x7e57; /* any value unique on the connection */
}

static void put_header(uint8_t *p, uint8_t ptype, uint8_t flags, uint16_t frag_len,
		       uint16_t auth_len, uint32_t call_id)
{
	p[0] = 5;
	p[1] = 0;
	p[2] = ptype;
	p[3] = flags;
	p[4] = 0x10; /* little-endian integers, ASCII, IEEE floats */
	p[5] = p[6] = p[7] = 0;
	st16(p + 8, frag_len);
	st16(p + 10, auth_len);
	st32(p + 12, call_id);
}

int rpc_parse_header(const uint8_t *p, size_t n, rpc_hdr *h, ts_err *e)
{
	if (n < HDR_LEN)
		return ts_fail(e, TS_K_NONE, 0, "malformed_response", "short PDU header (%zu bytes)", n);
	if (p[0] != 5 || p[1] != 0)
		return ts_fail(e, TS_K_NONE, 0, "malformed_response",
			       "not a DCE/RPC v5.0 PDU (version %u.%u)", p[0], p[1]);
	if ((p[4] & 0xF0) != 0x10)
		return ts_fail(e, TS_K_NONE, 0, "malformed_response",
			       "big-endian data representation is not supported");
	h->ptype = p[2];
	h->flags = p[3];
	h->frag_len = ld16(p + 8);
	h->auth_len = ld16(p + 10);
	h->call_id = ld32(p + 12);
	if (h->frag_len < HDR_LEN)
		return ts_fail(e, TS_K_NONE, 0, "malformed_response", "frag_length %u is below the header size",
			       h->frag_len);
	if (h->auth_len && (size_t)h->auth_len + TRAILER_LEN > (size_t)h->frag_len - HDR_LEN)
		return ts_fail(e, TS_K_NONE, 0, "malformed_response",
			       "auth_length %u does not fit in frag_length %u", h->auth_len, h->frag_len);
	return 0;
}

static int broken(rpc_conn *c, ts_err *e)
{
	c->broken = 1;
	(void)e;
	return -1;
}

/* Reads one whole fragment into buf (reset), returns its header. */
static int read_frag(rpc_conn *c, wbuf *buf, rpc_hdr *h, ts_err *e)
{
	wb_reset(buf);
	uint8_t *hp = wb_reserve(buf, HDR_LEN);
	if (!hp)
		return ts_fail(e, TS_K_ERRNO, 12, "smb_error", "out of memory");
	if (c->io.read(c->io.ud, hp, HDR_LEN, e) < 0)
		return broken(c, e);
	if (rpc_parse_header(hp, HDR_LEN, h, e) < 0)
		return broken(c, e);
	if (h->frag_len > c->max_recv) {
		ts_fail(e, TS_K_NONE, 0, "malformed_response",
			"response fragment of %u bytes exceeds the negotiated %u", h->frag_len, c->max_recv);
		return broken(c, e);
	}
	uint8_t *bp = wb_reserve(buf, (size_t)h->frag_len - HDR_LEN);
	if (!bp)
		return ts_fail(e, TS_K_ERRNO, 12, "smb_error", "out of memory");
	if (c->io.read(c->io.ud, bp, (size_t)h->frag_len - HDR_LEN, e) < 0)
		return broken(c, e);
	if (c->stats) {
		c->stats->frags_in++;
		c->stats->bytes_in += h->frag_len;
	}
	return 0;
}

static int write_frag(rpc_conn *c, const uint8_t *p, size_t n, ts_err *e)
{
	if (c->io.write(c->io.ud, p, n, e) < 0)
		return broken(c, e);
	if (c->stats) {
		c->stats->frags_out++;
		c->stats->bytes_out += n;
	}
	return 0;
}

/* ---- bind -------------------------------------------------------------- */

int rpc_parse_bind_ack(const uint8_t *pdu, size_t n, rpc_bind_ack *ack, ts_err *e)
{
	rpc_hdr h;
	memset(ack, 0, sizeof *ack);
	if (rpc_parse_header(pdu, n, &h, e) < 0)
		return -1;
	if (h.frag_len != n)
		return ts_fail(e, TS_K_NONE, 0, "malformed_response", "bind_ack length mismatch");
	size_t body_end = n - (h.auth_len ? (size_t)h.auth_len + TRAILER_LEN : 0);
	rbuf r;
	rb_init(&r, pdu, body_end);
	rb_skip(&r, HDR_LEN);
	ack->max_xmit = rb_u16(&r);
	ack->max_recv = rb_u16(&r);
	ack->assoc_group = rb_u32(&r);
	uint16_t addr_len = rb_u16(&r);
	rb_skip(&r, addr_len);
	rb_align(&r, 4);
	uint8_t nres = rb_u8(&r);
	rb_skip(&r, 3);
	if (r.err || nres == 0 || nres > RPC_MAX_CTX)
		return ts_fail(e, TS_K_NONE, 0, "malformed_response",
			       "bind_ack is truncated or lists %u results", nres);
	ack->nresults = nres;
	for (int i = 0; i < nres; i++) {
		ack->result[i] = rb_u16(&r);
		ack->reason[i] = rb_u16(&r);
		rb_skip(&r, 20); /* transfer syntax */
	}
	if (r.err)
		return ts_fail(e, TS_K_NONE, 0, "malformed_response", "bind_ack results truncated");
	if (h.auth_len) {
		const uint8_t *t = pdu + body_end;
		ack->auth_type = t[0];
		ack->auth_level = t[1];
		ack->auth_ctx_id = ld32(t + 4);
		ack->auth_token = t + TRAILER_LEN;
		ack->auth_len = h.auth_len;
	}
	return 0;
}

/* bind and alter_context share their layout: sizes, association group, the
 * presentation context list, and the provider's token in the sec_trailer */
static int send_bind(rpc_conn *c, uint8_t ptype, const rpc_iface *const *ifaces, int n,
		     const wbuf *token, ts_err *e)
{
	wbuf w;
	wb_init(&w);
	(void)wb_reserve(&w, HDR_LEN);
	wb_u16(&w, c->max_recv); /* what we send at most: our requests are small */
	wb_u16(&w, c->max_recv);
	wb_u32(&w, 0);          /* new association group */
	wb_u8(&w, (uint8_t)n);
	wb_u8(&w, 0);
	wb_u16(&w, 0);
	for (int i = 0; i < n; i++) {
		wb_u16(&w, (uint16_t)i);
		wb_u8(&w, 1);
		wb_u8(&w, 0);
		wb_bytes(&w, ifaces[i]->uuid, 16);
		wb_u16(&w, ifaces[i]->vmajor);
		wb_u16(&w, ifaces[i]->vminor);
		wb_bytes(&w, NDR20, 16);
		wb_u32(&w, 2);
	}
	uint8_t flags = PFC_FIRST_FRAG | PFC_LAST_FRAG;
	if (c->sec) {
		wb_u8(&w, c->sec->auth_type);
		wb_u8(&w, AUTH_LEVEL_PRIVACY);
		wb_u8(&w, 0);
		wb_u8(&w, 0);
		wb_u32(&w, c->auth_ctx_id);
		wb_bytes(&w, token->p, token->len);
		if (c->sec->offer_header_sign)
			flags |= PFC_SUPPORT_HEADER_SIGN;
	}
	int rc;
	if (w.err || w.len > 0xFFFF || token->len > 0xFFFF) {
		rc = ts_fail(e, TS_K_ERRNO, 12, "smb_error", "out of memory (or a token too large)");
	} else {
		put_header(w.p, ptype, flags, (uint16_t)w.len, (uint16_t)(c->sec ? token->len : 0),
			   c->call_id);
		rc = write_frag(c, w.p, w.len, e);
	}
	wb_free(&w);
	return rc;
}

static int send_auth3(rpc_conn *c, const wbuf *token, ts_err *e)
{
	wbuf w;
	wb_init(&w);
	uint8_t *p = wb_reserve(&w, HDR_LEN + 4 + TRAILER_LEN);
	if (p) {
		put_header(p, PT_AUTH3, PFC_FIRST_FRAG | PFC_LAST_FRAG,
			   (uint16_t)(HDR_LEN + 4 + TRAILER_LEN + token->len), (uint16_t)token->len,
			   c->call_id);
		uint8_t *t = p + HDR_LEN + 4;
		t[0] = c->sec->auth_type;
		t[1] = AUTH_LEVEL_PRIVACY;
		st32(t + 4, c->auth_ctx_id);
	}
	wb_bytes(&w, token->p, token->len);
	int rc = w.err || token->len > 0xFFFF - HDR_LEN - 4 - TRAILER_LEN
			 ? ts_fail(e, TS_K_ERRNO, 12, "smb_error", "out of memory")
			 : write_frag(c, w.p, w.len, e);
	wb_free(&w);
	return rc;
}

/* Reads the answer to a bind (want = PT_BIND_ACK) or an alter_context
 * (PT_ALTER_RESP) and parses it; a nak, a foreign call id or PDU type, or
 * a result list that does not match fails. */
static int read_bind_answer(rpc_conn *c, uint8_t want, const rpc_iface *const *ifaces, int n,
			    wbuf *in, rpc_hdr *h, rpc_bind_ack *ack, ts_err *e)
{
	if (read_frag(c, in, h, e) < 0)
		return -1;
	if (h->call_id != c->call_id) {
		ts_fail(e, TS_K_NONE, 0, "malformed_response", "bind answer has call_id %u, expected %u",
			h->call_id, c->call_id);
		return broken(c, e);
	}
	if (h->ptype == PT_BIND_NAK) {
		uint16_t reason = in->len >= HDR_LEN + 2 ? ld16(in->p + HDR_LEN) : 0;
		ts_fail(e, TS_K_BINDNAK, reason, NULL, "bind to %s on %s", ifaces[0]->name, c->where);
		if (reason == 8 && c->sec) /* authentication_type_not_recognized */
			ts_detail(e, "the host refuses %s for RPC%s", c->sec->mech,
				  c->sec->auth_type == AUTH_TYPE_NTLM ? ": use Kerberos (kerberos = true, -k)"
								     : "");
		return -1;
	}
	if (h->ptype != want) {
		ts_fail(e, TS_K_NONE, 0, "malformed_response", "bind answered with PDU type %u", h->ptype);
		return broken(c, e);
	}
	if (rpc_parse_bind_ack(in->p, in->len, ack, e) < 0)
		return broken(c, e);
	if (ack->nresults != n) {
		ts_fail(e, TS_K_NONE, 0, "malformed_response", "bind_ack has %d results for %d contexts",
			ack->nresults, n);
		return broken(c, e);
	}
	return 0;
}

/* Takes the contexts and sizes of a bind_ack. */
static int take_contexts(rpc_conn *c, const rpc_iface *const *ifaces, int n,
			 const rpc_bind_ack *ack, ts_err *e)
{
	c->nctx = n;
	int accepted = 0;
	for (int i = 0; i < n; i++) {
		c->ctx[i] = ifaces[i];
		c->ctx_ok[i] = ack->result[i] == 0;
		c->ctx_reason[i] = ack->reason[i];
		accepted += c->ctx_ok[i];
	}
	/* the server's receive limit bounds what we send */
	if (ack->max_recv < RPC_MIN_FRAG) {
		ts_fail(e, TS_K_NONE, 0, "malformed_response", "bind_ack max_recv_frag %u is too small",
			ack->max_recv);
		return broken(c, e);
	}
	c->max_xmit = ack->max_recv < c->max_recv ? ack->max_recv : c->max_recv;
	if (!accepted)
		return ts_fail(e, TS_K_BINDRES, ack->reason[0], NULL, "bind to %s on %s",
			       ifaces[0]->name, c->where);
	return 0;
}

/* Names the bind in a provider's error ("bind to X on Y: <what>"). */
static int bind_failed(rpc_conn *c, const rpc_iface *iface, ts_err *e)
{
	char was[sizeof e->what];
	memcpy(was, e->what, sizeof was);
	(void)snprintf(e->what, sizeof e->what, "bind to %s on %s: %.80s", iface->name, c->where,
		       was);
	return broken(c, e);
}

/* The provider's legs after the bind_ack: feed the server's token, send
 * ours in an alter_context (reading its answer, which may carry a last
 * server token) or an rpc_auth_3 (no answer). */
static int authenticate(rpc_conn *c, const rpc_iface *const *ifaces, int n, const rpc_hdr *h,
			const rpc_bind_ack *ack, wbuf *in, ts_err *e)
{
	rpc_sec *s = c->sec;
	if (!ack->auth_token || ack->auth_type != s->auth_type)
		return ts_fail(e, TS_K_NONE, 0, "auth_level_refused",
			       "bind to %s on %s: the server did not continue %s authentication",
			       ifaces[0]->name, c->where, s->mech);
	s->header_sign = s->offer_header_sign && (h->flags & PFC_SUPPORT_HEADER_SIGN);
	wbuf out;
	wb_init(&out);
	int done = 0, rc = s->ops->next(s, ack->auth_token, ack->auth_len, &out, &done, e);
	if (rc < 0)
		rc = bind_failed(c, ifaces[0], e);
	else if (out.len && !s->third_leg_alter)
		rc = send_auth3(c, &out, e);
	else if (out.len) {
		rpc_hdr h2;
		rpc_bind_ack ack2;
		rc = send_bind(c, PT_ALTER, ifaces, n, &out, e);
		if (rc == 0)
			rc = read_bind_answer(c, PT_ALTER_RESP, ifaces, n, in, &h2, &ack2, e);
		if (rc == 0 && ack2.auth_token) {
			if (ack2.auth_type != s->auth_type) {
				ts_fail(e, TS_K_NONE, 0, "malformed_response",
					"alter_context_resp carries auth type %u", ack2.auth_type);
				rc = broken(c, e);
			} else {
				wb_reset(&out);
				if (s->ops->next(s, ack2.auth_token, ack2.auth_len, &out, &done, e) < 0)
					rc = bind_failed(c, ifaces[0], e);
			}
		}
	}
	if (rc == 0 && !done) {
		ts_fail(e, TS_K_NONE, 0, "auth_failed",
			"bind to %s on %s: %s authentication did not complete", ifaces[0]->name,
			c->where, s->mech);
		rc = broken(c, e);
	}
	wb_free(&out);
	return rc;
}

int rpc_bind(rpc_conn *c, const rpc_iface *const *ifaces, int n, ts_err *e)
{
	if (n < 1 || n > RPC_MAX_CTX)
		return ts_fail(e, TS_K_NONE, 0, "invalid_parameter", "bind: %d contexts", n);
	wbuf token, in;
	wb_init(&token);
	wb_init(&in);
	int rc = -1;
	c->call_id++;
	if (c->sec && c->sec->ops->first(c->sec, &token, e) < 0) {
		bind_failed(c, ifaces[0], e);
		goto out;
	}
	rpc_hdr h;
	rpc_bind_ack ack;
	if (send_bind(c, PT_BIND, ifaces, n, &token, e) < 0 ||
	    read_bind_answer(c, PT_BIND_ACK, ifaces, n, &in, &h, &ack, e) < 0 ||
	    take_contexts(c, ifaces, n, &ack, e) < 0)
		goto out;
	if (c->sec && authenticate(c, ifaces, n, &h, &ack, &in, e) < 0)
		goto out;
	c->bound = 1;
	c->calls_since_bind = 0;
	if (c->stats)
		c->stats->binds++;
	rc = 0;
out:
	wb_free(&token);
	wb_free(&in);
	return rc;
}

/* ---- calls ------------------------------------------------------------- */

static int send_request(rpc_conn *c, int ctx, uint16_t opnum, const uint8_t *stub, size_t len,
			ts_err *e)
{
	size_t sig = c->sec ? c->sec->sig_len : 0;
	size_t overhead = REQ_HDR_LEN + (c->sec ? AUTH_PAD - 1 + TRAILER_LEN + sig : 0);
	size_t chunk = c->max_xmit - overhead;
	chunk -= chunk % AUTH_PAD; /* full fragments need no auth padding */
	wbuf w;
	wb_init(&w);
	size_t off = 0;
	int rc = 0;
	do {
		size_t n = len - off < chunk ? len - off : chunk;
		uint8_t flags = (off == 0 ? PFC_FIRST_FRAG : 0) | (off + n == len ? PFC_LAST_FRAG : 0);
		wb_reset(&w);
		(void)wb_reserve(&w, REQ_HDR_LEN);
		if (n)  /* an empty request may come with stub == NULL */
			wb_bytes(&w, stub + off, n);
		size_t pad = 0;
		if (c->sec) {
			pad = (AUTH_PAD - n % AUTH_PAD) % AUTH_PAD;
			(void)wb_reserve(&w, pad);
			wb_u8(&w, c->sec->auth_type);
			wb_u8(&w, AUTH_LEVEL_PRIVACY);
			wb_u8(&w, (uint8_t)pad);
			wb_u8(&w, 0);
			wb_u32(&w, c->auth_ctx_id);
			(void)wb_reserve(&w, sig);
		}
		if (w.err) {
			rc = ts_fail(e, TS_K_ERRNO, 12, "smb_error", "out of memory");
			break;
		}
		put_header(w.p, PT_REQUEST, flags, (uint16_t)w.len, (uint16_t)sig, c->call_id);
		st32(w.p + 16, (uint32_t)(len - off)); /* alloc_hint: what is left */
		st16(w.p + 20, (uint16_t)ctx);
		st16(w.p + 22, opnum);
		if (c->sec && c->sec->ops->seal(c->sec, w.p, w.len - sig, REQ_HDR_LEN, n + pad,
						w.p + w.len - sig, e) < 0) {
			rc = broken(c, e);
			break;
		}
		if (write_frag(c, w.p, w.len, e) < 0) {
			rc = -1;
			break;
		}
		off += n;
	} while (off < len);
	wb_free(&w);
	return rc;
}

/* Checks and strips the verifier of one sealed response/fault fragment,
 * decrypting its body in place. Returns the plaintext stub length. */
static long unseal_frag(rpc_conn *c, uint8_t *pdu, const rpc_hdr *h, size_t body_off, ts_err *e)
{
	rpc_sec *s = c->sec;
	size_t sig = h->auth_len;
	/* 16 bytes: the smallest verifier of either mechanism */
	if ((s->sig_len_varies ? sig < 16 : sig != s->sig_len) ||
	    h->frag_len < body_off + TRAILER_LEN + sig) {
		ts_fail(e, TS_K_NONE, 0, "bad_signature",
			"response on %s carries no valid %s verifier (auth_length %u)", c->where, s->mech,
			h->auth_len);
		return broken(c, e);
	}
	size_t trailer = h->frag_len - sig - TRAILER_LEN;
	const uint8_t *t = pdu + trailer;
	uint8_t pad = t[2];
	if (t[0] != s->auth_type || t[1] != AUTH_LEVEL_PRIVACY || ld32(t + 4) != c->auth_ctx_id ||
	    pad > trailer - body_off) {
		ts_fail(e, TS_K_NONE, 0, "bad_signature",
			"response on %s has a bad security trailer (type %u level %u pad %u)", c->where,
			t[0], t[1], pad);
		return broken(c, e);
	}
	if (s->ops->unseal(s, pdu, h->frag_len - sig, body_off, trailer - body_off,
			   pdu + h->frag_len - sig, sig, e) < 0) {
		/* unverified plaintext is never left behind */
		memset(pdu + body_off, 0, trailer - body_off);
		(void)snprintf(e->what, sizeof e->what, "response on %s failed %s signature verification",
			       c->where, s->mech);
		return broken(c, e);
	}
	return (long)(trailer - body_off - pad);
}

int rpc_call(rpc_conn *c, int ctx, uint16_t opnum, const uint8_t *stub, size_t len, wbuf *out,
	     ts_err *e)
{
	wb_reset(out);
	if (c->broken || !c->bound)
		return ts_fail(e, TS_K_NONE, 0, "connection_lost", "%s is not usable after an earlier failure",
			       c->where);
	if (ctx < 0 || ctx >= c->nctx || !c->ctx_ok[ctx])
		return ts_fail(e, TS_K_BINDRES, ctx < c->nctx && ctx >= 0 ? c->ctx_reason[ctx] : 1, NULL,
			       "interface not bound on %s", c->where);
	c->call_id++;
	if (send_request(c, ctx, opnum, stub, len, e) < 0)
		return -1;

	wbuf frag;
	wb_init(&frag);
	int rc = -1, first = 1;
	for (;;) {
		rpc_hdr h;
		if (read_frag(c, &frag, &h, e) < 0)
			break;
		if (h.call_id != c->call_id) {
			ts_fail(e, TS_K_NONE, 0, "malformed_response",
				"response on %s has call_id %u, expected %u", c->where, h.call_id, c->call_id);
			broken(c, e);
			break;
		}
		if (h.ptype == PT_FAULT) {
			uint32_t status = 0;
			if (frag.len >= REQ_HDR_LEN + 4) {
				if (h.auth_len && c->sec) {
					if (unseal_frag(c, frag.p, &h, REQ_HDR_LEN, e) < 0)
						break;
				}
				status = ld32(frag.p + REQ_HDR_LEN);
			}
			ts_fail(e, TS_K_FAULT, status, NULL, "%s call %s opnum %u", c->where,
				c->ctx[ctx]->name, opnum);
			/* the call is over; the connection stays usable unless the
			 * fault came before authentication was ever accepted */
			if (c->calls_since_bind == 0 && (status == 5 || status == 0x721)) {
				e->code = "auth_failed";
				if (c->sec && c->sec->auth_type != AUTH_TYPE_NTLM)
					ts_detail(e, "the host took the Kerberos ticket but refused its "
						     "principal");
			}
			c->calls_since_bind++;
			if (c->stats)
				c->stats->calls++;
			break;
		}
		if (h.ptype != PT_RESPONSE || frag.len < REQ_HDR_LEN) {
			ts_fail(e, TS_K_NONE, 0, "malformed_response", "%s answered with PDU type %u", c->where,
				h.ptype);
			broken(c, e);
			break;
		}
		if (first != !!(h.flags & PFC_FIRST_FRAG)) {
			ts_fail(e, TS_K_NONE, 0, "malformed_response",
				"%s sent fragments out of order (flags 0x%02x)", c->where, h.flags);
			broken(c, e);
			break;
		}
		long n;
		if (c->sec) {
			n = unseal_frag(c, frag.p, &h, REQ_HDR_LEN, e);
			if (n < 0)
				break;
		} else {
			if (h.auth_len) {
				ts_fail(e, TS_K_NONE, 0, "malformed_response",
					"unauthenticated response on %s carries a verifier", c->where);
				broken(c, e);
				break;
			}
			n = (long)(h.frag_len - REQ_HDR_LEN);
		}
		if (out->len + (size_t)n > RPC_MAX_RESPONSE) {
			ts_fail(e, TS_K_NONE, 0, "response_too_large", "%s response exceeds %u bytes", c->where,
				RPC_MAX_RESPONSE);
			broken(c, e);
			break;
		}
		wb_bytes(out, frag.p + REQ_HDR_LEN, (size_t)n);
		if (out->err) {
			ts_fail(e, TS_K_ERRNO, 12, "smb_error", "out of memory");
			break;
		}
		first = 0;
		if (h.flags & PFC_LAST_FRAG) {
			c->calls_since_bind++;
			if (c->stats)
				c->stats->calls++;
			rc = 0;
			break;
		}
	}
	wb_free(&frag);
	return rc;
}
