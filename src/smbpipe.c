/*
 * libsmbclient is not thread-safe (Debian's build cannot register thread
 * callbacks), so every smbc_* call runs under one process-wide mutex: the
 * only global state in the core, and libsmbclient forces it on us. A Lua
 * state is single-threaded, so the lock is uncontended in normal use.
 */
#include "smbpipe.h"

#include <sys/time.h>   /* libsmbclient.h uses struct timeval without it */
#include <sys/types.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libsmbclient.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ntlmssp.h"
#include "transport.h"

static pthread_mutex_t smb_lock = PTHREAD_MUTEX_INITIALIZER;
#define LOCK() pthread_mutex_lock(&smb_lock)
#define UNLOCK() pthread_mutex_unlock(&smb_lock)

struct smb_conn {
	SMBCCTX *ctx;
	smb_stats *stats;
	int port;
	char host[256];      /* as the user named it, for messages */
	char dial[256];       /* the address we checked, passed to libsmbclient */
	char user[257];
	char domain[257];
	char secret[257];
	int kerberos;
	int ntlm_fallback;
	char ccname[300];     /* KRB5CCNAME for the logon, or empty: the caller's */
	/* libsmbclient's TCP socket, found after the first open (see
	 * find_socket), so that teardown can drop it: -1 until known */
	int fd;
	dev_t fd_dev;
	ino_t fd_ino;
	int dropped;          /* smb_conn_drop ran: nothing more goes out */
	int drop_end;         /* the local end that stands in for the socket, or -1 */
};

struct smb_pipe {
	smb_conn *conn;
	SMBCFILE *f;
	int dead;
	char name[64];
};

const char *smb_conn_host(const smb_conn *c) { return c->host; }
const char *smb_pipe_name(const smb_pipe *p) { return p->name; }
int smb_pipe_dead(const smb_pipe *p) { return p->dead; }

static void copy(char *dst, size_t cap, const char *src)
{
	(void)snprintf(dst, cap, "%s", src ? src : "");
}

static void auth_fn(SMBCCTX *ctx, const char *srv, const char *shr, char *wg, int wglen,
		    char *un, int unlen, char *pw, int pwlen)
{
	(void)srv;
	(void)shr;
	const smb_conn *c = smbc_getOptionUserData(ctx);
	if (!c)
		return;
	(void)snprintf(wg, (size_t)wglen, "%s", c->domain);
	(void)snprintf(un, (size_t)unlen, "%s", c->user);
	(void)snprintf(pw, (size_t)pwlen, "%s", c->secret);
}

/* libsmbclient prints level-0 notices ("Kerberos auth ... not possible")
 * on its own; a library must not write to its host program's terminal.
 * TERMSRV_SMB_DEBUG=1 lets them through to stderr for debugging. */
static void smb_log(void *private_ptr, int level, const char *msg)
{
	(void)private_ptr;
	(void)level;
	const char *d = getenv("TERMSRV_SMB_DEBUG");
	if (d && *d && *d != '0')
		(void)fputs(msg, stderr);
}

/* libsmbclient's Kerberos takes its credential cache from KRB5CCNAME and
 * nowhere else (no smbc option names one), and the environment is
 * process-global: so, only around the smbc call that may log on, under
 * smb_lock, KRB5CCNAME names this connection's cache, and the caller's value
 * (or its absence) is restored right after. Another thread of the host
 * program that reads KRB5CCNAME during a logon would see ours; nothing in
 * termsrv does. */
typedef struct cc_env {
	int active;
	char *old;            /* the caller's value, NULL when unset */
} cc_env;

static void cc_enter(const smb_conn *c, cc_env *s)
{
	s->active = 0;
	s->old = NULL;
	if (!c->ccname[0])
		return;
	const char *old = getenv("KRB5CCNAME");
	if (old && !(s->old = strdup(old)))
		return; /* cannot restore it: leave it alone (the logon will say why) */
	if (setenv("KRB5CCNAME", c->ccname, 1) != 0) {
		free(s->old);
		s->old = NULL;
		return;
	}
	s->active = 1;
}

