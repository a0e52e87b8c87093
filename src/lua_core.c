/*
 * termsrv.core: the Lua binding of the C core. It exposes the primitives
 * (list, per-session information, actions) on a connection userdata; the
 * records, re-checks and policies are built on top in Lua (lua/termsrv).
 *
 * Run-time failures return nil plus an error object whose metatable is the
 * one termsrv.error defines; misuse (wrong argument types, a closed handle)
 * raises.
 */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "errors.h"
#include "krb5sec.h"
#include "ntlmssp.h"
#include "rpcpipe.h"
#include "sandbox.h"
#include "tsts.h"

#define CONN_MT "termsrv.Conn"
#define EXPORT __attribute__((visibility("default")))

/* FILETIME of 1970-01-01 */
#define EPOCH_FT 116444736000000000ULL

typedef struct lconn {
	ts_conn *c;
	pid_t pid;          /* the process that owns the SMB connection */
	char host[256];
} lconn;

/* upvalue 1 of every function: the error metatable */
static void push_error(lua_State *L, const ts_err *e, const char *host)
{
	ts_err_view v;
	ts_err_resolve(e, &v);
	lua_createtable(L, 0, 8);
	lua_pushstring(L, v.code);
	lua_setfield(L, -2, "code");
	if (e->what[0] && v.message[0])
		lua_pushfstring(L, "%s: %s", e->what, v.message);
	else
		lua_pushstring(L, e->what[0] ? e->what : v.message[0] ? v.message : v.code);
	lua_setfield(L, -2, "message");
	if (host) {
		lua_pushstring(L, host);
		lua_setfield(L, -2, "host");
	}
	if (e->kind != TS_K_NONE) {
		lua_pushinteger(L, (lua_Integer)e->status);
		lua_setfield(L, -2, "status");
		lua_pushstring(L, ts_kind_name(e->kind));
		lua_setfield(L, -2, "status_kind");
	}
	if (v.name[0]) {
		lua_pushstring(L, v.name);
		lua_setfield(L, -2, "status_name");
	}
	if (v.hint[0]) {
		lua_pushstring(L, v.hint);
		lua_setfield(L, -2, "hint");
	}
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_setmetatable(L, -2);
}

static int fail(lua_State *L, const ts_err *e, const char *host)
{
	lua_pushnil(L);
	push_error(L, e, host);
	return 2;
}

static lconn *check_conn(lua_State *L)
{
	lconn *lc = luaL_checkudata(L, 1, CONN_MT);
	if (!lc->c)
		luaL_argerror(L, 1, "connection is closed");
	if (lc->pid != getpid())
		luaL_argerror(L, 1, "connection belongs to the parent process (connect again in a worker)");
	return lc;
}

static void set_time(lua_State *L, const char *k, uint64_t ft)
{
	/* 0 (and anything before 1970) is how Windows says "never" */
	if (ft <= EPOCH_FT)
		return;
	lua_pushinteger(L, (lua_Integer)((ft - EPOCH_FT) / 10000000ULL));
	lua_setfield(L, -2, k);
}

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

static void push_session(lua_State *L, const ts_session *s)
{
	lua_createtable(L, 0, 14);
	set_int(L, "id", s->id);
	set_int(L, "state_code", s->state);
	set_str(L, "name", s->name);
	if (s->has_user) {
		set_str(L, "user", s->user);
		set_str(L, "domain", s->domain);
	}
	if (s->has_times) {
		set_time(L, "connect_time", s->connect_time);
		set_time(L, "disconnect_time", s->disconnect_time);
		set_time(L, "logon_time", s->logon_time);
		set_time(L, "last_input_time", s->last_input_time);
		/* a last input that is not a date on the server clock (Windows
		 * 11's LSM sends a small, relative value): not a time at all */
		if (s->last_input_time && s->last_input_time <= EPOCH_FT) {
			lua_pushboolean(L, 1);
			lua_setfield(L, -2, "last_input_not_absolute");
		}
	}
	set_time(L, "server_time", s->current_time);
	if (s->has_flags && s->flags >= 0) {
		lua_pushboolean(L, s->flags == 0);
		lua_setfield(L, -2, "locked");
	}
}

/* ---- options ------------------------------------------------------------- */

static const char *opt_str(lua_State *L, int t, const char *k)
{
	lua_getfield(L, t, k);
	const char *s = NULL;
	if (!lua_isnil(L, -1)) {
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "connect: option '%s' must be a string", k);
		s = lua_tostring(L, -1);
	}
	lua_pop(L, 1); /* the string stays alive in the options table */
	return s;
}

