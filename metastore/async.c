/* metastore: the non-blocking client (the shadow filter's).
 *
 * hiredis's asynchronous API on a libev loop the owner made and runs.
 * Like the blocking client it keeps one connection per cluster node it
 * was sent to and routes each command by its key's slot; a redirected
 * command is re-sent from its reply callback, so the owner sees only the
 * final reply.
 *
 * The client is DOWN, CONNECTING (to the configured node: AUTH, PING)
 * or UP.  Any lost connection or refused AUTH on any node takes it DOWN:
 * every connection is closed (outstanding callbacks run with NULL) and
 * it tries again after a backoff.  The owner re-writes its mirror each
 * time it comes UP, so nothing lost while DOWN has to be replayed here.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libev.h>

#include "metastore.h"

/* Redis restarting is the common outage: come back soon, but do not
 * hammer a server that is gone.  The cap keeps the mirror within a few
 * seconds of a restart.
 */
#define BACKOFF_MIN 0.1
#define BACKOFF_MAX 2.0

enum state { DOWN, CONNECTING, UP };

struct node {
  struct ms_async *a;
  struct ms_address addr;
  redisAsyncContext *ac;
};

struct ms_async {
  struct ev_loop *loop;
  const struct ms_config *cfg;
  struct ms_async_ops ops;
  struct node nodes[MS_MAX_NODES];        /* [0]: the configured address */
  unsigned nnodes;
  unsigned char slot_node[16384];
  enum state state;
  double backoff;
  ev_timer timer;               /* CONNECTING: timeout; DOWN: retry */
  ev_timer teardown;            /* closes connections outside hiredis's callbacks */
  char last_error[MS_ERRLEN];   /* logged once per outage */
};

/* A command in flight, kept formatted so that a redirect can re-send it. */
struct cmd {
  struct ms_async *a;
  char *buf;
  size_t len;
  unsigned slot;
  int redirects;
  ms_reply_fn *fn;
  void *priv;
};

static void __attribute__ ((format (printf, 3, 4)))
say (struct ms_async *a, bool error, const char *fmt, ...)
{
  char msg[MS_ERRLEN + 64];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  if (a->ops.log)
    a->ops.log (a->ops.opaque, error, msg);
}

static const char *
node_name (const struct node *n, char *buf, size_t len)
{
  return ms_address_name (&n->addr, buf, len);
}

/* Something went wrong on node N: go DOWN (once), telling the user why
 * unless this is the same reason as the outage before.
 */
static void
fail (struct node *n, const char *why)
{
  struct ms_async *a = n->a;
  char name[160], line[MS_ERRLEN];

  if (a->state == DOWN)
    return;
  snprintf (line, sizeof line, "redis %s: %s", node_name (n, name, sizeof name),
            why);
  say (a, strcmp (line, a->last_error) != 0, "%s", line);
  snprintf (a->last_error, sizeof a->last_error, "%s", line);
  a->state = DOWN;
  ev_timer_stop (a->loop, &a->timer);
  ev_timer_set (&a->teardown, 0, 0);
  ev_timer_start (a->loop, &a->teardown);
}

static void
connect_cb (const redisAsyncContext *ac, int status)
{
  struct node *n = ac->data;
  if (status != REDIS_OK) {
    n->ac = NULL;               /* hiredis frees it */
    fail (n, ac->errstr[0] ? ac->errstr : "cannot connect");
  }
}

static void
disconnect_cb (const redisAsyncContext *ac, int status)
{
  struct node *n = ac->data;
  n->ac = NULL;
  fail (n, status == REDIS_OK ? "connection closed"
           : ac->errstr[0] ? ac->errstr : "connection lost");
}

static void
auth_cb (redisAsyncContext *ac, void *reply, void *priv)
{
  struct node *n = priv;
  redisReply *r = reply;
  char why[MS_ERRLEN];

  if (r == NULL || r->type != REDIS_REPLY_ERROR)
    return;
  ms_describe_refusal (n->a->cfg, r->str, why);
  fail (n, why);
}

