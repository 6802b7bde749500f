/* fuzz-params.c: the filter's parameter parsing, through its real
 * .config callback (every shadow-* key, sizes, counts, durations,
 * policies, and the plugin keys it notes).  Input: lines "key=value".
 * What must hold: a refused value says why (nbdkit_error) and an
 * accepted one says nothing; an accepted block size is a power of two
 * in the filter's range. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-filter.h>

#include "shadow.h"

extern struct nbdkit_filter *filter_init (void);
extern int fuzz_errors, fuzz_verbose;

static int
next_config (nbdkit_backend *nxdata, const char *key, const char *value)
{
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct nbdkit_filter *f = filter_init ();
  char *buf = malloc (size + 1), *line, *save;

  if (!buf)
    return 0;
  fuzz_verbose = getenv ("FUZZ_VERBOSE") != NULL;
  memcpy (buf, data, size);
  buf[size] = '\0';
  for (line = strtok_r (buf, "\n", &save); line;
       line = strtok_r (NULL, "\n", &save)) {
    char *eq = strchr (line, '=');
    int r;
    if (!eq || eq == line)
      continue;
    *eq = '\0';
    fuzz_errors = 0;
    r = f->config (next_config, NULL, line, eq + 1);
    if ((r == -1) != (fuzz_errors > 0))
      abort ();                 /* refused in silence, or accepted noisily */
    if (r == 0 && shadow.block_size != 0 &&
        (shadow.block_size < SHADOW_MIN_BLOCK_SIZE ||
         shadow.block_size > SHADOW_MAX_BLOCK_SIZE ||
         (shadow.block_size & (shadow.block_size - 1)) ||
         (1u << shadow.block_shift) != shadow.block_size))
      abort ();
  }
  free (buf);
  return 0;
}
