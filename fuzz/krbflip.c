/*
 * Every bit of a sealed Kerberos response, flipped (harness.h,
 * harness_krb_flips). The server is in this process: a GSS acceptor with
 * the service keytab behind the memory transport (server mode), answering
 * the real client's bind (SPNEGO: bind_ack, then alter_context_resp; raw
 * Kerberos: bind_ack, then nothing for the rpc_auth_3) and sealing a real
 * response to its request. The client is the core's: rpc_pipe_bind with
 * Kerberos credentials from a ccache, rpc_call on the bound pipe.
 *
 * Flipped copies are fed to the client's receive path one at a time, each
 * to the association as it stood after the bind (the rpc_conn is restored;
 * the GSS context is shared: a rejected token leaves no trace in it, which
 * the control at the end shows: the genuine response still verifies).
 */
#include <gssapi/gssapi.h>
#include <gssapi/gssapi_ext.h>
#include <gssapi/gssapi_krb5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "rpcpipe.h"
#include "spnego.h"

#define HDR 16
#define REQ_HDR 24
#define TRAILER 8

static gss_OID_desc krb5_oid = {9, (void *)"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02"};
static gss_OID_set_desc krb5_set = {1, &krb5_oid};

typedef struct krb_server {
	gss_cred_id_t cred;
	gss_ctx_id_t ctx;
	int raw;
	int established;
	int header_sign;        /* the client offered it; we echo it */
	uint32_t auth_ctx_id;
	const uint8_t *stub;    /* what the response carries */
	size_t stub_len;
	wbuf resp;              /* the genuine sealed response, once made */
	int request_ok;         /* the client's request unwrapped */
	char err[200];
} krb_server;

static int srv_fail(krb_server *s, const char *what, OM_uint32 maj, OM_uint32 min)
{
	if (!s->err[0])
		(void)snprintf(s->err, sizeof s->err, "%s (GSS 0x%x, minor %d)", what, maj, (int)min);
	return -1;
}

/* One DER element: tag, value, and what follows it. */
static int der(const uint8_t **p, size_t *n, uint8_t *tag, const uint8_t **val, size_t *len)
{
	if (*n < 2)
		return -1;
	size_t h = 2, l = (*p)[1];
	if (l & 0x80) {
		size_t k = l & 0x7f;
		if (k < 1 || k > 3 || *n < 2 + k)
			return -1;
		l = 0;
		for (size_t i = 0; i < k; i++)
			l = l << 8 | (*p)[2 + i];
		h += k;
	}
	if (l > *n - h)
		return -1;
	*tag = (*p)[0];
	*val = *p + h;
	*len = l;
	*p += h + l;
	*n -= h + l;
	return 0;
}

/* The AP-REQ inside our client's NegTokenInit: [APPLICATION 0] { OID,
 * [0] SEQUENCE { [0] mechTypes, [2] OCTET STRING mechToken } }. */
static int negtokeninit_mech(const uint8_t *p, size_t n, const uint8_t **tok, size_t *tlen)
{
	uint8_t tag;
	const uint8_t *v;
	size_t l;
	if (der(&p, &n, &tag, &v, &l) < 0 || tag != 0x60)
		return -1;
	p = v;
	n = l;
	if (der(&p, &n, &tag, &v, &l) < 0 || tag != 0x06 || der(&p, &n, &tag, &v, &l) < 0 ||
	    tag != 0xa0)
		return -1;
	p = v;
	n = l;
	if (der(&p, &n, &tag, &v, &l) < 0 || tag != 0x30)
		return -1;
	p = v;
	n = l;
	while (n && der(&p, &n, &tag, &v, &l) == 0) {
		if (tag == 0xa2) {
			const uint8_t *q = v;
			size_t m = l;
			if (der(&q, &m, &tag, tok, tlen) < 0 || tag != 0x04)
				return -1;
			return 0;
		}
	}
	return -1;
}

static int accept_token(krb_server *s, const uint8_t *in, size_t n, wbuf *out)
{
	OM_uint32 maj, min, m2, flags = 0;
	gss_buffer_desc ib = {n, (void *)in}, ob = GSS_C_EMPTY_BUFFER;
	maj = gss_accept_sec_context(&min, &s->ctx, s->cred, &ib, GSS_C_NO_CHANNEL_BINDINGS, NULL,
				     NULL, &ob, &flags, NULL, NULL);
	if (GSS_ERROR(maj)) {
		(void)gss_release_buffer(&m2, &ob);
		return srv_fail(s, "accept", maj, min);
	}
	wb_bytes(out, ob.value, ob.length);
	(void)gss_release_buffer(&m2, &ob);
	if (maj == GSS_S_COMPLETE)
		s->established = 1;
	return 0;
}

