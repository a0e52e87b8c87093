/*
 * The policy sandbox's limits, which Lua alone cannot enforce (the Lua side
 * is lua/termsrv/sandbox.lua):
 *
 *  - memory: while sandboxed code runs, the state's allocator is wrapped by
 *    one that counts the bytes it grows by and refuses (returns NULL, which
 *    Lua turns into a memory error) an allocation that would pass the cap.
 *    Shrinking and freeing always succeed, as Lua requires. Once refused,
 *    every later growth is refused too, until the run ends.
 *  - instructions and wall clock: a count hook charges the budget and reads
 *    the monotonic clock. Once a limit is reached the hook fires on every
 *    instruction and raises each time, and every guarded library function
 *    raises after it returns, so a `pcall` in the policy cannot swallow it:
 *    the run unwinds to sandbox_run.
 *
 * sandbox_run restores the allocator and the previous hook on every path
 * (the sandboxed function runs under lua_pcall). Runs nest: an inner run
 * wraps the outer one's allocator, so both caps hold.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "sandbox.h"

enum { SB_NONE, SB_MEMORY, SB_INSTRUCTIONS, SB_TIME };
static const char *const trip_names[] = {NULL, "memory", "instructions", "time"};

/* instructions between two looks at the budget and the clock */
#define SB_EVERY 1000
/* the largest policy file sandbox_read takes (its own cap is the caller's) */
#define SB_READ_MAX (64 * 1024 * 1024)

typedef struct sandbox {
	lua_Alloc alloc;     /* the allocator this one wraps */
	void *alloc_ud;
	size_t limit;        /* cap on `used` */
	size_t used;         /* bytes grown by since the budget began (>= 0) */
	size_t peak;
	lua_Integer steps;   /* instructions left */
	int every;           /* the hook's count now */
	double deadline;     /* monotonic seconds */
	int tripped;         /* SB_*: the first limit reached */
} sandbox;

/* the value raised once a limit is reached: a light userdata raises
 * without allocating */
static char trip_key;

static double monotime(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	sandbox *sb = ud;
	size_t old = ptr ? osize : 0; /* for a new block osize is a type tag */
	if (nsize > old) {
		size_t more = nsize - old;
		if (sb->tripped == SB_MEMORY || sb->used > sb->limit || more > sb->limit - sb->used) {
			if (sb->tripped == SB_NONE)
				sb->tripped = SB_MEMORY;
			return NULL;
		}
	}
	void *p = sb->alloc(sb->alloc_ud, ptr, osize, nsize);
	if (nsize == 0 || p) {
		if (nsize >= old) {
			sb->used += nsize - old;
			if (sb->used > sb->peak)
				sb->peak = sb->used;
		} else {
			size_t less = old - nsize; /* a block older than the budget may go */
			sb->used = less > sb->used ? 0 : sb->used - less;
		}
	}
	return p;
}

/* the running sandbox of L, or NULL */
static sandbox *current(lua_State *L)
{
	void *ud;
	return lua_getallocf(L, &ud) == sb_alloc ? ud : NULL;
}

static void sb_hook(lua_State *L, lua_Debug *ar);

/* Once tripped: the hook fires on every instruction, and raises. */
static int raise_tripped(lua_State *L, sandbox *sb)
{
	if (sb->every != 1) {
		sb->every = 1;
		lua_sethook(L, sb_hook, LUA_MASKCOUNT, 1);
	}
	lua_pushlightuserdata(L, &trip_key);
	return lua_error(L);
}

static void sb_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	sandbox *sb = current(L);
	if (!sb)
		return;
	if (sb->tripped == SB_NONE) {
		sb->steps -= sb->every;
		if (sb->steps <= 0) {
			sb->steps = 0;
			sb->tripped = SB_INSTRUCTIONS;
		} else if (monotime() >= sb->deadline) {
			sb->tripped = SB_TIME;
		} else if (sb->steps < sb->every) {
			sb->every = (int)sb->steps;
			lua_sethook(L, sb_hook, LUA_MASKCOUNT, sb->every);
		}
	}
	if (sb->tripped != SB_NONE)
		raise_tripped(L, sb);
}

