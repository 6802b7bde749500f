/* portfolio.c: which blend of pull strategies suits this volume.
 *
 * Each candidate blend is replayed through the simulator (the same code
 * the filter runs) on two futures (portfolio_choose), at the link ratios
 * a migration is likely to see, on a dense and on a sparse source.  Per
 * kind of source the blend with the lowest stalls relative to the best
 * candidate, summed over the ratios and the futures, is the one a
 * migration starts with; the best on the rerun at a changed pace alone
 * (ties: the best over both) is the one it follows once the guest shows
 * it is doing its work again.  Remaining ties go to the earlier
 * candidate.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "seqtape.h"
#include "sim.h"

#define R STRATEGY_REGIONS
#define S STRATEGY_SEQUENCE
#define FA STRATEGY_FIRST_ACCESS
#define FQ STRATEGY_FREQUENCY
#define SQ STRATEGY_SEQUENTIAL

/* Pull shares.  The sequence model's share only counts while it has
 * predictions, which are few and urgent: it weighs more than the region
 * model it serves. */
static const float candidates[][NSTRATEGIES] = {
  { [R] = 1, [S] = 4 },                 /* the region model (default) */
  { [FA] = 1 },                         /* = first-access */
  { [FQ] = 1 },                         /* = frequency */
  { [SQ] = 1 },                         /* = sequential */
  { [FA] = 3, [R] = 1, [S] = 4 },
  { [FA] = 1, [R] = 1, [S] = 4 },
  { [FA] = 1, [R] = 3, [S] = 12 },
  { [FA] = 1, [FQ] = 1 },
};
#define NCANDIDATES (sizeof candidates / sizeof candidates[0])

static const double ratios[] = { 0.25, 1, 4 };
#define NRATIOS (sizeof ratios / sizeof ratios[0])
/* The simulator's cost is about one step per block pulled, and a link
 * at ratio R pulls R times the volume over the future.  Training scores
 * as many of the ratios (slowest first) as fit in this many pulls; a
 * volume too large for even the first keeps the default blend for that
 * kind of source (the bandit still adapts it online). */
#define SCORE_BUDGET (1ULL << 27)

void
portfolio_default (struct model *m)
{
  for (int k = 0; k < NSOURCES; k++)
    for (int f = 0; f < NFUTURES; f++)
      memcpy (m->blend[k][f], candidates[0], sizeof m->blend[k][f]);
}

/* The candidate with the least COST, ties broken by the least THEN. */
static size_t
least_cost (const double cost[NCANDIDATES], const double then[NCANDIDATES])
{
  size_t best = 0;

  for (size_t c = 1; c < NCANDIDATES; c++)
    if (cost[c] < cost[best] || (cost[c] == cost[best] && then[c] < then[best]))
      best = c;
  return best;
}

/* The share of FUTURE's requests that start on a block of M's history. */
static float
repeat_share (const struct model *m, const struct trace *future)
{
  size_t n = 0, repeats = 0;

  for (size_t i = 0; i < future->n; i++) {
    uint64_t first, last;
    if (!trace_rec_blocks (&future->recs[i], m->block_size, &first, &last))
      continue;
    n++;
    repeats += u64map_get (&m->blocks.index, first) != U64MAP_NONE;
  }
  return n ? (float) repeats / n : 0;
}

/* A few stalls more or less out of thousands of requests tell the
 * candidates apart no better than chance: stalls are compared with this
 * fraction of the future's requests added to both sides. */
#define NOISE_SHARE 0.01

/* Add to COST each candidate's stalls relative to the best candidate's,
 * replaying FUTURE after HISTORY with model M, at every ratio. */
static int
score_scenario (struct model *m, const struct trace *history,
                const struct trace *future, struct seq_tape *tape, int kind,
                uint64_t block_size, size_t nratios,
                double cost[NCANDIDATES], char *err)
{
  for (size_t r = 0; r < nratios; r++) {
    struct sim_config cfg = {
      .block_size = block_size, .bandwidth_ratio = ratios[r],
      .rtt_s = 1e-3, .sparse = kind == SOURCE_SPARSE
    };
    struct sim_scenario sc;
    double stalls[NCANDIDATES], least = INFINITY;
    double noise = 1 + NOISE_SHARE * (double) future->n;

    if (sim_prepare (&sc, history, future, &cfg, err) == -1)
      return -1;
    sc.seq_tape = tape;
    for (size_t c = 0; c < NCANDIDATES; c++) {
      struct sim_result res;
      /* Both kinds: the probe decides which the order follows. */
      for (int k = 0; k < NSOURCES; k++)
        for (int f = 0; f < NFUTURES; f++)
          memcpy (m->blend[k][f], candidates[c], sizeof m->blend[k][f]);
      if (sim_run (&sc, "predict", m, &res, err) == -1) {
        sim_scenario_free (&sc);
        return -1;
      }
      stalls[c] = (double) res.stalls;
      least = fmin (least, stalls[c]);
    }
    sim_scenario_free (&sc);
    for (size_t c = 0; c < NCANDIDATES; c++)
      cost[c] += (stalls[c] + noise) / (least + noise);
  }
  return 0;
}

/* Blocks a scenario copies. */
static int
blocks_to_copy (const struct trace *history, const struct trace *future,
                int kind, uint64_t block_size, double *n, char *err)
{
  struct sim_config cfg = {
    .block_size = block_size, .bandwidth_ratio = 1, .rtt_s = 1e-3,
    .sparse = kind == SOURCE_SPARSE
  };
  struct sim_scenario sc;

  if (sim_prepare (&sc, history, future, &cfg, err) == -1)
    return -1;
  *n = (double) sc.blocks_to_copy;
  sim_scenario_free (&sc);
  return 0;
}

