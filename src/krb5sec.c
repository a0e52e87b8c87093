/*
 * Kerberos for DCE/RPC through MIT's GSS-API (KERBEROS-NOTES.md 3.2 has the
 * recipe). No Kerberos crypto here: GSS makes and checks every token and
 * every seal; this file frames them and maps the failures.
 */
#include "krb5sec.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gssapi/gssapi.h>
#include <gssapi/gssapi_ext.h>
#include <gssapi/gssapi_krb5.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spnego.h"

/* ERROR_TABLE_BASE_krb5: protocol error n is this + n */
#define KRB5_ERROR_BASE (-1765328384L)
#define ST_BAD_INTEGRITY 0x96C73A1Fu  /* KRB5KRB_AP_ERR_BAD_INTEGRITY */
#define ST_PREAUTH_FAILED 0x96C73A18u /* KRB5KDC_ERR_PREAUTH_FAILED */
#define WANT_FLAGS (GSS_C_MUTUAL_FLAG | GSS_C_DCE_STYLE | GSS_C_CONF_FLAG | GSS_C_INTEG_FLAG | \
		    GSS_C_REPLAY_FLAG | GSS_C_SEQUENCE_FLAG)
/* supplementary statuses of gss_unwrap_iov that mean a replayed, reordered
 * or missing response: on a stream they are protocol errors */
#define SUPP_SEQ (GSS_S_DUPLICATE_TOKEN | GSS_S_OLD_TOKEN | GSS_S_UNSEQ_TOKEN | GSS_S_GAP_TOKEN)

struct krb_cred {
	gss_cred_id_t cred;
	gss_name_t target;
	int raw;
	char spn[300];
	/* the credential cache the SMB logon reads (KRB5CCNAME around it):
	 * empty = the caller's; for a keytab, a private one in ccdir */
	char ccname[300];
	char ccdir[256];
	pid_t owner;           /* the process that made ccdir (a fork leaves it) */
};

typedef struct krb_sec {
	krb_cred *cred;
	gss_ctx_id_t ctx;
	int established;
	wbuf mechtypes;        /* DER of our SPNEGO mechTypes, for a mechListMIC */
} krb_sec;

static gss_OID_desc krb5_oid = {9, (void *)"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02"};
static gss_OID_set_desc krb5_set = {1, &krb5_oid};

int krb_fail(ts_err *e, uint32_t major, uint32_t minor, const char *fmt, ...)
{
	if (!e)
		return -1;
	char what[sizeof e->what];
	va_list ap;
	va_start(ap, fmt);
	(void)vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	uint32_t routine = GSS_ROUTINE_ERROR(major);
	const char *code = NULL;
	if (routine == GSS_S_NO_CRED)
		code = "krb_no_ticket";
	else if (routine == GSS_S_CREDENTIALS_EXPIRED)
		code = "krb_ticket_expired";
	else if (routine == GSS_S_BAD_SIG)
		code = "bad_signature";
	/* the Kerberos code names the problem better than the GSS one, when
	 * the status table knows it */
	if (minor && ts_status_lookup(TS_K_KRB5, minor))
		code = NULL;
	/* an expired cache comes with a minor status that is no Kerberos code
	 * (MIT's mechanism glue maps the mechanism's 0 to a number of its own,
	 * which reads "Success"): the routine error says it all */
	else if (routine == GSS_S_CREDENTIALS_EXPIRED || routine == GSS_S_NO_CRED) {
		ts_fail(e, TS_K_NONE, 0, code, "%s", what);
		ts_detail(e, routine == GSS_S_NO_CRED ? "no Kerberos credentials"
						     : "the tickets have expired");
		return -1;
	}
	ts_fail(e, minor ? TS_K_KRB5 : TS_K_NONE, minor, minor || code ? code : "krb_failed", "%s",
		what);
	/* the mechanism's own text, for the detail */
	OM_uint32 m2, more = 0;
	gss_buffer_desc s = GSS_C_EMPTY_BUFFER;
	if (minor)
		(void)gss_display_status(&m2, minor, GSS_C_MECH_CODE, &krb5_oid, &more, &s);
	else
		(void)gss_display_status(&m2, major, GSS_C_GSS_CODE, GSS_C_NO_OID, &more, &s);
	if (s.length)
		ts_detail(e, "%.*s", (int)(s.length < 150 ? s.length : 150), (const char *)s.value);
	(void)gss_release_buffer(&m2, &s);
	return -1;
}

