/* test-order.c: the pull-order API (learner/order.h) as the engine uses
 * it: every policy eventually offers every block exactly once, skips
 * present ones, puts the oracle's seed first, and refuses bad setups
 * (the table's simulator-only and model-needing policies included);
 * predict, whatever its blend, first offers the block of the history's
 * first request (a rebooting guest's first read comes at once).
 * Also times order_observe for predict (the per-request cost). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"
#include "order.h"

#define NBLOCKS 5000
#define BS 65536

static bool present[NBLOCKS];

static bool
is_present (void *ctx, uint64_t b)
{
  (void) ctx;
  assert (b < NBLOCKS);
  return present[b];
}

/* Drain O; returns how many blocks it offered, checking none twice. */
static size_t
drain (struct order *o, uint64_t *first_blocks, size_t nfirst)
{
  uint64_t batch[16];
  size_t total = 0, n;

  while ((n = order_next (o, 0, batch, 16, is_present, NULL)) > 0)
    for (size_t i = 0; i < n; i++) {
      assert (!present[batch[i]]);
      present[batch[i]] = true;
      if (total < nfirst)
        first_blocks[total] = batch[i];
      total++;
    }
  return total;
}

/* A synthetic history: hot blocks revisited, a sequential scan, writes. */
static void
make_trace (struct trace *t)
{
  char err[LEARNER_ERRLEN];
  uint64_t ts = 0, x = 12345;

  for (int i = 0; i < 20000; i++) {
    uint64_t block;
    x = x * 6364136223846793005ULL + 1;
    if (i % 3 == 0)
      block = 100 + (x >> 33) % 50;           /* hot set */
    else if (i % 3 == 1)
      block = 1000 + (i / 3) % 2000;          /* scan */
    else
      block = (x >> 20) % NBLOCKS;            /* noise */
    ts += 1000;
    assert (trace_append (t, ts, i % 7 ? 'R' : 'W', block * BS, 4096, err)
            == 0);
  }
}

int
main (void)
{
  char err[LEARNER_ERRLEN];
  uint64_t first[8], seed[3] = { 42, 7, 4999 };
  struct trace t = { 0 };
  struct model *m;
  struct order *o;
  struct timespec a, b;
  double us;

  /* sequential: ascending, skipping what is present. */
  memset (present, 0, sizeof present);
  present[1] = present[2] = true;
  o = order_new ("sequential", NULL, NBLOCKS, BS, err);
  assert (o);
  assert (drain (o, first, 3) == NBLOCKS - 2);
  assert (first[0] == 0 && first[1] == 3 && first[2] == 4);
  order_free (o);

  /* none: nothing. */
  memset (present, 0, sizeof present);
  o = order_new ("none", NULL, NBLOCKS, BS, err);
  assert (o && drain (o, first, 0) == 0);
  order_free (o);

  /* oracle: the seed first, then the rest once each. */
  o = order_new ("oracle", NULL, NBLOCKS, BS, err);
  assert (o && order_seed (o, seed, 3) == 0);
  assert (drain (o, first, 4) == NBLOCKS);
  assert (first[0] == 42 && first[1] == 7 && first[2] == 4999 &&
          first[3] == 0);
  order_free (o);

  /* Bad setups. */
  assert (!order_new ("fastest", NULL, NBLOCKS, BS, err));
  assert (strstr (err, "unknown policy"));
  assert (strstr (err, "one of none, sequential"));
  for (const struct order_policy *p = order_policy_table; p->name; p++)
    if (p->needs_model) {
      assert (!order_new (p->name, NULL, NBLOCKS, BS, err));
      assert (strstr (err, "needs a model"));
    }
  assert (order_policy_find ("oracle")->simulator_only);
  assert (!order_policy_find ("predict")->simulator_only);

  make_trace (&t);
  m = model_train (&t, &(struct train_options) { BS, -1 }, err);
  if (!m) {
    fprintf (stderr, "train: %s\n", err);
    return 1;
  }
  assert (!order_new ("predict", m, NBLOCKS, 4096, err));
  assert (strstr (err, "block size"));

  /* History heuristics: frequency starts with the hot set. */
  memset (present, 0, sizeof present);
  o = order_new ("frequency", m, NBLOCKS, BS, err);
  assert (o && drain (o, first, 1) == NBLOCKS);
  assert (first[0] >= 100 && first[0] < 150);
  order_free (o);

  /* predict, whatever blend train chose: complete. */
  memset (present, 0, sizeof present);
  o = order_new ("predict", m, NBLOCKS, BS, err);
  assert (o && drain (o, first, 0) == NBLOCKS);
  order_free (o);

  /* predict with a blend that would start elsewhere (the sweep, at
   * block 0): the history's first request's block comes first all the
   * same. */
  {
    struct model held = *m;
    uint64_t blk;
    for (int s = 0; s < NSOURCES; s++)
      for (int f = 0; f < NFUTURES; f++)
        for (int k = 0; k < NSTRATEGIES; k++)
          held.blend[s][f][k] = k == STRATEGY_SEQUENTIAL;
    memset (present, 0, sizeof present);
    o = order_new ("predict", &held, NBLOCKS, BS, err);
    assert (o && order_next (o, 0, &blk, 1, is_present, NULL) == 1);
    assert (blk == t.recs[0].offset / BS && blk != 0);
    order_free (o);
  }

  /* The region model: complete, and a stall's neighbour comes first
   * after it. */
  memset (present, 0, sizeof present);
  o = order_new ("regions", m, NBLOCKS, BS, err);
  assert (o);
  order_observe (o, 1, 3000, 3000, false, false);
  {
    uint64_t blk;
    assert (order_next (o, 0, &blk, 1, is_present, NULL) == 1);
    assert (blk == 3001 || blk == 2999);
    present[blk] = true;
  }
  assert (drain (o, first, 0) == NBLOCKS - 1);
  order_free (o);

  /* Cost per guest request on the predict path. */
  memset (present, 0, sizeof present);
  o = order_new ("predict", m, NBLOCKS, BS, err);
  clock_gettime (CLOCK_MONOTONIC, &a);
  for (size_t i = 0; i < t.n; i++) {
    uint64_t blk = t.recs[i].offset / BS;
    order_observe (o, t.recs[i].ts_us, blk, blk, t.recs[i].op == 'W', true);
  }
  clock_gettime (CLOCK_MONOTONIC, &b);
  us = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e3 / t.n;
  printf ("order_observe (predict): %.2f us per request\n", us);
  /* Generous bound: sanitizers and a loaded machine slow it down; the
   * benchmark reports the real figure. */
  assert (us < 100);
  order_free (o);

  model_free (m);
  trace_free (&t);
  printf ("ok\n");
  return 0;
}
