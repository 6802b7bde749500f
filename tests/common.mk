# Unit tests of the helpers in common/.

COMMON_TESTS = test-common-bits test-common-clock test-common-fullio
TESTS += $(COMMON_TESTS)
check_PROGRAMS += $(COMMON_TESTS)

test_common_bits_SOURCES = test-common-bits.c
test_common_clock_SOURCES = test-common-clock.c
test_common_clock_LDADD = ../common/libcommon.la
test_common_fullio_SOURCES = test-common-fullio.c
test_common_fullio_LDADD = ../common/libcommon.la
EXTRA_DIST += unit.h

TESTS += test-common-array
check_PROGRAMS += test-common-array
test_common_array_SOURCES = test-common-array.c
test_common_array_LDADD = ../common/libcommon.la

TESTS += test-common-errbuf
check_PROGRAMS += test-common-errbuf
test_common_errbuf_SOURCES = test-common-errbuf.c
test_common_errbuf_LDADD = ../common/libcommon.la
