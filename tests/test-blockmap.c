/* test-blockmap.c: the block rules of plugin/blockmap.c, driven through
 * its public calls over an in-memory source and shadow.  What it checks
 * is what keeps guest data safe: a fetch (demand or pull) installs the
 * source's data only into sectors no guest write has claimed, also when
 * the write came while the fetch was in flight; a partial write to an
 * ABSENT block lands at once unless it keeps old bytes of a sector it
 * does not own; the number of partial blocks is bounded; the masks a
 * checkpoint persists are those of completed writes; holes become
 * PRESENT without I/O only where nobody wrote.  Single-threaded and
 * deterministic: a pull is begun and ended by the test itself, so "in
 * flight" is the time between the two calls.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-filter.h>

#include "shadow.h"

#define BLOCK 4096
#define NBLOCKS (SHADOW_MAX_PARTIAL + 64)
#define DISK ((uint64_t) NBLOCKS * BLOCK)

/* Like assert, but also with NDEBUG, and saying which line failed. */
#define CHECK(x) ((x) ? (void) 0 : check_failed (#x, __LINE__))

static void
check_failed (const char *what, int line)
{
  fprintf (stderr, "test-blockmap.c:%d: check failed: %s\n", line, what);
  abort ();
}

/* The source's bytes, the shadow file's, and what the guest must read. */
static unsigned char *source, *store, *expect;
static unsigned upstream_reads;         /* calls of upstream_pread */
static unsigned store_writes;           /* calls of store_pwrite/store_zero */
static bool store_holes;                /* store_is_data says: all holes */

/* What shadow.c defines, and the filter's neighbours over the arrays
 * above.
 */

struct shadow shadow;

int
upstream_pread (void *buf, uint32_t count, uint64_t offset, int *err)
{
  CHECK (offset + count <= DISK);
  upstream_reads++;
  memcpy (buf, source + offset, count);
  return 0;
}

int
store_pread (void *buf, uint32_t count, uint64_t offset, int *err)
{
  memcpy (buf, store + offset, count);
  return 0;
}

int
store_pwrite (const void *buf, uint32_t count, uint64_t offset, int *err)
{
  CHECK (offset + count <= DISK);
  store_writes++;
  memcpy (store + offset, buf, count);
  return 0;
}

int
store_zero (uint32_t count, uint64_t offset, int *err)
{
  CHECK (offset + count <= DISK);
  store_writes++;
  memset (store + offset, 0, count);
  return 0;
}

int
store_install (const void *buf, uint32_t count, uint64_t offset, int *err)
{
  return store_pwrite (buf, count, offset, err);
}

int
store_is_data (uint64_t offset, uint64_t end, uint64_t *run_end)
{
  *run_end = end;
  return !store_holes;
}

void housekeeping_wake (void) { }
bool store_pulls_paused (void) { return false; }

void
stats_stall (uint64_t from_us, uint64_t to_us)
{
  shadow.stats.stalls++;
}

void
nbdkit_error (const char *fs, ...)
{
  va_list ap;
  va_start (ap, fs);
  vfprintf (stderr, fs, ap);
  va_end (ap);
  fputc ('\n', stderr);
}

void nbdkit_debug (const char *fs, ...) { }

/* Helpers. */

static void
setup (void)
{
  blockmap_free ();
  memset (&shadow.stats, 0, sizeof shadow.stats);
  shadow.block_size = BLOCK;
  shadow.block_shift = __builtin_ctz (BLOCK);
  shadow.disk_size = DISK;
  shadow.nblocks = NBLOCKS;
  shadow.present_count = 0;
  shadow.npartial = 0;
  shadow.complete = false;
  CHECK (blockmap_init () == 0);
  for (uint64_t i = 0; i < DISK; i++)
    source[i] = (unsigned char) (i * 7 + 1 + i / 4096);
  memset (store, 0, DISK);
  memcpy (expect, source, DISK);
  upstream_reads = store_writes = 0;
  store_holes = false;
}

/* A guest write of count bytes of value c at offset. */
static void
guest_write (uint64_t offset, uint32_t count, unsigned char c)
{
  unsigned char *buf = malloc (count);
  int err;
  memset (buf, c, count);
  CHECK (blockmap_write (buf, count, offset, false, &err) == 0);
  memset (expect + offset, c, count);
  free (buf);
}

/* The guest reads [offset, offset+count): it must see expect. */
static void
guest_read_check (uint64_t offset, uint32_t count)
{
  unsigned char *buf = malloc (count);
  bool stalled;
  int err;
  CHECK (blockmap_prepare_read (offset, count, &stalled, &err) == 0);
  CHECK (store_pread (buf, count, offset, &err) == 0);
  if (memcmp (buf, expect + offset, count) != 0) {
    for (uint32_t i = 0; i < count; i++)
      if (buf[i] != expect[offset + i]) {
        fprintf (stderr, "byte %" PRIu64 ": read %u, expected %u\n",
                 offset + i, buf[i], expect[offset + i]);
        break;
      }
    abort ();
  }
  free (buf);
}

