/*
 * clock.h - the clocks libscl reads, in one place.
 *
 * Wall time (CLOCK_REALTIME) is what records, heartbeats and logs carry;
 * it may jump.  Monotonic time (CLOCK_MONOTONIC) is for deadlines,
 * timeouts and durations.  Both come from the vDSO: no system call, so
 * a trusted core under seccomp may read them.
 */
#ifndef SCL_CLOCK_H
#define SCL_CLOCK_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Microseconds since the Unix epoch. */
uint64_t scl_clock_wall_us(void);
/** Nanoseconds on the monotonic clock. */
uint64_t scl_clock_mono_ns(void);

static inline uint64_t
scl_clock_mono_us(void)
{
	return scl_clock_mono_ns() / 1000u;
}

static inline uint64_t
scl_clock_mono_ms(void)
{
	return scl_clock_mono_ns() / 1000000u;
}

#ifdef __cplusplus
}
#endif
#endif
