/* verify.c: `nbdshadow verify`: prove a shadow holds the source's bytes.
 *
 * The disk is cut into chunks; each chunk is read from both sides and
 * compared by SHA-256 (libcrypto), by several threads at once, each with
 * its own NBD connections, so a long link or a slow disk is kept busy.
 * Ranges both sides call zero in their allocation map (NBD
 * base:allocation, or SEEK_DATA/SEEK_HOLE for a local file) are not read:
 * a migrated disk is mostly holes on a sparse source, and reading
 * terabytes of zeroes twice would be the whole cost.  Where digests
 * differ, the two buffers are scanned to name the differing bytes
 * exactly, so the output says where a corruption is, not just that one
 * exists.
 *
 * Exit status as cmp(1): 0 identical, 1 different, 2 trouble.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <libnbd.h>
#include <openssl/evp.h>

#include "array.h"
#include "cli.h"
#include "fullio.h"

#define DEFAULT_CHUNK (1024 * 1024)
#define MAX_CHUNK (32 * 1024 * 1024)    /* the largest NBD read we send */
#define DEFAULT_CONNECTIONS 4
#define MAX_CONNECTIONS 16
/* Differing bytes closer than this are reported as one range: a
 * corrupted sector should read as one line, not one per byte. */
#define MERGE_GAP 512
/* Ranges printed without --json; the count and byte total are exact. */
#define MAX_PRINTED 100
/* One block status request asks about at most this much. */
#define MAP_STEP (UINT64_C (1) << 30)

struct range {
  uint64_t offset, length;
};

struct ranges {
  struct range *v;
  size_t n, cap;
};

/* One side of the comparison: an NBD export or a local file. */
struct side {
  const char *name;             /* as given, for messages */
  const char *uri;              /* NULL: the local file fd */
  int fd;
  int64_t size;
  struct ranges data;           /* ranges not known to read as zeroes */
};

struct verify {
  struct side side[2];          /* source, shadow */
  const char *tls_psk, *tls_certificates;
  uint64_t size;                /* compared: the smaller of the two */
  uint64_t chunk;
  int nthreads;
  struct ranges work;           /* union of both sides' data */
  uint64_t work_bytes;
  pthread_mutex_t lock;
  pthread_cond_t finished;      /* a worker is done */
  /* Under lock: the work cursor, progress and results. */
  size_t work_index;
  uint64_t work_offset;         /* next chunk start within work.v[index] */
  uint64_t bytes_hashed, chunks_hashed;
  struct ranges mismatches;
  char error[512];
  int done_threads;
};

static void
usage (FILE *fp)
{
  fprintf (fp,
"usage: nbdshadow verify --source URI (--shadow FILE | --uri URI)\n"
"                        [--chunk SIZE] [--connections N]\n"
"                        [--tls-psk FILE | --tls-certificates DIR] [--json]\n"
"Compare a shadow with its source chunk by chunk with SHA-256: the source\n"
"export URI against the shadow file FILE (--shadow) or an export serving\n"
"it (--uri).  Chunks of SIZE bytes (default 1M, at most 32M) are read by\n"
"N threads at once (--connections, default 4, each with its own\n"
"connections).  Ranges that both sides' allocation maps (NBD\n"
"base:allocation, SEEK_HOLE for a file) call zero are not read.\n"
"Mismatching bytes are printed as ranges, \"mismatch: offset O length L\",\n"
"differences closer than 512 bytes merged.  A terminal gets progress on\n"
"stderr.  --tls-psk/--tls-certificates: TLS credentials for nbds:// URIs.\n"
"--json: one object with identical, size, source_size, shadow_size,\n"
"chunk, chunks_hashed, bytes_hashed, bytes_skipped, mismatched_bytes,\n"
"seconds and mismatches (an array of {offset, length}).\n"
"Exit status: 0 identical, 1 different (sizes included), 2 trouble.\n");
}

static int
ranges_add (struct ranges *r, uint64_t offset, uint64_t length)
{
  if (r->n && r->v[r->n - 1].offset + r->v[r->n - 1].length == offset) {
    r->v[r->n - 1].length += length;
    return 0;
  }
  struct range *v = array_grow (r->v, &r->cap, r->n, sizeof *v, 64);

  if (!v)
    return -1;
  r->v = v;
  r->v[r->n++] = (struct range) { offset, length };
  return 0;
}

/* Block status answers arrive here: keep the extents that may hold data
 * and note how far the answer reached (it may cover less than asked). */
struct map_answer {
  struct side *s;
  uint64_t end;
};

