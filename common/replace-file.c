/* replace-file.c: rewrite a file through a temporary one in the same
 * directory (see replace-file.h).  A fixed temporary name ("F.tmp")
 * opened with fopen or O_CREAT|O_TRUNC let anyone who can write to the
 * directory plant a symlink there and have the writer (perhaps root)
 * overwrite the file it points to. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "parse-number.h"
#include "replace-file.h"

int
replace_file_begin (struct replace_file *rf, const char *path, mode_t mode)
{
  char *copy = strdup (path), *dir, *base;
  int fd, saved;

  memset (rf, 0, sizeof *rf);
  if (!copy)
    return -1;
  base = basename (copy);
  dir = strdup (path);
  if (!dir) {
    free (copy);
    return -1;
  }
  /* ".NAME.XXXXXX" beside NAME: the same file system, so rename is
   * atomic, and hidden from a glob on the directory. */
  if (asprintf (&rf->tmp, "%s/.%s.XXXXXX", dirname (dir), base) == -1) {
    rf->tmp = NULL;
    free (copy);
    free (dir);
    errno = ENOMEM;
    return -1;
  }
  free (copy);
  free (dir);
  rf->path = strdup (path);
  fd = rf->path ? mkostemp (rf->tmp, O_CLOEXEC) : -1;
  if (fd == -1)
    goto fail;
  if (fchmod (fd, mode) == -1 || (rf->fp = fdopen (fd, "w")) == NULL) {
    saved = errno;
    close (fd);
    unlink (rf->tmp);
    errno = saved;
    goto fail;
  }
  return 0;
 fail:
  saved = errno ? errno : ENOMEM;
  free (rf->tmp);
  free (rf->path);
  memset (rf, 0, sizeof *rf);
  errno = saved;
  return -1;
}

static int
sync_dir_of (const char *path)
{
  char *copy = strdup (path);
  int fd, r;

  if (!copy)
    return -1;
  fd = open (dirname (copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  free (copy);
  if (fd == -1)
    return -1;
  r = fsync (fd);
  close (fd);
  return r;
}

int
replace_file_commit (struct replace_file *rf, int flags)
{
  int r = -1, saved = 0;

  if (fflush (rf->fp) == EOF || ferror (rf->fp) ||
      ((flags & REPLACE_SYNC) && fsync (fileno (rf->fp)) == -1))
    saved = errno ? errno : EIO;
  if (fclose (rf->fp) == EOF && !saved)
    saved = errno;
  rf->fp = NULL;
  if (!saved && rename (rf->tmp, rf->path) == -1)
    saved = errno;
  if (saved)
    unlink (rf->tmp);
  else if ((flags & REPLACE_SYNC) && sync_dir_of (rf->path) == -1)
    saved = errno;
  else
    r = 0;
  free (rf->tmp);
  free (rf->path);
  memset (rf, 0, sizeof *rf);
  errno = saved;
  return r;
}

void
replace_file_abort (struct replace_file *rf)
{
  int saved = errno;

  if (rf->fp) {
    fclose (rf->fp);
    unlink (rf->tmp);
  }
  free (rf->tmp);
  free (rf->path);
  memset (rf, 0, sizeof *rf);
  errno = saved;
}

int
parse_file_mode (const char *s, mode_t *mode)
{
  uint64_t v;

  if (parse_uint64 (s, 8, &v) == -1 || v > 0777)
    return -1;
  *mode = v;
  return 0;
}
