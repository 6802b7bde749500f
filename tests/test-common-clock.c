/* test-common-clock.c: common/clock.h.  The monotonic clock never goes
 * back and its two units agree; wall_us is the wall clock in
 * microseconds; a deadline is the clock's time plus the
 * delay, normalised (tv_nsec below one second, which
 * pthread_cond_timedwait requires: it fails with EINVAL otherwise).
 */
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "clock.h"
#include "unit.h"


static int64_t
ts_ns (struct timespec ts)
{
  return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int
main (void)
{
  uint64_t prev = time_ns ();

  for (int i = 0; i < 100000; i++) {
    uint64_t t = time_ns ();
    if (t < prev) {
      FAIL ("time_ns went back from %llu to %llu", (unsigned long long) prev,
            (unsigned long long) t);
      break;
    }
    prev = t;
  }
  {
    uint64_t a = time_ns (), us = time_us (), b = time_ns ();
    CHECK (a / 1000 <= us && us <= b / 1000);
  }

  /* Delays around whole seconds, where the carry happens. */
  static const unsigned delays[] = { 0, 1, 999, 1000, 1001, 1999, 2500,
                                     30000, 86400000 };
  for (size_t i = 0; i < sizeof delays / sizeof delays[0]; i++) {
    for (int rep = 0; rep < 200; rep++) {
      struct timespec before, after, d;
      clock_gettime (CLOCK_MONOTONIC, &before);
      d = deadline_after_ms (CLOCK_MONOTONIC, delays[i]);
      clock_gettime (CLOCK_MONOTONIC, &after);
      if (d.tv_nsec < 0 || d.tv_nsec >= 1000000000) {
        FAIL ("deadline after %u ms has tv_nsec %ld", delays[i], d.tv_nsec);
        break;
      }
      int64_t ms = (int64_t) delays[i] * 1000000;
      if (ts_ns (d) < ts_ns (before) + ms || ts_ns (d) > ts_ns (after) + ms) {
        FAIL ("deadline after %u ms is not now + %u ms", delays[i], delays[i]);
        break;
      }
    }
  }
  {
    /* Wall-clock microseconds, as a trace's timestamps. */
    struct timespec a, b;
    clock_gettime (CLOCK_REALTIME, &a);
    uint64_t w = wall_us ();
    clock_gettime (CLOCK_REALTIME, &b);
    CHECK ((uint64_t) ts_ns (a) / 1000 <= w && w <= (uint64_t) ts_ns (b) / 1000);
  }
  {
    /* The other clock is the one asked for. */
    struct timespec now, d = deadline_after_ms (CLOCK_REALTIME, 1000);
    clock_gettime (CLOCK_REALTIME, &now);
    CHECK (ts_ns (d) > ts_ns (now) && ts_ns (d) <= ts_ns (now) + 1000000000);
  }

  return unit_result ("test-common-clock");
}
