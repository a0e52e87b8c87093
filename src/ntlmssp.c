/*
 * NTLMSSP client (MS-NLMP): NTLMv2 responses, extended session security with
 * key exchange and 128-bit keys, and the connection-oriented sign + seal that
 * DCE/RPC packet privacy uses.
 *
 * Everything the server sends is untrusted: the CHALLENGE is parsed with
 * explicit bounds on every field before any byte of it is used.
 */
#include "ntlmssp.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>

#include <nettle/hmac.h>
#include <nettle/md4.h>
#include <nettle/md5.h>

#define MSG_NEGOTIATE 1u
#define MSG_CHALLENGE 2u
#define MSG_AUTHENTICATE 3u

#define NEGOTIATE_LEN 32   /* no Version field: we never set NEGOTIATE_VERSION */
#define CHALLENGE_MIN 48   /* up to and including TargetInfoFields */
#define AUTH_HDR_LEN 64    /* no Version, no MIC */
#define LM_RESP_LEN 24
#define NT_BLOB_FIXED 28   /* RespType .. Reserved3 of NTLMv2_CLIENT_CHALLENGE */
#define NT_BLOB_TAIL 4     /* the Z(4) after the AV pairs (MS-NLMP 3.3.2 temp) */

#define AV_EOL 0
#define AV_TIMESTAMP 7

/* Seconds from 1601-01-01 (FILETIME epoch) to 1970-01-01. */
#define FILETIME_UNIX_OFFSET 11644473600ULL

static const uint8_t ntlmssp_sig[8] = { 'N', 'T', 'L', 'M', 'S', 'S', 'P', 0 };

/* sizeof() of these arrays counts the trailing NUL, which MS-NLMP 3.4.5.2/3
 * hashes as part of the constant. */
static const char magic_cs_sign[] = "session key to client-to-server signing key magic constant";
static const char magic_sc_sign[] = "session key to server-to-client signing key magic constant";
static const char magic_cs_seal[] = "session key to client-to-server sealing key magic constant";
static const char magic_sc_seal[] = "session key to server-to-client sealing key magic constant";

void ntlm_memwipe(void *p, size_t n)
{
	if (p && n)
		explicit_bzero(p, n);
}