/* sandbox_check(): raises when the running sandbox is past a limit (after a
 * C call the hook could not see into); nothing outside a sandbox. */
static int l_check(lua_State *L)
{
	sandbox *sb = current(L);
	if (!sb)
		return 0;
	if (sb->tripped == SB_NONE && monotime() >= sb->deadline)
		sb->tripped = SB_TIME;
	if (sb->tripped != SB_NONE)
		return raise_tripped(L, sb);
	return 0;
}

/* the guarded function: upvalue 1 called with every argument, then the check */
static int l_guarded(lua_State *L)
{
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
	l_check(L);
	return lua_gettop(L);
}

/* sandbox_guard(f) -> a function that calls f, then checks the limits */
static int l_guard(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TFUNCTION);
	lua_settop(L, 1);
	lua_pushcclosure(L, l_guarded, 1);
	return 1;
}

static lua_Integer field_int(lua_State *L, int t, const char *k, lua_Integer dflt, lua_Integer min)
{
	lua_Integer v = dflt;
	int isnum = 1;
	if (lua_getfield(L, t, k) != LUA_TNIL)
		v = lua_tointegerx(L, -1, &isnum);
	lua_pop(L, 1);
	if (!isnum || v < min)
		luaL_error(L, "sandbox: %s: integer >= %d expected", k, (int)min);
	return v;
}

/*
 * sandbox_run(state, f, ...) -> true, results... | false, err
 * state: { memory = bytes (cap), used = bytes already counted (default 0),
 *          instructions = left, deadline = monotonic seconds }
 * Afterwards state.used, state.peak and state.instructions say what is
 * left, and state.tripped names the limit that ended the run ("memory",
 * "instructions", "time"); err is then a light userdata.
 */
static int l_run(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_checktype(L, 2, LUA_TFUNCTION);
	sandbox sb;
	memset(&sb, 0, sizeof sb);
	sb.limit = (size_t)field_int(L, 1, "memory", 0, 0);
	sb.used = (size_t)field_int(L, 1, "used", 0, 0);
	sb.peak = sb.used;
	sb.steps = field_int(L, 1, "instructions", 0, 0);
	if (lua_getfield(L, 1, "deadline") != LUA_TNUMBER)
		luaL_error(L, "sandbox: deadline: number expected");
	sb.deadline = lua_tonumber(L, -1);
	lua_pop(L, 1);
	lua_getfield(L, 1, "tripped");
	int was_tripped = !lua_isnil(L, -1);
	lua_pop(L, 1);
	if (sb.steps <= 0 || was_tripped)
		sb.tripped = SB_INSTRUCTIONS;
	else if (monotime() >= sb.deadline)
		sb.tripped = SB_TIME;
	if (sb.tripped != SB_NONE) {
		/* a spent budget stays spent */
		lua_pushboolean(L, 0);
		lua_pushlightuserdata(L, &trip_key);
		if (!was_tripped) {
			lua_pushstring(L, trip_names[sb.tripped]);
			lua_setfield(L, 1, "tripped");
		}
		return 2;
	}
	sb.every = sb.steps < SB_EVERY ? (int)sb.steps : SB_EVERY;
	int nargs = lua_gettop(L) - 2;
	luaL_checkstack(L, 3, NULL);

	lua_Hook old_hook = lua_gethook(L);
	int old_mask = lua_gethookmask(L), old_count = lua_gethookcount(L);
	sb.alloc = lua_getallocf(L, &sb.alloc_ud);
	lua_setallocf(L, sb_alloc, &sb);
	lua_sethook(L, sb_hook, LUA_MASKCOUNT, sb.every);
	int status = lua_pcall(L, nargs, LUA_MULTRET, 0);
	lua_setallocf(L, sb.alloc, sb.alloc_ud);
	lua_sethook(L, old_hook, old_mask, old_count);

	/* the results (or the error) are at 2..top; the fields below may
	 * allocate, now outside the cap */
	int nres = lua_gettop(L) - 1;
	lua_pushinteger(L, (lua_Integer)sb.used);
	lua_setfield(L, 1, "used");
	lua_pushinteger(L, (lua_Integer)sb.peak);
	lua_setfield(L, 1, "peak");
	lua_pushinteger(L, sb.steps < 0 ? 0 : sb.steps);
	lua_setfield(L, 1, "instructions");
	if (sb.tripped != SB_NONE) {
		lua_pushstring(L, trip_names[sb.tripped]);
		lua_setfield(L, 1, "tripped");
	}
	if (status != LUA_OK && sb.tripped != SB_NONE) {
		lua_pushboolean(L, 0);
		lua_pushlightuserdata(L, &trip_key);
		return 2;
	}
	lua_pushboolean(L, status == LUA_OK);
	lua_insert(L, 2);
	return nres + 1;
}

