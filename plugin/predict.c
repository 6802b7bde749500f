/* The pull order, and what the guest does: the learner joined to the
 * filter.
 *
 * The engine asks for the next block to pull on its own thread; guests
 * run on nbdkit's threads.  The learner's order object is not
 * thread-safe, and its re-ranking may take far longer than a guest
 * request should wait, so a guest never touches it: each request (hit or
 * stall) is put in a small ring, under a lock held for a few stores, and
 * whoever next uses the order (the engine wanting a block, or the
 * housekeeping thread once a second) feeds the ring to order_observe
 * first.  A full ring drops observations (counted): the model then
 * learns from fewer requests, nothing else is lost.  The same requests
 * go to the recorder (record.c) when shadow-record is given.
 */

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-filter.h>

#include "clock.h"
#include "engine.h"
#include "model.h"
#include "order.h"
#include "shadow.h"

static char *model_file;
static struct model *model;
static bool block_size_given;

/* ---- parameters ---- */

int
predict_config (const char *key, const char *value)
{
  if (strcmp (key, "shadow-policy") == 0) {
    const struct order_policy *p = order_policy_find (value);
    char names[256];
    if (p && !p->simulator_only) {
      shadow.policy = p->name;
      return 1;
    }
    nbdkit_error ("shadow-policy: %s policy '%s' (known: %s)",
                  p ? "simulator-only" : "unknown", value,
                  order_policy_names (names, sizeof names, false));
    return -1;
  }
  if (strcmp (key, "shadow-model") == 0) {
    free (model_file);
    model_file = nbdkit_absolute_path (value);
    return model_file ? 1 : -1;
  }
  if (strcmp (key, "shadow-block-size") == 0)
    block_size_given = true;    /* and let shadow.c parse it */
  return 0;
}

/* Load the model (before the fork: a bad one stops nbdkit at once) and
 * settle the policy and the block size with it.
 */
int
predict_config_complete (void)
{
  char err[LEARNER_ERRLEN];

  if (model_file) {
    model = model_load (model_file, err);
    if (model == NULL) {
      nbdkit_error ("shadow-model: %s", err);
      return -1;
    }
    if (!block_size_given) {
      if (model->block_size < SHADOW_MIN_BLOCK_SIZE ||
          model->block_size > SHADOW_MAX_BLOCK_SIZE) {
        nbdkit_error ("shadow-model: %s was trained for %" PRIu64
                      "-byte blocks; the filter needs 4K..4M", model_file,
                      model->block_size);
        return -1;
      }
      shadow.block_size = model->block_size;
      shadow.block_shift = __builtin_ctzll (model->block_size);
    }
    else if (model->block_size != shadow.block_size) {
      nbdkit_error ("shadow-model: %s was trained for %" PRIu64
                    "-byte blocks but shadow-block-size is %" PRIu32,
                    model_file, model->block_size, shadow.block_size);
      return -1;
    }
    if (shadow.policy == NULL)
      shadow.policy = "predict";
  }
  if (shadow.policy == NULL)
    shadow.policy = "sequential";
  if (order_policy_find (shadow.policy)->needs_model && model == NULL) {
    nbdkit_error ("shadow-policy=%s needs a model (shadow-model=FILE, "
                  "from nbdshadow train)", shadow.policy);
    return -1;
  }
  return 0;
}

/* ---- what the guest does: the ring ---- */

struct observation {
  uint64_t now_us;
  uint64_t first, last;
  bool is_write, was_hit;
};

#define RING_SIZE 16384         /* a few seconds of a busy guest */

static struct observation ring[RING_SIZE];
static size_t ring_head, ring_count;
static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint64_t dropped;

/* The order; order_lock serializes every use of it. */
static struct order *order;
static pthread_mutex_t order_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic bool observing;

/* Costs, for the stats file: the guest's side (ring and record) and the
 * model's (order_observe + order_next, off the guest's path).
 */
static _Atomic uint64_t guest_ns, guest_requests;
static _Atomic uint64_t model_ns, model_calls;

static void
ring_push (uint64_t now_us, uint64_t first, uint64_t last, bool is_write,
           bool was_hit)
{
  pthread_mutex_lock (&ring_lock);
  if (ring_count == RING_SIZE)
    atomic_fetch_add_explicit (&dropped, 1, memory_order_relaxed);
  else {
    ring[(ring_head + ring_count++) % RING_SIZE] = (struct observation) {
      now_us, first, last, is_write, was_hit
    };
  }
  pthread_mutex_unlock (&ring_lock);
}

/* Feed the ring to the model.  Called with order_lock held.  Taken in
 * chunks so the guests' lock is held only for a copy.
 */
#define DRAIN_CHUNK 256

static void
drain_ring (void)
{
  struct observation chunk[DRAIN_CHUNK];
  size_t n;

  do {
    pthread_mutex_lock (&ring_lock);
    n = ring_count < DRAIN_CHUNK ? ring_count : DRAIN_CHUNK;
    for (size_t i = 0; i < n; i++)
      chunk[i] = ring[(ring_head + i) % RING_SIZE];
    ring_head = (ring_head + n) % RING_SIZE;
    ring_count -= n;
    pthread_mutex_unlock (&ring_lock);
    for (size_t i = 0; i < n; i++)
      order_observe (order, chunk[i].now_us, chunk[i].first, chunk[i].last,
                     chunk[i].is_write, chunk[i].was_hit);
  } while (n == DRAIN_CHUNK);
}

