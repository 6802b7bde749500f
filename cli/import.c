/* import.c: `nbdshadow import`: any trace format of DESIGN.md to the
 * canonical CSV, optionally split by time into history and future. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void
usage (FILE *fp)
{
  fprintf (fp,
"usage: nbdshadow import --format FMT IN [-o OUT.csv] [--json]\n"
"                        [--split HIST.csv FUT.csv]\n"
"Convert the trace IN (\"-\": stdin) to the canonical CSV\n"
"(ts_us,op,offset,length), sorted by time, on OUT.csv or stdout.\n"
"FMT: csv, nbdkit-log, blkparse, msr, vscsi, disksim, replayer.\n"
"--split also writes the standard scenario's halves: requests of the\n"
"first half of the time span to HIST.csv, the rest to FUT.csv.\n"
"--json prints a summary (requests per op, volume) instead of the CSV\n"
"when no -o is given.\n");
}

static int
write_file (const char *path, const struct trace *t)
{
  FILE *fp = fopen (path, "w");
  if (!fp)
    return die ("%s: %s", path, strerror (errno));
  if (trace_write_csv (fp, t) == -1 || fclose (fp) == EOF)
    return die ("%s: write error", path);
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
  if (out ? write_file (out, &t) : (!json && trace_write_csv (stdout, &t)))
    goto out;
  if (hist) {
    if (trace_split (&t, &th, &tf, err) == -1) {
      die ("%s", err);
      goto out;
    }
    if (write_file (hist, &th) || write_file (fut, &tf))
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
