/* learner.h: the access predictor's main types.
 *
 * A trace is a time-ordered list of guest requests in the canonical form
 * of DESIGN.md (ts_us, op, offset, length).  Everything in learner/ works
 * on traces and on block numbers (offset / block_size).  Library code never
 * exits and never prints: functions that can fail return -1 (or NULL) and
 * write a one-line reason into a caller-supplied buffer of LEARNER_ERRLEN
 * bytes.  No function keeps global mutable state, so separate objects can
 * be used from separate threads.
 */
#ifndef NBDSHADOW_LEARNER_H
#define NBDSHADOW_LEARNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define LEARNER_ERRLEN 256

/* Canonical operation letters, as in the trace CSV. */
enum trace_op {
  TRACE_READ = 'R',
  TRACE_WRITE = 'W',
  TRACE_TRIM = 'T',
  TRACE_ZERO = 'Z',
  TRACE_FLUSH = 'F',
};

/* Bounds every trace record keeps, so that no sum or rounding of offsets
 * and times overflows downstream: a request ends by 2^63 - 1 bytes (an
 * NBD export's size is a signed 64-bit number) and is issued by 2^63 - 1
 * microseconds.  trace_append refuses anything beyond. */
#define TRACE_MAX_END ((uint64_t) INT64_MAX)
#define TRACE_MAX_TS ((uint64_t) INT64_MAX)

/* Block sizes the learner works with (train, simulate, model files):
 * powers of two in this range.  The filter takes 4K..4M of them. */
#define LEARNER_MIN_BLOCK_SIZE 512
#define LEARNER_MAX_BLOCK_SIZE (UINT64_C (64) << 20)
static inline int
learner_block_size_ok (uint64_t bs)
{
  return bs >= LEARNER_MIN_BLOCK_SIZE && bs <= LEARNER_MAX_BLOCK_SIZE &&
         (bs & (bs - 1)) == 0;
}

struct trace_rec {
  uint64_t ts_us;
  uint64_t offset;
  uint32_t length;
  char op;                      /* enum trace_op */
};

struct trace {
  struct trace_rec *recs;
  size_t n, cap;
};

/* trace.c */
extern int trace_append (struct trace *t, uint64_t ts_us, char op,
                         uint64_t offset, uint64_t length, char *err);
extern void trace_free (struct trace *t);
extern void trace_sort (struct trace *t);
extern int trace_read_csv (FILE *fp, struct trace *t, char *err);
extern int trace_load_csv (const char *path, struct trace *t, char *err);
extern int trace_write_csv (FILE *fp, const struct trace *t);
extern int trace_split (const struct trace *t, struct trace *history,
                        struct trace *future, char *err);
extern uint64_t trace_volume (const struct trace *t, uint64_t block_size);

/* The blocks [*first, *last] a request touches (length 0 touches none:
 * returns 0). */
static inline int
trace_rec_blocks (const struct trace_rec *r, uint64_t block_size,
                  uint64_t *first, uint64_t *last)
{
  if (r->length == 0 || r->op == TRACE_FLUSH)
    return 0;
  *first = r->offset / block_size;
  *last = (r->offset + r->length - 1) / block_size;
  return 1;
}

/* import.c: parse a trace in FORMAT (see import_formats) into canonical
 * records, sorted by time.  Errors name the line and the reason. */
extern const char *const import_formats[];
extern int trace_import (FILE *fp, const char *format, struct trace *t,
                         char *err);

/* Parse a size like 64K, 1M, 4096 (binary suffixes). -1 if malformed. */
extern int parse_size (const char *s, uint64_t *out);

#endif /* NBDSHADOW_LEARNER_H */