/* An integer option in lo..hi (a float only when it is exactly an integer:
 * 445.5 or NaN must not quietly become some other port or size). */
static lua_Integer opt_int(lua_State *L, int t, const char *k, lua_Integer dflt, lua_Integer lo,
			   lua_Integer hi)
{
	lua_getfield(L, t, k);
	lua_Integer v = dflt;
	if (!lua_isnil(L, -1)) {
		int isint = 0;
		if (lua_type(L, -1) != LUA_TNUMBER)
			luaL_error(L, "connect: option '%s' must be a number", k);
		v = lua_tointegerx(L, -1, &isint);
		if (!isint || v < lo || v > hi)
			luaL_error(L, "connect: option '%s' must be an integer %d..%d", k, (int)lo, (int)hi);
	}
	lua_pop(L, 1);
	return v;
}

/* A timeout in seconds, as milliseconds: finite, at least 1 ms and at most
 * a day. NaN, infinities, negatives and zero raise instead of turning into
 * the default (or into undefined behaviour when converted to int). */
#define MAX_TIMEOUT_S 86400.0
static int opt_timeout_ms(lua_State *L, int t, const char *k, int dflt_ms)
{
	lua_getfield(L, t, k);
	int ms = dflt_ms;
	if (!lua_isnil(L, -1)) {
		if (lua_type(L, -1) != LUA_TNUMBER)
			luaL_error(L, "connect: option '%s' must be a number", k);
		double v = (double)lua_tonumber(L, -1);
		/* written so that NaN fails the test */
		if (!(v >= 0.001 && v <= MAX_TIMEOUT_S))
			luaL_error(L, "connect: option '%s' must be a number of seconds from 0.001 to %d, got %s",
				   k, (int)MAX_TIMEOUT_S, v != v ? "NaN" : luaL_tolstring(L, -1, NULL));
		ms = (int)(v * 1000.0 + 0.5);
	}
	lua_pop(L, 1);
	return ms;
}

/* The kerberos = {...} table at kidx (nothing for true): its strings stay
 * alive while the table is on the stack. *smb: whether the SMB logon is
 * Kerberos too (kerberos.smb, default true). */
static void read_krb(lua_State *L, int kidx, krb_opts *k, int *smb)
{
	if (!lua_istable(L, kidx))
		return;
	k->ccache = opt_str(L, kidx, "ccache");
	k->keytab = opt_str(L, kidx, "keytab");
	k->principal = opt_str(L, kidx, "principal");
	k->spn = opt_str(L, kidx, "spn");
	const char *at = opt_str(L, kidx, "auth_type");
	if (at && strcmp(at, "krb5") != 0 && strcmp(at, "spnego") != 0)
		luaL_error(L, "connect: kerberos.auth_type must be \"spnego\" or \"krb5\"");
	k->raw = at && strcmp(at, "krb5") == 0;
	lua_getfield(L, kidx, "smb");
	*smb = lua_isnil(L, -1) || lua_toboolean(L, -1);
	lua_pop(L, 1);
	if (k->keytab && !k->principal)
		luaL_error(L, "connect: kerberos.keytab needs kerberos.principal");
}

/* core.connect{host=, port=, user=, domain=, password= | nthash=,
 *              kerberos = true | {ccache=, keytab=, principal=, spn=,
 *                                 auth_type = "spnego"|"krb5", smb = true},
 *              timeout=, connect_timeout=,
 *              rpc_auth = "kerberos"|"privacy"|"ntlm"|"none", max_frag=}
 * (termsrv.connect validates the types; this checks what C relies on) */
