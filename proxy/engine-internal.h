/* The shadowing engine's insides, shared by its files (engine.h says
 * what it does; this says how).
 *
 *   engine.c      the public interface, and the requests other threads
 *                 hand to the engine thread (demands)
 *   loop.c        the engine thread: its libev loop, demands sent in
 *                 priority, mapping the source first, pull scheduling
 *   conn.c        connections to the source: setup, TLS check,
 *                 reconnect with backoff; sending commands
 *   writer.c      the writer threads and the pull buffers
 *   allocmap.c    the source's allocation map (bit arithmetic only)
 *   verify.c      re-identifying the source on every connection
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

#ifndef NBDSHADOW_ENGINE_INTERNAL_H
#define NBDSHADOW_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <ev.h>
#include <libnbd.h>

#include "allocmap.h"
#include "engine.h"
#include "identity.h"
#include "pacer.h"

#define MAX_CONNECTIONS 16
/* Largest pull request; the pacer picks smaller ones on slow links (a
 * millisecond of the link or half its window, whichever is larger).  On
 * a local link that is megabytes: fewer, larger requests mean fewer
 * replies, wake-ups and writes per GiB.
 */
#define MAX_PULL_BYTES (2 * 1024 * 1024)
/* One block status request asks about this much of the disk. */
#define MAP_CHUNK (UINT64_C (1) << 30)
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
/* Wait before sweeping again when the last pass could not pull all;
 * doubled after each pass in a row in which every pull failed (a source
 * that cannot read a sector), at most RESCAN_DOUBLINGS times.
 */
#define RESCAN_MS 200
#define RESCAN_DOUBLINGS 5
/* Failed pulls logged one by one in a pass (one in a futile pass); the
 * rest are counted. */
#define PASS_ERRORS_SHOWN 8
/* Stopping: how long replies in flight are waited for (conns_drain). */
#define DRAIN_MS 1000
/* Hole blocks made local per loop iteration, so that demand is never
 * held up long (a run of them costs a few ns per block).
 */
#define HOLE_BUDGET 65536
/* Threads writing pulled data to the shadow.  One: buffered writes to
 * one file serialize on its inode lock (ext4, xfs), and a second writer
 * only spun on that lock (12 % of the filter's samples).
 */
#define WRITERS 1

/* After the last demand read of a burst is answered, pulls wait this
 * fraction of the smallest pull round trip before they go again: a
 * guest's stalls come in bursts (a file read, a program started), and
 * the next demand of the burst then finds the link clear.
 */
#define DEMAND_HOLD_FRACTION 2

/* Block status questions in flight at once while the source is mapped
 * before the copy: each is a round trip to the source.
 */
#define MAPPERS 8

/* VERIFYING: connected, reading the samples that say which disk it is
 * (verify.c); not used for anything else until they match.
 */
enum conn_state { CONN_DOWN, CONN_CONNECTING, CONN_VERIFYING, CONN_READY };

struct conn {
  struct engine *e;
  unsigned index;
  struct nbd_handle *nbd;
  enum conn_state state;
  bool was_up;                  /* has reached READY */
  bool lost;                    /* went down since: READY again is a reconnect */
  ev_io io;
  ev_timer retry;
  unsigned backoff_ms;
  unsigned inflight;
  /* Re-identification (verify.c). */
  uint64_t attempt;             /* which verification an OP_VERIFY belongs to */
  char *verify_buf;
  unsigned verify_pending;
  bool verify_failed;
  bool refused_other;           /* said that it is another disk */
};

