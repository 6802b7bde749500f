/* shadow-stress: a concurrent NBD stress tester with a reference model.
 *
 * Several client threads, each on its own connection (multi-conn), issue
 * random reads, writes (some FUA), trims, zeroes, flushes, block-status
 * and cache requests at unaligned offsets and lengths, many of them
 * crossing block boundaries or writing part of a block nobody has read
 * yet.  A background reader thread on one more connection sweeps the
 * disk with small reads, so that demand fetches race with writes to the
 * other parts of the same blocks.  Every read is checked against an
 * in-memory model of the disk, initialised from the known source content
 * (nbdkit pattern plugin, all zeroes, or a file).  No two overlapping
 * requests are ever in flight at once (range locks), since NBD leaves
 * the outcome of overlapping requests undefined.
 *
 * Crash mode (--log FILE) records every mutating request and every flush
 * in FILE (appended, fsync'd at durability points).  When started on a
 * non-empty log it first replays it, then checks that the disk holds the
 * data of every write that was acknowledged and then covered by a
 * completed flush (or was FUA); bytes of writes not covered by a flush
 * may hold either the old or the new data.  It then rewrites those
 * uncertain ranges with their durable content so the model is exact
 * again, and continues.  --allow-disconnect makes a lost server the
 * normal end of a run (the test kills the server under it).
 *
 * Prints "N ops, M mismatches"; exits 1 on any mismatch or I/O error.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libnbd.h>

/* ---- options ---- */
static const char *uri;
static unsigned nr_clients = 4;
static uint64_t nr_ops = 200000;
static uint64_t seed;
static uint64_t size;            /* exercised region [0, size) */
static uint64_t block_size = 65536;
static uint64_t max_len;
static const char *source = "pattern";
static unsigned write_pct = 45;  /* share of mutating ops */
static unsigned flush_pct = 2;
static bool reader_thread = true;
static const char *log_path;
static const char *durable_blocks_path;
static enum { VERIFY_NONE, VERIFY_WRITTEN, VERIFY_ALL } verify_mode;
static bool allow_disconnect;
static bool final_verify;
static const char *ready_path;
static unsigned timeout_secs;
static bool verbose;

/* ---- the reference model ---- */
static uint8_t *model;

/* ---- shared run state ---- */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t range_freed = PTHREAD_COND_INITIALIZER;
struct range { uint64_t off, len; bool used; };
static struct range *active;       /* one slot per thread */
static uint64_t ops_issued, ops_done, reader_ops;
static uint64_t mismatches, io_errors;
static bool stop, disconnected;
static uint64_t next_id = 1;       /* write ids: data = gen (id, offset) */
static uint64_t reader_block;      /* where the sweep is now */
static uint8_t *touched;           /* per block: touched by any request */
static uint64_t nr_blocks;
static bool can_trim, can_zero, can_fua, can_flush, can_cache, can_extents;

/* Crash-mode log. */
static int log_fd = -1;
static uint64_t flush_seq;

static void __attribute__ ((format (printf, 1, 2)))
fail (const char *fs, ...)
{
  va_list ap;
  va_start (ap, fs);
  fprintf (stderr, "shadow-stress: ");
  vfprintf (stderr, fs, ap);
  fprintf (stderr, "\n");
  va_end (ap);
  exit (EXIT_FAILURE);
}

/* splitmix64: seeding and data generation. */
static inline uint64_t
mix64 (uint64_t x)
{
  x += UINT64_C (0x9e3779b97f4a7c15);
  x = (x ^ (x >> 30)) * UINT64_C (0xbf58476d1ce4e5b9);
  x = (x ^ (x >> 27)) * UINT64_C (0x94d049bb133111eb);
  return x ^ (x >> 31);
}

struct rng { uint64_t s; };
static inline uint64_t rnd (struct rng *r) { return mix64 (r->s++ * 0x9e3779b97f4a7c15 + 7); }
static inline uint64_t rnd_below (struct rng *r, uint64_t n) { return n ? rnd (r) % n : 0; }

/* Content written by write ID at absolute offsets [off, off+len). */
static void
gen_data (uint64_t id, uint64_t off, uint64_t len, uint8_t *buf)
{
  for (uint64_t i = 0; i < len; i++) {
    uint64_t x = off + i;
    uint64_t w = mix64 ((id << 20) ^ mix64 (x >> 3));
    buf[i] = w >> (8 * (x & 7));
  }
}

static inline uint8_t
gen_byte (uint64_t id, uint64_t x)
{
  uint64_t w = mix64 ((id << 20) ^ mix64 (x >> 3));
  return w >> (8 * (x & 7));
}

