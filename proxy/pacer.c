/* Pacing of background pulls (see pacer.h for the idea). */

#include <stdbool.h>
#include <stdint.h>

#include "pacer.h"

/* The smallest round trip is forgotten after two epochs: after a
 * shaper's burst allowance runs out, the round trips of the burst
 * (shorter than any the slow link can give) would otherwise make every
 * answer look queued, and hold the window below what fills the link
 * (to 78 % of it in tests/test-pacer.c) for as long as they are
 * remembered.
 */
#define EPOCH_US (2 * 1000000)
/* The queueing delay aimed at: a quarter of the smallest round trip,
 * so that a demand read sent now takes at most about 1.25 to 1.5 times
 * what it would on an idle link; but never below a millisecond, which
 * is noise on a fast local link and harms nobody, nor below one
 * block's transfer: keeping the link busy means one block waits on the
 * wire behind another, and a demand read behind one of them.
 */
#define TARGET_FRACTION 4
#define TARGET_FLOOR_US 1000
/* A request carries about this much of the link's time, at least. */
#define REQUEST_US 1000
/* How long the guest counts as active after a demand read, in one-block
 * round trips: its stalls come in bursts (a file read, a program
 * started), a few round trips of its own work apart, and while it is
 * active each pull byte sent beyond what fills the link is a wait for
 * its next read.  Staying active too long costs only a link kept just
 * full instead of with a queue standing.
 */
#define ACTIVE_ROUND_TRIPS 64
/* While the guest is active, pulls are spaced to take at most this
 * share of the link (in quarters): a demand reply that finds the link
 * busy waits for the rest of one pull's transfer, half a block on
 * average on a link kept exactly full; with headroom it finds the link
 * busy only as often as the pulls keep it so.
 */
#define ACTIVE_SHARE_QUARTERS 3

void
pacer_init (struct pacer *p, uint64_t min_window, uint64_t max_window,
            uint64_t max_request, uint64_t cap, uint64_t now_us)
{
  *p = (struct pacer) {
    .window = min_window * 4 < max_window ? min_window * 4 : max_window,
    .min_window = min_window,
    .max_window = max_window,
    .max_request = max_request,
    .min_rtt_us = UINT64_MAX,
    .epoch_min_rtt_us = UINT64_MAX,
    .prev_min_rtt_us = UINT64_MAX,
    .delay_us = UINT64_MAX,
    .epoch_delay_us = UINT64_MAX,
    .prev_delay_us = UINT64_MAX,
    .epoch_start_us = now_us,
    .round_start_us = now_us,
    .sample_start_us = now_us,
  };
  pacer_set_cap (p, cap, now_us);
}

void
pacer_set_cap (struct pacer *p, uint64_t cap, uint64_t now_us)
{
  p->cap = cap;
  p->tokens = cap ? (double) p->max_request : 0;
  p->tokens_us = now_us;
}

void
pacer_charge (struct pacer *p, uint64_t bytes)
{
  if (p->cap)
    p->tokens -= bytes;
}

uint64_t
pacer_sent (struct pacer *p, uint64_t bytes, uint64_t now_us)
{
  pacer_charge (p, bytes);
  if (now_us < p->active_until_us && p->max_rate > 0)
    p->next_send_us = now_us + (uint64_t) (bytes * 1e6 * 4
                                           / (ACTIVE_SHARE_QUARTERS * p->max_rate));
  return p->next_seq++;
}

/* Two requests at least: with one in flight, the link idles for a
 * whole round trip after each transfer (a quarter of a 25 MB/s link at
 * 1 ms RTT and 64K blocks).
 */
static void
clamp (struct pacer *p)
{
  if (p->window < 2 * p->min_window)
    p->window = 2 * p->min_window;
  if (p->window > p->max_window)
    p->window = p->max_window;
}

/* Drain a standing queue at once: cut the window to what the link
 * delivers over the round trip aimed at.  Shrinking by one request per
 * round (a round lasting a whole window of round trips) took tens of
 * seconds to undo an overshoot, and demand reads queued behind it all
 * along.  False if the window is already that small.
 */
