/* fuzz-import.c: `nbdshadow import --format FUZZ_FORMAT` on any input
 * (built once per format).  Accepted traces must pass check_trace;
 * refused ones must say why with a line number or a count of lines. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
  if (trace_import (fp, FUZZ_FORMAT, &t, err) == 0)
    check_trace (&t);
  else if (strncmp (err, "line ", 5) != 0 && strncmp (err, "no requests", 11))
    abort ();
  fclose (fp);
  trace_free (&t);
  return 0;
}