static void
init_model (void)
{
  model = malloc (size ? size : 1);
  if (!model) fail ("cannot allocate a %" PRIu64 " byte model", size);
  if (strcmp (source, "pattern") == 0) {
    /* nbdkit-pattern-plugin: each 8 bytes hold their offset, big endian. */
    for (uint64_t x = 0; x < size; x++)
      model[x] = (x & ~UINT64_C (7)) >> (8 * (7 - (x & 7)));
  }
  else if (strcmp (source, "zero") == 0)
    memset (model, 0, size);
  else {
    int fd = open (source, O_RDONLY);
    if (fd == -1) fail ("%s: %m", source);
    uint64_t got = 0;
    while (got < size) {
      ssize_t r = pread (fd, model + got, size - got, got);
      if (r <= 0) fail ("%s: short read at %" PRIu64, source, got);
      got += r;
    }
    close (fd);
  }
}

/* ---- range locks ---- */
static bool
overlaps_active (uint64_t off, uint64_t len)
{
  for (unsigned i = 0; i <= nr_clients; i++)
    if (active[i].used && off < active[i].off + active[i].len &&
        active[i].off < off + len)
      return true;
  return false;
}

static void
range_lock (unsigned slot, uint64_t off, uint64_t len)
{
  pthread_mutex_lock (&lock);
  while (overlaps_active (off, len))
    pthread_cond_wait (&range_freed, &lock);
  active[slot] = (struct range) { off, len, true };
  pthread_mutex_unlock (&lock);
}

static void
range_unlock (unsigned slot)
{
  pthread_mutex_lock (&lock);
  active[slot].used = false;
  pthread_cond_broadcast (&range_freed);
  pthread_mutex_unlock (&lock);
}

/* ---- crash-mode log ----
 * Lines:  I id kind off len fua   request issued (kind W, Z or T)
 *         C id                    request acknowledged
 *         S n / D n               flush n sent / completed
 *         V                       earlier uncertain writes were restored
 * A write is durable if it was FUA and acknowledged, or acknowledged
 * before an "S n" whose "D n" follows.
 */
static void __attribute__ ((format (printf, 2, 3)))
log_line (bool sync, const char *fs, ...)
{
  char line[128];
  va_list ap;
  va_start (ap, fs);
  int n = vsnprintf (line, sizeof line, fs, ap);
  va_end (ap);
  if (write (log_fd, line, n) != n) fail ("%s: write: %m", log_path);
  if (sync && fdatasync (log_fd) == -1) fail ("%s: fdatasync: %m", log_path);
}

/* ---- mismatch reporting ---- */
static void
report_mismatch (const char *what, uint64_t off, uint64_t len,
                 const uint8_t *got, uint64_t x)
{
  pthread_mutex_lock (&lock);
  if (mismatches++ < 10)
    fprintf (stderr,
             "shadow-stress: MISMATCH in %s [%" PRIu64 ", +%" PRIu64 "): "
             "first bad byte at offset %" PRIu64 " (block %" PRIu64
             "): got 0x%02x expected 0x%02x\n",
             what, off, len, x, x / block_size, got[x - off], model[x]);
  pthread_mutex_unlock (&lock);
}

static bool
check_read (const char *what, uint64_t off, uint64_t len, const uint8_t *buf)
{
  if (memcmp (buf, model + off, len) == 0)
    return true;
  for (uint64_t x = off; x < off + len; x++)
    if (buf[x - off] != model[x]) {
      report_mismatch (what, off, len, buf, x);
      break;
    }
  return false;
}

/* An I/O error: the end of the run if the server went away and that is
 * allowed, a failure otherwise. */
static void
io_error (struct nbd_handle *h, const char *what, uint64_t off, uint64_t len)
{
  int err = nbd_get_errno ();
  bool gone = nbd_aio_is_dead (h) || nbd_aio_is_closed (h) ||
    err == ESHUTDOWN || err == ENOTCONN || err == ECONNRESET || err == EPIPE;
  pthread_mutex_lock (&lock);
  if (gone && allow_disconnect) {
    if (!disconnected && verbose)
      fprintf (stderr, "shadow-stress: server gone: %s\n", nbd_get_error ());
    disconnected = true;
  }
  else if (io_errors++ < 10)
    fprintf (stderr, "shadow-stress: %s [%" PRIu64 ", +%" PRIu64 "] failed: %s\n",
             what, off, len, nbd_get_error ());
  stop = true;
  pthread_mutex_unlock (&lock);
}

/* ---- connections ---- */
static struct nbd_handle *
connect_one (void)
{
  struct nbd_handle *h = nbd_create ();
  if (!h) fail ("nbd_create: %s", nbd_get_error ());
  if (nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION) == -1 ||
      nbd_connect_uri (h, uri) == -1)
    fail ("%s: %s", uri, nbd_get_error ());
  return h;
}

/* ---- block status ---- */
struct extents_check { uint64_t off, len; bool bad; uint64_t bad_off; };

