/*
 * The policy sandbox's limits (memory cap through the allocator, an
 * instruction budget and a deadline that a policy cannot catch) and its file
 * reader; see sandbox.c and lua/termsrv/sandbox.lua.
 */
#ifndef TERMSRV_SANDBOX_H
#define TERMSRV_SANDBOX_H

#include <lua.h>

/* adds the sandbox_* functions to the table at the top of L's stack */
void ts_sandbox_register(lua_State *L);

#endif
