/* The housekeeping thread: the filter's periodic work.
 *
 * Once a second (and at once when the last block arrives) it keeps the
 * model current, writes out the recorded requests, persists the blocks
 * fetched since the last checkpoint (so a crash does not make them be
 * fetched again), detaches the source once every block is local
 * (switchover), and rewrites the stats file.
 */

#include <errno.h>
#include <time.h>

#include <nbdkit-filter.h>

#include "clock.h"
#include "shadow.h"

static pthread_t thread;
static bool running, stopping, woken;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;

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
housekeeping_thread (void *arg)
{
  pthread_mutex_lock (&lock);
  while (!stopping) {
    struct timespec ts = deadline_after_ms (CLOCK_REALTIME, 1000);
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
    record_flush (false);
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
housekeeping_start (void)
{
  int r = pthread_create (&thread, NULL, housekeeping_thread, NULL);
  if (r != 0) {
    errno = r;
    nbdkit_error ("shadow: cannot start the housekeeping thread: %m");
    return -1;
  }
  running = true;
  return 0;
}

void
housekeeping_wake (void)
{
  pthread_mutex_lock (&lock);
  woken = true;
  pthread_cond_signal (&cond);
  pthread_mutex_unlock (&lock);
}

void
housekeeping_stop (void)
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