static int
collect_extents (void *opaque, const char *metacontext, uint64_t offset,
                 uint32_t *entries, size_t n, int *error)
{
  struct map_answer *a = opaque;

  if (strcmp (metacontext, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0)
    return 0;
  for (size_t i = 0; i + 1 < n; i += 2) {
    if (!(entries[i + 1] & LIBNBD_STATE_ZERO) &&
        ranges_add (&a->s->data, offset, entries[i]) == -1) {
      *error = ENOMEM;
      return -1;
    }
    offset += entries[i];
  }
  a->end = offset;
  return 0;
}

static struct nbd_handle *
connect_export (const struct verify *v, const struct side *s, int map,
                char *err, size_t errlen)
{
  struct nbd_handle *h = nbd_create ();

  if (!h ||
      (map && nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION) == -1) ||
      (v->tls_psk && nbd_set_tls_psk_file (h, v->tls_psk) == -1) ||
      (v->tls_certificates &&
       nbd_set_tls_certificates (h, v->tls_certificates) == -1) ||
      nbd_connect_uri (h, s->uri) == -1) {
    snprintf (err, errlen, "%s: %s", s->name, nbd_get_error ());
    nbd_close (h);
    return NULL;
  }
  return h;
}

/* The ranges of an export that may hold data, from its base:allocation
 * map (all of it when the server has none). */
static int
map_export (struct side *s, struct nbd_handle *h, char *err, size_t errlen)
{
  uint64_t offset = 0, size = s->size;

  if (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION) != 1)
    return ranges_add (&s->data, 0, size);
  while (offset < size) {
    uint64_t count = size - offset < MAP_STEP ? size - offset : MAP_STEP;
    struct map_answer a = { s, offset };

    if (nbd_block_status (h, count, offset, (nbd_extent_callback) {
          .callback = collect_extents, .user_data = &a }, 0) == -1) {
      snprintf (err, errlen, "%s: block status: %s", s->name,
                nbd_get_error ());
      return -1;
    }
    if (a.end <= offset) {
      snprintf (err, errlen, "%s: block status at %" PRIu64
                " made no progress", s->name, offset);
      return -1;
    }
    offset = a.end;
  }
  return 0;
}

/* The same for a local file, from SEEK_DATA/SEEK_HOLE (all of it where
 * the file system cannot say). */
static int
map_file (struct side *s, char *err, size_t errlen)
{
  off_t offset = 0, size = s->size;

  while (offset < size) {
    off_t data = lseek (s->fd, offset, SEEK_DATA), hole;

    if (data == -1 && errno == ENXIO)
      break;                    /* a hole up to the end */
    if (data == -1)
      return ranges_add (&s->data, offset, size - offset);
    hole = lseek (s->fd, data, SEEK_HOLE);
    if (hole == -1 || hole > size)
      hole = size;
    if (ranges_add (&s->data, data, hole - data) == -1) {
      snprintf (err, errlen, "out of memory");
      return -1;
    }
    offset = hole;
  }
  return 0;
}