static void cc_leave(cc_env *s)
{
	if (!s->active)
		return;
	if (s->old)
		(void)setenv("KRB5CCNAME", s->old, 1);
	else
		(void)unsetenv("KRB5CCNAME");
	free(s->old);
	s->old = NULL;
	s->active = 0;
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* libsmbclient's own connect waits a fixed 5 s per port and reports every
 * name-resolution failure as EINVAL; a plain TCP connect first gives precise
 * errors and honours the caller's connect timeout. It costs one TCP
 * handshake, no SMB round trip. */
static int tcp_check(smb_conn *c, int timeout_ms, ts_err *e)
{
	char port[16];
	(void)snprintf(port, sizeof port, "%d", c->port);
	struct addrinfo hints = {0}, *res = NULL;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	int g = getaddrinfo(c->host, port, &hints, &res);
	if (g != 0)
		return ts_fail(e, TS_K_NONE, 0, "name_not_resolved", "resolve %s: %s", c->host,
			       gai_strerror(g));
	int last = ETIMEDOUT;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int ok = 0;
	for (struct addrinfo *ai = res; ai && !ok; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
				ai->ai_protocol);
		if (fd < 0) {
			last = errno;
			continue;
		}
		if (c->stats)
			c->stats->tcp_connects++;
		int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
		if (r < 0 && errno == EINPROGRESS) {
			long left = timeout_ms - ms_since(&t0);
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};
			int pr = left > 0 ? poll(&pfd, 1, (int)left) : 0;
			if (pr == 1) {
				int soerr = 0;
				socklen_t sl = sizeof soerr;
				(void)getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
				r = soerr ? -1 : 0;
				errno = soerr;
			} else {
				r = -1;
				errno = ETIMEDOUT;
			}
		}
		if (r == 0) {
			ok = 1;
			const void *a = ai->ai_family == AF_INET6
				? (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
				: (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
			char buf[INET6_ADDRSTRLEN];
			if (inet_ntop(ai->ai_family, a, buf, sizeof buf))
				(void)snprintf(c->dial, sizeof c->dial,
					       ai->ai_family == AF_INET6 ? "[%s]" : "%s", buf);
		} else {
			last = errno;
		}
		close(fd);
	}
	freeaddrinfo(res);
	if (!ok)
		return ts_fail(e, TS_K_ERRNO, (uint32_t)last, NULL, "connect to %s port %d", c->host,
			       c->port);
	return 0;
}

/* Contexts are made once and reused, never freed: libsmbclient sets
 * itself up again in every smbc_new_context and leaks while doing so.
 * SMB_THREAD_ONCE (lib/util/smb_threads_internal.h) runs its function
 * unconditionally when no thread functions are registered, which Debian's
 * build cannot do (smbc_thread_posix is not exported), so SMBC_module_init
 * (source3/libsmb/libsmb_context.c: setup_logging, smb.conf reloaded,
 * load_interfaces, reopen_logs) runs for every new context, and every run
 * keeps 20-30 bytes that nothing frees (heaptrack; valgrind finds them
 * still reachable from the library's globals); freeing the last context
 * runs SMBC_module_terminate, which leaked more.  Measured by hand (C heap
 * in use, mallinfo2): 64 bytes a cycle of connect/list/close before this
 * pool and the Kerberos guess below (with one idle context kept for the
 * process), 68 without the listing; after both, heaptrack finds nothing
 * kept per cycle and RSS stays within 8 KiB from cycle 2,000 to 10,000.
 *
 * So a closed connection's context goes back to this pool, emptied (its
 * pipes closed, its cached server purged, no user data), and the next
 * connection takes it and sets every option it depends on again.  The pool
 * holds at most POOL_MAX contexts (the busiest moment's connections, up to
 * that); a context beyond it is freed, which is the only way the leak
 * above can still happen: once per context made beyond POOL_MAX idle ones.
 * An idle context holds no connection and no credentials.  With the
 * process-wide lock, the one piece of global state libsmbclient forces on
 * us.  Used with the lock held. */
#define POOL_MAX 64
static SMBCCTX *pool[POOL_MAX];
static size_t pool_n;

/* Every SMB logon leaked 40 bytes more, outside any context: the logon
 * (auth_generic_client_prepare, source3/libsmb/auth_generic.c) first
 * builds throw-away credentials from smb.conf and the environment
 * (cli_credentials_guess), and unless smb.conf's "client use kerberos" is
 * off, that looks for a Kerberos credential cache, which makes a krb5
 * context, which registers the krb5 error table with com_err again
 * (initialize_krb5_error_table: libcom_err's init_error_table appends
 * 40 bytes to a global list each time and never checks for a duplicate).
 * The logon then replaces those credentials with the ones libsmbclient
 * built from the context's options, whose Kerberos use is set explicitly
 * (cli_session_creds_init: off, required or desired with fallback), so the
 * smb.conf value decides nothing else in a libsmbclient logon, and Kerberos
 * logons (smbc_setOptionUseKerberos) work as before.  libsmbclient has no
 * call for one smb.conf parameter (smbc_setConfiguration loads a whole
 * file and drops the parametric options already loaded), so the setter
 * libsmbclient uses itself for its process-wide options (smbc_setDebug,
 * smbc_setOptionProtocols) is looked up at run time: a Samba without it
 * only leaks as before.  lp_set_cmdline replaces its previous value. */
static void no_guessed_kerberos(void)
{
	typedef int (*set_fn)(const char *, const char *);
	void *sym = dlsym(RTLD_DEFAULT, "lp_set_cmdline");
	set_fn set;
	memcpy(&set, &sym, sizeof set); /* ISO C has no object-to-function cast */
	if (set)
		(void)set("client use kerberos", "off");
}

static SMBCCTX *context_get(void)
{
	if (pool_n > 0)
		return pool[--pool_n];
	SMBCCTX *k = smbc_new_context();
	if (!k)
		return NULL;
	/* the debug level and log callback are process-wide (lp_set_cmdline):
	 * set once, when a context is made */
	smbc_setDebug(k, 0);
	smbc_setOptionDebugToStderr(k, 1);
	smbc_setLogCallback(k, NULL, smb_log);
	no_guessed_kerberos();
	/* init takes the options that matter from here on from the context
	 * at each connect, so they can be set after it (see smb_conn_new) */
	if (!smbc_init_context(k)) {
		int err = errno;
		smbc_free_context(k, 1);
		errno = err;
		return NULL;
	}
	return k;
}

/* Back to the pool when nothing is left in it, else freed. Every pipe of
 * the connection has been closed (smb_pipe_close), so purging the cached
 * server leaves the context as new. */
static void context_put(SMBCCTX *k)
{
	smbc_setOptionUserData(k, NULL);
	if (pool_n < POOL_MAX && smbc_getFunctionPurgeCachedServers(k)(k) == 0) {
		pool[pool_n++] = k;
		return;
	}
	smbc_free_context(k, 1);
}

static int socket_is(const smb_conn *c)
{
	struct stat st;
	return c->fd >= 0 && fstat(c->fd, &st) == 0 && st.st_dev == c->fd_dev && st.st_ino == c->fd_ino;
}

/* libsmbclient sends an SMB ECHO (SMBC_check_server, libsmb_server.c)
 * before it reuses a cached connection, i.e. before every pipe open after
 * the first: one round trip to learn what the socket already says. Here
 * the socket is asked without a round trip: closed by the peer (end of
 * file or an error pending) = dead (1: libsmbclient connects again), else
 * alive (0). A connection that dies silently fails its next request, which
 * the core reports and recovers from. */
static int no_echo(SMBCCTX *ctx, SMBCSRV *srv)
{
	(void)srv;
	smb_conn *c = smbc_getOptionUserData(ctx);
	if (!c || !socket_is(c))
		return 0;
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
	if (poll(&pfd, 1, 0) != 1)
		return 0;
	char b;
	if ((pfd.revents & (POLLHUP | POLLERR)) ||
	    ((pfd.revents & POLLIN) && recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0)) {
		c->fd = -1; /* libsmbclient makes a new one: look for it at the next open */
		return 1;
	}
	return 0;
}

/* The TCP socket of c's connection. libsmbclient does not expose it, so
 * it is the socket that appeared during the first open (snapshot before,
 * look after; both under the lock, so no other smbc call can make one)
 * and whose peer port is the host's. Its device and inode are kept, so
 * that teardown never touches an fd number that was reused. */
#define MAX_FDS 1024
static size_t socket_fds(int *out, size_t cap)
{
	size_t n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return 0;
	int self = dirfd(d);
	struct dirent *de;
	while ((de = readdir(d)) && n < cap) {
		char *end;
		long fd = strtol(de->d_name, &end, 10);
		if (*end || end == de->d_name || fd < 0 || fd == self)
			continue;
		struct stat st;
		if (fstat((int)fd, &st) == 0 && S_ISSOCK(st.st_mode))
			out[n++] = (int)fd;
	}
	closedir(d);
	return n;
}

static int peer_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}

