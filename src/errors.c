/*
 * The status table. Numbers come from MS-ERREF, MS-RPCE (fault and bind_nak
 * values) and MS-TSTS (the codes its methods document); the hints are ours,
 * written for the ops person reading them at 3 a.m.
 */
#include "errors.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct code_hint {
	const char *code;
	const char *hint;
} code_hints[] = {
	{"host_unreachable", "check the address and routing, and that TCP 445 is allowed by every "
	 "firewall between here and the host"},
	{"connection_refused", "nothing listens on the SMB port: start the Server (LanmanServer) "
	 "service / enable File and Printer Sharing, or open TCP 445 in the host firewall"},
	{"timeout", "no answer in time: a firewall may be dropping TCP 445 silently, or the host "
	 "is overloaded; raise timeout= if it is only slow"},
	{"name_not_resolved", "check the name in DNS, or use the host's IP address"},
	{"logon_failure", "wrong password or unknown account (Windows deliberately does not say "
	 "which): check user, domain and password or NT hash"},
	{"account_locked", "the account is locked out or disabled: unlock it in AD / Local Users"},
	{"access_denied", "the account lacks the right: use a member of the host's Administrators "
	 "group, or grant the Remote Desktop permission needed (query, reset, logoff, message...); "
	 "on client editions of Windows set AllowRemoteRPC=1 under "
	 "HKLM\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server"},
	{"rdp_disabled", "the Remote Desktop Services pipes are absent: Remote Desktop is disabled or "
	 "the TermService service is stopped; enable Remote Desktop (listing sessions still works "
	 "without it)"},
	{"lsm_unavailable", "the host has no Local Session Manager pipe (Windows Server 2003 or "
	 "older, or the service is stopped); the legacy interface is used instead where possible"},
	{"lsa_unavailable", "the host has no \\PIPE\\lsarpc (or does not serve LSA on it): account "
	 "names come from the well-known SID table and the session owners instead"},
	{"bind_refused", "the RPC server refused the binding: the interface is not served on this "
	 "pipe or our authentication was not accepted"},
	{"auth_level_refused", "the host requires RPC packet privacy: connect with a password or NT "
	 "hash (not the SMB identity alone)"},
	{"auth_failed", "RPC-level authentication failed although the SMB logon worked: with NTLM "
	 "check the password; with Kerberos that the ticket is the SMB logon's account; and that "
	 "the account is not restricted for network logon"},
	{"not_supported", "this Windows version does not implement that call"},
	{"rpc_fault", "the RPC server reported a fault; the raw status tells which"},
	{"malformed_response", "the host sent data that does not parse as MS-TSTS; nothing from it "
	 "was used (a broken or hostile server)"},
	{"bad_signature", "a response failed its NTLM signature check and was discarded: it was "
	 "altered in transit, or the server's keys differ"},
	{"session_not_found", "the session does not exist (any more): it was logged off meanwhile, "
	 "or the id is wrong; list the sessions again"},
	{"process_not_found", "the process does not exist (any more); list the processes again"},
	{"invalid_state", "the session is not in a state that allows this (for example it is "
	 "already disconnected)"},
	{"invalid_parameter", "the host rejected a parameter of the call"},
	{"invalid_handle", "the host no longer knows our handle (service restarted?); reconnect"},
	{"connection_lost", "the connection was closed by the host or the network: the host may "
	 "have rebooted; reconnect"},
	{"server_error", "the host reported an internal failure (low on memory or shutting down); "
	 "retry later"},
	{"smb_error", "an SMB failure libsmbclient does not name: common causes are an account "
	 "locked out, a host that refuses NTLM (use Kerberos: kerberos = true, -k), a host that "
	 "only allows SMB1, or a client limited to SMB2 ('client max protocol' in smb.conf) "
	 "facing a host that requires SMB encryption (libsmbclient encrypts by itself when the "
	 "host requires it, over SMB3)"},
	{"response_too_large", "the host sent more data than termsrv accepts for one call"},
	{"krb_no_ticket", "no Kerberos ticket: run kinit user@REALM (and check KRB5CCNAME), or use a "
	 "keytab (--keytab/--principal; kerberos = {keytab = ..., principal = ...}) or a password"},
	{"krb_ticket_expired", "the Kerberos ticket has expired: kinit again (kinit -R renews), or "
	 "use a keytab so that termsrv gets fresh tickets itself"},
	{"krb_clock_skew", "the clocks differ by more than Kerberos allows (5 minutes): sync this "
	 "machine and the host with NTP (the domain controllers are the reference)"},
	{"krb_unknown_spn", "the KDC knows no service host/<name>: use the host's DNS name as it is "
	 "registered in AD (setspn -Q host/<fqdn>), not an alias, or give spn="},
	{"krb_kdc_unreachable", "no KDC answered: check [realms] and [domain_realm] in krb5.conf "
	 "(or the DNS SRV records _kerberos._tcp.<realm>), and that TCP/UDP 88 is open"},
	{"krb_etype", "no common Kerberos encryption type: enable AES for the account and the host "
	 "(msDS-SupportedEncryptionTypes); RC4 is switched off"},
	{"krb_wrong_key", "the host could not decrypt the ticket: its key differs from the KDC's "
	 "(stale ticket after a machine-password reset: kdestroy, kinit; or a keytab out of date)"},
	{"krb_needs_name", "Kerberos needs the host's DNS name, not an IP address: name the host "
	 "by its FQDN, or give spn = \"host/<fqdn>\""},
	{"krb_failed", "Kerberos failed; the detail says why (klist shows the tickets you have)"},
};

