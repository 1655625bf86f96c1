/*
 * err.c - error codes, names, and the per-thread message.
 *
 * The message buffer is the one piece of thread-wide state in libscl
 * (STYLE §7): a _Thread_local array, so no locking and no allocation on the
 * error path.  Messages longer than the buffer are truncated, never
 * overflowed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scl/err.h"

#define MSG_BYTES 1024

static _Thread_local char msg[MSG_BYTES];
static _Thread_local enum scl_err msg_code;

/* The codes are wire values (err.h): these are what PROTOCOL.md says. */
_Static_assert(SCL_EVERIFY == 4 && SCL_EFORMAT == 5 && SCL_ELIMIT == 14 &&
	SCL_ERR_COUNT_ == 15, "error codes are on the wire: append only");

static const struct {
	const char *name;
	const char *text;
} codes[SCL_ERR_COUNT_] = {
	[SCL_OK] = { "OK", "success" },
	[SCL_EINVAL] = { "EINVAL", "invalid argument" },
	[SCL_ENOTFOUND] = { "ENOTFOUND", "not found" },
	[SCL_EEXIST] = { "EEXIST", "already exists" },
	[SCL_EVERIFY] = { "EVERIFY", "verification failed" },
	[SCL_EFORMAT] = { "EFORMAT", "malformed data" },
	[SCL_EVERSION] = { "EVERSION", "unsupported version" },
	[SCL_ENOMEM] = { "ENOMEM", "out of memory" },
	[SCL_EIO] = { "EIO", "input/output error" },
	[SCL_ETIMEOUT] = { "ETIMEOUT", "timed out" },
	[SCL_ECRYPTO] = { "ECRYPTO", "crypto library failure" },
	[SCL_EFULL] = { "EFULL", "full" },
	[SCL_ECLOSED] = { "ECLOSED", "closed" },
	[SCL_ECONFLICT] = { "ECONFLICT", "conflicting concurrent change" },
	[SCL_ELIMIT] = { "ELIMIT", "size limit exceeded" },
};

const char *
scl_strerror(enum scl_err err)
{
	if ((unsigned)err >= SCL_ERR_COUNT_)
		return "unknown error";
	return codes[err].text;
}

const char *
scl_err_name(enum scl_err err)
{
	if ((unsigned)err >= SCL_ERR_COUNT_)
		return "EUNKNOWN";
	return codes[err].name;
}

enum scl_err
scl_err_set(enum scl_err err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	msg_code = err;
	return err;
}

enum scl_err
scl_err_wrap(enum scl_err err, const char *fmt, ...)
{
	char old[MSG_BYTES];
	size_t n, m;
	va_list ap;

	/* Copy first: the prefix is formatted into msg itself.  Both parts
	 * are truncated to fit; a cut message beats an overflow. */
	memcpy(old, scl_err_last(), strnlen(scl_err_last(), MSG_BYTES - 1));
	old[strnlen(scl_err_last(), MSG_BYTES - 1)] = '\0';
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n = strlen(msg);
	m = strlen(old);
	if (m > sizeof(msg) - 1 - n)
		m = sizeof(msg) - 1 - n;
	memcpy(msg + n, old, m);
	msg[n + m] = '\0';
	msg_code = err;
	return err;
}

const char *
scl_err_last(void)
{
	if (msg[0] == '\0')
		return scl_strerror(msg_code);
	return msg;
}

void
scl_err_clear(void)
{
	msg[0] = '\0';
	msg_code = SCL_OK;
}

void
scl_panic(const char *file, int line, const char *what)
{
	fprintf(stderr, "scl: internal error at %s:%d: %s\n", file, line,
	    what);
	abort();
}
