/* test-statefile.c: the state file (plugin/statefile.c, session.c)
 * without nbdkit: the filter's own loader and checkpoint code linked
 * with stubs for the few nbdkit and source calls they make.  It checks
 * the rules only a crash test covered before:
 *
 *  - snapshot order: a block that completes while a checkpoint runs is
 *    in the saved bitmap or in the saved journal, never in neither;
 *  - journal slots: the newest valid slot wins, one torn slot falls back
 *    to the other, two bad slots are refused;
 *  - checksums: a changed bitmap page or header is refused, naming it;
 *  - foreign and old files are refused;
 *  - the session record: a shadow that lost its data after a clean stop
 *    is refused, while after a crash it is not compared.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nbdkit-filter.h>

#include "shadow.h"

#define BS 65536
#define DISK (64 * BS)
#define SECTORS (BS / SHADOW_SECTOR)

extern int shadow_debug_checkpoint_pause_ms;

/* What shadow.c would define, and stubs for what the state code calls
 * outside itself.
 */
struct shadow shadow;
static char last_error[1024];

void
nbdkit_error (const char *fs, ...)
{
  va_list ap;
  va_start (ap, fs);
  vsnprintf (last_error, sizeof last_error, fs, ap);
  va_end (ap);
}

void
nbdkit_debug (const char *fs, ...)
{
}

void housekeeping_wake (void) { }
void stats_stall (uint64_t from_us, uint64_t to_us) { }

int
upstream_pread (void *buf, uint32_t count, uint64_t offset, int *err)
{
  *err = EIO;                   /* no source in this test */
  return -1;
}

static char dir[] = "/tmp/test-statefile.XXXXXX";
static char shadow_path[64], state_path[64];
static const unsigned char fingerprint[32] = { 1, 2, 3 };

/* Forget everything in memory, as a crash would (the files stay). */
static void
crash (void)
{
  blockmap_free ();
  statefile_close ();
  close (shadow.shadow_fd);
  memset (&shadow.stats, 0, sizeof shadow.stats);
  shadow.shadow_fd = shadow.state_fd = -1;
  shadow.present_count = shadow.npartial = 0;
  shadow.state_fresh = shadow.complete = false;
}

/* Start again on the files: 0 if the state loads, else -1 with the
 * refusal in last_error.
 */
static int
restart (void)
{
  last_error[0] = '\0';
  if (store_open () == -1 || statefile_open () == -1)
    return -1;
  assert (!shadow.state_fresh);
  return statefile_load ();
}

static void
first_start (void)
{
  unlink (shadow_path);
  unlink (state_path);
  assert (store_open () == 0);
  assert (statefile_open () == 0 && shadow.state_fresh);
  assert (statefile_create (DISK, fingerprint) == 0);
}

static void
write_sectors (uint64_t block, unsigned from, unsigned to, char fill)
{
  char buf[BS];
  int err;
  memset (buf, fill, sizeof buf);
  assert (blockmap_write (buf, (to - from) * SHADOW_SECTOR,
                          block * BS + from * SHADOW_SECTOR, false, &err) == 0);
}

static void
checkpoint (void)
{
  int err;
  assert (statefile_checkpoint (&err) == 0);
}

static uint64_t
field_u64 (int fd, off_t off)
{
  uint64_t v;
  assert (pread (fd, &v, 8, off) == 8);
  return v;
}

static void
poke (const char *path, off_t off, unsigned char byte)
{
  int fd = open (path, O_WRONLY);
  assert (fd >= 0 && pwrite (fd, &byte, 1, off) == 1);
  close (fd);
}

/* Invert one byte: a poke of a fixed value at a checksum byte would
 * leave the file unchanged one time in 256.
 */
static void
flip (const char *path, off_t off)
{
  unsigned char byte;
  int fd = open (path, O_RDONLY);
  assert (fd >= 0 && pread (fd, &byte, 1, off) == 1);
  close (fd);
  poke (path, off, byte ^ 0xff);
}

static void
expect_refusal (const char *what)
{
  if (restart () != -1) {
    fprintf (stderr, "FAIL: not refused: %s\n", what);
    exit (1);
  }
  if (strstr (last_error, what) == NULL) {
    fprintf (stderr, "FAIL: refused, but not for %s: %s\n", what, last_error);
    exit (1);
  }
  printf ("refused: %s\n", last_error);
  crash ();
}

static void *
complete_block (void *arg)
{
  usleep (100 * 1000);          /* inside the checkpoint's pause */
  write_sectors (*(uint64_t *) arg, 1, SECTORS, 'c');
  return NULL;
}

