/* test-rerun.c: predict follows train's blend for a rerun once the guest
 * shows it is doing its history's work again.  A history reads scattered
 * blocks of a large volume; the future reads the same blocks in the same
 * order.  The model's blend for either future is sequential (far from
 * the scattered blocks), its blend for a rerun first-access.  The whole
 * future lasts less than one bandit epoch, so only the judgement of the
 * guest's requests (most of them on history blocks, where a future that
 * goes on would have none) can change the blend: predict must stall far
 * less than the same model held to its first blend (predict-fixed).
 * Deterministic: no clocks in the result.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "bandit.h"
#include "model.h"
#include "sim.h"

#define BS 65536
#define VOLUME_BLOCKS 65536
#define READS 2000
#define GAP_US 200              /* READS * GAP_US < one bandit epoch */

static uint64_t x = 88172645463325252ULL;

static uint64_t
rnd (uint64_t n)
{
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return x % n;
}

int
main (void)
{
  static const float sequential[NSTRATEGIES] = { [STRATEGY_SEQUENTIAL] = 1 };
  static const float first_access[NSTRATEGIES] = {
    [STRATEGY_FIRST_ACCESS] = 1
  };
  struct trace history = { 0 }, future = { 0 };
  struct sim_config cfg = {
    .block_size = BS, .bandwidth_ratio = 1, .rtt_s = 1e-3
  };
  struct sim_scenario sc;
  struct sim_result fixed, adaptive;
  char err[LEARNER_ERRLEN];
  struct model *m;

  assert (READS * GAP_US < BANDIT_EPOCH_US);
  for (size_t i = 0; i < READS; i++) {
    uint64_t b = rnd (VOLUME_BLOCKS);
    assert (trace_append (&history, i * GAP_US, 'R', b * BS, 16384, err)
            == 0);
    assert (trace_append (&future, 10000000 + i * GAP_US, 'R', b * BS, 16384,
                          err) == 0);
  }
  m = model_train (&history, &(struct train_options) {
                     .block_size = BS, .region_shift = -1, .no_blend = true
                   }, err);
  assert (m);
  for (int k = 0; k < NSOURCES; k++) {
    memcpy (m->blend[k][FUTURE_EITHER], sequential,
            sizeof m->blend[k][FUTURE_EITHER]);
    memcpy (m->blend[k][FUTURE_RERUN], first_access,
            sizeof m->blend[k][FUTURE_RERUN]);
  }
  m->goes_on_repeat = 0;
  assert (sim_prepare (&sc, &history, &future, &cfg, err) == 0);
  assert (sim_run (&sc, "predict-fixed", m, &fixed, err) == 0);
  assert (sim_run (&sc, "predict", m, &adaptive, err) == 0);
  printf ("stalls: sequential blend fixed %llu, following the rerun %llu\n",
          (unsigned long long) fixed.stalls,
          (unsigned long long) adaptive.stalls);
  fflush (stdout);
  assert (adaptive.stalls * 4 < fixed.stalls);
  sim_scenario_free (&sc);
  model_free (m);
  trace_free (&history);
  trace_free (&future);
  return 0;
}
