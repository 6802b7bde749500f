/* The source's allocation map (see allocmap.h): runs of blocks set a
 * word at a time, since a sparse source describes millions of blocks in
 * one answer.
 */

#include <stdlib.h>

#include "allocmap.h"

int
allocmap_init (struct allocmap *m, uint64_t size, uint32_t block_size,
               bool enabled)
{
  m->size = size;
  m->block_size = block_size;
  m->block_shift = __builtin_ctz (block_size);
  m->nblocks = (size + block_size - 1) >> m->block_shift;
  m->enabled = enabled;
  m->known = m->zero = NULL;
  if (!enabled)
    return 0;
  m->known = calloc (bits_words (m->nblocks), sizeof (uint64_t));
  m->zero = calloc (bits_words (m->nblocks), sizeof (uint64_t));
  if (m->known == NULL || m->zero == NULL) {
    allocmap_free (m);
    return -1;
  }
  return 0;
}

void
allocmap_free (struct allocmap *m)
{
  free ((void *) m->known);
  free ((void *) m->zero);
  m->known = m->zero = NULL;
}

/* Blocks [first, end) are known to be zero or data; with only_unknown,
 * blocks known already keep what they were.
 */
static void
set_run (struct allocmap *m, uint64_t first, uint64_t end, bool zero,
         bool only_unknown)
{
  if (!m->enabled)
    return;
  if (end > m->nblocks)
    end = m->nblocks;
  for (uint64_t b = first; b < end; ) {
    uint64_t w = b / 64, hi = (w + 1) * 64 < end ? (w + 1) * 64 : end;
    uint64_t bits = word_mask (b % 64, hi - w * 64);
    if (only_unknown)
      bits &= ~atomic_load_explicit (&m->known[w], memory_order_relaxed);
    if (zero)
      atomic_fetch_or_explicit (&m->zero[w], bits, memory_order_relaxed);
    else
      atomic_fetch_and_explicit (&m->zero[w], ~bits, memory_order_relaxed);
    atomic_fetch_or_explicit (&m->known[w], bits, memory_order_release);
    b = hi;
  }
}

/* The first block starting at or after a byte offset, and the first
 * block at or after the one holding it.
 */
static uint64_t
block_up (const struct allocmap *m, uint64_t offset)
{
  return (offset + m->block_size - 1) >> m->block_shift;
}

void
allocmap_mark_zero (struct allocmap *m, uint64_t from, uint64_t to)
{
  /* The disk's last block may be short: a zero range to the end of the
   * disk covers it.
   */
  set_run (m, block_up (m, from),
           to >= m->size ? m->nblocks : to >> m->block_shift, true, false);
}

void
allocmap_mark_data (struct allocmap *m, uint64_t from, uint64_t to)
{
  set_run (m, from >> m->block_shift, block_up (m, to), false, false);
}

void
allocmap_settle (struct allocmap *m, uint64_t from, uint64_t to)
{
  set_run (m, from >> m->block_shift, block_up (m, to), false, true);
}

uint64_t
allocmap_hole_run (const struct allocmap *m, uint64_t b, uint64_t max)
{
  uint64_t n = 0;
  while (n < max && b + n < m->nblocks && allocmap_zero (m, b + n))
    n++;
  return n;
}

bool
allocmap_range_is_zero (const struct allocmap *m, uint64_t offset,
                        uint64_t count)
{
  if (!m->enabled || count == 0)
    return false;
  for (uint64_t b = offset >> m->block_shift;
       allocmap_offset (m, b) < offset + count; b++)
    if (!allocmap_zero (m, b))
      return false;
  return true;
}

uint64_t
allocmap_first_unknown (const struct allocmap *m, uint64_t offset,
                        uint64_t end)
{
  uint64_t b;
  for (b = offset >> m->block_shift; allocmap_offset (m, b) < end; b++)
    if (!allocmap_known (m, b))
      break;
  return b;
}

uint64_t
allocmap_run_end (const struct allocmap *m, uint64_t pos, uint64_t end,
                  bool *zero)
{
  uint64_t b = pos >> m->block_shift;

  *zero = allocmap_zero (m, b);
  for (b++; allocmap_offset (m, b) < end && allocmap_zero (m, b) == *zero; b++)
    ;
  return allocmap_offset (m, b) < end ? allocmap_offset (m, b) : end;
}
