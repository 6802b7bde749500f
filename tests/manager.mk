# Shadow Manager tests (cli/: migrate, status, pause/resume/throttle/
# finalize, verify): real nbdkit sources behind the shadow filter and a
# real redis-server on a unix socket in the test's temp dir.

MANAGER_TESTS = \
	test-manager-help.sh \
	test-manager-verify.sh \
	test-manager-migrate.sh \
	test-manager-status.sh \
	test-manager-control.sh \
	test-manager-demo.sh

TESTS += $(MANAGER_TESTS)
EXTRA_DIST += $(MANAGER_TESTS)