static int
cmp_range (const void *a, const void *b)
{
  const struct range *x = a, *y = b;
  return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Sort R and merge ranges that overlap or lie closer than GAP. */
static void
ranges_normalise (struct ranges *r, uint64_t gap)
{
  size_t n = 0;

  if (r->n == 0)
    return;                     /* r->v may be NULL: qsort must not see it */
  qsort (r->v, r->n, sizeof r->v[0], cmp_range);
  for (size_t i = 0; i < r->n; i++) {
    if (n && r->v[i].offset <= r->v[n - 1].offset + r->v[n - 1].length + gap) {
      uint64_t end = r->v[i].offset + r->v[i].length;
      if (end > r->v[n - 1].offset + r->v[n - 1].length)
        r->v[n - 1].length = end - r->v[n - 1].offset;
    }
    else
      r->v[n++] = r->v[i];
  }
  r->n = n;
}

/* What must be read: the ranges, clipped to the compared size, that
 * either side's map says may hold data. */
static int
plan_work (struct verify *v)
{
  for (int i = 0; i < 2; i++)
    for (size_t j = 0; j < v->side[i].data.n; j++) {
      struct range r = v->side[i].data.v[j];

      if (r.offset >= v->size)
        continue;
      if (r.length > v->size - r.offset)
        r.length = v->size - r.offset;
      if (ranges_add (&v->work, r.offset, r.length) == -1)
        return -1;
    }
  ranges_normalise (&v->work, 0);
  for (size_t i = 0; i < v->work.n; i++)
    v->work_bytes += v->work.v[i].length;
  return 0;
}

/* The next piece to compare, or 0 when there is none left: at most a
 * chunk, never across a multiple of the chunk size, so that scattered
 * data costs its own size, not a chunk each.  Under lock. */
static int
next_chunk (struct verify *v, uint64_t *offset, uint64_t *length)
{
  while (v->work_index < v->work.n) {
    struct range *r = &v->work.v[v->work_index];
    uint64_t end = r->offset + r->length;

    if (v->work_offset < r->offset)
      v->work_offset = r->offset;
    if (v->work_offset < end) {
      uint64_t boundary = (v->work_offset / v->chunk + 1) * v->chunk;

      *offset = v->work_offset;
      *length = (end < boundary ? end : boundary) - *offset;
      v->work_offset += *length;
      return 1;
    }
    v->work_index++;
  }
  return 0;
}

/* Record the differing bytes of one chunk read at OFFSET. */
static int
record_mismatches (struct verify *v, uint64_t offset, const unsigned char *a,
                   const unsigned char *b, uint64_t length)
{
  struct ranges found = { 0 };
  int r = 0;

  for (uint64_t i = 0; i < length; i++) {
    uint64_t j;

    if (a[i] == b[i])
      continue;
    for (j = i + 1; j < length && a[j] != b[j]; j++)
      ;
    if (ranges_add (&found, offset + i, j - i) == -1) {
      free (found.v);
      return -1;
    }
    i = j;
  }
  pthread_mutex_lock (&v->lock);
  for (size_t i = 0; i < found.n && r == 0; i++)
    r = ranges_add (&v->mismatches, found.v[i].offset, found.v[i].length);
  pthread_mutex_unlock (&v->lock);
  free (found.v);
  return r;
}

static int
read_side (struct side *s, struct nbd_handle *h, void *buf, uint64_t length,
           uint64_t offset, char *err, size_t errlen)
{
  if (h) {
    if (nbd_pread (h, buf, length, offset, 0) == -1) {
      snprintf (err, errlen, "%s: read at %" PRIu64 ": %s", s->name, offset,
                nbd_get_error ());
      return -1;
    }
    return 0;
  }
  ssize_t n = full_pread (s->fd, buf, length, offset);
  if (n != (ssize_t) length) {
    snprintf (err, errlen, "%s: read at %" PRIu64 ": %s", s->name, offset,
              n >= 0 ? "unexpected end of file" : strerror (errno));
    return -1;
  }
  return 0;
}

static void *
worker (void *opaque)
{
  struct verify *v = opaque;
  struct nbd_handle *h[2] = { NULL, NULL };
  unsigned char *buf[2] = { malloc (v->chunk), malloc (v->chunk) };
  unsigned char md[2][EVP_MAX_MD_SIZE];
  char err[512] = "";
  uint64_t offset, length;

  if (!buf[0] || !buf[1]) {
    snprintf (err, sizeof err, "out of memory");
    goto out;
  }
  for (int i = 0; i < 2; i++)
    if (v->side[i].uri &&
        !(h[i] = connect_export (v, &v->side[i], 0, err, sizeof err)))
      goto out;
  for (;;) {
    int more;

    pthread_mutex_lock (&v->lock);
    more = !v->error[0] && next_chunk (v, &offset, &length);
    pthread_mutex_unlock (&v->lock);
    if (!more)
      break;
    for (int i = 0; i < 2; i++) {
      unsigned int mdlen;

      if (read_side (&v->side[i], h[i], buf[i], length, offset, err,
                     sizeof err) == -1)
        goto out;
      if (!EVP_Digest (buf[i], length, md[i], &mdlen, EVP_sha256 (), NULL)) {
        snprintf (err, sizeof err, "SHA-256 failed");
        goto out;
      }
    }
    if (memcmp (md[0], md[1], 32) != 0 &&
        record_mismatches (v, offset, buf[0], buf[1], length) == -1) {
      snprintf (err, sizeof err, "out of memory");
      goto out;
    }
    pthread_mutex_lock (&v->lock);
    v->bytes_hashed += length;
    v->chunks_hashed++;
    pthread_mutex_unlock (&v->lock);
  }
 out:
  for (int i = 0; i < 2; i++) {
    nbd_close (h[i]);
    free (buf[i]);
  }
  pthread_mutex_lock (&v->lock);
  if (err[0] && !v->error[0])
    snprintf (v->error, sizeof v->error, "%s", err);
  v->done_threads++;
  pthread_cond_signal (&v->finished);
  pthread_mutex_unlock (&v->lock);
  return NULL;
}

/* Open a side and read its size and allocation map. */
static int
open_side (struct verify *v, struct side *s, char *err, size_t errlen)
{
  struct stat st;

  if (s->uri) {
    struct nbd_handle *h = connect_export (v, s, 1, err, errlen);
    int r;

    if (!h)
      return -1;
    s->size = nbd_get_size (h);
    if (s->size == -1) {
      snprintf (err, errlen, "%s: %s", s->name, nbd_get_error ());
      nbd_close (h);
      return -1;
    }
    r = map_export (s, h, err, errlen);
    nbd_close (h);
    return r;
  }
  s->fd = open (s->name, O_RDONLY | O_CLOEXEC);
  if (s->fd == -1 || fstat (s->fd, &st) == -1 ||
      (s->size = lseek (s->fd, 0, SEEK_END)) == -1) {
    snprintf (err, errlen, "%s: %s", s->name, strerror (errno));
    return -1;
  }
  if (!S_ISREG (st.st_mode) && !S_ISBLK (st.st_mode)) {
    snprintf (err, errlen, "%s: not a regular file or block device",
              s->name);
    return -1;
  }
  return map_file (s, err, errlen);
}

/* Progress on stderr (a terminal) until every worker is done. */
static void
wait_workers (struct verify *v, int show, uint64_t start)
{
  for (;;) {
    int done;
    uint64_t hashed;
    size_t nmis;
    double secs;
    struct timespec until = deadline_after_ms (CLOCK_REALTIME, 200);

    pthread_mutex_lock (&v->lock);
    if (v->done_threads < v->nthreads)
      pthread_cond_timedwait (&v->finished, &v->lock, &until);
    done = v->done_threads == v->nthreads;
    hashed = v->bytes_hashed;
    nmis = v->mismatches.n;
    pthread_mutex_unlock (&v->lock);
    if (show) {
      secs = seconds_since (start);
      fprintf (stderr, "\rverify: %5.1f%%  %s of %s of data, %.0f MB/s, "
               "%zu mismatching\033[K",
               v->work_bytes ? 100.0 * hashed / v->work_bytes : 100.0,
               human_size (hashed), human_size (v->work_bytes),
               secs > 0 ? hashed / secs / 1e6 : 0.0, nmis);
      if (done)
        fputc ('\n', stderr);
    }
    if (done)
      return;
  }
}

static void
print_result (const struct verify *v, int json, double secs)
{
  uint64_t mismatched = 0, skipped = v->size - v->work_bytes;
  int identical = v->mismatches.n == 0 &&
    v->side[0].size == v->side[1].size;

  for (size_t i = 0; i < v->mismatches.n; i++)
    mismatched += v->mismatches.v[i].length;
  if (json) {
    printf ("{\"identical\": %s, \"size\": %" PRIu64 ", \"source_size\": %"
            PRIi64 ", \"shadow_size\": %" PRIi64 ", \"chunk\": %" PRIu64
            ", \"chunks_hashed\": %" PRIu64 ", \"bytes_hashed\": %" PRIu64
            ", \"bytes_skipped\": %" PRIu64 ", \"mismatched_bytes\": %"
            PRIu64 ", \"seconds\": %.3f, \"mismatches\": [",
            identical ? "true" : "false", v->size, v->side[0].size,
            v->side[1].size, v->chunk, v->chunks_hashed, v->bytes_hashed,
            skipped, mismatched, secs);
    for (size_t i = 0; i < v->mismatches.n; i++)
      printf ("%s{\"offset\": %" PRIu64 ", \"length\": %" PRIu64 "}",
              i ? ", " : "", v->mismatches.v[i].offset,
              v->mismatches.v[i].length);
    printf ("]}\n");
    return;
  }
  if (v->side[0].size != v->side[1].size)
    printf ("sizes differ: source %" PRIi64 " bytes, shadow %" PRIi64
            " bytes (compared the first %" PRIu64 ")\n",
            v->side[0].size, v->side[1].size, v->size);
  for (size_t i = 0; i < v->mismatches.n && i < MAX_PRINTED; i++)
    printf ("mismatch: offset %" PRIu64 " length %" PRIu64 "\n",
            v->mismatches.v[i].offset, v->mismatches.v[i].length);
  if (v->mismatches.n > MAX_PRINTED)
    printf ("... and %zu more mismatching ranges\n",
            v->mismatches.n - MAX_PRINTED);
  printf ("%s: %s compared in %.1f s (%" PRIu64 " chunks hashed, %s of "
          "holes on both sides skipped)",
          identical ? "identical" : "DIFFERENT", human_size (v->size), secs,
          v->chunks_hashed, human_size (skipped));
  if (mismatched)
    printf (", %" PRIu64 " byte%s differ%s in %zu range%s", mismatched,
            mismatched == 1 ? "" : "s", mismatched == 1 ? "s" : "",
            v->mismatches.n, v->mismatches.n == 1 ? "" : "s");
  printf ("\n");
}

int
cmd_verify (int argc, char **argv)
{
  static const struct option opts[] = {
    { "source", required_argument, NULL, 's' },
    { "shadow", required_argument, NULL, 'f' },
    { "uri", required_argument, NULL, 'u' },
    { "chunk", required_argument, NULL, 'c' },
    { "connections", required_argument, NULL, 'n' },
    { "tls-psk", required_argument, NULL, 'p' },
    { "tls-certificates", required_argument, NULL, 'C' },
    { "json", no_argument, NULL, 'j' },
    { "help", no_argument, NULL, 'h' },
    { NULL }
  };
  struct verify v = {
    .chunk = DEFAULT_CHUNK, .nthreads = DEFAULT_CONNECTIONS,
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .finished = PTHREAD_COND_INITIALIZER,
    .side = { { .fd = -1 }, { .fd = -1 } },
  };
  const char *shadow_file = NULL, *shadow_uri = NULL;
  pthread_t threads[MAX_CONNECTIONS];
  uint64_t start;
  char err[512];
  int c, json = 0, status = 2;
  uint64_t n;

  while ((c = getopt_long (argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 's': v.side[0].name = v.side[0].uri = optarg; break;
    case 'f': shadow_file = optarg; break;
    case 'u': shadow_uri = optarg; break;
    case 'c':
      if (parse_size (optarg, &v.chunk) == -1 || v.chunk < 512 ||
          v.chunk > MAX_CHUNK || v.chunk % 512)
        return die ("--chunk: expected a multiple of 512 up to 32M, "
                    "got \"%s\"", optarg), 2;
      break;
    case 'n':
      if (parse_size (optarg, &n) == -1 || n < 1 || n > MAX_CONNECTIONS)
        return die ("--connections: expected 1 to %d, got \"%s\"",
                    MAX_CONNECTIONS, optarg), 2;
      v.nthreads = n;
      break;
    case 'p': v.tls_psk = optarg; break;
    case 'C': v.tls_certificates = optarg; break;
    case 'j': json = 1; break;
    case 'h': usage (stdout); return 0;
    default: usage (stderr); return 2;
    }
  }
  if (!v.side[0].uri || !shadow_file == !shadow_uri || optind != argc) {
    usage (stderr);
    return 2;
  }
  if (v.tls_psk && v.tls_certificates)
    return die ("--tls-psk and --tls-certificates exclude each other"), 2;
  v.side[1].name = shadow_file ? shadow_file : shadow_uri;
  v.side[1].uri = shadow_uri;
  start = time_ns ();
  for (int i = 0; i < 2; i++)
    if (open_side (&v, &v.side[i], err, sizeof err) == -1) {
      die ("%s", err);
      goto out;
    }
  v.size = v.side[0].size < v.side[1].size ? v.side[0].size : v.side[1].size;
  if (plan_work (&v) == -1) {
    die ("out of memory");
    goto out;
  }
  for (int i = 0; i < v.nthreads; i++) {
    int e = pthread_create (&threads[i], NULL, worker, &v);
    if (e) {
      /* The threads already started do the work alone. */
      pthread_mutex_lock (&v.lock);
      v.nthreads = i;
      pthread_mutex_unlock (&v.lock);
      if (i == 0) {
        die ("pthread_create: %s", strerror (e));
        goto out;
      }
      break;
    }
  }
  wait_workers (&v, !json && isatty (STDERR_FILENO), start);
  for (int i = 0; i < v.nthreads; i++)
    pthread_join (threads[i], NULL);
  if (v.error[0]) {
    die ("%s", v.error);
    goto out;
  }
  ranges_normalise (&v.mismatches, MERGE_GAP);
  print_result (&v, json, seconds_since (start));
  status = v.mismatches.n == 0 && v.side[0].size == v.side[1].size ? 0 : 1;
 out:
  for (int i = 0; i < 2; i++) {
    if (v.side[i].fd >= 0)
      close (v.side[i].fd);
    free (v.side[i].data.v);
  }
  free (v.work.v);
  free (v.mismatches.v);
  return status;
}