/* A guest doing its work again repeats its requests, not their timing:
 * its phases run faster or slower than the first time (the paired guest
 * runs of traces/ last 0.35 to 2.8 times as long as their first runs).
 * Replayed at the history's own pace, the rerun flatters the blends that
 * fit the history's exact timing.  So the blend a migration follows once
 * the guest shows it reruns its work is chosen on a rerun played in
 * phases of RERUN_PHASE requests, each with its gaps stretched or shrunk
 * by RERUN_WARP by a fixed pseudo-random pattern (the same history, the
 * same rerun).  The blend it starts with still counts the rerun at the
 * history's pace (the history itself replayed as the future): a guest
 * not yet judged may be doing new work, which the timing-driven region
 * model predicts best, and a changed pace would discount it there too.
 * The warped rerun runs on its own clock from 0 (the simulator counts a
 * future's time from its first request), so a history late on the clock
 * has room for it; one spanning over 2^62 us is cut short there. */
#define RERUN_PHASE 64
#define RERUN_WARP 2.0

static int
warped_rerun_of (const struct trace *history, struct trace *rerun,
                 char *err)
{
  double ts = 0;

  for (size_t i = 0; i < history->n; i++) {
    const struct trace_rec *q = &history->recs[i];
    if (i > 0) {
      uint32_t h = (uint32_t) (i / RERUN_PHASE) * 2654435761u;
      double gap = (double) (q->ts_us - history->recs[i - 1].ts_us);
      ts = fmin (ldexp (1, 62),
                 ts + gap * ((h >> 16) & 1 ? RERUN_WARP : 1 / RERUN_WARP));
    }
    if (trace_append (rerun, (uint64_t) ts, q->op, q->offset, q->length,
                      err) == -1)
      return -1;
  }
  return 0;
}

/* Two futures are scored, as likely as each other: the history goes on
 * as it went (its second half replayed against a model of its first),
 * or the guest does its work again (the whole history replayed against
 * its own model, as it went and by warped_rerun_of: a reboot, a rerun of
 * the same jobs). */
int
portfolio_choose (struct model *m, const struct trace *history,
                  const struct train_options *opts, char *err)
{
  struct trace h1 = { 0 }, h2 = { 0 }, warped = { 0 };
  struct train_options sub_opts = *opts;
  struct model *sub = NULL;
  /* Each future is replayed after one model only. */
  struct seq_tape goes_on_tape = { 0 }, rerun_tape = { 0 };
  struct seq_tape warped_tape = { 0 };
  size_t chosen[NSOURCES][NFUTURES] = { { 0 } };
  int ret = -1;

  portfolio_default (m);
  /* A volume the simulator cannot hold keeps the default blend too. */
  if (trace_volume (history, opts->block_size) / opts->block_size
      > SIM_MAX_BLOCKS)
    return 0;
  if (trace_split (history, &h1, &h2, err) == -1)
    goto out;
  if (h1.n < 4 || h2.n < 2 ||
      h2.recs[h2.n - 1].ts_us == h2.recs[0].ts_us ||
      h1.recs[h1.n - 1].ts_us == h1.recs[0].ts_us) {
    ret = 0;                    /* too short to tell: the default */
    goto out;
  }
  if (warped_rerun_of (history, &warped, err) == -1)
    goto out;
  sub_opts.no_blend = true;
  sub_opts.region_shift = (int) m->region_shift;
  sub = model_train (&h1, &sub_opts, err);
  if (!sub)
    goto out;
  /* Without memory for them every score is computed: the same. */
  (void) ranker_memo_on (&sub->region_ranker);
  (void) ranker_memo_on (&m->region_ranker);
  m->goes_on_repeat = repeat_share (sub, &h2);
  for (int kind = 0; kind < NSOURCES; kind++) {
    double goes_on[NCANDIDATES] = { 0 }, rerun_cost[NCANDIDATES] = { 0 };
    double warped_cost[NCANDIDATES] = { 0 };
    double either[NCANDIDATES], n1, n2, pulls = 0;
    size_t nratios = 0;

    if (blocks_to_copy (&h1, &h2, kind, opts->block_size, &n1, err) == -1 ||
        blocks_to_copy (history, history, kind, opts->block_size, &n2, err)
        == -1)
      goto out;
    while (nratios < NRATIOS &&
           (pulls += NCANDIDATES * ratios[nratios] * (n1 + 2 * n2))
           <= SCORE_BUDGET)
      nratios++;
    if (score_scenario (sub, &h1, &h2, &goes_on_tape, kind, opts->block_size,
                        nratios, goes_on, err) == -1 ||
        score_scenario (m, history, history, &rerun_tape, kind,
                        opts->block_size, nratios, rerun_cost, err) == -1 ||
        score_scenario (m, history, &warped, &warped_tape, kind,
                        opts->block_size, nratios, warped_cost, err) == -1)
      goto out;
    for (size_t c = 0; c < NCANDIDATES; c++)
      either[c] = goes_on[c] + rerun_cost[c];
    chosen[kind][FUTURE_EITHER] = least_cost (either, either);
    chosen[kind][FUTURE_RERUN] = least_cost (warped_cost, either);
  }
  ret = 0;
 out:
  for (int k = 0; k < NSOURCES; k++)
    for (int f = 0; f < NFUTURES; f++)
      memcpy (m->blend[k][f], candidates[chosen[k][f]],
              sizeof m->blend[k][f]);
  ranker_memo_off (&m->region_ranker);
  model_free (sub);
  seq_tape_free (&goes_on_tape);
  seq_tape_free (&rerun_tape);
  seq_tape_free (&warped_tape);
  trace_free (&warped);
  trace_free (&h1);
  trace_free (&h2);
  return ret;
}
