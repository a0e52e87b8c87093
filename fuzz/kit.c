/*
 * termsrv.fuzzkit: the fuzz harnesses as a Lua module, for the hardening
 * specs (never installed). They replay the seed corpora under the normal
 * and the sanitizer builds, and drive the engine with hand-made hostile
 * input.
 *
 *   fuzzkit.engine(bytes, sealed [, parser]) -> result
 *   fuzzkit.client(bytes)                    -> result
 *   fuzzkit.parse(parser, bytes)             -> code | nil (nil = parsed)
 *   fuzzkit.parsers                          -> {"all_sessions", ...}
 *   fuzzkit.krb_flips{ccache=, keytab=, spn=, raw=, ctx=, opnum=, parser=, stub=}
 *       -> {codes = {per bit: code or false}, resp =, auth_type =,
 *           header_sign =, sig_len =, request_ok =, flip_parses =,
 *           control = code or false, control_parsed =, parse_code =,
 *           replay = code or false} | nil, error   (fuzz/krbflip.c)
 *
 * result = {steps = {{name=, code=, status=, len=, parsed=, parse_code=}},
 *           consumed = server bytes read, parses = parser runs,
 *           violation = message when the core broke a harness check}
 * Input layouts: harness.h.
 */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "harness.h"

#define EXPORT __attribute__((visibility("default")))

static char violation_msg[256];

static void on_violation(const char *what)
{
	if (!violation_msg[0])
		(void)snprintf(violation_msg, sizeof violation_msg, "%s", what);
}

static void push_result(lua_State *L, const harness_result *r)
{
	lua_createtable(L, 0, 4);
	lua_createtable(L, r->nsteps, 0);
	for (int i = 0; i < r->nsteps; i++) {
		const harness_step *s = &r->step[i];
		lua_createtable(L, 0, 6);
		lua_pushstring(L, s->name);
		lua_setfield(L, -2, "name");
		if (s->code) {
			lua_pushstring(L, s->code);
			lua_setfield(L, -2, "code");
			lua_pushinteger(L, s->status);
			lua_setfield(L, -2, "status");
		}
		lua_pushinteger(L, (lua_Integer)s->len);
		lua_setfield(L, -2, "len");
		lua_pushboolean(L, s->parsed);
		lua_setfield(L, -2, "parsed");
		if (s->parse_code) {
			lua_pushstring(L, s->parse_code);
			lua_setfield(L, -2, "parse_code");
		}
		lua_rawseti(L, -2, i + 1);
	}
	lua_setfield(L, -2, "steps");
	lua_pushinteger(L, (lua_Integer)r->consumed);
	lua_setfield(L, -2, "consumed");
	lua_pushinteger(L, r->parses);
	lua_setfield(L, -2, "parses");
	if (violation_msg[0]) {
		lua_pushstring(L, violation_msg);
		lua_setfield(L, -2, "violation");
	}
}

static int parser_index(lua_State *L, int arg)
{
	const char *name = luaL_checkstring(L, arg);
	for (int i = 0; i < HP_COUNT; i++)
		if (strcmp(name, harness_parser_names[i]) == 0)
			return i;
	return luaL_argerror(L, arg, "unknown parser");
}

static int k_engine(lua_State *L)
{
	size_t n;
	const uint8_t *p = (const uint8_t *)luaL_checklstring(L, 1, &n);
	int sealed = lua_toboolean(L, 2);
	int parse = lua_isnoneornil(L, 3) ? -1 : parser_index(L, 3);
	harness_result r;
	violation_msg[0] = '\0';
	harness_engine(p, n, sealed, parse, &r);
	push_result(L, &r);
	return 1;
}

static int k_client(lua_State *L)
{
	size_t n;
	const uint8_t *p = (const uint8_t *)luaL_checklstring(L, 1, &n);
	harness_result r;
	violation_msg[0] = '\0';
	harness_client(p, n, &r);
	push_result(L, &r);
	return 1;
}

static int k_parse(lua_State *L)
{
	int which = parser_index(L, 1);
	size_t n;
	const uint8_t *p = (const uint8_t *)luaL_checklstring(L, 2, &n);
	const char *code = NULL;
	violation_msg[0] = '\0';
	(void)harness_parse(which, p, n, &code);
	if (violation_msg[0])
		return luaL_error(L, "harness check failed: %s", violation_msg);
	if (code)
		lua_pushstring(L, code);
	else
		lua_pushnil(L);
	return 1;
}

