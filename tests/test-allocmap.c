/* test-allocmap.c: the source's allocation map (proxy/allocmap.h).
 *
 * The rules it guards: a zero range makes only the blocks wholly inside
 * it holes (a block the range only touches still holds data), except
 * that a range reaching the end of the disk covers its short last
 * block; a data range makes every block it touches data; settling after
 * an answer makes what is still unknown data but never overturns a
 * hole; runs are set a word at a time across word boundaries; and the
 * queries (hole runs, zero ranges, extents) read exactly that.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "allocmap.h"
#include "unit.h"


#define BS 4096

/* Which blocks are known holes, as a string: 'z' hole, 'd' data, '.'
 * not known.
 */
static const char *
picture (const struct allocmap *m)
{
  static char s[1024];
  uint64_t b;
  for (b = 0; b < m->nblocks && b < sizeof s - 1; b++)
    s[b] = !allocmap_known (m, b) ? '.' : allocmap_zero (m, b) ? 'z' : 'd';
  s[b] = '\0';
  return s;
}

#define PICTURE(m, expect) do {                                         \
    const char *got_ = picture (m);                                     \
    if (strcmp (got_, expect) != 0)                                     \
      FAIL ("map is %s, expected %s", got_, expect);                    \
  } while (0)

static void
test_rounding (void)
{
  struct allocmap m;
  /* Ten blocks, the last one short. */
  uint64_t size = 9 * BS + 100;
  bool zero;

  CHECK (allocmap_init (&m, size, BS, true) == 0);
  CHECK (m.nblocks == 10);
  PICTURE (&m, "..........");

  /* Only blocks 1 and 2 are wholly inside [100, 3 BS). */
  allocmap_mark_zero (&m, 100, 3 * BS);
  PICTURE (&m, ".zz.......");
  /* One byte of data makes its whole block data. */
  allocmap_mark_data (&m, 3 * BS, 3 * BS + 1);
  PICTURE (&m, ".zzd......");
  /* A zero range to the end of the disk covers the short last block. */
  allocmap_mark_zero (&m, 8 * BS, size);
  PICTURE (&m, ".zzd....zz");
  /* A zero range ending inside the last block does not. */
  allocmap_mark_zero (&m, 6 * BS, 7 * BS + 50);
  PICTURE (&m, ".zzd..z.zz");

  /* Settling makes the unknown data and keeps the holes. */
  allocmap_settle (&m, 0, 5 * BS + 1);
  PICTURE (&m, "dzzdddz.zz");

  CHECK (allocmap_hole_run (&m, 1, 100) == 2);
  CHECK (allocmap_hole_run (&m, 1, 1) == 1);
  CHECK (allocmap_hole_run (&m, 3, 100) == 0);
  CHECK (allocmap_hole_run (&m, 8, 100) == 2);    /* stops at the end */
  CHECK (allocmap_hole_run (&m, 7, 100) == 0);    /* unknown is no hole */

  CHECK (allocmap_range_is_zero (&m, BS, 2 * BS));
  CHECK (allocmap_range_is_zero (&m, BS + 10, 100));
  CHECK (!allocmap_range_is_zero (&m, BS, 2 * BS + 1));
  CHECK (!allocmap_range_is_zero (&m, BS, 0));
  CHECK (allocmap_range_is_zero (&m, 8 * BS, size - 8 * BS));

  CHECK (allocmap_first_unknown (&m, 0, size) == 7);
  CHECK (allocmap_first_unknown (&m, 7 * BS, size) == 7);
  CHECK (allocmap_first_unknown (&m, 8 * BS, size) == 10);

  CHECK (allocmap_run_end (&m, 0, size, &zero) == BS && !zero);
  CHECK (allocmap_run_end (&m, BS + 5, size, &zero) == 3 * BS && zero);
  CHECK (allocmap_run_end (&m, 3 * BS, size, &zero) == 6 * BS && !zero);
  CHECK (allocmap_run_end (&m, 8 * BS, size, &zero) == size && zero);
  CHECK (allocmap_run_end (&m, BS, 2 * BS, &zero) == 2 * BS && zero);

  /* Data found later overturns a hole (a fresh answer wins). */
  allocmap_mark_data (&m, 2 * BS, 2 * BS + 1);
  PICTURE (&m, "dzddddz.zz");
  allocmap_free (&m);
}

/* Runs longer than a word, starting and ending inside words. */
static void
test_words (void)
{
  struct allocmap m;
  uint64_t n = 200;

  CHECK (allocmap_init (&m, n * BS, BS, true) == 0);
  allocmap_mark_zero (&m, 60 * BS, 130 * BS);
  for (uint64_t b = 0; b < n; b++) {
    bool inside = b >= 60 && b < 130;
    if (allocmap_known (&m, b) != inside || allocmap_zero (&m, b) != inside)
      FAIL ("block %llu is %s", (unsigned long long) b,
            allocmap_zero (&m, b) ? "a hole" :
            allocmap_known (&m, b) ? "data" : "unknown");
  }
  CHECK (allocmap_hole_run (&m, 60, 1000) == 70);
  allocmap_settle (&m, 0, n * BS);
  CHECK (allocmap_hole_run (&m, 60, 1000) == 70);
  CHECK (allocmap_known (&m, 59) && !allocmap_zero (&m, 59));
  CHECK (allocmap_known (&m, 199) && !allocmap_zero (&m, 199));
  /* Exactly one word. */
  allocmap_mark_zero (&m, 128 * BS, 192 * BS);
  CHECK (allocmap_hole_run (&m, 128, 1000) == 64);
  CHECK (!allocmap_zero (&m, 192));
  allocmap_free (&m);
}

/* A source without block status: everything is known data. */
static void
test_disabled (void)
{
  struct allocmap m;

  CHECK (allocmap_init (&m, 10 * BS, BS, false) == 0);
  allocmap_mark_zero (&m, 0, 10 * BS);
  CHECK (allocmap_known (&m, 3) && !allocmap_zero (&m, 3));
  CHECK (!allocmap_range_is_zero (&m, 0, BS));
  CHECK (allocmap_first_unknown (&m, 0, 10 * BS) == 10);
  CHECK (allocmap_hole_run (&m, 0, 10) == 0);
  allocmap_free (&m);
}

int
main (void)
{
  test_rounding ();
  test_words ();
  test_disabled ();
  return unit_result ("test-allocmap");
}
