/* parse-number.h: strict number parsing for options, parameters and
 * trace fields.  A value is the whole string: no sign unless allowed, no
 * blank, no trailing characters ("5abc" is refused, not read as 5), no
 * overflow, no NaN or infinity.  Each returns 0, or -1 if S is not such
 * a number (the caller says which option it was). */
#ifndef NBDSHADOW_PARSE_NUMBER_H
#define NBDSHADOW_PARSE_NUMBER_H

#include <stdint.h>

/* Unsigned integer in BASE (8, 10, 16, or 0: decimal, or hex after 0x). */
extern int parse_uint64 (const char *s, int base, uint64_t *out);
/* Signed decimal integer. */
extern int parse_int64 (const char *s, int64_t *out);
/* A finite decimal number (strtod syntax, without hex or inf/nan). */
extern int parse_double (const char *s, double *out);

#endif
