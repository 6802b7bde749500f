/* The engine thread: a libev loop that sends demands first, maps the
 * source before the copy, and schedules pulls (engine-internal.h).
 *
 * Each time before the loop sleeps it settles the commands that
 * completed (the done list) and sends what can be sent: waiting demands
 * on their connection, then, while the window and the cap allow,
 * pulls of runs of consecutive blocks in the order's order, then a
 * sweep of what is left.
 */

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "bits.h"
#include "clock.h"
#include "engine-internal.h"

/* Demands. */

static void
requeue (struct engine *e, struct demand *d)
{
  d->next = e->queue;
  e->queue = d;
  if (e->queue_tail == &e->queue)
    e->queue_tail = &d->next;
}

/* Demand first: on connection 0 if it is up (with multi-conn it
 * carries nothing else), else on any connection that is.
 */
static struct conn *
demand_conn (struct engine *e)
{
  for (unsigned i = 0; i < e->nconns; i++)
    if (e->conns[i].state == CONN_READY)
      return &e->conns[i];
  return NULL;
}

static void
dispatch_demands (struct engine *e)
{
  struct conn *c;

  while (e->queue && (c = demand_conn (e)) != NULL) {
    struct demand *d = e->queue;
    struct op *op;

    e->queue = d->next;
    if (e->queue == NULL)
      e->queue_tail = &e->queue;
    if (demand_abandoned (e, d) ||
        (op = op_new (e, d->map ? OP_MAP : OP_READ, 0)) == NULL) {
      demand_finish (e, d, ENOMEM);
      continue;
    }
    op->demand = d;
    op->offset = d->offset;
    op->count = d->count;
    op->buf = d->buf;
    if (op->kind == OP_READ)
      e->demands_inflight++;
    op_send (c, op);
  }
}


/* Mapping the source before the copy.
 *
 * On a sparse disk most blocks are holes, nothing to copy, and a policy
 * that does not know which would rank blocks that need no pull (the
 * predictor weighs history blocks against never-seen ones by how many
 * of each remain to be copied).  So the copy begins with the source's
 * whole allocation: MAPPERS questions of MAP_CHUNK at once (each is a
 * round trip), on the demand connection behind any demand, and the
 * holes each answer finds are made local at once.  The pulls start when
 * the last answer is in.
 */

static void
map_send (struct engine *e, struct conn *c, uint64_t offset)
{
  struct op *op = op_new (e, OP_MAP, 0);

  if (op == NULL)
    return;                     /* mapped lazily by the pulls instead */
  op->first_map = true;
  op->offset = offset;
  op->count = e->size - offset < MAP_CHUNK ? e->size - offset : MAP_CHUNK;
  e->maps_inflight++;
  op_send (c, op);
}

/* Ask what is left to ask; once every answer is in, start pulling. */
static void
map_fill (struct engine *e)
{
  struct conn *c;

  while (e->maps_inflight < MAPPERS && (c = demand_conn (e)) != NULL) {
    if (e->nmap_retry > 0)
      map_send (e, c, e->map_retry[--e->nmap_retry]);
    else if (e->map_next < e->size) {
      uint64_t offset = e->map_next;
      e->map_next += MAP_CHUNK;
      map_send (e, c, offset);
    }
    else
      break;
  }
  if (e->maps_inflight == 0 && e->nmap_retry == 0 && e->map_next >= e->size) {
    e->mapping = false;
    e->pulling = !e->map_only;
    e->sweep_pos = 0;
    say (e, false, "the source's allocation mapped in %.3f s",
         (time_us () - e->map_start_us) / 1e6);
  }
}

/* An answer of the mapping is in: make its holes local, or ask again
 * if the connection went away.
 */
static void
first_map_done (struct engine *e, struct op *op, bool lost)
{
  uint64_t b, end;

  e->maps_inflight--;
  if (lost) {
    if (!e->stopping)
      e->map_retry[e->nmap_retry++] = op->offset;
    return;
  }
  end = (op->map_end + e->params.block_size - 1) >> e->block_shift;
  if (end > e->nblocks)
    end = e->nblocks;
  for (b = op->offset >> e->block_shift; b < end; ) {
    uint64_t n = allocmap_hole_run (&e->map, b, end - b);
    if (n == 0) {
      b++;
      continue;
    }
    atomic_fetch_add_explicit (&e->hole_blocks,
                               e->ops.install_holes (e->ops.opaque, b, n),
                               memory_order_relaxed);
    b += n;
  }
}

