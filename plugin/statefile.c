/* The state file: which blocks of the shadow are PRESENT, made durable.
 *
 * It is authoritative: after a crash the filter trusts it, not Redis and
 * not the shadow file.  Layout (little-endian, 4 KiB pages):
 *
 *   page 0      header: geometry, fingerprint of the source, SHA-256
 *   bitmap      one bit per block, 1 = PRESENT; updated in place
 *   journal     two slots holding the sector masks of partial blocks
 *
 * Why this is crash-safe: bits only ever go from 0 to 1, and a
 * checkpoint copies the bitmap *before* syncing the shadow file, so any
 * bit that reaches the disk belongs to a block whose data is durable; a
 * torn page mixes old and new bits, each of them true.  The partial
 * masks are not monotonic in that way (a block leaves the journal when
 * it completes), so they are written to the older of two checksummed
 * slots and the newest valid slot wins.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include <nbdkit-filter.h>

#include "fullio.h"
#include "shadow.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the state file format is written for little-endian hosts"
#endif

#define STATE_MAGIC "NBDSHST1"
#define JOURNAL_MAGIC "NBDSHJ01"
#define STATE_VERSION 1
#define PAGE 4096

struct state_header {
  char magic[8];
  uint32_t version;
  uint32_t block_size;
  uint64_t disk_size;
  uint64_t nblocks;
  uint64_t bitmap_offset;
  uint64_t bitmap_bytes;
  uint64_t journal_offset;
  uint32_t journal_slot_bytes;
  uint32_t max_partial;
  unsigned char fingerprint[32];
  unsigned char checksum[32];   /* SHA-256 of everything above */
};

struct journal_head {
  char magic[8];
  uint64_t seq;
  uint32_t count;
  uint32_t mask_words;
  unsigned char checksum[32];   /* SHA-256 of seq, count, mask_words, records */
};

/* Set with nbdkit -D shadow.checkpoint_pause_ms=N: sleep N ms between
 * a checkpoint's two snapshots, so a test can make a block complete
 * in between (test-shadow-crash-checkpoint.sh).
 */
NBDKIT_DLL_PUBLIC int shadow_debug_checkpoint_pause_ms = 0;

static struct state_header header;
static pthread_mutex_t checkpoint_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t journal_seq;
static uint32_t journal_last_count;

static void
sha256 (const void *data, size_t len, unsigned char out[32])
{
  EVP_Digest (data, len, out, NULL, EVP_sha256 (), NULL);
}

static size_t
record_bytes (void)
{
  return sizeof (uint64_t) * (1 + shadow.mask_words);
}

/* Before the fork: open the state file if there is one and check that it
 * is ours and fits the parameters.  Geometry checks against the source
 * come later, in statefile_attach.
 */
int
statefile_open (void)
{
  struct stat st;
  unsigned char sum[32];

  shadow.state_fd = open (shadow.state_file, O_RDWR | O_CLOEXEC);
  if (shadow.state_fd == -1 && errno != ENOENT) {
    nbdkit_error ("shadow-state: %s: %m", shadow.state_file);
    return -1;
  }
  if (shadow.state_fd == -1) {
    /* A shadow file with data but no state would be trusted blindly or
     * thrown away; neither is acceptable, so refuse.
     */
    shadow.state_fresh = true;
    if (fstat (shadow.shadow_fd, &st) == 0 && st.st_blocks > 0) {
      nbdkit_error ("shadow-file: %s already holds data but shadow-state %s "
                    "does not exist (remove the shadow file or give its "
                    "state file)", shadow.shadow_file, shadow.state_file);
      return -1;
    }
    return 0;
  }

  if (full_pread (shadow.state_fd, &header, sizeof header, 0) != (ssize_t) sizeof header ||
      memcmp (header.magic, STATE_MAGIC, 8) != 0) {
    nbdkit_error ("shadow-state: %s is not an nbdshadow state file",
                  shadow.state_file);
    return -1;
  }
  sha256 (&header, offsetof (struct state_header, checksum), sum);
  if (header.version != STATE_VERSION ||
      memcmp (sum, header.checksum, 32) != 0) {
    nbdkit_error ("shadow-state: %s is corrupt or of an unknown version",
                  shadow.state_file);
    return -1;
  }
  if (header.block_size != shadow.block_size) {
    nbdkit_error ("shadow-state: %s was made with shadow-block-size=%" PRIu32
                  ", not %" PRIu32, shadow.state_file, header.block_size,
                  shadow.block_size);
    return -1;
  }
  if (fstat (shadow.state_fd, &st) == -1 ||
      (uint64_t) st.st_size < header.journal_offset + 2 * (uint64_t) header.journal_slot_bytes) {
    nbdkit_error ("shadow-state: %s is truncated", shadow.state_file);
    return -1;
  }
  /* A lost or replaced shadow file must not be served as if it held
   * the blocks the state says are local.
   */
  if (fstat (shadow.shadow_fd, &st) == -1 ||
      (uint64_t) st.st_size != header.disk_size) {
    nbdkit_error ("shadow-file: %s does not belong to shadow-state %s "
                  "(its size is not the disk's %" PRIu64 " bytes)",
                  shadow.shadow_file, shadow.state_file, header.disk_size);
    return -1;
  }
  return 0;
}

