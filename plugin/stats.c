/* The housekeeping thread: stats file, periodic checkpoint, switchover.
 *
 * Once a second (and at once when the last block arrives) it rewrites the
 * stats file atomically, persists the blocks fetched since the last
 * checkpoint (so a crash does not make them be fetched again) and, when
 * every block is local, detaches the source.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <nbdkit-filter.h>

#include "shadow.h"

static pthread_t thread;
static bool running, stopping, woken;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;

#define LOAD(x) ((uint64_t) atomic_load_explicit (&(x), memory_order_relaxed))

void
stats_write_file (void)
{
  char tmp[4096 + 8];
  FILE *fp;

  if (shadow.stats_file == NULL)
    return;
  snprintf (tmp, sizeof tmp, "%s.tmp", shadow.stats_file);
  fp = fopen (tmp, "w");
  if (fp == NULL) {
    nbdkit_debug ("stats: %s: %m", tmp);
    return;
  }
  fprintf (fp,
           "{\"state\": \"%s\", \"policy\": \"%s\", \"disk_size\": %" PRIu64
           ", \"block_size\": %" PRIu32 ", \"blocks_total\": %" PRIu64
           ", \"blocks_present\": %" PRIu64 ", \"partial_blocks\": %" PRIu64
           ", \"hits\": %" PRIu64 ", \"stalls\": %" PRIu64
           ", \"stall_us\": %" PRIu64 ", \"write_stalls\": %" PRIu64
           ", \"bytes_fetched\": %" PRIu64 ", \"bytes_pulled\": %" PRIu64
           ", \"fetch_errors\": %" PRIu64,
           !shadow.complete ? "copying"
           : upstream_attached () ? "covered" : "complete", shadow.policy,
           shadow.disk_size, shadow.block_size, shadow.nblocks,
           LOAD (shadow.present_count), LOAD (shadow.npartial),
           LOAD (shadow.stats.hits), LOAD (shadow.stats.stalls),
           LOAD (shadow.stats.stall_us), LOAD (shadow.stats.write_stalls),
           LOAD (shadow.stats.bytes_fetched), LOAD (shadow.stats.bytes_pulled),
           LOAD (shadow.stats.fetch_errors));
  upstream_stats (fp);
  predict_stats (fp);
  fputs ("}\n", fp);
  if (fclose (fp) == EOF || rename (tmp, shadow.stats_file) == -1)
    nbdkit_debug ("stats: %s: %m", shadow.stats_file);
}

static bool
state_changed (void)
{
  uint64_t npages = shadow.bitmap_bytes / 4096;
  if (shadow.npartial > 0)
    return true;
  for (uint64_t w = 0; w < (npages + 63) / 64; w++)
    if (atomic_load (&shadow.dirty_pages[w]))
      return true;
  return false;
}

static void *
housekeeping (void *arg)
{
  pthread_mutex_lock (&lock);
  while (!stopping) {
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    ts.tv_sec += 1;
    while (!stopping && !woken &&
           pthread_cond_timedwait (&cond, &lock, &ts) != ETIMEDOUT)
      ;
    woken = false;
    pthread_mutex_unlock (&lock);

    int err;
    /* Say at once that every block is local ("covered"): the checkpoint
     * that makes it durable before the source is let go can take a
     * while after a fast copy.
     */
    if (shadow.complete && upstream_attached ())
      stats_write_file ();
    predict_tick ();
    predict_flush_record (false);
    if (state_changed ())
      statefile_checkpoint (&err);
    upstream_switchover_check ();
    stats_write_file ();

    pthread_mutex_lock (&lock);
  }
  pthread_mutex_unlock (&lock);
  return NULL;
}

int
stats_start (void)
{
  int r = pthread_create (&thread, NULL, housekeeping, NULL);
  if (r != 0) {
    errno = r;
    nbdkit_error ("shadow: cannot start the housekeeping thread: %m");
    return -1;
  }
  running = true;
  return 0;
}

void
stats_wake (void)
{
  pthread_mutex_lock (&lock);
  woken = true;
  pthread_cond_signal (&cond);
  pthread_mutex_unlock (&lock);
}

void
stats_stop (void)
{
  if (!running)
    return;
  pthread_mutex_lock (&lock);
  stopping = true;
  pthread_cond_signal (&cond);
  pthread_mutex_unlock (&lock);
  pthread_join (thread, NULL);
  running = false;
}
