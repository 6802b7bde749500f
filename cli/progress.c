/* progress.c: a migration's progress as the manager shows it: read from
 * the filter's stats file (or filled from Redis by the caller), rates and
 * ETA estimated from successive readings where the filter gives none,
 * and the three ways to print it: a one-line bar that redraws itself on
 * a terminal, one plain line per reading, or one JSON object.
 * `migrate` and `status` print through the same functions, so what an
 * operator sees does not depend on which command shows it. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "progress.h"

#define BAR_WIDTH 30

/* The value of KEY in a flat JSON object (numbers and strings; the
 * stats file has nothing nested), unquoted, into OUT.  0 if absent. */
static int
json_flat_get (const char *json, const char *key, char *out, size_t outlen)
{
  size_t klen = strlen (key);
  const char *p = json;

  while ((p = strchr (p, '"')) != NULL) {
    const char *k = p + 1, *v;
    size_t n = 0;

    p = strchr (k, '"');
    if (!p)
      return 0;
    v = p + 1;
    while (*v == ' ')
      v++;
    if (*v != ':') {            /* a string value, not a key */
      p++;
      continue;
    }
    v++;
    while (*v == ' ')
      v++;
    if (*v == '"') {
      const char *end = strchr (v + 1, '"');
      if (!end)
        return 0;
      if ((size_t) (p - k) == klen && memcmp (k, key, klen) == 0) {
        n = (size_t) (end - v - 1);
        if (n > outlen - 1)
          n = outlen - 1;
        memcpy (out, v + 1, n);
        out[n] = '\0';
        return 1;
      }
      p = end + 1;
      continue;
    }
    if ((size_t) (p - k) == klen && memcmp (k, key, klen) == 0) {
      while (v[n] && v[n] != ',' && v[n] != '}' && v[n] != ' ' &&
             n < outlen - 1)
        n++;
      memcpy (out, v, n);
      out[n] = '\0';
      return 1;
    }
    p = v;
  }
  return 0;
}

void
progress_init (struct progress *p, const char *id)
{
  memset (p, 0, sizeof *p);
  snprintf (p->id, sizeof p->id, "%s", id);
  strcpy (p->state, "unknown");
  p->rate_bytes_per_s = -1;
  p->eta_s = -1;
  p->paused = -1;
  p->bandwidth_limit = -1;
}

void
progress_fill (struct progress *p, progress_lookup_fn *get, void *src)
{
  const char *v;

#define U64(field) p->field = (v = get (src, #field)) ? strtoull (v, NULL, 10) : 0
  U64 (blocks_total);
  U64 (blocks_present);
  U64 (bytes_pulled);
  U64 (bytes_fetched);
  U64 (stalls);
  U64 (stall_us);
  U64 (hits);
  U64 (unreadable_blocks);
#undef U64
  p->coverage = p->blocks_total ?
    (double) p->blocks_present / p->blocks_total : 1;
  /* Not in every filter's figures: unknown (-1) unless there. */
  if ((v = get (src, "rate_bytes_per_s")) != NULL)
    p->rate_bytes_per_s = strtod (v, NULL);
  if ((v = get (src, "eta_s")) != NULL)
    p->eta_s = strtod (v, NULL);        /* -1 there too when unknown */
  if ((v = get (src, "paused")) != NULL)
    p->paused = strcmp (v, "true") == 0 || strcmp (v, "1") == 0;
  if ((v = get (src, "bandwidth_limit")) != NULL)
    p->bandwidth_limit = strtoll (v, NULL, 10);
  if (p->eta_s < 0 && p->blocks_present == p->blocks_total)
    p->eta_s = 0;
}

/* A stats file's text and room for one value: the lookup of
 * progress_fill. */
struct stats_text {
  const char *json;
  char value[64];
};

static const char *
stats_lookup (void *src, const char *key)
{
  struct stats_text *t = src;
  return json_flat_get (t->json, key, t->value, sizeof t->value) ?
    t->value : NULL;
}

