/* The state file: which blocks of the shadow are PRESENT, made durable.
 *
 * It is authoritative: after a crash the filter trusts it, not Redis and
 * not the shadow file, so every part of it is checksummed and a part that
 * fails its check is refused, never guessed.  Layout (little-endian,
 * 4 KiB pages):
 *
 *   page 0      header: geometry, the source's identity, a random id of
 *               this state file, SHA-256
 *   pages 1-2   two session records (session.c): clean stop or not,
 *               samples of the shadow's content
 *   bitmap      one bit per block, 1 = PRESENT, SHADOW_PAGE_WORDS words
 *               per page, each page with its index, the state's id and
 *               its own SHA-256; updated in place
 *   journal     two slots holding the sector masks of partial blocks
 *
 * Why this is crash-safe: bits only ever go from 0 to 1, and a
 * checkpoint copies the bitmap *before* syncing the shadow file, so any
 * bit that reaches the disk belongs to a block whose data is durable.
 * A page is written with one page-aligned pwrite, which a SIGKILL does
 * not tear (the kernel checks for fatal signals between pages), so its
 * checksum holds after a crash at any point; a page torn by a power
 * loss fails it and is refused.  The partial masks are not monotonic
 * (a block leaves the journal when it completes), so they are written
 * to the older of two checksummed slots and the newest valid slot wins:
 * a slot a crash tore is the newest, its checkpoint never finished, and
 * the other slot is what the last finished checkpoint made durable.
 *
 * One filter owns the pair of files: both are locked (open file
 * description locks, which survive nbdkit's fork) for as long as it
 * runs.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include <nbdkit-filter.h>

#include "fullio.h"
#include "shadow.h"
#include "statefile.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the state file format is written for little-endian hosts"
#endif

struct journal_head {
  char magic[8];
  uint64_t seq;
  uint32_t count;
  uint32_t mask_words;
  unsigned char state_id[16];
  unsigned char checksum[32];   /* SHA-256 of seq .. state_id, then records */
};

/* Set with nbdkit -D shadow.checkpoint_pause_ms=N: sleep N ms between
 * a checkpoint's two snapshots, so a test can make a block complete
 * in between (test-shadow-crash-checkpoint.sh).
 */
NBDKIT_DLL_PUBLIC int shadow_debug_checkpoint_pause_ms = 0;

struct state_header state_header;
#define header state_header
static pthread_mutex_t checkpoint_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t journal_seq;
static uint32_t journal_last_count;

void
state_sha256 (const void *data, size_t len, unsigned char out[32])
{
  EVP_Digest (data, len, out, NULL, EVP_sha256 (), NULL);
}

static size_t
record_bytes (void)
{
  return sizeof (uint64_t) * (1 + shadow.mask_words);
}

/* Whole reads and writes of the state file: 0, or -1 (a short read
 * is a truncated file).
 */
int
state_pread (int fd, void *buf, size_t len, uint64_t off)
{
  return full_pread (fd, buf, len, off) == (ssize_t) len ? 0 : -1;
}

int
state_pwrite (int fd, const void *buf, size_t len, uint64_t off)
{
  return full_pwrite (fd, buf, len, off);
}

/* Take an exclusive lock on a file for as long as fd stays open.  An
 * open file description lock belongs to the description, not the
 * process, so nbdkit's fork keeps it; a second filter on the same file
 * is refused at once instead of both serving (a fetch by one overwrote
 * a write flushed through the other).  The lock covers one byte far
 * past any data, not the whole file: QEMU's image locking takes bytes
 * from 100 on, and qemu-img reading a running shadow must keep working.
 */
#define LOCK_BYTE (INT64_MAX - 1)

int
shadow_lock_file (int fd, const char *key, const char *path)
{
  struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
                      .l_start = LOCK_BYTE, .l_len = 1 };

  if (fcntl (fd, F_OFD_SETLK, &fl) == 0)
    return 0;
  if (errno == EAGAIN || errno == EACCES)
    nbdkit_error ("%s: %s is in use by another nbdkit shadow filter "
                  "(it is locked): only one may own a shadow", key, path);
  else
    nbdkit_error ("%s: %s: cannot lock it: %m", key, path);
  return -1;
}

