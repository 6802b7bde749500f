/* predict-pair.c: see predict-pair.h. */
#include <assert.h>
#include <string.h>

#include "predict-pair.h"

static uint64_t x = 88172645463325252ULL;

uint64_t
pair_rnd (uint64_t n)
{
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return x % n;
}

struct model *
pair_model (const struct trace *history, const float *either,
            const float *rerun, float goes_on_repeat)
{
  char err[LEARNER_ERRLEN];
  struct model *m = model_train (history, &(struct train_options) {
                                   .block_size = PAIR_BS, .region_shift = -1,
                                   .no_blend = true
                                 }, err);

  assert (m);
  for (int k = 0; k < NSOURCES; k++) {
    memcpy (m->blend[k][FUTURE_EITHER], either,
            sizeof m->blend[k][FUTURE_EITHER]);
    memcpy (m->blend[k][FUTURE_RERUN], rerun,
            sizeof m->blend[k][FUTURE_RERUN]);
  }
  m->goes_on_repeat = goes_on_repeat;
  return m;
}

void
pair_run (const struct trace *history, const struct trace *future,
          const struct model *m, struct sim_config cfg,
          struct sim_result *fixed, struct sim_result *adaptive)
{
  struct sim_scenario sc;
  char err[LEARNER_ERRLEN];

  cfg.block_size = PAIR_BS;
  cfg.rtt_s = 1e-3;
  assert (sim_prepare (&sc, history, future, &cfg, err) == 0);
  assert (sim_run (&sc, "predict-fixed", m, fixed, err) == 0);
  assert (sim_run (&sc, "predict", m, adaptive, err) == 0);
  sim_scenario_free (&sc);
}
