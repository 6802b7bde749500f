/* import.c: `nbdshadow import`: any trace format of DESIGN.md to the
 * canonical CSV, optionally split by time into history and future. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "replace-file.h"

static void
usage (FILE *fp)
{
  fprintf (fp,
"usage: nbdshadow import --format FMT IN [-o OUT.csv] [--json]\n"
"                        [--split HIST.csv FUT.csv] [--mode 0600]\n"
"Convert the trace IN (\"-\": stdin) to the canonical CSV\n"
"(ts_us,op,offset,length), sorted by time, on OUT.csv or stdout.\n"
"FMT: csv, nbdkit-log, blkparse, msr, vscsi, disksim, replayer.\n"
"--split also writes the standard scenario's halves: requests of the\n"
"first half of the time span to HIST.csv, the rest to FUT.csv.\n"
"--json prints a summary (requests per op, volume) instead of the CSV\n"
"when no -o is given.\n"
"Files are replaced atomically, with --mode (octal, default 0600).\n");
}

static int
write_file (const char *path, const struct trace *t, mode_t mode)
{
  struct replace_file rf;

  if (replace_file_begin (&rf, path, mode) == -1)
    return die ("%s: %s", path, strerror (errno));
  trace_write_csv (rf.fp, t);
  if (replace_file_commit (&rf, REPLACE_SYNC) == -1)
    return die ("%s: write error: %s", path, strerror (errno));
  return 0;
}

int
cmd_import (int argc, char **argv)
{
  static const struct option opts[] = {
    { "format", required_argument, NULL, 'f' },
    { "output", required_argument, NULL, 'o' },
    { "split", required_argument, NULL, 's' },
    { "json", no_argument, NULL, 'j' },
    { "mode", required_argument, NULL, 'M' },
    { "help", no_argument, NULL, 'h' },
    { NULL }
  };
  const char *format = NULL, *out = NULL, *hist = NULL, *fut = NULL;
  struct trace t = { 0 }, th = { 0 }, tf = { 0 };
  char err[LEARNER_ERRLEN];
  int c, status = 1;
  bool json = false;
  FILE *in;
  uint64_t ops[256] = { 0 };
  mode_t mode = PRIVATE_FILE_MODE;

  while ((c = getopt_long (argc, argv, "f:o:", opts, NULL)) != -1) {
    switch (c) {
    case 'f': format = optarg; break;
    case 'o': out = optarg; break;
    case 's':
      hist = optarg;
      if (optind >= argc)
        return die ("--split needs HIST.csv and FUT.csv");
      fut = argv[optind++];
      break;
    case 'j': json = true; break;
    case 'M':
      if (parse_mode_option (optarg, &mode))
        return 1;
      break;
    case 'h': usage (stdout); return 0;
    default: usage (stderr); return 1;
    }
  }
  if (!format || optind != argc - 1) {
    usage (stderr);
    return 1;
  }
  in = strcmp (argv[optind], "-") == 0 ? stdin : fopen (argv[optind], "r");
  if (!in)
    return die ("%s: %s", argv[optind], strerror (errno));
  if (trace_import (in, format, &t, err) == -1) {
    die ("%s: %s", argv[optind], err);
    goto out;
  }
  if (out ? write_file (out, &t, mode)
      : (!json && trace_write_csv (stdout, &t)))
    goto out;
  if (hist) {
    if (trace_split (&t, &th, &tf, err) == -1) {
      die ("%s", err);
      goto out;
    }
    if (write_file (hist, &th, mode) || write_file (fut, &tf, mode))
      goto out;
  }
  if (json) {
    for (size_t i = 0; i < t.n; i++)
      ops[(unsigned char) t.recs[i].op]++;
    printf ("{\"requests\": %zu, \"reads\": %" PRIu64 ", \"writes\": %"
            PRIu64 ", \"trims\": %" PRIu64 ", \"zeroes\": %" PRIu64
            ", \"flushes\": %" PRIu64 ", \"first_ts_us\": %" PRIu64
            ", \"last_ts_us\": %" PRIu64 ", \"volume_bytes\": %" PRIu64 "}\n",
            t.n, ops['R'], ops['W'], ops['T'], ops['Z'], ops['F'],
            t.recs[0].ts_us, t.recs[t.n - 1].ts_us, trace_volume (&t, 1));
  }
  status = 0;
 out:
  if (in != stdin)
    fclose (in);
  trace_free (&t);
  trace_free (&th);
  trace_free (&tf);
  return status;
}
