/* The filter's mirror in the Dynamic Metadata Store (Redis).
 *
 * A thread of its own runs a libev loop (ev_loop_new: never the default
 * loop, never the guest's path) with metastore's asynchronous client.
 * Every 100 ms it looks at the local state and, when enough changed,
 * sends one pipelined batch: the progress hash, the coverage bits that
 * changed, the events queued by other threads.  One batch is in flight
 * at a time, and one goes out per 64 blocks made local or per 100 ms,
 * whichever is rarer (and at least once a second while up).  Whenever
 * the client (re)connects, the whole mirror is re-written from local
 * state: Redis is never read back, so nothing forged there can change
 * what the filter serves.  The operator's commands come in on a second
 * connection (commands.c).  Key names and fields: docs/METADATA.md.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <openssl/evp.h>

#include <nbdkit-filter.h>

#include "clock.h"
#include "shadow.h"
#include "metastore.h"

#define TICK_S 0.1
#define BATCH_BLOCKS 64
#define BATCH_MAX_US 1000000
/* The rate is measured over the last RATE_TICKS ticks. */
#define RATE_TICKS 20
/* Coverage runs closer than this many bytes go in one SETRANGE. */
#define COVERAGE_GAP 64
#define COVERAGE_MAX_RUNS 64
/* Waited for the last batch at stop. */
#define STOP_WAIT_S 0.5
#define MAX_EVENTS 64

/* Parameters. */
static char *id, *address, *user, *password_file, *export_uri;
static char *model_file, *source_name;
static bool required;

static struct ms_config cfg;
static bool enabled;
static char model_sha256[65];
/* The start-up check already told the user Redis is unreachable: the
 * client's first failure is not told again.
 */
static bool told_at_start, ever_up;

static pthread_t thread;
static bool running;
static struct ev_loop *loop;
static ev_async wake;
static ev_timer tick;
static _Atomic bool stopping;
static struct ms_async *writer;

static char key_info[MS_KEY_LEN], key_progress[MS_KEY_LEN],
  key_coverage[MS_KEY_LEN], key_events[MS_KEY_LEN], key_predicted[MS_KEY_LEN];

/* Events from any thread, sent with the next batch. */
struct event {
  const char *type;
  char detail[200];
  uint64_t ts_us;
};
static pthread_mutex_t events_lock = PTHREAD_MUTEX_INITIALIZER;
static struct event events[MAX_EVENTS];
static unsigned nevents, events_dropped;

/* What was last sent, on the mirror thread only. */
static bool need_full, batch_in_flight;
static uint64_t last_flush_us, last_present, started_us;
static const char *last_state;
static uint64_t *mirrored;              /* present words as Redis has them */
static uint64_t rate_bytes[RATE_TICKS], rate_us[RATE_TICKS];
static unsigned rate_pos;
static uint64_t rate;
static _Atomic uint64_t round_trips;
static _Atomic bool up;

static int
keep (char **field, const char *value)
{
  free (*field);
  if ((*field = strdup (value)) == NULL) {
    nbdkit_error ("strdup: %m");
    return -1;
  }
  return 0;
}

/* The source as the info hash shows it: an nbd URI without user info
 * or query (which may name key files), or the socket or host.
 */
static int
note_source_address (const char *key, const char *value)
{
  char *s = NULL;
  if (strcmp (key, "uri") == 0) {
    const char *scheme_end = strstr (value, "://");
    const char *at = scheme_end ? strchr (scheme_end + 3, '@') : NULL;
    const char *slash = scheme_end ? strchr (scheme_end + 3, '/') : NULL;
    size_t q = strcspn (value, "?#");
    if (at && (slash == NULL || at < slash))
      s = asprintf (&s, "%.*s%.*s", (int) (scheme_end + 3 - value), value,
                    (int) (q - (at + 1 - value)), at + 1) == -1 ? NULL : s;
    else
      s = strndup (value, q);
  }
  else if (strcmp (key, "socket") == 0)
    s = asprintf (&s, "unix:%s", value) == -1 ? NULL : s;
  else if (strcmp (key, "hostname") == 0)
    s = strdup (value);
  else
    return 0;
  if (s == NULL) {
    nbdkit_error ("%s: %m", key);
    return -1;
  }
  free (source_name);
  source_name = s;
  return 0;
}

/* Returns 1 when the key is ours and taken, 0 when it is not ours (the
 * source's address and the model are noted and go on), -1 on a bad
 * value.
 */
