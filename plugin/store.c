/* The shadow file: the local copy of the disk's data.
 *
 * A plain file of the disk's virtual size, kept sparse: blocks that are
 * not yet local, and zeros, are holes.  Which bytes are valid is not
 * known here; that is the block map's job.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/falloc.h>
#include <sys/stat.h>

#include <nbdkit-filter.h>

#include "fullio.h"
#include "shadow.h"

int
store_open (void)
{
  shadow.shadow_fd = open (shadow.shadow_file,
                           O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  shadow.shadow_created = shadow.shadow_fd >= 0;
  if (shadow.shadow_fd == -1 && errno == EEXIST)
    shadow.shadow_fd = open (shadow.shadow_file, O_RDWR | O_CLOEXEC);
  if (shadow.shadow_fd == -1) {
    nbdkit_error ("shadow-file: %s: %m", shadow.shadow_file);
    return -1;
  }
  return 0;
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

int
store_pwrite (const void *buf, uint32_t count, uint64_t offset, int *err)
{
  if (full_pwrite (shadow.shadow_fd, buf, count, offset) == -1) {
    *err = errno;
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

void
store_start_writeback (uint64_t count)
{
  static _Atomic uint64_t written;
  uint64_t before = atomic_fetch_add_explicit (&written, count,
                                               memory_order_relaxed);
  if (before / WRITEBACK_BATCH != (before + count) / WRITEBACK_BATCH)
    sync_file_range (shadow.shadow_fd, 0, 0, SYNC_FILE_RANGE_WRITE);
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