/* Demand priority on a shared link.  A pull sent while a demand read
 * is on its way reaches the source's link with it and takes its share
 * of it (a FIFO link puts it ahead of the next demand; nbdkit's rate
 * filter hands its tokens to whichever request asks next), so no pull
 * is sent while a demand read waits or is in flight, nor for a moment
 * after the last one is answered.  What was in flight already is all
 * a demand read can find ahead of it: the pacer keeps that near the
 * link's bandwidth-delay product, and while demand reads come (for a
 * while after each, pacer_demand) to what just fills the link.
 */
static void
demand_read_done (struct engine *e)
{
  uint64_t now = time_us ();

  pacer_demand (&e->pacer, now);
  if (--e->demands_inflight == 0 && e->pacer.min_rtt_us != UINT64_MAX)
    e->hold_until_us = now + e->pacer.min_rtt_us / DEMAND_HOLD_FRACTION;
}

/* A demand read is waiting for a connection or on its way. */
static bool
demand_out (const struct engine *e)
{
  return e->queue || e->demands_inflight;
}

/* Whether pulls must wait for demand reads now; if only for the hold
 * after them, the hold timer wakes the loop when it ends.
 */
static bool
held_for_demand (struct engine *e)
{
  uint64_t now;

  if (demand_out (e))
    return true;
  if ((now = time_us ()) >= e->hold_until_us)
    return false;
  if (!ev_is_active (&e->hold)) {
    ev_timer_set (&e->hold, (e->hold_until_us - now) / 1e6, 0);
    ev_timer_start (e->loop, &e->hold);
  }
  return true;
}

/* The hold ended: the prepare watcher sends pulls again. */
void
hold_cb (struct ev_loop *loop, ev_timer *w, int revents)
{
}

/* Settling what completed. */

/* The pull connection with the least in flight. */
static struct conn *
pull_conn (struct engine *e)
{
  struct conn *best = NULL;
  for (unsigned i = e->multi_conn ? 1 : 0; i < e->nconns; i++) {
    struct conn *c = &e->conns[i];
    if (c->state == CONN_READY && (best == NULL || c->inflight < best->inflight))
      best = c;
  }
  return best;
}

/* Send pull op on c: it joins the window. */
static void
send_pull (struct engine *e, struct conn *c, struct op *op)
{
  if (demand_out (e))
    atomic_fetch_add_explicit (&e->pull_bytes_under_demand, op->count,
                               memory_order_relaxed);
  e->pulls_inflight++;
  e->pull_bytes_inflight += op->count;
  op->seq = pacer_sent (&e->pacer, op->count, time_us ());
  op_send (c, op);
}

static uint64_t
pass_errors_shown (const struct engine *e)
{
  return e->futile_passes ? 1 : PASS_ERRORS_SHOWN;
}

/* A pull the source failed (not a lost connection) may span a sector it
 * cannot read and good blocks beside it: each of its blocks is asked for
 * again at once on its own, so that only the bad ones stay absent (a
 * block that cannot be sent again fails as the pull did).  False if op
 * holds one block (its failure stands), no connection is ready or the
 * engine is stopping.
 */
static bool
split_failed_pull (struct engine *e, struct op *op)
{
  if (op->nclaims < 2 || pull_conn (e) == NULL || e->stopping)
    return false;
  for (unsigned i = 0; i < op->nclaims; i++) {
    uint64_t b = (op->offset >> e->block_shift) + i;
    struct conn *c = pull_conn (e);     /* a send may close one */
    struct op *one = c ? op_new (e, OP_PULL, 1) : NULL;
    if (one == NULL || (one->buf = buf_get (e)) == NULL) {
      e->ops.end_pull (e->ops.opaque, &op->claims[i], 1, NULL, op->error);
      free (one);
      continue;
    }
    one->offset = block_offset (e, b);
    one->count = block_length (e, b);
    one->claims[one->nclaims++] = op->claims[i];
    send_pull (e, c, one);
  }
  return true;
}

/* The blocks of a pull the source failed, asked for alone: counted
 * once per pass however many times they were asked for.  Without
 * memory for the map each failure counts (a block asked for twice, twice).
 */