static int
extent_cb (void *vp, const char *metacontext, uint64_t offset,
           uint32_t *entries, size_t nr, int *error)
{
  struct extents_check *c = vp;
  if (strcmp (metacontext, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0)
    return 0;
  for (size_t i = 0; i + 1 < nr; i += 2) {
    uint64_t end = offset + entries[i];
    if (entries[i + 1] & LIBNBD_STATE_ZERO) {
      uint64_t a = offset > c->off ? offset : c->off;
      uint64_t b = end < c->off + c->len ? end : c->off + c->len;
      for (uint64_t x = a; x < b; x++)
        if (model[x] != 0) {
          if (!c->bad) c->bad_off = x;
          c->bad = true;
          break;
        }
    }
    offset = end;
  }
  return 0;
}

/* ---- choosing ranges ---- */
static void
pick_range (struct rng *r, uint64_t *offp, uint64_t *lenp)
{
  uint64_t len, off;
  unsigned shape = rnd_below (r, 100);

  /* Length: mostly small, sometimes a few blocks; some aligned. */
  if (shape < 40)
    len = 1 + rnd_below (r, 4096);
  else if (shape < 70)
    len = 512 * (1 + rnd_below (r, 32));
  else
    len = 1 + rnd_below (r, max_len);
  if (len > size) len = size;

  unsigned where = rnd_below (r, 100);
  uint64_t blk;
  if (where < 30) {
    /* Near the background reader: writes race with its fetches. */
    pthread_mutex_lock (&lock);
    blk = reader_block + rnd_below (r, 4);
    pthread_mutex_unlock (&lock);
    blk %= nr_blocks;
    off = blk * block_size + rnd_below (r, block_size);
  }
  else if (where < 55) {
    /* Straddle a block boundary. */
    blk = 1 + rnd_below (r, nr_blocks > 1 ? nr_blocks - 1 : 1);
    uint64_t back = 1 + rnd_below (r, len > 1 ? len - 1 : 1);
    off = blk * block_size;
    off = off > back ? off - back : 0;
  }
  else if (where < 70) {
    /* Part of a block nobody has touched yet. */
    blk = rnd_below (r, nr_blocks);
    for (uint64_t i = 0; i < nr_blocks && touched[blk]; i++)
      blk = (blk + 1) % nr_blocks;
    off = blk * block_size + rnd_below (r, block_size / 2);
    if (len > block_size / 2) len = 1 + rnd_below (r, block_size / 2);
  }
  else if (where < 85)
    off = rnd_below (r, size / 512) * 512;
  else
    off = rnd_below (r, size);

  if (off >= size) off = size - 1;
  if (off + len > size) len = size - off;
  *offp = off;
  *lenp = len;
}

static void
mark_touched (uint64_t off, uint64_t len)
{
  for (uint64_t b = off / block_size; b <= (off + len - 1) / block_size; b++)
    touched[b] = 1;
}

/* ---- client threads ---- */
struct thread { unsigned slot; pthread_t tid; struct nbd_handle *h; uint8_t *buf; };

static bool
take_op (void)
{
  bool ok;
  pthread_mutex_lock (&lock);
  ok = !stop && ops_issued < nr_ops;
  if (ok) ops_issued++;
  pthread_mutex_unlock (&lock);
  return ok;
}

static void
do_flush (struct nbd_handle *h)
{
  uint64_t n = 0;
  if (log_fd >= 0) {
    pthread_mutex_lock (&lock);
    n = ++flush_seq;
    log_line (false, "S %" PRIu64 "\n", n);
    pthread_mutex_unlock (&lock);
  }
  if (nbd_flush (h, 0) == -1) {
    io_error (h, "flush", 0, 0);
    return;
  }
  if (log_fd >= 0) {
    pthread_mutex_lock (&lock);
    log_line (true, "D %" PRIu64 "\n", n);
    pthread_mutex_unlock (&lock);
  }
}

/* A mutating request: W (write), Z (zero) or T (trim). */
static void
do_mutate (struct thread *t, struct rng *r, char kind, uint64_t off, uint64_t len)
{
  uint64_t id;
  uint32_t flags = 0;
  int ret;

  if (can_fua && rnd_below (r, 100) < 15)
    flags |= LIBNBD_CMD_FLAG_FUA;
  /* Ids are logged in increasing order (replay relies on it). */
  pthread_mutex_lock (&lock);
  id = next_id++;
  if (log_fd >= 0)
    log_line (false, "I %" PRIu64 " %c %" PRIu64 " %" PRIu64 " %d\n",
              id, kind, off, len, flags & LIBNBD_CMD_FLAG_FUA ? 1 : 0);
  pthread_mutex_unlock (&lock);
  switch (kind) {
  case 'W':
    gen_data (id, off, len, t->buf);
    ret = nbd_pwrite (t->h, t->buf, len, off, flags);
    break;
  case 'Z':
    if (rnd_below (r, 2)) flags |= LIBNBD_CMD_FLAG_NO_HOLE;
    ret = nbd_zero (t->h, len, off, flags);
    break;
  default:
    ret = nbd_trim (t->h, len, off, flags);
    break;
  }
  if (ret == -1) {
    io_error (t->h, kind == 'W' ? "pwrite" : kind == 'Z' ? "zero" : "trim",
              off, len);
    return;
  }
  /* Still under the range lock: nobody else looks at these bytes. */
  if (kind == 'W')
    memcpy (model + off, t->buf, len);
  else
    memset (model + off, 0, len);
  if (log_fd >= 0) {
    pthread_mutex_lock (&lock);
    log_line (flags & LIBNBD_CMD_FLAG_FUA, "C %" PRIu64 "\n", id);
    pthread_mutex_unlock (&lock);
  }
}

static void *
client (void *vp)
{
  struct thread *t = vp;
  struct rng r = { mix64 (seed) ^ mix64 (t->slot + 1) };

  while (take_op ()) {
    unsigned op = rnd_below (&r, 100);
    uint64_t off, len;

    if (op < flush_pct) {
      if (can_flush) do_flush (t->h);
      goto done;
    }
    pick_range (&r, &off, &len);
    range_lock (t->slot, off, len);
    mark_touched (off, len);
    if (op < flush_pct + write_pct) {
      unsigned k = rnd_below (&r, 100);
      char kind = k < 70 || (!can_zero && !can_trim) ? 'W'
        : (k < 85 && can_zero) || !can_trim ? 'Z' : 'T';
      do_mutate (t, &r, kind, off, len);
    }
    else if (op < 97 || (!can_extents && !can_cache)) {
      if (nbd_pread (t->h, t->buf, len, off, 0) == -1)
        io_error (t->h, "pread", off, len);
      else
        check_read ("pread", off, len, t->buf);
    }
    else if (can_extents && (op < 99 || !can_cache)) {
      struct extents_check c = { off, len, false, 0 };
      if (nbd_block_status (t->h, len, off,
                            (nbd_extent_callback) { .callback = extent_cb,
                                                    .user_data = &c },
                            0) == -1)
        io_error (t->h, "block_status", off, len);
      else if (c.bad) {
        pthread_mutex_lock (&lock);
        if (mismatches++ < 10)
          fprintf (stderr, "shadow-stress: MISMATCH: block status says "
                   "[%" PRIu64 ", +%" PRIu64 ") reads as zero but offset %"
                   PRIu64 " holds 0x%02x\n", off, len, c.bad_off,
                   model[c.bad_off]);
        pthread_mutex_unlock (&lock);
      }
    }
    else {
      if (nbd_cache (t->h, len, off, 0) == -1)
        io_error (t->h, "cache", off, len);
    }
    range_unlock (t->slot);
  done:
    pthread_mutex_lock (&lock);
    ops_done++;
    pthread_mutex_unlock (&lock);
  }
  return NULL;
}

/* The background reader: small reads sweeping the disk block by block,
 * each forcing the fetch of a block the clients may be writing into. */
static void *
reader (void *vp)
{
  struct thread *t = vp;
  struct rng r = { mix64 (seed) ^ UINT64_C (0xabcdef) };
  uint64_t blk = rnd_below (&r, nr_blocks);

  for (;;) {
    pthread_mutex_lock (&lock);
    bool done = stop || ops_issued >= nr_ops;
    reader_block = blk;
    pthread_mutex_unlock (&lock);
    if (done) break;

    uint64_t off = blk * block_size + rnd_below (&r, block_size);
    uint64_t len = 1 + rnd_below (&r, 8192);
    if (off >= size) off = size - 1;
    if (off + len > size) len = size - off;
    range_lock (t->slot, off, len);
    if (nbd_pread (t->h, t->buf, len, off, 0) == -1)
      io_error (t->h, "reader pread", off, len);
    else
      check_read ("reader pread", off, len, t->buf);
    range_unlock (t->slot);
    pthread_mutex_lock (&lock);
    reader_ops++;
    pthread_mutex_unlock (&lock);
    blk = (blk + 1) % nr_blocks;
  }
  return NULL;
}

/* ---- crash-mode replay and verification ---- */
struct rec {
  uint64_t id, off, len;
  char kind;
  bool fua, acked, durable;
  uint64_t acked_at;            /* log line of the "C", or end of log */
  uint64_t epoch;               /* number of "V" lines before it */
};
static struct rec *recs;
static size_t nr_recs;

/* Uncertain pieces: bytes that may hold either the durable content or
 * the content of a write that was never covered by a flush. */
struct piece { uint64_t off, len, id; char kind; };
static struct piece *pieces;
static size_t nr_pieces, alloc_pieces;

static void
add_piece (uint64_t off, uint64_t len, uint64_t id, char kind)
{
  if (len == 0) return;
  if (nr_pieces == alloc_pieces) {
    alloc_pieces = alloc_pieces ? 2 * alloc_pieces : 64;
    pieces = realloc (pieces, alloc_pieces * sizeof *pieces);
    if (!pieces) fail ("out of memory");
  }
  pieces[nr_pieces++] = (struct piece) { off, len, id, kind };
}

/* A durable write to [off, off+len) supersedes earlier uncertain bytes. */
static void
clip_pieces (uint64_t off, uint64_t len)
{
  size_t n = nr_pieces;
  for (size_t i = 0; i < n; i++) {
    struct piece p = pieces[i];
    uint64_t pend = p.off + p.len, end = off + len;
    if (p.len == 0 || pend <= off || end <= p.off) continue;
    pieces[i].len = 0;
    if (p.off < off) add_piece (p.off, off - p.off, p.id, p.kind);
    if (end < pend) add_piece (end, pend - end, p.id, p.kind);
  }
}

static struct rec *
find_rec (uint64_t id)
{
  /* Ids are logged in increasing order. */
  size_t lo = 0, hi = nr_recs;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (recs[mid].id < id) lo = mid + 1;
    else if (recs[mid].id > id) hi = mid;
    else return &recs[mid];
  }
  return NULL;
}

