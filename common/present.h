/* The one question a pull order (learner/order.h) and the shadowing
 * engine (proxy/engine.h) ask of whoever owns the shadow: does block
 * need no pull any more (local already, or being fetched)?  One type
 * for both, so the filter answers both with the same function.
 */

#ifndef NBDSHADOW_PRESENT_H
#define NBDSHADOW_PRESENT_H

#include <stdbool.h>
#include <stdint.h>

typedef bool (*block_present_fn) (void *opaque, uint64_t block);

#endif /* NBDSHADOW_PRESENT_H */
