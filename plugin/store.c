/* The shadow file: the local copy of the disk's data.
 *
 * A plain file of the disk's virtual size, kept sparse: blocks that are
 * not yet local, and zeros, are holes.  Which bytes are valid is not
 * known here; that is the block map's job.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <nbdkit-filter.h>

#include "clock.h"
#include "fullio.h"
#include "shadow.h"

int
store_open (void)
{
  struct stat st;

  /* Never through a symbolic link: one planted in a shared directory
   * would have the guest's disk written wherever it points.
   */
  shadow.shadow_fd = open (shadow.shadow_file,
                           O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                           0600);
  shadow.shadow_created = shadow.shadow_fd >= 0;
  if (shadow.shadow_fd == -1 && errno == EEXIST)
    shadow.shadow_fd = open (shadow.shadow_file, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (shadow.shadow_fd == -1 && errno == ELOOP) {
    nbdkit_error ("shadow-file: %s is a symbolic link: give the real file",
                  shadow.shadow_file);
    return -1;
  }
  if (shadow.shadow_fd == -1) {
    nbdkit_error ("shadow-file: %s: %m", shadow.shadow_file);
    return -1;
  }
  if (fstat (shadow.shadow_fd, &st) == -1 || !S_ISREG (st.st_mode)) {
    nbdkit_error ("shadow-file: %s is not a regular file", shadow.shadow_file);
    return -1;
  }
  return shadow_lock_file (shadow.shadow_fd, "shadow-file", shadow.shadow_file);
}

/* A start that failed before any state was written leaves no empty
 * shadow file behind.
 */
void
store_forget_unused (void)
{
  if (shadow.shadow_created && access (shadow.state_file, F_OK) == -1)
    unlink (shadow.shadow_file);
}

int
store_pread (void *buf, uint32_t count, uint64_t offset, int *err)
{
  ssize_t r = full_pread (shadow.shadow_fd, buf, count, offset);

  if (r == -1) {
    *err = errno;
    nbdkit_error ("shadow-file: read: %m");
    return -1;
  }
  /* Past the end of a short file: zeros. */
  memset ((char *) buf + r, 0, count - r);
  return 0;
}

/* The shadow's file system full (or the quota reached).  Nothing
 * acknowledged is lost: a write that fails is failed to the guest, and a
 * fetched block that cannot be installed stays ABSENT.  But retrying
 * at once would pull the same blocks from the source again and again,
 * so background pulls pause, with a backoff, and a pull after the pause
 * probes whether there is room again; meanwhile guest reads of blocks
 * not yet local are served straight from the source (blockmap.c).
 */
#define FULL_BACKOFF_MIN_US UINT64_C (1000000)
#define FULL_BACKOFF_MAX_US UINT64_C (30000000)

static _Atomic uint64_t full_until_us;  /* pulls wait until then */
static _Atomic uint64_t full_backoff_us;

bool
store_full_error (int err)
{
  return err == ENOSPC || err == EDQUOT;
}

static void
note_full (void)
{
  uint64_t backoff = atomic_load (&full_backoff_us);
  uint64_t next = backoff ? backoff * 2 : FULL_BACKOFF_MIN_US;

  /* The pulls in flight when the file system filled up all fail: one
   * pause for them, longer only when a pull after a pause fails too.
   * Full again within a pause (a write fit in between, note_space) is
   * full all the same: without the flag the pulls would not wait.
   */
  if (time_us () >= atomic_load (&full_until_us)) {
    atomic_store (&full_backoff_us,
                  next < FULL_BACKOFF_MAX_US ? next : FULL_BACKOFF_MAX_US);
    atomic_store (&full_until_us, time_us () + atomic_load (&full_backoff_us));
  }
  if (!atomic_exchange (&shadow.disk_full, true))
    nbdkit_error ("shadow-file: %s: its file system is full: the background "
                  "copy pauses, guest reads of blocks not yet local are served "
                  "from the source", shadow.shadow_file);
}

/* Fetched data was written: there is room again. */
static void
note_space (void)
{
  if (!atomic_load_explicit (&shadow.disk_full, memory_order_relaxed))
    return;
  if (atomic_exchange (&shadow.disk_full, false)) {
    atomic_store (&full_backoff_us, 0);
    nbdkit_debug ("shadow-file: room again: the background copy resumes");
  }
}

/* Should background pulls wait?  True while the last write that failed
 * for want of space is recent; after the backoff one pull goes ahead to
 * try.
 */
bool
store_pulls_paused (void)
{
  return atomic_load_explicit (&shadow.disk_full, memory_order_relaxed) &&
    time_us () < atomic_load (&full_until_us);
}

/* Warn at start when the file system has less room than the blocks not
 * yet local could take (an upper bound: holes of a sparse source take
 * none).
 */