static int k_krb_flips(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	krb_flip_opts o;
	memset(&o, 0, sizeof o);
	lua_getfield(L, 1, "ccache");
	o.ccache = luaL_checkstring(L, -1);
	lua_getfield(L, 1, "keytab");
	o.keytab = luaL_checkstring(L, -1);
	lua_getfield(L, 1, "spn");
	o.spn = luaL_checkstring(L, -1);
	lua_getfield(L, 1, "stub");
	o.stub = (const uint8_t *)luaL_checklstring(L, -1, &o.stub_len);
	lua_getfield(L, 1, "raw");
	o.raw = lua_toboolean(L, -1);
	lua_getfield(L, 1, "opnum");
	o.opnum = (uint16_t)luaL_checkinteger(L, -1);
	lua_getfield(L, 1, "ctx");
	o.ctx = (int)luaL_optinteger(L, -1, 0);
	if (o.ctx < 0 || o.ctx > 1)
		return luaL_argerror(L, 1, "ctx must be 0 or 1");
	lua_pop(L, 1);
	lua_pop(L, 1);
	lua_getfield(L, 1, "parser");
	o.parser = parser_index(L, lua_gettop(L));
	krb_flip_result r;
	violation_msg[0] = '\0';
	if (harness_krb_flips(&o, &r) < 0) {
		harness_krb_flips_free(&r);
		lua_pushnil(L);
		lua_pushstring(L, r.error);
		return 2;
	}
	lua_createtable(L, 0, 12);
	lua_createtable(L, (int)r.nbits, 0);
	for (long i = 0; i < r.nbits; i++) {
		if (r.codes[i])
			lua_pushstring(L, r.codes[i]);
		else
			lua_pushboolean(L, 0);
		lua_rawseti(L, -2, i + 1);
	}
	lua_setfield(L, -2, "codes");
	lua_pushlstring(L, (const char *)r.resp, r.resp_len);
	lua_setfield(L, -2, "resp");
	lua_pushinteger(L, r.auth_type);
	lua_setfield(L, -2, "auth_type");
	lua_pushboolean(L, r.header_sign);
	lua_setfield(L, -2, "header_sign");
	lua_pushinteger(L, (lua_Integer)r.sig_len);
	lua_setfield(L, -2, "sig_len");
	lua_pushboolean(L, r.request_ok);
	lua_setfield(L, -2, "request_ok");
	lua_pushinteger(L, r.flip_parses);
	lua_setfield(L, -2, "flip_parses");
	if (r.control_code)
		lua_pushstring(L, r.control_code);
	else
		lua_pushboolean(L, 0);
	lua_setfield(L, -2, "control");
	lua_pushboolean(L, r.control_parsed);
	lua_setfield(L, -2, "control_parsed");
	if (r.parse_code) {
		lua_pushstring(L, r.parse_code);
		lua_setfield(L, -2, "parse_code");
	}
	if (r.replay_code)
		lua_pushstring(L, r.replay_code);
	else
		lua_pushboolean(L, 0);
	lua_setfield(L, -2, "replay");
	if (violation_msg[0]) {
		lua_pushstring(L, violation_msg);
		lua_setfield(L, -2, "violation");
	}
	harness_krb_flips_free(&r);
	return 1;
}

EXPORT int luaopen_termsrv_fuzzkit(lua_State *L);
EXPORT int luaopen_termsrv_fuzzkit(lua_State *L)
{
	static const luaL_Reg f[] = {
		{"engine", k_engine}, {"client", k_client}, {"parse", k_parse},
		{"krb_flips", k_krb_flips}, {NULL, NULL},
	};
	/* Lua dlclose()s C modules when the state closes: keep this one mapped,
	 * so that a leak LeakSanitizer reports at exit has readable frames */
	static void *self;
	Dl_info info;
	if (!self && dladdr((void *)luaopen_termsrv_fuzzkit, &info) && info.dli_fname)
		self = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
	harness_violation_hook = on_violation;
	luaL_newlib(L, f);
	lua_createtable(L, HP_COUNT, 0);
	for (int i = 0; i < HP_COUNT; i++) {
		lua_pushstring(L, harness_parser_names[i]);
		lua_rawseti(L, -2, i + 1);
	}
	lua_setfield(L, -2, "parsers");
	return 1;
}
