/* Arrays that grow by doubling (see array.h). */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "array.h"

void *
array_grow (void *array, size_t *cap, size_t n, size_t elem, size_t initial)
{
  size_t want;
  void *p;

  if (n < *cap)
    return array;
  want = *cap ? *cap * 2 : initial;
  if (want <= n)
    want = n + 1;
  if (want < *cap || want > SIZE_MAX / elem) {
    errno = ENOMEM;
    return NULL;
  }
  if ((p = realloc (array, want * elem)) == NULL)
    return NULL;
  *cap = want;
  return p;
}
