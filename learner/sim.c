/* sim.c: the simulator of the standard scenario.
 *
 * Time model.  The link carries one block every xfer = block_size /
 * bandwidth seconds.  The background copy keeps it busy back to back (the
 * engine's in-flight window hides the RTT from the throughput, not from
 * the latency): the pull whose transfer starts at T was chosen at T - RTT,
 * knowing only the requests issued before then, and is in flight (not yet
 * usable, but no longer offered by the order) until T + xfer.  A read
 * touching blocks that are not present is one stall, lasting until the
 * last of them arrives: absent blocks are demand-fetched (queued behind
 * earlier demand fetches, taking the link from the background for their
 * transfer, arriving after transfer + RTT); blocks already in flight, by
 * a pull or an earlier demand fetch, are waited for.  Writes, trims and
 * zeroes never stall; blocks they cover entirely become present without a
 * fetch, and in blocks they cover in part, the 512-byte sectors they
 * touch are the guest's: a read wholly inside such sectors needs nothing
 * from the source (the filter keeps the same sector masks).  The guest
 * is open-loop: stalls never delay later requests.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "array.h"
#include "bits.h"
#include "clock.h"
#include "order.h"
#include "sim.h"
#include "u64map.h"

/* Pulls are chosen BATCH at a time, but no more than the link carries
 * in BATCH_SPAN_S: on a slow link a batch of 64 would be chosen tens of
 * seconds before its last pull starts, blind to the guest meanwhile
 * (the filter chooses one at a time). */
#define BATCH 64
#define BATCH_SPAN_S 0.1

static uint64_t *
bitmap_new (uint64_t nbits)
{
  return calloc (nbits / 64 + 1, sizeof (uint64_t));
}

int
sim_prepare (struct sim_scenario *s, const struct trace *history,
             const struct trace *future, const struct sim_config *cfg,
             char *err)
{
  const uint64_t bs = cfg->block_size;
  uint64_t vh, vf;
  uint64_t *seen = NULL;
  size_t oracle_cap = future->n + 1;

  memset (s, 0, sizeof *s);
  if (!learner_block_size_ok (bs)) {
    snprintf (err, LEARNER_ERRLEN, "block size %llu is not a power of two "
              "from %d to %llu", (unsigned long long) bs,
              LEARNER_MIN_BLOCK_SIZE,
              (unsigned long long) LEARNER_MAX_BLOCK_SIZE);
    return -1;
  }
  vh = trace_volume (history, bs);
  vf = trace_volume (future, bs);
  if ((vh > vf ? vh : vf) / bs > SIM_MAX_BLOCKS) {
    snprintf (err, LEARNER_ERRLEN, "the volume (%llu bytes) is more than "
              "%llu blocks of %llu bytes: give a larger --block-size",
              (unsigned long long) (vh > vf ? vh : vf),
              (unsigned long long) SIM_MAX_BLOCKS, (unsigned long long) bs);
    return -1;
  }
  s->cfg = *cfg;
  s->future = future;
  if (future->n < 2 ||
      future->recs[future->n - 1].ts_us == future->recs[0].ts_us) {
    snprintf (err, LEARNER_ERRLEN, "the future must span some time");
    return -1;
  }
  s->t0_us = future->recs[0].ts_us;
  s->duration_us = future->recs[future->n - 1].ts_us - s->t0_us;
  s->nblocks = (vh > vf ? vh : vf) / bs;
  s->blocks_to_copy = s->nblocks;
  seen = bitmap_new (s->nblocks);
  s->oracle = malloc (oracle_cap * sizeof *s->oracle);
  if (!seen || !s->oracle)
    goto oom;

  /* The oracle: future blocks in order of first access. */
  for (size_t i = 0; i < future->n; i++) {
    uint64_t first, last;
    if (!trace_rec_blocks (&future->recs[i], bs, &first, &last))
      continue;
    for (uint64_t b = first; b <= last; b++) {
      if (bit_test (seen, b))
        continue;
      bit_set (seen, b);
      if (s->noracle == oracle_cap) {
        uint64_t *o = array_grow (s->oracle, &oracle_cap, s->noracle,
                                  sizeof *o, 1024);
        if (!o)
          goto oom;
        s->oracle = o;
      }
      s->oracle[s->noracle++] = b;
    }
  }
  {
    struct u64map past = { 0 };
    for (size_t i = 0; i < history->n; i++) {
      uint64_t first, last;
      if (trace_rec_blocks (&history->recs[i], bs, &first, &last))
        for (uint64_t b = first; b <= last; b++)
          if (u64map_put (&past, b, 1) == -1) {
            u64map_free (&past);
            goto oom;
          }
    }
    for (size_t i = 0; i < s->noracle; i++)
      s->new_blocks += u64map_get (&past, s->oracle[i]) == U64MAP_NONE;
    u64map_free (&past);
  }
  if (cfg->sparse) {
    /* Allocated = touched in the history or the future; `seen` already
     * holds the future. */
    for (size_t i = 0; i < history->n; i++) {
      uint64_t first, last;
      if (trace_rec_blocks (&history->recs[i], bs, &first, &last))
        for (uint64_t b = first; b <= last; b++)
          bit_set (seen, b);
    }
    s->allocated = seen;
    seen = NULL;
    s->blocks_to_copy = 0;
    for (uint64_t w = 0; w <= s->nblocks / 64; w++)
      s->blocks_to_copy += __builtin_popcountll (s->allocated[w]);
  }
  s->bandwidth = cfg->bandwidth > 0 ? cfg->bandwidth
    : cfg->bandwidth_ratio * (double) s->blocks_to_copy * bs
      / (s->duration_us / 1e6);
  free (seen);
  if (!(s->bandwidth > 0)) {
    snprintf (err, LEARNER_ERRLEN, "bandwidth must be positive");
    sim_scenario_free (s);
    return -1;
  }
  return 0;
 oom:
  free (seen);
  sim_scenario_free (s);
  snprintf (err, LEARNER_ERRLEN, "out of memory");
  return -1;
}

