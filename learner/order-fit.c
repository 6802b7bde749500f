/* order-fit.c: what the region model learns from the history, fitted
 * once by train (region_fit, called by model_train) and stored in the
 * model file: the ring profile, each region's growth, and on a volume of
 * several devices side by side their period and the sub-bins.  When an
 * order starts it only applies them: the twins (add_twins).  Everything
 * here reads the model only, so the same model always gives the same
 * order, in the filter and in the simulator.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "order-impl.h"

/* The sub-bins of the regions at each offset K of their device, from the
 * history blocks folded over every device: a sub-bin holding a share S
 * of them is 1 + NSUB * S times likelier than the region's average
 * block (the region's density plus the sub-bin's, at equal weight). */
static int
sub_fit (struct model *m, uint64_t period)
{
  const struct history *h = &m->blocks;
  const unsigned shift = m->region_shift;
  const size_t nsubs = period * NSUB;
  double *n, *sm;

  if (shift < SUB_BITS)
    return 0;
  n = calloc (nsubs, sizeof *n);
  sm = calloc (nsubs, sizeof *sm);
  m->fit.sub_rank = malloc (nsubs);
  m->fit.sub_p = calloc (nsubs, sizeof *m->fit.sub_p);
  if (!n || !sm || !m->fit.sub_rank || !m->fit.sub_p) {
    free (n);
    free (sm);
    return -1;
  }
  for (size_t i = 0; i < h->n; i++) {
    uint64_t b = h->units[i].unit;
    n[(b >> shift) % period * NSUB + ((b >> (shift - SUB_BITS)) & (NSUB - 1))]++;
  }
  /* A sub-bin's count plus the mean over it and its two neighbours on
   * the device (busy offsets come in runs): TPC-C dense ratio 1, 460 ->
   * 445 stalls (half the count or twice the mean: 452, 449). */
  for (size_t i = 0; i < nsubs; i++)
    sm[i] = n[i] + ((i > 0 ? n[i - 1] : 0) + n[i]
                    + (i + 1 < nsubs ? n[i + 1] : 0)) / 3;
  for (uint64_t k = 0; k < period; k++) {
    double *c = &sm[k * NSUB], total = 0;
    uint8_t *rank = &m->fit.sub_rank[k * NSUB];
    for (uint32_t j = 0; j < NSUB; j++) {
      total += n[k * NSUB + j];
      rank[j] = (uint8_t) j;
    }
    if (total == 0)
      continue;                 /* sub_p stays 0: not in sub-bins */
    /* Insertion sort, best first, ties by offset. */
    for (uint32_t j = 1; j < NSUB; j++)
      for (uint32_t i = j; i > 0 && c[rank[i]] > c[rank[i - 1]]; i--) {
        uint8_t t = rank[i];
        rank[i] = rank[i - 1];
        rank[i - 1] = t;
      }
    for (uint32_t j = 0; j < NSUB; j++)
      m->fit.sub_p[k * NSUB + j] = (float) (1 + NSUB * c[rank[j]] / total);
  }
  free (n);
  free (sm);
  return 0;
}

/* Devices laid out side by side (history_period, fitted by train) are
 * busy at the same offsets: a region gains the history activity of its
 * twins, the regions at its offset on the other devices, and a region the
 * history never touched takes their mean ranker probability.  On TPC-C's
 * 16 devices the history has about one access per region, its twins 16
 * times more. */