static int
cmp_acked (const void *a, const void *b)
{
  const struct rec *x = *(struct rec * const *) a, *y = *(struct rec * const *) b;
  return x->acked_at < y->acked_at ? -1 : x->acked_at > y->acked_at;
}

/* Replay the log into the model; collect the uncertain pieces of the
 * current epoch (since the last restore). */
static void
replay_log (uint8_t *durable_bytes)
{
  FILE *fp = fopen (log_path, "r");
  if (!fp) return;
  char line[256];
  size_t alloc = 0;
  uint64_t lineno = 0, epoch = 0;
  /* Flush n: sent at line sent[n-1] in epoch fepoch[n-1]; completed? */
  uint64_t *sent = NULL, *fepoch = NULL; bool *done = NULL; size_t nflush = 0;

  while (fgets (line, sizeof line, fp)) {
    uint64_t id, off, len, n;
    char kind;
    int fua;
    lineno++;
    if (sscanf (line, "I %" SCNu64 " %c %" SCNu64 " %" SCNu64 " %d",
                &id, &kind, &off, &len, &fua) == 5) {
      if (nr_recs == alloc) {
        alloc = alloc ? 2 * alloc : 1024;
        recs = realloc (recs, alloc * sizeof *recs);
        if (!recs) fail ("out of memory");
      }
      recs[nr_recs++] = (struct rec) { id, off, len, kind, fua, false, false,
                                       UINT64_MAX, epoch };
      if (nr_recs > 1 && id <= recs[nr_recs - 2].id)
        fail ("%s:%" PRIu64 ": ids out of order", log_path, lineno);
      if (id >= next_id) next_id = id + 1;
    }
    else if (sscanf (line, "C %" SCNu64, &id) == 1) {
      struct rec *rc = find_rec (id);
      if (!rc) fail ("%s:%" PRIu64 ": unknown id", log_path, lineno);
      rc->acked = true;
      rc->acked_at = lineno;
      if (rc->fua) rc->durable = true;
    }
    else if (sscanf (line, "S %" SCNu64, &n) == 1) {
      if (n > nflush) {
        sent = realloc (sent, n * sizeof *sent);
        fepoch = realloc (fepoch, n * sizeof *fepoch);
        done = realloc (done, n * sizeof *done);
        if (!sent || !fepoch || !done) fail ("out of memory");
        for (size_t i = nflush; i < n; i++) done[i] = false;
        nflush = n;
      }
      sent[n - 1] = lineno;
      fepoch[n - 1] = epoch;
      if (n > flush_seq) flush_seq = n;
    }
    else if (sscanf (line, "D %" SCNu64, &n) == 1) {
      if (n == 0 || n > nflush) fail ("%s:%" PRIu64 ": bad flush", log_path, lineno);
      done[n - 1] = true;
    }
    else if (line[0] == 'V')
      epoch++;
    else
      fail ("%s:%" PRIu64 ": cannot parse: %s", log_path, lineno, line);
  }
  fclose (fp);

  /* Durable: acked before a flush was sent in the same epoch, and that
   * flush completed.  (A later epoch's flush cannot help: the uncertain
   * bytes were rewritten with their durable content when it began.) */
  uint64_t *durable_before = calloc (epoch + 1, sizeof *durable_before);
  if (!durable_before) fail ("out of memory");
  for (size_t i = 0; i < nflush; i++)
    if (done[i] && sent[i] > durable_before[fepoch[i]])
      durable_before[fepoch[i]] = sent[i];
  for (size_t i = 0; i < nr_recs; i++)
    if (recs[i].acked && recs[i].acked_at < durable_before[recs[i].epoch])
      recs[i].durable = true;
  /* Unacknowledged requests were in flight at the crash: order them last. */
  for (size_t i = 0; i < nr_recs; i++)
    if (!recs[i].acked) recs[i].acked_at = lineno + 1 + i;

  struct rec **order = malloc (nr_recs * sizeof *order + 1);
  if (!order) fail ("out of memory");
  for (size_t i = 0; i < nr_recs; i++) order[i] = &recs[i];
  qsort (order, nr_recs, sizeof *order, cmp_acked);

  for (size_t i = 0; i < nr_recs; i++) {
    struct rec *rc = order[i];
    if (rc->off + rc->len > size)
      fail ("%s: write beyond the exercised size (different --size?)", log_path);
    if (rc->durable) {
      if (rc->kind == 'W') gen_data (rc->id, rc->off, rc->len, model + rc->off);
      else memset (model + rc->off, 0, rc->len);
      clip_pieces (rc->off, rc->len);
      for (uint64_t x = rc->off; x < rc->off + rc->len; x++)
        durable_bytes[x >> 3] |= 1 << (x & 7);
    }
    else if (rc->epoch == epoch)
      /* Not durable and not yet restored: either content is fine. */
      add_piece (rc->off, rc->len, rc->id, rc->kind);
    /* else: not durable, and rewritten with the durable content after
     * an earlier crash, so it no longer exists. */
  }
  free (order);
  free (sent);
  free (fepoch);
  free (done);
  free (durable_before);
}

