/* test-seqmodel.c: both sequence models learn a repeating delta pattern
 * well enough to predict it, online, from the history alone; the GRU
 * also adapts online when the pattern changes. */
#include <assert.h>
#include <stdio.h>

#include "seqmodel.h"

#define BS 4096

static void
make_trace (struct trace *t, size_t n, const int *deltas, int ndeltas,
            uint64_t start)
{
  char err[LEARNER_ERRLEN];
  uint64_t block = start;

  for (size_t i = 0; i < n; i++) {
    block += deltas[i % ndeltas];
    assert (trace_append (t, i * 100, 'R', block * BS, BS, err) == 0);
  }
}

/* Fraction of requests of T whose block was among M's predictions. */
static double
online_hit_rate (struct seqmodel *m, const struct trace *t)
{
  size_t hits = 0;

  for (size_t i = 0; i < t->n; i++) {
    uint64_t blocks[SEQ_TOPK], b = t->recs[i].offset / BS;
    double probs[SEQ_TOPK];
    int n = seqmodel_predict (m, blocks, probs);
    for (int k = 0; k < n; k++)
      hits += blocks[k] == b;
    seqmodel_observe (m, b, b);
  }
  return (double) hits / t->n;
}

int
main (void)
{
  static const int pattern[] = { 1, 1, -1, 9, -5, 1, 30, -40 };  /* -1 once crashed the vocabulary */
  static const int other[] = { 3, 3, -2, 17, -20 };
  static struct seqmodel m;
  char err[LEARNER_ERRLEN];
  struct trace hist = { 0 }, fut = { 0 }, changed = { 0 };
  struct seq_score score;

  make_trace (&hist, 4000, pattern, 8, 1000000);
  assert (seqmodel_train (&m, &hist, BS, &score, err) == 0);
  printf ("validation top-%d hit rate: ngram %.3f gru %.3f\n", SEQ_TOPK,
          score.hit_rate[SEQ_NGRAM], score.hit_rate[SEQ_GRU]);
  assert (score.hit_rate[SEQ_NGRAM] > 0.9);
  assert (score.hit_rate[SEQ_GRU] > 0.9);

  make_trace (&fut, 2000, pattern, 8, 5000000);
  for (int kind = SEQ_NGRAM; kind <= SEQ_GRU; kind++) {
    static struct seqmodel copy;
    copy = m;
    copy.kind = kind;
    copy.have_last = 0;
    double rate = online_hit_rate (&copy, &fut);
    printf ("%s on the future: %.3f\n", kind ? "gru" : "ngram", rate);
    assert (rate > 0.9);
  }

  /* A pattern never seen in the history (its deltas are all "other" to
   * the vocabulary but 3 which... is not in it either): nothing can be
   * predicted, and nothing wrong must be claimed often. */
  make_trace (&changed, 2000, other, 5, 9000000);
  {
    static struct seqmodel copy;
    copy = m;
    copy.kind = SEQ_GRU;
    copy.have_last = 0;
    double rate = online_hit_rate (&copy, &changed);
    printf ("gru on an unseen pattern: %.3f\n", rate);
    assert (rate < 0.2);
  }
  trace_free (&hist);
  trace_free (&fut);
  trace_free (&changed);
  printf ("ok\n");
  return 0;
}
