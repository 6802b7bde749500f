/* test-common-fullio.c: common/fullio.h against system calls that move
 * at most a few bytes and are interrupted (EINTR) every other call,
 * as signals and pipes do to real ones.  This program's own pread,
 * pwrite and write stand in for libc's (a program's definitions win
 * over a shared library's), and forward to the kernel.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "fullio.h"
#include "unit.h"


#define STEP 3                  /* bytes per call at most */

static unsigned calls, interrupted;

/* Every other call is interrupted before moving anything. */
static int
interrupt_now (void)
{
  if (calls++ % 2 == 0) {
    interrupted++;
    errno = EINTR;
    return 1;
  }
  return 0;
}

ssize_t
pread (int fd, void *buf, size_t n, off_t off)
{
  if (interrupt_now ())
    return -1;
  return syscall (SYS_pread64, fd, buf, n < STEP ? n : STEP, off);
}

ssize_t
pwrite (int fd, const void *buf, size_t n, off_t off)
{
  if (interrupt_now ())
    return -1;
  return syscall (SYS_pwrite64, fd, buf, n < STEP ? n : STEP, off);
}

ssize_t
write (int fd, const void *buf, size_t n)
{
  if (interrupt_now ())
    return -1;
  return syscall (SYS_write, fd, buf, n < STEP ? n : STEP);
}

int
main (void)
{
  char path[] = "/tmp/test-common-fullio.XXXXXX";
  int fd = mkstemp (path);
  char data[1000], back[1200];

  if (fd == -1) {
    perror ("mkstemp");
    return 1;
  }
  unlink (path);
  for (size_t i = 0; i < sizeof data; i++)
    data[i] = i * 7 + 1;

  /* A whole write at an offset, then a whole read of it. */
  CHECK (full_pwrite (fd, data, sizeof data, 100) == 0);
  CHECK (interrupted > 0);
  memset (back, 0, sizeof back);
  CHECK (full_pread (fd, back, sizeof data, 100) == (ssize_t) sizeof data);
  CHECK (memcmp (back, data, sizeof data) == 0);
  /* Reading past the end: what there is, then the end. */
  CHECK (full_pread (fd, back, sizeof back, 600) == 500);
  CHECK (memcmp (back, data + 500, 500) == 0);
  CHECK (full_pread (fd, back, 10, 5000) == 0);
  CHECK (full_pread (fd, back, 0, 0) == 0);

  /* An appending write goes on from where the file is. */
  CHECK (lseek (fd, 0, SEEK_END) == 1100);
  CHECK (full_write (fd, data, 50) == 0);
  CHECK (full_pread (fd, back, 50, 1100) == 50);
  CHECK (memcmp (back, data, 50) == 0);

  /* A real error is reported, not retried for ever. */
  errno = 0;
  CHECK (full_pread (-1, back, 10, 0) == -1 && errno == EBADF);
  CHECK (full_pwrite (-1, data, 10, 0) == -1 && errno == EBADF);
  CHECK (full_write (-1, data, 10) == -1 && errno == EBADF);
  close (fd);

  printf ("%u calls, %u of them interrupted\n", calls, interrupted);
  return unit_result ("test-common-fullio");
}
