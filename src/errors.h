/*
 * One table of failure codes for the whole core: NTSTATUS, HRESULT, Win32,
 * DCE/RPC fault and bind_nak numbers, and transport errno values, each mapped
 * to a stable code a script can branch on, a symbolic name, a message, and a
 * hint a person can act on.
 */
#ifndef TERMSRV_ERRORS_H
#define TERMSRV_ERRORS_H

#include <stdint.h>
#include <stddef.h>

/* Where a status number comes from: the same number means different things
 * in different spaces (5 is an RPC fault and a Win32 error, for instance). */
enum ts_kind {
	TS_K_NONE = 0,   /* our own check failed; no number from the peer */
	TS_K_NTSTATUS,
	TS_K_HRESULT,
	TS_K_WIN32,
	TS_K_FAULT,      /* DCE/RPC fault PDU status */
	TS_K_BINDNAK,    /* bind_nak provider reject reason */
	TS_K_BINDRES,    /* bind_ack per-context result reason */
	TS_K_ERRNO,      /* libsmbclient / socket errno */
	TS_K_KRB5,       /* MIT krb5 error code (com_err, as uint32) */
};

typedef struct ts_err {
	int kind;            /* enum ts_kind */
	uint32_t status;     /* raw number, meaningful when kind != TS_K_NONE */
	const char *code;    /* stable code; NULL = take it from the table */
	char what[128];      /* what failed, e.g. "open \\PIPE\\LSM_API_service" */
	char detail[160];    /* optional detail; replaces the table message */
} ts_err;

typedef struct ts_status_info {
	int kind;
	uint32_t value;
	const char *name;    /* e.g. "E_ACCESSDENIED" */
	const char *code;    /* stable code, e.g. "access_denied" */
	const char *message; /* one short sentence */
	const char *hint;    /* what to do about it, or NULL for the code's hint */
} ts_status_info;

/* Records a failure. fmt describes what failed (printf-style). Returns -1 so
 * callers can `return ts_fail(...)`. */
int ts_fail(ts_err *e, int kind, uint32_t status, const char *code,
	    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Adds a detail sentence to an error already set. */
void ts_detail(ts_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Looks a status up; returns NULL when it is not in the table. A HRESULT of
 * the form 0x8007xxxx not in the table is looked up as Win32 xxxx. */
const ts_status_info *ts_status_lookup(int kind, uint32_t value);

/* Resolved view of an error: code, symbolic name, message, hint (never NULL
 * pointers; name and message may be "" when the table has nothing to add to
 * what failed). */
typedef struct ts_err_view {
	const char *code;
	const char *name;
	const char *message;
	const char *hint;
} ts_err_view;
void ts_err_resolve(const ts_err *e, ts_err_view *v);

/* Hint for a stable code (the generic advice), or "" when none. */
const char *ts_code_hint(const char *code);

/* Name of a status kind ("NTSTATUS", "HRESULT", ...). */
const char *ts_kind_name(int kind);

/* Every table row, for termsrv.strerror and the tests. */
const ts_status_info *ts_status_table(size_t *n);

#endif
