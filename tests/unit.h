/* What the C unit tests share: CHECK reports a failed condition with
 * its file and line and goes on (so one run shows every broken rule);
 * unit_result ends the test with the count.
 */

#ifndef NBDSHADOW_TESTS_UNIT_H
#define NBDSHADOW_TESTS_UNIT_H

#include <stdio.h>

static int unit_failures;

#define FAIL(...) do {                                                  \
    fprintf (stderr, "%s:%d: FAILED: ", __FILE__, __LINE__);            \
    fprintf (stderr, __VA_ARGS__);                                      \
    fputc ('\n', stderr);                                               \
    unit_failures++;                                                    \
  } while (0)

#define CHECK(cond) do {                                                \
    if (!(cond))                                                        \
      FAIL ("%s", #cond);                                               \
  } while (0)

static inline int
unit_result (const char *name)
{
  if (unit_failures) {
    fprintf (stderr, "%s: %d check(s) failed\n", name, unit_failures);
    return 1;
  }
  printf ("%s: ok\n", name);
  return 0;
}

#endif /* NBDSHADOW_TESTS_UNIT_H */
