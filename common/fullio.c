/* Whole reads and writes, retried after EINTR (see fullio.h). */

#include <errno.h>
#include <unistd.h>

#include "fullio.h"

enum kind { PREAD, PWRITE, WRITE };

/* One loop for the three: how many bytes moved (fewer than len only
 * when a read reaches the end of the file), or -1.
 */
static ssize_t
transfer (enum kind kind, int fd, char *p, size_t len, off_t off)
{
  size_t done = 0;

  while (done < len) {
    ssize_t r = kind == PREAD ? pread (fd, p + done, len - done, off + done)
              : kind == PWRITE ? pwrite (fd, p + done, len - done, off + done)
              : write (fd, p + done, len - done);
    if (r == -1 && errno == EINTR)
      continue;
    if (r == -1)
      return -1;
    if (r == 0)
      break;                    /* the end of the file */
    done += r;
  }
  return done;
}

ssize_t
full_pread (int fd, void *buf, size_t len, off_t off)
{
  return transfer (PREAD, fd, buf, len, off);
}

int
full_pwrite (int fd, const void *buf, size_t len, off_t off)
{
  return transfer (PWRITE, fd, (char *) buf, len, off) == (ssize_t) len ? 0 : -1;
}

int
full_write (int fd, const void *buf, size_t len)
{
  return transfer (WRITE, fd, (char *) buf, len, 0) == (ssize_t) len ? 0 : -1;
}
