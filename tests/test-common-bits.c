/* test-common-bits.c: the bit helpers of common/bits.h, against a
 * bit-at-a-time reference: word masks at both ends of a word, ranges
 * set and tested across word boundaries, never a bit outside the range.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "bits.h"
#include "unit.h"


#define NBITS 300

int
main (void)
{
  uint64_t map[bits_words (NBITS)];

  CHECK (bits_words (0) == 0 && bits_words (1) == 1 && bits_words (64) == 1 &&
         bits_words (65) == 2);
  CHECK (word_mask (0, 64) == ~UINT64_C (0));
  CHECK (word_mask (0, 1) == 1);
  CHECK (word_mask (63, 64) == UINT64_C (1) << 63);
  CHECK (word_mask (3, 5) == 0x18);
  CHECK (word_mask (1, 64) == ~UINT64_C (1));

  /* Every range [from, to) of a 300-bit map (steps keep it quick but
   * cover each position in a word and each boundary).
   */
  for (unsigned from = 0; from <= NBITS; from += 7)
    for (unsigned to = from; to <= NBITS; to += 5) {
      memset (map, 0, sizeof map);
      bits_set_range (map, from, to);
      for (unsigned i = 0; i < NBITS; i++)
        if (bit_test (map, i) != (i >= from && i < to)) {
          FAIL ("bits_set_range (%u, %u) left bit %u %s", from, to, i,
                bit_test (map, i) ? "set" : "clear");
          break;
        }
      CHECK (bits_all_set (map, from, to));
      if (from > 0)
        CHECK (!bits_all_set (map, from - 1, to));
      if (to < NBITS)
        CHECK (!bits_all_set (map, from, to + 1));
    }

  memset (map, 0, sizeof map);
  bit_set (map, 0);
  bit_set (map, 63);
  bit_set (map, 64);
  bit_set (map, 299);
  CHECK (map[0] == (UINT64_C (1) | UINT64_C (1) << 63));
  CHECK (map[1] == 1 && map[4] == UINT64_C (1) << (299 - 256));
  CHECK (bit_test (map, 64) && !bit_test (map, 65) && !bit_test (map, 62));
  CHECK (bits_all_set (map, 63, 65) && !bits_all_set (map, 62, 65));
  CHECK (bits_all_set (map, 10, 10));           /* empty */

  {
    _Atomic uint64_t amap[2] = { 0, UINT64_C (1) << 5 };
    CHECK (bit_test_acquire (amap, 69) && !bit_test_acquire (amap, 5));
  }

  return unit_result ("test-common-bits");
}