void
sim_scenario_free (struct sim_scenario *s)
{
  free (s->allocated);
  free (s->oracle);
  memset (s, 0, sizeof *s);
}

double
sim_gap_closed (uint64_t sequential, uint64_t oracle, uint64_t policy)
{
  if (sequential == oracle)
    return NAN;
  return ((double) sequential - (double) policy)
         / ((double) sequential - (double) oracle);
}

/* Blocks in flight, in order of arrival. */
struct flight { uint64_t block; double arrival; };
struct fifo { struct flight *v; size_t head, n, cap; };

static int
fifo_push (struct fifo *f, uint64_t block, double arrival)
{
  if (f->head > 0 && f->n == f->cap) {
    memmove (f->v, f->v + f->head, (f->n - f->head) * sizeof *f->v);
    f->n -= f->head;
    f->head = 0;
  }
  if (f->n == f->cap) {
    struct flight *v = array_grow (f->v, &f->cap, f->n, sizeof *v, 1024);
    if (!v)
      return -1;
    f->v = v;
  }
  f->v[f->n++] = (struct flight) { block, arrival };
  return 0;
}

/* Sectors the guest wrote in blocks not present: one mask per block. */
struct written {
  struct u64map index;          /* block -> mask number */
  uint64_t *masks;
  size_t n, cap;
  unsigned words;               /* per mask */
};

#define SECTOR 512

/* Mark sectors [from, to) of block b written.  -1 on out of memory. */
static int
written_add (struct written *w, uint64_t b, uint64_t from, uint64_t to)
{
  uint32_t i = u64map_get (&w->index, b);

  if (i == U64MAP_NONE) {
    if (w->n == w->cap) {
      uint64_t *m = array_grow (w->masks, &w->cap, w->n,
                                w->words * sizeof *m, 256);
      if (!m)
        return -1;
      w->masks = m;
    }
    i = w->n++;
    memset (&w->masks[i * w->words], 0, w->words * sizeof *w->masks);
    if (u64map_put (&w->index, b, i) == -1)
      return -1;
  }
  for (uint64_t sec = from; sec < to; sec++)
    bit_set (&w->masks[i * w->words], sec);
  return 0;
}

