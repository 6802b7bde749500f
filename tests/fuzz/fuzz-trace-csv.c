/* fuzz-trace-csv.c: the canonical CSV reader (train, simulate, replay
 * load traces with it). */
#include <stdint.h>
#include <stdio.h>

#include "learner.h"
#include "fuzz-trace.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct trace t = { 0 };
  char err[LEARNER_ERRLEN];
  FILE *fp;

  if (size == 0)
    return 0;
  fp = fmemopen ((void *) data, size, "r");
  if (!fp)
    return 0;
  if (trace_read_csv (fp, &t, err) == 0)
    check_trace (&t);
  fclose (fp);
  trace_free (&t);
  return 0;
}
