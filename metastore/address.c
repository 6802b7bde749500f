/* metastore: addresses, volume ids, key names, the password file and
 * Redis Cluster slots -- everything both clients share that does no I/O
 * but read the password file.
 */

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errbuf.h"
#include "metastore.h"

#define fail(err, ...) set_error (err, MS_ERRLEN, __VA_ARGS__)

static int
parse_port (const char *s, int *port)
{
  char *end;
  long n;

  if (!isdigit ((unsigned char) *s))
    return -1;
  errno = 0;
  n = strtol (s, &end, 10);
  if (errno || *end || n < 1 || n > 65535)
    return -1;
  *port = n;
  return 0;
}

/* HOST or [HOST] (an IPv6 address), then optionally :PORT. */
static int
parse_host_port (const char *s, bool port_required, struct ms_address *a)
{
  const char *colon, *host = s;
  size_t hostlen;

  if (*s == '[') {
    const char *close = strchr (s, ']');
    if (close == NULL || (close[1] != '\0' && close[1] != ':'))
      return -1;
    host = s + 1;
    hostlen = close - host;
    colon = close[1] == ':' ? close + 1 : NULL;
  }
  else {
    colon = strrchr (s, ':');
    hostlen = colon ? (size_t) (colon - s) : strlen (s);
    if (memchr (s, ':', hostlen))
      return -1;                /* an IPv6 address needs brackets */
  }
  if (hostlen == 0 || strcspn (host, "/@?#") < hostlen)
    return -1;
  a->port = MS_DEFAULT_PORT;
  if ((colon || port_required) &&
      (colon == NULL || parse_port (colon + 1, &a->port) == -1))
    return -1;
  a->host = strndup (host, hostlen);
  return a->host ? 0 : -1;
}

int
ms_parse_address (const char *s, struct ms_address *a, char *err)
{
  static const char forms[] = "unix:PATH, tcp:HOST:PORT or redis://HOST[:PORT]";

  memset (a, 0, sizeof *a);
  if (strncmp (s, "unix:", 5) == 0) {
    const char *path = s + 5;
    char cwd[4096];
    if (*path == '\0')
      return fail (err, "'%s': no socket path after unix:", s);
    if (*path == '/')
      a->path = strdup (path);
    else if (getcwd (cwd, sizeof cwd) == NULL ||
             asprintf (&a->path, "%s/%s", cwd, path) == -1)
      a->path = NULL;
    return a->path ? 0 : fail (err, "'%s': %s", s, strerror (errno));
  }
  if (strncmp (s, "tcp:", 4) == 0) {
    if (parse_host_port (s + 4, true, a) == 0)
      return 0;
    return fail (err, "'%s' is not tcp:HOST:PORT (a port from 1 to 65535)", s);
  }
  if (strncmp (s, "redis://", 8) == 0) {
    const char *rest = s + 8;
    /* Not echoed: it may hold a password. */
    if (strchr (rest, '@'))
      return fail (err, "a redis:// address must not hold a user or password "
                   "(give a user and a password file)");
    /* A trailing slash (or the default database, /0) is allowed. */
    char *copy = strdup (rest), *slash;
    if (copy == NULL)
      return fail (err, "%s", strerror (errno));
    if ((slash = strchr (copy, '/')) != NULL) {
      if (slash[1] != '\0' && strcmp (slash, "/0") != 0) {
        free (copy);
        return fail (err, "'%s': only database 0 is supported", s);
      }
      *slash = '\0';
    }
    int r = parse_host_port (copy, false, a);
    free (copy);
    if (r == 0)
      return 0;
    return fail (err, "'%s' is not redis://HOST[:PORT]", s);
  }
  return fail (err, "'%s' is not an address: use %s", s, forms);
}

void
ms_address_free (struct ms_address *a)
{
  free (a->path);
  free (a->host);
  a->path = a->host = NULL;
}

const char *
ms_address_name (const struct ms_address *a, char *buf, size_t len)
{
  if (a->path)
    snprintf (buf, len, "unix:%s", a->path);
  else if (strchr (a->host, ':'))
    snprintf (buf, len, "[%s]:%d", a->host, a->port);
  else
    snprintf (buf, len, "%s:%d", a->host, a->port);
  return buf;
}

bool
ms_valid_id (const char *id)
{
  size_t n = strlen (id);
  if (n == 0 || n > MS_ID_MAX || !isalnum ((unsigned char) id[0]))
    return false;
  for (const char *p = id; *p; p++)
    if (!isalnum ((unsigned char) *p) && *p != '.' && *p != '_' && *p != '-')
      return false;
  return true;
}

int
ms_read_password_file (const char *file, char **password, char *err)
{
  char buf[1024];
  FILE *fp = fopen (file, "r");
  size_t n;

  if (fp == NULL)
    return fail (err, "password file %s: %s", file, strerror (errno));
  n = fread (buf, 1, sizeof buf - 1, fp);
  if (ferror (fp)) {
    fclose (fp);
    return fail (err, "password file %s: %s", file, strerror (errno));
  }
  fclose (fp);
  buf[n] = '\0';
  buf[strcspn (buf, "\r\n")] = '\0';
  if (buf[0] == '\0')
    return fail (err, "password file %s: empty first line", file);
  *password = strdup (buf);
  /* Do not leave the password in this stack frame. */
  memset (buf, 0, sizeof buf);
  if (*password == NULL)
    return fail (err, "%s", strerror (errno));
  return 0;
}

