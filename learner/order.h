/* order.h: the background pull order -- which block the shadowing engine
 * should copy next.  The filter's engine and the simulator both use this
 * API, so what the simulator measures is what the filter does.
 *
 * Usage (one object per shadowed disk; calls on one object must not run
 * concurrently, different objects are independent):
 *
 *   char err[LEARNER_ERRLEN];
 *   struct order *o = order_new ("predict", model, nblocks, 65536, err);
 *   ...on every guest request touching blocks [first, last]:
 *   order_observe (o, now_us, first, last, is_write, was_hit);
 *   ...whenever the engine has room for more background reads:
 *   n = order_next (o, blocks, max, is_present, ctx);
 *   ...
 *   order_free (o);
 *
 * Policies (order_policies lists them):
 *   none          nothing in the background (demand fetches only)
 *   sequential    ascending block order, as today's tools copy
 *   frequency     history heuristic: most accessed blocks of the history
 *                 first, then sequential
 *   first-access  history heuristic: blocks in the order the history
 *                 first touched them, then sequential
 *   predict       the learned model: the neighbours of a stalled request
 *                 and the blocks the sequence model predicts from the
 *                 latest requests, then history blocks by libsvm score,
 *                 then regions by libsvm probability x activity (history
 *                 plus what the guest did since: re-ranked online), each
 *                 pulled in rings around its touched blocks, nearest
 *                 first, then sequential.  On a sparse source (probed through
 *                 is_present at the first order_next) never-seen blocks of
 *                 the regions go before the history blocks.
 *   oracle        simulator only: the future's blocks in order of first
 *                 access (order_seed), then sequential
 * frequency, first-access and predict need a model; its block size must
 * equal BLOCK_SIZE.
 */
#ifndef NBDSHADOW_ORDER_H
#define NBDSHADOW_ORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "learner.h"
#include "present.h"

struct model;
struct order;

extern const char *const order_policies[];

/* Returns NULL with a reason in ERR (LEARNER_ERRLEN bytes) on an unknown
 * policy, a missing or mismatched model, or out of memory.  The order
 * keeps its own copy of what it learns online; MODEL is only read, and
 * must outlive the order. */
extern struct order *order_new (const char *policy, const struct model *model,
                                uint64_t nblocks, uint64_t block_size,
                                char *err);
extern void order_free (struct order *o);

/* The oracle's foresight: BLOCKS in the order they will first be
 * needed.  Only for "oracle"; -1 on other policies or out of memory. */
extern int order_seed (struct order *o, const uint64_t *blocks, size_t n);

/* A guest request touched blocks [FIRST, LAST] at NOW_US (any clock that
 * only goes forward).  WAS_HIT: every block was already local (false =
 * it stalled on the source: a missed prediction).  Cheap: a few us. */
extern void order_observe (struct order *o, uint64_t now_us, uint64_t first,
                           uint64_t last, bool is_write, bool was_hit);

/* Fill BLOCKS with up to MAX blocks to pull next, best first, skipping
 * those IS_PRESENT (called with CTX) says need no pull.  Returns how many; 0 means every block
 * is present (or the policy is "none").  Blocks returned are expected to
 * be fetched: the engine should mark them in flight before calling again.
 * MAX is meant to be small (the engine's free in-flight slots): a batch is
 * checked for duplicates in O(MAX^2). */
extern size_t order_next (struct order *o, uint64_t *blocks, size_t max,
                          block_present_fn is_present, void *ctx);

#endif /* NBDSHADOW_ORDER_H */
