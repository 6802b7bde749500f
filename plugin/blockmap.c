/* Block states and the rules that keep guest data safe.
 *
 * A block is PRESENT when its bit in shadow.present is set: from then on
 * the shadow file is the only copy that matters and the data path reads
 * and writes it without taking any lock.  A block that is not PRESENT may
 * have a "pending" entry recording what is going on with it:
 *
 *  - a fetch from the source in flight (FETCHING): readers of the same
 *    block wait for that one fetch instead of issuing their own;
 *  - sectors written by the guest (the claimed/written masks): a partial
 *    write to an ABSENT block lands in the shadow at once, and when the
 *    source's data arrives it is installed only into the sectors the
 *    guest has not touched, so a late fetch never overwrites newer data;
 *  - fetched data being installed: a guest write to that block waits the
 *    few microseconds the local install takes (never for the source).
 *
 * Stripe locks protect the pending entries.  They are never held across
 * I/O to the source, only across the bookkeeping around it.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nbdkit-filter.h>

#include "shadow.h"

struct shadow shadow;

/* Set with nbdkit -D shadow.fetch=1: log every block fetched from the
 * source (tests use it to prove nothing is fetched over guest data).
 */
NBDKIT_DLL_PUBLIC int shadow_debug_fetch = 0;

/* Upper bound of one upstream read when fetching a run of blocks. */
#define MAX_FETCH_RUN (8 * 1024 * 1024)

#define MAX_MASK_WORDS (SHADOW_MAX_BLOCK_SIZE / SHADOW_SECTOR / 64)