static void
set_geometry (uint64_t disk_size)
{
  shadow.disk_size = disk_size;
  shadow.nblocks = (disk_size + shadow.block_size - 1) >> shadow.block_shift;
}

/* Write a new state file next to the final name and rename it into
 * place, so that a crash leaves either no state file or a whole one.
 */
static int
create_state (const unsigned char *fingerprint)
{
  char *tmp = NULL, *dir = NULL;
  int fd = -1, dfd = -1, r = -1;

  memset (&header, 0, sizeof header);
  memcpy (header.magic, STATE_MAGIC, 8);
  header.version = STATE_VERSION;
  header.block_size = shadow.block_size;
  header.disk_size = shadow.disk_size;
  header.nblocks = shadow.nblocks;
  header.bitmap_offset = PAGE;
  header.bitmap_bytes = shadow.bitmap_bytes;
  header.journal_offset = PAGE + shadow.bitmap_bytes;
  header.journal_slot_bytes =
    (sizeof (struct journal_head) + SHADOW_MAX_PARTIAL * record_bytes ()
     + PAGE - 1) & ~(PAGE - 1);
  header.max_partial = SHADOW_MAX_PARTIAL;
  memcpy (header.fingerprint, fingerprint, 32);
  sha256 (&header, offsetof (struct state_header, checksum), header.checksum);

  if (asprintf (&tmp, "%s.tmp", shadow.state_file) == -1 ||
      (dir = strdup (shadow.state_file)) == NULL) {
    nbdkit_error ("shadow-state: %m");
    goto out;
  }
  fd = open (tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd == -1 ||
      full_pwrite (fd, &header, sizeof header, 0) == -1 ||
      ftruncate (fd, header.journal_offset + 2 * (uint64_t) header.journal_slot_bytes) == -1 ||
      fsync (fd) == -1 ||
      rename (tmp, shadow.state_file) == -1) {
    nbdkit_error ("shadow-state: %s: %m", tmp);
    goto out;
  }
  dfd = open (dirname (dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0)
    fsync (dfd);
  shadow.state_fd = fd;
  fd = -1;
  r = 0;
 out:
  if (fd >= 0) {
    close (fd);
    unlink (tmp);
  }
  if (dfd >= 0)
    close (dfd);
  free (tmp);
  free (dir);
  return r;
}

/* The checksum of a journal slot covers its header fields and records,
 * which follow the header in the same buffer.
 */
static void
journal_checksum (const struct journal_head *h, unsigned char out[32])
{
  EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
  EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL);
  EVP_DigestUpdate (ctx, &h->seq, offsetof (struct journal_head, checksum) - 8);
  EVP_DigestUpdate (ctx, h + 1, h->count * record_bytes ());
  EVP_DigestFinal_ex (ctx, out, NULL);
  EVP_MD_CTX_free (ctx);
}

