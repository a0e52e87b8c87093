/*
 * Test hooks for the DCE/RPC and MS-TSTS layers: the response parsers on
 * byte strings, and the RPC engine over an in-memory transport that replays
 * scripted server PDUs and records what the client wrote.
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "dcerpc.h"
#include "testkit.h"
#include "tsts.h"

static void set_str(lua_State *L, const char *k, const char *v)
{
	lua_pushstring(L, v);
	lua_setfield(L, -2, k);
}

static void set_int(lua_State *L, const char *k, lua_Integer v)
{
	lua_pushinteger(L, v);
	lua_setfield(L, -2, k);
}

static int push_err(lua_State *L, const ts_err *e)
{
	ts_err_view v;
	ts_err_resolve(e, &v);
	lua_pushnil(L);
	lua_createtable(L, 0, 4);
	set_str(L, "code", v.code);
	set_str(L, "what", e->what);
	set_str(L, "message", v.message);
	set_int(L, "status", e->status);
	return 2;
}

static void push_sessions(lua_State *L, const ts_session_list *l)
{
	lua_createtable(L, (int)l->n, 0);
	for (size_t i = 0; i < l->n; i++) {
		const ts_session *s = &l->v[i];
		lua_createtable(L, 0, 12);
		set_int(L, "id", s->id);
		set_int(L, "state", s->state);
		set_str(L, "name", s->name);
		if (s->has_user) {
			set_str(L, "user", s->user);
			set_str(L, "domain", s->domain);
		}
		if (s->has_times) {
			set_int(L, "connect_time", (lua_Integer)s->connect_time);
			set_int(L, "disconnect_time", (lua_Integer)s->disconnect_time);
			set_int(L, "logon_time", (lua_Integer)s->logon_time);
			set_int(L, "last_input_time", (lua_Integer)s->last_input_time);
		}
		if (s->current_time)
			set_int(L, "current_time", (lua_Integer)s->current_time);
		if (s->has_flags)
			set_int(L, "flags", s->flags);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
}

/* parse(kind, bytes) -> result table, status[, ok] | nil, err */
static int t_parse(lua_State *L)
{
	static const char *const kinds[] = {"all_sessions", "enum_result", "info_ex", "info12",
		"query_info8", "legacy_enum", "processes", "client_data", "remote_address",
		"query_create", "query_wd", "query_pd", "counters", "legacy_counters", NULL};
	int k = luaL_checkoption(L, 1, NULL, kinds);
	size_t n;
	const uint8_t *p = (const uint8_t *)luaL_checklstring(L, 2, &n);
	ts_err e = {0};
	uint32_t status = 0, index = 0;
	int ok = 1, rc;
	ts_session_list l = {0};
	ts_session s;
	memset(&s, 0, sizeof s);
	ts_process_list pl = {0};
	ts_client cl;
	memset(&cl, 0, sizeof cl);
	if (k == 10 || k == 11) {
		ts_drivers d;
		memset(&d, 0, sizeof d);
		uint32_t returned = 0;
		if ((k == 10 ? tsts_parse_query_wd : tsts_parse_query_pd)(p, n, &d, &status, &ok,
									&returned, &e) < 0)
			return push_err(L, &e);
		lua_createtable(L, 0, 8);
		if (ok) {
			set_str(L, "wd_name", d.wd_name);
			set_str(L, "wd_dll", d.wd_dll);
			set_int(L, "wd_flag", d.wd_flag);
			set_int(L, "sd_class", d.sd_class);
			set_str(L, "pd_name", d.pd_name);
			set_str(L, "pd_dll", d.pd_dll);
			set_str(L, "device", d.device);
		}
		set_int(L, "returned", returned);
		lua_pushinteger(L, status);
		lua_pushboolean(L, ok);
		return 3;
	}
	if (k == 12 || k == 13) {
		/* parse("counters", bytes, {id, ...}) -> {[id] = value | false} */
		luaL_checktype(L, 3, LUA_TTABLE);
		lua_Integer cnt = luaL_len(L, 3);
		luaL_argcheck(L, cnt >= 0 && cnt <= TS_MAX_COUNTERS, 3, "at most 64 ids");
		ts_counter v[TS_MAX_COUNTERS];
		for (lua_Integer i = 0; i < cnt; i++) {
			lua_rawgeti(L, 3, i + 1);
			v[i].id = (uint32_t)luaL_checkinteger(L, -1);
			lua_pop(L, 1);
		}
		if (tsts_parse_counters(p, n, k == 13, v, (size_t)cnt, &status, &ok, &e) < 0)
			return push_err(L, &e);
		lua_createtable(L, 0, (int)cnt);
		if (ok)
			for (lua_Integer i = 0; i < cnt; i++) {
				if (v[i].known)
					lua_pushinteger(L, v[i].value);
				else
					lua_pushboolean(L, 0);
				lua_rawseti(L, -2, v[i].id);
			}
		lua_pushinteger(L, status);
		lua_pushboolean(L, ok);
		return 3;
	}
	if (k == 9) {
		ts_create cd;
		if (tsts_parse_query_create(p, n, &cd, &status, &ok, &e) < 0)
			return push_err(L, &e);
		lua_createtable(L, 0, 2);
		if (ok) {
			lua_pushboolean(L, cd.enabled);
			lua_setfield(L, -2, "enabled");
			set_int(L, "max_instance_count", cd.max_instances);
		}
		lua_pushinteger(L, status);
		lua_pushboolean(L, ok);
		return 3;
	}
	switch (k) {
	case 0: rc = tsts_parse_all_sessions(p, n, &l, &status, &e); break;
	case 1: rc = tsts_parse_enum_result(p, n, &l, &status, &e); break;
	case 2: rc = tsts_parse_info_ex(p, n, &s, &status, &e); break;
	case 3: rc = tsts_parse_info12(p, n, &s, &status, &e); break;
	case 4: rc = tsts_parse_query_info8(p, n, &s, &status, &ok, &e); break;
	case 5: rc = tsts_parse_legacy_enum(p, n, &l, &index, &status, &ok, &e); break;
	case 6: rc = tsts_parse_processes(p, n, &pl, &status, &ok, &e); break;
	case 7: rc = tsts_parse_client_data(p, n, &cl, &status, &e); break;
	default: rc = tsts_parse_remote_address(p, n, &cl, &status, &e); break;
	}
	if (rc < 0) {
		ts_session_list_free(&l);
		ts_process_list_free(&pl);
		return push_err(L, &e);
	}
	if (k == 0 || k == 1 || k == 5) {
		push_sessions(L, &l);
		if (k == 5)
			set_int(L, "index", index);
	} else if (k >= 2 && k <= 4) {
		ts_session_list one = {&s, 1, 1};
		push_sessions(L, &one);
		lua_rawgeti(L, -1, 1);
		lua_remove(L, -2);
	} else if (k == 6) {
		lua_createtable(L, (int)pl.n, 0);
		for (size_t i = 0; i < pl.n; i++) {
			const ts_process *q = &pl.v[i];
			lua_createtable(L, 0, 8);
			set_int(L, "pid", q->pid);
			set_int(L, "session", q->session_id);
			set_int(L, "threads", q->threads);
			set_int(L, "handles", q->handles);
			set_int(L, "working_set", q->working_set);
			if (q->has_image)
				set_str(L, "image", q->image);
			if (q->sid[0])
				set_str(L, "sid", q->sid);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
	} else {
		lua_createtable(L, 0, 3);
		if (cl.have_name)
			set_str(L, "name", cl.name);
		if (cl.have_address) {
			set_str(L, "address", cl.address);
			set_int(L, "port", cl.port);
		}
		if (cl.have_tz) {
			set_str(L, "tz_name", cl.tz_name);
			set_int(L, "tz_bias", cl.tz_bias);
		}
	}
	ts_session_list_free(&l);
	ts_process_list_free(&pl);
	lua_pushinteger(L, status);
	lua_pushboolean(L, ok);
	return 3;
}

static int t_sid(lua_State *L)
{
	size_t n;
	const uint8_t *p = (const uint8_t *)luaL_checklstring(L, 1, &n);
	char out[200];
	if (tsts_sid_string(p, n, out, sizeof out) < 0)
		lua_pushnil(L);
	else
		lua_pushstring(L, out);
	return 1;
}

/* ---- RPC over memory ------------------------------------------------------- */

typedef struct mem_io {
	const uint8_t *in;      /* concatenated server PDUs */
	size_t in_len, in_off;
	lua_State *L;
	int written;            /* index of the Lua table collecting writes */
	int nwritten;
} mem_io;

static int mem_write(void *ud, const uint8_t *p, size_t n, ts_err *e)
{
	(void)e;
	mem_io *m = ud;
	lua_pushlstring(m->L, (const char *)p, n);
	lua_rawseti(m->L, m->written, ++m->nwritten);
	return 0;
}

static int mem_read(void *ud, uint8_t *p, size_t n, ts_err *e)
{
	mem_io *m = ud;
	if (n > m->in_len - m->in_off)
		return ts_fail(e, TS_K_ERRNO, 110, NULL, "read past the scripted responses");
	memcpy(p, m->in + m->in_off, n);
	m->in_off += n;
	return 0;
}

/* rpc{responses = "bytes", ifaces = {"enum","session",...}, max_recv = n,
 *     calls = {{ctx=, opnum=, stub=}, ...}} -> result table: written = {pdus},
 *     bound, ctx_ok = {..}, max_xmit, results = {{stub=...} | {err=...}} */
static int t_rpc(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_getfield(L, 1, "responses");
	size_t in_len;
	const char *in = luaL_checklstring(L, -1, &in_len);
	lua_getfield(L, 1, "max_recv");
	uint16_t max_recv = (uint16_t)luaL_optinteger(L, -1, 0);
	lua_pop(L, 1);

	lua_newtable(L); /* result */
	int result = lua_gettop(L);
	lua_newtable(L);
	int written = lua_gettop(L);
	mem_io m = {(const uint8_t *)in, in_len, 0, L, written, 0};
	rpc_conn c;
	rpc_stats st = {0};
	rpc_io io = {&m, mem_write, mem_read};
	rpc_init(&c, io, "mem", max_recv, &st);

	const rpc_iface *ifs[RPC_MAX_CTX];
	int nif = 0;
	lua_getfield(L, 1, "ifaces");
	for (int i = 1; lua_istable(L, -1) && nif < RPC_MAX_CTX; i++) {
		lua_rawgeti(L, -1, i);
		const char *name = lua_tostring(L, -1);
		lua_pop(L, 1);
		if (!name)
			break;
		ifs[nif++] = strcmp(name, "session") == 0 ? &IF_TSSESSION
			     : strcmp(name, "rcm") == 0   ? &IF_RCMPUBLIC
			     : strcmp(name, "legacy") == 0 ? &IF_LEGACY
							   : &IF_TSENUM;
	}
	lua_pop(L, 1);
	if (nif == 0)
		ifs[nif++] = &IF_TSENUM;

	ts_err e = {0};
	int rc = rpc_bind(&c, ifs, nif, &e);
	lua_pushboolean(L, rc == 0);
	lua_setfield(L, result, "bound");
	if (rc < 0) {
		ts_err_view v;
		ts_err_resolve(&e, &v);
		lua_pushstring(L, v.code);
		lua_setfield(L, result, "bind_error");
		lua_pushinteger(L, e.status);
		lua_setfield(L, result, "bind_status");
	} else {
		lua_createtable(L, nif, 0);
		for (int i = 0; i < nif; i++) {
			lua_pushboolean(L, c.ctx_ok[i]);
			lua_rawseti(L, -2, i + 1);
		}
		lua_setfield(L, result, "ctx_ok");
		lua_pushinteger(L, c.max_xmit);
		lua_setfield(L, result, "max_xmit");
		lua_newtable(L);
		int results = lua_gettop(L);
		lua_getfield(L, 1, "calls");
		for (int i = 1; lua_istable(L, -1); i++) {
			lua_rawgeti(L, -1, i);
			if (!lua_istable(L, -1)) {
				lua_pop(L, 1);
				break;
			}
			lua_getfield(L, -1, "ctx");
			int ctx = (int)luaL_optinteger(L, -1, 0);
			lua_getfield(L, -2, "opnum");
			uint16_t opnum = (uint16_t)luaL_optinteger(L, -1, 0);
			lua_getfield(L, -3, "stub");
			size_t sl;
			const char *stub = luaL_optlstring(L, -1, "", &sl);
			wbuf out;
			wb_init(&out);
			ts_err ce = {0};
			lua_createtable(L, 0, 3);
			if (rpc_call(&c, ctx, opnum, (const uint8_t *)stub, sl, &out, &ce) == 0) {
				lua_pushlstring(L, (const char *)out.p, out.len);
				lua_setfield(L, -2, "stub");
			} else {
				ts_err_view v;
				ts_err_resolve(&ce, &v);
				set_str(L, "err", v.code);
				set_int(L, "status", ce.status);
				set_str(L, "what", ce.what);
			}
			wb_free(&out);
			lua_rawseti(L, results, i);
			lua_pop(L, 4); /* ctx, opnum, stub, call table */
		}
		lua_pop(L, 1); /* calls */
		lua_setfield(L, result, "results");
		lua_pushboolean(L, c.broken);
		lua_setfield(L, result, "broken");
	}
	lua_pushvalue(L, written);
	lua_setfield(L, result, "written");
	lua_pushvalue(L, result);
	return 1;
}

/* strerror-style lookup of the table, for the error-table spec */
static int t_lookup(lua_State *L)
{
	static const char *const kinds[] = {"none", "ntstatus", "hresult", "win32", "fault",
					    "bind_nak", "bind_result", "errno", NULL};
	int k = luaL_checkoption(L, 1, NULL, kinds);
	const ts_status_info *si = ts_status_lookup(k, (uint32_t)luaL_checkinteger(L, 2));
	if (!si)
		return 0;
	lua_pushstring(L, si->code);
	lua_pushstring(L, si->name);
	return 2;
}

int testkit_tsts(lua_State *L)
{
	static const luaL_Reg f[] = {
		{"parse", t_parse}, {"sid", t_sid}, {"rpc", t_rpc}, {"lookup", t_lookup}, {NULL, NULL},
	};
	luaL_newlib(L, f);
	return 1;
}
