/*
 * Test kit for the SPNEGO / Kerberos DER of src/spnego.c:
 *
 *   spnego.init_token(ap_req)    -> NegTokenInit bytes, mechTypes DER
 *   spnego.resp_token(token)     -> NegTokenResp bytes
 *   spnego.parse_resp(bytes)     -> {state=, krb5=, token=, mic=} | nil
 *   spnego.unframe(bytes)        -> inner, tok_id | nil
 *   spnego.krb_error(bytes)      -> error-code | nil
 */
#include <lauxlib.h>

#include "spnego.h"
#include "testkit.h"

static int l_init_token(lua_State *L)
{
	size_t n;
	const char *ap = luaL_checklstring(L, 1, &n);
	wbuf w, mt;
	wb_init(&w);
	wb_init(&mt);
	spnego_init_token(&w, (const uint8_t *)ap, n, &mt);
	if (w.err || mt.err) {
		wb_free(&w);
		wb_free(&mt);
		return luaL_error(L, "spnego_init_token failed");
	}
	lua_pushlstring(L, (const char *)w.p, w.len);
	lua_pushlstring(L, (const char *)mt.p, mt.len);
	wb_free(&w);
	wb_free(&mt);
	return 2;
}

static int l_resp_token(lua_State *L)
{
	size_t n;
	const char *t = luaL_checklstring(L, 1, &n);
	wbuf w;
	wb_init(&w);
	spnego_resp_token(&w, (const uint8_t *)t, n);
	if (w.err) {
		wb_free(&w);
		return luaL_error(L, "spnego_resp_token failed");
	}
	lua_pushlstring(L, (const char *)w.p, w.len);
	wb_free(&w);
	return 1;
}

static int l_parse_resp(lua_State *L)
{
	size_t n;
	const char *p = luaL_checklstring(L, 1, &n);
	spnego_resp r;
	if (spnego_parse_resp((const uint8_t *)p, n, &r) < 0) {
		lua_pushnil(L);
		return 1;
	}
	lua_createtable(L, 0, 4);
	lua_pushinteger(L, r.state);
	lua_setfield(L, -2, "state");
	lua_pushboolean(L, r.mech_krb5);
	lua_setfield(L, -2, "krb5");
	if (r.token) {
		lua_pushlstring(L, (const char *)r.token, r.token_len);
		lua_setfield(L, -2, "token");
	}
	if (r.mic) {
		lua_pushlstring(L, (const char *)r.mic, r.mic_len);
		lua_setfield(L, -2, "mic");
	}
	return 1;
}

static int l_unframe(lua_State *L)
{
	size_t n, len;
	const char *p = luaL_checklstring(L, 1, &n);
	const uint8_t *inner;
	uint16_t tok;
	if (spnego_gss_unframe((const uint8_t *)p, n, &inner, &len, &tok) < 0) {
		lua_pushnil(L);
		return 1;
	}
	lua_pushlstring(L, (const char *)inner, len);
	lua_pushinteger(L, tok);
	return 2;
}

static int l_krb_error(lua_State *L)
{
	size_t n;
	const char *p = luaL_checklstring(L, 1, &n);
	int32_t code;
	if (spnego_krb_error((const uint8_t *)p, n, &code) < 0)
		lua_pushnil(L);
	else
		lua_pushinteger(L, code);
	return 1;
}

int testkit_spnego(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{"init_token", l_init_token}, {"resp_token", l_resp_token},
		{"parse_resp", l_parse_resp}, {"unframe", l_unframe},
		{"krb_error", l_krb_error},   {NULL, NULL},
	};
	luaL_newlib(L, fns);
	return 1;
}
