/* bandit.c: multiplicative weights over the pull strategies (bandit.h). */
#include <math.h>
#include <string.h>

#include "bandit.h"

/* A strategy the blend left out starts at this share while adapting:
 * little enough to cost nothing much, and a start it can grow from. */
#define FLOOR 0.005
/* An epoch lasts at least this long and needs this much evidence. */
#define EPOCH_US 500000
#define MIN_EVIDENCE 32
/* Per epoch, a weight moves by at most a factor e^STEP; in all, down
 * by at most e^BOUND_DOWN from the blend's, up to at most half the
 * pulls. */
#define STEP 0.5
#define BOUND_DOWN 2.5
#define MAX_SHARE 0.5

void
bandit_init (struct bandit *b, const float *prior, const bool *usable,
             bool adapt)
{
  double total = 0;

  memset (b, 0, sizeof *b);
  for (int k = 0; k < NSTRATEGIES; k++)
    total += usable[k] ? prior[k] : 0;
  for (int k = 0; k < NSTRATEGIES; k++) {
    if (!usable[k])
      continue;
    b->prior[k] = total > 0 ? prior[k] / total : 0;
    if (adapt && b->prior[k] < FLOOR)
      b->prior[k] = FLOOR;
  }
}

void
bandit_pulled (struct bandit *b, int strategy)
{
  b->pulls[strategy]++;
}

void
bandit_credit (struct bandit *b, int strategy, double amount)
{
  b->gain[strategy] += amount;
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
  if (now_us - b->epoch_start < EPOCH_US)
    return false;
  for (int k = 0; k < NSTRATEGIES; k++) {
    gain += b->gain[k];
    pulls += b->pulls[k];
  }
  if (gain < MIN_EVIDENCE || pulls == 0)
    return false;               /* the epoch goes on */
  for (int k = 0; k < NSTRATEGIES; k++) {
    double d = 2 * STEP * (b->gain[k] / gain - b->pulls[k] / pulls);
    d = fmax (-STEP, fmin (STEP, d));
    if (b->prior[k] > 0)
      b->logw[k] = fmax (-BOUND_DOWN, fmin (log (fmax (1, MAX_SHARE
                                                      / b->prior[k])),
                                             b->logw[k] + d));
    b->gain[k] = b->pulls[k] = 0;
  }
  b->epoch_start = now_us;
  return true;
}

double
bandit_weight (const struct bandit *b, int strategy)
{
  return b->prior[strategy] * exp (b->logw[strategy]);
}
