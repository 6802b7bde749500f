/* bandit.h: the online choice between pull strategies.  Each strategy
 * starts at the share the model gives it (the blend train chose); as the
 * guest runs, every strategy earns evidence -- a block it pulled that the
 * guest then touched, a stall on a block it would have pulled soon --
 * and once per epoch a strategy whose share of the evidence beats its
 * share of the pulls gains weight, one that falls short loses it
 * (multiplicative weights).  Bounded: a step per epoch, a total change
 * per strategy, and an epoch needs enough evidence, so one noisy second
 * cannot throw a good blend away.  Deterministic: the same calls give
 * the same weights.
 */
#ifndef NBDSHADOW_BANDIT_H
#define NBDSHADOW_BANDIT_H

#include <stdbool.h>
#include <stdint.h>

#include "model.h"

/* A strategy the blend left out pulls nothing until its record (what it
 * would have pulled) earns it a share, growing from this scale. */
#define BANDIT_FLOOR 0.01
/* An epoch lasts at least this long and needs this many pieces of
 * evidence (hits and misses, counted, not weighed). */
#define BANDIT_EPOCH_US 500000
#define BANDIT_MIN_EVIDENCE 32
/* A stall the strategy would have prevented weighs this many hits: a
 * stall costs the guest a round trip, a hit only saves one the order had
 * already paid for, and hits come by the thousand where stalls come by
 * the dozen, so counted alike the hits drown the stalls out. */
#define BANDIT_MISS_WEIGHT 16
/* Per epoch, a weight moves by at most a factor e^BANDIT_STEP; in all,
 * down by at most e^BANDIT_BOUND_DOWN from the blend's, up to at most
 * BANDIT_MAX_SHARE of the pulls. */
#define BANDIT_STEP 0.5
#define BANDIT_BOUND_DOWN 2.5
#define BANDIT_MAX_SHARE 0.5

struct bandit {
  bool usable[NSTRATEGIES];     /* may gain a share it did not have */
  double prior[NSTRATEGIES];    /* the blend's weights */
  double logw[NSTRATEGIES];     /* learnt offsets from the prior */
  double gain[NSTRATEGIES];     /* this epoch's evidence, weighed */
  double pieces;                /* this epoch's evidence, counted */
  double pulls[NSTRATEGIES];    /* this epoch's pulls */
  uint64_t epoch_start;
  bool started;
};

/* PRIOR: the blend's weights; USABLE: the strategies this order can run
 * (with ADAPT, one the blend left out can earn a share). */
extern void bandit_init (struct bandit *b, const float *prior,
                         const bool *usable, bool adapt);
extern void bandit_pulled (struct bandit *b, int strategy);
/* The guest touched a block STRATEGY pulled. */
extern void bandit_hit (struct bandit *b, int strategy);
/* The guest stalled on a block STRATEGY would have pulled soon. */
extern void bandit_miss (struct bandit *b, int strategy);
/* Time moves on to NOW_US: closes an epoch when one is due.  Returns
 * true if the weights changed. */
extern bool bandit_tick (struct bandit *b, uint64_t now_us);
extern double bandit_weight (const struct bandit *b, int strategy);

#endif