uint64_t
time_us (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int
blockmap_init (void)
{
  uint64_t words = (shadow.nblocks + 63) / 64;
  uint64_t pages;

  shadow.bitmap_bytes = (words * 8 + 4095) & ~UINT64_C (4095);
  pages = shadow.bitmap_bytes / 4096;
  shadow.present = calloc (words, sizeof (uint64_t));
  shadow.dirty_pages = calloc ((pages + 63) / 64, sizeof (uint64_t));
  if (shadow.present == NULL || shadow.dirty_pages == NULL) {
    nbdkit_error ("shadow: cannot allocate the block map for %" PRIu64
                  " blocks", shadow.nblocks);
    return -1;
  }
  shadow.mask_words = (shadow.block_size / SHADOW_SECTOR + 63) / 64;
  for (unsigned i = 0; i < SHADOW_STRIPES; i++) {
    pthread_mutex_init (&shadow.stripes[i].lock, NULL);
    pthread_cond_init (&shadow.stripes[i].changed, NULL);
  }
  return 0;
}

void
blockmap_free (void)
{
  for (unsigned i = 0; i < SHADOW_STRIPES; i++) {
    struct stripe *s = &shadow.stripes[i];
    for (unsigned j = 0; j < SHADOW_BUCKETS; j++) {
      struct pending *e = s->buckets[j], *next;
      for (; e; e = next) {
        next = e->next;
        free (e);
      }
      s->buckets[j] = NULL;
    }
  }
  free (shadow.present);
  free ((void *) shadow.dirty_pages);
  shadow.present = NULL;
  shadow.dirty_pages = NULL;
}

/* Set the PRESENT bits of mask in bitmap word w; returns how many were
 * not set before.  A bit is set only after the block's data is in the
 * shadow file, so a checkpoint that copies the bitmap before syncing the
 * shadow never records a block whose data is not durable.
 */
static uint64_t
present_set_word (uint64_t w, uint64_t mask)
{
  uint64_t old = atomic_fetch_or_explicit (&shadow.present[w], mask,
                                           memory_order_release);
  uint64_t added = __builtin_popcountll (mask & ~old);
  if (added == 0)
    return 0;
  /* 4096 bytes of bitmap = 512 words per state-file page. */
  uint64_t page = w / 512;
  atomic_fetch_or (&shadow.dirty_pages[page / 64], UINT64_C (1) << (page % 64));
  if (atomic_fetch_add (&shadow.present_count, added) + added == shadow.nblocks) {
    shadow.complete = true;
    stats_wake ();
  }
  return added;
}

void
blockmap_mark_present (uint64_t b)
{
  present_set_word (b / 64, UINT64_C (1) << (b % 64));
}

/* Sector masks. */

static unsigned
block_sectors (uint64_t b)
{
  return (block_length (b) + SHADOW_SECTOR - 1) / SHADOW_SECTOR;
}

static bool
mask_bit (const uint64_t *m, unsigned i)
{
  return (m[i / 64] >> (i % 64)) & 1;
}

static void
mask_set (uint64_t *m, unsigned from, unsigned to)
{
  for (unsigned i = from; i < to; i++)
    m[i / 64] |= UINT64_C (1) << (i % 64);
}

static bool
mask_all (const uint64_t *m, unsigned from, unsigned to)
{
  for (unsigned i = from; i < to; i++)
    if (!mask_bit (m, i))
      return false;
  return true;
}

static bool
mask_any (const uint64_t *m)
{
  for (unsigned i = 0; i < shadow.mask_words; i++)
    if (m[i])
      return true;
  return false;
}

/* The pending table. */

static struct stripe *
stripe_of (uint64_t b)
{
  return &shadow.stripes[b % SHADOW_STRIPES];
}

static struct pending **
bucket_of (uint64_t b)
{
  return &stripe_of (b)->buckets[(b / SHADOW_STRIPES) % SHADOW_BUCKETS];
}

static struct pending *
lookup (uint64_t b)
{
  struct pending *e;
  for (e = *bucket_of (b); e; e = e->next)
    if (e->block == b)
      return e;
  return NULL;
}

static struct pending *
lookup_or_create (uint64_t b)
{
  struct pending *e = lookup (b);
  if (e)
    return e;
  /* The two masks follow the struct in the same allocation. */
  e = calloc (1, sizeof *e + 2 * shadow.mask_words * sizeof (uint64_t));
  if (e == NULL)
    return NULL;
  e->block = b;
  e->refs = 1;
  e->in_table = true;
  e->claimed = (uint64_t *) (e + 1);
  e->written = e->claimed + shadow.mask_words;
  e->next = *bucket_of (b);
  *bucket_of (b) = e;
  return e;
}

static void
put_ref (struct pending *e)
{
  if (--e->refs == 0)
    free (e);
}

static void
detach (struct pending *e)
{
  struct pending **p;
  for (p = bucket_of (e->block); *p != e; p = &(*p)->next)
    ;
  *p = e->next;
  e->in_table = false;
  if (e->counted_partial)
    atomic_fetch_sub (&shadow.npartial, 1);
  put_ref (e);
}

/* Called with the stripe locked whenever an entry changed: finish the
 * block if nothing is left to wait for, or drop an entry that records
 * nothing any more.  Wakes everyone waiting on the stripe.
 */
static void
settle (struct pending *e)
{
  struct stripe *s = stripe_of (e->block);
  if (e->in_table && !e->fetching && !e->installing && e->writers == 0) {
    unsigned n = block_sectors (e->block);
    if (e->fetched || mask_all (e->written, 0, n)) {
      blockmap_mark_present (e->block);
      detach (e);
    }
    else if (!mask_any (e->claimed) && e->refs == 1)
      detach (e);
  }
  pthread_cond_broadcast (&s->changed);
}

int
blockmap_load_partial (uint64_t b, const uint64_t *written)
{
  struct pending *e = lookup_or_create (b);
  if (e == NULL)
    return -1;
  memcpy (e->written, written, shadow.mask_words * sizeof (uint64_t));
  memcpy (e->claimed, written, shadow.mask_words * sizeof (uint64_t));
  if (!e->counted_partial) {
    e->counted_partial = true;
    atomic_fetch_add (&shadow.npartial, 1);
  }
  return 0;
}

void
blockmap_foreach_partial (partial_fn fn, void *opaque)
{
  for (unsigned i = 0; i < SHADOW_STRIPES; i++) {
    struct stripe *s = &shadow.stripes[i];
    pthread_mutex_lock (&s->lock);
    for (unsigned j = 0; j < SHADOW_BUCKETS; j++)
      for (struct pending *e = s->buckets[j]; e; e = e->next)
        if (!e->fetched && mask_any (e->written))
          fn (e->block, e->written, opaque);
    pthread_mutex_unlock (&s->lock);
  }
}

/* Fetching. */

/* What one request needs done about one block. */
enum need { NEED_NOTHING, NEED_WAIT, NEED_FETCH, NEED_ERROR };

/* Decide, under the stripe lock, whether the bytes [from, to) of block
 * b can be read from the shadow now, must wait for a fetch already in
 * flight, or need a fetch by this thread (which then owns it).  With
 * whole, the guest's sectors do not count: the block itself is wanted.
 * On NEED_WAIT and NEED_FETCH *ep holds a reference to the entry.
 */
static enum need
acquire (uint64_t b, uint32_t from, uint32_t to, bool whole,
         struct pending **ep)
{
  struct stripe *s = stripe_of (b);
  struct pending *e;
  enum need need;

  pthread_mutex_lock (&s->lock);
  if (block_is_present (b)) {
    need = NEED_NOTHING;
    goto out;
  }
  e = lookup (b);
  if (!whole && e &&
      mask_all (e->written, from / SHADOW_SECTOR,
                (to + SHADOW_SECTOR - 1) / SHADOW_SECTOR)) {
    need = NEED_NOTHING;
    goto out;
  }
  if (e == NULL && (e = lookup_or_create (b)) == NULL) {
    need = NEED_ERROR;
    goto out;
  }
  if (e->fetching || e->installing)
    need = NEED_WAIT;
  else if (e->fetched)          /* installed, a guest write still running */
    need = NEED_NOTHING;
  else {
    e->fetching = true;
    e->fetch_error = 0;
    need = NEED_FETCH;
  }
  if (need != NEED_NOTHING) {
    e->refs++;
    *ep = e;
  }
 out:
  pthread_mutex_unlock (&s->lock);
  return need;
}

/* Where fetched data goes: stretches of consecutive shadow bytes, each
 * all data or all zeros, merged across sectors and blocks so that a run
 * of blocks costs one write instead of one per block.
 */
struct stretch {
  const char *data;             /* NULL: zeros (punch a hole) */
  uint64_t offset, end;
};

static int
stretch_flush (struct stretch *st, int *err)
{
  int r = 0;
  if (st->end > st->offset && st->data) {
    r = store_install (st->data, st->end - st->offset, st->offset, err);
  }
  else if (st->end > st->offset)
    r = store_zero (st->end - st->offset, st->offset, err);
  st->offset = st->end = 0;
  return r;
}

/* Add [offset, offset+len) with its data p (NULL: zeros) to the stretch,
 * writing out what came before when it does not continue it.
 */
static int
stretch_add (struct stretch *st, const char *p, uint64_t offset, uint32_t len,
             int *err)
{
  bool zero = p == NULL || (p[0] == 0 && memcmp (p, p + 1, len - 1) == 0);
  int r = 0;

  if (st->end == offset && st->end > st->offset &&
      (st->data == NULL) == zero) {
    st->end += len;
    return 0;
  }
  r = stretch_flush (st, err);
  st->data = zero ? NULL : p;
  st->offset = offset;
  st->end = offset + len;
  return r;
}

/* Copy the fetched data of the consecutive blocks ents[0..n-1] into the
 * shadow, skipping every sector the guest has claimed.  Runs of zeros
 * become holes, so sparse disks stay sparse; data NULL means the source
 * said the blocks are holes.  Each block is marked installing before
 * its sectors are chosen: a guest write to it waits until the whole run
 * is written (a local copy of at most a few MiB, never the source).
 * Consumes the references; ents[i] is cleared for a block dropped early.
 */
static int
install_run (struct pending **ents, uint64_t n, const char *data, int *err)
{
  uint64_t base = block_offset (ents[0]->block);
  struct stretch st = { 0 };
  int r = 0;

  for (uint64_t k = 0; k < n; k++) {
    struct pending *e = ents[k];
    struct stripe *s = stripe_of (e->block);
    uint64_t claimed[MAX_MASK_WORDS];
    unsigned sectors = block_sectors (e->block);
    uint32_t len = block_length (e->block);
    uint64_t boff = block_offset (e->block);

    pthread_mutex_lock (&s->lock);
    e->fetching = false;
    if (!e->in_table) {         /* the guest wrote all of it meanwhile */
      settle (e);
      put_ref (e);
      pthread_mutex_unlock (&s->lock);
      ents[k] = NULL;
      continue;
    }
    e->installing = true;
    memcpy (claimed, e->claimed, shadow.mask_words * sizeof (uint64_t));
    pthread_mutex_unlock (&s->lock);

    for (unsigned i = 0; i < sectors && r == 0; ) {
      if (mask_bit (claimed, i)) {
        i++;
        continue;
      }
      unsigned j = i;
      while (j < sectors && !mask_bit (claimed, j))
        j++;
      uint32_t from = i * SHADOW_SECTOR;
      uint32_t to = j * SHADOW_SECTOR < len ? j * SHADOW_SECTOR : len;
      r = stretch_add (&st, data ? data + (boff - base) + from : NULL,
                       boff + from, to - from, err);
      i = j;
    }
  }
  if (r == 0)
    r = stretch_flush (&st, err);

  for (uint64_t k = 0; k < n; k++) {
    struct pending *e = ents[k];
    if (e == NULL)
      continue;
    struct stripe *s = stripe_of (e->block);
    pthread_mutex_lock (&s->lock);
    e->installing = false;
    if (r == 0)
      e->fetched = true;
    else
      e->fetch_error = *err;
    settle (e);
    put_ref (e);
    pthread_mutex_unlock (&s->lock);
  }
  return r;
}

static void
fail_fetch (struct pending *e, int err)
{
  struct stripe *s = stripe_of (e->block);
  pthread_mutex_lock (&s->lock);
  e->fetching = false;
  e->fetch_error = err;
  atomic_fetch_add (&shadow.stats.fetch_errors, 1);
  settle (e);
  put_ref (e);
  pthread_mutex_unlock (&s->lock);
}

/* Fetch the blocks ents[0..n-1] (consecutive, all owned by this thread)
 * with one upstream read, then install each.  Always consumes the
 * references, whatever happens.
 */
static int
fetch_run (struct pending **ents, uint64_t n, int *err)
{
  uint64_t first = ents[0]->block;
  uint64_t off = block_offset (first);
  uint64_t end = block_offset (ents[n - 1]->block) + block_length (ents[n - 1]->block);
  char *buf = malloc (end - off);
  int r = -1;

  if (buf == NULL)
    *err = ENOMEM;
  else
    r = upstream_pread (buf, end - off, off, err);
  if (r == -1) {
    for (uint64_t i = 0; i < n; i++)
      fail_fetch (ents[i], *err);
    free (buf);
    return -1;
  }
  atomic_fetch_add_explicit (&shadow.stats.bytes_fetched, end - off,
                             memory_order_relaxed);
  if (shadow_debug_fetch)
    for (uint64_t i = 0; i < n; i++)
      nbdkit_debug ("fetch block %" PRIu64, ents[i]->block);
  r = install_run (ents, n, buf, err);
  free (buf);
  return r;
}

/* Background pulls (the engine): take ownership of fetching block b if
 * nobody has it and it is not local yet; NULL otherwise.
 */
struct pending *
blockmap_begin_pull (uint64_t b)
{
  struct pending *e = NULL;
  enum need need = acquire (b, 0, 0, true, &e);
  if (need == NEED_FETCH) {
    /* The order pulls start in: what the policy chose. */
    if (shadow_debug_fetch)
      nbdkit_debug ("pull block %" PRIu64 " started", b);
    return e;
  }
  if (need == NEED_WAIT) {
    struct stripe *s = stripe_of (b);
    pthread_mutex_lock (&s->lock);
    put_ref (e);
    pthread_mutex_unlock (&s->lock);
  }
  return NULL;
}

/* The pull of the consecutive blocks tokens[0..n-1] (from begin_pull)
 * ended: with their data, with NULL for holes, or with an error (the
 * blocks stay ABSENT and can be pulled again).  The data of a run is
 * installed with one write per stretch, not one per block.
 */
int
blockmap_end_pull (void *const *tokens, uint64_t n, const void *data,
                   int error)
{
  struct pending *ents[64];
  const char *p = data;
  int err, r = 0;

  for (uint64_t i = 0; i < n; ) {
    uint64_t m = n - i < 64 ? n - i : 64;
    uint64_t len = 0;
    for (uint64_t k = 0; k < m; k++) {
      ents[k] = tokens[i + k];
      len += block_length (ents[k]->block);
      if (shadow_debug_fetch && !error)
        nbdkit_debug ("fetch block %" PRIu64 " (pull)", ents[k]->block);
    }
    if (error) {
      for (uint64_t k = 0; k < m; k++)
        fail_fetch (ents[k], error);
      r = -1;
    }
    else {
      if (p)
        atomic_fetch_add_explicit (&shadow.stats.bytes_pulled, len,
                                   memory_order_relaxed);
      if (install_run (ents, m, p, &err) == -1)
        r = -1;
      if (p)
        p += len;
    }
    i += m;
  }
  return r;
}

static int
compare_u64 (const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
  return x < y ? -1 : x > y;
}

/* The blocks of [first, end) that have a pending entry, sorted, into
 * *skip (grown as needed; *n of them).  Called with every stripe
 * locked.  -1: out of memory.
 */
static int
pending_blocks_in (uint64_t first, uint64_t end, uint64_t **skip,
                   size_t *cap, size_t *n)
{
  *n = 0;
  for (unsigned i = 0; i < SHADOW_STRIPES; i++)
    for (unsigned j = 0; j < SHADOW_BUCKETS; j++)
      for (struct pending *e = shadow.stripes[i].buckets[j]; e; e = e->next) {
        if (e->block < first || e->block >= end)
          continue;
        if (*n == *cap) {
          uint64_t *grown = realloc (*skip, (*cap ? 2 * *cap : 64) * sizeof *grown);
          if (grown == NULL)
            return -1;
          *skip = grown;
          *cap = *cap ? 2 * *cap : 64;
        }
        (*skip)[(*n)++] = e->block;
      }
  if (*n > 1)
    qsort (*skip, *n, sizeof **skip, compare_u64);
  return 0;
}

/* Mark the untouched blocks of [first, end) PRESENT without any I/O,
 * for blocks whose shadow range is a hole: with every stripe locked, a
 * block with no pending entry has no guest write in progress or done,
 * so the hole is its content.  Pending blocks (a guest's sectors, a
 * fetch) are left to the ordinary rules.  A bitmap word at a time: a
 * sparse multi-terabyte disk has tens of millions of hole blocks.
 * Returns the blocks marked.
 */
#define HOLE_CHUNK (UINT64_C (1) << 20)

static uint64_t
mark_untouched_holes (uint64_t first, uint64_t end)
{
  uint64_t marked = 0, *skip = NULL;
  size_t nskip, cap = 0;

  for (uint64_t b = first; b < end; ) {
    uint64_t chunk_end = end - b > HOLE_CHUNK ? b + HOLE_CHUNK : end;
    int r;

    for (unsigned i = 0; i < SHADOW_STRIPES; i++)
      pthread_mutex_lock (&shadow.stripes[i].lock);
    r = pending_blocks_in (b, chunk_end, &skip, &cap, &nskip);
    for (size_t k = 0; r == 0 && b < chunk_end; ) {
      uint64_t w = b / 64, hi = (w + 1) * 64 < chunk_end ? (w + 1) * 64 : chunk_end;
      uint64_t m = hi - b == 64 ? ~UINT64_C (0)
                   : ((UINT64_C (1) << (hi - b)) - 1) << (b % 64);
      for (; k < nskip && skip[k] < hi; k++)
        m &= ~(UINT64_C (1) << (skip[k] % 64));
      marked += present_set_word (w, m);
      b = hi;
    }
    for (unsigned i = SHADOW_STRIPES; i-- > 0; )
      pthread_mutex_unlock (&shadow.stripes[i].lock);
    if (r == -1)
      break;                    /* those left are pulled as usual */
  }
  free (skip);
  return marked;
}

/* The source says blocks [first, first+n) are holes: make them PRESENT
 * as zeros.  Where the shadow file is a hole too (always, on a first
 * start) that needs no I/O at all, so a sparse multi-terabyte disk is
 * covered in seconds; blocks over shadow data (left by a crash, or
 * written by the guest) go through the ordinary pull rules, which punch
 * around the guest's sectors.  Returns the blocks made PRESENT here.
 */
uint64_t
blockmap_install_holes (uint64_t first, uint64_t n)
{
  uint64_t b = first, end = first + n, done = 0;

  while (b < end) {
    uint64_t run_end, stop = block_offset (end - 1) + block_length (end - 1);
    bool data = store_is_data (block_offset (b), stop, &run_end);
    /* Blocks wholly inside the run; a block straddling its end goes
     * with the data side.
     */
    uint64_t next = data ? ((run_end - 1) >> shadow.block_shift) + 1
                         : (run_end == stop ? end : run_end >> shadow.block_shift);
    if (next <= b)
      next = b + 1, data = true;
    if (!data)
      done += mark_untouched_holes (b, next);
    else
      for (; b < next; b++) {
        void *e = blockmap_begin_pull (b);
        if (e && blockmap_end_pull (&e, 1, NULL, 0) == 0)
          done++;
      }
    b = next;
  }
  return done;
}

/* Wait until the fetch that e is waiting on is over.  Consumes the
 * reference.
 */
static int
wait_fetch (struct pending *e, int *err)
{
  struct stripe *s = stripe_of (e->block);
  int r = 0;

  pthread_mutex_lock (&s->lock);
  while (e->fetching || e->installing)
    pthread_cond_wait (&s->changed, &s->lock);
  if (!block_is_present (e->block) && !e->fetched && e->in_table) {
    *err = e->fetch_error ? e->fetch_error : EIO;
    r = -1;
  }
  put_ref (e);
  pthread_mutex_unlock (&s->lock);
  return r;
}

/* Make every block of [offset, offset+count) readable from the shadow:
 * start fetches for the blocks nobody fetches yet (consecutive ones in
 * one upstream read), then wait for those fetched by others.  Returns
 * with *stalled set if the request had to wait on the source.  With
 * whole, each block is fetched even where the guest's writes cover the
 * range (used to prefetch).  With no_wait, fetches already in flight
 * are not waited for.  *since is when the slow path started.
 */
static int
make_readable (uint64_t offset, uint32_t count, bool whole, bool no_wait,
               bool *stalled, uint64_t *since, int *err)
{
  uint64_t first = offset >> shadow.block_shift;
  uint64_t last = (offset + count - 1) >> shadow.block_shift;
  uint64_t n = last - first + 1, i;
  struct pending **ents;
  enum need *needs;
  int r = 0;

  *stalled = false;
  if (blocks_are_present (first, last))
    return 0;
  *since = time_us ();

  ents = calloc (n, sizeof *ents);
  needs = calloc (n, sizeof *needs);
  if (ents == NULL || needs == NULL) {
    free (ents);
    free (needs);
    *err = ENOMEM;
    return -1;
  }

  for (i = 0; i < n; i++) {
    uint64_t b = first + i;
    uint64_t boff = block_offset (b);
    uint32_t from = offset > boff ? offset - boff : 0;
    uint64_t end = offset + count - boff;
    uint32_t to = end < block_length (b) ? end : block_length (b);
    needs[i] = acquire (b, from, to, whole, &ents[i]);
    if (needs[i] == NEED_ERROR) {
      *err = ENOMEM;
      r = -1;
    }
    else if (needs[i] != NEED_NOTHING)
      *stalled = true;
  }

  /* Fetch our own blocks first, in runs, so that the waits below
   * overlap with fetches other threads are doing.
   */
  for (i = 0; i < n; ) {
    if (needs[i] != NEED_FETCH) {
      i++;
      continue;
    }
    uint64_t j = i + 1;
    while (j < n && needs[j] == NEED_FETCH &&
           (j - i + 1) * shadow.block_size <= MAX_FETCH_RUN)
      j++;
    if (fetch_run (&ents[i], j - i, err) == -1)
      r = -1;
    i = j;
  }
  for (i = 0; i < n; i++) {
    if (needs[i] != NEED_WAIT)
      continue;
    if (no_wait) {
      struct stripe *s = stripe_of (ents[i]->block);
      pthread_mutex_lock (&s->lock);
      put_ref (ents[i]);
      pthread_mutex_unlock (&s->lock);
    }
    else if (wait_fetch (ents[i], err) == -1)
      r = -1;
  }
  free (ents);
  free (needs);
  return r;
}

/* For a guest read: a request that had to wait is one stall, however
 * many blocks it waited for.
 */
int
blockmap_prepare_read (uint64_t offset, uint32_t count, bool *stalled,
                       int *err)
{
  uint64_t t0;
  int r = make_readable (offset, count, false, false, stalled, &t0, err);
  if (*stalled) {
    atomic_fetch_add (&shadow.stats.stalls, 1);
    atomic_fetch_add (&shadow.stats.stall_us, time_us () - t0);
  }
  return r;
}

int
blockmap_cache (uint64_t offset, uint32_t count, int *err)
{
  bool stalled;
  uint64_t since;
  return make_readable (offset, count, true, true, &stalled, &since, err);
}

/* Writes. */

/* The sectors a write of bytes [from, to) of block b touches: those it
 * covers completely, and the (at most two) it covers in part.  A partly
 * covered sector keeps some old bytes, so it needs the old data unless
 * the guest already owns it.
 */
struct sectors {
  unsigned full_from, full_to;  /* fully covered: [full_from, full_to) */
  int head, tail;               /* partly covered sector, or -1 */
};

static struct sectors
sectors_of (uint64_t b, uint32_t from, uint32_t to)
{
  uint32_t len = block_length (b);
  struct sectors sc;

  sc.full_from = (from + SHADOW_SECTOR - 1) / SHADOW_SECTOR;
  sc.full_to = to == len ? block_sectors (b) : to / SHADOW_SECTOR;
  if (sc.full_to < sc.full_from)
    sc.full_to = sc.full_from;
  sc.head = from % SHADOW_SECTOR ? (int) (from / SHADOW_SECTOR) : -1;
  sc.tail = (to != len && to % SHADOW_SECTOR) ? (int) (to / SHADOW_SECTOR) : -1;
  return sc;
}

static void
mark_sectors (uint64_t *m, const struct sectors *sc)
{
  mask_set (m, sc->full_from, sc->full_to);
  if (sc->head >= 0)
    mask_set (m, sc->head, sc->head + 1);
  if (sc->tail >= 0)
    mask_set (m, sc->tail, sc->tail + 1);
}

/* Claim the sectors of block b that a guest write is about to change,
 * so that no fetch installs the source's data over them.  Returns the
 * entry (with a reference) or NULL when the block is PRESENT and no
 * claim is needed.  When the write keeps old bytes of a sector the
 * guest does not own, or too many blocks are partial already, the
 * block is fetched first (a write stall).
 */
static int
claim (uint64_t b, const struct sectors *sc, struct pending **ep,
       bool *stalled, int *err)
{
  struct stripe *s = stripe_of (b);
  struct pending *e;

  *ep = NULL;
  pthread_mutex_lock (&s->lock);
  for (;;) {
    if (block_is_present (b))
      break;
    if ((e = lookup_or_create (b)) == NULL) {
      pthread_mutex_unlock (&s->lock);
      *err = ENOMEM;
      return -1;
    }
    if (e->installing) {
      pthread_cond_wait (&s->changed, &s->lock);
      continue;
    }
    bool needs_old = !e->fetched &&
      ((sc->head >= 0 && !mask_bit (e->claimed, sc->head)) ||
       (sc->tail >= 0 && !mask_bit (e->claimed, sc->tail)));
    bool too_many = !e->fetched && !e->counted_partial &&
      atomic_load (&shadow.npartial) >= SHADOW_MAX_PARTIAL;
    if (needs_old || too_many) {
      /* Fetch the block (or wait for the fetch in flight), then look
       * again: it is then fetched or PRESENT.
       */
      bool own = !e->fetching;
      e->refs++;
      if (own) {
        e->fetching = true;
        e->fetch_error = 0;
      }
      pthread_mutex_unlock (&s->lock);
      if (!*stalled)
        atomic_fetch_add (&shadow.stats.write_stalls, 1);
      *stalled = true;
      if ((own ? fetch_run (&e, 1, err) : wait_fetch (e, err)) == -1)
        return -1;
      pthread_mutex_lock (&s->lock);
      continue;
    }
    mark_sectors (e->claimed, sc);
    e->writers++;
    e->refs++;
    if (!e->fetched && !e->counted_partial) {
      e->counted_partial = true;
      atomic_fetch_add (&shadow.npartial, 1);
    }
    *ep = e;
    break;
  }
  pthread_mutex_unlock (&s->lock);
  return 0;
}

/* The write to the claimed sectors is done (or failed: the sectors stay
 * claimed, their content is the guest's business now).
 */
static void
commit (struct pending *e, const struct sectors *sc, bool ok)
{
  struct stripe *s = stripe_of (e->block);
  pthread_mutex_lock (&s->lock);
  if (ok)
    mark_sectors (e->written, sc);
  e->writers--;
  settle (e);
  put_ref (e);
  pthread_mutex_unlock (&s->lock);
}

/* Write (or zero, with buf NULL) [offset, offset+count) into the shadow
 * following the block rules.  Never waits for the source unless old
 * bytes of a sector are needed.
 */
int
blockmap_write (const void *buf, uint32_t count, uint64_t offset,
                bool is_zero, int *err)
{
  uint64_t first = offset >> shadow.block_shift;
  uint64_t last = (offset + count - 1) >> shadow.block_shift;
  uint64_t n = last - first + 1, i;
  struct pending **ents = NULL;
  struct sectors *scs = NULL;
  bool stalled = false;
  uint64_t t0 = 0;
  int r = 0;

  if (!blocks_are_present (first, last)) {
    ents = calloc (n, sizeof *ents);
    scs = calloc (n, sizeof *scs);
    if (ents == NULL || scs == NULL) {
      free (ents);
      free (scs);
      *err = ENOMEM;
      return -1;
    }
    t0 = time_us ();
    for (i = 0; i < n && r == 0; i++) {
      uint64_t b = first + i;
      uint64_t boff = block_offset (b);
      uint32_t from = offset > boff ? offset - boff : 0;
      uint64_t end = offset + count - boff;
      uint32_t to = end < block_length (b) ? end : block_length (b);
      scs[i] = sectors_of (b, from, to);
      r = claim (b, &scs[i], &ents[i], &stalled, err);
    }
  }

  if (r == 0)
    r = is_zero ? store_zero (count, offset, err)
                : store_pwrite (buf, count, offset, err);

  if (ents) {
    for (i = 0; i < n; i++)
      if (ents[i])
        commit (ents[i], &scs[i], r == 0);
    free (ents);
    free (scs);
  }
  if (stalled) {
    atomic_fetch_add (&shadow.stats.stalls, 1);
    atomic_fetch_add (&shadow.stats.stall_us, time_us () - t0);
  }
  else
    atomic_fetch_add_explicit (&shadow.stats.hits, 1, memory_order_relaxed);
  return r;
}

/* Does the guest own sectors of this not-yet-PRESENT block?  (Extents
 * must then call it data, whatever the source says.)
 */
bool
blockmap_has_guest_data (uint64_t b)
{
  struct stripe *s = stripe_of (b);
  struct pending *e;
  bool r;

  pthread_mutex_lock (&s->lock);
  e = lookup (b);
  r = e && mask_any (e->claimed);
  pthread_mutex_unlock (&s->lock);
  return r;
}
