/* The shadowing engine (see engine.h for what it does).
 *
 * Threads: everything that touches a libnbd handle or the libev loop
 * runs on the engine thread.  Other threads talk to it through a
 * mutex-protected inbox and an ev_async; a demand read waits on its own
 * condition variable, with a deadline, and owns nothing the engine may
 * still write to (the engine reads into a buffer of the request, which
 * lives until both sides let go).
 *
 * Writing pulled data into the shadow is the owner's end_pull, and it
 * costs more CPU than receiving it (the kernel's copy into the page
 * cache): done on the engine thread it starved the network.  So
 * completed pulls go to a writer thread (or a few), started and joined by
 * the engine thread, and come back to it once written, their buffers to
 * be recycled.  Until then they hold a buffer, so inflight bounds the
 * data waiting to be written; the pull window counts only what is on
 * the wire, so that the source keeps sending while a pull is written
 * (counting both, a 1 GiB copy over a unix socket took 8-14 % longer).
 *
 * Every command sent to the source is an `op`.  libnbd calls the op's
 * completion callback and then its free callback exactly once, also
 * when the handle dies or is closed; the free callback queues the op on
 * a done list that the loop processes outside libnbd's callbacks (never
 * call nbd_* on a handle from inside its own callback).
 */

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>
#include <libnbd.h>

#include "engine.h"
#include "pacer.h"

#define MAX_CONNECTIONS 16
/* Largest pull request; the pacer picks smaller ones on slow links (a
 * millisecond of the link or half its window, whichever is larger).  On a local link that is megabytes: fewer,
 * larger requests mean fewer replies, wake-ups and writes per GiB.
 */
#define MAX_PULL_BYTES (2 * 1024 * 1024)
/* One block status request asks about this much of the disk. */
#define MAP_CHUNK (UINT64_C (1) << 30)
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
/* Wait before sweeping again when the last pass could not pull all. */
#define RESCAN_MS 200
/* Hole blocks made local per loop iteration, so that demand is never
 * held up long (a run of them costs a few ns per block).
 */
#define HOLE_BUDGET 65536
/* Threads writing pulled data to the shadow.  One: buffered writes to
 * one file serialize on its inode lock (ext4, xfs), and a second writer
 * only spun on that lock (12 % of the filter's samples).
 */
#define WRITERS 1

enum conn_state { CONN_DOWN, CONN_CONNECTING, CONN_READY };

struct conn {
  struct engine *e;
  unsigned index;
  struct nbd_handle *nbd;
  enum conn_state state;
  bool was_up;                  /* reached READY before: a reconnect */
  ev_io io;
  ev_timer retry;
  unsigned backoff_ms;
  unsigned inflight;
};

enum op_kind { OP_PULL, OP_READ, OP_MAP };

/* A request from another thread: a demand read, or an allocation query. */
struct demand {
  struct demand *next;
  bool map;
  uint64_t offset;
  uint32_t count;
  char *buf;                    /* the engine reads into this */
  int error;
  bool done, abandoned;
  unsigned refs;                /* the caller and the engine; under e->lock */
  pthread_cond_t cond;
};

/* One command sent to the source. */
struct op {
  struct op *next;              /* done list */
  enum op_kind kind;
  struct engine *e;
  struct conn *conn;
  uint64_t offset;
  uint32_t count;
  uint64_t map_end;             /* OP_MAP: how far the answer reached */
  int error;
  bool completed;
  uint64_t sent_us, done_us, seq;
  char *buf;
  struct demand *demand;        /* OP_READ, and OP_MAP asked by a caller */
  unsigned nclaims;
  void *claims[];               /* OP_PULL: one token per block */
};

struct engine {
  struct engine_source src;
  struct engine_params params;
  struct engine_ops ops;
  uint64_t size, nblocks;
  unsigned block_shift;
  uint32_t max_pull;
  bool multi_conn, has_map;

  struct ev_loop *loop;
  ev_async wake;
  ev_prepare prepare;
  ev_timer pace;                /* the bandwidth cap's wait */
  ev_timer rescan;              /* the wait before another sweep pass */
  ev_idle more;                 /* more holes to mark: run fill again */
  pthread_t thread;
  bool thread_started;
  pthread_t writers[WRITERS];
  unsigned nwriters;            /* started; 0: the engine thread writes */
  struct conn conns[MAX_CONNECTIONS];
  unsigned nconns;

