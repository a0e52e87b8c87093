/*
 * Test kit for the NTLMSSP layer: a Lua view of ntlm_ctx for the specs.
 *
 *   ntlm.nt_hash(password)            -> 16-byte string | nil, rc
 *   ntlm.ntowfv2(user, domain, nthash) -> ResponseKeyNT | nil, rc
 *   ntlm.v2_proof(key, server_challenge, temp) -> NTProofStr, SessionBaseKey
 *   ntlm.rc4(key, data)               -> data through a fresh RC4 stream
 *   ntlm.new{user=, domain=, workstation=, password= | nthash=,
 *            client_challenge=, session_key=, time=}
 *                                     -> ctx | nil, rc, ctx_as_left
 *     (giving any of client_challenge / session_key / time switches the
 *      context to test mode; the ones not given are zero)
 *   ctx:negotiate()                   -> bytes | nil, rc
 *   ctx:authenticate(challenge [, cap]) -> bytes | nil, rc
 *   ctx:keys()                        -> {client_sign, server_sign,
 *                                         client_seal, server_seal, session} | nil
 *   ctx:seal(pdu, body_off, body_len) -> sealed_pdu, sig | nil, rc
 *   ctx:unseal(pdu, body_off, body_len, sig) -> plaintext | nil, rc
 *   ctx:server()                      -> a new ctx playing the server's side
 *   ctx:state()                       -> {send_seq, recv_seq, flags,
 *                                         neg_flags, have_keys, broken}
 *   ctx:wipe(), ctx:is_zero(), ctx:contains(bytes)
 *   ntlm.rc, ntlm.flags, ntlm.SIG_LEN, ntlm.AUTH_MAX, ntlm.MAX_TARGET_INFO
 *
 * Offsets are 0-based byte offsets, exactly as the C API takes them.
 */
#include "testkit.h"

#include <string.h>

#include <lauxlib.h>

#include "ntlmssp.h"

#define CTX_MT "termsrv.testkit.ntlm_ctx"

static ntlm_ctx *check_ctx(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, CTX_MT);
}

static int push_fail(lua_State *L, int rc)
{
	lua_pushnil(L);
	lua_pushinteger(L, rc);
	return 2;
}

static ntlm_ctx *new_ctx(lua_State *L)
{
	ntlm_ctx *c = lua_newuserdatauv(L, sizeof *c, 0);

	memset(c, 0, sizeof *c);
	luaL_setmetatable(L, CTX_MT);
	return c;
}

/* A C string from a Lua string that must not hide bytes after a NUL. */
static const char *opt_cstring(lua_State *L, int idx, const char *what)
{
	size_t len;
	const char *s;

	if (lua_isnil(L, idx))
		return NULL;
	s = luaL_checklstring(L, idx, &len);
	if (strlen(s) != len)
		luaL_error(L, "%s contains a NUL byte", what);
	return s;
}

static const uint8_t *opt_bytes(lua_State *L, int idx, size_t want, const char *what)
{
	size_t len;
	const char *s;

	if (lua_isnil(L, idx))
		return NULL;
	s = luaL_checklstring(L, idx, &len);
	if (len != want)
		luaL_error(L, "%s must be %d bytes", what, (int)want);
	return (const uint8_t *)s;
}

static int l_nt_hash(lua_State *L)
{
	size_t len;
	const char *pw = luaL_checklstring(L, 1, &len);
	uint8_t h[16];
	int rc;

	if (strlen(pw) != len)
		return push_fail(L, NTLM_EINVAL);
	rc = ntlm_nt_hash(pw, h);
	if (rc != NTLM_OK)
		return push_fail(L, rc);
	lua_pushlstring(L, (const char *)h, 16);
	ntlm_memwipe(h, sizeof h);
	return 1;
}

static int l_ntowfv2(lua_State *L)
{
	const char *user = opt_cstring(L, 1, "user");
	const char *domain = opt_cstring(L, 2, "domain");
	const uint8_t *nthash = opt_bytes(L, 3, 16, "nthash");
	uint8_t out[16];
	int rc = ntlm_ntowfv2(user, domain, nthash, out);

	if (rc != NTLM_OK)
		return push_fail(L, rc);
	lua_pushlstring(L, (const char *)out, 16);
	ntlm_memwipe(out, sizeof out);
	return 1;
}

