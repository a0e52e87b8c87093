#include "ndr.h"

#include <stdlib.h>
#include <string.h>

/* ---- writer ------------------------------------------------------------ */

void wb_init(wbuf *w)
{
	w->p = NULL;
	w->len = w->cap = 0;
	w->err = 0;
}

void wb_free(wbuf *w)
{
	if (w->p) {
		/* buffers carry sealed and unsealed stubs (names, passwords for
		 * RpcConnect): do not leave them in freed memory */
		volatile uint8_t *v = w->p;
		for (size_t i = 0; i < w->cap; i++)
			v[i] = 0;
		free(w->p);
	}
	wb_init(w);
}

void wb_reset(wbuf *w)
{
	w->len = 0;
	w->err = 0;
}

uint8_t *wb_reserve(wbuf *w, size_t n)
{
	if (w->err)
		return NULL;
	if (n > NDR_MAX_ALLOC || w->len > NDR_MAX_ALLOC - n) {
		w->err = 1;
		return NULL;
	}
	/* an empty buffer gets its memory even for n == 0: the result is then
	 * never NULL on success, and never NULL + 0 (undefined behaviour) */
	if (w->len + n > w->cap || !w->p) {
		size_t cap = w->cap ? w->cap : 256;
		while (cap < w->len + n)
			cap *= 2;
		uint8_t *np = malloc(cap);
		if (!np) {
			w->err = 1;
			return NULL;
		}
		if (w->p) {
			memcpy(np, w->p, w->len);
			volatile uint8_t *v = w->p;
			for (size_t i = 0; i < w->cap; i++)
				v[i] = 0;
			free(w->p);
		}
		w->p = np;
		w->cap = cap;
	}
	uint8_t *at = w->p + w->len;
	memset(at, 0, n);
	w->len += n;
	return at;
}

void wb_bytes(wbuf *w, const void *p, size_t n)
{
	uint8_t *at = wb_reserve(w, n);
	if (at && n)
		memcpy(at, p, n);
}

void wb_u8(wbuf *w, uint8_t v) { wb_bytes(w, &v, 1); }

void wb_u16(wbuf *w, uint16_t v)
{
	uint8_t *at = wb_reserve(w, 2);
	if (at)
		st16(at, v);
}

void wb_u32(wbuf *w, uint32_t v)
{
	uint8_t *at = wb_reserve(w, 4);
	if (at)
		st32(at, v);
}

void wb_u64(wbuf *w, uint64_t v)
{
	wb_u32(w, (uint32_t)v);
	wb_u32(w, (uint32_t)(v >> 32));
}

void wb_align(wbuf *w, size_t a)
{
	size_t pad = (a - (w->len % a)) % a;
	(void)wb_reserve(w, pad);
}

void wb_cvstring(wbuf *w, const char *s)
{
	long n = utf8_to_utf16(s, NULL, (size_t)-1 / 2);
	if (n < 0 || n > 0xFFFF) {
		w->err = 1;
		return;
	}
	uint32_t count = (uint32_t)n + 1;
	wb_align(w, 4);
	wb_u32(w, count);
	wb_u32(w, 0);
	wb_u32(w, count);
	uint8_t *at = wb_reserve(w, (size_t)count * 2);
	if (at)
		(void)utf8_to_utf16(s, at, count);
}

uint32_t wb_cwchars(wbuf *w, const char *s, int nul)
{
	long n = utf8_to_utf16(s, NULL, (size_t)-1 / 2);
	if (n < 0 || n > 0xFFFF) {
		w->err = 1;
		return 0;
	}
	uint32_t count = (uint32_t)n + (nul ? 1 : 0);
	wb_align(w, 4);
	wb_u32(w, count);
	uint8_t *at = wb_reserve(w, (size_t)count * 2);
	if (at)
		(void)utf8_to_utf16(s, at, (size_t)n);
	return count;
}

/* ---- reader ------------------------------------------------------------ */

void rb_init(rbuf *r, const uint8_t *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
	r->err = 0;
}

void rb_fail(rbuf *r) { r->err = 1; }

size_t rb_left(const rbuf *r) { return r->err ? 0 : r->len - r->off; }

const uint8_t *rb_take(rbuf *r, size_t n)
{
	if (r->err || n > r->len - r->off) {
		r->err = 1;
		return NULL;
	}
	const uint8_t *at = r->p + r->off;
	r->off += n;
	return at;
}

