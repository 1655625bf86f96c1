/*
 * kvreq.c - KVS requests and results, and the frames a worker's clients
 * exchange with it (docs/PROTOCOL.md "KVS requests").  The core decodes
 * requests; clients decode results; both distrust what they read.
 */
#include <string.h>

#include "scl/codec.h"
#include "scl/kv.h"
#include "scl/worker.h"

#define KVCLIENT_VERSION 1

enum scl_err
scl_kvreq_encode(struct scl_buf *ops, const struct scl_kvreq *r)
{
	struct scl_enc e;

	if (r->key.len > SCL_KV_KEY_MAX || r->prefix.len > SCL_KV_KEY_MAX ||
	    r->start.len > SCL_KV_KEY_MAX || r->end.len > SCL_KV_KEY_MAX)
		return scl_err_set(SCL_ELIMIT, "a key of more than %d bytes",
		    SCL_KV_KEY_MAX);
	if (r->value.len > SCL_KV_VALUE_MAX)
		return scl_err_set(SCL_ELIMIT, "a value of %zu bytes (at most "
		    "%zu)", r->value.len, SCL_KV_VALUE_MAX);
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
scl_kvres_decode(struct scl_dec *d, enum scl_kvreq_op op, struct scl_kvres *out)
{
	memset(out, 0, sizeof(*out));
	switch (op) {
	case SCL_KVREQ_GET:
		out->ok = scl_dec_u8(d, "found") == 1;
		if (out->ok) {
			out->lamport = scl_dec_u64(d, "Lamport time");
			scl_dec_copy(d, out->writer, 32, "writer");
			out->value = scl_dec_blob32(d, SCL_KV_VALUE_MAX, "value");
		}
		break;
	case SCL_KVREQ_PUT:
	case SCL_KVREQ_DELETE:
		out->ok = scl_dec_u8(d, "status") == 0;
		if (!out->ok)
			out->error = scl_dec_blob16(d, 1024, "error");
		break;
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

enum scl_err
scl_kvclient_request(struct scl_buf *out, uint8_t kind, uint64_t id,
    uint8_t flags, uint32_t n, struct scl_slice ops)
{
	struct scl_enc e;

	scl_buf_clear(out);
	scl_enc_init(&e, out);
	scl_enc_u8(&e, kind);
	scl_enc_u8(&e, KVCLIENT_VERSION);
	scl_enc_u64(&e, id);
	scl_enc_u8(&e, flags);
	scl_enc_u32(&e, n);
	scl_enc_bytes(&e, ops.ptr, ops.len);
	return e.err;
}

enum scl_err
scl_kvclient_reply(struct scl_slice frame, uint64_t *id, bool *ok,
    struct scl_slice *body)
{
	struct scl_dec d;

	scl_dec_init(&d, frame, "worker reply");
	(void)scl_dec_u8(&d, "kind");
	if (scl_dec_u8(&d, "version") != KVCLIENT_VERSION && scl_dec_ok(&d))
		return scl_dec_fail(&d, SCL_EVERSION, "worker reply version");
	*id = scl_dec_u64(&d, "id");
	*ok = scl_dec_u8(&d, "status") == 0;
	*body = scl_dec_blob32(&d, (size_t)64 << 20, "body");
	return scl_dec_finish(&d);
}
