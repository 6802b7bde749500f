/* order.c: the pull-order policies of order.h, and the portfolio behind
 * predict.
 *
 * Every policy is a set of strategies followed by the sweep (ascending
 * order over the whole volume: everything is eventually copied whatever
 * the predictions were).  frequency and first-access follow one block
 * list; predict interleaves all the strategies of model.h by weight
 * (stride scheduling: each pull goes to the strategy furthest behind
 * its share), starting from the blend train chose for the kind of
 * source (dense or sparse, probed at the first order_next), and the
 * bandit moves the weights towards the strategies whose pulls the guest
 * uses and whose foresight would have saved its stalls.  Strategies
 * skip blocks already present or in flight, so a block one of them
 * pulled is never pulled again by another.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "order-impl.h"
#include "seqtape.h"

#define FILTER_ENTRY(name, model, what) { name, model, false, what },
#define SIMULATOR_ENTRY(name, model, what) { name, model, true, what },
const struct order_policy order_policy_table[] = {
  ORDER_FILTER_POLICIES (FILTER_ENTRY)
  ORDER_SIMULATOR_POLICIES (SIMULATOR_ENTRY)
  { NULL }
};

const char *const strategy_names[NSTRATEGIES] = {
  "regions", "sequence", "first-access", "frequency", "sequential"
};

const struct order_policy *
order_policy_find (const char *name)
{
  for (const struct order_policy *p = order_policy_table; p->name; p++)
    if (strcmp (p->name, name) == 0)
      return p;
  return NULL;
}

const char *
order_policy_names (char *buf, size_t len, bool with_simulator_only)
{
  size_t at = 0;

  buf[0] = '\0';
  for (const struct order_policy *p = order_policy_table; p->name; p++) {
    int n;
    if (p->simulator_only && !with_simulator_only)
      continue;
    n = snprintf (buf + at, len - at, "%s%s", at ? ", " : "", p->name);
    if (n < 0 || (size_t) n >= len - at)
      break;
    at += n;
  }
  return buf;
}

/* ---- ranked history lists ---- */

struct ranked { uint64_t block; double key1, key2; uint32_t unit; };

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

/* The model's history blocks, best first for KIND, and each one's rank. */
int
build_list (struct order *o, enum list_kind kind)
{
  const struct history *h = &o->model->blocks;
  struct block_list *l = &o->list[kind];
  struct ranked *r = malloc ((h->n + 1) * sizeof *r);

  l->v = malloc ((h->n + 1) * sizeof *l->v);
  l->rank_of = malloc ((h->n + 1) * sizeof *l->rank_of);
  if (!r || !l->v || !l->rank_of) {
    free (r);
    return -1;
  }
  for (size_t i = 0; i < h->n; i++) {
    const struct unit_stat *u = &h->units[i];
    r[i].block = u->unit;
    r[i].unit = (uint32_t) i;
    switch (kind) {
    case LIST_FREQUENCY:
      r[i].key1 = u->count;
      r[i].key2 = -(double) u->first_ts;
      break;
    case LIST_FIRST_ACCESS:
      r[i].key1 = -(double) u->first_ts;
      r[i].key2 = -(double) i;
      break;
    default:                    /* LIST_MODEL */
      r[i].key1 = o->model->block_scores[i];
      r[i].key2 = u->count;
      break;
    }
  }
  /* The units are kept in the order they were first touched, so the
   * first-access list is that order unless the trace's clock went back:
   * no sort then (train's replays build this list a hundred times). */
  bool in_order = kind == LIST_FIRST_ACCESS;
  for (size_t i = 1; in_order && i < h->n; i++)
    in_order = r[i].key1 <= r[i - 1].key1;
  if (!in_order)
    qsort (r, h->n, sizeof *r, by_keys);
  for (size_t i = 0; i < h->n; i++) {
    l->v[i] = r[i].block;
    l->rank_of[r[i].unit] = (uint32_t) i;
    if (kind == LIST_FIRST_ACCESS && r[i].key1 == r[0].key1)
      o->first_request_blocks = i + 1;
  }
  l->n = h->n;
  free (r);
  return 0;
}

static bool
list_next (struct order *o, enum list_kind kind, block_present_fn is_present,
           void *ctx, uint64_t *block)
{
  struct block_list *l = &o->list[kind];

  while (l->pos < l->n) {
    uint64_t b = l->v[l->pos++];
    if (b < o->nblocks && !is_present (ctx, b)) {
      *block = b;
      return true;
    }
  }
  return false;
}

