/* The source's fingerprint at start (proxy/identity.h), and what its
 * samples are worth beyond it.
 *
 * The filter reads the samples before it serves, to tell whether the
 * source is the disk its state file belongs to.  They are the source's
 * data: the first sample is block 0, which a guest reads first (QEMU
 * probes it as it opens the disk, before the background copy's first
 * pull can be back).  So once the state is ready the samples are
 * installed like pulled blocks, and the guest's first read finds its
 * block local (not with shadow-policy=none: demand only).
 */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-filter.h>

#include "identity.h"
#include "shadow.h"

/* A start must not hinge on one lucky read: a sample that fails is
 * asked again with backoff, and one that is late is waited for (up to
 * FINGERPRINT_PATIENCE times shadow-timeout) rather than thrown away.
 */
#define FINGERPRINT_TRIES 8
#define FINGERPRINT_PATIENCE 4
#define FINGERPRINT_BACKOFF_MS 100
#define FINGERPRINT_BACKOFF_MAX_MS 2000

/* The samples read, kept from fingerprint_read until
 * fingerprint_forget (after fingerprint_install_samples, if called).
 */
static struct identity_sample samples[IDENTITY_MAX_SAMPLES];
static unsigned nsamples;
static char *sample_data;

static int
read_sample (char *buf, const struct identity_sample *s)
{
  unsigned backoff = FINGERPRINT_BACKOFF_MS;
  int err = 0;

  for (unsigned i = 0; i < FINGERPRINT_TRIES; i++) {
    if (upstream_pread_patient (buf, s->length, s->offset,
                                FINGERPRINT_PATIENCE, &err) == 0)
      return 0;
    nbdkit_debug ("shadow: reading the source's fingerprint at %" PRIu64
                  ": %s (try %u of %u)", s->offset, strerror (err), i + 1,
                  FINGERPRINT_TRIES);
    if (i + 1 < FINGERPRINT_TRIES && nbdkit_nanosleep (0, backoff * 1000000L) == -1)
      break;                    /* nbdkit is shutting down */
    backoff = backoff * 2 < FINGERPRINT_BACKOFF_MAX_MS ? backoff * 2
                                                       : FINGERPRINT_BACKOFF_MAX_MS;
  }
  nbdkit_error ("shadow: cannot read the source's fingerprint at offset %"
                PRIu64 ": %s", s->offset, strerror (err ? err : EIO));
  return -1;
}

/* Read the samples of a disk of disk_size bytes and digest them into
 * out (the identity of a state file's source).
 */
int
fingerprint_read (uint64_t disk_size, unsigned char out[32])
{
  unsigned n = identity_plan (disk_size, samples);
  char *p;

  fingerprint_forget ();
  if ((sample_data = p = malloc (identity_bytes (samples, n) + 1)) == NULL) {
    nbdkit_error ("malloc: %m");
    return -1;
  }
  nsamples = n;
  for (unsigned i = 0; i < nsamples; p += samples[i].length, i++)
    if (read_sample (p, &samples[i]) == -1) {
      fingerprint_forget ();
      return -1;
    }
  identity_digest (disk_size, samples, nsamples, sample_data, out);
  return 0;
}

static bool
all_zero (const char *p, size_t n)
{
  return n == 0 || (p[0] == 0 && memcmp (p, p + 1, n - 1) == 0);
}

/* The block map is ready and the source is the state's: every block a
 * sample covers whole becomes local, by the pulls' rules (a block
 * already local or being fetched is left alone, and sectors the guest
 * wrote stay the guest's).  Zero blocks are left to the copy, which
 * makes the source's holes holes in the shadow.  Returns how many
 * blocks were installed.
 */
uint64_t
fingerprint_install_samples (void)
{
  const char *p = sample_data;
  uint64_t installed = 0;

  for (unsigned i = 0; i < nsamples; p += samples[i].length, i++) {
    uint64_t start = samples[i].offset, end = start + samples[i].length;
    uint64_t b = (start + shadow.block_size - 1) >> shadow.block_shift;

    for (; block_offset (b) < shadow.disk_size &&
           block_offset (b) + block_length (b) <= end; b++) {
      const char *data = p + (block_offset (b) - start);
      if (!all_zero (data, block_length (b)) &&
          blockmap_install_sample (b, data))
        installed++;
    }
  }
  return installed;
}

void
fingerprint_forget (void)
{
  free (sample_data);
  sample_data = NULL;
  nsamples = 0;
}
