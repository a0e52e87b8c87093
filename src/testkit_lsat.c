/*
 * Test hooks for MS-LSAT (src/lsat.c): the request encoders and the answer
 * parsers on byte strings.
 */
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "lsat.h"
#include "testkit.h"

static int push_err(lua_State *L, const ts_err *e)
{
	ts_err_view v;
	ts_err_resolve(e, &v);
	lua_pushnil(L);
	lua_createtable(L, 0, 3);
	lua_pushstring(L, v.code);
	lua_setfield(L, -2, "code");
	lua_pushstring(L, e->what);
	lua_setfield(L, -2, "what");
	lua_pushinteger(L, e->status);
	lua_setfield(L, -2, "status");
	return 2;
}

/* sid("S-1-...") -> binary SID | nil */
static int t_sid(lua_State *L)
{
	uint8_t out[68];
	int n = lsat_sid_parse(luaL_checkstring(L, 1), out, sizeof out);
	if (n < 0)
		return 0;
	lua_pushlstring(L, (const char *)out, (size_t)n);
	return 1;
}

static int push_wbuf(lua_State *L, wbuf *w)
{
	if (w->err) {
		wb_free(w);
		return luaL_error(L, "out of memory");
	}
	lua_pushlstring(L, (const char *)w->p, w->len);
	wb_free(w);
	return 1;
}

/* open_policy2_request(access) -> stub */
static int t_open_req(lua_State *L)
{
	wbuf w;
	wb_init(&w);
	lsat_req_open_policy2(&w, (uint32_t)luaL_checkinteger(L, 1));
	return push_wbuf(L, &w);
}

/* lookup_request(handle, {sid strings}) -> stub */
static int t_lookup_req(lua_State *L)
{
	size_t hl;
	const char *h = luaL_checklstring(L, 1, &hl);
	luaL_argcheck(L, hl == LSAT_HANDLE_LEN, 1, "20-byte handle expected");
	luaL_checktype(L, 2, LUA_TTABLE);
	lua_Integer n = luaL_len(L, 2);
	luaL_argcheck(L, n >= 0 && n <= 64, 2, "at most 64 SIDs");
	uint8_t bin[64][68];
	const uint8_t *ptrs[64];
	size_t lens[64];
	for (lua_Integer i = 0; i < n; i++) {
		lua_rawgeti(L, 2, i + 1);
		int len = lsat_sid_parse(luaL_checkstring(L, -1), bin[i], sizeof bin[i]);
		lua_pop(L, 1);
		if (len < 0)
			return luaL_error(L, "SID %d is not a SID", (int)i + 1);
		ptrs[i] = bin[i];
		lens[i] = (size_t)len;
	}
	wbuf w;
	wb_init(&w);
	lsat_req_lookup_sids2(&w, (const uint8_t *)h, ptrs, lens, (size_t)n);
	return push_wbuf(L, &w);
}

/* parse(kind, bytes[, nsids]) -> result, status | nil, err
 *   "open_policy2": result = the handle; "close": result = true;
 *   "lookup_sids2": result = array of {name, domain, use} or false, .mapped */
static int t_parse(lua_State *L)
{
	static const char *const kinds[] = {"open_policy2", "lookup_sids2", "close", NULL};
	int k = luaL_checkoption(L, 1, NULL, kinds);
	size_t n;
	const uint8_t *p = (const uint8_t *)luaL_checklstring(L, 2, &n);
	ts_err e = {0};
	uint32_t status = 0;
	if (k == 0) {
		uint8_t handle[LSAT_HANDLE_LEN];
		if (lsat_parse_open_policy2(p, n, handle, &status, &e) < 0)
			return push_err(L, &e);
		lua_pushlstring(L, (const char *)handle, sizeof handle);
	} else if (k == 2) {
		if (lsat_parse_close(p, n, &status, &e) < 0)
			return push_err(L, &e);
		lua_pushboolean(L, 1);
	} else {
		lua_Integer nsids = luaL_checkinteger(L, 3);
		luaL_argcheck(L, nsids >= 0 && nsids <= LSAT_MAX_SIDS, 3, "SID count out of range");
		lsat_names out = {0};
		if (lsat_parse_lookup_sids2(p, n, (size_t)nsids, &out, &status, &e) < 0)
			return push_err(L, &e);
		lua_createtable(L, (int)out.n, 1);
		for (size_t i = 0; i < out.n; i++) {
			const lsat_name *nm = &out.v[i];
			if (!nm->mapped) {
				lua_pushboolean(L, 0);
			} else {
				lua_createtable(L, 0, 3);
				lua_pushstring(L, nm->name);
				lua_setfield(L, -2, "name");
				lua_pushstring(L, nm->domain);
				lua_setfield(L, -2, "domain");
				lua_pushinteger(L, nm->use);
				lua_setfield(L, -2, "use");
			}
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		lua_pushinteger(L, out.mapped);
		lua_setfield(L, -2, "mapped");
		lsat_names_free(&out);
	}
	lua_pushinteger(L, status);
	return 2;
}

int testkit_lsat(lua_State *L)
{
	static const luaL_Reg f[] = {
		{"sid", t_sid}, {"open_policy2_request", t_open_req}, {"lookup_request", t_lookup_req},
		{"parse", t_parse}, {NULL, NULL},
	};
	luaL_newlib(L, f);
	return 1;
}
