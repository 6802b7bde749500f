/* test-rerun.c: predict follows train's blend for a rerun once the guest
 * shows it is doing its history's work again.  A history reads scattered
 * blocks of a large volume; the future reads the same blocks in the same
 * order.  The model's blend for either future is sequential (far from
 * the scattered blocks), its blend for a rerun first-access.  The whole
 * future lasts less than one bandit epoch, so only the judgement of the
 * guest's requests (most of them on history blocks, where a future that
 * goes on would have none) can change the blend: predict must stall far
 * less than the same model held to its first blend (predict-fixed).
 * Twice: the future's requests back to back at ratio 1; and a guest that
 * makes one request, then pauses for two seconds, in which the link
 * could pull every history block: the judgement must come from that
 * first request, not wait for more.  Deterministic: no clocks in the
 * result.
 */
#include <assert.h>
#include <stdio.h>

#include "bandit.h"
#include "predict-pair.h"

#define VOLUME_BLOCKS 65536
#define READS 2000
#define GAP_US 200              /* READS * GAP_US < one bandit epoch */
#define PAUSE_US 2000000        /* the link pulls READS blocks in it */

/* The history, and its rerun, paused for PAUSE us after its first
 * request. */
static void
traces (struct trace *history, struct trace *future, uint64_t pause)
{
  char err[LEARNER_ERRLEN];

  for (size_t i = 0; i < READS; i++) {
    uint64_t b = pair_rnd (VOLUME_BLOCKS);
    assert (trace_append (history, i * GAP_US, 'R', b * PAIR_BS, 16384, err)
            == 0);
    assert (trace_append (future, 10000000 + i * GAP_US + (i ? pause : 0),
                          'R', b * PAIR_BS, 16384, err) == 0);
  }
}

static void
check (uint64_t pause, struct sim_config cfg)
{
  static const float sequential[NSTRATEGIES] = { [STRATEGY_SEQUENTIAL] = 1 };
  static const float first_access[NSTRATEGIES] = {
    [STRATEGY_FIRST_ACCESS] = 1
  };
  struct trace history = { 0 }, future = { 0 };
  struct sim_result fixed, adaptive;
  struct model *m;

  traces (&history, &future, pause);
  m = pair_model (&history, sequential, first_access, 0);
  pair_run (&history, &future, m, cfg, &fixed, &adaptive);
  printf ("pause %llu us: stalls: sequential blend fixed %llu,"
          " following the rerun %llu\n", (unsigned long long) pause,
          (unsigned long long) fixed.stalls,
          (unsigned long long) adaptive.stalls);
  fflush (stdout);
  assert (adaptive.stalls * 4 < fixed.stalls);
  model_free (m);
  trace_free (&history);
  trace_free (&future);
}

int
main (void)
{
  assert (READS * GAP_US < BANDIT_EPOCH_US);
  check (0, (struct sim_config) { .bandwidth_ratio = 1 });
  check (PAUSE_US, (struct sim_config) {
           .bandwidth = (double) READS * PAIR_BS * 1e6 / PAUSE_US
         });
  return 0;
}
