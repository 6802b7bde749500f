/* nbdshadow filter: the central header.
 *
 * The filter keeps a local shadow of a disk whose authoritative copy is
 * on a remote source.  Every block is ABSENT (only on the source),
 * FETCHING (a read from the source is in flight) or PRESENT (the shadow
 * holds the data; the source is never asked again).  The rules that keep
 * guest data safe are in blockmap.c and fetch.c; this header holds the
 * types shared by the pieces of the filter:
 *
 *   shadow.c     nbdkit callbacks: parameters, metadata, the data path
 *   blockmap.c   present bitmap, pending blocks, sector masks, guest
 *                writes (claim/commit)
 *   fetch.c      fetching from the source: demand reads, the engine's
 *                pulls, holes
 *   store.c      the shadow file (data)
 *   statefile.c  the state file (which blocks are PRESENT), durability
 *   fingerprint.c  the source's identity read at start; its samples
 *                made local
 *   upstream.c   glue to the shadowing engine (proxy/): the source's
 *                address and TLS, demand reads, extents, switchover
 *   predict.c    the pull order from the learner (learner/), fed with
 *                every guest request
 *   record.c     the recorder: guest requests to a trace CSV
 *                (shadow-record)
 *   stats.c      the stats file (shadow-stats)
 *   housekeeping.c  the thread doing the periodic work: model upkeep,
 *                record flush, checkpoint, switchover, stats file
 *   mirror.c     the mirror of all this in Redis (metastore/), on a
 *                thread of its own
 *   commands.c   the operator's commands, read from a Redis stream
 *
 * Helpers shared with the rest of nbdshadow (clock, bits, growing
 * arrays, whole reads and writes) are in common/.
 */

#ifndef NBDSHADOW_SHADOW_H
#define NBDSHADOW_SHADOW_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <pthread.h>
#include <sys/types.h>

#include "bits.h"

struct engine_order;

#define SHADOW_SECTOR 512
#define SHADOW_MIN_BLOCK_SIZE (4 * 1024)
#define SHADOW_MAX_BLOCK_SIZE (4 * 1024 * 1024)
#define SHADOW_DEFAULT_BLOCK_SIZE (64 * 1024)

/* A counter read for the figures: no ordering needed. */
#define LOAD(x) ((uint64_t) atomic_load_explicit (&(x), memory_order_relaxed))

/* A block with guest data in some sectors but not yet fetched is
 * "partial".  Their sector masks are persisted in a fixed-size journal,
 * so their number is bounded; past the bound a partial write waits for
 * the block instead (counted as a write stall).
 */
#define SHADOW_MAX_PARTIAL 4096

/* Words of the PRESENT bitmap in one page of the state file (the rest
 * of the page holds its checksum; see statefile.c).
 */
#define SHADOW_PAGE_WORDS 504

/* Longest shadow-source-id. */
#define SHADOW_SOURCE_ID_MAX 255

/* One block that is not PRESENT but has something going on: a fetch in
 * flight, guest writes in some sectors, or threads waiting.  Lives in
 * the pending table while it matters; protected by its stripe's lock.
 */
struct pending {
  uint64_t block;
  struct pending *next;         /* hash chain */
  unsigned refs;                /* table membership + waiters + fetch owner */
  bool in_table;
  bool fetching;                /* an upstream read is in flight */
  bool installing;              /* fetched data is being written to the shadow */
  bool fetched;                 /* the source's data has been installed */
  int fetch_error;              /* errno of the last failed fetch, or 0 */
  unsigned writers;             /* guest writes between claim and commit */
  bool counted_partial;         /* included in shadow.npartial */
  /* Sector masks, shadow.mask_words words each.  claimed: a guest
   * write has started on the sector, so a fetch must not install the
   * source's data there.  written: the guest write has completed (only
   * these are persisted: data of an unfinished write is not durable).
   */
  uint64_t *claimed;
  uint64_t *written;
};

/* The pending table is striped by block number so that unrelated
 * blocks do not contend.  No stripe lock is ever held across I/O to
 * the source; only short local writes happen under "installing".
 */
#define SHADOW_STRIPES 64
#define SHADOW_BUCKETS 256

struct stripe {
  pthread_mutex_t lock;
  pthread_cond_t changed;       /* a pending block of this stripe moved on */
  struct pending *buckets[SHADOW_BUCKETS];
};

/* Counters, exported in the stats file.  Relaxed atomics: they are
 * statistics, not synchronization.
 */