uint8_t rb_u8(rbuf *r)
{
	const uint8_t *p = rb_take(r, 1);
	return p ? p[0] : 0;
}

uint16_t rb_u16(rbuf *r)
{
	const uint8_t *p = rb_take(r, 2);
	return p ? ld16(p) : 0;
}

uint32_t rb_u32(rbuf *r)
{
	const uint8_t *p = rb_take(r, 4);
	return p ? ld32(p) : 0;
}

uint64_t rb_u64(rbuf *r)
{
	const uint8_t *p = rb_take(r, 8);
	return p ? ld64(p) : 0;
}

void rb_align(rbuf *r, size_t a)
{
	size_t pad = (a - (r->off % a)) % a;
	(void)rb_take(r, pad);
}

void rb_skip(rbuf *r, size_t n) { (void)rb_take(r, n); }

int rb_cvstring(rbuf *r, char *out, size_t cap)
{
	out[0] = '\0';
	rb_align(r, 4);
	uint32_t max = rb_u32(r);
	uint32_t offset = rb_u32(r);
	uint32_t actual = rb_u32(r);
	if (r->err || offset != 0 || actual > max || actual > NDR_MAX_ALLOC / 2) {
		r->err = 1;
		return -1;
	}
	const uint8_t *p = rb_take(r, (size_t)actual * 2);
	if (!p)
		return -1;
	utf16_to_utf8(p, actual, out, cap);
	return 0;
}

void utf16_field(const uint8_t *p, size_t nchars, char *out, size_t cap)
{
	utf16_to_utf8(p, nchars, out, cap);
}

/* ---- UTF-16 <-> UTF-8 -------------------------------------------------- */

static size_t put_utf8(uint32_t cp, char *buf)
{
	if (cp < 0x80) {
		buf[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		buf[0] = (char)(0xC0 | cp >> 6);
		buf[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		buf[0] = (char)(0xE0 | cp >> 12);
		buf[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		buf[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	buf[0] = (char)(0xF0 | cp >> 18);
	buf[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	buf[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	buf[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

size_t utf16_to_utf8(const uint8_t *p, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	if (cap == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t cp = ld16(p + 2 * i);
		if (cp == 0)
			break;
		if (cp >= 0xD800 && cp <= 0xDBFF && i + 1 < n) {
			uint32_t lo = ld16(p + 2 * (i + 1));
			if (lo >= 0xDC00 && lo <= 0xDFFF) {
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				i++;
			} else {
				cp = 0xFFFD;
			}
		} else if (cp >= 0xD800 && cp <= 0xDFFF) {
			cp = 0xFFFD;
		}
		char tmp[4];
		size_t k = put_utf8(cp, tmp);
		if (o + k + 1 > cap)
			break; /* cut at a character boundary */
		memcpy(out + o, tmp, k);
		o += k;
	}
	out[o] = '\0';
	return o;
}

long utf8_to_utf16(const char *s, uint8_t *out, size_t cap_units)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = 0;
	while (*u) {
		uint32_t cp;
		int extra;
		if (*u < 0x80) {
			cp = *u;
			extra = 0;
		} else if ((*u & 0xE0) == 0xC0) {
			cp = *u & 0x1F;
			extra = 1;
		} else if ((*u & 0xF0) == 0xE0) {
			cp = *u & 0x0F;
			extra = 2;
		} else if ((*u & 0xF8) == 0xF0) {
			cp = *u & 0x07;
			extra = 3;
		} else {
			return -1;
		}
		u++;
		for (int k = 0; k < extra; k++, u++) {
			if ((*u & 0xC0) != 0x80)
				return -1;
			cp = cp << 6 | (*u & 0x3F);
		}
		/* reject overlong forms, surrogates and out-of-range values */
		if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) ||
		    (extra == 3 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return -1;
		if (cp >= 0x10000) {
			if (n + 2 > cap_units)
				return -1;
			if (out) {
				cp -= 0x10000;
				st16(out + 2 * n, (uint16_t)(0xD800 + (cp >> 10)));
				st16(out + 2 * n + 2, (uint16_t)(0xDC00 + (cp & 0x3FF)));
			}
			n += 2;
		} else {
			if (n + 1 > cap_units)
				return -1;
			if (out)
				st16(out + 2 * n, (uint16_t)cp);
			n++;
		}
	}
	return (long)n;
}