void ntlm_wipe(ntlm_ctx *c)
{
	if (c)
		ntlm_memwipe(c, sizeof *c);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

/* ------------------------------------------------------------------ */
/* UTF-8 -> UTF-16LE                                                   */

/* Strict decoder: overlong forms, surrogates and values past U+10FFFF are
 * refused, so that one UTF-16 string has exactly one UTF-8 spelling and a
 * malformed name fails loudly instead of hashing to something unexpected. */
static int utf8_next(const uint8_t **pp, const uint8_t *end, uint32_t *cp)
{
	const uint8_t *p = *pp;
	uint32_t c = *p++, min;
	size_t n, i;

	if (c < 0x80) {
		*cp = c;
		*pp = p;
		return 0;
	} else if ((c & 0xE0) == 0xC0) {
		n = 1;
		c &= 0x1F;
		min = 0x80;
	} else if ((c & 0xF0) == 0xE0) {
		n = 2;
		c &= 0x0F;
		min = 0x800;
	} else if ((c & 0xF8) == 0xF0) {
		n = 3;
		c &= 0x07;
		min = 0x10000;
	} else {
		return -1;
	}
	if ((size_t)(end - p) < n)
		return -1;
	for (i = 0; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return -1;
		c = (c << 6) | (p[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return -1;
	*cp = c;
	*pp = p + n;
	return 0;
}

/* Windows compares user names case-insensitively through its own upcase
 * table, and NTOWFv2 hashes the upper-cased name, so a lower-case name typed
 * by the user must upper-case the way Windows does. This covers the simple
 * one-to-one mappings of Latin-1, Latin Extended-A, basic Greek and basic
 * Cyrillic; anything else is left alone (as Windows does for characters
 * whose upper case is not a single code point, such as U+00DF). */
static uint32_t upcase(uint32_t c)
{
	if (c >= 'a' && c <= 'z')
		return c - 0x20;
	if (c < 0xE0)
		return c;
	if (c <= 0xFE)
		return c == 0xF7 ? c : c - 0x20;   /* U+00F7 is the division sign */
	if (c == 0xFF)
		return 0x178;
	if (c <= 0x17F) {                          /* Latin Extended-A */
		/* pairs start on even code points up to U+0137, on odd ones from
		 * U+0139 to U+0148 and from U+0179, and on even ones in between */
		if ((c <= 0x12F || (c >= 0x132 && c <= 0x137) ||
		     (c >= 0x14A && c <= 0x177)) && (c & 1))
			return c - 1;
		if (((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) && !(c & 1))
			return c - 1;
		return c;
	}
	if (c >= 0x3B1 && c <= 0x3CB && c != 0x3C2)
		return c - 0x20;
	if (c == 0x3C2)                            /* final sigma */
		return 0x3A3;
	if (c == 0x3AC)                            /* Greek with tonos */
		return 0x386;
	if (c >= 0x3AD && c <= 0x3AF)
		return c - 0x25;
	if (c == 0x3CC)
		return 0x38C;
	if (c == 0x3CD || c == 0x3CE)
		return c - 0x3F;
	if (c >= 0x430 && c <= 0x44F)
		return c - 0x20;
	if (c >= 0x450 && c <= 0x45F)
		return c - 0x50;
	return c;
}

static size_t put_utf16(uint8_t *out, uint32_t c)
{
	if (c < 0x10000) {
		put16(out, (uint16_t)c);
		return 2;
	}
	c -= 0x10000;
	put16(out, (uint16_t)(0xD800 | (c >> 10)));
	put16(out + 2, (uint16_t)(0xDC00 | (c & 0x3FF)));
	return 4;
}

/* Converts a NUL-terminated UTF-8 string. With out == NULL only measures.
 * Returns the UTF-16 byte length, or -1 if the input is not valid UTF-8 or
 * does not fit in cap. */
static long utf8_to_utf16(const char *s, int upper, uint8_t *out, size_t cap)
{
	const uint8_t *p = (const uint8_t *)s, *end = p + strlen(s);
	uint8_t unit[4];
	size_t len = 0;
	uint32_t c;

	while (p < end) {
		size_t n;

		if (utf8_next(&p, end, &c) < 0)
			return -1;
		n = put_utf16(unit, upper ? upcase(c) : c);
		if (out) {
			if (cap - len < n)
				return -1;
			memcpy(out + len, unit, n);
		}
		len += n;
	}
	return (long)len;
}

static int copy_name(char dst[NTLM_MAX_NAME + 1], const char *src)
{
	size_t n = strlen(src);

	if (n > NTLM_MAX_NAME || utf8_to_utf16(src, 0, NULL, 0) < 0)
		return NTLM_EINVAL;
	memcpy(dst, src, n + 1);
	return NTLM_OK;
}

/* ------------------------------------------------------------------ */
/* Crypto helpers                                                      */

int ntlm_nt_hash(const char *password, uint8_t out[16])
{
	struct md4_ctx md;
	uint8_t buf[64];
	const uint8_t *p, *end;
	uint32_t c = 0;
	size_t n = 0;
	int rc = NTLM_OK;

	if (!password || !out)
		return NTLM_EINVAL;
	/* Streamed through a small buffer so that any password length works
	 * without allocation and only 64 bytes of it exist in UTF-16 at once. */
	p = (const uint8_t *)password;
	end = p + strlen(password);
	md4_init(&md);
	while (p < end) {
		if (utf8_next(&p, end, &c) < 0) {
			rc = NTLM_EINVAL;
			break;
		}
		n += put_utf16(buf + n, c);
		if (n > sizeof buf - 4) {
			md4_update(&md, n, buf);
			n = 0;
		}
	}
	if (rc == NTLM_OK) {
		md4_update(&md, n, buf);
		md4_digest(&md, 16, out);
	}
	ntlm_memwipe(buf, sizeof buf);
	ntlm_memwipe(&md, sizeof md);
	ntlm_memwipe(&c, sizeof c);
	return rc;
}

static void hmac_md5_2(const uint8_t key[16], const uint8_t *a, size_t alen,
		       const uint8_t *b, size_t blen, uint8_t out[16])
{
	struct hmac_md5_ctx h;

	hmac_md5_set_key(&h, 16, key);
	hmac_md5_update(&h, alen, a);
	if (blen)
		hmac_md5_update(&h, blen, b);
	hmac_md5_digest(&h, 16, out);
	ntlm_memwipe(&h, sizeof h);
}

static void derive_key(const uint8_t key[16], const char *magic, size_t mlen,
		       uint8_t out[16])
{
	struct md5_ctx md;

	md5_init(&md);
	md5_update(&md, 16, key);
	md5_update(&md, mlen, (const uint8_t *)magic);
	md5_digest(&md, 16, out);
	ntlm_memwipe(&md, sizeof md);
}

void ntlm_derive_keys(const uint8_t session_key[16], struct ntlm_keys *k)
{
	derive_key(session_key, magic_cs_sign, sizeof magic_cs_sign, k->client_sign);
	derive_key(session_key, magic_sc_sign, sizeof magic_sc_sign, k->server_sign);
	derive_key(session_key, magic_cs_seal, sizeof magic_cs_seal, k->client_seal);
	derive_key(session_key, magic_sc_seal, sizeof magic_sc_seal, k->server_seal);
}

static int fill_random(uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return NTLM_ERANDOM;
		p += r;
		n -= (size_t)r;
	}
	return NTLM_OK;
}

static uint64_t filetime_now(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
		return 0;
	return ((uint64_t)ts.tv_sec + FILETIME_UNIX_OFFSET) * 10000000ULL +
	       (uint64_t)ts.tv_nsec / 100;
}

/* Equality without an early exit, so the time taken says nothing about
 * how many leading bytes of a forged checksum were right. */
static unsigned diff_bytes(const uint8_t *a, const uint8_t *b, size_t n)
{
	unsigned d = 0;
	size_t i;

	for (i = 0; i < n; i++)
		d |= (unsigned)(a[i] ^ b[i]);
	return d;
}

/* ------------------------------------------------------------------ */
/* Context setup and NEGOTIATE                                         */

int ntlm_init(ntlm_ctx *c, const char *user, const char *domain,
	      const char *workstation, const char *password,
	      const uint8_t nt_hash[16])
{
	if (!c)
		return NTLM_EINVAL;
	memset(c, 0, sizeof *c);
	if (!user || !domain || (password == NULL) == (nt_hash == NULL))
		return NTLM_EINVAL;
	if (copy_name(c->user, user) != NTLM_OK ||
	    copy_name(c->domain, domain) != NTLM_OK ||
	    copy_name(c->workstation, workstation ? workstation : "") != NTLM_OK) {
		ntlm_wipe(c);
		return NTLM_EINVAL;
	}
	if (password) {
		int rc = ntlm_nt_hash(password, c->nt_hash);

		if (rc != NTLM_OK) {
			ntlm_wipe(c);
			return rc;
		}
	} else {
		memcpy(c->nt_hash, nt_hash, 16);
	}
	return NTLM_OK;
}

void ntlm_fix(ntlm_ctx *c, const ntlm_fixed *f)
{
	c->fixed = 1;
	memcpy(c->fixed_client_challenge, f->client_challenge, sizeof c->fixed_client_challenge);
	memcpy(c->fixed_session_key, f->session_key, sizeof c->fixed_session_key);
	c->fixed_time = f->time;
}

int ntlm_negotiate(ntlm_ctx *c, uint8_t *out, size_t cap)
{
	if (!c || !out || c->have_keys)
		return NTLM_EINVAL;
	if (cap < NEGOTIATE_LEN)
		return NTLM_ESMALL;
	memset(out, 0, NEGOTIATE_LEN);
	memcpy(out, ntlmssp_sig, 8);
	put32(out + 8, MSG_NEGOTIATE);
	put32(out + 12, NTLM_CLIENT_FLAGS);
	/* DomainNameFields and WorkstationFields stay empty (no OEM_*_SUPPLIED
	 * flags); their offsets point where the payload would start, as
	 * MS-NLMP 2.2.1.1 asks. */
	put32(out + 20, NEGOTIATE_LEN);
	put32(out + 28, NEGOTIATE_LEN);
	c->neg_flags = NTLM_CLIENT_FLAGS;
	return NEGOTIATE_LEN;
}

/* ------------------------------------------------------------------ */
/* CHALLENGE parsing                                                   */

struct challenge {
	uint32_t flags;
	const uint8_t *server_challenge;  /* 8 bytes */
	const uint8_t *target_info;       /* NULL when empty */
	size_t ti_len;
	const uint8_t *timestamp;         /* MsvAvTimestamp value, or NULL */
};

/* A (Len, MaxLen, BufferOffset) triple. MaxLen must be ignored on receipt
 * (MS-NLMP 2.2.1.2), but a length above its own stated maximum is a broken
 * or hostile encoder, so it is refused. Offsets inside the fixed header are
 * refused too: no encoder puts payload there. */
static int read_field(const uint8_t *msg, size_t mlen, size_t at,
		      const uint8_t **data, size_t *dlen)
{
	uint32_t len = get16(msg + at), max = get16(msg + at + 2);
	uint32_t off = get32(msg + at + 4);

	*data = NULL;
	*dlen = 0;
	if (len > max)
		return NTLM_EPROTO;
	if (len == 0)
		return NTLM_OK;
	/* subtract only once off <= mlen is known: nothing can wrap */
	if (off < CHALLENGE_MIN || off > mlen || len > mlen - off)
		return NTLM_EPROTO;
	*data = msg + off;
	*dlen = len;
	return NTLM_OK;
}

/* Walks the AV_PAIR list up to MsvAvEOL, which must be there and be empty. */
static int parse_av_pairs(const uint8_t *ti, size_t len, const uint8_t **timestamp)
{
	size_t pos = 0;

	*timestamp = NULL;
	while (len - pos >= 4) {
		uint16_t id = get16(ti + pos), alen = get16(ti + pos + 2);

		pos += 4;
		if (alen > len - pos)
			return NTLM_EPROTO;
		if (id == AV_EOL)
			return alen == 0 ? NTLM_OK : NTLM_EPROTO;
		if (id == AV_TIMESTAMP) {
			if (alen != 8 || *timestamp)
				return NTLM_EPROTO;
			*timestamp = ti + pos;
		}
		pos += alen;
	}
	return NTLM_EPROTO;
}

static int parse_challenge(const uint8_t *msg, size_t mlen, struct challenge *ch)
{
	const uint8_t *name;
	size_t name_len;
	int rc;

	memset(ch, 0, sizeof *ch);
	if (!msg || mlen < CHALLENGE_MIN)
		return NTLM_EPROTO;
	if (memcmp(msg, ntlmssp_sig, 8) != 0 || get32(msg + 8) != MSG_CHALLENGE)
		return NTLM_EPROTO;
	rc = read_field(msg, mlen, 12, &name, &name_len);
	if (rc != NTLM_OK)
		return rc;
	ch->flags = get32(msg + 20);
	ch->server_challenge = msg + 24;
	rc = read_field(msg, mlen, 40, &ch->target_info, &ch->ti_len);
	if (rc != NTLM_OK)
		return rc;
	if (ch->ti_len > NTLM_MAX_TARGET_INFO)
		return NTLM_EPROTO;
	/* The fields were checked either way; their content only counts when
	 * the server says it sent target info (MS-NLMP 2.2.1.2). */
	if (!(ch->flags & NTLMSSP_NEGOTIATE_TARGET_INFO)) {
		ch->target_info = NULL;
		ch->ti_len = 0;
	}
	if (ch->ti_len > 0) {
		rc = parse_av_pairs(ch->target_info, ch->ti_len, &ch->timestamp);
		if (rc != NTLM_OK)
			return rc;
	}
	return NTLM_OK;
}

/* ------------------------------------------------------------------ */
/* AUTHENTICATE                                                        */

static void put_field(uint8_t *hdr, size_t len, size_t off)
{
	put16(hdr, (uint16_t)len);
	put16(hdr + 2, (uint16_t)len);
	put32(hdr + 4, (uint32_t)off);
}

int ntlm_ntowfv2(const char *user, const char *domain, const uint8_t nt_hash[16],
		 uint8_t out[16])
{
	/* one UTF-8 byte never becomes more than two UTF-16 bytes */
	uint8_t u[2 * NTLM_MAX_NAME], d[2 * NTLM_MAX_NAME];
	long ulen, dlen;

	if (!user || !domain || !nt_hash || !out ||
	    strlen(user) > NTLM_MAX_NAME || strlen(domain) > NTLM_MAX_NAME)
		return NTLM_EINVAL;
	/* Only the user name is upper-cased (MS-NLMP 3.3.2); the domain goes
	 * in as typed. */
	ulen = utf8_to_utf16(user, 1, u, sizeof u);
	dlen = utf8_to_utf16(domain, 0, d, sizeof d);
	if (ulen < 0 || dlen < 0)
		return NTLM_EINVAL;
	hmac_md5_2(nt_hash, u, (size_t)ulen, d, (size_t)dlen, out);
	return NTLM_OK;
}

void ntlm_v2_proof(const uint8_t response_key[16], const uint8_t server_challenge[8],
		   const uint8_t *temp, size_t temp_len, uint8_t nt_proof[16],
		   uint8_t session_base_key[16])
{
	hmac_md5_2(response_key, server_challenge, 8, temp, temp_len, nt_proof);
	hmac_md5_2(response_key, nt_proof, 16, NULL, 0, session_base_key);
}

int ntlm_authenticate(ntlm_ctx *c, const uint8_t *challenge, size_t clen,
		      uint8_t *out, size_t cap)
{
	struct challenge ch;
	struct ntlm_keys keys;
	struct hmac_md5_ctx h;
	uint8_t client_challenge[8], exported[16], response_key[16];
	uint8_t proof[16], base_key[16];
	struct arcfour_ctx rc4;
	long dlen, ulen, wlen;
	size_t nt_len, total, off_dom, off_user, off_ws, off_lm, off_nt, off_key;
	uint8_t *blob;
	int rc;

	if (!c || !out || c->have_keys || c->neg_flags == 0)
		return NTLM_EINVAL;
	rc = parse_challenge(challenge, clen, &ch);
	if (rc != NTLM_OK)
		return rc;
	if ((ch.flags & NTLM_REQUIRED_FLAGS) != NTLM_REQUIRED_FLAGS)
		return NTLM_ENOSUPP;

	dlen = utf8_to_utf16(c->domain, 0, NULL, 0);
	ulen = utf8_to_utf16(c->user, 0, NULL, 0);
	wlen = utf8_to_utf16(c->workstation, 0, NULL, 0);
	if (dlen < 0 || ulen < 0 || wlen < 0)
		return NTLM_EINVAL;
	nt_len = 16 + NT_BLOB_FIXED + ch.ti_len + NT_BLOB_TAIL;
	off_dom = AUTH_HDR_LEN;
	off_user = off_dom + (size_t)dlen;
	off_ws = off_user + (size_t)ulen;
	off_lm = off_ws + (size_t)wlen;
	off_nt = off_lm + LM_RESP_LEN;
	off_key = off_nt + nt_len;
	total = off_key + 16;
	if (cap < total)
		return NTLM_ESMALL;

	/* Randomness first: it is the last thing that can fail, so no secret
	 * has been computed yet when it does. */
	if (c->fixed) {
		memcpy(client_challenge, c->fixed_client_challenge, 8);
		memcpy(exported, c->fixed_session_key, 16);
	} else if (fill_random(client_challenge, 8) != NTLM_OK ||
		   fill_random(exported, 16) != NTLM_OK) {
		ntlm_memwipe(exported, sizeof exported);
		return NTLM_ERANDOM;
	}

	memset(out, 0, total);
	memcpy(out, ntlmssp_sig, 8);
	put32(out + 8, MSG_AUTHENTICATE);
	put_field(out + 12, LM_RESP_LEN, off_lm);
	put_field(out + 20, nt_len, off_nt);
	put_field(out + 28, (size_t)dlen, off_dom);
	put_field(out + 36, (size_t)ulen, off_user);
	put_field(out + 44, (size_t)wlen, off_ws);
	put_field(out + 52, 16, off_key);
	put32(out + 60, c->neg_flags & ch.flags);
	utf8_to_utf16(c->domain, 0, out + off_dom, (size_t)dlen);
	utf8_to_utf16(c->user, 0, out + off_user, (size_t)ulen);
	utf8_to_utf16(c->workstation, 0, out + off_ws, (size_t)wlen);

	/* temp = 01 01 Z(6) Time ClientChallenge Z(4) ServerName Z(4), written
	 * in place right after the NTProofStr slot (MS-NLMP 3.3.2) */
	blob = out + off_nt + 16;
	blob[0] = 1;
	blob[1] = 1;
	if (ch.timestamp)
		memcpy(blob + 8, ch.timestamp, 8);
	else
		put64(blob + 8, c->fixed ? c->fixed_time : filetime_now());
	memcpy(blob + 16, client_challenge, 8);
	if (ch.ti_len)
		memcpy(blob + NT_BLOB_FIXED, ch.target_info, ch.ti_len);

	rc = ntlm_ntowfv2(c->user, c->domain, c->nt_hash, response_key);
	if (rc != NTLM_OK) {
		ntlm_memwipe(exported, sizeof exported);
		ntlm_memwipe(response_key, sizeof response_key);
		return rc;
	}
	ntlm_v2_proof(response_key, ch.server_challenge, blob,
		      NT_BLOB_FIXED + ch.ti_len + NT_BLOB_TAIL, proof, base_key);
	memcpy(out + off_nt, proof, 16);

	/* MS-NLMP 3.1.5.1.2: with a server timestamp the LMv2 response is
	 * Z(24); without one it is the real LMv2 (ResponseKeyLM = NTOWFv2). */
	if (!ch.timestamp) {
		hmac_md5_set_key(&h, 16, response_key);
		hmac_md5_update(&h, 8, ch.server_challenge);
		hmac_md5_update(&h, 8, client_challenge);
		hmac_md5_digest(&h, 16, out + off_lm);
		memcpy(out + off_lm + 16, client_challenge, 8);
	}

	/* KeyExchangeKey = SessionBaseKey for NTLMv2 (MS-NLMP 3.4.5.1) */
	arcfour_set_key(&rc4, 16, base_key);
	arcfour_crypt(&rc4, 16, out + off_key, exported);

	ntlm_derive_keys(exported, &keys);
	memcpy(c->session_key, exported, 16);
	memcpy(c->client_sign_key, keys.client_sign, 16);
	memcpy(c->server_sign_key, keys.server_sign, 16);
	arcfour_set_key(&c->client_seal, 16, keys.client_seal);
	arcfour_set_key(&c->server_seal, 16, keys.server_seal);
	c->send_seq = 0;
	c->recv_seq = 0;
	c->flags = c->neg_flags & ch.flags;
	c->have_keys = 1;
	c->broken = 0;
	ntlm_memwipe(c->nt_hash, sizeof c->nt_hash);

	ntlm_memwipe(&keys, sizeof keys);
	ntlm_memwipe(&h, sizeof h);
	ntlm_memwipe(&rc4, sizeof rc4);
	ntlm_memwipe(exported, sizeof exported);
	ntlm_memwipe(response_key, sizeof response_key);
	ntlm_memwipe(base_key, sizeof base_key);
	ntlm_memwipe(proof, sizeof proof);
	ntlm_memwipe(client_challenge, sizeof client_challenge);
	return (int)total;
}

/* ------------------------------------------------------------------ */
/* Sign + seal (MS-NLMP 3.4.4.2 with ESS and KEY_EXCH, connection mode) */

static int check_region(const ntlm_ctx *c, const uint8_t *pdu, size_t pdu_len,
			size_t body_off, size_t body_len, const uint8_t *sig)
{
	if (!c || !sig || (!pdu && pdu_len) || !c->have_keys)
		return NTLM_EINVAL;
	if (body_off > pdu_len || body_len > pdu_len - body_off)
		return NTLM_EINVAL;
	return NTLM_OK;
}

static void pdu_mac(const uint8_t key[16], uint32_t seq, const uint8_t *pdu,
		    size_t pdu_len, uint8_t mac[8])
{
	struct hmac_md5_ctx h;
	uint8_t seqb[4], digest[16];

	put32(seqb, seq);
	hmac_md5_set_key(&h, 16, key);
	hmac_md5_update(&h, 4, seqb);
	if (pdu_len)
		hmac_md5_update(&h, pdu_len, pdu);
	hmac_md5_digest(&h, 16, digest);
	memcpy(mac, digest, 8);
	ntlm_memwipe(&h, sizeof h);
	ntlm_memwipe(digest, sizeof digest);
}

int ntlm_seal(ntlm_ctx *c, uint8_t *pdu, size_t pdu_len, size_t body_off,
	      size_t body_len, uint8_t sig[NTLM_SIG_LEN])
{
	uint8_t mac[8];
	int rc = check_region(c, pdu, pdu_len, body_off, body_len, sig);

	if (rc != NTLM_OK)
		return rc;
	if (c->broken)
		return NTLM_EBADSIG;
	/* MAC over the plaintext first; then the body and the checksum go
	 * through the same RC4 stream, in that order (MS-NLMP 3.4.3). */
	pdu_mac(c->client_sign_key, c->send_seq, pdu, pdu_len, mac);
	if (body_len)
		arcfour_crypt(&c->client_seal, body_len, pdu + body_off, pdu + body_off);
	arcfour_crypt(&c->client_seal, 8, mac, mac);
	put32(sig, 1);
	memcpy(sig + 4, mac, 8);
	put32(sig + 12, c->send_seq);
	c->send_seq++;
	ntlm_memwipe(mac, sizeof mac);
	return NTLM_OK;
}

int ntlm_unseal(ntlm_ctx *c, uint8_t *pdu, size_t pdu_len, size_t body_off,
		size_t body_len, const uint8_t sig[NTLM_SIG_LEN])
{
	uint8_t got[8], want[8], seqb[4];
	unsigned bad;
	int rc = check_region(c, pdu, pdu_len, body_off, body_len, sig);

	if (rc != NTLM_OK)
		return rc;
	if (c->broken)
		return NTLM_EBADSIG;
	if (body_len)
		arcfour_crypt(&c->server_seal, body_len, pdu + body_off, pdu + body_off);
	arcfour_crypt(&c->server_seal, 8, got, sig + 4);
	pdu_mac(c->server_sign_key, c->recv_seq, pdu, pdu_len, want);
	put32(seqb, c->recv_seq);
	bad = diff_bytes(got, want, 8);
	bad |= diff_bytes(sig + 12, seqb, 4);
	bad |= get32(sig) ^ 1u;
	ntlm_memwipe(got, sizeof got);
	ntlm_memwipe(want, sizeof want);
	if (bad) {
		/* The RC4 stream has moved on by an unknown amount relative to the
		 * server's, so nothing later could verify either. */
		c->broken = 1;
		if (body_len)
			ntlm_memwipe(pdu + body_off, body_len);
		return NTLM_EBADSIG;
	}
	c->recv_seq++;
	return NTLM_OK;
}
