/* modelfile.c: the model file.  Header: magic, version, byte-order mark,
 * payload length, SHA-256 of the payload (libcrypto); the payload holds
 * the model's parts in a fixed order.  Loading checks every one of these
 * before trusting a byte, so a truncated or corrupt model is refused. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "blob.h"
#include "errbuf.h"
#include "model.h"
#include "replace-file.h"

static const char MAGIC[8] = "NBDSHMDL";
#define BYTE_ORDER_MARK 0x01020304u
#define HEADER_SIZE (8 + 4 + 4 + 8 + SHA256_DIGEST_LENGTH)

/* Unit statistics field by field: struct padding would make the
 * checksum depend on garbage. */
static void
put_history (struct blob_writer *w, const struct history *h)
{
  uint64_t n = h->n;
  uint32_t shift = h->shift;

  BLOB_PUT (w, n);
  BLOB_PUT (w, shift);
  BLOB_PUT (w, h->t_begin);
  BLOB_PUT (w, h->t_end);
  for (size_t i = 0; i < h->n; i++) {
    const struct unit_stat *u = &h->units[i];
    BLOB_PUT (w, u->unit);
    BLOB_PUT (w, u->first_ts);
    BLOB_PUT (w, u->last_ts);
    BLOB_PUT (w, u->count);
    BLOB_PUT (w, u->writes);
    BLOB_PUT (w, u->seq);
    BLOB_PUT (w, u->distinct);
    BLOB_PUT (w, u->recent);
  }
}

#define UNIT_STAT_BYTES (3 * 8 + 5 * 4)

static int
get_history (struct blob_reader *r, struct history *h)
{
  uint64_t n = blob_get_count (r, UNIT_STAT_BYTES);
  uint32_t shift;

  memset (h, 0, sizeof *h);
  BLOB_GET (r, shift);
  BLOB_GET (r, h->t_begin);
  BLOB_GET (r, h->t_end);
  if (r->bad || shift > 40)
    return -1;
  h->shift = shift;
  h->units = malloc ((n + 1) * sizeof *h->units);
  if (!h->units)
    return -1;
  for (uint64_t i = 0; i < n; i++) {
    struct unit_stat *u = &h->units[i];
    BLOB_GET (r, u->unit);
    BLOB_GET (r, u->first_ts);
    BLOB_GET (r, u->last_ts);
    BLOB_GET (r, u->count);
    BLOB_GET (r, u->writes);
    BLOB_GET (r, u->seq);
    BLOB_GET (r, u->distinct);
    BLOB_GET (r, u->recent);
    if (r->bad || u64map_put (&h->index, u->unit, (uint32_t) i) == -1)
      return -1;
    h->n = i + 1;
  }
  /* history_touch grows the array at powers of two from 64 on. */
  {
    size_t cap = 64;
    while (cap < h->n)
      cap *= 2;
    struct unit_stat *u = realloc (h->units, cap * sizeof *u);
    if (!u)
      return -1;
    h->units = u;
  }
  return 0;
}

/* The region model's fit: the sub-bins as a count (0: none) and both
 * arrays. */
static void
put_fit (struct blob_writer *w, const struct model *m)
{
  uint64_t nsubs = m->fit.sub_p ? m->fit.period * NSUB : 0;

  blob_put (w, m->fit.ring_p, sizeof m->fit.ring_p);
  blob_put (w, m->fit.growth, m->regions.n * sizeof *m->fit.growth);
  BLOB_PUT (w, m->fit.period);
  BLOB_PUT (w, nsubs);
  if (nsubs) {
    blob_put (w, m->fit.sub_rank, nsubs);
    blob_put (w, m->fit.sub_p, nsubs * sizeof *m->fit.sub_p);
  }
}