/* A block that completes between the checkpoint's two snapshots. */
static void
test_snapshot_order (void)
{
  uint64_t b = 7;
  pthread_t t;

  first_start ();
  write_sectors (b, 0, 1, 'p');          /* partial: in the journal */
  checkpoint ();
  shadow_debug_checkpoint_pause_ms = 300;
  pthread_create (&t, NULL, complete_block, &b);
  checkpoint ();
  pthread_join (t, NULL);
  shadow_debug_checkpoint_pause_ms = 0;
  assert (block_is_present (b));
  crash ();

  assert (restart () == 0);
  if (!block_is_present (b) && !blockmap_has_guest_data (b)) {
    fprintf (stderr, "FAIL: block %" PRIu64 " completed during a checkpoint "
             "is in neither its bitmap nor its journal\n", b);
    exit (1);
  }
  crash ();
  printf ("snapshot order: ok\n");
}

static void
test_journal_slots (void)
{
  uint64_t journal, slot;
  int fd;

  first_start ();
  write_sectors (3, 0, 4, 'a');
  checkpoint ();                /* seq 2: slot 0 has block 3 */
  write_sectors (4, 0, 4, 'b');
  checkpoint ();                /* seq 3: slot 1 has blocks 3 and 4 */
  fd = shadow.state_fd;
  journal = field_u64 (fd, 48);
  slot = (uint32_t) field_u64 (fd, 56);
  crash ();

  assert (restart () == 0);
  assert (blockmap_has_guest_data (3) && blockmap_has_guest_data (4));
  crash ();

  /* The newest slot torn: the older one's blocks come back. */
  flip (state_path, journal + slot + 60);
  assert (restart () == 0);
  assert (blockmap_has_guest_data (3) && !blockmap_has_guest_data (4));
  crash ();

  flip (state_path, journal + 60);
  expect_refusal ("both journal slots");
  printf ("journal slots: ok\n");
}

static void
test_checksums (void)
{
  uint64_t bitmap;

  first_start ();
  write_sectors (2, 0, SECTORS, 'x');    /* block 2 PRESENT */
  checkpoint ();
  bitmap = field_u64 (shadow.state_fd, 32);
  crash ();
  assert (restart () == 0 && block_is_present (2) && !block_is_present (1));
  crash ();

  poke (state_path, bitmap, 0x06);       /* block 1 "present" too */
  expect_refusal ("bitmap page 0");
  poke (state_path, bitmap, 0x04);
  assert (restart () == 0);
  crash ();

  poke (state_path, 16, 0x55);           /* the disk's size */
  expect_refusal ("header (page 0) fails its checksum");
  printf ("checksums: ok\n");
}

static void
test_foreign (void)
{
  char junk[8192];
  int fd;

  first_start ();
  crash ();
  poke (state_path, 8, 1);               /* format 1 */
  expect_refusal ("state format 1");

  memset (junk, 'j', sizeof junk);
  fd = open (state_path, O_WRONLY | O_TRUNC);
  assert (fd >= 0 && write (fd, junk, sizeof junk) == sizeof junk);
  close (fd);
  expect_refusal ("not an nbdshadow state file");
  printf ("foreign files: ok\n");
}

static void
test_session (void)
{
  first_start ();
  write_sectors (9, 0, SECTORS, 'd');
  checkpoint ();
  statefile_end_session ();              /* a clean stop */
  crash ();

  assert (truncate (shadow_path, 0) == 0 && truncate (shadow_path, DISK) == 0);
  expect_refusal ("lost data since the filter's last stop");

  /* Restored, then a run that crashes after changing the data. */
  first_start ();
  write_sectors (9, 0, SECTORS, 'd');
  checkpoint ();
  statefile_end_session ();
  crash ();
  assert (restart () == 0 && statefile_begin_session () == 0);
  write_sectors (9, 0, SECTORS, 'e');
  crash ();
  assert (restart () == 0);
  crash ();
  printf ("session: ok\n");
}

int
main (void)
{
  assert (mkdtemp (dir) != NULL);
  snprintf (shadow_path, sizeof shadow_path, "%s/disk.img", dir);
  snprintf (state_path, sizeof state_path, "%s/disk.state", dir);
  shadow.shadow_file = shadow_path;
  shadow.state_file = state_path;
  shadow.block_size = BS;
  shadow.block_shift = 16;
  shadow.policy = "none";

  test_snapshot_order ();
  test_journal_slots ();
  test_checksums ();
  test_foreign ();
  test_session ();

  unlink (shadow_path);
  unlink (state_path);
  rmdir (dir);
  return 0;
}
