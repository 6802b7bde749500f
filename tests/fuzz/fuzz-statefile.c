/* fuzz-statefile.c: the state file loader (statefile_open, then
 * statefile_load) on any file next to a 1 MiB shadow of 64K blocks.  An
 * input starting with 0 is the whole file; otherwise the target writes a
 * right header checksum over it first, so the fuzzer also explores what
 * the loader trusts after that check.  FUZZ_STATE_SEED=DIR writes seeds
 * (files the filter's own writer made) to DIR and exits. */
#include "../../plugin/statefile.c"

#include <stdlib.h>

#include <openssl/evp.h>

#define DISK_SIZE (1 << 20)

extern int fuzz_verbose;
static char dir[] = "/tmp/fuzz-statefile.XXXXXX";
static char state_path[64], shadow_path[64];

static void
reset (void)
{
  statefile_close ();
  blockmap_free ();
  memset (&header, 0, sizeof header);
  journal_seq = 0;
  journal_last_count = 0;
  shadow.present_count = 0;
  shadow.npartial = 0;
  shadow.complete = false;
}

static void
write_seeds (const char *out)
{
  static const unsigned char fingerprint[32] = "fuzz";
  char cmd[256];
  int err;

  unlink (state_path);
  if (statefile_create (DISK_SIZE, fingerprint) == -1)
    exit (1);
  snprintf (cmd, sizeof cmd, "cp %s %s/empty", state_path, out);
  if (system (cmd) != 0)
    exit (1);
  for (uint64_t b = 0; b < shadow.nblocks; b += 3)
    blockmap_mark_present (b);
  {
    uint64_t mask[64] = { 0x0f };
    blockmap_load_partial (4, mask);
    mask[0] = 0xf0f0;
    blockmap_load_partial (7, mask);
  }
  if (statefile_checkpoint (&err) == -1)
    exit (1);
  snprintf (cmd, sizeof cmd, "cp %s %s/partial", state_path, out);
  if (system (cmd) != 0)
    exit (1);
  for (uint64_t b = 0; b < shadow.nblocks; b++)
    blockmap_mark_present (b);
  if (statefile_checkpoint (&err) == -1)
    exit (1);
  snprintf (cmd, sizeof cmd, "cp %s %s/complete", state_path, out);
  if (system (cmd) != 0)
    exit (1);
  exit (0);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  if (!mkdtemp (dir))
    abort ();
  snprintf (state_path, sizeof state_path, "%s/state", dir);
  snprintf (shadow_path, sizeof shadow_path, "%s/shadow", dir);
  shadow.state_file = state_path;
  shadow.shadow_file = shadow_path;
  shadow.block_size = 65536;
  shadow.block_shift = 16;
  shadow.state_fd = -1;
  shadow.shadow_fd = open (shadow_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (shadow.shadow_fd == -1 || ftruncate (shadow.shadow_fd, DISK_SIZE) == -1)
    abort ();
  fuzz_verbose = getenv ("FUZZ_VERBOSE") != NULL;
  if (getenv ("FUZZ_STATE_SEED"))
    write_seeds (getenv ("FUZZ_STATE_SEED"));
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  int fd;

  if (size < 1)
    return 0;
  fd = open (state_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd == -1 || write (fd, data + 1, size - 1) != (ssize_t) size - 1)
    abort ();
  if (data[0] != 0 && size - 1 >= sizeof (struct state_header)) {
    struct state_header h;
    memcpy (&h, data + 1, sizeof h);
    EVP_Digest (&h, offsetof (struct state_header, checksum), h.checksum,
                NULL, EVP_sha256 (), NULL);
    if (pwrite (fd, &h, sizeof h, 0) != sizeof h)
      abort ();
  }
  close (fd);
  if (statefile_open () == 0 && !shadow.state_fresh &&
      statefile_load () == 0) {
    if (shadow.present_count > shadow.nblocks ||
        shadow.npartial > SHADOW_MAX_PARTIAL)
      abort ();
  }
  shadow.state_fresh = false;
  reset ();
  return 0;
}
