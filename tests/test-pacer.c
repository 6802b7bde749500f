/* test-pacer.c: the pacer (proxy/pacer.h) driving pulls over a model
 * link, in simulated time: a fixed delay, then one server that moves
 * `rate` bytes per second, first come first served.  It must keep the
 * link busy, keep the queue it builds short (a demand read waits behind
 * it), carry the window in few requests (a source that shares itself
 * per request, like nbdkit's rate filter, gives a demand read 1/(n+1) of
 * the link behind n pulls), come down fast when the link slows down
 * under it, and while a guest's demand reads share the link, leave
 * each of them little more than an idle link's time.  Deterministic:
 * no clocks, no I/O.
 */
#include <assert.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "pacer.h"

#define BLOCK 65536
#define MAX_REQUEST (2 << 20)
#define MAX_INFLIGHT 64
#define US 1000000

struct request {
  uint64_t seq, bytes, sent_us, done_us;
};

struct link {
  uint64_t delay_us;
  double rate, slow_rate;       /* bytes/s; slow_rate from slow_at_us on */
  uint64_t slow_at_us;
  uint64_t free_us;             /* when the server is next idle */
};

/* When a request of `bytes` sent at `now` is answered. */
static uint64_t
link_serve (struct link *l, uint64_t bytes, uint64_t now)
{
  uint64_t arrive = now + l->delay_us;
  uint64_t start = arrive > l->free_us ? arrive : l->free_us;
  double rate = start >= l->slow_at_us ? l->slow_rate : l->rate;
  l->free_us = start + (uint64_t) (bytes * (double) US / rate);
  return l->free_us;
}

/* What happened in [from_us, to_us) of the run. */
struct result {
  double bytes_per_s;           /* pulls delivered */
  double requests_in_flight;    /* time-weighted mean */
  double queue_ms;              /* mean wait of pulls at the server */
  uint64_t largest_request;
  uint64_t window;              /* at the end */
  double demand_ms;             /* mean demand read, sent to answered */
  unsigned demands;
};

/* A guest reading one block at a time, from demand_from_us to
 * demand_to_us, between half and one and a half gap_us after each
 * answer (a fixed gap would meet the pulls always in the same phase); as in the engine (proxy/loop.c), no
 * pull is sent while a demand read is out, and each answer is told to
 * the pacer.  gap_us 0: no guest.
 */
struct guest {
  uint64_t gap_us, demand_from_us, demand_to_us;
};

static struct result
run (struct link l, struct guest g, uint64_t until_us, uint64_t from_us,
     uint64_t to_us)
{
  struct pacer p;
  struct request inflight[MAX_INFLIGHT];
  unsigned n = 0;
  uint64_t now = 0, last = 0, bytes_in_flight = 0, delivered = 0;
  uint64_t next_demand = g.gap_us ? g.demand_from_us : UINT64_MAX;
  uint64_t demand_sent = 0, demand_done = UINT64_MAX, wake = UINT64_MAX;
  double weighted = 0, queued = 0, demand_us = 0;
  uint64_t answers = 0, seed = 1;
  struct result r = { 0 };

  pacer_init (&p, BLOCK, (uint64_t) MAX_INFLIGHT * MAX_REQUEST, MAX_REQUEST, 0, 0);
  while (now < until_us) {
    /* Send while the window and the pacer's spacing allow, and no
     * demand read is out.
     */
    wake = UINT64_MAX;
    while (n < MAX_INFLIGHT && demand_done == UINT64_MAX &&
           pacer_may_send (&p, bytes_in_flight, now)) {
      uint64_t wait = pacer_wait_us (&p, now);
      if (wait) {
        wake = now + wait;
        break;
      }
      uint64_t bytes = pacer_request_size (&p, BLOCK, now);
      assert (bytes % BLOCK == 0 && bytes <= MAX_REQUEST);
      inflight[n] = (struct request) {
        .seq = pacer_sent (&p, bytes, now), .bytes = bytes, .sent_us = now,
        .done_us = link_serve (&l, bytes, now),
      };
      bytes_in_flight += bytes;
      if (now >= from_us && now < to_us && bytes > r.largest_request)
        r.largest_request = bytes;
      n++;
    }
    /* Next event: the guest's read, its answer, a pull's answer (pulls
     * are served in order: the first sent), or the end of a wait.
     */
    unsigned first = 0;
    for (unsigned i = 1; i < n; i++)
      if (inflight[i].done_us < inflight[first].done_us)
        first = i;
    uint64_t pull_done = n ? inflight[first].done_us : UINT64_MAX;
    if (wake < pull_done && wake < next_demand && wake < demand_done) {
      now = wake;
      continue;
    }
    if (next_demand <= pull_done && next_demand <= demand_done) {
      now = demand_sent = next_demand;
      next_demand = UINT64_MAX;
      demand_done = link_serve (&l, BLOCK, now);
      continue;
    }
    if (demand_done <= pull_done) {
      now = demand_done;
      demand_done = UINT64_MAX;
      if (now >= from_us && now < to_us) {
        demand_us += now - demand_sent;
        r.demands++;
      }
      pacer_demand (&p, now);
      seed = seed * 6364136223846793005u + 1442695040888963407u;
      uint64_t gap = g.gap_us / 2 + (seed >> 33) % g.gap_us;
      if (now + gap < g.demand_to_us)
        next_demand = now + gap;
      continue;
    }
    struct request q = inflight[first];
    inflight[first] = inflight[--n];

    uint64_t lo = last > from_us ? last : from_us;
    uint64_t hi = q.done_us < to_us ? q.done_us : to_us;
    if (hi > lo)
      weighted += (double) (n + 1) * (hi - lo);
    last = now = q.done_us;
    bytes_in_flight -= q.bytes;
    if (now >= from_us && now < to_us) {
      double rate = now >= l.slow_at_us ? l.slow_rate : l.rate;
      delivered += q.bytes;
      queued += (q.done_us - q.sent_us) - l.delay_us - q.bytes * (double) US / rate;
      answers++;
    }
    pacer_ack (&p, q.seq, q.bytes, q.done_us - q.sent_us, now);
  }
  r.bytes_per_s = delivered * (double) US / (to_us - from_us);
  r.requests_in_flight = weighted / (to_us - from_us);
  r.queue_ms = answers ? queued / answers / 1000 : 0;
  r.window = p.window;
  r.demand_ms = r.demands ? demand_us / r.demands / 1000 : 0;
  return r;
}