static bool
drain (struct pacer *p, uint64_t target)
{
  uint64_t bdp = (uint64_t) (p->rate * (p->min_rtt_us + target) / 1e6);
  if (bdp >= p->window)
    return false;
  p->window = bdp;
  clamp (p);
  return true;
}

static uint64_t
target_us (const struct pacer *p)
{
  uint64_t target = p->min_rtt_us / TARGET_FRACTION;
  uint64_t transfer = p->rate > 0 ? (uint64_t) (p->min_window * 1e6 / p->rate) : 0;
  if (target < transfer)
    target = transfer;
  return target < TARGET_FLOOR_US ? TARGET_FLOOR_US : target;
}

static void
end_round (struct pacer *p, uint64_t now_us)
{
  uint64_t avg = p->round_rtt_sum_us / p->round_acks;
  uint64_t queue_us = avg > p->min_rtt_us ? avg - p->min_rtt_us : 0;
  uint64_t target = target_us (p);
  uint64_t req = pacer_request_size (p, p->min_window, now_us);

  if (queue_us < target) {
    /* Slow start, bounded by what the link delivers (once measured): a
     * window the delivery rate does not follow only builds a queue.
     */
    uint64_t step = p->window / 4 > req ? p->window / 4 : req;
    uint64_t bound = (uint64_t) (p->rate * (p->min_rtt_us + target) / 1e6) + step;
    if (p->rate == 0 || p->window + step < bound)
      p->window += step;
    else if (p->window < bound)
      p->window = bound;
  }
  else if (queue_us > 2 * target) {
    if (!drain (p, target) && p->window > req)
      p->window -= req;
  }
  clamp (p);

  p->round_seq = p->next_seq;
  p->round_start_us = now_us;
  p->round_rtt_sum_us = p->round_acks = 0;
}

void
pacer_ack (struct pacer *p, uint64_t seq, uint64_t bytes, uint64_t rtt_us,
           uint64_t now_us)
{
  if (now_us - p->epoch_start_us > EPOCH_US) {
    p->prev_min_rtt_us = p->epoch_min_rtt_us;
    /* Pulls spaced for an active guest deliver less than the link
     * does: their rate would lower the estimate, and with it the
     * spacing, epoch by epoch.
     */
    if (now_us >= p->active_until_us || p->epoch_max_rate > p->prev_max_rate)
      p->prev_max_rate = p->epoch_max_rate;
    /* An epoch of answers all queued behind others says nothing new of
     * the delay.
     */
    if (p->epoch_delay_us != UINT64_MAX)
      p->prev_delay_us = p->epoch_delay_us;
    p->epoch_min_rtt_us = p->epoch_delay_us = UINT64_MAX;
    p->epoch_max_rate = 0;
    p->epoch_start_us = now_us;
  }
  if (rtt_us < p->epoch_min_rtt_us)
    p->epoch_min_rtt_us = rtt_us;
  p->min_rtt_us = p->epoch_min_rtt_us < p->prev_min_rtt_us
    ? p->epoch_min_rtt_us : p->prev_min_rtt_us;

  p->sample_bytes += bytes;
  if (now_us - p->sample_start_us >= p->min_rtt_us) {
    p->rate = p->sample_bytes * 1e6 / (now_us - p->sample_start_us);
    p->sample_start_us = now_us;
    p->sample_bytes = 0;
    if (p->rate > p->epoch_max_rate)
      p->epoch_max_rate = p->rate;
    p->max_rate = p->epoch_max_rate > p->prev_max_rate
      ? p->epoch_max_rate : p->prev_max_rate;
  }

  /* The delay: a round trip less its transfer, from answers that did
   * not wait for the link (more than their transfer after the one
   * before: the link idled before them).  An answer right behind
   * another waited for it, by however long; a window that keeps the
   * link full has nearly only those, and with them in the minimum the
   * queue would pass for delay once the epochs forgot the others.
   */
  if (p->max_rate > 0) {
    uint64_t transfer = (uint64_t) (bytes * 1e6 / p->max_rate);
    if (now_us - p->last_done_us > transfer + transfer / 8 + TARGET_FLOOR_US / 10) {
      uint64_t d = rtt_us > transfer ? rtt_us - transfer : 0;
      if (d < p->epoch_delay_us)
        p->epoch_delay_us = d;
    }
    p->delay_us = p->epoch_delay_us < p->prev_delay_us
      ? p->epoch_delay_us : p->prev_delay_us;
  }
  p->last_done_us = now_us;

  /* A link that suddenly got slower (a shaper's burst allowance used
   * up) shows as round trips far above the smallest one, long before
   * the round ends: drain at once, on this answer.
   */
  uint64_t target = target_us (p);
  if (rtt_us > p->min_rtt_us + 4 * target)
    drain (p, target);

  p->round_rtt_sum_us += rtt_us;
  p->round_acks++;
  if (seq >= p->round_seq)
    end_round (p, now_us);
}

