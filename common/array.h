/* Arrays that grow by doubling: the one way the code appends to an
 * array of unknown final length (trace records, candidates, flights...).
 */

#ifndef NBDSHADOW_ARRAY_H
#define NBDSHADOW_ARRAY_H

#include <stddef.h>

/* Make room for element n of array (n <= *cap; elements of elem bytes,
 * *cap of them allocated).  Returns the array, moved if it had to grow
 * (to twice *cap, or to initial when empty), and *cap updated; NULL
 * with errno ENOMEM if out of memory, when array and *cap are as they
 * were.
 */
extern void *array_grow (void *array, size_t *cap, size_t n, size_t elem,
                         size_t initial);

#endif /* NBDSHADOW_ARRAY_H */
