/* The shadowing engine's public interface (engine.h), and the requests
 * other threads hand to the engine thread: demand reads and allocation
 * questions, each waited for with a deadline.  How the engine works
 * inside is in engine-internal.h.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "engine-internal.h"

void
say (struct engine *e, bool error, const char *fmt, ...)
{
  char msg[512];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  e->ops.log (e->ops.opaque, error, msg);
}

/* Demands: requests from other threads. */

static void
demand_put_locked (struct demand *d)
{
  if (--d->refs == 0) {
    pthread_cond_destroy (&d->cond);
    free (d->buf);
    free (d);
  }
}

void
demand_finish (struct engine *e, struct demand *d, int error)
{
  pthread_mutex_lock (&e->lock);
  d->error = error;
  d->done = true;
  pthread_cond_signal (&d->cond);
  demand_put_locked (d);
  pthread_mutex_unlock (&e->lock);
}

bool
demand_abandoned (struct engine *e, struct demand *d)
{
  bool r;
  pthread_mutex_lock (&e->lock);
  r = d->abandoned;
  pthread_mutex_unlock (&e->lock);
  return r;
}

/* A request owned by its caller (one reference), with a buffer of
 * count bytes unless it is an allocation query.
 */
static struct demand *
demand_new (struct engine *e, bool map, uint64_t offset, uint32_t count)
{
  struct demand *d = calloc (1, sizeof *d);
  if (d == NULL)
    return NULL;
  if (!map && (d->buf = malloc (count ? count : 1)) == NULL) {
    free (d);
    return NULL;
  }
  d->map = map;
  d->offset = offset;
  d->count = count;
  d->refs = 1;
  pthread_cond_init (&d->cond, &e->condattr);
  return d;
}

static void
demand_release (struct engine *e, struct demand *d)
{
  pthread_mutex_lock (&e->lock);
  demand_put_locked (d);
  pthread_mutex_unlock (&e->lock);
}

/* Hand d to the engine and wait for it, at most `patience` times the
 * timeout: a late answer to the same request is still an answer, where
 * asking again would start the wait over (a source slower than the
 * timeout would never answer in time).  The caller still holds its
 * reference afterwards.
 */
static int
demand_run (struct engine *e, struct demand *d, unsigned patience, int *err)
{
  struct timespec deadline = deadline_after_ms (CLOCK_MONOTONIC,
                                                e->params.timeout_ms);
  int r = 0;

  pthread_mutex_lock (&e->lock);
  if (e->stopping) {
    pthread_mutex_unlock (&e->lock);
    *err = EIO;
    return -1;
  }
  d->refs++;
  *e->inbox_tail = d;
  e->inbox_tail = &d->next;
  ev_async_send (e->loop, &e->wake);
  for (unsigned waited = 1; !d->done; waited++) {
    while (!d->done &&
           pthread_cond_timedwait (&d->cond, &e->lock, &deadline) != ETIMEDOUT)
      ;
    if (d->done || waited >= patience || e->stopping)
      break;
    pthread_mutex_unlock (&e->lock);
    say (e, false, "no answer from the source within %u ms (offset %" PRIu64
         "): waiting on", waited * e->params.timeout_ms, d->offset);
    deadline = deadline_after_ms (CLOCK_MONOTONIC, e->params.timeout_ms);
    pthread_mutex_lock (&e->lock);
  }
  if (!d->done) {
    d->abandoned = true;
    *err = EIO;
    r = -1;
  }
  else if (d->error) {
    *err = d->error;
    r = -1;
  }
  pthread_mutex_unlock (&e->lock);
  if (r == -1 && !d->done)
    say (e, true, "no answer from the source within %u ms (offset %" PRIu64
         ", %" PRIu32 " bytes)", patience * e->params.timeout_ms, d->offset,
         d->count);
  return r;
}

/* The public interface. */