static int l_connect(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	ts_opts o;
	memset(&o, 0, sizeof o);
	o.transport = &smb_transport;
	o.smb.host = opt_str(L, 1, "host");
	if (!o.smb.host || !o.smb.host[0])
		return luaL_error(L, "connect: 'host' is required");
	o.smb.port = (int)opt_int(L, 1, "port", 445, 1, 65535);
	o.smb.user = opt_str(L, 1, "user");
	o.smb.domain = opt_str(L, 1, "domain");
	const char *password = opt_str(L, 1, "password");
	const char *nthash = opt_str(L, 1, "nthash");
	/* kerberos: true, or a table of Kerberos options (kept on the stack
	 * while its strings are used) */
	lua_getfield(L, 1, "kerberos");
	int kidx = lua_gettop(L);
	int krb = lua_toboolean(L, kidx);
	int krb_smb = krb;
	read_krb(L, kidx, &o.krb, &krb_smb);
	o.krb.host = o.smb.host;
	o.smb.kerberos = krb_smb;
	if (password && nthash)
		return luaL_error(L, "connect: give 'password' or 'nthash', not both");
	o.smb.secret = nthash ? nthash : password;
	/* libsmbclient hands credentials over in 256-byte buffers: refuse what
	 * it would cut, rather than fail later as a confusing logon failure */
	const char *const longest[] = {o.smb.user, o.smb.domain, o.smb.secret};
	for (size_t i = 0; i < sizeof longest / sizeof longest[0]; i++)
		if (longest[i] && strlen(longest[i]) > 255)
			return luaL_error(L, "connect: user, domain and password are limited to 255 bytes");
	o.smb.secret_is_nthash = nthash != NULL;
	o.smb.timeout_ms = opt_timeout_ms(L, 1, "timeout", 20000);
	o.smb.connect_timeout_ms = opt_timeout_ms(L, 1, "connect_timeout", 5000);
	const char *auth = opt_str(L, 1, "rpc_auth");
	if (!auth)
		auth = krb ? "kerberos" : "privacy";
	if (strcmp(auth, "privacy") == 0 || strcmp(auth, "ntlm") == 0)
		o.rpc_auth = TS_RPC_NTLM;
	else if (strcmp(auth, "kerberos") == 0)
		o.rpc_auth = TS_RPC_KERBEROS;
	else if (strcmp(auth, "none") == 0)
		o.rpc_auth = TS_RPC_NONE;
	else
		return luaL_error(L, "connect: rpc_auth must be \"kerberos\", \"privacy\" (NTLM) or "
				     "\"none\"");
	/* NTLM only when asked for: the SMB logon falls back to it after
	 * Kerberos only when the RPC binds use NTLM anyway */
	o.smb.ntlm_fallback = o.rpc_auth == TS_RPC_NTLM;
	if (o.rpc_auth == TS_RPC_NTLM && !o.smb.secret)
		return luaL_error(L, "connect: RPC packet privacy needs 'password' or 'nthash' "
				     "(or set rpc_auth=\"none\" with kerberos=true)");
	if (o.rpc_auth == TS_RPC_KERBEROS && nthash)
		return luaL_error(L, "connect: Kerberos takes a password, keytab or ticket, not an NT hash");
	/* a password is the Kerberos one when the SMB logon is Kerberos too
	 * (and nothing else is given); with smb = false it is NTLM's, for SMB */
	if (o.rpc_auth == TS_RPC_KERBEROS && krb_smb && password && !o.krb.keytab && !o.krb.ccache)
		o.krb.password = password;
	if (o.krb.password && !o.krb.principal)
		o.krb.principal = o.smb.user;
	o.max_frag = (uint16_t)opt_int(L, 1, "max_frag", RPC_DEFAULT_FRAG, RPC_MIN_FRAG, 65535);

	/* userdata and metatable first, so __gc always sees a valid struct */
	lconn *lc = lua_newuserdatauv(L, sizeof *lc, 0);
	memset(lc, 0, sizeof *lc);
	lc->pid = getpid();
	luaL_setmetatable(L, CONN_MT);
	(void)snprintf(lc->host, sizeof lc->host, "%s", o.smb.host);
	ts_err e = {0};
	lc->c = ts_open(&o, &e);
	if (!lc->c)
		return fail(L, &e, lc->host);
	return 1;
}

/* core.kerberos_check{host=, user=, password=, kerberos = true | {...},
 *                     services = {"cifs", "host"}}
 *   -> {principal=, lifetime=, tickets = {{spn=, ok=true} | {spn=, err=}, ...}}
 *    | nil, err (no credentials)
 * The doctor's Kerberos steps, without the host: the credentials as connect
 * gets them, then one service ticket per service ("host" takes
 * kerberos.spn when given), each proved by a first gss_init_sec_context. */
