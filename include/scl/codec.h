/*
 * codec.h - fixed-layout little-endian encoding and bounds-checked decoding.
 *
 * Every format in docs/FORMAT.md and docs/PROTOCOL.md is built from these
 * pieces.  Encoding appends to a struct scl_buf; decoding reads from a
 * borrowed slice through a cursor that checks every read against the end.
 *
 * Both sides are "sticky": after the first failure every further call is a
 * no-op returning zero/NULL, and the first failure is the one reported.  A
 * decoder therefore reads all its fields and checks once, without a branch
 * per field, and can never read out of bounds.
 */
#ifndef SCL_CODEC_H
#define SCL_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "scl/buf.h"
#include "scl/err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Raw little-endian helpers over byte pointers (no alignment needed). */
static inline void
scl_le16_store(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void
scl_le32_store(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void
scl_le64_store(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t
scl_le16_load(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t
scl_le32_load(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static inline uint64_t
scl_le64_load(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Big-endian u64, used only inside LMDB keys so that byte order sorts by
 * number; never on the wire. */
static inline void
scl_be64_store(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static inline uint64_t
scl_be64_load(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/** Encoder: appends to a caller-owned buffer. */
struct scl_enc {
	struct scl_buf *buf;	/* borrowed: the output */
	enum scl_err err;	/* first failure (SCL_ENOMEM/SCL_ELIMIT) */
};

static inline void
scl_enc_init(struct scl_enc *e, struct scl_buf *buf)
{
	e->buf = buf;
	e->err = SCL_OK;
}

void scl_enc_u8(struct scl_enc *e, uint8_t v);
void scl_enc_u16(struct scl_enc *e, uint16_t v);
void scl_enc_u32(struct scl_enc *e, uint32_t v);
void scl_enc_u64(struct scl_enc *e, uint64_t v);
void scl_enc_bytes(struct scl_enc *e, const void *p, size_t n);
/** u16 length, then the bytes; SCL_ELIMIT when @n > 65535. */
void scl_enc_blob16(struct scl_enc *e, const void *p, size_t n);
/** u32 length, then the bytes. */
void scl_enc_blob32(struct scl_enc *e, const void *p, size_t n);

/** Decoder cursor over borrowed bytes. */
struct scl_dec {
	const uint8_t *ptr;	/* borrowed: the input */
	size_t len;
	size_t pos;
	const char *what;	/* what is being decoded, for messages */
	enum scl_err err;	/* first failure; message set at that time */
};

/** Starts decoding @in; @what names the structure ("record header"). */
void scl_dec_init(struct scl_dec *d, struct scl_slice in, const char *what);

uint8_t scl_dec_u8(struct scl_dec *d, const char *field);
uint16_t scl_dec_u16(struct scl_dec *d, const char *field);
uint32_t scl_dec_u32(struct scl_dec *d, const char *field);
uint64_t scl_dec_u64(struct scl_dec *d, const char *field);

/** Borrows @n bytes; NULL on failure.  Valid as long as the input. */
const uint8_t *scl_dec_bytes(struct scl_dec *d, size_t n, const char *field);

/** Copies @n bytes into @out (zeroed on failure). */
void scl_dec_copy(struct scl_dec *d, void *out, size_t n, const char *field);

/** A u16-prefixed blob of at most @max bytes, borrowed. */
struct scl_slice scl_dec_blob16(struct scl_dec *d, size_t max,
    const char *field);

/** A u32-prefixed blob of at most @max bytes, borrowed. */
struct scl_slice scl_dec_blob32(struct scl_dec *d, size_t max,
    const char *field);

/** Expects the 4-byte magic @magic; "bad magic" otherwise. */
void scl_dec_magic(struct scl_dec *d, const char magic[4]);

/** Reads a u16 version that must equal @want; SCL_EVERSION otherwise. */
void scl_dec_version(struct scl_dec *d, uint16_t want);

/** Reads a u16 that must be zero (reserved fields, unused flags). */
void scl_dec_zero16(struct scl_dec *d, const char *field);

/** Bytes left to read (0 after a failure). */
size_t scl_dec_remaining(const struct scl_dec *d);

/**
 * Marks the decode failed with a message, unless it already failed; the
 * message is prefixed with the structure's name.  Returns the error.
 */
enum scl_err scl_dec_fail(struct scl_dec *d, enum scl_err err,
    const char *fmt, ...) SCL_PRINTF(3, 4);

/** Requires the input to be fully consumed; returns the first failure. */
SCL_NODISCARD enum scl_err scl_dec_finish(struct scl_dec *d);

static inline bool
scl_dec_ok(const struct scl_dec *d)
{
	return d->err == SCL_OK;
}

#ifdef __cplusplus
}
#endif
#endif
