/*
 * termsrv.proc: the few POSIX process primitives a fleet sweep needs and Lua
 * 5.4 lacks (Debian's luaposix has no 5.4 build): fork a worker that runs a
 * Lua function and sends back one string over a pipe, poll many pipes with a
 * timeout, read without blocking, signal a worker's process group, reap with
 * wait4 (status and the worker's own CPU time and peak memory), plus isatty,
 * a monotonic clock and getrusage; the trap that turns SIGINT/SIGTERM into a
 * flag the executor reads, and the audit log's safe descriptor.
 *
 * libsmbclient calls block, and one process-wide mutex serialises them in
 * the core, so concurrency across hosts comes from processes, not threads.
 * The policy (pool size, deadlines, what counts as a crash) lives in
 * lua/termsrv/fleet.lua; this file only wraps system calls and keeps no
 * state of its own but the caught-signal flag (see "stop means stop").
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#define EXPORT __attribute__((visibility("default")))

/* exit status of a worker whose function raised or returned a non-string */
#define WORKER_FAILED 70
/* largest read per call and largest poll set (a pool is far smaller) */
#define READ_MAX (1 << 20)
#define POLL_MAX 65536

/* the signal trap's state (see "stop means stop" below) */
static volatile sig_atomic_t caught_signal;
static struct sigaction saved_int, saved_term;
static volatile sig_atomic_t trapped;

static int fail_errno(lua_State *L, int err, const char *what)
{
	lua_pushnil(L);
	lua_pushfstring(L, "%s: %s", what, strerror(err));
	lua_pushinteger(L, err);
	return 3;
}

static int check_fd(lua_State *L, int arg)
{
	lua_Integer fd = luaL_checkinteger(L, arg);
	luaL_argcheck(L, fd >= 0 && fd <= INT_MAX, arg, "file descriptor out of range");
	return (int)fd;
}

static void close_quietly(int fd)
{
	/* Linux releases the descriptor even when close fails with EINTR, so
	 * retrying could close a descriptor another thread just opened */
	if (fd >= 0)
		(void)close(fd);
}

static int set_flag(int fd, int get, int set, int flag)
{
	int flags = fcntl(fd, get);
	if (flags < 0)
		return -1;
	return fcntl(fd, set, flags | flag);
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* send(data [, more]): the worker's answer, written whole; with `more`,
 * one piece of it (progress the parent keeps even if no final answer
 * comes), and send may be called again. The pipe stays open until the
 * worker exits, so the parent's end-of-file means "exited", and the
 * parent's wait is then immediate. Upvalue 1: the descriptor, -1 once the
 * final piece is sent. */
static int l_send(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	int more = lua_toboolean(L, 2);
	lua_Integer fd = lua_tointeger(L, lua_upvalueindex(1));
	if (fd < 0)
		return luaL_error(L, "proc: the worker's answer was already sent");
	if (!more) {
		lua_pushinteger(L, -1);
		lua_replace(L, lua_upvalueindex(1));
	}
	if (write_all((int)fd, s, n) < 0)
		return fail_errno(L, errno, "write");
	lua_pushboolean(L, 1);
	return 1;
}

/* The worker side of fork: never returns. fn(send) runs in the copy of the
 * parent's Lua state; a string it returns is sent if send was not called.
 * _exit, so nothing of the parent's state is finalised here: sockets the
 * parent still uses are never shut down from the worker. */
static void run_worker(lua_State *L, pid_t parent, int wfd, const sigset_t *mask)
{
	/* A pool member that outlives its parent would run on with nobody to
	 * read its answer; the check closes the race with a parent that died
	 * before prctl took effect. */
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (getppid() != parent)
		_exit(WORKER_FAILED);
	/* its own process group, so a deadline ends whatever the function
	 * started too (os.execute, io.popen) */
	(void)setpgid(0, 0);
	/* a worker is not trapped: SIGINT/SIGTERM kill it (the parent decides
	 * when to pass one on), and it starts with the flag cleared.  The two
	 * were blocked across fork (see l_fork), so one sent to the new group
	 * meanwhile is delivered now, with the default action, not swallowed
	 * by the parent's handler. */
	(void)signal(SIGINT, SIG_DFL);
	(void)signal(SIGTERM, SIG_DFL);
	(void)signal(SIGPIPE, SIG_DFL);
	caught_signal = 0;
	trapped = 0;
	(void)sigprocmask(SIG_SETMASK, mask, NULL);

	int code = WORKER_FAILED;
	lua_settop(L, 1);
	lua_pushinteger(L, wfd);
	lua_pushcclosure(L, l_send, 1);           /* 2: send */
	lua_pushvalue(L, 1);
	lua_pushvalue(L, 2);
	if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
		const char *msg = lua_tostring(L, -1);
		fprintf(stderr, "termsrv worker %ld: %s\n", (long)getpid(), msg ? msg : "(error object)");
	} else {
		lua_getupvalue(L, 2, 1);
		int sent = lua_tointeger(L, -1) < 0;
		lua_pop(L, 1);
		if (sent || lua_isnil(L, -1)) {
			code = 0;
		} else if (lua_type(L, -1) == LUA_TSTRING) {
			size_t n;
			const char *s = lua_tolstring(L, -1, &n);
			code = write_all(wfd, s, n) == 0 ? 0 : WORKER_FAILED;
		} else {
			fprintf(stderr, "termsrv worker %ld: function returned %s, not a string\n",
				(long)getpid(), luaL_typename(L, -1));
		}
	}
	close_quietly(wfd);
	(void)fflush(NULL);
	_exit(code);
}

