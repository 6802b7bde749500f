/* test-pacer.c: the pacer (proxy/pacer.h) driving pulls over a model
 * link, in simulated time: a fixed delay, then one server that moves
 * `rate` bytes per second, first come first served.  It must keep the
 * link busy, keep the queue it builds short (a demand read waits behind
 * it), carry the window in few requests (a source that shares itself
 * per request, like nbdkit's rate filter, gives a demand read 1/(n+1) of
 * the link behind n pulls), and come down fast when the link slows
 * down under it.  Deterministic: no clocks, no I/O.
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
  double bytes_per_s;
  double requests_in_flight;    /* time-weighted mean */
  double queue_ms;              /* mean wait at the server */
  uint64_t largest_request;
  uint64_t window;              /* at the end */
};

static struct result
run (struct link l, uint64_t until_us, uint64_t from_us, uint64_t to_us)
{
  struct pacer p;
  struct request inflight[MAX_INFLIGHT];
  unsigned n = 0;
  uint64_t now = 0, last = 0, bytes_in_flight = 0, delivered = 0;
  double weighted = 0, queued = 0;
  uint64_t answers = 0;
  struct result r = { 0 };

  pacer_init (&p, BLOCK, (uint64_t) MAX_INFLIGHT * MAX_REQUEST, MAX_REQUEST, 0, 0);
  while (now < until_us) {
    /* Send while the window allows. */
    while (n < MAX_INFLIGHT && bytes_in_flight < p.window) {
      uint64_t bytes = pacer_request_size (&p, BLOCK);
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
    /* Next answer (requests are served in order: the first sent). */
    unsigned first = 0;
    for (unsigned i = 1; i < n; i++)
      if (inflight[i].done_us < inflight[first].done_us)
        first = i;
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
  return r;
}

static void
show (const char *name, struct result r, double rate)
{
  printf ("%-34s %6.1f%% of the link, %.2f requests in flight, "
          "queue %.1f ms, largest request %" PRIu64 "K, window %" PRIu64 "K\n",
          name, 100 * r.bytes_per_s / rate, r.requests_in_flight, r.queue_ms,
          r.largest_request / 1024, r.window / 1024);
}

int
main (void)
{
  setvbuf (stdout, NULL, _IONBF, 0);    /* the lines before a failed assert */
  /* 100 Mbit/s, 10 ms away (the latency bench's source). */
  struct link wan = { .delay_us = 10000, .rate = 12.5e6, .slow_rate = 12.5e6,
                      .slow_at_us = UINT64_MAX };
  struct result r = run (wan, 30 * US, 10 * US, 30 * US);
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
  r = run (local, 3 * US, 1 * US, 3 * US);
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
  r = run (burst, 12 * US, 6 * US + US / 2, 12 * US);
  show ("150 then 12.5 MB/s, 10 ms", r, burst.slow_rate);
  assert (r.bytes_per_s >= 0.95 * burst.slow_rate);
  assert (r.queue_ms <= 10.5);
  return 0;
}
