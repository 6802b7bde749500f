/* trace.c: the canonical trace (DESIGN.md "Traces"): an in-memory list of
 * requests, its CSV reader and writer, and the time split used by the
 * standard scenario. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "learner.h"

#define CSV_HEADER "ts_us,op,offset,length"

int
trace_append (struct trace *t, uint64_t ts_us, char op, uint64_t offset,
              uint64_t length, char *err)
{
  if (length > UINT32_MAX) {
    snprintf (err, LEARNER_ERRLEN, "request length %" PRIu64 " too large",
              length);
    return -1;
  }
  if (offset > TRACE_MAX_END - length) {
    snprintf (err, LEARNER_ERRLEN, "request at %" PRIu64 " + %" PRIu64
              " ends beyond 2^63 - 1 bytes", offset, length);
    return -1;
  }
  if (ts_us > TRACE_MAX_TS) {
    snprintf (err, LEARNER_ERRLEN, "timestamp %" PRIu64 " beyond 2^63 - 1 us",
              ts_us);
    return -1;
  }
  if (t->n == t->cap) {
    struct trace_rec *r = array_grow (t->recs, &t->cap, t->n, sizeof *r, 1024);
    if (!r) {
      snprintf (err, LEARNER_ERRLEN, "out of memory");
      return -1;
    }
    t->recs = r;
  }
  t->recs[t->n++] = (struct trace_rec) {
    .ts_us = ts_us, .offset = offset, .length = length, .op = op
  };
  return 0;
}

void
trace_free (struct trace *t)
{
  free (t->recs);
  t->recs = NULL;
  t->n = t->cap = 0;
}

/* Stable merge sort by time: requests issued at the same microsecond keep
 * their order in the source, which matters for writes followed by reads. */
static void
merge_sort (struct trace_rec *a, struct trace_rec *tmp, size_t n)
{
  if (n < 2)
    return;
  size_t h = n / 2, i = 0, j = h, k = 0;
  merge_sort (a, tmp, h);
  merge_sort (a + h, tmp, n - h);
  if (a[h - 1].ts_us <= a[h].ts_us)
    return;
  while (i < h && j < n)
    tmp[k++] = a[j].ts_us < a[i].ts_us ? a[j++] : a[i++];
  while (i < h)
    tmp[k++] = a[i++];
  while (j < n)
    tmp[k++] = a[j++];
  memcpy (a, tmp, n * sizeof *a);
}

void
trace_sort (struct trace *t)
{
  struct trace_rec *tmp;

  if (t->n < 2)
    return;
  tmp = malloc (t->n * sizeof *tmp);
  if (tmp) {
    merge_sort (t->recs, tmp, t->n);
    free (tmp);
  }
}

/* Parse an unsigned decimal field ending at STOP (',' or '\0');
 * advances *p past the stop. */
static int
parse_u64_field (const char **p, char stop, uint64_t *out)
{
  char *end;

  if (**p < '0' || **p > '9')
    return -1;
  errno = 0;
  *out = strtoull (*p, &end, 10);
  if (errno || *end != stop)
    return -1;
  *p = stop ? end + 1 : end;
  return 0;
}

