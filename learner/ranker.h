/* ranker.h: a libsvm classifier with probability outputs over unit
 * features: "how likely is this block (or region) to be touched". */
#ifndef NBDSHADOW_RANKER_H
#define NBDSHADOW_RANKER_H

#include <libsvm/svm.h>

#include "blob.h"
#include "history.h"

struct ranker {
  struct svm_model *svm;        /* NULL: one class only, score = prior */
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
extern void ranker_write (const struct ranker *r, struct blob_writer *w);
extern int ranker_read (struct ranker *r, struct blob_reader *in);

#endif