static void put_hdr(uint8_t *p, uint8_t ptype, uint8_t flags, size_t frag, size_t auth,
		    uint32_t call_id)
{
	p[0] = 5;
	p[1] = 0;
	p[2] = ptype;
	p[3] = flags;
	p[4] = 0x10;
	p[5] = p[6] = p[7] = 0;
	st16(p + 8, (uint16_t)frag);
	st16(p + 10, (uint16_t)auth);
	st32(p + 12, call_id);
}

/* bind_ack / alter_context_resp accepting every context of the bind, with
 * token in its sec_trailer */
static void bind_answer(krb_server *s, const uint8_t *bind, uint8_t ptype, const wbuf *token,
			wbuf *out)
{
	size_t start = out->len;
	(void)wb_reserve(out, HDR);
	wb_u16(out, 4280);
	wb_u16(out, 4280);
	wb_u32(out, 0x5eed);
	static const char addr[] = "\\PIPE\\krbflip";
	wb_u16(out, sizeof addr);
	wb_bytes(out, addr, sizeof addr);
	while ((out->len - start) % 4)
		wb_u8(out, 0);
	uint8_t nctx = bind[24];
	wb_u8(out, nctx);
	wb_u8(out, 0);
	wb_u16(out, 0);
	for (int i = 0; i < nctx; i++) {
		wb_u16(out, 0);
		wb_u16(out, 0);
		wb_bytes(out, bind + 28 + 24, 20); /* the first context's transfer syntax */
	}
	wb_u8(out, s->raw ? AUTH_TYPE_KRB5 : AUTH_TYPE_SPNEGO);
	wb_u8(out, AUTH_LEVEL_PRIVACY);
	wb_u8(out, 0);
	wb_u8(out, 0);
	wb_u32(out, s->auth_ctx_id);
	wb_bytes(out, token->p, token->len);
	if (!out->err)
		put_hdr(out->p + start, ptype,
			PFC_FIRST_FRAG | PFC_LAST_FRAG | (s->header_sign ? PFC_SUPPORT_HEADER_SIGN : 0),
			out->len - start, token->len, ld32(bind + 12));
}

/* the layout of krb5sec.c: HEADER | SIGN_ONLY | DATA | SIGN_ONLY */
static void iovs(gss_iov_buffer_desc iov[4], uint8_t *pdu, size_t body_len, uint8_t *sig,
		 size_t sig_len, int hs)
{
	iov[0].type = GSS_IOV_BUFFER_TYPE_HEADER;
	iov[0].buffer.length = sig_len;
	iov[0].buffer.value = sig;
	iov[1].type = hs ? GSS_IOV_BUFFER_TYPE_SIGN_ONLY : GSS_IOV_BUFFER_TYPE_EMPTY;
	iov[1].buffer.length = hs ? REQ_HDR : 0;
	iov[1].buffer.value = pdu;
	iov[2].type = GSS_IOV_BUFFER_TYPE_DATA;
	iov[2].buffer.length = body_len;
	iov[2].buffer.value = pdu + REQ_HDR;
	iov[3].type = hs ? GSS_IOV_BUFFER_TYPE_SIGN_ONLY : GSS_IOV_BUFFER_TYPE_EMPTY;
	iov[3].buffer.length = hs ? TRAILER : 0;
	iov[3].buffer.value = pdu + REQ_HDR + body_len;
}

