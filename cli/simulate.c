/* simulate.c: `nbdshadow simulate`: run pull policies through the
 * standard scenario (learner/sim.c) and report stalls, copy time and the
 * gap closed between sequential and oracle. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "model.h"
#include "order.h"
#include "replace-file.h"

#define MAX_POLICIES 16

static void
usage (FILE *fp)
{
  fprintf (fp,
"usage: nbdshadow simulate --history HIST.csv --future FUT.csv\n"
"         --policy P[,P...]|all [--model MODEL] [--block-size 64K]\n"
"         [--bandwidth BYTES_PER_S | --bandwidth-ratio R] [--rtt 1ms]\n"
"         [--sparse] [--seq-model ngram|gru] [--timing] [--json]\n"
"         [--plot out.svg [--mode 0600]]\n"
"Replay FUT.csv open-loop while the background copy pulls blocks in each\n"
"policy's order (none, sequential, frequency, first-access, predict,\n"
"oracle; all = every one).  Policies needing a model train one on\n"
"HIST.csv unless --model is given.  --bandwidth-ratio 1 (the default)\n"
"copies the volume in exactly the future's duration.  --sparse: only\n"
"blocks touched in history or future are allocated (and copied).\n"
"--seq-model overrides the model's choice of sequence model.  --timing\n"
"adds the mean predictor cost per request (observe_us: on the guest's\n"
"path; next_us: choosing pulls, incl. deferred re-ranking; not\n"
"deterministic).  Output: a table, or with --json one object per policy\n"
"(an array when several): requests, stalls, stall_ratio, stall_seconds,\n"
"demand_blocks (fetched while the guest waited), time_to_full_copy,\n"
"gap_closed.  The plot is replaced atomically, with --mode (octal,\n"
"default 0600).\n");
}

static int
split_policies (char *list, const char **names)
{
  int n = 0;
  char *save, *p;

  if (strcmp (list, "all") == 0) {
    for (int i = 0; order_policies[i]; i++)
      names[n++] = order_policies[i];
    return n;
  }
  for (p = strtok_r (list, ",", &save); p; p = strtok_r (NULL, ",", &save)) {
    if (n == MAX_POLICIES)
      return -1;
    names[n++] = p;
  }
  return n;
}

static int
needs_model (const char *policy)
{
  return strcmp (policy, "none") && strcmp (policy, "sequential") &&
         strcmp (policy, "oracle");
}

int
cmd_simulate (int argc, char **argv)
{
  static const struct option opts[] = {
    { "history", required_argument, NULL, 'H' },
    { "future", required_argument, NULL, 'F' },
    { "policy", required_argument, NULL, 'p' },
    { "model", required_argument, NULL, 'm' },
    { "block-size", required_argument, NULL, 'b' },
    { "bandwidth", required_argument, NULL, 'B' },
    { "bandwidth-ratio", required_argument, NULL, 'R' },
    { "rtt", required_argument, NULL, 'r' },
    { "sparse", no_argument, NULL, 's' },
    { "seq-model", required_argument, NULL, 'S' },
    { "timing", no_argument, NULL, 'T' },
    { "json", no_argument, NULL, 'j' },
    { "plot", required_argument, NULL, 'P' },
    { "mode", required_argument, NULL, 'M' },
    { "help", no_argument, NULL, 'h' },
    { NULL }
  };
  struct sim_config cfg = {
    .block_size = 65536, .bandwidth_ratio = 1, .rtt_s = 1e-3
  };
  const char *hist_path = NULL, *fut_path = NULL, *model_path = NULL;
  const char *plot = NULL, *seq_model = NULL;
  const char *names[MAX_POLICIES];
  char *policy_list = NULL, err[LEARNER_ERRLEN];
  struct trace hist = { 0 }, fut = { 0 };
  struct sim_scenario sc = { 0 };
  struct sim_result *res = NULL, seq_res, oracle_res;
  struct model *m = NULL;
  int c, n, json = 0, timing = 0, status = 1;
  uint64_t bw;
  mode_t mode = PRIVATE_FILE_MODE;

  while ((c = getopt_long (argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'H': hist_path = optarg; break;
    case 'F': fut_path = optarg; break;
    case 'p': policy_list = optarg; break;
    case 'm': model_path = optarg; break;
    case 'b':
      if (parse_block_size (optarg, &cfg.block_size) == -1)
        return die ("--block-size: expected a power of 2 from 512 to 64M, got \"%s\"",
                    optarg);
      break;
    case 'B':
      if (parse_size (optarg, &bw) == -1 || bw == 0)
        return die ("--bandwidth: expected bytes per second, got \"%s\"",
                    optarg);
      cfg.bandwidth = (double) bw;
      break;
    case 'R':
      if (parse_positive (optarg, &cfg.bandwidth_ratio) == -1)
        return die ("--bandwidth-ratio: expected a positive number, got "
                    "\"%s\"", optarg);
      break;
    case 'r':
      if (parse_duration (optarg, &cfg.rtt_s) == -1)
        return die ("--rtt: expected a duration like 1ms, got \"%s\"", optarg);
      break;
    case 's': cfg.sparse = true; break;
    case 'S':
      if (strcmp (optarg, "ngram") && strcmp (optarg, "gru"))
        return die ("--seq-model: ngram or gru, got \"%s\"", optarg);
      seq_model = optarg;
      break;
    case 'T': timing = 1; break;
    case 'j': json = 1; break;
    case 'P': plot = optarg; break;
    case 'M':
      if (parse_mode_option (optarg, &mode))
        return 1;
      break;
    case 'h': usage (stdout); return 0;
    default: usage (stderr); return 1;
    }
  }
  if (!hist_path || !fut_path || !policy_list || optind != argc) {
    usage (stderr);
    return 1;
  }
  n = split_policies (policy_list, names);
  if (n <= 0)
    return die ("--policy: expected 1 to %d policies", MAX_POLICIES);
  res = calloc (n, sizeof *res);
  if (!res)
    return die ("out of memory");
  if (trace_load_csv (hist_path, &hist, err) == -1 ||
      trace_load_csv (fut_path, &fut, err) == -1) {
    die ("%s", err);
    goto out;
  }
  for (int i = 0; i < n; i++)
    if (needs_model (names[i]) && !m) {
      m = model_path ? model_load (model_path, err)
        : model_train (&hist, &(struct train_options) {
                         .block_size = cfg.block_size, .region_shift = -1 },
                       err);
      if (!m) {
        die ("%s", err);
        goto out;
      }
      if (seq_model)
        m->seq.kind = strcmp (seq_model, "gru") == 0 ? SEQ_GRU : SEQ_NGRAM;
    }
  if (sim_prepare (&sc, &hist, &fut, &cfg, err) == -1) {
    die ("%s", err);
    goto out;
  }
  /* The gap closed is measured between these two. */
  if (sim_run (&sc, "sequential", NULL, &seq_res, err) == -1 ||
      sim_run (&sc, "oracle", NULL, &oracle_res, err) == -1) {
    die ("%s", err);
    goto out;
  }
  for (int i = 0; i < n; i++)
    if (sim_run (&sc, names[i], m, &res[i], err) == -1) {
      die ("%s", err);
      goto out;
    }

  if (!json)
    printf ("%-13s %9s %9s %8s %11s %11s %8s\n", "policy", "requests",
            "stalls", "ratio", "stall_s", "full_copy_s", "gap");
  if (json && n > 1)
    printf ("[\n");
  for (int i = 0; i < n; i++) {
    const struct sim_result *r = &res[i];
    double gap = sim_gap_closed (seq_res.stalls, oracle_res.stalls, r->stalls);
    if (!json) {
      printf ("%-13s %9llu %9llu %8.4f %11.3f ", r->policy,
              (unsigned long long) r->requests,
              (unsigned long long) r->stalls, r->stall_ratio,
              r->stall_seconds);
      if (r->time_to_full_copy >= 0)
        printf ("%11.3f ", r->time_to_full_copy);
      else
        printf ("%11s ", "never");
      if (isfinite (gap))
        printf ("%8.3f", gap);
      else
        printf ("%8s", "-");
      if (timing)
        printf ("  observe %.2f us, next %.2f us per request",
                r->observe_us, r->next_us);
      printf ("\n");
      continue;
    }
    printf ("{\"policy\": \"%s\", \"requests\": %llu, \"stalls\": %llu, ",
            r->policy, (unsigned long long) r->requests,
            (unsigned long long) r->stalls);
    print_json_number ("stall_ratio", r->stall_ratio, ", ");
    print_json_number ("stall_seconds", r->stall_seconds, ", ");
    printf ("\"demand_blocks\": %llu, ", (unsigned long long) r->demand_blocks);
    print_json_number ("time_to_full_copy", r->time_to_full_copy >= 0
                       ? r->time_to_full_copy : NAN, ", ");
    print_json_number ("gap_closed", gap, ", ");
    if (timing) {
      print_json_number ("observe_us", r->observe_us, ", ");
      print_json_number ("next_us", r->next_us, ", ");
    }
    printf ("\"sparse\": %s, \"block_size\": %llu, \"blocks_total\": %llu, "
            "\"blocks_to_copy\": %llu, ", cfg.sparse ? "true" : "false",
            (unsigned long long) cfg.block_size,
            (unsigned long long) sc.nblocks,
            (unsigned long long) sc.blocks_to_copy);
    print_json_number ("bandwidth", sc.bandwidth, ", ");
    print_json_number ("window_seconds", sc.duration_us / 1e6, "}");
    printf (json && n > 1 && i < n - 1 ? ",\n" : "\n");
  }
  if (json && n > 1)
    printf ("]\n");
  if (plot) {
    char title[256];
    snprintf (title, sizeof title, "%s, bandwidth %.3g MB/s%s", fut_path,
              sc.bandwidth / 1e6, cfg.sparse ? ", sparse" : "");
    if (plot_svg (plot, res, n, title, mode) == -1)
      goto out;
  }
  status = 0;
 out:
  sim_scenario_free (&sc);
  model_free (m);
  trace_free (&hist);
  trace_free (&fut);
  free (res);
  return status;
}