static bool
sweep_next (struct order *o, block_present_fn is_present, void *ctx,
            uint64_t *block)
{
  while (o->sweep_pos < o->nblocks) {
    uint64_t b = o->sweep_pos++;
    if (!is_present (ctx, b)) {
      *block = b;
      return true;
    }
  }
  return false;
}

/* ---- the portfolio ---- */

static bool
strategy_next (struct order *o, int k, block_present_fn is_present,
               void *ctx, uint64_t *block)
{
  switch (k) {
  case STRATEGY_REGIONS:
    return regions_next (o, is_present, ctx, block);
  case STRATEGY_SEQUENCE:
    return sequence_next (o, is_present, ctx, block);
  case STRATEGY_FIRST_ACCESS:
    return list_next (o, LIST_FIRST_ACCESS, is_present, ctx, block);
  case STRATEGY_FREQUENCY:
    return list_next (o, LIST_FREQUENCY, is_present, ctx, block);
  default:
    return sweep_next (o, is_present, ctx, block);
  }
}

/* Can strategy K offer a block now?  The sequence model's stack empties
 * and refills; the others are done for good once they had nothing. */
static bool
eligible (const struct order *o, int k)
{
  return o->uses[k] && !o->exhausted[k] && o->weight[k] > 0
    && (k != STRATEGY_SEQUENCE || o->nurgent > 0);
}

/* The next block and the strategy that chose it. */
static bool
next_one (struct order *o, block_present_fn is_present, void *ctx,
          uint64_t *block, int *by)
{
  if (o->policy == POLICY_ORACLE &&
      list_next (o, LIST_ORACLE, is_present, ctx, block)) {
    *by = STRATEGY_SEQUENTIAL;
    return true;
  }
  /* The guest's first request comes when nothing is local yet, and a
   * guest that starts again (a boot) repeats its history's first one:
   * its blocks go first, whatever the blend (else the request waits for
   * the source, e.g. QEMU's probe of block 0 while the regions pull). */
  if (o->list[LIST_FIRST_ACCESS].pos < o->first_request_blocks &&
      list_next (o, LIST_FIRST_ACCESS, is_present, ctx, block)) {
    *by = STRATEGY_FIRST_ACCESS;
    return true;
  }
  if (o->uses[STRATEGY_SEQUENCE] &&
      neighbours_next (o, is_present, ctx, block)) {
    *by = STRATEGY_SEQUENCE;
    return true;
  }
  for (;;) {
    double total = 0;
    int best = -1;

    for (int k = 0; k < NSTRATEGIES; k++) {
      if (!eligible (o, k))
        continue;
      o->credit[k] += o->weight[k];
      total += o->weight[k];
      if (best == -1 || o->credit[k] > o->credit[best])
        best = k;
    }
    if (best == -1)
      break;
    o->credit[best] -= total;
    if (strategy_next (o, best, is_present, ctx, block)) {
      *by = best;
      return true;
    }
    if (best != STRATEGY_SEQUENCE)
      o->exhausted[best] = true;
  }
  *by = STRATEGY_SEQUENTIAL;
  return sweep_next (o, is_present, ctx, block);
}

static size_t
pulled_slot (uint64_t block)
{
  return (block * 0x9E3779B97F4A7C15ULL) >> (64 - PULLED_BITS);
}

/* Is the source sparse?  Probed through IS_PRESENT before anything was
 * pulled: on a sparse source most of the volume is holes, nothing to
 * copy. */
#define PROBES 1024

static enum source_kind
probe_source (const struct order *o, block_present_fn is_present, void *ctx)
{
  uint64_t x = 0x2545F4914F6CDD1DULL;
  size_t absent = 0;

  for (int i = 0; i < PROBES; i++) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    absent += !is_present (ctx, (x >> 11) % o->nblocks);
  }
  return absent * 2 < PROBES ? SOURCE_SPARSE : SOURCE_DENSE;
}

static void
update_weights (struct order *o)
{
  for (int k = 0; k < NSTRATEGIES; k++)
    o->weight[k] = bandit_weight (&o->bandit, k);
}

/* A guest doing its history's work again needs the history's blocks at
 * the pace it needed them.  When the link pulls less than SLOW_LINK
 * times the history's new blocks per second at its busiest, it cannot
 * keep ahead of the guest's bursts, whatever it pulls first: each block
 * the guest asks for waits in the queue of demand fetches, and every
 * request touching it meanwhile stalls too.  What a pull saves then is
 * the requests that touch its block, so the blocks touched most take
 * most of the pulls (frequency, SLOW_FREQUENCY times the blend's other
 * shares together); the rest keep the blend's order, which serves the
 * reads of the guest's quieter stretches (before a burst the link may
 * yet pull all it needs).  The bandit holds still meanwhile: its
 * evidence, stalls on blocks a strategy would have pulled soon, favours
 * the order of first need, which such a link cannot follow.  The
 * busiest stretch is BURST_WINDOW_US long (the history's span if
 * shorter, at least a second); the link's pace is the most order_next
 * gave out over a LINK_WINDOW_US window, its capacity, as demand
 * fetches take the link from the pulls while the guest is busy. */
