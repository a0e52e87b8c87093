/*
 * The drivers behind every fuzz target (see harness.h). Besides feeding the
 * core, they check what the core promises its callers, and abort (which
 * libFuzzer reports as a crash) when a promise is broken: a failure always
 * carries a code, a success never returns more than the response limit.
 */
#include "harness.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void (*harness_violation_hook)(const char *what);

static void violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void violation(const char *fmt, ...)
{
	char what[256];
	va_list ap;
	va_start(ap, fmt);
	(void)vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	if (harness_violation_hook) {
		harness_violation_hook(what);
		return;
	}
	fprintf(stderr, "harness: %s\n", what);
	abort();
}

const ntlm_fixed harness_ntlm = {
	{0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa},
	{0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55},
	0x01d9000000000000ULL,
};

int mem_stream_read(void *ud, uint8_t *p, size_t n, ts_err *e)
{
	mem_stream *s = ud;
	if (n > s->len - s->off)
		return ts_fail(e, TS_K_ERRNO, 110 /* ETIMEDOUT */, NULL, "read past the server's bytes");
	memcpy(p, s->p + s->off, n);
	s->off += n;
	return 0;
}

int mem_stream_write(void *ud, const uint8_t *p, size_t n, ts_err *e)
{
	(void)ud;
	(void)e;
	/* touch every byte, so that ASan sees a request built out of bounds */
	volatile uint8_t sink = 0;
	for (size_t i = 0; i < n; i++)
		sink ^= p[i];
	(void)sink;
	return 0;
}

/* The codes a script may branch on (README, "Error codes in use"). */
static const char *const codes[] = {
	"host_unreachable", "connection_refused", "timeout", "name_not_resolved", "logon_failure",
	"account_locked", "access_denied", "rdp_disabled", "lsm_unavailable", "bind_refused",
	"auth_level_refused", "auth_failed", "not_supported", "rpc_fault", "malformed_response",
	"bad_signature", "session_not_found", "session_changed", "process_not_found",
	"invalid_state", "invalid_parameter", "invalid_handle", "connection_lost", "server_error",
	"smb_error", "response_too_large", "not_verified",
};

static int documented(const char *code)
{
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
		if (strcmp(code, codes[i]) == 0)
			return 1;
	return 0;
}

/* Records the outcome of one step and checks the error contract. */
harness_step *harness_record(harness_result *r, const char *name, int rc, const ts_err *e)
{
	if (r->nsteps >= HARNESS_MAX_STEPS)
		abort(); /* a bug of the harness itself */
	harness_step *s = &r->step[r->nsteps++];
	memset(s, 0, sizeof *s);
	s->name = name;
	if (rc == 0)
		return s;
	ts_err_view v;
	ts_err_resolve(e, &v);
	if (!v.code || !documented(v.code))
		violation("%s failed with code %s, not one of the documented codes (kind %d status "
			  "0x%08x)", name, v.code ? v.code : "NULL", e->kind, (unsigned)e->status);
	if (!e->what[0] && !v.message[0])
		violation("%s failed without saying what failed", name);
	s->code = v.code;
	s->status = e->status;
	return s;
}

/* ---- engine ------------------------------------------------------------------ */

#define SMALL_STUB 24
#define LARGE_STUB 9000 /* above any fragment size: several request fragments */

void harness_engine(const uint8_t *data, size_t n, int sealed, int parse, harness_result *r)
{
	static const rpc_iface *const ifaces[RPC_MAX_CTX] = {&IF_TSENUM, &IF_TSSESSION,
							     &IF_RCMPUBLIC, &IF_LEGACY};
	memset(r, 0, sizeof *r);
	if (n < 1)
		return;
	uint8_t cfg = data[0];
	mem_stream s = {data + 1, n - 1, 0};
	rpc_io io = {&s, mem_stream_write, mem_stream_read};
	rpc_conn c;
	rpc_stats stats = {0};
	ntlm_ctx nt;
	rpc_sec sec;
	memset(&nt, 0, sizeof nt);
	rpc_init(&c, io, "fuzz", 0, &stats);
	if (sealed) {
		if (ntlm_init(&nt, "ops", "CORP", "FUZZ", "Ops-Passw0rd", NULL) != NTLM_OK)
			abort();
		ntlm_fix(&nt, &harness_ntlm);
		rpc_sec_ntlm(&sec, &nt);
		c.sec = &sec;
	}
	int nctx = (cfg & 3) + 1;
	size_t stub_len = (cfg & 4) ? LARGE_STUB : SMALL_STUB;
	uint8_t *stub = calloc(1, stub_len);
	if (!stub)
		abort();
	ts_err e = {0};
	int rc = rpc_bind(&c, ifaces, nctx, &e);
	harness_record(r, "bind", rc, &e);
	if (rc == 0) {
		int ctx = 0;
		while (ctx < nctx && !c.ctx_ok[ctx])
			ctx++;
		if (ctx == nctx || c.max_xmit < RPC_MIN_FRAG) {
			violation("rpc_bind succeeded without a usable context");
			ctx = 0;
		}
		wbuf out;
		wb_init(&out);
		for (uint16_t opnum = 0; r->nsteps < HARNESS_MAX_STEPS && !c.broken && s.off < s.len;
		     opnum++) {
			ts_err ce = {0};
			rc = rpc_call(&c, ctx, opnum, stub, stub_len, &out, &ce);
			harness_step *st = harness_record(r, "call", rc, &ce);
			if (rc == 0) {
				if (out.len > RPC_MAX_RESPONSE)
					violation("rpc_call returned %zu bytes", out.len);
				st->len = out.len;
				if (parse >= 0) {
					st->parsed = 1;
					r->parses++;
					(void)harness_parse(parse, out.p, out.len, &st->parse_code);
				}
			}
		}
		wb_free(&out);
	}
	free(stub);
	ntlm_wipe(&nt);
	r->consumed = s.off;
}