void
add_twins (struct order *o)
{
  const struct model *m = o->model;
  uint64_t period = m->fit.period;
  uint64_t nregions = ((o->nblocks - 1) >> o->regions.shift) + 1;
  uint64_t ndev = period ? (nregions + period - 1) / period : 0;
  double *count, *psum, *dev, dev_mean = 0;
  uint32_t *pn;

  if (period == 0)
    return;
  count = calloc (period, sizeof *count);
  psum = calloc (period, sizeof *psum);
  pn = calloc (period, sizeof *pn);
  dev = calloc (ndev + 1, sizeof *dev);
  if (!count || !psum || !pn || !dev)
    goto out;
  for (size_t i = 0; i < m->regions.n; i++) {
    count[m->regions.units[i].unit % period] += m->regions.units[i].count;
    if (m->regions.units[i].unit / period < ndev)
      dev[m->regions.units[i].unit / period] += m->regions.units[i].count;
  }
  for (uint64_t d = 0; d < ndev; d++)
    dev_mean += dev[d] / ndev;
  for (size_t i = 0; i < m->ncandidates; i++) {
    psum[m->candidates[i].unit % period] += m->candidates[i].score;
    pn[m->candidates[i].unit % period]++;
  }
  for (uint64_t r = 0; r < nregions; r++) {
    uint64_t k = r % period;
    uint32_t idx;
    if (count[k] == 0 || pn[k] == 0)
      continue;
    idx = region_slot (o, r);
    if (idx == U64MAP_NONE)
      break;                    /* out of memory: fewer twins */
    /* A quieter device is busy in the same places, less often. */
    o->region_state[idx].twins = (float) (count[k] * (dev[r / period] + 1)
                                          / (dev_mean + 1));
    if (o->region_state[idx].p <= o->region_threshold)
      o->region_state[idx].p = (float) (psum[k] / pn[k]);
    region_push (o, r);
  }
 out:
  free (count);
  free (psum);
  free (pn);
  free (dev);
}

static int
by_block (const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
  return x < y ? -1 : x > y;
}

/* Blocks of ring J of the center at C whose cell (the blocks nearer to it
 * than to any other center of its region) is [LLIM, RLIM]. */
static uint64_t
ring_count (uint64_t c, uint64_t llim, uint64_t rlim, uint32_t j)
{
  uint64_t lo, hi, n = 0;

  ring_bounds (j, &lo, &hi);
  if (hi == 0)
    return 1;                   /* the center itself */
  if (c + lo <= rlim)
    n += (c + hi < rlim ? c + hi : rlim) - (c + lo) + 1;
  if (c >= lo && c - lo >= llim)
    n += (c - lo) - (c >= hi && c - hi > llim ? c - hi : llim) + 1;
  return n;
}

/* ring_p[r][a] for the rings of never-seen blocks (r >= 1) from the
 * counts: per activity bin, the rate of each ring relative to the bin's
 * mean rate (the region's own score already says how likely the region
 * is as a whole), with one expected positive's worth of prior towards
 * the next quieter bin's profile (flat for the quietest), fitted
 * non-increasing in the distance (pool adjacent violators).  Bins
 * without a positive take the quieter bin's profile. */
static void
fit_rings (float ring_p[][ABINS], double (*num)[ABINS], double (*den)[ABINS],
           int nrings)
{
  for (int a = 0; a < ABINS; a++) {
    double n = 0, d = 0, mean, v[RINGS], w[RINGS];
    int len[RINGS], nb = 0;

    for (int r = 0; r < nrings; r++) {
      n += num[r][a];
      d += den[r][a];
    }
    if (n == 0) {
      for (int r = 0; r < RINGS - 1; r++)
        ring_p[r][a] = a > 0 ? ring_p[r][a - 1] : 1;
      continue;
    }
    mean = n / d;
    for (int r = 0; r < nrings; r++) {
      double prior = a > 0 ? ring_p[r][a - 1] : 1;
      v[nb] = (num[r][a] + prior) / (den[r][a] + 1 / mean);
      w[nb] = den[r][a] + 1 / mean;
      len[nb++] = 1;
      while (nb > 1 && v[nb - 2] < v[nb - 1]) {
        v[nb - 2] = (v[nb - 2] * w[nb - 2] + v[nb - 1] * w[nb - 1])
          / (w[nb - 2] + w[nb - 1]);
        w[nb - 2] += w[nb - 1];
        len[nb - 2] += len[nb - 1];
        nb--;
      }
    }
    for (int b = 0, r = 0; b < nb; b++)
      for (int k = 0; k < len[b]; k++, r++)
        ring_p[r][a] = (float) (v[b] / mean);
    for (int r = nrings; r < RINGS - 1; r++)
      ring_p[r][a] = ring_p[nrings - 1][a];
  }
}

/* ring_p[0][a], the touched blocks themselves: how much likelier a
 * touched block is to be touched again than the bin's mean never-seen
 * block is to be touched, with the same prior as fit_rings.  Never below
 * ring 1, which it comes before. */
