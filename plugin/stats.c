/* The stats file (shadow-stats): the filter's counters, with the
 * engine's and the predictor's, as one line of JSON, rewritten whole
 * (a temporary file from mkstemp renamed over it) so that a reader never
 * sees half of it and a symlink planted beside it is never followed.
 * The housekeeping thread rewrites it once a second.  A restart that
 * resumes a migration continues the counters from the file, so they
 * cover the whole migration.
 */

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-filter.h>

#include "replace-file.h"
#include "shadow.h"

/* The counters a restart continues: the filter's own, not the engine's
 * (those describe the current connection to the source).
 */
static const struct {
  const char *name;
  size_t offset;
} kept[] = {
  { "hits", offsetof (struct shadow_stats, hits) },
  { "stalls", offsetof (struct shadow_stats, stalls) },
  { "stall_us", offsetof (struct shadow_stats, stall_us) },
  { "stall_wall_us", offsetof (struct shadow_stats, stall_wall_us) },
  { "write_stalls", offsetof (struct shadow_stats, write_stalls) },
  { "bytes_fetched", offsetof (struct shadow_stats, bytes_fetched) },
  { "bytes_pulled", offsetof (struct shadow_stats, bytes_pulled) },
  { "fetch_errors", offsetof (struct shadow_stats, fetch_errors) },
};

static _Atomic uint64_t *
counter (size_t offset)
{
  return (_Atomic uint64_t *) ((char *) &shadow.stats + offset);
}

/* Resuming a migration (the state file existed): start the counters
 * from the ones the stats file holds.  A missing or unreadable file
 * leaves them at zero; it is statistics, never a reason to refuse.
 */
void
stats_resume (void)
{
  char buf[4096], key[64];
  FILE *fp;
  size_t n;

  if (shadow.stats_file == NULL || (fp = fopen (shadow.stats_file, "r")) == NULL)
    return;
  n = fread (buf, 1, sizeof buf - 1, fp);
  fclose (fp);
  buf[n] = '\0';
  for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
    const char *p;
    snprintf (key, sizeof key, "\"%s\": ", kept[i].name);
    if ((p = strstr (buf, key)) != NULL)
      atomic_store (counter (kept[i].offset),
                    strtoull (p + strlen (key), NULL, 10));
  }
}

/* Stalls: a guest request waited on the source from from_us to to_us.
 * stall_us adds the waits up, so concurrent stalls count once each;
 * stall_wall_us is the time during which at least one request waited:
 * the union of the intervals.  Intervals end in about time order, so
 * the union is kept as the last few disjoint segments; an interval
 * reaching further back than the oldest one kept (a wait longer than
 * thousands of later ones) can make it count a little too much.
 */
#define STALL_SEGMENTS 256

static struct { uint64_t from, to; } segs[STALL_SEGMENTS];
static unsigned nsegs;
static pthread_mutex_t stall_lock = PTHREAD_MUTEX_INITIALIZER;

void
stats_stall (uint64_t from_us, uint64_t to_us)
{
  uint64_t lo = from_us, hi = to_us, overlap = 0;
  unsigned i;

  atomic_fetch_add_explicit (&shadow.stats.stalls, 1, memory_order_relaxed);
  atomic_fetch_add_explicit (&shadow.stats.stall_us, to_us - from_us,
                             memory_order_relaxed);
  pthread_mutex_lock (&stall_lock);
  /* The segments this interval touches are the last ones. */
  for (i = nsegs; i > 0 && segs[i - 1].to >= from_us; i--) {
    uint64_t a = segs[i - 1].from > from_us ? segs[i - 1].from : from_us;
    uint64_t b = segs[i - 1].to < to_us ? segs[i - 1].to : to_us;
    if (b > a)
      overlap += b - a;
    if (segs[i - 1].from < lo)
      lo = segs[i - 1].from;
    if (segs[i - 1].to > hi)
      hi = segs[i - 1].to;
  }
  atomic_fetch_add_explicit (&shadow.stats.stall_wall_us,
                             to_us - from_us - overlap, memory_order_relaxed);
  if (i == STALL_SEGMENTS) {
    memmove (segs, segs + STALL_SEGMENTS / 2, sizeof segs / 2);
    i -= STALL_SEGMENTS / 2;
  }
  segs[i].from = lo;
  segs[i].to = hi;
  nsegs = i + 1;
  pthread_mutex_unlock (&stall_lock);
}

/* Not synced: rewritten every second, a crash may leave the previous
 * one, never half of one (replace-file.h). */
void
stats_write_file (void)
{
  struct replace_file rf;
  FILE *fp;

  if (shadow.stats_file == NULL)
    return;
  if (replace_file_begin (&rf, shadow.stats_file, shadow.file_mode) == -1) {
    nbdkit_debug ("stats: %s: %m", shadow.stats_file);
    return;
  }
  fp = rf.fp;
  fprintf (fp,
           "{\"state\": \"%s\", \"policy\": \"%s\", \"disk_size\": %" PRIu64
           ", \"block_size\": %" PRIu32 ", \"blocks_total\": %" PRIu64
           ", \"blocks_present\": %" PRIu64 ", \"partial_blocks\": %" PRIu64
           ", \"hits\": %" PRIu64 ", \"stalls\": %" PRIu64
           ", \"stall_us\": %" PRIu64 ", \"stall_wall_us\": %" PRIu64
           ", \"write_stalls\": %" PRIu64
           ", \"bytes_fetched\": %" PRIu64 ", \"bytes_pulled\": %" PRIu64
           ", \"fetch_errors\": %" PRIu64 ", \"disk_full\": %s",
           shadow.complete ? (upstream_attached () ? "covered" : "complete")
           : shadow.stopped ? "stopped" : "copying", shadow.policy,
           shadow.disk_size, shadow.block_size, shadow.nblocks,
           LOAD (shadow.present_count), LOAD (shadow.npartial),
           LOAD (shadow.stats.hits), LOAD (shadow.stats.stalls),
           LOAD (shadow.stats.stall_us), LOAD (shadow.stats.stall_wall_us),
           LOAD (shadow.stats.write_stalls),
           LOAD (shadow.stats.bytes_fetched), LOAD (shadow.stats.bytes_pulled),
           LOAD (shadow.stats.fetch_errors),
           atomic_load (&shadow.disk_full) ? "true" : "false");
  upstream_stats (fp);
  predict_stats (fp);
  record_stats (fp);
  mirror_stats (fp);
  fputs ("}\n", fp);
  if (replace_file_commit (&rf, 0) == -1)
    nbdkit_debug ("stats: %s: %m", shadow.stats_file);
}

