/* import.c: readers for the trace formats of DESIGN.md ("nbdshadow
 * import"), each turning one source line into canonical records.  A bad
 * line stops the import with "line N: reason". */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errbuf.h"
#include "learner.h"
#include "parse-number.h"

#define SECTOR 512
#define MAX_FIELDS 64

const char *const import_formats[] = {
  "csv", "nbdkit-log", "blkparse", "msr", "vscsi", "disksim", "replayer",
  NULL
};

/* Per-import state.  Formats that need the whole file before placing
 * records (disksim's device regions, blkparse's choice of event type)
 * keep them here until finish. */
struct disksim_dev {
  uint64_t device, line;
};

struct import_state {
  struct trace *out;
  uint64_t lineno;              /* of the line being parsed */
  struct disksim_dev *devices;  /* disksim: device and line of each record */
  size_t ndevices;
  struct trace blk_events[3];   /* blkparse: Q, D and C events */
  bool blk_done;                /* blkparse: reached the summary */
};

typedef int (*line_parser) (struct import_state *st, char **f, int nf,
                            char *err);

#define fail(err, ...) set_error (err, LEARNER_ERRLEN, __VA_ARGS__)

static int
split_fields (char *line, const char *seps, char **f)
{
  int n = 0;
  char *save, *tok;

  for (tok = strtok_r (line, seps, &save); tok;
       tok = strtok_r (NULL, seps, &save)) {
    if (n == MAX_FIELDS)
      return MAX_FIELDS + 1;
    f[n++] = tok;
  }
  return n;
}

/* A non-negative decimal time in UNITs, converted to microseconds; it
 * must stay below TRACE_MAX_TS (2^63 is exact as a double), where
 * llround would saturate. */
static int
get_time_us (const char *s, double us_per_unit, uint64_t *out)
{
  double v;
  if (parse_double (s, &v) == -1 || !(v >= 0) ||
      !(v * us_per_unit < 9223372036854775808.0))
    return -1;
  *out = (uint64_t) llround (v * us_per_unit);
  return 0;
}

static int
need_fields (int nf, int want, const char *what, char *err)
{
  if (nf < want)
    return fail (err, "expected %d fields (%s), got %d", want, what, nf);
  return 0;
}

/* csv: the canonical format itself. */
static int
parse_csv (struct import_state *st, char **f, int nf, char *err)
{
  uint64_t ts, off, len;
  if (nf != 4)
    return fail (err, "expected 4 fields ts_us,op,offset,length, got %d", nf);
  if (parse_uint64 (f[0], 10, &ts) == -1)
    return fail (err, "bad timestamp \"%s\"", f[0]);
  if (strlen (f[1]) != 1 || !strchr ("RWTZF", f[1][0]))
    return fail (err, "op must be one of R W T Z F, got \"%s\"", f[1]);
  if (parse_uint64 (f[2], 10, &off) == -1)
    return fail (err, "bad offset \"%s\"", f[2]);
  if (parse_uint64 (f[3], 10, &len) == -1)
    return fail (err, "bad length \"%s\"", f[3]);
  return trace_append (st->out, ts, f[1][0], off, len, err);
}

/* nbdkit-log: "DATE TIME [connection=N] Action id=N offset=0x.. count=0x..
 * ...".  Only the call lines of data actions are requests; returns
 * ("...Read"), connection events and Extents/Cache are skipped. */
