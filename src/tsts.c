/*
 * MS-TSTS calls. Wire layouts are from MS-TSTS (IDL in section 6, structures
 * in 2.2) with NDR 2.0 rules; the comments name the spec structure each
 * parser reads. Every response is untrusted: counts are checked against the
 * bytes present before anything is allocated.
 */
#include "tsts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ntlmssp.h"
#include "rpcpipe.h"

#define STATUS_NO_MORE_ENTRIES 0x8000001Au
#define FAULT_OP_RNG 0x1C010002u
#define FAULT_UNK_IF 0x1C010003u
#define E_NOTIMPL_HR 0x80004001u

#define HANDLE_LEN 20
#define WINSTATIONNAME_UNITS 33
#define WINSTATIONINFORMATION_SIZE 1216  /* see tsts_parse_query_info8 */
#define LOGONID_SIZE 76
#define WINSTATIONCREATE_SIZE 8          /* see tsts_parse_query_create */
#define TS_SYS_PROCESS_INFORMATION_SIZE 136
#define MAX_PROCESSES 0x8000             /* BOUNDED_ULONG range in the IDL */
#define MAX_SESSIONS 0x10000

/* ---- lists --------------------------------------------------------------- */

static ts_session *session_add(ts_session_list *l)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		ts_session *v = realloc(l->v, cap * sizeof *v);
		if (!v)
			return NULL;
		l->v = v;
		l->cap = cap;
	}
	ts_session *s = &l->v[l->n++];
	memset(s, 0, sizeof *s);
	s->flags = -1;
	return s;
}

void ts_session_list_free(ts_session_list *l)
{
	free(l->v);
	memset(l, 0, sizeof *l);
}

static ts_process *process_add(ts_process_list *l)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		ts_process *v = realloc(l->v, cap * sizeof *v);
		if (!v)
			return NULL;
		l->v = v;
		l->cap = cap;
	}
	ts_process *p = &l->v[l->n++];
	memset(p, 0, sizeof *p);
	return p;
}

void ts_process_list_free(ts_process_list *l)
{
	free(l->v);
	memset(l, 0, sizeof *l);
}

static int malformed(ts_err *e, const char *what)
{
	return ts_fail(e, TS_K_NONE, 0, "malformed_response", "%s: response does not parse", what);
}

static int oom(ts_err *e) { return ts_fail(e, TS_K_ERRNO, ENOMEM, NULL, "allocate result"); }

/* WINSTATIONNAME and other fixed WCHAR arrays */
static void fixed_name(rbuf *r, size_t units, char *out, size_t cap)
{
	const uint8_t *p = rb_take(r, units * 2);
	if (p)
		utf16_field(p, units, out, cap);
	else
		out[0] = '\0';
}

/* ---- TermSrvEnumeration --------------------------------------------------- */

/* RpcGetAllSessions (opnum 10) response: [in,out] pLevel, then
 * [out, size_is(,*pcEntries)] PEXECENVDATA* (referent id, conformance, the
 * EXECENVDATA array), [out] pcEntries, HRESULT. EXECENVDATA is { DWORD Level;
 * union switch_is(Level) } and the non-encapsulated union repeats the
 * discriminant. EXECENVDATA_LEVEL2 (2.2.2.6.1.2): ExecEnvId, State,
 * SessionName[33], AbsSessionId, HostName[33], UserName[33], DomainName[33],
 * FarmName[33]. */
int tsts_parse_all_sessions(const uint8_t *p, size_t n, ts_session_list *out, uint32_t *status,
			    ts_err *e)
{
	rbuf r;
	rb_init(&r, p, n);
	(void)rb_u32(&r); /* level the server used; each element repeats it */
	uint32_t ref = rb_u32(&r);
	uint32_t count = 0;
	if (ref) {
		count = rb_u32(&r);
		/* each element is at least 84 bytes: refuse absurd counts before looping */
		if (r.err || count > MAX_SESSIONS || (size_t)count * 84 > rb_left(&r))
			return malformed(e, "RpcGetAllSessions");
		for (uint32_t i = 0; i < count; i++) {
			rb_align(&r, 4);
			uint32_t level = rb_u32(&r);
			uint32_t arm = rb_u32(&r);
			if (r.err || level != arm || (level != 1 && level != 2))
				return malformed(e, "RpcGetAllSessions");
			ts_session *s = session_add(out);
			if (!s)
				return oom(e);
			int32_t execenv = (int32_t)rb_u32(&r);
			s->state = (int32_t)rb_u32(&r);
			fixed_name(&r, WINSTATIONNAME_UNITS, s->name, sizeof s->name);
			if (level == 1) {
				s->id = (uint32_t)execenv;
				continue;
			}
			rb_align(&r, 4);
			s->id = rb_u32(&r); /* AbsSessionId: the id every other call takes */
			char host[TS_NAME_MAX], farm[TS_NAME_MAX];
			fixed_name(&r, 33, host, sizeof host);
			fixed_name(&r, 33, s->user, sizeof s->user);
			fixed_name(&r, 33, s->domain, sizeof s->domain);
			fixed_name(&r, 33, farm, sizeof farm);
			s->has_user = 1;
		}
	}
	rb_align(&r, 4);
	uint32_t entries = rb_u32(&r);
	*status = rb_u32(&r);
	if (r.err || entries != count)
		return malformed(e, "RpcGetAllSessions");
	return 0;
}

/* RpcGetEnumResult (opnum 5) response: [out, size_is(,*pEntries)]
 * PSESSIONENUM* (referent, conformance, array of { DWORD Level; union }),
 * [out] pEntries, HRESULT. SESSIONENUM_LEVEL1: SessionId, State, Name[33];
 * LEVEL2 adds Source, bFullDesktop, SessionType GUID. */
int tsts_parse_enum_result(const uint8_t *p, size_t n, ts_session_list *out, uint32_t *status,
			   ts_err *e)
{
	rbuf r;
	rb_init(&r, p, n);
	uint32_t ref = rb_u32(&r);
	uint32_t count = 0;
	if (ref) {
		count = rb_u32(&r);
		if (r.err || count > MAX_SESSIONS || (size_t)count * 84 > rb_left(&r))
			return malformed(e, "RpcGetEnumResult");
		for (uint32_t i = 0; i < count; i++) {
			rb_align(&r, 4);
			uint32_t level = rb_u32(&r);
			uint32_t arm = rb_u32(&r);
			if (r.err || level != arm || level < 1 || level > 2)
				return malformed(e, "RpcGetEnumResult");
			ts_session *s = session_add(out);
			if (!s)
				return oom(e);
			s->id = rb_u32(&r);
			s->state = (int32_t)rb_u32(&r);
			fixed_name(&r, WINSTATIONNAME_UNITS, s->name, sizeof s->name);
			if (level == 2) {
				rb_align(&r, 4);
				rb_skip(&r, 4 + 4 + 16); /* Source, bFullDesktop, SessionType */
			}
		}
	}
	rb_align(&r, 4);
	uint32_t entries = rb_u32(&r);
	*status = rb_u32(&r);
	if (r.err || entries != count)
		return malformed(e, "RpcGetEnumResult");
	return 0;
}

/* ---- TermSrvSession ------------------------------------------------------- */

/* True when the stub ends with a failure HRESULT (stored in *status). */
static int fail_tail(const uint8_t *p, size_t n, uint32_t *status)
{
	if (n < 4 || !(ld32(p + n - 4) & 0x80000000u))
		return 0;
	*status = ld32(p + n - 4);
	return 1;
}

/* RpcGetSessionInformationEx (opnum 17), level 1: the LSM_SESSIONINFO_EX
 * union (discriminant 1) whose arm LSM_SESSIONINFO_EX_LEVEL1 starts 8-aligned:
 * SessionState, SessionFlags, SessionName[33], DomainName[18], UserName[21],
 * Connect/Disconnect/Logon/LastInput times, ProtocolDataSize, ProtocolData. */
int tsts_parse_info_ex(const uint8_t *p, size_t n, ts_session *s, uint32_t *status, ts_err *e)
{
	/* a failed call returns zeroed out-parameters: only the HRESULT counts */
	if (fail_tail(p, n, status))
		return 0;
	rbuf r;
	rb_init(&r, p, n);
	uint32_t level = rb_u32(&r);
	if (level != 1)
		return malformed(e, "RpcGetSessionInformationEx");
	rb_align(&r, 8);
	s->state = (int32_t)rb_u32(&r);
	s->flags = (int32_t)rb_u32(&r);
	s->has_flags = 1;
	fixed_name(&r, 33, s->name, sizeof s->name);
	fixed_name(&r, 18, s->domain, sizeof s->domain);
	fixed_name(&r, 21, s->user, sizeof s->user);
	s->has_user = 1;
	rb_align(&r, 8);
	s->connect_time = rb_u64(&r);
	s->disconnect_time = rb_u64(&r);
	s->logon_time = rb_u64(&r);
	s->last_input_time = rb_u64(&r);
	s->has_times = 1;
	uint32_t pdsize = rb_u32(&r);
	uint32_t ref = rb_u32(&r);
	if (ref) {
		uint32_t max = rb_u32(&r);
		if (max != pdsize)
			rb_fail(&r);
		rb_skip(&r, max);
	}
	rb_align(&r, 4);
	*status = rb_u32(&r);
	if (r.err)
		return malformed(e, "RpcGetSessionInformationEx");
	return 0;
}

