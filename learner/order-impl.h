/* order-impl.h: the insides of struct order, shared by the files that
 * implement order.h: order.c (the policies, the block lists, the sweep,
 * and the portfolio that interleaves the strategies), order-regions.c
 * (the region/ring model and the sequence model's predictions),
 * order-fit.c (what the region model learns from the history, fitted by
 * train, and applied when an order starts) and bandit.c (the online
 * choice between strategies).
 */
#ifndef NBDSHADOW_ORDER_IMPL_H
#define NBDSHADOW_ORDER_IMPL_H

#include <stdbool.h>

#include "bandit.h"
#include "model.h"
#include "order.h"

#define URGENT_MAX 64
/* Neighbours of a stalled request pulled at once (see order_observe). */
#define STALL_RADIUS 1
/* Chunks waiting in the burst source (burst_observe), newest first. */
#define BURST_MAX 16
/* Pulls remembered with the strategy that chose them (order.c), so a
 * later guest access can be credited to it: a direct-mapped table, a
 * newer pull evicting an older one on a collision. */
#define PULLED_BITS 16

enum policy {
  POLICY_NONE, POLICY_SEQUENTIAL, POLICY_FREQUENCY, POLICY_FIRST_ACCESS,
  POLICY_PREDICT, POLICY_PREDICT_FIXED, POLICY_REGIONS, POLICY_ORACLE
};

/* The block lists: the strategies' ranked history blocks, and the
 * oracle's seed. */
enum list_kind { LIST_FIRST_ACCESS, LIST_FREQUENCY, LIST_MODEL, LIST_ORACLE,
                 NLISTS };

struct block_list {
  uint64_t *v;
  size_t n, pos;
  uint32_t *rank_of;            /* per history unit: its place in v */
};

struct heap_entry {
  float score;
  uint32_t idx;                 /* into order->region_state */
  uint32_t version;             /* stale when != region_state[idx] */
};

struct region_state {
  uint32_t version;
  bool done;                    /* popped: its blocks have been offered */
  bool stale;                   /* queued for the ranker */
  float p;                      /* ranker probability, cached */
  float score;                  /* last pushed priority */
  uint32_t online;              /* accesses seen since the start */
  float growth;                 /* history activity (growth_fit) */
  float twins;                  /* history accesses at the same offset on
                                   every device (add_twins) */
  uint32_t *centers;            /* touched blocks, offsets in the region,
                                   ascending (history and online) */
  uint32_t ncenters, centers_cap;
  uint32_t ring;                /* next ring to pull (ring_bounds), or
                                   the rank of the next sub-bin */
  float stalls;                 /* recent stalls, decayed (burst_observe) */
  uint64_t stalls_ts;           /* when stalls was last updated */
};

struct interval { uint64_t pos, end; };

struct pulled { uint64_t block; uint8_t strategy; };

struct order {
  enum policy policy;
  const struct model *model;
  uint64_t nblocks, block_size;

  struct block_list list[NLISTS];
  uint64_t sweep_pos;           /* the sweep source */
  size_t first_request_blocks;  /* the first-access list's head: the
                                   history's first request (next_one) */

  /* The portfolio (order.c): the strategies in use, interleaved by
   * weight (stride scheduling), the weights set by the bandit. */
  bool uses[NSTRATEGIES];
  bool exhausted[NSTRATEGIES];
  double credit[NSTRATEGIES];
  double weight[NSTRATEGIES];   /* the bandit's, cached */
  struct bandit bandit;
  bool adapt;                   /* the bandit moves the weights */
  struct pulled *pulled;        /* [1 << PULLED_BITS] */
  bool started;
  enum source_kind source;      /* probed at the first order_next */
  enum future_kind future;      /* whose blend is followed */
  float followed[NSTRATEGIES];  /* the blend the bandit started from */
  float slow_blend[NSTRATEGIES];        /* blend_to_follow's, on a slow link */
  /* The pace of the guest and of the link (blend_to_follow): the
   * history's new blocks per second at its busiest, and the most blocks
   * per second order_next gave out over a window (0: none closed yet). */
  double burst_rate;
  double link_rate;
  uint64_t link_window_us, link_window_offered;
  unsigned link_windows;        /* 0: none yet, 1: the first, 2: later */
  double future_evidence;       /* for a rerun (follow_future) */
  bool future_judged;           /* the evidence has leant once */

  /* the region model (order-regions.c) */
  struct seqmodel *seq;         /* online copy of the model's */
  struct seq_tape *tape;        /* its predictions recorded, or NULL */
  bool tape_played;             /* ... and played back, not recorded */
  size_t observed;              /* requests regions_observe saw */
  uint64_t urgent[URGENT_MAX];  /* stack of predicted blocks */
  size_t nurgent;
  uint64_t neighbours[2 * STALL_RADIUS];        /* of the latest stall */
  size_t nneighbours;
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
  /* The model's sub-bins (struct region_fit), or NULL when regions go
   * whole (no devices side by side, or a sparse source). */
  uint64_t period;
  const uint8_t *sub_rank;
  const float *sub_p;
  uint64_t clock_base;          /* first observe's now_us */
  bool clock_started;
  uint64_t prev_last;           /* last block of the previous request */
  uint64_t offered;             /* blocks order_next returned so far */
  struct interval burst[BURST_MAX];     /* stack of chunks to pull */
  size_t nburst;
  struct interval burst_active;
  struct u64map burst_seen;     /* first blocks of the chunks queued */
  bool probed;                  /* new_first decided */
  bool new_first;               /* never-seen blocks before history ones */
};

/* order.c */
extern int build_list (struct order *o, enum list_kind kind);

/* order-regions.c: the region model (STRATEGY_REGIONS) and the sequence
 * model's predictions (STRATEGY_SEQUENCE). */
extern int regions_init (struct order *o);
extern void regions_free (struct order *o);
extern void regions_observe (struct order *o, uint64_t now_us,
                             uint64_t first, uint64_t last, bool is_write,
                             bool was_hit);
extern void regions_start (struct order *o, block_present_fn is_present,
                           void *ctx);
extern void regions_prepare (struct order *o);
extern bool regions_next (struct order *o, block_present_fn is_present,
                          void *ctx, uint64_t *block);
extern bool sequence_next (struct order *o, block_present_fn is_present,
                           void *ctx, uint64_t *block);
extern bool neighbours_next (struct order *o, block_present_fn is_present,
                             void *ctx, uint64_t *block);
extern bool regions_would_pull (const struct order *o, uint64_t block);

/* order-regions.c, for order-fit.c */
extern uint32_t region_slot (struct order *o, uint64_t region);
extern void region_push (struct order *o, uint64_t region);
extern int center_insert (struct region_state *s, uint32_t off);
extern void ring_bounds (uint32_t j, uint64_t *lo, uint64_t *hi);
extern uint32_t ring_of (uint64_t d);
extern uint32_t rings_end (unsigned shift);
extern uint32_t abin (uint32_t n);

/* order-fit.c */
extern int centers_init (struct order *o);
extern void add_twins (struct order *o);

#endif
