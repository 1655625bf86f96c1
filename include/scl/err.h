/*
 * err.h - error codes and the per-thread error message.
 *
 * Every fallible call in libscl returns an enum scl_err; SCL_OK is 0.  The
 * code is what callers branch on; the detail ("record 12: bad signature")
 * goes into a per-thread message read with scl_err_last().  Work done on
 * another thread returns its code in its completion and copies its message.
 *
 * Messages never contain key material or plaintext.
 */
#ifndef SCL_ERR_H
#define SCL_ERR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The values travel in a worker's replies (docs/PROTOCOL.md "Error
 * codes"): a new code goes at the end, and none is ever renumbered. */
enum scl_err {
	SCL_OK = 0,
	SCL_EINVAL,	/* bad argument or option supplied by the caller */
	SCL_ENOTFOUND,	/* capsule, record, key or file does not exist */
	SCL_EEXIST,	/* would overwrite something that exists */
	SCL_EVERIFY,	/* signature, MAC, hash chain or certificate failed */
	SCL_EFORMAT,	/* malformed or truncated encoding */
	SCL_EVERSION,	/* well-formed, but a version we do not speak */
	SCL_ENOMEM,	/* allocation failed */
	SCL_EIO,	/* file system, LMDB or socket failure */
	SCL_ETIMEOUT,	/* no answer in time */
	SCL_ECRYPTO,	/* the crypto library itself failed */
	SCL_EFULL,	/* a bounded queue, ring or map is full */
	SCL_ECLOSED,	/* the other end went away */
	SCL_ECONFLICT,	/* concurrent change: head moved, seqno taken */
	SCL_ELIMIT,	/* input exceeds a documented size limit */
	SCL_ERR_COUNT_	/* not an error: number of codes */
};

#if defined(__GNUC__) || defined(__clang__)
#define SCL_NODISCARD __attribute__((warn_unused_result))
#define SCL_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define SCL_NORETURN __attribute__((noreturn))
#else
#define SCL_NODISCARD
#define SCL_PRINTF(f, a)
#define SCL_NORETURN
#endif

/** Short static description of a code, e.g. "verification failed". */
const char *scl_strerror(enum scl_err err);

/** Stable identifier of a code, e.g. "EVERIFY" (for logs and wire). */
const char *scl_err_name(enum scl_err err);

/**
 * Records a message for this thread and returns @err, so that a failing
 * path reads `return scl_err_set(SCL_EFORMAT, "record %u: ...", i);`.
 */
enum scl_err scl_err_set(enum scl_err err, const char *fmt, ...) SCL_PRINTF(2, 3);

/**
 * Prepends context to the current message ("capsule 3fa2c1d0: " + old) and
 * returns @err.  Used where a lower layer's message needs to say where.
 */
enum scl_err scl_err_wrap(enum scl_err err, const char *fmt, ...) SCL_PRINTF(2, 3);

/**
 * The message of this thread's last error; never NULL.  Borrowed: valid
 * until the next libscl call on this thread.
 */
const char *scl_err_last(void);

/** Forgets this thread's message; call when an error is swallowed. */
void scl_err_clear(void);

/** Aborts with file:line; for programming errors only, never for input. */
SCL_NORETURN void scl_panic(const char *file, int line, const char *what);

#define SCL_ASSERT(cond)                                                      \
	do {                                                                  \
		if (!(cond))                                                  \
			scl_panic(__FILE__, __LINE__, #cond);                 \
	} while (0)

#ifdef __cplusplus
}
#endif
#endif