#define R(k, v, n, c, m, h) {k, v, n, c, m, h}
static const ts_status_info table[] = {
	/* NTSTATUS: SMB layer and legacy (IcaApi) pResult values */
	R(TS_K_NTSTATUS, 0x00000000, "STATUS_SUCCESS", "ok", "success", NULL),
	R(TS_K_NTSTATUS, 0xC0000022, "STATUS_ACCESS_DENIED", "access_denied", "access denied", NULL),
	R(TS_K_NTSTATUS, 0xC000006D, "STATUS_LOGON_FAILURE", "logon_failure", "logon failure", NULL),
	R(TS_K_NTSTATUS, 0xC0000234, "STATUS_ACCOUNT_LOCKED_OUT", "account_locked",
	  "account locked out", NULL),
	R(TS_K_NTSTATUS, 0xC0000072, "STATUS_ACCOUNT_DISABLED", "account_locked", "account disabled",
	  NULL),
	R(TS_K_NTSTATUS, 0xC0000034, "STATUS_OBJECT_NAME_NOT_FOUND", "rdp_disabled",
	  "pipe not found", NULL),
	R(TS_K_NTSTATUS, 0xC00A0015, "STATUS_CTX_WINSTATION_NOT_FOUND", "session_not_found",
	  "session not found", NULL),
	R(TS_K_NTSTATUS, 0xC00A0001, "STATUS_CTX_WINSTATION_NAME_INVALID", "invalid_parameter",
	  "invalid session name", NULL),
	R(TS_K_NTSTATUS, 0xC0000003, "STATUS_INVALID_INFO_CLASS", "not_supported",
	  "information class not supported", NULL),
	R(TS_K_NTSTATUS, 0xC0000023, "STATUS_BUFFER_TOO_SMALL", "malformed_response",
	  "buffer too small", "the host expects a different structure size than MS-TSTS documents"),
	R(TS_K_NTSTATUS, 0xC0000004, "STATUS_INFO_LENGTH_MISMATCH", "malformed_response",
	  "information length mismatch",
	  "the host expects a different structure size than MS-TSTS documents"),
	R(TS_K_NTSTATUS, 0xC000000D, "STATUS_INVALID_PARAMETER", "invalid_parameter",
	  "invalid parameter", NULL),
	R(TS_K_NTSTATUS, 0xC0000008, "STATUS_INVALID_HANDLE", "invalid_handle", "invalid handle",
	  NULL),
	R(TS_K_NTSTATUS, 0xC000000B, "STATUS_INVALID_CID", "process_not_found",
	  "no such process", NULL),
	R(TS_K_NTSTATUS, 0xC0000061, "STATUS_PRIVILEGE_NOT_HELD", "access_denied",
	  "privilege not held", "the account needs SeRemoteShutdownPrivilege (Administrators have it)"),
	R(TS_K_NTSTATUS, 0xC0000120, "STATUS_CANCELLED", "server_error",
	  "cancelled (the server is shutting down)", NULL),
	R(TS_K_NTSTATUS, 0xC0000017, "STATUS_NO_MEMORY", "server_error", "server out of memory",
	  NULL),
	R(TS_K_NTSTATUS, 0xC00A0016, "STATUS_CTX_WINSTATION_NAME_COLLISION", "invalid_parameter",
	  "session name already in use", NULL),
	R(TS_K_NTSTATUS, 0xC00A0024, "STATUS_CTX_WINSTATION_BUSY", "invalid_state",
	  "session busy", "retry in a moment"),
	R(TS_K_NTSTATUS, 0x8000001A, "STATUS_NO_MORE_ENTRIES", "ok", "no more entries", NULL),
	R(TS_K_NTSTATUS, 0xC0000001, "STATUS_UNSUCCESSFUL", "server_error", "unsuccessful", NULL),
	R(TS_K_NTSTATUS, 0xC0000002, "STATUS_NOT_IMPLEMENTED", "not_supported", "not implemented",
	  NULL),

	/* HRESULT: LSM and RCM methods; also legacy pResult on Vista and later */
	R(TS_K_HRESULT, 0x00000000, "S_OK", "ok", "success", NULL),
	R(TS_K_HRESULT, 0x80070005, "E_ACCESSDENIED", "access_denied", "access denied", NULL),
	R(TS_K_HRESULT, 0x80070002, "HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND)", "session_not_found",
	  "session not found", NULL),
	R(TS_K_HRESULT, 0x80071B6E, "HRESULT_FROM_WIN32(ERROR_CTX_WINSTATION_NOT_FOUND)",
	  "session_not_found", "session not found (or no query right on it)", NULL),
	R(TS_K_HRESULT, 0x8007139F, "HRESULT_FROM_WIN32(ERROR_INVALID_STATE)", "invalid_state",
	  "the session is not in a valid state for this", NULL),
	R(TS_K_HRESULT, 0x8007052E, "HRESULT_FROM_WIN32(ERROR_LOGON_FAILURE)", "logon_failure",
	  "logon failure (wrong password for the target session)", NULL),
	R(TS_K_HRESULT, 0x80070057, "E_INVALIDARG", "invalid_parameter", "invalid argument", NULL),
	R(TS_K_HRESULT, 0x8007007A, "HRESULT_FROM_WIN32(ERROR_INSUFFICIENT_BUFFER)",
	  "malformed_response", "insufficient buffer", NULL),
	R(TS_K_HRESULT, 0x80004001, "E_NOTIMPL", "not_supported", "not implemented", NULL),
	R(TS_K_HRESULT, 0x80070006, "E_HANDLE", "invalid_handle", "invalid handle", NULL),
	R(TS_K_HRESULT, 0x80004005, "E_FAIL", "server_error", "unspecified failure", NULL),
	R(TS_K_HRESULT, 0x8007000E, "E_OUTOFMEMORY", "server_error", "server out of memory", NULL),
	R(TS_K_HRESULT, 0x80070490, "HRESULT_FROM_WIN32(ERROR_NOT_FOUND)", "process_not_found",
	  "not found", NULL),

	/* Win32 errors (also reached through HRESULT 0x8007xxxx) */
	R(TS_K_WIN32, 5, "ERROR_ACCESS_DENIED", "access_denied", "access denied", NULL),
	R(TS_K_WIN32, 2, "ERROR_FILE_NOT_FOUND", "session_not_found", "not found", NULL),
	R(TS_K_WIN32, 6, "ERROR_INVALID_HANDLE", "invalid_handle", "invalid handle", NULL),
	R(TS_K_WIN32, 87, "ERROR_INVALID_PARAMETER", "invalid_parameter", "invalid parameter", NULL),
	R(TS_K_WIN32, 1326, "ERROR_LOGON_FAILURE", "logon_failure", "logon failure", NULL),
	R(TS_K_WIN32, 1722, "RPC_S_SERVER_UNAVAILABLE", "connection_lost",
	  "the RPC server is unavailable", NULL),
	R(TS_K_WIN32, 5023, "ERROR_INVALID_STATE", "invalid_state", "invalid state", NULL),
	R(TS_K_WIN32, 7022, "ERROR_CTX_WINSTATION_NOT_FOUND", "session_not_found",
	  "session not found", NULL),
	R(TS_K_WIN32, 7024, "ERROR_CTX_WINSTATION_BUSY", "invalid_state", "session busy", NULL),
	R(TS_K_WIN32, 7044, "ERROR_CTX_SHADOW_DENIED", "access_denied", "shadow denied", NULL),
	R(TS_K_WIN32, 1314, "ERROR_PRIVILEGE_NOT_HELD", "access_denied", "privilege not held",
	  "the account needs SeRemoteShutdownPrivilege (Administrators have it)"),

	/* DCE/RPC fault statuses (MS-RPCE 2.2.2.8 / 3.1.1.5.5) */
	R(TS_K_FAULT, 0x00000005, "rpc_s_access_denied", "access_denied",
	  "access denied by the RPC server", NULL),
	R(TS_K_FAULT, 0x1C010002, "nca_s_op_rng_error", "not_supported",
	  "operation number out of range (call not implemented by this Windows version)", NULL),
	R(TS_K_FAULT, 0x1C010003, "nca_s_unk_if", "not_supported", "unknown interface", NULL),
	R(TS_K_FAULT, 0x1C00001A, "nca_s_fault_context_mismatch", "invalid_handle",
	  "context handle not recognised", NULL),
	R(TS_K_FAULT, 0x1C00001D, "nca_s_unsupported_authn_level", "auth_level_refused",
	  "authentication level not supported", NULL),
	R(TS_K_FAULT, 0x1C00001C, "nca_s_invalid_pres_context_id", "rpc_fault",
	  "invalid presentation context id", NULL),
	R(TS_K_FAULT, 0x1C000011, "nca_s_fault_remote_no_memory", "server_error",
	  "server out of memory", NULL),
	R(TS_K_FAULT, 0x1C00000D, "nca_s_fault_invalid_tag", "rpc_fault", "invalid union tag", NULL),
	R(TS_K_FAULT, 0x1C00000E, "nca_s_fault_invalid_bound", "rpc_fault", "invalid array bound",
	  NULL),
	R(TS_K_FAULT, 0x1C010013, "nca_s_proto_error", "rpc_fault", "protocol error", NULL),
	R(TS_K_FAULT, 0x00000721, "RPC_S_SEC_PKG_ERROR", "auth_failed", "security package error",
	  NULL),
	R(TS_K_FAULT, 0x000006F7, "RPC_X_BAD_STUB_DATA", "rpc_fault",
	  "the server could not unmarshal our request", NULL),
	R(TS_K_FAULT, 0x000006C6, "RPC_S_INVALID_BOUND", "rpc_fault", "invalid array bound", NULL),
	R(TS_K_FAULT, 0x000006E4, "RPC_S_CANNOT_SUPPORT", "not_supported", "not supported", NULL),
	R(TS_K_FAULT, 0x000006D1, "RPC_S_PROCNUM_OUT_OF_RANGE", "not_supported",
	  "procedure number out of range", NULL),
	R(TS_K_FAULT, 0x000006A6, "RPC_S_INVALID_BINDING", "rpc_fault", "invalid binding", NULL),
	R(TS_K_FAULT, 0x00000006, "ERROR_INVALID_HANDLE", "invalid_handle", "invalid handle", NULL),

	/* bind_nak provider reject reasons (MS-RPCE 2.2.2.5 / C706) */
	R(TS_K_BINDNAK, 0, "reason_not_specified", "bind_refused", "bind refused", NULL),
	R(TS_K_BINDNAK, 1, "temporary_congestion", "bind_refused", "bind refused: congestion",
	  "retry later"),
	R(TS_K_BINDNAK, 2, "local_limit_exceeded", "bind_refused",
	  "bind refused: server limit exceeded", "retry later"),
	R(TS_K_BINDNAK, 4, "protocol_version_not_supported", "bind_refused",
	  "bind refused: protocol version", NULL),
	R(TS_K_BINDNAK, 8, "authentication_type_not_recognized", "bind_refused",
	  "bind refused: authentication type not recognised", NULL),
	R(TS_K_BINDNAK, 9, "invalid_checksum", "auth_failed", "bind refused: invalid checksum", NULL),

	/* bind_ack per-context rejection reasons */
	R(TS_K_BINDRES, 1, "abstract_syntax_not_supported", "bind_refused",
	  "interface not served on this pipe", NULL),
	R(TS_K_BINDRES, 2, "proposed_transfer_syntaxes_not_supported", "bind_refused",
	  "NDR transfer syntax refused", NULL),
	R(TS_K_BINDRES, 3, "local_limit_exceeded", "bind_refused", "server limit exceeded", NULL),

	/* transport errno (libsmbclient maps NTSTATUS to errno; EINVAL is its catch-all) */
	R(TS_K_ERRNO, ECONNREFUSED, "ECONNREFUSED", "connection_refused", "connection refused", NULL),
	R(TS_K_ERRNO, ETIMEDOUT, "ETIMEDOUT", "timeout", "timed out", NULL),
	R(TS_K_ERRNO, EHOSTUNREACH, "EHOSTUNREACH", "host_unreachable", "no route to host", NULL),
	R(TS_K_ERRNO, ENETUNREACH, "ENETUNREACH", "host_unreachable", "network unreachable", NULL),
	R(TS_K_ERRNO, EACCES, "EACCES", "logon_failure", "SMB logon refused", NULL),
	R(TS_K_ERRNO, EPERM, "EPERM", "access_denied", "operation not permitted", NULL),
	R(TS_K_ERRNO, ENOENT, "ENOENT", "rdp_disabled", "no such pipe", NULL),
	R(TS_K_ERRNO, EPIPE, "EPIPE", "connection_lost", "pipe closed by the host", NULL),
	R(TS_K_ERRNO, ECONNRESET, "ECONNRESET", "connection_lost", "connection reset", NULL),
	R(TS_K_ERRNO, ECONNABORTED, "ECONNABORTED", "connection_lost", "connection aborted", NULL),
	R(TS_K_ERRNO, ENOTCONN, "ENOTCONN", "connection_lost", "not connected", NULL),
	R(TS_K_ERRNO, EMSGSIZE, "EMSGSIZE", "smb_error", "message too long for the pipe", NULL),
	R(TS_K_ERRNO, EINVAL, "EINVAL", "smb_error", "SMB failure (unnamed)", NULL),
	R(TS_K_ERRNO, ENOMEM, "ENOMEM", "smb_error", "out of memory", "the local machine is out of "
	  "memory"),
	R(TS_K_ERRNO, EIO, "EIO", "connection_lost", "I/O error", NULL),

	/* MIT krb5 codes (ERROR_TABLE_BASE_krb5 0x96C73A00 + the Kerberos
	 * protocol error, or a library error above 127) */
	R(TS_K_KRB5, 0x96C73AC3, "KRB5_FCC_NOFILE", "krb_no_ticket", "no credential cache", NULL),
	R(TS_K_KRB5, 0x96C73A8D, "KRB5_CC_NOTFOUND", "krb_no_ticket",
	  "no matching ticket in the credential cache", NULL),
	R(TS_K_KRB5, 0x96C73A8E, "KRB5_CC_END", "krb_no_ticket", "end of the credential cache", NULL),
	R(TS_K_KRB5, 0x96C73A20, "KRB5KRB_AP_ERR_TKT_EXPIRED", "krb_ticket_expired",
	  "ticket expired", NULL),
	R(TS_K_KRB5, 0x96C73A25, "KRB5KRB_AP_ERR_SKEW", "krb_clock_skew", "clock skew too great",
	  NULL),
	R(TS_K_KRB5, 0x96C73A21, "KRB5KRB_AP_ERR_TKT_NYV", "krb_clock_skew", "ticket not yet valid",
	  NULL),
	R(TS_K_KRB5, 0x96C73A94, "KRB5_KDCREP_SKEW", "krb_clock_skew",
	  "clock skew too great in the KDC reply", NULL),
	R(TS_K_KRB5, 0x96C73A07, "KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN", "krb_unknown_spn",
	  "server not found in the Kerberos database", NULL),
	R(TS_K_KRB5, 0x96C73A9C, "KRB5_KDC_UNREACH", "krb_kdc_unreachable",
	  "cannot contact any KDC for the realm", NULL),
	R(TS_K_KRB5, 0x96C73A9A, "KRB5_REALM_UNKNOWN", "krb_kdc_unreachable",
	  "cannot find a KDC for the realm", NULL),
	R(TS_K_KRB5, 0x96C73AE0, "KRB5_CONFIG_NODEFREALM", "krb_kdc_unreachable",
	  "no default realm configured", NULL),
	R(TS_K_KRB5, 0x96C73A0E, "KRB5KDC_ERR_ETYPE_NOSUPP", "krb_etype",
	  "encryption type not supported", NULL),
	R(TS_K_KRB5, 0x96C73A29, "KRB5KRB_AP_ERR_MODIFIED", "krb_wrong_key",
	  "the ticket did not decrypt with the host's key", NULL),
	R(TS_K_KRB5, 0x96C73A1F, "KRB5KRB_AP_ERR_BAD_INTEGRITY", "krb_wrong_key",
	  "decrypt integrity check failed", NULL),
	R(TS_K_KRB5, 0x96C73A2C, "KRB5KRB_AP_ERR_BADKEYVER", "krb_wrong_key",
	  "the host has no key of the ticket's version", NULL),
	R(TS_K_KRB5, 0x96C73A2D, "KRB5KRB_AP_ERR_NOKEY", "krb_wrong_key",
	  "the host has no key for the ticket", NULL),
	R(TS_K_KRB5, 0x96C73A18, "KRB5KDC_ERR_PREAUTH_FAILED", "logon_failure",
	  "Kerberos pre-authentication failed", "wrong password or key for the principal"),
	R(TS_K_KRB5, 0x96C73A06, "KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN", "logon_failure",
	  "client not found in the Kerberos database", "check the principal name and realm"),
	R(TS_K_KRB5, 0x96C73A17, "KRB5KDC_ERR_KEY_EXP", "account_locked", "password has expired",
	  "change the account's password"),
	R(TS_K_KRB5, 0x96C73AB5, "KRB5_KT_NOTFOUND", "krb_no_ticket",
	  "the keytab has no key for the principal", "check the keytab with klist -k and the "
	  "principal= given"),
	R(TS_K_KRB5, 0x96C73A22, "KRB5KRB_AP_ERR_REPEAT", "krb_failed", "request is a replay",
	  NULL),
};
#undef R