static void
count_unreadable (struct engine *e, const struct op *op)
{
  uint64_t first = op->offset >> e->block_shift;

  if (e->pass_unreadable_map == NULL)
    e->pass_unreadable_map = calloc (e->nblocks / 64 + 1, sizeof (uint64_t));
  if (e->pass_unreadable_map == NULL) {
    e->pass_unreadable += op->nclaims;
    return;
  }
  for (uint64_t b = first; b < first + op->nclaims; b++)
    if (!bit_test (e->pass_unreadable_map, b)) {
      bit_set (e->pass_unreadable_map, b);
      e->pass_unreadable++;
    }
}

/* Takes op: its data goes to the writers; errors are cheap to settle
 * here.
 */
static void
finish_pull (struct engine *e, struct op *op)
{
  e->pull_bytes_inflight -= op->count;
  if (op->error == 0) {
    pacer_ack (&e->pacer, op->seq, op->count, op->done_us - op->sent_us,
               op->done_us);
    e->pass_progress = true;
  }
  else if (!lost_connection (op)) {
    e->pass_failed = true;
    /* A few per pass (a source whose storage went away fails every
     * block), and once the copy stalls on them, again after 1, 2, 4,
     * 8... futile passes only. */
    if ((e->futile_passes & (e->futile_passes - 1)) == 0 &&
        e->pass_errors++ < pass_errors_shown (e))
      say (e, true, "pulling %" PRIu32 " bytes at %" PRIu64 ": %s%s",
           op->count, op->offset, strerror (op->error),
           e->futile_passes ? " (again; retried with growing waits)" : "");
    if (split_failed_pull (e, op)) {
      retire_pull (e, op);      /* its blocks are in the new pulls */
      return;
    }
    count_unreadable (e, op);
  }
  else
    e->pass_failed = true;
  atomic_store_explicit (&e->window_bytes, e->pacer.window, memory_order_relaxed);
  atomic_store_explicit (&e->min_rtt_us, e->pacer.min_rtt_us, memory_order_relaxed);
  if (op->error == 0 && e->nwriters) {
    queue_write (e, op);
    return;
  }
  write_pull (e, op);
  retire_pull (e, op);
}


/* Settled on the engine thread after an allocation question. */
static void
finish_map (struct engine *e, struct op *op)
{
  bool lost = op->error && lost_connection (op);

  if (!lost)
    allocmap_settle (&e->map, op->offset,
                     op->error ? op->offset + op->count : op->map_end);
  if (op->first_map)
    first_map_done (e, op, lost);
  else if (op->demand == NULL)
    e->bg_map_inflight = false;
}

static void
process_done (struct engine *e)
{
  while (e->done) {
    struct op *op = e->done;
    e->done = op->next;
    op->conn->inflight--;
    if (op->kind == OP_PULL) {
      finish_pull (e, op);      /* takes op */
      continue;
    }
    if (op->kind == OP_VERIFY) {
      verify_done (e, op);
      free (op);
      continue;
    }
    if (op->kind == OP_MAP)
      finish_map (e, op);
    if (op->kind == OP_READ)
      demand_read_done (e);
    /* A demand that lost its connection goes again, unless its caller
     * gave up or the engine is stopping.
     */
    if (op->demand) {
      if (op->error && lost_connection (op) && !e->stopping &&
          !demand_abandoned (e, op->demand))
        requeue (e, op->demand);
      else
        demand_finish (e, op->demand, op->kind == OP_MAP ? 0 : op->error);
    }
    free (op);
  }
}

/* Pulls. */

/* The next block worth pulling: one held back, else the order's next,
 * else the sweep's.  Local blocks are skipped.
 */
static bool
next_candidate (struct engine *e, uint64_t *b)
{
  if (e->held_valid) {
    e->held_valid = false;
    if (!e->ops.is_present (e->ops.opaque, e->held)) {
      *b = e->held;
      return true;
    }
  }
  while (e->order && e->order->next (e->order, b))
    if (*b < e->nblocks && !e->ops.is_present (e->ops.opaque, *b))
      return true;
  while (e->sweep_pos < e->nblocks) {
    *b = e->sweep_pos++;
    if (!e->ops.is_present (e->ops.opaque, *b)) {
      e->pass_found_absent = true;
      return true;
    }
  }
  return false;
}

static void
hold (struct engine *e, uint64_t b)
{
  e->held = b;
  e->held_valid = true;
}

static void
send_map (struct engine *e, struct conn *c, uint64_t b)
{
  struct op *op = op_new (e, OP_MAP, 0);
  if (op == NULL)
    return;
  op->offset = block_offset (e, b);
  op->count = e->size - op->offset < MAP_CHUNK ? e->size - op->offset : MAP_CHUNK;
  e->bg_map_inflight = true;
  op_send (c, op);
}

