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
 *   n = order_next (o, now_us, blocks, max, is_present, ctx);
 *   ...
 *   order_free (o);
 *
 * Policies: order_policy_table lists them, which need a model and which
 * only the simulator has (help texts and errors are built from it).
 * predict interleaves the strategies of model.h (the region/ring model,
 * the sequence model's predictions, first-access, frequency,
 * sequential) in the blend train chose for the kind of source (dense or
 * sparse: probed through is_present at the first order_next), and moves
 * the blend online towards the strategies that work (bandit.h), and
 * towards frequency on a link far behind a guest that reruns its
 * history (order.c).  A model's block size must equal BLOCK_SIZE.
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

/* The one list of policies: name, needs a model, what it does.  The
 * filter has the first ones; the simulator has them all. */
#define ORDER_FILTER_POLICIES(P)                                        \
  P ("none", false, "nothing in the background (demand fetches only)")  \
  P ("sequential", false, "ascending block order")                     \
  P ("frequency", true,                                                \
     "the history's blocks, most accessed first, then sequential")     \
  P ("first-access", true,                                             \
     "the history's blocks, first touched first, then sequential")     \
  P ("predict", true, "the model's blend of strategies, adapted online")
#define ORDER_SIMULATOR_POLICIES(P)                                     \
  P ("predict-fixed", true, "predict's blend without the online "      \
     "adaptation")                                                     \
  P ("regions", true, "the region/ring model and the sequence model "  \
     "alone")                                                          \
  P ("oracle", false, "the future's blocks in order of first access")

/* " none sequential ...": the filter's policies, for static help texts. */
#define ORDER_POLICY_NAME_(name, model, what) " " name
#define ORDER_FILTER_POLICY_NAMES ORDER_FILTER_POLICIES (ORDER_POLICY_NAME_)

struct order_policy {
  const char *name;
  bool needs_model;
  bool simulator_only;          /* e.g. oracle: needs the future */
  const char *what;             /* one line for help texts */
};

/* Ends with a NULL name. */
extern const struct order_policy order_policy_table[];
/* NULL if NAME is no policy. */
extern const struct order_policy *order_policy_find (const char *name);
/* The policies' names, ", " between them, into BUF (LEN bytes): all of
 * them, or only those the filter has.  Returns BUF. */
extern const char *order_policy_names (char *buf, size_t len,
                                       bool with_simulator_only);

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

/* The simulator's: the sequence model's predictions come from tape T
 * (seqtape.h), recorded by this order if T is empty, else played back.
 * Before the first order_observe. */
struct seq_tape;
extern void order_use_tape (struct order *o, struct seq_tape *t);

/* A guest request touched blocks [FIRST, LAST] at NOW_US (any clock that
 * only goes forward).  WAS_HIT: every block was already local (false =
 * it stalled on the source: a missed prediction).  Cheap: a few us. */
extern void order_observe (struct order *o, uint64_t now_us, uint64_t first,
                           uint64_t last, bool is_write, bool was_hit);

/* Fill BLOCKS with up to MAX blocks to pull next, best first, skipping
 * those IS_PRESENT (called with CTX) says need no pull.  NOW_US: when
 * they are chosen, on order_observe's clock (how fast the link pulls).
 * Returns how many; 0 means every block is present (or the policy is
 * "none").  Blocks returned are expected to be fetched: the engine
 * should mark them in flight before calling again.  MAX is meant to be
 * small (the engine's free in-flight slots): a batch is checked for
 * duplicates in O(MAX^2). */
extern size_t order_next (struct order *o, uint64_t now_us, uint64_t *blocks,
                          size_t max, block_present_fn is_present, void *ctx);

#endif /* NBDSHADOW_ORDER_H */
