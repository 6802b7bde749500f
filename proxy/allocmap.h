/* The source's allocation map: for every block, whether the source has
 * said what it is (known) and, if so, whether it is all zero (a hole:
 * nothing to transfer).  Pure bit arithmetic on byte ranges; the engine
 * fills it from block status answers (NBD base:allocation).
 *
 * One thread writes (the engine thread); any thread may read.  A block
 * becomes known with release order after its zero bit is set, so a
 * reader that sees it known sees what it is.  Bits are never cleared:
 * a block known once stays as it was found.
 */

#ifndef NBDSHADOW_ALLOCMAP_H
#define NBDSHADOW_ALLOCMAP_H

#include <stdbool.h>
#include <stdint.h>

#include "bits.h"

struct allocmap {
  uint64_t size;                /* of the disk, bytes */
  uint64_t nblocks;
  uint32_t block_size;          /* a power of 2 */
  unsigned block_shift;
  /* The source answers block status.  Without that every block is
   * known data and the words are not allocated.
   */
  bool enabled;
  _Atomic uint64_t *known, *zero;
};

/* -1 if the words cannot be allocated. */
extern int allocmap_init (struct allocmap *m, uint64_t size,
                          uint32_t block_size, bool enabled);
extern void allocmap_free (struct allocmap *m);

static inline uint64_t
allocmap_offset (const struct allocmap *m, uint64_t b)
{
  return b << m->block_shift;
}

static inline bool
allocmap_known (const struct allocmap *m, uint64_t b)
{
  return !m->enabled || bit_test_acquire (m->known, b);
}

/* Known to be a hole. */
static inline bool
allocmap_zero (const struct allocmap *m, uint64_t b)
{
  return m->enabled && bit_test_acquire (m->known, b) &&
    bit_test_acquire (m->zero, b);
}

/* What one block status answer says, in bytes: blocks entirely inside
 * a zero range are holes; blocks touching a data range are data (a
 * zero range of the same answer never covers them later: zero ranges
 * only mark whole blocks).  Blocks known already are overwritten.
 */
extern void allocmap_mark_zero (struct allocmap *m, uint64_t from, uint64_t to);
extern void allocmap_mark_data (struct allocmap *m, uint64_t from, uint64_t to);
/* After an answer covered [from, to) (or an error the source will
 * repeat): what it did not prove zero is data, never asked about again.
 * Blocks known already keep what they were.
 */
extern void allocmap_settle (struct allocmap *m, uint64_t from, uint64_t to);

/* How many blocks from b on are known holes, at most max. */
extern uint64_t allocmap_hole_run (const struct allocmap *m, uint64_t b,
                                   uint64_t max);
/* Is all of [offset, offset+count) known to be zero?  False for an
 * empty range and without a map.
 */
extern bool allocmap_range_is_zero (const struct allocmap *m, uint64_t offset,
                                    uint64_t count);
/* The first block at or after the one holding offset that is not
 * known, or the first block at or past end.
 */
extern uint64_t allocmap_first_unknown (const struct allocmap *m,
                                        uint64_t offset, uint64_t end);
/* From pos (inside [., end)), the end of the run of bytes that are all
 * known holes or all not: *zero says which.  At most end.
 */
extern uint64_t allocmap_run_end (const struct allocmap *m, uint64_t pos,
                                  uint64_t end, bool *zero);

#endif /* NBDSHADOW_ALLOCMAP_H */