/* Few, large requests: a source that shares its link per request
 * (nbdkit's rate filter hands its tokens to whichever request asks
 * next; a server's thread pool works on all of them at once) gives a
 * demand read about 1/(n+1) of the link while n pulls wait there.  With
 * 64K pulls on a 100 Mbit/s link 10 ms away, three of them waited and
 * demand reads took up to 39 ms; two pulls of half the window each keep
 * the link just as busy, and demand reads took at most 21 ms.
 */
uint64_t
pacer_request_size (const struct pacer *p, uint64_t min, uint64_t now_us)
{
  uint64_t size;

  if (now_us < p->active_until_us)
    return min;
  size = (uint64_t) (p->rate * REQUEST_US / 1e6);
  if (size < p->window / 2)
    size = p->window / 2;
  if (p->cap && size > p->cap * REQUEST_US / 1000000)
    size = p->cap * REQUEST_US / 1000000;
  if (size > p->max_request)
    size = p->max_request;
  size = (size + min - 1) / min * min;
  return size > min ? size : min;
}

uint64_t
pacer_wait_us (struct pacer *p, uint64_t now_us)
{
  double burst;

  if (now_us < p->active_until_us && now_us < p->next_send_us)
    return p->next_send_us - now_us;
  if (p->cap == 0)
    return 0;
  /* Refill, but never beyond a tenth of a second's worth (or one
   * request): an idle spell does not buy a burst later.
   */
  burst = p->cap / 10.0 > p->max_request ? p->cap / 10.0 : p->max_request;
  p->tokens += (now_us - p->tokens_us) * (double) p->cap / 1e6;
  p->tokens_us = now_us;
  if (p->tokens > burst)
    p->tokens = burst;
  if (p->tokens > 0)
    return 0;
  return (uint64_t) (-p->tokens * 1e6 / p->cap) + 1;
}

/* The path's delay without the transfer, as far as measured. */
static uint64_t
pacer_delay_us (const struct pacer *p)
{
  if (p->delay_us != UINT64_MAX)
    return p->delay_us;
  return p->min_rtt_us == UINT64_MAX ? 0 : p->min_rtt_us;
}

void
pacer_demand (struct pacer *p, uint64_t now_us)
{
  uint64_t rtt;

  if (p->max_rate == 0)
    return;                     /* nothing measured yet to size it by */
  rtt = pacer_delay_us (p) + (uint64_t) (p->min_window * 1e6 / p->max_rate);
  p->active_until_us = now_us + ACTIVE_ROUND_TRIPS * rtt;
}

/* While the guest is active: whole one-block requests, as many as the
 * link's delay holds plus one block, rounded to the nearest block (a
 * link busy to within half a block per round trip, a queue of at most
 * half a block), never more than the window, never below two requests.
 * A demand read then finds ahead of it at most what one block's
 * transfer and the delay hold, instead of a standing queue.
 */
bool
pacer_may_send (const struct pacer *p, uint64_t inflight, uint64_t now_us)
{
  uint64_t block = p->min_window, fill, limit;

  if (now_us >= p->active_until_us)
    return inflight < p->window;
  fill = (uint64_t) (p->max_rate * pacer_delay_us (p) / 1e6) + block;
  limit = (fill + block / 2) / block * block;
  if (limit > p->window)
    limit = p->window;
  if (limit < 2 * block)
    limit = 2 * block;
  return inflight + block <= limit;
}
