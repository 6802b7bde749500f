/* ranker.h: a libsvm classifier with probability outputs over unit
 * features: "how likely is this block (or region) to be touched". */
#ifndef NBDSHADOW_RANKER_H
#define NBDSHADOW_RANKER_H

#include <libsvm/svm.h>

#include "blob.h"
#include "history.h"

struct ranker_memo;

struct ranker {
  struct svm_model *svm;        /* NULL: one class only, score = prior */
  struct ranker_memo *memo;     /* NULL unless ranker_memo_on */
  double prior;                 /* fraction of positive training samples */
  double fmin[NFEATURES], fmax[NFEATURES];      /* min-max scaling */
};

/* Fit on N samples X with labels Y (0/1). Deterministic. */
extern int ranker_train (struct ranker *r, const double (*x)[NFEATURES],
                         const int *y, size_t n, char *err);
/* Probability that the unit with features FEAT is touched. */
extern double ranker_score (const struct ranker *r,
                            const double feat[NFEATURES]);
extern void ranker_free (struct ranker *r);
/* Remember scores by their features (exactly: the same features give
 * the same score as without) until ranker_memo_off or ranker_free.
 * train replays one future after one model for every candidate blend,
 * and the region model asks the same questions in each replay.  -1:
 * out of memory (scores are then computed every time). */
extern int ranker_memo_on (struct ranker *r);
extern void ranker_memo_off (struct ranker *r);
extern void ranker_write (const struct ranker *r, struct blob_writer *w);
extern int ranker_read (struct ranker *r, struct blob_reader *in);

#endif
