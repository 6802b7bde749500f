/* replay.c: `nbdshadow replay`: play a canonical trace against a real NBD
 * export open-loop, at its timestamps, the way the standard scenario's
 * guest does (DESIGN.md), and report request latencies.
 *
 * Open-loop means request i is issued at start + (ts_i - ts_0) / speed
 * whether or not earlier requests have completed: a stalled request must
 * not delay the ones after it, or a slow export would hide its own stalls
 * by slowing the guest down.  So everything goes through libnbd's
 * asynchronous API driven by our own poll loop, which wakes up for
 * whichever comes first: the next request's time or the socket.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libnbd.h>

#include "cli.h"
#include "parse-number.h"

/* Writes carry this pattern: the 8-byte word at disk offset o (o a
 * multiple of 8) holds o XOR WRITE_PATTERN_MAGIC, big-endian; a request
 * starting or ending mid-word carries the matching bytes of that word.
 * It depends only on the disk offset, so replaying a trace with --speed 0
 * on a copy of the source builds the image a timed replay should leave;
 * and it differs from nbdkit's pattern plugin (plain o, big-endian) and
 * from zeroes, so written ranges stand out: below 16 MiB every word reads
 * "WRITE" and then the low three bytes of its offset. */
#define WRITE_PATTERN_MAGIC UINT64_C (0x5752495445000000)

/* Reads and writes larger than this are refused before starting (libnbd
 * caps a request at 64M; block traces have far smaller requests). */
#define MAX_PAYLOAD (32 * 1024 * 1024)

/* Buffers of requests in flight are capped at this many bytes even when
 * --max-inflight is unlimited: past it the issuer waits, which shows up
 * as lateness. */
#define MAX_INFLIGHT_BYTES (UINT64_C (1) << 30)

#define PROGRESS_INTERVAL 5.0   /* seconds */

struct request {
  struct replay *rp;
  const struct trace_rec *rec;
  double issued;                /* seconds since the start */
  double completed;
  bool done;                    /* the completion callback ran */
  int error;                    /* errno from the server or libnbd */
  struct request *prev, *next;  /* in flight; next only once done */
  unsigned char buf[];          /* the payload of a read or write */
};

struct replay {
  struct nbd_handle *h;
  const char *uri;
  int64_t export_size;
  const struct trace *t;
  double speed;                 /* 0: as fast as possible */
  size_t max_inflight;
  int can_trim, can_flush;
  uint64_t start;               /* time_ns () */
  size_t next;                  /* index of the next request to issue */
  struct request *inflight;     /* issued, not yet completed */
  struct request *done;         /* completed, not yet accounted for */
  size_t ninflight, inflight_max;
  size_t ninflight_op[256];     /* per op: the race check's shortcut */
  uint64_t inflight_bytes;
  /* Results. */
  uint64_t ops[256];            /* requests in the trace, per op */
  size_t skipped, errors, races;
  double *latency, *read_latency;  /* seconds, of requests that succeeded */
  size_t nlatency, nread_latency;
  double lateness_max, lateness_sum;
  size_t nissued;
  double duration;
  char first_error[256];
};

static void
usage (FILE *fp)
{
  fprintf (fp,
"usage: nbdshadow replay --trace FUT.csv --uri NBD_URI [--speed X]\n"
"                        [--max-inflight N] [--json]\n"
"Replay the canonical trace FUT.csv against the NBD export NBD_URI\n"
"open-loop: request i is issued at start + (ts_i - ts_0) / X whether or\n"
"not earlier requests have completed (X = --speed, default 1).  --speed 0\n"
"issues as fast as possible with at most N requests in flight\n"
"(--max-inflight, default 64 there, unlimited otherwise), in trace order\n"
"where a write, trim or zero overlaps one of another kind still in\n"
"flight, so the final image is reproducible.\n"
"Ops: R read, W write, T trim, Z write zeroes, F flush.  Trims and\n"
"flushes the export does not support, and requests of length 0, are\n"
"skipped.  Requests beyond the export's size or over 32M are refused\n"
"before starting.\n"
"Writes carry a pattern that depends only on the disk offset: the 8-byte\n"
"word at offset o (a multiple of 8) holds o XOR 0x5752495445000000,\n"
"big-endian (\"WRITE\" then o's low 3 bytes, below 16M).  To build the\n"
"image a replay should leave, replay the same trace with --speed 0 on a\n"
"copy of the source (trimmed ranges read back as that server trims:\n"
"zeroes for nbdkit memory).\n"
"Output: counts, duration, how late the issuer fell behind its schedule,\n"
"and latency (issue to completion) percentiles for all requests and for\n"
"reads.  --json: one object with requests, reads, writes, trims,\n"
"zeroes, flushes, skipped, errors, races, export_size, speed,\n"
"trace_seconds, duration_seconds, inflight_max, lateness_max_ms,\n"
"lateness_mean_ms, latency_{p50,p99,max,mean}_ms and\n"
"read_latency_{p50,p99,max,mean}_ms (null when there is nothing to\n"
"measure).  races: writes, trims and zeroes issued while an overlapping\n"
"one of another kind was in flight (the image then depends on the\n"
"server's ordering; 0 with --speed 0, which waits instead).  Without\n"
"--json, progress goes to stderr every 5 s if it is a terminal.\n"
"Exits 1 if any request failed.\n");
}