/* proc.fork(fn [, close_fds]) -> pid, fd | nil, message, errno
 * Runs fn(send) in a new process; what it sends (or the string it returns)
 * arrives on fd (the read end, non-blocking). close_fds: descriptors the
 * worker must not keep (the pipes of its siblings). */
static int l_fork(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TFUNCTION);
	if (!lua_isnoneornil(L, 2))
		luaL_checktype(L, 2, LUA_TTABLE);
	lua_settop(L, 2);
	int fds[2];
	if (pipe(fds) != 0)
		return fail_errno(L, errno, "pipe");
	/* close-on-exec: a program the worker runs must not hold the pipe open
	 * past the worker's own end; non-blocking only on the parent's side */
	if (set_flag(fds[0], F_GETFD, F_SETFD, FD_CLOEXEC) < 0 ||
	    set_flag(fds[1], F_GETFD, F_SETFD, FD_CLOEXEC) < 0 ||
	    set_flag(fds[0], F_GETFL, F_SETFL, O_NONBLOCK) < 0) {
		int err = errno;
		close_quietly(fds[0]);
		close_quietly(fds[1]);
		return fail_errno(L, err, "fcntl");
	}
	/* buffered output would otherwise be written twice, once per process */
	(void)fflush(NULL);
	/* SIGINT/SIGTERM blocked until the worker has its default dispositions:
	 * otherwise the copy of a trapped parent's handler would note (and so
	 * drop) a signal meant to end the worker */
	sigset_t block, oldmask;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &block, &oldmask) != 0) {
		int err = errno;
		close_quietly(fds[0]);
		close_quietly(fds[1]);
		return fail_errno(L, err, "sigprocmask");
	}
	pid_t parent = getpid();
	pid_t pid = fork();
	int fork_err = errno;
	if (pid != 0)
		(void)sigprocmask(SIG_SETMASK, &oldmask, NULL);
	if (pid < 0) {
		int err = fork_err;
		close_quietly(fds[0]);
		close_quietly(fds[1]);
		return fail_errno(L, err, "fork");
	}
	if (pid == 0) {
		close_quietly(fds[0]);
		if (lua_istable(L, 2)) {
			lua_Integer n = luaL_len(L, 2);
			for (lua_Integer i = 1; i <= n; i++) {
				lua_geti(L, 2, i);
				lua_Integer fd = lua_tointeger(L, -1);
				lua_pop(L, 1);
				if (fd > 2 && fd <= INT_MAX && fd != fds[1])
					close_quietly((int)fd);
			}
		}
		run_worker(L, parent, fds[1], &oldmask);
	}
	/* also here, so that a kill of the group right after fork cannot miss */
	(void)setpgid(pid, pid);
	close_quietly(fds[1]);
	lua_pushinteger(L, pid);
	lua_pushinteger(L, fds[0]);
	return 2;
}

