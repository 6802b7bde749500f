/* nbdkit-shadow-filter: the nbdkit callbacks.
 *
 * Parameters, start-up (files checked before the fork, the source reached
 * after it), the metadata every client sees, and the data path: reads
 * come from the shadow once their blocks are there, everything the guest
 * writes lands in the shadow.  Clients get no upstream connection of their
 * own; see upstream.c for why.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


#include <nbdkit-filter.h>

#include "clock.h"
#include "order.h"
#include "replace-file.h"
#include "shadow.h"

struct shadow shadow = { .file_mode = PRIVATE_FILE_MODE };

static void
shadow_unload (void)
{
  free (shadow.shadow_file);
  free (shadow.state_file);
  free (shadow.stats_file);
  free (shadow.source_id);
  upstream_unload ();
  record_unload ();
  predict_unload ();
  mirror_unload ();
}

static int
set_path (char **field, const char *key, const char *value)
{
  free (*field);
  *field = nbdkit_absolute_path (value);
  if (*field == NULL)
    return -1;
  if ((*field)[0] == '\0') {
    nbdkit_error ("%s: an empty file name", key);
    return -1;
  }
  return 0;
}

/* nbdkit_parse_size's own error does not say which parameter was
 * wrong, so the form is checked here first: digits, then a suffix.
 */
int64_t
shadow_parse_size (const char *key, const char *value)
{
  size_t digits = strspn (value, "0123456789");
  if (digits == 0 || strspn (value + digits, "bBkKmMgGtTpPeE") != strlen (value + digits)) {
    nbdkit_error ("%s: '%s' is not a size (e.g. 65536, 64K, 200M)", key, value);
    return -1;
  }
  return nbdkit_parse_size (value);
}

static int
parse_block_size (const char *value)
{
  int64_t n = shadow_parse_size ("shadow-block-size", value);
  if (n == -1)
    return -1;
  if (n < SHADOW_MIN_BLOCK_SIZE || n > SHADOW_MAX_BLOCK_SIZE || (n & (n - 1))) {
    nbdkit_error ("shadow-block-size: %s is not a power of two from 4K to 4M",
                  value);
    return -1;
  }
  shadow.block_size = n;
  shadow.block_shift = __builtin_ctzll (n);
  return 0;
}

/* The operator's name for the source disk, kept in the state file:
 * printable ASCII, so that the refusal naming it is one readable line.
 */
static int
set_source_id (const char *value)
{
  size_t len = strlen (value);
  if (len == 0 || len > SHADOW_SOURCE_ID_MAX) {
    nbdkit_error ("shadow-source-id: must be 1 to %d characters",
                  SHADOW_SOURCE_ID_MAX);
    return -1;
  }
  for (size_t i = 0; i < len; i++)
    if (value[i] < 0x21 || value[i] > 0x7e) {
      nbdkit_error ("shadow-source-id: printable ASCII without spaces only");
      return -1;
    }
  free (shadow.source_id);
  if ((shadow.source_id = strdup (value)) == NULL) {
    nbdkit_error ("strdup: %m");
    return -1;
  }
  return 0;
}

static int
shadow_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
               const char *key, const char *value)
{
  /* The upstream side takes its own shadow-* parameters and notes the
   * plugin's (the source's address, TLS), which the plugin checks too.
   */
  int r = mirror_config (key, value);
  if (r == 0)
    r = upstream_config (key, value);
  if (r == 0)
    r = predict_config (key, value);
  if (r == 0)
    r = record_config (key, value);
  if (r != 0)
    return r == 1 ? 0 : -1;
  if (strncmp (key, "shadow-", 7) != 0)
    return next (nxdata, key, value);

  if (strcmp (key, "shadow-file") == 0)
    return set_path (&shadow.shadow_file, key, value);
  if (strcmp (key, "shadow-state") == 0)
    return set_path (&shadow.state_file, key, value);
  if (strcmp (key, "shadow-stats") == 0)
    return set_path (&shadow.stats_file, key, value);
  if (strcmp (key, "shadow-block-size") == 0)
    return parse_block_size (value);
  if (strcmp (key, "shadow-file-mode") == 0) {
    if (parse_file_mode (value, &shadow.file_mode) == -1) {
      nbdkit_error ("shadow-file-mode: '%s' is not an octal file mode "
                    "(e.g. 0640)", value);
      return -1;
    }
    return 0;
  }
  if (strcmp (key, "shadow-source-id") == 0)
    return set_source_id (value);
  nbdkit_error ("unknown parameter %s (see nbdkit-shadow-filter(1))", key);
  return -1;
}

