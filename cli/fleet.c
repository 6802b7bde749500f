/* fleet.c: the manager's side of the Dynamic Metadata Store: read the
 * mirror the filters keep in Redis (one volume's progress, the list of
 * every volume) and send them commands, through metastore's blocking
 * client.  The keys and fields are docs/METADATA.md's.
 *
 * A command is an entry on the volume's command stream with an id of our
 * own (cid); the filter answers in the volume's acks hash under that id.
 * Streams keep what a filter away from Redis has not read yet, so a
 * command is not lost while its filter reconnects; the cid makes a
 * repeated delivery harmless and lets us find our answer.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "clock.h"
#include "fleet.h"
#include "metastore.h"

#define ACK_POLL_US 50000

struct fleet {
  struct ms_config cfg;
  struct ms_sync *s;
  char name[160];               /* the address, for messages */
};

struct fleet *
fleet_open (const struct redis_options *o)
{
  const char *address = o->address ? o->address : getenv ("NBDSHADOW_REDIS");
  struct fleet *f = calloc (1, sizeof *f);
  char err[MS_ERRLEN];

  if (!f)
    return die ("out of memory"), NULL;
  if (address && !*address)
    address = NULL;
  if (ms_config_init (&f->cfg, address, o->user, o->password_file, err) == -1) {
    die ("--redis: %s", err);
    free (f);
    return NULL;
  }
  ms_address_name (&f->cfg.addr, f->name, sizeof f->name);
  f->s = ms_sync_open (&f->cfg, err);
  if (!f->s) {
    die ("%s", err);
    fleet_close (f);
    return NULL;
  }
  return f;
}

void
fleet_close (struct fleet *f)
{
  if (!f)
    return;
  if (f->s)
    ms_sync_close (f->s);
  ms_config_free (&f->cfg);
  free (f);
}

/* A command's reply, or NULL after printing why there is none. */
static redisReply *
command (struct fleet *f, const char *fmt, const char *key, const char *arg)
{
  char err[MS_ERRLEN];
  redisReply *r = arg ? ms_sync_command (f->s, err, fmt, key, arg)
                      : ms_sync_command (f->s, err, fmt, key);

  if (!r)
    return die ("%s", err), NULL;
  if (r->type == REDIS_REPLY_ERROR) {
    die ("redis %s: %s", f->name, r->str);
    freeReplyObject (r);
    return NULL;
  }
  return r;
}

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

int
fleet_list (struct fleet *f, char ***ids, size_t *n)
{
  redisReply *r = command (f, "SMEMBERS %s", MS_KEY_VOLUMES, NULL);

  *ids = NULL;
  *n = 0;
  if (!r)
    return -1;
  if (r->type == REDIS_REPLY_ARRAY && r->elements) {
    *ids = calloc (r->elements, sizeof **ids);
    if (!*ids) {
      freeReplyObject (r);
      return die ("out of memory"), -1;
    }
    for (size_t i = 0; i < r->elements; i++)
      if (r->element[i]->type == REDIS_REPLY_STRING &&
          ms_valid_id (r->element[i]->str) &&
          ((*ids)[*n] = strdup (r->element[i]->str)) != NULL)
        (*n)++;
    qsort (*ids, *n, sizeof **ids, cmp_str);
  }
  freeReplyObject (r);
  return 0;
}

/* The value of FIELD in an HGETALL reply, or NULL. */
static const char *
hash_field (const redisReply *r, const char *field)
{
  for (size_t i = 0; i + 1 < r->elements; i += 2)
    if (r->element[i]->type == REDIS_REPLY_STRING &&
        r->element[i + 1]->type == REDIS_REPLY_STRING &&
        strcmp (r->element[i]->str, field) == 0)
      return r->element[i + 1]->str;
  return NULL;
}

static const char *
hash_lookup (void *src, const char *field)
{
  return hash_field (src, field);
}

