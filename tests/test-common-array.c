/* test-common-array.c: common/array.h.  Appending a million elements
 * one at a time keeps every one (the array moves, the contents go
 * with it), the capacity doubles (so appends are amortised O(1): few
 * reallocations) and never falls below what is used, and a size that
 * cannot be allocated fails with the array left as it was.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "array.h"
#include "unit.h"

int
main (void)
{
  uint64_t *a = NULL;
  size_t cap = 0, grows = 0, n;

  for (n = 0; n < 1000000; n++) {
    if (n == cap) {
      size_t before = cap;
      uint64_t *p = array_grow (a, &cap, n, sizeof *p, 16);
      if (p == NULL) {
        FAIL ("out of memory at %zu", n);
        break;
      }
      a = p;
      grows++;
      if (cap != (before ? 2 * before : 16))
        FAIL ("capacity went from %zu to %zu", before, cap);
    }
    CHECK (n < cap);
    a[n] = n * 3 + 1;
  }
  for (size_t i = 0; i < n; i++)
    if (a[i] != i * 3 + 1) {
      FAIL ("element %zu is %llu", i, (unsigned long long) a[i]);
      break;
    }
  CHECK (grows == 17);          /* 16 * 2^16 >= 1000000 */

  /* Room already: the same array back, nothing changed. */
  {
    size_t c = cap;
    CHECK (array_grow (a, &c, 5, sizeof *a, 16) == a && c == cap);
  }
  /* Impossible sizes fail and leave the array alone. */
  {
    size_t c = SIZE_MAX / 2 + 1;
    errno = 0;
    CHECK (array_grow (a, &c, c, sizeof *a, 16) == NULL && errno == ENOMEM);
    CHECK (c == SIZE_MAX / 2 + 1);
    CHECK (a[999999] == 999999 * 3 + 1);
  }
  free (a);
  return unit_result ("test-common-array");
}
