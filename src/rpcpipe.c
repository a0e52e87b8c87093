/*
 * Pipes and credentials (see rpcpipe.h).
 */
#include "rpcpipe.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static int ntlm_secret(ts_creds *c, const smb_opts *o, ts_err *e)
{
	const char *s = o->secret ? o->secret : "";
	int rc = 0;
	if (o->secret_is_nthash) {
		rc = strlen(s) == 32 ? 0 : -1;
		for (int i = 0; i < 32 && rc == 0; i++) {
			int d = hexval(s[i]);
			if (d < 0)
				rc = -1;
			else
				c->nthash[i / 2] = (uint8_t)(c->nthash[i / 2] << 4 | d);
		}
	} else {
		rc = ntlm_nt_hash(s, c->nthash) == NTLM_OK ? 0 : -1;
	}
	if (rc < 0)
		return ts_fail(e, TS_K_NONE, 0, "invalid_parameter",
			       o->secret_is_nthash ? "nthash must be 32 hexadecimal digits"
						   : "the password is not valid UTF-8");
	return 0;
}

int ts_creds_init(ts_creds *c, int rpc_auth, const smb_opts *smb, const krb_opts *krb,
		  ts_err *e)
{
	memset(c, 0, sizeof *c);
	c->rpc_auth = rpc_auth;
	(void)snprintf(c->user, sizeof c->user, "%s", smb->user ? smb->user : "");
	(void)snprintf(c->domain, sizeof c->domain, "%s", smb->domain ? smb->domain : "");
	if (gethostname(c->workstation, sizeof c->workstation) != 0)
		c->workstation[0] = '\0';
	c->workstation[15] = '\0'; /* a NetBIOS name */
	if (rpc_auth == TS_RPC_NTLM && ntlm_secret(c, smb, e) < 0)
		return -1;
	/* a keytab serves a Kerberos SMB logon even when RPC does not use it */
	if (rpc_auth == TS_RPC_KERBEROS || (smb->kerberos && krb->keytab)) {
		c->krb = krb_cred_new(krb, e);
		return c->krb ? 0 : -1;
	}
	return 0;
}

void ts_creds_wipe(ts_creds *c)
{
	krb_cred_free(c->krb);
	ntlm_memwipe(c, sizeof *c);
}

int rpc_pipe_unusable(const rpc_pipe *p)
{
	return p->tp && (p->tr->ops->dead(p->tp) || p->rpc.broken);
}

void rpc_pipe_drop(rpc_pipe *p)
{
	if (p->tp)
		p->tr->ops->close(p->tp);
	p->tp = NULL;
	rpc_sec_wipe(&p->sec);
	ntlm_wipe(&p->ntlm);
	memset(&p->rpc, 0, sizeof p->rpc);
}

int rpc_pipe_open(rpc_pipe *p, const ts_transport *t, ts_err *e)
{
	p->tr = t;
	p->tp = t->ops->open(t->conn, p->name, e);
	if (p->tp) {
		p->present = 1;
		return 0;
	}
	if (e->kind == TS_K_ERRNO && e->status == ENOENT) {
		p->present = 0;
		e->code = p->absent_code;
		ts_detail(e, "\\PIPE\\%s does not exist on the host", p->name);
	}
	return -1;
}

/* The security provider the credentials call for. */
static int pipe_security(rpc_pipe *p, const ts_creds *cr, ts_err *e)
{
	if (cr->rpc_auth == TS_RPC_NTLM) {
		if (ntlm_init(&p->ntlm, cr->user, cr->domain, cr->workstation, NULL, cr->nthash) !=
		    NTLM_OK)
			return ts_fail(e, TS_K_NONE, 0, "invalid_parameter",
				       "user or domain name is too long or not valid UTF-8");
		if (cr->ntlm_test)
			ntlm_fix(&p->ntlm, &cr->ntlm_fixed);
		rpc_sec_ntlm(&p->sec, &p->ntlm);
	} else if (cr->rpc_auth == TS_RPC_KERBEROS) {
		if (rpc_sec_krb5(&p->sec, cr->krb, e) < 0)
			return -1;
	} else {
		return 0;
	}
	p->rpc.sec = &p->sec;
	return 0;
}

int rpc_pipe_bind(rpc_pipe *p, const ts_transport *t, const ts_creds *cr, uint16_t max_frag,
		  rpc_stats *stats, ts_err *e)
{
	if (!p->tp && rpc_pipe_open(p, t, e) < 0)
		return -1;
	if (p->rpc.bound)
		return 0;
	rpc_io io = {p->tp, p->tr->ops->write, p->tr->ops->read};
	rpc_init(&p->rpc, io, p->name, max_frag, stats);
	if (pipe_security(p, cr, e) < 0 || rpc_bind(&p->rpc, p->ifaces, p->nif, e) < 0) {
		rpc_pipe_drop(p);
		return -1;
	}
	return 0;
}