enum op_kind { OP_PULL, OP_READ, OP_MAP, OP_VERIFY };

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
  bool first_map;               /* OP_MAP of the mapping before the copy */
  int error;
  bool completed;
  uint64_t sent_us, done_us, seq;
  unsigned tries;               /* OP_VERIFY: sent this many times */
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
  bool multi_conn;

  struct ev_loop *loop;
  ev_async wake;
  ev_prepare prepare;
  ev_timer pace;                /* the bandwidth cap's wait */
  ev_timer rescan;              /* the wait before another sweep pass */
  ev_idle more;                 /* more holes to mark: run fill again */
  ev_timer hold;                /* the end of the hold after demand reads */
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
  bool map_only;                /* demand only: map, never pull */
  bool identity_new;            /* identity just set: verify_all */
  bool want_paused;             /* engine_set_paused */
  bool cap_changed;
  uint64_t new_cap;             /* engine_set_bandwidth */
  bool stopping;                /* new demands fail at once */
  bool stopped;                 /* the thread is gone */
  pthread_cond_t write_cond;    /* to_write is not empty, or writers_stop */
  struct op *to_write, **to_write_tail; /* pulls for the writers, in order */
  struct op *written;           /* pulls the writers are done with */
  bool writers_stop;

  /* Published counters (relaxed: statistics). */
  _Atomic bool connected;
  _Atomic uint64_t reconnects, hole_blocks, window_bytes, min_rtt_us;
  /* Pull bytes sent while a demand read waited or was in flight. */
  _Atomic uint64_t pull_bytes_under_demand;
  _Atomic uint64_t unreadable_blocks;   /* pass_unreadable of the last pass */
  _Atomic bool paused;          /* no new pulls are sent; demands are */
  _Atomic uint64_t cap;

  /* Engine thread only. */
  struct demand *queue, **queue_tail;   /* demands waiting for a connection */
  struct op *done;
  unsigned demands_inflight;    /* demand reads sent, not answered yet */
  uint64_t hold_until_us;       /* no pulls sent before this */
  bool pulling;
  struct engine_order *order;
  uint64_t sweep_pos;
  bool pass_found_absent, pass_pulled, pass_failed, pass_progress;
  unsigned futile_passes;       /* passes in a row whose pulls all failed */
  uint64_t pass_errors;         /* failed pulls of this pass, if it logs them */
  uint64_t pass_unreadable;     /* blocks of this pass the source failed */
  uint64_t *pass_unreadable_map;        /* ... as bits, so that a block the
                                           order and then the sweep asked
                                           for counts once; allocated at
                                           the pass's first failure */
  bool held_valid;
  uint64_t held;                /* a candidate taken but not used yet */
  bool bg_map_inflight;
  struct pacer pacer;
  uint64_t pull_bytes_inflight; /* on the wire: the pacer's window */
  unsigned pulls_inflight;      /* sent and not yet written: buffers */
  char **buf_pool;
  unsigned buf_pool_len;

  /* Mapping the whole source before the copy (engine thread only, but
   * for engine_get_stats reading whether it goes on): the next offset to
   * ask about, questions in flight, and chunks whose question lost its
   * connection, to ask again.
   */
  _Atomic bool mapping;
  uint64_t map_next;
  unsigned maps_inflight;
  unsigned nmap_retry;
  uint64_t map_retry[MAPPERS];
  uint64_t map_start_us;

  /* Allocation of the source, per block; written by the engine thread. */
  struct allocmap map;

  /* The source's fingerprint, once the owner gave it (verify.c).  Set
   * under lock, then read by the engine thread only.
   */
  bool has_identity;
  unsigned char identity[32];
  struct identity_sample samples[IDENTITY_MAX_SAMPLES];
  unsigned nsamples;
};

static inline uint64_t block_offset (struct engine *e, uint64_t b) { return b << e->block_shift; }

static inline uint32_t
block_length (struct engine *e, uint64_t b)
{
  uint64_t left = e->size - block_offset (e, b);
  return left < e->params.block_size ? left : e->params.block_size;
}

/* engine.c */
extern void say (struct engine *e, bool error, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));
extern void demand_finish (struct engine *e, struct demand *d, int error);
extern bool demand_abandoned (struct engine *e, struct demand *d);

/* loop.c */
extern void *engine_thread (void *arg);
extern void wake_cb (struct ev_loop *loop, ev_async *w, int revents);
extern void prepare_cb (struct ev_loop *loop, ev_prepare *w, int revents);
extern void pace_cb (struct ev_loop *loop, ev_timer *w, int revents);
extern void rescan_cb (struct ev_loop *loop, ev_timer *w, int revents);
extern void more_cb (struct ev_loop *loop, ev_idle *w, int revents);
extern void hold_cb (struct ev_loop *loop, ev_timer *w, int revents);

/* conn.c */
extern struct nbd_handle *handle_new (struct engine *e);
extern int handle_connect (struct engine *e, struct nbd_handle *h, bool sync);
extern int handle_check (struct engine *e, struct nbd_handle *h, uint64_t *size);
extern void conn_init (struct engine *e, unsigned i);
extern void conn_connect (struct conn *c);
extern void conn_down (struct conn *c, const char *why);
extern void conn_ready (struct conn *c);
extern void conns_drain (struct engine *e);
extern void conn_close (struct conn *c);
extern void watch (struct conn *c);
extern void update_connected (struct engine *e);
extern struct op *op_new (struct engine *e, enum op_kind kind, unsigned max_claims);
extern void op_send (struct conn *c, struct op *op);
extern bool lost_connection (struct op *op);

/* verify.c */
extern void verify_start (struct conn *c);
extern void verify_done (struct engine *e, struct op *op);
extern void verify_all (struct engine *e);

/* writer.c */
extern void writers_start (struct engine *e);
extern void writers_stop (struct engine *e);
extern char *buf_get (struct engine *e);
extern void buf_put (struct engine *e, char *buf);
extern void write_pull (struct engine *e, struct op *op);
extern void queue_write (struct engine *e, struct op *op);
extern void retire_pull (struct engine *e, struct op *op);
extern void collect_written (struct engine *e);

#endif /* NBDSHADOW_ENGINE_INTERNAL_H */