static int
parse_nbdkit_log (struct import_state *st, char **f, int nf, char *err)
{
  static const struct { const char *name; char op; } actions[] = {
    { "Read", TRACE_READ }, { "Write", TRACE_WRITE }, { "Trim", TRACE_TRIM },
    { "Zero", TRACE_ZERO }, { "Flush", TRACE_FLUSH },
  };
  struct tm tm = { 0 };
  char *frac;
  uint64_t ts, usec, off = 0, len = 0;
  const char *action = NULL;
  int i = 2;
  char op = 0;

  if (need_fields (nf, 3, "date time action", err) == -1)
    return -1;
  frac = strptime (f[1], "%H:%M:%S", &tm);
  if (!strptime (f[0], "%Y-%m-%d", &tm) || !frac || *frac != '.' ||
      parse_uint64 (frac + 1, 10, &usec) == -1 || strlen (frac + 1) != 6)
    return fail (err, "expected a \"YYYY-MM-DD HH:MM:SS.uuuuuu\" timestamp");
  /* The log's local time is read as UTC: only differences matter.  A
   * time before 1970 would wrap as unsigned microseconds. */
  {
    time_t secs = timegm (&tm);
    if (secs < 0 || (uint64_t) secs > (TRACE_MAX_TS - usec) / 1000000)
      return fail (err, "date out of range (before 1970 or too far ahead)");
    ts = (uint64_t) secs * 1000000 + usec;
  }
  if (strncmp (f[i], "connection=", 11) == 0)
    i++;
  if (i >= nf)
    return fail (err, "missing action");
  for (size_t a = 0; a < sizeof actions / sizeof actions[0]; a++)
    if (strcmp (f[i], actions[a].name) == 0) {
      op = actions[a].op;
      action = actions[a].name;
    }
  if (!op)
    return 0;
  for (i++; i < nf; i++) {
    if (strncmp (f[i], "offset=", 7) == 0 && parse_uint64 (f[i] + 7, 0, &off) == -1)
      return fail (err, "bad %s", f[i]);
    if (strncmp (f[i], "count=", 6) == 0 && parse_uint64 (f[i] + 6, 0, &len) == -1)
      return fail (err, "bad %s", f[i]);
  }
  if (op != TRACE_FLUSH && len == 0)
    return fail (err, "%s without count=", action);
  return trace_append (st->out, ts, op, off, len, err);
}

/* blkparse default output: "MAJ,MIN CPU SEQ TIME PID ACTION RWBS SECTOR +
 * NSECT [PROC]".  Queue (Q), issue (D) and complete (C) events are kept
 * apart; finish uses the first kind present so one request counts once. */
static int
parse_blkparse (struct import_state *st, char **f, int nf, char *err)
{
  static const char kinds[] = "QDC";
  const char *k, *rwbs;
  uint64_t ts, sector = 0, nsect = 0;
  char op = 0;

  if (st->blk_done)
    return 0;
  /* The per-CPU and total summaries end the event list. */
  if (strncmp (f[0], "CPU", 3) == 0 || strcmp (f[0], "Total") == 0) {
    st->blk_done = true;
    return 0;
  }
  if (need_fields (nf, 7, "dev cpu seq time pid action rwbs", err) == -1)
    return -1;
  if (!strchr (f[0], ','))
    return fail (err, "expected a MAJ,MIN device, got \"%s\"", f[0]);
  if (get_time_us (f[3], 1e6, &ts) == -1)
    return fail (err, "bad time \"%s\"", f[3]);
  if (strlen (f[5]) != 1)
    return fail (err, "bad action \"%s\"", f[5]);
  k = strchr (kinds, f[5][0]);
  if (!k)
    return 0;                   /* plug, merge, remap, message ... */
  rwbs = f[6];
  if (strchr (rwbs, 'D'))
    op = TRACE_TRIM;
  else if (strchr (rwbs, 'W'))
    op = TRACE_WRITE;
  else if (strchr (rwbs, 'R'))
    op = TRACE_READ;
  else if (strchr (rwbs, 'F'))
    op = TRACE_FLUSH;
  else
    return 0;                   /* N (no data) and the like */
  if (nf >= 9 && strcmp (f[8], "+") == 0) {
    if (nf < 10 || parse_uint64 (f[7], 10, &sector) == -1 ||
        parse_uint64 (f[9], 10, &nsect) == -1)
      return fail (err, "bad \"SECTOR + NSECT\"");
  }
  else if (op != TRACE_FLUSH)
    return fail (err, "%c event without \"SECTOR + NSECT\"", *k);
  if (op == TRACE_FLUSH)
    sector = nsect = 0;
  if (sector > TRACE_MAX_END / SECTOR)
    return fail (err, "sector %" PRIu64 " out of range", sector);
  if (nsect > UINT32_MAX / SECTOR)
    return fail (err, "sector count %" PRIu64 " out of range", nsect);
  return trace_append (&st->blk_events[k - kinds], ts, op, sector * SECTOR,
                       nsect * SECTOR, err);
}