const ts_status_info *ts_status_table(size_t *n)
{
	*n = sizeof table / sizeof table[0];
	return table;
}

const ts_status_info *ts_status_lookup(int kind, uint32_t value)
{
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
		if (table[i].kind == kind && table[i].value == value)
			return &table[i];
	/* HRESULT_FROM_WIN32: the low 16 bits are the Win32 error */
	if (kind == TS_K_HRESULT && (value & 0xFFFF0000u) == 0x80070000u)
		return ts_status_lookup(TS_K_WIN32, value & 0xFFFFu);
	/* legacy pResult can carry a Win32 code as a plain number */
	if (kind == TS_K_NTSTATUS && value < 0x10000u && value != 0)
		return ts_status_lookup(TS_K_WIN32, value);
	return NULL;
}

const char *ts_code_hint(const char *code)
{
	if (!code)
		return "";
	for (size_t i = 0; i < sizeof code_hints / sizeof code_hints[0]; i++)
		if (strcmp(code_hints[i].code, code) == 0)
			return code_hints[i].hint;
	return "";
}

const char *ts_kind_name(int kind)
{
	switch (kind) {
	case TS_K_NTSTATUS: return "NTSTATUS";
	case TS_K_HRESULT: return "HRESULT";
	case TS_K_WIN32: return "Win32";
	case TS_K_FAULT: return "RPC fault";
	case TS_K_BINDNAK: return "bind_nak";
	case TS_K_BINDRES: return "bind result";
	case TS_K_ERRNO: return "errno";
	case TS_K_KRB5: return "Kerberos";
	default: return "";
	}
}

