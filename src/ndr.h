/*
 * Bounds-checked NDR 2.0 (little-endian) writer and reader.
 *
 * Both use a sticky error flag: after the first failure (out of bounds, bad
 * count, out of memory) every further operation is a no-op returning zero,
 * and the caller checks the flag once at the end. This keeps parsers of
 * untrusted server data short without letting a single read go unchecked.
 * Alignment is relative to the start of the buffer, which is where NDR stub
 * data starts.
 */
#ifndef TERMSRV_NDR_H
#define TERMSRV_NDR_H

#include <stddef.h>
#include <stdint.h>

/* Hard ceiling for anything we allocate because a server said so. */
#define NDR_MAX_ALLOC (16u * 1024u * 1024u)

typedef struct wbuf {
	uint8_t *p;
	size_t len, cap;
	int err;          /* 1 after an allocation failure */
} wbuf;

void wb_init(wbuf *w);
void wb_free(wbuf *w);          /* wipes the contents before freeing */
void wb_reset(wbuf *w);         /* len = 0, keeps the memory */
uint8_t *wb_reserve(wbuf *w, size_t n);   /* appends n zero bytes, returns them */
void wb_bytes(wbuf *w, const void *p, size_t n);
void wb_u8(wbuf *w, uint8_t v);
void wb_u16(wbuf *w, uint16_t v);
void wb_u32(wbuf *w, uint32_t v);
void wb_u64(wbuf *w, uint64_t v);
void wb_align(wbuf *w, size_t a);
/* [string] wchar_t* as a conformant-varying array (max, offset 0, actual),
 * NUL included. s is UTF-8; invalid UTF-8 sets err. */
void wb_cvstring(wbuf *w, const char *s);
/* conformant array of WCHAR without the varying part (MaxCount then chars),
 * as used by size_is(n) PWCHAR; nul: include the terminating NUL. Returns the
 * number of WCHARs written. */
uint32_t wb_cwchars(wbuf *w, const char *s, int nul);

typedef struct rbuf {
	const uint8_t *p;
	size_t len, off;
	int err;          /* 1 after the first out-of-bounds or malformed read */
} rbuf;

void rb_init(rbuf *r, const uint8_t *p, size_t len);
uint8_t rb_u8(rbuf *r);
uint16_t rb_u16(rbuf *r);
uint32_t rb_u32(rbuf *r);
uint64_t rb_u64(rbuf *r);
void rb_align(rbuf *r, size_t a);
void rb_skip(rbuf *r, size_t n);
/* Pointer to the next n bytes (NULL and err if they are not there). */
const uint8_t *rb_take(rbuf *r, size_t n);
size_t rb_left(const rbuf *r);
/* Fails the reader (marks it malformed). */
void rb_fail(rbuf *r);

/* Conformant-varying string -> UTF-8 in out (cap bytes incl. NUL). Checks
 * offset, actual <= max, that the bytes are present; a string longer than
 * the output is cut at a character boundary. Returns 0 or -1 (and err). */
int rb_cvstring(rbuf *r, char *out, size_t cap);

/* Fixed-size UTF-16LE field (nchars code units, NUL-padded) -> UTF-8. */
void utf16_field(const uint8_t *p, size_t nchars, char *out, size_t cap);

/* UTF-16LE (n code units, stops at NUL) -> UTF-8; unpaired surrogates become
 * U+FFFD. Always NUL-terminates. Returns bytes written (without NUL). */
size_t utf16_to_utf8(const uint8_t *p, size_t n, char *out, size_t cap);

/* UTF-8 -> UTF-16LE; returns code units written (no NUL) or -1 on invalid
 * UTF-8 / overflow. out may be NULL to count. */
long utf8_to_utf16(const char *s, uint8_t *out, size_t cap_units);

/* Little-endian loads and stores for fixed layouts. */
static inline uint16_t ld16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t ld32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t ld64(const uint8_t *p) { return ld32(p) | (uint64_t)ld32(p + 4) << 32; }
static inline void st16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void st32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

#endif