#define SLOW_LINK 0.1
#define SLOW_FREQUENCY 3
#define BURST_WINDOW_US 10000000
#define LINK_WINDOW_US 2000000

static double
burst_rate_of (const struct history *h)
{
  uint64_t span = h->n ? h->units[h->n - 1].first_ts - h->units[0].first_ts
    : 0;
  uint64_t window = span < BURST_WINDOW_US ? span : BURST_WINDOW_US;
  size_t most = 0;

  if (window < 1000000)
    window = 1000000;
  /* units are in first-access order: first_ts ascends. */
  for (size_t lo = 0, hi = 0; hi < h->n; hi++) {
    while (h->units[hi].first_ts - h->units[lo].first_ts >= window)
      lo++;
    if (hi - lo + 1 > most)
      most = hi - lo + 1;
  }
  return most * 1e6 / (double) window;
}

static bool
link_too_slow (const struct order *o)
{
  return o->future == FUTURE_RERUN && o->link_rate > 0 &&
    o->link_rate < SLOW_LINK * o->burst_rate;
}

static const float *
blend_to_follow (struct order *o)
{
  const float *blend = o->model->blend[o->source][o->future];
  float total = 0;

  if (!link_too_slow (o))
    return blend;
  for (int k = 0; k < NSTRATEGIES; k++)
    total += blend[k];
  memcpy (o->slow_blend, blend, sizeof o->slow_blend);
  o->slow_blend[STRATEGY_FREQUENCY] = fmaxf (blend[STRATEGY_FREQUENCY],
                                             SLOW_FREQUENCY * total);
  return o->slow_blend;
}

/* The bandit, from BLEND (holding still while the link is too slow). */
static void
start_bandit (struct order *o, const float *blend)
{
  memcpy (o->followed, blend, sizeof o->followed);
  bandit_init (&o->bandit, blend, o->uses, o->adapt && !link_too_slow (o));
  update_weights (o);
}

/* The guest's work or the link's pace changed what to follow: the
 * bandit starts afresh from the new blend (an equal one keeps its
 * record). */
static void
follow_blend (struct order *o)
{
  const float *blend = blend_to_follow (o);

  if (o->started && memcmp (blend, o->followed, sizeof o->followed) != 0)
    start_bandit (o, blend);
}

/* The first window is not measured: the engine fills its window of
 * pulls in flight at once. */
static void
measure_link (struct order *o, uint64_t now_us)
{
  if (o->link_windows > 0 && now_us >= o->link_window_us &&
      now_us - o->link_window_us < LINK_WINDOW_US)
    return;
  if (o->link_windows > 1 && now_us >= o->link_window_us) {
    o->link_rate = fmax (o->link_rate, (o->offered - o->link_window_offered)
                         * 1e6 / (double) (now_us - o->link_window_us));
    follow_blend (o);
  }
  if (o->link_windows < 2)
    o->link_windows++;
  o->link_window_us = now_us;
  o->link_window_offered = o->offered;
}

/* At the first order_next: the blend for this kind of source. */
static void
portfolio_start (struct order *o, block_present_fn is_present, void *ctx)
{
  static const float sequential[NSTRATEGIES] = { [STRATEGY_SEQUENTIAL] = 1 };
  static const float frequency[NSTRATEGIES] = { [STRATEGY_FREQUENCY] = 1 };
  static const float first[NSTRATEGIES] = { [STRATEGY_FIRST_ACCESS] = 1 };
  static const float regions[NSTRATEGIES] = {
    [STRATEGY_REGIONS] = 1, [STRATEGY_SEQUENCE] = 4
  };
  const float *blend = sequential;

  if (o->policy == POLICY_FREQUENCY)
    blend = frequency;
  else if (o->policy == POLICY_FIRST_ACCESS)
    blend = first;
  else if (o->policy == POLICY_REGIONS)
    blend = regions;
  else if (o->policy == POLICY_PREDICT || o->policy == POLICY_PREDICT_FIXED) {
    o->source = probe_source (o, is_present, ctx);
    blend = blend_to_follow (o);
  }
  if (o->uses[STRATEGY_REGIONS])
    regions_start (o, is_present, ctx);
  start_bandit (o, blend);
  o->started = true;
}

