/* predict-pair.h: what the tests of predict's online choice share
 * (test-adapt.c, test-rerun.c): a model trained on a history without
 * train's choice of blend, its blends then set by the test, and one
 * future simulated twice, with the blend held fixed (predict-fixed) and
 * adapted online (predict).
 */
#ifndef NBDSHADOW_TEST_PREDICT_PAIR_H
#define NBDSHADOW_TEST_PREDICT_PAIR_H

#include "model.h"
#include "sim.h"

#define PAIR_BS 65536

/* Deterministic pseudo-random numbers in [0, n). */
extern uint64_t pair_rnd (uint64_t n);

/* A model of HISTORY whose blend is EITHER for a future that goes on and
 * RERUN once the guest shows it reruns the history, on both kinds of
 * source; GOES_ON_REPEAT as train would have measured it. */
extern struct model *pair_model (const struct trace *history,
                                 const float *either, const float *rerun,
                                 float goes_on_repeat);

/* FUTURE after HISTORY on a dense source over CFG's link (block size and
 * RTT filled in): the stalls of M's blend held fixed and adapted. */
extern void pair_run (const struct trace *history, const struct trace *future,
                      const struct model *m, struct sim_config cfg,
                      struct sim_result *fixed, struct sim_result *adaptive);

#endif