static void
fit_touched (float ring_p[RINGS][ABINS], double num[RINGS][ABINS],
             double den[RINGS][ABINS])
{
  for (int a = 0; a < ABINS; a++) {
    double n = 0, d = 0, mean, prior, v;

    for (int r = 1; r < RINGS; r++) {
      n += num[r][a];
      d += den[r][a];
    }
    if (n == 0) {
      ring_p[0][a] = a > 0 ? ring_p[0][a - 1] : ring_p[1][a];
      continue;
    }
    mean = n / d;
    prior = a > 0 ? ring_p[0][a - 1] : 1;
    v = (num[0][a] + prior) / (den[0][a] + 1 / mean) / mean;
    ring_p[0][a] = (float) fmax (v, ring_p[1][a]);
  }
}

/* How likely is a block to be touched, by its distance to the nearest
 * touched block of its region (ring; 0: a touched block, touched again)
 * and how many blocks that region has touched (activity bin)?  Learnt
 * from the history alone, as the rankers are: the blocks its first half
 * touched are the centers, the blocks its second half touched are the
 * positives.  (An order then makes every history block a center of its
 * region, centers_init: its ring 0 puts the history blocks in the region
 * heap, ranked against the never-seen blocks of every region.) */
static int
ring_fit (struct model *m)
{
  const struct history *h = &m->blocks;
  const unsigned shift = m->region_shift;
  const uint64_t size = 1ULL << shift;
  uint64_t mid = h->t_begin + (h->t_end - h->t_begin) / 2, nblocks = 0;
  uint64_t *h1 = malloc ((h->n + 1) * sizeof *h1);
  size_t n1 = 0;
  double num[RINGS][ABINS] = { { 0 } }, den[RINGS][ABINS] = { { 0 } };

  if (!h1)
    return -1;
  for (size_t i = 0; i < h->n; i++) {
    if (h->units[i].unit >= nblocks)
      nblocks = h->units[i].unit + 1;
    if (h->units[i].first_ts < mid)
      h1[n1++] = h->units[i].unit;
  }
  qsort (h1, n1, sizeof *h1, by_block);

  for (size_t i = 0, j; i < n1; i = j) {
    uint64_t base = h1[i] >> shift << shift;
    uint64_t end = base + size < nblocks ? base + size : nblocks;
    uint32_t a;
    for (j = i; j < n1 && h1[j] < end; j++)
      ;
    a = abin (j - i);
    for (size_t k = i; k < j; k++) {
      uint64_t c = h1[k] - base;
      uint64_t llim = k > i ? (h1[k - 1] - base + c) / 2 + 1 : 0;
      uint64_t rlim = k + 1 < j ? (c + h1[k + 1] - base) / 2 : end - base - 1;
      uint32_t u = u64map_get (&h->index, h1[k]);
      for (uint32_t r = 0; r < rings_end (shift); r++)
        den[r][a] += ring_count (c, llim, rlim, r);
      num[0][a] += u != U64MAP_NONE && h->units[u].last_ts >= mid;
    }
  }
  for (size_t i = 0; i < h->n; i++) {
    uint64_t x = h->units[i].unit, base = x >> shift << shift;
    size_t lo = 0, hi = n1, at, run_end;
    uint64_t d = UINT64_MAX;
    if (h->units[i].first_ts < mid)
      continue;
    while (lo < hi) {           /* first h1 block >= x */
      size_t mm = (lo + hi) / 2;
      if (h1[mm] < x)
        lo = mm + 1;
      else
        hi = mm;
    }
    at = lo;
    if (at < n1 && (h1[at] >> shift << shift) == base)
      d = h1[at] - x;
    if (at > 0 && (h1[at - 1] >> shift << shift) == base &&
        x - h1[at - 1] < d)
      d = x - h1[at - 1];
    if (d == UINT64_MAX)
      continue;                 /* a region the first half never touched */
    /* The region's run of h1 blocks, for its activity bin. */
    lo = at;
    while (lo > 0 && (h1[lo - 1] >> shift << shift) == base)
      lo--;
    for (run_end = at; run_end < n1 && (h1[run_end] >> shift << shift) == base;
         run_end++)
      ;
    num[ring_of (d)][abin (run_end - lo)]++;
  }
  fit_rings (m->fit.ring_p + 1, num + 1, den + 1, (int) rings_end (shift) - 1);
  fit_touched (m->fit.ring_p, num, den);
  free (h1);
  return 0;
}

/* Every history block in the volume is a center of its region, inserted
 * in ascending order (so each insert appends). */
