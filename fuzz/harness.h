/*
 * Drivers shared by the fuzz targets, the capture tool and the test kit:
 * they run the real C core against a server whose bytes come from memory.
 *
 *   harness_engine: rpc_bind + rpc_call over one pipe (plain or NTLM-sealed)
 *   harness_parse:  one tsts_parse_* on one stub, chosen by a selector
 *   harness_client: the whole MS-TSTS client (ts_open .. ts_shutdown) over
 *                   the memory transport of fuzz/memtransport.c
 *
 * Sealed replays work because NTLM runs in test mode (fixed exported
 * session key and client challenge, harness_ntlm, given to the core through
 * ts_opts.ntlm_fixed): the keys, hence
 * every server seal, depend on nothing else. A conversation captured from
 * the simulator with the same fixed values verifies again in memory, so
 * the fuzzer starts past the signature check.
 */
#ifndef TERMSRV_FUZZ_HARNESS_H
#define TERMSRV_FUZZ_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "dcerpc.h"
#include "ntlmssp.h"
#include "transport.h"
#include "tsts.h"

/* Called when the core breaks a promise the harness checks (see
 * harness.c); NULL (the default, for the fuzzers) prints and aborts. */
extern void (*harness_violation_hook)(const char *what);

/* The test-mode values every NTLM context uses in the harnesses and in the
 * capture tool (ntlm_fix). */
extern const ntlm_fixed harness_ntlm;

/* A server byte stream in memory; reads past its end fail like a server
 * that stopped answering (ETIMEDOUT), writes are discarded. */
typedef struct mem_stream {
	const uint8_t *p;
	size_t len, off;
} mem_stream;
int mem_stream_read(void *ud, uint8_t *p, size_t n, ts_err *e);
int mem_stream_write(void *ud, const uint8_t *p, size_t n, ts_err *e);

#define HARNESS_MAX_STEPS 64

typedef struct harness_step {
	const char *name;   /* engine: "call"; client: the ts_* function */
	const char *code;   /* NULL = success, else the error code */
	uint32_t status;    /* the error's raw status */
	size_t len;         /* engine: stub bytes returned */
	int parsed;         /* engine with parse: the parser ran (1) */
	const char *parse_code;  /* engine with parse: parser result, NULL = ok */
} harness_step;

typedef struct harness_result {
	int nsteps;
	harness_step step[HARNESS_MAX_STEPS];
	size_t consumed;    /* server bytes read */
	int parses;         /* tsts_parse_* calls made by harness_engine */
} harness_result;

/* Engine input: one config byte, then the server's bytes for this pipe.
 *   bits 0-1: number of presentation contexts - 1 (TermSrvEnumeration,
 *             TermSrvSession, RCMPublic, LegacyAPI in that order)
 *   bit 2:    send large (multi-fragment) request stubs
 * Binds, then calls until the stream ends or the connection breaks.
 * sealed: NTLM packet privacy in test mode.
 * parse: -1 = none, else the selector of harness_parse to run on every
 * successful response (the tests use it to show what reaches a parser). */
void harness_engine(const uint8_t *data, size_t n, int sealed, int parse, harness_result *r);

/* Parser selectors, in the order of the names below. */
enum {
	HP_ALL_SESSIONS, HP_ENUM_RESULT, HP_INFO_EX, HP_INFO12, HP_QUERY_INFO8,
	HP_LEGACY_ENUM, HP_PROCESSES, HP_CLIENT_DATA, HP_REMOTE_ADDRESS, HP_QUERY_CREATE, HP_QUERY_WD,
	HP_QUERY_PD, HP_COUNTERS, HP_LEGACY_COUNTERS, HP_COUNT
};
extern const char *const harness_parser_names[HP_COUNT];
/* The parser the core uses for a response of (pipe, context, opnum), or -1. */
int harness_parser_for(const char *pipe, int ctx, unsigned opnum);
/* Runs one parser; returns its rc and sets *code (NULL on success). */
int harness_parse(int which, const uint8_t *p, size_t n, const char **code);

