/*
 * MS-TSTS client: the Terminal Services runtime interfaces over \\host\IPC$
 * (LSM enumeration and session, RCMPublic, the legacy IcaApi), with one
 * lazily opened, lazily bound pipe per interface group and one SMB logon per
 * host.
 */
#ifndef TERMSRV_TSTS_H
#define TERMSRV_TSTS_H

#include <stddef.h>
#include <stdint.h>

#include "dcerpc.h"
#include "errors.h"
#include "krb5sec.h"
#include "ntlmssp.h"
#include "lsat.h"
#include "smbpipe.h"
#include "transport.h"

#define TS_NAME_MAX 100    /* WINSTATIONNAME: 32 UTF-16 units as UTF-8 */
#define TS_USER_MAX 260

typedef struct ts_session {
	uint32_t id;
	int32_t state;              /* WINSTATIONSTATECLASS */
	char name[TS_NAME_MAX];     /* station name */
	char user[TS_USER_MAX];
	char domain[TS_USER_MAX];
	int has_user;               /* user/domain were reported by this source */
	int has_times;
	uint64_t connect_time, disconnect_time, logon_time, last_input_time; /* FILETIME, 0 = none */
	uint64_t current_time;      /* the server's clock (legacy class 8), 0 = unknown */
	int has_flags;
	int32_t flags;              /* SessionFlags: -1 unknown, 0 locked, 1 unlocked */
} ts_session;

typedef struct ts_session_list {
	ts_session *v;
	size_t n, cap;
} ts_session_list;

typedef struct ts_process {
	uint32_t pid, ppid, session_id, threads, handles;
	int32_t base_priority;
	uint64_t create_time, user_time, kernel_time;   /* FILETIME / 100 ns units */
	uint32_t working_set, peak_working_set, pagefile, private_pages, virtual_size;
	char image[TS_USER_MAX];    /* "" when the server sent none (Idle) */
	int has_image;
	char sid[192];              /* "S-1-5-..." or "" when none */
} ts_process;

typedef struct ts_process_list {
	ts_process *v;
	size_t n, cap;
} ts_process_list;

typedef struct ts_client {
	char name[64];              /* client machine name */
	char address[64];           /* "10.1.2.3" or an IPv6 literal */
	uint16_t port;
	int have_name, have_address;
	/* ClientTimeZone (TS_TIME_ZONE_INFORMATION): UTC = local time + bias */
	char tz_name[100];          /* StandardName */
	int32_t tz_bias;            /* Bias, minutes */
	int have_tz;
} ts_client;

/* A listener's WINSTATIONCREATE (legacy class WinStationCreateData). */
typedef struct ts_create {
	int enabled;                /* fEnableWinStation */
	uint32_t max_instances;     /* MaxInstanceCount, as the host sent it */
} ts_create;

/* A session's protocol stack as qwinsta's TYPE and DEVICE show it: its
 * winstation driver (legacy class WinStationWd, WDCONFIG) and its transport
 * protocol driver (class WinStationPd, PDCONFIG2 + PDPARAMS). */
typedef struct ts_drivers {
	char wd_name[TS_NAME_MAX];  /* WdName: "Microsoft RDP 8.0" */
	char wd_dll[TS_NAME_MAX];   /* WdDLL: "rdpwd", "wdcon" (qwinsta TYPE) */
	uint32_t wd_flag;
	int sd_class;               /* SDCLASS of the transport: 2 network, 3 async */
	char pd_name[TS_NAME_MAX];  /* PdName: "tcp" */
	char pd_dll[TS_NAME_MAX];   /* PdDLL: "tdtcp" */
	char device[400];           /* async or OEM DeviceName, network NetworkName (DEVICE) */
} ts_drivers;

/* One TS_COUNTER: the id asked for, whether the host knew it, its value. */
typedef struct ts_counter {
	uint32_t id;
	int known;
	uint32_t value;
} ts_counter;

#define TS_MAX_COUNTERS 64

void ts_session_list_free(ts_session_list *l);
void ts_process_list_free(ts_process_list *l);

