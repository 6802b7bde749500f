/* bandit.c: multiplicative weights over the pull strategies (bandit.h). */
#include <math.h>
#include <string.h>

#include "bandit.h"

void
bandit_init (struct bandit *b, const float *prior, const bool *usable,
             bool adapt)
{
  double total = 0;

  memset (b, 0, sizeof *b);
  for (int k = 0; k < NSTRATEGIES; k++)
    total += usable[k] ? prior[k] : 0;
  for (int k = 0; k < NSTRATEGIES; k++) {
    b->usable[k] = usable[k] && adapt;
    if (usable[k])
      b->prior[k] = total > 0 ? prior[k] / total : 0;
  }
}

void
bandit_pulled (struct bandit *b, int strategy)
{
  b->pulls[strategy]++;
}

void
bandit_hit (struct bandit *b, int strategy)
{
  b->gain[strategy] += 1;
  b->pieces++;
}

void
bandit_miss (struct bandit *b, int strategy)
{
  b->gain[strategy] += BANDIT_MISS_WEIGHT;
  b->pieces++;
}

bool
bandit_tick (struct bandit *b, uint64_t now_us)
{
  double gain = 0, pulls = 0;

  if (!b->started) {
    b->started = true;
    b->epoch_start = now_us;
    return false;
  }
  if (now_us - b->epoch_start < BANDIT_EPOCH_US)
    return false;
  for (int k = 0; k < NSTRATEGIES; k++) {
    gain += b->gain[k];
    pulls += b->pulls[k];
  }
  if (b->pieces < BANDIT_MIN_EVIDENCE || pulls == 0)
    return false;               /* the epoch goes on */
  for (int k = 0; k < NSTRATEGIES; k++) {
    double d = 2 * BANDIT_STEP * (b->gain[k] / gain - b->pulls[k] / pulls);
    d = fmax (-BANDIT_STEP, fmin (BANDIT_STEP, d));
    if (b->prior[k] > 0) {
      double up = log (fmax (1, BANDIT_MAX_SHARE / b->prior[k]));
      b->logw[k] = fmax (-BANDIT_BOUND_DOWN, fmin (up, b->logw[k] + d));
    }
    else if (b->usable[k])
      b->logw[k] = fmax (0, fmin (log (1 + BANDIT_MAX_SHARE / BANDIT_FLOOR),
                                  b->logw[k] + d));
    b->gain[k] = b->pulls[k] = 0;
  }
  b->pieces = 0;
  b->epoch_start = now_us;
  return true;
}

double
bandit_weight (const struct bandit *b, int strategy)
{
  if (b->prior[strategy] > 0)
    return b->prior[strategy] * exp (b->logw[strategy]);
  return b->usable[strategy] ? BANDIT_FLOOR * expm1 (b->logw[strategy]) : 0;
}