/* Geometry derived from the disk's size and the block size: what the
 * header must say for this filter to read the file.
 */
static void
expected_layout (struct state_header *h)
{
  uint64_t words = (h->nblocks + 63) / 64;
  uint64_t pages = (words + SHADOW_PAGE_WORDS - 1) / SHADOW_PAGE_WORDS;

  h->bitmap_offset = STATE_BITMAP_PAGE * (uint64_t) STATE_PAGE;
  h->bitmap_bytes = pages * STATE_PAGE;
  h->journal_offset = h->bitmap_offset + h->bitmap_bytes;
  h->journal_slot_bytes =
    (sizeof (struct journal_head)
     + SHADOW_MAX_PARTIAL * sizeof (uint64_t) * (1 + (h->block_size / SHADOW_SECTOR + 63) / 64)
     + STATE_PAGE - 1) & ~(STATE_PAGE - 1);
  h->max_partial = SHADOW_MAX_PARTIAL;
  h->page_words = SHADOW_PAGE_WORDS;
}

static uint64_t
state_file_size (const struct state_header *h)
{
  return h->journal_offset + 2 * (uint64_t) h->journal_slot_bytes;
}

/* Is the header one this filter can use?  One clear line if not. */
static int
check_header (const struct state_header *h, uint64_t file_size)
{
  unsigned char sum[32];
  struct state_header want;

  if (memcmp (h->magic, STATE_MAGIC, 8) != 0) {
    nbdkit_error ("shadow-state: %s is not an nbdshadow state file",
                  shadow.state_file);
    return -1;
  }
  if (h->version != STATE_VERSION) {
    nbdkit_error ("shadow-state: %s is in state format %" PRIu32 ", this "
                  "filter reads format %d only (finish that migration with "
                  "the nbdshadow that made it, or remove the state and "
                  "shadow files to start over)",
                  shadow.state_file, h->version, STATE_VERSION);
    return -1;
  }
  state_sha256 (h, offsetof (struct state_header, checksum), sum);
  if (memcmp (sum, h->checksum, 32) != 0) {
    nbdkit_error ("shadow-state: %s: the header (page 0) fails its checksum: "
                  "the state file is corrupt", shadow.state_file);
    return -1;
  }
  if (h->block_size != shadow.block_size) {
    nbdkit_error ("shadow-state: %s was made with shadow-block-size=%" PRIu32
                  ", not %" PRIu32, shadow.state_file, h->block_size,
                  shadow.block_size);
    return -1;
  }
  want = *h;
  want.nblocks = (h->disk_size + h->block_size - 1) / h->block_size;
  expected_layout (&want);
  if (h->nblocks != want.nblocks || h->bitmap_offset != want.bitmap_offset ||
      h->bitmap_bytes != want.bitmap_bytes ||
      h->journal_offset != want.journal_offset ||
      h->journal_slot_bytes != want.journal_slot_bytes ||
      h->max_partial != want.max_partial || h->page_words != want.page_words ||
      h->source_id[sizeof h->source_id - 1] != '\0') {
    nbdkit_error ("shadow-state: %s: the header's layout is inconsistent",
                  shadow.state_file);
    return -1;
  }
  if (file_size < state_file_size (h)) {
    nbdkit_error ("shadow-state: %s is truncated (%" PRIu64 " bytes, the "
                  "layout needs %" PRIu64 ")", shadow.state_file, file_size,
                  state_file_size (h));
    return -1;
  }
  return 0;
}

/* Before the fork: open and lock the state file if there is one and
 * check that it is ours and fits the parameters.  Checks against the
 * source come later, in statefile_check_source.
 */
