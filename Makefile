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
KRB_CFLAGS := $(shell $(PKG_CONFIG) --cflags krb5-gssapi 2>/dev/null)
KRB_LIBS   := $(shell $(PKG_CONFIG) --libs krb5-gssapi 2>/dev/null)

CFLAGS  ?= -O2 -g
WARN    := -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -Wshadow -Wpointer-arith \
           -Wstrict-prototypes -Wmissing-prototypes -Wvla -Wformat=2
ALL_CFLAGS = $(CFLAGS) $(WARN) -fPIC -fvisibility=hidden $(LUA_CFLAGS) $(SMB_CFLAGS) $(KRB_CFLAGS)
LIBS    = $(SMB_LIBS) $(NETTLE_LIBS) $(KRB_LIBS)

# the C core: one file per layer, and the Lua binding
CORE_SRC := $(filter-out src/testkit%.c src/proc.c,$(wildcard src/*.c))
CORE_OBJ := $(CORE_SRC:src/%.c=$(BUILD)/obj/%.o)
# the parts that only a Lua module needs (the test kit and the threads bench
# link the rest)
LUA_OBJ  := $(BUILD)/obj/lua_core.o $(BUILD)/obj/sandbox.o
KIT_SRC  := $(wildcard src/testkit*.c)
KIT_OBJ  := $(KIT_SRC:src/%.c=$(BUILD)/obj/%.o)
SO       := $(BUILD)/termsrv/core.so
KIT      := $(BUILD)/termsrv/testkit.so
PROC     := $(BUILD)/termsrv/proc.so
export TERMSRV_BUILD := $(BUILD)

.PHONY: all deps test unit demo lint clean bench bench-deep doc rockspec
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
$(KIT): $(KIT_OBJ) $(filter-out $(LUA_OBJ),$(CORE_OBJ))
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $^ $(LDFLAGS) $(LIBS)

test: deps
	@$(MAKE) --no-print-directory $(SO) $(KIT) $(PROC) $(FUZZKIT)
	$(BUSTED)

# the long leak loop: 10,000 connect/list/close cycles and 5,000
# connect/close (about 3 min; make test runs a quarter of it); in CI
leak:
	@$(MAKE) --no-print-directory $(SO) $(KIT) $(PROC) $(FUZZKIT)
	TERMSRV_LEAK_CYCLES=10000 $(BUSTED) spec/leak_spec.lua

# the unit specs alone (tagged #unit: no simulator, no root, about a second).
# Only the files with such tags are loaded: busted runs a file's top-level
# setup (which starts the simulator) even when the tags filter out its tests.
UNIT_SPECS = $(shell grep -l -- '\#unit' spec/*_spec.lua)
unit:
	@$(MAKE) --no-print-directory $(SO) $(KIT) $(PROC) $(FUZZKIT)
	$(BUSTED) --tags=unit $(UNIT_SPECS)

# the main job against the simulated terminal server: list, then a dry run
demo: deps
	@$(MAKE) --no-print-directory $(SO)
	@set -e; eval "$$(sim/start)"; trap 'sim/stop "$$TERMSRV_SIM_DIR"' EXIT; \
	  TERMSRV_USER="$$TERMSRV_SIM_DOMAIN\\$$TERMSRV_SIM_USER" TERMSRV_PASSWORD="$$TERMSRV_SIM_PASSWORD" \
	  $(LUA) examples/demo.lua "$$TERMSRV_SIM_HOST:$$TERMSRV_SIM_PORT" "$$TERMSRV_SIM_NAME"

# The rockspec of release X.Y.Z (tag vX.Y.Z), from the scm one: make rockspec VERSION=X.Y.Z
rockspec:
	@test -n "$(VERSION)" || { echo "usage: make rockspec VERSION=X.Y.Z" >&2; exit 64; }
	cd rockspecs && luarocks --lua-version=5.4 new_version ../termsrv-scm-1.rockspec $(VERSION) --tag=v$(VERSION) \
	  && rm -f termsrv-scm-1.rockspec

# The API reference (config.ld; doc/ is not committed) and the table
# termsrv.help prints (lua/termsrv/helpdata.lua, committed: an installed
# tree has no LDoc). Any LDoc warning fails; spec/doc_spec.lua checks that
# both are up to date and that every public function is documented.
LDOC ?= ldoc
doc:
	@rm -rf doc
	@out=$$($(LDOC) . 2>&1) || { echo "$$out" >&2; exit 1; }; \
	  warn=$$(echo "$$out" | grep -v -e '^reading configuration' -e '^output written'); \
	  if [ -n "$$warn" ]; then echo "$$warn" >&2; echo "make doc: LDoc warnings" >&2; exit 1; fi
	@TERMSRV_HELPDATA=lua/termsrv/helpdata.lua LUA_PATH='./doc-src/?.lua;;' $(LDOC) --filter helpgen.write . >/dev/null
	@echo "doc/index.html, lua/termsrv/helpdata.lua"

lint:
	luacheck -q lua spec examples bench sim bin/termsrv .busted doc-src/helpgen.lua config.ld

clean:
	rm -rf $(BUILD) build-*

# ---- hardening: fuzzers, sanitizers, valgrind (fuzz/README.md) ---------------
# termsrv.fuzzkit: the fuzz harnesses as a test-only Lua module (hardening
# specs replay the seed corpora through it). It links the core without
# smbpipe.c: the client runs over the memory transport (fuzz/memtransport.c,
# plugged in through ts_opts.transport), so it needs neither libsmbclient
# nor a network.
FUZZKIT      := $(BUILD)/termsrv/fuzzkit.so
HARNESS      := harness memtransport
HARNESS_CORE := dcerpc errors ndr ntlmssp rpcsec spnego krb5sec rpcpipe tsts lsat
FUZZKIT_OBJ  := $(patsubst %,$(BUILD)/obj/fuzz-%.o,kit krbflip $(HARNESS)) \
                $(patsubst %,$(BUILD)/obj/%.o,$(HARNESS_CORE))

$(BUILD)/obj/fuzz-%.o: fuzz/%.c fuzz/harness.h $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Isrc -c -o $@ $<

$(FUZZKIT): $(FUZZKIT_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $^ $(LDFLAGS) $(NETTLE_LIBS) $(KRB_LIBS)

# libFuzzer targets (clang 14 + libclang-rt-14-dev), built with ASan+UBSan.
# `make fuzz` runs each for FUZZ_SECONDS, `make fuzz-short` for
# FUZZ_SHORT_SECONDS (CI); a crash stops the run, with the input saved in
# build-fuzz/crashes/. New inputs go to build-fuzz/corpus/TARGET; the seeds
# in fuzz/seeds/TARGET are only read.
FUZZ_SECONDS       ?= 60
FUZZ_SHORT_SECONDS ?= 15
FUZZ_BUILD   := build-fuzz
FUZZ_TARGETS := ntlm_challenge rpc_pdu rpc_stream rpc_sealed tsts_parse tsts_client spnego lsat_parse
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_CC      := clang
FUZZ_FLAGS   := -g -O1 -fno-omit-frame-pointer -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Werror \
                -Isrc $(KRB_CFLAGS) -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_OBJ     := $(patsubst %,$(FUZZ_BUILD)/obj/%.o,$(HARNESS_CORE)) \
                $(patsubst %,$(FUZZ_BUILD)/obj/fuzz-%.o,$(HARNESS))

$(FUZZ_BUILD)/obj/%.o: src/%.c $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/obj/fuzz-%.o: fuzz/%.c fuzz/harness.h $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

# the objects stay between runs (make would delete them as intermediates)
.SECONDARY: $(FUZZ_OBJ) $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/obj/fuzz-fuzz_%.o)

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/fuzz-fuzz_%.o $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $^ $(NETTLE_LIBS) $(KRB_LIBS)

.PHONY: leak fuzz fuzz-short fuzz-build fuzz-seeds check check-asan check-valgrind
fuzz-build: deps
	@$(MAKE) --no-print-directory $(FUZZ_BINS)

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do sh fuzz/run $$t $(FUZZ_SECONDS) || exit 1; done

# a fixed seed makes CI's short pass the same search on every run
fuzz-short: fuzz-build
	@for t in $(FUZZ_TARGETS); do FUZZ_SEED=1 sh fuzz/run $$t $(FUZZ_SHORT_SECONDS) || exit 1; done

# Regenerates the captured seeds from the simulator (needs root, like the
# simulator); see fuzz/README.md.
CAPTURE := $(BUILD)/fuzz/capture
$(CAPTURE): $(BUILD)/obj/fuzz-capture.o $(patsubst %,$(BUILD)/obj/fuzz-%.o,$(HARNESS)) \
            $(patsubst %,$(BUILD)/obj/%.o,$(HARNESS_CORE) smbpipe)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDFLAGS) $(LIBS)

fuzz-seeds: fuzz-build
	@$(MAKE) --no-print-directory $(CAPTURE)
	sh fuzz/capture.sh $(CAPTURE)

# `make check`: the whole suite on an ASan+UBSan build (the sanitizer
# runtimes preloaded into lua5.4; spawned helpers must not inherit them, see
# spec/support/sanitizer_env.lua), then valgrind's leak check over
# VALGRIND_SPECS. handle_segv=0: the fleet specs kill workers with SIGSEGV on
# purpose and check the signal; ASan would turn it into SIGABRT (a stray
# SEGV of ours still fails the run, only without ASan's report).
ASAN_BUILD   := build-asan
ASAN_CFLAGS  := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined,float-cast-overflow \
                -fno-sanitize-recover=undefined
ASAN_PRELOAD  = $(shell $(CC) -print-file-name=libasan.so) $(shell $(CC) -print-file-name=libubsan.so)
ASAN_ENV      = TERMSRV_BUILD=$(ASAN_BUILD) TERMSRV_ALLOW_CORE_DUMPS=1 LD_PRELOAD="$(ASAN_PRELOAD)" \
  ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0:abort_on_error=1:detect_stack_use_after_return=1:handle_segv=0 \
  LSAN_OPTIONS=suppressions=$(CURDIR)/spec/lsan.supp:print_suppressions=0 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
VALGRIND      = valgrind -q --trace-children=no --keep-debuginfo=yes --num-callers=30 \
  --suppressions=spec/valgrind.supp --error-exitcode=99 --leak-check=full \
  --show-leak-kinds=definite --errors-for-leak-kinds=definite
# Valgrind runs the C paths, not the whole suite (the CLI and fleet specs
# spend their time in Lua and in child processes; fleet workers leave by
# _exit with the parent's heap copied in, and the fleet's timing assertions
# do not hold at valgrind's speed): the unit
# specs of every C parser and codec, the hardening specs (every seed through
# the whole client in memory, the sealed path, every fault mode through
# smbd and libsmbclient, credentials), one integration spec per area (core:
# every Windows profile and connect failure; control: every action) and
# the process primitives of src/proc.c.
VALGRIND_SPECS ?= spec/dcerpc_spec.lua spec/ntlmssp_spec.lua spec/tsts_codec_spec.lua \
  spec/hardening_corpus_spec.lua spec/hardening_signature_spec.lua spec/faults_spec.lua \
  spec/hardening_credentials_spec.lua spec/core_spec.lua spec/control_spec.lua spec/proc_spec.lua \
  spec/kerberos_spec.lua spec/spnego_spec.lua spec/capacity_spec.lua \
  spec/hardening_krb_signature_spec.lua

check: check-asan check-valgrind

# spec/support/sanitizer_env.lua keeps the preload out of every process a
# spec spawns; those run the plain build, hence both builds.
check-asan: deps
	@$(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) CFLAGS="$(ASAN_CFLAGS)" \
	  LDFLAGS="-fsanitize=address,undefined" $(ASAN_BUILD)/termsrv/core.so \
	  $(ASAN_BUILD)/termsrv/testkit.so $(ASAN_BUILD)/termsrv/proc.so $(ASAN_BUILD)/termsrv/fuzzkit.so
	@$(MAKE) --no-print-directory $(SO) $(KIT) $(PROC) $(FUZZKIT)
	$(ASAN_ENV) $(BUSTED) --helper=spec/support/sanitizer_env.lua

check-valgrind: deps
	@$(MAKE) --no-print-directory $(SO) $(KIT) $(PROC) $(FUZZKIT)
	$(VALGRIND) $(BUSTED) $(VALGRIND_SPECS)

# ---- fleet sweeps: process primitives and the benchmark ----------------------
# termsrv.proc is its own module (fork/poll/wait for termsrv.fleet): it does
# not link libsmbclient, and core.so does not depend on it.
$(PROC): $(BUILD)/obj/proc.o
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $^ $(LDFLAGS)

# the thread-pool variant of the sweep, for comparison with the fork pool
BENCH_THREADS := $(BUILD)/bench/threads
$(BENCH_THREADS): bench/threads.c $(filter-out $(LUA_OBJ),$(CORE_OBJ)) $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) $(SMB_CFLAGS) $(KRB_CFLAGS) -Isrc -pthread -o $@ $(filter %.c %.o,$^) $(LDFLAGS) $(LIBS)

# 200 simulated hosts behind a proxy adding BENCH_RTT_MS of round-trip time
# (needs root, like the simulator); see bench/README.md
bench: $(SO) $(PROC) $(BENCH_THREADS)
	/usr/bin/python3 bench/run.py --build $(BUILD)
	/usr/bin/python3 bench/deep.py --build $(BUILD)

# one host with K = 4, 40, 200, 1000 sessions (about 30 s; with upstream
# impacket's tstool beside it when TERMSRV_BENCH_TSTOOL names its command,
# about 75 s more); see bench/README.md, "Deep hosts"
bench-deep: $(SO) $(PROC)
	/usr/bin/python3 bench/deep.py --build $(BUILD)
