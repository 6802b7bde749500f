/* The filter's side of the source: parameters, the shadowing engine,
 * switchover.
 *
 * All reads from the source, demand fetches as well as background
 * pulls, go through the engine (proxy/) and its own libnbd
 * connections, so reconnecting and timeouts cover both.  The nbd plugin
 * below the filter is configured (it checks the address parameters) but
 * never opened: client connections have no upstream connection of their
 * own (.open does not call next).  So once every block is PRESENT the
 * engine is stopped, the source can disappear, and new clients (a
 * rebooting VM, qemu-img check) are served from the shadow alone.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-filter.h>

#include "shadow.h"
#include "engine.h"

#define DEFAULT_INFLIGHT 64
#define MAX_INFLIGHT 1024
/* One background connection: the engine serves all of them from one
 * thread, so on a local or LAN link a second one only adds wake-ups (a
 * 1 GiB copy over a unix socket took about 10 % longer with two).  More
 * help where one TCP stream cannot fill a long, fat link.
 */
#define DEFAULT_CONNECTIONS 1
#define MAX_CONNECTIONS 15
#define DEFAULT_TIMEOUT_MS 30000

/* Parameter strings, owned here (nbdkit's last only during .config). */
static char *uri, *socket_path, *hostname, *port, *export, *tls_certificates,
  *tls_username, *tls_psk;

static struct engine_source source = { .tls_verify = -1 };
static struct engine_params params = {
  .inflight = DEFAULT_INFLIGHT,
  .connections = DEFAULT_CONNECTIONS,
  .timeout_ms = DEFAULT_TIMEOUT_MS,
};

static struct engine *engine;
/* The engine's counters as they were at switchover. */
static struct engine_stats final_stats;
/* Callers into the engine hold it shared; closing takes it exclusively
 * so that the engine is freed only when nobody uses it.
 */
static pthread_rwlock_t engine_lock = PTHREAD_RWLOCK_INITIALIZER;

static int
keep (char **field, const char *value, bool is_path)
{
  free (*field);
  *field = is_path ? nbdkit_absolute_path (value) : strdup (value);
  if (*field == NULL) {
    if (!is_path)
      nbdkit_error ("strdup: %m");
    return -1;
  }
  return 0;
}

static int
parse_count (const char *key, const char *value, unsigned min, unsigned max,
             unsigned *out)
{
  if (nbdkit_parse_unsigned (key, value, out) == -1)
    return -1;
  if (*out < min || *out > max) {
    nbdkit_error ("%s: %s is not between %u and %u", key, value, min, max);
    return -1;
  }
  return 0;
}

/* A duration in seconds, fractions allowed ("30", "0.5"). */
static int
parse_seconds (const char *key, const char *value, unsigned *ms)
{
  char *end;
  double s;

  errno = 0;
  s = strtod (value, &end);
  if (errno || end == value || *end || s <= 0 || s > 86400) {
    nbdkit_error ("%s: %s is not a number of seconds (0 < N <= 86400)",
                  key, value);
    return -1;
  }
  *ms = s * 1000 < 1 ? 1 : (unsigned) (s * 1000);
  return 0;
}

static int
parse_tls (const char *value)
{
  static const struct { const char *name; enum engine_tls tls; } modes[] = {
    { "off", ENGINE_TLS_OFF }, { "on", ENGINE_TLS_ON },
    { "require", ENGINE_TLS_REQUIRE },
  };
  for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
    if (strcmp (value, modes[i].name) == 0) {
      source.tls = modes[i].tls;
      return 0;
    }
  nbdkit_error ("tls: %s is not off, on or require", value);
  return -1;
}

/* Returns 1 when the key is ours and taken, 0 when it is not ours (the
 * source's address and TLS keys are noted, then go on to the plugin
 * too), -1 on a bad value.
 */
