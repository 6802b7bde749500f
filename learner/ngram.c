/* ngram.c: the Markov baseline over delta classes: counts of the next
 * class after the last two (trigram), backing off to the last one
 * (bigram) while a two-class context has been seen too rarely. */
#include <string.h>

#include "seqmodel.h"

/* Below this many observations a trigram context is not trusted. */
#define MIN_CONTEXT 3

void
ngram_observe (struct ngram *g, int cls)
{
  g->tri[g->prev2][g->prev1][cls]++;
  g->tri_total[g->prev2][g->prev1]++;
  g->bi[g->prev1][cls]++;
  g->bi_total[g->prev1]++;
  g->prev2 = g->prev1;
  g->prev1 = cls;
}

void
ngram_distribution (const struct ngram *g, double *p)
{
  const uint32_t *counts = g->bi[g->prev1];
  uint32_t total = g->bi_total[g->prev1];

  if (g->tri_total[g->prev2][g->prev1] >= MIN_CONTEXT) {
    counts = g->tri[g->prev2][g->prev1];
    total = g->tri_total[g->prev2][g->prev1];
  }
  for (int c = 0; c < SEQ_VOCAB; c++)
    p[c] = total ? (double) counts[c] / total : 0;
}
