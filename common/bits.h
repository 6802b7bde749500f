/* Bit arithmetic on arrays of uint64_t words: bit i of a map is bit
 * i % 64 of word i / 64.  Inline: these are on every request's path.
 * The _acquire forms read maps that other threads set bits in (with
 * release order) to publish what the bit stands for.
 */

#ifndef NBDSHADOW_BITS_H
#define NBDSHADOW_BITS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Bits [lo, hi) of a word, 0 <= lo < hi <= 64. */
static inline uint64_t
word_mask (unsigned lo, unsigned hi)
{
  return (hi - lo == 64 ? ~UINT64_C (0) : (UINT64_C (1) << (hi - lo)) - 1) << lo;
}

static inline bool
bit_test (const uint64_t *map, uint64_t i)
{
  return (map[i / 64] >> (i % 64)) & 1;
}

static inline bool
bit_test_acquire (_Atomic uint64_t *map, uint64_t i)
{
  return (atomic_load_explicit (&map[i / 64], memory_order_acquire)
          >> (i % 64)) & 1;
}

static inline void
bit_set (uint64_t *map, uint64_t i)
{
  map[i / 64] |= UINT64_C (1) << (i % 64);
}

/* Set bits [from, to), a word at a time. */
static inline void
bits_set_range (uint64_t *map, uint64_t from, uint64_t to)
{
  while (from < to) {
    uint64_t w = from / 64, end = (w + 1) * 64 < to ? (w + 1) * 64 : to;
    map[w] |= word_mask (from % 64, end - w * 64);
    from = end;
  }
}

/* Are all bits [from, to) set?  True for an empty range. */
static inline bool
bits_all_set (const uint64_t *map, uint64_t from, uint64_t to)
{
  while (from < to) {
    uint64_t w = from / 64, end = (w + 1) * 64 < to ? (w + 1) * 64 : to;
    uint64_t m = word_mask (from % 64, end - w * 64);
    if ((map[w] & m) != m)
      return false;
    from = end;
  }
  return true;
}

/* Words needed for nbits bits. */
static inline uint64_t
bits_words (uint64_t nbits)
{
  return (nbits + 63) / 64;
}

#endif /* NBDSHADOW_BITS_H */