static void
show (const char *name, struct result r, double rate)
{
  printf ("%-34s %6.1f%% of the link, %.2f requests in flight, "
          "queue %.1f ms, largest request %" PRIu64 "K, window %" PRIu64 "K",
          name, 100 * r.bytes_per_s / rate, r.requests_in_flight, r.queue_ms,
          r.largest_request / 1024, r.window / 1024);
  if (r.demands)
    printf (", %u demand reads of %.2f ms", r.demands, r.demand_ms);
  printf ("\n");
}

int
main (void)
{
  setvbuf (stdout, NULL, _IONBF, 0);    /* the lines before a failed assert */
  const struct guest no_guest = { 0 };
  /* 100 Mbit/s, 10 ms away (the latency bench's source). */
  struct link wan = { .delay_us = 10000, .rate = 12.5e6, .slow_rate = 12.5e6,
                      .slow_at_us = UINT64_MAX };
  struct result r = run (wan, no_guest, 30 * US, 10 * US, 30 * US);
  show ("100 Mbit/s, 10 ms", r, wan.rate);
  assert (r.bytes_per_s >= 0.95 * wan.rate);
  /* A queue of at most about one block's transfer (5.2 ms) beyond the
   * target, and the window in two or three requests, not a stream of
   * single blocks.
   */
  assert (r.queue_ms <= 10.5);
  assert (r.requests_in_flight <= 3.0);
  assert (r.largest_request >= 2 * BLOCK);

  /* A fast local link: few requests of the largest size. */
  struct link local = { .delay_us = 50, .rate = 1.5e9, .slow_rate = 1.5e9,
                        .slow_at_us = UINT64_MAX };
  r = run (local, no_guest, 3 * US, 1 * US, 3 * US);
  show ("1.5 GB/s, 50 us", r, local.rate);
  assert (r.bytes_per_s >= 0.95 * local.rate);
  assert (r.largest_request >= MAX_REQUEST / 2);

  /* A shaper's burst: 150 MB/s for 2 s, then 12.5 MB/s.  Once the
   * burst's round trips are forgotten (two 2 s epochs), the slow link
   * must be as full and its queue as short as if it had been slow all
   * along.
   */
  struct link burst = { .delay_us = 10000, .rate = 150e6, .slow_rate = 12.5e6,
                        .slow_at_us = 2 * US };
  r = run (burst, no_guest, 12 * US, 6 * US + US / 2, 12 * US);
  show ("150 then 12.5 MB/s, 10 ms", r, burst.slow_rate);
  assert (r.bytes_per_s >= 0.95 * burst.slow_rate);
  assert (r.queue_ms <= 10.5);

  /* A guest stalling on a link the pulls share (100 Mbit/s, 5 ms, the
   * demand latency bench's): one read at a time, ten delays apart, from
   * 10 to 20 s.  A read must cost at most 1.3x what it does on an idle
   * link while the pulls still use most of it; before and after, with
   * the guest idle, the pulls fill the link as without a guest.
   */
  struct link lan = { .delay_us = 5000, .rate = 12.5e6, .slow_rate = 12.5e6,
                      .slow_at_us = UINT64_MAX };
  const struct guest reads = { .gap_us = 50000, .demand_from_us = 10 * US,
                               .demand_to_us = 20 * US };
  double idle_read_ms = (lan.delay_us + BLOCK * (double) US / lan.rate) / 1000;
  r = run (lan, reads, 30 * US, 5 * US, 10 * US);
  show ("100 Mbit/s, 5 ms, guest idle", r, lan.rate);
  assert (r.bytes_per_s >= 0.9 * lan.rate);
  r = run (lan, reads, 30 * US, 11 * US, 20 * US);
  show ("100 Mbit/s, 5 ms, guest reading", r, lan.rate);
  printf ("%-34s %.2f ms, %.2fx\n", "  a read on the idle link", idle_read_ms,
          r.demand_ms / idle_read_ms);
  assert (r.demands >= 100);
  assert (r.demand_ms <= 1.3 * idle_read_ms);
  assert (r.bytes_per_s >= 0.6 * lan.rate);
  r = run (lan, reads, 30 * US, 25 * US, 30 * US);
  show ("100 Mbit/s, 5 ms, guest idle again", r, lan.rate);
  assert (r.bytes_per_s >= 0.9 * lan.rate);
  return 0;
}
