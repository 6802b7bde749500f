/* Whole reads and writes: read(2) and write(2) may move fewer bytes
 * than asked, or be interrupted by a signal (EINTR) before moving any;
 * these go on until all is done, the file ends, or a real error.
 */

#ifndef NBDSHADOW_FULLIO_H
#define NBDSHADOW_FULLIO_H

#include <stddef.h>
#include <sys/types.h>

/* Read len bytes at off.  Returns how many were read, fewer than len
 * only where the file ends; -1 with errno on error.
 */
extern ssize_t full_pread (int fd, void *buf, size_t len, off_t off);
/* Write len bytes at off, or at the file's position (full_write: also
 * for O_APPEND files and pipes).  0, or -1 with errno.
 */
extern int full_pwrite (int fd, const void *buf, size_t len, off_t off);
extern int full_write (int fd, const void *buf, size_t len);

#endif /* NBDSHADOW_FULLIO_H */
