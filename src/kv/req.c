/*
 * req.c - KVS requests and their results (docs/PROTOCOL.md "KVS
 * requests"): the encoding of both, and running a list of requests on a
 * replica.  The replica's side trusts nothing it decodes; a client's side
 * trusts nothing it reads back.
 *
 * A list runs whole or not at all: the core checks it first
 * (scl_kvreq_check), so one malformed or oversized request refuses its
 * list before any of it is applied.
 */
#include <string.h>

#include "kv_int.h"
#include "scl/codec.h"

/* Requests are decoded this far ahead of the one that runs, so that
 * each key's index slot and entry are loading meanwhile (scl_kv_prefetch):
 * with 100k keys and ten processes on two CPUs, nearly every lookup
 * missed the cache, one after the other. */
#define RUN_AHEAD 16

/* A refused write's reason is cut to this (the result's blob16). */
#define REASON_MAX 1024

bool
scl_kvreq_writes(const struct scl_kvreq *r)
{
	return r->op == SCL_KVREQ_PUT || r->op == SCL_KVREQ_DELETE;
}

static bool
has_key(const struct scl_kvreq *r)
{
	return r->op == SCL_KVREQ_GET || r->op == SCL_KVREQ_PUT ||
	    r->op == SCL_KVREQ_DELETE;
}

enum scl_err
scl_kvreq_encode(struct scl_buf *ops, const struct scl_kvreq *r)
{
	struct scl_enc e;

	if (r->key.len > UINT16_MAX || r->prefix.len > UINT16_MAX ||
	    r->start.len > UINT16_MAX || r->end.len > UINT16_MAX)
		return scl_err_set(SCL_ELIMIT, "a key of more than %u bytes "
		    "cannot be sent", UINT16_MAX);
	if (r->value.len > UINT32_MAX)
		return scl_err_set(SCL_ELIMIT, "a value of %zu bytes cannot be "
		    "sent", r->value.len);
	scl_enc_init(&e, ops);
	scl_enc_u8(&e, (uint8_t)r->op);
	switch (r->op) {
	case SCL_KVREQ_GET:
	case SCL_KVREQ_DELETE:
		scl_enc_blob16(&e, r->key.ptr, r->key.len);
		break;
	case SCL_KVREQ_PUT:
		scl_enc_blob16(&e, r->key.ptr, r->key.len);
		scl_enc_blob32(&e, r->value.ptr, r->value.len);
		break;
	case SCL_KVREQ_SCAN:
		scl_enc_blob16(&e, r->prefix.ptr, r->prefix.len);
		scl_enc_blob16(&e, r->start.ptr, r->start.len);
		scl_enc_blob16(&e, r->end.ptr, r->end.len);
		scl_enc_u32(&e, r->limit);
		break;
	case SCL_KVREQ_FLUSH:
		break;
	default:
		return scl_err_set(SCL_EINVAL, "KVS request 0x%02x", r->op);
	}
	return e.err;
}

enum scl_err
scl_kvreq_decode(struct scl_dec *d, struct scl_kvreq *out)
{
	uint8_t op = scl_dec_u8(d, "operation");

	memset(out, 0, sizeof(*out));
	switch (op) {
	case SCL_KVREQ_GET:
	case SCL_KVREQ_DELETE:
		out->key = scl_dec_blob16(d, SCL_KV_KEY_MAX, "key");
		break;
	case SCL_KVREQ_PUT:
		out->key = scl_dec_blob16(d, SCL_KV_KEY_MAX, "key");
		out->value = scl_dec_blob32(d, SCL_KV_VALUE_MAX, "value");
		break;
	case SCL_KVREQ_SCAN:
		out->prefix = scl_dec_blob16(d, SCL_KV_KEY_MAX, "prefix");
		out->start = scl_dec_blob16(d, SCL_KV_KEY_MAX, "start");
		out->end = scl_dec_blob16(d, SCL_KV_KEY_MAX, "end");
		out->limit = scl_dec_u32(d, "limit");
		break;
	case SCL_KVREQ_FLUSH:
		break;
	default:
		if (scl_dec_ok(d))
			return scl_dec_fail(d, SCL_EFORMAT, "unknown operation "
			    "0x%02x", op);
	}
	out->op = op;
	return scl_dec_ok(d) ? SCL_OK : d->err;
}

