# End-to-end tests (tests/e2e/): a real Debian 12 guest under QEMU boots
# from the shadow filter while its disk migrates.  They need root once per
# machine (debootstrap builds the cached guest image) and take minutes
# under TCG, so they run by `make check-e2e`, not by `make check`.

E2E_TESTS = \
	test-e2e-migrate.sh

# Real clients beyond QEMU through the filter, and the filter fixes a
# real guest called for (part of make check).
CLIENT_TESTS = \
	test-shadow-clients.sh \
	test-shadow-none-complete.sh \
	test-shadow-stats-file.sh \
	test-shadow-record-guest.sh

TESTS += $(CLIENT_TESTS) test-conf-libvirt.sh
VALGRIND_TESTS += $(CLIENT_TESTS)

EXTRA_DIST += $(E2E_TESTS) $(CLIENT_TESTS) test-conf-libvirt.sh bench/bench-e2e-migrate.sh \
	e2e/build-image.sh e2e/e2e-lib.sh e2e/record-traces.sh \
	e2e/guest/nbdshadow-workload e2e/guest/nbdshadow-workload.service \
	e2e/guest/src/Makefile e2e/guest/src/demo.h e2e/guest/src/main.c \
	e2e/guest/src/crc.c e2e/guest/src/sort.c e2e/guest/src/text.c

check-e2e:
	$(MAKE) check TESTS="$(E2E_TESTS)"
