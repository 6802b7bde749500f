/* test-common-errbuf.c: common/errbuf.h.  set_error returns -1 (so
 * `return set_error (...)` fails the caller), formats the reason, and
 * never writes past the caller's buffer: a long reason is cut, ending
 * in a NUL.
 */
#include <string.h>

#include "errbuf.h"
#include "unit.h"

int
main (void)
{
  char buf[16 + 4];

  memset (buf, 'x', sizeof buf);
  CHECK (set_error (buf, 16, "bad %s %d", "size", 42) == -1);
  CHECK (strcmp (buf, "bad size 42") == 0);

  memset (buf, 'x', sizeof buf);
  CHECK (set_error (buf, 16, "%s", "a reason far longer than the buffer") == -1);
  CHECK (strlen (buf) == 15 && memcmp (buf, "a reason far lo", 15) == 0);
  CHECK (memcmp (buf + 16, "xxxx", 4) == 0);    /* nothing past it */
  return unit_result ("test-common-errbuf");
}