/* The connection to node I, opened (and AUTH queued) if need be. */
static redisAsyncContext *
node_context (struct ms_async *a, unsigned i)
{
  struct node *n = &a->nodes[i];
  redisAsyncContext *ac;
  const struct ms_config *cfg = a->cfg;

  if (n->ac)
    return n->ac;
  ac = n->addr.path ? redisAsyncConnectUnix (n->addr.path)
                    : redisAsyncConnect (n->addr.host, n->addr.port);
  if (ac == NULL || ac->err) {
    fail (n, ac ? ac->errstr : strerror (ENOMEM));
    if (ac)
      redisAsyncFree (ac);
    return NULL;
  }
  ac->data = n;
  redisLibevAttach (a->loop, ac);
  redisAsyncSetConnectCallback (ac, connect_cb);
  redisAsyncSetDisconnectCallback (ac, disconnect_cb);
  if (cfg->password && cfg->user)
    redisAsyncCommand (ac, auth_cb, n, "AUTH %s %s", cfg->user, cfg->password);
  else if (cfg->password)
    redisAsyncCommand (ac, auth_cb, n, "AUTH %s", cfg->password);
  return n->ac = ac;
}

static int
node_index (struct ms_async *a, struct ms_address *addr)
{
  for (unsigned i = 0; i < a->nnodes; i++)
    if (ms_address_equal (&a->nodes[i].addr, addr)) {
      ms_address_free (addr);
      return i;
    }
  if (a->nnodes == MS_MAX_NODES) {
    ms_address_free (addr);
    return -1;
  }
  a->nodes[a->nnodes].a = a;
  a->nodes[a->nnodes].addr = *addr;
  return a->nnodes++;
}

static void
cmd_free (struct cmd *c)
{
  free (c->buf);
  free (c);
}

static void cmd_cb (redisAsyncContext *ac, void *reply, void *priv);

static int
cmd_send (struct cmd *c, unsigned node, bool asking)
{
  redisAsyncContext *ac = node_context (c->a, node);
  if (ac == NULL)
    return -1;
  if (asking)
    redisAsyncCommand (ac, NULL, NULL, "ASKING");
  return redisAsyncFormattedCommand (ac, cmd_cb, c, c->buf, c->len) == REDIS_OK
         ? 0 : -1;
}

static void
cmd_cb (redisAsyncContext *ac, void *reply, void *priv)
{
  struct cmd *c = priv;
  struct ms_async *a = c->a;
  struct ms_address to;
  int kind, i;

  kind = a->state == UP ? ms_parse_redirect (reply, &to) : 0;
  if (kind) {
    i = node_index (a, &to);
    if (i >= 0 && ++c->redirects <= MS_MAX_REDIRECTS) {
      if (kind == 'M')
        a->slot_node[c->slot] = i;
      if (cmd_send (c, i, kind == 'A') == 0)
        return;
    }
    reply = NULL;               /* lost: the owner re-writes on reconnect */
  }
  if (c->fn)
    c->fn (reply, c->priv);
  cmd_free (c);
}

/* Send a formatted command (taken over) where its slot lives. */
static int
cmd_start (struct ms_async *a, ms_reply_fn *fn, void *priv, char *buf, int len)
{
  struct cmd *c;

  if (len < 0)
    return -1;
  if ((c = calloc (1, sizeof *c)) == NULL) {
    free (buf);
    return -1;
  }
  c->buf = buf;
  c->a = a;
  c->len = len;
  c->slot = ms_command_slot (c->buf, len);
  c->fn = fn;
  c->priv = priv;
  if (cmd_send (c, a->slot_node[c->slot], false) == -1) {
    cmd_free (c);
    return -1;
  }
  return 0;
}

int
ms_async_command (struct ms_async *a, ms_reply_fn *fn, void *priv,
                  const char *fmt, ...)
{
  char *buf;
  va_list ap;
  int len;

  if (a->state != UP)
    return -1;
  va_start (ap, fmt);
  len = redisvFormatCommand (&buf, fmt, ap);
  va_end (ap);
  return cmd_start (a, fn, priv, buf, len);
}