int
ms_config_init (struct ms_config *cfg, const char *address, const char *user,
                const char *password_file, char *err)
{
  memset (cfg, 0, sizeof *cfg);
  cfg->timeout_ms = 2000;
  if (ms_parse_address (address ? address : MS_DEFAULT_ADDRESS,
                        &cfg->addr, err) == -1)
    return -1;
  if (user && (*user == '\0' || strpbrk (user, " \t\r\n"))) {
    ms_config_free (cfg);
    return fail (err, "'%s' is not a Redis user name", user);
  }
  if (user && password_file == NULL) {
    ms_config_free (cfg);
    return fail (err, "a Redis user needs a password file");
  }
  if (password_file &&
      ms_read_password_file (password_file, &cfg->password, err) == -1) {
    ms_config_free (cfg);
    return -1;
  }
  if (user && (cfg->user = strdup (user)) == NULL) {
    ms_config_free (cfg);
    return fail (err, "%s", strerror (errno));
  }
  return 0;
}

void
ms_config_free (struct ms_config *cfg)
{
  ms_address_free (&cfg->addr);
  free (cfg->user);
  if (cfg->password) {
    memset (cfg->password, 0, strlen (cfg->password));
    free (cfg->password);
  }
  cfg->user = cfg->password = NULL;
}

void
ms_describe_refusal (const struct ms_config *cfg, const char *reply,
                     char *why)
{
  if (cfg->password == NULL)
    snprintf (why, MS_ERRLEN, "refused without a password: %s", reply);
  else if (cfg->user)
    snprintf (why, MS_ERRLEN, "AUTH as user '%s' refused: %s", cfg->user,
              reply);
  else
    snprintf (why, MS_ERRLEN, "AUTH refused: %s", reply);
}

const char *
ms_key (char *buf, size_t len, const char *id, const char *suffix)
{
  snprintf (buf, len, "nbdshadow:{%s}:%s", id, suffix);
  return buf;
}

/* CRC16-CCITT (XMODEM), as the Redis Cluster specification defines
 * key slots.
 */
static uint16_t
crc16 (const char *p, size_t len)
{
  uint16_t crc = 0;
  for (size_t i = 0; i < len; i++) {
    crc ^= (uint16_t) (unsigned char) p[i] << 8;
    for (int k = 0; k < 8; k++)
      crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
  }
  return crc;
}

unsigned
ms_key_slot (const char *key, size_t len)
{
  const char *open = memchr (key, '{', len);
  if (open) {
    const char *close = memchr (open + 1, '}', len - (open + 1 - key));
    if (close && close > open + 1)
      return crc16 (open + 1, close - open - 1) & 16383;
  }
  return crc16 (key, len) & 16383;
}

/* One bulk string of a formatted command: "$LEN\r\nDATA\r\n". */
static const char *
next_arg (const char *p, const char *end, const char **arg, size_t *len)
{
  char *q;
  if (p >= end || *p != '$')
    return NULL;
  *len = strtoul (p + 1, &q, 10);
  if (q + 2 > end || q[0] != '\r')
    return NULL;
  *arg = q + 2;
  p = *arg + *len + 2;
  return p <= end ? p : NULL;
}

unsigned
ms_command_slot (const char *cmd, size_t len)
{
  const char *end = cmd + len, *p = strchr (cmd, '\n'), *arg = NULL;
  size_t alen = 0;
  bool streams, after_streams = false;
  int skip;

  if (p == NULL || (p = next_arg (p + 1, end, &arg, &alen)) == NULL)
    return 0;
  /* Where the key is: after STREAMS (XREAD, XREADGROUP), after the
   * subcommand (XGROUP CREATE key ...), else the first argument.
   */
  streams = (alen == 5 && strncasecmp (arg, "XREAD", 5) == 0) ||
            (alen == 10 && strncasecmp (arg, "XREADGROUP", 10) == 0);
  skip = (alen == 6 && strncasecmp (arg, "XGROUP", 6) == 0) ? 1 : 0;
  while ((p = next_arg (p, end, &arg, &alen)) != NULL) {
    if (streams && !after_streams)
      after_streams = alen == 7 && strncasecmp (arg, "STREAMS", 7) == 0;
    else if (skip-- <= 0)
      return ms_key_slot (arg, alen);
  }
  return 0;
}

int
ms_parse_redirect (const redisReply *r, struct ms_address *a)
{
  int kind;
  const char *target;

  if (r == NULL || r->type != REDIS_REPLY_ERROR)
    return 0;
  if (strncmp (r->str, "MOVED ", 6) == 0)
    kind = 'M';
  else if (strncmp (r->str, "ASK ", 4) == 0)
    kind = 'A';
  else
    return 0;
  /* "MOVED 3999 127.0.0.1:6381" */
  target = strchr (r->str, ' ');
  target = target ? strchr (target + 1, ' ') : NULL;
  memset (a, 0, sizeof *a);
  if (target == NULL || parse_host_port (target + 1, true, a) == -1)
    return 0;
  return kind;
}

bool
ms_address_equal (const struct ms_address *a, const struct ms_address *b)
{
  if (a->path || b->path)
    return a->path && b->path && strcmp (a->path, b->path) == 0;
  return strcmp (a->host, b->host) == 0 && a->port == b->port;
}