/* RpcGetSessionInformation (opnum 12): LSMSESSIONINFORMATION { pszUserName,
 * pszDomain, pszTerminalName (unique string pointers), SessionState,
 * DesktopLocked, ConnectTime, DisconnectTime, LogonTime } with the strings
 * deferred after the struct, then the HRESULT. */
int tsts_parse_info12(const uint8_t *p, size_t n, ts_session *s, uint32_t *status, ts_err *e)
{
	if (fail_tail(p, n, status))
		return 0;
	rbuf r;
	rb_init(&r, p, n);
	uint32_t ref_user = rb_u32(&r), ref_dom = rb_u32(&r), ref_term = rb_u32(&r);
	s->state = (int32_t)rb_u32(&r);
	uint32_t locked = rb_u32(&r);
	s->flags = locked ? 0 : 1;
	s->has_flags = 1;
	rb_align(&r, 8);
	s->connect_time = rb_u64(&r);
	s->disconnect_time = rb_u64(&r);
	s->logon_time = rb_u64(&r);
	s->has_times = 1;
	if (ref_user)
		(void)rb_cvstring(&r, s->user, sizeof s->user);
	if (ref_dom)
		(void)rb_cvstring(&r, s->domain, sizeof s->domain);
	if (ref_term)
		(void)rb_cvstring(&r, s->name, sizeof s->name);
	s->has_user = 1;
	rb_align(&r, 4);
	*status = rb_u32(&r);
	if (r.err)
		return malformed(e, "RpcGetSessionInformation");
	return 0;
}

/* ---- Legacy --------------------------------------------------------------- */

/* A legacy response ends with the BOOLEAN the method returned. */
static int legacy_tail(rbuf *r, int *ok)
{
	uint8_t b = rb_u8(r);
	*ok = b != 0;
	return r->err ? -1 : 0;
}

/* The envelope of every RpcWinStationQueryInformation (opnum 5) answer:
 * pResult, the [in,out,unique] buffer (referent, conformance, bytes),
 * pReturnLength, the BOOLEAN. Sets *buf and *len to the buffer (NULL when the
 * referent is null) and *returned; -1 when the stub is malformed. */
static int query_reply(rbuf *r, uint32_t *status, const uint8_t **buf, uint32_t *len,
		       uint32_t *returned, int *ok)
{
	*status = rb_u32(r);
	uint32_t ref = rb_u32(r);
	*buf = NULL;
	*len = 0;
	if (ref) {
		*len = rb_u32(r);
		*buf = rb_take(r, *len);
	}
	rb_align(r, 4);
	*returned = rb_u32(r);
	return legacy_tail(r, ok);
}

/* RpcWinStationQueryInformation (opnum 5), class WinStationInformation (8).
 * Response: pResult, the [in,out,unique] buffer (referent, conformance,
 * bytes), pReturnLength, BOOLEAN. The buffer is a VARDATA_WIRE { USHORT Size;
 * USHORT Offset } followed, at Offset, by WINSTATIONINFORMATION (2.2.2.20),
 * a C structure with natural alignment:
 *   @0 ConnectState  @4 WinStationName[33]  @72 LogonId  @80 ConnectTime
 *   @88 DisconnectTime  @96 LastInputTime  @104 LogonTime
 *   @112 PROTOCOLSTATUS Status (2 x PROTOCOLCOUNTERS of 460 bytes,
 *        CACHE_STATISTICS of 84, AsyncSignal, AsyncSignalMask: 1012 bytes)
 *   @1124 Domain[18]  @1160 UserName[21]  @1208 CurrentTime;  size 1216. */
int tsts_parse_query_info8(const uint8_t *p, size_t n, ts_session *s, uint32_t *status, int *ok,
			   ts_err *e)
{
	rbuf r;
	rb_init(&r, p, n);
	const uint8_t *buf;
	uint32_t len, returned;
	if (query_reply(&r, status, &buf, &len, &returned, ok) < 0)
		return malformed(e, "RpcWinStationQueryInformation");
	if (!*ok)
		return 0;
	if (!buf || len < 4)
		return malformed(e, "RpcWinStationQueryInformation");
	uint16_t size = ld16(buf), off = ld16(buf + 2);
	if (size < WINSTATIONINFORMATION_SIZE || (size_t)off + WINSTATIONINFORMATION_SIZE > len)
		return malformed(e, "RpcWinStationQueryInformation");
	const uint8_t *w = buf + off;
	s->state = (int32_t)ld32(w);
	utf16_field(w + 4, WINSTATIONNAME_UNITS, s->name, sizeof s->name);
	s->id = ld32(w + 72);
	s->connect_time = ld64(w + 80);
	s->disconnect_time = ld64(w + 88);
	s->last_input_time = ld64(w + 96);
	s->logon_time = ld64(w + 104);
	utf16_field(w + 1124, 18, s->domain, sizeof s->domain);
	utf16_field(w + 1160, 21, s->user, sizeof s->user);
	s->current_time = ld64(w + 1208);
	s->has_user = 1;
	s->has_times = 1;
	return 0;
}

/* RpcWinStationQueryInformation (opnum 5), class WinStationCreateData (0).
 * MS-TSTS 3.7.4.1.6: "pWinStationInformation points to a WINSTATIONCREATE
 * structure, and WinStationInformationLength MUST be
 * sizeof(WINSTATIONCREATE)". WINSTATIONCREATE (MS-TSTS 6.5, winsta.h):
 *   typedef struct { ULONG fEnableWinStation : 1; ULONG MaxInstanceCount; }
 * a C structure: the bit field takes a whole ULONG, so
 *   @0 u32, bit 0 = fEnableWinStation (other bits unused)
 *   @4 u32 MaxInstanceCount;  size 8.
 * The response has the class-8 shape: pResult, the [in,out,unique] buffer
 * (referent, conformance, bytes), pReturnLength, BOOLEAN. The buffer is the
 * one we sent (zeros) with the server's bytes over it, so a TRUE answer
 * whose ReturnLength does not cover the structure did not say anything: it
 * is refused rather than read as "0 instances". */
int tsts_parse_query_create(const uint8_t *p, size_t n, ts_create *c, uint32_t *status, int *ok,
			    ts_err *e)
{
	rbuf r;
	rb_init(&r, p, n);
	const uint8_t *buf;
	uint32_t len, returned;
	if (query_reply(&r, status, &buf, &len, &returned, ok) < 0)
		return malformed(e, "RpcWinStationQueryInformation(WinStationCreateData)");
	if (!*ok)
		return 0;
	if (!buf || len < WINSTATIONCREATE_SIZE || returned < WINSTATIONCREATE_SIZE)
		return malformed(e, "RpcWinStationQueryInformation(WinStationCreateData)");
	c->enabled = (ld32(buf) & 1u) != 0;
	c->max_instances = ld32(buf + 4);
	return 0;
}

/* RpcWinStationEnumerate (opnum 3) response: pResult, pEntries, the
 * [in,out,unique] LOGONID byte buffer, pByteCount, pIndex, BOOLEAN. LOGONID
 * (2.2.2.13) is { ULONG SessionId; WINSTATIONNAME; WINSTATIONSTATECLASS
 * State } = 76 bytes with the state at +72. */
int tsts_parse_legacy_enum(const uint8_t *p, size_t n, ts_session_list *out, uint32_t *index,
			   uint32_t *status, int *ok, ts_err *e)
{
	rbuf r;
	rb_init(&r, p, n);
	*status = rb_u32(&r);
	uint32_t entries = rb_u32(&r);
	uint32_t ref = rb_u32(&r);
	const uint8_t *buf = NULL;
	uint32_t len = 0;
	if (ref) {
		len = rb_u32(&r);
		buf = rb_take(&r, len);
	}
	rb_align(&r, 4);
	(void)rb_u32(&r); /* ByteCount */
	*index = rb_u32(&r);
	if (legacy_tail(&r, ok) < 0)
		return malformed(e, "RpcWinStationEnumerate");
	if (!*ok || *status == STATUS_NO_MORE_ENTRIES)
		return 0;
	if (entries > MAX_SESSIONS || (size_t)entries * LOGONID_SIZE > len || (entries && !buf))
		return malformed(e, "RpcWinStationEnumerate");
	for (uint32_t i = 0; i < entries; i++) {
		const uint8_t *l = buf + (size_t)i * LOGONID_SIZE;
		ts_session *s = session_add(out);
		if (!s)
			return oom(e);
		s->id = ld32(l);
		utf16_field(l + 4, WINSTATIONNAME_UNITS, s->name, sizeof s->name);
		s->state = (int32_t)ld32(l + 72);
	}
	return 0;
}

int tsts_sid_string(const uint8_t *p, size_t n, char *out, size_t cap)
{
	/* revision, sub-authority count, 48-bit big-endian authority, then
	 * little-endian 32-bit sub-authorities */
	if (n < 8 || p[0] != 1 || p[1] > 15 || n < 8 + (size_t)p[1] * 4)
		return -1;
	uint64_t auth = 0;
	for (int i = 2; i < 8; i++)
		auth = auth << 8 | p[i];
	int k = snprintf(out, cap, "S-1-%llu", (unsigned long long)auth);
	for (int i = 0; i < p[1] && k > 0 && (size_t)k < cap; i++)
		k += snprintf(out + k, cap - (size_t)k, "-%u", ld32(p + 8 + 4 * i));
	return k > 0 && (size_t)k < cap ? 0 : -1;
}