/* The engine pulls block b: begin, then end with the source's data. */
static void *
pull_begin (uint64_t b)
{
  return blockmap_begin_pull (b);
}

static void
pull_end (void *token, uint64_t b)
{
  CHECK (blockmap_end_pull (&token, 1, source + b * BLOCK, 0) == 0);
}

static unsigned partial_seen;
static uint64_t partial_mask0;

static void
count_partial (uint64_t b, const uint64_t *written, void *opaque)
{
  partial_seen++;
  partial_mask0 = written[0];
}

/* The tests. */

/* A read of an ABSENT block fetches it once; then it is PRESENT. */
static void
test_demand_read (void)
{
  setup ();
  guest_read_check (5 * BLOCK + 100, 200);
  CHECK (upstream_reads == 1);
  CHECK (block_is_present (5));
  CHECK (shadow.stats.stalls == 1);
  guest_read_check (5 * BLOCK, BLOCK);
  CHECK (upstream_reads == 1);
  /* Two blocks in one request: one upstream read for the run. */
  guest_read_check (7 * BLOCK + BLOCK / 2, BLOCK);
  CHECK (upstream_reads == 2);
  CHECK (block_is_present (7) && block_is_present (8));
}

/* A write covering a whole ABSENT block makes it PRESENT with no fetch. */
static void
test_full_write (void)
{
  setup ();
  guest_write (3 * BLOCK, BLOCK, 0xaa);
  CHECK (block_is_present (3));
  CHECK (shadow.npartial == 0);
  CHECK (blockmap_begin_pull (3) == NULL);     /* nothing left to pull */
  guest_read_check (3 * BLOCK, BLOCK);
  CHECK (upstream_reads == 0);
}

/* Whole sectors of an ABSENT block: written at once, no stall; reading
 * them needs no fetch; reading the rest fetches the block and installs
 * the source's data around the guest's sectors.
 */
static void
test_partial_write_merge (void)
{
  setup ();
  guest_write (10 * BLOCK + 1024, 1024, 0x55);
  CHECK (shadow.stats.write_stalls == 0);
  CHECK (upstream_reads == 0);
  CHECK (!block_is_present (10));
  CHECK (shadow.npartial == 1);
  CHECK (blockmap_has_guest_data (10));
  guest_read_check (10 * BLOCK + 1024, 1024);
  CHECK (upstream_reads == 0);
  guest_read_check (10 * BLOCK, BLOCK);
  CHECK (upstream_reads == 1);
  CHECK (block_is_present (10));
  CHECK (shadow.npartial == 0);
}

/* A write that keeps old bytes of a sector nobody wrote needs the old
 * data first (a write stall); one into a sector the guest already owns
 * does not.
 */
static void
test_unaligned_write (void)
{
  setup ();
  guest_write (12 * BLOCK + 512, 512, 0x11);   /* owns sector 1 */
  guest_write (12 * BLOCK + 600, 10, 0x22);    /* inside sector 1 */
  CHECK (shadow.stats.write_stalls == 0);
  CHECK (upstream_reads == 0);
  guest_write (12 * BLOCK + 1500, 10, 0x33);   /* inside sector 2 */
  CHECK (shadow.stats.write_stalls == 1);
  CHECK (upstream_reads == 1);
  CHECK (block_is_present (12));
  guest_read_check (12 * BLOCK, BLOCK);
}

/* The rule the masks exist for: a pull already in flight when the guest
 * writes must not install the source's data over the guest's sectors.
 */
static void
test_write_during_pull (void)
{
  void *t;

  setup ();
  t = pull_begin (20);
  CHECK (t != NULL);
  CHECK (pull_begin (20) == NULL);             /* one owner */
  guest_write (20 * BLOCK + 2048, 1024, 0x77);
  CHECK (upstream_reads == 0);
  pull_end (t, 20);
  CHECK (block_is_present (20));
  guest_read_check (20 * BLOCK, BLOCK);

  /* The same with a write covering the whole block meanwhile. */
  t = pull_begin (21);
  guest_write (21 * BLOCK, BLOCK, 0x78);
  pull_end (t, 21);
  CHECK (block_is_present (21));
  guest_read_check (21 * BLOCK, BLOCK);
}

/* A failed pull leaves the block ABSENT and pullable, the guest's
 * sectors kept.
 */
