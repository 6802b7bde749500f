/* seqmodel.c: the delta vocabulary, online use of the two sequence
 * models, and the offline training that picks the better one. */
#include <stdlib.h>
#include <string.h>

#include "seqmodel.h"
#include "u64map.h"

#define GRU_EPOCHS 2
#define ONLINE_RATE 0.01f
#define TRAIN_FRACTION 0.8
/* A predicted block is only worth pulling above this probability. */
#define MIN_PROB 0.02

static int
class_of (const struct delta_vocab *v, int64_t delta)
{
  for (int c = 1; c < SEQ_VOCAB; c++)
    if (v->delta[c] == delta)
      return c;
  return 0;
}

struct delta_count { int64_t delta; uint32_t count; };

static int
by_count_desc (const void *a, const void *b)
{
  const struct delta_count *x = a, *y = b;
  if (x->count != y->count)
    return x->count < y->count ? 1 : -1;
  return x->delta < y->delta ? -1 : x->delta > y->delta;
}

/* The request-to-request deltas of TRACE, in blocks. */
static int64_t *
trace_deltas (const struct trace *t, uint64_t block_size, size_t *n)
{
  int64_t *d = malloc ((t->n + 1) * sizeof *d);
  uint64_t first, last, prev_last = 0;
  int have_prev = 0;

  *n = 0;
  if (!d)
    return NULL;
  for (size_t i = 0; i < t->n; i++) {
    if (!trace_rec_blocks (&t->recs[i], block_size, &first, &last))
      continue;
    if (have_prev)
      d[(*n)++] = (int64_t) (first - prev_last);
    prev_last = last;
    have_prev = 1;
  }
  return d;
}

/* Deltas as map keys: flipping the sign bit keeps -1 away from the map's
 * reserved all-ones key (only a delta of 2^63 - 1 blocks would hit it). */
static uint64_t
delta_key (int64_t delta)
{
  return (uint64_t) delta ^ (1ULL << 63);
}

static int
build_vocab (struct delta_vocab *v, const int64_t *deltas, size_t n)
{
  struct u64map index = { 0 };
  struct delta_count *counts = malloc ((n + 1) * sizeof *counts);
  size_t ncounts = 0;

  if (!counts)
    return -1;
  for (size_t i = 0; i < n; i++) {
    uint32_t j = u64map_get (&index, delta_key (deltas[i]));
    if (j == U64MAP_NONE) {
      if (u64map_put (&index, delta_key (deltas[i]), ncounts) == -1) {
        free (counts);
        u64map_free (&index);
        return -1;
      }
      counts[ncounts++] = (struct delta_count) { deltas[i], 1 };
    }
    else
      counts[j].count++;
  }
  qsort (counts, ncounts, sizeof *counts, by_count_desc);
  memset (v, 0, sizeof *v);
  /* Unused classes get a delta no request produces in practice. */
  for (int c = 1; c < SEQ_VOCAB; c++)
    v->delta[c] = (size_t) c <= ncounts ? counts[c - 1].delta : INT64_MIN + c;
  free (counts);
  u64map_free (&index);
  return 0;
}

void
seqmodel_observe (struct seqmodel *m, uint64_t first, uint64_t last)
{
  if (m->have_last) {
    int cls = class_of (&m->vocab, (int64_t) (first - m->last_block));
    /* Only the model whose predictions are used learns: the other's
     * state reaches no prediction, and the GRU's step costs the guest's
     * path several times the n-gram's. */
    if (m->kind == SEQ_GRU)
      gru_observe (&m->gru, cls, ONLINE_RATE);
    else
      ngram_observe (&m->ngram, cls);
  }
  m->last_block = last;
  m->have_last = true;
}

static int
predict_with (const struct seqmodel *m, enum seq_kind kind, uint64_t *blocks,
              double *probs)
{
  double p[SEQ_VOCAB];
  int n = 0;

  if (!m->have_last)
    return 0;
  if (kind == SEQ_GRU)
    gru_distribution (&m->gru, p);
  else
    ngram_distribution (&m->ngram, p);
  p[0] = 0;                     /* "other" names no block */
  while (n < SEQ_TOPK) {
    int best = 0;
    for (int c = 1; c < SEQ_VOCAB; c++)
      if (p[c] > p[best])
        best = c;
    if (p[best] < MIN_PROB)
      break;
    blocks[n] = m->last_block + (uint64_t) m->vocab.delta[best];
    probs[n++] = p[best];
    p[best] = 0;
  }
  return n;
}

int
seqmodel_predict (const struct seqmodel *m, uint64_t *blocks, double *probs)
{
  return predict_with (m, m->kind, blocks, probs);
}

int
seqmodel_train (struct seqmodel *m, const struct trace *t,
                uint64_t block_size, struct seq_score *score, char *err)
{
  size_t n, ntrain;
  int64_t *deltas = trace_deltas (t, block_size, &n);
  int *classes = NULL;
  uint64_t hits[2] = { 0, 0 };

  memset (score, 0, sizeof *score);
  if (!deltas || build_vocab (&m->vocab, deltas, n) == -1 ||
      !(classes = malloc ((n + 1) * sizeof *classes))) {
    free (deltas);
    snprintf (err, LEARNER_ERRLEN, "out of memory");
    return -1;
  }
  for (size_t i = 0; i < n; i++)
    classes[i] = class_of (&m->vocab, deltas[i]);
  ntrain = (size_t) (n * TRAIN_FRACTION);

  memset (&m->ngram, 0, sizeof m->ngram);
  for (size_t i = 0; i < ntrain; i++)
    ngram_observe (&m->ngram, classes[i]);
  gru_init (&m->gru, 42);
  gru_train (&m->gru, classes, ntrain, GRU_EPOCHS);
  /* Warm the GRU's state on the end of the training part. */
  for (size_t i = ntrain > 64 ? ntrain - 64 : 0; i < ntrain; i++)
    gru_observe (&m->gru, classes[i], 0);

  /* Online evaluation on the rest, exactly as the filter would run. */
  for (size_t i = ntrain; i < n; i++) {
    for (int kind = SEQ_NGRAM; kind <= SEQ_GRU; kind++) {
      double p[SEQ_VOCAB];
      int best = 0;
      if (kind == SEQ_GRU)
        gru_distribution (&m->gru, p);
      else
        ngram_distribution (&m->ngram, p);
      /* Top-k hit: the true class is among the SEQ_TOPK likeliest. */
      for (int c = 1; c < SEQ_VOCAB; c++)
        if (p[c] > p[classes[i]])
          best++;
      hits[kind] += classes[i] != 0 && best < SEQ_TOPK &&
                    p[classes[i]] >= MIN_PROB;
    }
    ngram_observe (&m->ngram, classes[i]);
    gru_observe (&m->gru, classes[i], ONLINE_RATE);
  }
  score->evaluated = n - ntrain;
  for (int kind = SEQ_NGRAM; kind <= SEQ_GRU; kind++)
    score->hit_rate[kind] = score->evaluated
      ? (double) hits[kind] / score->evaluated : 0;
  m->kind = score->hit_rate[SEQ_GRU] > score->hit_rate[SEQ_NGRAM]
    ? SEQ_GRU : SEQ_NGRAM;
  m->have_last = false;
  free (deltas);
  free (classes);
  return 0;
}
