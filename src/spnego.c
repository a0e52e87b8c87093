/*
 * DER for SPNEGO: definite lengths only (up to 4 length octets), each
 * element checked to lie within its parent, fields of a SEQUENCE in tag
 * order and none repeated.
 */
#include "spnego.h"

#include <string.h>

static const uint8_t OID_SPNEGO[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x02};
static const uint8_t OID_KRB5[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02};
static const uint8_t OID_MS_KRB5[] = {0x2a, 0x86, 0x48, 0x82, 0xf7, 0x12, 0x01, 0x02, 0x02};

/* ---- reading ------------------------------------------------------------ */

typedef struct der {
	const uint8_t *p;
	size_t n;
} der;

/* Takes one element with the given tag off d; its contents go to *in. */
static int der_take(der *d, uint8_t tag, der *in)
{
	if (d->n < 2 || d->p[0] != tag)
		return -1;
	size_t len = d->p[1], hdr = 2;
	if (len & 0x80) {
		size_t k = len & 0x7f;
		if (k == 0 || k > 4 || d->n < 2 + k)
			return -1;
		len = 0;
		for (size_t i = 0; i < k; i++)
			len = len << 8 | d->p[2 + i];
		if (len < 0x80 || (k > 1 && d->p[2] == 0))
			return -1; /* not the shortest form: DER forbids it */
		hdr += k;
	}
	if (len > d->n - hdr)
		return -1;
	in->p = d->p + hdr;
	in->n = len;
	d->p += hdr + len;
	d->n -= hdr + len;
	return 0;
}

static int der_peek(const der *d, uint8_t tag) { return d->n > 0 && d->p[0] == tag; }

static int is_krb5_oid(const der *o)
{
	return (o->n == sizeof OID_KRB5 && memcmp(o->p, OID_KRB5, o->n) == 0) ||
	       (o->n == sizeof OID_MS_KRB5 && memcmp(o->p, OID_MS_KRB5, o->n) == 0);
}

int spnego_parse_resp(const uint8_t *p, size_t n, spnego_resp *r)
{
	memset(r, 0, sizeof *r);
	r->state = SPNEGO_NO_STATE;
	der all = {p, n}, outer, seq, f, v;
	if (der_take(&all, 0xa1, &outer) < 0 || all.n != 0)
		return -1;
	if (der_take(&outer, 0x30, &seq) < 0 || outer.n != 0)
		return -1;
	if (der_peek(&seq, 0xa0)) {
		if (der_take(&seq, 0xa0, &f) < 0 || der_take(&f, 0x0a, &v) < 0 || f.n != 0 ||
		    v.n != 1 || v.p[0] > SPNEGO_REQUEST_MIC)
			return -1;
		r->state = v.p[0];
	}
	if (der_peek(&seq, 0xa1)) {
		if (der_take(&seq, 0xa1, &f) < 0 || der_take(&f, 0x06, &v) < 0 || f.n != 0 ||
		    !is_krb5_oid(&v))
			return -1;
		r->mech_krb5 = 1;
	}
	if (der_peek(&seq, 0xa2)) {
		if (der_take(&seq, 0xa2, &f) < 0 || der_take(&f, 0x04, &v) < 0 || f.n != 0)
			return -1;
		r->token = v.p;
		r->token_len = v.n;
	}
	if (der_peek(&seq, 0xa3)) {
		if (der_take(&seq, 0xa3, &f) < 0 || der_take(&f, 0x04, &v) < 0 || f.n != 0)
			return -1;
		r->mic = v.p;
		r->mic_len = v.n;
	}
	return seq.n == 0 ? 0 : -1;
}

int spnego_gss_unframe(const uint8_t *p, size_t n, const uint8_t **inner, size_t *inner_len,
		       uint16_t *tok_id)
{
	der all = {p, n}, body, oid;
	if (der_take(&all, 0x60, &body) < 0 || all.n != 0 || der_take(&body, 0x06, &oid) < 0 ||
	    oid.n != sizeof OID_KRB5 || memcmp(oid.p, OID_KRB5, oid.n) != 0 || body.n < 2)
		return -1;
	*tok_id = (uint16_t)(body.p[0] << 8 | body.p[1]);
	*inner = body.p + 2;
	*inner_len = body.n - 2;
	return 0;
}

