/*
 * termsrv.testkit: one table per C layer, for the unit specs only. Never
 * installed; the library proper is termsrv.core.
 */
#include "testkit.h"

#include <lauxlib.h>

int luaopen_termsrv_testkit(lua_State *L)
{
	lua_newtable(L);
	testkit_ntlm(L);
	lua_setfield(L, -2, "ntlm");
	testkit_tsts(L);
	lua_setfield(L, -2, "tsts");
	testkit_spnego(L);
	lua_setfield(L, -2, "spnego");
	testkit_lsat(L);
	lua_setfield(L, -2, "lsat");
	testkit_heap(L);
	lua_setfield(L, -2, "heap");
	return 1;
}