/* Checks the client's sealed request (on a copy), then seals the response. */
static int answer_request(krb_server *s, const uint8_t *req, size_t n)
{
	OM_uint32 maj, min = 0;
	size_t sig = ld16(req + 10);
	if (n < REQ_HDR + TRAILER + sig)
		return srv_fail(s, "short request", 0, 0);
	uint8_t *copy = malloc(n);
	if (!copy)
		return srv_fail(s, "out of memory", 0, 0);
	memcpy(copy, req, n);
	size_t body = n - sig - TRAILER - REQ_HDR;
	gss_iov_buffer_desc iov[4];
	iovs(iov, copy, body, copy + n - sig, sig, s->header_sign);
	int conf = 0;
	maj = gss_unwrap_iov(&min, s->ctx, &conf, NULL, iov, 4);
	free(copy);
	if (GSS_ERROR(maj) || !conf)
		return srv_fail(s, "unwrap the request", maj, min);
	s->request_ok = 1;

	size_t pad = (16 - s->stub_len % 16) % 16, body_len = s->stub_len + pad;
	gss_iov_buffer_desc len_iov[2] = {{GSS_IOV_BUFFER_TYPE_HEADER, GSS_C_EMPTY_BUFFER},
					  {GSS_IOV_BUFFER_TYPE_DATA, {body_len, NULL}}};
	maj = gss_wrap_iov_length(&min, s->ctx, 1, GSS_C_QOP_DEFAULT, &conf, len_iov, 2);
	if (GSS_ERROR(maj))
		return srv_fail(s, "wrap length", maj, min);
	size_t sig_len = len_iov[0].buffer.length;
	wbuf *w = &s->resp;
	(void)wb_reserve(w, REQ_HDR);
	wb_bytes(w, s->stub, s->stub_len);
	(void)wb_reserve(w, pad);
	wb_u8(w, s->raw ? AUTH_TYPE_KRB5 : AUTH_TYPE_SPNEGO);
	wb_u8(w, AUTH_LEVEL_PRIVACY);
	wb_u8(w, (uint8_t)pad);
	wb_u8(w, 0);
	wb_u32(w, s->auth_ctx_id);
	(void)wb_reserve(w, sig_len);
	if (w->err)
		return srv_fail(s, "out of memory", 0, 0);
	put_hdr(w->p, PT_RESPONSE, PFC_FIRST_FRAG | PFC_LAST_FRAG, w->len, sig_len, ld32(req + 12));
	st32(w->p + 16, (uint32_t)s->stub_len); /* alloc_hint */
	st16(w->p + 20, ld16(req + 20));        /* the context of the request */
	iovs(iov, w->p, body_len, w->p + w->len - sig_len, sig_len, s->header_sign);
	maj = gss_wrap_iov(&min, s->ctx, 1, GSS_C_QOP_DEFAULT, &conf, iov, 4);
	if (GSS_ERROR(maj) || !conf || iov[0].buffer.length != sig_len)
		return srv_fail(s, "wrap the response", maj, min);
	return 0;
}

/* The memory transport's server: bind, alter_context, rpc_auth_3, request. */
static int serve(void *ud, const char *pipe, const uint8_t *p, size_t n, wbuf *answer)
{
	krb_server *s = ud;
	(void)pipe;
	if (n < HDR || ld16(p + 8) != n)
		return srv_fail(s, "a fragment that is not one PDU", 0, 0);
	uint8_t ptype = p[2];
	size_t alen = ld16(p + 10);
	if (alen + TRAILER > n - HDR)
		return srv_fail(s, "a PDU without sec_trailer", 0, 0);
	const uint8_t *t = p + n - alen - TRAILER, *tok = t + TRAILER;
	wbuf out;
	wb_init(&out);
	int rc = 0;
	if (ptype == PT_BIND) {
		s->header_sign = !!(p[3] & PFC_SUPPORT_HEADER_SIGN);
		s->auth_ctx_id = ld32(t + 4);
		const uint8_t *ap = tok;
		size_t aplen = alen;
		uint16_t tok_id = 0;
		/* SPNEGO: the mechToken, GSS-framed; MIT in DCE style takes the
		 * AP-REQ raw */
		if (!s->raw && (negtokeninit_mech(tok, alen, &ap, &aplen) < 0 ||
				spnego_gss_unframe(ap, aplen, &ap, &aplen, &tok_id) < 0 ||
				tok_id != 0x0100))
			rc = srv_fail(s, "the bind's NegTokenInit does not parse", 0, 0);
		wbuf rep;
		wb_init(&rep);
		if (rc == 0)
			rc = accept_token(s, ap, aplen, &rep);
		if (rc == 0 && !s->raw)
			spnego_resp_token(&out, rep.p, rep.len);
		else if (rc == 0)
			wb_bytes(&out, rep.p, rep.len);
		wb_free(&rep);
		if (rc == 0)
			bind_answer(s, p, PT_BIND_ACK, &out, answer);
	} else if (ptype == PT_ALTER || ptype == PT_AUTH3) {
		const uint8_t *ap = tok;
		size_t aplen = alen;
		spnego_resp r;
		if (ptype == PT_ALTER) {
			if (spnego_parse_resp(tok, alen, &r) < 0 || !r.token)
				rc = srv_fail(s, "the alter_context's NegTokenResp does not parse", 0, 0);
			ap = r.token;
			aplen = r.token_len;
		}
		if (rc == 0)
			rc = accept_token(s, ap, aplen, &out);
		if (rc == 0 && !s->established)
			rc = srv_fail(s, "the context is not complete after the third leg", 0, 0);
		if (rc == 0 && ptype == PT_ALTER) {
			/* NegTokenResp { negState accept-completed } */
			static const uint8_t done[] = {0xa1, 0x07, 0x30, 0x05, 0xa0, 0x03, 0x0a, 0x01, 0x00};
			wb_reset(&out);
			wb_bytes(&out, done, sizeof done);
			bind_answer(s, p, PT_ALTER_RESP, &out, answer);
		}
	} else if (ptype == PT_REQUEST && s->established && !s->resp.len) {
		rc = answer_request(s, p, n);
		wb_bytes(answer, s->resp.p, s->resp.len);
	} else {
		rc = srv_fail(s, "an unexpected PDU", 0, ptype);
	}
	wb_free(&out);
	return rc;
}