static bool
byte_ok (uint64_t x, uint8_t v)
{
  if (v == model[x]) return true;
  for (size_t i = 0; i < nr_pieces; i++) {
    struct piece *p = &pieces[i];
    if (x >= p->off && x < p->off + p->len &&
        v == (p->kind == 'W' ? gen_byte (p->id, x) : 0))
      return true;
  }
  return false;
}

static uint64_t verified_bytes;

static void
verify_range (struct nbd_handle *h, uint8_t *buf, uint64_t off, uint64_t len)
{
  while (len > 0) {
    uint64_t n = len < 4 << 20 ? len : 4 << 20;
    if (nbd_pread (h, buf, n, off, 0) == -1)
      fail ("verify: pread [%" PRIu64 ", +%" PRIu64 "]: %s", off, n, nbd_get_error ());
    if (memcmp (buf, model + off, n) != 0)
      for (uint64_t x = off; x < off + n; x++)
        if (!byte_ok (x, buf[x - off])) {
          report_mismatch ("verify", off, n, buf, x);
          break;
        }
    verified_bytes += n;
    off += n;
    len -= n;
  }
}

static void
write_durable_blocks (const uint8_t *durable_bytes)
{
  FILE *fp = fopen (durable_blocks_path, "w");
  if (!fp) fail ("%s: %m", durable_blocks_path);
  for (uint64_t b = 0; b < nr_blocks; b++) {
    uint64_t a = b * block_size, e = a + block_size;
    bool full = e <= size;
    for (uint64_t x = a; full && x < e; x++)
      if (!(durable_bytes[x >> 3] & (1 << (x & 7)))) full = false;
    if (full) fprintf (fp, "%" PRIu64 "\n", b);
  }
  fclose (fp);
}

