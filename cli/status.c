/* status.c: `nbdshadow status`: where migrations stand.  One volume or
 * the whole fleet, from the filters' mirror in Redis, or from one
 * filter's stats file for a single host without Redis; once, or over and
 * over with --watch. */
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fleet.h"
#include "metastore.h"
#include "progress.h"

/* A stats file is rewritten about once a second: a rate needs two
 * readings at least that far apart. */
#define STATS_PERIOD_US 1100000

/* --watch waits this many tenths of a second for a volume that has not
 * reported yet (no stats file, nothing in Redis). */
#define WATCH_WAIT_READINGS 50

static volatile sig_atomic_t interrupted;

static void
usage (FILE *fp)
{
  fprintf (fp,
"usage: nbdshadow status [ID] [--watch] [--json]\n"
"                        [--redis URL] [--redis-user U --redis-password-file F]\n"
"       nbdshadow status [ID] --stats FILE [--watch] [--json]\n"
"Show how far migrations are: from Redis (--redis, default\n"
"$NBDSHADOW_REDIS, else unix:/run/redis/redis-server.sock) the volume ID,\n"
"or without ID every volume there (the fleet view: one row each); or\n"
"from the filter's stats file FILE without Redis (ID: the name shown,\n"
"default FILE's name without .json).\n"
"Columns: ID, STATE (copying, covered, complete, stopped, error),\n"
"COVERAGE (blocks local), BLOCKS (present/total), RATE (bytes from the\n"
"source per second), STALLS (guest requests that waited for the\n"
"source), ETA, PAUSED, LIMIT (the background copy's bandwidth cap).\n"
"--watch: redraw every second until every volume shown is complete (or\n"
"Ctrl-C); one volume: a progress bar on a terminal, else a line a second.\n"
"--json: one object per volume per line, with id, state, blocks_total,\n"
"blocks_present, coverage (0..1), rate_bytes_per_s, stalls, stall_us,\n"
"hits, bytes_pulled, bytes_fetched, eta_s, unreadable_blocks (blocks\n"
"the source failed to read in its last pass), paused, bandwidth_limit\n"
"(null where the source of the figures does not say).\n"
"Exits 1 if a volume is unknown or its figures cannot be read.\n");
}

static void
on_interrupt (int sig)
{
  interrupted = 1;
}

struct status_opts {
  int watch, json, tty;
};

/* Print the volumes' rows; returns whether all of them are complete. */
static int
print_volumes (const struct status_opts *o, const struct progress *p,
               size_t n)
{
  int all_complete = 1;

  /* One volume watched: what migrate shows, a bar on a terminal, a
   * line a second otherwise. */
  if (o->watch && !o->json && n == 1) {
    int complete = strcmp (p[0].state, "complete") == 0;

    if (o->tty)
      progress_print_bar (stdout, &p[0]);
    else
      progress_print_line (stdout, &p[0]);
    if (o->tty && complete)
      putchar ('\n');
    return complete;
  }
  if (o->watch && o->tty)
    fputs ("\033[H\033[J", stdout);      /* redraw in place */
  if (!o->json)
    progress_print_header (stdout);
  for (size_t i = 0; i < n; i++) {
    if (o->json)
      progress_print_json (stdout, &p[i]);
    else
      progress_print_row (stdout, &p[i]);
    all_complete &= strcmp (p[i].state, "complete") == 0;
  }
  /* What the table has no column for: a copy that cannot end. */
  for (size_t i = 0; i < n && !o->json; i++)
    if (p[i].unreadable_blocks) {
      char unreadable[64];
      printf ("%s: %s: retried with growing waits, the copy cannot complete "
              "until the source reads them (the filter's log names them)\n",
              p[i].id, format_unreadable (&p[i], "", unreadable,
                                          sizeof unreadable));
    }
  fflush (stdout);
  return all_complete;
}

