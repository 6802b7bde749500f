# Bad input and file safety (issue 12 items 8-12): every parser refuses
# what it cannot represent exactly, with one line; files the tools write
# are replaced safely and kept private.

INPUTS_TESTS = \
	test-model-validate.sh \
	test-import-bounds.sh \
	test-simulate-bounds.sh \
	test-cli-files.sh

# Filter tests, also run under valgrind.
INPUTS_SHADOW_TESTS = test-shadow-files.sh

TESTS += $(INPUTS_TESTS) $(INPUTS_SHADOW_TESTS)
VALGRIND_TESTS += $(INPUTS_SHADOW_TESTS)
EXTRA_DIST += $(INPUTS_TESTS) $(INPUTS_SHADOW_TESTS)

# libFuzzer targets, built and run by `make fuzz` (tests/fuzz/fuzz.sh),
# not by make check: they need clang.
EXTRA_DIST += \
	fuzz/fuzz.sh \
	fuzz/fuzz-trace.h \
	fuzz/fuzz-import.c \
	fuzz/fuzz-trace-csv.c \
	fuzz/fuzz-model.c \
	fuzz/fuzz-statefile.c \
	fuzz/fuzz-params.c \
	fuzz/nbdkit-stubs.c
