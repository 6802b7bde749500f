/* seqmodel.h: sequence models over block deltas.  The delta between two
 * consecutive guest requests (first block of this one minus last block of
 * the previous one) is mapped to one of SEQ_VOCAB classes: the SEQ_VOCAB-1
 * deltas most frequent in the history, and class 0 for everything else.
 * Two models predict the next class from the recent ones and learn online:
 * an n-gram (Markov) counter and a small GRU recurrent network. */
#ifndef NBDSHADOW_SEQMODEL_H
#define NBDSHADOW_SEQMODEL_H

#include <stdint.h>

#include "learner.h"

#define SEQ_VOCAB 64
#define GRU_HIDDEN 16
/* Parameters: input weights 3*H*V (one-hot input: a column per class),
 * recurrent 3*H*H, biases 3*H, output V*H, output biases V. */
#define GRU_NPARAMS (3 * GRU_HIDDEN * SEQ_VOCAB + 3 * GRU_HIDDEN * GRU_HIDDEN \
                     + 3 * GRU_HIDDEN + SEQ_VOCAB * GRU_HIDDEN + SEQ_VOCAB)

enum seq_kind { SEQ_NGRAM = 0, SEQ_GRU = 1 };

struct delta_vocab {
  int64_t delta[SEQ_VOCAB];     /* delta[0] unused: class 0 is "other" */
};

/* Order-2 Markov counts with order-1 back-off. */
struct ngram {
  uint32_t tri[SEQ_VOCAB][SEQ_VOCAB][SEQ_VOCAB];
  uint32_t tri_total[SEQ_VOCAB][SEQ_VOCAB];
  uint32_t bi[SEQ_VOCAB][SEQ_VOCAB];
  uint32_t bi_total[SEQ_VOCAB];
  int prev1, prev2;             /* the last two classes */
};

/* One GRU time step, kept for back-propagation. */
struct gru_step {
  float h_prev[GRU_HIDDEN], z[GRU_HIDDEN], r[GRU_HIDDEN], n[GRU_HIDDEN];
  float un[GRU_HIDDEN], h[GRU_HIDDEN], p[SEQ_VOCAB];
  int x;
};

struct gru {
  float params[GRU_NPARAMS];
  struct gru_step cur;          /* state after the last input */
  bool started;
};

/* A delta predictor as used online: both models are trained, KIND (the
 * better on the history's last part) says whose predictions are used,
 * and only that one learns from the guest's requests. */
struct seqmodel {
  struct delta_vocab vocab;
  struct ngram ngram;
  struct gru gru;
  enum seq_kind kind;
  uint64_t last_block;          /* last block of the previous request */
  bool have_last;
};

/* How well a model predicts: fraction of requests whose first block was
 * among the top-SEQ_TOPK predicted. */
#define SEQ_TOPK 4
struct seq_score {
  double hit_rate[2];           /* [SEQ_NGRAM], [SEQ_GRU] */
  uint64_t evaluated;
};

/* Build the vocabulary from TRACE, train both models on the first 80 %
 * of it, evaluate both online on the last 20 % (learning as they go),
 * and choose the better one.  Deterministic. */
extern int seqmodel_train (struct seqmodel *m, const struct trace *t,
                           uint64_t block_size, struct seq_score *score,
                           char *err);

/* Online use: feed the request [first, last] (blocks); both models learn. */
extern void seqmodel_observe (struct seqmodel *m, uint64_t first,
                              uint64_t last);
/* Up to SEQ_TOPK blocks predicted for the next request; returns count. */
extern int seqmodel_predict (const struct seqmodel *m, uint64_t *blocks,
                             double *probs);

/* ngram.c */
extern void ngram_observe (struct ngram *g, int cls);
extern void ngram_distribution (const struct ngram *g, double *p);

/* gru.c */
extern void gru_init (struct gru *g, uint64_t seed);
extern void gru_train (struct gru *g, const int *classes, size_t n,
                       int epochs);
extern void gru_observe (struct gru *g, int cls, float learning_rate);
extern void gru_distribution (const struct gru *g, double *p);

#endif
