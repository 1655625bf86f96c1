/*
 * buf.h - byte slices (borrowed) and growable buffers (owned), hex text.
 *
 * Binary data never travels as NUL-terminated strings: a struct scl_slice
 * borrows bytes someone else owns, a struct scl_buf owns its bytes.
 */
#ifndef SCL_BUF_H
#define SCL_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scl/err.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Borrowed bytes: valid as long as whatever they point into. */
struct scl_slice {
	const uint8_t *ptr;
	size_t len;
};

/** Owned, growable bytes; dispose with scl_buf_dispose(). */
struct scl_buf {
	uint8_t *ptr;
	size_t len;
	size_t cap;
};

static inline struct scl_slice
scl_slice_of(const void *ptr, size_t len)
{
	struct scl_slice s = { (const uint8_t *)ptr, len };
	return s;
}

static inline struct scl_slice
scl_buf_slice(const struct scl_buf *b)
{
	return scl_slice_of(b->ptr, b->len);
}

/** Makes @b empty without allocating. */
void scl_buf_init(struct scl_buf *b);

/** Frees @b's bytes and makes it empty; safe on an empty buffer. */
void scl_buf_dispose(struct scl_buf *b);

/** Like scl_buf_dispose() but wipes the bytes first (for secrets). */
void scl_buf_dispose_secret(struct scl_buf *b);

/** Wipes the bytes in use and makes @b empty, keeping its allocation:
 * a scratch buffer that held secrets, reused. */
void scl_buf_wipe(struct scl_buf *b);

/** Ensures room for @extra more bytes.  SCL_ENOMEM or SCL_ELIMIT. */
enum scl_err scl_buf_reserve(struct scl_buf *b, size_t extra);

/** Appends @len bytes (copied). */
enum scl_err scl_buf_append(struct scl_buf *b, const void *ptr, size_t len);

/** Sets the length to @len, growing if needed; new bytes are zero. */
enum scl_err scl_buf_resize(struct scl_buf *b, size_t len);

/** Replaces the contents with a copy of @s. */
enum scl_err scl_buf_set(struct scl_buf *b, struct scl_slice s);

/** Length becomes 0; the allocation is kept. */
static inline void
scl_buf_clear(struct scl_buf *b)
{
	b->len = 0;
}

/**
 * Writes @len bytes as lowercase hex plus a NUL into @out, which must hold
 * 2 * @len + 1 characters.  Returns @out.
 */
char *scl_hex_encode(char *out, const uint8_t *in, size_t len);

/**
 * Parses exactly 2 * @len hex digits from @hex into @out.  SCL_EFORMAT
 * naming the offending character otherwise.
 */
SCL_NODISCARD enum scl_err scl_hex_decode(uint8_t *out, size_t len,
    const char *hex);

/** Short form of a hash for logs: the first 4 bytes as 8 hex digits. */
char *scl_hex_short(char out[9], const uint8_t *in);

#ifdef __cplusplus
}
#endif
#endif
