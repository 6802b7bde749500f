/* Preloaded after libasan into the nbdkit of the sanitizer tests only.
 *
 * nbdkit 1.32 with libasan preloaded and libnbd loaded (the nbd plugin
 * links GnuTLS, which links p11-kit) never finishes exit(): p11-kit's
 * destructor calls freelocale, which waits for glibc's setlocale lock,
 * and gdb shows that lock's reader count below zero (0xfffffffa) with
 * one thread left.  It happens without the shadow filter too, e.g.
 *   LD_PRELOAD=libasan.so nbdkit -U - nbd uri=nbd+unix:///?socket=/none \
 *     --run 'nbdinfo $uri'
 * never returns.  The process is exiting, so leaving that one locale
 * unfreed loses nothing, and the tests can then stop nbdkit and see
 * how it exits, as in the plain build. */

#include <locale.h>

void
freelocale (locale_t locale)
{
  (void) locale;
}