/* Are sectors [from, to) of block b all written? */
static int
written_covers (const struct written *w, uint64_t b, uint64_t from,
                uint64_t to)
{
  uint32_t i = u64map_get (&w->index, b);

  if (i == U64MAP_NONE)
    return 0;
  for (uint64_t sec = from; sec < to; sec++)
    if (!bit_test (&w->masks[i * w->words], sec))
      return 0;
  return 1;
}

/* The sectors [*from, *to) of block b that request q touches, in part
 * or whole. */
static void
sectors_of (const struct trace_rec *q, uint64_t b, uint64_t bs,
            uint64_t *from, uint64_t *to)
{
  uint64_t base = b * bs, end = q->offset + q->length - base;

  *from = (q->offset > base ? q->offset - base : 0) / SECTOR;
  *to = ((end < bs ? end : bs) + SECTOR - 1) / SECTOR;
}

/* One run's moving parts. */
struct run {
  const struct sim_scenario *s;
  uint64_t *present;            /* arrived (or a hole, or overwritten) */
  uint64_t *claimed;            /* present or in flight */
  uint64_t remaining;           /* blocks still to copy */
  uint64_t unclaimed;           /* of which not in flight either */
  struct fifo pulls, demands;   /* in flight */
  /* When each block demanded arrives: an open-loop guest far ahead of a
   * slow link keeps thousands of demands in flight, too many to search
   * for each request that waits on one. */
  struct u64map demanded;       /* block -> index in demand_arrival */
  double *demand_arrival;
  size_t ndemanded, demanded_cap;
  struct written written;
  double link_free;             /* next pull's transfer start (s) */
  double demand_free;           /* end of the last demand transfer (s) */
  double xfer;                  /* seconds per block */
  double rtt;
  double full_at;               /* when remaining reached 0, or -1 */
  double next_time;             /* us spent in order_next */
  double *start_s;              /* the first order_next counts here */
  int oom;
};

static bool
is_claimed (void *ctx, uint64_t block)
{
  return bit_test (((struct run *) ctx)->claimed, block);
}

static void
claim (struct run *r, uint64_t block)
{
  if (bit_test (r->claimed, block))
    return;
  bit_set (r->claimed, block);
  r->unclaimed--;
}

static void
mark_present (struct run *r, uint64_t block, double now)
{
  if (bit_test (r->present, block))
    return;
  claim (r, block);
  bit_set (r->present, block);
  if (--r->remaining == 0)
    r->full_at = now;
}

/* Blocks in flight that have arrived by NOW become present. */
static void
arrive (struct run *r, struct fifo *f, double now)
{
  while (f->head < f->n && f->v[f->head].arrival <= now) {
    mark_present (r, f->v[f->head].block, f->v[f->head].arrival);
    f->head++;
  }
}

/* When an in-flight BLOCK arrives. */
static double
arrival_of (const struct run *r, uint64_t block)
{
  for (size_t i = r->pulls.head; i < r->pulls.n; i++)
    if (r->pulls.v[i].block == block)
      return r->pulls.v[i].arrival;
  uint32_t d = u64map_get (&r->demanded, block);
  if (d != U64MAP_NONE)
    return r->demand_arrival[d];
  /* Only when out of memory (the run then fails): the slow way. */
  for (size_t i = r->demands.head; i < r->demands.n; i++)
    if (r->demands.v[i].block == block)
      return r->demands.v[i].arrival;
  abort ();                     /* claimed, not present: must be in flight */
}

/* Let the background copy choose every pull it would have chosen before
 * time NOW (one RTT ahead of its transfer). */
