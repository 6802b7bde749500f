/* Connections to the source: handles set up as the source's parameters
 * say, checked (TLS when required, the same disk), re-established with
 * backoff when they drop; and sending commands (ops) on them.  Engine
 * thread, except for the first connection made by engine_open.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "clock.h"
#include "engine-internal.h"

struct nbd_handle *
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

/* A source host that crashes or drops off the network sends no reset:
 * its connection would hang on the kernel's own limits (a quarter of an
 * hour of retransmissions, for ever while idle) with the copy stalled,
 * and reconnecting once the host is back would wait for them too.  On
 * TCP the kernel is told to give up when what was sent stays
 * unacknowledged for shadow-timeout (SILENCE_MIN_MS at least, so that a
 * lossy link's retransmissions do not count as death), and to probe an
 * idle connection: then it is lost and reconnected like any other.  A
 * source that is only slow still acknowledges, and keeps it.  Only a
 * hint: a socket that refuses the options keeps the kernel's limits.
 */
#define SILENCE_MIN_MS 5000

static void
limit_silence (struct engine *e, struct nbd_handle *h)
{
  int fd = nbd_aio_get_fd (h);
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  unsigned ms = e->params.timeout_ms > SILENCE_MIN_MS ? e->params.timeout_ms
                                                      : SILENCE_MIN_MS;
  int on = 1, idle = ms / 1000, probes = 3;

  if (fd == -1 || getsockname (fd, (struct sockaddr *) &ss, &len) == -1 ||
      (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
    return;
  setsockopt (fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms);
  setsockopt (fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  setsockopt (fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  setsockopt (fd, IPPROTO_TCP, TCP_KEEPINTVL, &idle, sizeof idle);
  setsockopt (fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof probes);
}

int
handle_connect (struct engine *e, struct nbd_handle *h, bool sync)
{
  const struct engine_source *s = &e->src;
  const char *port = s->port ? s->port : "10809";
  int r;

  if (s->uri)
    r = sync ? nbd_connect_uri (h, s->uri) : nbd_aio_connect_uri (h, s->uri);
  else if (s->socket)
    r = sync ? nbd_connect_unix (h, s->socket)
             : nbd_aio_connect_unix (h, s->socket);
  else
    r = sync ? nbd_connect_tcp (h, s->hostname, port)
             : nbd_aio_connect_tcp (h, s->hostname, port);
  if (r == 0)
    limit_silence (e, h);
  return r;
}

/* A connected handle is usable if it is what we asked for: TLS when
 * required (never fall back to plaintext), and the same disk.
 */
int
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

void
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

void
update_connected (struct engine *e)
{
  bool up = false;
  for (unsigned i = 0; i < e->nconns; i++)
    up |= e->conns[i].state == CONN_READY;
  atomic_store_explicit (&e->connected, up, memory_order_relaxed);
}

void
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
  free (c->verify_buf);         /* nothing writes into it any more */
  c->verify_buf = NULL;
  c->state = CONN_DOWN;
  c->lost = c->was_up;
  ev_timer_set (&c->retry, c->backoff_ms / 1000.0, 0);
  ev_timer_start (e->loop, &c->retry);
  c->backoff_ms = c->backoff_ms * 2 < BACKOFF_MAX_MS ? c->backoff_ms * 2
                                                     : BACKOFF_MAX_MS;
  update_connected (e);
}

/* Connected: checked, then (once the source's fingerprint is known)
 * verified before it is used.
 */
static void
conn_up (struct conn *c)
{
  struct engine *e = c->e;

  if (handle_check (e, c->nbd, NULL) == -1) {
    conn_down (c, "refused");
    return;
  }
  if (e->has_identity)
    verify_start (c);
  else
    conn_ready (c);
}

void
conn_ready (struct conn *c)
{
  struct engine *e = c->e;

  c->state = CONN_READY;
  c->backoff_ms = BACKOFF_MIN_MS;
  /* Not on a connection verified again once the fingerprint is known:
   * it never went away. */
  if (c->lost) {
    atomic_fetch_add_explicit (&e->reconnects, 1, memory_order_relaxed);
    say (e, false, "connection %u to the source is back", c->index);
  }
  c->was_up = true;
  c->lost = false;
  update_connected (e);
}

void
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

/* Connection i, not connected yet. */
void
conn_init (struct engine *e, unsigned i)
{
  struct conn *c = &e->conns[i];
  c->e = e;
  c->index = i;
  c->backoff_ms = BACKOFF_MIN_MS;
  ev_io_init (&c->io, io_cb, -1, 0);
  ev_timer_init (&c->retry, retry_cb, 0, 0);
  c->io.data = c->retry.data = c;
}

/* Stopping: let what is in flight on every connection come back, for
 * at most DRAIN_MS, before they are closed.  nbdkit 1.32.4 and 1.32.5
 * abort when a client disconnects while their replies are still being
 * sent (docs/RELIABILITY.md): a source of those versions would die
 * whenever the destination stopped mid-copy.  A source that does not
 * answer delays the stop by DRAIN_MS and no more.  What arrives goes to
 * the done list, like any completion.
 */
void
conns_drain (struct engine *e)
{
  uint64_t deadline = time_us () + DRAIN_MS * 1000;
  bool busy = true;

  while (busy && time_us () < deadline) {
    busy = false;
    for (unsigned i = 0; i < e->nconns; i++) {
      struct nbd_handle *h = e->conns[i].nbd;

      if (h == NULL || nbd_aio_in_flight (h) <= 0 ||
          nbd_aio_is_dead (h) || nbd_aio_is_closed (h))
        continue;
      busy = true;
      if (nbd_poll (h, 10) == -1)
        break;
    }
  }
}

/* Stopping: close c (what was in flight fails, to the done list). */
void
conn_close (struct conn *c)
{
  ev_io_stop (c->e->loop, &c->io);
  ev_timer_stop (c->e->loop, &c->retry);
  if (c->nbd) {
    struct nbd_handle *h = c->nbd;
    c->nbd = NULL;
    nbd_close (h);
  }
  free (c->verify_buf);
  c->verify_buf = NULL;
  c->state = CONN_DOWN;
}

/* Ops. */

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
        allocmap_mark_zero (&e->map, zero_from, pos);
      zero_from = UINT64_MAX;
      allocmap_mark_data (&e->map, pos, end);
    }
    pos = end;
  }
  if (zero_from != UINT64_MAX)
    allocmap_mark_zero (&e->map, zero_from, pos);
  if (pos > op->map_end)
    op->map_end = pos;
  return 0;
}

static int
op_completed (void *user_data, int *error)
{
  struct op *op = user_data;
  op->completed = true;
  op->error = *error;
  op->done_us = time_us ();
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

struct op *
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
void
op_send (struct conn *c, struct op *op)
{
  nbd_completion_callback cb = {
    .callback = op_completed, .user_data = op, .free = op_freed
  };
  int64_t r;

  op->conn = c;
  op->sent_us = time_us ();
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

/* Did op fail because its connection went away (so it is worth sending
 * again), rather than because the source said no?
 */
bool
lost_connection (struct op *op)
{
  struct conn *c = op->conn;
  return op->error == ENOTCONN || op->error == ESHUTDOWN ||
    op->error == EPIPE || op->error == ECONNRESET || c->nbd == NULL ||
    nbd_aio_is_dead (c->nbd) || nbd_aio_is_closed (c->nbd);
}