int
mirror_config (const char *key, const char *value)
{
  char err[MS_ERRLEN];

  if (strcmp (key, "shadow-model") == 0) {
    free (model_file);
    model_file = nbdkit_absolute_path (value);
    return model_file ? 0 : -1;
  }
  if (strncmp (key, "shadow-", 7) != 0)
    return note_source_address (key, value);
  if (strcmp (key, "shadow-id") == 0) {
    if (!ms_valid_id (value)) {
      nbdkit_error ("shadow-id: '%s' is not %s", value, MS_ID_RULE);
      return -1;
    }
    return keep (&id, value) ? -1 : 1;
  }
  if (strcmp (key, "shadow-redis") == 0) {
    struct ms_address a;
    if (ms_parse_address (value, &a, err) == -1) {
      nbdkit_error ("shadow-redis: %s", err);
      return -1;
    }
    ms_address_free (&a);
    return keep (&address, value) ? -1 : 1;
  }
  if (strcmp (key, "shadow-redis-user") == 0)
    return keep (&user, value) ? -1 : 1;
  if (strcmp (key, "shadow-redis-password-file") == 0) {
    free (password_file);
    password_file = nbdkit_absolute_path (value);
    return password_file ? 1 : -1;
  }
  if (strcmp (key, "shadow-redis-required") == 0) {
    if (strcmp (value, "true") != 0 && strcmp (value, "false") != 0) {
      nbdkit_error ("shadow-redis-required: '%s' is not true or false", value);
      return -1;
    }
    required = value[0] == 't';
    return 1;
  }
  if (strcmp (key, "shadow-export-uri") == 0)
    return keep (&export_uri, value) ? -1 : 1;
  return 0;
}

static void
digest_model (void)
{
  unsigned char md[32], buf[65536];
  FILE *fp = model_file ? fopen (model_file, "r") : NULL;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
  size_t n;

  if (fp && ctx && EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL)) {
    while ((n = fread (buf, 1, sizeof buf, fp)) > 0)
      EVP_DigestUpdate (ctx, buf, n);
    if (!ferror (fp) && EVP_DigestFinal_ex (ctx, md, NULL))
      for (int i = 0; i < 32; i++)
        sprintf (model_sha256 + 2 * i, "%02x", md[i]);
  }
  EVP_MD_CTX_free (ctx);
  if (fp)
    fclose (fp);
}

int
mirror_config_complete (void)
{
  char err[MS_ERRLEN];

  if (address == NULL) {
    if (user || password_file || required) {
      nbdkit_error ("%s needs shadow-redis", user ? "shadow-redis-user"
                    : password_file ? "shadow-redis-password-file"
                    : "shadow-redis-required");
      return -1;
    }
    return 0;
  }
  if (id == NULL) {
    nbdkit_error ("shadow-redis needs shadow-id (the volume's name in Redis)");
    return -1;
  }
  if (ms_config_init (&cfg, address, user, password_file, err) == -1) {
    nbdkit_error ("shadow-redis: %s", err);
    return -1;
  }
  ms_key (key_info, sizeof key_info, id, "info");
  ms_key (key_progress, sizeof key_progress, id, "progress");
  ms_key (key_coverage, sizeof key_coverage, id, "coverage");
  ms_key (key_events, sizeof key_events, id, "events");
  ms_key (key_predicted, sizeof key_predicted, id, "predicted");
  digest_model ();
  enabled = true;
  return 0;
}

/* Before the fork: is Redis there and does it take our credentials?
 * If not, one line, and nbdkit goes on unless Redis is required.
 */
int
mirror_get_ready (void)
{
  char err[MS_ERRLEN];
  struct ms_sync *s;

  if (!enabled)
    return 0;
  if ((s = ms_sync_open (&cfg, err)) != NULL) {
    ms_sync_close (s);
    return 0;
  }
  if (required) {
    nbdkit_error ("shadow-redis: %s (shadow-redis-required=true)", err);
    return -1;
  }
  nbdkit_error ("shadow-redis: %s (going on without Redis, retrying)", err);
  told_at_start = true;
  return 0;
}