static void
pull_until (struct run *r, struct order *o, double now)
{
  uint64_t blocks[BATCH];

  while (r->unclaimed > 0 && r->link_free - r->rtt < now) {
    double room = ceil ((now + r->rtt - r->link_free) / r->xfer);
    double most = fmax (1, floor (BATCH_SPAN_S / r->xfer));
    size_t want = (size_t) fmin (fmin (room, most), BATCH), n;

    double start = (time_ns () / 1e3);
    /* Chosen one RTT before the link is free. */
    uint64_t chosen_us = r->s->t0_us
      + (uint64_t) ((r->link_free - r->rtt) * 1e6);
    n = order_next (o, chosen_us, blocks, want, is_claimed, r);
    if (r->start_s) {
      *r->start_s += ((time_ns () / 1e3) - start) / 1e6;
      r->start_s = NULL;
    }
    else
      r->next_time += (time_ns () / 1e3) - start;
    if (n == 0)
      break;                    /* policy none: the link idles */
    for (size_t i = 0; i < n; i++) {
      claim (r, blocks[i]);
      r->link_free += r->xfer;
      if (fifo_push (&r->pulls, blocks[i], r->link_free) == -1)
        r->oom = 1;
    }
  }
  if (r->link_free - r->rtt < now)
    r->link_free = now + r->rtt;        /* an idle link saves nothing up */
}

/* A demand fetch of N blocks at T: they arrive at the returned time, and
 * the background transfers not yet started wait for theirs. */
static double
demand_fetch (struct run *r, const uint64_t *blocks, size_t n, double t)
{
  double start = fmax (t, r->demand_free), took = n * r->xfer, arrival;

  r->demand_free = start + took;
  arrival = r->demand_free + r->rtt;
  for (size_t i = 0; i < n; i++) {
    claim (r, blocks[i]);
    if (fifo_push (&r->demands, blocks[i], arrival) == -1)
      r->oom = 1;
    if (r->ndemanded == r->demanded_cap) {
      double *v = array_grow (r->demand_arrival, &r->demanded_cap,
                              r->ndemanded, sizeof *v, 1024);
      if (!v) {
        r->oom = 1;
        continue;
      }
      r->demand_arrival = v;
    }
    if (u64map_put (&r->demanded, blocks[i], (uint32_t) r->ndemanded) == -1)
      r->oom = 1;
    r->demand_arrival[r->ndemanded++] = arrival;
  }
  for (size_t i = r->pulls.n; i > r->pulls.head &&
         r->pulls.v[i - 1].arrival - r->xfer >= start; i--)
    r->pulls.v[i - 1].arrival += took;
  r->link_free += took;
  return arrival;
}