static int l_v2_proof(lua_State *L)
{
	size_t klen, sclen, tlen;
	const char *key = luaL_checklstring(L, 1, &klen);
	const char *sc = luaL_checklstring(L, 2, &sclen);
	const char *temp = luaL_checklstring(L, 3, &tlen);
	uint8_t proof[16], base[16];

	luaL_argcheck(L, klen == 16, 1, "key must be 16 bytes");
	luaL_argcheck(L, sclen == 8, 2, "server challenge must be 8 bytes");
	ntlm_v2_proof((const uint8_t *)key, (const uint8_t *)sc, (const uint8_t *)temp,
		      tlen, proof, base);
	lua_pushlstring(L, (const char *)proof, 16);
	lua_pushlstring(L, (const char *)base, 16);
	ntlm_memwipe(base, sizeof base);
	return 2;
}

/* Lets a spec undo EncryptedRandomSessionKey with the SessionBaseKey. */
static int l_rc4(lua_State *L)
{
	size_t klen, dlen;
	const char *key = luaL_checklstring(L, 1, &klen);
	const char *data = luaL_checklstring(L, 2, &dlen);
	struct arcfour_ctx rc4;
	luaL_Buffer b;
	uint8_t *buf;

	luaL_argcheck(L, klen >= ARCFOUR_MIN_KEY_SIZE && klen <= ARCFOUR_MAX_KEY_SIZE, 1,
		      "bad RC4 key size");
	buf = (uint8_t *)luaL_buffinitsize(L, &b, dlen ? dlen : 1);
	arcfour_set_key(&rc4, klen, (const uint8_t *)key);
	arcfour_crypt(&rc4, dlen, buf, (const uint8_t *)data);
	ntlm_memwipe(&rc4, sizeof rc4);
	luaL_pushresultsize(&b, dlen);
	return 1;
}

static int l_new(lua_State *L)
{
	static const char *const fields[] = {
		"user", "domain", "workstation", "password", "nthash",
		"client_challenge", "session_key", "time",
	};
	const char *user, *domain, *ws, *pw;
	const uint8_t *nthash, *cc, *sk;
	ntlm_ctx *c;
	size_t i;
	int rc, base;

	luaL_checktype(L, 1, LUA_TTABLE);
	/* the values stay on the stack, so their string pointers stay valid */
	base = lua_gettop(L) + 1;
	for (i = 0; i < sizeof fields / sizeof fields[0]; i++)
		lua_getfield(L, 1, fields[i]);
	user = opt_cstring(L, base, "user");
	domain = opt_cstring(L, base + 1, "domain");
	ws = opt_cstring(L, base + 2, "workstation");
	pw = opt_cstring(L, base + 3, "password");
	nthash = opt_bytes(L, base + 4, 16, "nthash");
	cc = opt_bytes(L, base + 5, 8, "client_challenge");
	sk = opt_bytes(L, base + 6, 16, "session_key");

	c = new_ctx(L);
	rc = ntlm_init(c, user, domain, ws, pw, nthash);
	if (rc != NTLM_OK) {
		/* the context as ntlm_init left it, so a spec can check it is wiped */
		push_fail(L, rc);
		lua_pushvalue(L, -3);
		return 3;
	}
	if (cc || sk || !lua_isnil(L, base + 7)) {
		c->fixed = 1;
		if (cc)
			memcpy(c->fixed_client_challenge, cc, 8);
		if (sk)
			memcpy(c->fixed_session_key, sk, 16);
		if (!lua_isnil(L, base + 7))
			c->fixed_time = (uint64_t)luaL_checkinteger(L, base + 7);
	}
	return 1;
}

static int l_negotiate(lua_State *L)
{
	ntlm_ctx *c = check_ctx(L, 1);
	uint8_t out[NTLM_NEGOTIATE_MAX];
	int n = ntlm_negotiate(c, out, sizeof out);

	if (n < 0)
		return push_fail(L, n);
	lua_pushlstring(L, (const char *)out, (size_t)n);
	return 1;
}

static int l_authenticate(lua_State *L)
{
	ntlm_ctx *c = check_ctx(L, 1);
	size_t clen;
	const char *ch = luaL_checklstring(L, 2, &clen);
	uint8_t out[NTLM_AUTH_MAX];
	lua_Integer cap = luaL_optinteger(L, 3, (lua_Integer)sizeof out);
	int n;

	luaL_argcheck(L, cap >= 0 && cap <= (lua_Integer)sizeof out, 3, "cap out of range");
	n = ntlm_authenticate(c, (const uint8_t *)ch, clen, out, (size_t)cap);
	if (n < 0)
		return push_fail(L, n);
	lua_pushlstring(L, (const char *)out, (size_t)n);
	return 1;
}

