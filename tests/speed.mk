# Tests of the data path's speed work (issue 14): the block rules the
# write path relies on, as a unit test over an in-memory source/shadow.

TESTS += test-blockmap
check_PROGRAMS += test-blockmap
test_blockmap_SOURCES = test-blockmap.c ../plugin/blockmap.c ../plugin/fetch.c
test_blockmap_LDADD = ../common/libcommon.la -lpthread
EXTRA_DIST += bench/bench-shadow-write.sh
EXTRA_DIST += bench/bench-folio-writes.sh

# Demand priority on a link shared with the background copy.
TESTS += test-engine-demand-priority.sh
EXTRA_DIST += test-engine-demand-priority.sh
EXTRA_DIST += bench/bench-demand-latency.sh