int
sim_run (const struct sim_scenario *s, const char *policy,
         const struct model *model, struct sim_result *res, char *err)
{
  const uint64_t bs = s->cfg.block_size;
  struct run r = { .s = s, .full_at = -1 };
  struct order *o;
  double observe_time = 0, window = s->duration_us / 1e6;
  uint64_t *fetch = NULL;
  size_t fetch_cap = 0;
  int next_point = 0, ret = -1;

  memset (res, 0, sizeof *res);
  snprintf (res->policy, sizeof res->policy, "%s", policy);
  uint64_t t_new = time_ns ();
  o = order_new (policy, model, s->nblocks, bs, err);
  res->start_s = (time_ns () - t_new) / 1e9;
  if (!o)
    return -1;
  if (s->seq_tape)
    order_use_tape (o, s->seq_tape);
  if (strcmp (policy, "oracle") == 0 &&
      order_seed (o, s->oracle, s->noracle) == -1) {
    snprintf (err, LEARNER_ERRLEN, "out of memory");
    goto out;
  }
  r.present = bitmap_new (s->nblocks);
  r.claimed = bitmap_new (s->nblocks);
  if (!r.present || !r.claimed) {
    snprintf (err, LEARNER_ERRLEN, "out of memory");
    goto out;
  }
  r.remaining = r.unclaimed = s->blocks_to_copy;
  if (s->allocated)             /* holes: nothing to copy */
    for (uint64_t w = 0; w <= s->nblocks / 64; w++)
      r.present[w] = r.claimed[w] = ~s->allocated[w];
  r.written.words = (bs / SECTOR + 63) / 64;
  r.xfer = bs / s->bandwidth;
  r.rtt = s->cfg.rtt_s;
  r.link_free = r.rtt;          /* the first pulls are chosen at 0 */
  r.start_s = &res->start_s;

  for (size_t i = 0; i < s->future->n; i++) {
    const struct trace_rec *q = &s->future->recs[i];
    double t = (q->ts_us - s->t0_us) / 1e6, t_obs;
    uint64_t first, last;
    bool hit = true;

    if (!trace_rec_blocks (q, bs, &first, &last))
      continue;
    pull_until (&r, o, t);
    arrive (&r, &r.pulls, t);
    arrive (&r, &r.demands, t);
    for (; next_point <= SIM_CURVE_POINTS &&
           next_point * window / SIM_CURVE_POINTS <= t; next_point++)
      res->curve[next_point] = (struct sim_point) {
        .t = next_point * window / SIM_CURVE_POINTS,
        .coverage = 1 - (double) r.remaining / s->blocks_to_copy,
        .stalls = res->stalls,
      };
    res->requests++;
    if (q->op == TRACE_READ) {
      double until = t;
      size_t nfetch = 0;
      if (last - first + 1 > fetch_cap) {
        fetch_cap = last - first + 1;
        free (fetch);
        fetch = malloc (fetch_cap * sizeof *fetch);
        if (!fetch) {
          snprintf (err, LEARNER_ERRLEN, "out of memory");
          goto out;
        }
      }
      for (uint64_t b = first; b <= last; b++) {
        uint64_t from, to;
        sectors_of (q, b, bs, &from, &to);
        if (bit_test (r.present, b) || written_covers (&r.written, b, from, to))
          continue;
        if (!bit_test (r.claimed, b))
          fetch[nfetch++] = b;
        else
          until = fmax (until, arrival_of (&r, b));
      }
      if (nfetch)
        until = fmax (until, demand_fetch (&r, fetch, nfetch, t));
      res->demand_blocks += nfetch;
      if (until > t) {
        hit = false;
        res->stalls++;
        res->stall_seconds += until - t;
      }
    }
    else {
      /* Only whole blocks become present without their old data. */
      uint64_t lo = (q->offset + bs - 1) / bs;
      uint64_t hi = (q->offset + q->length) / bs;
      for (uint64_t b = lo; b < hi; b++)
        mark_present (&r, b, t);
      /* The sectors of the blocks it covers in part. */
      for (uint64_t b = first; b <= last; b++) {
        uint64_t from, to;
        sectors_of (q, b, bs, &from, &to);
        if (!bit_test (r.present, b) &&
            written_add (&r.written, b, from, to) == -1)
          r.oom = 1;
      }
    }
    t_obs = (time_ns () / 1e3);
    order_observe (o, q->ts_us, first, last, q->op != TRACE_READ, hit);
    observe_time += (time_ns () / 1e3) - t_obs;
  }
  if (r.oom) {
    snprintf (err, LEARNER_ERRLEN, "out of memory");
    goto out;
  }
  for (; next_point <= SIM_CURVE_POINTS; next_point++)
    res->curve[next_point] = (struct sim_point) {
      .t = next_point * window / SIM_CURVE_POINTS,
      .coverage = 1 - (double) r.remaining / s->blocks_to_copy,
      .stalls = res->stalls,
    };
  /* After the guest's last request nothing changes the order any more:
   * what is in flight arrives, the rest is copied back to back (never,
   * for policy none). */
  if (r.remaining > 0 && strcmp (policy, "none") != 0) {
    r.full_at = r.demand_free + r.rtt;
    if (r.pulls.n > r.pulls.head)
      r.full_at = fmax (r.full_at, r.pulls.v[r.pulls.n - 1].arrival);
    if (r.unclaimed > 0)
      r.full_at = fmax (r.full_at, r.link_free + r.unclaimed * r.xfer);
  }
  res->time_to_full_copy = r.full_at;
  res->stall_ratio = res->requests ? (double) res->stalls / res->requests : 0;
  res->observe_us = res->requests ? observe_time / res->requests : 0;
  res->next_us = res->requests ? r.next_time / res->requests : 0;
  ret = 0;
 out:
  free (fetch);
  free (r.present);
  free (r.claimed);
  free (r.pulls.v);
  free (r.demands.v);
  u64map_free (&r.demanded);
  free (r.demand_arrival);
  u64map_free (&r.written.index);
  free (r.written.masks);
  order_free (o);
  return ret;
}
