/* history.c: per-unit access statistics of a history period and their
 * feature vectors: frequency, recency, first-access time, write mix,
 * sequential-run membership, recent intensity and the spatial
 * neighbourhood (adjacent units, and units within +-NEIGHBOURHOOD). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"

#define NEIGHBOURHOOD 8

void
history_free (struct history *h)
{
  free (h->units);
  u64map_free (&h->index);
  memset (h, 0, sizeof *h);
}

static struct unit_stat *
unit_get (struct history *h, uint64_t unit, uint64_t ts, char *err)
{
  uint32_t i = u64map_get (&h->index, unit);

  if (i != U64MAP_NONE)
    return &h->units[i];
  /* The array doubles whenever its length reaches a power of two. */
  if (h->n == 0 || (h->n >= 64 && (h->n & (h->n - 1)) == 0)) {
    struct unit_stat *u = realloc (h->units,
                                   (h->n ? h->n * 2 : 64) * sizeof *u);
    if (!u)
      goto oom;
    h->units = u;
  }
  if (u64map_put (&h->index, unit, h->n) == -1)
    goto oom;
  h->units[h->n] = (struct unit_stat) {
    .unit = unit, .first_ts = ts, .last_ts = ts
  };
  return &h->units[h->n++];
 oom:
  snprintf (err, LEARNER_ERRLEN, "out of memory");
  return NULL;
}

int
history_touch (struct history *h, uint64_t unit, uint64_t ts, bool is_write,
               bool is_seq, bool new_block, char *err)
{
  struct unit_stat *u = unit_get (h, unit, ts, err);

  if (!u)
    return -1;
  u->count++;
  u->writes += is_write;
  u->seq += is_seq;
  u->distinct += new_block;
  if (ts > u->last_ts)
    u->last_ts = ts;
  if (ts >= h->t_end - (h->t_end - h->t_begin) / 10)
    u->recent++;
  return 0;
}

int
history_build (const struct trace *t, uint64_t block_size, uint64_t t_begin,
               uint64_t t_end, struct history *h, char *err)
{
  uint64_t prev_last = UINT64_MAX;

  memset (h, 0, sizeof *h);
  h->t_begin = t_begin;
  h->t_end = t_end;
  for (size_t i = 0; i < t->n; i++) {
    const struct trace_rec *r = &t->recs[i];
    uint64_t first, last;
    bool is_seq;

    if (r->ts_us < t_begin || r->ts_us >= t_end ||
        !trace_rec_blocks (r, block_size, &first, &last))
      continue;
    /* A run continues when a request starts in or right after the block
     * where the previous one ended. */
    is_seq = prev_last != UINT64_MAX &&
             (first == prev_last || first == prev_last + 1);
    for (uint64_t b = first; b <= last; b++) {
      bool is_new = u64map_get (&h->index, b) == U64MAP_NONE;
      if (history_touch (h, b, r->ts_us, r->op != TRACE_READ, is_seq, is_new,
                         err) == -1)
        return -1;
    }
    prev_last = last;
  }
  return 0;
}

int
history_regions (const struct history *blocks, unsigned shift,
                 struct history *regions, char *err)
{
  memset (regions, 0, sizeof *regions);
  regions->shift = blocks->shift + shift;
  regions->t_begin = blocks->t_begin;
  regions->t_end = blocks->t_end;
  for (size_t i = 0; i < blocks->n; i++) {
    const struct unit_stat *b = &blocks->units[i];
    struct unit_stat *r = unit_get (regions, b->unit >> shift, b->first_ts,
                                    err);
    if (!r)
      return -1;
    r->count += b->count;
    r->writes += b->writes;
    r->seq += b->seq;
    r->distinct += b->distinct;
    r->recent += b->recent;
    if (b->first_ts < r->first_ts)
      r->first_ts = b->first_ts;
    if (b->last_ts > r->last_ts)
      r->last_ts = b->last_ts;
  }
  return 0;
}

static uint32_t
count_of (const struct history *h, uint64_t unit)
{
  uint32_t i = u64map_get (&h->index, unit);
  return i == U64MAP_NONE ? 0 : h->units[i].count;
}

void
features_of (const struct history *h, uint64_t unit, double feat[NFEATURES])
{
  uint32_t i = u64map_get (&h->index, unit);
  double span = h->t_end > h->t_begin ? (double) (h->t_end - h->t_begin) : 1;
  uint64_t adjacent = 0, near = 0;

  memset (feat, 0, NFEATURES * sizeof *feat);
  if (i != U64MAP_NONE) {
    const struct unit_stat *u = &h->units[i];
    feat[FEAT_LOG_COUNT] = log1p (u->count);
    feat[FEAT_LOG_DISTINCT] = log1p (u->distinct);
    feat[FEAT_RECENCY] = u->last_ts >= h->t_end ? 0
      : fmin (1, (h->t_end - u->last_ts) / span);
    feat[FEAT_FIRST_ACCESS] = u->first_ts <= h->t_begin ? 0
      : fmin (1, (u->first_ts - h->t_begin) / span);
    feat[FEAT_WRITE_FRACTION] = (double) u->writes / u->count;
    feat[FEAT_SEQ_FRACTION] = (double) u->seq / u->count;
    feat[FEAT_LOG_RECENT] = log1p (u->recent);
  }
  else {
    /* Never touched: as old and as late as anything can be. */
    feat[FEAT_RECENCY] = 1;
    feat[FEAT_FIRST_ACCESS] = 1;
  }
  for (int d = 1; d <= NEIGHBOURHOOD; d++) {
    uint64_t c = count_of (h, unit + d) + (unit >= (uint64_t) d
                                           ? count_of (h, unit - d) : 0);
    if (d == 1)
      adjacent = c;
    near += c;
  }
  feat[FEAT_LOG_ADJACENT] = log1p (adjacent);
  feat[FEAT_LOG_NEIGHBOURHOOD] = log1p (near);
}

/* Fold the touched units modulo each candidate period M and count how
 * often two of them land on the same residue, relative to chance (1 for
 * unrelated positions).  Devices with the same layout collide far more at
 * their period and its multiples; the smallest period scoring close to the
 * best one is the device size.  A candidate needs at least 4 copies, and
 * the search is skipped where it would cost more than a moment. */
#define PERIOD_MIN_SCORE 1.5
#define PERIOD_NEAR_BEST 0.9
#define PERIOD_MAX_WORK 50000000ULL

uint64_t
history_period (const struct history *h)
{
  uint64_t nunits = 0, mmax, best_m = 0;
  double best = 0, *score;
  uint32_t *fold;

  for (size_t i = 0; i < h->n; i++)
    if (h->units[i].unit + 1 > nunits)
      nunits = h->units[i].unit + 1;
  mmax = nunits / 4;
  if (h->n < 16 || mmax < 2 || mmax * (h->n + mmax) > PERIOD_MAX_WORK)
    return 0;
  score = calloc (mmax + 1, sizeof *score);
  fold = calloc (mmax, sizeof *fold);
  if (!score || !fold)
    goto out;
  for (uint64_t m = 2; m <= mmax; m++) {
    double pairs = 0;
    memset (fold, 0, m * sizeof *fold);
    for (size_t i = 0; i < h->n; i++)
      pairs += fold[h->units[i].unit % m]++;
    score[m] = m * pairs * 2 / ((double) h->n * h->n);
    if (score[m] > best)
      best = score[m];
  }
  if (best >= PERIOD_MIN_SCORE)
    for (best_m = 2; score[best_m] < PERIOD_NEAR_BEST * best; best_m++)
      ;
 out:
  free (score);
  free (fold);
  return best_m;
}
