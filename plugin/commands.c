/* The operator's commands: the stream nbdshadow:{ID}:commands in Redis.
 *
 * The CLI XADDs a command (pause, resume, throttle, finalize) with an
 * id of its own (cid); the filter reads the stream with a consumer
 * group, so what was sent while it was away from Redis is read when it
 * is back: first the entries delivered before but not acknowledged,
 * then new ones.  Entries are applied in stream order; the last applied
 * stream id is remembered so a redelivered entry is not applied twice.
 * Each is answered in the acks hash (field cid: "ok" or "error: ...")
 * and acknowledged with XACK.  The read blocks in Redis for up to a
 * second, so this uses a connection of its own on the mirror's loop.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-filter.h>

#include "shadow.h"
#include "metastore.h"

#define READ_COUNT 16
#define BLOCK_MS 1000
/* The acks hash goes away a day after the last command. */
#define ACKS_TTL_S 86400
/* The group starts this long before the filter did: commands a CLI sent
 * just as the filter started count, even with the server's clock a
 * little behind.
 */
#define GROUP_SLACK_MS 5000

static struct ms_async *reader;
static char key_commands[MS_KEY_LEN], key_acks[MS_KEY_LEN];
static uint64_t start_ms;
static uint64_t last_ms, last_seq;      /* the last applied stream id */
static _Atomic uint64_t round_trips;

static void read_entries (bool pending);

/* BUSYGROUP when it exists already, which is fine. */
static void
create_group (void)
{
  ms_async_command (reader, NULL, NULL,
                    "XGROUP CREATE %s %s %" PRIu64 "-0 MKSTREAM",
                    key_commands, MS_GROUP,
                    start_ms > GROUP_SLACK_MS ? start_ms - GROUP_SLACK_MS : 0);
}

static void
say (bool error, const char *fmt, const char *arg)
{
  if (error)
    nbdkit_error (fmt, arg);
  else
    nbdkit_debug (fmt, arg);
}

static int
parse_stream_id (const char *s, uint64_t *ms, uint64_t *seq)
{
  char *end;
  errno = 0;
  *ms = strtoull (s, &end, 10);
  if (errno || *end != '-')
    return -1;
  *seq = strtoull (end + 1, &end, 10);
  return errno || *end ? -1 : 0;
}

static const char *
field (const redisReply *fields, const char *name)
{
  if (fields == NULL || fields->type != REDIS_REPLY_ARRAY)
    return NULL;
  for (size_t i = 0; i + 1 < fields->elements; i += 2)
    if (fields->element[i]->type == REDIS_REPLY_STRING &&
        strcmp (fields->element[i]->str, name) == 0 &&
        fields->element[i + 1]->type == REDIS_REPLY_STRING)
      return fields->element[i + 1]->str;
  return NULL;
}

/* Apply one command; the answer for the acks hash into RESULT. */
static void
apply (const char *cmd, const char *rate, const char *cid, char *result,
       size_t len)
{
  snprintf (result, len, "ok");
  if (cmd == NULL)
    snprintf (result, len, "error: no cmd field");
  else if (strcmp (cmd, "pause") == 0) {
    upstream_pause (true);
    mirror_event ("paused", "command %s", cid);
  }
  else if (strcmp (cmd, "resume") == 0) {
    upstream_pause (false);
    mirror_event ("resumed", "command %s", cid);
  }
  else if (strcmp (cmd, "throttle") == 0) {
    char *end;
    unsigned long long n;
    errno = 0;
    n = rate ? strtoull (rate, &end, 10) : 0;
    if (rate == NULL || errno || end == rate || *end || rate[0] == '-')
      snprintf (result, len, "error: throttle needs rate, a number of bytes/s");
    else {
      upstream_set_bandwidth (n);
      mirror_event ("throttled", "command %s: %llu bytes/s%s", cid, n,
                    n ? "" : " (no cap)");
    }
  }
  else if (strcmp (cmd, "finalize") == 0) {
    upstream_finalize ();
    mirror_event ("finalizing", "command %s", cid);
  }
  else
    snprintf (result, len, "error: unknown command '%.64s'", cmd);
}

