/* The stats file (shadow-stats): the filter's counters, with the
 * engine's and the predictor's, as one line of JSON, rewritten whole
 * (a temporary file from mkstemp renamed over it) so that a reader never
 * sees half of it and a symlink planted beside it is never followed.
 * The housekeeping thread rewrites it once a second.
 */

#include <inttypes.h>
#include <stdio.h>

#include <nbdkit-filter.h>

#include "replace-file.h"
#include "shadow.h"

#define LOAD(x) ((uint64_t) atomic_load_explicit (&(x), memory_order_relaxed))

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
           ", \"stall_us\": %" PRIu64 ", \"write_stalls\": %" PRIu64
           ", \"bytes_fetched\": %" PRIu64 ", \"bytes_pulled\": %" PRIu64
           ", \"fetch_errors\": %" PRIu64 ", \"disk_full\": %s",
           !shadow.complete ? "copying"
           : upstream_attached () ? "covered" : "complete", shadow.policy,
           shadow.disk_size, shadow.block_size, shadow.nblocks,
           LOAD (shadow.present_count), LOAD (shadow.npartial),
           LOAD (shadow.stats.hits), LOAD (shadow.stats.stalls),
           LOAD (shadow.stats.stall_us), LOAD (shadow.stats.write_stalls),
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