int ts_fail(ts_err *e, int kind, uint32_t status, const char *code, const char *fmt, ...)
{
	if (!e)
		return -1;
	e->kind = kind;
	e->status = status;
	e->code = code;
	e->detail[0] = '\0';
	va_list ap;
	va_start(ap, fmt);
	(void)vsnprintf(e->what, sizeof e->what, fmt, ap);
	va_end(ap);
	return -1;
}

void ts_detail(ts_err *e, const char *fmt, ...)
{
	if (!e)
		return;
	va_list ap;
	va_start(ap, fmt);
	(void)vsnprintf(e->detail, sizeof e->detail, fmt, ap);
	va_end(ap);
}

/* The code of a status the table does not list: a server may send any
 * number, and a script must still get one of the documented codes. */
static const char *kind_code(int kind)
{
	switch (kind) {
	case TS_K_FAULT: return "rpc_fault";
	case TS_K_BINDNAK:
	case TS_K_BINDRES: return "bind_refused";
	case TS_K_ERRNO: return "smb_error";
	case TS_K_KRB5: return "krb_failed";
	case TS_K_NTSTATUS:
	case TS_K_HRESULT:
	case TS_K_WIN32: return "server_error";
	default: return "error";
	}
}

void ts_err_resolve(const ts_err *e, ts_err_view *v)
{
	const ts_status_info *si = e->kind != TS_K_NONE ? ts_status_lookup(e->kind, e->status) : NULL;
	/* a success status given as the reason of a failure (a legacy call that
	 * returns FALSE with STATUS_NO_MORE_ENTRIES) must not read as "ok" */
	int success = si && strcmp(si->code, "ok") == 0;
	v->code = e->code ? e->code : si && !success ? si->code : kind_code(e->kind);
	v->name = si ? si->name : "";
	v->message = e->detail[0] ? e->detail : si ? si->message : "";
	/* a status-specific hint only fits when the code was not overridden */
	const char *h = (si && si->hint && (!e->code || strcmp(e->code, si->code) == 0)) ? si->hint
											   : NULL;
	v->hint = h ? h : ts_code_hint(v->code);
}
