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

#include "predict-pair.h"

#define FILES 64
#define FILE_BLOCKS 16
#define SPACING 8192            /* blocks between files */

/* N reads from T0, one every GAP us, in the files' first halves (or,
 * from request SECOND_FROM on, their second halves). */
static void
reads (struct trace *t, uint64_t t0, size_t n, size_t second_from)
{
  char err[LEARNER_ERRLEN];

  for (size_t i = 0; i < n; i++) {
    uint64_t f = pair_rnd (FILES), b = pair_rnd (FILE_BLOCKS / 2);
    if (i >= second_from)
      b += FILE_BLOCKS / 2;
    assert (trace_append (t, t0 + i * 500, 'R', (f * SPACING + b) * PAIR_BS,
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
  struct sim_result fixed, adaptive;
  struct model *m;

  reads (&history, 0, 4000, 4000);
  reads (&future, 10000000, 8000, 4000);
  m = pair_model (&history, first_access, first_access, 0);
  pair_run (&history, &future, m,
            (struct sim_config) { .bandwidth_ratio = 1 }, &fixed, &adaptive);
  printf ("stalls: first-access blend fixed %llu, adapted %llu\n",
          (unsigned long long) fixed.stalls,
          (unsigned long long) adaptive.stalls);
  assert (adaptive.stalls * 4 < fixed.stalls * 3);
  model_free (m);
  trace_free (&history);
  trace_free (&future);
  return 0;
}
