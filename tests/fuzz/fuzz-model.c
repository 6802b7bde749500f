/* fuzz-model.c: the model file loader, and the pull orders built on a
 * model it accepted.  The input is the payload: the target writes the
 * header (magic, version, length, SHA-256) around it, so the fuzzer
 * explores the fields after the checksum, which is where a forged or
 * buggy model is dangerous.  An input starting with 0xff is taken as a
 * whole file instead (the header's own checks). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "model.h"
#include "order.h"

#define NBLOCKS 4096

static bool
is_present (void *ctx, uint64_t b)
{
  const uint8_t *map = ctx;
  return b >= NBLOCKS || map[b];
}

/* Run ORDER a little: what the filter's engine does with it. */
static void
exercise (const char *policy, const struct model *m)
{
  static uint8_t present[NBLOCKS];
  char err[LEARNER_ERRLEN];
  struct order *o = order_new (policy, m, NBLOCKS, m->block_size, err);
  uint64_t blocks[8], x = 1;

  if (!o)
    return;
  memset (present, 0, sizeof present);
  for (int step = 0; step < 64; step++) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    uint64_t b = (x >> 33) % NBLOCKS;
    order_observe (o, step * 1000, b, b + (x & 3) < NBLOCKS ? b + (x & 3) : b,
                   (x >> 8) & 1, present[b]);
    size_t n = order_next (o, step * 1000, blocks, 8, is_present, present);
    for (size_t i = 0; i < n; i++) {
      if (blocks[i] >= NBLOCKS)
        abort ();               /* a pull outside the disk */
      present[blocks[i]] = 1;
    }
  }
  order_free (o);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static const char magic[8] = "NBDSHMDL";
  uint32_t version = MODEL_VERSION, bom = 0x01020304u;
  uint64_t len = size;
  unsigned char digest[SHA256_DIGEST_LENGTH];
  char path[64], err[LEARNER_ERRLEN];
  struct model *m;
  int fd = memfd_create ("model", 0);

  if (fd == -1)
    return 0;
  if (size > 0 && data[0] == 0xff) {
    if (write (fd, data + 1, size - 1) != (ssize_t) size - 1)
      abort ();
  }
  else {
    SHA256 (data, size, digest);
    if (write (fd, magic, 8) != 8 || write (fd, &version, 4) != 4 ||
        write (fd, &bom, 4) != 4 || write (fd, &len, 8) != 8 ||
        write (fd, digest, sizeof digest) != sizeof digest ||
        write (fd, data, size) != (ssize_t) size)
      abort ();
  }
  snprintf (path, sizeof path, "/proc/self/fd/%d", fd);
  m = model_load (path, err);
  if (m) {
    for (const struct order_policy *p = order_policy_table; p->name; p++)
      if (strcmp (p->name, "oracle") != 0)
        exercise (p->name, m);
    model_free (m);
  }
  close (fd);
  return 0;
}