static int
shadow_config_complete (nbdkit_next_config_complete *next,
                        nbdkit_backend *nxdata)
{
  if (shadow.shadow_file == NULL) {
    nbdkit_error ("shadow-file is required");
    return -1;
  }
  if (shadow.state_file == NULL &&
      asprintf (&shadow.state_file, "%s.state", shadow.shadow_file) == -1) {
    nbdkit_error ("asprintf: %m");
    return -1;
  }
  if (strcmp (shadow.shadow_file, shadow.state_file) == 0) {
    nbdkit_error ("shadow-state must not be the shadow-file itself");
    return -1;
  }
  /* The model may set the block size and the policy. */
  if (predict_config_complete () == -1 || mirror_config_complete () == -1)
    return -1;
  if (shadow.block_size == 0) {
    shadow.block_size = SHADOW_DEFAULT_BLOCK_SIZE;
    shadow.block_shift = __builtin_ctz (SHADOW_DEFAULT_BLOCK_SIZE);
  }
  return next (nxdata);
}

#define shadow_config_help \
  "shadow-file=<FILE>      (required) The local shadow of the disk.\n" \
  "shadow-state=<FILE>     Which blocks are local (default FILE.state).\n" \
  "shadow-block-size=<N>   Block size, power of two 4K..4M (default 64K,\n" \
  "                        or the model's).\n" \
  "shadow-stats=<FILE>     Rewrite FILE with JSON statistics every second.\n" \
  "shadow-file-mode=<M>    Octal mode of the stats and record files (0600).\n" \
  "shadow-source-id=<ID>   The source disk's name, kept in the state file\n" \
  "                        and checked on every restart.\n" \
  "shadow-model=<FILE>     Predictor from nbdshadow train.\n" \
  "shadow-policy=<P>       Background copy order, one of\n" \
  "                       " ORDER_FILTER_POLICY_NAMES "\n" \
  "                        (default: predict with a model, else sequential).\n" \
  "shadow-record=<FILE>    Append the guest's requests to FILE (trace CSV)\n" \
  "                        until switchover, to train the next model.\n" \
  "shadow-record-after=<S> Keep recording S seconds after switchover (0).\n" \
  "shadow-record-max=<N>   Stop recording when FILE reaches N bytes.\n" \
  "shadow-guest-export=<E> Only clients of export name E are the guest\n" \
  "                        (recorded, learnt from); default: every client.\n" \
  "shadow-inflight=<N>     Most background reads in flight (default 64).\n" \
  "shadow-connections=<N>  Background connections if multi-conn (default 1).\n" \
  "shadow-bandwidth=<N>    Cap on background reads, bytes/s (default none).\n" \
  "shadow-timeout=<SECS>   A guest read fails after waiting this long (30).\n" \
  "shadow-redis=<ADDR>     Mirror progress into Redis and take commands\n" \
  "                        from it: unix:PATH, tcp:HOST:PORT, redis://HOST.\n" \
  "shadow-id=<ID>          The volume's name in Redis (needed with it).\n" \
  "shadow-redis-user=<U>   Redis ACL user (with a password file).\n" \
  "shadow-redis-password-file=<FILE>  Redis password: FILE's first line.\n" \
  "shadow-redis-required=true  Refuse to start without Redis.\n" \
  "shadow-export-uri=<URI> The URI clients use, shown in Redis."