int
trace_read_csv (FILE *fp, struct trace *t, char *err)
{
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  uint64_t lineno = 0;
  int ret = -1;

  while ((len = getline (&line, &cap, fp)) >= 0) {
    const char *p = line;
    uint64_t ts, offset, length;
    char op;

    lineno++;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
      line[--len] = '\0';
    if (lineno == 1) {
      if (strcmp (line, CSV_HEADER) != 0) {
        snprintf (err, LEARNER_ERRLEN,
                  "line 1: expected header \"" CSV_HEADER "\"");
        goto out;
      }
      continue;
    }
    if (len == 0)
      continue;
    if (parse_u64_field (&p, ',', &ts) == -1) {
      snprintf (err, LEARNER_ERRLEN, "line %" PRIu64 ": bad timestamp",
                lineno);
      goto out;
    }
    op = *p;
    if (op == '\0' || !strchr ("RWTZF", op) || p[1] != ',') {
      snprintf (err, LEARNER_ERRLEN,
                "line %" PRIu64 ": op must be one of R W T Z F", lineno);
      goto out;
    }
    p += 2;
    if (parse_u64_field (&p, ',', &offset) == -1) {
      snprintf (err, LEARNER_ERRLEN, "line %" PRIu64 ": bad offset", lineno);
      goto out;
    }
    if (parse_u64_field (&p, '\0', &length) == -1) {
      snprintf (err, LEARNER_ERRLEN, "line %" PRIu64 ": bad length", lineno);
      goto out;
    }
    if (trace_append (t, ts, op, offset, length, err) == -1) {
      char reason[LEARNER_ERRLEN];
      memcpy (reason, err, LEARNER_ERRLEN);
      snprintf (err, LEARNER_ERRLEN, "line %" PRIu64 ": %.200s", lineno,
                reason);
      goto out;
    }
  }
  if (lineno == 0) {
    snprintf (err, LEARNER_ERRLEN, "empty trace (no header)");
    goto out;
  }
  trace_sort (t);
  ret = 0;
 out:
  free (line);
  return ret;
}

int
trace_load_csv (const char *path, struct trace *t, char *err)
{
  FILE *fp = fopen (path, "r");
  int r;

  if (!fp) {
    snprintf (err, LEARNER_ERRLEN, "%s: %s", path, strerror (errno));
    return -1;
  }
  r = trace_read_csv (fp, t, err);
  fclose (fp);
  if (r == -1) {
    char reason[LEARNER_ERRLEN];
    memcpy (reason, err, LEARNER_ERRLEN);
    snprintf (err, LEARNER_ERRLEN, "%.100s: %.150s", path, reason);
  }
  return r;
}

int
trace_write_csv (FILE *fp, const struct trace *t)
{
  fprintf (fp, CSV_HEADER "\n");
  for (size_t i = 0; i < t->n; i++) {
    const struct trace_rec *r = &t->recs[i];
    fprintf (fp, "%" PRIu64 ",%c,%" PRIu64 ",%" PRIu32 "\n",
             r->ts_us, r->op, r->offset, r->length);
  }
  return ferror (fp) ? -1 : 0;
}

/* DESIGN.md: history = the first half of the trace's time span, future =
 * the rest.  The trace must be sorted. */
int
trace_split (const struct trace *t, struct trace *history,
             struct trace *future, char *err)
{
  uint64_t mid;

  if (t->n < 2) {
    snprintf (err, LEARNER_ERRLEN, "trace too short to split");
    return -1;
  }
  mid = t->recs[0].ts_us + (t->recs[t->n - 1].ts_us - t->recs[0].ts_us) / 2;
  for (size_t i = 0; i < t->n; i++) {
    const struct trace_rec *r = &t->recs[i];
    if (trace_append (r->ts_us < mid ? history : future,
                      r->ts_us, r->op, r->offset, r->length, err) == -1)
      return -1;
  }
  return 0;
}

uint64_t
trace_volume (const struct trace *t, uint64_t block_size)
{
  uint64_t end = 0;

  for (size_t i = 0; i < t->n; i++) {
    uint64_t e = t->recs[i].offset + t->recs[i].length;
    if (e > end)
      end = e;
  }
  return (end + block_size - 1) / block_size * block_size;
}

int
parse_size (const char *s, uint64_t *out)
{
  char *end;
  uint64_t v, mult = 1;

  if (*s < '0' || *s > '9')
    return -1;
  errno = 0;
  v = strtoull (s, &end, 10);
  if (errno)
    return -1;
  switch (*end) {
  case '\0': break;
  case 'k': case 'K': mult = 1ULL << 10; end++; break;
  case 'm': case 'M': mult = 1ULL << 20; end++; break;
  case 'g': case 'G': mult = 1ULL << 30; end++; break;
  case 't': case 'T': mult = 1ULL << 40; end++; break;
  default: return -1;
  }
  if (*end == 'i' && end[1] == 'B')
    end += 2;
  else if (*end == 'B')
    end++;
  if (*end != '\0' || (v && mult > UINT64_MAX / v))
    return -1;
  *out = v * mult;
  return 0;
}
