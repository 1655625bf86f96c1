/*
 * log.h - leveled, one-line logging to a caller-chosen sink.
 *
 * libscl never prints: components that log take a struct scl_logger from
 * their owner.  A line reads `module: message key=value`; hashes appear
 * as 8 hex digits; keys and plaintext never appear.
 */
#ifndef SCL_LOG_H
#define SCL_LOG_H

#include "scl/err.h"

#ifdef __cplusplus
extern "C" {
#endif

enum scl_log_level {
	SCL_LOG_ERR = 0,
	SCL_LOG_WARN,
	SCL_LOG_INFO,
	SCL_LOG_DEBUG,
};

typedef void (*scl_log_fn)(void *arg, enum scl_log_level level,
    const char *module, const char *line);

struct scl_logger {
	scl_log_fn fn;		/* NULL: discard everything */
	void *arg;		/* passed to fn */
	enum scl_log_level max;	/* lines above this level are dropped */
};

/** Formats and delivers one line; @lg may be NULL (discard). */
void scl_log(const struct scl_logger *lg, enum scl_log_level level,
    const char *module, const char *fmt, ...) SCL_PRINTF(4, 5);

/**
 * A ready sink: writes "2026-11-26T13:40:01.123Z INFO module: line" to the
 * FILE * in @arg (stderr when NULL), one write per line.
 */
void scl_log_to_file(void *arg, enum scl_log_level level, const char *module,
    const char *line);

/** "ERR", "WARN", "INFO", "DEBUG". */
const char *scl_log_level_name(enum scl_log_level level);

#ifdef __cplusplus
}
#endif
#endif