/* Files are checked before the fork so that bad ones stop nbdkit with a
 * clear error before it daemonizes.
 */
static int
shadow_get_ready (int thread_model)
{
  shadow.shadow_fd = shadow.state_fd = -1;
  if (store_open () == -1)
    return -1;
  if (statefile_open () == -1 ||
      (!shadow.state_fresh && statefile_load () == -1) ||
      record_get_ready () == -1 || mirror_get_ready () == -1) {
    store_forget_unused ();
    return -1;
  }
  return 0;
}

static int
shadow_after_fork (nbdkit_backend *backend)
{
  unsigned char fingerprint[32];
  uint64_t size;

  if (!shadow.state_fresh) {
    stats_resume ();
    /* A complete shadow needs no source at all. */
    if (!shadow.complete &&
        (upstream_open (backend, &size) == -1 ||
         fingerprint_read (size, fingerprint) == -1 ||
         statefile_check_source (size, fingerprint) == -1))
      goto fail;
  }
  else if (upstream_open (backend, &size) == -1 ||
           fingerprint_read (size, fingerprint) == -1 ||
           statefile_create (size, fingerprint) == -1) {
    store_forget_unused ();
    goto fail;
  }
  /* Recording covers the migration only: a complete shadow has none. */
  if (shadow.complete)
    record_flush (true);
  upstream_set_identity (statefile_fingerprint ());
  store_check_room ();
  if (statefile_begin_session () == -1)
    goto fail;
  /* Demand only means nothing but what the guest reads. */
  if (!shadow.complete && strcmp (shadow.policy, "none") != 0)
    nbdkit_debug ("shadow: %" PRIu64 " blocks of the fingerprint's samples "
                  "made local", fingerprint_install_samples ());
  fingerprint_forget ();
  if (upstream_start () == -1)
    goto fail;
  /* A tool watching the stats file finds it as soon as nbdkit serves. */
  stats_write_file ();
  if (housekeeping_start () == -1 || mirror_start () == -1)
    goto fail;
  return 0;
 fail:
  fingerprint_forget ();
  record_forget_unused ();
  return -1;
}

static void
shadow_cleanup (nbdkit_backend *backend)
{
  int err;

  mirror_stop ();               /* first: its commands act on the engine */
  housekeeping_stop ();
  shadow.stopped = true;
  upstream_close ();            /* no pull lands after the checkpoint */
  record_flush (true);
  if (shadow.present && statefile_checkpoint (&err) == 0)
    statefile_end_session ();
  stats_write_file ();
  statefile_close ();
  if (shadow.shadow_fd >= 0)
    close (shadow.shadow_fd);
  blockmap_free ();
}

struct handle {
  bool readonly;
  bool guest;                   /* its requests are recorded and learnt from */
};

/* No next(): a client never needs a connection to the source. */
static void *
shadow_open (nbdkit_next_open *next, nbdkit_context *context,
             int readonly, const char *exportname, int is_tls)
{
  struct handle *h = malloc (sizeof *h);
  if (h == NULL) {
    nbdkit_error ("malloc: %m");
    return NULL;
  }
  h->readonly = readonly;
  h->guest = record_is_guest (exportname);
  return h;
}

static void
shadow_close (void *handle)
{
  free (handle);
}

static int64_t
shadow_get_size (nbdkit_next *next, void *handle)
{
  return shadow.disk_size;
}

static const char *
shadow_export_description (nbdkit_next *next, void *handle)
{
  return NULL;
}

static int
shadow_block_size (nbdkit_next *next, void *handle,
                   uint32_t *minimum, uint32_t *preferred, uint32_t *maximum)
{
  *minimum = 1;
  *preferred = shadow.block_size;
  *maximum = 0xffffffff;
  return 0;
}

static int
shadow_can_write (nbdkit_next *next, void *handle)
{
  return !((struct handle *) handle)->readonly;
}