/* MSR Cambridge: "Timestamp,Hostname,DiskNumber,Type,Offset,Size,
 * ResponseTime", Timestamp in 100 ns Windows ticks. */
static int
parse_msr (struct import_state *st, char **f, int nf, char *err)
{
  uint64_t ticks, off, len;
  char op = 0;

  if (need_fields (nf, 6, "Timestamp,Hostname,DiskNumber,Type,Offset,Size",
                   err) == -1)
    return -1;
  if (parse_uint64 (f[0], 10, &ticks) == -1)
    return fail (err, "bad timestamp \"%s\"", f[0]);
  if (strcasecmp (f[3], "Read") == 0)
    op = TRACE_READ;
  else if (strcasecmp (f[3], "Write") == 0)
    op = TRACE_WRITE;
  else
    return fail (err, "type must be Read or Write, got \"%s\"", f[3]);
  if (parse_uint64 (f[4], 10, &off) == -1)
    return fail (err, "bad offset \"%s\"", f[4]);
  if (parse_uint64 (f[5], 10, &len) == -1)
    return fail (err, "bad size \"%s\"", f[5]);
  return trace_append (st->out, ticks / 10, op, off, len, err);
}

/* CloudPhysics vscsi: "version,time,op,size,lbn", time in seconds, op the
 * SCSI opcode in hex, size in bytes, lbn in 512-byte sectors. */
static int
parse_vscsi (struct import_state *st, char **f, int nf, char *err)
{
  uint64_t ts, opcode, len, lbn;
  char op = 0;

  if (need_fields (nf, 5, "version,time,op,size,lbn", err) == -1)
    return -1;
  if (get_time_us (f[1], 1e6, &ts) == -1)
    return fail (err, "bad time \"%s\"", f[1]);
  if (parse_uint64 (f[2], 16, &opcode) == -1)
    return fail (err, "bad op \"%s\" (hex SCSI opcode)", f[2]);
  switch (opcode) {
  case 0x08: case 0x28: case 0xa8: case 0x88: op = TRACE_READ; break;
  case 0x0a: case 0x2a: case 0xaa: case 0x8a: op = TRACE_WRITE; break;
  case 0x35: case 0x91: op = TRACE_FLUSH; break;
  case 0x42: op = TRACE_TRIM; break;
  default: return fail (err, "unknown SCSI opcode 0x%" PRIx64, opcode);
  }
  if (parse_uint64 (f[3], 10, &len) == -1)
    return fail (err, "bad size \"%s\"", f[3]);
  if (parse_uint64 (f[4], 10, &lbn) == -1 || lbn > TRACE_MAX_END / SECTOR)
    return fail (err, "bad lbn \"%s\"", f[4]);
  return trace_append (st->out, ts, op, lbn * SECTOR, len, err);
}

/* Sector-addressed formats whose type field says 1 = read, 0 = write. */
static int
get_rw_flag (const char *s, char *op, char *err)
{
  if (strcmp (s, "1") == 0)
    *op = TRACE_READ;
  else if (strcmp (s, "0") == 0)
    *op = TRACE_WRITE;
  else
    return fail (err, "type must be 1 (read) or 0 (write), got \"%s\"", s);
  return 0;
}

