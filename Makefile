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
CORE_SRC := $(filter-out src/testkit%.c,$(wildcard src/*.c))
CORE_OBJ := $(CORE_SRC:src/%.c=$(BUILD)/obj/%.o)
KIT_SRC  := $(wildcard src/testkit*.c)
KIT_OBJ  := $(KIT_SRC:src/%.c=$(BUILD)/obj/%.o)
SO       := $(BUILD)/termsrv/core.so
KIT      := $(BUILD)/termsrv/testkit.so
export TERMSRV_BUILD := $(BUILD)

.PHONY: all deps test lint clean
all: $(SO)

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
	@$(MAKE) --no-print-directory $(SO) $(KIT)
	$(BUSTED)

lint:
	luacheck -q lua spec examples bin sim .busted

clean:
	rm -rf $(BUILD) build-*