static int shadow_yes (nbdkit_next *next, void *handle) { return 1; }
static int shadow_no (nbdkit_next *next, void *handle) { return 0; }
static int shadow_can_fua (nbdkit_next *next, void *handle) { return NBDKIT_FUA_NATIVE; }
static int shadow_can_zero (nbdkit_next *next, void *handle) { return NBDKIT_ZERO_NATIVE; }
static int shadow_can_cache (nbdkit_next *next, void *handle) { return NBDKIT_CACHE_NATIVE; }

/* Only the guest's requests train the predictor and the next model: a
 * backup or a verify reading the disk meanwhile is not the guest.
 */
static void
observe (void *handle, char op, uint64_t offset, uint32_t count)
{
  if (((struct handle *) handle)->guest)
    predict_guest_request (op, offset, count);
}

/* Did the source refuse (not just fail to answer in time) a block of
 * which the guest asked for part only?  A sector it cannot read may lie
 * in the rest: the guest's own bytes are worth asking for alone, as a
 * disk would return them.  Not after a timeout: the guest has waited
 * long enough.
 */
static bool
refused_beyond_request (uint64_t offset, uint32_t count, uint64_t since_us,
                        int err)
{
  uint64_t mask = shadow.block_size - 1;
  bool whole_blocks = (offset & mask) == 0 &&
    ((offset + count) & mask) == 0;
  return err == EIO && !whole_blocks &&
    time_us () - since_us < upstream_timeout_us ();
}

static int
shadow_pread (nbdkit_next *next, void *handle, void *buf, uint32_t count,
              uint64_t offset, uint32_t flags, int *err)
{
  bool stalled;
  uint64_t t0;
  int r;

  if (count == 0)
    return 0;
  observe (handle, 'R', offset, count);
  t0 = time_us ();
  /* No room for what a fetch would install: read around the shadow. */
  if (atomic_load_explicit (&shadow.disk_full, memory_order_relaxed) &&
      !blocks_are_present (offset >> shadow.block_shift,
                           (offset + count - 1) >> shadow.block_shift)) {
    r = blockmap_read_through (buf, count, offset, err);
    stats_stall (t0, time_us ());
    return r;
  }
  /* The stall is counted there, also when the read goes around. */
  if (blockmap_prepare_read (offset, count, &stalled, err) == -1)
    return store_full_error (*err) ||
      refused_beyond_request (offset, count, t0, *err)
      ? blockmap_read_through (buf, count, offset, err) : -1;
  if (!stalled)
    atomic_fetch_add_explicit (&shadow.stats.hits, 1, memory_order_relaxed);
  return store_pread (buf, count, offset, err);
}

static int
shadow_flush (nbdkit_next *next, void *handle, uint32_t flags, int *err)
{
  observe (handle, 'F', 0, 0);
  return statefile_checkpoint (err);
}

/* A write, zero or trim (op as in the trace CSV; buf NULL unless a
 * write), then a flush if the client asked for FUA.
 */
static int
write_range (void *handle, char op, const void *buf, uint32_t count,
             uint64_t offset, uint32_t flags, int *err)
{
  if (count == 0)
    return 0;
  observe (handle, op, offset, count);
  if (blockmap_write (buf, count, offset, buf == NULL, err) == -1)
    return -1;
  if (flags & NBDKIT_FLAG_FUA)
    return statefile_checkpoint (err);
  return 0;
}

static int
shadow_pwrite (nbdkit_next *next, void *handle, const void *buf,
               uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  return write_range (handle, 'W', buf, count, offset, flags, err);
}

/* Zero and trim both punch holes: a trimmed range reads back as zeros,
 * which is what the shadow (and extents) then truthfully say.
 */
static int
shadow_zero (nbdkit_next *next, void *handle, uint32_t count, uint64_t offset,
             uint32_t flags, int *err)
{
  return write_range (handle, 'Z', NULL, count, offset, flags, err);
}

