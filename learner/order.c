/* order.c: the pull-order policies of order.h.
 *
 * Every policy is a sequence of sources tried in turn, each skipping
 * blocks already present:
 *   urgent     (predict) neighbours of a stalled request and the blocks
 *              the sequence model expects next, newest first; refilled on
 *              every observed request
 *   list       a fixed block list: history blocks ranked by the policy, or
 *              the oracle's seed; for predict, only those no region
 *              pulls (choose_sources)
 *   regions    (predict) a max-heap of regions by libsvm probability x
 *              activity.  A region is pulled in rings: first its history
 *              blocks themselves, then its never-seen blocks around its
 *              touched blocks (history and online), nearest first, each
 *              ring scored by how much likelier the history says its
 *              distance is (ring_init); a block touched online restarts
 *              its region's rings.  Observed requests update the
 *              regions' statistics; a region that stalls the guest (a
 *              missed prediction) or gets a new block is re-pushed with
 *              its new activity at once, and re-scored by the ranker
 *              (deferred to order_next) when its activity doubles, so the
 *              remaining queue re-ranks incrementally (stale heap entries
 *              are dropped when popped).  Comes before the list on a
 *              sparse source (choose_sources)
 *   bursts     (predict, before the list) the chunks around the stalls of
 *              a region that stalls again and again (burst_observe)
 *   sweep      ascending order over the whole volume: everything is
 *              eventually copied whatever the predictions were
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "order.h"

#define URGENT_MAX 64
/* Neighbours of a stalled request pulled at once (see order_observe). */
#define STALL_RADIUS 1
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
/* Chunks waiting in the burst source (burst_observe), newest first. */
#define BURST_MAX 16

const char *const order_policies[] = {
  "none", "sequential", "frequency", "first-access", "predict", "oracle",
  NULL
};

enum policy { NONE, SEQUENTIAL, FREQUENCY, FIRST_ACCESS, PREDICT, ORACLE };

struct heap_entry {
  float score;
  uint32_t idx;                 /* into order->region_state */
  uint32_t version;             /* stale when != region_state[idx] */
};

struct region_state {
  uint32_t version;
  int done;                     /* popped: its blocks have been offered */
  float p;                      /* ranker probability, cached */
  uint32_t online;              /* accesses seen since the start */
  float growth;                 /* history activity (growth_init) */
  float twins;                  /* history accesses at the same offset on
                                   every device (add_twins) */
  int stale;                    /* queued for the ranker */
  uint32_t *centers;            /* touched blocks, offsets in the region,
                                   ascending (history and online) */
  uint32_t ncenters, centers_cap;
  uint32_t ring;                /* next ring to pull (ring_bounds), or
                                   the rank of the next sub-bin */
  float stalls;                 /* recent stalls, decayed (burst_observe) */
  uint64_t stalls_ts;           /* when stalls was last updated */
};

struct interval { uint64_t pos, end; };

struct order {
  enum policy policy;
  const struct model *model;
  uint64_t nblocks, block_size;

  uint64_t *list;               /* the list source */
  size_t nlist, list_pos;
  uint64_t sweep_pos;           /* the sweep source */

  /* predict only */
  struct seqmodel *seq;         /* online copy of the model's */
  uint64_t urgent[URGENT_MAX];  /* stack of predicted blocks */
  size_t nurgent;
  struct history regions;       /* online copy: history + what we saw */
  struct u64map seen_blocks;    /* blocks touched since the start */
  struct u64map region_index;   /* region -> region_state index */
  struct region_state *region_state;
  uint64_t *region_of;          /* region_state index -> region */
  size_t nregion_state, region_state_cap;
  struct heap_entry *heap;
  size_t nheap, heap_cap;
  uint32_t *stale;              /* regions to ask the ranker again */
  size_t nstale, stale_cap;
  float region_threshold;       /* the ranker's score of a region far from
                                 * any activity (add_twins) */
  uint64_t active_pos, active_end;     /* the active interval */
  int region_active;            /* 1: whole region, 2: a ring */
  uint32_t active_idx, active_ring, active_center, active_side;
  /* How much likelier a never-seen block in ring r of a region in
   * activity bin a is than the region's average block (ring_init). */
  float ring_p[RINGS][ABINS];
  /* Devices side by side (add_twins): per offset k of a region on its
   * device (region % period), its sub-bins best first and how much
   * likelier each is than the region's average block.  NULL: none. */
  uint64_t period;
  uint8_t *sub_rank;            /* [period][NSUB] sub-bin numbers */
  float *sub_p;                 /* [period][NSUB] factors, by rank */
  uint64_t clock_base;          /* first observe's now_us */
  int clock_started;
  uint64_t prev_last;           /* last block of the previous request */
  uint64_t offered;             /* blocks order_next returned so far */
  struct interval burst[BURST_MAX];     /* stack of chunks to pull */
  size_t nburst;
  struct interval burst_active;
  struct u64map burst_seen;     /* first blocks of the chunks queued */
  int probed;                   /* new_first decided */
  int new_first;                /* never-seen blocks before history ones */
};

/* ---- ranked history lists ---- */

struct ranked { uint64_t block; double key1, key2; };