static int
modifies (char op)
{
  return op == TRACE_WRITE || op == TRACE_TRIM || op == TRACE_ZERO;
}

static uint32_t
payload_length (const struct trace_rec *r)
{
  return r->op == TRACE_READ || r->op == TRACE_WRITE ? r->length : 0;
}

static void
fill_write_pattern (unsigned char *buf, uint64_t offset, uint32_t length)
{
  for (uint32_t i = 0; i < length; i++) {
    uint64_t o = offset + i;
    uint64_t word = (o & ~UINT64_C (7)) ^ WRITE_PATTERN_MAGIC;
    buf[i] = word >> (56 - 8 * (o & 7));
  }
}

/* The time (seconds after the start) request R is due. */
static double
scheduled_time (const struct replay *rp, const struct trace_rec *r)
{
  if (rp->speed == 0)
    return 0;
  return (r->ts_us - rp->t->recs[0].ts_us) / 1e6 / rp->speed;
}

static int
skipped (const struct replay *rp, const struct trace_rec *r)
{
  switch (r->op) {
  case TRACE_FLUSH: return !rp->can_flush;
  case TRACE_TRIM: return !rp->can_trim || r->length == 0;
  default: return r->length == 0;
  }
}

/* Count the trace's ops and refuse, before anything is sent, what would
 * fail in the middle of the run. */
static int
check_trace (struct replay *rp, const char *path)
{
  const struct trace *t = rp->t;
  int64_t size = nbd_get_size (rp->h), max_block;
  int ro = nbd_is_read_only (rp->h), can_zero = nbd_can_zero (rp->h);
  uint64_t max_payload = MAX_PAYLOAD;

  if (size == -1 || ro == -1 || can_zero == -1)
    return die ("%s: %s", rp->uri, nbd_get_error ());
  rp->export_size = size;
  max_block = nbd_get_block_size (rp->h, LIBNBD_SIZE_MAXIMUM);
  if (max_block > 0 && (uint64_t) max_block < max_payload)
    max_payload = max_block;
  if (t->n == 0)
    return die ("%s: no requests", path);
  for (size_t i = 0; i < t->n; i++) {
    const struct trace_rec *r = &t->recs[i];

    rp->ops[(unsigned char) r->op]++;
    if (r->op == TRACE_FLUSH)
      continue;
    if (r->offset + r->length > (uint64_t) size)
      return die ("%s: %c at ts_us %" PRIu64 ": offset %" PRIu64
                  " + length %" PRIu32 " is beyond the export's size %"
                  PRIi64, path, r->op, r->ts_us, r->offset, r->length, size);
    if (payload_length (r) > max_payload)
      return die ("%s: %c at ts_us %" PRIu64 ": length %" PRIu32
                  " is over the largest request %" PRIu64, path, r->op,
                  r->ts_us, r->length, max_payload);
  }
  if (ro && (rp->ops['W'] || rp->ops['T'] || rp->ops['Z']))
    return die ("%s: the export is read-only but %s has writes, trims or "
                "zeroes", rp->uri, path);
  if (!can_zero && rp->ops['Z'])
    return die ("%s: the export does not support write zeroes but %s has "
                "Z requests", rp->uri, path);
  return 0;
}