static void
crash_recovery (void)
{
  uint8_t *durable_bytes = calloc (size / 8 + 1, 1);
  if (!durable_bytes) fail ("out of memory");
  replay_log (durable_bytes);
  if (durable_blocks_path) write_durable_blocks (durable_bytes);
  free (durable_bytes);
  if (verify_mode == VERIFY_NONE && nr_pieces == 0)
    return;

  struct nbd_handle *h = connect_one ();
  uint8_t *buf = malloc (4 << 20);
  if (!buf) fail ("out of memory");
  if (verify_mode == VERIFY_ALL)
    verify_range (h, buf, 0, size);
  else if (verify_mode == VERIFY_WRITTEN) {
    /* Every byte any logged request touched, merged into runs. */
    uint8_t *w = calloc (size / 8 + 1, 1);
    if (!w) fail ("out of memory");
    for (size_t i = 0; i < nr_recs; i++)
      for (uint64_t x = recs[i].off; x < recs[i].off + recs[i].len; x++)
        w[x >> 3] |= 1 << (x & 7);
    for (uint64_t x = 0; x < size; ) {
      if (!(w[x >> 3] & (1 << (x & 7)))) { x++; continue; }
      uint64_t e = x;
      while (e < size && (w[e >> 3] & (1 << (e & 7)))) e++;
      verify_range (h, buf, x, e - x);
      x = e;
    }
    free (w);
  }
  uint64_t restored = 0;
  size_t nr = 0;
  for (size_t i = 0; i < nr_pieces; i++) {
    struct piece *p = &pieces[i];
    if (p->len == 0) continue;
    if (nbd_pwrite (h, model + p->off, p->len, p->off, 0) == -1)
      fail ("restore: pwrite: %s", nbd_get_error ());
    restored += p->len;
    nr++;
  }
  if (nbd_flush (h, 0) == -1)
    fail ("restore: flush: %s", nbd_get_error ());
  log_line (true, "V\n");
  nr_pieces = 0;
  printf ("verify: %" PRIu64 " bytes checked, %" PRIu64 " mismatches; "
          "%zu uncertain ranges (%" PRIu64 " bytes) restored\n",
          verified_bytes, mismatches, nr, restored);
  nbd_shutdown (h, 0);
  nbd_close (h);
  free (buf);
}