static int
get_sectors (char **f, uint64_t *off, uint64_t *len, char *err)
{
  if (parse_uint64 (f[0], 10, off) == -1 || *off > TRACE_MAX_END / SECTOR)
    return fail (err, "bad sector \"%s\"", f[0]);
  if (parse_uint64 (f[1], 10, len) == -1 || *len > UINT32_MAX / SECTOR)
    return fail (err, "bad sector count \"%s\"", f[1]);
  *off *= SECTOR;
  *len *= SECTOR;
  return 0;
}

/* DiskSim ASCII (MQSim): "arrival_ns device lba sectors type".  Devices
 * are placed in finish_disksim once the largest extent is known. */
static int
parse_disksim (struct import_state *st, char **f, int nf, char *err)
{
  uint64_t ts, dev, off, len;
  char op = 0;

  if (need_fields (nf, 5, "arrival_ns device lba sectors type", err) == -1)
    return -1;
  if (parse_uint64 (f[0], 10, &ts) == -1)
    return fail (err, "bad arrival time \"%s\"", f[0]);
  if (parse_uint64 (f[1], 10, &dev) == -1 || dev > 65535)
    return fail (err, "bad device \"%s\"", f[1]);
  if (get_sectors (&f[2], &off, &len, err) == -1 ||
      get_rw_flag (f[4], &op, err) == -1)
    return -1;
  if (st->ndevices == st->out->n) {
    struct disksim_dev *d = realloc (st->devices,
                                     (st->ndevices * 2 + 1024) * sizeof *d);
    if (!d)
      return fail (err, "out of memory");
    st->devices = d;
  }
  if (trace_append (st->out, ts / 1000, op, off, len, err) == -1)
    return -1;
  st->devices[st->ndevices++] = (struct disksim_dev) { dev, st->lineno };
  return 0;
}

/* replayer: "time_ms disk offset_sectors size_sectors rw". */
static int
parse_replayer (struct import_state *st, char **f, int nf, char *err)
{
  uint64_t ts, off, len;
  char op = 0;

  if (need_fields (nf, 5, "time_ms disk offset size rw", err) == -1)
    return -1;
  if (get_time_us (f[0], 1e3, &ts) == -1)
    return fail (err, "bad time \"%s\"", f[0]);
  if (get_sectors (&f[2], &off, &len, err) == -1 ||
      get_rw_flag (f[4], &op, err) == -1)
    return -1;
  return trace_append (st->out, ts, op, off, len, err);
}

/* DESIGN.md: device d starts at d * R, R = the largest end offset over
 * all devices rounded up to 1 GiB, so devices never overlap.  A request
 * placed beyond TRACE_MAX_END is refused with its line: wrapping would
 * put it on another device. */
static int
finish_disksim (struct import_state *st, char *err)
{
  const uint64_t GiB = 1ULL << 30;
  uint64_t region = 0;

  for (size_t i = 0; i < st->out->n; i++) {
    uint64_t end = st->out->recs[i].offset + st->out->recs[i].length;
    if (end > region)
      region = end;
  }
  region = (region + GiB - 1) / GiB * GiB;
  for (size_t i = 0; i < st->out->n; i++) {
    struct trace_rec *r = &st->out->recs[i];
    uint64_t base;
    if (__builtin_mul_overflow (st->devices[i].device, region, &base) ||
        base > TRACE_MAX_END - (r->offset + r->length))
      return fail (err, "line %" PRIu64 ": device %" PRIu64 " placed at %"
                   PRIu64 " x %" PRIu64 " bytes ends beyond 2^63 - 1 bytes",
                   st->devices[i].line, st->devices[i].device,
                   st->devices[i].device, region);
    r->offset += base;
  }
  return 0;
}

static int
finish_blkparse (struct import_state *st, char *err)
{
  for (int k = 0; k < 3; k++) {
    struct trace *ev = &st->blk_events[k];
    if (ev->n == 0)
      continue;
    for (size_t i = 0; i < ev->n; i++)
      if (trace_append (st->out, ev->recs[i].ts_us, ev->recs[i].op,
                        ev->recs[i].offset, ev->recs[i].length, err) == -1)
        return -1;
    return 0;
  }
  return 0;
}

