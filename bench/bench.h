/*
 * bench.h - what the benchmarks (scl bench ...) share: a monotonic
 * clock, percentiles, loopback ports, and child processes of this very
 * binary (servers, routers, workers) started and stopped.
 */
#ifndef SCL_BENCH_H
#define SCL_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "cli.h"

/* `bench kv --ratio-pairs` at most. */
#define BENCH_KV_RATIO_PAIRS_MAX 9

/** Seconds on the monotonic clock. */
double bench_now(void);

/** qsort comparator for doubles. */
int bench_cmp_double(const void *a, const void *b);

/** The @q quantile (0..1) of @v (sorted here, in place). */
double bench_quantile(double *v, size_t n, double q);

/** A port the kernel just handed out for loopback TCP, or -1. */
int bench_free_port(void);

/**
 * Runs this binary with @argv (argv[0] is ignored) in the background,
 * stdout and stderr appended to @log (NULL: /dev/null).  Returns the pid,
 * or -1.
 */
pid_t bench_spawn(char *const argv[], const char *log);

/** Runs this binary with @argv and waits; its stdout's last line goes
 * into @out (may be NULL).  True if it exited 0. */
bool bench_run(char *const argv[], char *out, size_t cap);

/** Waits up to @secs for @path to be non-empty, or (if @needle) to
 * contain @needle. */
bool bench_wait_file(const char *path, const char *needle, double secs);

/** CPU seconds (user + system) @pid has used so far, or -1. */
double bench_cpu_secs(pid_t pid);

/** Same, for @pid and its live children (a worker and its core), or -1. */
double bench_cpu_secs_tree(pid_t pid);

/** SIGTERM, then waits (SIGKILL after 5 s). */
void bench_stop(pid_t pid);

#endif