  /* Shared with other threads, under lock. */
  pthread_mutex_t lock;
  pthread_condattr_t condattr;
  struct demand *inbox, **inbox_tail;
  struct engine_order *new_order;
  bool order_changed, start_pulls;
  bool stopping;                /* new demands fail at once */
  bool stopped;                 /* the thread is gone */
  pthread_cond_t write_cond;    /* to_write is not empty, or writers_stop */
  struct op *to_write, **to_write_tail; /* pulls for the writers, in order */
  struct op *written;           /* pulls the writers are done with */
  bool writers_stop;

  /* Published counters (relaxed: statistics). */
  _Atomic bool connected;
  _Atomic uint64_t reconnects, hole_blocks, window_bytes, min_rtt_us;

  /* Engine thread only. */
  struct demand *queue, **queue_tail;   /* demands waiting for a connection */
  struct op *done;
  bool pulling;
  struct engine_order *order;
  uint64_t sweep_pos;
  bool pass_found_absent, pass_pulled, pass_failed;
  bool held_valid;
  uint64_t held;                /* a candidate taken but not used yet */
  bool bg_map_inflight;
  struct pacer pacer;
  uint64_t pull_bytes_inflight; /* on the wire: the pacer's window */
  unsigned pulls_inflight;      /* sent and not yet written: buffers */
  char **buf_pool;
  unsigned buf_pool_len;

  /* Allocation of the source, per block: known, and if so all zero.
   * Written by the engine thread only.
   */
  _Atomic uint64_t *map_known, *map_zero;
};