int
ms_async_argv (struct ms_async *a, ms_reply_fn *fn, void *priv, int argc,
               const char **argv)
{
  char *buf;
  int len;

  if (a->state != UP)
    return -1;
  len = redisFormatCommandArgv (&buf, argc, argv, NULL);
  return cmd_start (a, fn, priv, buf, len);
}

bool
ms_async_is_up (const struct ms_async *a)
{
  return a->state == UP;
}

static void
ping_cb (redisAsyncContext *ac, void *reply, void *priv)
{
  struct node *n = priv;
  struct ms_async *a = n->a;
  redisReply *r = reply;

  if (r == NULL || a->state != CONNECTING)
    return;
  if (r->type == REDIS_REPLY_ERROR) {
    char why[MS_ERRLEN];
    if (a->cfg->password == NULL)
      ms_describe_refusal (a->cfg, r->str, why);
    else                        /* AUTH passed but PING failed (LOADING...) */
      snprintf (why, sizeof why, "%s", r->str);
    fail (n, why);
    return;
  }
  ev_timer_stop (a->loop, &a->timer);
  a->state = UP;
  a->backoff = BACKOFF_MIN;
  if (a->last_error[0])
    say (a, false, "redis: connected again after: %s", a->last_error);
  a->last_error[0] = '\0';
  if (a->ops.connected)
    a->ops.connected (a->ops.opaque);
}

static void
close_all (struct ms_async *a)
{
  for (unsigned i = 0; i < a->nnodes; i++)
    if (a->nodes[i].ac) {
      redisAsyncContext *ac = a->nodes[i].ac;
      a->nodes[i].ac = NULL;
      redisAsyncFree (ac);
    }
}

static void
start_connecting (struct ms_async *a)
{
  a->state = CONNECTING;
  ev_timer_set (&a->timer, a->cfg->timeout_ms / 1000.0, 0);
  ev_timer_start (a->loop, &a->timer);
  if (node_context (a, 0))
    redisAsyncCommand (a->nodes[0].ac, ping_cb, &a->nodes[0], "PING");
}

static void
timer_cb (struct ev_loop *loop, ev_timer *w, int revents)
{
  struct ms_async *a = w->data;
  if (a->state == CONNECTING)
    fail (&a->nodes[0], "no answer (timed out)");
  else if (a->state == DOWN)
    start_connecting (a);
}

static void
teardown_cb (struct ev_loop *loop, ev_timer *w, int revents)
{
  struct ms_async *a = w->data;
  close_all (a);
  ev_timer_set (&a->timer, a->backoff, 0);
  ev_timer_start (a->loop, &a->timer);
  a->backoff = a->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : a->backoff * 2;
}

struct ms_async *
ms_async_new (struct ev_loop *loop, const struct ms_config *cfg,
              const struct ms_async_ops *ops)
{
  struct ms_async *a = calloc (1, sizeof *a);

  if (a == NULL)
    return NULL;
  a->loop = loop;
  a->cfg = cfg;
  a->ops = *ops;
  a->nodes[0].a = a;
  a->nodes[0].addr = cfg->addr;           /* borrowed */
  a->nnodes = 1;
  a->backoff = BACKOFF_MIN;
  ev_timer_init (&a->timer, timer_cb, 0, 0);
  ev_timer_init (&a->teardown, teardown_cb, 0, 0);
  a->timer.data = a->teardown.data = a;
  start_connecting (a);
  return a;
}

void
ms_async_free (struct ms_async *a)
{
  if (a == NULL)
    return;
  a->state = DOWN;
  ev_timer_stop (a->loop, &a->timer);
  ev_timer_stop (a->loop, &a->teardown);
  close_all (a);
  for (unsigned i = 1; i < a->nnodes; i++)
    ms_address_free (&a->nodes[i].addr);
  free (a);
}