static void
put_payload (struct blob_writer *w, const struct model *m)
{
  uint32_t shift = m->region_shift, kind = m->seq.kind;
  uint64_t nc = m->ncandidates;

  BLOB_PUT (w, m->block_size);
  BLOB_PUT (w, shift);
  put_history (w, &m->blocks);
  blob_put (w, m->block_scores, m->blocks.n * sizeof (float));
  put_history (w, &m->regions);
  BLOB_PUT (w, nc);
  for (size_t i = 0; i < m->ncandidates; i++) {
    BLOB_PUT (w, m->candidates[i].unit);
    BLOB_PUT (w, m->candidates[i].score);
  }
  ranker_write (&m->block_ranker, w);
  ranker_write (&m->region_ranker, w);
  blob_put (w, m->seq.vocab.delta, sizeof m->seq.vocab.delta);
  BLOB_PUT (w, kind);
  blob_put (w, m->seq.ngram.tri, sizeof m->seq.ngram.tri);
  blob_put (w, m->seq.ngram.tri_total, sizeof m->seq.ngram.tri_total);
  blob_put (w, m->seq.ngram.bi, sizeof m->seq.ngram.bi);
  blob_put (w, m->seq.ngram.bi_total, sizeof m->seq.ngram.bi_total);
  blob_put (w, m->seq.gru.params, sizeof m->seq.gru.params);
  blob_put (w, m->seq_score.hit_rate, sizeof m->seq_score.hit_rate);
  BLOB_PUT (w, m->seq_score.evaluated);
  put_fit (w, m);
  BLOB_PUT (w, m->retouch_rate);
  BLOB_PUT (w, m->expected_new_blocks);
  blob_put (w, m->blend, sizeof m->blend);
  BLOB_PUT (w, m->goes_on_repeat);
}


static int
get_fit (struct blob_reader *r, struct model *m)
{
  uint64_t nsubs;

  blob_get (r, m->fit.ring_p, sizeof m->fit.ring_p);
  m->fit.growth = malloc ((m->regions.n + 1) * sizeof *m->fit.growth);
  if (!m->fit.growth)
    return -1;
  blob_get (r, m->fit.growth, m->regions.n * sizeof *m->fit.growth);
  BLOB_GET (r, m->fit.period);
  nsubs = blob_get_count (r, 1 + sizeof *m->fit.sub_p);
  if (r->bad || (nsubs && nsubs != m->fit.period * NSUB))
    return -1;
  if (nsubs == 0)
    return 0;
  m->fit.sub_rank = malloc (nsubs);
  m->fit.sub_p = malloc (nsubs * sizeof *m->fit.sub_p);
  if (!m->fit.sub_rank || !m->fit.sub_p)
    return -1;
  blob_get (r, m->fit.sub_rank, nsubs);
  blob_get (r, m->fit.sub_p, nsubs * sizeof *m->fit.sub_p);
  return 0;
}

static int
get_payload (struct blob_reader *r, struct model *m)
{
  uint32_t shift, kind;
  uint64_t nc;

  BLOB_GET (r, m->block_size);
  BLOB_GET (r, shift);
  if (r->bad || shift > 40 || m->block_size == 0)
    return -1;
  m->region_shift = shift;
  if (get_history (r, &m->blocks) == -1)
    return -1;
  m->block_scores = malloc ((m->blocks.n + 1) * sizeof (float));
  if (!m->block_scores)
    return -1;
  blob_get (r, m->block_scores, m->blocks.n * sizeof (float));
  if (get_history (r, &m->regions) == -1)
    return -1;
  nc = blob_get_count (r, 12);
  m->candidates = malloc ((nc + 1) * sizeof *m->candidates);
  if (!m->candidates)
    return -1;
  for (uint64_t i = 0; i < nc; i++) {
    BLOB_GET (r, m->candidates[i].unit);
    BLOB_GET (r, m->candidates[i].score);
  }
  m->ncandidates = nc;
  if (ranker_read (&m->block_ranker, r) == -1 ||
      ranker_read (&m->region_ranker, r) == -1)
    return -1;
  blob_get (r, m->seq.vocab.delta, sizeof m->seq.vocab.delta);
  BLOB_GET (r, kind);
  blob_get (r, m->seq.ngram.tri, sizeof m->seq.ngram.tri);
  blob_get (r, m->seq.ngram.tri_total, sizeof m->seq.ngram.tri_total);
  blob_get (r, m->seq.ngram.bi, sizeof m->seq.ngram.bi);
  blob_get (r, m->seq.ngram.bi_total, sizeof m->seq.ngram.bi_total);
  blob_get (r, m->seq.gru.params, sizeof m->seq.gru.params);
  blob_get (r, m->seq_score.hit_rate, sizeof m->seq_score.hit_rate);
  BLOB_GET (r, m->seq_score.evaluated);
  if (get_fit (r, m) == -1)
    return -1;
  BLOB_GET (r, m->retouch_rate);
  BLOB_GET (r, m->expected_new_blocks);
  blob_get (r, m->blend, sizeof m->blend);
  BLOB_GET (r, m->goes_on_repeat);
  if (r->bad || kind > SEQ_GRU || r->left != 0)
    return -1;
  m->seq.kind = kind;
  return 0;
}