static int l_kerberos_check(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	krb_opts k;
	memset(&k, 0, sizeof k);
	const char *host = opt_str(L, 1, "host");
	if (!host || !host[0])
		return luaL_error(L, "kerberos_check: 'host' is required");
	const char *user = opt_str(L, 1, "user");
	const char *password = opt_str(L, 1, "password");
	lua_getfield(L, 1, "kerberos");
	int kidx = lua_gettop(L), smb = 1;
	read_krb(L, kidx, &k, &smb);
	if (password && !k.keytab && !k.ccache && smb)
		k.password = password;
	if (k.password && !k.principal)
		k.principal = user;
	/* the credentials do not depend on the host's name: the host step
	 * says what is wrong with an address */
	const char *spn = k.spn;
	char placeholder[300];
	(void)snprintf(placeholder, sizeof placeholder, "host/%s", host);
	k.spn = placeholder;
	k.host = host;
	ts_err e = {0};
	krb_cred *c = krb_cred_new(&k, &e);
	if (!c)
		return fail(L, &e, host);
	char princ[520];
	long life = 0;
	if (krb_cred_principal(c, princ, sizeof princ, &life, &e) < 0) {
		krb_cred_free(c);
		return fail(L, &e, host);
	}
	lua_createtable(L, 0, 3);
	set_str(L, "principal", princ);
	set_int(L, "lifetime", life);
	lua_getfield(L, 1, "services");
	int sidx = lua_gettop(L);
	lua_Integer n = lua_istable(L, sidx) ? luaL_len(L, sidx) : 0;
	lua_createtable(L, (int)n, 0);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_geti(L, sidx, i);
		const char *svc = lua_tostring(L, -1);
		if (!svc) {
			krb_cred_free(c);
			return luaL_error(L, "kerberos_check: services must be strings");
		}
		const char *want = strcmp(svc, "host") == 0 ? spn : NULL;
		char name[300];
		ts_err se = {0};
		int rc = krb_service_ticket(c, svc, host, want, name, sizeof name, &se);
		lua_createtable(L, 0, 3);
		set_str(L, "service", svc);
		set_str(L, "spn", name);
		if (rc == 0) {
			lua_pushboolean(L, 1);
			lua_setfield(L, -2, "ok");
		} else {
			push_error(L, &se, host);
			lua_setfield(L, -2, "err");
		}
		lua_rawseti(L, -3, i);
		lua_pop(L, 1); /* the service name */
	}
	lua_setfield(L, -3, "tickets");
	lua_pop(L, 1); /* services */
	krb_cred_free(c);
	return 1;
}

static int l_close(lua_State *L)
{
	lconn *lc = luaL_checkudata(L, 1, CONN_MT);
	if (lc->c) {
		/* A forked fleet worker holds a copy of its parent's handles: closing
		 * one there would log the parent's SMB session off on the socket
		 * both share. The copy is dropped; the worker's exit frees it. */
		if (getpid() == lc->pid)
			ts_close(lc->c);
		lc->c = NULL;
	}
	return 0;
}

static int l_tostring(lua_State *L)
{
	lconn *lc = luaL_checkudata(L, 1, CONN_MT);
	lua_pushfstring(L, "termsrv.Conn(%s%s)", lc->host, lc->c ? "" : ", closed");
	return 1;
}

static const char *const list_methods[] = {"auto", "all_sessions", "enum", "legacy", NULL};
static const char *const info_sources[] = {"auto", "legacy", "lsm_ex", "lsm", NULL};