/* Start one pull request on c: a run of consecutive data blocks, as
 * long as the pacer wants requests to be.  Runs of holes on the way are
 * made local at once, a run per call of install_holes.  False when
 * there is nothing to send now.
 */
static bool
pull_next (struct engine *e, struct conn *c, unsigned *hole_budget)
{
  unsigned max_blocks = pacer_request_size (&e->pacer, e->params.block_size,
                                           time_us ()) >> e->block_shift;
  struct op *op = NULL;
  uint64_t b, last = 0;

  while (next_candidate (e, &b)) {
    if (!allocmap_known (&e->map, b)) {
      hold (e, b);
      if (!e->bg_map_inflight && op == NULL)
        send_map (e, c, b);
      break;
    }
    bool zero = allocmap_zero (&e->map, b);
    if (op && (zero || b != last + 1 || op->nclaims == max_blocks)) {
      hold (e, b);
      break;
    }
    if (zero) {
      /* The sweep then skips the blocks made local (is_present). */
      uint64_t n = allocmap_hole_run (&e->map, b, *hole_budget);
      uint64_t made = e->ops.install_holes (e->ops.opaque, b, n);
      if (made) {
        e->pass_pulled = true;
        atomic_fetch_add_explicit (&e->hole_blocks, made, memory_order_relaxed);
      }
      if ((*hole_budget -= n) == 0)
        break;
      continue;
    }
    void *token = e->ops.begin_pull (e->ops.opaque, b);
    if (token == NULL)
      continue;
    e->pass_pulled = true;
    if (op == NULL) {
      if ((op = op_new (e, OP_PULL, e->max_pull >> e->block_shift)) == NULL ||
          (op->buf = buf_get (e)) == NULL) {
        e->ops.end_pull (e->ops.opaque, &token, 1, NULL, ENOMEM);
        free (op);
        return false;
      }
      op->offset = block_offset (e, b);
    }
    op->claims[op->nclaims++] = token;
    op->count += block_length (e, b);
    last = b;
  }
  if (op == NULL)
    return false;
  send_pull (e, c, op);
  return true;
}

/* The sweep reached the end.  Once nothing it started is in flight,
 * either every block is local (done), or go round again: at once if
 * the pass pulled everything it could, after a pause if some blocks
 * were busy (a guest's fetch) or failed.
 */
static void
end_of_pass (struct engine *e)
{
  if (e->pulls_inflight || e->held_valid || e->bg_map_inflight ||
      ev_is_active (&e->rescan))
    return;
  uint64_t unreadable = e->pass_unreadable;
  e->pass_unreadable = 0;
  free (e->pass_unreadable_map);
  e->pass_unreadable_map = NULL;
  if (!e->pass_found_absent) {
    e->pulling = false;
    atomic_store_explicit (&e->unreadable_blocks, 0, memory_order_relaxed);
    say (e, false, "background copy complete");
    return;
  }
  /* A pass whose pulls only lost their connection says nothing new of
   * what the source can read. */
  if (unreadable || e->pass_progress || !e->pass_failed)
    atomic_store_explicit (&e->unreadable_blocks, unreadable,
                           memory_order_relaxed);
  if (e->pass_errors > pass_errors_shown (e))
    say (e, true, "and %" PRIu64 " more pulls failed in this pass",
         e->pass_errors - pass_errors_shown (e));
  e->pass_errors = 0;
  if (e->pass_progress || !e->pass_failed)
    e->futile_passes = 0;
  if (e->pass_pulled && !e->pass_failed)
    e->sweep_pos = 0;
  else {
    /* Set each time: a timer that ran out starts again at once. */
    unsigned doublings = e->futile_passes < RESCAN_DOUBLINGS
                         ? e->futile_passes : RESCAN_DOUBLINGS;
    ev_timer_set (&e->rescan, (RESCAN_MS << doublings) / 1000.0, 0);
    ev_timer_start (e->loop, &e->rescan);
    if (e->pass_failed && e->futile_passes < UINT_MAX)
      e->futile_passes++;
  }
  e->pass_found_absent = e->pass_pulled = e->pass_failed = false;
  e->pass_progress = false;
}

void
rescan_cb (struct ev_loop *loop, ev_timer *w, int revents)
{
  struct engine *e = w->data;
  e->sweep_pos = 0;
}