static void find_socket(smb_conn *c, const int *before, size_t nbefore)
{
	int *after = malloc(MAX_FDS * sizeof *after);
	if (!after)
		return;
	size_t n = socket_fds(after, MAX_FDS);
	for (size_t i = 0; i < n && c->fd < 0; i++) {
		int seen = 0;
		for (size_t j = 0; j < nbefore && !seen; j++)
			seen = before[j] == after[i];
		struct stat st;
		if (!seen && peer_port(after[i]) == c->port && fstat(after[i], &st) == 0) {
			c->fd = after[i];
			c->fd_dev = st.st_dev;
			c->fd_ino = st.st_ino;
		}
	}
	free(after);
}

/* Drops the connection under libsmbclient: its socket becomes one end of a
 * local socket pair whose other end has shut down writing, so whatever
 * libsmbclient still sends (CLOSE, TREE_DISCONNECT, LOGOFF) is swallowed
 * at once and the answer it waits for is end-of-file, at once. The server
 * sees the TCP connection close and runs the session down itself (Windows
 * and Samba both do). Returns the other end (to close after
 * smbc_free_context), or -1 when there was nothing to drop. Under the lock. */
static int drop_socket(smb_conn *c)
{
	if (!socket_is(c))
		return -1;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	(void)shutdown(sv[1], SHUT_WR);
	int r = dup2(sv[0], c->fd);
	close(sv[0]);
	if (r < 0) {
		close(sv[1]);
		return -1;
	}
	c->fd = -1;
	return sv[1];
}