static void
list_remove (struct request **head, struct request *rq)
{
  if (rq->prev)
    rq->prev->next = rq->next;
  else
    *head = rq->next;
  if (rq->next)
    rq->next->prev = rq->prev;
}

/* The completion callback: moves the request to the done list, to be
 * accounted for by the main loop (not here: the request must outlive the
 * callback when issuing fails, see issue). */
static int
request_completed (void *opaque, int *error)
{
  struct request *rq = opaque;
  struct replay *rp = rq->rp;

  rq->completed = seconds_since (rp->start);
  rq->error = *error;
  rq->done = true;
  list_remove (&rp->inflight, rq);
  rq->next = rp->done;
  rp->done = rq;
  return 1;
}

static void
note_failure (struct replay *rp, const struct trace_rec *r, const char *why)
{
  if (rp->errors++ == 0)
    snprintf (rp->first_error, sizeof rp->first_error, "%c at ts_us %"
              PRIu64 ", offset %" PRIu64 ", length %" PRIu32 ": %s",
              r->op, r->ts_us, r->offset, r->length, why);
}

static void
release (struct replay *rp, struct request *rq)
{
  rp->ninflight--;
  rp->ninflight_op[(unsigned char) rq->rec->op]--;
  rp->inflight_bytes -= payload_length (rq->rec);
  free (rq);
}

/* Account for the requests that completed since the last call. */
static void
retire_completed (struct replay *rp)
{
  while (rp->done) {
    struct request *rq = rp->done;
    double latency = rq->completed - rq->issued;

    rp->done = rq->next;
    if (rq->error)
      note_failure (rp, rq->rec, strerror (rq->error));
    else {
      rp->latency[rp->nlatency++] = latency;
      if (rq->rec->op == TRACE_READ)
        rp->read_latency[rp->nread_latency++] = latency;
    }
    release (rp, rq);
  }
}

static void
free_requests (struct request *list)
{
  while (list) {
    struct request *rq = list;
    list = rq->next;
    free (rq);
  }
}

/* Whether R, a write, trim or zero, overlaps one of another kind in
 * flight: the server may run them in either order, so the final image
 * would depend on its timing.  (Overlapping writes are harmless: the
 * write pattern depends only on the offset.)  The walk is skipped unless
 * another kind is in flight at all: a timed replay of a read/write trace
 * against a slow export can have tens of thousands of requests in flight,
 * and walking them for every write made the issuer fall behind. */
static int
races_inflight (const struct replay *rp, const struct trace_rec *r)
{
  size_t others = rp->ninflight_op['W'] + rp->ninflight_op['T'] +
    rp->ninflight_op['Z'] - rp->ninflight_op[(unsigned char) r->op];

  if (!modifies (r->op) || others == 0)
    return 0;
  for (const struct request *rq = rp->inflight; rq; rq = rq->next) {
    const struct trace_rec *o = rq->rec;
    if (modifies (o->op) && o->op != r->op &&
        o->offset < r->offset + r->length && r->offset < o->offset + o->length)
      return 1;
  }
  return 0;
}

/* Whether R can be issued now or must wait for completions. */
static int
may_issue (const struct replay *rp, const struct trace_rec *r)
{
  if (rp->ninflight >= rp->max_inflight)
    return 0;
  if (rp->inflight_bytes > 0 &&
      rp->inflight_bytes + payload_length (r) > MAX_INFLIGHT_BYTES)
    return 0;
  return rp->speed > 0 || !races_inflight (rp, r);
}

