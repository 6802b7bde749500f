/* cli.h: the nbdshadow program's subcommands and their shared helpers. */
#ifndef NBDSHADOW_CLI_H
#define NBDSHADOW_CLI_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "clock.h"
#include "learner.h"
#include "sim.h"

extern int cmd_import (int argc, char **argv);
extern int cmd_train (int argc, char **argv);
extern int cmd_simulate (int argc, char **argv);
extern int cmd_replay (int argc, char **argv);
extern int cmd_verify (int argc, char **argv);
extern int cmd_migrate (int argc, char **argv);
extern int cmd_status (int argc, char **argv);
/* pause, resume, throttle, finalize (argv[0] says which). */
extern int cmd_control (int argc, char **argv);

/* train.c: fit a model on the canonical trace TRACE and save it to OUT
 * with MODE (what `nbdshadow train` and `migrate --history` do); a
 * summary goes to REPORT.  -1 after printing the error. */
struct train_options;
extern int train_model_file (const char *trace, const struct train_options *o,
                             const char *out, mode_t mode, FILE *report,
                             int json);

/* Print "nbdshadow: MSG" on stderr; returns the exit status 1. */
extern int die (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
extern int parse_block_size (const char *s, uint64_t *out);
/* --mode: the octal mode of the files a command writes (default 0600:
 * they describe a guest's disk).  Returns 0, or says why and returns 1. */
extern int parse_mode_option (const char *s, mode_t *mode);
/* Seconds from "1ms", "250us", "2s" or plain seconds. */
extern int parse_duration (const char *s, double *out);
/* "1.50 GiB": binary units, three significant digits.  The result is
 * one of a few static buffers: the main thread's use only. */
extern const char *human_size (uint64_t bytes);
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
