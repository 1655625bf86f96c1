/*
 * log.c - one-line log formatting and the stderr/file sink.
 */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "scl/log.h"

#define LINE_BYTES 1024

static const char *const level_names[] = { "ERR", "WARN", "INFO", "DEBUG" };

const char *
scl_log_level_name(enum scl_log_level level)
{
	if ((unsigned)level > SCL_LOG_DEBUG)
		return "?";
	return level_names[level];
}

void
scl_log(const struct scl_logger *lg, enum scl_log_level level,
    const char *module, const char *fmt, ...)
{
	char line[LINE_BYTES];
	va_list ap;

	if (lg == NULL || lg->fn == NULL || level > lg->max)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	lg->fn(lg->arg, level, module, line);
}

void
scl_log_to_file(void *arg, enum scl_log_level level, const char *module,
    const char *line)
{
	FILE *f = arg ? arg : stderr;
	char stamp[32];
	char out[LINE_BYTES + 96];
	struct timespec ts;
	struct tm tm;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(out, sizeof(out), "%s.%03ldZ %s %s: %s\n", stamp,
	    ts.tv_nsec / 1000000, scl_log_level_name(level), module, line);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(out))
		n = sizeof(out) - 1;
	/* One write per line so lines from several threads never interleave. */
	fflush(f);
	if (write(fileno(f), out, (size_t)n) < 0)
		return;
}
