/* metastore: the blocking client (the nbdshadow CLI's).
 *
 * One hiredis redisContext per cluster node talked to, each
 * authenticated when opened.  A command goes to the node its key's slot
 * was last redirected to (the configured node until then); MOVED moves
 * the slot for good, ASK sends that one command to the named node after
 * ASKING.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "metastore.h"

struct ms_sync {
  const struct ms_config *cfg;
  struct ms_address nodes[MS_MAX_NODES];  /* [0]: the configured address */
  redisContext *ctx[MS_MAX_NODES];
  unsigned nnodes;
  unsigned char slot_node[16384];         /* index into nodes */
};

static struct timeval
timeout_of (const struct ms_config *cfg)
{
  struct timeval tv = { cfg->timeout_ms / 1000, cfg->timeout_ms % 1000 * 1000 };
  return tv;
}

static int
authenticate (redisContext *c, const struct ms_config *cfg, const char *name,
              char *err)
{
  redisReply *r;
  char why[MS_ERRLEN];

  if (cfg->password && cfg->user)
    r = redisCommand (c, "AUTH %s %s", cfg->user, cfg->password);
  else if (cfg->password)
    r = redisCommand (c, "AUTH %s", cfg->password);
  else
    r = redisCommand (c, "PING");
  if (r == NULL) {
    snprintf (err, MS_ERRLEN, "redis %s: %s", name, c->errstr);
    return -1;
  }
  if (r->type == REDIS_REPLY_ERROR) {
    ms_describe_refusal (cfg, r->str, why);
    snprintf (err, MS_ERRLEN, "redis %s: %.300s", name, why);
    freeReplyObject (r);
    return -1;
  }
  freeReplyObject (r);
  return 0;
}

static redisContext *
node_context (struct ms_sync *s, unsigned i, char *err)
{
  const struct ms_address *a = &s->nodes[i];
  char name[160];
  redisContext *c;

  if (s->ctx[i])
    return s->ctx[i];
  ms_address_name (a, name, sizeof name);
  c = a->path ? redisConnectUnixWithTimeout (a->path, timeout_of (s->cfg))
              : redisConnectWithTimeout (a->host, a->port, timeout_of (s->cfg));
  if (c == NULL || c->err) {
    snprintf (err, MS_ERRLEN, "redis %s: cannot connect: %s", name,
              c ? c->errstr : strerror (ENOMEM));
    redisFree (c);
    return NULL;
  }
  redisSetTimeout (c, timeout_of (s->cfg));
  if (authenticate (c, s->cfg, name, err) == -1) {
    redisFree (c);
    return NULL;
  }
  return s->ctx[i] = c;
}

static void
node_close (struct ms_sync *s, unsigned i)
{
  redisFree (s->ctx[i]);
  s->ctx[i] = NULL;
}

/* The index of the node at A, added if new (A is taken over); -1 when
 * the table is full.
 */
static int
node_index (struct ms_sync *s, struct ms_address *a)
{
  for (unsigned i = 0; i < s->nnodes; i++)
    if (ms_address_equal (&s->nodes[i], a)) {
      ms_address_free (a);
      return i;
    }
  if (s->nnodes == MS_MAX_NODES) {
    ms_address_free (a);
    return -1;
  }
  s->nodes[s->nnodes] = *a;
  return s->nnodes++;
}

struct ms_sync *
ms_sync_open (const struct ms_config *cfg, char *err)
{
  struct ms_sync *s = calloc (1, sizeof *s);

  if (s == NULL) {
    snprintf (err, MS_ERRLEN, "%s", strerror (errno));
    return NULL;
  }
  s->cfg = cfg;
  s->nodes[0] = cfg->addr;      /* borrowed: not freed with the table */
  s->nnodes = 1;
  if (node_context (s, 0, err) == NULL) {
    free (s);
    return NULL;
  }
  return s;
}

/* Send CMD to node I (after ASKING if asked to) and read its reply. */
static redisReply *
send_to (struct ms_sync *s, unsigned i, bool asking, const char *cmd,
         size_t len, char *err)
{
  redisContext *c = node_context (s, i, err);
  redisReply *r = NULL;

  if (c == NULL)
    return NULL;
  if (asking && redisAppendCommand (c, "ASKING") != REDIS_OK)
    goto lost;
  if (redisAppendFormattedCommand (c, cmd, len) != REDIS_OK)
    goto lost;
  if (asking) {
    if (redisGetReply (c, (void **) &r) != REDIS_OK)
      goto lost;
    freeReplyObject (r);
  }
  if (redisGetReply (c, (void **) &r) != REDIS_OK)
    goto lost;
  return r;
 lost:;
  char name[160];
  snprintf (err, MS_ERRLEN, "redis %s: %s",
            ms_address_name (&s->nodes[i], name, sizeof name), c->errstr);
  node_close (s, i);
  return NULL;
}

/* Send a formatted command where its slot lives, following redirects. */
static redisReply *
run (struct ms_sync *s, const char *cmd, size_t len, char *err)
{
  redisReply *r = NULL;
  unsigned slot = ms_command_slot (cmd, len), node = s->slot_node[slot];
  bool asking = false;

  err[0] = '\0';
  for (int tries = 0; tries <= MS_MAX_REDIRECTS; tries++) {
    struct ms_address to;
    int kind, i;

    if ((r = send_to (s, node, asking, cmd, len, err)) == NULL)
      return NULL;
    if ((kind = ms_parse_redirect (r, &to)) == 0)
      return r;
    freeReplyObject (r);
    if ((i = node_index (s, &to)) == -1) {
      snprintf (err, MS_ERRLEN, "redis: more than %d cluster nodes",
                MS_MAX_NODES);
      return NULL;
    }
    node = i;
    asking = kind == 'A';
    if (kind == 'M')
      s->slot_node[slot] = i;
  }
  snprintf (err, MS_ERRLEN, "redis: too many cluster redirects");
  return NULL;
}

/* Run a command hiredis formatted (LEN < 0: it could not), freeing it. */
static redisReply *
run_formatted (struct ms_sync *s, char *cmd, int len, char *err)
{
  redisReply *r;

  if (len < 0) {
    snprintf (err, MS_ERRLEN, "cannot format a Redis command");
    return NULL;
  }
  r = run (s, cmd, len, err);
  free (cmd);
  return r;
}

redisReply *
ms_sync_command (struct ms_sync *s, char *err, const char *fmt, ...)
{
  char *cmd;
  int len;
  va_list ap;

  va_start (ap, fmt);
  len = redisvFormatCommand (&cmd, fmt, ap);
  va_end (ap);
  return run_formatted (s, cmd, len, err);
}

redisReply *
ms_sync_argv (struct ms_sync *s, char *err, int argc, const char **argv,
              const size_t *argvlen)
{
  char *cmd;
  int len = redisFormatCommandArgv (&cmd, argc, argv, argvlen);

  return run_formatted (s, cmd, len, err);
}

void
ms_sync_close (struct ms_sync *s)
{
  if (s == NULL)
    return;
  for (unsigned i = 0; i < s->nnodes; i++) {
    redisFree (s->ctx[i]);
    if (i > 0)
      ms_address_free (&s->nodes[i]);
  }
  free (s);
}
