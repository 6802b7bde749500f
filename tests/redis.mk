# Tests of the Dynamic Metadata Store (metastore/) and the filter's Redis
# mirror and command stream.  Shell tests start their own redis-server
# on a unix socket in a temp dir (or free 127.0.0.1 ports for a cluster).

REDIS_TESTS = \
	test-redis-mirror.sh \
	test-redis-mirror-mapping.sh \
	test-redis-commands.sh \
	test-redis-restart.sh \
	test-redis-forged.sh \
	test-redis-auth.sh \
	test-redis-cluster.sh

TESTS += test-metastore-address $(REDIS_TESTS)
# Under valgrind the timings (rates, the 1 s pause) do not hold, and
# the AUTH test's many refused starts take minutes: the mirror's and the
# cluster's, which check outcomes only.
VALGRIND_TESTS += test-redis-forged.sh test-redis-cluster.sh

check_PROGRAMS += test-metastore-address
test_metastore_address_SOURCES = test-metastore-address.c
test_metastore_address_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/metastore \
	$(HIREDIS_CFLAGS)
test_metastore_address_LDADD = ../metastore/libmetastore.la ../common/libcommon.la

check_PROGRAMS += metastore-probe
metastore_probe_SOURCES = metastore-probe.c
metastore_probe_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/metastore \
	$(HIREDIS_CFLAGS)
metastore_probe_LDADD = ../metastore/libmetastore.la ../common/libcommon.la

EXTRA_DIST += redis-functions.sh $(REDIS_TESTS)
