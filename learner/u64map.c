/* u64map.c: open addressing with linear probing; the all-ones key marks
 * an empty slot (no block number reaches it). */
#include <stdlib.h>
#include <string.h>

#include "u64map.h"

#define EMPTY UINT64_MAX

static size_t
slot_of (uint64_t key, size_t cap)
{
  /* Fibonacci hashing spreads consecutive block numbers. */
  return (size_t) ((key * 0x9E3779B97F4A7C15ULL) >> 17) & (cap - 1);
}

void
u64map_free (struct u64map *m)
{
  free (m->keys);
  free (m->vals);
  memset (m, 0, sizeof *m);
}

uint32_t
u64map_get (const struct u64map *m, uint64_t key)
{
  if (m->cap == 0)
    return U64MAP_NONE;
  for (size_t i = slot_of (key, m->cap);; i = (i + 1) & (m->cap - 1)) {
    if (m->keys[i] == key)
      return m->vals[i];
    if (m->keys[i] == EMPTY)
      return U64MAP_NONE;
  }
}

static int
grow (struct u64map *m)
{
  struct u64map bigger = { .cap = m->cap ? m->cap * 2 : 64 };

  bigger.keys = malloc (bigger.cap * sizeof *bigger.keys);
  bigger.vals = malloc (bigger.cap * sizeof *bigger.vals);
  if (!bigger.keys || !bigger.vals) {
    u64map_free (&bigger);
    return -1;
  }
  memset (bigger.keys, 0xff, bigger.cap * sizeof *bigger.keys);
  for (size_t i = 0; i < m->cap; i++)
    if (m->keys[i] != EMPTY)
      u64map_put (&bigger, m->keys[i], m->vals[i]);
  u64map_free (m);
  *m = bigger;
  return 0;
}

int
u64map_put (struct u64map *m, uint64_t key, uint32_t val)
{
  size_t i;

  if (key == EMPTY || ((m->n + 1) * 2 > m->cap && grow (m) == -1))
    return -1;
  for (i = slot_of (key, m->cap); m->keys[i] != EMPTY && m->keys[i] != key;
       i = (i + 1) & (m->cap - 1))
    ;
  if (m->keys[i] == EMPTY)
    m->n++;
  m->keys[i] = key;
  m->vals[i] = val;
  return 0;
}