static int
hgetall (struct fleet *f, const char *id, const char *suffix,
         redisReply **out)
{
  char key[MS_KEY_LEN];

  *out = command (f, "HGETALL %s", ms_key (key, sizeof key, id, suffix), NULL);
  if (!*out)
    return -1;
  if ((*out)->type != REDIS_REPLY_ARRAY || (*out)->elements == 0) {
    freeReplyObject (*out);
    *out = NULL;
    return 1;
  }
  return 0;
}

int
fleet_read (struct fleet *f, const char *id, struct progress *p)
{
  redisReply *info, *prog;
  const char *v;
  int r;

  progress_init (p, id);
  if ((r = hgetall (f, id, "info", &info)) != 0)
    return r;
  if ((r = hgetall (f, id, "progress", &prog)) == -1) {
    freeReplyObject (info);
    return -1;
  }
  if ((v = hash_field (info, "state")) != NULL)
    snprintf (p->state, sizeof p->state, "%s", v);
  if ((v = hash_field (info, "block_size")) != NULL)
    p->block_size = strtoull (v, NULL, 10);
  progress_fill (p, hash_lookup, prog ? prog : info);
  if (prog)
    freeReplyObject (prog);
  freeReplyObject (info);
  return 0;
}

int
fleet_known (struct fleet *f, const char *id)
{
  char key[MS_KEY_LEN];
  redisReply *r = command (f, "EXISTS %s", ms_key (key, sizeof key, id, "info"),
                           NULL);
  int known;

  if (!r)
    return -1;
  known = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
  freeReplyObject (r);
  return known;
}

/* An id no other command sent anywhere has: host, pid, time, count. */
static void
make_cid (char *buf, size_t len)
{
  static unsigned count;
  char host[64] = "host";

  gethostname (host, sizeof host - 1);
  host[strcspn (host, " \t\r\n")] = '\0';
  snprintf (buf, len, "%s-%d-%" PRIu64 "-%u", host, (int) getpid (),
            time_ns (), count++);
}

int
fleet_command (struct fleet *f, const char *id, const char *cmd,
               const char *rate, double timeout_s)
{
  char commands[MS_KEY_LEN], acks[MS_KEY_LEN], cid[128], err[MS_ERRLEN];
  redisReply *r;
  uint64_t start;
  int known = fleet_known (f, id);

  if (known == -1)
    return -1;
  if (!known)
    return die ("volume %s is not known to redis %s (no %s)", id, f->name,
                ms_key (commands, sizeof commands, id, "info")), -1;
  ms_key (commands, sizeof commands, id, "commands");
  ms_key (acks, sizeof acks, id, "acks");
  make_cid (cid, sizeof cid);
  r = rate ? ms_sync_command (f->s, err, "XADD %s * cmd %s rate %s cid %s",
                              commands, cmd, rate, cid)
           : ms_sync_command (f->s, err, "XADD %s * cmd %s cid %s",
                              commands, cmd, cid);
  if (!r)
    return die ("%s", err), -1;
  if (r->type == REDIS_REPLY_ERROR) {
    die ("redis %s: XADD %s: %s", f->name, commands, r->str);
    freeReplyObject (r);
    return -1;
  }
  freeReplyObject (r);
  start = time_ns ();
  for (;;) {
    r = ms_sync_command (f->s, err, "HGET %s %s", acks, cid);
    if (!r)
      return die ("%s", err), -1;
    if (r->type == REDIS_REPLY_STRING) {
      int ok = strcmp (r->str, "ok") == 0;
      if (!ok)
        die ("%s %s: the filter answered: %s", cmd, id, r->str);
      freeReplyObject (r);
      return ok ? 0 : -1;
    }
    freeReplyObject (r);
    if (seconds_since (start) >= timeout_s)
      return die ("%s %s: no acknowledgement from the filter within %g s "
                  "(command %s stays queued; is its nbdkit running and "
                  "connected to redis %s?)", cmd, id, timeout_s, cid,
                  f->name), -1;
    usleep (ACK_POLL_US);
  }
}
