/* The identity of a source disk, read from the disk itself.
 *
 * A state file belongs to one disk.  The disk's size alone does not say
 * which, and neither does its first block: VMs cloned from one template
 * share their partition table and boot loader.  So the fingerprint is a
 * SHA-256 over the size and samples spread over the whole disk (the
 * first block, the last one where a GPT keeps its backup header, and
 * evenly spaced ones between).  Clones can still share every sample;
 * that is what the operator's shadow-source-id is for.
 *
 * The filter reads the samples at start, the engine again on every
 * reconnection: both use this plan, so they agree on what "the same
 * disk" means.
 */

#ifndef NBDSHADOW_IDENTITY_H
#define NBDSHADOW_IDENTITY_H

#include <stdint.h>

#define IDENTITY_MAX_SAMPLES 17
#define IDENTITY_SAMPLE_BYTES 65536

struct identity_sample {
  uint64_t offset;
  uint32_t length;
};

/* The samples of a disk of `size` bytes, in ascending offset order and
 * not overlapping; returns how many (0 for an empty disk).
 */
extern unsigned identity_plan (uint64_t size, struct identity_sample *out);

/* Total bytes of the samples. */
extern uint64_t identity_bytes (const struct identity_sample *s, unsigned n);

/* The fingerprint: data holds the samples' bytes back to back. */
extern void identity_digest (uint64_t size, const struct identity_sample *s,
                             unsigned n, const void *data,
                             unsigned char out[32]);

#endif /* NBDSHADOW_IDENTITY_H */
