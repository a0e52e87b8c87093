-- busted --helper for `make check`: the sanitizer runtimes are preloaded
-- into this lua5.4 only. Once it runs, nothing it spawns -- sh, smbd,
-- python, the termsrv CLI under test -- may inherit them: an ASan runtime
-- in a program not built for it makes that program hang or abort at exit
-- (LUA-NOTES 5.2, point 4). LD_PRELOAD is read only when a program starts,
-- so dropping it here changes nothing for this process; children then load
-- the plain build (TERMSRV_BUILD=build), which `make check` builds too.
local uv = require "luv"

for _, var in ipairs{ "LD_PRELOAD", "ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS" } do
  uv.os_unsetenv(var)
end
uv.os_setenv("TERMSRV_BUILD", os.getenv("TERMSRV_CHILD_BUILD") or "build")
