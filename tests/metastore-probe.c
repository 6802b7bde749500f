/* metastore-probe: run one Redis command through metastore's blocking
 * client (so through its AUTH and its cluster redirects) and print the
 * reply, one line per element.  For the tests:
 *
 *   metastore-probe ADDRESS [-u USER] [-p PASSWORD_FILE] CMD [ARG...]
 *
 * Exit 1 with metastore's one line when it cannot connect or AUTH.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metastore.h"

static void
print_reply (const redisReply *r)
{
  switch (r->type) {
  case REDIS_REPLY_ARRAY:
    for (size_t i = 0; i < r->elements; i++)
      print_reply (r->element[i]);
    break;
  case REDIS_REPLY_INTEGER:
    printf ("%lld\n", r->integer);
    break;
  case REDIS_REPLY_NIL:
    printf ("(nil)\n");
    break;
  default:
    fwrite (r->str, 1, r->len, stdout);
    putchar ('\n');
  }
}

int
main (int argc, char *argv[])
{
  const char *user = NULL, *password_file = NULL;
  char err[MS_ERRLEN];
  struct ms_config cfg;
  struct ms_sync *s;
  int c;

  if (argc < 2) {
    fprintf (stderr, "usage: metastore-probe ADDRESS [-u USER] [-p FILE] CMD [ARG...]\n");
    return 2;
  }
  optind = 2;
  while ((c = getopt (argc, argv, "+u:p:")) != -1)
    if (c == 'u')
      user = optarg;
    else if (c == 'p')
      password_file = optarg;
    else
      return 2;
  if (optind >= argc)
    return 2;
  if (ms_config_init (&cfg, argv[1], user, password_file, err) == -1 ||
      (s = ms_sync_open (&cfg, err)) == NULL) {
    fprintf (stderr, "metastore-probe: %s\n", err);
    return 1;
  }

  redisReply *r = ms_sync_argv (s, err, argc - optind,
                                (const char **) argv + optind, NULL);
  if (r == NULL) {
    fprintf (stderr, "metastore-probe: %s\n", err);
    return 1;
  }
  int status = r->type == REDIS_REPLY_ERROR;
  if (status)
    fprintf (stderr, "metastore-probe: %s\n", r->str);
  else
    print_reply (r);
  freeReplyObject (r);
  ms_sync_close (s);
  ms_config_free (&cfg);
  return status;
}
