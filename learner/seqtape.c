/* seqtape.c: the sequence model's predictions, recorded and played back
 * (seqtape.h). */
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "seqtape.h"

int
seq_tape_step (struct seq_tape *t, size_t i, bool played,
               struct seqmodel *seq, uint64_t first, uint64_t last,
               uint64_t *blocks)
{
  double probs[SEQ_TOPK];
  int n;

  if (t && i < t->n) {
    memcpy (blocks, t->v[i].blocks, t->v[i].n * sizeof *blocks);
    return t->v[i].n;
  }
  if (played)
    return 0;
  seqmodel_observe (seq, first, last);
  n = seqmodel_predict (seq, blocks, probs);
  if (t && i == t->n) {
    if (t->n == t->cap) {
      struct seq_tape_entry *v = array_grow (t->v, &t->cap, t->n,
                                             sizeof *v, 1024);
      if (!v)
        return n;               /* unrecorded: later runs compute it */
      t->v = v;
    }
    memcpy (t->v[t->n].blocks, blocks, n * sizeof *blocks);
    t->v[t->n++].n = n;
  }
  return n;
}

void
seq_tape_free (struct seq_tape *t)
{
  free (t->v);
  memset (t, 0, sizeof *t);
}