/* A hung server must fail the test, not stall it. */
static void
watchdog (int sig)
{
  static const char msg[] = "shadow-stress: TIMEOUT: requests hung (server stuck?)\n";
  if (write (STDERR_FILENO, msg, sizeof msg - 1)) { }
  _exit (2);
}

/* ---- main ---- */
static uint64_t
parse_size (const char *s)
{
  char *end;
  errno = 0;
  uint64_t v = strtoull (s, &end, 0);
  if (errno || end == s) fail ("bad number: %s", s);
  switch (*end) {
  case 'k': case 'K': v <<= 10; end++; break;
  case 'm': case 'M': v <<= 20; end++; break;
  case 'g': case 'G': v <<= 30; end++; break;
  }
  if (*end) fail ("bad number: %s", s);
  return v;
}

static void __attribute__ ((noreturn))
usage (int status)
{
  printf ("usage: shadow-stress -u URI [-c CLIENTS] [-n OPS] [-s SEED] [--size BYTES]\n"
          "         [--source pattern|zero|FILE] [--block-size BYTES] [--max-len BYTES]\n"
          "         [--writes PCT] [--flushes PCT] [--no-reader]\n"
          "         [--log FILE [--verify none|written|all] [--durable-blocks FILE]]\n"
          "         [--allow-disconnect] [--final-verify] [--ready FILE]\n"
          "         [--timeout SECS] [-v]\n"
          "  --final-verify: at the end, read the whole region and check it\n"
          "  --ready FILE:   create FILE when the random requests start\n"
          "  --timeout SECS: give up (exit 2) if the whole run takes longer\n");
  exit (status);
}