struct shadow_stats {
  _Atomic uint64_t hits;          /* guest requests served without the source */
  _Atomic uint64_t stalls;        /* guest requests that waited on the source */
  _Atomic uint64_t stall_us;      /* their waits added up (overlaps too) */
  _Atomic uint64_t stall_wall_us; /* time with at least one of them waiting */
  _Atomic uint64_t write_stalls;  /* writes that had to wait for old data */
  _Atomic uint64_t bytes_fetched; /* demand fetches */
  _Atomic uint64_t bytes_pulled;  /* background pulls */
  _Atomic uint64_t fetch_errors;
};

struct shadow {
  /* Parameters. */
  char *shadow_file;
  char *state_file;
  char *stats_file;
  mode_t file_mode;             /* of the stats and record files */
  char *source_id;              /* shadow-source-id, or NULL */
  uint32_t block_size;
  unsigned block_shift;
  const char *policy;

  /* Geometry, known once the source (or a complete state file) said so. */
  uint64_t disk_size;
  uint64_t nblocks;
  unsigned mask_words;          /* uint64_t words in one sector mask */

  int shadow_fd;
  int state_fd;
  bool state_fresh;             /* no state file existed at start */
  bool shadow_created;          /* this start created the shadow file */
  bool stopped;                 /* nbdkit is exiting: nothing runs any more */

  /* PRESENT bits, one per block; set once, never cleared. */
  _Atomic uint64_t *present;
  _Atomic uint64_t present_count;
  /* One bit per state-file page of the bitmap changed since the last
   * checkpoint.
   */
  _Atomic uint64_t *dirty_pages;
  uint64_t bitmap_bytes;        /* on disk, rounded up to a page */
  _Atomic uint64_t npartial;

  struct stripe stripes[SHADOW_STRIPES];
  struct shadow_stats stats;
  _Atomic bool complete;        /* every block PRESENT: switchover done or due */
  _Atomic bool disk_full;       /* the shadow's file system had no room */
};

extern struct shadow shadow;
extern int shadow_debug_fetch;

static inline uint64_t block_offset (uint64_t b) { return b << shadow.block_shift; }
static inline uint32_t block_length (uint64_t b)
{
  uint64_t off = block_offset (b);
  uint64_t len = shadow.disk_size - off;
  return len < shadow.block_size ? (uint32_t) len : shadow.block_size;
}
static inline bool block_is_present (uint64_t b)
{
  return bit_test_acquire (shadow.present, b);
}

/* block_is_present as the callback the engine and the pull order take
 * (present.h): one function answers both.
 */
static inline bool block_present_cb (void *opaque, uint64_t b)
{
  return block_is_present (b);
}

/* The fast path of every request: are all its blocks local already?
 * Once the shadow is complete, a request needs no per-block look-up at
 * all: complete is set after the last PRESENT bit, and every bit after
 * its block's data.
 */
static inline bool blocks_are_present (uint64_t first, uint64_t last)
{
  if (atomic_load_explicit (&shadow.complete, memory_order_acquire))
    return true;
  for (uint64_t b = first; b <= last; b++)
    if (!block_is_present (b))
      return false;
  return true;
}

/* shadow.c */
extern int64_t shadow_parse_size (const char *key, const char *value);

/* blockmap.c, fetch.c */
extern int blockmap_init (void);
extern void blockmap_free (void);
extern void blockmap_mark_present (uint64_t b);
extern int blockmap_load_partial (uint64_t b, const uint64_t *written);
extern int blockmap_prepare_read (uint64_t offset, uint32_t count, bool *stalled, int *err);
extern int blockmap_write (const void *buf, uint32_t count, uint64_t offset,
                           bool is_zero, int *err);
extern int blockmap_cache (uint64_t offset, uint32_t count, int *err);
extern int blockmap_read_through (void *buf, uint32_t count, uint64_t offset,
                                  int *err);
extern bool blockmap_has_guest_data (uint64_t b);
extern struct pending *blockmap_begin_pull (uint64_t b);
extern int blockmap_end_pull (void *const *tokens, uint64_t n, const void *data,
                              int error);
extern uint64_t blockmap_install_holes (uint64_t first, uint64_t n);
extern bool blockmap_install_sample (uint64_t b, const void *data);
typedef void (*partial_fn) (uint64_t b, const uint64_t *written, void *opaque);
extern void blockmap_foreach_partial (partial_fn fn, void *opaque);

