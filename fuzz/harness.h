/*
 * Drivers shared by the fuzz targets, the capture tool and the test kit:
 * they run the real C core against a server whose bytes come from memory.
 *
 *   harness_engine: rpc_bind + rpc_call over one pipe (plain or NTLM-sealed)
 *   harness_parse:  one tsts_parse_* on one stub, chosen by a selector
 *   harness_client: the whole MS-TSTS client (ts_open .. ts_shutdown) over
 *                   the in-memory smbpipe of fuzz/memsmb.c
 *
 * Sealed replays work because NTLM runs in test mode (fixed exported
 * session key and client challenge, see harness_fix_ntlm): the keys, hence
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
#include "tsts.h"

/* Called when the core breaks a promise the harness checks (see
 * harness.c); NULL (the default, for the fuzzers) prints and aborts. */
extern void (*harness_violation_hook)(const char *what);

/* The values every pipe's NTLM context uses in the harnesses and in the
 * capture tool. */
void harness_fix_ntlm(ntlm_ctx *c);

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

/* fuzz/memsmb.c: the smbpipe.h API over one in-memory server stream, the
 * one attached here (NULL detaches). Each pipe open consumes one outcome
 * byte (0 = opened, 1 = ENOENT, 2 = EACCES, 3 and up = ECONNRESET); reads
 * take the next bytes, whichever pipe asks. A read past the end times out
 * and ends the stream: the server never answers again. */
void memsmb_attach(mem_stream *s);
enum { MEMSMB_OPEN_OK = 0, MEMSMB_OPEN_ENOENT = 1, MEMSMB_OPEN_EACCES = 2, MEMSMB_OPEN_OTHER = 3 };

/* fuzz/fixntlm.c, linked with -Wl,--wrap=ntlm_init: every context the core
 * sets up runs in test mode (harness_fix_ntlm). */

/* Client input: one config byte (bit 0: NTLM packet privacy), then the
 * server stream as fuzz/memsmb.c reads it (one outcome byte per pipe open,
 * then each pipe's bytes as the client reads them). Runs a fixed script of
 * every ts_* call, each after the previous one whatever it returned. */
void harness_client(const uint8_t *data, size_t n, harness_result *r);

/* Appends one step's outcome to r and checks the error contract (a failure
 * has a code other than "ok" and a message; abort() otherwise). */
harness_step *harness_record(harness_result *r, const char *name, int rc, const ts_err *e);

/* The script, for the capture tool: the same calls in the same order. */
void harness_script(ts_conn *c, harness_result *r);

#endif