int
statefile_open (void)
{
  struct stat st;

  shadow.state_fd = open (shadow.state_file,
                          O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (shadow.state_fd == -1 && errno == ELOOP) {
    nbdkit_error ("shadow-state: %s is a symbolic link: give the real file",
                  shadow.state_file);
    return -1;
  }
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
  if (shadow_lock_file (shadow.state_fd, "shadow-state", shadow.state_file) == -1)
    return -1;

  if (fstat (shadow.state_fd, &st) == -1 || !S_ISREG (st.st_mode)) {
    nbdkit_error ("shadow-state: %s is not a regular file", shadow.state_file);
    return -1;
  }
  memset (&header, 0, sizeof header);
  if (state_pread (shadow.state_fd, &header, sizeof header, 0) == -1 &&
      (uint64_t) st.st_size >= sizeof header) {
    nbdkit_error ("shadow-state: %s: %m", shadow.state_file);
    return -1;
  }
  if (check_header (&header, st.st_size) == -1)
    return -1;
  if (strcmp (header.source_id, shadow.source_id ? shadow.source_id : "") != 0) {
    if (header.source_id[0] && shadow.source_id)
      nbdkit_error ("shadow-state: %s belongs to shadow-source-id=%s, "
                    "not %s", shadow.state_file, header.source_id,
                    shadow.source_id);
    else if (header.source_id[0])
      nbdkit_error ("shadow-state: %s was made with shadow-source-id=%s: "
                    "give it again", shadow.state_file, header.source_id);
    else
      nbdkit_error ("shadow-state: %s was made without shadow-source-id, "
                    "so it cannot say it belongs to %s",
                    shadow.state_file, shadow.source_id);
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

/* The on-disk form of bitmap page `page`, from the in-memory bitmap. */
static void
build_page (uint64_t page, struct bitmap_page *out)
{
  uint64_t words = (shadow.nblocks + 63) / 64;

  memset (out, 0, sizeof *out);
  for (uint64_t i = 0; i < SHADOW_PAGE_WORDS; i++) {
    uint64_t idx = page * SHADOW_PAGE_WORDS + i;
    out->bits[i] = idx < words ? atomic_load (&shadow.present[idx]) : 0;
  }
  out->index = page;
  memcpy (out->state_id, header.state_id, 16);
  state_sha256 (out, offsetof (struct bitmap_page, checksum), out->checksum);
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

/* Write journal slot seq % 2 holding jb's records. */
static int
write_journal_slot (unsigned char *buf, uint64_t seq, uint32_t count)
{
  struct journal_head *h = (struct journal_head *) buf;

  memcpy (h->magic, JOURNAL_MAGIC, 8);
  h->seq = seq;
  h->count = count;
  h->mask_words = shadow.mask_words;
  memcpy (h->state_id, header.state_id, 16);
  journal_checksum (h, h->checksum);
  return state_pwrite (shadow.state_fd, buf, sizeof *h + count * record_bytes (),
                       header.journal_offset + (seq % 2) * header.journal_slot_bytes);
}

/* Every part of a new state file, valid and empty: the header, a
 * session, every bitmap page (an unwritten page would fail its checksum)
 * and both journal slots (so that a journal that fails its check is
 * always corruption, never "not written yet").
 */
static int
write_new_state (int fd)
{
  uint64_t npages = header.bitmap_bytes / STATE_PAGE;
  struct bitmap_page *page = malloc (sizeof *page);
  unsigned char *slot = calloc (1, sizeof (struct journal_head));
  int r = -1;

  if (page == NULL || slot == NULL)
    goto out;
  shadow.state_fd = fd;
  if (state_pwrite (fd, &header, sizeof header, 0) == -1 ||
      ftruncate (fd, state_file_size (&header)) == -1)
    goto out;
  /* Allocated now, so that a checkpoint never fails for want of room
   * when the shadow has filled the file system.
   */
  if (fallocate (fd, 0, 0, state_file_size (&header)) == -1 &&
      errno != EOPNOTSUPP && errno != ENOSYS)
    goto out;
  if (session_write_new () == -1)
    goto out;
  for (uint64_t p = 0; p < npages; p++) {
    build_page (p, page);
    if (state_pwrite (fd, page, sizeof *page,
                      header.bitmap_offset + p * STATE_PAGE) == -1)
      goto out;
  }
  if (write_journal_slot (slot, 0, 0) == -1 ||
      write_journal_slot (slot, 1, 0) == -1)
    goto out;
  journal_seq = 1;
  r = fsync (fd);
 out:
  free (page);
  free (slot);
  return r;
}

/* Write a new state file next to the final name and move it into place
 * (never over an existing one), so that a crash leaves either no state
 * file or a whole one.  The temporary file is mkstemp's: a name planted
 * in the directory (a symbolic link) is never followed.
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
  expected_layout (&header);
  memcpy (header.fingerprint, fingerprint, 32);
  if (shadow.source_id)
    strcpy (header.source_id, shadow.source_id);
  if (getrandom (header.state_id, sizeof header.state_id, 0) !=
      sizeof header.state_id) {
    nbdkit_error ("shadow-state: getrandom: %m");
    return -1;
  }
  state_sha256 (&header, offsetof (struct state_header, checksum), header.checksum);

  if (asprintf (&tmp, "%s.XXXXXX", shadow.state_file) == -1 ||
      (dir = strdup (shadow.state_file)) == NULL) {
    nbdkit_error ("shadow-state: %m");
    goto out;
  }
  fd = mkostemp (tmp, O_CLOEXEC);
  if (fd == -1 || fchmod (fd, 0600) == -1) {
    nbdkit_error ("shadow-state: %s: %m", tmp);
    goto out;
  }
  if (shadow_lock_file (fd, "shadow-state", tmp) == -1)
    goto out;
  if (write_new_state (fd) == -1) {
    nbdkit_error ("shadow-state: %s: %m", tmp);
    goto out;
  }
  if (renameat2 (AT_FDCWD, tmp, AT_FDCWD, shadow.state_file,
                 RENAME_NOREPLACE) == -1 &&
      (errno != EINVAL && errno != ENOSYS ? -1 :
       link (tmp, shadow.state_file) == -1 ? -1 : unlink (tmp)) == -1) {
    if (errno == EEXIST)
      nbdkit_error ("shadow-state: %s appeared while this filter was "
                    "starting (another filter on it?)", shadow.state_file);
    else
      nbdkit_error ("shadow-state: %s: %m", shadow.state_file);
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
    shadow.state_fd = -1;
  }
  if (dfd >= 0)
    close (dfd);
  free (tmp);
  free (dir);
  return r;
}

/* What a journal slot holds. */
enum slot_state { SLOT_VALID, SLOT_CORRUPT };

static enum slot_state
check_slot (unsigned char *buf, int i)
{
  struct journal_head *h = (struct journal_head *) buf;
  unsigned char sum[32];

  if (state_pread (shadow.state_fd, buf, header.journal_slot_bytes,
                   header.journal_offset + i * (uint64_t) header.journal_slot_bytes) == -1 ||
      memcmp (h->magic, JOURNAL_MAGIC, 8) != 0 ||
      h->mask_words != shadow.mask_words || h->count > SHADOW_MAX_PARTIAL ||
      h->seq % 2 != (uint64_t) i ||
      memcmp (h->state_id, header.state_id, 16) != 0)
    return SLOT_CORRUPT;
  journal_checksum (h, sum);
  return memcmp (sum, h->checksum, 32) == 0 ? SLOT_VALID : SLOT_CORRUPT;
}

/* Load the partial masks from the newest valid journal slot.  One slot
 * failing its check is what a crash in the middle of writing it leaves
 * (see the top of this file); both failing is corruption, and the masks
 * of partly written blocks would be lost: their flushed sectors fetched
 * over.  Refused.
 */
static int
load_journal (void)
{
  size_t slot = header.journal_slot_bytes;
  unsigned char *buf[2] = { malloc (slot), malloc (slot) };
  enum slot_state st[2];
  int best = -1, r = -1;

  if (buf[0] == NULL || buf[1] == NULL) {
    nbdkit_error ("shadow-state: %m");
    goto out;
  }
  for (int i = 0; i < 2; i++) {
    st[i] = check_slot (buf[i], i);
    if (st[i] == SLOT_VALID &&
        (best == -1 || ((struct journal_head *) buf[i])->seq >
                       ((struct journal_head *) buf[best])->seq))
      best = i;
  }
  if (best == -1) {
    nbdkit_error ("shadow-state: %s: both journal slots (offsets %" PRIu64
                  " and %" PRIu64 ") fail their checksums: the sector masks "
                  "of partly written blocks are lost", shadow.state_file,
                  header.journal_offset, header.journal_offset + slot);
    goto out;
  }
  if (st[1 - best] != SLOT_VALID)
    nbdkit_debug ("shadow-state: journal slot %d is torn (a crash while it "
                  "was written): using slot %d", 1 - best, best);
  struct journal_head *h = (struct journal_head *) buf[best];
  const uint64_t *rec = (const uint64_t *) (h + 1);
  r = 0;
  for (uint32_t i = 0; i < h->count && r == 0; i++, rec += 1 + shadow.mask_words) {
    if (rec[0] < shadow.nblocks && !block_is_present (rec[0]))
      r = blockmap_load_partial (rec[0], rec + 1);
  }
  journal_seq = h->seq;
  journal_last_count = h->count;
 out:
  free (buf[0]);
  free (buf[1]);
  return r;
}

/* Every bitmap page must pass its checksum: a flipped bit would make
 * the filter serve a block it never had (zeros) or fetch one over the
 * guest's data.
 */
static int
load_bitmap (void)
{
  uint64_t words = (shadow.nblocks + 63) / 64;
  uint64_t npages = header.bitmap_bytes / STATE_PAGE, count = 0;
  struct bitmap_page *page = malloc (sizeof *page);
  unsigned char sum[32];

  if (page == NULL) {
    nbdkit_error ("shadow-state: %m");
    return -1;
  }
  for (uint64_t p = 0; p < npages; p++) {
    uint64_t off = header.bitmap_offset + p * STATE_PAGE;
    if (state_pread (shadow.state_fd, page, sizeof *page, off) == -1) {
      nbdkit_error ("shadow-state: %s: cannot read bitmap page %" PRIu64,
                    shadow.state_file, p);
      free (page);
      return -1;
    }
    state_sha256 (page, offsetof (struct bitmap_page, checksum), sum);
    if (memcmp (sum, page->checksum, 32) != 0 || page->index != p ||
        memcmp (page->state_id, header.state_id, 16) != 0) {
      uint64_t first = p * SHADOW_PAGE_WORDS * 64;
      nbdkit_error ("shadow-state: %s: bitmap page %" PRIu64 " (offset %"
                    PRIu64 ", blocks %" PRIu64 "-%" PRIu64 ") fails its "
                    "checksum: the state file is corrupt",
                    shadow.state_file, p, off, first,
                    first + SHADOW_PAGE_WORDS * 64 - 1);
      free (page);
      return -1;
    }
    for (uint64_t i = 0; i < SHADOW_PAGE_WORDS; i++) {
      uint64_t idx = p * SHADOW_PAGE_WORDS + i, w = page->bits[i];
      if (idx >= words)
        break;
      if (idx == words - 1 && shadow.nblocks % 64)
        w &= (UINT64_C (1) << (shadow.nblocks % 64)) - 1;
      shadow.present[idx] = w;
      count += __builtin_popcountll (w);
    }
  }
  free (page);
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
                  "(the source's sampled blocks differ)", shadow.state_file);
    return -1;
  }
  return 0;
}

const unsigned char *
statefile_fingerprint (void)
{
  return header.fingerprint;
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

/* Restart: load the map from the state file, checking every part of
 * it, and check that the shadow still holds what it held at the last
 * clean stop.  The geometry is the state file's, so a complete shadow
 * can be served without any source.
 */
int
statefile_load (void)
{
  set_geometry (header.disk_size);
  if (blockmap_init () == -1 || load_bitmap () == -1 ||
      load_journal () == -1 || session_load () == -1)
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
  if (write_journal_slot (jb->buf, journal_seq + 1, jb->count) == -1)
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
  uint64_t npages = shadow.bitmap_bytes / STATE_PAGE;
  uint64_t ndirty = 0, *pages = NULL;
  struct bitmap_page *copy = NULL;
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
      struct bitmap_page *nc = realloc (copy, (ndirty + 1) * sizeof *copy);
      if (np == NULL || nc == NULL) {
        pages = np ? np : pages;
        copy = nc ? nc : copy;
        atomic_fetch_or (&shadow.dirty_pages[w], bits);
        *err = ENOMEM;
        goto fail;
      }
      pages = np;
      copy = nc;
      build_page (page, &copy[ndirty]);
      pages[ndirty++] = page;
    }
  }
  if (store_sync (err) == -1)
    goto fail;
  for (uint64_t i = 0; i < ndirty; i++)
    if (state_pwrite (shadow.state_fd, &copy[i], STATE_PAGE,
                      header.bitmap_offset + pages[i] * STATE_PAGE) == -1)
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
