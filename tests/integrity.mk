# Data-integrity tests (issue 12): who owns the files, what the state
# file and the shadow must prove before they are served, which disk the
# source is.

INTEGRITY_TESTS = \
	test-shadow-lock.sh \
	test-shadow-symlink.sh \
	test-shadow-state-corrupt.sh \
	test-shadow-lost-data.sh \
	test-shadow-source-identity.sh \
	test-shadow-start-samples.sh \
	test-shadow-disk-full.sh \
	test-shadow-source-swap.sh \
	test-shadow-start-retry.sh \
	test-shadow-stop.sh \
	test-shadow-stop-source.sh

# Under valgrind only those that do not hinge on timing.
INTEGRITY_VALGRIND_TESTS = \
	test-shadow-lock.sh \
	test-shadow-symlink.sh \
	test-shadow-state-corrupt.sh \
	test-shadow-lost-data.sh \
	test-shadow-source-identity.sh \
	test-shadow-start-samples.sh

TESTS += $(INTEGRITY_TESTS)
VALGRIND_TESTS += $(INTEGRITY_VALGRIND_TESTS)
EXTRA_DIST += $(INTEGRITY_TESTS)

# The state file's rules, without nbdkit: the filter's own code linked
# with stubs (tests/test-statefile.c says which).
TESTS += test-statefile
check_PROGRAMS += test-statefile
test_statefile_SOURCES = test-statefile.c ../plugin/statefile.c \
	../plugin/session.c ../plugin/blockmap.c ../plugin/fetch.c \
	../plugin/store.c
test_statefile_CFLAGS = $(AM_CFLAGS) $(LIBCRYPTO_CFLAGS) -pthread
test_statefile_LDADD = ../common/libcommon.la $(LIBCRYPTO_LIBS) -lpthread