void
mirror_event (const char *type, const char *fmt, ...)
{
  va_list ap;

  if (!enabled)
    return;
  pthread_mutex_lock (&events_lock);
  if (nevents == MAX_EVENTS)
    events_dropped++;
  else {
    struct event *ev = &events[nevents++];
    ev->type = type;
    va_start (ap, fmt);
    vsnprintf (ev->detail, sizeof ev->detail, fmt, ap);
    va_end (ap);
    ev->ts_us = wall_us ();
  }
  pthread_mutex_unlock (&events_lock);
  if (running)
    ev_async_send (loop, &wake);
}


/* The coverage bitmap in Redis's bit order (SETBIT numbering: the most
 * significant bit of byte j is block 8j) from present words.
 */
static unsigned char
reverse_bits (unsigned char b)
{
  b = (b & 0xf0) >> 4 | (b & 0x0f) << 4;
  b = (b & 0xcc) >> 2 | (b & 0x33) << 2;
  b = (b & 0xaa) >> 1 | (b & 0x55) << 1;
  return b;
}

static uint64_t coverage_bytes (void) { return (shadow.nblocks + 7) / 8; }

static void
coverage_fill (unsigned char *out, uint64_t from, uint64_t to)
{
  for (uint64_t j = from; j < to; j++)
    out[j - from] = reverse_bits (mirrored[j / 8] >> (8 * (j % 8)));
}

static void
log_cb (void *opaque, bool error, const char *msg)
{
  if (error && !(told_at_start && !ever_up))
    nbdkit_error ("shadow-redis: %s", msg);
  else
    nbdkit_debug ("shadow-redis: %s", msg);
}

static void
connected_cb (void *opaque)
{
  ever_up = true;
  need_full = true;
  atomic_store (&up, true);
  ev_feed_event (loop, &tick, EV_TIMER);
}

static void finish (void);

/* The last command of a batch: the batch is answered (or lost). */
static void
batch_done (redisReply *r, void *priv)
{
  batch_in_flight = false;
  if (atomic_load (&stopping))
    finish ();
}

static void
write_info (uint64_t now)
{
  char host[256] = "";

  gethostname (host, sizeof host - 1);
  ms_async_command (writer, NULL, NULL, "DEL %s", key_info);
  ms_async_command (writer, NULL, NULL,
                    "HSET %s id %s source %s size %" PRIu64 " block_size %" PRIu32
                    " blocks_total %" PRIu64 " policy %s model_sha256 %s host %s"
                    " pid %d export_uri %s state %s started_us %" PRIu64
                    " updated_us %" PRIu64,
                    key_info, id, source_name ? source_name : "",
                    shadow.disk_size, shadow.block_size, shadow.nblocks,
                    shadow.policy, model_sha256, host, (int) getpid (),
                    export_uri ? export_uri : "", last_state, started_us, now);
}

/* The ETA is unknown (-1) while the source is being mapped: until its
 * map is complete, the blocks not yet local include holes that will
 * cost no transfer (on a large sparse disk, counted at the link's rate
 * they made an ETA of hours for a copy of seconds).
 */
static void
write_progress (uint64_t now, uint64_t present)
{
  uint64_t remaining = (shadow.nblocks - present) * (uint64_t) shadow.block_size;
  char coverage[32];
  struct upstream_control ctl;

  upstream_get_control (&ctl);
  int64_t eta = present == shadow.nblocks ? 0
                : ctl.mapping || rate == 0 ? -1
                : (int64_t) ((remaining + rate - 1) / rate);
  snprintf (coverage, sizeof coverage, "%.6f",
            shadow.nblocks ? (double) present / shadow.nblocks : 1.0);
  ms_async_command (writer, NULL, NULL,
                    "HSET %s blocks_total %" PRIu64 " blocks_present %" PRIu64
                    " coverage %s bytes_pulled %" PRIu64 " bytes_fetched %" PRIu64
                    " rate_bytes_per_s %" PRIu64 " stalls %" PRIu64
                    " stall_us %" PRIu64 " hits %" PRIu64 " eta_s %" PRId64
                    " paused %d bandwidth_limit %" PRIu64 " disk_full %d"
                    " unreadable_blocks %" PRIu64 " updated_us %" PRIu64,
                    key_progress, shadow.nblocks, present, coverage,
                    LOAD (shadow.stats.bytes_pulled),
                    LOAD (shadow.stats.bytes_fetched), rate,
                    LOAD (shadow.stats.stalls), LOAD (shadow.stats.stall_us),
                    LOAD (shadow.stats.hits), eta, (int) ctl.paused,
                    ctl.bandwidth, (int) ctl.disk_full,
                    ctl.unreadable_blocks, now);
}