/* ---- parsers ----------------------------------------------------------------- */

const char *const harness_parser_names[HP_COUNT] = {
	"all_sessions", "enum_result", "info_ex", "info12", "query_info8",
	"legacy_enum", "processes", "client_data", "remote_address", "query_create",
	"query_wd", "query_pd", "counters", "legacy_counters",
};

int harness_parser_for(const char *pipe, int ctx, unsigned opnum)
{
	if (strcmp(pipe, "LSM_API_service") == 0) {
		if (ctx == 0 && opnum == 10)
			return HP_ALL_SESSIONS;
		if (ctx == 0 && opnum == 5)
			return HP_ENUM_RESULT;
		if (ctx == 1 && opnum == 17)
			return HP_INFO_EX;
		if (ctx == 1 && opnum == 12)
			return HP_INFO12;
		if (ctx == 1 && opnum == 11)
			return HP_COUNTERS;
	} else if (strcmp(pipe, "Ctx_WinStation_API_service") == 0) {
		if (opnum == 5)
			return HP_QUERY_INFO8;
		if (opnum == 3)
			return HP_LEGACY_ENUM;
		if (opnum == 43)
			return HP_PROCESSES;
		if (opnum == 45)
			return HP_LEGACY_COUNTERS;
	} else if (strcmp(pipe, "TermSrv_API_service") == 0) {
		if (opnum == 0)
			return HP_CLIENT_DATA;
		if (opnum == 4)
			return HP_REMOTE_ADDRESS;
	}
	return -1;
}