/* ---- the client's receive path, one copy at a time ----------------------- */

/* The rpc_io of the flips: the first request goes through the pipe to the
 * server (which seals the response); every read comes from a fresh copy of
 * that response with bit `bit` flipped (-1: none). */
typedef struct flip_io {
	rpc_io pipe;
	krb_server *srv;
	uint8_t *copy;
	long bit;
	mem_stream s;
} flip_io;

static int flip_write(void *ud, const uint8_t *p, size_t n, ts_err *e)
{
	flip_io *f = ud;
	if (!f->srv->resp.len && f->pipe.write(f->pipe.ud, p, n, e) < 0)
		return -1;
	const wbuf *resp = &f->srv->resp;
	if (!resp->len)
		return ts_fail(e, TS_K_NONE, 0, "server_error", "the server made no response");
	if (!f->copy && !(f->copy = malloc(resp->len)))
		return ts_fail(e, TS_K_ERRNO, 12, NULL, "out of memory");
	memcpy(f->copy, resp->p, resp->len);
	if (f->bit >= 0)
		f->copy[f->bit / 8] ^= (uint8_t)(1u << (f->bit % 8));
	f->s.p = f->copy;
	f->s.len = resp->len;
	f->s.off = 0;
	return 0;
}

static int flip_read(void *ud, uint8_t *p, size_t n, ts_err *e)
{
	return mem_stream_read(&((flip_io *)ud)->s, p, n, e);
}

/* One call on the association as it stood after the bind; NULL = the
 * response was accepted (and parsed), else the error code. */
static const char *one_call(const rpc_conn *bound, flip_io *f, long bit, const krb_flip_opts *o,
			    krb_flip_result *r, int *parsed)
{
	static const uint8_t req[8] = {2, 0, 0, 0, 1, 0, 0, 0}; /* session 2, level 1 */
	rpc_conn c = *bound;
	c.io.ud = f;
	c.io.write = flip_write;
	c.io.read = flip_read;
	f->bit = bit;
	wbuf out;
	wb_init(&out);
	ts_err e = {0};
	const char *code = NULL;
	*parsed = 0;
	if (rpc_call(&c, o->ctx, o->opnum, req, sizeof req, &out, &e) == 0) {
		*parsed = 1;
		r->parses++;
		(void)harness_parse(o->parser, out.p, out.len, &r->parse_code);
	} else {
		ts_err_view v;
		ts_err_resolve(&e, &v);
		code = v.code ? v.code : "?";
	}
	wb_free(&out);
	return code;
}

