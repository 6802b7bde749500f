/* metastore's pure parts: addresses, ids, keys, cluster slots, redirects
 * and the password file.  Slots are checked against the values of the
 * Redis Cluster specification.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metastore.h"

static int failures;

#define CHECK(cond) \
  do { if (!(cond)) { fprintf (stderr, "%s:%d: FAIL: %s\n", __FILE__, __LINE__, #cond); failures++; } } while (0)

static void
check_ok (const char *s, const char *path, const char *host, int port)
{
  struct ms_address a;
  char err[MS_ERRLEN];
  if (ms_parse_address (s, &a, err) == -1) {
    fprintf (stderr, "FAIL: %s refused: %s\n", s, err);
    failures++;
    return;
  }
  CHECK ((path == NULL) == (a.path == NULL));
  if (path)
    CHECK (strcmp (a.path, path) == 0);
  if (host) {
    CHECK (a.host && strcmp (a.host, host) == 0);
    CHECK (a.port == port);
  }
  ms_address_free (&a);
}

static void
check_bad (const char *s, const char *words)
{
  struct ms_address a;
  char err[MS_ERRLEN];
  if (ms_parse_address (s, &a, err) == 0) {
    fprintf (stderr, "FAIL: %s accepted\n", s);
    failures++;
    ms_address_free (&a);
    return;
  }
  if (strstr (err, words) == NULL) {
    fprintf (stderr, "FAIL: %s: '%s' does not say '%s'\n", s, err, words);
    failures++;
  }
}

static unsigned
slot_of_command (const char *fmt, ...)
{
  char *cmd;
  va_list ap;
  va_start (ap, fmt);
  int len = redisvFormatCommand (&cmd, fmt, ap);
  va_end (ap);
  unsigned slot = ms_command_slot (cmd, len);
  free (cmd);
  return slot;
}

int
main (void)
{
  char cwd[4096], want[4200], key[MS_KEY_LEN], err[MS_ERRLEN];

  check_ok ("unix:/run/redis.sock", "/run/redis.sock", NULL, 0);
  if (getcwd (cwd, sizeof cwd)) {
    snprintf (want, sizeof want, "%s/r.sock", cwd);
    check_ok ("unix:r.sock", want, NULL, 0);
  }
  check_ok ("tcp:127.0.0.1:7000", NULL, "127.0.0.1", 7000);
  check_ok ("tcp:[::1]:7001", NULL, "::1", 7001);
  check_ok ("redis://db.example", NULL, "db.example", 6379);
  check_ok ("redis://db.example:6380/", NULL, "db.example", 6380);
  check_ok ("redis://db.example:6380/0", NULL, "db.example", 6380);
  check_bad ("unix:", "no socket path");
  check_bad ("tcp:localhost", "tcp:HOST:PORT");
  check_bad ("tcp:localhost:0", "tcp:HOST:PORT");
  check_bad ("tcp:localhost:65536", "tcp:HOST:PORT");
  check_bad ("tcp::6379", "tcp:HOST:PORT");
  check_bad ("tcp:::1:6379", "tcp:HOST:PORT");
  check_bad ("redis://u:secret@db:6379", "must not hold a user or password");
  check_bad ("redis://db/3", "only database 0");
  check_bad ("redis://", "redis://HOST[:PORT]");
  check_bad ("localhost:6379", "unix:PATH, tcp:HOST:PORT or redis://HOST[:PORT]");

  CHECK (ms_valid_id ("vm-1.disk_0"));
  CHECK (!ms_valid_id (""));
  CHECK (!ms_valid_id ("a b"));
  CHECK (!ms_valid_id ("a{b}"));
  CHECK (!ms_valid_id (".."));
  CHECK (!ms_valid_id (".vm1"));
  CHECK (!ms_valid_id ("-vm1"));
  CHECK (ms_valid_id ("9vm._-"));
  CHECK (!ms_valid_id ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
  CHECK (ms_valid_id ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));

  CHECK (strcmp (ms_key (key, sizeof key, "vm1", "info"), "nbdshadow:{vm1}:info") == 0);
  /* The specification's examples: CRC16 of "123456789" is 0x31C3. */
  CHECK (ms_key_slot ("123456789", 9) == 12739);
  CHECK (ms_key_slot ("foo", 3) == 12182);
  CHECK (ms_key_slot ("{foo}.bar", 9) == 12182);
  CHECK (ms_key_slot ("foo{}{bar}", 10) == ms_key_slot ("foo{}{bar}", 10));
  CHECK (ms_key_slot ("foo{}{bar}", 10) != ms_key_slot ("bar", 3));
  CHECK (ms_key_slot ("nbdshadow:{vm1}:info", 20) ==
         ms_key_slot ("nbdshadow:{vm1}:commands", 24));
  CHECK (slot_of_command ("HSET %s a 1", "nbdshadow:{vm1}:progress") ==
         ms_key_slot ("vm1", 3));
  CHECK (slot_of_command ("XREADGROUP GROUP g c COUNT 1 BLOCK 10 STREAMS %s >",
                          "nbdshadow:{vm2}:commands") == ms_key_slot ("vm2", 3));
  CHECK (slot_of_command ("XGROUP CREATE %s filter $ MKSTREAM",
                          "nbdshadow:{vm3}:commands") == ms_key_slot ("vm3", 3));

  redisReply r = { .type = REDIS_REPLY_ERROR, .str = "MOVED 3999 127.0.0.1:6381" };
  struct ms_address a;
  CHECK (ms_parse_redirect (&r, &a) == 'M');
  CHECK (a.host && strcmp (a.host, "127.0.0.1") == 0 && a.port == 6381);
  ms_address_free (&a);
  r.str = "ASK 3999 127.0.0.1:6382";
  CHECK (ms_parse_redirect (&r, &a) == 'A');
  CHECK (a.port == 6382);
  ms_address_free (&a);
  r.str = "WRONGPASS invalid username-password pair";
  CHECK (ms_parse_redirect (&r, &a) == 0);

  char tmpl[] = "/tmp/metastore-pw.XXXXXX";
  int fd = mkstemp (tmpl);
  char *pw = NULL;
  CHECK (fd >= 0 && write (fd, "s3cret\nsecond line\n", 19) == 19);
  CHECK (ms_read_password_file (tmpl, &pw, err) == 0 && strcmp (pw, "s3cret") == 0);
  free (pw);
  CHECK (ftruncate (fd, 0) == 0);
  CHECK (ms_read_password_file (tmpl, &pw, err) == -1 && strstr (err, "empty"));
  close (fd);
  unlink (tmpl);
  CHECK (ms_read_password_file (tmpl, &pw, err) == -1 && strstr (err, tmpl));

  struct ms_config cfg;
  CHECK (ms_config_init (&cfg, "unix:/x", "bob", NULL, err) == -1 &&
         strstr (err, "password file"));

  if (failures)
    fprintf (stderr, "%d failures\n", failures);
  return failures ? 1 : 0;
}