/* RpcWinStationGetAllProcesses (opnum 43) response: pResult,
 * pNumberOfProcesses, then the PTS_ALL_PROCESSES_INFO array (referent,
 * conformance, N x { pTsProcessInfo, SizeOfSid, pSid }) followed by the
 * deferred pointees, element by element and depth first: the
 * TS_SYS_PROCESS_INFORMATION (8-aligned, 136 bytes in NDR20, where SIZE_T is
 * 4 bytes), its ImageName buffer (conformant varying WCHARs), then the SID
 * bytes. BOOLEAN last. */
int tsts_parse_processes(const uint8_t *p, size_t n, ts_process_list *out, uint32_t *status,
			 int *ok, ts_err *e)
{
	rbuf r;
	rb_init(&r, p, n);
	*status = rb_u32(&r);
	uint32_t count = rb_u32(&r);
	uint32_t ref = rb_u32(&r);
	*ok = 0;
	if (r.err)
		return malformed(e, "RpcWinStationGetAllProcesses");
	if (ref) {
		uint32_t max = rb_u32(&r);
		if (r.err || max != count || count > MAX_PROCESSES || (size_t)count * 12 > rb_left(&r))
			return malformed(e, "RpcWinStationGetAllProcesses");
		/* the fixed part, kept in place while the pointees are read */
		const uint8_t *fixed = rb_take(&r, (size_t)count * 12);
		if (!fixed)
			return malformed(e, "RpcWinStationGetAllProcesses");
		for (uint32_t i = 0; i < count; i++) {
			const uint8_t *f = fixed + (size_t)i * 12;
			uint32_t ref_info = ld32(f), sid_size = ld32(f + 4), ref_sid = ld32(f + 8);
			ts_process *pr = process_add(out);
			if (!pr)
				return oom(e);
			if (ref_info) {
				rb_align(&r, 8);
				const uint8_t *q = rb_take(&r, TS_SYS_PROCESS_INFORMATION_SIZE);
				if (!q)
					return malformed(e, "RpcWinStationGetAllProcesses");
				pr->threads = ld32(q + 4);
				pr->create_time = ld64(q + 32);
				pr->user_time = ld64(q + 40);
				pr->kernel_time = ld64(q + 48);
				uint16_t name_len = ld16(q + 56);
				uint32_t ref_name = ld32(q + 60);
				pr->base_priority = (int32_t)ld32(q + 64);
				pr->pid = ld32(q + 68);
				pr->ppid = ld32(q + 72);
				pr->handles = ld32(q + 76);
				pr->session_id = ld32(q + 80);
				pr->virtual_size = ld32(q + 92);
				pr->peak_working_set = ld32(q + 100);
				pr->working_set = ld32(q + 104);
				pr->pagefile = ld32(q + 124);
				pr->private_pages = ld32(q + 132);
				if (ref_name) {
					rb_align(&r, 4);
					uint32_t mx = rb_u32(&r), offset = rb_u32(&r), act = rb_u32(&r);
					if (r.err || offset > mx || act > mx - offset || act > 0x8000)
						return malformed(e, "RpcWinStationGetAllProcesses");
					const uint8_t *w = rb_take(&r, (size_t)act * 2);
					if (!w)
						return malformed(e, "RpcWinStationGetAllProcesses");
					/* Length is in bytes; some servers count the NUL in it */
					size_t units = name_len / 2 < act ? name_len / 2 : act;
					utf16_to_utf8(w, units, pr->image, sizeof pr->image);
					pr->has_image = 1;
				}
			}
			if (ref_sid) {
				rb_align(&r, 4);
				uint32_t mx = rb_u32(&r);
				if (r.err || mx != sid_size || mx > 68)
					return malformed(e, "RpcWinStationGetAllProcesses");
				const uint8_t *sid = rb_take(&r, mx);
				if (!sid || tsts_sid_string(sid, mx, pr->sid, sizeof pr->sid) < 0)
					return malformed(e, "RpcWinStationGetAllProcesses");
			}
		}
	}
	if (legacy_tail(&r, ok) < 0)
		return malformed(e, "RpcWinStationGetAllProcesses");
	return 0;
}

/* ---- RCMPublic ------------------------------------------------------------ */

/* WINSTATIONCLIENT (2.2.2.19) in its memory layout: ClientTimeZone follows
 * AudioDriverName[9] (at 2028), 4-aligned. */
#define CLIENT_TZ_OFFSET 2048

/* RpcGetClientData (opnum 0): [out, size_is(,*pOutBuffByteLen)] PBYTE*
 * (referent, conformance, bytes), pOutBuffByteLen, HRESULT. The bytes are a
 * WINSTATIONCLIENT (2.2.2.19): a ULONG of flag bits, then ClientName[21]. */
int tsts_parse_client_data(const uint8_t *p, size_t n, ts_client *c, uint32_t *status, ts_err *e)
{
	rbuf r;
	rb_init(&r, p, n);
	uint32_t ref = rb_u32(&r);
	const uint8_t *buf = NULL;
	uint32_t len = 0;
	if (ref) {
		len = rb_u32(&r);
		buf = rb_take(&r, len);
	}
	rb_align(&r, 4);
	(void)rb_u32(&r);
	*status = rb_u32(&r);
	if (r.err)
		return malformed(e, "RpcGetClientData");
	if (buf && len >= 4 + 21 * 2) {
		utf16_field(buf + 4, 21, c->name, sizeof c->name);
		c->have_name = 1;
	}
	/* ClientTimeZone: Bias, then StandardName[32] (a zero Bias with no
	 * name is a client that sent none) */
	if (buf && len >= CLIENT_TZ_OFFSET + 4 + 64) {
		c->tz_bias = (int32_t)ld32(buf + CLIENT_TZ_OFFSET);
		utf16_field(buf + CLIENT_TZ_OFFSET + 4, 32, c->tz_name, sizeof c->tz_name);
		c->have_tz = c->tz_name[0] != '\0' || c->tz_bias != 0;
		/* a bias beyond a day is not a time zone */
		if (c->tz_bias < -24 * 60 || c->tz_bias > 24 * 60)
			c->have_tz = 0;
	}
	return 0;
}

void tsts_ipv6_string(const uint8_t *a, char *out, size_t cap)
{
	uint16_t g[8];
	for (int i = 0; i < 8; i++)
		g[i] = (uint16_t)(a[2 * i] << 8 | a[2 * i + 1]);
	if (cap < 46) {
		if (cap)
			out[0] = '\0';
		return;
	}
	/* IPv4-mapped: ::ffff:a.b.c.d (RFC 5952 section 5) */
	if (!g[0] && !g[1] && !g[2] && !g[3] && !g[4] && g[5] == 0xffff) {
		(void)snprintf(out, cap, "::ffff:%u.%u.%u.%u", a[12], a[13], a[14], a[15]);
		return;
	}
	/* the longest run of two or more zero groups, the first if tied */
	int best = -1, best_len = 1;
	for (int i = 0; i < 8;) {
		int j = i;
		while (j < 8 && g[j] == 0)
			j++;
		if (j - i > best_len) {
			best = i;
			best_len = j - i;
		}
		i = j > i ? j : i + 1;
	}
	size_t k = 0;
	for (int i = 0; i < 8; i++) {
		if (i == best) {
			k += (size_t)snprintf(out + k, cap - k, "::");
			i += best_len - 1;
			continue;
		}
		int sep = i > 0 && i != best + best_len;
		k += (size_t)snprintf(out + k, cap - k, sep ? ":%x" : "%x", g[i]);
	}
}

/* RpcGetRemoteAddress (opnum 4): RCM_REMOTEADDRESS { USHORT sin_family;
 * union switch_is(sin_family) { ipv4 { USHORT port; ULONG addr; UCHAR
 * zero[8] }, ipv6 { USHORT port; ULONG flowinfo; USHORT addr[8]; ULONG
 * scope } } } then the HRESULT. The address bytes are in network order. The
 * HRESULT is taken from the end so that either union encoding parses. */