static int
by_keys (const void *a, const void *b)
{
  const struct ranked *x = a, *y = b;
  if (x->key1 != y->key1)
    return x->key1 < y->key1 ? 1 : -1;
  if (x->key2 != y->key2)
    return x->key2 < y->key2 ? 1 : -1;
  return x->block < y->block ? -1 : x->block > y->block;
}

/* The model's history blocks, best first for the policy. */
static int
build_list (struct order *o)
{
  const struct history *h = &o->model->blocks;
  struct ranked *r = malloc ((h->n + 1) * sizeof *r);

  o->list = malloc ((h->n + 1) * sizeof *o->list);
  if (!r || !o->list) {
    free (r);
    return -1;
  }
  for (size_t i = 0; i < h->n; i++) {
    const struct unit_stat *u = &h->units[i];
    r[i].block = u->unit;
    switch (o->policy) {
    case FREQUENCY:
      r[i].key1 = u->count;
      r[i].key2 = -(double) u->first_ts;
      break;
    case FIRST_ACCESS:
      r[i].key1 = -(double) u->first_ts;
      r[i].key2 = -(double) i;
      break;
    default:                    /* PREDICT */
      r[i].key1 = o->model->block_scores[i];
      r[i].key2 = u->count;
      break;
    }
  }
  qsort (r, h->n, sizeof *r, by_keys);
  for (size_t i = 0; i < h->n; i++)
    o->list[i] = r[i].block;
  o->nlist = h->n;
  free (r);
  return 0;
}

/* ---- the region heap ---- */

static int
heap_before (const struct heap_entry *a, const struct heap_entry *b,
             const uint64_t *region_of)
{
  if (a->score != b->score)
    return a->score > b->score;
  return region_of[a->idx] < region_of[b->idx];
}

static int
heap_push (struct order *o, uint32_t idx, float score)
{
  size_t i;

  if (o->nheap == o->heap_cap) {
    size_t cap = o->heap_cap ? o->heap_cap * 2 : 256;
    struct heap_entry *h = realloc (o->heap, cap * sizeof *h);
    if (!h)
      return -1;
    o->heap = h;
    o->heap_cap = cap;
  }
  i = o->nheap++;
  o->heap[i] = (struct heap_entry) {
    .score = score, .idx = idx, .version = o->region_state[idx].version
  };
  while (i > 0 && heap_before (&o->heap[i], &o->heap[(i - 1) / 2],
                               o->region_of)) {
    struct heap_entry t = o->heap[i];
    o->heap[i] = o->heap[(i - 1) / 2];
    o->heap[(i - 1) / 2] = t;
    i = (i - 1) / 2;
  }
  return 0;
}

static struct heap_entry
heap_pop (struct order *o)
{
  struct heap_entry top = o->heap[0];
  size_t i = 0;

  o->heap[0] = o->heap[--o->nheap];
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, best = i;
    if (l < o->nheap && heap_before (&o->heap[l], &o->heap[best],
                                     o->region_of))
      best = l;
    if (r < o->nheap && heap_before (&o->heap[r], &o->heap[best],
                                     o->region_of))
      best = r;
    if (best == i)
      break;
    struct heap_entry t = o->heap[i];
    o->heap[i] = o->heap[best];
    o->heap[best] = t;
    i = best;
  }
  return top;
}

/* The state index of REGION, created on first sight. */
static uint32_t
region_slot (struct order *o, uint64_t region)
{
  uint32_t idx = u64map_get (&o->region_index, region);

  if (idx != U64MAP_NONE)
    return idx;
  if (o->nregion_state == o->region_state_cap) {
    size_t cap = o->region_state_cap ? o->region_state_cap * 2 : 1024;
    struct region_state *s = realloc (o->region_state, cap * sizeof *s);
    uint64_t *r;
    if (!s)
      return U64MAP_NONE;
    o->region_state = s;
    r = realloc (o->region_of, cap * sizeof *r);
    if (!r)
      return U64MAP_NONE;
    o->region_of = r;
    o->region_state_cap = cap;
  }
  idx = (uint32_t) o->nregion_state;
  if (u64map_put (&o->region_index, region, idx) == -1)
    return U64MAP_NONE;
  o->region_state[idx] = (struct region_state) { 0 };
  o->region_of[idx] = region;
  o->nregion_state++;
  return idx;
}

static void
ring_bounds (uint32_t j, uint64_t *lo, uint64_t *hi)
{
  *lo = j <= 1 ? j : (1ULL << (j - 2)) + 1;
  *hi = j == 0 ? 0 : 1ULL << (j - 1);
}

static uint32_t
ring_of (uint64_t d)
{
  uint32_t j = 0;
  if (d == 0)
    return 0;
  while ((1ULL << j) < d)
    j++;
  return j + 1;
}

/* Ring after the last one of a region of 2^SHIFT blocks. */
static uint32_t
rings_end (unsigned shift)
{
  return shift + 2 < RINGS ? shift + 2 : RINGS;
}

static uint32_t
abin (uint32_t n)
{
  uint32_t a = 0;
  while (a + 1 < ABINS && (2ULL << a) <= n + 1ULL)
    a++;
  return a;
}

/* Add OFF to the region's touched blocks (kept ascending).  0 if it was
 * there already, -1 on out of memory. */