/* The coverage bits that changed since the last batch, as SETRANGEs of
 * nearby changed bytes (one for everything when that would be many).
 * Bits are only ever set, so re-sending unchanged bytes is harmless.
 */
static void
write_coverage_changes (void)
{
  uint64_t nwords = (shadow.nblocks + 63) / 64, nbytes = coverage_bytes ();
  uint64_t runs[COVERAGE_MAX_RUNS][2];
  unsigned nruns = 0;

  for (uint64_t w = 0; w < nwords; w++) {
    uint64_t now = atomic_load_explicit (&shadow.present[w], memory_order_relaxed);
    if (now == mirrored[w])
      continue;
    mirrored[w] = now;
    uint64_t from = w * 8, to = from + 8 < nbytes ? from + 8 : nbytes;
    if (nruns > 0 && (from - runs[nruns - 1][1] <= COVERAGE_GAP ||
                      nruns == COVERAGE_MAX_RUNS))
      runs[nruns - 1][1] = to;
    else {
      runs[nruns][0] = from;
      runs[nruns++][1] = to;
    }
  }
  for (unsigned i = 0; i < nruns; i++) {
    size_t len = runs[i][1] - runs[i][0];
    unsigned char *buf = malloc (len);
    if (buf == NULL) {
      need_full = true;
      return;
    }
    coverage_fill (buf, runs[i][0], runs[i][1]);
    ms_async_command (writer, NULL, NULL, "SETRANGE %s %" PRIu64 " %b",
                      key_coverage, runs[i][0], buf, len);
    free (buf);
  }
}

/* The whole coverage bitmap, replacing whatever Redis holds. */
static void
write_coverage (void)
{
  uint64_t nwords = (shadow.nblocks + 63) / 64, nbytes = coverage_bytes ();
  unsigned char *buf = malloc (nbytes ? nbytes : 1);

  if (buf == NULL) {
    need_full = true;
    return;
  }
  for (uint64_t w = 0; w < nwords; w++)
    mirrored[w] = atomic_load_explicit (&shadow.present[w], memory_order_relaxed);
  coverage_fill (buf, 0, nbytes);
  ms_async_command (writer, NULL, NULL, "SET %s %b", key_coverage, buf,
                    (size_t) nbytes);
  free (buf);
}

static void
write_events (void)
{
  struct event copy[MAX_EVENTS];
  unsigned n, dropped;

  pthread_mutex_lock (&events_lock);
  n = nevents;
  dropped = events_dropped;
  memcpy (copy, events, n * sizeof copy[0]);
  nevents = events_dropped = 0;
  pthread_mutex_unlock (&events_lock);
  for (unsigned i = 0; i < n; i++)
    ms_async_command (writer, NULL, NULL,
                      "XADD %s MAXLEN ~ 1000 * type %s detail %s ts_us %" PRIu64,
                      key_events, copy[i].type, copy[i].detail, copy[i].ts_us);
  if (dropped)
    ms_async_command (writer, NULL, NULL,
                      "XADD %s MAXLEN ~ 1000 * type error detail %s ts_us %" PRIu64,
                      key_events, "events dropped: too many at once", wall_us ());
}

/* The predicted set: the order's latest picks, scored by rank (1 for
 * the newest), re-written whole at most once a second while they change.
 */
#define PREDICTED_EVERY_US 1000000

static void
write_predicted (uint64_t now, bool full)
{
  static uint64_t last_us, last_first = UINT64_MAX;
  static uint64_t blocks[PREDICT_PICKS];
  size_t n;

  if (!full && now - last_us < PREDICTED_EVERY_US)
    return;
  n = predict_recent_picks (blocks, PREDICT_PICKS);
  if (!full && (n == 0 || blocks[0] == last_first))
    return;
  last_us = now;
  last_first = n ? blocks[0] : UINT64_MAX;
  ms_async_command (writer, NULL, NULL, "DEL %s", key_predicted);
  if (n == 0)
    return;

  /* ZADD key score member ... in one command. */
  const char **argv = malloc ((2 + 2 * n) * sizeof *argv);
  char (*words)[2][24] = malloc (n * sizeof *words);
  if (argv && words) {
    argv[0] = "ZADD";
    argv[1] = key_predicted;
    for (size_t i = 0; i < n; i++) {
      snprintf (words[i][0], sizeof words[i][0], "%.6f",
                (double) (PREDICT_PICKS - i) / PREDICT_PICKS);
      snprintf (words[i][1], sizeof words[i][1], "%" PRIu64, blocks[i]);
      argv[2 + 2 * i] = words[i][0];
      argv[3 + 2 * i] = words[i][1];
    }
    ms_async_argv (writer, NULL, NULL, 2 + 2 * n, argv);
  }
  free (argv);
  free (words);
}

