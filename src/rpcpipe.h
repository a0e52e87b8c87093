/*
 * One layer between the MS-TSTS calls (tsts.c) and DCE/RPC (dcerpc.c): the
 * credentials of a host connection, and pipes that are opened on the
 * connection's transport (transport.h: SMB in production, memory in the
 * fuzzers and tests), given a security provider (NTLM, Kerberos or none,
 * from the credentials) and bound. tsts.c only makes calls on a bound pipe.
 */
#ifndef TERMSRV_RPCPIPE_H
#define TERMSRV_RPCPIPE_H

#include <stdint.h>

#include "dcerpc.h"
#include "errors.h"
#include "krb5sec.h"
#include "ntlmssp.h"
#include "smbpipe.h"
#include "transport.h"

enum { TS_RPC_NONE = 0, TS_RPC_NTLM = 1, TS_RPC_KERBEROS = 2 };

/* What every pipe of a host authenticates with. */
typedef struct ts_creds {
	int rpc_auth;                 /* TS_RPC_* */
	char user[NTLM_MAX_NAME + 1];
	char domain[NTLM_MAX_NAME + 1];
	char workstation[64];
	uint8_t nthash[16];           /* NTLM */
	krb_cred *krb;                /* Kerberos */
	int ntlm_test;                /* tests: every NTLM context in test mode with ntlm_fixed */
	ntlm_fixed ntlm_fixed;
} ts_creds;

/* Takes the credentials out of the options (smb.user/domain/secret for
 * NTLM; krb for Kerberos, whose credentials are acquired here). */
int ts_creds_init(ts_creds *c, int rpc_auth, const smb_opts *smb, const krb_opts *krb,
		  ts_err *e);
/* Releases and wipes every secret. */
void ts_creds_wipe(ts_creds *c);

typedef struct rpc_pipe {
	const char *name;
	const rpc_iface *ifaces[RPC_MAX_CTX];
	int nif;
	const char *absent_code;      /* the error code when the pipe does not exist */
	const ts_transport *tr;       /* the connection the pipe is open on */
	void *tp;                     /* the open pipe, NULL when closed */
	rpc_conn rpc;
	rpc_sec sec;
	ntlm_ctx ntlm;
	int present;                  /* -1 unknown, 0 absent, 1 present */
} rpc_pipe;

/* Opens \PIPE\<name> on the transport t, which must outlive the pipe
 * (over SMB, the first open of a connection logs on). */
int rpc_pipe_open(rpc_pipe *p, const ts_transport *t, ts_err *e);
/* Opens (if needed) and binds (if not bound) the pipe. */
int rpc_pipe_bind(rpc_pipe *p, const ts_transport *t, const ts_creds *cr, uint16_t max_frag,
		  rpc_stats *stats, ts_err *e);
/* Closes the pipe and forgets its association and security context. */
void rpc_pipe_drop(rpc_pipe *p);
/* The pipe cannot be used again (dead transport or broken stream). */
int rpc_pipe_unusable(const rpc_pipe *p);

#endif
