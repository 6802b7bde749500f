# Shadow filter tests (plugin/).

SHADOW_TESTS = \
	test-shadow-copy.sh \
	test-shadow-stress.sh \
	test-shadow-crash.sh \
	test-shadow-crash-checkpoint.sh \
	test-shadow-switchover.sh \
	test-shadow-params.sh \
	test-shadow-large.sh \
	test-shadow-predict.sh

TESTS += $(SHADOW_TESTS)
VALGRIND_TESTS += $(SHADOW_TESTS)
EXTRA_DIST += $(SHADOW_TESTS) bench/bench-shadow-serve.sh

# Concurrent random I/O checked against a reference model (also the
# crash-consistency checker of test-shadow-crash.sh).
check_PROGRAMS += shadow-stress
shadow_stress_SOURCES = shadow-stress.c
# No project include dirs: it only needs libnbd.
shadow_stress_CPPFLAGS =
shadow_stress_CFLAGS = $(AM_CFLAGS) $(LIBNBD_CFLAGS)
shadow_stress_LDADD = $(LIBNBD_LIBS) -lpthread