static bool
events_pending (void)
{
  bool any;
  pthread_mutex_lock (&events_lock);
  any = nevents > 0;
  pthread_mutex_unlock (&events_lock);
  return any;
}

static const char *
current_state (void)
{
  if (!shadow.complete)
    return atomic_load (&stopping) ? "stopped" : "copying";
  return upstream_attached () ? "covered" : "complete";
}

/* The state the info hash shows changed: an event says so too. */
static void
note_state (const char *state)
{
  bool first = last_state == NULL;
  bool was_covered = !first && strcmp (last_state, "covered") == 0;

  last_state = state;
  if (first)
    return;                     /* the started event says where it is */
  if (strcmp (state, "covered") == 0 ||
      (strcmp (state, "complete") == 0 && !was_covered))
    mirror_event ("complete", "every block is local");
  if (strcmp (state, "complete") == 0)
    mirror_event ("switchover", "the source is detached");
  else if (strcmp (state, "stopped") == 0)
    mirror_event ("stopped", "the filter stopped before the copy was complete");
}

/* The source's connection, what it cannot read and the shadow's disk:
 * changes are events. */
static void
note_conditions (void)
{
  static bool was_connected = true, was_full;
  static uint64_t was_unreadable;
  struct upstream_control ctl;

  upstream_get_control (&ctl);
  if (ctl.attached && ctl.connected != was_connected)
    mirror_event (ctl.connected ? "source-back" : "source-lost",
                  ctl.connected ? "reconnected to the source"
                  : "the connection to the source is down");
  was_connected = ctl.connected || !ctl.attached;
  if (ctl.disk_full && !was_full)
    mirror_event ("disk-full", "the shadow's file system is full: the "
                  "background copy waits for room");
  was_full = ctl.disk_full;
  if (ctl.unreadable_blocks && !was_unreadable)
    mirror_event ("source-read-error", "blocks the source failed to read: %"
                  PRIu64 "; retried with growing waits, the copy cannot "
                  "complete until the source reads them",
                  ctl.unreadable_blocks);
  else if (!ctl.unreadable_blocks && was_unreadable)
    mirror_event ("source-read-ok", "the source reads the blocks it failed");
  was_unreadable = ctl.unreadable_blocks;
}

/* Bytes moved per second over the last RATE_TICKS ticks (fewer at
 * first).
 */
static void
measure_rate (uint64_t now)
{
  static unsigned nsamples;
  uint64_t bytes = LOAD (shadow.stats.bytes_pulled) + LOAD (shadow.stats.bytes_fetched);
  unsigned oldest = nsamples < RATE_TICKS ? 0 : (rate_pos + 1) % RATE_TICKS;

  rate_bytes[rate_pos] = bytes;
  rate_us[rate_pos] = now;
  if (nsamples < RATE_TICKS)
    nsamples++;
  if (now > rate_us[oldest])
    rate = (bytes - rate_bytes[oldest]) * 1000000 / (now - rate_us[oldest]);
  rate_pos = (rate_pos + 1) % RATE_TICKS;
}

/* One batch, if one is due: everything after a (re)connect, else what
 * changed.
 */
static void
flush (bool force)
{
  uint64_t now = wall_us (), present = LOAD (shadow.present_count);
  const char *state = current_state ();
  bool state_changed = last_state == NULL || strcmp (state, last_state) != 0;

  if (!ms_async_is_up (writer) || batch_in_flight)
    return;
  if (!need_full && !force && !state_changed && !events_pending () &&
      !(present - last_present >= BATCH_BLOCKS && now - last_flush_us >= 100000) &&
      now - last_flush_us < BATCH_MAX_US)
    return;
  if (state_changed)
    note_state (state);
  if (need_full) {
    need_full = false;
    ms_async_command (writer, NULL, NULL, "SADD %s %s", MS_KEY_VOLUMES, id);
    write_info (now);
    ms_async_command (writer, NULL, NULL, "DEL %s", key_progress);
    write_coverage ();
    write_predicted (now, true);
  }
  else {
    if (state_changed)
      ms_async_command (writer, NULL, NULL, "HSET %s state %s updated_us %" PRIu64,
                        key_info, state, now);
    write_coverage_changes ();
    write_predicted (now, false);
  }
  write_progress (now, present);
  write_events ();
  /* The batch's last command says when it is answered. */
  if (ms_async_command (writer, batch_done, NULL, "PING") == 0) {
    batch_in_flight = true;
    atomic_fetch_add_explicit (&round_trips, 1, memory_order_relaxed);
  }
  last_flush_us = now;
  last_present = present;
}