/* Load the partial masks from the newest valid journal slot. */
static int
load_journal (void)
{
  size_t slot = header.journal_slot_bytes;
  unsigned char *buf = malloc (slot);
  uint64_t best_seq = 0;
  int best = -1, r = 0;

  if (buf == NULL)
    return -1;
  for (int i = 0; i < 2; i++) {
    struct journal_head *h = (struct journal_head *) buf;
    unsigned char sum[32];
    if (full_pread (shadow.state_fd, buf, slot, header.journal_offset + i * slot) != (ssize_t) slot)
      continue;
    if (memcmp (h->magic, JOURNAL_MAGIC, 8) != 0 ||
        h->mask_words != shadow.mask_words || h->count > SHADOW_MAX_PARTIAL)
      continue;
    journal_checksum (h, sum);
    if (memcmp (sum, h->checksum, 32) == 0 && (best == -1 || h->seq > best_seq)) {
      best = i;
      best_seq = h->seq;
    }
  }
  if (best >= 0) {
    struct journal_head *h = (struct journal_head *) buf;
    full_pread (shadow.state_fd, buf, slot, header.journal_offset + best * slot);
    const uint64_t *rec = (const uint64_t *) (h + 1);
    for (uint32_t i = 0; i < h->count && r == 0; i++, rec += 1 + shadow.mask_words) {
      if (rec[0] < shadow.nblocks && !block_is_present (rec[0]))
        r = blockmap_load_partial (rec[0], rec + 1);
    }
    journal_seq = best_seq;
    journal_last_count = h->count;
  }
  free (buf);
  return r;
}

static int
load_bitmap (void)
{
  uint64_t words = (shadow.nblocks + 63) / 64;
  uint64_t count = 0;

  if (full_pread (shadow.state_fd, (void *) shadow.present, words * 8,
                  header.bitmap_offset) != (ssize_t) (words * 8)) {
    nbdkit_error ("shadow-state: %s: cannot read the bitmap", shadow.state_file);
    return -1;
  }
  for (uint64_t i = 0; i < words; i++) {
    uint64_t w = shadow.present[i];
    if (i == words - 1 && shadow.nblocks % 64)
      w &= (UINT64_C (1) << (shadow.nblocks % 64)) - 1;
    shadow.present[i] = w;
    count += __builtin_popcountll (w);
  }
  shadow.present_count = count;
  shadow.complete = count == shadow.nblocks;
  return 0;
}

/* Check that a state file made earlier fits the source it resumes from. */
int
statefile_check_source (uint64_t disk_size, const unsigned char *fingerprint)
{
  if (header.disk_size != disk_size) {
    nbdkit_error ("shadow-state: %s is for a disk of %" PRIu64
                  " bytes, the source has %" PRIu64,
                  shadow.state_file, header.disk_size, disk_size);
    return -1;
  }
  if (memcmp (fingerprint, header.fingerprint, 32) != 0) {
    nbdkit_error ("shadow-state: %s belongs to another disk "
                  "(the source's first block differs)", shadow.state_file);
    return -1;
  }
  return 0;
}

/* First start: size the shadow file and write a new state file. */
int
statefile_create (uint64_t disk_size, const unsigned char *fingerprint)
{
  set_geometry (disk_size);
  if (blockmap_init () == -1)
    return -1;
  if (ftruncate (shadow.shadow_fd, disk_size) == -1) {
    nbdkit_error ("shadow-file: %s: %m", shadow.shadow_file);
    return -1;
  }
  return create_state (fingerprint);
}

/* Restart: load the map from the state file.  The geometry is the state
 * file's, so a complete shadow can be served without any source.
 */
int
statefile_load (void)
{
  set_geometry (header.disk_size);
  if (blockmap_init () == -1 || load_bitmap () == -1 || load_journal () == -1)
    return -1;
  nbdkit_debug ("state loaded: %" PRIu64 " of %" PRIu64 " blocks present, "
                "%" PRIu64 " partial", (uint64_t) shadow.present_count,
                shadow.nblocks, (uint64_t) shadow.npartial);
  return 0;
}

struct journal_build {
  unsigned char *buf;
  uint32_t count;
};

static void
add_record (uint64_t b, const uint64_t *written, void *opaque)
{
  struct journal_build *jb = opaque;
  if (jb->count >= SHADOW_MAX_PARTIAL)
    return;
  uint64_t *rec = (uint64_t *) (jb->buf + sizeof (struct journal_head)
                                + jb->count * record_bytes ());
  rec[0] = b;
  memcpy (rec + 1, written, shadow.mask_words * 8);
  jb->count++;
}