/* ---- validation ----
 *
 * A checksum only says the file is what some writer wrote, not that the
 * writer was `nbdshadow train`: every field is checked against what the
 * code using it assumes (a block size that is not a power of two made the
 * filter's block arithmetic corrupt its heap).  New fields join here. */

#define invalid(why, ...) set_error (why, LEARNER_ERRLEN, __VA_ARGS__)

static int
is_probability (double p)
{
  return p >= 0 && p <= 1;      /* false for NaN */
}

/* UNIT_LIMIT: units are below it (block numbers of a disk ending by
 * TRACE_MAX_END, shifted to the history's granularity). */
static int
validate_history (const struct history *h, const char *what,
                  unsigned shift, uint64_t unit_limit, char *why)
{
  if (h->shift != shift)
    return invalid (why, "%s history at granularity %u, expected %u", what,
                    h->shift, shift);
  if (h->t_begin > h->t_end)
    return invalid (why, "%s history ends before it begins", what);
  if (h->n > UINT32_MAX)
    return invalid (why, "%s history has too many units", what);
  for (size_t i = 0; i < h->n; i++) {
    const struct unit_stat *u = &h->units[i];
    if (u->unit >= unit_limit)
      return invalid (why, "%s %" PRIu64 " lies beyond the largest disk",
                      what, u->unit);
    if (u64map_get (&h->index, u->unit) != i)
      return invalid (why, "%s %" PRIu64 " listed twice", what, u->unit);
    if (u->first_ts > u->last_ts || u->writes > u->count ||
        u->seq > u->count || u->recent > u->count)
      return invalid (why, "%s %" PRIu64 ": inconsistent statistics", what,
                      u->unit);
  }
  return 0;
}

static int
validate_ranker (const struct ranker *r, const char *what, char *why)
{
  const struct svm_model *m = r->svm;

  if (!is_probability (r->prior))
    return invalid (why, "%s ranker: prior is not a probability", what);
  for (int f = 0; f < NFEATURES; f++)
    if (!isfinite (r->fmin[f]) || !isfinite (r->fmax[f]) ||
        r->fmin[f] > r->fmax[f])
      return invalid (why, "%s ranker: bad scaling of feature %d", what, f);
  if (!m)
    return 0;
  if (!(isfinite (m->param.gamma) && m->param.gamma > 0) ||
      !isfinite (m->rho[0]) || !isfinite (m->probA[0]) ||
      !isfinite (m->probB[0]))
    return invalid (why, "%s ranker: bad SVM parameters", what);
  for (int i = 0; i < m->l; i++) {
    if (!isfinite (m->sv_coef[0][i]))
      return invalid (why, "%s ranker: bad SVM coefficient", what);
    for (int f = 0; f < NFEATURES; f++)
      if (!isfinite (m->SV[i][f].value))
        return invalid (why, "%s ranker: bad support vector", what);
  }
  return 0;
}

static int
validate_seqmodel (const struct seqmodel *q, char *why)
{
  const struct ngram *g = &q->ngram;

  /* Totals are the sums of their counts: n-gram probabilities stay in
   * [0, 1]. */
  for (int a = 0; a < SEQ_VOCAB; a++) {
    uint64_t bi = 0;
    for (int b = 0; b < SEQ_VOCAB; b++) {
      uint64_t tri = 0;
      for (int c = 0; c < SEQ_VOCAB; c++)
        tri += g->tri[a][b][c];
      if (tri != g->tri_total[a][b])
        return invalid (why, "n-gram counts do not add up");
      bi += g->bi[a][b];
    }
    if (bi != g->bi_total[a])
      return invalid (why, "n-gram counts do not add up");
  }
  for (int i = 0; i < GRU_NPARAMS; i++)
    if (!isfinite (q->gru.params[i]))
      return invalid (why, "GRU parameter %d is not a finite number", i);
  return 0;
}