enum scl_err
scl_kvreq_check(struct scl_slice ops, uint32_t n, bool *writes)
{
	struct scl_kvreq r;
	struct scl_dec d;
	bool w = false;

	scl_dec_init(&d, ops, "KVS requests");
	for (uint32_t i = 0; i < n; i++) {
		if (scl_kvreq_decode(&d, &r) != SCL_OK)
			return scl_err_wrap(d.err, "request %u of %u: ", i + 1,
			    n);
		w = w || scl_kvreq_writes(&r);
	}
	if (writes)
		*writes = w;
	return scl_dec_finish(&d);
}

/* --- running ------------------------------------------------------------ */

static bool
scan_out(void *ctx, struct scl_slice key, struct scl_slice value,
    const struct scl_kv_version *ver)
{
	struct scl_enc *e = ctx;

	(void)ver;
	scl_enc_blob16(e, key.ptr, key.len);
	scl_enc_blob32(e, value.ptr, value.len);
	return e->err == SCL_OK;
}

static bool
scan_count(void *ctx, struct scl_slice key, struct scl_slice value,
    const struct scl_kv_version *ver)
{
	(void)ctx, (void)key, (void)value, (void)ver;
	return true;
}

static void
write_result(struct scl_enc *e, enum scl_err err)
{
	const char *why;
	size_t len;

	scl_enc_u8(e, (uint8_t)err);
	if (err == SCL_OK)
		return;
	why = scl_err_last();
	len = strlen(why);
	scl_enc_blob16(e, why, len > REASON_MAX ? REASON_MAX : len);
	scl_err_clear();
}

/* Runs one request, appending its result to @e (NULL: none kept). */
static void
run_one(struct scl_kv *kv, const struct scl_kvreq *r, uint64_t now,
    struct scl_enc *e)
{
	struct scl_slice v;
	struct scl_kv_version ver;
	enum scl_err err;
	uint64_t through;

	switch (r->op) {
	case SCL_KVREQ_GET:
		err = scl_kv_get(kv, r->key, &v, &ver);
		if (e == NULL) {
			scl_err_clear();
		} else if (err == SCL_OK) {
			scl_enc_u8(e, 1);
			scl_enc_u64(e, ver.lamport);
			scl_enc_bytes(e, ver.writer, SCL_WRITER_BYTES);
			scl_enc_blob32(e, v.ptr, v.len);
		} else {
			scl_enc_u8(e, 0);
		}
		return;
	case SCL_KVREQ_PUT:
	case SCL_KVREQ_DELETE:
		err = r->op == SCL_KVREQ_PUT
		    ? scl_kv_put(kv, r->key, r->value, now)
		    : scl_kv_delete(kv, r->key, now);
		if (e)
			write_result(e, err);
		else
			scl_err_clear();
		return;
	case SCL_KVREQ_SCAN: {
		size_t at, n;
		if (e == NULL) {
			(void)scl_kv_scan(kv, r->prefix, r->start, r->end,
			    r->limit, scan_count, NULL);
			return;
		}
		at = e->buf->len;
		scl_enc_u32(e, 0);
		n = scl_kv_scan(kv, r->prefix, r->start, r->end, r->limit,
		    scan_out, e);
		if (e->err == SCL_OK)
			scl_le32_store(e->buf->ptr + at, (uint32_t)n);
		return;
	}
	case SCL_KVREQ_FLUSH:
		if (scl_kv_flush(kv, &through) != SCL_OK) {
			scl_err_clear();
			through = 0;
		}
		if (e)
			scl_enc_u64(e, through);
		return;
	}
}

