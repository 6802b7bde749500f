/* progress.h: one volume's migration progress, read from the filter's
 * stats file or Redis, and its printed forms (progress.c). */
#ifndef NBDSHADOW_PROGRESS_H
#define NBDSHADOW_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

struct progress {
  char id[65];
  char state[16];               /* copying, covered, complete, ... */
  char source[16];              /* connected, disconnected, detached */
  uint64_t block_size, blocks_total, blocks_present;
  uint64_t bytes_pulled, bytes_fetched, stalls, stall_us, hits;
  uint64_t unreadable_blocks;   /* the source failed them: the copy waits */
  double coverage;              /* 0..1 */
  /* -1 where unknown (an older filter, or too few readings yet). */
  double rate_bytes_per_s, eta_s;
  int paused;
  int64_t bandwidth_limit;      /* bytes/s, 0 = no cap */
};

/* Successive readings of one volume, for a rate and an ETA when the
 * source of the readings gives none: over the last few seconds. */
#define RATE_SAMPLES 6
struct rate_meter {
  size_t n;
  double t[RATE_SAMPLES];
  uint64_t bytes[RATE_SAMPLES], blocks[RATE_SAMPLES];
};

extern void progress_init (struct progress *p, const char *id);
/* Fill P's figures from the fields GET finds in SRC (NULL: absent):
 * the stats file's JSON or the progress hash in Redis, which share
 * their names. */
typedef const char *progress_lookup_fn (void *src, const char *key);
extern void progress_fill (struct progress *p, progress_lookup_fn *get,
                           void *src);
/* Fill P from the stats file PATH; -1 with a message in ERR. */
extern int progress_read_stats (struct progress *p, const char *path,
                                char *err, size_t errlen);
/* Add P as the newest reading and fill in its rate and ETA if unknown. */
extern void rate_meter_add (struct rate_meter *m, struct progress *p);

/* A bar that redraws its line ("\r", no newline), for a terminal. */
extern void progress_print_bar (FILE *fp, const struct progress *p);
extern void progress_print_line (FILE *fp, const struct progress *p);
extern void progress_print_json (FILE *fp, const struct progress *p);
/* "3 blocks unreadable at the source" after SEP, in BUF, or "" when the
 * source reads every block. */
extern const char *format_unreadable (const struct progress *p,
                                      const char *sep, char *buf, size_t len);
/* The fleet table: a header, then one row per volume. */
extern void progress_print_header (FILE *fp);
extern void progress_print_row (FILE *fp, const struct progress *p);

#endif
