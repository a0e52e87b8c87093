/*
 * termsrv.testkit.heap: the C heap in use (glibc mallinfo2: bytes in
 * allocated chunks), for spec/leak_spec.lua, which needs a measure of what
 * the process keeps that is finer than RSS (freed chunks are reused before
 * the heap grows, so RSS shows a leak only once the holes are full).
 */
#include "testkit.h"

#include <malloc.h>

#include <lauxlib.h>

static int l_in_use(lua_State *L)
{
	struct mallinfo2 m = mallinfo2();
	lua_pushinteger(L, (lua_Integer)(m.uordblks + m.hblkhd));
	return 1;
}

int testkit_heap(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{"in_use", l_in_use},
		{NULL, NULL},
	};
	luaL_newlib(L, fns);
	return 1;
}
