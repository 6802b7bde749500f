/* metastore: nbdshadow's client of the Dynamic Metadata Store (Redis).
 *
 * Used by the shadow filter (which mirrors its state into Redis and reads
 * the operator's commands from it) and by the nbdshadow CLI (which reads
 * that mirror and sends commands).  The key schema is docs/METADATA.md.
 *
 *   address.c  addresses (unix:PATH, tcp:HOST:PORT, redis://HOST[:PORT]),
 *              volume ids, key names, the password file, cluster slots
 *   sync.c     a blocking client for the CLI
 *   async.c    a non-blocking client on a libev loop for the filter
 *
 * Both clients authenticate (AUTH [user] password) on every connection
 * and follow Redis Cluster redirects (MOVED, ASK) themselves: hiredis
 * 0.14 has no cluster support.  The password is never logged.
 */

#ifndef NBDSHADOW_METASTORE_H
#define NBDSHADOW_METASTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#define MS_ERRLEN 512
#define MS_ID_MAX 64
#define MS_DEFAULT_PORT 6379
/* The CLI's address when neither --redis nor NBDSHADOW_REDIS is given. */
#define MS_DEFAULT_ADDRESS "unix:/run/redis/redis-server.sock"
/* The fleet's set of volume ids (in a slot of its own in a cluster). */
#define MS_KEY_VOLUMES "nbdshadow:volumes"
/* The command stream's consumer group and the filter's consumer name. */
#define MS_GROUP "filter"
#define MS_CONSUMER "filter"
/* At most this many cluster nodes are talked to (a volume's keys are
 * on one of them, the fleet's set maybe on another).
 */
#define MS_MAX_NODES 16
/* A command is redirected at most this often before giving up. */
#define MS_MAX_REDIRECTS 5

struct ms_address {
  char *path;                   /* unix socket, or NULL for TCP */
  char *host;
  int port;
};

struct ms_config {
  struct ms_address addr;
  char *user;                   /* NULL: AUTH password (or no AUTH) */
  char *password;               /* NULL: no AUTH */
  unsigned timeout_ms;          /* connect and, for sync, each reply */
};

/* address.c */
/* Parse S into A (strings malloc'd; a relative unix path is made
 * absolute).  -1 with the reason in ERR (MS_ERRLEN bytes).
 */
extern int ms_parse_address (const char *s, struct ms_address *a, char *err);
extern void ms_address_free (struct ms_address *a);
/* "unix:PATH" or "HOST:PORT", for messages (never holds secrets). */
extern const char *ms_address_name (const struct ms_address *a, char *buf,
                                    size_t len);
extern bool ms_address_equal (const struct ms_address *a,
                              const struct ms_address *b);
/* [A-Za-z0-9][A-Za-z0-9._-]{0,63}: a volume's files are named after it,
 * so no hidden file ("." first) and nothing that reads as an option. */
#define MS_ID_RULE "1 to 64 of A-Z a-z 0-9 . _ -, the first a letter or digit"
extern bool ms_valid_id (const char *id);
/* The first line of FILE, without its newline.  -1 with ERR. */
extern int ms_read_password_file (const char *file, char **password,
                                  char *err);
/* Fill CFG from the user's words (ADDRESS may be NULL: the CLI's
 * default).  -1 with ERR.  ms_config_free releases what it holds.
 */
extern int ms_config_init (struct ms_config *cfg, const char *address,
                           const char *user, const char *password_file,
                           char *err);
extern void ms_config_free (struct ms_config *cfg);
/* Why the server refused the connection's first command (AUTH, or
 * PING without a password): "AUTH as user 'U' refused: WRONGPASS ..."
 * into WHY (MS_ERRLEN bytes).
 */
extern void ms_describe_refusal (const struct ms_config *cfg,
                                 const char *reply, char *why);
/* "nbdshadow:{ID}:SUFFIX" into BUF; SUFFIX is one of info, progress,
 * coverage, predicted, events, commands, acks.
 */
extern const char *ms_key (char *buf, size_t len, const char *id,
                           const char *suffix);
#define MS_KEY_LEN (MS_ID_MAX + 32)
/* The Redis Cluster slot of a key (CRC16 of its {hash tag}). */
extern unsigned ms_key_slot (const char *key, size_t len);
/* The slot of the key a formatted command (RESP array) works on:
 * argv[1]; argv[2] for XGROUP; the first key after STREAMS for
 * XREAD/XREADGROUP.
 */
extern unsigned ms_command_slot (const char *cmd, size_t len);
/* A cluster redirect in an error reply: "MOVED slot host:port" or
 * "ASK slot host:port".  Returns 0 (none), 'M' or 'A'; fills A.
 */
extern int ms_parse_redirect (const redisReply *r, struct ms_address *a);

/* sync.c: a blocking client. */
struct ms_sync;
/* Connect to CFG's address and authenticate; NULL with ERR. */
extern struct ms_sync *ms_sync_open (const struct ms_config *cfg, char *err);
/* redisCommand-style.  Redirects are followed; an error reply is
 * returned as a reply (the caller checks r->type).  NULL with ERR when
 * no node could be reached or authenticated.  freeReplyObject the reply.
 */
extern redisReply *ms_sync_command (struct ms_sync *s, char *err,
                                    const char *fmt, ...);
/* The same with the words given (ARGVLEN NULL: strlen of each). */
extern redisReply *ms_sync_argv (struct ms_sync *s, char *err, int argc,
                                 const char **argv, const size_t *argvlen);
extern void ms_sync_close (struct ms_sync *s);

/* async.c: a non-blocking client on a libev loop of the caller's (made
 * with ev_loop_new; every call on that loop's thread).  It connects at
 * once and, whenever the connection is lost or authentication fails,
 * again with backoff; `connected` runs each time it is up (with AUTH
 * done), so that the owner can re-write what it keeps in Redis.
 */
struct ev_loop;
struct ms_async;
struct ms_async_ops {
  void *opaque;
  void (*connected) (void *opaque);
  /* error: a line for the user (once per outage) or a debug message. */
  void (*log) (void *opaque, bool error, const char *msg);
};
/* R is NULL when the command was lost with its connection. */
typedef void ms_reply_fn (redisReply *r, void *priv);
extern struct ms_async *ms_async_new (struct ev_loop *loop,
                                      const struct ms_config *cfg,
                                      const struct ms_async_ops *ops);
extern bool ms_async_is_up (const struct ms_async *a);
/* Queue a command (pipelined with those before it).  FN may be NULL.
 * -1 when the client is not up (FN is not called).
 */
extern int ms_async_command (struct ms_async *a, ms_reply_fn *fn, void *priv,
                             const char *fmt, ...);
/* The same with the words given. */
extern int ms_async_argv (struct ms_async *a, ms_reply_fn *fn, void *priv,
                          int argc, const char **argv);
/* Disconnect; pending callbacks run with NULL. */
extern void ms_async_free (struct ms_async *a);

#endif /* NBDSHADOW_METASTORE_H */
