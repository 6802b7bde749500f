/* test-bandit.c: the online choice between pull strategies
 * (learner/bandit.h) is bounded: an epoch moves a weight by at most
 * e^BANDIT_STEP, needs BANDIT_MIN_EVIDENCE pieces, a miss weighs
 * BANDIT_MISS_WEIGHT hits, and however one-sided the
 * evidence, a strategy keeps at least e^-BANDIT_BOUND_DOWN of its blend
 * weight and a newcomer gets at most BANDIT_MAX_SHARE.  A strategy the
 * order cannot run never gets a share.  Deterministic: no clocks.
 */
#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>

#include "bandit.h"

#define NEAR(a, b) (fabs ((a) - (b)) < 1e-9)

/* One epoch in which strategy WIN earns all the evidence (HITS hits)
 * and LOSE made all the pulls. */
static bool
epoch (struct bandit *b, uint64_t *now, int win, int lose, int hits)
{
  for (int i = 0; i < hits; i++)
    bandit_hit (b, win);
  for (int i = 0; i < 100; i++)
    bandit_pulled (b, lose);
  *now += BANDIT_EPOCH_US;
  return bandit_tick (b, *now);
}

/* One epoch in which A and B pull alike, A earns MISSES misses and B
 * HITS hits. */
static bool
duel (struct bandit *b, uint64_t *now, int a, int misses, int bb, int hits)
{
  for (int i = 0; i < misses; i++)
    bandit_miss (b, a);
  for (int i = 0; i < hits; i++)
    bandit_hit (b, bb);
  for (int i = 0; i < 100; i++) {
    bandit_pulled (b, a);
    bandit_pulled (b, bb);
  }
  *now += BANDIT_EPOCH_US;
  return bandit_tick (b, *now);
}

int
main (void)
{
  const float prior[NSTRATEGIES] = { [STRATEGY_REGIONS] = 1 };
  bool usable[NSTRATEGIES] = { true, true, true, true, true };
  struct bandit b;
  uint64_t now = 0;

  usable[STRATEGY_FREQUENCY] = false;
  bandit_init (&b, prior, usable, true);
  assert (NEAR (bandit_weight (&b, STRATEGY_REGIONS), 1));
  assert (bandit_weight (&b, STRATEGY_FIRST_ACCESS) == 0);
  assert (!bandit_tick (&b, now));      /* starts the first epoch */

  /* Too little evidence: nothing moves, the epoch goes on. */
  assert (!epoch (&b, &now, STRATEGY_FIRST_ACCESS, STRATEGY_REGIONS,
                  BANDIT_MIN_EVIDENCE - 1));
  assert (NEAR (bandit_weight (&b, STRATEGY_REGIONS), 1));
  assert (bandit_weight (&b, STRATEGY_FIRST_ACCESS) == 0);

  /* Overwhelming evidence moves each weight by one step only. */
  assert (epoch (&b, &now, STRATEGY_FIRST_ACCESS, STRATEGY_REGIONS,
                 BANDIT_MIN_EVIDENCE));
  assert (NEAR (bandit_weight (&b, STRATEGY_REGIONS), exp (-BANDIT_STEP)));
  assert (NEAR (bandit_weight (&b, STRATEGY_FIRST_ACCESS),
                BANDIT_FLOOR * expm1 (BANDIT_STEP)));

  /* However long it lasts, the bounds hold. */
  for (int i = 0; i < 100; i++)
    epoch (&b, &now, STRATEGY_FIRST_ACCESS, STRATEGY_REGIONS,
           BANDIT_MIN_EVIDENCE);
  assert (NEAR (bandit_weight (&b, STRATEGY_REGIONS),
                exp (-BANDIT_BOUND_DOWN)));
  assert (NEAR (bandit_weight (&b, STRATEGY_FIRST_ACCESS), BANDIT_MAX_SHARE));
  assert (bandit_weight (&b, STRATEGY_FREQUENCY) == 0);

  /* The evidence turns: the blend's strategy climbs back to its weight,
   * no further. */
  for (int i = 0; i < 100; i++)
    epoch (&b, &now, STRATEGY_REGIONS, STRATEGY_FIRST_ACCESS,
           BANDIT_MIN_EVIDENCE);
  assert (NEAR (bandit_weight (&b, STRATEGY_REGIONS), 1));
  assert (bandit_weight (&b, STRATEGY_FIRST_ACCESS) == 0);

  /* A miss weighs BANDIT_MISS_WEIGHT hits: with pulls alike, that many
   * hits per miss keep the weights; one hit fewer and the side that
   * would have prevented the stalls gains. */
  const float pair[NSTRATEGIES] = { [STRATEGY_REGIONS] = 1,
                                    [STRATEGY_SEQUENTIAL] = 1,
                                    [STRATEGY_FIRST_ACCESS] = 2 };
  bandit_init (&b, pair, usable, true);
  now = 0;
  bandit_tick (&b, now);
  assert (duel (&b, &now, STRATEGY_SEQUENTIAL, 2, STRATEGY_REGIONS,
                2 * BANDIT_MISS_WEIGHT));
  assert (NEAR (bandit_weight (&b, STRATEGY_SEQUENTIAL), 0.25));
  assert (NEAR (bandit_weight (&b, STRATEGY_REGIONS), 0.25));
  assert (duel (&b, &now, STRATEGY_SEQUENTIAL, 2, STRATEGY_REGIONS,
                2 * BANDIT_MISS_WEIGHT - 1));
  assert (bandit_weight (&b, STRATEGY_SEQUENTIAL) > 0.25);
  assert (bandit_weight (&b, STRATEGY_REGIONS) < 0.25);

  /* Without adaptation nobody gains a share. */
  bandit_init (&b, prior, usable, false);
  assert (bandit_weight (&b, STRATEGY_SEQUENTIAL) == 0);
  printf ("bandit: bounded and deterministic\n");
  return 0;
}