static int bounded(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

static void check_session(const ts_session *s)
{
	if (!bounded(s->name, sizeof s->name) || !bounded(s->user, sizeof s->user) ||
	    !bounded(s->domain, sizeof s->domain))
		violation("a session string is not terminated inside its field");
}

int harness_parse(int which, const uint8_t *p, size_t n, const char **code)
{
	ts_err e = {0};
	uint32_t status = 0, index = 0;
	int ok = 0, rc;
	ts_session_list l = {0};
	ts_process_list pl = {0};
	ts_session s;
	ts_client cl;
	memset(&s, 0, sizeof s);
	memset(&cl, 0, sizeof cl);
	/* an exact-size heap copy: ASan then sees any read past the end */
	uint8_t *copy = malloc(n ? n : 1);
	if (!copy)
		abort();
	if (n)
		memcpy(copy, p, n);
	switch (which) {
	case HP_ALL_SESSIONS: rc = tsts_parse_all_sessions(copy, n, &l, &status, &e); break;
	case HP_ENUM_RESULT: rc = tsts_parse_enum_result(copy, n, &l, &status, &e); break;
	case HP_INFO_EX: rc = tsts_parse_info_ex(copy, n, &s, &status, &e); break;
	case HP_INFO12: rc = tsts_parse_info12(copy, n, &s, &status, &e); break;
	case HP_QUERY_INFO8: rc = tsts_parse_query_info8(copy, n, &s, &status, &ok, &e); break;
	case HP_LEGACY_ENUM:
		rc = tsts_parse_legacy_enum(copy, n, &l, &index, &status, &ok, &e);
		break;
	case HP_PROCESSES: rc = tsts_parse_processes(copy, n, &pl, &status, &ok, &e); break;
	case HP_CLIENT_DATA: rc = tsts_parse_client_data(copy, n, &cl, &status, &e); break;
	case HP_QUERY_CREATE: {
		ts_create cd;
		rc = tsts_parse_query_create(copy, n, &cd, &status, &ok, &e);
		break;
	}
	case HP_QUERY_WD:
	case HP_QUERY_PD: {
		ts_drivers d;
		memset(&d, 0, sizeof d);
		uint32_t returned;
		rc = (which == HP_QUERY_WD ? tsts_parse_query_wd : tsts_parse_query_pd)(
			copy, n, &d, &status, &ok, &returned, &e);
		if (rc == 0 && (!bounded(d.wd_name, sizeof d.wd_name) || !bounded(d.wd_dll, sizeof d.wd_dll) ||
				!bounded(d.pd_name, sizeof d.pd_name) || !bounded(d.pd_dll, sizeof d.pd_dll) ||
				!bounded(d.device, sizeof d.device)))
			violation("a driver string is not terminated inside its field");
		break;
	}
	case HP_COUNTERS:
	case HP_LEGACY_COUNTERS: {
		/* the twelve counters termsrv asks for */
		ts_counter v[12];
		for (uint32_t i = 0; i < 12; i++)
			v[i].id = i + 1;
		rc = tsts_parse_counters(copy, n, which == HP_LEGACY_COUNTERS, v, 12, &status, &ok, &e);
		break;
	}
	default: rc = tsts_parse_remote_address(copy, n, &cl, &status, &e); break;
	}
	free(copy);
	*code = NULL;
	if (rc < 0) {
		ts_err_view v;
		ts_err_resolve(&e, &v);
		if (!v.code || !documented(v.code))
			violation("parser %s failed with code %s", harness_parser_names[which],
				  v.code ? v.code : "NULL");
		*code = v.code;
	} else {
		/* every string handed to Lua must be terminated inside its field */
		for (size_t i = 0; i < l.n; i++)
			check_session(&l.v[i]);
		check_session(&s);
		for (size_t i = 0; i < pl.n; i++)
			if (!bounded(pl.v[i].image, sizeof pl.v[i].image) ||
			    !bounded(pl.v[i].sid, sizeof pl.v[i].sid))
				violation("a process string is not terminated inside its field");
		if (!bounded(cl.name, sizeof cl.name) || !bounded(cl.address, sizeof cl.address))
			violation("a client string is not terminated inside its field");
	}
	ts_session_list_free(&l);
	ts_process_list_free(&pl);
	return rc;
}

/* ---- the whole client -------------------------------------------------------- */

void harness_script(ts_conn *c, harness_result *r)
{
	ts_err e;
	int rc, m, src;
	ts_session_list l = {0};
	ts_process_list pl = {0};
	ts_session s;
	ts_client cl;
	uint64_t now;
	uint32_t answer;

#define STEP(name, expr)                 \
	do {                             \
		memset(&e, 0, sizeof e); \
		rc = (expr);             \
		harness_record(r, name, rc, &e); \
	} while (0)

	/* listing: each method the core knows, then each source of details */
	STEP("list", ts_list_sessions(c, 0, &l, &m, &e));
	ts_session_list_free(&l);
	STEP("list_enum", ts_list_sessions(c, 2, &l, &m, &e));
	ts_session_list_free(&l);
	STEP("list_legacy", ts_list_sessions(c, 3, &l, &m, &e));
	ts_session_list_free(&l);
	STEP("info", ts_session_info(c, 2, 0, &s, &src, &e));
	STEP("info_lsm_ex", ts_session_info(c, 2, 2, &s, &src, &e));
	STEP("info_lsm", ts_session_info(c, 2, 3, &s, &src, &e));
	STEP("info_missing", ts_session_info(c, 4242, 0, &s, &src, &e));
	STEP("server_time", ts_server_time(c, 0, &now, &e));
	STEP("client", ts_client_info(c, 2, &cl, &e));
	STEP("processes", ts_processes(c, &pl, &e));
	ts_process_list_free(&pl);
	/* actions, on sessions and processes of the simulator's default host */
	STEP("message", ts_message(c, 2, "fuzz", "hello", 0, 1, 0, &answer, &e));
	STEP("disconnect", ts_disconnect(c, 6, &e));
	STEP("logoff", ts_logoff(c, 3, &e));
	STEP("reset", ts_reset(c, 4, 0, &e));
	STEP("connect", ts_connect_session(c, 7, 2, "not-the-password", &e));
	STEP("kill", ts_kill(c, 4242, 0, &e));
	STEP("shutdown", ts_shutdown(c, 0, &e));
#undef STEP
}

void harness_client(const uint8_t *data, size_t n, harness_result *r)
{
	memset(r, 0, sizeof *r);
	if (n < 1)
		return;
	mem_stream s = {data + 1, n - 1, 0};
	mem_transport mt = {&s, NULL};
	ts_connector memory = {mem_transport_connect, &mt};
	ts_opts o;
	memset(&o, 0, sizeof o);
	o.smb.host = "fuzz";
	o.smb.user = "ops";
	o.smb.domain = "CORP";
	o.smb.secret = "Ops-Passw0rd";
	o.rpc_auth = data[0] & 1;
	o.transport = &memory;
	o.ntlm_fixed = &harness_ntlm;
	ts_err e = {0};
	ts_conn *c = ts_open(&o, &e);
	harness_record(r, "open", c ? 0 : -1, &e);
	if (c) {
		harness_script(c, r);
		ts_close(c);
	}
	r->consumed = s.off;
}