int
upstream_config (const char *key, const char *value)
{
  int64_t n;
  int r = 0;

  if (strcmp (key, "uri") == 0)
    r = keep (&uri, value, false);
  else if (strcmp (key, "socket") == 0)
    r = keep (&socket_path, value, true);
  else if (strcmp (key, "hostname") == 0)
    r = keep (&hostname, value, false);
  else if (strcmp (key, "port") == 0)
    r = keep (&port, value, false);
  else if (strcmp (key, "export") == 0)
    r = keep (&export, value, false);
  else if (strcmp (key, "tls") == 0)
    r = parse_tls (value);
  else if (strcmp (key, "tls-certificates") == 0)
    r = keep (&tls_certificates, value, true);
  else if (strcmp (key, "tls-verify") == 0)
    r = (source.tls_verify = nbdkit_parse_bool (value)) == -1 ? -1 : 0;
  else if (strcmp (key, "tls-username") == 0)
    r = keep (&tls_username, value, false);
  else if (strcmp (key, "tls-psk") == 0)
    r = keep (&tls_psk, value, true);
  else if (strcmp (key, "vsock") == 0 || strcmp (key, "command") == 0 ||
           strcmp (key, "socket-fd") == 0) {
    nbdkit_error ("%s: the shadow filter reaches the source by uri, socket "
                  "or hostname only", key);
    return -1;
  }
  else if (strcmp (key, "shadow-inflight") == 0)
    return parse_count (key, value, 1, MAX_INFLIGHT, &params.inflight) ? -1 : 1;
  else if (strcmp (key, "shadow-connections") == 0)
    return parse_count (key, value, 1, MAX_CONNECTIONS, &params.connections)
      ? -1 : 1;
  else if (strcmp (key, "shadow-bandwidth") == 0) {
    if ((n = shadow_parse_size (key, value)) == -1)
      return -1;
    params.bandwidth = n;
    return 1;
  }
  else if (strcmp (key, "shadow-timeout") == 0)
    return parse_seconds (key, value, &params.timeout_ms) ? -1 : 1;
  return r;
}

void
upstream_unload (void)
{
  free (uri);
  free (socket_path);
  free (hostname);
  free (port);
  free (export);
  free (tls_certificates);
  free (tls_username);
  free (tls_psk);
}

/* What the engine does with blocks: the block map's rules. */

static void *
begin_pull (void *opaque, uint64_t b)
{
  return blockmap_begin_pull (b);
}

static void
end_pull (void *opaque, void *const *tokens, unsigned n, const void *data,
          int error)
{
  blockmap_end_pull (tokens, n, data, error);
}

static uint64_t
install_holes (void *opaque, uint64_t first, uint64_t n)
{
  return blockmap_install_holes (first, n);
}

static void
log_message (void *opaque, bool error, const char *msg)
{
  if (error)
    nbdkit_error ("shadow: %s", msg);
  else
    nbdkit_debug ("shadow: %s", msg);
}

static const struct engine_ops ops = {
  .begin_pull = begin_pull,
  .end_pull = end_pull,
  .install_holes = install_holes,
  .is_present = block_present_cb,
  .log = log_message,
};

/* Connect to the source and learn the disk's size.  The backend (the
 * nbd plugin) is not used: the engine has its own connections.
 */
int
upstream_open (void *backend, uint64_t *disk_size)
{
  source.uri = uri;
  source.socket = socket_path;
  source.hostname = hostname;
  source.port = port;
  source.export = export;
  source.tls_certificates = tls_certificates;
  source.tls_username = tls_username;
  source.tls_psk = tls_psk;
  params.block_size = shadow.block_size;
  engine = engine_open (&source, &params, &ops, disk_size);
  return engine ? 0 : -1;
}

/* The source is the disk the state belongs to: from now on every
 * connection the engine makes must show the same fingerprint.
 */
void
upstream_set_identity (const unsigned char *fingerprint)
{
  pthread_rwlock_rdlock (&engine_lock);
  if (engine)
    engine_set_identity (engine, fingerprint);
  pthread_rwlock_unlock (&engine_lock);
}