static int
shadow_trim (nbdkit_next *next, void *handle, uint32_t count, uint64_t offset,
             uint32_t flags, int *err)
{
  return write_range (handle, 'T', NULL, count, offset, flags, err);
}

static int
shadow_cache (nbdkit_next *next, void *handle, uint32_t count, uint64_t offset,
              uint32_t flags, int *err)
{
  return count ? blockmap_cache (offset, count, err) : 0;
}

/* How a block answers extents: from the shadow's holes once PRESENT,
 * as data while the guest has written parts of it, and from the source
 * while untouched.
 */
enum origin { FROM_SHADOW, GUEST_DATA, FROM_SOURCE };

static enum origin
origin_of (uint64_t b)
{
  if (block_is_present (b))
    return FROM_SHADOW;
  return blockmap_has_guest_data (b) ? GUEST_DATA : FROM_SOURCE;
}

/* The answer may stop short of count; clients ask again from there. */
#define MAX_EXTENT_BLOCKS 65536

static int
shadow_extents (nbdkit_next *next, void *handle, uint32_t count,
                uint64_t offset, uint32_t flags,
                struct nbdkit_extents *extents, int *err)
{
  uint64_t end = offset + count, pos = offset;
  uint64_t b = offset >> shadow.block_shift, budget = MAX_EXTENT_BLOCKS;

  while (pos < end && budget > 0) {
    enum origin o = origin_of (b);
    uint64_t run_end;
    for (b++, budget--;
         block_offset (b) < end && budget > 0 && origin_of (b) == o;
         b++, budget--)
      ;
    run_end = block_offset (b) < end ? block_offset (b) : end;

    switch (o) {
    case FROM_SHADOW:
      while (pos < run_end) {
        uint64_t e;
        int data = store_is_data (pos, run_end, &e);
        if (nbdkit_add_extent (extents, pos, e - pos,
                               data ? 0 : NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO) == -1)
          goto error;
        /* qemu asks for one extent at a time: do not walk the shadow
         * file's holes and data to the end of a long run for it.
         */
        if (flags & NBDKIT_FLAG_REQ_ONE)
          return 0;
        pos = e;
      }
      break;
    case GUEST_DATA:
      if (nbdkit_add_extent (extents, pos, run_end - pos, 0) == -1)
        goto error;
      break;
    case FROM_SOURCE:
      if (upstream_extents (run_end - pos, pos, extents, err) == -1)
        return -1;
      break;
    }
    pos = run_end;
    if (flags & NBDKIT_FLAG_REQ_ONE)
      break;
  }
  return 0;
 error:
  *err = errno;
  return -1;
}

static struct nbdkit_filter filter = {
  .name               = "shadow",
  .longname           = "nbdshadow predictive volume shadowing filter",
  .unload             = shadow_unload,
  .config             = shadow_config,
  .config_complete    = shadow_config_complete,
  .config_help        = shadow_config_help,
  .get_ready          = shadow_get_ready,
  .after_fork         = shadow_after_fork,
  .cleanup            = shadow_cleanup,
  .open               = shadow_open,
  .close              = shadow_close,
  .get_size           = shadow_get_size,
  .export_description = shadow_export_description,
  .block_size         = shadow_block_size,
  .can_write          = shadow_can_write,
  .can_flush          = shadow_yes,
  .is_rotational      = shadow_no,
  .can_trim           = shadow_yes,
  .can_zero           = shadow_can_zero,
  .can_fast_zero      = shadow_no,
  .can_extents        = shadow_yes,
  .can_fua            = shadow_can_fua,
  .can_multi_conn     = shadow_yes,
  .can_cache          = shadow_can_cache,
  .pread              = shadow_pread,
  .pwrite             = shadow_pwrite,
  .flush              = shadow_flush,
  .trim               = shadow_trim,
  .zero               = shadow_zero,
  .extents            = shadow_extents,
  .cache              = shadow_cache,
};

NBDKIT_REGISTER_FILTER (filter)
