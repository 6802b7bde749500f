/* Library code never prints: a function that fails writes a one-line
 * reason into a buffer its caller passed (LEARNER_ERRLEN, MS_ERRLEN
 * bytes) and returns -1.  set_error does both, so a failure is one line:
 *
 *   return set_error (err, LEARNER_ERRLEN, "bad size %s", s);
 */

#ifndef NBDSHADOW_ERRBUF_H
#define NBDSHADOW_ERRBUF_H

#include <stddef.h>

/* The reason, truncated to len - 1 bytes; returns -1. */
extern int set_error (char *buf, size_t len, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));

#endif /* NBDSHADOW_ERRBUF_H */