/* proc.poll(fds, timeout) -> array of the fds that are readable or closed
 * (empty on timeout) | nil, "interrupted" when a signal arrived first (the
 * trap below installs its handlers without SA_RESTART precisely so that a
 * SIGINT/SIGTERM ends the wait: the caller then looks at caught()) | nil,
 * message, errno on any other failure. timeout in seconds (nil or
 * negative: wait forever). */
static int l_poll(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	double timeout = luaL_optnumber(L, 2, -1);
	lua_Integer n = luaL_len(L, 1);
	luaL_argcheck(L, n >= 0 && n <= POLL_MAX, 1, "too many descriptors");
	/* userdata, so the array is freed by the GC even if a later call raises */
	struct pollfd *p = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *p, 0);
	for (lua_Integer i = 0; i < n; i++) {
		lua_geti(L, 1, i + 1);
		int isnum;
		lua_Integer fd = lua_tointegerx(L, -1, &isnum);
		lua_pop(L, 1);
		luaL_argcheck(L, isnum && fd >= 0 && fd <= INT_MAX, 1, "descriptor expected");
		p[i].fd = (int)fd;
		p[i].events = POLLIN;
		p[i].revents = 0;
	}
	int ms = -1;
	if (timeout >= 0)
		ms = timeout * 1000.0 >= (double)INT_MAX ? INT_MAX : (int)ceil(timeout * 1000.0);
	int r = poll(p, (nfds_t)n, ms);
	if (r < 0 && errno == EINTR) {
		lua_pushnil(L);
		lua_pushliteral(L, "interrupted");
		return 2;
	}
	if (r < 0)
		return fail_errno(L, errno, "poll");
	lua_createtable(L, r, 0);
	lua_Integer k = 0;
	for (lua_Integer i = 0; r > 0 && i < n; i++) {
		if (p[i].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) {
			lua_pushinteger(L, p[i].fd);
			lua_rawseti(L, -2, ++k);
		}
	}
	return 1;
}

/* ---- one descriptor for an event loop ------------------------------------------
 *
 * proc.epoll() -> fd | nil, message, errno: an epoll instance (close-on-exec).
 * An event loop (luv's poll handle, cqueues, copas) watches this one
 * descriptor for readability; it becomes readable when any descriptor added
 * to it is, so a sweep's changing set of worker pipes needs no re-registering
 * in the loop.  proc.epoll_add(ep, fd) / proc.epoll_del(ep, fd) -> true | nil,
 * message, errno. */
static int l_epoll(lua_State *L)
{
	int fd = epoll_create1(EPOLL_CLOEXEC);
	if (fd < 0)
		return fail_errno(L, errno, "epoll_create1");
	lua_pushinteger(L, fd);
	return 1;
}

static int epoll_op(lua_State *L, int op, const char *what)
{
	int ep = check_fd(L, 1), fd = check_fd(L, 2);
	struct epoll_event ev;
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLIN;
	ev.data.fd = fd;
	if (epoll_ctl(ep, op, fd, &ev) < 0)
		return fail_errno(L, errno, what);
	lua_pushboolean(L, 1);
	return 1;
}

static int l_epoll_add(lua_State *L) { return epoll_op(L, EPOLL_CTL_ADD, "epoll_ctl(ADD)"); }
static int l_epoll_del(lua_State *L) { return epoll_op(L, EPOLL_CTL_DEL, "epoll_ctl(DEL)"); }

/* proc.read(fd [, max]) -> data | "" at end of file | false when nothing is
 * there yet | nil, message, errno */
static int l_read(lua_State *L)
{
	int fd = check_fd(L, 1);
	lua_Integer max = luaL_optinteger(L, 2, 65536);
	luaL_argcheck(L, max > 0 && max <= READ_MAX, 2, "size out of range");
	luaL_Buffer b;
	char *buf = luaL_buffinitsize(L, &b, (size_t)max);
	ssize_t r;
	do
		r = read(fd, buf, (size_t)max);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			lua_pushboolean(L, 0);
			return 1;
		}
		return fail_errno(L, errno, "read");
	}
	luaL_pushresultsize(&b, (size_t)r);
	return 1;
}