/* sandbox_tripped(v) -> true when v is the value a limit raises */
static int l_tripped(lua_State *L)
{
	lua_pushboolean(L, lua_touserdata(L, 1) == &trip_key && lua_islightuserdata(L, 1));
	return 1;
}

static int l_clock(lua_State *L)
{
	lua_pushnumber(L, monotime());
	return 1;
}

/*
 * sandbox_read(path, max) -> text | nil, message, kind
 * Reads a regular file of at most max bytes. Opens without blocking (a FIFO
 * would wait for a writer), then refuses what is not a regular file
 * (kind "type") or is larger than max ("size"); "open", "read" for errno.
 */
static int l_read(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	lua_Integer max = luaL_checkinteger(L, 2);
	luaL_argcheck(L, max >= 0 && max <= SB_READ_MAX, 2, "size out of range");
	/* the buffer first: nothing below raises while the file is open */
	char *buf = lua_newuserdatauv(L, (size_t)max + 1, 0);
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int e = errno;
		lua_pushnil(L);
		lua_pushfstring(L, "%s: %s", path, strerror(e));
		lua_pushliteral(L, "open");
		return 3;
	}
	struct stat st;
	const char *why = NULL, *kind = NULL;
	int e = 0;
	if (fstat(fd, &st) != 0) {
		e = errno;
		kind = "read";
	} else if (!S_ISREG(st.st_mode)) {
		why = S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO"
			: S_ISCHR(st.st_mode) ? "a character device" : S_ISBLK(st.st_mode) ? "a block device"
			: S_ISSOCK(st.st_mode) ? "a socket" : "not a regular file";
		kind = "type";
	} else if (st.st_size > (off_t)max) {
		kind = "size";
	}
	size_t n = 0;
	if (!kind) {
		while (n <= (size_t)max) {
			ssize_t r = read(fd, buf + n, (size_t)max + 1 - n);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0) {
				e = errno;
				kind = "read";
				break;
			}
			if (r == 0)
				break;
			n += (size_t)r;
		}
		if (!kind && n > (size_t)max)
			kind = "size"; /* it grew while read */
	}
	close(fd);
	if (!kind) {
		lua_pushlstring(L, buf, n);
		return 1;
	}
	lua_pushnil(L);
	if (e)
		lua_pushfstring(L, "%s: %s", path, strerror(e));
	else if (why)
		lua_pushfstring(L, "%s: %s, not a regular file", path, why);
	else
		lua_pushfstring(L, "%s: larger than %I bytes", path, max);
	lua_pushstring(L, kind);
	return 3;
}

static const luaL_Reg sandbox_funcs[] = {
	{"sandbox_run", l_run},
	{"sandbox_check", l_check},
	{"sandbox_guard", l_guard},
	{"sandbox_tripped", l_tripped},
	{"sandbox_clock", l_clock},
	{"sandbox_read", l_read},
	{NULL, NULL},
};

void ts_sandbox_register(lua_State *L)
{
	luaL_setfuncs(L, sandbox_funcs, 0);
}
