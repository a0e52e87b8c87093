/*
 * Test-only Lua module termsrv.testkit: exposes the C layers to the unit
 * specs. Each layer contributes one table of functions.
 */
#ifndef TERMSRV_TESTKIT_H
#define TERMSRV_TESTKIT_H

#include <lua.h>

/* Pushes the table of NTLMSSP test functions (src/testkit_ntlm.c). */
int testkit_ntlm(lua_State *L);

/* Pushes the table of DCE/RPC and MS-TSTS test functions (src/testkit_tsts.c). */
int testkit_tsts(lua_State *L);

/* Pushes the table of SPNEGO / KRB-ERROR DER functions (src/testkit_spnego.c). */
int testkit_spnego(lua_State *L);

/* Pushes the table of MS-LSAT test functions (src/testkit_lsat.c). */
int testkit_lsat(lua_State *L);
/* Pushes the table with the C heap in use (src/testkit_heap.c). */
int testkit_heap(lua_State *L);

/* The module entry point (src/testkit.c); the only symbol the .so exports. */
__attribute__((visibility("default"))) int luaopen_termsrv_testkit(lua_State *L);

#endif
