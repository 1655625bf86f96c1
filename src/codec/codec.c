/*
 * codec.c - the sticky little-endian encoder and bounds-checked decoder.
 *
 * Invariant of struct scl_dec: pos <= len always; once err != SCL_OK no
 * read moves pos and every read returns zero/NULL.
 */
#include <stdarg.h>
#include <stdio.h>

#include "scl/codec.h"

static void
enc_put(struct scl_enc *e, const void *p, size_t n)
{
	if (e->err != SCL_OK)
		return;
	e->err = scl_buf_append(e->buf, p, n);
}

void
scl_enc_u8(struct scl_enc *e, uint8_t v)
{
	enc_put(e, &v, 1);
}

void
scl_enc_u16(struct scl_enc *e, uint16_t v)
{
	uint8_t b[2];
	scl_le16_store(b, v);
	enc_put(e, b, 2);
}

void
scl_enc_u32(struct scl_enc *e, uint32_t v)
{
	uint8_t b[4];
	scl_le32_store(b, v);
	enc_put(e, b, 4);
}

void
scl_enc_u64(struct scl_enc *e, uint64_t v)
{
	uint8_t b[8];
	scl_le64_store(b, v);
	enc_put(e, b, 8);
}

void
scl_enc_bytes(struct scl_enc *e, const void *p, size_t n)
{
	enc_put(e, p, n);
}

void
scl_enc_blob16(struct scl_enc *e, const void *p, size_t n)
{
	if (e->err == SCL_OK && n > UINT16_MAX) {
		e->err = scl_err_set(SCL_ELIMIT,
		    "field of %zu bytes exceeds the 65535-byte limit", n);
		return;
	}
	scl_enc_u16(e, (uint16_t)n);
	enc_put(e, p, n);
}

void
scl_enc_blob32(struct scl_enc *e, const void *p, size_t n)
{
	if (e->err == SCL_OK && n > UINT32_MAX) {
		e->err = scl_err_set(SCL_ELIMIT,
		    "field of %zu bytes exceeds the 4 GiB limit", n);
		return;
	}
	scl_enc_u32(e, (uint32_t)n);
	enc_put(e, p, n);
}

void
scl_dec_init(struct scl_dec *d, struct scl_slice in, const char *what)
{
	d->ptr = in.ptr;
	d->len = in.ptr ? in.len : 0;
	d->pos = 0;
	d->what = what;
	d->err = SCL_OK;
}

enum scl_err
scl_dec_fail(struct scl_dec *d, enum scl_err err, const char *fmt, ...)
{
	char detail[512];
	va_list ap;

	if (d->err != SCL_OK)
		return d->err;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	d->err = scl_err_set(err, "%s: %s", d->what, detail);
	return d->err;
}

static const uint8_t *
dec_take(struct scl_dec *d, size_t n, const char *field)
{
	const uint8_t *p;

	if (d->err != SCL_OK)
		return NULL;
	if (n > d->len - d->pos) {
		scl_dec_fail(d, SCL_EFORMAT,
		    "truncated at %s (offset %zu needs %zu bytes, %zu left)",
		    field, d->pos, n, d->len - d->pos);
		return NULL;
	}
	p = d->ptr + d->pos;
	d->pos += n;
	return p;
}

uint8_t
scl_dec_u8(struct scl_dec *d, const char *field)
{
	const uint8_t *p = dec_take(d, 1, field);
	return p ? p[0] : 0;
}

uint16_t
scl_dec_u16(struct scl_dec *d, const char *field)
{
	const uint8_t *p = dec_take(d, 2, field);
	return p ? scl_le16_load(p) : 0;
}

uint32_t
scl_dec_u32(struct scl_dec *d, const char *field)
{
	const uint8_t *p = dec_take(d, 4, field);
	return p ? scl_le32_load(p) : 0;
}

uint64_t
scl_dec_u64(struct scl_dec *d, const char *field)
{
	const uint8_t *p = dec_take(d, 8, field);
	return p ? scl_le64_load(p) : 0;
}

const uint8_t *
scl_dec_bytes(struct scl_dec *d, size_t n, const char *field)
{
	return dec_take(d, n, field);
}

void
scl_dec_copy(struct scl_dec *d, void *out, size_t n, const char *field)
{
	const uint8_t *p = dec_take(d, n, field);

	if (p)
		memcpy(out, p, n);
	else
		memset(out, 0, n);
}

static struct scl_slice
dec_blob(struct scl_dec *d, size_t n, size_t max, const char *field)
{
	struct scl_slice s = { NULL, 0 };
	const uint8_t *p;

	if (d->err != SCL_OK)
		return s;
	if (n > max) {
		scl_dec_fail(d, SCL_ELIMIT,
		    "%s length %zu exceeds the limit of %zu", field, n, max);
		return s;
	}
	p = dec_take(d, n, field);
	if (p) {
		s.ptr = p;
		s.len = n;
	}
	return s;
}

struct scl_slice
scl_dec_blob16(struct scl_dec *d, size_t max, const char *field)
{
	size_t n = scl_dec_u16(d, field);
	return dec_blob(d, n, max, field);
}

struct scl_slice
scl_dec_blob32(struct scl_dec *d, size_t max, const char *field)
{
	size_t n = scl_dec_u32(d, field);
	return dec_blob(d, n, max, field);
}

void
scl_dec_magic(struct scl_dec *d, const char magic[4])
{
	const uint8_t *p = scl_dec_bytes(d, 4, "magic");

	if (p && memcmp(p, magic, 4) != 0)
		scl_dec_fail(d, SCL_EFORMAT, "bad magic (not a %.4s)", magic);
}

void
scl_dec_version(struct scl_dec *d, uint16_t want)
{
	uint16_t v = scl_dec_u16(d, "version");

	if (scl_dec_ok(d) && v != want)
		scl_dec_fail(d, SCL_EVERSION,
		    "version %u; this build reads version %u", v, want);
}

void
scl_dec_zero16(struct scl_dec *d, const char *field)
{
	uint16_t v = scl_dec_u16(d, field);

	if (scl_dec_ok(d) && v != 0)
		scl_dec_fail(d, SCL_EFORMAT, "%s is 0x%x, must be 0", field, v);
}

size_t
scl_dec_remaining(const struct scl_dec *d)
{
	return d->err == SCL_OK ? d->len - d->pos : 0;
}

enum scl_err
scl_dec_finish(struct scl_dec *d)
{
	if (d->err != SCL_OK)
		return d->err;
	if (d->pos != d->len)
		return scl_dec_fail(d, SCL_EFORMAT,
		    "%zu unexpected trailing bytes after offset %zu",
		    d->len - d->pos, d->pos);
	return SCL_OK;
}