static int l_close(lua_State *L)
{
	close_quietly(check_fd(L, 1));
	return 0;
}

/* proc.close_fd(fd) -> true | nil, message, errno.  Like close, but a
 * failure is reported: on some file systems (NFS) a write error only shows
 * at close, and the audit log must not lose one silently.  Never retried
 * (see close_quietly). */
static int l_close_fd(lua_State *L)
{
	if (close(check_fd(L, 1)) != 0 && errno != EINTR)
		return fail_errno(L, errno, "close");
	lua_pushboolean(L, 1);
	return 1;
}

/* proc.kill(pid, sig [, group]) -> true | nil, message, errno
 * A process already gone is not an error (it is about to be reaped). */
static int l_kill(lua_State *L)
{
	lua_Integer pid = luaL_checkinteger(L, 1);
	lua_Integer sig = luaL_checkinteger(L, 2);
	luaL_argcheck(L, pid > 0 && pid <= INT_MAX, 1, "pid out of range");
	luaL_argcheck(L, sig >= 0 && sig < 65, 2, "signal out of range");
	int r = -1;
	if (lua_toboolean(L, 3))
		r = kill(-(pid_t)pid, (int)sig);
	if (r < 0)
		r = kill((pid_t)pid, (int)sig);
	if (r < 0 && errno != ESRCH)
		return fail_errno(L, errno, "kill");
	lua_pushboolean(L, 1);
	return 1;
}