struct engine *
engine_open (const struct engine_source *src, const struct engine_params *params,
             const struct engine_ops *ops, uint64_t *size)
{
  struct engine *e = calloc (1, sizeof *e);
  struct nbd_handle *h = NULL;
  bool has_map;
  int64_t max_block;

  if (e == NULL)
    return NULL;
  e->src = *src;
  e->params = *params;
  e->ops = *ops;
  e->block_shift = __builtin_ctz (params->block_size);
  pthread_mutex_init (&e->lock, NULL);
  pthread_condattr_init (&e->condattr);
  pthread_condattr_setclock (&e->condattr, CLOCK_MONOTONIC);
  pthread_cond_init (&e->write_cond, NULL);
  e->inbox_tail = &e->inbox;
  e->queue_tail = &e->queue;
  e->to_write_tail = &e->to_write;

  if ((h = handle_new (e)) == NULL || handle_connect (e, h, true) == -1) {
    say (e, true, "cannot connect to the source: %s", nbd_get_error ());
    goto error;
  }
  if (handle_check (e, h, &e->size) == -1)
    goto error;
  e->nblocks = (e->size + params->block_size - 1) >> e->block_shift;
  e->multi_conn = nbd_can_multi_conn (h) == 1;
  has_map = nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1;
  e->nconns = e->multi_conn ? 1 + params->connections : 1;
  if (e->nconns > MAX_CONNECTIONS)
    e->nconns = MAX_CONNECTIONS;
  e->max_pull = MAX_PULL_BYTES > params->block_size ? MAX_PULL_BYTES
                                                    : params->block_size;
  max_block = nbd_get_block_size (h, LIBNBD_SIZE_MAXIMUM);
  if (max_block >= params->block_size && max_block < e->max_pull)
    e->max_pull = max_block & ~(uint64_t) (params->block_size - 1);
  say (e, false, "source: %" PRIu64 " bytes, multi-conn %s, allocation map %s, "
       "%u connection(s)", e->size, e->multi_conn ? "yes" : "no",
       has_map ? "yes" : "no", e->nconns);

  e->buf_pool = calloc (params->inflight, sizeof (char *));
  if (e->buf_pool == NULL ||
      allocmap_init (&e->map, e->size, params->block_size, has_map) == -1) {
    say (e, true, "cannot allocate the engine's maps");
    goto error;
  }
  pacer_init (&e->pacer, params->block_size,
              (uint64_t) params->inflight * e->max_pull, e->max_pull,
              params->bandwidth, time_us ());
  atomic_store (&e->cap, params->bandwidth);

  if ((e->loop = ev_loop_new (EVFLAG_AUTO)) == NULL) {
    say (e, true, "cannot create an event loop");
    goto error;
  }
  ev_async_init (&e->wake, wake_cb);
  ev_prepare_init (&e->prepare, prepare_cb);
  ev_timer_init (&e->pace, pace_cb, 0, 0);
  ev_timer_init (&e->rescan, rescan_cb, RESCAN_MS / 1000.0, 0);
  ev_idle_init (&e->more, more_cb);
  ev_timer_init (&e->hold, hold_cb, 0, 0);
  e->wake.data = e->prepare.data = e->pace.data = e->rescan.data = e;
  e->more.data = e->hold.data = e;
  ev_async_start (e->loop, &e->wake);
  ev_prepare_start (e->loop, &e->prepare);
  for (unsigned i = 0; i < e->nconns; i++)
    conn_init (e, i);
  e->conns[0].nbd = h;
  e->conns[0].state = CONN_READY;
  e->conns[0].was_up = true;
  h = NULL;
  update_connected (e);

  if (pthread_create (&e->thread, NULL, engine_thread, e) != 0) {
    say (e, true, "cannot start the engine thread");
    goto error;
  }
  e->thread_started = true;
  *size = e->size;
  return e;

 error:
  if (h)
    nbd_close (h);
  e->stopped = true;
  engine_free (e);
  return NULL;
}

void
engine_start_pulls (struct engine *e, struct engine_order *order)
{
  pthread_mutex_lock (&e->lock);
  e->start_pulls = true;
  pthread_mutex_unlock (&e->lock);
  engine_set_order (e, order);
}

/* A message for the engine thread, under the lock, then its wake-up. */
static void
tell (struct engine *e)
{
  if (!e->stopping)
    ev_async_send (e->loop, &e->wake);
  pthread_mutex_unlock (&e->lock);
}

void
engine_set_paused (struct engine *e, bool paused)
{
  pthread_mutex_lock (&e->lock);
  e->want_paused = paused;
  tell (e);
}

void
engine_set_bandwidth (struct engine *e, uint64_t bytes_per_s)
{
  pthread_mutex_lock (&e->lock);
  e->new_cap = bytes_per_s;
  e->cap_changed = true;
  tell (e);
}

void
engine_start_mapping (struct engine *e)
{
  pthread_mutex_lock (&e->lock);
  e->map_only = true;
  e->start_pulls = true;
  tell (e);
}

