/* The recorder (shadow-record): the guest's requests appended to a file
 * as the canonical trace CSV, to train the next model from this
 * migration.  Recording stops at switchover, or as long after it as the
 * operator asks (shadow-record-after: a workload that outlasts the copy
 * leaves its whole history), and when the file reaches
 * shadow-record-max, so the file does not grow for the lifetime of the
 * VM.  With shadow-guest-export, only the clients that connect with that
 * export name are the guest (recorded, and learnt from by the
 * predictor); a backup or verify reading the disk meanwhile is not.
 *
 * Lines are buffered under a lock and written out when the buffer
 * fills and once a second by the housekeeping thread.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <nbdkit-filter.h>

#include "clock.h"
#include "fullio.h"
#include "shadow.h"

#define RECORD_HEADER "ts_us,op,offset,length\n"
#define RECORD_BUFFER 65536

static char *record_file;
static char *guest_export;      /* NULL: every client is the guest */
static uint64_t record_after_s; /* keep recording this long after switchover */
static uint64_t record_max;     /* stop at this file size; 0: no bound */
static uint64_t record_size;    /* the file's size, buffered lines included */
static uint64_t record_until_s; /* CLOCK_MONOTONIC deadline; 0: none yet */
static int record_fd = -1;
static char record_buf[RECORD_BUFFER];
static size_t record_len;
static pthread_mutex_t record_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic bool recording;
static uint64_t recorded;
static bool record_created;     /* by this start: removed if it fails */

/* 1 when the key is the recorder's (taken), 0 when it is not, -1 on a
 * bad value.
 */
int
record_config (const char *key, const char *value)
{
  if (strcmp (key, "shadow-record") == 0) {
    free (record_file);
    record_file = nbdkit_absolute_path (value);
    return record_file ? 1 : -1;
  }
  if (strcmp (key, "shadow-guest-export") == 0) {
    free (guest_export);
    guest_export = strdup (value);
    if (guest_export == NULL) {
      nbdkit_error ("strdup: %m");
      return -1;
    }
    return 1;
  }
  if (strcmp (key, "shadow-record-after") == 0) {
    unsigned s;
    if (nbdkit_parse_unsigned ("shadow-record-after", value, &s) == -1)
      return -1;
    record_after_s = s;
    return 1;
  }
  if (strcmp (key, "shadow-record-max") == 0) {
    int64_t n = nbdkit_parse_size (value);
    if (n <= 0) {
      nbdkit_error ("shadow-record-max: %s: not a positive size", value);
      return -1;
    }
    record_max = n;
    return 1;
  }
  return 0;
}

/* Is a client that asked for this export name the guest? */
bool
record_is_guest (const char *exportname)
{
  return guest_export == NULL || strcmp (exportname, guest_export) == 0;
}

/* Called with record_lock held. */
static void
write_out (void)
{
  if (full_write (record_fd, record_buf, record_len) == -1) {
    nbdkit_error ("shadow-record: %s: %m; recording stopped", record_file);
    atomic_store (&recording, false);
  }
  record_len = 0;
}

/* Open the record file before the fork.  An existing trace is appended
 * to (a restart continues the migration); anything else is refused
 * rather than overwritten.
 */
int
record_get_ready (void)
{
  char head[sizeof RECORD_HEADER - 1];
  ssize_t n;

  if (record_file == NULL)
    return 0;
  /* Never through a symlink (someone else's file would get the
   * guest's accesses); a new file gets exactly shadow-file-mode, not
   * whatever the umask leaves. */
  record_fd = open (record_file, O_RDWR | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
  if (record_fd == -1 && errno == ENOENT) {
    record_fd = open (record_file,
                      O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    record_created = record_fd >= 0;
    if (record_created && fchmod (record_fd, shadow.file_mode) == -1) {
      nbdkit_error ("shadow-record: %s: %m", record_file);
      return -1;
    }
  }
  if (record_fd == -1 && errno == ELOOP) {
    nbdkit_error ("shadow-record: %s is a symbolic link; refusing to "
                  "follow it", record_file);
    return -1;
  }
  if (record_fd == -1) {
    nbdkit_error ("shadow-record: %s: %m", record_file);
    return -1;
  }
  n = pread (record_fd, head, sizeof head, 0);
  if (n == 0)
    n = write (record_fd, RECORD_HEADER, sizeof RECORD_HEADER - 1)
        == sizeof RECORD_HEADER - 1 ? 0 : -1;
  else if (n != sizeof head || memcmp (head, RECORD_HEADER, sizeof head) != 0) {
    nbdkit_error ("shadow-record: %s exists and is not a trace CSV "
                  "(header ts_us,op,offset,length); refusing to overwrite it",
                  record_file);
    return -1;
  }
  if (n == -1 || (record_size = lseek (record_fd, 0, SEEK_END)) == (uint64_t) -1) {
    nbdkit_error ("shadow-record: %s: %m", record_file);
    return -1;
  }
  atomic_store (&recording, record_max == 0 || record_size < record_max);
  return 0;
}

bool
record_active (void)
{
  return atomic_load_explicit (&recording, memory_order_relaxed);
}

/* One guest request (op as in the trace CSV). */
void
record_request (char op, uint64_t offset, uint32_t count)
{
  pthread_mutex_lock (&record_lock);
  if (atomic_load_explicit (&recording, memory_order_relaxed)) {
    /* The time is taken under the lock, so the file is in time order. */
    int len = snprintf (record_buf + record_len, 64,
                        "%" PRIu64 ",%c,%" PRIu64 ",%" PRIu32 "\n",
                        wall_us (), op, offset, count);
    if (record_max && record_size + len > record_max) {
      /* The bound holds whole lines: this one is not kept. */
      atomic_store (&recording, false);
      nbdkit_debug ("shadow-record: %s reached shadow-record-max", record_file);
    }
    else {
      record_len += len;
      record_size += len;
      recorded++;
    }
    if (record_len > RECORD_BUFFER - 64 || !atomic_load (&recording))
      write_out ();
  }
  pthread_mutex_unlock (&record_lock);
}

/* Start-up failed: a record file this start created holds nothing. */
void
record_forget_unused (void)
{
  if (record_created && recorded == 0)
    unlink (record_file);
}

/* Switchover: stop recording, or set when to (shadow-record-after). */
void
record_switchover (void)
{
  if (record_after_s == 0) {
    record_flush (true);
    return;
  }
  pthread_mutex_lock (&record_lock);
  if (record_until_s == 0)
    record_until_s = time_us () / 1000000 + record_after_s;
  pthread_mutex_unlock (&record_lock);
}

/* Write what is buffered; stop when asked to, or once the time after
 * switchover is up.
 */
void
record_flush (bool stop)
{
  pthread_mutex_lock (&record_lock);
  if (record_fd >= 0) {
    if (record_len > 0)
      write_out ();
    if (stop || (record_until_s && time_us () / 1000000 >= record_until_s)) {
      atomic_store (&recording, false);
      if (close (record_fd) == -1)
        nbdkit_error ("shadow-record: %s: %m", record_file);
      record_fd = -1;
    }
  }
  pthread_mutex_unlock (&record_lock);
}

/* Extra fields of the stats file, each preceded by ", ". */
void
record_stats (FILE *fp)
{
  uint64_t n;

  pthread_mutex_lock (&record_lock);
  n = recorded;
  pthread_mutex_unlock (&record_lock);
  fprintf (fp, ", \"recorded\": %" PRIu64, n);
}

void
record_unload (void)
{
  record_flush (true);
  free (record_file);
  record_file = NULL;
  free (guest_export);
  guest_export = NULL;
}