void
store_check_room (void)
{
  struct statvfs sv;
  uint64_t missing = (shadow.nblocks - shadow.present_count) * shadow.block_size;

  if (fstatvfs (shadow.shadow_fd, &sv) == -1)
    return;
  uint64_t avail = (uint64_t) sv.f_bavail * sv.f_frsize;
  if (avail < missing)
    nbdkit_error ("shadow-file: %s: warning: %" PRIu64 " bytes free on its "
                  "file system, the copy may need up to %" PRIu64 " (less if "
                  "the source is sparse); it pauses while the file system is "
                  "full", shadow.shadow_file, avail, missing);
}

/* Writes of fetched data (install) tell whether there is room; guest
 * writes do not (overwriting allocated blocks succeeds on a full file
 * system).
 */
int
store_pwrite (const void *buf, uint32_t count, uint64_t offset, int *err)
{
  if (full_pwrite (shadow.shadow_fd, buf, count, offset) == -1) {
    *err = errno;
    if (store_full_error (errno))
      note_full ();
    else
      nbdkit_error ("shadow-file: write: %m");
    return -1;
  }
  return 0;
}

/* Zero a range by punching a hole; where the file system cannot punch,
 * write zeros.
 */
int
store_zero (uint32_t count, uint64_t offset, int *err)
{
  static char zeros[65536];

  if (fallocate (shadow.shadow_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                 offset, count) == 0)
    return 0;
  if (errno != EOPNOTSUPP && errno != ENOSYS) {
    *err = errno;
    nbdkit_error ("shadow-file: punch hole: %m");
    return -1;
  }
  while (count > 0) {
    uint32_t n = count < sizeof zeros ? count : sizeof zeros;
    if (store_pwrite (zeros, n, offset, err) == -1)
      return -1;
    count -= n;
    offset += n;
  }
  return 0;
}

/* Fetched data is written back early: a checkpoint's fdatasync then
 * finds little left to do, instead of a whole second's worth of pulled
 * data (or, at the end of a fast copy, most of the disk).  Writeback of
 * the whole file is started once every WRITEBACK_BATCH bytes, not per
 * write: each start kicks the disk's queue, which in a virtual machine
 * is an exit to the host (per 2 MiB write that was 7 % of the filter's
 * time in a fast copy).  Only a hint: failures are ignored.
 */
#define WRITEBACK_BATCH (32 << 20)

static void
store_start_writeback (uint64_t count)
{
  note_space ();                /* fetched data was written: there is room */
  static _Atomic uint64_t written;
  uint64_t before = atomic_fetch_add_explicit (&written, count,
                                               memory_order_relaxed);
  if (before / WRITEBACK_BATCH != (before + count) / WRITEBACK_BATCH)
    sync_file_range (shadow.shadow_fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

/* Fetched data goes into the shadow in pieces of INSTALL_PIECE bytes,
 * not in one write per stretch, because the page cache keeps data in
 * folios as large as the writes that brought it (ext4 has large folios
 * since Linux 6.16).  A guest's 4K write into a 2 MiB folio walks the
 * folio's 512 buffer heads and dirties all of it, so a shadow filled by
 * 2 MiB pulls served random writes at a fraction of a plain file's
 * speed.  Page-sized pieces would match a file the guest wrote itself
 * but cost twice the CPU per GiB copied; at 16K a guest write costs
 * little more than at 4K and the copy little more than with one write
 * (docs/BENCHMARKS.md has the figures).
 */
#define INSTALL_PIECE 16384

int
store_install (const void *buf, uint32_t count, uint64_t offset, int *err)
{
  const char *p = buf;
  uint32_t left = count;

  while (left > 0) {
    uint32_t n = INSTALL_PIECE - offset % INSTALL_PIECE;
    if (n > left)
      n = left;
    if (store_pwrite (p, n, offset, err) == -1)
      return -1;
    p += n;
    left -= n;
    offset += n;
  }
  store_start_writeback (count);
  return 0;
}

int
store_sync (int *err)
{
  if (fdatasync (shadow.shadow_fd) == -1) {
    *err = errno;
    nbdkit_error ("shadow-file: fdatasync: %m");
    return -1;
  }
  return 0;
}

/* Is offset in data or in a hole of the shadow file?  *run_end is where
 * that run ends (at most end).  Where the file system cannot tell, all
 * of it is data, which is always truthful.
 */
int
store_is_data (uint64_t offset, uint64_t end, uint64_t *run_end)
{
  off_t data = lseek (shadow.shadow_fd, offset, SEEK_DATA);
  if (data == -1 && errno == ENXIO) {   /* only a hole up to the end */
    *run_end = end;
    return 0;
  }
  if (data == -1) {
    *run_end = end;
    return 1;
  }
  if ((uint64_t) data > offset) {
    *run_end = (uint64_t) data < end ? (uint64_t) data : end;
    return 0;
  }
  off_t hole = lseek (shadow.shadow_fd, offset, SEEK_HOLE);
  *run_end = hole == -1 || (uint64_t) hole > end ? end : (uint64_t) hole;
  return 1;
}
