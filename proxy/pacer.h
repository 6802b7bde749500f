/* Pacing of background pulls: how many bytes may be in flight, how big
 * one request should be, and the optional bandwidth cap.
 *
 * The window follows the delay the link adds (like TCP Vegas): a round
 * trip longer than the smallest one seen means requests queue somewhere
 * on the way, and a demand read sent now would queue behind them.  So
 * the window grows while the queueing delay is below a target (a
 * quarter of the smallest round trip, at least 1 ms and one block's
 * transfer) and shrinks when it is above twice that, settling near the
 * bandwidth-delay product, never below two requests.
 *
 * While the guest stalls (a demand read in the last ACTIVE_ROUND_TRIPS
 * one-block round trips), a demand reply queues behind every pull byte
 * already sent, so the pacer then keeps only what fills the link:
 * one-block requests, and in flight the bytes the link's pure delay
 * holds plus one block (the delay estimated apart from the transfer),
 * spaced to leave the guest's reads some of the link.  When the guest
 * is idle, none of that applies.
 * Plain arithmetic on timestamps: no I/O, no locking, no libev.
 */

#ifndef NBDSHADOW_PACER_H
#define NBDSHADOW_PACER_H

#include <stdbool.h>
#include <stdint.h>

struct pacer {
  uint64_t window;              /* bytes allowed in flight */
  uint64_t min_window, max_window;
  uint64_t max_request;

  /* Smallest round trip: the minimum over this epoch and the last one,
   * so that it follows a path that got slower.
   */
  uint64_t min_rtt_us, epoch_min_rtt_us, prev_min_rtt_us, epoch_start_us;
  /* The path's pure delay, without the transfer, over the same two
   * epochs (UINT64_MAX: not measured); the largest delivery rate
   * sampled (the link's rate); when the last answer came.
   */
  uint64_t delay_us, epoch_delay_us, prev_delay_us;
  double max_rate, epoch_max_rate, prev_max_rate;
  uint64_t last_done_us;

  /* A round lasts until a request sent after it began is answered:
   * one window's worth of round trips.
   */
  uint64_t next_seq, round_seq, round_start_us;
  uint64_t round_rtt_sum_us, round_acks;
  /* Delivered bytes/s, sampled over at least one smallest round trip:
   * fresh enough to size the window when the link suddenly slows down.
   */
  double rate;
  uint64_t sample_start_us, sample_bytes;

  /* The guest stalled lately: the tight window of pacer_may_send, and
   * requests spaced to leave the guest headroom (pacer_wait_us).
   */
  uint64_t active_until_us, next_send_us;

  /* Bandwidth cap (token bucket); cap 0 means none. */
  uint64_t cap;
  double tokens;
  uint64_t tokens_us;
};

extern void pacer_init (struct pacer *p, uint64_t min_window,
                        uint64_t max_window, uint64_t max_request,
                        uint64_t cap, uint64_t now_us);
/* Change the bandwidth cap (0: none), starting with one request's
 * worth of tokens as at init.
 */
extern void pacer_set_cap (struct pacer *p, uint64_t cap, uint64_t now_us);
/* Bytes read from the source outside the pulls (the fingerprint's
 * samples): they go at once, but the cap's tokens pay for them, so the
 * pulls after them slow down and the link carries no more than the cap.
 */
extern void pacer_charge (struct pacer *p, uint64_t bytes);
/* A request is being sent: its sequence number, for pacer_ack. */
extern uint64_t pacer_sent (struct pacer *p, uint64_t bytes, uint64_t now_us);
/* A request was answered after rtt_us. */
extern void pacer_ack (struct pacer *p, uint64_t seq, uint64_t bytes,
                       uint64_t rtt_us, uint64_t now_us);
/* A demand read was answered: the guest is active for a while. */
extern void pacer_demand (struct pacer *p, uint64_t now_us);
/* Whether another request may go with inflight bytes on the wire. */
extern bool pacer_may_send (const struct pacer *p, uint64_t inflight,
                            uint64_t now_us);
/* How big the next request should be: a millisecond of the link or
 * half the window, whichever is larger, in whole blocks of min bytes,
 * at most max_request; one block of min bytes while the guest is
 * active.
 */
extern uint64_t pacer_request_size (const struct pacer *p, uint64_t min,
                                    uint64_t now_us);
/* Microseconds to wait before the cap, or the headroom left to an
 * active guest, allows another request; 0: now.
 */
extern uint64_t pacer_wait_us (struct pacer *p, uint64_t now_us);

#endif /* NBDSHADOW_PACER_H */