/* status --stats FILE. */
static int
status_from_stats (const struct status_opts *o, const char *id,
                   const char *path)
{
  struct rate_meter meter = { 0 };
  struct progress p;
  char name[PATH_MAX], err[PATH_MAX + 64];

  if (!id) {
    char *dot;
    snprintf (name, sizeof name, "%s", path);
    snprintf (name, sizeof name, "%s", basename (name));
    dot = strrchr (name, '.');
    if (dot && strcmp (dot, ".json") == 0)
      *dot = '\0';
    id = name;
  }
  for (int reading = 0; ; reading++) {
    progress_init (&p, id);
    if (progress_read_stats (&p, path, err, sizeof err) == -1) {
      /* A filter just started writes its first stats a moment later. */
      if (o->watch && reading < WATCH_WAIT_READINGS && !interrupted) {
        usleep (100000);
        continue;
      }
      return die ("%s", err);
    }
    rate_meter_add (&meter, &p);
    /* Once: a second reading for the rate while copying. */
    if (!o->watch && reading == 0 && strcmp (p.state, "complete") != 0 &&
        p.rate_bytes_per_s < 0) {
      usleep (STATS_PERIOD_US);
      continue;
    }
    if (print_volumes (o, &p, 1) && o->watch)
      return 0;
    if (!o->watch || interrupted)
      return 0;
    usleep (1000000);
    if (interrupted)
      return 0;
  }
}

/* status from Redis: volume ID, or every volume. */
static int
status_from_redis (const struct status_opts *o, const char *id,
                   const struct redis_options *ro)
{
  struct fleet *f = fleet_open (ro);
  struct progress *p = NULL;
  char **ids = NULL;
  size_t n = 0;
  int status = 1;

  if (!f)
    return 1;
  for (int reading = 0; ; reading++) {
    int all_complete, unknown = 0;

    for (size_t i = 0; i < n; i++)
      free (ids[i]);
    free (ids);
    ids = NULL;
    n = 0;
    if (id) {
      if (!(ids = malloc (sizeof *ids)) || !(ids[0] = strdup (id))) {
        die ("out of memory");
        goto out;
      }
      n = 1;
    }
    else if (fleet_list (f, &ids, &n) == -1)
      goto out;
    free (p);
    p = calloc (n ? n : 1, sizeof *p);
    if (!p) {
      die ("out of memory");
      goto out;
    }
    for (size_t i = 0; i < n; i++) {
      int r = fleet_read (f, ids[i], &p[i]);
      if (r == -1)
        goto out;
      /* Listed in the fleet set but without keys: shown as unknown. */
      unknown |= r == 1 && id;
    }
    /* A filter just started reports a moment later. */
    if (unknown && o->watch && reading < WATCH_WAIT_READINGS && !interrupted) {
      usleep (100000);
      continue;
    }
    if (unknown) {
      die ("volume %s is not known to Redis (no migration with "
           "shadow-id=%s has reported there)", id, id);
      goto out;
    }
    all_complete = print_volumes (o, p, n);
    if (!o->watch || all_complete || interrupted)
      break;
    usleep (1000000);
    if (interrupted)
      break;
  }
  status = 0;
 out:
  for (size_t i = 0; i < n; i++)
    free (ids[i]);
  free (ids);
  free (p);
  fleet_close (f);
  return status;
}

int
cmd_status (int argc, char **argv)
{
  static const struct option opts[] = {
    { "watch", no_argument, NULL, 'w' },
    { "json", no_argument, NULL, 'j' },
    { "stats", required_argument, NULL, 's' },
    REDIS_OPTIONS,
    { "help", no_argument, NULL, 'h' },
    { NULL }
  };
  struct status_opts o = { .tty = isatty (STDOUT_FILENO) };
  struct redis_options ro = { NULL };
  const char *stats = NULL, *id = NULL;
  int c;

  while ((c = getopt_long (argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'w': o.watch = 1; break;
    case 'j': o.json = 1; break;
    case 's': stats = optarg; break;
    REDIS_OPTION_CASES (ro);
    case 'h': usage (stdout); return 0;
    default: usage (stderr); return 1;
    }
  }
  if (optind < argc)
    id = argv[optind++];
  if (optind != argc)
    return die ("status: unexpected argument \"%s\"", argv[optind]);
  if (id && !ms_valid_id (id))
    return die ("expected a volume id (" MS_ID_RULE "), got \"%s\"", id);
  if (stats && (ro.address || ro.user || ro.password_file))
    return die ("--stats reads a file: it takes no Redis options");
  signal (SIGINT, on_interrupt);
  if (stats)
    return status_from_stats (&o, id, stats);
  return status_from_redis (&o, id, &ro);
}