smb_conn *smb_conn_new(const smb_opts *o, smb_stats *stats, ts_err *e)
{
	smb_conn *c = calloc(1, sizeof *c);
	if (!c) {
		ts_fail(e, TS_K_ERRNO, ENOMEM, NULL, "allocate connection");
		return NULL;
	}
	c->stats = stats;
	c->fd = -1;
	c->drop_end = -1;
	c->port = o->port > 0 ? o->port : 445;
	copy(c->host, sizeof c->host, o->host);
	copy(c->user, sizeof c->user, o->user);
	copy(c->domain, sizeof c->domain, o->domain);
	copy(c->secret, sizeof c->secret, o->secret);
	c->kerberos = o->kerberos;
	c->ntlm_fallback = o->ntlm_fallback;
	if (o->kerberos && o->krb5ccname) {
		if (strlen(o->krb5ccname) >= sizeof c->ccname) {
			ts_fail(e, TS_K_NONE, 0, "invalid_parameter", "credential cache name too long");
			goto fail;
		}
		copy(c->ccname, sizeof c->ccname, o->krb5ccname);
	}
	if (tcp_check(c, o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 5000, e) < 0)
		goto fail;
	/* Kerberos needs the host's name for its service ticket */
	if (o->kerberos || !c->dial[0])
		copy(c->dial, sizeof c->dial, c->host);

	LOCK();
	c->ctx = context_get();
	if (c->ctx) {
		/* every option a connection depends on, also those a pooled
		 * context may have from its last connection */
		smbc_setOptionUserData(c->ctx, c);
		smbc_setFunctionAuthDataWithContext(c->ctx, auth_fn);
		smbc_setFunctionCheckServer(c->ctx, no_echo);
		/* without this a wrong password silently becomes an anonymous logon */
		smbc_setOptionNoAutoAnonymousLogin(c->ctx, 1);
		smbc_setPort(c->ctx, (uint16_t)c->port);
		/* at least 1 s, as smbc_init_context makes it (set after it here) */
		int t = o->timeout_ms > 0 ? o->timeout_ms : 20000;
		smbc_setTimeout(c->ctx, t < 1000 ? 1000 : t);
		smbc_setOptionUseNTHash(c->ctx, o->secret_is_nthash ? 1 : 0);
		smbc_setOptionUseKerberos(c->ctx, o->kerberos ? 1 : 0);
		/* with a password, libsmbclient gets its own ticket; NTLM is
		 * tried after Kerberos only when the caller asked for NTLM (no
		 * ticket, or a host without a Kerberos name) */
		smbc_setOptionFallbackAfterKerberos(c->ctx, o->kerberos && o->secret && o->secret[0] &&
								   o->ntlm_fallback ? 1 : 0);
	}
	int err = errno;
	UNLOCK();
	if (!c->ctx) {
		ts_fail(e, TS_K_ERRNO, (uint32_t)err, "smb_error", "initialise libsmbclient");
		goto fail;
	}
	return c;
fail:
	ntlm_memwipe(c->secret, sizeof c->secret);
	free(c);
	return NULL;
}