static int
write_journal (struct journal_build *jb)
{
  struct journal_head *h = (struct journal_head *) jb->buf;
  uint64_t slot = (journal_seq + 1) % 2;

  memcpy (h->magic, JOURNAL_MAGIC, 8);
  h->seq = journal_seq + 1;
  h->count = jb->count;
  h->mask_words = shadow.mask_words;
  journal_checksum (h, h->checksum);
  if (full_pwrite (shadow.state_fd, jb->buf,
                   sizeof *h + h->count * record_bytes (),
                   header.journal_offset + slot * header.journal_slot_bytes) == -1)
    return -1;
  journal_seq++;
  journal_last_count = jb->count;
  return 0;
}

/* Make everything written so far durable: the shadow's data, then the
 * state saying which blocks (and partial sectors) hold it.
 */
int
statefile_checkpoint (int *err)
{
  uint64_t npages = shadow.bitmap_bytes / PAGE;
  uint64_t ndirty = 0, *pages = NULL;
  unsigned char *copy = NULL;
  struct journal_build jb = { NULL, 0 };
  int r = -1;

  pthread_mutex_lock (&checkpoint_lock);

  /* The partial blocks' masks first, then the bitmap: a block that
   * completes in between (a fetch installs it) is then in one or the
   * other.  The other way round it was in neither, so a crash after
   * this checkpoint lost the guest's flushed writes to it: the block
   * came back ABSENT and was fetched again over them (seen once in
   * test-shadow-crash under ASan).
   */
  if (shadow.npartial > 0 || journal_last_count > 0) {
    jb.buf = calloc (1, header.journal_slot_bytes);
    if (jb.buf == NULL) {
      *err = ENOMEM;
      goto fail;
    }
    blockmap_foreach_partial (add_record, &jb);
  }
  if (shadow_debug_checkpoint_pause_ms > 0) {
    nbdkit_debug ("checkpoint: pausing %d ms between the snapshots",
                  shadow_debug_checkpoint_pause_ms);
    usleep (shadow_debug_checkpoint_pause_ms * 1000);
  }

  /* Both snapshots before the sync: a bit set or a sector written after
   * this is not covered by it.
   */
  for (uint64_t w = 0; w < (npages + 63) / 64; w++) {
    uint64_t bits = atomic_exchange (&shadow.dirty_pages[w], 0);
    for (; bits; bits &= bits - 1) {
      uint64_t page = w * 64 + __builtin_ctzll (bits);
      uint64_t *np = realloc (pages, (ndirty + 1) * sizeof *pages);
      unsigned char *nc = realloc (copy, (ndirty + 1) * PAGE);
      if (np == NULL || nc == NULL) {
        pages = np ? np : pages;
        copy = nc ? nc : copy;
        atomic_fetch_or (&shadow.dirty_pages[w], bits);
        *err = ENOMEM;
        goto fail;
      }
      pages = np;
      copy = nc;
      uint64_t *dst = (uint64_t *) (copy + ndirty * PAGE);
      uint64_t words = (shadow.nblocks + 63) / 64;
      for (uint64_t i = 0; i < PAGE / 8; i++) {
        uint64_t idx = page * (PAGE / 8) + i;
        dst[i] = idx < words ? atomic_load (&shadow.present[idx]) : 0;
      }
      pages[ndirty++] = page;
    }
  }
  if (store_sync (err) == -1)
    goto fail;
  for (uint64_t i = 0; i < ndirty; i++)
    if (full_pwrite (shadow.state_fd, copy + i * PAGE, PAGE,
                     header.bitmap_offset + pages[i] * PAGE) == -1)
      goto fail_errno;
  if (jb.buf && write_journal (&jb) == -1)
    goto fail_errno;
  if ((ndirty > 0 || jb.buf) && fdatasync (shadow.state_fd) == -1)
    goto fail_errno;
  r = 0;
  goto out;

 fail_errno:
  *err = errno;
  nbdkit_error ("shadow-state: %s: %m", shadow.state_file);
 fail:
  /* Whatever was not written must be written next time. */
  for (uint64_t i = 0; i < ndirty; i++)
    atomic_fetch_or (&shadow.dirty_pages[pages[i] / 64],
                     UINT64_C (1) << (pages[i] % 64));
 out:
  pthread_mutex_unlock (&checkpoint_lock);
  free (pages);
  free (copy);
  free (jb.buf);
  return r;
}

void
statefile_close (void)
{
  if (shadow.state_fd >= 0)
    close (shadow.state_fd);
  shadow.state_fd = -1;
}