/* fuzz/memtransport.c: a transport (transport.h) whose server lives in
 * memory, in one of two modes:
 *   stream: one scripted server byte stream for the whole connection. Each
 *     pipe open consumes one outcome byte (0 = opened, 1 = ENOENT,
 *     2 = EACCES, 3 and up = ECONNRESET); reads take the next bytes,
 *     whichever pipe asks; writes are discarded. A read past the end times
 *     out and ends the stream: the server never answers again.
 *   server: every fragment the client writes goes to a callback, which
 *     appends the server's answer (read back by the pipe; a read past it
 *     times out and kills the pipe). A callback that fails (-1) resets the
 *     pipe. Pipes always open.
 * mem_transport_connect is a ts_connect_fn whose arg is a mem_transport
 * (which must outlive the connection). */
typedef struct mem_server {
	int (*serve)(void *ud, const char *pipe, const uint8_t *p, size_t n, wbuf *answer);
	void *ud;
} mem_server;
typedef struct mem_transport {
	mem_stream *stream;        /* stream mode, or NULL */
	const mem_server *server;  /* server mode (stream NULL) */
} mem_transport;
int mem_transport_connect(void *arg, const smb_opts *o, smb_stats *stats, ts_transport *out,
			  ts_err *e);
enum { MEM_OPEN_OK = 0, MEM_OPEN_ENOENT = 1, MEM_OPEN_EACCES = 2, MEM_OPEN_OTHER = 3 };

/* Client input: one config byte (bit 0: NTLM packet privacy), then the
 * server stream as the memory transport reads it (one outcome byte per pipe open,
 * then each pipe's bytes as the client reads them). Runs a fixed script of
 * every ts_* call, each after the previous one whatever it returned. */
void harness_client(const uint8_t *data, size_t n, harness_result *r);

/* fuzz/krbflip.c: a genuine sealed Kerberos response, every bit of it
 * flipped. The client binds the LSM pipe with Kerberos (credentials from
 * ccache, target spn; raw = auth type 16, else SPNEGO 9) over the memory
 * transport, whose server is a GSS acceptor in this process (keytab); the
 * server seals stub as the response to one call (opnum on LSM context ctx:
 * 0 TermSrvEnumeration, 1 TermSrvSession). Each
 * flipped copy goes to the client's receive path on the association as it
 * was after the bind; then the genuine one (the control, parsed with
 * parser), then the genuine one again (a replay). */
typedef struct krb_flip_opts {
	const char *ccache, *keytab, *spn;
	int raw;
	int ctx;
	uint16_t opnum;
	int parser;               /* harness_parse selector for the control */
	const uint8_t *stub;
	size_t stub_len;
} krb_flip_opts;
typedef struct krb_flip_result {
	char error[300];          /* set when the setup failed (rc -1) */
	int auth_type, header_sign, request_ok;
	size_t sig_len, resp_len;
	uint8_t *resp;            /* the genuine response PDU */
	long nbits;
	const char **codes;       /* per bit: the error code, NULL = accepted */
	int flip_parses;          /* parser runs during the flips */
	int parses;               /* in all */
	const char *control_code; /* NULL = the genuine response was accepted */
	int control_parsed;
	const char *parse_code;   /* the control's parser result (NULL = ok) */
	const char *replay_code;
} krb_flip_result;
int harness_krb_flips(const krb_flip_opts *o, krb_flip_result *r);
void harness_krb_flips_free(krb_flip_result *r);

/* Appends one step's outcome to r and checks the error contract (a failure
 * has a code other than "ok" and a message; abort() otherwise). */
harness_step *harness_record(harness_result *r, const char *name, int rc, const ts_err *e);

/* The script, for the capture tool: the same calls in the same order. */
void harness_script(ts_conn *c, harness_result *r);

#endif
