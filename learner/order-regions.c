/* order-regions.c: the region/ring model of the pull order (order.h's
 * STRATEGY_REGIONS) and the sequence model's predictions
 * (STRATEGY_SEQUENCE).
 *
 * Sources, tried in turn by regions_next, each skipping blocks already
 * present:
 *   bursts     the chunks around the stalls of a region that stalls
 *              again and again (burst_observe)
 *   list       the history blocks by block-ranker score, only those no
 *              region pulls (regions_start)
 *   regions    a max-heap of regions by libsvm probability x activity.
 *              A region is pulled in rings: first its history blocks
 *              themselves, then its never-seen blocks around its touched
 *              blocks (history and online), nearest first, each ring
 *              scored by how much likelier the history says its distance
 *              is (ring_fit); a block touched online restarts its
 *              region's rings.  Observed requests update the regions'
 *              statistics; a region that stalls the guest (a missed
 *              prediction) or gets a new block is re-pushed with its new
 *              activity at once, and re-scored by the ranker (deferred to
 *              regions_prepare) when its activity doubles, so the
 *              remaining queue re-ranks incrementally (stale heap entries
 *              are dropped when popped).  Comes before the list on a
 *              sparse source (regions_start).
 * sequence_next serves the urgent stack: the blocks the sequence model
 * expects next, newest first, refilled on every observed request;
 * neighbours_next the neighbours of the latest stall.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "order-impl.h"
#include "seqtape.h"

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
uint32_t
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

void
ring_bounds (uint32_t j, uint64_t *lo, uint64_t *hi)
{
  *lo = j <= 1 ? j : (1ULL << (j - 2)) + 1;
  *hi = j == 0 ? 0 : 1ULL << (j - 1);
}

uint32_t
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
uint32_t
rings_end (unsigned shift)
{
  return shift + 2 < RINGS ? shift + 2 : RINGS;
}

uint32_t
abin (uint32_t n)
{
  uint32_t a = 0;
  while (a + 1 < ABINS && (2ULL << a) <= n + 1ULL)
    a++;
  return a;
}

/* Add OFF to the region's touched blocks (kept ascending).  0 if it was
 * there already, -1 on out of memory. */
int
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
 * how busy it is (history, growth_fit, plus what the guest did since),
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
  return s->ncenters ? o->model->fit.ring_p[s->ring][abin (s->ncenters)] : 1;
}

void
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
  s->score = fmaxf (s->p, MIN_REGION_P) * activity * region_factor (o, idx);
  heap_push (o, idx, s->score);
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
  o->region_state[idx].stale = true;
  o->stale[o->nstale++] = idx;
}

