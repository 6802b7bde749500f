/* The shadowing engine: pulls a disk from an NBD source into a shadow.
 *
 * A background thread runs a libev loop driving libnbd's asynchronous
 * API over one or more connections to the source.  It serves two kinds
 * of work, in this priority:
 *
 *   demand   reads a guest is waiting for (engine_pread, any thread);
 *            they go first, on a connection of their own when the
 *            source allows several (else ahead of every queued pull);
 *   pulls    the background copy, block by block, in the order given by
 *            a replaceable engine_order (the predictor), then a sweep of
 *            whatever is left.
 *
 * Pulls are paced: the number of bytes in flight adapts to the link
 * (delay-based, like TCP Vegas) so that a demand read never waits behind
 * a flooded link, and an optional cap limits their bandwidth.  Holes of
 * the source (NBD base:allocation) are never transferred.  When the
 * source drops, the engine reconnects with backoff; demand reads fail
 * only when their timeout expires.
 *
 * The engine knows nothing of nbdkit: where pulled blocks go is up to
 * the owner's callbacks (the shadow filter, a simulator, a test).
 */

#ifndef NBDSHADOW_ENGINE_H
#define NBDSHADOW_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "present.h"

struct engine;

/* Where the source is and how to talk to it.  The fields mean what the
 * same-named parameters of nbdkit-nbd-plugin(1) mean; NULL = not given.
 * Exactly one of uri, socket, hostname must be set.  The strings must
 * outlive the engine.
 */
enum engine_tls { ENGINE_TLS_DEFAULT, ENGINE_TLS_OFF, ENGINE_TLS_ON,
                  ENGINE_TLS_REQUIRE };

struct engine_source {
  const char *uri;
  const char *socket;
  const char *hostname;
  const char *port;               /* default 10809 */
  const char *export;
  enum engine_tls tls;
  const char *tls_certificates;   /* directory */
  int tls_verify;                 /* -1: libnbd's default */
  const char *tls_username;
  const char *tls_psk;            /* PSK file */
};

struct engine_params {
  uint32_t block_size;            /* unit of pulls and of the allocation map */
  unsigned inflight;              /* most pull requests in flight */
  unsigned connections;           /* pull connections, if multi-conn */
  uint64_t bandwidth;             /* cap on pulls, bytes/s; 0: none */
  unsigned timeout_ms;            /* a demand read fails after this */
};

/* What the engine does with blocks.  end_pull with data is called on
 * the engine's writer threads (several at once, for different tokens);
 * the others on the engine thread.
 */
struct engine_ops {
  void *opaque;
  /* Take ownership of pulling block b: a token, or NULL if the block is
   * already local or someone else is fetching it.
   */
  void *(*begin_pull) (void *opaque, uint64_t b);
  /* The pull of n consecutive blocks ended (one token each, in block
   * order): data (their bytes, back to back), NULL for holes (zeros),
   * or error != 0 (the blocks must stay pullable).  A run comes in one
   * call so that it can be written to the shadow in one go.
   */
  void (*end_pull) (void *opaque, void *const *tokens, unsigned n,
                    const void *data, int error);
  /* Blocks [first, first+n) are holes on the source: make local, as
   * zeros, those that can be without a pull, in one go (one call for a
   * run is far cheaper than one per block).  Returns how many it made
   * local; the others are offered again later.
   */
  uint64_t (*install_holes) (void *opaque, uint64_t first, uint64_t n);
  /* Cheap check used to skip local blocks (may be called often). */
  block_present_fn is_present;
  /* Messages; error is true for what the user should see. */
  void (*log) (void *opaque, bool error, const char *msg);
};

/* A pull order: the blocks worth pulling next, best first.  Called on
 * the engine thread only; it may return blocks already local (they are
 * skipped).  next returns false when it has nothing more to suggest:
 * the engine then sweeps the rest in ascending order.
 */
struct engine_order {
  bool (*next) (struct engine_order *self, uint64_t *b);
  void (*free) (struct engine_order *self);
};

struct engine_stats {
  bool connected;                 /* a connection to the source is up */
  uint64_t reconnects;            /* connections re-established */
  uint64_t hole_blocks;           /* made local as holes, nothing transferred */
  uint64_t window_bytes;          /* current pull window */
  uint64_t min_rtt_us;            /* smallest pull latency seen lately */
  bool paused;                    /* engine_set_paused */
  uint64_t bandwidth;             /* the pull cap now, bytes/s; 0: none */
  uint64_t pull_bytes_under_demand; /* pulls sent while a demand read was out */
  bool mapping;                   /* the source's allocation is being mapped:
                                     blocks not local yet may be holes */
  uint64_t unreadable_blocks;     /* blocks the source failed to read, each
                                     asked for alone, in the last pass
                                     (each once, however often asked) */
};

/* Connect to the source (synchronously, in the calling thread) and
 * start the engine thread.  Returns NULL after logging why.  No pulls
 * happen until engine_start_pulls.
 */
extern struct engine *engine_open (const struct engine_source *src,
                                   const struct engine_params *params,
                                   const struct engine_ops *ops,
                                   uint64_t *size);
/* Start the background copy.  First the engine maps the source's whole
 * allocation, several questions at once, making holes local through
 * install_holes as the answers come (demand reads go on meanwhile);
 * then it pulls in order's order (NULL: a plain sweep).  The engine
 * owns order.
 */
extern void engine_start_pulls (struct engine *e, struct engine_order *order);
/* Demand only: map the source's allocation as engine_start_pulls does
 * (holes become local), then pull nothing.  Without it a disk with
 * holes would never become complete, since no guest reads a hole.
 */
extern void engine_start_mapping (struct engine *e);
/* The source's fingerprint (identity.h), once the owner knows it is the
 * right disk: from now on every connection, those up already too, must
 * show it before it carries anything, or it is refused and retried.
 * Any thread.
 */
extern void engine_set_identity (struct engine *e, const unsigned char digest[32]);
/* Replace the pull order while the copy runs (any thread). */
extern void engine_set_order (struct engine *e, struct engine_order *order);
/* Stop sending background pulls (those in flight finish), or go on;
 * demand reads are served either way.  Any thread.
 */
extern void engine_set_paused (struct engine *e, bool paused);
/* Change the cap on pulls (bytes/s, 0: none) while the copy runs. */
extern void engine_set_bandwidth (struct engine *e, uint64_t bytes_per_s);
/* Read from the source at demand priority (any thread; blocks).  Waits
 * through reconnections; fails with EIO after the timeout, or at once
 * after engine_stop.
 */
extern int engine_pread (struct engine *e, void *buf, uint32_t count,
                         uint64_t offset, int *err);
/* The same, waiting on the one request up to `patience` timeouts. */
extern int engine_pread_patient (struct engine *e, void *buf, uint32_t count,
                                 uint64_t offset, unsigned patience, int *err);
/* Describe [offset, offset+count) as runs of data and zeros, as far as
 * the source's allocation is known (asking it if needed).  Unknown is
 * data.
 */
typedef int (*engine_extent_fn) (void *opaque, uint64_t offset,
                                 uint64_t length, bool zero);
extern int engine_extents (struct engine *e, uint64_t offset, uint64_t count,
                           engine_extent_fn fn, void *opaque, int *err);
extern void engine_get_stats (struct engine *e, struct engine_stats *st);
/* Stop the thread and close the connections; pending and later demand
 * reads fail.  Idempotent, any thread.  engine_free after that, when no
 * other thread can still call in.
 */
extern void engine_stop (struct engine *e);
extern void engine_free (struct engine *e);

#endif /* NBDSHADOW_ENGINE_H */