/* The background copy starts (or started) in the policy's order. */
static _Atomic bool copy_planned;

/* nbdkit stopping (SIGTERM, SIGINT) waits for the requests in progress,
 * and a guest read waiting on a dead source would hold it for the whole
 * shadow-timeout.  nbdkit tells no filter that it is stopping, but its
 * nbdkit_nanosleep returns early then, also in a thread of the filter's
 * own: that thread stops the engine, and the waiting reads fail at once.
 */
static void *
watch_shutdown (void *arg)
{
  while (nbdkit_nanosleep (86400, 0) == 0)
    ;
  pthread_rwlock_rdlock (&engine_lock);
  if (engine) {
    nbdkit_debug ("shadow: nbdkit is stopping: the source is let go");
    engine_stop (engine);
  }
  pthread_rwlock_unlock (&engine_lock);
  return NULL;
}

/* The block map is ready: start the background copy in the policy's
 * order (the engine maps the source's allocation first and makes its
 * holes local).  Demand only, the mapping still runs: the holes are
 * known from it, and no guest read would ever make them local.
 */
int
upstream_start (void)
{
  struct engine_order *order;
  pthread_t watcher;
  pthread_attr_t attr;

  if (engine == NULL)
    return 0;
  /* Detached: it returns when nbdkit stops, or dies with the process. */
  pthread_attr_init (&attr);
  pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
  if (pthread_create (&watcher, &attr, watch_shutdown, NULL) != 0)
    nbdkit_debug ("shadow: no shutdown watcher: a stop may wait for "
                  "shadow-timeout");
  pthread_attr_destroy (&attr);
  if (strcmp (shadow.policy, "none") == 0) {
    engine_start_mapping (engine);
    return 0;
  }
  if ((order = predict_order_new ()) == NULL)
    return -1;
  atomic_store (&copy_planned, true);
  engine_start_pulls (engine, order);
  return 0;
}

void
upstream_close (void)
{
  pthread_rwlock_rdlock (&engine_lock);
  if (engine)
    engine_stop (engine);       /* callers waiting in the engine return */
  pthread_rwlock_unlock (&engine_lock);

  pthread_rwlock_wrlock (&engine_lock);
  if (engine) {
    engine_get_stats (engine, &final_stats);
    engine_free (engine);
    engine = NULL;
    nbdkit_debug ("upstream closed");
  }
  pthread_rwlock_unlock (&engine_lock);
}

int
upstream_pread_patient (void *buf, uint32_t count, uint64_t offset,
                        unsigned patience, int *err)
{
  int r;

  pthread_rwlock_rdlock (&engine_lock);
  if (engine == NULL) {
    *err = EIO;
    nbdkit_error ("shadow: the source is detached");
    r = -1;
  }
  else
    r = engine_pread_patient (engine, buf, count, offset, patience, err);
  pthread_rwlock_unlock (&engine_lock);
  return r;
}

int
upstream_pread (void *buf, uint32_t count, uint64_t offset, int *err)
{
  return upstream_pread_patient (buf, count, offset, 1, err);
}

/* shadow-timeout: how long a read waits for the source. */
uint64_t
upstream_timeout_us (void)
{
  return params.timeout_ms * UINT64_C (1000);
}

static int
add_extent (void *extents, uint64_t offset, uint64_t length, bool zero)
{
  return nbdkit_add_extent (extents, offset, length,
                            zero ? NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO : 0);
}

/* Which parts of a range not yet local are holes on the source: from
 * the engine's map of the source's allocation.  Adds extents to `out`
 * (a struct nbdkit_extents *) for the whole range; where the source
 * cannot say, the range is data.
 */
int
upstream_extents (uint32_t count, uint64_t offset, void *out, int *err)
{
  int r;

  pthread_rwlock_rdlock (&engine_lock);
  if (engine)
    r = engine_extents (engine, offset, count, add_extent, out, err);
  else if ((r = add_extent (out, offset, count, false)) == -1)
    *err = errno;
  pthread_rwlock_unlock (&engine_lock);
  return r;
}