static int is_address(const char *h)
{
	unsigned char buf[16];
	char tmp[64];
	(void)snprintf(tmp, sizeof tmp, "%s", h);
	/* "[::1]" too */
	if (tmp[0] == '[') {
		char *end = strchr(tmp, ']');
		if (end)
			*end = '\0';
		memmove(tmp, tmp + 1, strlen(tmp));
	}
	return inet_pton(AF_INET, tmp, buf) == 1 || inet_pton(AF_INET6, tmp, buf) == 1;
}

static int import_name(const char *s, gss_OID type, gss_name_t *out, ts_err *e, const char *what)
{
	OM_uint32 maj, min;
	gss_buffer_desc b = {strlen(s), (void *)s};
	maj = gss_import_name(&min, &b, type, out);
	if (GSS_ERROR(maj))
		return krb_fail(e, maj, min, "Kerberos %s name \"%.60s\"", what, s);
	return 0;
}

/* A private FILE credential cache for the SMB logon: libsmbclient's
 * Kerberos is Samba's bundled Heimdal, which cannot see MIT's MEMORY:
 * caches (another library's memory), so a keytab's TGT must reach it
 * through a file: FILE:<dir>/cc in a fresh mkdtemp directory (mode 0700,
 * unpredictable name); MIT creates the file 0600. remove_private deletes
 * it again (overwritten first: it holds the TGT's session key). */
static int make_private(krb_cred *c, ts_err *e)
{
	const char *base = getenv("TMPDIR");
	struct stat st;
	if (!base || !base[0] || stat(base, &st) != 0 || !S_ISDIR(st.st_mode))
		base = "/tmp";
	(void)snprintf(c->ccdir, sizeof c->ccdir, "%s/termsrv-krb5-XXXXXX", base);
	if (strlen(c->ccdir) + 4 >= sizeof c->ccdir || !mkdtemp(c->ccdir)) {
		int err = errno;
		c->ccdir[0] = '\0';
		return ts_fail(e, TS_K_ERRNO, (uint32_t)err, NULL,
			       "make a private credential cache in %.100s", base);
	}
	c->owner = getpid();
	(void)snprintf(c->ccname, sizeof c->ccname, "FILE:%s/cc", c->ccdir);
	return 0;
}

