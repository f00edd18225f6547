# harden.mk - fuzzing every parser that reads hostile input.
#
#   make fuzz                     build every tests/fuzz/fuzz_*.c and run each
#                                 for FUZZ_SECONDS (default 60) in turn
#   make fuzz FUZZ_TARGETS=fuzz_config FUZZ_SECONDS=600
#                                 one target, ten minutes
#   make fuzz-build               build them only
#
# Targets (libFuzzer, clang -fsanitize=fuzzer,address,undefined; any
# sanitizer report stops the run):
#   fuzz_job       the job parser, key derivation, dead-letter entries
#   fuzz_adapters  classify / classify_check of every adapter action
#   fuzz_config    cq_config_load_string and the --check-config summary
#   fuzz_envelope  cq_envelope_parse, and build/parse round trips
#   fuzz_dlq       cancelqctl's dead-letter entry parser (dlq_entry_parse)
#
# The library is compiled once more with clang and the sanitizers into
# $(BUILD)/fuzz/obj (and cancelqctl's objects without main.c for fuzz_dlq).
# Seeds from the tests live in tests/fuzz/corpus/<target>/; a run works on a
# copy in $(BUILD)/fuzz/corpus/<target>/ (new inputs land there, not in the
# tree), crashes in $(BUILD)/fuzz/artifacts/.  To keep a regression input,
# copy it into tests/fuzz/corpus/<target>/.

.PHONY: fuzz fuzz-build

FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= $(patsubst tests/fuzz/%.c,%,$(sort $(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_CC      ?= clang
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS   = -std=c11 -g -O1 $(FUZZ_SAN) $(CPPFLAGS) \
                $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_DIR)/obj/%.o) $(FUZZ_DIR)/obj/gen/lua_scripts.o
FUZZ_CTL_OBJ := $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(filter-out tools/cancelqctl/main.c,$(CTL_SRC)))

# Per-target link extras and libFuzzer options.
FUZZ_EXTRA_fuzz_dlq      := $(FUZZ_CTL_OBJ)
FUZZ_INC_fuzz_dlq        := -Itools/cancelqctl
FUZZ_OPTS_fuzz_job       := -max_len=70000
FUZZ_OPTS_fuzz_envelope  := -max_len=70000
FUZZ_OPTS_fuzz_dlq       := -max_len=70000
FUZZ_OPTS_fuzz_config    := -max_len=16384
FUZZ_OPTS_fuzz_adapters  := -max_len=8192

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/obj/gen/lua_scripts.o: $(BUILD)/gen/lua_scripts.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Wno-overlength-strings -c -o $@ $<

$(FUZZ_DIR)/libcancelq.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(FUZZ_DIR)/fuzz_dlq: $(FUZZ_CTL_OBJ)

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DIR)/libcancelq.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_INC_fuzz_$*) -fsanitize=fuzzer -o $@ $< \
	  $(FUZZ_EXTRA_fuzz_$*) $(FUZZ_DIR)/libcancelq.a $(LDLIBS)

fuzz-build: bootstrap
	@$(MAKE) --no-print-directory $(FUZZ_TARGETS:%=$(FUZZ_DIR)/%)

# One target: its seeds copied next to what earlier runs found, then
# FUZZ_SECONDS of fuzzing.  Runs in $(FUZZ_DIR)/work: the config target
# resolves relative file names against the current directory.
fuzz-run-%: $(FUZZ_DIR)/%
	@mkdir -p $(FUZZ_DIR)/corpus/$* $(FUZZ_DIR)/artifacts $(FUZZ_DIR)/work
	@cp tests/fuzz/corpus/$*/* $(FUZZ_DIR)/corpus/$*/ 2>/dev/null || true
	@echo "== $* ($(FUZZ_SECONDS)s)"
	cd $(FUZZ_DIR)/work && ../$* -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	  -artifact_prefix=../artifacts/$*- $(FUZZ_OPTS_$*) ../corpus/$*

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do $(MAKE) --no-print-directory fuzz-run-$$t || exit 1; done