int
progress_read_stats (struct progress *p, const char *path, char *err,
                     size_t errlen)
{
  char buf[4096];
  struct stats_text t = { .json = buf };
  FILE *fp = fopen (path, "r");
  size_t n;

  if (!fp) {
    snprintf (err, errlen, "%s: %s", path, strerror (errno));
    return -1;
  }
  n = fread (buf, 1, sizeof buf - 1, fp);
  fclose (fp);
  buf[n] = '\0';
  if (!json_flat_get (buf, "state", p->state, sizeof p->state) ||
      !stats_lookup (&t, "blocks_total")) {
    snprintf (err, errlen, "%s: not a shadow filter stats file", path);
    return -1;
  }
  if (stats_lookup (&t, "block_size"))
    p->block_size = strtoull (t.value, NULL, 10);
  json_flat_get (buf, "source", p->source, sizeof p->source);
  progress_fill (p, stats_lookup, &t);
  return 0;
}

void
rate_meter_add (struct rate_meter *m, struct progress *p)
{
  double t = time_ns () / 1e9, dt;
  size_t oldest;

  /* A reading identical to the last one (the stats file is rewritten
   * once a second) adds nothing but would shorten the window. */
  if (m->n && m->blocks[(m->n - 1) % RATE_SAMPLES] == p->blocks_present &&
      m->bytes[(m->n - 1) % RATE_SAMPLES] == p->bytes_pulled + p->bytes_fetched &&
      t - m->t[(m->n - 1) % RATE_SAMPLES] < 1.5)
    goto estimate;
  m->t[m->n % RATE_SAMPLES] = t;
  m->bytes[m->n % RATE_SAMPLES] = p->bytes_pulled + p->bytes_fetched;
  m->blocks[m->n % RATE_SAMPLES] = p->blocks_present;
  m->n++;
 estimate:
  if (m->n < 2)
    return;
  oldest = m->n > RATE_SAMPLES ? m->n % RATE_SAMPLES : 0;
  dt = t - m->t[oldest];
  if (dt <= 0)
    return;
  if (p->rate_bytes_per_s < 0)
    p->rate_bytes_per_s =
      (p->bytes_pulled + p->bytes_fetched - m->bytes[oldest]) / dt;
  if (p->eta_s < 0) {
    double blocks_per_s = (p->blocks_present - m->blocks[oldest]) / dt;
    if (p->blocks_present >= p->blocks_total)
      p->eta_s = 0;
    else if (blocks_per_s > 0)
      p->eta_s = (p->blocks_total - p->blocks_present) / blocks_per_s;
  }
}

/* "1:02:03", "4:05" or "--:--" for unknown. */
static const char *
format_eta (double s, char *buf, size_t len)
{
  long v;

  if (s < 0 || !isfinite (s))
    return "--:--";
  v = lround (s);
  if (v >= 3600)
    snprintf (buf, len, "%ld:%02ld:%02ld", v / 3600, v / 60 % 60, v % 60);
  else
    snprintf (buf, len, "%ld:%02ld", v / 60, v % 60);
  return buf;
}

const char *
format_unreadable (const struct progress *p, const char *sep, char *buf,
                   size_t len)
{
  if (p->unreadable_blocks == 0)
    return "";
  snprintf (buf, len, "%s%" PRIu64 " block%s unreadable at the source", sep,
            p->unreadable_blocks, p->unreadable_blocks == 1 ? "" : "s");
  return buf;
}

/* Coverage in percent, rounded down: 100.0 only when every block is. */
static double
percent (const struct progress *p)
{
  return floor (p->coverage * 1000) / 10;
}

static double
mbps (const struct progress *p)
{
  return p->rate_bytes_per_s > 0 ? p->rate_bytes_per_s / 1e6 : 0;
}

