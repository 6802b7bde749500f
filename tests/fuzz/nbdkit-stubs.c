/* nbdkit-stubs.c: the few nbdkit server functions the filter calls, for
 * fuzz targets that link the filter's code without nbdkit.  They follow
 * nbdkit 1.32's documented behaviour (nbdkit-plugin(3)), so the filter's
 * own checks around them are what is exercised. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <nbdkit-filter.h>

/* Set by a target that wants to see the messages (FUZZ_VERBOSE). */
int fuzz_verbose;
/* Errors reported since the target last cleared it. */
int fuzz_errors;

void
nbdkit_verror (const char *fs, va_list args)
{
  fuzz_errors++;
  if (fuzz_verbose) {
    vfprintf (stderr, fs, args);
    fputc ('\n', stderr);
  }
}

void
nbdkit_error (const char *fs, ...)
{
  va_list ap;
  va_start (ap, fs);
  nbdkit_verror (fs, ap);
  va_end (ap);
}

void
nbdkit_vdebug (const char *fs, va_list args)
{
  if (fuzz_verbose > 1) {
    vfprintf (stderr, fs, args);
    fputc ('\n', stderr);
  }
}

void
nbdkit_debug (const char *fs, ...)
{
  va_list ap;
  va_start (ap, fs);
  nbdkit_vdebug (fs, ap);
  va_end (ap);
}

int64_t
nbdkit_parse_size (const char *str)
{
  static const char suffixes[] = "bkmgtpe";
  char *end;
  const char *s;
  intmax_t v;
  int shift = 0;

  errno = 0;
  v = strtoimax (str, &end, 10);
  if (end == str || errno || v < 0) {
    nbdkit_error ("could not parse size string (%s)", str);
    return -1;
  }
  if (*end) {
    s = strchr (suffixes, tolower ((unsigned char) *end));
    if (!s || end[1]) {
      nbdkit_error ("could not parse size: unknown suffix '%s'", end);
      return -1;
    }
    shift = 10 * (s - suffixes);
  }
  if (v > (INT64_MAX >> shift)) {
    nbdkit_error ("overflow computing size (%s)", str);
    return -1;
  }
  return (int64_t) v << shift;
}

int
nbdkit_parse_bool (const char *str)
{
  static const char *const yes[] = { "1", "true", "t", "yes", "y", "on" };
  static const char *const no[] = { "0", "false", "f", "no", "n", "off" };
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
    if (strcasecmp (str, yes[i]) == 0)
      return 1;
    if (strcasecmp (str, no[i]) == 0)
      return 0;
  }
  nbdkit_error ("could not decipher boolean (%s)", str);
  return -1;
}

int
nbdkit_parse_unsigned (const char *what, const char *str, unsigned *r)
{
  char *end;
  unsigned long v;

  while (isspace ((unsigned char) *str))
    str++;
  if (*str == '-') {
    nbdkit_error ("%s: negative numbers are not allowed", what);
    return -1;
  }
  errno = 0;
  v = strtoul (str, &end, 0);
  if (end == str || *end || errno || v > UINT32_MAX) {
    nbdkit_error ("%s: could not parse number: \"%s\"", what, str);
    return -1;
  }
  *r = v;
  return 0;
}

char *
nbdkit_absolute_path (const char *path)
{
  char cwd[4096], *r;

  if (path == NULL || *path == '\0' || *path == '/') {
    r = strdup (path ? path : "");
  }
  else {
    if (!getcwd (cwd, sizeof cwd) || asprintf (&r, "%s/%s", cwd, path) == -1)
      r = NULL;
  }
  if (!r)
    nbdkit_error ("nbdkit_absolute_path: %m");
  return r;
}

int
nbdkit_nanosleep (unsigned sec, unsigned nsec)
{
  struct timespec ts = { sec, nsec };
  return nanosleep (&ts, NULL);
}

int
nbdkit_add_extent (struct nbdkit_extents *e, uint64_t offset, uint64_t length,
                   uint32_t type)
{
  return 0;
}