int
main (int argc, char *argv[])
{
  enum { O_SIZE = 256, O_SOURCE, O_BS, O_MAXLEN, O_WRITES, O_FLUSHES,
         O_NOREADER, O_LOG, O_VERIFY, O_DBLOCKS, O_DISC, O_FINAL, O_READY,
         O_TIMEOUT };
  static const struct option longopts[] = {
    { "uri", required_argument, NULL, 'u' },
    { "clients", required_argument, NULL, 'c' },
    { "ops", required_argument, NULL, 'n' },
    { "seed", required_argument, NULL, 's' },
    { "size", required_argument, NULL, O_SIZE },
    { "source", required_argument, NULL, O_SOURCE },
    { "block-size", required_argument, NULL, O_BS },
    { "max-len", required_argument, NULL, O_MAXLEN },
    { "writes", required_argument, NULL, O_WRITES },
    { "flushes", required_argument, NULL, O_FLUSHES },
    { "no-reader", no_argument, NULL, O_NOREADER },
    { "log", required_argument, NULL, O_LOG },
    { "verify", required_argument, NULL, O_VERIFY },
    { "durable-blocks", required_argument, NULL, O_DBLOCKS },
    { "allow-disconnect", no_argument, NULL, O_DISC },
    { "final-verify", no_argument, NULL, O_FINAL },
    { "ready", required_argument, NULL, O_READY },
    { "timeout", required_argument, NULL, O_TIMEOUT },
    { "verbose", no_argument, NULL, 'v' },
    { "help", no_argument, NULL, 'h' },
    { NULL }
  };
  int c;
  bool have_seed = false;

  while ((c = getopt_long (argc, argv, "u:c:n:s:vh", longopts, NULL)) != -1) {
    switch (c) {
    case 'u': uri = optarg; break;
    case 'c': nr_clients = parse_size (optarg); break;
    case 'n': nr_ops = parse_size (optarg); break;
    case 's': seed = parse_size (optarg); have_seed = true; break;
    case O_SIZE: size = parse_size (optarg); break;
    case O_SOURCE: source = optarg; break;
    case O_BS: block_size = parse_size (optarg); break;
    case O_MAXLEN: max_len = parse_size (optarg); break;
    case O_WRITES: write_pct = parse_size (optarg); break;
    case O_FLUSHES: flush_pct = parse_size (optarg); break;
    case O_NOREADER: reader_thread = false; break;
    case O_LOG: log_path = optarg; break;
    case O_VERIFY:
      if (strcmp (optarg, "none") == 0) verify_mode = VERIFY_NONE;
      else if (strcmp (optarg, "written") == 0) verify_mode = VERIFY_WRITTEN;
      else if (strcmp (optarg, "all") == 0) verify_mode = VERIFY_ALL;
      else usage (EXIT_FAILURE);
      break;
    case O_DBLOCKS: durable_blocks_path = optarg; break;
    case O_DISC: allow_disconnect = true; break;
    case O_FINAL: final_verify = true; break;
    case O_READY: ready_path = optarg; break;
    case O_TIMEOUT: timeout_secs = parse_size (optarg); break;
    case 'v': verbose = true; break;
    case 'h': usage (EXIT_SUCCESS);
    default: usage (EXIT_FAILURE);
    }
  }
  if (!uri || optind != argc || nr_clients < 1 || block_size == 0 ||
      write_pct + flush_pct > 95)
    usage (EXIT_FAILURE);
  if (!have_seed) {
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    seed = (uint64_t) ts.tv_sec * 1000003 ^ ts.tv_nsec ^ getpid ();
  }
  if (max_len == 0) max_len = 3 * block_size;
  if (timeout_secs) {
    signal (SIGALRM, watchdog);
    alarm (timeout_secs);
  }
  printf ("shadow-stress: seed %" PRIu64 "\n", seed);
  fflush (stdout);

  struct thread *threads = calloc (nr_clients + 1, sizeof *threads);
  active = calloc (nr_clients + 1, sizeof *active);
  if (!threads || !active) fail ("out of memory");
  for (unsigned i = 0; i <= nr_clients; i++) {
    threads[i].slot = i;
    threads[i].h = connect_one ();
    threads[i].buf = malloc (max_len > 8192 ? max_len : 8192);
    if (!threads[i].buf) fail ("out of memory");
  }
  struct nbd_handle *h0 = threads[0].h;
  int64_t esize = nbd_get_size (h0);
  if (esize <= 0) fail ("export size: %s", nbd_get_error ());
  if (size == 0 || size > (uint64_t) esize) size = esize;
  if (nbd_is_read_only (h0) == 1) fail ("the export is read-only");
  can_flush = nbd_can_flush (h0) == 1;
  can_fua = nbd_can_fua (h0) == 1;
  can_trim = nbd_can_trim (h0) == 1;
  can_zero = nbd_can_zero (h0) == 1;
  can_cache = nbd_can_cache (h0) == 1;
  can_extents = nbd_can_meta_context (h0, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1;
  if (nr_clients > 1 && nbd_can_multi_conn (h0) != 1)
    fail ("the export does not advertise multi-conn, needed with -c > 1");
  if (log_path && !can_flush)
    fail ("--log needs an export that supports flush");
  nr_blocks = (size + block_size - 1) / block_size;
  touched = calloc (nr_blocks, 1);
  if (!touched) fail ("out of memory");
  if (verbose)
    fprintf (stderr, "shadow-stress: size %" PRIu64 ", flush %d fua %d trim %d "
             "zero %d cache %d extents %d\n", size, can_flush, can_fua,
             can_trim, can_zero, can_cache, can_extents);

  init_model ();
  if (log_path) {
    log_fd = open (log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd == -1) fail ("%s: %m", log_path);
    crash_recovery ();
    if (mismatches) {
      printf ("0 ops, %" PRIu64 " mismatches\n", mismatches);
      exit (EXIT_FAILURE);
    }
  }

  if (ready_path) {
    int fd = open (ready_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd == -1) fail ("%s: %m", ready_path);
    close (fd);
  }
  struct timespec t0, t1;
  clock_gettime (CLOCK_MONOTONIC, &t0);
  if (nr_ops > 0) {
    for (unsigned i = 1; i <= nr_clients; i++)
      if (pthread_create (&threads[i].tid, NULL, client, &threads[i]))
        fail ("pthread_create");
    if (reader_thread && pthread_create (&threads[0].tid, NULL, reader, &threads[0]))
      fail ("pthread_create");
    for (unsigned i = 1; i <= nr_clients; i++)
      pthread_join (threads[i].tid, NULL);
    if (reader_thread)
      pthread_join (threads[0].tid, NULL);
  }
  /* In crash mode end a clean run with a flush: all of it is durable. */
  if (log_fd >= 0 && !stop)
    do_flush (threads[1].h);
  if (final_verify && !stop) {
    uint8_t *buf = malloc (4 << 20);
    if (!buf) fail ("out of memory");
    nr_pieces = 0;
    verify_range (h0, buf, 0, size);
    free (buf);
  }
  clock_gettime (CLOCK_MONOTONIC, &t1);
  double secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;

  for (unsigned i = 0; i <= nr_clients; i++) {
    if (!disconnected)
      nbd_shutdown (threads[i].h, 0);
    nbd_close (threads[i].h);
    free (threads[i].buf);
  }
  if (log_fd >= 0 && fdatasync (log_fd) == -1)
    fail ("%s: fdatasync: %m", log_path);

  printf ("%" PRIu64 " ops, %" PRIu64 " mismatches\n", ops_done, mismatches);
  printf ("shadow-stress: %" PRIu64 " background reads, %" PRIu64 " I/O errors, "
          "%.1f s%s\n", reader_ops, io_errors, secs,
          disconnected ? ", stopped by server disconnect" : "");
  return mismatches || io_errors ? EXIT_FAILURE : EXIT_SUCCESS;
}