int spnego_krb_error(const uint8_t *p, size_t n, int32_t *code)
{
	der all = {p, n}, app, seq, f, v;
	if (der_take(&all, 0x7e, &app) < 0 || all.n != 0 || der_take(&app, 0x30, &seq) < 0 ||
	    app.n != 0)
		return -1;
	/* pvno [0], msg-type [1], ctime [2]?, cusec [3]?, stime [4], susec [5],
	 * error-code [6] */
	for (uint8_t tag = 0xa0; tag <= 0xa5; tag++)
		if (der_peek(&seq, tag) && der_take(&seq, tag, &f) < 0)
			return -1;
	if (der_take(&seq, 0xa6, &f) < 0 || der_take(&f, 0x02, &v) < 0 || f.n != 0 || v.n < 1 ||
	    v.n > 4)
		return -1;
	int32_t x = (v.p[0] & 0x80) ? -1 : 0;
	for (size_t i = 0; i < v.n; i++)
		x = (int32_t)((uint32_t)x << 8 | v.p[i]);
	*code = x;
	return 0;
}

/* ---- writing ------------------------------------------------------------ */

static size_t len_size(size_t len) { return len < 0x80 ? 1 : len < 0x100 ? 2 : len < 0x10000 ? 3 : 4; }

/* Size of an element with len content bytes. */
static size_t tlv_size(size_t len) { return 1 + len_size(len) + len; }

/* Writes a tag and a length (the contents follow). */
static void der_hdr(wbuf *w, uint8_t tag, size_t len)
{
	wb_u8(w, tag);
	if (len < 0x80) {
		wb_u8(w, (uint8_t)len);
	} else if (len < 0x100) {
		wb_u8(w, 0x81);
		wb_u8(w, (uint8_t)len);
	} else if (len < 0x10000) {
		wb_u8(w, 0x82);
		wb_u8(w, (uint8_t)(len >> 8));
		wb_u8(w, (uint8_t)len);
	} else {
		wb_u8(w, 0x83);
		wb_u8(w, (uint8_t)(len >> 16));
		wb_u8(w, (uint8_t)(len >> 8));
		wb_u8(w, (uint8_t)len);
	}
}

#define MECHTYPES_LEN (tlv_size(sizeof OID_MS_KRB5) + tlv_size(sizeof OID_KRB5))

static void put_mechtypes(wbuf *w)
{
	der_hdr(w, 0x30, MECHTYPES_LEN);
	der_hdr(w, 0x06, sizeof OID_MS_KRB5);
	wb_bytes(w, OID_MS_KRB5, sizeof OID_MS_KRB5);
	der_hdr(w, 0x06, sizeof OID_KRB5);
	wb_bytes(w, OID_KRB5, sizeof OID_KRB5);
}

void spnego_init_token(wbuf *out, const uint8_t *ap_req, size_t len, wbuf *mechtypes)
{
	if (len > 0xF00000) { /* no real AP-REQ comes close; keeps the sizes small */
		out->err = 1;
		return;
	}
	size_t framed = tlv_size(sizeof OID_KRB5) + 2 + len;            /* OID, TOK_ID, AP-REQ */
	size_t mech_token = tlv_size(tlv_size(tlv_size(framed)));       /* [2] OCTET STRING 0x60 */
	size_t mech_types = tlv_size(tlv_size(MECHTYPES_LEN));         /* [0] SEQUENCE OF */
	size_t seq = mech_types + mech_token;
	size_t init = tlv_size(tlv_size(seq));                          /* [0] NegTokenInit */
	size_t body = tlv_size(sizeof OID_SPNEGO) + init;
	der_hdr(out, 0x60, body);
	der_hdr(out, 0x06, sizeof OID_SPNEGO);
	wb_bytes(out, OID_SPNEGO, sizeof OID_SPNEGO);
	der_hdr(out, 0xa0, tlv_size(seq));
	der_hdr(out, 0x30, seq);
	der_hdr(out, 0xa0, tlv_size(MECHTYPES_LEN));
	put_mechtypes(out);
	der_hdr(out, 0xa2, tlv_size(tlv_size(framed)));
	der_hdr(out, 0x04, tlv_size(framed));
	der_hdr(out, 0x60, framed);
	der_hdr(out, 0x06, sizeof OID_KRB5);
	wb_bytes(out, OID_KRB5, sizeof OID_KRB5);
	wb_u8(out, 0x01);
	wb_u8(out, 0x00);
	wb_bytes(out, ap_req, len);
	if (mechtypes)
		put_mechtypes(mechtypes);
}

void spnego_resp_token(wbuf *out, const uint8_t *token, size_t len)
{
	if (len > 0xF00000) {
		out->err = 1;
		return;
	}
	size_t seq = tlv_size(tlv_size(len));
	der_hdr(out, 0xa1, tlv_size(seq));
	der_hdr(out, 0x30, seq);
	der_hdr(out, 0xa2, tlv_size(len));
	der_hdr(out, 0x04, len);
	wb_bytes(out, token, len);
}