static void
tick_cb (struct ev_loop *l, ev_timer *w, int revents)
{
  measure_rate (wall_us ());
  atomic_store (&up, ms_async_is_up (writer));
  note_conditions ();
  flush (false);
}

/* Stopping: send the last state once the batch in flight is answered,
 * then leave when that one is (or Redis is down, or time is up).
 */
static void
finish (void)
{
  static bool final_sent;

  if (!final_sent && !batch_in_flight && ms_async_is_up (writer)) {
    final_sent = true;
    flush (true);
  }
  if (!batch_in_flight || !ms_async_is_up (writer))
    ev_break (loop, EVBREAK_ALL);
}

static void
stop_wait_cb (struct ev_loop *l, ev_timer *w, int revents)
{
  ev_break (l, EVBREAK_ALL);
}

static void
wake_cb (struct ev_loop *l, ev_async *w, int revents)
{
  static ev_timer stop_wait;

  if (!atomic_load (&stopping)) {
    flush (false);
    return;
  }
  ev_timer_stop (l, &tick);
  commands_stop ();
  ev_timer_init (&stop_wait, stop_wait_cb, STOP_WAIT_S, 0);
  ev_timer_start (l, &stop_wait);
  finish ();
}

static void *
mirror_thread (void *arg)
{
  static const struct ms_async_ops ops = {
    .connected = connected_cb,
    .log = log_cb,
  };

  writer = ms_async_new (loop, &cfg, &ops);
  if (writer == NULL)
    nbdkit_error ("shadow-redis: out of memory");
  else {
    commands_start (loop, &cfg, id, started_us);
    ev_run (loop, 0);
  }
  commands_stop ();
  ms_async_free (writer);
  writer = NULL;
  return NULL;
}

/* After the fork, once the block map is ready. */
int
mirror_start (void)
{
  int r;

  if (!enabled)
    return 0;
  started_us = wall_us ();
  mirrored = calloc ((shadow.nblocks + 63) / 64 + 1, sizeof *mirrored);
  loop = ev_loop_new (EVFLAG_AUTO);
  if (mirrored == NULL || loop == NULL) {
    nbdkit_error ("shadow-redis: cannot start: out of memory");
    return -1;
  }
  ev_async_init (&wake, wake_cb);
  ev_async_start (loop, &wake);
  ev_timer_init (&tick, tick_cb, TICK_S, TICK_S);
  ev_timer_start (loop, &tick);
  mirror_event ("started", "pid %d, %" PRIu64 " of %" PRIu64 " blocks local",
                (int) getpid (), LOAD (shadow.present_count), shadow.nblocks);
  if ((r = pthread_create (&thread, NULL, mirror_thread, NULL)) != 0) {
    errno = r;
    nbdkit_error ("shadow-redis: cannot start its thread: %m");
    return -1;
  }
  running = true;
  return 0;
}

void
mirror_stop (void)
{
  if (!running)
    return;
  atomic_store (&stopping, true);
  ev_async_send (loop, &wake);
  pthread_join (thread, NULL);
  running = false;
  ev_loop_destroy (loop);
  loop = NULL;
}

/* Extra fields of the stats file, each preceded by ", ". */
void
mirror_stats (FILE *fp)
{
  if (!enabled)
    return;
  fprintf (fp, ", \"redis\": \"%s\", \"redis_round_trips\": %" PRIu64,
           atomic_load (&up) ? "up" : "down",
           atomic_load (&round_trips) + commands_round_trips ());
}

void
mirror_unload (void)
{
  free (id);
  free (address);
  free (user);
  free (password_file);
  free (export_uri);
  free (model_file);
  free (source_name);
  free (mirrored);
  ms_config_free (&cfg);
}
