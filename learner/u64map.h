/* u64map.h: an open-addressing hash map from 64-bit keys (block or region
 * numbers) to 32-bit values (indexes into per-block arrays).  Volumes have
 * millions of blocks but traces touch few, so per-block state lives in
 * dense arrays indexed through this map. */
#ifndef NBDSHADOW_U64MAP_H
#define NBDSHADOW_U64MAP_H

#include <stdint.h>
#include <stddef.h>

struct u64map {
  uint64_t *keys;
  uint32_t *vals;
  size_t n, cap;                /* cap is a power of 2 */
};

#define U64MAP_NONE UINT32_MAX

extern void u64map_free (struct u64map *m);
/* Value of KEY or U64MAP_NONE. */
extern uint32_t u64map_get (const struct u64map *m, uint64_t key);
/* Set KEY to VAL (insert or replace). -1 on out of memory, or if KEY is
 * UINT64_MAX (reserved for empty slots). */
extern int u64map_put (struct u64map *m, uint64_t key, uint32_t val);

#endif
