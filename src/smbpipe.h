/*
 * Named pipes on \\host\IPC$ through libsmbclient: one SMB context (one
 * connection, one logon) per host handle, any number of pipes on it.
 */
#ifndef TERMSRV_SMBPIPE_H
#define TERMSRV_SMBPIPE_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

typedef struct smb_opts {
	const char *host;        /* name or address as the user gave it */
	int port;                /* 0 = 445 */
	const char *user;
	const char *domain;
	const char *secret;      /* password, or the NT hash as 32 hex digits */
	int secret_is_nthash;
	int kerberos;            /* use the Kerberos credential cache for SMB */
	int ntlm_fallback;       /* with kerberos and a password: NTLM when Kerberos fails
				  * (only when the caller asked for NTLM) */
	const char *krb5ccname;  /* with kerberos: the credential cache the logon reads
				  * (KRB5CCNAME only around it); NULL = the caller's */
	int timeout_ms;          /* each SMB exchange (0 = 20000) */
	int connect_timeout_ms;  /* TCP connect check (0 = 5000) */
} smb_opts;

typedef struct smb_stats {
	uint64_t tcp_connects;   /* our reachability checks */
	uint64_t opens;          /* pipe opens (SMB CREATE; the first also logs on) */
	uint64_t writes;         /* SMB WRITEs */
	uint64_t reads;          /* SMB READs */
	uint64_t closes;
} smb_stats;

typedef struct smb_conn smb_conn;
typedef struct smb_pipe smb_pipe;

/* Resolves and checks the host (TCP connect within connect_timeout_ms), then
 * prepares the SMB context. Nothing is sent over SMB until the first open. */
smb_conn *smb_conn_new(const smb_opts *o, smb_stats *stats, ts_err *e);
/* Drops the connection without a word (no CLOSE, TREE_DISCONNECT or LOGOFF
 * and no waiting for their answers): the server runs the session down when
 * TCP closes. Only smb_pipe_close and smb_conn_free may follow. */
void smb_conn_drop(smb_conn *c);
/* Frees the connection (dropping it first). */
void smb_conn_free(smb_conn *c);
const char *smb_conn_host(const smb_conn *c);

/* Opens \PIPE\<name>. ENOENT from the server (pipe absent) comes back with
 * e->kind = TS_K_ERRNO, status ENOENT. */
smb_pipe *smb_pipe_open(smb_conn *c, const char *name, ts_err *e);
int smb_pipe_write(void *pipe, const uint8_t *p, size_t n, ts_err *e);
int smb_pipe_read(void *pipe, uint8_t *p, size_t n, ts_err *e);
/* A pipe whose read timed out or failed cannot be reused (libsmbclient loses
 * the bytes of a timed-out read); the owner closes and reopens it. */
int smb_pipe_dead(const smb_pipe *p);
void smb_pipe_close(smb_pipe *p);
const char *smb_pipe_name(const smb_pipe *p);

#endif