static uint64_t
now_us (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void __attribute__ ((format (printf, 3, 4)))
say (struct engine *e, bool error, const char *fmt, ...)
{
  char msg[512];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  e->ops.log (e->ops.opaque, error, msg);
}

static uint64_t block_offset (struct engine *e, uint64_t b) { return b << e->block_shift; }

static uint32_t
block_length (struct engine *e, uint64_t b)
{
  uint64_t left = e->size - block_offset (e, b);
  return left < e->params.block_size ? left : e->params.block_size;
}

/* The allocation map. */

static bool
bit (_Atomic uint64_t *map, uint64_t b)
{
  return (atomic_load_explicit (&map[b / 64], memory_order_acquire) >> (b % 64)) & 1;
}

/* Bits [lo, hi) of a word, 0 <= lo < hi <= 64. */
static uint64_t
word_bits (unsigned lo, unsigned hi)
{
  return (hi - lo == 64 ? ~UINT64_C (0) : (UINT64_C (1) << (hi - lo)) - 1) << lo;
}

/* Blocks [first, end) are known to be zero or data; with only_unknown,
 * blocks known already keep what they were.  A word at a time: a sparse
 * source describes millions of blocks in one answer.
 */
static void
map_set_run (struct engine *e, uint64_t first, uint64_t end, bool zero,
             bool only_unknown)
{
  if (end > e->nblocks)
    end = e->nblocks;
  for (uint64_t b = first; b < end; ) {
    uint64_t w = b / 64, hi = (w + 1) * 64 < end ? (w + 1) * 64 : end;
    uint64_t m = word_bits (b % 64, hi - w * 64);
    if (only_unknown)
      m &= ~atomic_load_explicit (&e->map_known[w], memory_order_relaxed);
    if (zero)
      atomic_fetch_or_explicit (&e->map_zero[w], m, memory_order_relaxed);
    else
      atomic_fetch_and_explicit (&e->map_zero[w], ~m, memory_order_relaxed);
    atomic_fetch_or_explicit (&e->map_known[w], m, memory_order_release);
    b = hi;
  }
}

static bool map_known (struct engine *e, uint64_t b) { return !e->has_map || bit (e->map_known, b); }
static bool map_zero (struct engine *e, uint64_t b) { return e->has_map && bit (e->map_zero, b); }

/* Blocks entirely inside [from, to) are zero. */
static void
map_mark_zero (struct engine *e, uint64_t from, uint64_t to)
{
  map_set_run (e, (from + e->params.block_size - 1) >> e->block_shift,
               to >= e->size ? e->nblocks : to >> e->block_shift, true, false);
}

/* Blocks touching [from, to) hold data.  A zero run never covers them
 * later in the same answer: zero runs only mark whole blocks.
 */
static void
map_mark_data (struct engine *e, uint64_t from, uint64_t to)
{
  map_set_run (e, from >> e->block_shift,
               (to + e->params.block_size - 1) >> e->block_shift, false, false);
}

/* Extents of one block status answer: consecutive zero extents form
 * one run (a block may be covered by two of them).
 */
static int
map_extents (void *user_data, const char *metacontext, uint64_t offset,
             uint32_t *entries, size_t n, int *error)
{
  struct op *op = user_data;
  struct engine *e = op->e;
  uint64_t pos = offset, zero_from = UINT64_MAX;

  if (strcmp (metacontext, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0)
    return 0;
  for (size_t i = 0; i + 1 < n && pos < e->size; i += 2) {
    uint64_t end = pos + entries[i] < e->size ? pos + entries[i] : e->size;
    if (entries[i + 1] & LIBNBD_STATE_ZERO) {
      if (zero_from == UINT64_MAX)
        zero_from = pos;
    }
    else {
      if (zero_from != UINT64_MAX)
        map_mark_zero (e, zero_from, pos);
      zero_from = UINT64_MAX;
      map_mark_data (e, pos, end);
    }
    pos = end;
  }
  if (zero_from != UINT64_MAX)
    map_mark_zero (e, zero_from, pos);
  if (pos > op->map_end)
    op->map_end = pos;
  return 0;
}

/* After an answer (or an error the source will repeat), whatever it
 * covered without proving zero is data: never ask about it again.
 */
static void
map_settle (struct engine *e, uint64_t from, uint64_t to)
{
  map_set_run (e, from >> e->block_shift,
               (to + e->params.block_size - 1) >> e->block_shift, false, true);
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

static void
demand_finish (struct engine *e, struct demand *d, int error)
{
  pthread_mutex_lock (&e->lock);
  d->error = error;
  d->done = true;
  pthread_cond_signal (&d->cond);
  demand_put_locked (d);
  pthread_mutex_unlock (&e->lock);
}

static bool
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

/* Hand d to the engine and wait for it, at most the timeout.  The
 * caller still holds its reference afterwards.
 */
static int
demand_run (struct engine *e, struct demand *d, int *err)
{
  struct timespec deadline;
  int r = 0;

  clock_gettime (CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += e->params.timeout_ms / 1000;
  deadline.tv_nsec += (e->params.timeout_ms % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000L;
  }

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
  while (!d->done &&
         pthread_cond_timedwait (&d->cond, &e->lock, &deadline) != ETIMEDOUT)
    ;
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
         ", %" PRIu32 " bytes)", e->params.timeout_ms, d->offset, d->count);
  return r;
}

/* Connections. */

static struct nbd_handle *
handle_new (struct engine *e)
{
  const struct engine_source *s = &e->src;
  struct nbd_handle *h = nbd_create ();
  static const int tls_mode[] = {
    [ENGINE_TLS_OFF] = LIBNBD_TLS_DISABLE,
    [ENGINE_TLS_ON] = LIBNBD_TLS_ALLOW,
    [ENGINE_TLS_REQUIRE] = LIBNBD_TLS_REQUIRE,
  };

  if (h == NULL)
    return NULL;
  /* Buffers are used only after a successful read fills them: libnbd
   * need not zero each one first (a memset of every pulled byte).
   */
  if (nbd_set_pread_initialize (h, false) == -1 ||
      (s->export && nbd_set_export_name (h, s->export) == -1) ||
      nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION) == -1 ||
      nbd_set_uri_allow_local_file (h, true) == -1 ||
      (s->tls != ENGINE_TLS_DEFAULT && nbd_set_tls (h, tls_mode[s->tls]) == -1) ||
      (s->tls_certificates &&
       nbd_set_tls_certificates (h, s->tls_certificates) == -1) ||
      (s->tls_verify >= 0 && nbd_set_tls_verify_peer (h, s->tls_verify) == -1) ||
      (s->tls_username && nbd_set_tls_username (h, s->tls_username) == -1) ||
      (s->tls_psk && nbd_set_tls_psk_file (h, s->tls_psk) == -1)) {
    nbd_close (h);
    return NULL;
  }
  return h;
}

static int
handle_connect (struct engine *e, struct nbd_handle *h, bool sync)
{
  const struct engine_source *s = &e->src;
  const char *port = s->port ? s->port : "10809";

  if (s->uri)
    return sync ? nbd_connect_uri (h, s->uri) : nbd_aio_connect_uri (h, s->uri);
  if (s->socket)
    return sync ? nbd_connect_unix (h, s->socket)
                : nbd_aio_connect_unix (h, s->socket);
  return sync ? nbd_connect_tcp (h, s->hostname, port)
              : nbd_aio_connect_tcp (h, s->hostname, port);
}

/* A connected handle is usable if it is what we asked for: TLS when
 * required (never fall back to plaintext), and the same disk.
 */
static int
handle_check (struct engine *e, struct nbd_handle *h, uint64_t *size)
{
  bool tls_required = e->src.tls == ENGINE_TLS_REQUIRE ||
    (e->src.uri && strncmp (e->src.uri, "nbds", 4) == 0);
  int64_t sz;

  if (tls_required && nbd_get_tls_negotiated (h) != 1) {
    say (e, true, "the source did not negotiate TLS, which is required: "
         "refusing a plaintext connection");
    return -1;
  }
  if ((sz = nbd_get_size (h)) == -1) {
    say (e, true, "source: %s", nbd_get_error ());
    return -1;
  }
  if (size)
    *size = sz;
  else if ((uint64_t) sz != e->size) {
    say (e, true, "the source's size changed from %" PRIu64 " to %" PRId64
         ": refusing it", e->size, sz);
    return -1;
  }
  return 0;
}

static void
watch (struct conn *c)
{
  unsigned dir = nbd_aio_get_direction (c->nbd);
  int events = ((dir & LIBNBD_AIO_DIRECTION_READ) ? EV_READ : 0) |
               ((dir & LIBNBD_AIO_DIRECTION_WRITE) ? EV_WRITE : 0);
  int fd = nbd_aio_get_fd (c->nbd);

  if (fd == -1)
    return;
  if (ev_is_active (&c->io) && c->io.fd == fd && c->io.events == events)
    return;
  ev_io_stop (c->e->loop, &c->io);
  ev_io_set (&c->io, fd, events);
  ev_io_start (c->e->loop, &c->io);
}

static void
update_connected (struct engine *e)
{
  bool up = false;
  for (unsigned i = 0; i < e->nconns; i++)
    up |= e->conns[i].state == CONN_READY;
  atomic_store_explicit (&e->connected, up, memory_order_relaxed);
}

static void
conn_down (struct conn *c, const char *why)
{
  struct engine *e = c->e;

  if (c->state == CONN_READY)
    say (e, true, "lost connection %u to the source (%s): reconnecting",
         c->index, why);
  else
    say (e, false, "connection %u to the source failed (%s): retrying in %u ms",
         c->index, why, c->backoff_ms);
  ev_io_stop (e->loop, &c->io);
  if (c->nbd) {
    struct nbd_handle *h = c->nbd;
    c->nbd = NULL;
    nbd_close (h);              /* retires what was in flight: done list */
  }
  c->state = CONN_DOWN;
  ev_timer_set (&c->retry, c->backoff_ms / 1000.0, 0);
  ev_timer_start (e->loop, &c->retry);
  c->backoff_ms = c->backoff_ms * 2 < BACKOFF_MAX_MS ? c->backoff_ms * 2
                                                     : BACKOFF_MAX_MS;
  update_connected (e);
}

static void
conn_up (struct conn *c)
{
  struct engine *e = c->e;

  if (handle_check (e, c->nbd, NULL) == -1) {
    conn_down (c, "refused");
    return;
  }
  c->state = CONN_READY;
  c->backoff_ms = BACKOFF_MIN_MS;
  if (c->was_up) {
    atomic_fetch_add_explicit (&e->reconnects, 1, memory_order_relaxed);
    say (e, false, "connection %u to the source is back", c->index);
  }
  c->was_up = true;
  update_connected (e);
}

static void
conn_connect (struct conn *c)
{
  struct engine *e = c->e;

  c->nbd = handle_new (e);
  if (c->nbd == NULL || handle_connect (e, c->nbd, false) == -1) {
    conn_down (c, nbd_get_error ());
    return;
  }
  c->state = CONN_CONNECTING;
  if (nbd_aio_is_ready (c->nbd))
    conn_up (c);
  else if (nbd_aio_is_dead (c->nbd) || nbd_aio_is_closed (c->nbd))
    conn_down (c, nbd_get_error ());
  if (c->nbd)
    watch (c);
}

static void
retry_cb (struct ev_loop *loop, ev_timer *w, int revents)
{
  conn_connect (w->data);
}

static void
io_cb (struct ev_loop *loop, ev_io *w, int revents)
{
  struct conn *c = w->data;
  int r = 0;

  if (revents & EV_READ)
    r = nbd_aio_notify_read (c->nbd);
  if (r == 0 && (revents & EV_WRITE))
    r = nbd_aio_notify_write (c->nbd);
  if (r == -1 || nbd_aio_is_dead (c->nbd) || nbd_aio_is_closed (c->nbd))
    conn_down (c, r == -1 ? nbd_get_error () : "closed by the source");
  else if (c->state == CONN_CONNECTING && nbd_aio_is_ready (c->nbd))
    conn_up (c);
}

/* Ops. */

static int
op_completed (void *user_data, int *error)
{
  struct op *op = user_data;
  op->completed = true;
  op->error = *error;
  op->done_us = now_us ();
  return 1;
}

static void
op_freed (void *user_data)
{
  struct op *op = user_data;
  if (!op->completed)
    op->error = ENOTCONN;
  op->next = op->e->done;
  op->e->done = op;
}

static struct op *
op_new (struct engine *e, enum op_kind kind, unsigned max_claims)
{
  struct op *op = calloc (1, sizeof *op + max_claims * sizeof (void *));
  if (op) {
    op->e = e;
    op->kind = kind;
  }
  return op;
}

/* Send op on c.  Whatever happens, op comes back on the done list. */
static void
op_send (struct conn *c, struct op *op)
{
  nbd_completion_callback cb = {
    .callback = op_completed, .user_data = op, .free = op_freed
  };
  int64_t r;

  op->conn = c;
  op->sent_us = now_us ();
  c->inflight++;
  if (op->kind == OP_MAP)
    r = nbd_aio_block_status (c->nbd, op->count, op->offset,
                              (nbd_extent_callback) { .callback = map_extents,
                                                      .user_data = op },
                              cb, 0);
  else
    r = nbd_aio_pread (c->nbd, op->buf, op->count, op->offset, cb, 0);
  if (r == -1)
    say (c->e, false, "sending to the source: %s", nbd_get_error ());
  /* Sending may be what finds the source gone (a write to a closed
   * socket): no event will come for this connection any more, and
   * every later request on it would fail at once, in a loop.
   */
  if (nbd_aio_is_dead (c->nbd) || nbd_aio_is_closed (c->nbd))
    conn_down (c, "closed by the source");
}

static char *
buf_get (struct engine *e)
{
  if (e->buf_pool_len)
    return e->buf_pool[--e->buf_pool_len];
  return malloc (e->max_pull);
}

static void
buf_put (struct engine *e, char *buf)
{
  if (e->buf_pool_len < e->params.inflight)
    e->buf_pool[e->buf_pool_len++] = buf;
  else
    free (buf);
}

/* Did op fail because its connection went away (so it is worth sending
 * again), rather than because the source said no?
 */
static bool
lost_connection (struct op *op)
{
  struct conn *c = op->conn;
  return op->error == ENOTCONN || op->error == ESHUTDOWN ||
    op->error == EPIPE || op->error == ECONNRESET || c->nbd == NULL ||
    nbd_aio_is_dead (c->nbd) || nbd_aio_is_closed (c->nbd);
}

/* Hand a pull's blocks to the owner: the data, or the error. */
static void
write_pull (struct engine *e, struct op *op)
{
  e->ops.end_pull (e->ops.opaque, op->claims, op->nclaims,
                   op->error ? NULL : op->buf, op->error);
}

/* A pull is over, written or failed: it leaves the window. */
static void
retire_pull (struct engine *e, struct op *op)
{
  e->pulls_inflight--;
  buf_put (e, op->buf);
  free (op);
}

static void *
writer_thread (void *arg)
{
  struct engine *e = arg;

  pthread_mutex_lock (&e->lock);
  for (;;) {
    struct op *op = e->to_write;
    if (op == NULL) {
      if (e->writers_stop)
        break;
      pthread_cond_wait (&e->write_cond, &e->lock);
      continue;
    }
    if ((e->to_write = op->next) == NULL)
      e->to_write_tail = &e->to_write;
    pthread_mutex_unlock (&e->lock);
    write_pull (e, op);
    pthread_mutex_lock (&e->lock);
    op->next = e->written;
    e->written = op;
    ev_async_send (e->loop, &e->wake);
  }
  pthread_mutex_unlock (&e->lock);
  return NULL;
}

/* Retire what the writers are done with.  Engine thread. */
static void
collect_written (struct engine *e)
{
  struct op *op;

  pthread_mutex_lock (&e->lock);
  op = e->written;
  e->written = NULL;
  pthread_mutex_unlock (&e->lock);
  while (op) {
    struct op *next = op->next;
    retire_pull (e, op);
    op = next;
  }
}

/* Takes op: its data goes to the writers; errors are cheap to settle
 * here.
 */
static void
finish_pull (struct engine *e, struct op *op)
{
  e->pull_bytes_inflight -= op->count;
  if (op->error == 0)
    pacer_ack (&e->pacer, op->seq, op->count, op->done_us - op->sent_us,
               op->done_us);
  else {
    e->pass_failed = true;
    if (!lost_connection (op))
      say (e, true, "pulling %" PRIu32 " bytes at %" PRIu64 ": %s",
           op->count, op->offset, strerror (op->error));
  }
  atomic_store_explicit (&e->window_bytes, e->pacer.window, memory_order_relaxed);
  atomic_store_explicit (&e->min_rtt_us, e->pacer.min_rtt_us, memory_order_relaxed);
  if (op->error == 0 && e->nwriters) {
    pthread_mutex_lock (&e->lock);
    op->next = NULL;
    *e->to_write_tail = op;
    e->to_write_tail = &op->next;
    pthread_cond_signal (&e->write_cond);
    pthread_mutex_unlock (&e->lock);
    return;
  }
  write_pull (e, op);
  retire_pull (e, op);
}

static void
finish_map (struct engine *e, struct op *op)
{
  bool lost = op->error && lost_connection (op);

  if (!lost)
    map_settle (e, op->offset, op->error ? op->offset + op->count : op->map_end);
  if (op->demand == NULL)
    e->bg_map_inflight = false;
}

static void
requeue (struct engine *e, struct demand *d)
{
  d->next = e->queue;
  e->queue = d;
  if (e->queue_tail == &e->queue)
    e->queue_tail = &d->next;
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
    if (op->kind == OP_MAP)
      finish_map (e, op);
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
    op_send (c, op);
  }
}

/* Pulls. */

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

/* How many blocks from b on are known holes of the source, at most max. */
static uint64_t
hole_run (struct engine *e, uint64_t b, uint64_t max)
{
  uint64_t n = 0;
  while (n < max && b + n < e->nblocks && map_known (e, b + n) &&
         map_zero (e, b + n))
    n++;
  return n;
}

/* Start one pull request on c: a run of consecutive data blocks, as
 * long as the pacer wants requests to be.  Runs of holes on the way are
 * made local at once, a run per call of install_holes.  False when
 * there is nothing to send now.
 */
static bool
pull_next (struct engine *e, struct conn *c, unsigned *hole_budget)
{
  unsigned max_blocks = pacer_request_size (&e->pacer, e->params.block_size)
                        >> e->block_shift;
  struct op *op = NULL;
  uint64_t b, last = 0;

  while (next_candidate (e, &b)) {
    if (!map_known (e, b)) {
      hold (e, b);
      if (!e->bg_map_inflight && op == NULL)
        send_map (e, c, b);
      break;
    }
    bool zero = map_zero (e, b);
    if (op && (zero || b != last + 1 || op->nclaims == max_blocks)) {
      hold (e, b);
      break;
    }
    if (zero) {
      /* The sweep then skips the blocks made local (is_present). */
      uint64_t n = hole_run (e, b, *hole_budget);
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
  e->pulls_inflight++;
  e->pull_bytes_inflight += op->count;
  op->seq = pacer_sent (&e->pacer, op->count, now_us ());
  op_send (c, op);
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
  if (!e->pass_found_absent) {
    e->pulling = false;
    say (e, false, "background copy complete");
    return;
  }
  if (e->pass_pulled && !e->pass_failed)
    e->sweep_pos = 0;
  else
    ev_timer_start (e->loop, &e->rescan);
  e->pass_found_absent = e->pass_pulled = e->pass_failed = false;
}

static void
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
  if (!e->pulling)
    return;
  while (e->pulls_inflight < e->params.inflight &&
         e->pull_bytes_inflight < e->pacer.window) {
    struct conn *c = pull_conn (e);
    uint64_t wait;

    if (c == NULL)
      return;
    if ((wait = pacer_cap_wait_us (&e->pacer, now_us ())) > 0) {
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

/* The cap allows another pull: the prepare watcher sends it. */
static void
pace_cb (struct ev_loop *loop, ev_timer *w, int revents)
{
}

static void
more_cb (struct ev_loop *loop, ev_idle *w, int revents)
{
  ev_idle_stop (loop, w);
}

/* Before the loop sleeps: settle what completed, send what can be
 * sent, and watch each connection in the direction libnbd needs.
 */
static void
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
static void
wake_cb (struct ev_loop *loop, ev_async *w, int revents)
{
  struct engine *e = w->data;
  struct engine_order *old = NULL;

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
  if (e->start_pulls) {
    e->start_pulls = false;
    e->pulling = true;
    e->sweep_pos = 0;
  }
  if (e->stopping)
    ev_break (loop, EVBREAK_ALL);
  pthread_mutex_unlock (&e->lock);
  if (old)
    old->free (old);
  collect_written (e);
}

static void *
engine_thread (void *arg)
{
  struct engine *e = arg;

  while (e->nwriters < WRITERS &&
         pthread_create (&e->writers[e->nwriters], NULL, writer_thread, e) == 0)
    e->nwriters++;
  if (e->nwriters < WRITERS)
    say (e, false, "started %u of %u writer threads", e->nwriters, WRITERS);
  for (unsigned i = 1; i < e->nconns; i++)
    conn_connect (&e->conns[i]);
  ev_run (e->loop, 0);

  /* Stopping: close the connections (what was in flight fails), then
   * fail every demand still waiting.
   */
  for (unsigned i = 0; i < e->nconns; i++) {
    struct conn *c = &e->conns[i];
    ev_io_stop (e->loop, &c->io);
    ev_timer_stop (e->loop, &c->retry);
    if (c->nbd) {
      struct nbd_handle *h = c->nbd;
      c->nbd = NULL;
      nbd_close (h);
    }
    c->state = CONN_DOWN;
  }
  process_done (e);
  /* The writers finish what they have (the blocks become local). */
  pthread_mutex_lock (&e->lock);
  e->writers_stop = true;
  pthread_cond_broadcast (&e->write_cond);
  pthread_mutex_unlock (&e->lock);
  for (unsigned i = 0; i < e->nwriters; i++)
    pthread_join (e->writers[i], NULL);
  e->nwriters = 0;
  wake_cb (e->loop, &e->wake, 0);       /* the last demands and writes */
  while (e->queue) {
    struct demand *d = e->queue;
    e->queue = d->next;
    demand_finish (e, d, EIO);
  }
  atomic_store (&e->connected, false);
  return NULL;
}

/* The public interface. */

struct engine *
engine_open (const struct engine_source *src, const struct engine_params *params,
             const struct engine_ops *ops, uint64_t *size)
{
  struct engine *e = calloc (1, sizeof *e);
  struct nbd_handle *h = NULL;
  int64_t max_block;
  uint64_t words;

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
  e->has_map = nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1;
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
       e->has_map ? "yes" : "no", e->nconns);

  words = (e->nblocks + 63) / 64;
  e->buf_pool = calloc (params->inflight, sizeof (char *));
  if (e->buf_pool == NULL ||
      (e->has_map &&
       ((e->map_known = calloc (words, sizeof (uint64_t))) == NULL ||
        (e->map_zero = calloc (words, sizeof (uint64_t))) == NULL))) {
    say (e, true, "cannot allocate the engine's maps");
    goto error;
  }
  pacer_init (&e->pacer, params->block_size,
              (uint64_t) params->inflight * e->max_pull, e->max_pull,
              params->bandwidth, now_us ());

  if ((e->loop = ev_loop_new (EVFLAG_AUTO)) == NULL) {
    say (e, true, "cannot create an event loop");
    goto error;
  }
  ev_async_init (&e->wake, wake_cb);
  ev_prepare_init (&e->prepare, prepare_cb);
  ev_timer_init (&e->pace, pace_cb, 0, 0);
  ev_timer_init (&e->rescan, rescan_cb, RESCAN_MS / 1000.0, 0);
  ev_idle_init (&e->more, more_cb);
  e->wake.data = e->prepare.data = e->pace.data = e->rescan.data = e;
  e->more.data = e;
  ev_async_start (e->loop, &e->wake);
  ev_prepare_start (e->loop, &e->prepare);
  for (unsigned i = 0; i < e->nconns; i++) {
    struct conn *c = &e->conns[i];
    c->e = e;
    c->index = i;
    c->backoff_ms = BACKOFF_MIN_MS;
    ev_io_init (&c->io, io_cb, -1, 0);
    ev_timer_init (&c->retry, retry_cb, 0, 0);
    c->io.data = c->retry.data = c;
  }
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

void
engine_set_order (struct engine *e, struct engine_order *order)
{
  struct engine_order *unused;

  pthread_mutex_lock (&e->lock);
  unused = e->new_order;
  e->new_order = order;
  e->order_changed = true;
  if (!e->stopping)
    ev_async_send (e->loop, &e->wake);
  pthread_mutex_unlock (&e->lock);
  if (unused)
    unused->free (unused);
}

/* Is all of [offset, offset+count) known to be zero on the source? */
static bool
range_is_zero (struct engine *e, uint64_t offset, uint64_t count)
{
  if (!e->has_map || count == 0)
    return false;
  for (uint64_t b = offset >> e->block_shift;
       block_offset (e, b) < offset + count; b++)
    if (!bit (e->map_known, b) || !bit (e->map_zero, b))
      return false;
  return true;
}

int
engine_pread (struct engine *e, void *buf, uint32_t count, uint64_t offset,
              int *err)
{
  struct demand *d;
  int r;

  if (range_is_zero (e, offset, count)) {
    memset (buf, 0, count);
    return 0;
  }
  if ((d = demand_new (e, false, offset, count)) == NULL) {
    *err = ENOMEM;
    return -1;
  }
  r = demand_run (e, d, err);
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

  if (!e->has_map)
    return fn (opaque, offset, count, false);

  /* Ask the source about the first block not known yet (and what
   * follows it); if it cannot say in time, unknown counts as data.
   */
  for (b = offset >> e->block_shift; block_offset (e, b) < end; b++)
    if (!bit (e->map_known, b))
      break;
  if (block_offset (e, b) < end) {
    uint64_t from = block_offset (e, b);
    struct demand *d = demand_new (e, true, from,
                                   end - from < MAP_CHUNK ? end - from : MAP_CHUNK);
    int ignored;
    if (d) {
      demand_run (e, d, &ignored);
      demand_release (e, d);
    }
  }

  while (pos < end) {
    b = pos >> e->block_shift;
    bool zero = bit (e->map_known, b) && bit (e->map_zero, b);
    uint64_t run_end;
    for (b++; block_offset (e, b) < end &&
           (bit (e->map_known, b) && bit (e->map_zero, b)) == zero; b++)
      ;
    run_end = block_offset (e, b) < end ? block_offset (e, b) : end;
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
  free ((void *) e->map_known);
  free ((void *) e->map_zero);
  pthread_cond_destroy (&e->write_cond);
  pthread_condattr_destroy (&e->condattr);
  pthread_mutex_destroy (&e->lock);
  free (e);
}
