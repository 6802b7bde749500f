/* parse-number.c: strict number parsing (see parse-number.h).  strtoull
 * and strtod alone accept leading blanks, a sign ("-1" is a huge
 * unsigned), trailing junk and "inf"; every caller used to check some of
 * that, none all of it. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "parse-number.h"

static int
is_digit_in (char c, int base)
{
  return base == 16 ? isxdigit ((unsigned char) c)
                    : c >= '0' && c <= '9';
}

int
parse_uint64 (const char *s, int base, uint64_t *out)
{
  char *end;
  unsigned long long v;

  if (base == 0) {
    base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
      s += 2;
      base = 16;
    }
  }
  if (!is_digit_in (*s, base))
    return -1;
  errno = 0;
  v = strtoull (s, &end, base);
  if (errno || *end != '\0')
    return -1;
  *out = v;
  return 0;
}

int
parse_int64 (const char *s, int64_t *out)
{
  char *end;
  long long v;
  const char *digits = *s == '-' ? s + 1 : s;

  if (!is_digit_in (*digits, 10))
    return -1;
  errno = 0;
  v = strtoll (s, &end, 10);
  if (errno || *end != '\0')
    return -1;
  *out = v;
  return 0;
}

int
parse_double (const char *s, double *out)
{
  char *end;
  double v;
  const char *p = *s == '-' || *s == '+' ? s + 1 : s;

  /* A digit or a point first: no blank, no "inf", "nan" or hex float. */
  if (!(is_digit_in (*p, 10) || (*p == '.' && is_digit_in (p[1], 10))) ||
      (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')))
    return -1;
  errno = 0;
  v = strtod (s, &end);
  if (errno == ERANGE && fabs (v) > 1) /* overflow; underflow is 0-ish */
    return -1;
  if (*end != '\0' || !isfinite (v))
    return -1;
  *out = v;
  return 0;
}
