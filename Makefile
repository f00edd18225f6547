# cancelq - plain Makefile, pkg-config for every library.
#
#   make            build build/cancelqd, build/cancelqctl, build/cancelq-sandbox
#   make test       install missing Debian packages, build, run unit + integration tests
#   make asan       the same tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   make demo       a private redis-server + sandbox + cancelqd, jobs flowing
#   make bench      throughput benchmark against a wrk reference
#   make fuzz       libFuzzer on every parser (FUZZ_SECONDS each, default 60)
#   make lint       cppcheck + clang-tidy + clang-format check
#   make install    PREFIX (/usr/local) and DESTDIR honoured

VERSION   := 0.1.0
BUILD     ?= build
PREFIX    ?= /usr/local
DESTDIR   ?=
CC        ?= cc
PKG_CONFIG ?= pkg-config

PKGS      := hiredis libuv libcurl libcjson inih libsystemd libcrypto
OPT       ?= -O2 -g
SAN       ?=
CPPFLAGS  += -Iinclude -I$(BUILD)/gen -D_GNU_SOURCE -DCQ_VERSION=\"$(VERSION)\"
CFLAGS    += -std=c11 $(OPT) -Wall -Wextra -Werror -Wshadow -Wformat=2 \
             -fno-strict-aliasing -MMD -MP $(SAN) \
             $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
LDFLAGS   += $(SAN)
LDLIBS    += $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null) -lm
TEST_LIBS := $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null)

LIB_SRC   := $(filter-out src/main.c,$(wildcard src/*.c))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/lua_scripts.o
LUA_SRC   := $(sort $(wildcard src/lua/*.lua))
LIB       := $(BUILD)/libcancelq.a

SANDBOX_SRC := $(wildcard tools/sandbox/*.c)
CTL_SRC     := $(wildcard tools/cancelqctl/*.c)
UNIT_SRC    := $(wildcard tests/unit/test_*.c)
UNIT_BIN    := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

PROGRAMS  := $(BUILD)/cancelqd $(BUILD)/cancelq-sandbox \
             $(if $(CTL_SRC),$(BUILD)/cancelqctl)

.PHONY: all test test-run unit integration asan demo bench fuzz lint format \
        install clean bootstrap check-config
.DEFAULT_GOAL := all

all: $(PROGRAMS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# Redis scripts are .lua files in the tree, embedded at build time.
$(BUILD)/gen/lua_scripts.c: $(LUA_SRC) tools/embed-lua.sh
	@mkdir -p $(dir $@)
	sh tools/embed-lua.sh $(LUA_SRC) > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/lua_scripts.o: $(BUILD)/gen/lua_scripts.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-overlength-strings -c -o $@ $<

$(LIB): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/cancelqd: $(BUILD)/src/main.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/cancelqctl: $(CTL_SRC:%.c=$(BUILD)/%.o) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/cancelq-sandbox: $(SANDBOX_SRC:%.c=$(BUILD)/%.o) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lhttp_parser

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(TEST_LIBS)

# --- tests -----------------------------------------------------------------

bootstrap:
	@sh tools/bootstrap.sh

test: bootstrap
	@$(MAKE) --no-print-directory test-run

test-run: all $(UNIT_BIN)
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory integration
	@for t in $(TEST_EXTRA); do $(MAKE) --no-print-directory $$t || exit 1; done

unit: $(UNIT_BIN)
	@sh tests/run-unit.sh $(UNIT_BIN)

integration: all
	@BUILD=$(BUILD) sh tests/integration/run.sh

asan: bootstrap
	@$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1 -g" \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	  test-run

check-config: $(BUILD)/cancelqd
	$(BUILD)/cancelqd -c conf/cancelq.conf --check-config

demo: bootstrap
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) bash tools/demo.sh

bench: bootstrap
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) bash tools/bench.sh

# fuzz: mk/harden.mk

lint: bootstrap
	@sh tools/lint.sh

format:
	clang-format -i src/*.c include/cancelq/*.h tools/*/*.c tests/unit/*.c tests/fuzz/*.c

# --- install ---------------------------------------------------------------

# Units go where systemd looks for them under PREFIX (/usr/local/lib/...,
# or UNITDIR=/lib/systemd/system for a package); their ExecStart= is
# rewritten to $(PREFIX)/sbin/cancelqd.  Man pages are roff, gzipped as
# Debian ships them.  The sample config is 0644: it holds no secrets and the
# service's dynamic user must be able to read a copy of it.
UNITDIR   ?= $(PREFIX)/lib/systemd/system
# the journal's message catalog (journalctl --update-catalog reads it)
CATALOGDIR ?= $(PREFIX)/lib/systemd/catalog
MANDIR    ?= $(PREFIX)/share/man
MAN_PAGES := $(wildcard man/*.1 man/*.5 man/*.8)
UNITS     := systemd/cancelq.service systemd/cancelq@.service

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin
	install -m 0755 $(BUILD)/cancelqd $(DESTDIR)$(PREFIX)/sbin/cancelqd
	install -m 0755 $(BUILD)/cancelq-sandbox $(DESTDIR)$(PREFIX)/bin/cancelq-sandbox
	$(if $(CTL_SRC),install -m 0755 $(BUILD)/cancelqctl $(DESTDIR)$(PREFIX)/bin/cancelqctl)
	install -d $(DESTDIR)$(UNITDIR)
	for u in $(UNITS); do \
	  sed 's|/usr/sbin/cancelqd|$(PREFIX)/sbin/cancelqd|' $$u > $(DESTDIR)$(UNITDIR)/$${u##*/} && \
	  chmod 0644 $(DESTDIR)$(UNITDIR)/$${u##*/} || exit 1; \
	done
	install -d $(DESTDIR)$(CATALOGDIR)
	install -m 0644 systemd/cancelq.catalog $(DESTDIR)$(CATALOGDIR)/cancelq.catalog
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	for m in $(MAN_PAGES); do \
	  d=$(DESTDIR)$(MANDIR)/man$${m##*.}; \
	  gzip -9n -c $$m > $$d/$${m##*/}.gz && chmod 0644 $$d/$${m##*/}.gz || exit 1; \
	done
	install -d $(DESTDIR)/etc/cancelq
	install -d -m 0700 $(DESTDIR)/etc/cancelq/credentials
	install -m 0644 conf/cancelq.conf $(DESTDIR)/etc/cancelq/cancelq.conf.example

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD) build-asan -name '*.d' 2>/dev/null)

# Further targets, one file per concern (examples, packaging, ...); a file
# may append target names to TEST_EXTRA to have `make test` run them too.
TEST_EXTRA :=
-include $(sort $(wildcard mk/*.mk))