static void set_bytes(lua_State *L, const char *k, const uint8_t *p, size_t n)
{
	lua_pushlstring(L, (const char *)p, n);
	lua_setfield(L, -2, k);
}

static int l_keys(lua_State *L)
{
	ntlm_ctx *c = check_ctx(L, 1);
	struct ntlm_keys k;

	if (!c->have_keys) {
		lua_pushnil(L);
		return 1;
	}
	ntlm_derive_keys(c->session_key, &k);
	lua_createtable(L, 0, 7);
	set_bytes(L, "session", c->session_key, 16);
	set_bytes(L, "client_sign", k.client_sign, 16);
	set_bytes(L, "server_sign", k.server_sign, 16);
	set_bytes(L, "client_seal", k.client_seal, 16);
	set_bytes(L, "server_seal", k.server_seal, 16);
	/* what the context actually holds, to compare with the derivation */
	set_bytes(L, "ctx_client_sign", c->client_sign_key, 16);
	set_bytes(L, "ctx_server_sign", c->server_sign_key, 16);
	ntlm_memwipe(&k, sizeof k);
	return 1;
}

/* Shared by seal and unseal: copies the PDU into a Lua buffer, runs the C
 * call in place, and returns the result (plus the signature for seal). */
static int run_seal(lua_State *L, int unseal)
{
	ntlm_ctx *c = check_ctx(L, 1);
	size_t len, siglen = 0;
	const char *pdu = luaL_checklstring(L, 2, &len);
	size_t off = (size_t)luaL_checkinteger(L, 3);
	size_t blen = (size_t)luaL_checkinteger(L, 4);
	const char *insig = unseal ? luaL_checklstring(L, 5, &siglen) : NULL;
	uint8_t sig[NTLM_SIG_LEN];
	luaL_Buffer b;
	uint8_t *buf;
	int rc;

	if (unseal) {
		luaL_argcheck(L, siglen == NTLM_SIG_LEN, 5, "signature must be 16 bytes");
		memcpy(sig, insig, NTLM_SIG_LEN);
	}
	buf = (uint8_t *)luaL_buffinitsize(L, &b, len ? len : 1);
	memcpy(buf, pdu, len);
	rc = unseal ? ntlm_unseal(c, buf, len, off, blen, sig)
		    : ntlm_seal(c, buf, len, off, blen, sig);
	luaL_pushresultsize(&b, len);
	if (rc != NTLM_OK) {
		lua_pop(L, 1);
		return push_fail(L, rc);
	}
	if (unseal)
		return 1;
	lua_pushlstring(L, (const char *)sig, NTLM_SIG_LEN);
	return 2;
}

static int l_seal(lua_State *L)
{
	return run_seal(L, 0);
}

static int l_unseal(lua_State *L)
{
	return run_seal(L, 1);
}

/* The peer of a client context: the same keys with the two directions
 * swapped, so what one seals the other unseals. Test-only: a real server
 * derives this from its own view of the handshake. */
static int l_server(lua_State *L)
{
	ntlm_ctx *c = check_ctx(L, 1);
	ntlm_ctx *s = new_ctx(L);
	uint32_t seq;

	*s = *c;
	memcpy(s->client_sign_key, c->server_sign_key, 16);
	memcpy(s->server_sign_key, c->client_sign_key, 16);
	s->client_seal = c->server_seal;
	s->server_seal = c->client_seal;
	seq = s->send_seq;
	s->send_seq = s->recv_seq;
	s->recv_seq = seq;
	return 1;
}

static int l_state(lua_State *L)
{
	ntlm_ctx *c = check_ctx(L, 1);

	lua_createtable(L, 0, 6);
	lua_pushinteger(L, c->send_seq);
	lua_setfield(L, -2, "send_seq");
	lua_pushinteger(L, c->recv_seq);
	lua_setfield(L, -2, "recv_seq");
	lua_pushinteger(L, c->flags);
	lua_setfield(L, -2, "flags");
	lua_pushinteger(L, c->neg_flags);
	lua_setfield(L, -2, "neg_flags");
	lua_pushboolean(L, c->have_keys);
	lua_setfield(L, -2, "have_keys");
	lua_pushboolean(L, c->broken);
	lua_setfield(L, -2, "broken");
	return 1;
}

static int l_wipe(lua_State *L)
{
	ntlm_wipe(check_ctx(L, 1));
	return 0;
}