/* ---- the order the engine follows ---- */

/* The order's latest picks, for the mirror's predicted set (mirror.c):
 * the head of its ranking as it re-ranks.  Under order_lock.
 */
static uint64_t picks[PREDICT_PICKS];
static uint64_t npicks;

size_t
predict_recent_picks (uint64_t *out, size_t max)
{
  size_t n;

  pthread_mutex_lock (&order_lock);
  n = npicks < max ? npicks : max;
  n = n < PREDICT_PICKS ? n : PREDICT_PICKS;
  for (size_t i = 0; i < n; i++)
    out[i] = picks[(npicks - 1 - i) % PREDICT_PICKS];
  pthread_mutex_unlock (&order_lock);
  return n;
}

static bool
order_next_block (struct engine_order *self, uint64_t *b)
{
  size_t n = 0;
  uint64_t t0 = time_ns ();

  pthread_mutex_lock (&order_lock);
  if (order) {
    drain_ring ();
    /* One block at a time: what the guest did a moment ago re-ranks the
     * very next pull.
     */
    n = order_next (order, t0 / 1000, b, 1, block_present_cb, NULL);
    if (n == 1)
      picks[npicks++ % PREDICT_PICKS] = *b;
  }
  pthread_mutex_unlock (&order_lock);
  atomic_fetch_add_explicit (&model_ns, time_ns () - t0,
                             memory_order_relaxed);
  atomic_fetch_add_explicit (&model_calls, 1, memory_order_relaxed);
  return n == 1;
}

static void
order_release (struct engine_order *self)
{
  atomic_store (&observing, false);
  pthread_mutex_lock (&order_lock);
  order_free (order);
  order = NULL;
  pthread_mutex_unlock (&order_lock);
  free (self);
}

/* The engine's order for the policy (not none: then there is no
 * background copy to order), or NULL after logging why.  Called once
 * the geometry is known.
 */
struct engine_order *
predict_order_new (void)
{
  char err[LEARNER_ERRLEN];
  struct engine_order *eo = malloc (sizeof *eo);

  if (eo == NULL) {
    nbdkit_error ("malloc: %m");
    return NULL;
  }
  pthread_mutex_lock (&order_lock);
  order = order_new (shadow.policy, model, shadow.nblocks, shadow.block_size,
                     err);
  pthread_mutex_unlock (&order_lock);
  if (order == NULL) {
    nbdkit_error ("shadow-policy=%s: %s", shadow.policy, err);
    free (eo);
    return NULL;
  }
  eo->next = order_next_block;
  eo->free = order_release;
  /* Only predict learns from the guest (order_observe ignores the rest). */
  atomic_store (&observing, strcmp (shadow.policy, "predict") == 0);
  return eo;
}

/* Housekeeping: keep the model current when the engine is not asking
 * for blocks (its window full, or waiting for the source).
 */
void
predict_tick (void)
{
  pthread_mutex_lock (&order_lock);
  if (order)
    drain_ring ();
  pthread_mutex_unlock (&order_lock);
}

/* ---- the guest's side ---- */

/* A guest request (op as in the trace CSV) is about to be served.  A
 * read is a hit if all its blocks are local now; otherwise it is about
 * to stall (a missed prediction).  Cheap: the ring's lock, and the
 * record buffer's when recording.
 */
void
predict_guest_request (char op, uint64_t offset, uint32_t count)
{
  bool obs = atomic_load_explicit (&observing, memory_order_relaxed) &&
             count > 0 && op != 'F';
  bool rec = record_active ();
  uint64_t t0;

  if (!obs && !rec)
    return;
  t0 = time_ns ();
  if (obs) {
    uint64_t first = offset >> shadow.block_shift;
    uint64_t last = (offset + count - 1) >> shadow.block_shift;
    ring_push (t0 / 1000, first, last, op != 'R',
               op != 'R' || blocks_are_present (first, last));
  }
  if (rec)
    record_request (op, offset, count);
  atomic_fetch_add_explicit (&guest_ns, time_ns () - t0,
                             memory_order_relaxed);
  atomic_fetch_add_explicit (&guest_requests, 1, memory_order_relaxed);
}

/* Extra fields of the stats file, each preceded by ", ". */
void
predict_stats (FILE *fp)
{
  uint64_t gn = atomic_load (&guest_requests), mn = atomic_load (&model_calls);

  fprintf (fp, ", \"guest_path_ns\": %" PRIu64 ", \"order_ns\": %" PRIu64
           ", \"observations_dropped\": %" PRIu64,
           gn ? atomic_load (&guest_ns) / gn : 0,
           mn ? atomic_load (&model_ns) / mn : 0,
           (uint64_t) atomic_load (&dropped));
}

void
predict_unload (void)
{
  model_free (model);
  model = NULL;
  free (model_file);
}