static const struct format {
  const char *name;
  const char *seps;
  const char *comment;          /* lines starting with it are skipped */
  int columns;                  /* >0: columnar, may start with a header
                                   of at least this many names */
  line_parser parse;
  int (*finish) (struct import_state *, char *err);
} formats[] = {
  { "csv", ",", NULL, 4, parse_csv, NULL },
  { "nbdkit-log", " \t", NULL, 0, parse_nbdkit_log, NULL },
  { "blkparse", " \t[]", NULL, 0, parse_blkparse, finish_blkparse },
  { "msr", ",", NULL, 6, parse_msr, NULL },
  { "vscsi", ", \t", "#", 5, parse_vscsi, NULL },
  { "disksim", " \t", NULL, 5, parse_disksim, finish_disksim },
  { "replayer", " \t", NULL, 5, parse_replayer, NULL },
};

/* Files are distributed with or without a line naming the columns
 * ("version,time,op,size,lbn", "Timestamp,Hostname,...").  A first line
 * of at least the format's columns, each a name (a letter first, then
 * letters, digits, "_ .()/-"), is one; data lines start with a number in
 * every columnar format, so none is mistaken for it. */
static int
is_header (char **f, int nf, int columns)
{
  if (columns == 0 || nf < columns)
    return 0;
  for (int i = 0; i < nf; i++) {
    if (!((f[i][0] >= 'a' && f[i][0] <= 'z') ||
          (f[i][0] >= 'A' && f[i][0] <= 'Z')))
      return 0;
    for (const char *c = f[i]; *c; c++)
      if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
            (*c >= '0' && *c <= '9') || strchr ("_ .()/-", *c)))
        return 0;
  }
  return 1;
}

int
trace_import (FILE *fp, const char *name, struct trace *t, char *err)
{
  const struct format *fmt = NULL;
  struct import_state st = { .out = t };
  char *line = NULL, *f[MAX_FIELDS];
  size_t cap = 0;
  ssize_t len;
  uint64_t lineno = 0;
  int nf, ret = -1, first = 1;

  for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
    if (strcmp (formats[i].name, name) == 0)
      fmt = &formats[i];
  if (!fmt)
    return fail (err, "unknown format \"%s\"", name);

  while ((len = getline (&line, &cap, fp)) >= 0) {
    char *p = line;
    st.lineno = ++lineno;
    /* CRLF line ends, and a UTF-8 byte-order mark before the first. */
    while (len > 0 && strchr ("\r\n", line[len - 1]))
      line[--len] = '\0';
    if (lineno == 1 && strncmp (p, "\xef\xbb\xbf", 3) == 0)
      p += 3;
    if (fmt->comment && strncmp (p, fmt->comment,
                                 strlen (fmt->comment)) == 0)
      continue;
    nf = split_fields (p, fmt->seps, f);
    if (nf == 0)
      continue;
    if (nf > MAX_FIELDS) {
      fail (err, "line %" PRIu64 ": too many fields", lineno);
      goto out;
    }
    if (first) {
      first = 0;
      if (is_header (f, nf, fmt->columns))
        continue;
    }
    if (fmt->parse (&st, f, nf, err) == -1) {
      char reason[LEARNER_ERRLEN];
      memcpy (reason, err, LEARNER_ERRLEN);
      fail (err, "line %" PRIu64 ": %.200s", lineno, reason);
      goto out;
    }
  }
  if (fmt->finish && fmt->finish (&st, err) == -1)
    goto out;
  if (t->n == 0) {
    fail (err, "no requests found in %" PRIu64 " lines", lineno);
    goto out;
  }
  trace_sort (t);
  ret = 0;
 out:
  free (line);
  free (st.devices);
  for (int k = 0; k < 3; k++)
    trace_free (&st.blk_events[k]);
  return ret;
}
