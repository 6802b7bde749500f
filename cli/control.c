/* control.c: `nbdshadow pause`, `resume`, `throttle` and `finalize`:
 * steer a running migration through its command stream in Redis and wait
 * for the filter to acknowledge (fleet.c), so that success means the
 * filter has applied the command, not that Redis has stored it. */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fleet.h"
#include "metastore.h"
#include "progress.h"

#define ACK_TIMEOUT 5.0         /* seconds: the contract's default */

static volatile sig_atomic_t interrupted;

static const struct {
  const char *name, *args, *what;
} commands[] = {
  { "pause", "ID", "Stop the background copy of volume ID within a second;\n"
    "the guest is still served (blocks it needs are fetched on demand).\n" },
  { "resume", "ID", "Continue the paused background copy of volume ID.\n" },
  { "throttle", "ID RATE", "Cap the background copy of volume ID at RATE "
    "bytes per second\n(like 20M; 0 = no cap), at once.\n" },
  { "finalize", "ID [--wait]", "Finish the migration of volume ID now: "
    "lift a pause and any cap,\npull the rest at full speed, sync, detach "
    "the source.  --wait: return\nonly when the volume is complete (then "
    "the source may go away), showing\nprogress meanwhile.\n" },
};

static void
usage (FILE *fp, int i)
{
  fprintf (fp,
"usage: nbdshadow %s %s [--timeout SECONDS]\n"
"                 [--redis URL] [--redis-user U --redis-password-file F]\n"
"%s"
"The command goes on the volume's command stream in Redis (--redis,\n"
"default $NBDSHADOW_REDIS, else unix:/run/redis/redis-server.sock) and\n"
"the filter's acknowledgement is awaited for --timeout seconds (default\n"
"5).  Exits 1 with one line if the volume is unknown, the filter refuses\n"
"the command or does not acknowledge it in time.\n",
           commands[i].name, commands[i].args, commands[i].what);
}

static void
on_interrupt (int sig)
{
  interrupted = 1;
}

/* finalize --wait: until the state is complete. */
static int
wait_complete (struct fleet *f, const char *id)
{
  int tty = isatty (STDOUT_FILENO);
  uint64_t last = 0;
  struct progress p;

  signal (SIGINT, on_interrupt);
  for (;;) {
    int r = fleet_read (f, id, &p);

    if (r == -1)
      return 1;
    if (r == 1)
      return die ("volume %s has gone from Redis", id);
    if (tty)
      progress_print_bar (stdout, &p);
    else if (!last || seconds_since (last) >= 1) {
      progress_print_line (stdout, &p);
      last = time_ns ();
    }
    if (strcmp (p.state, "complete") == 0)
      break;
    if (strcmp (p.state, "stopped") == 0 || strcmp (p.state, "error") == 0) {
      if (tty)
        putchar ('\n');
      return die ("finalize %s: the migration is %s, not complete", id,
                  p.state);
    }
    usleep (250000);
    if (interrupted) {
      if (tty)
        putchar ('\n');
      fprintf (stderr, "stopped waiting; finalize %s goes on\n", id);
      return 1;
    }
  }
  if (tty)
    putchar ('\n');
  printf ("%s is complete: the source is detached and may go away\n", id);
  return 0;
}

/* pause, resume, throttle, finalize: ARGV[0] names which. */
int
cmd_control (int argc, char **argv)
{
  static const struct option opts[] = {
    { "wait", no_argument, NULL, 'w' },
    { "timeout", required_argument, NULL, 't' },
    REDIS_OPTIONS,
    { "help", no_argument, NULL, 'h' },
    { NULL }
  };
  struct redis_options ro = { NULL };
  const char *id, *rate = NULL;
  char rate_buf[32];
  double timeout = ACK_TIMEOUT;
  struct fleet *f;
  int c, i, wait = 0, status;

  for (i = 0; strcmp (commands[i].name, argv[0]) != 0; i++)
    ;
  while ((c = getopt_long (argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'w': wait = 1; break;
    case 't':
      if (parse_duration (optarg, &timeout) == -1 || timeout <= 0)
        return die ("--timeout: expected seconds, got \"%s\"", optarg);
      break;
    REDIS_OPTION_CASES (ro);
    case 'h': usage (stdout, i); return 0;
    default: usage (stderr, i); return 1;
    }
  }
  if (wait && strcmp (argv[0], "finalize") != 0)
    return die ("%s: --wait is for finalize", argv[0]);
  if (optind == argc)
    return die ("%s: expected %s (see nbdshadow %s --help)", argv[0],
                commands[i].args, argv[0]);
  id = argv[optind++];
  if (!ms_valid_id (id))
    return die ("expected a volume id (" MS_ID_RULE "), got \"%s\"", id);
  if (strcmp (argv[0], "throttle") == 0) {
    uint64_t bytes;

    if (optind == argc)
      return die ("throttle: expected a RATE after the ID, like 20M "
                  "(bytes/s; 0 = no cap)");
    if (parse_size (argv[optind], &bytes) == -1)
      return die ("throttle: expected a RATE in bytes/s like 20M, got "
                  "\"%s\"", argv[optind]);
    snprintf (rate_buf, sizeof rate_buf, "%" PRIu64, bytes);
    rate = rate_buf;
    optind++;
  }
  if (optind != argc)
    return die ("%s: unexpected argument \"%s\"", argv[0], argv[optind]);
  f = fleet_open (&ro);
  if (!f)
    return 1;
  status = fleet_command (f, id, argv[0], rate, timeout) == -1;
  if (status == 0 && wait)
    status = wait_complete (f, id);
  else if (status == 0)
    printf ("%s %s: done\n", argv[0], id);
  fleet_close (f);
  return status;
}
