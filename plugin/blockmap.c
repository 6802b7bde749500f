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
 * I/O to the source, only across the bookkeeping around it.  This file
 * has the states, the pending table and guest writes; fetch.c fetches.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-filter.h>

#include "bits.h"
#include "clock.h"
#include "shadow.h"
#include "blockmap.h"

int
blockmap_init (void)
{
  uint64_t words = (shadow.nblocks + 63) / 64;
  uint64_t pages;

  pages = (words + SHADOW_PAGE_WORDS - 1) / SHADOW_PAGE_WORDS;
  shadow.bitmap_bytes = pages * 4096;
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
uint64_t
present_set_word (uint64_t w, uint64_t mask)
{
  uint64_t old = atomic_fetch_or_explicit (&shadow.present[w], mask,
                                           memory_order_release);
  uint64_t added = __builtin_popcountll (mask & ~old);
  if (added == 0)
    return 0;
  uint64_t page = w / SHADOW_PAGE_WORDS;
  atomic_fetch_or (&shadow.dirty_pages[page / 64], UINT64_C (1) << (page % 64));
  if (atomic_fetch_add (&shadow.present_count, added) + added == shadow.nblocks) {
    shadow.complete = true;
    housekeeping_wake ();
  }
  return added;
}

void
blockmap_mark_present (uint64_t b)
{
  present_set_word (b / 64, UINT64_C (1) << (b % 64));
}

/* Sector masks. */

unsigned
block_sectors (uint64_t b)
{
  return (block_length (b) + SHADOW_SECTOR - 1) / SHADOW_SECTOR;
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

struct stripe *
stripe_of (uint64_t b)
{
  return &shadow.stripes[b % SHADOW_STRIPES];
}

static struct pending **
bucket_of (uint64_t b)
{
  return &stripe_of (b)->buckets[(b / SHADOW_STRIPES) % SHADOW_BUCKETS];
}

struct pending *
lookup (uint64_t b)
{
  struct pending *e;
  for (e = *bucket_of (b); e; e = e->next)
    if (e->block == b)
      return e;
  return NULL;
}

struct pending *
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

void
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
void
settle (struct pending *e)
{
  struct stripe *s = stripe_of (e->block);
  if (e->in_table && !e->fetching && !e->installing && e->writers == 0) {
    unsigned n = block_sectors (e->block);
    if (e->fetched || bits_all_set (e->written, 0, n)) {
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
  bits_set_range (m, sc->full_from, sc->full_to);
  if (sc->head >= 0)
    bits_set_range (m, sc->head, sc->head + 1);
  if (sc->tail >= 0)
    bits_set_range (m, sc->tail, sc->tail + 1);
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
      ((sc->head >= 0 && !bit_test (e->claimed, sc->head)) ||
       (sc->tail >= 0 && !bit_test (e->claimed, sc->tail)));
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
  if (stalled)
    stats_stall (t0, time_us ());
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
