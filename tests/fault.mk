# Fault-injection suite (issue 12): real faults, bytes checked against a
# reference.  The disk-full, source-swap, stop and crash scenarios are in
# integrity.mk and shadow.mk; docs/RELIABILITY.md lists them all.

FAULT_TESTS = \
	test-fault-flaky-source.sh \
	test-fault-bad-sector.sh \
	test-fault-sigkill.sh \
	test-fault-dying-client.sh

TESTS += $(FAULT_TESTS)
# Small enough to run under valgrind too.
VALGRIND_TESTS += test-fault-bad-sector.sh
EXTRA_DIST += $(FAULT_TESTS) fault-guest.py
