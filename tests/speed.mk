# Tests of the data path's speed work (issue 14): the block rules the
# write path relies on, as a unit test over an in-memory source/shadow.

TESTS += test-blockmap
check_PROGRAMS += test-blockmap
test_blockmap_SOURCES = test-blockmap.c ../plugin/blockmap.c ../plugin/fetch.c
test_blockmap_LDADD = ../common/libcommon.la -lpthread