static void
rescore_stale (struct order *o)
{
  while (o->nstale > 0) {
    uint32_t idx = o->stale[--o->nstale];
    o->region_state[idx].stale = false;
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
int
regions_init (struct order *o)
{
  const struct model *m = o->model;
  double far[NFEATURES];

  o->seq = malloc (sizeof *o->seq);
  if (!o->seq || copy_history (&o->regions, &m->regions) == -1 ||
      build_list (o, LIST_MODEL) == -1)
    return -1;
  *o->seq = m->seq;
  /* Start from a clean context: the same model always behaves the same,
   * whether freshly trained or loaded. */
  o->seq->have_last = 0;
  o->seq->ngram.prev1 = o->seq->ngram.prev2 = 0;
  o->seq->gru.started = 0;

  features_of (&(struct history) { .t_begin = 0, .t_end = 1 }, 0, far);
  o->region_threshold = (float) ranker_score (&m->region_ranker, far);
  if (centers_init (o) == -1)
    return -1;
  for (size_t i = 0; i < m->regions.n; i++) {
    uint32_t idx = u64map_get (&o->region_index, m->regions.units[i].unit);
    if (idx != U64MAP_NONE)
      o->region_state[idx].growth = m->fit.growth[i];
  }
  o->period = m->fit.period;
  o->sub_rank = m->fit.sub_rank;
  o->sub_p = m->fit.sub_p;
  for (size_t i = 0; i < m->ncandidates; i++)
    region_set_p (o, m->candidates[i].unit, m->candidates[i].score);
  /* Regions with touched blocks but no candidate entry still get rings. */
  for (size_t i = 0; i < o->nregion_state; i++)
    if (o->region_state[i].version == 0)
      region_push (o, o->region_of[i]);
  add_twins (o);
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
  bool is_seq = first == o->prev_last || first == o->prev_last + 1;
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
regions_observe (struct order *o, uint64_t now_us, uint64_t first,
                 uint64_t last, bool is_write, bool was_hit)
{
  uint64_t blocks[SEQ_TOPK], ts;
  int n;

  if (!o->clock_started) {
    o->clock_base = now_us;
    o->clock_started = true;
  }
  /* Online time continues where the history ended. */
  ts = o->model->blocks.t_end + (now_us - o->clock_base);
  observe_regions (o, ts, first, last, is_write, was_hit);
  o->prev_last = last;

  /* A stall means the guest went where nothing predicted: its
   * neighbours are the likeliest next new blocks, pulled before any
   * strategy's (a reaction, not a prediction: whatever the blend). */
  if (!was_hit) {
    o->nneighbours = 0;
    for (uint64_t d = STALL_RADIUS; d >= 1; d--) {
      if (last + d < o->nblocks)
        o->neighbours[o->nneighbours++] = last + d;
      if (first >= d)
        o->neighbours[o->nneighbours++] = first - d;
    }
  }
  n = seq_tape_step (o->tape, o->observed++, o->tape_played, o->seq, first,
                     last, blocks);
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
        s->done = true;
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
        s->done = true;
      else
        region_push (o, o->region_of[top.idx]);
      continue;
    }
    s->done = true;
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

static bool
new_blocks_first (const struct order *o, block_present_fn is_present,
                  void *ctx)
{
  const struct model *m = o->model;
  const unsigned shift = o->regions.shift;
  uint64_t x = 0x9E3779B97F4A7C15ULL;
  size_t sampled = 0, absent = 0;
  double to_copy;

  if (m->ncandidates == 0)
    return false;
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
    return false;
  to_copy = (double) absent / sampled * m->ncandidates * (1ULL << shift);
  return m->expected_new_blocks / (to_copy + 1) > m->retouch_rate;
}

/* History blocks first: a region that is pulled in rings pulls its own
 * history blocks (ring 0), so the list keeps only the others: those of
 * regions pulled by sub-bins. */
static void
list_keep_unringed (struct order *o)
{
  struct block_list *l = &o->list[LIST_MODEL];
  size_t n = 0;

  for (size_t i = 0; i < l->n; i++) {
    uint32_t idx = u64map_get (&o->region_index, l->v[i] >> o->regions.shift);
    if (idx != U64MAP_NONE && o->region_state[idx].ncenters > 0 &&
        !in_subs (o, idx))
      continue;
    l->v[n++] = l->v[i];
  }
  l->n = n;
}

void
regions_start (struct order *o, block_present_fn is_present, void *ctx)
{
  o->probed = true;
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
  o->sub_p = NULL;
  for (size_t i = 0; i < o->nregion_state; i++) {
    if (o->region_state[i].ring == 0)
      o->region_state[i].ring = 1;
    region_push (o, o->region_of[i]);
  }
}

static bool
next_from_bursts (struct order *o, block_present_fn is_present, void *ctx,
                  uint64_t *block)
{
  for (;;) {
    while (o->burst_active.pos < o->burst_active.end) {
      uint64_t b = o->burst_active.pos++;
      if (!is_present (ctx, b)) {
        *block = b;
        return true;
      }
    }
    if (o->nburst == 0)
      return false;
    o->burst_active = o->burst[--o->nburst];
  }
}

void
regions_prepare (struct order *o)
{
  rescore_stale (o);
}

/* The region model's next block: bursts, then (on a sparse source) the
 * regions' never-seen blocks, then the history blocks no region pulls,
 * then the regions. */
bool
regions_next (struct order *o, block_present_fn is_present, void *ctx,
              uint64_t *block)
{
  struct block_list *l = &o->list[LIST_MODEL];

  if (next_from_bursts (o, is_present, ctx, block))
    return true;
  if (o->new_first && next_from_regions (o, is_present, ctx, block))
    return true;
  while (l->pos < l->n) {
    uint64_t b = l->v[l->pos++];
    if (b < o->nblocks && !is_present (ctx, b)) {
      *block = b;
      return true;
    }
  }
  return next_from_regions (o, is_present, ctx, block);
}

/* Pop STACK (N entries) down to a block not present. */
static bool
stack_next (const uint64_t *stack, size_t *n, block_present_fn is_present,
            void *ctx, uint64_t *block)
{
  while (*n > 0) {
    uint64_t b = stack[--*n];
    if (!is_present (ctx, b)) {
      *block = b;
      return true;
    }
  }
  return false;
}

bool
neighbours_next (struct order *o, block_present_fn is_present, void *ctx,
                 uint64_t *block)
{
  return stack_next (o->neighbours, &o->nneighbours, is_present, ctx, block);
}

bool
sequence_next (struct order *o, block_present_fn is_present, void *ctx,
               uint64_t *block)
{
  return stack_next (o->urgent, &o->nurgent, is_present, ctx, block);
}

/* Would the region model pull BLOCK soon?  Its region is waiting in the
 * heap with a priority near the best one's (a blunt measure: the heap
 * does not say when a block's ring comes). */
#define SOON_FRACTION 0.25f

bool
regions_would_pull (const struct order *o, uint64_t block)
{
  uint32_t idx = u64map_get (&o->region_index, block >> o->regions.shift);
  const struct region_state *s;

  if (idx == U64MAP_NONE || o->nheap == 0)
    return false;
  s = &o->region_state[idx];
  return !s->done && s->score >= SOON_FRACTION * o->heap[0].score;
}

void
regions_free (struct order *o)
{
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
}
