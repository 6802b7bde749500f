/* test-adapt.c: predict adapts online.  A history reads the first half of
 * each of 64 small files spread over a large volume; the future re-reads
 * them, then, half-way, reads the second halves, which the history never
 * touched.  With the blend forced to first-access alone (what train
 * would choose for a history that shows only re-reading), the list runs
 * dry half-way and the sweep is far from the files: the bandit must move
 * the pulls to the region model, whose rings around the files' first
 * halves reach their second halves.  predict must stall far less than
 * the same blend held fixed (predict-fixed).  Deterministic: no clocks
 * in the result.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "model.h"
#include "sim.h"

#define BS 65536
#define FILES 64
#define FILE_BLOCKS 16
#define SPACING 8192            /* blocks between files */

static uint64_t x = 88172645463325252ULL;

static uint64_t
rnd (uint64_t n)
{
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return x % n;
}

/* N reads from T0, one every GAP us, in the files' first halves (or,
 * from request SECOND_FROM on, their second halves). */
static void
reads (struct trace *t, uint64_t t0, size_t n, size_t second_from)
{
  char err[LEARNER_ERRLEN];

  for (size_t i = 0; i < n; i++) {
    uint64_t f = rnd (FILES), b = rnd (FILE_BLOCKS / 2);
    if (i >= second_from)
      b += FILE_BLOCKS / 2;
    assert (trace_append (t, t0 + i * 500, 'R', (f * SPACING + b) * BS,
                          16384, err) == 0);
  }
}

int
main (void)
{
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

  reads (&history, 0, 4000, 4000);
  reads (&future, 10000000, 8000, 4000);
  m = model_train (&history, &(struct train_options) {
                     .block_size = BS, .region_shift = -1, .no_blend = true
                   }, err);
  assert (m);
  for (int k = 0; k < NSOURCES; k++)
    for (int f = 0; f < NFUTURES; f++)
      memcpy (m->blend[k][f], first_access, sizeof m->blend[k][f]);
  assert (sim_prepare (&sc, &history, &future, &cfg, err) == 0);
  assert (sim_run (&sc, "predict-fixed", m, &fixed, err) == 0);
  assert (sim_run (&sc, "predict", m, &adaptive, err) == 0);
  printf ("stalls: first-access blend fixed %llu, adapted %llu\n",
          (unsigned long long) fixed.stalls,
          (unsigned long long) adaptive.stalls);
  assert (adaptive.stalls * 4 < fixed.stalls * 3);
  sim_scenario_free (&sc);
  model_free (m);
  trace_free (&history);
  trace_free (&future);
  return 0;
}