static double seconds(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void push_usage(lua_State *L, const struct rusage *ru)
{
	lua_pushnumber(L, seconds(ru->ru_utime));
	lua_setfield(L, -2, "utime");
	lua_pushnumber(L, seconds(ru->ru_stime));
	lua_setfield(L, -2, "stime");
	lua_pushinteger(L, ru->ru_maxrss); /* KiB on Linux */
	lua_setfield(L, -2, "maxrss");
}

/* proc.wait(pid [, block]) -> info | false while it runs | nil, message, errno
 * info: pid, code (normal exit) or signal (+ core), and the worker's own
 * utime, stime (seconds) and maxrss (KiB). */
static int l_wait(lua_State *L)
{
	lua_Integer pid = luaL_checkinteger(L, 1);
	luaL_argcheck(L, pid > 0 && pid <= INT_MAX, 1, "pid out of range");
	int flags = lua_toboolean(L, 2) ? 0 : WNOHANG;
	int status = 0;
	struct rusage ru;
	memset(&ru, 0, sizeof ru);
	pid_t r;
	do
		r = wait4((pid_t)pid, &status, flags, &ru);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return fail_errno(L, errno, "wait");
	if (r == 0) {
		lua_pushboolean(L, 0);
		return 1;
	}
	lua_createtable(L, 0, 7);
	lua_pushinteger(L, r);
	lua_setfield(L, -2, "pid");
	if (WIFEXITED(status)) {
		lua_pushinteger(L, WEXITSTATUS(status));
		lua_setfield(L, -2, "code");
	} else if (WIFSIGNALED(status)) {
		lua_pushinteger(L, WTERMSIG(status));
		lua_setfield(L, -2, "signal");
		lua_pushboolean(L, WCOREDUMP(status));
		lua_setfield(L, -2, "core");
	}
	push_usage(L, &ru);
	return 1;
}

/* proc.exit(code): leaves a worker at once, output flushed, no finalisers */
static int l_exit(lua_State *L)
{
	lua_Integer code = luaL_optinteger(L, 1, 0);
	(void)fflush(NULL);
	_exit((int)(code & 0xff));
	return 0;
}

/* proc.isatty(fd | file) -> boolean */
static int l_isatty(lua_State *L)
{
	int fd;
	luaL_Stream *s = luaL_testudata(L, 1, LUA_FILEHANDLE);
	if (s) {
		if (!s->closef || !s->f) {
			lua_pushboolean(L, 0);
			return 1;
		}
		fd = fileno(s->f);
	} else {
		fd = check_fd(L, 1);
	}
	lua_pushboolean(L, fd >= 0 && isatty(fd));
	return 1;
}

/* proc.clock() -> seconds on the monotonic clock */
static int l_clock(lua_State *L)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return fail_errno(L, errno, "clock_gettime");
	lua_pushnumber(L, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
	return 1;
}

/* proc.rusage("self" | "children") -> {utime, stime, maxrss} */
static int l_rusage(lua_State *L)
{
	static const char *const who[] = { "self", "children", NULL };
	int i = luaL_checkoption(L, 1, "self", who);
	struct rusage ru;
	if (getrusage(i == 0 ? RUSAGE_SELF : RUSAGE_CHILDREN, &ru) != 0)
		return fail_errno(L, errno, "getrusage");
	lua_createtable(L, 0, 3);
	push_usage(L, &ru);
	return 1;
}

/* proc.sleep(seconds) -> true | nil, "interrupted" when a signal trapped by
 * proc.trap() arrives meanwhile (stop means stop: no waiting out a backoff
 * after Ctrl-C); other interruptions only resume the sleep. */
static int l_sleep(lua_State *L)
{
	double s = luaL_checknumber(L, 1);
	lua_pushboolean(L, 1);
	if (!(s > 0))
		return 1;
	struct timespec req, rem;
	req.tv_sec = s >= 1e9 ? (time_t)1000000000 : (time_t)s;
	req.tv_nsec = s >= 1e9 ? 0 : (long)((s - (double)req.tv_sec) * 1e9);
	while (nanosleep(&req, &rem) != 0 && errno == EINTR) {
		if (trapped && caught_signal != 0) {
			lua_pushnil(L);
			lua_pushliteral(L, "interrupted");
			return 2;
		}
		req = rem;
	}
	return 1;
}

static int l_getpid(lua_State *L)
{
	lua_pushinteger(L, getpid());
	return 1;
}

/* username() -> the name of the effective uid's account, or nil when the
 * account database has none */
static int l_username(lua_State *L)
{
	struct passwd pw, *found = NULL;
	char buf[4096];
	if (getpwuid_r(geteuid(), &pw, buf, sizeof buf, &found) != 0 || !found || !found->pw_name)
		return 0;
	lua_pushstring(L, found->pw_name);
	return 1;
}

/* mkdir(path, mode) -> true | nil, message, errno; an existing directory is
 * fine (EEXIST on a directory is success) */
static int l_mkdir(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	lua_Integer mode = luaL_checkinteger(L, 2);
	luaL_argcheck(L, mode >= 0 && mode <= 07777, 2, "mode 0..07777 expected");
	if (mkdir(path, (mode_t)mode) < 0) {
		struct stat st;
		int err = errno;
		if (!(err == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode)))
			return fail_errno(L, err, path);
	}
	lua_pushboolean(L, 1);
	return 1;
}

/* ---- stop means stop: SIGINT/SIGTERM noted, never acted on in the handler --
 *
 * A run that acts must not be cut between an RPC and its audit line, and a
 * Lua error raised by the interpreter's own SIGINT hook would be caught by
 * any pcall on the way.  So while a run acts, the handler only notes the
 * signal; the executor asks caught() before every action.
 *
 * Why a global: a handler receives nothing but the signal number (no
 * lua_State, no closure), and C11 (7.14.1.1) defines only its writes to an
 * object of static storage of type volatile sig_atomic_t.  So caught_signal
 * is the one piece of state a handler touches; the saved dispositions and
 * `trapped` beside it are only read and written outside handlers.  All of
 * it is per process: a forked worker starts with default dispositions and
 * the flag cleared (run_worker). */

static void note_signal(int sig)
{
	if (caught_signal == 0)
		caught_signal = sig;
}

/* proc.trap(): notes SIGINT and SIGTERM from now on (no SA_RESTART, so a
 * blocking wait returns early and the caller looks at caught()). */
static int l_trap(lua_State *L)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = note_signal;
	sigemptyset(&sa.sa_mask);
	if (!trapped) {
		if (sigaction(SIGINT, &sa, &saved_int) < 0)
			return fail_errno(L, errno, "sigaction");
		if (sigaction(SIGTERM, &sa, &saved_term) < 0) {
			int err = errno;
			(void)sigaction(SIGINT, &saved_int, NULL);
			return fail_errno(L, err, "sigaction");
		}
		trapped = 1;
	}
	lua_pushboolean(L, 1);
	return 1;
}