static int
center_insert (struct region_state *s, uint32_t off)
{
  uint32_t lo = 0, hi = s->ncenters;

  while (lo < hi) {
    uint32_t mid = (lo + hi) / 2;
    if (s->centers[mid] < off)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < s->ncenters && s->centers[lo] == off)
    return 0;
  if (s->ncenters == s->centers_cap) {
    uint32_t cap = s->centers_cap ? s->centers_cap * 2 : 4;
    uint32_t *c = realloc (s->centers, cap * sizeof *c);
    if (!c)
      return -1;
    s->centers = c;
    s->centers_cap = cap;
  }
  memmove (s->centers + lo + 1, s->centers + lo,
           (s->ncenters - lo) * sizeof *s->centers);
  s->centers[lo] = off;
  s->ncenters++;
  return 1;
}

/* A region's priority: how likely it gets new blocks (the ranker) times
 * how busy it is (history, growth_init, plus what the guest did since),
 * i.e. roughly
 * how many stalls pulling it now saves.  A region with touched blocks is
 * pulled a ring at a time, nearest first, and each ring's priority is the
 * region's times how much likelier that ring is (ring_p).  Regions never
 * near any activity are left to the sweep. */
#define UNSEEN_ACTIVITY 0.5f
/* A ranker that saw no region get new blocks scores every region 0: the
 * activity still orders them. */
#define MIN_REGION_P 1e-3f
/* An access seen now says more about the coming minutes than one in the
 * history: it weighs this many history accesses. */
#define ONLINE_WEIGHT 4

/* Does region IDX go a sub-bin at a time (add_twins)? */
static int
in_subs (const struct order *o, uint32_t idx)
{
  return o->sub_p && o->sub_p[o->region_of[idx] % o->period * NSUB] > 0;
}

/* How much likelier the region's next ring or sub-bin is than its
 * average block. */
static float
region_factor (const struct order *o, uint32_t idx)
{
  const struct region_state *s = &o->region_state[idx];

  if (in_subs (o, idx))
    return o->sub_p[o->region_of[idx] % o->period * NSUB + s->ring];
  return s->ncenters ? o->ring_p[s->ring][abin (s->ncenters)] : 1;
}

static void
region_push (struct order *o, uint64_t region)
{
  uint32_t idx = u64map_get (&o->region_index, region);
  uint32_t h = u64map_get (&o->regions.index, region);
  struct region_state *s;
  float activity;

  if (idx == U64MAP_NONE)
    return;
  s = &o->region_state[idx];
  /* No cut-off on p: a region the ranker scores as low as one far from
   * any activity still ranks by p x activity before the sweep.  A cut
   * there left to the sweep most regions of a ranker that generalised
   * badly (MSN held out, regions of 1024 blocks: 11022 stalls, 6566
   * without the cut; the real split: unchanged). */
  if (s->done)
    return;
  activity = (h == U64MAP_NONE ? UNSEEN_ACTIVITY
    : s->growth + ONLINE_WEIGHT * s->online) + s->twins;
  s->version++;
  heap_push (o, idx, fmaxf (s->p, MIN_REGION_P) * activity
             * region_factor (o, idx));
}

/* Set REGION's ranker probability (creating its state) and re-rank it. */
static void
region_set_p (struct order *o, uint64_t region, float p)
{
  uint32_t idx;

  if ((region << o->regions.shift) >= o->nblocks)
    return;
  idx = region_slot (o, region);
  if (idx == U64MAP_NONE)
    return;
  o->region_state[idx].p = p;
  region_push (o, region);
}

static void
region_rescore (struct order *o, uint64_t region)
{
  double f[NFEATURES];

  features_of (&o->regions, region, f);
  region_set_p (o, region, (float) ranker_score (&o->model->region_ranker, f));
}

static void
region_mark_stale (struct order *o, uint32_t idx)
{
  if (idx == U64MAP_NONE || o->region_state[idx].stale)
    return;
  if (o->nstale == o->stale_cap) {
    size_t cap = o->stale_cap ? o->stale_cap * 2 : 256;
    uint32_t *s = realloc (o->stale, cap * sizeof *s);
    if (!s)
      return;                   /* keeps its old score */
    o->stale = s;
    o->stale_cap = cap;
  }
  o->region_state[idx].stale = 1;
  o->stale[o->nstale++] = idx;
}

static void
rescore_stale (struct order *o)
{
  while (o->nstale > 0) {
    uint32_t idx = o->stale[--o->nstale];
    o->region_state[idx].stale = 0;
    region_rescore (o, o->region_of[idx]);
  }
}

static int
copy_history (struct history *dst, const struct history *src)
{
  size_t cap = 64;

  memset (dst, 0, sizeof *dst);
  while (cap < src->n)
    cap *= 2;
  dst->units = malloc (cap * sizeof *dst->units);
  if (!dst->units)
    return -1;
  memcpy (dst->units, src->units, src->n * sizeof *src->units);
  dst->n = src->n;
  dst->shift = src->shift;
  dst->t_begin = src->t_begin;
  dst->t_end = src->t_end;
  for (size_t i = 0; i < src->n; i++)
    if (u64map_put (&dst->index, src->units[i].unit, (uint32_t) i) == -1)
      return -1;
  return 0;
}

/* The sub-bins of the regions at each offset K of their device, from the
 * history blocks folded over every device: a sub-bin holding a share S
 * of them is 1 + NSUB * S times likelier than the region's average
 * block (the region's density plus the sub-bin's, at equal weight). */