/* ---- response parsers (untrusted input; used by the calls, tests, fuzzers) */

/* Each returns 0 and fills its output, or -1 with e set. The HRESULT / pResult
 * the server returned is stored in *status; a failure status is not a parse
 * error (the caller decides). */
int tsts_parse_all_sessions(const uint8_t *p, size_t n, ts_session_list *out, uint32_t *status,
			    ts_err *e);
int tsts_parse_enum_result(const uint8_t *p, size_t n, ts_session_list *out, uint32_t *status,
			   ts_err *e);
int tsts_parse_info_ex(const uint8_t *p, size_t n, ts_session *s, uint32_t *status, ts_err *e);
int tsts_parse_info12(const uint8_t *p, size_t n, ts_session *s, uint32_t *status, ts_err *e);
/* legacy: *ok is the BOOLEAN the method returned */
int tsts_parse_query_info8(const uint8_t *p, size_t n, ts_session *s, uint32_t *status, int *ok,
			   ts_err *e);
int tsts_parse_query_create(const uint8_t *p, size_t n, ts_create *c, uint32_t *status, int *ok,
			    ts_err *e);
int tsts_parse_legacy_enum(const uint8_t *p, size_t n, ts_session_list *out, uint32_t *index,
			   uint32_t *status, int *ok, ts_err *e);
/* classes WinStationWd (3) and WinStationPd (4); *returned is the
 * pReturnLength (the size needed when the buffer was too small) */
int tsts_parse_query_wd(const uint8_t *p, size_t n, ts_drivers *d, uint32_t *status, int *ok,
			uint32_t *returned, ts_err *e);
int tsts_parse_query_pd(const uint8_t *p, size_t n, ts_drivers *d, uint32_t *status, int *ok,
			uint32_t *returned, ts_err *e);
/* RpcGetSessionCounters (legacy = 0) or RpcWinStationGetTermSrvCountersValue
 * (legacy = 1): the n counters asked for, in v[], values filled in place.
 * *ok is the legacy BOOLEAN (1 for the LSM call). */
int tsts_parse_counters(const uint8_t *p, size_t n, int legacy, ts_counter *v, size_t count,
			uint32_t *status, int *ok, ts_err *e);
int tsts_parse_processes(const uint8_t *p, size_t n, ts_process_list *out, uint32_t *status,
			 int *ok, ts_err *e);
int tsts_parse_client_data(const uint8_t *p, size_t n, ts_client *c, uint32_t *status, ts_err *e);
int tsts_parse_remote_address(const uint8_t *p, size_t n, ts_client *c, uint32_t *status,
			      ts_err *e);
/* 16 address bytes (network order) -> RFC 5952 text: lowercase, no leading
 * zeros, the longest run of two or more zero groups as "::", IPv4-mapped as
 * ::ffff:a.b.c.d. cap must be at least 46 (else out is ""). */
void tsts_ipv6_string(const uint8_t *a, char *out, size_t cap);
/* converts a binary SID to its string form; -1 when malformed */
int tsts_sid_string(const uint8_t *p, size_t n, char *out, size_t cap);

/* ---- the connection ------------------------------------------------------- */

typedef struct ts_opts {
	smb_opts smb;
	int rpc_auth;        /* TS_RPC_NTLM (1) / TS_RPC_KERBEROS (2): packet privacy;
			      * TS_RPC_NONE (0): the SMB identity only */
	krb_opts krb;        /* with TS_RPC_KERBEROS */
	uint16_t max_frag;   /* largest response fragment we accept (0 = 4280) */
	/* what the pipes run over (transport.h): &smb_transport in production,
	 * a memory transport in the fuzzers and tests */
	const ts_connector *transport;
	/* tests and tools: NTLM in test mode (NULL in production) */
	const ntlm_fixed *ntlm_fixed;
} ts_opts;