static int l_is_zero(lua_State *L)
{
	const uint8_t *p = (const uint8_t *)check_ctx(L, 1);
	unsigned acc = 0;
	size_t i;

	for (i = 0; i < sizeof(ntlm_ctx); i++)
		acc |= p[i];
	lua_pushboolean(L, acc == 0);
	return 1;
}

/* Whether the raw struct holds a byte string anywhere (e.g. a password). */
static int l_contains(lua_State *L)
{
	const uint8_t *p = (const uint8_t *)check_ctx(L, 1);
	size_t n;
	const char *s = luaL_checklstring(L, 2, &n);
	size_t i;

	for (i = 0; n > 0 && i + n <= sizeof(ntlm_ctx); i++) {
		if (memcmp(p + i, s, n) == 0) {
			lua_pushboolean(L, 1);
			return 1;
		}
	}
	lua_pushboolean(L, 0);
	return 1;
}

static int l_gc(lua_State *L)
{
	ntlm_wipe(check_ctx(L, 1));
	return 0;
}

static void set_int(lua_State *L, const char *k, lua_Integer v)
{
	lua_pushinteger(L, v);
	lua_setfield(L, -2, k);
}

int testkit_ntlm(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{ "negotiate", l_negotiate },
		{ "authenticate", l_authenticate },
		{ "keys", l_keys },
		{ "seal", l_seal },
		{ "unseal", l_unseal },
		{ "server", l_server },
		{ "state", l_state },
		{ "wipe", l_wipe },
		{ "is_zero", l_is_zero },
		{ "contains", l_contains },
		{ NULL, NULL },
	};
	static const luaL_Reg funcs[] = {
		{ "nt_hash", l_nt_hash },
		{ "ntowfv2", l_ntowfv2 },
		{ "v2_proof", l_v2_proof },
		{ "rc4", l_rc4 },
		{ "new", l_new },
		{ NULL, NULL },
	};

	if (luaL_newmetatable(L, CTX_MT)) {
		luaL_newlib(L, methods);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, l_gc);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, l_gc);
		lua_setfield(L, -2, "__close");
	}
	lua_pop(L, 1);

	luaL_newlib(L, funcs);
	lua_createtable(L, 0, 7);
	set_int(L, "OK", NTLM_OK);
	set_int(L, "EINVAL", NTLM_EINVAL);
	set_int(L, "EPROTO", NTLM_EPROTO);
	set_int(L, "ENOSUPP", NTLM_ENOSUPP);
	set_int(L, "EBADSIG", NTLM_EBADSIG);
	set_int(L, "ESMALL", NTLM_ESMALL);
	set_int(L, "ERANDOM", NTLM_ERANDOM);
	lua_setfield(L, -2, "rc");
	lua_createtable(L, 0, 14);
	set_int(L, "UNICODE", NTLMSSP_NEGOTIATE_UNICODE);
	set_int(L, "REQUEST_TARGET", NTLMSSP_REQUEST_TARGET);
	set_int(L, "SIGN", NTLMSSP_NEGOTIATE_SIGN);
	set_int(L, "SEAL", NTLMSSP_NEGOTIATE_SEAL);
	set_int(L, "NTLM", NTLMSSP_NEGOTIATE_NTLM);
	set_int(L, "ALWAYS_SIGN", NTLMSSP_NEGOTIATE_ALWAYS_SIGN);
	set_int(L, "EXTENDED_SESSIONSECURITY", NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY);
	set_int(L, "TARGET_INFO", NTLMSSP_NEGOTIATE_TARGET_INFO);
	set_int(L, "VERSION", NTLMSSP_NEGOTIATE_VERSION);
	set_int(L, "N128", NTLMSSP_NEGOTIATE_128);
	set_int(L, "KEY_EXCH", NTLMSSP_NEGOTIATE_KEY_EXCH);
	set_int(L, "N56", NTLMSSP_NEGOTIATE_56);
	set_int(L, "CLIENT", NTLM_CLIENT_FLAGS);
	set_int(L, "REQUIRED", NTLM_REQUIRED_FLAGS);
	lua_setfield(L, -2, "flags");
	set_int(L, "SIG_LEN", NTLM_SIG_LEN);
	set_int(L, "AUTH_MAX", NTLM_AUTH_MAX);
	set_int(L, "NEGOTIATE_MAX", NTLM_NEGOTIATE_MAX);
	set_int(L, "MAX_TARGET_INFO", NTLM_MAX_TARGET_INFO);
	set_int(L, "MAX_NAME", NTLM_MAX_NAME);
	return 1;
}
