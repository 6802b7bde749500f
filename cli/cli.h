/* cli.h: the nbdshadow program's subcommands and their shared helpers. */
#ifndef NBDSHADOW_CLI_H
#define NBDSHADOW_CLI_H

#include <stdint.h>
#include <sys/types.h>

#include "clock.h"
#include "learner.h"
#include "sim.h"

extern int cmd_import (int argc, char **argv);
extern int cmd_train (int argc, char **argv);
extern int cmd_simulate (int argc, char **argv);
extern int cmd_replay (int argc, char **argv);

/* Print "nbdshadow: MSG" on stderr; returns the exit status 1. */
extern int die (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
extern int parse_block_size (const char *s, uint64_t *out);
/* --mode: the octal mode of the files a command writes (default 0600:
 * they describe a guest's disk).  Returns 0, or says why and returns 1. */
extern int parse_mode_option (const char *s, mode_t *mode);
/* Seconds from "1ms", "250us", "2s" or plain seconds. */
extern int parse_duration (const char *s, double *out);
/* A finite number > 0, the whole string ("5abc" is refused). */
extern int parse_positive (const char *s, double *out);
extern double seconds_since (uint64_t start_ns);   /* since time_ns () */
/* Print "KEY": V followed by SEP, with null for a NaN or infinity (JSON
 * has neither). */
extern void print_json_number (const char *key, double v, const char *sep);

/* plot.c: coverage and cumulative stalls over time, one line per policy. */
extern int plot_svg (const char *path, const struct sim_result *results,
                     int n, const char *title, mode_t mode);

#endif
