/* The state file's session records: did the filter stop cleanly, and
 * what did the shadow file hold when it did.
 *
 * The state says which blocks the shadow holds; it cannot see the shadow
 * lose them.  A shadow file truncated and re-extended to its size, or
 * replaced by another of the same size, reads as holes or as someone
 * else's data, and would be served as the guest's.  So at a clean stop,
 * when nothing writes the shadow any more, the filter records digests of
 * samples of the shadow's data spread over the disk, and the next start
 * compares them before serving.  After a crash the guest may have
 * written anything since the last checkpoint, so no record of the
 * content can be trusted: the record of a running filter says so, and
 * that start skips the comparison (a check that fired falsely after a
 * crash would keep a sound shadow from ever being served again).
 *
 * Two slots, each one page written with a single pwrite (never torn by
 * a crash), the newer valid one wins, as in the journal.  A start
 * writes "running" and syncs it before it serves anything.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nbdkit-filter.h>

#include "shadow.h"
#include "statefile.h"

#define SESSION_SAMPLES 32
#define SAMPLE_BYTES 65536
#define SAMPLE_ALIGN 4096

struct sample {
  uint64_t offset;
  uint32_t length;
  uint32_t reserved;
  unsigned char digest[32];
};

struct session {
  char magic[8];
  uint64_t seq;
  uint32_t clean;               /* 1: the filter stopped cleanly */
  uint32_t nsamples;
  unsigned char state_id[16];
  struct sample samples[SESSION_SAMPLES];
  unsigned char checksum[32];   /* SHA-256 of everything above */
};
_Static_assert (sizeof (struct session) <= STATE_PAGE,
                "a session record fits a page");

static uint64_t session_seq;
static bool session_running;

static uint64_t
slot_offset (uint64_t seq)
{
  return (STATE_SESSION_PAGE + seq % 2) * (uint64_t) STATE_PAGE;
}

static int
write_session (struct session *s)
{
  memcpy (s->magic, SESSION_MAGIC, 8);
  memcpy (s->state_id, state_header.state_id, 16);
  state_sha256 (s, offsetof (struct session, checksum), s->checksum);
  if (state_pwrite (shadow.state_fd, s, sizeof *s, slot_offset (s->seq)) == -1)
    return -1;
  session_seq = s->seq;
  return 0;
}

/* A new state file: a filter is about to run on it. */
int
session_write_new (void)
{
  struct session s = { .seq = 1 };
  session_running = true;
  return write_session (&s);
}

static int
read_sample (uint64_t offset, uint32_t length, char *buf, unsigned char digest[32])
{
  if (state_pread (shadow.shadow_fd, buf, length, offset) == -1)
    return -1;
  state_sha256 (buf, length, digest);
  return 0;
}

/* Does the shadow hold what the clean stop recorded? */
static int
check_samples (const struct session *s)
{
  char *buf = malloc (SAMPLE_BYTES);
  unsigned char digest[32];
  int r = 0;

  if (buf == NULL) {
    nbdkit_error ("shadow-file: %m");
    return -1;
  }
  for (uint32_t i = 0; i < s->nsamples && r == 0; i++) {
    const struct sample *sm = &s->samples[i];
    if (sm->length > SAMPLE_BYTES || sm->offset > shadow.disk_size ||
        sm->length > shadow.disk_size - sm->offset ||
        read_sample (sm->offset, sm->length, buf, digest) == -1 ||
        memcmp (digest, sm->digest, 32) != 0) {
      nbdkit_error ("shadow-file: %s lost data since the filter's last stop: "
                    "the %" PRIu32 " bytes at offset %" PRIu64 " differ from "
                    "what it held then (truncated, replaced or written by "
                    "something else?); refusing to serve it",
                    shadow.shadow_file, sm->length, sm->offset);
      r = -1;
    }
  }
  free (buf);
  return r;
}

/* Restart: the newest valid record; if the filter stopped cleanly, the
 * shadow must still hold the samples it recorded.
 */
int
session_load (void)
{
  struct session s[2];
  int best = -1;

  for (int i = 0; i < 2; i++) {
    unsigned char sum[32];
    if (state_pread (shadow.state_fd, &s[i], sizeof s[i],
                     (STATE_SESSION_PAGE + i) * (uint64_t) STATE_PAGE) == -1)
      continue;
    state_sha256 (&s[i], offsetof (struct session, checksum), sum);
    if (memcmp (s[i].magic, SESSION_MAGIC, 8) != 0 ||
        memcmp (sum, s[i].checksum, 32) != 0 || s[i].seq % 2 != (uint64_t) i ||
        memcmp (s[i].state_id, state_header.state_id, 16) != 0 ||
        s[i].nsamples > SESSION_SAMPLES)
      continue;
    if (best == -1 || s[i].seq > s[best].seq)
      best = i;
  }
  if (best == -1) {
    nbdkit_error ("shadow-state: %s: both session records (pages %d and %d) "
                  "fail their checksums: the state file is corrupt",
                  shadow.state_file, STATE_SESSION_PAGE, STATE_SESSION_PAGE + 1);
    return -1;
  }
  session_seq = s[best].seq;
  if (!s[best].clean) {
    nbdkit_debug ("shadow: the last run did not stop cleanly: the shadow's "
                  "content cannot be compared with a record");
    return 0;
  }
  return check_samples (&s[best]);
}

/* Every check passed: a filter runs on the files from now on. */
int
statefile_begin_session (void)
{
  struct session s = { .seq = session_seq + 1 };

  if (session_running)
    return 0;
  if (write_session (&s) == -1 || fdatasync (shadow.state_fd) == -1) {
    nbdkit_error ("shadow-state: %s: %m", shadow.state_file);
    return -1;
  }
  session_running = true;
  return 0;
}

static bool
all_zero (const char *p, uint32_t len)
{
  return len == 0 || (p[0] == 0 && memcmp (p, p + 1, len - 1) == 0);
}

/* Stopped cleanly, after the last checkpoint: nothing writes the shadow
 * any more.  Record samples of its data (holes and zeros say nothing
 * about a lost file: they are what it reads as) and say so.
 */
void
statefile_end_session (void)
{
  struct session s = { .seq = session_seq + 1, .clean = 1 };
  char *buf = malloc (SAMPLE_BYTES);
  uint64_t end = 0;

  if (!session_running || buf == NULL) {
    free (buf);
    return;
  }
  for (unsigned i = 0; i < SESSION_SAMPLES; i++) {
    off_t d = lseek (shadow.shadow_fd, (shadow.disk_size / SESSION_SAMPLES) * i,
                     SEEK_DATA);
    if (d == -1)
      break;                    /* no data from there on (or cannot tell) */
    uint64_t off = (uint64_t) d & ~(uint64_t) (SAMPLE_ALIGN - 1);
    if (off < end)
      continue;
    uint32_t len = shadow.disk_size - off < SAMPLE_BYTES
                   ? shadow.disk_size - off : SAMPLE_BYTES;
    struct sample *sm = &s.samples[s.nsamples];
    if (read_sample (off, len, buf, sm->digest) == -1)
      break;
    end = off + len;
    if (all_zero (buf, len))
      continue;
    sm->offset = off;
    sm->length = len;
    s.nsamples++;
  }
  free (buf);
  if (write_session (&s) == -1 || fdatasync (shadow.state_fd) == -1)
    nbdkit_error ("shadow-state: %s: %m", shadow.state_file);
  else
    session_running = false;
}