void
engine_set_identity (struct engine *e, const unsigned char digest[32])
{
  pthread_mutex_lock (&e->lock);
  memcpy (e->identity, digest, sizeof e->identity);
  e->nsamples = identity_plan (e->size, e->samples);
  e->identity_new = true;
  tell (e);
}

void
engine_set_order (struct engine *e, struct engine_order *order)
{
  struct engine_order *unused;

  pthread_mutex_lock (&e->lock);
  unused = e->new_order;
  e->new_order = order;
  e->order_changed = true;
  tell (e);
  if (unused)
    unused->free (unused);
}

int
engine_pread (struct engine *e, void *buf, uint32_t count, uint64_t offset,
              int *err)
{
  return engine_pread_patient (e, buf, count, offset, 1, err);
}

int
engine_pread_patient (struct engine *e, void *buf, uint32_t count,
                      uint64_t offset, unsigned patience, int *err)
{
  struct demand *d;
  int r;

  if (allocmap_range_is_zero (&e->map, offset, count)) {
    memset (buf, 0, count);
    return 0;
  }
  if ((d = demand_new (e, false, offset, count)) == NULL) {
    *err = ENOMEM;
    return -1;
  }
  r = demand_run (e, d, patience, err);
  if (r == 0)
    memcpy (buf, d->buf, count);
  demand_release (e, d);
  return r;
}

int
engine_extents (struct engine *e, uint64_t offset, uint64_t count,
                engine_extent_fn fn, void *opaque, int *err)
{
  uint64_t end = offset + count, pos = offset, b;

  if (!e->map.enabled)
    return fn (opaque, offset, count, false);

  /* Ask the source about the first block not known yet (and what
   * follows it); if it cannot say in time, unknown counts as data.
   */
  b = allocmap_first_unknown (&e->map, offset, end);
  if (block_offset (e, b) < end) {
    uint64_t from = block_offset (e, b);
    struct demand *d = demand_new (e, true, from,
                                   end - from < MAP_CHUNK ? end - from : MAP_CHUNK);
    int ignored;
    if (d) {
      demand_run (e, d, 1, &ignored);
      demand_release (e, d);
    }
  }

  while (pos < end) {
    bool zero;
    uint64_t run_end = allocmap_run_end (&e->map, pos, end, &zero);
    if (fn (opaque, pos, run_end - pos, zero) == -1) {
      *err = errno ? errno : EIO;
      return -1;
    }
    pos = run_end;
  }
  return 0;
}

void
engine_get_stats (struct engine *e, struct engine_stats *st)
{
  st->connected = atomic_load_explicit (&e->connected, memory_order_relaxed);
  st->reconnects = atomic_load_explicit (&e->reconnects, memory_order_relaxed);
  st->hole_blocks = atomic_load_explicit (&e->hole_blocks, memory_order_relaxed);
  st->window_bytes = atomic_load_explicit (&e->window_bytes, memory_order_relaxed);
  st->min_rtt_us = atomic_load_explicit (&e->min_rtt_us, memory_order_relaxed);
  st->paused = atomic_load_explicit (&e->paused, memory_order_relaxed);
  st->bandwidth = atomic_load_explicit (&e->cap, memory_order_relaxed);
  st->pull_bytes_under_demand =
    atomic_load_explicit (&e->pull_bytes_under_demand, memory_order_relaxed);
  st->mapping = atomic_load_explicit (&e->mapping, memory_order_relaxed);
  st->unreadable_blocks =
    atomic_load_explicit (&e->unreadable_blocks, memory_order_relaxed);
}

void
engine_stop (struct engine *e)
{
  bool join;

  pthread_mutex_lock (&e->lock);
  e->stopping = true;
  join = e->thread_started && !e->stopped;
  e->stopped = true;
  if (join)
    ev_async_send (e->loop, &e->wake);
  pthread_mutex_unlock (&e->lock);
  if (join)
    pthread_join (e->thread, NULL);
}

void
engine_free (struct engine *e)
{
  if (e == NULL)
    return;
  engine_stop (e);
  for (unsigned i = 0; i < e->buf_pool_len; i++)
    free (e->buf_pool[i]);
  free (e->buf_pool);
  if (e->order)
    e->order->free (e->order);
  if (e->new_order)
    e->new_order->free (e->new_order);
  if (e->loop)
    ev_loop_destroy (e->loop);
  allocmap_free (&e->map);
  free (e->pass_unreadable_map);
  pthread_cond_destroy (&e->write_cond);
  pthread_condattr_destroy (&e->condattr);
  pthread_mutex_destroy (&e->lock);
  free (e);
}