/* proc.untrap(): the dispositions from before trap() again. */
static int l_untrap(lua_State *L)
{
	if (trapped) {
		(void)sigaction(SIGINT, &saved_int, NULL);
		(void)sigaction(SIGTERM, &saved_term, NULL);
		trapped = 0;
	}
	lua_pushboolean(L, 1);
	return 1;
}

/* proc.caught() -> the first signal noted since trap (or reset_caught), or nil */
static int l_caught(lua_State *L)
{
	if (caught_signal == 0)
		lua_pushnil(L);
	else
		lua_pushinteger(L, caught_signal);
	return 1;
}

static int l_reset_caught(lua_State *L)
{
	caught_signal = 0;
	lua_pushboolean(L, 1);
	return 1;
}

/* ---- the audit log's descriptor ---------------------------------------------
 *
 * proc.audit_open(path) -> fd | nil, code, message.  O_NOFOLLOW: a symlink
 * (dangling or not) is refused, never followed or created through; the
 * checks run on the descriptor itself (fstat), so there is no window between
 * a check and the open.  Only a regular file owned by this user and
 * writable by nobody else is accepted. */
static int refuse(lua_State *L, int fd, const char *code, const char *msg)
{
	if (fd >= 0)
		close_quietly(fd);
	lua_pushnil(L);
	lua_pushstring(L, code);
	lua_pushstring(L, msg);
	return 3;
}

static int l_audit_open(lua_State *L)
{
	size_t len;
	const char *path = luaL_checklstring(L, 1, &len);
	luaL_argcheck(L, len > 0 && strlen(path) == len, 1, "path without NUL expected");
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0600);
	if (fd < 0) {
		int e = errno;
		if (e == ELOOP)
			return refuse(L, -1, "audit_unsafe", "is a symbolic link; refusing to follow it");
		if (e == ENXIO) /* O_NONBLOCK: a FIFO without a reader */
			return refuse(L, -1, "audit_unsafe", "is a FIFO, not a regular file");
		if (e == EISDIR)
			return refuse(L, -1, "audit_unsafe", "is a directory, not a regular file");
		lua_pushnil(L);
		lua_pushstring(L, "audit_failed");
		lua_pushstring(L, strerror(e));
		return 3;
	}
	struct stat st;
	if (fstat(fd, &st) < 0)
		return refuse(L, fd, "audit_failed", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return refuse(L, fd, "audit_unsafe", "is not a regular file");
	if (st.st_uid != geteuid())
		return refuse(L, fd, "audit_unsafe", "is owned by another user");
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return refuse(L, fd, "audit_unsafe", "is writable by group or others");
	/* back to blocking writes: O_NONBLOCK only kept a FIFO from hanging the open */
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
		return refuse(L, fd, "audit_failed", strerror(errno));
	lua_pushinteger(L, fd);
	return 1;
}

/* proc.write_line(fd, s) -> true | nil, message.  One write(2): with
 * O_APPEND, lines of concurrent writers (workers) never interleave.  A short
 * write (a full disk) is a failure, as is any error. */
static int l_write_line(lua_State *L)
{
	int fd = check_fd(L, 1);
	size_t n;
	const char *s = luaL_checklstring(L, 2, &n);
	ssize_t w;
	do {
		w = write(fd, s, n);
	} while (w < 0 && errno == EINTR);
	if (w < 0)
		return fail_errno(L, errno, "write");
	if ((size_t)w != n) {
		lua_pushnil(L);
		lua_pushfstring(L, "write: short write (%d of %d bytes): disk full?", (int)w, (int)n);
		return 2;
	}
	lua_pushboolean(L, 1);
	return 1;
}

/* ---- secrets and core dumps --------------------------------------------------
 *
 * proc.protect() -> true | nil, message: this process holds a password or an
 * NT hash from now on.  A core dump would write it to disk (a crashing
 * worker's core held six copies of the password), and a dumpable process
 * lets any process of the same uid ptrace it and read its memory.  So: no
 * core file (RLIMIT_CORE's soft limit 0) and not dumpable, which also
 * refuses same-uid ptrace.  Both are inherited by fleet workers.  An
 * environment variable TERMSRV_ALLOW_CORE_DUMPS=1 keeps them for debugging
 * (and for LeakSanitizer, which cannot stop the threads of a process that is
 * not dumpable). */
