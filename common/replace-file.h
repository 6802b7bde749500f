/* replace-file.h: rewrite a file safely.  The new contents go to a
 * temporary file that mkstemp creates in the target's own directory
 * (never an existing name, never through a symlink someone planted
 * there), get their mode, and are renamed over the target, which
 * replaces the name itself: if the target is a symlink, the link is
 * replaced, not what it points to.  Readers see the old file or the
 * new one, never half of one.
 *
 *   struct replace_file rf;
 *   if (replace_file_begin (&rf, path, 0600) == -1) ...errno
 *   fprintf (rf.fp, ...);
 *   if (replace_file_commit (&rf, REPLACE_SYNC) == -1) ...errno
 */
#ifndef NBDSHADOW_REPLACE_FILE_H
#define NBDSHADOW_REPLACE_FILE_H

#include <stdio.h>
#include <sys/types.h>

/* The mode of files about a guest (traces, models, stats, plots of its
 * accesses) unless the operator asks for another. */
#define PRIVATE_FILE_MODE 0600

struct replace_file {
  FILE *fp;                     /* write the new contents here */
  char *tmp;                    /* the temporary file's name */
  char *path;                   /* the file replaced */
};

/* Start replacing PATH with a new file of MODE (exactly: the umask does
 * not apply).  -1 with errno. */
extern int replace_file_begin (struct replace_file *rf, const char *path,
                               mode_t mode);

/* REPLACE_SYNC: the data, then the rename (the directory), are made
 * durable before returning.  Without it a crash may leave the old file
 * (never a torn one): enough for a file rewritten every second. */
#define REPLACE_SYNC 1

/* Put the new file in place.  On error (-1 with errno: a write failed,
 * e.g. ENOSPC) the target is left as it was and the temporary removed.
 * Either way RF is finished with. */
extern int replace_file_commit (struct replace_file *rf, int flags);
/* Give up: the target is left as it was. */
extern void replace_file_abort (struct replace_file *rf);

/* An octal file mode 0..0777 ("0640", "640").  -1 if S is not one. */
extern int parse_file_mode (const char *s, mode_t *mode);

#endif
