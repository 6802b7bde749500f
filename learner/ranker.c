/* ranker.c: training, scoring and (de)serialising the libsvm ranker.
 * libsvm keeps pointers into the training problem, so a freshly trained
 * model is immediately written to a blob and read back into memory the
 * ranker owns: one representation, whether trained or loaded. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ranker.h"

static void
quiet (const char *s)
{
  (void) s;                     /* library code never prints */
}

static void
scale (const struct ranker *r, const double *feat, struct svm_node *node)
{
  for (int f = 0; f < NFEATURES; f++) {
    double span = r->fmax[f] - r->fmin[f];
    node[f].index = f + 1;
    node[f].value = span > 0 ? (feat[f] - r->fmin[f]) / span : 0;
  }
  node[NFEATURES].index = -1;
}

int
ranker_train (struct ranker *r, const double (*x)[NFEATURES], const int *y,
              size_t n, char *err)
{
  struct svm_parameter param = {
    .svm_type = C_SVC, .kernel_type = RBF, .gamma = 1.0 / NFEATURES,
    .C = 4, .cache_size = 64, .eps = 1e-3, .shrinking = 1, .probability = 1,
  };
  struct svm_problem prob = { .l = (int) n };
  struct svm_node *nodes = NULL;
  struct svm_model *trained;
  struct blob_writer w = { 0 };
  struct blob_reader rd;
  size_t positives = 0;
  const char *msg;
  int ret = -1;

  memset (r, 0, sizeof *r);
  for (int f = 0; f < NFEATURES; f++) {
    r->fmin[f] = INFINITY;
    r->fmax[f] = -INFINITY;
  }
  for (size_t i = 0; i < n; i++) {
    positives += y[i] != 0;
    for (int f = 0; f < NFEATURES; f++) {
      r->fmin[f] = fmin (r->fmin[f], x[i][f]);
      r->fmax[f] = fmax (r->fmax[f], x[i][f]);
    }
  }
  r->prior = n ? (double) positives / n : 0;
  if (positives == 0 || positives == n)
    return 0;                   /* nothing to separate */

  prob.y = malloc (n * sizeof *prob.y);
  prob.x = malloc (n * sizeof *prob.x);
  nodes = malloc (n * (NFEATURES + 1) * sizeof *nodes);
  if (!prob.y || !prob.x || !nodes) {
    snprintf (err, LEARNER_ERRLEN, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    prob.x[i] = &nodes[i * (NFEATURES + 1)];
    scale (r, x[i], prob.x[i]);
    prob.y[i] = y[i] ? 1 : 0;
  }
  if ((msg = svm_check_parameter (&prob, &param)) != NULL) {
    snprintf (err, LEARNER_ERRLEN, "libsvm: %s", msg);
    goto out;
  }
  /* libsvm's probability fit shuffles with rand(): seed it so the same
   * history always gives the same model.  libsvm prints progress on
   * stdout unless told otherwise. */
  svm_set_print_string_function (quiet);
  srand (1);
  trained = svm_train (&prob, &param);
  {
    struct ranker copy = *r;
    copy.svm = trained;
    ranker_write (&copy, &w);
  }
  svm_free_and_destroy_model (&trained);
  rd = (struct blob_reader) { .p = w.data, .left = w.len };
  if (w.oom || ranker_read (r, &rd) == -1) {
    snprintf (err, LEARNER_ERRLEN, "out of memory");
    goto out;
  }
  ret = 0;
 out:
  free (w.data);
  free (prob.y);
  free (prob.x);
  free (nodes);
  return ret;
}

/* A direct-mapped table: a newer question replaces an older one in its
 * slot.  2^16 slots (5 MiB) answer 60 % of MSN's training questions,
 * 2^20 65 %. */
#define MEMO_BITS 16

struct ranker_memo {
  struct memo_slot {
    double feat[NFEATURES];
    double score;
    bool used;
  } slot[1 << MEMO_BITS];
};

int
ranker_memo_on (struct ranker *r)
{
  if (!r->memo)
    r->memo = calloc (1, sizeof *r->memo);
  return r->memo ? 0 : -1;
}

void
ranker_memo_off (struct ranker *r)
{
  free (r->memo);
  r->memo = NULL;
}

static struct memo_slot *
memo_slot (struct ranker_memo *memo, const double feat[NFEATURES])
{
  uint64_t h = 0, w;

  for (int f = 0; f < NFEATURES; f++) {
    memcpy (&w, &feat[f], sizeof w);
    h = (h ^ w) * 0x9E3779B97F4A7C15ULL;
  }
  return &memo->slot[h >> (64 - MEMO_BITS)];
}

double
ranker_score (const struct ranker *r, const double feat[NFEATURES])
{
  struct svm_node node[NFEATURES + 1];
  struct memo_slot *m = NULL;
  double p[2], score;

  if (!r->svm)
    return r->prior;
  if (r->memo) {
    m = memo_slot (r->memo, feat);
    if (m->used && memcmp (m->feat, feat, sizeof m->feat) == 0)
      return m->score;
  }
  scale (r, feat, node);
  svm_predict_probability (r->svm, node, p);
  score = r->svm->label[0] == 1 ? p[0] : p[1];
  if (m) {
    memcpy (m->feat, feat, sizeof m->feat);
    m->score = score;
    m->used = true;
  }
  return score;
}

void
ranker_free (struct ranker *r)
{
  if (r->svm)
    svm_free_and_destroy_model (&r->svm);
  free (r->memo);
  memset (r, 0, sizeof *r);
}

/* Layout: prior, scaling, then has_svm and the two-class model: kernel
 * parameters, l, rho, probA, probB, labels, nSV, coefficients and the
 * support vectors as dense NFEATURES-vectors. */
void
ranker_write (const struct ranker *r, struct blob_writer *w)
{
  const struct svm_model *m = r->svm;
  uint32_t has_svm = m != NULL;

  BLOB_PUT (w, r->prior);
  blob_put (w, r->fmin, sizeof r->fmin);
  blob_put (w, r->fmax, sizeof r->fmax);
  BLOB_PUT (w, has_svm);
  if (!m)
    return;
  BLOB_PUT (w, m->param.gamma);
  uint64_t l = m->l;
  BLOB_PUT (w, l);
  BLOB_PUT (w, m->rho[0]);
  BLOB_PUT (w, m->probA[0]);
  BLOB_PUT (w, m->probB[0]);
  blob_put (w, m->label, 2 * sizeof (int));
  blob_put (w, m->nSV, 2 * sizeof (int));
  blob_put (w, m->sv_coef[0], l * sizeof (double));
  for (uint64_t i = 0; i < l; i++) {
    double v[NFEATURES] = { 0 };
    for (const struct svm_node *nd = m->SV[i]; nd->index != -1; nd++)
      if (nd->index >= 1 && nd->index <= NFEATURES)
        v[nd->index - 1] = nd->value;
    blob_put (w, v, sizeof v);
  }
}

int
ranker_read (struct ranker *r, struct blob_reader *in)
{
  struct svm_model *m;
  uint32_t has_svm;
  uint64_t l;
  struct svm_node *nodes;

  memset (r, 0, sizeof *r);
  BLOB_GET (in, r->prior);
  blob_get (in, r->fmin, sizeof r->fmin);
  blob_get (in, r->fmax, sizeof r->fmax);
  BLOB_GET (in, has_svm);
  if (in->bad || !has_svm)
    return in->bad || has_svm > 1 ? -1 : 0;

  m = calloc (1, sizeof *m);
  if (!m)
    return -1;
  m->param = (struct svm_parameter) {
    .svm_type = C_SVC, .kernel_type = RBF, .probability = 1
  };
  BLOB_GET (in, m->param.gamma);
  l = blob_get_count (in, (NFEATURES + 1) * sizeof (double));
  m->nr_class = 2;
  m->l = (int) l;
  m->free_sv = 1;
  m->rho = malloc (sizeof (double));
  m->probA = malloc (sizeof (double));
  m->probB = malloc (sizeof (double));
  m->label = malloc (2 * sizeof (int));
  m->nSV = malloc (2 * sizeof (int));
  m->sv_coef = calloc (1, sizeof (double *));
  m->SV = malloc ((l + 1) * sizeof *m->SV);
  nodes = malloc ((l * (NFEATURES + 1) + 1) * sizeof *nodes);
  r->svm = m;
  if (m->SV)
    m->SV[0] = nodes;           /* freed by libsvm as the SV block */
  if (!m->rho || !m->probA || !m->probB || !m->label || !m->nSV ||
      !m->sv_coef || !m->SV || !nodes ||
      !(m->sv_coef[0] = malloc ((l + 1) * sizeof (double))))
    goto bad;
  blob_get (in, m->rho, sizeof (double));
  blob_get (in, m->probA, sizeof (double));
  blob_get (in, m->probB, sizeof (double));
  blob_get (in, m->label, 2 * sizeof (int));
  blob_get (in, m->nSV, 2 * sizeof (int));
  blob_get (in, m->sv_coef[0], l * sizeof (double));
  for (uint64_t i = 0; i < l; i++) {
    double v[NFEATURES];
    blob_get (in, v, sizeof v);
    m->SV[i] = &nodes[i * (NFEATURES + 1)];
    for (int f = 0; f < NFEATURES; f++)
      m->SV[i][f] = (struct svm_node) { .index = f + 1, .value = v[f] };
    m->SV[i][NFEATURES].index = -1;
  }
  if (in->bad || m->nSV[0] < 0 || m->nSV[1] < 0 ||
      (uint64_t) m->nSV[0] + m->nSV[1] != l || l == 0)
    goto bad;
  return 0;
 bad:
  /* libsvm frees the node block as SV[0] only when l > 0. */
  if (m->l == 0 || !m->SV)
    free (nodes);
  ranker_free (r);
  return -1;
}
