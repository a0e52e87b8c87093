/*
 * Puts every NTLM context the core creates into test mode: linked with
 * -Wl,--wrap=ntlm_init, the core's call to ntlm_init (src/tsts.c, pipe_get)
 * lands here. The keys then depend only on the fixed exported session key,
 * so sealed responses captured from the simulator verify again in memory.
 */
#include "harness.h"

int __real_ntlm_init(ntlm_ctx *c, const char *user, const char *domain, const char *workstation,
		     const char *password, const uint8_t nt_hash[16]);
int __wrap_ntlm_init(ntlm_ctx *c, const char *user, const char *domain, const char *workstation,
		     const char *password, const uint8_t nt_hash[16]);

int __wrap_ntlm_init(ntlm_ctx *c, const char *user, const char *domain, const char *workstation,
		     const char *password, const uint8_t nt_hash[16])
{
	int rc = __real_ntlm_init(c, user, domain, workstation, password, nt_hash);
	if (rc == NTLM_OK)
		harness_fix_ntlm(c);
	return rc;
}
