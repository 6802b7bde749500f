# Data-integrity tests (issue 12): who owns the files, what the state
# file and the shadow must prove before they are served, which disk the
# source is.

INTEGRITY_TESTS = \
	test-shadow-lock.sh \
	test-shadow-symlink.sh \
	test-shadow-state-corrupt.sh \
	test-shadow-lost-data.sh \
	test-shadow-source-identity.sh

TESTS += $(INTEGRITY_TESTS)
VALGRIND_TESTS += $(INTEGRITY_TESTS)
EXTRA_DIST += $(INTEGRITY_TESTS)
