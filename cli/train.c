/* train.c: `nbdshadow train`: fit the predictor on a history trace and
 * write the model file. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "model.h"
#include "replace-file.h"

static void
usage (FILE *fp)
{
  fprintf (fp,
"usage: nbdshadow train --trace HIST.csv [--block-size 64K]\n"
"                       [--region-blocks N] -o MODEL [--json]\n"
"                       [--mode 0600]\n"
"Fit the access predictor on the canonical trace HIST.csv: per-block and\n"
"per-region libsvm rankers, the delta sequence models (n-gram and GRU;\n"
"the better one on the history's last fifth is used online), and the\n"
"blends of pull strategies for a dense and for a sparse source (scored by\n"
"replaying the history's second half against a model of its first, and\n"
"the history after itself): one to start with, one to follow once the\n"
"guest shows it is doing its history's work again.\n"
"--region-blocks: region size in blocks (a power of 2); default: chosen\n"
"from the history.\n"
"MODEL is replaced atomically, with --mode (octal, default 0600).\n");
}

/* "regions 1 + sequence 4" */
static const char *
blend_text (const float *blend, char *buf, size_t len)
{
  size_t at = 0;

  buf[0] = '\0';
  for (int k = 0; k < NSTRATEGIES && at < len; k++)
    if (blend[k] > 0)
      at += snprintf (buf + at, len - at, "%s%s %g", at ? " + " : "",
                      strategy_names[k], blend[k]);
  return buf;
}

/* A kind of source's blends: "B; rerun: B". */
static const char *
blends_text (const float blends[NFUTURES][NSTRATEGIES], char *buf,
             size_t len)
{
  char either[128], rerun[128];

  snprintf (buf, len, "%s; rerun: %s",
            blend_text (blends[FUTURE_EITHER], either, sizeof either),
            blend_text (blends[FUTURE_RERUN], rerun, sizeof rerun));
  return buf;
}

int
train_model_file (const char *trace_path, const struct train_options *topts,
                  const char *out, mode_t mode, FILE *report, int json)
{
  struct trace t = { 0 };
  struct model *m = NULL;
  uint64_t start;
  char err[LEARNER_ERRLEN], dense[256], sparse[256];
  int status = -1;
  double secs;

  if (trace_load_csv (trace_path, &t, err) == -1)
    return die ("%s", err), -1;
  start = time_ns ();
  m = model_train (&t, topts, err);
  secs = seconds_since (start);
  if (!m) {
    die ("train: %s", err);
    goto out;
  }
  if (model_save (m, out, mode, err) == -1) {
    die ("%s", err);
    goto out;
  }
  blends_text (m->blend[SOURCE_DENSE], dense, sizeof dense);
  blends_text (m->blend[SOURCE_SPARSE], sparse, sizeof sparse);
  if (json)
    fprintf (report, "{\"requests\": %zu, \"train_seconds\": %.3f, "
             "\"history_blocks\": %zu, \"regions\": %zu, "
             "\"region_blocks\": %llu, \"candidate_regions\": %zu, "
             "\"block_svs\": %d, \"region_svs\": %d, "
             "\"ngram_hit_rate\": %.4f, \"gru_hit_rate\": %.4f, "
             "\"sequence_model\": \"%s\", \"blend_dense\": \"%s\", "
             "\"blend_sparse\": \"%s\"}\n",
             t.n, secs, m->blocks.n, m->regions.n,
             1ULL << m->region_shift, m->ncandidates,
             m->block_ranker.svm ? m->block_ranker.svm->l : 0,
             m->region_ranker.svm ? m->region_ranker.svm->l : 0,
             m->seq_score.hit_rate[SEQ_NGRAM], m->seq_score.hit_rate[SEQ_GRU],
             m->seq.kind == SEQ_GRU ? "gru" : "ngram", dense, sparse);
  else
    fprintf (report, "trained on %zu requests in %.2f s: %zu history blocks, "
             "%zu candidate regions of %llu blocks\n"
             "sequence models, top-%d next-block hit rate on the history's "
             "last fifth: n-gram %.2f%%, GRU %.2f%% -> using %s\n"
             "blend of pull strategies: dense source %s; sparse source %s\n",
             t.n, secs, m->blocks.n, m->ncandidates, 1ULL << m->region_shift,
             SEQ_TOPK, 100 * m->seq_score.hit_rate[SEQ_NGRAM],
             100 * m->seq_score.hit_rate[SEQ_GRU],
             m->seq.kind == SEQ_GRU ? "GRU" : "n-gram", dense, sparse);
  status = 0;
 out:
  model_free (m);
  trace_free (&t);
  return status;
}

int
cmd_train (int argc, char **argv)
{
  static const struct option opts[] = {
    { "trace", required_argument, NULL, 't' },
    { "block-size", required_argument, NULL, 'b' },
    { "region-blocks", required_argument, NULL, 'r' },
    { "output", required_argument, NULL, 'o' },
    { "json", no_argument, NULL, 'j' },
    { "mode", required_argument, NULL, 'M' },
    { "help", no_argument, NULL, 'h' },
    { NULL }
  };
  struct train_options topts = { .block_size = 65536, .region_shift = -1 };
  const char *trace_path = NULL, *out = NULL;
  int c, json = 0;
  uint64_t rb;
  mode_t mode = PRIVATE_FILE_MODE;

  while ((c = getopt_long (argc, argv, "t:b:o:", opts, NULL)) != -1) {
    switch (c) {
    case 't': trace_path = optarg; break;
    case 'b':
      if (parse_block_size (optarg, &topts.block_size) == -1)
        return die ("--block-size: expected a power of 2 from 512 to 64M, got \"%s\"",
                    optarg);
      break;
    case 'r':
      if (parse_size (optarg, &rb) == -1 || rb == 0 || (rb & (rb - 1)) ||
          rb > (1 << 20))
        return die ("--region-blocks: expected a power of 2, got \"%s\"",
                    optarg);
      topts.region_shift = __builtin_ctzll (rb);
      break;
    case 'o': out = optarg; break;
    case 'j': json = 1; break;
    case 'M':
      if (parse_mode_option (optarg, &mode))
        return 1;
      break;
    case 'h': usage (stdout); return 0;
    default: usage (stderr); return 1;
    }
  }
  if (!trace_path || !out || optind != argc) {
    usage (stderr);
    return 1;
  }
  return train_model_file (trace_path, &topts, out, mode, stdout, json) == -1;
}
