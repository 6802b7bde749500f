/* fuzz-trace.h: what every trace a parser accepted must satisfy, checked
 * by the trace fuzz targets: records within the bounds of learner.h,
 * sorted by time, and the canonical CSV of them reading back to the same
 * records.  A parser giving silently wrong numbers breaks one of these. */
#ifndef NBDSHADOW_FUZZ_TRACE_H
#define NBDSHADOW_FUZZ_TRACE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "learner.h"

static void
check_trace (const struct trace *t)
{
  struct trace back = { 0 };
  char err[LEARNER_ERRLEN], *buf = NULL;
  size_t len = 0;
  FILE *fp;

  for (size_t i = 0; i < t->n; i++) {
    const struct trace_rec *r = &t->recs[i];
    if (r->ts_us > TRACE_MAX_TS || r->offset > TRACE_MAX_END - r->length ||
        !strchr ("RWTZF", r->op) || r->op == 0 ||
        (i > 0 && r->ts_us < t->recs[i - 1].ts_us))
      abort ();
  }
  fp = open_memstream (&buf, &len);
  if (!fp || trace_write_csv (fp, t) == -1 || fclose (fp) == EOF)
    abort ();
  fp = fmemopen (buf, len, "r");
  if (!fp)
    abort ();
  if (trace_read_csv (fp, &back, err) == -1) {
    fprintf (stderr, "canonical CSV does not read back: %s\n", err);
    abort ();
  }
  fclose (fp);
  if (back.n != t->n)
    abort ();
  for (size_t i = 0; i < t->n; i++)
    if (back.recs[i].ts_us != t->recs[i].ts_us ||
        back.recs[i].offset != t->recs[i].offset ||
        back.recs[i].length != t->recs[i].length ||
        back.recs[i].op != t->recs[i].op)
      abort ();
  trace_free (&back);
  free (buf);
}

#endif
