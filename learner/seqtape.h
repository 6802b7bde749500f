/* seqtape.h: the sequence model's predictions over one future, recorded
 * once and played back.  They depend only on the guest's requests (the
 * model learns online from them and from nothing else), not on what was
 * pulled: a simulator replaying one future after one model many times
 * (train's portfolio: every candidate blend, link ratio and kind of
 * source) records them in its first run and plays them back in the
 * others, which then give exactly the stalls they would have given.
 */
#ifndef NBDSHADOW_SEQTAPE_H
#define NBDSHADOW_SEQTAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "seqmodel.h"

struct seq_tape_entry {
  uint64_t blocks[SEQ_TOPK];
  int n;
};

struct seq_tape {
  struct seq_tape_entry *v;
  size_t n, cap;
};

/* The predictions after the guest's request number I (from 0), which
 * touched [FIRST, LAST], into BLOCKS; returns how many.  Played back
 * from T if it holds them; otherwise SEQ observes the request and
 * predicts, and T (if not NULL, and I is the next it lacks) records the
 * result.  One tape serves one model and one future, every run from its
 * start; a run that plays it back must go on playing it back (its SEQ
 * did not learn): past the tape's end it predicts nothing. */
extern int seq_tape_step (struct seq_tape *t, size_t i, bool played,
                          struct seqmodel *seq, uint64_t first, uint64_t last,
                          uint64_t *blocks);
extern void seq_tape_free (struct seq_tape *t);

#endif