static int
issue (struct replay *rp, const struct trace_rec *r)
{
  uint32_t payload = payload_length (r);
  struct request *rq = malloc (sizeof *rq + payload);
  nbd_completion_callback cb = { .callback = request_completed };
  int64_t cookie;

  if (!rq) {
    die ("out of memory");
    return -1;
  }
  *rq = (struct request) { .rp = rp, .rec = r, .next = rp->inflight };
  cb.user_data = rq;
  if (rp->speed > 0 && races_inflight (rp, r))
    rp->races++;
  if (r->op == TRACE_WRITE)
    fill_write_pattern (rq->buf, r->offset, r->length);
  if (rp->inflight)
    rp->inflight->prev = rq;
  rp->inflight = rq;
  rp->inflight_bytes += payload;
  rp->ninflight_op[(unsigned char) r->op]++;
  if (++rp->ninflight > rp->inflight_max)
    rp->inflight_max = rp->ninflight;
  rp->nissued++;

  rq->issued = seconds_since (rp->start);
  switch (r->op) {
  case TRACE_READ:
    cookie = nbd_aio_pread (rp->h, rq->buf, r->length, r->offset, cb, 0);
    break;
  case TRACE_WRITE:
    cookie = nbd_aio_pwrite (rp->h, rq->buf, r->length, r->offset, cb, 0);
    break;
  case TRACE_TRIM:
    cookie = nbd_aio_trim (rp->h, r->length, r->offset, cb, 0);
    break;
  case TRACE_ZERO:
    cookie = nbd_aio_zero (rp->h, r->length, r->offset, cb, 0);
    break;
  default:
    cookie = nbd_aio_flush (rp->h, cb, 0);
    break;
  }
  /* libnbd 1.14 does not call the completion callback of a command it
   * refuses to issue; should a later one do so, the request is already
   * on the done list and retire_completed accounts for it. */
  if (cookie == -1 && !rq->done) {
    note_failure (rp, r, nbd_get_error ());
    list_remove (&rp->inflight, rq);
    release (rp, rq);
  }
  return 0;
}

/* Wait up to WAIT seconds (forever if negative) for the socket and let
 * libnbd move: send queued requests, receive replies (which run the
 * completion callbacks).  Returns -1, having said why, if the connection
 * broke. */
static int
poll_socket (struct replay *rp, double wait)
{
  unsigned dir = nbd_aio_get_direction (rp->h);
  struct pollfd pfd = { .fd = nbd_aio_get_fd (rp->h) };
  struct timespec ts, *tsp = NULL;

  /* A server that closes the connection cleanly leaves no error. */
  if (nbd_aio_is_closed (rp->h) || nbd_aio_is_dead (rp->h)) {
    die ("%s: the server closed the connection (after %zu of %zu "
         "requests)", rp->uri, rp->next, rp->t->n);
    return -1;
  }
  if (pfd.fd == -1)
    goto broken;
  if (dir & LIBNBD_AIO_DIRECTION_READ)
    pfd.events |= POLLIN;
  if (dir & LIBNBD_AIO_DIRECTION_WRITE)
    pfd.events |= POLLOUT;
  if (wait >= 0) {
    ts.tv_sec = wait;
    ts.tv_nsec = (wait - ts.tv_sec) * 1e9;
    tsp = &ts;
  }
  if (ppoll (&pfd, 1, tsp, NULL) == -1) {
    if (errno == EINTR)
      return 0;
    die ("poll: %s", strerror (errno));
    return -1;
  }
  if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
    if (nbd_aio_notify_read (rp->h) == -1)
      goto broken;
  }
  else if (pfd.revents & POLLOUT) {
    if (nbd_aio_notify_write (rp->h) == -1)
      goto broken;
  }
  return 0;
 broken:
  die ("%s: %s", rp->uri, nbd_get_error ());
  return -1;
}

/* The replay itself: issue each request when it is due (and allowed, see
 * may_issue), otherwise sleep in poll until the next one is due or the
 * socket needs attention.  Returns -1, having said why, on a fatal error
 * (the connection broke). */
static int
run (struct replay *rp, bool show_progress)
{
  const struct trace *t = rp->t;
  double next_progress = PROGRESS_INTERVAL;

  rp->start = time_ns ();
  while (rp->next < t->n || rp->ninflight) {
    double now = seconds_since (rp->start), wait = -1;

    while (rp->next < t->n) {
      const struct trace_rec *r = &t->recs[rp->next];
      double due = scheduled_time (rp, r);

      if (skipped (rp, r)) {
        rp->skipped++;
        rp->next++;
        continue;
      }
      if (due > now) {
        wait = due - now;
        break;
      }
      if (!may_issue (rp, r))
        break;
      if (rp->speed > 0) {
        rp->lateness_sum += now - due;
        if (now - due > rp->lateness_max)
          rp->lateness_max = now - due;
      }
      if (issue (rp, r) == -1)
        return -1;
      rp->next++;
      now = seconds_since (rp->start);
    }
    retire_completed (rp);
    if (rp->next == t->n && rp->ninflight == 0)
      break;
    if (show_progress && (wait < 0 || now + wait > next_progress))
      wait = next_progress > now ? next_progress - now : 0;
    if (poll_socket (rp, wait) == -1)
      return -1;
    retire_completed (rp);
    if (show_progress && seconds_since (rp->start) >= next_progress) {
      fprintf (stderr, "nbdshadow replay: %.0f s: %zu of %zu requests "
               "issued, %zu in flight, %zu errors\n", next_progress,
               rp->next, t->n, rp->ninflight, rp->errors);
      next_progress += PROGRESS_INTERVAL;
    }
  }
  rp->duration = seconds_since (rp->start);
  return 0;
}