/* Is the source still in use (not detached, not unneeded)? */
bool
upstream_attached (void)
{
  bool open;
  pthread_rwlock_rdlock (&engine_lock);
  open = engine != NULL;
  pthread_rwlock_unlock (&engine_lock);
  return open;
}

void
upstream_get_control (struct upstream_control *c)
{
  struct engine_stats st = { .connected = false };

  pthread_rwlock_rdlock (&engine_lock);
  c->attached = engine != NULL;
  if (engine)
    engine_get_stats (engine, &st);
  pthread_rwlock_unlock (&engine_lock);
  c->connected = st.connected;
  c->paused = st.paused;
  c->bandwidth = st.bandwidth;
  c->mapping = st.mapping;
  c->unreadable_blocks = st.unreadable_blocks;
  c->disk_full = atomic_load_explicit (&shadow.disk_full, memory_order_relaxed);
}

void
upstream_pause (bool paused)
{
  pthread_rwlock_rdlock (&engine_lock);
  if (engine)
    engine_set_paused (engine, paused);
  pthread_rwlock_unlock (&engine_lock);
}

void
upstream_set_bandwidth (uint64_t rate)
{
  pthread_rwlock_rdlock (&engine_lock);
  if (engine)
    engine_set_bandwidth (engine, rate);
  pthread_rwlock_unlock (&engine_lock);
}

/* Finish the copy at full speed: no pause, no cap, and a sweep if the
 * policy copies nothing in the background.  Once every block is local
 * the housekeeping thread persists that and detaches the source, as
 * always.  Nothing to do once detached.
 */
void
upstream_finalize (void)
{
  pthread_rwlock_rdlock (&engine_lock);
  if (engine) {
    engine_set_paused (engine, false);
    engine_set_bandwidth (engine, 0);
    if (!atomic_exchange (&copy_planned, true))
      engine_start_pulls (engine, NULL);
  }
  pthread_rwlock_unlock (&engine_lock);
}

/* Extra fields of the stats file, each preceded by ", ". */
void
upstream_stats (FILE *fp)
{
  struct engine_stats st = final_stats;
  /* Detached means switchover; a filter stopped mid-copy says so. */
  const char *state = shadow.complete ? "detached" : "stopped";

  pthread_rwlock_rdlock (&engine_lock);
  if (engine) {
    engine_get_stats (engine, &st);
    state = st.connected ? "connected" : "disconnected";
  }
  pthread_rwlock_unlock (&engine_lock);
  fprintf (fp, ", \"source\": \"%s\", \"reconnects\": %" PRIu64
           ", \"hole_blocks\": %" PRIu64 ", \"pull_window\": %" PRIu64
           ", \"min_rtt_us\": %" PRIu64 ", \"paused\": %s"
           ", \"bandwidth_limit\": %" PRIu64
           ", \"pull_bytes_under_demand\": %" PRIu64
           ", \"unreadable_blocks\": %" PRIu64,
           state, st.reconnects,
           st.hole_blocks,
           st.window_bytes,
           st.min_rtt_us == UINT64_MAX ? 0 : st.min_rtt_us,
           engine && st.paused ? "true" : "false", engine ? st.bandwidth : 0,
           st.pull_bytes_under_demand, engine ? st.unreadable_blocks : 0);
}

/* Called by the housekeeping thread: once every block is PRESENT, persist that
 * and let go of the source.
 */
void
upstream_switchover_check (void)
{
  int err;

  if (!shadow.complete || !upstream_attached ())
    return;
  if (statefile_checkpoint (&err) == -1)
    return;                     /* try again next time */
  upstream_close ();
  record_switchover ();
  nbdkit_debug ("switchover: all %" PRIu64 " blocks are local, source detached",
                shadow.nblocks);
}
