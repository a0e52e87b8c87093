/*
 * The Kerberos provider of the security seam (rpcsec.h), on MIT krb5's
 * GSS-API: DCE style (AP-REQ in the bind, AP-REP in the bind_ack, the
 * client's own AP-REP as the third leg), packet privacy with
 * gss_wrap_iov / gss_unwrap_iov, header signing when the server acks it.
 * Auth type 9 wraps the tokens in SPNEGO (spnego.h), the third leg in an
 * alter_context; auth type 16 sends them raw, the third leg in rpc_auth_3.
 *
 * krb_cred holds the client's credentials and the target name, once per
 * host connection; every pipe makes its own security context from it.
 */
#ifndef TERMSRV_KRB5SEC_H
#define TERMSRV_KRB5SEC_H

#include "errors.h"
#include "rpcsec.h"

typedef struct krb_opts {
	const char *host;       /* the host as the user named it: SPN host/<host> */
	const char *spn;        /* overrides the SPN ("host/ts01.corp.example[@REALM]") */
	const char *ccache;     /* credential cache; NULL = KRB5CCNAME or the default */
	const char *keytab;     /* client keytab (needs principal): the TGT in a private
				 * cache, removed with the krb_cred */
	const char *principal;  /* client principal for keytab or password */
	const char *password;   /* get a ticket with it (in memory, no kinit) */
	int raw;                /* 1 = auth type 16 (raw Kerberos), 0 = SPNEGO (9) */
} krb_opts;

typedef struct krb_cred krb_cred;

/* Checks the names and acquires the credentials (a password is used here
 * and not kept). A host given as an IP address with no spn fails with
 * code "krb_needs_name". */
krb_cred *krb_cred_new(const krb_opts *o, ts_err *e);
/* Frees c; a private credential cache (keytab) is overwritten and removed
 * (by the process that made it only: a forked copy leaves it). */
void krb_cred_free(krb_cred *c);

/* The credential cache the SMB logon must use for the same identity as the
 * RPC binds: the private one a keytab's TGT went to, or the ccache option;
 * NULL = the caller's KRB5CCNAME or default (and a password logs on by
 * itself). Valid while c lives. */
const char *krb_cred_smb_ccache(const krb_cred *c);

/* The client principal ("user@REALM") of c, and the seconds its credentials
 * have left (0 = expired, -1 = no limit) when lifetime is not NULL. */
int krb_cred_principal(const krb_cred *c, char *out, size_t cap, long *lifetime, ts_err *e);

/* Gets (and so proves) a service ticket for service/host, or for spn when
 * given, without contacting the host; name gets the SPN asked for. A host
 * given as an address with no spn fails with "krb_needs_name". */
int krb_service_ticket(const krb_cred *c, const char *service, const char *host, const char *spn,
		       char *name, size_t cap, ts_err *e);

/* Sets s up as a new Kerberos security context on c (which must outlive
 * it); rpc_sec_wipe releases it. */
int rpc_sec_krb5(rpc_sec *s, krb_cred *c, ts_err *e);

/* Records a GSS-API failure: kind TS_K_KRB5 with the Kerberos code when the
 * mechanism gave one, else a code from the major status. */
int krb_fail(ts_err *e, uint32_t major, uint32_t minor, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
