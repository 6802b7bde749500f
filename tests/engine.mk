# Shadowing engine tests (proxy/ and its glue in plugin/upstream.c).

ENGINE_TESTS = \
	test-engine-copy.sh \
	test-engine-reconnect.sh \
	test-engine-tls.sh \
	test-engine-sparse.sh \
	test-engine-params.sh \
	test-engine-dead-peer.sh

# Small enough to run under valgrind too.
ENGINE_VALGRIND_TESTS = \
	test-engine-reconnect.sh \
	test-engine-tls.sh \
	test-engine-params.sh \
	test-engine-dead-peer.sh

TESTS += $(ENGINE_TESTS) test-pacer test-allocmap

check_PROGRAMS += test-pacer test-allocmap
test_pacer_SOURCES = test-pacer.c
test_pacer_LDADD = ../proxy/libproxy.la
test_allocmap_SOURCES = test-allocmap.c
test_allocmap_LDADD = ../proxy/libproxy.la
VALGRIND_TESTS += $(ENGINE_VALGRIND_TESTS)
EXTRA_DIST += $(ENGINE_TESTS) bench/bench-engine-copy.sh \
	bench/bench-engine-latency.sh