static int l_protect(lua_State *L)
{
	const char *keep = getenv("TERMSRV_ALLOW_CORE_DUMPS");
	if (keep && strcmp(keep, "1") == 0) {
		lua_pushboolean(L, 0);
		return 1;
	}
	/* the soft limit only: the hard one is the caller's, and its children
	 * (execve makes a process dumpable again) may still want core files */
	struct rlimit rl;
	if (getrlimit(RLIMIT_CORE, &rl) < 0)
		return fail_errno(L, errno, "getrlimit(RLIMIT_CORE)");
	rl.rlim_cur = 0;
	if (setrlimit(RLIMIT_CORE, &rl) < 0)
		return fail_errno(L, errno, "setrlimit(RLIMIT_CORE)");
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return fail_errno(L, errno, "prctl(PR_SET_DUMPABLE)");
	lua_pushboolean(L, 1);
	return 1;
}

/* proc.dump_state() -> dumpable (boolean), core limit (bytes; math.huge when
 * unlimited) */
static int l_dump_state(lua_State *L)
{
	struct rlimit rl;
	int d = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	if (d < 0 || getrlimit(RLIMIT_CORE, &rl) < 0)
		return fail_errno(L, errno, "prctl/getrlimit");
	lua_pushboolean(L, d != 0);
	if (rl.rlim_cur == RLIM_INFINITY)
		lua_pushnumber(L, HUGE_VAL);
	else
		lua_pushinteger(L, (lua_Integer)rl.rlim_cur);
	return 2;
}

static const luaL_Reg funcs[] = {
	{ "protect", l_protect }, { "dump_state", l_dump_state },
	{ "epoll", l_epoll },     { "epoll_add", l_epoll_add }, { "epoll_del", l_epoll_del },
	{ "trap", l_trap },     { "untrap", l_untrap }, { "caught", l_caught },
	{ "reset_caught", l_reset_caught },
	{ "audit_open", l_audit_open }, { "write_line", l_write_line },
	{ "close_fd", l_close_fd },
	{ "fork", l_fork },     { "poll", l_poll },     { "read", l_read },
	{ "close", l_close },   { "kill", l_kill },     { "wait", l_wait },
	{ "exit", l_exit },     { "isatty", l_isatty }, { "clock", l_clock },
	{ "rusage", l_rusage }, { "sleep", l_sleep },   { "getpid", l_getpid },
	{ "username", l_username }, { "mkdir", l_mkdir },
	{ NULL, NULL },
};

EXPORT int luaopen_termsrv_proc(lua_State *L);
EXPORT int luaopen_termsrv_proc(lua_State *L)
{
	luaL_newlib(L, funcs);
	static const struct {
		const char *name;
		int sig;
	} sigs[] = {
		{ "HUP", SIGHUP },   { "INT", SIGINT },   { "QUIT", SIGQUIT }, { "ILL", SIGILL },
		{ "TRAP", SIGTRAP }, { "ABRT", SIGABRT }, { "BUS", SIGBUS },   { "FPE", SIGFPE },
		{ "KILL", SIGKILL }, { "USR1", SIGUSR1 }, { "SEGV", SIGSEGV }, { "USR2", SIGUSR2 },
		{ "PIPE", SIGPIPE }, { "ALRM", SIGALRM }, { "TERM", SIGTERM }, { "XCPU", SIGXCPU },
		{ "XFSZ", SIGXFSZ }, { "SYS", SIGSYS },
	};
	lua_createtable(L, 0, (int)(sizeof sigs / sizeof sigs[0]));
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		lua_pushinteger(L, sigs[i].sig);
		lua_setfield(L, -2, sigs[i].name);
	}
	lua_setfield(L, -2, "signals");
	lua_pushinteger(L, WORKER_FAILED);
	lua_setfield(L, -2, "WORKER_FAILED");
	return 1;
}
