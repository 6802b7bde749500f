/* fleet.h: the manager's Redis side (fleet.c): the mirror the filters
 * keep there, and commands to them. */
#ifndef NBDSHADOW_FLEET_H
#define NBDSHADOW_FLEET_H

#include <stddef.h>

#include "progress.h"

/* --redis URL --redis-user U --redis-password-file F; NULL: not given
 * (the address then comes from $NBDSHADOW_REDIS or the default). */
struct redis_options {
  const char *address, *user, *password_file;
};

/* The getopt_long entries of those options, and their short codes. */
#define REDIS_OPTIONS \
  { "redis", required_argument, NULL, 'R' }, \
  { "redis-user", required_argument, NULL, 'U' }, \
  { "redis-password-file", required_argument, NULL, 'F' }
#define REDIS_OPTION_CASES(o) \
  case 'R': (o).address = optarg; break; \
  case 'U': (o).user = optarg; break; \
  case 'F': (o).password_file = optarg; break

struct fleet;
/* Connect and authenticate; NULL after printing the one-line reason. */
extern struct fleet *fleet_open (const struct redis_options *o);
extern void fleet_close (struct fleet *f);
/* Every volume id in the fleet set, sorted (free each and the array). */
extern int fleet_list (struct fleet *f, char ***ids, size_t *n);
/* Fill P from volume ID's info and progress: 0, 1 if ID is unknown,
 * -1 after printing an error. */
extern int fleet_read (struct fleet *f, const char *id, struct progress *p);
/* 1 if the volume has an info hash, 0 if not, -1 on error. */
extern int fleet_known (struct fleet *f, const char *id);
/* Send CMD (with RATE for throttle, else NULL) and wait up to TIMEOUT_S
 * for the filter's answer: 0 on "ok", else -1 after printing why. */
extern int fleet_command (struct fleet *f, const char *id, const char *cmd,
                          const char *rate, double timeout_s);

#endif
