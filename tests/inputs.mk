# Bad input and file safety (issue 12 items 8-12): every parser refuses
# what it cannot represent exactly, with one line; files the tools write
# are replaced safely and kept private.

INPUTS_TESTS = \
	test-model-validate.sh \
	test-import-bounds.sh \
	test-simulate-bounds.sh

TESTS += $(INPUTS_TESTS)
EXTRA_DIST += $(INPUTS_TESTS)