static int
sub_init (struct order *o, uint64_t period)
{
  const struct history *h = &o->model->blocks;
  const unsigned shift = o->regions.shift;
  const size_t nsubs = period * NSUB;
  double *n, *sm;

  if (shift < SUB_BITS)
    return 0;
  n = calloc (nsubs, sizeof *n);
  sm = calloc (nsubs, sizeof *sm);
  o->sub_rank = malloc (nsubs);
  o->sub_p = calloc (nsubs, sizeof *o->sub_p);
  if (!n || !sm || !o->sub_rank || !o->sub_p) {
    free (n);
    free (sm);
    return -1;
  }
  o->period = period;
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
    uint8_t *rank = &o->sub_rank[k * NSUB];
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
      o->sub_p[k * NSUB + j] = (float) (1 + NSUB * c[rank[j]] / total);
  }
  free (n);
  free (sm);
  return 0;
}

/* Devices laid out side by side (history_period) are busy at the same
 * offsets: a region gains the history activity of its twins, the regions
 * at its offset on the other devices, and a region the history never
 * touched takes their mean ranker probability.  On TPC-C's 16 devices the
 * history has about one access per region, its twins 16 times more. */
static void
add_twins (struct order *o)
{
  const struct model *m = o->model;
  uint64_t period = history_period (&m->regions);
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
  if (sub_init (o, period) == -1)
    goto out;
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
fit_rings (struct order *o, double (*num)[ABINS], double (*den)[ABINS],
           int nrings)
{
  float (*ring_p)[ABINS] = o->ring_p + 1;

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
fit_touched (struct order *o, double num[RINGS][ABINS],
             double den[RINGS][ABINS])
{
  for (int a = 0; a < ABINS; a++) {
    double n = 0, d = 0, mean, prior, v;

    for (int r = 1; r < RINGS; r++) {
      n += num[r][a];
      d += den[r][a];
    }
    if (n == 0) {
      o->ring_p[0][a] = a > 0 ? o->ring_p[0][a - 1] : o->ring_p[1][a];
      continue;
    }
    mean = n / d;
    prior = a > 0 ? o->ring_p[0][a - 1] : 1;
    v = (num[0][a] + prior) / (den[0][a] + 1 / mean) / mean;
    o->ring_p[0][a] = (float) fmax (v, o->ring_p[1][a]);
  }
}

/* How likely is a block to be touched, by its distance to the nearest
 * touched block of its region (ring; 0: a touched block, touched again)
 * and how many blocks that region has touched (activity bin)?  Learnt
 * from the history alone, as the rankers are: the blocks its first half
 * touched are the centers, the blocks its second half touched are the
 * positives.  Then every history block becomes a center of its region:
 * its ring 0 puts the history blocks in the region heap, ranked against
 * the never-seen blocks of every region, where a fixed list ahead of all
 * regions would pull the quiet regions' history blocks first (MSN dense,
 * ratio 1: 6016 -> 5976 stalls; held-out split 6566 -> 6500). */
static int
ring_init (struct order *o)
{
  const struct history *h = &o->model->blocks;
  const unsigned shift = o->regions.shift;
  const uint64_t size = 1ULL << shift;
  uint64_t mid = h->t_begin + (h->t_end - h->t_begin) / 2;
  uint64_t *all = malloc ((h->n + 1) * sizeof *all), *h1;
  size_t nall = 0, n1 = 0;
  double num[RINGS][ABINS] = { { 0 } }, den[RINGS][ABINS] = { { 0 } };

  h1 = malloc ((h->n + 1) * sizeof *h1);
  if (!all || !h1) {
    free (all);
    free (h1);
    return -1;
  }
  for (size_t i = 0; i < h->n; i++) {
    if (h->units[i].unit >= o->nblocks)
      continue;
    all[nall++] = h->units[i].unit;
    if (h->units[i].first_ts < mid)
      h1[n1++] = h->units[i].unit;
  }
  qsort (all, nall, sizeof *all, by_block);
  qsort (h1, n1, sizeof *h1, by_block);

  for (size_t i = 0, j; i < n1; i = j) {
    uint64_t base = h1[i] >> shift << shift;
    uint64_t end = base + size < o->nblocks ? base + size : o->nblocks;
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
    if (h->units[i].first_ts < mid || x >= o->nblocks)
      continue;
    while (lo < hi) {           /* first h1 block >= x */
      size_t m = (lo + hi) / 2;
      if (h1[m] < x)
        lo = m + 1;
      else
        hi = m;
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
  fit_rings (o, num + 1, den + 1, (int) rings_end (shift) - 1);
  fit_touched (o, num, den);

  for (size_t i = 0; i < nall; i++) {
    uint32_t idx = region_slot (o, all[i] >> shift);
    if (idx == U64MAP_NONE ||
        center_insert (&o->region_state[idx],
                       (uint32_t) (all[i] & (size - 1))) == -1) {
      free (all);
      free (h1);
      return -1;
    }
  }
  free (all);
  free (h1);
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

static void
growth_init (struct order *o)
{
  const struct history *h = &o->model->blocks;
  const struct history *r = &o->model->regions;
  const unsigned shift = o->regions.shift;
  double w = h->t_end > h->t_begin
    ? (double) (h->t_end - h->t_begin) / GROWTH_WINDOWS : 1;
  double accesses = 0, windows = 0;
  /* Per region: slices in which it got new blocks, and the last one. */
  struct { uint32_t n, last; } *slices;
  float *add;

  slices = calloc (o->nregion_state + 1, sizeof *slices);
  /* units are in first-access order: a region's slices ascend.  Out of
   * memory: no slices counted, growth is the access count. */
  for (size_t i = 0; slices && i < h->n; i++) {
    uint32_t idx = u64map_get (&o->region_index, h->units[i].unit >> shift);
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
  for (size_t i = 0; i < r->n; i++) {
    uint32_t idx = u64map_get (&o->region_index, r->units[i].unit);
    if (idx == U64MAP_NONE)
      continue;
    o->region_state[idx].growth = windows > 0
      ? (float) (slices[idx].n * accesses / windows)
      : (float) r->units[i].count;
  }
  free (slices);
  /* Half the mean of the two neighbours' growth: a region next to one
   * that kept growing is likelier to grow (MSN dense ratio 1: 6064 ->
   * 6016 stalls; weights 0.25 and 1: 6033, 6038). */
  add = calloc (o->nregion_state + 1, sizeof *add);
  if (!add)
    return;                     /* out of memory: no neighbours */
  for (size_t i = 0; i < o->nregion_state; i++)
    for (int d = -1; d <= 1; d += 2) {
      uint64_t nb = o->region_of[i] + d;
      uint32_t j;
      if (o->region_of[i] == 0 && d < 0)
        continue;
      j = u64map_get (&o->region_index, nb);
      if (j != U64MAP_NONE)
        add[i] += NEIGHBOUR_GROWTH / 2 * o->region_state[j].growth;
    }
  for (size_t i = 0; i < o->nregion_state; i++)
    o->region_state[i].growth += add[i];
  free (add);
}

static int
predict_init (struct order *o)
{
  const struct model *m = o->model;
  double far[NFEATURES];

  o->seq = malloc (sizeof *o->seq);
  if (!o->seq || copy_history (&o->regions, &m->regions) == -1)
    return -1;
  *o->seq = m->seq;
  /* Start from a clean context: the same model always behaves the same,
   * whether freshly trained or loaded. */
  o->seq->have_last = 0;
  o->seq->ngram.prev1 = o->seq->ngram.prev2 = 0;
  o->seq->gru.started = 0;

  features_of (&(struct history) { .t_begin = 0, .t_end = 1 }, 0, far);
  o->region_threshold = (float) ranker_score (&m->region_ranker, far);
  if (ring_init (o) == -1)
    return -1;
  growth_init (o);
  for (size_t i = 0; i < m->ncandidates; i++)
    region_set_p (o, m->candidates[i].unit, m->candidates[i].score);
  /* Regions with touched blocks but no candidate entry still get rings. */
  for (size_t i = 0; i < o->nregion_state; i++)
    if (o->region_state[i].version == 0)
      region_push (o, o->region_of[i]);
  add_twins (o);
  return 0;
}

struct order *
order_new (const char *name, const struct model *model, uint64_t nblocks,
           uint64_t block_size, char *err)
{
  struct order *o;
  int p = -1;

  for (int i = 0; order_policies[i]; i++)
    if (strcmp (order_policies[i], name) == 0)
      p = i;
  if (p == -1) {
    snprintf (err, LEARNER_ERRLEN, "unknown policy \"%.50s\" (one of none, "
              "sequential, frequency, first-access, predict, oracle)", name);
    return NULL;
  }
  if ((p == FREQUENCY || p == FIRST_ACCESS || p == PREDICT) && !model) {
    snprintf (err, LEARNER_ERRLEN, "policy %s needs a model", name);
    return NULL;
  }
  if (model && model->block_size != block_size) {
    snprintf (err, LEARNER_ERRLEN, "model was trained with block size %llu,"
              " not %llu", (unsigned long long) model->block_size,
              (unsigned long long) block_size);
    return NULL;
  }
  o = calloc (1, sizeof *o);
  if (!o)
    goto oom;
  o->policy = p;
  o->model = model;
  o->nblocks = nblocks;
  o->block_size = block_size;
  if ((p == FREQUENCY || p == FIRST_ACCESS || p == PREDICT) &&
      build_list (o) == -1)
    goto oom;
  if (p == PREDICT && predict_init (o) == -1)
    goto oom;
  return o;
 oom:
  order_free (o);
  snprintf (err, LEARNER_ERRLEN, "out of memory");
  return NULL;
}

void
order_free (struct order *o)
{
  if (!o)
    return;
  free (o->list);
  free (o->seq);
  history_free (&o->regions);
  u64map_free (&o->seen_blocks);
  u64map_free (&o->burst_seen);
  u64map_free (&o->region_index);
  for (size_t i = 0; i < o->nregion_state; i++)
    free (o->region_state[i].centers);
  free (o->region_state);
  free (o->region_of);
  free (o->heap);
  free (o->stale);
  free (o->sub_rank);
  free (o->sub_p);
  free (o);
}

int
order_seed (struct order *o, const uint64_t *blocks, size_t n)
{
  if (o->policy != ORACLE)
    return -1;
  free (o->list);
  o->list = malloc ((n + 1) * sizeof *o->list);
  if (!o->list)
    return -1;
  memcpy (o->list, blocks, n * sizeof *blocks);
  o->nlist = n;
  o->list_pos = 0;
  return 0;
}

/* A burst: the guest reads a span it never read before, at random and
 * fast (MSN's held-out split opens with reads scattered over a
 * 3000-block window moving up at about 30 000 blocks/s, 1 700 stalls in
 * its first second; the real future has one over 136 000 blocks at
 * 14 s).  The history cannot see it coming, and the region heap reacts
 * too slowly: a region's next ring is a few blocks spread over the region.
 * So once a region has stalled BURST_STALLS times within about
 * BURST_TAU_US (a decayed count), each further stall there queues the
 * chunk of the volume holding it and the one above (such windows move up),
 * pulled before the history list, newest first.  A chunk is what the link
 * moves in BURST_SPAN_US (256 blocks at MSN's ratio 1), so on a slow link
 * a burst does not hold up everything else for long.  MSN, dense ratio
 * 1, held-out split (docs/PREDICTION.md; before ring 0): 7017 -> 5110 stalls (the
 * stall's own chunk only: 5283; whole regions: 5491; 4 or 16 ms: 5167,
 * 5088; 4 or 16 stalls: 5916, 5245); the benchmark's split 6016 -> 5998;
 * TPC-C unchanged. */
#define BURST_STALLS 8
#define BURST_TAU_US 1000000.0
#define BURST_SPAN_US 8000.0

/* Log2 of the chunk size: what the link moved in BURST_SPAN_US so far. */
static unsigned
burst_shift (const struct order *o, uint64_t ts)
{
  uint64_t elapsed = ts - o->model->blocks.t_end;
  double want = elapsed > 0 ? o->offered * BURST_SPAN_US / elapsed : 1;
  unsigned shift = 0;

  while (shift < o->regions.shift && (2ULL << shift) <= want)
    shift++;
  return shift;
}

static void
burst_push (struct order *o, uint64_t pos, unsigned shift)
{
  if (pos >= o->nblocks || u64map_get (&o->burst_seen, pos) != U64MAP_NONE ||
      u64map_put (&o->burst_seen, pos, 1) == -1)
    return;
  if (o->nburst == BURST_MAX) {         /* the oldest is likeliest past */
    memmove (o->burst, o->burst + 1, (BURST_MAX - 1) * sizeof *o->burst);
    o->nburst--;
  }
  o->burst[o->nburst++] = (struct interval) {
    .pos = pos,
    .end = pos + (1ULL << shift) < o->nblocks ? pos + (1ULL << shift)
      : o->nblocks
  };
}

/* A stall at block FIRST in region IDX at TS. */
static void
burst_observe (struct order *o, uint32_t idx, uint64_t ts, uint64_t first)
{
  struct region_state *s = &o->region_state[idx];
  unsigned shift;
  uint64_t pos;

  s->stalls = (float) (s->stalls * exp (-(double) (ts - s->stalls_ts)
                                        / BURST_TAU_US) + 1);
  s->stalls_ts = ts;
  if (s->stalls < BURST_STALLS)
    return;
  shift = burst_shift (o, ts);
  pos = first >> shift << shift;
  /* The chunk above first, so the stall's own is on top. */
  burst_push (o, pos + (1ULL << shift), shift);
  burst_push (o, pos, shift);
}

/* Update region statistics with one request; re-score where it matters. */
static void
observe_regions (struct order *o, uint64_t ts, uint64_t first, uint64_t last,
                 bool is_write, bool was_hit)
{
  const unsigned shift = o->regions.shift;
  int is_seq = first == o->prev_last || first == o->prev_last + 1;
  char err[LEARNER_ERRLEN];

  o->regions.t_end = ts + 1;
  for (uint64_t r = first >> shift; r <= last >> shift; r++) {
    uint32_t after, idx;
    int new_blocks = 0;

    idx = region_slot (o, r);
    for (uint64_t b = first > (r << shift) ? first : r << shift;
         b <= last && (b >> shift) == r; b++) {
      if (u64map_get (&o->model->blocks.index, b) == U64MAP_NONE &&
          u64map_get (&o->seen_blocks, b) == U64MAP_NONE) {
        u64map_put (&o->seen_blocks, b, 1);
        new_blocks++;
        /* A new center: its rings are worth pulling again from the
         * nearest out (the history blocks first if not pulled yet). */
        if (idx != U64MAP_NONE && !in_subs (o, idx) &&
            center_insert (&o->region_state[idx],
                           (uint32_t) (b - (r << shift))) == 1 &&
            o->region_state[idx].ring > 1)
          o->region_state[idx].ring = 1;
      }
    }
    if (!was_hit && idx != U64MAP_NONE)
      burst_observe (o, idx, ts, first);
    if (history_touch (&o->regions, r, ts, is_write, is_seq, new_blocks,
                       err) == -1)
      continue;                 /* out of memory: just learn less */
    after = o->regions.units[u64map_get (&o->regions.index, r)].count;
    if (idx != U64MAP_NONE)
      o->region_state[idx].online++;
    /* The ranker is asked again when the region's activity doubles (its
     * features moved), later, in order_next: the guest's request path
     * only does cheap bookkeeping.  A stall, a missed prediction,
     * re-ranks the region at once with its new activity. */
    if ((after & (after - 1)) == 0)
      region_mark_stale (o, idx);
    else if (!was_hit || new_blocks)
      region_push (o, r);
  }
}

static void
urgent_push (struct order *o, uint64_t block)
{
  if (block >= o->nblocks)
    return;
  if (o->nurgent == URGENT_MAX) {
    memmove (o->urgent, o->urgent + 1, (URGENT_MAX - 1) * sizeof *o->urgent);
    o->nurgent--;
  }
  o->urgent[o->nurgent++] = block;
}

void
order_observe (struct order *o, uint64_t now_us, uint64_t first,
               uint64_t last, bool is_write, bool was_hit)
{
  uint64_t blocks[SEQ_TOPK], ts;
  double probs[SEQ_TOPK];
  int n;

  if (o->policy != PREDICT)
    return;
  if (!o->clock_started) {
    o->clock_base = now_us;
    o->clock_started = 1;
  }
  /* Online time continues where the history ended. */
  ts = o->model->blocks.t_end + (now_us - o->clock_base);
  observe_regions (o, ts, first, last, is_write, was_hit);
  o->prev_last = last;

  /* A stall means the guest went where nothing predicted: its
   * neighbours are the likeliest next new blocks. */
  if (!was_hit)
    for (uint64_t d = STALL_RADIUS; d >= 1; d--) {
      urgent_push (o, last + d);
      if (first >= d)
        urgent_push (o, first - d);
    }
  seqmodel_observe (o->seq, first, last);
  n = seqmodel_predict (o->seq, blocks, probs);
  /* Push the least likely first so the likeliest is on top. */
  while (n-- > 0)
    if (blocks[n] < first || blocks[n] > last)
      urgent_push (o, blocks[n]);
}

/* Move the active ring to its next interval (a side of a center, clipped
 * to the center's cell); 0 when the ring is finished. */
static int
ring_step (struct order *o)
{
  const struct region_state *s = &o->region_state[o->active_idx];
  const uint64_t size = 1ULL << o->regions.shift;
  uint64_t base = o->region_of[o->active_idx] << o->regions.shift;
  uint64_t lo, hi;

  ring_bounds (o->active_ring, &lo, &hi);
  while (o->active_center < s->ncenters) {
    uint32_t k = o->active_center;
    uint64_t c = s->centers[k];
    uint64_t llim = k > 0 ? (s->centers[k - 1] + c) / 2 + 1 : 0;
    uint64_t rlim = k + 1 < s->ncenters ? (c + s->centers[k + 1]) / 2
      : size - 1;
    int side = o->active_side;

    if (hi == 0)
      o->active_center++;
    else if (side == 1) {
      o->active_center++;
      o->active_side = 0;
    }
    else
      o->active_side = 1;
    if (hi == 0) {              /* ring 0: the center itself */
      o->active_pos = base + c;
      o->active_end = base + c + 1;
    }
    else if (side == 0 && c >= lo && c - lo >= llim) {
      o->active_pos = base + (c >= hi && c - hi > llim ? c - hi : llim);
      o->active_end = base + c - lo + 1;
    }
    else if (side == 1 && c + lo <= rlim) {
      o->active_pos = base + c + lo;
      o->active_end = base + (c + hi < rlim ? c + hi : rlim) + 1;
    }
    else
      continue;
    if (o->active_end > o->nblocks)
      o->active_end = o->nblocks;
    return 1;
  }
  return 0;
}

/* The next block of the active region, or of the best remaining one.
 * While never-seen blocks go first, history blocks are left to the list. */
static int
next_from_regions (struct order *o, block_present_fn is_present, void *ctx,
                   uint64_t *block)
{
  for (;;) {
    while (o->region_active && o->active_pos < o->active_end) {
      uint64_t b = o->active_pos++;
      if (o->new_first &&
          u64map_get (&o->model->blocks.index, b) != U64MAP_NONE)
        continue;
      if (!is_present (ctx, b)) {
        *block = b;
        return 1;
      }
    }
    if (o->region_active == 2 && ring_step (o))
      continue;
    o->region_active = 0;
    if (o->nheap == 0)
      return 0;
    struct heap_entry top = heap_pop (o);
    struct region_state *s = &o->region_state[top.idx];
    if (s->done || top.version != s->version)
      continue;                 /* re-ranked since: a newer entry exists */
    if (in_subs (o, top.idx)) {
      const unsigned sub_shift = o->regions.shift - SUB_BITS;
      uint64_t k = o->region_of[top.idx] % o->period;
      o->active_pos = (o->region_of[top.idx] << o->regions.shift)
        + ((uint64_t) o->sub_rank[k * NSUB + s->ring] << sub_shift);
      o->active_end = o->active_pos + (1ULL << sub_shift);
      if (o->active_end > o->nblocks)
        o->active_end = o->nblocks;
      o->region_active = 1;
      if (++s->ring >= NSUB)
        s->done = 1;
      else
        region_push (o, o->region_of[top.idx]);
      continue;
    }
    if (s->ncenters > 0) {
      o->active_idx = top.idx;
      o->active_ring = s->ring;
      o->active_center = 0;
      o->active_side = 0;
      o->active_pos = o->active_end = 0;
      o->region_active = 2;
      /* The next ring waits its turn; the region is done after the
       * last. */
      if (++s->ring >= rings_end (o->regions.shift))
        s->done = 1;
      else
        region_push (o, o->region_of[top.idx]);
      continue;
    }
    s->done = 1;
    o->active_pos = o->region_of[top.idx] << o->regions.shift;
    o->active_end = o->active_pos + (1ULL << o->regions.shift);
    if (o->active_end > o->nblocks)
      o->active_end = o->nblocks;
    o->region_active = 1;
  }
}

/* History blocks first, or never-seen ones?  Compare what a pulled block
 * is worth: a history block is touched again with the model's retouch
 * rate; a never-seen block near the history's regions with the expected
 * number of new blocks over the number of such blocks still to copy.
 * That number is probed through IS_PRESENT before anything was pulled:
 * on a sparse source most of the volume is holes, nothing to copy, and
 * never-seen blocks that do hold data are then a much better bet. */
#define PROBES 4096

static int
new_blocks_first (const struct order *o, block_present_fn is_present,
                  void *ctx)
{
  const struct model *m = o->model;
  const unsigned shift = o->regions.shift;
  uint64_t x = 0x9E3779B97F4A7C15ULL;
  size_t sampled = 0, absent = 0;
  double to_copy;

  if (m->ncandidates == 0)
    return 0;
  for (int i = 0; i < PROBES; i++) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    uint64_t region = m->candidates[(x >> 33) % m->ncandidates].unit;
    uint64_t b = (region << shift) + (x >> 11) % (1ULL << shift);
    if (b >= o->nblocks || u64map_get (&m->blocks.index, b) != U64MAP_NONE)
      continue;
    sampled++;
    absent += !is_present (ctx, b);
  }
  if (sampled == 0)
    return 0;
  to_copy = (double) absent / sampled * m->ncandidates * (1ULL << shift);
  return m->expected_new_blocks / (to_copy + 1) > m->retouch_rate;
}

/* History blocks first: a region that is pulled in rings pulls its own
 * history blocks (ring 0), so the list keeps only the others: those of
 * regions pulled by sub-bins. */
static void
list_keep_unringed (struct order *o)
{
  size_t n = 0;

  for (size_t i = 0; i < o->nlist; i++) {
    uint32_t idx = u64map_get (&o->region_index,
                               o->list[i] >> o->regions.shift);
    if (idx != U64MAP_NONE && o->region_state[idx].ncenters > 0 &&
        !in_subs (o, idx))
      continue;
    o->list[n++] = o->list[i];
  }
  o->nlist = n;
}

static void
choose_sources (struct order *o, block_present_fn is_present, void *ctx)
{
  o->probed = 1;
  o->new_first = new_blocks_first (o, is_present, ctx);
  if (!o->new_first) {
    list_keep_unringed (o);
    return;
  }
  /* Never-seen blocks first: the history blocks wait in the list, after
   * them, so the regions start at ring 1.  A good region's never-seen
   * blocks that hold data are then nearly all read: its best sub-bins
   * first would only delay the rest of it (TPC-C sparse, ratio 1: 758
   * stalls with sub-bins, 701 without). */
  free (o->sub_p);
  o->sub_p = NULL;
  for (size_t i = 0; i < o->nregion_state; i++) {
    if (o->region_state[i].ring == 0)
      o->region_state[i].ring = 1;
    region_push (o, o->region_of[i]);
  }
}

static int
next_from_bursts (struct order *o, block_present_fn is_present, void *ctx,
                  uint64_t *block)
{
  for (;;) {
    while (o->burst_active.pos < o->burst_active.end) {
      uint64_t b = o->burst_active.pos++;
      if (!is_present (ctx, b)) {
        *block = b;
        return 1;
      }
    }
    if (o->nburst == 0)
      return 0;
    o->burst_active = o->burst[--o->nburst];
  }
}

static int
next_one (struct order *o, block_present_fn is_present, void *ctx,
          uint64_t *block)
{
  while (o->nurgent > 0) {
    uint64_t b = o->urgent[--o->nurgent];
    if (!is_present (ctx, b)) {
      *block = b;
      return 1;
    }
  }
  if (next_from_bursts (o, is_present, ctx, block))
    return 1;
  if (o->new_first && next_from_regions (o, is_present, ctx, block))
    return 1;
  while (o->list_pos < o->nlist) {
    uint64_t b = o->list[o->list_pos++];
    if (b < o->nblocks && !is_present (ctx, b)) {
      *block = b;
      return 1;
    }
  }
  if (o->policy == PREDICT && next_from_regions (o, is_present, ctx, block))
    return 1;
  while (o->sweep_pos < o->nblocks) {
    uint64_t b = o->sweep_pos++;
    if (!is_present (ctx, b)) {
      *block = b;
      return 1;
    }
  }
  return 0;
}

size_t
order_next (struct order *o, uint64_t *blocks, size_t max,
            block_present_fn is_present, void *ctx)
{
  size_t n = 0;

  if (o->policy == NONE)
    return 0;
  if (o->policy == PREDICT) {
    if (!o->probed)
      choose_sources (o, is_present, ctx);
    rescore_stale (o);
  }
  while (n < max && next_one (o, is_present, ctx, &blocks[n])) {
    /* Sources overlap (a predicted block may also be in the history
     * list): never offer a block twice in one batch. */
    size_t i = 0;
    while (i < n && blocks[i] != blocks[n])
      i++;
    n += i == n;
  }
  o->offered += n;
  return n;
}