/* A blend is pull shares: finite, not negative, not all zero. */
static bool
blend_valid (const float blend[NSTRATEGIES])
{
  float total = 0;

  for (int k = 0; k < NSTRATEGIES; k++) {
    if (!(blend[k] >= 0 && blend[k] <= 1e6f))
      return false;
    total += blend[k];
  }
  return total > 0;
}

/* Factors and activities: finite, not negative; sub-bins a permutation
 * of a region's. */
static int
validate_fit (const struct model *m, char *why)
{
  const struct region_fit *f = &m->fit;

  for (int r = 0; r < RINGS; r++)
    for (int a = 0; a < ABINS; a++)
      if (!(f->ring_p[r][a] >= 0 && isfinite (f->ring_p[r][a])))
        return invalid (why, "ring factor %d/%d is out of range", r, a);
  for (size_t i = 0; i < m->regions.n; i++)
    if (!(f->growth[i] >= 0 && isfinite (f->growth[i])))
      return invalid (why, "region growth %zu is out of range", i);
  if (f->period > (TRACE_MAX_END / m->block_size >> m->region_shift) + 1)
    return invalid (why, "a period of %" PRIu64 " regions", f->period);
  for (uint64_t k = 0; f->sub_p && k < f->period; k++) {
    uint32_t seen = 0;
    for (uint32_t j = 0; j < NSUB; j++) {
      float p = f->sub_p[k * NSUB + j];
      if (f->sub_rank[k * NSUB + j] >= NSUB || !(p >= 0 && isfinite (p)))
        return invalid (why, "sub-bin %" PRIu64 "/%u is out of range", k, j);
      seen |= 1U << f->sub_rank[k * NSUB + j];
    }
    if (seen != (1ULL << NSUB) - 1)
      return invalid (why, "the sub-bins of offset %" PRIu64 " are not a "
                      "ranking", k);
  }
  return 0;
}

static int
model_validate (const struct model *m, char *why)
{
  uint64_t max_block;

  if (!learner_block_size_ok (m->block_size))
    return invalid (why, "block size %" PRIu64 " is not a power of two "
                    "from %d to %" PRIu64, m->block_size,
                    LEARNER_MIN_BLOCK_SIZE, LEARNER_MAX_BLOCK_SIZE);
  max_block = TRACE_MAX_END / m->block_size + 1;
  if (m->region_shift > 40)
    return invalid (why, "region of 2^%u blocks", m->region_shift);
  if (validate_history (&m->blocks, "block", 0, max_block, why) == -1 ||
      validate_history (&m->regions, "region", m->region_shift,
                        (max_block >> m->region_shift) + 1, why) == -1)
    return -1;
  for (size_t i = 0; i < m->blocks.n; i++)
    if (!is_probability (m->block_scores[i]))
      return invalid (why, "block score %zu is not a probability", i);
  for (size_t i = 0; i < m->ncandidates; i++)
    if (m->candidates[i].unit > (max_block >> m->region_shift) ||
        !is_probability (m->candidates[i].score))
      return invalid (why, "candidate region %zu is out of range", i);
  if (validate_ranker (&m->block_ranker, "block", why) == -1 ||
      validate_ranker (&m->region_ranker, "region", why) == -1 ||
      validate_seqmodel (&m->seq, why) == -1)
    return -1;
  if (!is_probability (m->seq_score.hit_rate[SEQ_NGRAM]) ||
      !is_probability (m->seq_score.hit_rate[SEQ_GRU]) ||
      !is_probability (m->retouch_rate) ||
      !is_probability (m->goes_on_repeat) ||
      !(m->expected_new_blocks >= 0 && isfinite (m->expected_new_blocks)))
    return invalid (why, "a rate is out of range");
  if (validate_fit (m, why) == -1)
    return -1;
  for (int k = 0; k < NSOURCES; k++)
    for (int f = 0; f < NFUTURES; f++)
      if (!blend_valid (m->blend[k][f]))
        return invalid (why, "the %s source's blend of strategies is not a "
                        "set of pull shares", k == SOURCE_SPARSE ? "sparse"
                        : "dense");
  return 0;
}