int
centers_init (struct order *o)
{
  const struct history *h = &o->model->blocks;
  const unsigned shift = o->regions.shift;
  uint64_t *all = malloc ((h->n + 1) * sizeof *all);
  size_t nall = 0;

  if (!all)
    return -1;
  for (size_t i = 0; i < h->n; i++)
    if (h->units[i].unit < o->nblocks)
      all[nall++] = h->units[i].unit;
  qsort (all, nall, sizeof *all, by_block);
  for (size_t i = 0; i < nall; i++) {
    uint32_t idx = region_slot (o, all[i] >> shift);
    if (idx == U64MAP_NONE ||
        center_insert (&o->region_state[idx],
                       (uint32_t) (all[i] & ((1ULL << shift) - 1))) == -1) {
      free (all);
      return -1;
    }
  }
  free (all);
  return 0;
}

/* A region's history activity, for region_push: not how often the
 * history touched it but in how many of GROWTH_WINDOWS equal slices of
 * the history it touched new blocks, scaled so that the regions' total
 * stays the history's access count (online accesses weigh the same as
 * before).  A region that kept growing through the history is likelier
 * to grow in the future than one that had one burst or re-read the same
 * blocks: MSN (dense, ratio 1) 6418 -> 6074 stalls; the result is flat
 * between 16 and 512 slices (6056-6117), and still 6157 with new blocks
 * counted one by one.  TPC-C: 461 -> 458. */
#define GROWTH_WINDOWS 64
#define NEIGHBOUR_GROWTH 0.5f

static int
growth_fit (struct model *m)
{
  const struct history *h = &m->blocks;
  const struct history *r = &m->regions;
  const unsigned shift = m->region_shift;
  double w = h->t_end > h->t_begin
    ? (double) (h->t_end - h->t_begin) / GROWTH_WINDOWS : 1;
  double accesses = 0, windows = 0;
  /* Per region: slices in which it got new blocks, and the last one. */
  struct { uint32_t n, last; } *slices;
  float *add, *growth;

  slices = calloc (r->n + 1, sizeof *slices);
  add = calloc (r->n + 1, sizeof *add);
  growth = m->fit.growth = calloc (r->n + 1, sizeof *growth);
  if (!slices || !add || !growth) {
    free (slices);
    free (add);
    return -1;
  }
  /* units are in first-access order: a region's slices ascend. */
  for (size_t i = 0; i < h->n; i++) {
    uint32_t idx = u64map_get (&r->index, h->units[i].unit >> shift);
    uint64_t t = h->units[i].first_ts > h->t_begin
      ? h->units[i].first_ts - h->t_begin : 0;
    uint32_t win = (uint32_t) (t / w) + 1;
    if (idx == U64MAP_NONE)
      continue;
    if (slices[idx].last != win) {
      slices[idx].last = win;
      slices[idx].n++;
      windows++;
    }
  }
  for (size_t i = 0; i < r->n; i++)
    accesses += r->units[i].count;
  for (size_t i = 0; i < r->n; i++)
    growth[i] = windows > 0 ? (float) (slices[i].n * accesses / windows)
      : (float) r->units[i].count;
  /* Half the mean of the two neighbours' growth: a region next to one
   * that kept growing is likelier to grow (MSN dense ratio 1: 6064 ->
   * 6016 stalls; weights 0.25 and 1: 6033, 6038). */
  for (size_t i = 0; i < r->n; i++)
    for (int d = -1; d <= 1; d += 2) {
      uint32_t j;
      if (r->units[i].unit == 0 && d < 0)
        continue;
      j = u64map_get (&r->index, r->units[i].unit + d);
      if (j != U64MAP_NONE)
        add[i] += NEIGHBOUR_GROWTH / 2 * growth[j];
    }
  for (size_t i = 0; i < r->n; i++)
    growth[i] += add[i];
  free (slices);
  free (add);
  return 0;
}

/* The region model's fit, once per model (train, and each sub-model the
 * portfolio scores). */
int
region_fit (struct model *m)
{
  uint64_t period = history_period (&m->regions);

  if (ring_fit (m) == -1 || growth_fit (m) == -1)
    return -1;
  if (period > 0) {
    m->fit.period = period;
    if (sub_fit (m, period) == -1)
      return -1;
  }
  return 0;
}
