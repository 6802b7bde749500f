/* The monotonic clock, in the units the code counts in, and deadlines
 * for pthread_cond_timedwait.
 */

#ifndef NBDSHADOW_CLOCK_H
#define NBDSHADOW_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC: never jumps with the wall clock. */
extern uint64_t time_ns (void);
extern uint64_t time_us (void);
/* CLOCK_REALTIME, microseconds since the epoch: for timestamps other
 * programs read (a recorded trace, the metadata store).
 */
extern uint64_t wall_us (void);

/* clock's time now plus ms milliseconds, normalised (tv_nsec below one
 * second), for a timed wait on a condition variable using that clock.
 */
extern struct timespec deadline_after_ms (clockid_t clock, unsigned ms);

#endif /* NBDSHADOW_CLOCK_H */
