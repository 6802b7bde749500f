/* nbdshadow.c: the nbdshadow command: dispatch to the subcommands and the
 * small parsing helpers they share. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "parse-number.h"
#include "replace-file.h"

static const struct {
  const char *name;
  int (*run) (int argc, char **argv);
  const char *what;
} commands[] = {
  { "import", cmd_import, "convert a block trace to the canonical CSV" },
  { "train", cmd_train, "fit the access predictor on a history trace" },
  { "simulate", cmd_simulate, "measure pull policies on a history/future" },
  { "replay", cmd_replay, "replay a trace against an NBD export, open-loop" },
  { "migrate", cmd_migrate, "migrate a disk here: start the shadow, watch it" },
  { "status", cmd_status, "show migrations' progress (one, or the fleet)" },
  { "pause", cmd_control, "pause a migration's background copy" },
  { "resume", cmd_control, "resume a paused background copy" },
  { "throttle", cmd_control, "change a migration's bandwidth cap, live" },
  { "finalize", cmd_control, "finish a migration now (--wait: until done)" },
  { "verify", cmd_verify, "compare a shadow with its source by SHA-256" },
};

static void
usage (FILE *fp)
{
  fprintf (fp, "usage: nbdshadow COMMAND [--help] [ARGS...]\n\ncommands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf (fp, "  %-10s %s\n", commands[i].name, commands[i].what);
}

int
die (const char *fmt, ...)
{
  va_list ap;
  fprintf (stderr, "nbdshadow: ");
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fprintf (stderr, "\n");
  return 1;
}

int
parse_block_size (const char *s, uint64_t *out)
{
  if (parse_size (s, out) == -1 || !learner_block_size_ok (*out))
    return -1;
  return 0;
}

int
parse_mode_option (const char *s, mode_t *mode)
{
  if (parse_file_mode (s, mode) == -1)
    return die ("--mode: expected an octal file mode like 0640, got \"%s\"",
                s);
  return 0;
}

int
parse_duration (const char *s, double *out)
{
  static const struct { const char *suffix; double unit; } units[] = {
    { "ms", 1e-3 }, { "us", 1e-6 }, { "s", 1 }, { "", 1 },
  };
  size_t n = strlen (s);
  char num[64];

  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    size_t k = strlen (units[i].suffix);
    if (n <= k || n - k >= sizeof num || strcmp (s + n - k, units[i].suffix))
      continue;
    memcpy (num, s, n - k);
    num[n - k] = '\0';
    if (parse_double (num, out) == -1 || !(*out >= 0))
      return -1;
    *out *= units[i].unit;
    return 0;
  }
  return -1;
}

int
parse_positive (const char *s, double *out)
{
  return parse_double (s, out) == -1 || !(*out > 0) ? -1 : 0;
}

double
seconds_since (uint64_t start_ns)
{
  return (time_ns () - start_ns) / 1e9;
}

const char *
human_size (uint64_t bytes)
{
  static char buf[4][32];
  static int next;
  static const char units[] = "KMGTPE";
  char *b = buf[next++ % 4];
  double v = bytes;
  int u = -1;

  while (v >= 1024 && u < 5) {
    v /= 1024;
    u++;
  }
  if (u < 0)
    snprintf (b, sizeof buf[0], "%" PRIu64 " B", bytes);
  else
    snprintf (b, sizeof buf[0], "%.*f %ciB", v < 10 ? 2 : v < 100 ? 1 : 0,
              v, units[u]);
  return b;
}

void
print_json_number (const char *key, double v, const char *sep)
{
  if (isfinite (v))
    printf ("\"%s\": %.6g%s", key, v, sep);
  else
    printf ("\"%s\": null%s", key, sep);
}

int
main (int argc, char **argv)
{
  if (argc < 2) {
    usage (stderr);
    return 1;
  }
  if (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0) {
    usage (stdout);
    return 0;
  }
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (strcmp (argv[1], commands[i].name) == 0)
      return commands[i].run (argc - 1, argv + 1);
  usage (stderr);
  return die ("unknown command \"%s\"", argv[1]);
}