/* TS_PIPE_LSA: \PIPE\lsarpc, for account names (lsat.h) */
enum ts_pipe_id { TS_PIPE_LSM = 0, TS_PIPE_RCM, TS_PIPE_LEGACY, TS_PIPE_LSA, TS_NPIPES };

typedef struct ts_stats {
	smb_stats smb;
	rpc_stats rpc;
} ts_stats;

typedef struct ts_conn ts_conn;

/* Checks the host, logs on over SMB and opens the LSM pipe (which tells
 * whether the host has one); nothing is bound yet. */
ts_conn *ts_open(const ts_opts *o, ts_err *e);
void ts_close(ts_conn *c);
const ts_stats *ts_get_stats(const ts_conn *c);
/* 1 = present, 0 = absent, -1 = not tried yet */
int ts_pipe_present(const ts_conn *c, int pipe);
/* Opens and binds a pipe (if not done yet) without calling anything on it:
 * tells whether the pipe exists and accepts our authentication. */
int ts_probe(ts_conn *c, int pipe, ts_err *e);

/* Listing. method: 1 = RpcGetAllSessions, 2 = OpenEnum/GetEnumResult,
 * 3 = legacy RpcWinStationEnumerate (+ one query per session for users).
 * prefer 0 = best available. */
int ts_list_sessions(ts_conn *c, int prefer, ts_session_list *out, int *method, ts_err *e);
/* Times and details of one session. source: 1 = legacy class 8 (server clock),
 * 2 = RpcGetSessionInformationEx, 3 = RpcGetSessionInformation; 0 = best. */
int ts_session_info(ts_conn *c, uint32_t id, int prefer, ts_session *s, int *source, ts_err *e);
/* The server's current time (FILETIME) through legacy class 8 on any session. */
int ts_server_time(ts_conn *c, uint32_t probe_id, uint64_t *now, ts_err *e);
int ts_client_info(ts_conn *c, uint32_t id, ts_client *out, ts_err *e);
/* A session's (normally a listener's, id >= 65536) WINSTATIONCREATE through
 * legacy RpcWinStationQueryInformation class 0: one call (and OpenServer if
 * the legacy handle is not open yet). */
int ts_create_data(ts_conn *c, uint32_t id, ts_create *out, ts_err *e);
/* A session's winstation and transport drivers (qwinsta TYPE and DEVICE):
 * legacy classes WinStationWd and WinStationPd, two calls (and OpenServer
 * if the legacy handle is not open yet). */
int ts_session_drivers(ts_conn *c, uint32_t id, ts_drivers *out, ts_err *e);
/* Terminal Services counters (qwinsta /counter): v[i].id set by the caller.
 * LSM RpcGetSessionCounters, else legacy RpcWinStationGetTermSrvCountersValue;
 * *via = 1 (LSM) or 2 (legacy). One call. */
int ts_counters(ts_conn *c, ts_counter *v, size_t n, int *via, ts_err *e);

/* Actions. Each returns 0, or -1 with e set to the server's answer. */
int ts_reset(ts_conn *c, uint32_t id, int wait, ts_err *e);
int ts_logoff(ts_conn *c, uint32_t id, ts_err *e);
int ts_disconnect(ts_conn *c, uint32_t id, ts_err *e);
int ts_connect_session(ts_conn *c, uint32_t source, uint32_t target, const char *password,
		       ts_err *e);
int ts_message(ts_conn *c, uint32_t id, const char *title, const char *text, uint32_t style,
	       uint32_t timeout_s, int wait, uint32_t *answer, ts_err *e);
int ts_processes(ts_conn *c, ts_process_list *out, ts_err *e);
int ts_kill(ts_conn *c, uint32_t pid, uint32_t exit_code, ts_err *e);
int ts_shutdown(ts_conn *c, uint32_t flags, ts_err *e);
/* Account names of n SIDs through \PIPE\lsarpc (opened and bound on first
 * use, kept for later lookups): LsarOpenPolicy2, LsarLookupSids2, LsarClose. */
int ts_lookup_sids(ts_conn *c, const char *const *sids, size_t n, lsat_names *out, ts_err *e);

#endif
