/*
 * msg.c - the encodings a replica speaks: operations inside a record's
 * payload (docs/FORMAT.md "KVS operations") and the messages peers
 * exchange through the router (docs/PROTOCOL.md "KVS messages").
 * Every decoder is bounds-checked and rejects trailing bytes.
 */
#include <string.h>

#include "kv_int.h"
#include "scl/codec.h"

#define MSG_VERSION 1
#define BATCH_RECORDS_MAX 4096

enum scl_err
scl_kv_op_encode(struct scl_buf *out, const struct scl_kv_op *op)
{
	struct scl_enc e;

	if (op->key.len > SCL_KV_KEY_MAX)
		return scl_err_set(SCL_ELIMIT, "key of %zu bytes (at most %d)",
		    op->key.len, SCL_KV_KEY_MAX);
	if (op->value.len > SCL_KV_VALUE_MAX)
		return scl_err_set(SCL_ELIMIT, "value of %zu bytes (at most "
		    "%zu)", op->value.len, SCL_KV_VALUE_MAX);
	scl_enc_init(&e, out);
	scl_enc_u8(&e, (uint8_t)op->kind);
	scl_enc_u64(&e, op->lamport);
	scl_enc_blob16(&e, op->key.ptr, op->key.len);
	scl_enc_blob32(&e, op->value.ptr, op->value.len);
	return e.err;
}

enum scl_err
scl_kv_op_decode(struct scl_kv_op *out, struct scl_slice in)
{
	struct scl_dec d;
	uint8_t kind;

	memset(out, 0, sizeof(*out));
	scl_dec_init(&d, in, "KVS operation");
	kind = scl_dec_u8(&d, "kind");
	out->lamport = scl_dec_u64(&d, "Lamport time");
	out->key = scl_dec_blob16(&d, SCL_KV_KEY_MAX, "key");
	out->value = scl_dec_blob32(&d, SCL_KV_VALUE_MAX, "value");
	if (!scl_dec_ok(&d))
		return d.err;
	if (kind != SCL_KV_OP_PUT && kind != SCL_KV_OP_DELETE)
		return scl_dec_fail(&d, SCL_EFORMAT, "unknown operation %u",
		    kind);
	if (kind == SCL_KV_OP_DELETE && out->value.len)
		return scl_dec_fail(&d, SCL_EFORMAT, "a delete with a value");
	if (out->lamport == 0)
		return scl_dec_fail(&d, SCL_EFORMAT, "Lamport time 0");
	out->kind = kind;
	return scl_dec_finish(&d);
}

enum scl_err
scl_kv_msg_from_batch(struct scl_buf *out, const struct scl_capsule_batch *b)
{
	struct scl_enc e;

	if (b->n == 0 || b->n > BATCH_RECORDS_MAX)
		return scl_err_set(SCL_ELIMIT, "a batch of %zu records", b->n);
	scl_buf_clear(out);
	scl_enc_init(&e, out);
	scl_enc_u8(&e, SCL_KV_MSG_BATCH);
	scl_enc_u8(&e, MSG_VERSION);
	scl_enc_u16(&e, (uint16_t)b->n);
	for (size_t i = 0; i < b->n; i++) {
		struct scl_slice r = scl_capsule_batch_record(b, i);
		scl_enc_blob32(&e, r.ptr, r.len);
	}
	scl_enc_blob16(&e, b->heartbeat.ptr, b->heartbeat.len);
	return e.err;
}

/* The message's kind after checking its version; 0 if malformed. */
uint8_t
kv_msg_kind(struct scl_dec *d)
{
	uint8_t kind = scl_dec_u8(d, "message kind");
	uint8_t version = scl_dec_u8(d, "version");

	if (!scl_dec_ok(d))
		return 0;
	if (version != MSG_VERSION) {
		scl_dec_fail(d, SCL_EVERSION, "KVS message version %u (this "
		    "build speaks %u)", version, MSG_VERSION);
		return 0;
	}
	return kind;
}

enum scl_err
scl_kv_msg_to_batch(struct scl_slice msg, struct scl_capsule_batch *out)
{
	struct scl_dec d;
	struct scl_slice hb;
	uint16_t n;
	enum scl_err e;

	scl_capsule_batch_clear(out);
	scl_dec_init(&d, msg, "KVS batch");
	if (kv_msg_kind(&d) != SCL_KV_MSG_BATCH)
		return scl_dec_ok(&d) ? scl_dec_fail(&d, SCL_EFORMAT,
		    "not a batch") : d.err;
	n = scl_dec_u16(&d, "record count");
	if (scl_dec_ok(&d) && (n == 0 || n > BATCH_RECORDS_MAX))
		return scl_dec_fail(&d, SCL_EFORMAT, "%u records", n);
	for (uint16_t i = 0; i < n && scl_dec_ok(&d); i++) {
		static const uint8_t unhashed[SCL_HASH_BYTES];
		struct scl_slice r = scl_dec_blob32(&d, SCL_RECORD_MAX,
		    "record");
		if (!scl_dec_ok(&d))
			break;
		/* hashed once, by scl_capsule_batch_verify */
		if ((e = scl_capsule_batch_add(out, r, unhashed)) != SCL_OK)
			return e;
	}
	hb = scl_dec_blob16(&d, SCL_HEARTBEAT_BYTES, "heartbeat");
	if ((e = scl_dec_finish(&d)) != SCL_OK)
		return e;
	return scl_buf_set(&out->heartbeat, hb);
}
