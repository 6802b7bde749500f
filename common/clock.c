/* The monotonic clock and deadlines (see clock.h). */

#include "clock.h"

uint64_t
time_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

uint64_t
time_us (void)
{
  return time_ns () / 1000;
}

uint64_t
wall_us (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  return (uint64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct timespec
deadline_after_ms (clockid_t clock, unsigned ms)
{
  struct timespec ts;

  clock_gettime (clock, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (long) (ms % 1000) * 1000000;
  if (ts.tv_nsec >= 1000000000) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000;
  }
  return ts;
}