int harness_krb_flips(const krb_flip_opts *o, krb_flip_result *r)
{
	memset(r, 0, sizeof *r);
	krb_server s;
	memset(&s, 0, sizeof s);
	s.raw = o->raw;
	s.ctx = GSS_C_NO_CONTEXT;
	s.cred = GSS_C_NO_CREDENTIAL;
	s.stub = o->stub;
	s.stub_len = o->stub_len;
	wb_init(&s.resp);
	ts_creds cr;
	memset(&cr, 0, sizeof cr);
	rpc_pipe p;
	memset(&p, 0, sizeof p);
	ts_transport tr = {NULL, NULL};
	flip_io f;
	memset(&f, 0, sizeof f);
	f.srv = &s;
	int rc = -1, parsed;
	ts_err e = {0};

	OM_uint32 maj, min;
	gss_key_value_element_desc el[2] = {{"keytab", o->keytab}, {"rcache", "none:"}};
	gss_key_value_set_desc store = {2, el};
	maj = gss_acquire_cred_from(&min, GSS_C_NO_NAME, GSS_C_INDEFINITE, &krb5_set, GSS_C_ACCEPT,
				    &store, &s.cred, NULL, NULL);
	if (GSS_ERROR(maj)) {
		srv_fail(&s, "acceptor credentials from the keytab", maj, min);
		goto out;
	}
	smb_opts smb;
	memset(&smb, 0, sizeof smb);
	smb.host = "krbflip";
	krb_opts krb;
	memset(&krb, 0, sizeof krb);
	krb.ccache = o->ccache;
	krb.spn = o->spn;
	krb.raw = o->raw;
	if (ts_creds_init(&cr, TS_RPC_KERBEROS, &smb, &krb, &e) < 0)
		goto out;
	mem_server srv = {serve, &s};
	mem_transport mt = {NULL, &srv};
	if (mem_transport_connect(&mt, &smb, NULL, &tr, &e) < 0)
		goto out;
	p.name = "LSM_API_service";
	p.ifaces[0] = &IF_TSENUM;
	p.ifaces[1] = &IF_TSSESSION;
	p.nif = 2;
	p.absent_code = "lsm_unavailable";
	p.present = -1;
	if (rpc_pipe_bind(&p, &tr, &cr, 0, NULL, &e) < 0)
		goto out;
	r->auth_type = p.sec.auth_type;
	r->header_sign = p.sec.header_sign;
	r->sig_len = p.sec.sig_len;
	f.pipe = p.rpc.io;

	for (long bit = 0;; bit++) {
		const char *code = one_call(&p.rpc, &f, bit, o, r, &parsed);
		if (bit == 0) {
			if (!s.resp.len)
				goto out;
			r->resp_len = s.resp.len;
			r->nbits = 8 * (long)s.resp.len;
			r->codes = calloc((size_t)r->nbits, sizeof *r->codes);
			r->resp = malloc(s.resp.len);
			if (!r->codes || !r->resp) {
				srv_fail(&s, "out of memory", 0, 0);
				goto out;
			}
			memcpy(r->resp, s.resp.p, s.resp.len);
		}
		r->codes[bit] = code;
		if (bit + 1 == r->nbits)
			break;
	}
	r->flip_parses = r->parses;
	r->request_ok = s.request_ok;
	/* the control: the genuine response, to the same association */
	r->control_code = one_call(&p.rpc, &f, -1, o, r, &r->control_parsed);
	/* and again: now a replay */
	r->replay_code = one_call(&p.rpc, &f, -1, o, r, &parsed);
	rc = 0;
out:
	if (rc < 0) {
		ts_err_view v;
		ts_err_resolve(&e, &v);
		(void)snprintf(r->error, sizeof r->error, "%s%s%s", s.err,
			       s.err[0] && e.kind + (e.code != NULL) ? "; " : "",
			       e.kind || e.code ? v.message : "");
		if (!r->error[0])
			(void)snprintf(r->error, sizeof r->error, "setup failed");
	}
	free(f.copy);
	rpc_pipe_drop(&p);
	if (tr.conn)
		tr.ops->free(tr.conn);
	ts_creds_wipe(&cr);
	OM_uint32 m2;
	if (s.ctx != GSS_C_NO_CONTEXT)
		(void)gss_delete_sec_context(&m2, &s.ctx, GSS_C_NO_BUFFER);
	if (s.cred != GSS_C_NO_CREDENTIAL)
		(void)gss_release_cred(&m2, &s.cred);
	wb_free(&s.resp);
	return rc;
}

void harness_krb_flips_free(krb_flip_result *r)
{
	free(r->codes);
	free(r->resp);
	r->codes = NULL;
	r->resp = NULL;
}
