/* history.h: what the history says about each block or region ("unit"),
 * and the feature vectors the libsvm ranker is trained and applied on. */
#ifndef NBDSHADOW_HISTORY_H
#define NBDSHADOW_HISTORY_H

#include "learner.h"
#include "u64map.h"

/* Access statistics of one unit (a block, or a region of 2^shift blocks). */
struct unit_stat {
  uint64_t unit;
  uint64_t first_ts, last_ts;
  uint32_t count;               /* accesses (a request counts per block) */
  uint32_t writes;              /* of which writes, trims or zeroes */
  uint32_t seq;                 /* of which continued a sequential run */
  uint32_t distinct;            /* distinct blocks touched */
  uint32_t recent;              /* accesses in the last tenth of the span */
};

/* The history of a period [t_begin, t_end) at one granularity. */
struct history {
  struct unit_stat *units;      /* in first-access order */
  size_t n;
  struct u64map index;          /* unit -> position in units */
  unsigned shift;               /* unit = block >> shift */
  uint64_t t_begin, t_end;
};

/* Features, in the order features_of writes them. */
enum {
  FEAT_LOG_COUNT, FEAT_LOG_DISTINCT, FEAT_RECENCY, FEAT_FIRST_ACCESS,
  FEAT_WRITE_FRACTION, FEAT_SEQ_FRACTION, FEAT_LOG_RECENT,
  FEAT_LOG_ADJACENT, FEAT_LOG_NEIGHBOURHOOD,
  NFEATURES
};

/* Block-level history of the requests of T with t_begin <= ts < t_end. */
extern int history_build (const struct trace *t, uint64_t block_size,
                          uint64_t t_begin, uint64_t t_end,
                          struct history *h, char *err);
/* The same history grouped into regions of 2^shift blocks. */
extern int history_regions (const struct history *blocks, unsigned shift,
                            struct history *regions, char *err);
extern void history_free (struct history *h);
/* Account one access to UNIT at TS (online: the future, as observed). */
extern int history_touch (struct history *h, uint64_t unit, uint64_t ts,
                          bool is_write, bool is_seq, bool new_block,
                          char *err);

/* The period, in units, at which H's activity repeats across the volume
 * (several devices laid out side by side, as `import --format disksim`
 * does: the same offsets are busy on each), or 0 if it shows none. */
extern uint64_t history_period (const struct history *h);

/* Features of UNIT (touched or not) at the end of H's period. */
extern void features_of (const struct history *h, uint64_t unit,
                         double feat[NFEATURES]);

#endif