static void
handle_entry (const redisReply *entry)
{
  const char *sid, *cid;
  uint64_t ms, seq;
  char result[128];

  if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 2 ||
      entry->element[0]->type != REDIS_REPLY_STRING)
    return;
  sid = entry->element[0]->str;
  if (parse_stream_id (sid, &ms, &seq) == -1)
    return;
  /* Applied before (redelivered): acknowledge it only. */
  if (ms < last_ms || (ms == last_ms && seq <= last_seq)) {
    ms_async_command (reader, NULL, NULL, "XACK %s %s %s", key_commands,
                      MS_GROUP, sid);
    return;
  }
  cid = field (entry->element[1], "cid");
  apply (field (entry->element[1], "cmd"), field (entry->element[1], "rate"),
         cid ? cid : "(no cid)", result, sizeof result);
  nbdkit_debug ("shadow-redis: command %s (%s): %s", sid, cid ? cid : "", result);
  last_ms = ms;
  last_seq = seq;
  if (cid) {
    ms_async_command (reader, NULL, NULL, "HSET %s %s %s", key_acks, cid, result);
    ms_async_command (reader, NULL, NULL, "EXPIRE %s %d", key_acks, ACKS_TTL_S);
  }
  ms_async_command (reader, NULL, NULL, "XACK %s %s %s", key_commands,
                    MS_GROUP, sid);
}

/* XREADGROUP's answer: nil (nothing within BLOCK_MS) or
 * [[stream, [[id, [field, value, ...]], ...]]].
 */
static void
read_cb (redisReply *r, void *priv)
{
  bool pending = priv != NULL;
  size_t n = 0;

  if (r == NULL)
    return;                     /* down: reading starts again when up */
  if (r->type == REDIS_REPLY_ERROR) {
    /* The stream or its group was deleted: make them again. */
    say (false, "shadow-redis: reading commands: %s", r->str);
    create_group ();
    read_entries (true);
    return;
  }
  if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
      r->element[0]->type == REDIS_REPLY_ARRAY &&
      r->element[0]->elements == 2) {
    const redisReply *entries = r->element[0]->element[1];
    if (entries->type == REDIS_REPLY_ARRAY) {
      n = entries->elements;
      for (size_t i = 0; i < n; i++)
        handle_entry (entries->element[i]);
    }
  }
  /* Pending entries until none are left, then new ones. */
  read_entries (pending && n == READ_COUNT);
}

static void
read_entries (bool pending)
{
  int r;

  if (pending)
    r = ms_async_command (reader, read_cb, (void *) 1,
                          "XREADGROUP GROUP %s %s COUNT %d STREAMS %s 0",
                          MS_GROUP, MS_CONSUMER, READ_COUNT, key_commands);
  else
    r = ms_async_command (reader, read_cb, NULL,
                          "XREADGROUP GROUP %s %s COUNT %d BLOCK %d STREAMS %s >",
                          MS_GROUP, MS_CONSUMER, READ_COUNT, BLOCK_MS,
                          key_commands);
  if (r == 0)
    atomic_fetch_add_explicit (&round_trips, 1, memory_order_relaxed);
}

/* (Re)connected: the group, then what is pending. */
static void
connected_cb (void *opaque)
{
  create_group ();
  read_entries (true);
}

/* Its outages are the mirror's too, which tells the user. */
static void
log_cb (void *opaque, bool error, const char *msg)
{
  say (false, "shadow-redis: commands: %s", msg);
}

void
commands_start (struct ev_loop *loop, const struct ms_config *cfg,
                const char *id, uint64_t started_us)
{
  static const struct ms_async_ops ops = {
    .connected = connected_cb,
    .log = log_cb,
  };

  ms_key (key_commands, sizeof key_commands, id, "commands");
  ms_key (key_acks, sizeof key_acks, id, "acks");
  start_ms = started_us / 1000;
  reader = ms_async_new (loop, cfg, &ops);
  if (reader == NULL)
    nbdkit_error ("shadow-redis: commands: out of memory");
}

void
commands_stop (void)
{
  ms_async_free (reader);
  reader = NULL;
}

uint64_t
commands_round_trips (void)
{
  return atomic_load_explicit (&round_trips, memory_order_relaxed);
}
