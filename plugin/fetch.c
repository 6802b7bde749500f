/* Fetching blocks from the source, the block map's rules for it: a
 * guest read (demand) or the engine's pull takes a block's fetch, the
 * data is installed only into the sectors no guest write has claimed,
 * and readers of a block being fetched wait for that one fetch.  Holes
 * of the source become PRESENT without any I/O.  The states and the
 * pending table are blockmap.c's.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-filter.h>

#include "array.h"
#include "bits.h"
#include "clock.h"
#include "shadow.h"
#include "blockmap.h"

/* Set with nbdkit -D shadow.fetch=1: log every block fetched from the
 * source (tests use it to prove nothing is fetched over guest data).
 */
NBDKIT_DLL_PUBLIC int shadow_debug_fetch = 0;

/* Upper bound of one upstream read when fetching a run of blocks. */
#define MAX_FETCH_RUN (8 * 1024 * 1024)

#define MAX_MASK_WORDS (SHADOW_MAX_BLOCK_SIZE / SHADOW_SECTOR / 64)

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
      bits_all_set (e->written, from / SHADOW_SECTOR,
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
      if (bit_test (claimed, i)) {
        i++;
        continue;
      }
      unsigned j = i;
      while (j < sectors && !bit_test (claimed, j))
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
int
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
static struct pending *
claim_for_install (uint64_t b)
{
  struct pending *e = NULL;
  if (store_pulls_paused ())
    return NULL;
  enum need need = acquire (b, 0, 0, true, &e);
  if (need == NEED_FETCH)
    return e;
  if (need == NEED_WAIT) {
    struct stripe *s = stripe_of (b);
    pthread_mutex_lock (&s->lock);
    put_ref (e);
    pthread_mutex_unlock (&s->lock);
  }
  return NULL;
}

struct pending *
blockmap_begin_pull (uint64_t b)
{
  struct pending *e = claim_for_install (b);

  /* The order pulls start in: what the policy chose. */
  if (e && shadow_debug_fetch)
    nbdkit_debug ("pull block %" PRIu64 " started", b);
  return e;
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

/* Source data read outside the engine (the fingerprint's samples at
 * start) installed as block b by the pulls' rules: nothing happens if
 * b is local or being fetched already.  True if it was installed.
 */
bool
blockmap_install_sample (uint64_t b, const void *data)
{
  void *token = claim_for_install (b);
  return token != NULL && blockmap_end_pull (&token, 1, data, 0) == 0;
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
          uint64_t *grown = array_grow (*skip, cap, *n, sizeof *grown, 64);
          if (grown == NULL)
            return -1;
          *skip = grown;
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
int
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
  if (*stalled)
    stats_stall (t0, time_us ());
  return r;
}

/* Copy into dst the guest's written sectors of block b that fall in
 * [from, to) of the block (dst holds those bytes), over what the source
 * said.
 */
static int
overlay_guest_sectors (uint64_t b, uint32_t from, uint32_t to, char *dst,
                       int *err)
{
  struct stripe *s = stripe_of (b);
  struct pending *e;
  int r = 0;

  pthread_mutex_lock (&s->lock);
  if ((e = lookup (b)) != NULL)
    for (unsigned i = from / SHADOW_SECTOR; i * SHADOW_SECTOR < to && r == 0; i++) {
      if (!bit_test (e->written, i))
        continue;
      uint32_t lo = i * SHADOW_SECTOR > from ? i * SHADOW_SECTOR : from;
      uint32_t hi = (i + 1) * SHADOW_SECTOR < to ? (i + 1) * SHADOW_SECTOR : to;
      r = store_pread (dst + (lo - from), hi - lo, block_offset (b) + lo, err);
    }
  pthread_mutex_unlock (&s->lock);
  return r;
}

/* A guest read around the shadow (its disk full, or a block the source
 * refused): local blocks from the shadow, the others straight from the
 * source (a run of them in one read, just the guest's bytes) with the
 * guest's own sectors laid over, and nothing installed.  The caller
 * counts the stall.
 */
int
blockmap_read_through (void *buf, uint32_t count, uint64_t offset, int *err)
{
  uint64_t first = offset >> shadow.block_shift;
  uint64_t last = (offset + count - 1) >> shadow.block_shift;
  char *p = buf;
  int r = 0;

  for (uint64_t b = first; b <= last && r == 0; ) {
    bool local = block_is_present (b);
    uint64_t end = b + 1;
    while (end <= last && block_is_present (end) == local)
      end++;
    uint64_t lo = block_offset (b) > offset ? block_offset (b) : offset;
    uint64_t hi = block_offset (end) < offset + count ? block_offset (end)
                                                      : offset + count;
    char *dst = p + (lo - offset);
    if (local)
      r = store_pread (dst, hi - lo, lo, err);
    else {
      r = upstream_pread (dst, hi - lo, lo, err);
      for (uint64_t k = b; k < end && r == 0; k++) {
        uint64_t bo = block_offset (k);
        uint32_t from = lo > bo ? lo - bo : 0;
        uint32_t to = hi - bo < block_length (k) ? hi - bo : block_length (k);
        r = overlay_guest_sectors (k, from, to, dst + (bo + from - lo), err);
      }
    }
    b = end;
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