static void
fill (struct engine *e)
{
  unsigned hole_budget = HOLE_BUDGET;

  dispatch_demands (e);
  if (e->mapping)
    map_fill (e);
  if (!e->pulling || atomic_load_explicit (&e->paused, memory_order_relaxed))
    return;
  if (held_for_demand (e))
    return;
  while (e->pulls_inflight < e->params.inflight &&
         pacer_may_send (&e->pacer, e->pull_bytes_inflight, time_us ())) {
    struct conn *c = pull_conn (e);
    uint64_t wait;

    if (c == NULL)
      return;
    if ((wait = pacer_wait_us (&e->pacer, time_us ())) > 0) {
      if (!ev_is_active (&e->pace)) {
        ev_timer_set (&e->pace, wait / 1e6, 0);
        ev_timer_start (e->loop, &e->pace);
      }
      return;
    }
    if (!pull_next (e, c, &hole_budget))
      break;
  }
  if (hole_budget == 0)
    ev_idle_start (e->loop, &e->more);
  else if (e->sweep_pos >= e->nblocks)
    end_of_pass (e);
}

/* The cap or the guest's headroom allows another pull: the prepare
 * watcher sends it.
 */
void
pace_cb (struct ev_loop *loop, ev_timer *w, int revents)
{
}

void
more_cb (struct ev_loop *loop, ev_idle *w, int revents)
{
  ev_idle_stop (loop, w);
}

/* Before the loop sleeps: settle what completed, send what can be
 * sent, and watch each connection in the direction libnbd needs.
 */
void
prepare_cb (struct ev_loop *loop, ev_prepare *w, int revents)
{
  struct engine *e = w->data;

  do {
    process_done (e);
    fill (e);
  } while (e->done);
  for (unsigned i = 0; i < e->nconns; i++)
    if (e->conns[i].nbd)
      watch (&e->conns[i]);
}

/* Messages from other threads. */
void
wake_cb (struct ev_loop *loop, ev_async *w, int revents)
{
  struct engine *e = w->data;
  struct engine_order *old = NULL;
  bool verify = false;

  pthread_mutex_lock (&e->lock);
  if (e->inbox) {
    *e->queue_tail = e->inbox;
    e->queue_tail = e->inbox_tail;
    e->inbox = NULL;
    e->inbox_tail = &e->inbox;
  }
  if (e->order_changed) {
    old = e->order;
    e->order = e->new_order;
    e->new_order = NULL;
    e->order_changed = false;
  }
  if (e->identity_new) {
    e->identity_new = false;
    e->has_identity = verify = true;
    /* The filter has just read the samples over the source itself. */
    pacer_charge (&e->pacer, identity_bytes (e->samples, e->nsamples));
  }
  if (e->start_pulls) {
    e->start_pulls = false;
    e->mapping = true;
    e->map_next = e->map.enabled ? 0 : e->size;
    e->map_start_us = time_us ();
  }
  atomic_store_explicit (&e->paused, e->want_paused, memory_order_relaxed);
  if (e->cap_changed) {
    e->cap_changed = false;
    pacer_set_cap (&e->pacer, e->new_cap, time_us ());
    atomic_store_explicit (&e->cap, e->new_cap, memory_order_relaxed);
    ev_timer_stop (loop, &e->pace);     /* a wait for the old cap */
  }
  if (e->stopping)
    ev_break (loop, EVBREAK_ALL);
  pthread_mutex_unlock (&e->lock);
  if (old)
    old->free (old);
  if (verify)
    verify_all (e);
  collect_written (e);
}

void *
engine_thread (void *arg)
{
  struct engine *e = arg;

  writers_start (e);
  for (unsigned i = 1; i < e->nconns; i++)
    conn_connect (&e->conns[i]);
  ev_run (e->loop, 0);

  /* Stopping: take the replies still on their way, close the
   * connections (what is still in flight fails), then fail every demand
   * still waiting.
   */
  conns_drain (e);
  for (unsigned i = 0; i < e->nconns; i++)
    conn_close (&e->conns[i]);
  process_done (e);
  writers_stop (e);
  wake_cb (e->loop, &e->wake, 0);       /* the last demands and writes */
  while (e->queue) {
    struct demand *d = e->queue;
    e->queue = d->next;
    demand_finish (e, d, EIO);
  }
  atomic_store (&e->connected, false);
  return NULL;
}