/* store.c */
extern int store_open (void);
extern void store_forget_unused (void);
extern int store_pread (void *buf, uint32_t count, uint64_t offset, int *err);
extern int store_pwrite (const void *buf, uint32_t count, uint64_t offset, int *err);
extern bool store_full_error (int err);
extern bool store_pulls_paused (void);
extern void store_check_room (void);
extern int store_zero (uint32_t count, uint64_t offset, int *err);
extern int store_install (const void *buf, uint32_t count, uint64_t offset, int *err);
extern int store_sync (int *err);
extern int store_is_data (uint64_t offset, uint64_t end, uint64_t *run_end);

/* statefile.c, session.c */
extern int shadow_lock_file (int fd, const char *key, const char *path);
extern int statefile_open (void);
extern int statefile_create (uint64_t disk_size, const unsigned char *fingerprint);
extern int statefile_load (void);
extern int statefile_check_source (uint64_t disk_size, const unsigned char *fingerprint);
extern const unsigned char *statefile_fingerprint (void);
extern int statefile_begin_session (void);
extern int statefile_checkpoint (int *err);
extern void statefile_end_session (void);
extern void statefile_close (void);

/* fingerprint.c */
extern int fingerprint_read (uint64_t disk_size, unsigned char out[32]);
extern uint64_t fingerprint_install_samples (void);
extern void fingerprint_forget (void);

/* upstream.c */
extern int upstream_config (const char *key, const char *value);
extern void upstream_unload (void);
extern int upstream_open (void *backend, uint64_t *disk_size);
extern void upstream_set_identity (const unsigned char *fingerprint);
extern int upstream_start (void);
extern void upstream_close (void);
extern int upstream_pread (void *buf, uint32_t count, uint64_t offset, int *err);
extern uint64_t upstream_timeout_us (void);
extern int upstream_pread_patient (void *buf, uint32_t count, uint64_t offset,
                                   unsigned patience, int *err);
extern int upstream_extents (uint32_t count, uint64_t offset, void *extents, int *err);
extern bool upstream_attached (void);
extern void upstream_stats (FILE *fp);
extern void upstream_switchover_check (void);

/* The operator's controls of the background copy (commands.c). */
struct upstream_control {
  bool attached;                /* the source is still in use */
  bool connected;               /* the engine has a connection up */
  bool paused;                  /* background pulls stopped */
  uint64_t bandwidth;           /* cap on pulls, bytes/s; 0: none */
  bool disk_full;               /* the shadow's disk is full */
  bool mapping;                 /* the source's allocation is being mapped */
  uint64_t unreadable_blocks;   /* the source failed them in the last pass */
};
extern void upstream_get_control (struct upstream_control *c);
extern void upstream_pause (bool paused);
extern void upstream_set_bandwidth (uint64_t rate);
extern void upstream_finalize (void);

/* predict.c */
extern int predict_config (const char *key, const char *value);
extern int predict_config_complete (void);
extern struct engine_order *predict_order_new (void);
extern void predict_guest_request (char op, uint64_t offset, uint32_t count);
extern void predict_tick (void);
extern void predict_stats (FILE *fp);
/* The order's latest picks, newest first (at most PREDICT_PICKS). */
#define PREDICT_PICKS 1024
extern size_t predict_recent_picks (uint64_t *out, size_t max);
extern void predict_unload (void);

/* record.c */
extern int record_config (const char *key, const char *value);
extern int record_get_ready (void);
extern bool record_active (void);
extern bool record_is_guest (const char *exportname);
extern void record_switchover (void);
extern void record_request (char op, uint64_t offset, uint32_t count);
extern void record_flush (bool stop);
extern void record_forget_unused (void);
extern void record_stats (FILE *fp);
extern void record_unload (void);

/* stats.c */
extern void stats_write_file (void);
extern void stats_resume (void);
extern void stats_stall (uint64_t from_us, uint64_t to_us);

/* housekeeping.c */
extern int housekeeping_start (void);
extern void housekeeping_stop (void);
extern void housekeeping_wake (void);

/* mirror.c */
struct ev_loop;
struct ms_config;
extern int mirror_config (const char *key, const char *value);
extern int mirror_config_complete (void);
extern int mirror_get_ready (void);
extern int mirror_start (void);
extern void mirror_stop (void);
extern void mirror_event (const char *type, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));
extern void mirror_stats (FILE *fp);
extern void mirror_unload (void);

/* commands.c */
extern void commands_start (struct ev_loop *loop, const struct ms_config *cfg,
                            const char *id, uint64_t started_us);
extern void commands_stop (void);
extern uint64_t commands_round_trips (void);

#endif /* NBDSHADOW_SHADOW_H */