/* conn:list([method]) -> array of {id, name, state_code, user?, domain?}, method */
static int l_list(lua_State *L)
{
	lconn *lc = check_conn(L);
	int prefer = luaL_checkoption(L, 2, "auto", list_methods);
	ts_session_list l = {0};
	ts_err e = {0};
	int method = 0;
	if (ts_list_sessions(lc->c, prefer, &l, &method, &e) < 0) {
		ts_session_list_free(&l);
		return fail(L, &e, lc->host);
	}
	lua_createtable(L, (int)l.n, 0);
	for (size_t i = 0; i < l.n; i++) {
		push_session(L, &l.v[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	ts_session_list_free(&l);
	lua_pushstring(L, list_methods[method]);
	return 2;
}

/* Session ids, pids and the other 32-bit arguments: an integer (a float
 * only if it is exactly one: luaL_checkinteger raises for 1.5, NaN, 2^64)
 * in 0..2^32-1. A larger number must not wrap onto another session
 * (4294967298 is not session 2). */
static uint32_t check_u32(lua_State *L, int i, const char *what)
{
	lua_Integer v = luaL_checkinteger(L, i);
	if (v < 0 || v > 0xFFFFFFFF)
		luaL_argerror(L, i, lua_pushfstring(L, "%s out of range 0..4294967295", what));
	return (uint32_t)v;
}

static uint32_t check_id(lua_State *L, int i)
{
	return check_u32(L, i, "id");
}

/* conn:info(id [, source]) -> table with times (and server_time), source */
static int l_info(lua_State *L)
{
	lconn *lc = check_conn(L);
	uint32_t id = check_id(L, 2);
	int prefer = luaL_checkoption(L, 3, "auto", info_sources);
	ts_session s;
	ts_err e = {0};
	int source = 0;
	if (ts_session_info(lc->c, id, prefer, &s, &source, &e) < 0)
		return fail(L, &e, lc->host);
	push_session(L, &s);
	set_str(L, "source", info_sources[source]);
	return 1;
}

static int l_server_time(lua_State *L)
{
	lconn *lc = check_conn(L);
	uint32_t id = lua_isnoneornil(L, 2) ? 0 : check_id(L, 2);
	uint64_t now = 0;
	ts_err e = {0};
	if (ts_server_time(lc->c, id, &now, &e) < 0)
		return fail(L, &e, lc->host);
	if (now <= EPOCH_FT)
		lua_pushnil(L);
	else
		lua_pushinteger(L, (lua_Integer)((now - EPOCH_FT) / 10000000ULL));
	return 1;
}

/* conn:create_data(id) -> {enabled=, max_instance_count=} | nil, err:
 * the session's WINSTATIONCREATE (legacy class WinStationCreateData). */
static int l_create_data(lua_State *L)
{
	lconn *lc = check_conn(L);
	uint32_t id = check_id(L, 2);
	ts_create cd;
	ts_err e = {0};
	if (ts_create_data(lc->c, id, &cd, &e) < 0)
		return fail(L, &e, lc->host);
	lua_createtable(L, 0, 2);
	lua_pushboolean(L, cd.enabled);
	lua_setfield(L, -2, "enabled");
	set_int(L, "max_instance_count", cd.max_instances);
	return 1;
}

/* conn:drivers(id) -> {wd_name=, wd_dll=, wd_flag=, sd_class=, pd_name=,
 * pd_dll=, device=} | nil, err: the session's winstation and transport
 * drivers (legacy classes WinStationWd and WinStationPd). */
static int l_drivers(lua_State *L)
{
	lconn *lc = check_conn(L);
	uint32_t id = check_id(L, 2);
	ts_drivers d;
	ts_err e = {0};
	if (ts_session_drivers(lc->c, id, &d, &e) < 0)
		return fail(L, &e, lc->host);
	lua_createtable(L, 0, 7);
	set_str(L, "wd_name", d.wd_name);
	set_str(L, "wd_dll", d.wd_dll);
	set_int(L, "wd_flag", d.wd_flag);
	set_int(L, "sd_class", d.sd_class);
	set_str(L, "pd_name", d.pd_name);
	set_str(L, "pd_dll", d.pd_dll);
	set_str(L, "device", d.device);
	return 1;
}

/* conn:counters({id, ...}) -> {[id] = value or false (unknown)}, via | nil,
 * err: Terminal Services counters by TS_COUNTER id; via is "lsm" or "legacy". */
static int l_counters(lua_State *L)
{
	lconn *lc = check_conn(L);
	luaL_checktype(L, 2, LUA_TTABLE);
	lua_Integer n = luaL_len(L, 2);
	luaL_argcheck(L, n >= 1 && n <= TS_MAX_COUNTERS, 2, "1 to 64 counter ids expected");
	ts_counter v[TS_MAX_COUNTERS];
	for (lua_Integer i = 0; i < n; i++) {
		lua_rawgeti(L, 2, i + 1);
		v[i].id = check_u32(L, -1, "counter id");
		lua_pop(L, 1);
	}
	ts_err e = {0};
	int via = 0;
	if (ts_counters(lc->c, v, (size_t)n, &via, &e) < 0)
		return fail(L, &e, lc->host);
	lua_createtable(L, 0, (int)n);
	for (lua_Integer i = 0; i < n; i++) {
		if (v[i].known)
			lua_pushinteger(L, v[i].value);
		else
			lua_pushboolean(L, 0);
		lua_rawseti(L, -2, v[i].id);
	}
	lua_pushstring(L, via == 1 ? "lsm" : "legacy");
	return 2;
}

static int l_client(lua_State *L)
{
	lconn *lc = check_conn(L);
	uint32_t id = check_id(L, 2);
	ts_client cl;
	ts_err e = {0};
	if (ts_client_info(lc->c, id, &cl, &e) < 0)
		return fail(L, &e, lc->host);
	lua_createtable(L, 0, 3);
	if (cl.have_name && cl.name[0])
		set_str(L, "name", cl.name);
	if (cl.have_address && cl.address[0]) {
		set_str(L, "address", cl.address);
		set_int(L, "port", cl.port);
	}
	if (cl.have_tz) {
		lua_createtable(L, 0, 2);
		set_str(L, "name", cl.tz_name);
		set_int(L, "bias", cl.tz_bias);
		lua_setfield(L, -2, "time_zone");
	}
	return 1;
}

static int done(lua_State *L, lconn *lc, int rc, const ts_err *e)
{
	if (rc < 0)
		return fail(L, e, lc->host);
	lua_pushboolean(L, 1);
	return 1;
}

static int l_reset(lua_State *L)
{
	lconn *lc = check_conn(L);
	uint32_t id = check_id(L, 2);
	ts_err e = {0};
	return done(L, lc, ts_reset(lc->c, id, lua_toboolean(L, 3), &e), &e);
}

static int l_logoff(lua_State *L)
{
	lconn *lc = check_conn(L);
	uint32_t id = check_id(L, 2);
	ts_err e = {0};
	return done(L, lc, ts_logoff(lc->c, id, &e), &e);
}

static int l_disconnect(lua_State *L)
{
	lconn *lc = check_conn(L);
	uint32_t id = check_id(L, 2);
	ts_err e = {0};
	return done(L, lc, ts_disconnect(lc->c, id, &e), &e);
}

static int l_connect_session(lua_State *L)
{
	lconn *lc = check_conn(L);
	uint32_t src = check_id(L, 2), dst = check_id(L, 3);
	const char *pw = luaL_optstring(L, 4, "");
	ts_err e = {0};
	return done(L, lc, ts_connect_session(lc->c, src, dst, pw, &e), &e);
}

/* conn:message(id, title, text, style, timeout_s, wait) -> answer code */
static int l_message(lua_State *L)
{
	lconn *lc = check_conn(L);
	uint32_t id = check_id(L, 2);
	const char *title = luaL_checkstring(L, 3);
	const char *text = luaL_checkstring(L, 4);
	uint32_t style = lua_isnoneornil(L, 5) ? 0 : check_u32(L, 5, "style");
	/* seconds the box stays; 0 = until answered */
	uint32_t timeout = lua_isnoneornil(L, 6) ? 0 : check_u32(L, 6, "message timeout");
	int wait = lua_toboolean(L, 7);
	uint32_t answer = 0;
	ts_err e = {0};
	if (ts_message(lc->c, id, title, text, style, timeout, wait, &answer, &e) < 0)
		return fail(L, &e, lc->host);
	lua_pushinteger(L, answer);
	return 1;
}

static int l_processes(lua_State *L)
{
	lconn *lc = check_conn(L);
	ts_process_list l = {0};
	ts_err e = {0};
	if (ts_processes(lc->c, &l, &e) < 0) {
		ts_process_list_free(&l);
		return fail(L, &e, lc->host);
	}
	lua_createtable(L, (int)l.n, 0);
	for (size_t i = 0; i < l.n; i++) {
		const ts_process *p = &l.v[i];
		lua_createtable(L, 0, 12);
		set_int(L, "pid", p->pid);
		set_int(L, "ppid", p->ppid);
		set_int(L, "session", p->session_id);
		set_int(L, "threads", p->threads);
		set_int(L, "handles", p->handles);
		set_int(L, "priority", p->base_priority);
		set_int(L, "memory", p->working_set);
		set_int(L, "peak_memory", p->peak_working_set);
		set_int(L, "pagefile", p->pagefile);
		set_int(L, "virtual_size", p->virtual_size);
		set_time(L, "create_time", p->create_time);
		/* CPU times are durations in 100 ns units */
		lua_pushnumber(L, (lua_Number)(p->user_time + p->kernel_time) / 1e7);
		lua_setfield(L, -2, "cpu_seconds");
		if (p->has_image)
			set_str(L, "image", p->image);
		if (p->sid[0])
			set_str(L, "sid", p->sid);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	ts_process_list_free(&l);
	return 1;
}

static const char *const sid_uses[] = {NULL, "user", "group", "domain", "alias",
	"well_known_group", "deleted_account", "invalid", "unknown", "computer", "label"};

/* conn:lookup_sids{sid, ...} -> array (same order) of {name=, domain=,
 * kind=} or false for a SID the host did not name | nil, err */
static int l_lookup_sids(lua_State *L)
{
	lconn *lc = check_conn(L);
	luaL_checktype(L, 2, LUA_TTABLE);
	lua_Integer n = luaL_len(L, 2);
	luaL_argcheck(L, n >= 0 && n <= LSAT_MAX_SIDS, 2, "too many SIDs");
	const char **sids = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *sids, 0);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, 2, i);
		if (lua_type(L, -1) != LUA_TSTRING)
			return luaL_error(L, "lookup_sids: SID %d is not a string", (int)i);
		sids[i - 1] = lua_tostring(L, -1); /* kept alive by the argument table */
		lua_pop(L, 1);
	}
	lsat_names out = {0};
	ts_err e = {0};
	if (ts_lookup_sids(lc->c, sids, (size_t)n, &out, &e) < 0)
		return fail(L, &e, lc->host);
	lua_createtable(L, (int)n, 0);
	for (size_t i = 0; i < out.n; i++) {
		const lsat_name *nm = &out.v[i];
		if (!nm->mapped) {
			lua_pushboolean(L, 0);
		} else {
			lua_createtable(L, 0, 3);
			set_str(L, "name", nm->name);
			set_str(L, "domain", nm->domain);
			if (nm->use > 0 && nm->use <= 10)
				set_str(L, "kind", sid_uses[nm->use]);
		}
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lsat_names_free(&out);
	return 1;
}

static int l_kill(lua_State *L)
{
	lconn *lc = check_conn(L);
	uint32_t pid = check_id(L, 2);
	uint32_t code = lua_isnoneornil(L, 3) ? 0 : check_u32(L, 3, "exit code");
	ts_err e = {0};
	return done(L, lc, ts_kill(lc->c, pid, code, &e), &e);
}

static int l_shutdown(lua_State *L)
{
	lconn *lc = check_conn(L);
	lua_Integer flags = luaL_checkinteger(L, 2);
	luaL_argcheck(L, flags >= 0 && flags <= 0xFF, 2, "shutdown flags out of range");
	ts_err e = {0};
	return done(L, lc, ts_shutdown(lc->c, (uint32_t)flags, &e), &e);
}

static int l_stats(lua_State *L)
{
	lconn *lc = check_conn(L);
	const ts_stats *s = ts_get_stats(lc->c);
	lua_createtable(L, 0, 12);
	set_int(L, "tcp_connects", (lua_Integer)s->smb.tcp_connects);
	set_int(L, "smb_opens", (lua_Integer)s->smb.opens);
	set_int(L, "smb_writes", (lua_Integer)s->smb.writes);
	set_int(L, "smb_reads", (lua_Integer)s->smb.reads);
	set_int(L, "smb_closes", (lua_Integer)s->smb.closes);
	set_int(L, "rpc_binds", (lua_Integer)s->rpc.binds);
	set_int(L, "rpc_calls", (lua_Integer)s->rpc.calls);
	set_int(L, "frags_out", (lua_Integer)s->rpc.frags_out);
	set_int(L, "frags_in", (lua_Integer)s->rpc.frags_in);
	set_int(L, "bytes_out", (lua_Integer)s->rpc.bytes_out);
	set_int(L, "bytes_in", (lua_Integer)s->rpc.bytes_in);
	/* what libsmbclient sends after the logon: each open is an SMB CREATE,
	 * each write and read one SMB request and its answer */
	set_int(L, "smb_round_trips", (lua_Integer)(s->smb.opens + s->smb.writes + s->smb.reads));
	return 1;
}

static const char *const pipe_names[TS_NPIPES + 1] = {"lsm", "rcm", "legacy", "lsa", NULL};

/* conn:probe("lsm"|"rcm"|"legacy") -> true | nil, err: open and bind only */
static int l_probe(lua_State *L)
{
	lconn *lc = check_conn(L);
	int p = luaL_checkoption(L, 2, NULL, pipe_names);
	ts_err e = {0};
	return done(L, lc, ts_probe(lc->c, p, &e), &e);
}

static int l_pipes(lua_State *L)
{
	lconn *lc = check_conn(L);
	lua_createtable(L, 0, TS_NPIPES);
	for (int i = 0; i < TS_NPIPES; i++) {
		int p = ts_pipe_present(lc->c, i);
		if (p >= 0) {
			lua_pushboolean(L, p);
			lua_setfield(L, -2, pipe_names[i]);
		}
	}
	return 1;
}

/* core.strerror(status [, kind]) -> {code, name, message, hint, kind} | nil */
static int l_strerror(lua_State *L)
{
	lua_Integer st = luaL_checkinteger(L, 1);
	static const char *const kinds[] = {"auto", "ntstatus", "hresult", "win32", "fault",
					    "bind_nak", "bind_result", "errno", "kerberos", NULL};
	int k = luaL_checkoption(L, 2, "auto", kinds);
	const ts_status_info *si = NULL;
	uint32_t v = (uint32_t)st;
	if (k == 0) {
		/* the number's shape tells the space: 0xC... NTSTATUS, 0x8007... HRESULT,
		 * 0x1C... RPC fault; small numbers are Win32 */
		if ((v & 0xF0000000u) == 0xC0000000u || v == 0x8000001Au)
			k = TS_K_NTSTATUS;
		else if ((v & 0x80000000u))
			k = TS_K_HRESULT;
		else if ((v & 0xFF000000u) == 0x1C000000u)
			k = TS_K_FAULT;
		else
			k = TS_K_WIN32;
		si = ts_status_lookup(k, v);
		if (!si && k == TS_K_WIN32)
			si = ts_status_lookup(k = TS_K_FAULT, v);
	} else {
		si = ts_status_lookup(k, v);
	}
	if (!si) {
		lua_pushnil(L);
		return 1;
	}
	lua_createtable(L, 0, 6);
	set_str(L, "code", si->code);
	set_str(L, "name", si->name);
	set_str(L, "message", si->message);
	set_str(L, "hint", si->hint ? si->hint : ts_code_hint(si->code));
	set_str(L, "kind", ts_kind_name(si->kind));
	set_int(L, "status", si->value);
	return 1;
}

/* core.status_table() -> every row, for documentation and tests */
static int l_status_table(lua_State *L)
{
	size_t n;
	const ts_status_info *t = ts_status_table(&n);
	lua_createtable(L, (int)n, 0);
	for (size_t i = 0; i < n; i++) {
		lua_createtable(L, 0, 6);
		set_str(L, "kind", ts_kind_name(t[i].kind));
		set_int(L, "status", t[i].value);
		set_str(L, "name", t[i].name);
		set_str(L, "code", t[i].code);
		set_str(L, "message", t[i].message);
		set_str(L, "hint", t[i].hint ? t[i].hint : ts_code_hint(t[i].code));
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}

static const luaL_Reg conn_methods[] = {
	{"list", l_list},         {"info", l_info},
	{"server_time", l_server_time}, {"client", l_client},
	{"reset", l_reset},       {"logoff", l_logoff},
	{"disconnect", l_disconnect}, {"connect", l_connect_session},
	{"message", l_message},   {"processes", l_processes},
	{"kill", l_kill},         {"shutdown", l_shutdown},
	{"lookup_sids", l_lookup_sids},
	{"stats", l_stats},       {"pipes", l_pipes},
	{"probe", l_probe},       {"create_data", l_create_data},
	{"drivers", l_drivers},   {"counters", l_counters},
	{"close", l_close},       {NULL, NULL},
};

static const luaL_Reg funcs[] = {
	{"connect", l_connect},
	{"kerberos_check", l_kerberos_check},
	{"strerror", l_strerror},
	{"status_table", l_status_table},
	{NULL, NULL},
};

EXPORT int luaopen_termsrv_core(lua_State *L);
EXPORT int luaopen_termsrv_core(lua_State *L)
{
	/* Lua dlclose()s C modules when the state closes; keeping libsmbclient
	 * mapped keeps its process-global allocations reachable (leak checkers
	 * would report them otherwise) and makes a re-require safe. */
	static void *keep, *self;
	if (!keep)
		keep = dlopen("libsmbclient.so.0", RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
	/* the same for this module, so that a leak report at exit can still
	 * name our functions */
	Dl_info info;
	if (!self && dladdr((void *)luaopen_termsrv_core, &info) && info.dli_fname)
		self = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);

	lua_getglobal(L, "require");
	lua_pushstring(L, "termsrv.error");
	lua_call(L, 1, 1);
	lua_getfield(L, -1, "Error");
	lua_remove(L, -2);
	int emt = lua_gettop(L);

	luaL_newmetatable(L, CONN_MT);
	lua_pushvalue(L, emt);
	lua_pushcclosure(L, l_close, 1);
	lua_setfield(L, -2, "__gc");
	lua_pushvalue(L, emt);
	lua_pushcclosure(L, l_close, 1);
	lua_setfield(L, -2, "__close");
	lua_pushvalue(L, emt);
	lua_pushcclosure(L, l_tostring, 1);
	lua_setfield(L, -2, "__tostring");
	lua_createtable(L, 0, sizeof conn_methods / sizeof conn_methods[0]);
	lua_pushvalue(L, emt);
	luaL_setfuncs(L, conn_methods, 1);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);

	lua_createtable(L, 0, 4);
	lua_pushvalue(L, emt);
	luaL_setfuncs(L, funcs, 1);
	ts_sandbox_register(L);
	lua_pushstring(L, "0.1.0");
	lua_setfield(L, -2, "version");
	return 1;
}
