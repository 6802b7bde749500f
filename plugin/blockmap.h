/* The block map's insides, shared by its two files: blockmap.c (the
 * block states, the pending table, guest writes) and fetch.c (fetching
 * from the source).  Nothing else in the filter uses these: its
 * interface is the blockmap_* functions in shadow.h.
 */

#ifndef NBDSHADOW_BLOCKMAP_H
#define NBDSHADOW_BLOCKMAP_H

#include <stdint.h>

#include "shadow.h"

/* blockmap.c */
extern uint64_t present_set_word (uint64_t w, uint64_t mask);
extern unsigned block_sectors (uint64_t b);
/* The pending table; entries are protected by their stripe's lock. */
extern struct stripe *stripe_of (uint64_t b);
extern struct pending *lookup (uint64_t b);
extern struct pending *lookup_or_create (uint64_t b);
extern void put_ref (struct pending *e);
extern void settle (struct pending *e);

/* fetch.c */
extern int fetch_run (struct pending **ents, uint64_t n, int *err);
extern int wait_fetch (struct pending *e, int *err);

#endif /* NBDSHADOW_BLOCKMAP_H */