void
progress_print_bar (FILE *fp, const struct progress *p)
{
  char bar[BAR_WIDTH + 1], eta[32], unreadable[64];
  int filled = p->coverage * BAR_WIDTH;

  memset (bar, '#', filled);
  memset (bar + filled, '.', BAR_WIDTH - filled);
  bar[BAR_WIDTH] = '\0';
  fprintf (fp, "\r%s [%s] %5.1f%%  %6.1f MB/s  stalls %" PRIu64
           "  ETA %s%s%s\033[K", p->id, bar, percent (p), mbps (p),
           p->stalls, format_eta (p->eta_s, eta, sizeof eta),
           p->paused == 1 ? "  paused" : "",
           format_unreadable (p, "  ", unreadable, sizeof unreadable));
  fflush (fp);
}

void
progress_print_line (FILE *fp, const struct progress *p)
{
  char eta[32], unreadable[64];

  fprintf (fp, "%s %s %.1f%% %" PRIu64 "/%" PRIu64 " blocks %.1f MB/s "
           "stalls %" PRIu64 " ETA %s%s%s\n", p->id, p->state,
           percent (p), p->blocks_present, p->blocks_total, mbps (p),
           p->stalls, format_eta (p->eta_s, eta, sizeof eta),
           p->paused == 1 ? " paused" : "",
           format_unreadable (p, " ", unreadable, sizeof unreadable));
  fflush (fp);
}

void
progress_print_json (FILE *fp, const struct progress *p)
{
  fprintf (fp, "{\"id\": \"%s\", \"state\": \"%s\", \"blocks_total\": %"
           PRIu64 ", \"blocks_present\": %" PRIu64 ", \"coverage\": %.6f, "
           "\"rate_bytes_per_s\": ", p->id, p->state, p->blocks_total,
           p->blocks_present, p->coverage);
  if (p->rate_bytes_per_s >= 0)
    fprintf (fp, "%.0f", p->rate_bytes_per_s);
  else
    fputs ("null", fp);
  fprintf (fp, ", \"stalls\": %" PRIu64 ", \"stall_us\": %" PRIu64
           ", \"hits\": %" PRIu64 ", \"bytes_pulled\": %" PRIu64
           ", \"bytes_fetched\": %" PRIu64 ", \"eta_s\": ",
           p->stalls, p->stall_us, p->hits, p->bytes_pulled,
           p->bytes_fetched);
  if (p->eta_s >= 0)
    fprintf (fp, "%.0f", p->eta_s);
  else
    fputs ("null", fp);
  fprintf (fp, ", \"unreadable_blocks\": %" PRIu64
           ", \"paused\": %s, \"bandwidth_limit\": ", p->unreadable_blocks,
           p->paused < 0 ? "null" : p->paused ? "true" : "false");
  if (p->bandwidth_limit >= 0)
    fprintf (fp, "%" PRIi64 "}\n", p->bandwidth_limit);
  else
    fputs ("null}\n", fp);
  fflush (fp);
}

void
progress_print_header (FILE *fp)
{
  fprintf (fp, "%-16s %-9s %8s %21s %11s %8s %8s %6s %10s\n", "ID", "STATE",
           "COVERAGE", "BLOCKS", "RATE", "STALLS", "ETA", "PAUSED", "LIMIT");
}

void
progress_print_row (FILE *fp, const struct progress *p)
{
  char blocks[48], rate[32], eta[32], limit[32];

  snprintf (blocks, sizeof blocks, "%" PRIu64 "/%" PRIu64, p->blocks_present,
            p->blocks_total);
  if (p->rate_bytes_per_s >= 0)
    snprintf (rate, sizeof rate, "%.1f MB/s", mbps (p));
  else
    strcpy (rate, "-");
  if (p->bandwidth_limit > 0)
    snprintf (limit, sizeof limit, "%.1f MB/s", p->bandwidth_limit / 1e6);
  else
    strcpy (limit, p->bandwidth_limit == 0 ? "none" : "-");
  fprintf (fp, "%-16s %-9s %7.1f%% %21s %11s %8" PRIu64 " %8s %6s %10s\n",
           p->id, p->state, percent (p), blocks, rate, p->stalls,
           format_eta (p->eta_s, eta, sizeof eta),
           p->paused < 0 ? "-" : p->paused ? "yes" : "no", limit);
}