int tsts_parse_remote_address(const uint8_t *p, size_t n, ts_client *c, uint32_t *status,
			      ts_err *e)
{
	if (n < 4 || n > 64)
		return malformed(e, "RpcGetRemoteAddress");
	*status = ld32(p + n - 4);
	if ((*status & 0x80000000u) || n < 8)
		return 0;
	uint16_t family = ld16(p);
	if (family == 2 && n >= 12 + 4) {
		c->port = (uint16_t)(p[4] << 8 | p[5]);
		/* the address is the first 4 bytes after the port, 4-aligned */
		const uint8_t *a = p + 8;
		(void)snprintf(c->address, sizeof c->address, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
		c->have_address = 1;
	} else if (family == 23 && n >= 28 + 4) {
		c->port = (uint16_t)(p[4] << 8 | p[5]);
		tsts_ipv6_string(p + 12, c->address, sizeof c->address);
		c->have_address = 1;
	} else if (family != 0) {
		return malformed(e, "RpcGetRemoteAddress");
	}
	return 0;
}

/* ---- the protocol stack of a session (qwinsta TYPE, DEVICE) ---------------- */

#define WDCONFIG_SIZE 300   /* see tsts_parse_query_wd */
#define PDCONFIG2_SIZE 168  /* see tsts_parse_query_pd */
#define PDPARAMS_SIZE 568
#define PD_BUFFER_SIZE (4 + 8 + PDCONFIG2_SIZE + PDPARAMS_SIZE)
#define DEVICENAME_UNITS 129
#define SD_NETWORK 2
#define SD_ASYNC 3
#define SD_OEM 4

/* The answer envelope of a class whose buffer starts with a VARDATA_WIRE
 * { Size, Offset } (WinStationWd, WinStationPd): 1 when the call failed
 * (nothing more to read), 0 with the buffer and the structure's offset when
 * `need` bytes of it are there at that offset and within ReturnLength, -1
 * when malformed. */
static int vardata_reply(const uint8_t *p, size_t n, size_t head, size_t need, uint32_t *status, int *ok,
			 uint32_t *returned, const uint8_t **buf, uint32_t *len, uint16_t *off)
{
	rbuf r;
	rb_init(&r, p, n);
	if (query_reply(&r, status, buf, len, returned, ok) < 0)
		return -1;
	if (!*ok)
		return 1;
	if (!*buf || *len < head)
		return -1;
	uint16_t size = ld16(*buf);
	*off = ld16(*buf + 2);
	if (*off < head || size < need || (size_t)*off + need > *len || *returned < (uint32_t)*off + need)
		return -1;
	return 0;
}

/* RpcWinStationQueryInformation, class WinStationWd (3): the buffer is a
 * VARDATA_WIRE { Size = sizeof(WDCONFIG), Offset } and, at Offset, WDCONFIG
 * (MS-TSTS 2.2.2.27) in its C layout:
 *   @0 WdName[33]  @66 WdDLL[33]  @132 WsxDLL[33]  (2 pad)  @200 WdFlag
 *   @204 WdInputBufferLength  @208 CfgDLL[33]  @274 WdPrefix[13];  size 300.
 * A TRUE answer whose ReturnLength does not cover the structure said
 * nothing (our zeroed buffer came back) and is refused. */
int tsts_parse_query_wd(const uint8_t *p, size_t n, ts_drivers *d, uint32_t *status, int *ok,
			uint32_t *returned, ts_err *e)
{
	static const char m[] = "RpcWinStationQueryInformation(WinStationWd)";
	const uint8_t *buf;
	uint32_t len;
	uint16_t off;
	int rc = vardata_reply(p, n, 4, WDCONFIG_SIZE, status, ok, returned, &buf, &len, &off);
	if (rc != 0)
		return rc < 0 ? malformed(e, m) : 0;
	const uint8_t *w = buf + off;
	utf16_field(w, 33, d->wd_name, sizeof d->wd_name);
	utf16_field(w + 66, 33, d->wd_dll, sizeof d->wd_dll);
	d->wd_flag = ld32(w + 200);
	return 0;
}

/* Class WinStationPd (4), MS-TSTS 3.7.4.1.6: a VARDATA_WIRE { Size =
 * sizeof(PDCONFIG2), Offset }, a PDPARAMSWIRE { SdClass, VARDATA_WIRE
 * SdClassSpecific { Size, Offset } } @4, PDCONFIG2 at the first Offset and
 * the PDPARAMS union (without its SdClass) at the second. PDCONFIG2
 * (2.2.2.26.1): @0 PdName[33], (pad) @68 SdClass, @72 PdDLL[33], then eight
 * ULONGs; 168 bytes. The union arms that name a device: ASYNCCONFIG
 * (2.2.2.23) DeviceName[129] @0, OEMTDCONFIG (2.2.2.25) DeviceName @4, and
 * NETWORKCONFIG (2.2.2.22) NetworkName @4 ("not used": empty on Windows). */
int tsts_parse_query_pd(const uint8_t *p, size_t n, ts_drivers *d, uint32_t *status, int *ok,
			uint32_t *returned, ts_err *e)
{
	static const char m[] = "RpcWinStationQueryInformation(WinStationPd)";
	const uint8_t *buf;
	uint32_t len;
	uint16_t off;
	int rc = vardata_reply(p, n, 12, PDCONFIG2_SIZE, status, ok, returned, &buf, &len, &off);
	if (rc != 0)
		return rc < 0 ? malformed(e, m) : 0;
	uint32_t sd = ld32(buf + 4);
	uint16_t psize = ld16(buf + 8), poff = ld16(buf + 10);
	const uint8_t *pc = buf + off;
	utf16_field(pc, 33, d->pd_name, sizeof d->pd_name);
	utf16_field(pc + 72, 33, d->pd_dll, sizeof d->pd_dll);
	d->sd_class = (int)sd;
	size_t at = sd == SD_ASYNC ? 0 : (sd == SD_NETWORK || sd == SD_OEM) ? 4 : SIZE_MAX;
	d->device[0] = '\0';
	if (at != SIZE_MAX) {
		size_t need = at + 2 * DEVICENAME_UNITS;
		if (poff < 12 || psize < need || (size_t)poff + need > len)
			return malformed(e, m);
		utf16_field(buf + poff + at, DEVICENAME_UNITS, d->device, sizeof d->device);
	}
	return 0;
}

/* ---- Terminal Services counters (qwinsta /counter) ------------------------ */

/* The [in,out,size_is(n)] TS_COUNTER array (MS-TSTS 2.2.2.17): MaxCount,
 * then (8-aligned, the structure holds a LARGE_INTEGER) n elements of
 * { TS_COUNTER_HEADER { DWORD dwCounterID @0; boolean bResult @4 };
 * DWORD dwValue @8; LARGE_INTEGER startTime @16 }, 24 bytes each. The
 * LSM call (RpcGetSessionCounters) answers the array then the HRESULT; the
 * legacy one (RpcWinStationGetTermSrvCountersValue) pResult, the array and
 * the BOOLEAN. Each element answers the one asked at its place; an unknown
 * id comes back as 0 with bResult FALSE. */
int tsts_parse_counters(const uint8_t *p, size_t n, int legacy, ts_counter *v, size_t count,
			uint32_t *status, int *ok, ts_err *e)
{
	const char *m = legacy ? "RpcWinStationGetTermSrvCountersValue" : "RpcGetSessionCounters";
	rbuf r;
	rb_init(&r, p, n);
	*ok = 1;
	for (size_t i = 0; i < count; i++) {
		v[i].known = 0;   /* nothing is known of an answer that fails */
		v[i].value = 0;
	}
	if (legacy) {
		*status = rb_u32(&r);
		/* a failed call: pResult and FALSE, the array as sent */
		if (n >= 5 && p[n - 1] == 0) {
			*ok = 0;
			return r.err ? malformed(e, m) : 0;
		}
	} else if (fail_tail(p, n, status)) {
		*ok = 0;
		return 0;
	}
	uint32_t max = rb_u32(&r);
	if (r.err || max != count || (size_t)max * 24 > rb_left(&r))
		return malformed(e, m);
	rb_align(&r, 8);
	for (uint32_t i = 0; i < max; i++) {
		uint32_t id = rb_u32(&r);
		uint8_t known = rb_u8(&r);
		rb_align(&r, 4);
		uint32_t value = rb_u32(&r);
		rb_align(&r, 8);
		(void)rb_u64(&r); /* startTime: always 0 */
		if (r.err)
			return malformed(e, m);
		/* a known counter must be the one asked for at this place */
		if (known && id != v[i].id)
			return malformed(e, m);
		v[i].known = known != 0;
		v[i].value = known ? value : 0;
	}
	if (legacy) {
		if (legacy_tail(&r, ok) < 0)
			return malformed(e, m);
	} else {
		rb_align(&r, 4);
		*status = rb_u32(&r);
		if (r.err)
			return malformed(e, m);
	}
	return 0;
}

/* ---- the connection ------------------------------------------------------- */

struct ts_conn {
	ts_transport tr;       /* tr.conn NULL until connected */
	ts_stats stats;
	rpc_pipe pipes[TS_NPIPES];
	ts_creds creds;
	uint16_t max_frag;
	uint8_t server_handle[HANDLE_LEN];
	int have_server;
	int no_all_sessions;   /* learnt: RpcGetAllSessions missing (2008) */
	int no_info_ex;        /* learnt: RpcGetSessionInformationEx missing (2008) */
	int no_close_ex;       /* learnt: RpcWinStationCloseServerEx missing */
	int no_lsm_counters;   /* learnt: RpcGetSessionCounters missing */
};

/* LSM contexts: 0 = TermSrvEnumeration, 1 = TermSrvSession */
enum { CTX_ENUM = 0, CTX_SESSION = 1 };

const ts_stats *ts_get_stats(const ts_conn *c) { return &c->stats; }
int ts_pipe_present(const ts_conn *c, int pipe) { return c->pipes[pipe].present; }

static void pipe_drop(ts_conn *c, rpc_pipe *p)
{
	rpc_pipe_drop(p);
	if (p == &c->pipes[TS_PIPE_LEGACY])
		c->have_server = 0; /* handles die with the association */
}

static rpc_pipe *pipe_get(ts_conn *c, int id, ts_err *e)
{
	rpc_pipe *p = &c->pipes[id];
	if (p->present == 0) {
		ts_fail(e, TS_K_ERRNO, ENOENT, p->absent_code, "open \\PIPE\\%s", p->name);
		ts_detail(e, "\\PIPE\\%s does not exist on the host", p->name);
		return NULL;
	}
	if (rpc_pipe_unusable(p))
		pipe_drop(c, p);
	if (rpc_pipe_bind(p, &c->tr, &c->creds, c->max_frag, &c->stats.rpc, e) < 0) {
		if (p == &c->pipes[TS_PIPE_LEGACY])
			c->have_server = 0;
		return NULL;
	}
	return p;
}

int ts_probe(ts_conn *c, int pipe, ts_err *e)
{
	return pipe_get(c, pipe, e) ? 0 : -1;
}

/* One RPC call on a pipe; e->what names the method on failure. */
static int call(ts_conn *c, int pipe, int ctx, uint16_t opnum, const char *method, wbuf *req,
		wbuf *resp, ts_err *e)
{
	if (req->err)
		return ts_fail(e, TS_K_NONE, 0, "invalid_parameter",
			       "%s: a string argument is not valid UTF-8 or too long", method);
	rpc_pipe *p = pipe_get(c, pipe, e);
	int rc = p ? rpc_call(&p->rpc, ctx, opnum, req->p, req->len, resp, e) : -1;
	if (rc < 0) {
		if (e->kind == TS_K_FAULT) {
			(void)snprintf(e->what, sizeof e->what, "%s", method);
		} else {
			char was[sizeof e->what];
			memcpy(was, e->what, sizeof was);
			(void)snprintf(e->what, sizeof e->what, "%s: %.100s", method, was);
		}
	}
	return rc;
}

static int is_fault(const ts_err *e, uint32_t status)
{
	return e->kind == TS_K_FAULT && e->status == status;
}

static int hr_fail(ts_err *e, uint32_t hr, const char *method)
{
	return ts_fail(e, TS_K_HRESULT, hr, NULL, "%s", method);
}

/* Legacy pResult: NTSTATUS on old servers, HRESULT or Win32 on newer ones. */
static int legacy_fail(ts_err *e, uint32_t res, const char *method)
{
	int kind = (res & 0xFFFF0000u) == 0x80070000u ? TS_K_HRESULT
		 : res && res < 0x10000u ? TS_K_WIN32 : TS_K_NTSTATUS;
	if (res == 0)
		return ts_fail(e, TS_K_NONE, 0, "server_error", "%s failed without a status", method);
	return ts_fail(e, kind, res, NULL, "%s", method);
}

ts_conn *ts_open(const ts_opts *o, ts_err *e)
{
	ts_conn *c = calloc(1, sizeof *c);
	if (!c) {
		oom(e);
		return NULL;
	}
	c->max_frag = o->max_frag;
	if (ts_creds_init(&c->creds, o->rpc_auth, &o->smb, &o->krb, e) < 0)
		goto fail;
	rpc_pipe *lsm = &c->pipes[TS_PIPE_LSM], *rcm = &c->pipes[TS_PIPE_RCM],
		*leg = &c->pipes[TS_PIPE_LEGACY];
	lsm->name = "LSM_API_service";
	lsm->ifaces[0] = &IF_TSENUM;
	lsm->ifaces[1] = &IF_TSSESSION;
	lsm->nif = 2;
	lsm->absent_code = "lsm_unavailable";
	rcm->name = "TermSrv_API_service";
	rcm->ifaces[0] = &IF_RCMPUBLIC;
	rcm->nif = 1;
	rcm->absent_code = "rdp_disabled";
	leg->name = "Ctx_WinStation_API_service";
	leg->ifaces[0] = &IF_LEGACY;
	leg->nif = 1;
	leg->absent_code = "rdp_disabled";
	rpc_pipe *lsa = &c->pipes[TS_PIPE_LSA];
	lsa->name = "lsarpc";
	lsa->ifaces[0] = &IF_LSARPC;
	lsa->nif = 1;
	lsa->absent_code = "lsa_unavailable";
	for (int i = 0; i < TS_NPIPES; i++)
		c->pipes[i].present = -1;

	if (o->ntlm_fixed) {
		c->creds.ntlm_test = 1;
		c->creds.ntlm_fixed = *o->ntlm_fixed;
	}
	if (!o->transport) {
		ts_fail(e, TS_K_NONE, 0, "invalid_parameter", "no transport to connect through");
		goto fail;
	}
	/* the SMB logon uses the RPC binds' identity: their cache (a keytab's
	 * private one, or the ccache option) */
	smb_opts so = o->smb;
	so.krb5ccname = c->creds.krb ? krb_cred_smb_ccache(c->creds.krb) : o->krb.ccache;
	/* and its principal as the account: libsmbclient logs on anonymously
	 * without a user name, and with a password it makes user@domain its
	 * Kerberos principal */
	char princ[520];
	if (c->creds.krb && so.kerberos) {
		if (krb_cred_principal(c->creds.krb, princ, sizeof princ, NULL, e) < 0)
			goto fail;
		char *at = strrchr(princ, '@');
		if (at && at != princ && at[1] && at - princ < 256 && strlen(at + 1) < 256) {
			*at = '\0';
			so.user = princ;
			so.domain = at + 1;
		}
	}
	if (o->transport->connect(o->transport->arg, &so, &c->stats.smb, &c->tr, e) < 0)
		goto fail;
	/* The first open logs on; opening the LSM pipe also tells us whether the
	 * host has the LSM interfaces. A missing pipe is not a connect failure. */
	if (rpc_pipe_open(lsm, &c->tr, e) < 0 && lsm->present != 0)
		goto fail;
	return c;
fail:
	ts_close(c);
	return NULL;
}

void ts_close(ts_conn *c)
{
	if (!c)
		return;
	/* Closing a pipe ends its association, and the server runs down every
	 * context handle on it: no close calls (round trips) are needed; and
	 * dropping the connection ends every pipe without a CLOSE. */
	if (c->tr.conn)
		c->tr.ops->drop(c->tr.conn);
	for (int i = 0; i < TS_NPIPES; i++)
		pipe_drop(c, &c->pipes[i]);
	if (c->tr.conn)
		c->tr.ops->free(c->tr.conn);
	ts_creds_wipe(&c->creds);
	ntlm_memwipe(c, sizeof *c);
	free(c);
}

/* ---- listing -------------------------------------------------------------- */

static int list_all_sessions(ts_conn *c, ts_session_list *out, ts_err *e)
{
	wbuf q, a;
	wb_init(&q);
	wb_init(&a);
	wb_u32(&q, 2); /* level 2: EXECENVDATA_LEVEL2 carries user and domain */
	int rc = call(c, TS_PIPE_LSM, CTX_ENUM, 10, "RpcGetAllSessions", &q, &a, e);
	uint32_t hr = 0;
	if (rc == 0)
		rc = tsts_parse_all_sessions(a.p, a.len, out, &hr, e);
	if (rc == 0 && (hr & 0x80000000u))
		rc = hr_fail(e, hr, "RpcGetAllSessions");
	wb_free(&q);
	wb_free(&a);
	return rc;
}

static int list_enum(ts_conn *c, ts_session_list *out, ts_err *e)
{
	wbuf q, a;
	wb_init(&q);
	wb_init(&a);
	uint8_t handle[HANDLE_LEN];
	uint32_t hr = 0;
	int rc = call(c, TS_PIPE_LSM, CTX_ENUM, 0, "RpcOpenEnum", &q, &a, e);
	if (rc == 0) {
		if (a.len != HANDLE_LEN + 4) {
			rc = malformed(e, "RpcOpenEnum");
		} else if ((hr = ld32(a.p + HANDLE_LEN)) & 0x80000000u) {
			rc = hr_fail(e, hr, "RpcOpenEnum");
		} else {
			memcpy(handle, a.p, HANDLE_LEN);
		}
	}
	if (rc == 0) {
		wb_reset(&q);
		wb_bytes(&q, handle, HANDLE_LEN);
		wb_u32(&q, 1);
		rc = call(c, TS_PIPE_LSM, CTX_ENUM, 5, "RpcGetEnumResult", &q, &a, e);
		if (rc == 0)
			rc = tsts_parse_enum_result(a.p, a.len, out, &hr, e);
		if (rc == 0 && (hr & 0x80000000u))
			rc = hr_fail(e, hr, "RpcGetEnumResult");
		/* close the enumeration whatever happened; its outcome is moot */
		wb_reset(&q);
		wb_bytes(&q, handle, HANDLE_LEN);
		ts_err ignored = {0};
		if (!c->pipes[TS_PIPE_LSM].rpc.broken)
			(void)call(c, TS_PIPE_LSM, CTX_ENUM, 1, "RpcCloseEnum", &q, &a, &ignored);
	}
	wb_free(&q);
	wb_free(&a);
	return rc;
}

static int legacy_handle(ts_conn *c, ts_err *e)
{
	if (c->have_server && c->pipes[TS_PIPE_LEGACY].tp &&
	    !rpc_pipe_unusable(&c->pipes[TS_PIPE_LEGACY]))
		return 0;
	wbuf q, a;
	wb_init(&q);
	wb_init(&a);
	int rc = call(c, TS_PIPE_LEGACY, 0, 0, "RpcWinStationOpenServer", &q, &a, e);
	if (rc == 0) {
		rbuf r;
		rb_init(&r, a.p, a.len);
		uint32_t res = rb_u32(&r);
		const uint8_t *h = rb_take(&r, HANDLE_LEN);
		int ok;
		if (legacy_tail(&r, &ok) < 0 || !h)
			rc = malformed(e, "RpcWinStationOpenServer");
		else if (!ok)
			rc = legacy_fail(e, res, "RpcWinStationOpenServer");
		else {
			memcpy(c->server_handle, h, HANDLE_LEN);
			c->have_server = 1;
		}
	}
	wb_free(&q);
	wb_free(&a);
	return rc;
}

static int list_legacy(ts_conn *c, ts_session_list *out, ts_err *e)
{
	if (legacy_handle(c, e) < 0)
		return -1;
	wbuf q, a;
	wb_init(&q);
	wb_init(&a);
	uint32_t index = 0;
	const uint32_t want = 32;
	int rc = 0;
	for (int round = 0; round < 4096 && rc == 0; round++) {
		wb_reset(&q);
		wb_bytes(&q, c->server_handle, HANDLE_LEN);
		wb_u32(&q, want);                 /* *pEntries */
		wb_u32(&q, 0x00020000);           /* referent of the buffer */
		wb_u32(&q, want * LOGONID_SIZE);  /* conformance */
		(void)wb_reserve(&q, want * LOGONID_SIZE);
		wb_align(&q, 4);
		wb_u32(&q, want * LOGONID_SIZE);  /* *pByteCount */
		wb_u32(&q, index);                /* *pIndex */
		rc = call(c, TS_PIPE_LEGACY, 0, 3, "RpcWinStationEnumerate", &q, &a, e);
		if (rc < 0)
			break;
		uint32_t status;
		int ok;
		size_t before = out->n;
		rc = tsts_parse_legacy_enum(a.p, a.len, out, &index, &status, &ok, e);
		if (rc < 0)
			break;
		if (status == STATUS_NO_MORE_ENTRIES || (ok && out->n == before))
			break;
		if (!ok) {
			rc = legacy_fail(e, status, "RpcWinStationEnumerate");
			break;
		}
	}
	wb_free(&q);
	wb_free(&a);
	return rc;
}

int ts_list_sessions(ts_conn *c, int prefer, ts_session_list *out, int *method, ts_err *e)
{
	int lsm = c->pipes[TS_PIPE_LSM].present != 0;
	if (lsm && (prefer == 0 || prefer == 1) && !c->no_all_sessions) {
		size_t keep = out->n;
		if (list_all_sessions(c, out, e) == 0) {
			*method = 1;
			return 0;
		}
		if (prefer == 1 || !(is_fault(e, FAULT_OP_RNG) || e->status == E_NOTIMPL_HR))
			return -1;
		out->n = keep;
		c->no_all_sessions = 1; /* Windows Server 2008: remember, ask no more */
	}
	lsm = c->pipes[TS_PIPE_LSM].present != 0;
	if (lsm && (prefer == 0 || prefer == 2)) {
		*method = 2;
		return list_enum(c, out, e);
	}
	if (prefer == 0 || prefer == 3) {
		*method = 3;
		return list_legacy(c, out, e);
	}
	return ts_fail(e, TS_K_ERRNO, ENOENT, "lsm_unavailable", "list sessions");
}

/* ---- per-session information ---------------------------------------------- */

static int info_legacy(ts_conn *c, uint32_t id, ts_session *s, ts_err *e)
{
	if (legacy_handle(c, e) < 0)
		return -1;
	wbuf q, a;
	wb_init(&q);
	wb_init(&a);
	const uint32_t len = 4 + WINSTATIONINFORMATION_SIZE;
	wb_bytes(&q, c->server_handle, HANDLE_LEN);
	wb_u32(&q, id);
	wb_u32(&q, 8);            /* WinStationInformation */
	wb_u32(&q, 0x00020000);   /* referent of the [in,out,unique] buffer */
	wb_u32(&q, len);
	uint8_t *b = wb_reserve(&q, len);
	if (b) {                  /* VARDATA_WIRE: Size, Offset */
		st16(b, WINSTATIONINFORMATION_SIZE);
		st16(b + 2, 4);
	}
	wb_align(&q, 4);
	wb_u32(&q, len);
	int rc = call(c, TS_PIPE_LEGACY, 0, 5, "RpcWinStationQueryInformation", &q, &a, e);
	if (rc == 0) {
		uint32_t status;
		int ok;
		rc = tsts_parse_query_info8(a.p, a.len, s, &status, &ok, e);
		if (rc == 0 && !ok)
			rc = legacy_fail(e, status, "RpcWinStationQueryInformation");
	}
	wb_free(&q);
	wb_free(&a);
	return rc;
}

static int info_lsm(ts_conn *c, uint32_t id, int ex, ts_session *s, ts_err *e)
{
	wbuf q, a;
	wb_init(&q);
	wb_init(&a);
	wb_u32(&q, id);
	if (ex)
		wb_u32(&q, 1);
	const char *m = ex ? "RpcGetSessionInformationEx" : "RpcGetSessionInformation";
	int rc = call(c, TS_PIPE_LSM, CTX_SESSION, ex ? 17 : 12, m, &q, &a, e);
	if (rc == 0) {
		uint32_t hr = 0;
		rc = ex ? tsts_parse_info_ex(a.p, a.len, s, &hr, e) : tsts_parse_info12(a.p, a.len, s, &hr, e);
		if (rc == 0 && (hr & 0x80000000u))
			rc = hr_fail(e, hr, m);
		s->id = id;
	}
	wb_free(&q);
	wb_free(&a);
	return rc;
}

int ts_session_info(ts_conn *c, uint32_t id, int prefer, ts_session *s, int *source, ts_err *e)
{
	memset(s, 0, sizeof *s);
	s->flags = -1;
	if ((prefer == 0 || prefer == 1) && c->pipes[TS_PIPE_LEGACY].present != 0) {
		if (info_legacy(c, id, s, e) == 0) {
			*source = 1;
			return 0;
		}
		/* only a missing pipe sends us to LSM; any other answer is the answer */
		if (prefer == 1 || c->pipes[TS_PIPE_LEGACY].present != 0)
			return -1;
	}
	if ((prefer == 0 || prefer == 2) && !c->no_info_ex && c->pipes[TS_PIPE_LSM].present != 0) {
		if (info_lsm(c, id, 1, s, e) == 0) {
			*source = 2;
			return 0;
		}
		if (prefer == 2 || !is_fault(e, FAULT_OP_RNG))
			return -1;
		c->no_info_ex = 1; /* Windows Server 2008 has only opnum 12 */
	}
	if (prefer == 0 || prefer == 3) {
		memset(s, 0, sizeof *s);
		s->flags = -1;
		*source = 3;
		return info_lsm(c, id, 0, s, e);
	}
	return ts_fail(e, TS_K_NONE, 0, "not_supported", "no source for session information");
}

int ts_server_time(ts_conn *c, uint32_t probe_id, uint64_t *now, ts_err *e)
{
	ts_session s;
	memset(&s, 0, sizeof s);
	if (info_legacy(c, probe_id, &s, e) < 0)
		return -1;
	*now = s.current_time;
	return 0;
}

int ts_create_data(ts_conn *c, uint32_t id, ts_create *out, ts_err *e)
{
	memset(out, 0, sizeof *out);
	if (legacy_handle(c, e) < 0)
		return -1;
	wbuf q, a;
	wb_init(&q);
	wb_init(&a);
	const char *m = "RpcWinStationQueryInformation(WinStationCreateData)";
	wb_bytes(&q, c->server_handle, HANDLE_LEN);
	wb_u32(&q, id);
	wb_u32(&q, 0);            /* WinStationCreateData */
	wb_u32(&q, 0x00020000);   /* referent of the [in,out,unique] buffer */
	wb_u32(&q, WINSTATIONCREATE_SIZE);
	(void)wb_reserve(&q, WINSTATIONCREATE_SIZE); /* zeros */
	wb_align(&q, 4);
	wb_u32(&q, WINSTATIONCREATE_SIZE);
	int rc = call(c, TS_PIPE_LEGACY, 0, 5, m, &q, &a, e);
	if (rc == 0) {
		uint32_t status;
		int ok;
		rc = tsts_parse_query_create(a.p, a.len, out, &status, &ok, e);
		if (rc == 0 && !ok)
			rc = legacy_fail(e, status, m);
	}
	wb_free(&q);
	wb_free(&a);
	return rc;
}

int ts_client_info(ts_conn *c, uint32_t id, ts_client *out, ts_err *e)
{
	memset(out, 0, sizeof *out);
	wbuf q, a;
	wb_init(&q);
	wb_init(&a);
	wb_u32(&q, id);
	uint32_t hr = 0;
	int rc = call(c, TS_PIPE_RCM, 0, 0, "RpcGetClientData", &q, &a, e);
	if (rc == 0)
		rc = tsts_parse_client_data(a.p, a.len, out, &hr, e);
	if (rc == 0 && (hr & 0x80000000u))
		rc = hr_fail(e, hr, "RpcGetClientData");
	if (rc == 0) {
		rc = call(c, TS_PIPE_RCM, 0, 4, "RpcGetRemoteAddress", &q, &a, e);
		if (rc == 0)
			rc = tsts_parse_remote_address(a.p, a.len, out, &hr, e);
		/* sessions without a client (console, services) have no address */
		if (rc == 0 && (hr & 0x80000000u))
			out->have_address = 0;
	}
	wb_free(&q);
	wb_free(&a);
	return rc;
}

/* ---- actions -------------------------------------------------------------- */

/* Opens an LSM session handle, runs one call on it, closes it. */
static int session_call(ts_conn *c, uint32_t id, uint16_t opnum, const char *method,
			const wbuf *args, wbuf *resp, ts_err *e)
{
	wbuf q;
	wb_init(&q);
	wb_u32(&q, id);
	int rc = call(c, TS_PIPE_LSM, CTX_SESSION, 0, "RpcOpenSession", &q, resp, e);
	uint8_t handle[HANDLE_LEN];
	if (rc == 0) {
		uint32_t hr;
		if (resp->len != HANDLE_LEN + 4)
			rc = malformed(e, "RpcOpenSession");
		else if ((hr = ld32(resp->p + HANDLE_LEN)) & 0x80000000u)
			rc = hr_fail(e, hr, "RpcOpenSession");
		else
			memcpy(handle, resp->p, HANDLE_LEN);
	}
	if (rc == 0) {
		wb_reset(&q);
		wb_bytes(&q, handle, HANDLE_LEN);
		if (args)
			wb_bytes(&q, args->p, args->len);
		rc = call(c, TS_PIPE_LSM, CTX_SESSION, opnum, method, &q, resp, e);
		/* The handle is closed even after a failure; a session that was
		 * logged off may already have taken it with it. */
		if (!c->pipes[TS_PIPE_LSM].rpc.broken) {
			wbuf cq, ca;
			wb_init(&cq);
			wb_init(&ca);
			wb_bytes(&cq, handle, HANDLE_LEN);
			ts_err ignored = {0};
			(void)call(c, TS_PIPE_LSM, CTX_SESSION, 1, "RpcCloseSession", &cq, &ca, &ignored);
			wb_free(&cq);
			wb_free(&ca);
		}
	}
	wb_free(&q);
	return rc;
}

static int lsm_available(ts_conn *c)
{
	return c->pipes[TS_PIPE_LSM].present != 0;
}

/* HRESULT at the end of a short response: success is any non-negative
 * value (RpcLogoff and RpcConnect return positive codes on success). */
static int hr_tail(const wbuf *a, const char *method, ts_err *e)
{
	if (a->len < 4)
		return malformed(e, method);
	uint32_t hr = ld32(a->p + a->len - 4);
	return (hr & 0x80000000u) ? hr_fail(e, hr, method) : 0;
}

static int legacy_simple(ts_conn *c, uint16_t opnum, const char *method, const wbuf *args,
			 ts_err *e)
{
	if (legacy_handle(c, e) < 0)
		return -1;
	wbuf q, a;
	wb_init(&q);
	wb_init(&a);
	wb_bytes(&q, c->server_handle, HANDLE_LEN);
	wb_bytes(&q, args->p, args->len);
	int rc = call(c, TS_PIPE_LEGACY, 0, opnum, method, &q, &a, e);
	if (rc == 0) {
		rbuf r;
		rb_init(&r, a.p, a.len);
		uint32_t res = rb_u32(&r);
		int ok;
		if (legacy_tail(&r, &ok) < 0 || rb_left(&r) != 0)
			rc = malformed(e, method);
		else if (!ok)
			rc = legacy_fail(e, res, method);
	}
	wb_free(&q);
	wb_free(&a);
	return rc;
}

int ts_reset(ts_conn *c, uint32_t id, int wait, ts_err *e)
{
	wbuf args;
	wb_init(&args);
	wb_u32(&args, id);
	wb_u8(&args, wait ? 1 : 0);
	int rc = legacy_simple(c, 14, "RpcWinStationReset", &args, e);
	wb_free(&args);
	return rc;
}

static int legacy_disconnect(ts_conn *c, uint32_t id, ts_err *e)
{
	wbuf args;
	wb_init(&args);
	wb_u32(&args, id);
	wb_u8(&args, 1);
	int rc = legacy_simple(c, 13, "RpcWinStationDisconnect", &args, e);
	wb_free(&args);
	return rc;
}

int ts_logoff(ts_conn *c, uint32_t id, ts_err *e)
{
	if (!lsm_available(c))
		return ts_reset(c, id, 1, e); /* 2003: a reset is the logoff */
	wbuf a;
	wb_init(&a);
	int rc = session_call(c, id, 4, "RpcLogoff", NULL, &a, e);
	if (rc == 0)
		rc = hr_tail(&a, "RpcLogoff", e);
	wb_free(&a);
	return rc;
}

int ts_disconnect(ts_conn *c, uint32_t id, ts_err *e)
{
	if (!lsm_available(c))
		return legacy_disconnect(c, id, e);
	wbuf a;
	wb_init(&a);
	int rc = session_call(c, id, 3, "RpcDisconnect", NULL, &a, e);
	if (rc == 0)
		rc = hr_tail(&a, "RpcDisconnect", e);
	wb_free(&a);
	return rc;
}

int ts_connect_session(ts_conn *c, uint32_t source, uint32_t target, const char *password,
		       ts_err *e)
{
	/* without RPC packet privacy the stub travels in clear on a signed but
	 * unencrypted SMB session: never put a password there */
	if (c->creds.rpc_auth == TS_RPC_NONE && password && password[0])
		return ts_fail(e, TS_K_NONE, 0, "invalid_parameter",
			       "RpcConnect: refusing to send a session password without RPC packet "
			       "privacy (connect with rpc_auth = \"privacy\")");
	wbuf args, a;
	wb_init(&args);
	wb_init(&a);
	wb_u32(&args, target);
	/* the handle before these arguments is 20 bytes: CV string 4-aligned */
	wb_cvstring(&args, password ? password : "");
	int rc;
	if (args.err)
		rc = ts_fail(e, TS_K_NONE, 0, "invalid_parameter", "RpcConnect: password is not valid UTF-8");
	else
		rc = session_call(c, source, 2, "RpcConnect", &args, &a, e);
	if (rc == 0)
		rc = hr_tail(&a, "RpcConnect", e);
	wb_free(&args);
	wb_free(&a);
	return rc;
}

static int legacy_message(ts_conn *c, uint32_t id, const char *title, const char *text,
			  uint32_t style, uint32_t timeout_s, int wait, uint32_t *answer, ts_err *e)
{
	if (legacy_handle(c, e) < 0)
		return -1;
	wbuf q, a;
	wb_init(&q);
	wb_init(&a);
	wb_bytes(&q, c->server_handle, HANDLE_LEN);
	wb_u32(&q, id);
	/* size_is(TitleLength) on a PWCHAR: the length counts WCHARs */
	uint32_t tl = wb_cwchars(&q, title, 1);
	wb_align(&q, 4);
	wb_u32(&q, tl);
	uint32_t ml = wb_cwchars(&q, text, 1);
	wb_align(&q, 4);
	wb_u32(&q, ml);
	wb_u32(&q, style);
	wb_u32(&q, timeout_s);
	wb_u8(&q, wait ? 0 : 1); /* DoNotWait */
	int rc;
	if (tl > 1024 || ml > 1024)
		rc = ts_fail(e, TS_K_NONE, 0, "invalid_parameter",
			     "RpcWinStationSendMessage: title and text are limited to 1023 characters");
	else
		rc = call(c, TS_PIPE_LEGACY, 0, 7, "RpcWinStationSendMessage", &q, &a, e);
	if (rc == 0) {
		rbuf r;
		rb_init(&r, a.p, a.len);
		uint32_t res = rb_u32(&r);
		*answer = rb_u32(&r);
		int ok;
		if (legacy_tail(&r, &ok) < 0)
			rc = malformed(e, "RpcWinStationSendMessage");
		else if (!ok)
			rc = legacy_fail(e, res, "RpcWinStationSendMessage");
	}
	wb_free(&q);
	wb_free(&a);
	return rc;
}

int ts_message(ts_conn *c, uint32_t id, const char *title, const char *text, uint32_t style,
	       uint32_t timeout_s, int wait, uint32_t *answer, ts_err *e)
{
	if (!lsm_available(c))
		return legacy_message(c, id, title, text, style, timeout_s, wait, answer, e);
	wbuf args, a;
	wb_init(&args);
	wb_init(&a);
	wb_cvstring(&args, title);
	wb_cvstring(&args, text);
	wb_align(&args, 4);
	wb_u32(&args, style);
	wb_u32(&args, timeout_s);
	wb_u32(&args, wait ? 0 : 1); /* bDoNotWait (BOOL) */
	int rc;
	if (args.err)
		rc = ts_fail(e, TS_K_NONE, 0, "invalid_parameter",
			     "RpcShowMessageBox: title or text is not valid UTF-8");
	else
		rc = session_call(c, id, 9, "RpcShowMessageBox", &args, &a, e);
	if (rc == 0) {
		if (a.len != 8)
			rc = malformed(e, "RpcShowMessageBox");
		else if ((rc = hr_tail(&a, "RpcShowMessageBox", e)) == 0)
			*answer = ld32(a.p);
	}
	wb_free(&args);
	wb_free(&a);
	return rc;
}

int ts_processes(ts_conn *c, ts_process_list *out, ts_err *e)
{
	if (legacy_handle(c, e) < 0)
		return -1;
	wbuf q, a;
	wb_init(&q);
	wb_init(&a);
	wb_bytes(&q, c->server_handle, HANDLE_LEN);
	wb_u32(&q, 0);             /* Level: MUST be 0 */
	wb_u32(&q, MAX_PROCESSES); /* how many we can take */
	int rc = call(c, TS_PIPE_LEGACY, 0, 43, "RpcWinStationGetAllProcesses", &q, &a, e);
	if (rc == 0) {
		uint32_t status;
		int ok;
		rc = tsts_parse_processes(a.p, a.len, out, &status, &ok, e);
		if (rc == 0 && !ok)
			rc = legacy_fail(e, status, "RpcWinStationGetAllProcesses");
	}
	wb_free(&q);
	wb_free(&a);
	return rc;
}

int ts_kill(ts_conn *c, uint32_t pid, uint32_t exit_code, ts_err *e)
{
	wbuf args;
	wb_init(&args);
	wb_u32(&args, pid);
	wb_u32(&args, exit_code);
	int rc = legacy_simple(c, 37, "RpcWinStationTerminateProcess", &args, e);
	wb_free(&args);
	return rc;
}

int ts_shutdown(ts_conn *c, uint32_t flags, ts_err *e)
{
	wbuf args;
	wb_init(&args);
	wb_u32(&args, 0); /* ClientLogonId: ignored for remote callers */
	wb_u32(&args, flags);
	int rc = legacy_simple(c, 15, "RpcWinStationShutdownSystem", &args, e);
	wb_free(&args);
	return rc;
}

/* ---- the protocol stack of a session -------------------------------------- */

#define STATUS_BUFFER_TOO_SMALL_NT 0xC0000023u
#define HR_INSUFFICIENT_BUFFER 0x8007007Au

/* One RpcWinStationQueryInformation of class `cls` for session `id` with the
 * caller's initial buffer `init` (len bytes); a server that wants a larger
 * buffer (STATUS_BUFFER_TOO_SMALL and the size in pReturnLength, up to the
 * IDL's 0x8000) is asked once more with one. */
typedef int (*query_parser)(const uint8_t *p, size_t n, ts_drivers *d, uint32_t *status, int *ok,
			    uint32_t *returned, ts_err *e);

static int query_drivers(ts_conn *c, uint32_t id, uint32_t cls, const uint8_t *init, uint32_t len,
			 query_parser parse, const char *m, ts_drivers *d, ts_err *e)
{
	wbuf q, a;
	wb_init(&q);
	wb_init(&a);
	int rc = 0;
	for (int attempt = 0; attempt < 2; attempt++) {
		wb_reset(&q);
		wb_bytes(&q, c->server_handle, HANDLE_LEN);
		wb_u32(&q, id);
		wb_u32(&q, cls);
		wb_u32(&q, 0x00020000);   /* referent of the [in,out,unique] buffer */
		wb_u32(&q, len);
		uint8_t *b = wb_reserve(&q, len);
		if (b)
			memcpy(b, init, len < PD_BUFFER_SIZE ? len : PD_BUFFER_SIZE);
		wb_align(&q, 4);
		wb_u32(&q, len);
		rc = call(c, TS_PIPE_LEGACY, 0, 5, m, &q, &a, e);
		if (rc < 0)
			break;
		uint32_t status = 0, returned = 0;
		int ok;
		rc = parse(a.p, a.len, d, &status, &ok, &returned, e);
		if (rc < 0 || ok)
			break;
		if (attempt == 0 && (status == STATUS_BUFFER_TOO_SMALL_NT ||
				     status == HR_INSUFFICIENT_BUFFER) &&
		    returned > len && returned <= 0x8000) {
			len = returned;
			continue;
		}
		rc = legacy_fail(e, status, m);
		break;
	}
	wb_free(&q);
	wb_free(&a);
	return rc;
}

int ts_session_drivers(ts_conn *c, uint32_t id, ts_drivers *out, ts_err *e)
{
	memset(out, 0, sizeof *out);
	if (legacy_handle(c, e) < 0)
		return -1;
	/* the buffers as MS-TSTS 3.7.4.1.6 says the caller lays them out */
	uint8_t wd[PD_BUFFER_SIZE] = {0}, pd[PD_BUFFER_SIZE] = {0};
	st16(wd, WDCONFIG_SIZE);
	st16(wd + 2, 4);
	st16(pd, PDCONFIG2_SIZE);
	st16(pd + 2, 12);
	st16(pd + 8, PDPARAMS_SIZE - 4);
	st16(pd + 10, 12 + PDCONFIG2_SIZE);
	if (query_drivers(c, id, 3, wd, 4 + WDCONFIG_SIZE, tsts_parse_query_wd,
			  "RpcWinStationQueryInformation(WinStationWd)", out, e) < 0)
		return -1;
	return query_drivers(c, id, 4, pd, PD_BUFFER_SIZE, tsts_parse_query_pd,
			     "RpcWinStationQueryInformation(WinStationPd)", out, e);
}

/* ---- counters --------------------------------------------------------------- */

static void counters_request(wbuf *q, const ts_counter *v, size_t n)
{
	wb_u32(q, (uint32_t)n);   /* conformance */
	wb_align(q, 8);
	for (size_t i = 0; i < n; i++) {
		wb_u32(q, v[i].id);
		wb_u8(q, 0);
		wb_align(q, 4);
		wb_u32(q, 0);         /* dwValue */
		wb_align(q, 8);
		wb_u32(q, 0);         /* startTime */
		wb_u32(q, 0);
	}
}

static int counters_lsm(ts_conn *c, ts_counter *v, size_t n, ts_err *e)
{
	wbuf q, a;
	wb_init(&q);
	wb_init(&a);
	counters_request(&q, v, n);
	wb_u32(&q, (uint32_t)n);  /* uEntries */
	int rc = call(c, TS_PIPE_LSM, CTX_SESSION, 11, "RpcGetSessionCounters", &q, &a, e);
	if (rc == 0) {
		uint32_t hr = 0;
		int ok;
		rc = tsts_parse_counters(a.p, a.len, 0, v, n, &hr, &ok, e);
		if (rc == 0 && (hr & 0x80000000u))
			rc = hr_fail(e, hr, "RpcGetSessionCounters");
	}
	wb_free(&q);
	wb_free(&a);
	return rc;
}

static int counters_legacy(ts_conn *c, ts_counter *v, size_t n, ts_err *e)
{
	if (legacy_handle(c, e) < 0)
		return -1;
	wbuf q, a;
	wb_init(&q);
	wb_init(&a);
	static const char m[] = "RpcWinStationGetTermSrvCountersValue";
	wb_bytes(&q, c->server_handle, HANDLE_LEN);
	wb_u32(&q, (uint32_t)n);  /* dwEntries */
	counters_request(&q, v, n);
	int rc = call(c, TS_PIPE_LEGACY, 0, 45, m, &q, &a, e);
	if (rc == 0) {
		uint32_t status = 0;
		int ok;
		rc = tsts_parse_counters(a.p, a.len, 1, v, n, &status, &ok, e);
		if (rc == 0 && !ok)
			rc = legacy_fail(e, status, m);
	}
	wb_free(&q);
	wb_free(&a);
	return rc;
}

int ts_counters(ts_conn *c, ts_counter *v, size_t n, int *via, ts_err *e)
{
	if (n == 0 || n > TS_MAX_COUNTERS)
		return ts_fail(e, TS_K_NONE, 0, "invalid_parameter", "counters: 1 to %d counters",
			       TS_MAX_COUNTERS);
	for (size_t i = 0; i < n; i++)
		v[i].known = 0, v[i].value = 0;
	int lsm = c->pipes[TS_PIPE_LSM].present != 0 && !c->no_lsm_counters;
	if (lsm) {
		if (counters_lsm(c, v, n, e) == 0) {
			*via = 1;
			return 0;
		}
		if (!(is_fault(e, FAULT_OP_RNG) || e->status == E_NOTIMPL_HR))
			return -1;
		c->no_lsm_counters = 1;
	}
	if (c->pipes[TS_PIPE_LEGACY].present != 0) {
		if (counters_legacy(c, v, n, e) == 0) {
			*via = 2;
			return 0;
		}
		if (!(is_fault(e, FAULT_OP_RNG) || e->status == E_NOTIMPL_HR))
			return -1;
	} else if (!lsm) {
		return ts_fail(e, TS_K_NONE, 0, "not_supported", "read the counters");
	}
	ts_detail(e, "the host implements neither RpcGetSessionCounters nor "
		  "RpcWinStationGetTermSrvCountersValue: it offers no Terminal Services counters");
	return -1;
}

int ts_lookup_sids(ts_conn *c, const char *const *sids, size_t n, lsat_names *out, ts_err *e)
{
	out->v = NULL;
	out->n = 0;
	rpc_pipe *p = pipe_get(c, TS_PIPE_LSA, e);
	return p ? lsat_lookup(&p->rpc, 0, sids, n, out, e) : -1;
}