void smb_conn_drop(smb_conn *c)
{
	if (!c || c->dropped)
		return;
	c->dropped = 1;
	if (!c->ctx)
		return;
	LOCK();
	c->drop_end = drop_socket(c);
	UNLOCK();
}

void smb_conn_free(smb_conn *c)
{
	if (!c)
		return;
	smb_conn_drop(c);
	if (c->ctx) {
		LOCK();
		/* the pipes are closed; what the purge still sends goes
		 * over the dropped socket and fails at once */
		context_put(c->ctx);
		UNLOCK();
	}
	if (c->drop_end >= 0)
		close(c->drop_end);
	ntlm_memwipe(c->secret, sizeof c->secret);
	free(c);
}

smb_pipe *smb_pipe_open(smb_conn *c, const char *name, ts_err *e)
{
	smb_pipe *p = calloc(1, sizeof *p);
	if (!p) {
		ts_fail(e, TS_K_ERRNO, ENOMEM, NULL, "allocate pipe");
		return NULL;
	}
	p->conn = c;
	copy(p->name, sizeof p->name, name);
	char url[512];
	(void)snprintf(url, sizeof url, "smb://%s/IPC$/%s", c->dial, name);
	int *before = c->fd < 0 ? malloc(MAX_FDS * sizeof *before) : NULL;
	size_t nbefore = 0;
	cc_env env;
	LOCK();
	if (before)
		nbefore = socket_fds(before, MAX_FDS);
	/* the first open logs on (and so may one after a lost connection) */
	cc_enter(c, &env);
	p->f = smbc_getFunctionOpen(c->ctx)(c->ctx, url, O_RDWR, 0);
	int err = errno;
	cc_leave(&env);
	if (p->f && before)
		find_socket(c, before, nbefore);
	UNLOCK();
	free(before);
	if (c->stats)
		c->stats->opens++;
	if (!p->f) {
		ts_fail(e, TS_K_ERRNO, (uint32_t)err, NULL, "open \\PIPE\\%s on %s", name, c->host);
		if (err == EACCES && c->kerberos && !(c->ntlm_fallback && c->secret[0]))
			ts_detail(e, "Kerberos logon refused: no ticket for the account (kinit), no "
				     "realm in it (give user@REALM), or the host named by address "
				     "(Kerberos needs its DNS name)");
		free(p);
		return NULL;
	}
	return p;
}