static void remove_private(krb_cred *c)
{
	if (!c->ccdir[0] || c->owner != getpid())
		return;
	DIR *d = opendir(c->ccdir);
	if (d) {
		/* the cache, and whatever Heimdal wrote beside it */
		struct dirent *de;
		static const uint8_t zero[512];
		while ((de = readdir(d))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			int fd = openat(dirfd(d), de->d_name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
			struct stat st;
			if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
				for (off_t done = 0; done < st.st_size;) {
					size_t n = (size_t)(st.st_size - done) < sizeof zero
						? (size_t)(st.st_size - done) : sizeof zero;
					ssize_t w = write(fd, zero, n);
					if (w <= 0)
						break;
					done += w;
				}
			if (fd >= 0)
				close(fd);
			(void)unlinkat(dirfd(d), de->d_name, 0);
		}
		closedir(d);
	}
	(void)rmdir(c->ccdir);
	c->ccdir[0] = '\0';
}

static int acquire(krb_cred *c, const krb_opts *o, ts_err *e)
{
	OM_uint32 maj = 0, min = 0;
	gss_name_t me = GSS_C_NO_NAME;
	if (o->principal && import_name(o->principal, GSS_KRB5_NT_PRINCIPAL_NAME, &me, e, "client") < 0)
		return -1;
	const char *how;
	if (o->keytab) {
		/* the TGT goes into the private cache, where the SMB logon
		 * finds it too: one identity, one AS exchange */
		if (make_private(c, e) < 0) {
			OM_uint32 m3;
			(void)gss_release_name(&m3, &me);
			return -1;
		}
		gss_key_value_element_desc el[2] = {{"client_keytab", o->keytab},
						    {"ccache", c->ccname}};
		gss_key_value_set_desc store = {2, el};
		how = "from the keytab";
		maj = gss_acquire_cred_from(&min, me, GSS_C_INDEFINITE, &krb5_set, GSS_C_INITIATE, &store,
					    &c->cred, NULL, NULL);
	} else if (o->password) {
		gss_buffer_desc pw = {strlen(o->password), (void *)o->password};
		how = "with the password";
		maj = gss_acquire_cred_with_password(&min, me, &pw, GSS_C_INDEFINITE, &krb5_set,
						     GSS_C_INITIATE, &c->cred, NULL, NULL);
	} else if (o->ccache) {
		(void)snprintf(c->ccname, sizeof c->ccname, "%s", o->ccache);
		gss_key_value_element_desc el = {"ccache", o->ccache};
		gss_key_value_set_desc store = {1, &el};
		how = "from the credential cache";
		maj = gss_acquire_cred_from(&min, me, GSS_C_INDEFINITE, &krb5_set, GSS_C_INITIATE, &store,
					    &c->cred, NULL, NULL);
	} else {
		how = "from the credential cache";
		maj = gss_acquire_cred(&min, me, GSS_C_INDEFINITE, &krb5_set, GSS_C_INITIATE, &c->cred,
				       NULL, NULL);
	}
	OM_uint32 m2;
	(void)gss_release_name(&m2, &me);
	if (GSS_ERROR(maj)) {
		krb_fail(e, maj, min, "get Kerberos credentials %s", how);
		/* the KDC's answer did not decrypt with the key made from the
		 * password: that is a wrong password here, not a wrong host key */
		if (o->password && !o->keytab && (min == ST_BAD_INTEGRITY || min == ST_PREAUTH_FAILED)) {
			e->code = "logon_failure";
			ts_detail(e, "wrong Kerberos password for %.60s (or unknown principal)",
				  o->principal ? o->principal : "the default principal");
		}
		return -1;
	}
	/* a cache whose tickets have all expired still "acquires" */
	OM_uint32 life = 0;
	maj = gss_inquire_cred(&min, c->cred, NULL, &life, NULL, NULL);
	if (GSS_ERROR(maj))
		return krb_fail(e, maj, min, "get Kerberos credentials %s", how);
	if (life == 0)
		return krb_fail(e, GSS_S_CREDENTIALS_EXPIRED, 0, "get Kerberos credentials %s", how);
	return 0;
}

krb_cred *krb_cred_new(const krb_opts *o, ts_err *e)
{
	if (!o->spn && (!o->host || !o->host[0] || is_address(o->host))) {
		ts_fail(e, TS_K_NONE, 0, "krb_needs_name", "Kerberos to %s",
			o->host ? o->host : "(no host)");
		return NULL;
	}
	krb_cred *c = calloc(1, sizeof *c);
	if (!c) {
		ts_fail(e, TS_K_ERRNO, 12, NULL, "allocate Kerberos credentials");
		return NULL;
	}
	c->raw = o->raw;
	int rc;
	if (o->spn) {
		(void)snprintf(c->spn, sizeof c->spn, "%s", o->spn);
		rc = import_name(o->spn, GSS_KRB5_NT_PRINCIPAL_NAME, &c->target, e, "service");
	} else {
		char hb[300];
		(void)snprintf(c->spn, sizeof c->spn, "host/%s", o->host);
		(void)snprintf(hb, sizeof hb, "host@%s", o->host);
		rc = import_name(hb, GSS_C_NT_HOSTBASED_SERVICE, &c->target, e, "service");
	}
	if (rc == 0)
		rc = acquire(c, o, e);
	if (rc < 0) {
		krb_cred_free(c);
		return NULL;
	}
	return c;
}

void krb_cred_free(krb_cred *c)
{
	if (!c)
		return;
	OM_uint32 min;
	if (c->cred != GSS_C_NO_CREDENTIAL)
		(void)gss_release_cred(&min, &c->cred);
	if (c->target != GSS_C_NO_NAME)
		(void)gss_release_name(&min, &c->target);
	remove_private(c);
	free(c);
}

int krb_cred_principal(const krb_cred *c, char *out, size_t cap, long *lifetime, ts_err *e)
{
	OM_uint32 maj, min, m2, life = 0;
	gss_name_t name = GSS_C_NO_NAME;
	gss_buffer_desc b = GSS_C_EMPTY_BUFFER;
	maj = gss_inquire_cred(&min, c->cred, &name, &life, NULL, NULL);
	if (!GSS_ERROR(maj))
		maj = gss_display_name(&min, name, &b, NULL);
	(void)gss_release_name(&m2, &name);
	if (GSS_ERROR(maj)) {
		(void)gss_release_buffer(&m2, &b);
		return krb_fail(e, maj, min, "read the Kerberos client principal");
	}
	int rc = 0;
	if (b.length >= cap || memchr(b.value, '\0', b.length))
		rc = ts_fail(e, TS_K_NONE, 0, "invalid_parameter", "Kerberos principal name too long");
	else
		(void)snprintf(out, cap, "%.*s", (int)b.length, (const char *)b.value);
	(void)gss_release_buffer(&m2, &b);
	if (lifetime)
		*lifetime = life == GSS_C_INDEFINITE ? -1 : (long)life;
	return rc;
}

int krb_service_ticket(const krb_cred *c, const char *service, const char *host, const char *spn,
		       char *name, size_t cap, ts_err *e)
{
	if (spn)
		(void)snprintf(name, cap, "%s", spn);
	else
		(void)snprintf(name, cap, "%s/%s", service, host ? host : "");
	if (!spn && (!host || !host[0] || is_address(host)))
		return ts_fail(e, TS_K_NONE, 0, "krb_needs_name",
			       "Kerberos service ticket for %.60s: the host is named by an address", name);
	gss_name_t target = GSS_C_NO_NAME;
	char hb[300];
	(void)snprintf(hb, sizeof hb, "%s@%s", service, host ? host : "");
	if (import_name(spn ? spn : hb, spn ? GSS_KRB5_NT_PRINCIPAL_NAME : GSS_C_NT_HOSTBASED_SERVICE,
			&target, e, "service") < 0)
		return -1;
	/* the first leg asks the KDC for the ticket (TGS exchange): enough
	 * to prove it, nothing goes to the host */
	OM_uint32 maj, min, m2;
	gss_ctx_id_t ctx = GSS_C_NO_CONTEXT;
	gss_buffer_desc out = GSS_C_EMPTY_BUFFER;
	maj = gss_init_sec_context(&min, c->cred, &ctx, target, &krb5_oid, WANT_FLAGS, 0,
				   GSS_C_NO_CHANNEL_BINDINGS, GSS_C_NO_BUFFER, NULL, &out, NULL, NULL);
	int rc = 0;
	if (GSS_ERROR(maj))
		rc = krb_fail(e, maj, min, "Kerberos service ticket for %.60s", name);
	(void)gss_release_buffer(&m2, &out);
	if (ctx != GSS_C_NO_CONTEXT)
		(void)gss_delete_sec_context(&m2, &ctx, GSS_C_NO_BUFFER);
	(void)gss_release_name(&m2, &target);
	return rc;
}

const char *krb_cred_smb_ccache(const krb_cred *c)
{
	return c && c->ccname[0] ? c->ccname : NULL;
}

/* ---- the provider ------------------------------------------------------- */

/* One gss_init_sec_context step; out gets the mechanism's token. */
static int init_step(rpc_sec *s, const uint8_t *in, size_t n, wbuf *out, ts_err *e)
{
	krb_sec *k = s->state;
	OM_uint32 maj, min, m2, flags = 0;
	gss_buffer_desc ib = {n, (void *)in}, ob = GSS_C_EMPTY_BUFFER;
	maj = gss_init_sec_context(&min, k->cred->cred, &k->ctx, k->cred->target, &krb5_oid,
				   WANT_FLAGS, 0, GSS_C_NO_CHANNEL_BINDINGS, in ? &ib : GSS_C_NO_BUFFER,
				   NULL, &ob, &flags, NULL);
	if (GSS_ERROR(maj)) {
		(void)gss_release_buffer(&m2, &ob);
		return krb_fail(e, maj, min, "Kerberos %s for %.60s", in ? "AP-REP" : "AP-REQ",
				k->cred->spn);
	}
	wb_bytes(out, ob.value, ob.length);
	(void)gss_release_buffer(&m2, &ob);
	if (maj == GSS_S_COMPLETE) {
		if ((flags & (GSS_C_CONF_FLAG | GSS_C_INTEG_FLAG | GSS_C_MUTUAL_FLAG)) !=
		    (GSS_C_CONF_FLAG | GSS_C_INTEG_FLAG | GSS_C_MUTUAL_FLAG))
			return ts_fail(e, TS_K_NONE, 0, "auth_failed",
				       "Kerberos context lacks confidentiality or mutual authentication");
		/* the verifier size: constant for a context (EC and RRC are fixed
		 * in DCE style) */
		gss_iov_buffer_desc iov[2] = {{GSS_IOV_BUFFER_TYPE_HEADER, GSS_C_EMPTY_BUFFER},
					      {GSS_IOV_BUFFER_TYPE_DATA, {16, NULL}}};
		int conf = 0;
		maj = gss_wrap_iov_length(&min, k->ctx, 1, GSS_C_QOP_DEFAULT, &conf, iov, 2);
		if (GSS_ERROR(maj))
			return krb_fail(e, maj, min, "Kerberos wrap size");
		if (iov[0].buffer.length == 0 || iov[0].buffer.length > 1024)
			return ts_fail(e, TS_K_NONE, 0, "auth_failed", "Kerberos verifier of %zu bytes",
				       iov[0].buffer.length);
		s->sig_len = iov[0].buffer.length;
		k->established = 1;
	}
	return 0;
}

static int krb_first(rpc_sec *s, wbuf *out, ts_err *e)
{
	krb_sec *k = s->state;
	if (s->auth_type == AUTH_TYPE_KRB5)
		return init_step(s, NULL, 0, out, e);
	wbuf ap;
	wb_init(&ap);
	int rc = init_step(s, NULL, 0, &ap, e);
	if (rc == 0) {
		spnego_init_token(out, ap.p, ap.len, &k->mechtypes);
		if (out->err || k->mechtypes.err)
			rc = ts_fail(e, TS_K_ERRNO, 12, NULL, "out of memory");
	}
	wb_free(&ap);
	return rc;
}

/* A KRB-ERROR or AP-REP the server framed (0x60 ...) is unframed; MIT in DCE
 * style takes them raw. */
static void unframe(const uint8_t **p, size_t *n)
{
	const uint8_t *inner;
	size_t len;
	uint16_t tok;
	if (*n && (*p)[0] == 0x60 && spnego_gss_unframe(*p, *n, &inner, &len, &tok) == 0 &&
	    (tok == 0x0200 || tok == 0x0300)) {
		*p = inner;
		*n = len;
	}
}

static int verify_mic(krb_sec *k, const spnego_resp *r, ts_err *e)
{
	OM_uint32 maj, min;
	gss_buffer_desc msg = {k->mechtypes.len, k->mechtypes.p}, tok = {r->mic_len, (void *)r->mic};
	maj = gss_verify_mic(&min, k->ctx, &msg, &tok, NULL);
	if (GSS_ERROR(maj))
		return krb_fail(e, maj, min, "SPNEGO mechListMIC");
	return 0;
}

static int krb_next(rpc_sec *s, const uint8_t *in, size_t n, wbuf *out, int *done, ts_err *e)
{
	krb_sec *k = s->state;
	spnego_resp r;
	if (s->auth_type == AUTH_TYPE_SPNEGO) {
		if (spnego_parse_resp(in, n, &r) < 0)
			return ts_fail(e, TS_K_NONE, 0, "malformed_response", "SPNEGO answer does not parse");
		if (k->established) {
			/* the alter_context_resp: accept-completed, maybe with a MIC */
			if (r.state != SPNEGO_ACCEPT_COMPLETED && r.state != SPNEGO_NO_STATE)
				return ts_fail(e, TS_K_NONE, 0, "auth_failed",
					       "SPNEGO did not complete (negState %d)", r.state);
			if (r.mic && verify_mic(k, &r, e) < 0)
				return -1;
			*done = 1;
			return 0;
		}
		if (!r.token)
			return ts_fail(e, TS_K_NONE, 0, "auth_failed",
				       "the server %s Kerberos without saying why",
				       r.state == SPNEGO_REJECT ? "rejected" : "did not continue");
		in = r.token;
		n = r.token_len;
	} else if (k->established) {
		return ts_fail(e, TS_K_NONE, 0, "malformed_response", "unexpected Kerberos token");
	}
	unframe(&in, &n);
	/* a KRB-ERROR instead of the AP-REP: the host refused our AP-REQ, and
	 * its error code says why (MIT does not decode it in DCE style) */
	int32_t kerr;
	if (n && in[0] == 0x7e) {
		if (spnego_krb_error(in, n, &kerr) < 0)
			return ts_fail(e, TS_K_NONE, 0, "malformed_response", "KRB-ERROR does not parse");
		return krb_fail(e, GSS_S_FAILURE, (uint32_t)(KRB5_ERROR_BASE + kerr),
				"Kerberos ticket for %.60s refused", k->cred->spn);
	}
	wbuf tok;
	wb_init(&tok);
	int rc = init_step(s, in, n, &tok, e);
	if (rc == 0 && !k->established)
		rc = ts_fail(e, TS_K_NONE, 0, "auth_failed", "Kerberos needs more than three legs");
	if (rc == 0 && s->auth_type == AUTH_TYPE_SPNEGO) {
		if (r.state == SPNEGO_REJECT)
			rc = ts_fail(e, TS_K_NONE, 0, "auth_failed", "SPNEGO rejected");
		else
			spnego_resp_token(out, tok.p, tok.len);
		/* established; an alter_context_resp token (accept-completed,
		 * maybe a MIC) is checked when it comes */
		*done = 1;
	} else if (rc == 0) {
		wb_bytes(out, tok.p, tok.len);
		*done = 1;
	}
	if (rc == 0 && out->err)
		rc = ts_fail(e, TS_K_ERRNO, 12, NULL, "out of memory");
	wb_free(&tok);
	return rc;
}

/* HEADER (the verifier) | SIGN_ONLY (header .. stub) | DATA (stub + pad) |
 * SIGN_ONLY (sec_trailer); the SIGN_ONLY pieces EMPTY without header
 * signing (Samba's gssapi_helper.c layout). */
static void layout(gss_iov_buffer_desc iov[4], rpc_sec *s, uint8_t *pdu, size_t pdu_len,
		   size_t body_off, size_t body_len, uint8_t *sig, size_t sig_len)
{
	int hs = s->header_sign;
	iov[0].type = GSS_IOV_BUFFER_TYPE_HEADER;
	iov[0].buffer.length = sig_len;
	iov[0].buffer.value = sig;
	iov[1].type = hs ? GSS_IOV_BUFFER_TYPE_SIGN_ONLY : GSS_IOV_BUFFER_TYPE_EMPTY;
	iov[1].buffer.length = hs ? body_off : 0;
	iov[1].buffer.value = pdu;
	iov[2].type = GSS_IOV_BUFFER_TYPE_DATA;
	iov[2].buffer.length = body_len;
	iov[2].buffer.value = pdu + body_off;
	iov[3].type = hs ? GSS_IOV_BUFFER_TYPE_SIGN_ONLY : GSS_IOV_BUFFER_TYPE_EMPTY;
	iov[3].buffer.length = hs ? pdu_len - body_off - body_len : 0;
	iov[3].buffer.value = pdu + body_off + body_len;
}

static int krb_seal(rpc_sec *s, uint8_t *pdu, size_t pdu_len, size_t body_off, size_t body_len,
		    uint8_t *sig, ts_err *e)
{
	krb_sec *k = s->state;
	gss_iov_buffer_desc iov[4];
	if (!k->established || body_off + body_len > pdu_len)
		return ts_fail(e, TS_K_NONE, 0, "auth_failed", "Kerberos seal before the context");
	layout(iov, s, pdu, pdu_len, body_off, body_len, sig, s->sig_len);
	OM_uint32 min;
	int conf = 0;
	OM_uint32 maj = gss_wrap_iov(&min, k->ctx, 1, GSS_C_QOP_DEFAULT, &conf, iov, 4);
	if (GSS_ERROR(maj))
		return krb_fail(e, maj, min, "Kerberos seal");
	if (!conf || iov[0].buffer.length != s->sig_len)
		return ts_fail(e, TS_K_NONE, 0, "auth_failed", "Kerberos seal without confidentiality");
	return 0;
}

static int krb_unseal(rpc_sec *s, uint8_t *pdu, size_t pdu_len, size_t body_off, size_t body_len,
		      const uint8_t *sig, size_t sig_len, ts_err *e)
{
	krb_sec *k = s->state;
	gss_iov_buffer_desc iov[4];
	if (!k->established || body_off + body_len > pdu_len)
		return ts_fail(e, TS_K_NONE, 0, "bad_signature", "Kerberos unseal before the context");
	layout(iov, s, pdu, pdu_len, body_off, body_len, (uint8_t *)sig, sig_len);
	OM_uint32 min = 0;
	int conf = 0;
	OM_uint32 maj = gss_unwrap_iov(&min, k->ctx, &conf, NULL, iov, 4);
	if (GSS_ERROR(maj) || !conf || (maj & SUPP_SEQ)) {
		/* a tampered or replayed response is bad_signature whatever GSS
		 * calls it */
		ts_fail(e, TS_K_NONE, 0, "bad_signature",
			"Kerberos verification failed (GSS status 0x%x%s)", maj,
			!conf && !GSS_ERROR(maj) ? ", not encrypted" : "");
		return -1;
	}
	return 0;
}

static void krb_wipe(rpc_sec *s)
{
	krb_sec *k = s->state;
	if (!k)
		return;
	OM_uint32 min;
	if (k->ctx != GSS_C_NO_CONTEXT)
		(void)gss_delete_sec_context(&min, &k->ctx, GSS_C_NO_BUFFER);
	wb_free(&k->mechtypes);
	free(k);
	s->state = NULL;
}

static const rpc_sec_ops krb_ops = {krb_first, krb_next, krb_seal, krb_unseal, krb_wipe};

int rpc_sec_krb5(rpc_sec *s, krb_cred *c, ts_err *e)
{
	memset(s, 0, sizeof *s);
	krb_sec *k = calloc(1, sizeof *k);
	if (!k)
		return ts_fail(e, TS_K_ERRNO, 12, NULL, "allocate a Kerberos context");
	k->cred = c;
	k->ctx = GSS_C_NO_CONTEXT;
	wb_init(&k->mechtypes);
	s->ops = &krb_ops;
	s->state = k;
	s->auth_type = c->raw ? AUTH_TYPE_KRB5 : AUTH_TYPE_SPNEGO;
	s->third_leg_alter = !c->raw;
	s->offer_header_sign = 1;
	s->sig_len_varies = 1;
	s->mech = "Kerberos";
	return 0;
}
