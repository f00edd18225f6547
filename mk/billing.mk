# billing.mk - the billing kit: client examples run against a real cancelqd.
#
#   make examples   a private redis-server, the sandbox and cancelqd, then
#                   each of examples/{python,ruby,php,node,go} enqueues, reads
#                   its outcomes (with a restart before XACK), one summary
#                   line each (tests/examples/run.sh)
#
# The examples test the clients and the job/outcome contract, not the
# daemon's build: under `make asan` (BUILD=build-asan) they are skipped.
.PHONY: examples

ifeq ($(BUILD),build)
examples: bootstrap
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) bash tests/examples/run.sh
else
examples:
	@echo "examples: skipped with BUILD=$(BUILD): they exercise the client libraries against build/, not this build"
endif

TEST_EXTRA += examples
