# Predictor and CLI tests (learner/, cli/).  Shell tests use the built
# cli/nbdshadow on small samples (data/) and slices of the real traces
# (test-replay.sh: against nbdkit servers);
# the full evaluation is bench/bench-predict.sh, run on demand.

LEARNER_TESTS = \
	test-cli-help.sh \
	test-import-formats.sh \
	test-import-errors.sh \
	test-import-nbdkit-log.sh \
	test-import-real.sh \
	test-learner-model.sh \
	test-simulate-policies.sh \
	test-simulate-determinism.sh \
	test-train-portfolio.sh \
	test-replay.sh

TESTS += $(LEARNER_TESTS) test-order test-seqmodel test-bandit test-adapt \
	test-rerun

check_PROGRAMS += test-order test-seqmodel test-bandit test-adapt test-rerun
test_adapt_SOURCES = test-adapt.c predict-pair.c predict-pair.h
test_adapt_LDADD = ../learner/liblearner.la ../common/libcommon.la
test_bandit_SOURCES = test-bandit.c
test_bandit_LDADD = ../learner/liblearner.la ../common/libcommon.la -lm
test_rerun_SOURCES = test-rerun.c predict-pair.c predict-pair.h
test_rerun_LDADD = ../learner/liblearner.la ../common/libcommon.la
test_order_SOURCES = test-order.c
test_order_LDADD = ../learner/liblearner.la ../common/libcommon.la
test_seqmodel_SOURCES = test-seqmodel.c
test_seqmodel_LDADD = ../learner/liblearner.la ../common/libcommon.la

EXTRA_DIST += \
	$(LEARNER_TESTS) \
	data/sample-expected.csv \
	data/sample.csv \
	data/sample.nbdkit-log \
	data/sample.blkparse \
	data/sample.msr \
	data/sample.vscsi \
	data/sample.disksim \
	data/sample.replayer \
	bench/bench-predict.sh \
	bench/gen-traces.sh