int
model_save (const struct model *m, const char *path, mode_t mode, char *err)
{
  struct blob_writer w = { 0 };
  unsigned char digest[SHA256_DIGEST_LENGTH];
  uint32_t version = MODEL_VERSION, bom = BYTE_ORDER_MARK;
  uint64_t len;
  struct replace_file rf;
  int ret = -1;

  put_payload (&w, m);
  if (w.oom) {
    snprintf (err, LEARNER_ERRLEN, "out of memory");
    goto out;
  }
  len = w.len;
  SHA256 (w.data, w.len, digest);
  /* Replaced atomically: a reader never sees half a model. */
  if (replace_file_begin (&rf, path, mode) == -1) {
    snprintf (err, LEARNER_ERRLEN, "%.200s: %s", path, strerror (errno));
    goto out;
  }
  fwrite (MAGIC, 1, sizeof MAGIC, rf.fp);
  fwrite (&version, sizeof version, 1, rf.fp);
  fwrite (&bom, sizeof bom, 1, rf.fp);
  fwrite (&len, sizeof len, 1, rf.fp);
  fwrite (digest, 1, sizeof digest, rf.fp);
  fwrite (w.data, 1, w.len, rf.fp);
  if (replace_file_commit (&rf, REPLACE_SYNC) == -1) {
    snprintf (err, LEARNER_ERRLEN, "%.200s: write: %s", path,
              strerror (errno));
    goto out;
  }
  ret = 0;
 out:
  free (w.data);
  return ret;
}

static int
load_fail (char *err, const char *path, const char *reason)
{
  snprintf (err, LEARNER_ERRLEN, "%.150s: %s", path, reason);
  return -1;
}

struct model *
model_load (const char *path, char *err)
{
  FILE *fp = fopen (path, "rb");
  unsigned char header[HEADER_SIZE], digest[SHA256_DIGEST_LENGTH];
  uint32_t version, bom;
  uint64_t len;
  uint8_t *payload = NULL;
  struct model *m = NULL;
  struct blob_reader r;
  char why[LEARNER_ERRLEN];
  long size;

  if (!fp) {
    snprintf (err, LEARNER_ERRLEN, "%.200s: %s", path, strerror (errno));
    return NULL;
  }
  if (fread (header, 1, HEADER_SIZE, fp) != HEADER_SIZE) {
    load_fail (err, path, "not an nbdshadow model (file too short)");
    goto out;
  }
  if (memcmp (header, MAGIC, sizeof MAGIC) != 0) {
    load_fail (err, path, "not an nbdshadow model (bad magic)");
    goto out;
  }
  memcpy (&version, header + 8, 4);
  memcpy (&bom, header + 12, 4);
  memcpy (&len, header + 16, 8);
  if (bom != BYTE_ORDER_MARK) {
    load_fail (err, path, "model written on a machine of other byte order");
    goto out;
  }
  if (version != MODEL_VERSION) {
    snprintf (err, LEARNER_ERRLEN, "%.100s: model version %" PRIu32
              " %s; retrain it with nbdshadow train (this program reads "
              "version %d)", path, version, version < MODEL_VERSION
              ? "is from an older nbdshadow" : "is not supported",
              MODEL_VERSION);
    goto out;
  }
  if (fseek (fp, 0, SEEK_END) == -1 || (size = ftell (fp)) < 0 ||
      fseek (fp, HEADER_SIZE, SEEK_SET) == -1) {
    load_fail (err, path, strerror (errno));
    goto out;
  }
  if ((uint64_t) size - HEADER_SIZE != len) {
    snprintf (err, LEARNER_ERRLEN, "%.150s: truncated or corrupt model: "
              "header says %" PRIu64 " payload bytes, file has %ld", path,
              len, size - HEADER_SIZE);
    goto out;
  }
  payload = malloc (len + 1);
  if (!payload || fread (payload, 1, len, fp) != len) {
    load_fail (err, path, payload ? "read error" : "out of memory");
    goto out;
  }
  SHA256 (payload, len, digest);
  if (memcmp (digest, header + 24, sizeof digest) != 0) {
    load_fail (err, path, "corrupt model: SHA-256 checksum mismatch");
    goto out;
  }
  m = calloc (1, sizeof *m);
  r = (struct blob_reader) { .p = payload, .left = len };
  if (!m || get_payload (&r, m) == -1) {
    load_fail (err, path, "malformed model payload");
    model_free (m);
    m = NULL;
  }
  else if (model_validate (m, why) == -1) {
    snprintf (err, LEARNER_ERRLEN, "%.90s: invalid model: %.140s", path, why);
    model_free (m);
    m = NULL;
  }
 out:
  free (payload);
  fclose (fp);
  return m;
}
