# termsrv -- build, test, check, demo.
# `make test` and `make demo` are all a user needs on a fresh Debian 12:
# both install missing Debian packages first (.ci/install-deps).

LUA        ?= lua5.4
BUSTED     ?= $(LUA) /usr/bin/busted --ignore-lua
PKG_CONFIG ?= pkg-config
BUILD      ?= build
CC         ?= gcc

LUA_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(LUA) 2>/dev/null)
SMB_CFLAGS := $(shell $(PKG_CONFIG) --cflags smbclient 2>/dev/null)
SMB_LIBS   := $(shell $(PKG_CONFIG) --libs smbclient 2>/dev/null)
NETTLE_LIBS:= $(shell $(PKG_CONFIG) --libs nettle 2>/dev/null)

CFLAGS  ?= -O2 -g
WARN    := -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -Wshadow -Wpointer-arith \
           -Wstrict-prototypes -Wmissing-prototypes -Wvla -Wformat=2
ALL_CFLAGS = $(CFLAGS) $(WARN) -fPIC -fvisibility=hidden $(LUA_CFLAGS) $(SMB_CFLAGS)
LIBS    = $(SMB_LIBS) $(NETTLE_LIBS)

# the C core: one file per layer, and the Lua binding
CORE_SRC := $(filter-out src/testkit%.c src/proc.c,$(wildcard src/*.c))
CORE_OBJ := $(CORE_SRC:src/%.c=$(BUILD)/obj/%.o)
KIT_SRC  := $(wildcard src/testkit*.c)
KIT_OBJ  := $(KIT_SRC:src/%.c=$(BUILD)/obj/%.o)
SO       := $(BUILD)/termsrv/core.so
KIT      := $(BUILD)/termsrv/testkit.so
PROC     := $(BUILD)/termsrv/proc.so
export TERMSRV_BUILD := $(BUILD)

.PHONY: all deps test demo lint clean bench
all: $(SO) $(PROC)

deps:
	@sh .ci/install-deps

$(BUILD)/obj/%.o: src/%.c $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(SO): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $^ $(LDFLAGS) $(LIBS)

# test-only module: exposes the codecs to the unit specs
$(KIT): $(KIT_OBJ) $(filter-out $(BUILD)/obj/lua_core.o,$(CORE_OBJ))
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $^ $(LDFLAGS) $(LIBS)

test: deps
	@$(MAKE) --no-print-directory $(SO) $(KIT) $(PROC)
	$(BUSTED)

# the main job against the simulated terminal server: list, then a dry run
demo: deps
	@$(MAKE) --no-print-directory $(SO)
	@set -e; eval "$$(sim/start)"; trap 'sim/stop "$$TERMSRV_SIM_DIR"' EXIT; \
	  TERMSRV_USER="$$TERMSRV_SIM_DOMAIN\\$$TERMSRV_SIM_USER" TERMSRV_PASSWORD="$$TERMSRV_SIM_PASSWORD" \
	  $(LUA) examples/demo.lua "$$TERMSRV_SIM_HOST:$$TERMSRV_SIM_PORT" "$$TERMSRV_SIM_NAME"

lint:
	luacheck -q lua spec examples bin sim .busted

clean:
	rm -rf $(BUILD) build-*

# ---- fleet sweeps: process primitives and the benchmark ----------------------
# termsrv.proc is its own module (fork/poll/wait for termsrv.fleet): it does
# not link libsmbclient, and core.so does not depend on it.
$(PROC): $(BUILD)/obj/proc.o
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $^ $(LDFLAGS)

# the thread-pool variant of the sweep, for comparison with the fork pool
BENCH_THREADS := $(BUILD)/bench/threads
$(BENCH_THREADS): bench/threads.c $(filter-out $(BUILD)/obj/lua_core.o,$(CORE_OBJ)) $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) $(SMB_CFLAGS) -Isrc -pthread -o $@ $(filter %.c %.o,$^) $(LDFLAGS) $(LIBS)

# 200 simulated hosts behind a proxy adding BENCH_RTT_MS of round-trip time
# (needs root, like the simulator); see bench/README.md
bench: $(SO) $(PROC) $(BENCH_THREADS)
	/usr/bin/python3 bench/run.py --build $(BUILD)