static void
test_failed_pull (void)
{
  void *t;

  setup ();
  t = pull_begin (30);
  guest_write (30 * BLOCK, 512, 0x99);
  CHECK (blockmap_end_pull (&t, 1, NULL, EIO) == -1);
  CHECK (!block_is_present (30));
  CHECK (shadow.stats.fetch_errors == 1);
  t = pull_begin (30);
  CHECK (t != NULL);
  pull_end (t, 30);
  guest_read_check (30 * BLOCK, BLOCK);
}

/* Past SHADOW_MAX_PARTIAL partial blocks, a partial write to one more
 * block fetches it first instead (the journal has room for no more);
 * more writes to a block that is partial already are still free.
 */
static void
test_partial_bound (void)
{
  setup ();
  for (uint64_t b = 0; b < SHADOW_MAX_PARTIAL; b++)
    guest_write (b * BLOCK, 512, 0x42);
  CHECK (shadow.npartial == SHADOW_MAX_PARTIAL);
  CHECK (shadow.stats.write_stalls == 0 && upstream_reads == 0);
  guest_write (3 * BLOCK + 512, 512, 0x43);
  CHECK (shadow.stats.write_stalls == 0 && upstream_reads == 0);
  guest_write (SHADOW_MAX_PARTIAL * BLOCK, 512, 0x44);
  CHECK (shadow.stats.write_stalls == 1 && upstream_reads == 1);
  CHECK (block_is_present (SHADOW_MAX_PARTIAL));
  CHECK (shadow.npartial == SHADOW_MAX_PARTIAL);
  guest_read_check (SHADOW_MAX_PARTIAL * BLOCK, BLOCK);
  guest_read_check (3 * BLOCK, BLOCK);
  CHECK (shadow.npartial == SHADOW_MAX_PARTIAL - 1);
}

/* What a checkpoint persists: the written masks of partial blocks; and
 * what a restart loads back behaves like the writes themselves.
 */
static void
test_partial_journal (void)
{
  uint64_t mask;

  setup ();
  guest_write (40 * BLOCK + 3 * 512, 2 * 512, 0x61);
  partial_seen = 0;
  blockmap_foreach_partial (count_partial, NULL);
  CHECK (partial_seen == 1);
  CHECK (partial_mask0 == (UINT64_C (3) << 3));
  mask = partial_mask0;

  /* A restart: the shadow file keeps the guest's bytes, the state file
   * the mask.
   */
  blockmap_free ();
  shadow.present_count = 0;
  shadow.npartial = 0;
  CHECK (blockmap_init () == 0);
  CHECK (blockmap_load_partial (40, &mask) == 0);
  CHECK (shadow.npartial == 1);
  guest_read_check (40 * BLOCK + 3 * 512, 2 * 512);
  CHECK (upstream_reads == 0);
  guest_read_check (40 * BLOCK, BLOCK);
  CHECK (upstream_reads == 1);
}

/* Holes from the source: untouched blocks become PRESENT with no I/O;
 * a block with guest sectors gets zeros around them.
 */
static void
test_holes (void)
{
  uint64_t done;

  setup ();
  store_holes = true;
  memset (source + 50 * BLOCK, 0, 10 * BLOCK);
  memset (expect + 50 * BLOCK, 0, 10 * BLOCK);
  guest_write (53 * BLOCK + 512, 512, 0x5a);
  store_writes = 0;
  done = blockmap_install_holes (50, 10);
  CHECK (done == 9);
  CHECK (store_writes == 0);
  CHECK (!block_is_present (53));
  for (uint64_t b = 50; b < 60; b++)
    CHECK (block_is_present (b) == (b != 53));
  /* The shadow is not a hole there any more: the ordinary rules. */
  store_holes = false;
  done = blockmap_install_holes (53, 1);
  CHECK (done == 1);
  CHECK (block_is_present (53));
  guest_read_check (50 * BLOCK, 10 * BLOCK);
  CHECK (upstream_reads == 0);
}

/* The last block makes the shadow complete. */
static void
test_complete (void)
{
  setup ();
  for (uint64_t b = 0; b < NBLOCKS; b++) {
    void *t = pull_begin (b);
    CHECK (t != NULL);
    CHECK (!shadow.complete);
    pull_end (t, b);
  }
  CHECK (shadow.complete);
  CHECK (shadow.present_count == NBLOCKS);
  guest_write (7, 3, 0x01);
  guest_read_check (0, DISK);
  CHECK (upstream_reads == 0);
}

int
main (void)
{
  source = malloc (DISK);
  store = malloc (DISK);
  expect = malloc (DISK);
  CHECK (source && store && expect);

  test_demand_read ();
  test_full_write ();
  test_partial_write_merge ();
  test_unaligned_write ();
  test_write_during_pull ();
  test_failed_pull ();
  test_partial_bound ();
  test_partial_journal ();
  test_holes ();
  test_complete ();

  blockmap_free ();
  free (source);
  free (store);
  free (expect);
  printf ("test-blockmap: all passed\n");
  return 0;
}