int smb_pipe_write(void *pipe, const uint8_t *buf, size_t n, ts_err *e)
{
	smb_pipe *p = pipe;
	if (p->dead)
		return ts_fail(e, TS_K_ERRNO, EPIPE, NULL, "write \\PIPE\\%s", p->name);
	LOCK();
	ssize_t w = smbc_getFunctionWrite(p->conn->ctx)(p->conn->ctx, p->f, buf, n);
	int err = errno;
	UNLOCK();
	if (p->conn->stats)
		p->conn->stats->writes++;
	if (w < 0 || (size_t)w != n) {
		p->dead = 1;
		return ts_fail(e, TS_K_ERRNO, (uint32_t)(w < 0 ? err : EIO), NULL, "write \\PIPE\\%s on %s",
			       p->name, p->conn->host);
	}
	return 0;
}

int smb_pipe_read(void *pipe, uint8_t *buf, size_t n, ts_err *e)
{
	smb_pipe *p = pipe;
	if (p->dead)
		return ts_fail(e, TS_K_ERRNO, EPIPE, NULL, "read \\PIPE\\%s", p->name);
	/* smbc_read returns only once it has all n bytes (or fails), so the
	 * caller always asks for exactly what the protocol says is coming */
	LOCK();
	ssize_t r = smbc_getFunctionRead(p->conn->ctx)(p->conn->ctx, p->f, buf, n);
	int err = errno;
	UNLOCK();
	if (p->conn->stats)
		p->conn->stats->reads++;
	if (r < 0 || (size_t)r != n) {
		p->dead = 1;
		return ts_fail(e, TS_K_ERRNO, (uint32_t)(r < 0 ? err : EPIPE), NULL,
			       "read \\PIPE\\%s on %s", p->name, p->conn->host);
	}
	return 0;
}

void smb_pipe_close(smb_pipe *p)
{
	if (!p)
		return;
	/* after smb_conn_drop the server has let go of the pipe already,
	 * and the CLOSE goes over the dropped socket and fails at once: it
	 * is still made, as it frees libsmbclient's file, so that the
	 * context can be reused (see context_put) */
	if (p->f) {
		LOCK();
		(void)smbc_getFunctionClose(p->conn->ctx)(p->conn->ctx, p->f);
		UNLOCK();
		if (p->conn->stats && !p->conn->dropped)
			p->conn->stats->closes++;
	}
	free(p);
}

/* ---- the transport seam (transport.h) ----------------------------------- */

static void *tr_open(void *conn, const char *name, ts_err *e) { return smb_pipe_open(conn, name, e); }
static int tr_dead(const void *pipe) { return smb_pipe_dead(pipe); }
static void tr_close(void *pipe) { smb_pipe_close(pipe); }
static void tr_drop(void *conn) { smb_conn_drop(conn); }
static void tr_free(void *conn) { smb_conn_free(conn); }

static const ts_transport_ops smb_transport_ops = {tr_open, smb_pipe_write, smb_pipe_read,
						   tr_dead, tr_close, tr_drop, tr_free};

int smb_transport_connect(void *arg, const smb_opts *o, smb_stats *stats, ts_transport *out,
			  ts_err *e)
{
	(void)arg;
	smb_conn *c = smb_conn_new(o, stats, e);
	if (!c)
		return -1;
	out->ops = &smb_transport_ops;
	out->conn = c;
	return 0;
}

const ts_connector smb_transport = {smb_transport_connect, NULL};
