/* model.h: the trained predictor that `nbdshadow train` writes and the
 * filter and simulator load: what the history says per block and per
 * region, the two libsvm rankers scoring them, and the delta sequence
 * models.  File format: a header (magic "NBDSHMDL", version, byte-order
 * mark, payload length, SHA-256 of the payload) then the payload.  A
 * truncated or corrupt file is refused with a clear error. */
#ifndef NBDSHADOW_MODEL_H
#define NBDSHADOW_MODEL_H

#include <stdbool.h>
#include <sys/types.h>

#include "history.h"
#include "ranker.h"
#include "seqmodel.h"

#define MODEL_VERSION 4

/* The pull strategies a blend is made of (order.h's predict; their
 * names in strategy_names). */
enum strategy {
  STRATEGY_REGIONS,             /* the region/ring model */
  STRATEGY_SEQUENCE,            /* stall neighbours, sequence model */
  STRATEGY_FIRST_ACCESS,        /* history blocks, first touched first */
  STRATEGY_FREQUENCY,           /* history blocks, most touched first */
  STRATEGY_SEQUENTIAL,          /* ascending */
  NSTRATEGIES
};
extern const char *const strategy_names[NSTRATEGIES];

enum source_kind { SOURCE_DENSE, SOURCE_SPARSE, NSOURCES };

/* What the future does, as train scores it (portfolio.c): either the
 * history goes on (its second half after its first) or the guest does
 * its work again (the history replayed after itself) -- the blend a
 * migration starts with and keeps -- or it reruns the history for sure,
 * which the order tells online by how many of the guest's requests land
 * on history blocks. */
enum future_kind { FUTURE_EITHER, FUTURE_RERUN, NFUTURES };

/* Ring 0 of a touched block is the block itself; ring j > 0: the blocks
 * at distance (2^(j-2), 2^(j-1)] (ring 1: distance 1).  model.c's regions
 * are at most 2^14 blocks; in a larger one the blocks beyond the last
 * ring are left to the sweep. */
#define RINGS 17
/* Activity bins: log2 (1 + touched blocks in the region). */
#define ABINS 16
/* Sub-bins of a region on a volume of several devices (add_twins): a
 * region is pulled a sub-bin at a time, 2^SUB_BITS of them per region. */
#define SUB_BITS 4
#define NSUB (1U << SUB_BITS)

/* What the region model learns from the history (order-fit.c). */
struct region_fit {
  /* How much likelier a never-seen block in ring r of a region in
   * activity bin a is than the region's average block. */
  float ring_p[RINGS][ABINS];
  float *growth;                /* history activity, per regions.units */
  /* Devices side by side: regions per device (0: one device), and per
   * offset k of a region on its device (region % period) its sub-bins
   * best first and how much likelier each is than the region's average
   * block (NULL: regions too small for sub-bins). */
  uint64_t period;
  uint8_t *sub_rank;            /* [period][NSUB] sub-bin numbers */
  float *sub_p;                 /* [period][NSUB] factors, by rank */
};

struct scored_unit {
  uint64_t unit;
  float score;                  /* ranker probability */
};

struct model {
  uint64_t block_size;
  unsigned region_shift;        /* a region is 2^region_shift blocks */
  struct history blocks;        /* history per block */
  float *block_scores;          /* parallel to blocks.units */
  struct history regions;       /* history per region */
  struct scored_unit *candidates;       /* regions worth pulling, scored */
  size_t ncandidates;
  struct ranker block_ranker, region_ranker;
  struct seqmodel seq;
  struct seq_score seq_score;
  struct region_fit fit;
  /* How the history's second half related to its first: the fraction of
   * first-half blocks touched again, and how many new blocks appeared
   * (scaled to a whole history's length).  They let the pull order weigh
   * "history blocks first" against "never-seen blocks first". */
  double retouch_rate;
  double expected_new_blocks;
  /* The blend of strategies train chose for each kind of source and
   * future (portfolio.c): pull shares. */
  float blend[NSOURCES][NFUTURES][NSTRATEGIES];
  /* The share of the history's second half's requests that start on a
   * block of its first half: what a future that goes on looks like
   * (one that reruns the history has all of them there). */
  float goes_on_repeat;
};

struct train_options {
  uint64_t block_size;
  int region_shift;             /* -1: choose from the history */
  bool no_blend;                /* keep the default blend (portfolio.c's
                                   own sub-models) */
};

/* portfolio.c: score the candidate blends by replaying the history's
 * second half against a model of its first half, and set M's blend.
 * Deterministic. */
extern int portfolio_choose (struct model *m, const struct trace *history,
                             const struct train_options *opts, char *err);
extern void portfolio_default (struct model *m);

/* order-fit.c: fit M's region_fit from its history and regions. */
extern int region_fit (struct model *m);

/* Fit a model on HISTORY only.  Deterministic. */
extern struct model *model_train (const struct trace *history,
                                  const struct train_options *opts,
                                  char *err);
/* Written through a temporary file renamed over PATH, with MODE. */
extern int model_save (const struct model *m, const char *path, mode_t mode,
                       char *err);
extern struct model *model_load (const char *path, char *err);
extern void model_free (struct model *m);

#endif