struct latency_summary {
  double p50, p99, max, mean;   /* milliseconds; NaN if no samples */
};

static int
compare_doubles (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

/* Nearest-rank percentiles: the smallest sample with at least p % of
 * the samples at or below it. */
static struct latency_summary
summarize (double *v, size_t n)
{
  struct latency_summary s = { NAN, NAN, NAN, NAN };
  double sum = 0;

  if (n == 0)
    return s;
  qsort (v, n, sizeof *v, compare_doubles);
  for (size_t i = 0; i < n; i++)
    sum += v[i];
  s.p50 = v[(size_t) ceil (0.50 * n) - 1] * 1e3;
  s.p99 = v[(size_t) ceil (0.99 * n) - 1] * 1e3;
  s.max = v[n - 1] * 1e3;
  s.mean = sum / n * 1e3;
  return s;
}

static void
print_latency_row (const char *what, const struct latency_summary *s)
{
  if (isnan (s->p50))
    printf ("  %-6s %10s %10s %10s %10s\n", what, "-", "-", "-", "-");
  else
    printf ("  %-6s %10.3f %10.3f %10.3f %10.3f\n", what, s->p50, s->p99,
            s->max, s->mean);
}

static void
print_latency_json (const char *prefix, const struct latency_summary *s,
                    const char *sep)
{
  char key[64];

  snprintf (key, sizeof key, "%slatency_p50_ms", prefix);
  print_json_number (key, s->p50, ", ");
  snprintf (key, sizeof key, "%slatency_p99_ms", prefix);
  print_json_number (key, s->p99, ", ");
  snprintf (key, sizeof key, "%slatency_max_ms", prefix);
  print_json_number (key, s->max, ", ");
  snprintf (key, sizeof key, "%slatency_mean_ms", prefix);
  print_json_number (key, s->mean, sep);
}

static void
print_report (struct replay *rp, bool json)
{
  const struct trace *t = rp->t;
  double span = (t->recs[t->n - 1].ts_us - t->recs[0].ts_us) / 1e6;
  double late_max = rp->speed > 0 ? rp->lateness_max * 1e3 : NAN;
  double late_mean = rp->speed > 0 && rp->nissued
    ? rp->lateness_sum / rp->nissued * 1e3 : NAN;
  struct latency_summary all = summarize (rp->latency, rp->nlatency);
  struct latency_summary reads = summarize (rp->read_latency,
                                            rp->nread_latency);

  if (json) {
    printf ("{\"requests\": %zu, \"reads\": %" PRIu64 ", \"writes\": %"
            PRIu64 ", \"trims\": %" PRIu64 ", \"zeroes\": %" PRIu64
            ", \"flushes\": %" PRIu64 ", \"skipped\": %zu, \"errors\": %zu"
            ", \"races\": %zu, \"export_size\": %" PRIi64 ", ", t->n,
            rp->ops['R'], rp->ops['W'], rp->ops['T'], rp->ops['Z'],
            rp->ops['F'], rp->skipped, rp->errors, rp->races,
            rp->export_size);
    print_json_number ("speed", rp->speed, ", ");
    print_json_number ("trace_seconds", span, ", ");
    print_json_number ("duration_seconds", rp->duration, ", ");
    printf ("\"inflight_max\": %zu, ", rp->inflight_max);
    print_json_number ("lateness_max_ms", late_max, ", ");
    print_json_number ("lateness_mean_ms", late_mean, ", ");
    print_latency_json ("", &all, ", ");
    print_latency_json ("read_", &reads, "}\n");
    return;
  }
  printf ("requests  %zu: %" PRIu64 " R, %" PRIu64 " W, %" PRIu64 " T, %"
          PRIu64 " Z, %" PRIu64 " F; %zu skipped, %zu errors, %zu races\n",
          t->n, rp->ops['R'], rp->ops['W'], rp->ops['T'], rp->ops['Z'],
          rp->ops['F'], rp->skipped, rp->errors, rp->races);
  if (rp->speed > 0)
    printf ("duration  %.3f s (trace %.3f s at speed %g)\n", rp->duration,
            span, rp->speed);
  else
    printf ("duration  %.3f s (trace %.3f s, as fast as possible)\n",
            rp->duration, span);
  printf ("in flight at most %zu\n", rp->inflight_max);
  if (rp->speed > 0)
    printf ("lateness  max %.3f ms, mean %.3f ms\n", late_max, late_mean);
  printf ("latency (ms)    p50        p99        max       mean\n");
  print_latency_row ("all", &all);
  print_latency_row ("reads", &reads);
}

int
cmd_replay (int argc, char **argv)
{
  static const struct option opts[] = {
    { "trace", required_argument, NULL, 't' },
    { "uri", required_argument, NULL, 'u' },
    { "speed", required_argument, NULL, 's' },
    { "max-inflight", required_argument, NULL, 'm' },
    { "json", no_argument, NULL, 'j' },
    { "help", no_argument, NULL, 'h' },
    { NULL }
  };
  const char *trace_path = NULL;
  struct trace t = { 0 };
  struct replay rp = { .t = &t, .speed = 1 };
  char err[LEARNER_ERRLEN];
  uint64_t max_inflight = 0;
  int c, status = 1;
  bool json = false;

  while ((c = getopt_long (argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 't': trace_path = optarg; break;
    case 'u': rp.uri = optarg; break;
    case 's':
      if (parse_double (optarg, &rp.speed) == -1 || !(rp.speed >= 0))
        return die ("--speed: expected a number >= 0 (0: as fast as "
                    "possible), got \"%s\"", optarg);
      break;
    case 'm':
      if (parse_uint64 (optarg, 10, &max_inflight) == -1 || max_inflight == 0)
        return die ("--max-inflight: expected a positive number, got \"%s\"",
                    optarg);
      break;
    case 'j': json = true; break;
    case 'h': usage (stdout); return 0;
    default: usage (stderr); return 1;
    }
  }
  if (!trace_path || !rp.uri || optind != argc) {
    usage (stderr);
    return 1;
  }
  rp.max_inflight = max_inflight ? max_inflight
    : rp.speed == 0 ? 64 : SIZE_MAX;

  if (trace_load_csv (trace_path, &t, err) == -1) {
    die ("%s", err);
    goto out;
  }
  rp.h = nbd_create ();
  if (!rp.h) {
    die ("%s", nbd_get_error ());
    goto out;
  }
  if (nbd_connect_uri (rp.h, rp.uri) == -1) {
    die ("%s: %s", rp.uri, nbd_get_error ());
    goto out;
  }
  rp.can_trim = nbd_can_trim (rp.h) == 1;
  rp.can_flush = nbd_can_flush (rp.h) == 1;
  if (check_trace (&rp, trace_path))
    goto out;
  /* One array for both: all requests, then reads. */
  rp.latency = malloc (2 * t.n * sizeof *rp.latency);
  if (!rp.latency) {
    die ("out of memory");
    goto out;
  }
  rp.read_latency = rp.latency + t.n;
  if (run (&rp, !json && isatty (STDERR_FILENO)) == -1)
    goto out;
  print_report (&rp, json);
  if (rp.errors) {
    die ("%zu of %zu requests failed; the first: %s", rp.errors, t.n,
         rp.first_error);
    goto out;
  }
  if (nbd_shutdown (rp.h, 0) == -1) {
    die ("%s: %s", rp.uri, nbd_get_error ());
    goto out;
  }
  status = 0;
 out:
  /* Closing first: libnbd may still hold the buffers of requests in
   * flight when the replay ended in an error. */
  if (rp.h)
    nbd_close (rp.h);
  free_requests (rp.inflight);
  free_requests (rp.done);
  free (rp.latency);
  trace_free (&t);
  return status;
}