enum scl_err
scl_kv_run(struct scl_kv *kv, struct scl_slice ops, uint32_t n,
    uint64_t now_us, struct scl_buf *results)
{
	struct scl_kvreq q[RUN_AHEAD];
	struct scl_enc enc, *e = NULL;
	struct scl_dec d;
	uint32_t r = 0, w = 0; /* q[r..w) are decoded, modulo RUN_AHEAD */

	if (results) {
		scl_enc_init(&enc, results);
		e = &enc;
	}
	scl_dec_init(&d, ops, "KVS requests");
	while (r < n && (e == NULL || e->err == SCL_OK)) {
		struct scl_kvreq *p = &q[w % RUN_AHEAD];
		if (w == n || w - r == RUN_AHEAD) {
			run_one(kv, &q[r++ % RUN_AHEAD], now_us, e);
			continue;
		}
		/* Checked whole before (scl_kvreq_check): this cannot fail. */
		if (scl_kvreq_decode(&d, p) != SCL_OK)
			return scl_err_wrap(d.err, "a checked request list: ");
		if (has_key(p))
			scl_kv_prefetch(kv, p->key, 0);
		if (w - r >= RUN_AHEAD / 2 &&
		    has_key(&q[(w - RUN_AHEAD / 2) % RUN_AHEAD]))
			scl_kv_prefetch(kv, q[(w - RUN_AHEAD / 2) % RUN_AHEAD].key,
			    1);
		w++;
	}
	return e ? e->err : SCL_OK;
}

/* --- results, on the client's side ----------------------------------------- */

enum scl_err
scl_kvres_decode(struct scl_dec *d, enum scl_kvreq_op op, struct scl_kvres *out)
{
	memset(out, 0, sizeof(*out));
	switch (op) {
	case SCL_KVREQ_GET:
		out->ok = scl_dec_u8(d, "found") == 1;
		if (out->ok) {
			out->version.lamport = scl_dec_u64(d, "Lamport time");
			scl_dec_copy(d, out->version.writer, SCL_WRITER_BYTES,
			    "writer");
			out->value = scl_dec_blob32(d, SCL_KV_VALUE_MAX,
			    "value");
		}
		break;
	case SCL_KVREQ_PUT:
	case SCL_KVREQ_DELETE: {
		uint8_t status = scl_dec_u8(d, "status");
		out->ok = status == SCL_OK;
		if (!out->ok && scl_dec_ok(d)) {
			out->err = status < SCL_ERR_COUNT_ ? (enum scl_err)status
							   : SCL_EFORMAT;
			out->error = scl_dec_blob16(d, REASON_MAX, "reason");
		}
		break;
	}
	case SCL_KVREQ_SCAN: {
		const uint8_t *start;
		out->n = scl_dec_u32(d, "entries");
		start = d->ptr + d->pos;
		for (uint32_t i = 0; i < out->n && scl_dec_ok(d); i++) {
			(void)scl_dec_blob16(d, SCL_KV_KEY_MAX, "key");
			(void)scl_dec_blob32(d, SCL_KV_VALUE_MAX, "value");
		}
		if (scl_dec_ok(d))
			out->entries = scl_slice_of(start,
			    (size_t)(d->ptr + d->pos - start));
		out->ok = true;
		break;
	}
	case SCL_KVREQ_FLUSH:
		out->through = scl_dec_u64(d, "through");
		out->ok = true;
		break;
	default:
		return scl_err_set(SCL_EINVAL, "KVS request 0x%02x", op);
	}
	return scl_dec_ok(d) ? SCL_OK : d->err;
}

bool
scl_kvres_scan_next(struct scl_slice *entries, struct scl_slice *key,
    struct scl_slice *value)
{
	struct scl_dec d;

	if (entries->len == 0)
		return false;
	scl_dec_init(&d, *entries, "scan entry");
	*key = scl_dec_blob16(&d, SCL_KV_KEY_MAX, "key");
	*value = scl_dec_blob32(&d, SCL_KV_VALUE_MAX, "value");
	if (!scl_dec_ok(&d))
		return false;
	entries->ptr += d.pos;
	entries->len -= d.pos;
	return true;
}