/* ---- order.h ---- */

struct order *
order_new (const char *name, const struct model *model, uint64_t nblocks,
           uint64_t block_size, char *err)
{
  const struct order_policy *p = order_policy_find (name);
  struct order *o;
  char names[256];

  if (!p) {
    snprintf (err, LEARNER_ERRLEN, "unknown policy \"%.50s\" (one of %s)",
              name, order_policy_names (names, sizeof names, true));
    return NULL;
  }
  if (p->needs_model && !model) {
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
  o->policy = (enum policy) (p - order_policy_table);
  o->model = model;
  o->nblocks = nblocks;
  o->block_size = block_size;
  o->uses[STRATEGY_SEQUENTIAL] = o->policy != POLICY_NONE;
  switch (o->policy) {
  case POLICY_FREQUENCY:
    o->uses[STRATEGY_FREQUENCY] = true;
    break;
  case POLICY_FIRST_ACCESS:
    o->uses[STRATEGY_FIRST_ACCESS] = true;
    break;
  case POLICY_PREDICT:
    o->adapt = true;
    /* fall through */
  case POLICY_PREDICT_FIXED:
    o->uses[STRATEGY_FIRST_ACCESS] = o->uses[STRATEGY_FREQUENCY] = true;
    /* fall through */
  case POLICY_REGIONS:
    o->uses[STRATEGY_REGIONS] = o->uses[STRATEGY_SEQUENCE] = true;
    break;
  default:
    break;
  }
  if ((o->uses[STRATEGY_FREQUENCY] &&
       build_list (o, LIST_FREQUENCY) == -1) ||
      (o->uses[STRATEGY_FIRST_ACCESS] &&
       build_list (o, LIST_FIRST_ACCESS) == -1) ||
      (o->uses[STRATEGY_REGIONS] && regions_init (o) == -1))
    goto oom;
  if (o->adapt) {
    o->burst_rate = burst_rate_of (&model->blocks);
    o->pulled = calloc (1ULL << PULLED_BITS, sizeof *o->pulled);
    if (!o->pulled)
      goto oom;
  }
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
  for (int i = 0; i < NLISTS; i++) {
    free (o->list[i].v);
    free (o->list[i].rank_of);
  }
  free (o->pulled);
  if (o->uses[STRATEGY_REGIONS])
    regions_free (o);
  free (o);
}

int
order_seed (struct order *o, const uint64_t *blocks, size_t n)
{
  struct block_list *l = &o->list[LIST_ORACLE];

  if (o->policy != POLICY_ORACLE)
    return -1;
  free (l->v);
  l->v = malloc ((n + 1) * sizeof *l->v);
  if (!l->v)
    return -1;
  memcpy (l->v, blocks, n * sizeof *blocks);
  l->n = n;
  l->pos = 0;
  return 0;
}

/* Would strategy K pull BLOCK within its next SOON blocks? */
static bool
would_pull (const struct order *o, int k, uint64_t block, uint64_t soon)
{
  const struct block_list *l;
  uint32_t u;
  uint64_t horizon;

  switch (k) {
  case STRATEGY_REGIONS:
    return regions_would_pull (o, block);
  case STRATEGY_FIRST_ACCESS:
  case STRATEGY_FREQUENCY:
    l = &o->list[k == STRATEGY_FREQUENCY ? LIST_FREQUENCY : LIST_FIRST_ACCESS];
    u = u64map_get (&o->model->blocks.index, block);
    horizon = l->pos + soon;
    return u != U64MAP_NONE && l->rank_of[u] >= l->pos &&
      l->rank_of[u] < horizon;
  case STRATEGY_SEQUENTIAL:
    horizon = o->sweep_pos + soon;
    return block >= o->sweep_pos && block < horizon;
  default:
    return false;
  }
}

/* "Soon": what the link pulled in the last SOON_US, at least MIN_SOON
 * blocks. */
#define SOON_US 1000000.0
#define MIN_SOON 64
/* A long request is credited by its first blocks only: the guest's path
 * stays cheap. */
#define CREDIT_BLOCKS 64

/* Is the guest doing its history's work again?  One that reruns the
 * history starts every request on a history block, one where the
 * history goes on starts the model's goes_on_repeat share g of them
 * there.  Each request moves the evidence by its distance from the
 * midpoint (1 if on a history block, 0 if not, less (1 + g) / 2), held
 * within three standard errors of the sum over a window of
 * FUTURE_WINDOW requests (at least one request's step).  The first
 * judgement comes as soon as the evidence leans either way: the guest's
 * first requests may be seconds apart, and the link pulls all that
 * time.  Later the blend changes only when the evidence reaches the
 * other bound, so a guest whose work changes turns it within about a
 * window, and a guest near the middle does not swing it (and throw the
 * bandit's record away) at every request.  When g lies so near 1 that a
 * window cannot tell the two apart (1 - g < 3 sqrt (g (1 - g) / n),
 * i.e. g > n / (n + 9)), the blend for either stays.  A change of blend
 * starts the bandit afresh from the new one. */
#define FUTURE_WINDOW 64

static void
follow_future (struct order *o, bool on_history)
{
  enum future_kind f;
  double g = o->model->goes_on_repeat;
  double bound = fmax (3 * sqrt (FUTURE_WINDOW * g * (1 - g)), (1 - g) / 2);

  if (g > FUTURE_WINDOW / (FUTURE_WINDOW + 9.0))
    return;
  o->future_evidence += (on_history ? 1 : 0) - (1 + g) / 2;
  o->future_evidence = fmax (-bound, fmin (bound, o->future_evidence));
  if (o->future_evidence == 0)
    return;
  f = o->future_evidence > 0 ? FUTURE_RERUN : FUTURE_EITHER;
  if (f == o->future || (o->future_judged &&
                         fabs (o->future_evidence) < bound))
    return;
  o->future_judged = true;
  o->future = f;
  follow_blend (o);             /* before the start, portfolio_start does */
}

/* The strategies' record: a pulled block the guest touches is a hit for
 * the strategy that pulled it; a stall on a block another strategy would
 * have pulled soon counts for that one. */
static void
portfolio_observe (struct order *o, uint64_t now_us, uint64_t first,
                   uint64_t last, bool was_hit)
{
  uint64_t end = last - first < CREDIT_BLOCKS ? last : first + CREDIT_BLOCKS;

  if (!o->clock_started)
    return;                     /* regions_observe set the clock */
  follow_future (o, u64map_get (&o->model->blocks.index, first)
                 != U64MAP_NONE);
  for (uint64_t b = first; b <= end; b++) {
    struct pulled *p = &o->pulled[pulled_slot (b)];
    if (p->block == b + 1) {
      bandit_hit (&o->bandit, p->strategy);
      p->block = 0;
    }
  }
  if (!was_hit && o->started) {
    double elapsed = (double) (now_us - o->clock_base);
    uint64_t soon = elapsed > 0 ? (uint64_t) (o->offered * SOON_US / elapsed)
      : MIN_SOON;
    if (soon < MIN_SOON)
      soon = MIN_SOON;
    for (int k = 0; k < NSTRATEGIES; k++)
      if (o->uses[k] && would_pull (o, k, first, soon))
        bandit_miss (&o->bandit, k);
  }
  if (o->started && bandit_tick (&o->bandit, now_us))
    update_weights (o);
}

void
order_use_tape (struct order *o, struct seq_tape *t)
{
  o->tape = t;
  o->tape_played = t->n > 0;
}

void
order_observe (struct order *o, uint64_t now_us, uint64_t first,
               uint64_t last, bool is_write, bool was_hit)
{
  if (!o->uses[STRATEGY_REGIONS])
    return;
  regions_observe (o, now_us, first, last, is_write, was_hit);
  /* A stall or a new block may have given the regions work again. */
  o->exhausted[STRATEGY_REGIONS] = false;
  if (o->adapt)
    portfolio_observe (o, now_us, first, last, was_hit);
}

size_t
order_next (struct order *o, uint64_t now_us, uint64_t *blocks, size_t max,
            block_present_fn is_present, void *ctx)
{
  size_t n = 0;
  int by;

  if (o->policy == POLICY_NONE)
    return 0;
  if (!o->started)
    portfolio_start (o, is_present, ctx);
  if (o->adapt)
    measure_link (o, now_us);
  if (o->uses[STRATEGY_REGIONS])
    regions_prepare (o);
  while (n < max && next_one (o, is_present, ctx, &blocks[n], &by)) {
    /* Sources overlap (a predicted block may also be in the history
     * list): never offer a block twice in one batch. */
    size_t i = 0;
    while (i < n && blocks[i] != blocks[n])
      i++;
    if (i < n)
      continue;
    if (o->adapt) {
      o->pulled[pulled_slot (blocks[n])] = (struct pulled) {
        .block = blocks[n] + 1, .strategy = (uint8_t) by
      };
      bandit_pulled (&o->bandit, by);
    }
    n++;
  }
  o->offered += n;
  return n;
}
