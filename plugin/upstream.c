/* The connection to the source, shared by all clients, and switchover.
 *
 * Client connections never get an upstream connection of their own
 * (.open does not call next): all reads from the source go through one
 * background context opened after the fork.  So once every block is
 * PRESENT the context can be closed, the source can disappear, and new
 * clients (a rebooting VM, qemu-img check) are served from the shadow
 * alone.  The nbd plugin pipelines concurrent callers on the context.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include <nbdkit-filter.h>

#include "shadow.h"

static nbdkit_next *next;
/* Readers of `next` hold it shared; switchover takes it exclusively to
 * close the context once nobody is using it.
 */
static pthread_rwlock_t next_lock = PTHREAD_RWLOCK_INITIALIZER;

/* Parameters of the upstream side.  Returns 1 when the key is ours and
 * taken, 0 when it is not ours (it may still be noted: the source's
 * address keys go on to the plugin too), -1 on a bad value.
 */
int
upstream_config (const char *key, const char *value)
{
  return 0;
}

/* Open the shared context and learn the disk's size. */
int
upstream_open (void *backend, uint64_t *disk_size)
{
  int64_t size;

  next = nbdkit_next_context_open (backend, 1, "", 1);
  if (next == NULL) {
    nbdkit_error ("shadow: cannot open the source");
    return -1;
  }
  if (next->prepare (next) == -1 || (size = next->get_size (next)) == -1) {
    nbdkit_error ("shadow: cannot connect to the source");
    upstream_close ();
    return -1;
  }
  *disk_size = size;
  return 0;
}

void
upstream_close (void)
{
  pthread_rwlock_wrlock (&next_lock);
  if (next) {
    next->finalize (next);
    nbdkit_next_context_close (next);
    next = NULL;
    nbdkit_debug ("upstream closed");
  }
  pthread_rwlock_unlock (&next_lock);
}

int
upstream_pread (void *buf, uint32_t count, uint64_t offset, int *err)
{
  int r;

  pthread_rwlock_rdlock (&next_lock);
  if (next == NULL) {
    *err = EIO;
    nbdkit_error ("shadow: the source is detached");
    r = -1;
  }
  else
    r = next->pread (next, buf, count, offset, 0, err);
  pthread_rwlock_unlock (&next_lock);
  return r;
}

/* Ask the source which parts of a range not yet fetched are holes.
 * Adds extents to `out` (a struct nbdkit_extents *) for the whole range;
 * where the source cannot say, the range is data.
 */
int
upstream_extents (uint32_t count, uint64_t offset, void *out, int *err)
{
  struct nbdkit_extents *theirs = NULL;
  uint64_t end = offset + count;
  int r = -1;

  pthread_rwlock_rdlock (&next_lock);
  if (next && next->can_extents (next) == 1 &&
      (theirs = nbdkit_extents_new (offset, end)) != NULL &&
      next->extents (next, count, offset, 0, theirs, err) == 0) {
    uint64_t pos = offset;
    for (size_t i = 0; i < nbdkit_extents_count (theirs) && pos < end; i++) {
      struct nbdkit_extent e = nbdkit_get_extent (theirs, i);
      uint64_t e_end = e.offset + e.length < end ? e.offset + e.length : end;
      if (e_end <= pos)
        continue;
      if (nbdkit_add_extent (out, pos, e_end - pos, e.type) == -1)
        goto out;
      pos = e_end;
    }
    r = pos < end ? nbdkit_add_extent (out, pos, end - pos, 0) : 0;
  }
  else
    r = nbdkit_add_extent (out, offset, count, 0);
 out:
  pthread_rwlock_unlock (&next_lock);
  if (theirs)
    nbdkit_extents_free (theirs);
  if (r == -1)
    *err = errno ? errno : EIO;
  return r;
}

/* Called by the stats thread: once every block is PRESENT, persist that
 * and let go of the source.
 */
void
upstream_switchover_check (void)
{
  int err;
  bool open;

  if (!shadow.complete)
    return;
  pthread_rwlock_rdlock (&next_lock);
  open = next != NULL;
  pthread_rwlock_unlock (&next_lock);
  if (!open)
    return;
  if (statefile_checkpoint (&err) == -1)
    return;                     /* try again next time */
  upstream_close ();
  nbdkit_debug ("switchover: all %" PRIu64 " blocks are local, source detached",
                shadow.nblocks);
}
