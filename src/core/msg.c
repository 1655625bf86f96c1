/*
 * msg.c - every message between a worker's host and its trusted core
 * (docs/PROTOCOL.md "Worker core"), encoder beside decoder.
 *
 * The core decodes requests and encodes replies; the host does the
 * opposite; neither trusts what it decodes (tests/fuzz/fuzz_core.c drives
 * the core's side, fuzz_core_reply.c the host's).  Offsets that a builder
 * patches once the count is known are defined here and nowhere else.
 */
#include <string.h>

#include "scl/codec.h"
#include "scl/core.h"
#include "scl/kv.h"

#define META_MAX 8192

/* The envelope of a reply: u8 op, u8 status. */
#define REPLY_HEAD_BYTES 2
/* KV reply header after the envelope: u8 more, u8 sealing, u64 through,
 * u64 next tick, u16 outputs. */
#define KV_MORE_AT (REPLY_HEAD_BYTES)
#define KV_SEALING_AT (KV_MORE_AT + 1)
#define KV_THROUGH_AT (KV_SEALING_AT + 1)
#define KV_TICK_AT (KV_THROUGH_AT + 8)
#define KV_OUTPUTS_AT (KV_TICK_AT + 8)
#define KV_HEAD_END (KV_OUTPUTS_AT + 2)
/* KV_OPS and KV_RECEIVE requests: u8 op, u64 now, u16 count. */
#define LIST_COUNT_AT 9
#define LIST_HEAD_BYTES 11
/* A group's result: u8 status, u64 through, u32 length. */
#define GROUP_RESULT_HEAD_BYTES 13

bool
scl_core_op_known(uint8_t op)
{
	switch (op) {
	case SCL_CORE_INIT:
	case SCL_CORE_REPORT:
	case SCL_CORE_INSTALL:
	case SCL_CORE_WRITE:
	case SCL_CORE_KV_OPEN:
	case SCL_CORE_KV_OPS:
	case SCL_CORE_KV_RECEIVE:
	case SCL_CORE_KV_TICK:
	case SCL_CORE_KV_STATS:
	case SCL_CORE_KV_TIMED:
	case SCL_CORE_KV_DURABLE:
		return true;
	}
	return false;
}

/* Starts a request: clears @out, writes the op. */
static void
request_begin(struct scl_enc *e, struct scl_buf *out, enum scl_core_op op)
{
	scl_buf_clear(out);
	scl_enc_init(e, out);
	scl_enc_u8(e, (uint8_t)op);
}

/* --- replies ------------------------------------------------------------------ */

enum scl_err
scl_core_reply_begin(struct scl_buf *out, enum scl_core_op op)
{
	uint8_t head[REPLY_HEAD_BYTES] = { (uint8_t)op, SCL_OK };

	scl_buf_clear(out);
	return scl_buf_append(out, head, sizeof(head));
}

enum scl_err
scl_core_reply_error(struct scl_buf *out, uint8_t op, enum scl_err err,
    const char *reason)
{
	size_t len = strlen(reason);
	struct scl_enc e;

	scl_buf_clear(out);
	scl_enc_init(&e, out);
	scl_enc_u8(&e, op);
	scl_enc_u8(&e, (uint8_t)(err == SCL_OK ? SCL_EINVAL : err));
	scl_enc_blob16(&e, reason,
	    len > SCL_CORE_REASON_MAX ? SCL_CORE_REASON_MAX : len);
	return e.err;
}

enum scl_err
scl_core_reply_open(struct scl_slice reply, enum scl_core_op op,
    struct scl_slice *body)
{
	struct scl_dec d;
	struct scl_slice why;
	uint8_t got, status;

	*body = scl_slice_of(NULL, 0);
	scl_dec_init(&d, reply, "core reply");
	got = scl_dec_u8(&d, "op");
	status = scl_dec_u8(&d, "status");
	if (!scl_dec_ok(&d))
		return d.err;
	if (got != (uint8_t)op)
		return scl_dec_fail(&d, SCL_EFORMAT, "it answers 0x%02x, not "
		    "0x%02x", got, (unsigned)op);
	if (status == SCL_OK) {
		*body = scl_slice_of(reply.ptr + REPLY_HEAD_BYTES,
		    reply.len - REPLY_HEAD_BYTES);
		return SCL_OK;
	}
	why = scl_dec_blob16(&d, SCL_CORE_REASON_MAX, "reason");
	if (scl_dec_finish(&d) != SCL_OK)
		return d.err;
	if (status >= SCL_ERR_COUNT_)
		return scl_err_set(SCL_EFORMAT, "core reply: unknown status "
		    "%u (%.*s)", status, (int)why.len, (const char *)why.ptr);
	return scl_err_set((enum scl_err)status, "trusted core: %.*s",
	    (int)why.len, (const char *)why.ptr);
}

/* --- attestation and sealing -------------------------------------------------- */

enum scl_err
scl_core_keys_encode(struct scl_buf *out, const struct scl_core_keys *k)
{
	struct scl_enc e;

	scl_enc_init(&e, out);
	scl_enc_bytes(&e, k->writer, sizeof(k->writer));
	scl_enc_bytes(&e, k->box, sizeof(k->box));
	return e.err;
}

enum scl_err
scl_core_keys_decode(struct scl_core_keys *out, struct scl_slice body)
{
	struct scl_dec d;

	scl_dec_init(&d, body, "core keys");
	scl_dec_copy(&d, out->writer, sizeof(out->writer), "writer key");
	scl_dec_copy(&d, out->box, sizeof(out->box), "box key");
	return scl_dec_finish(&d);
}

enum scl_err
scl_core_report_encode(struct scl_buf *out,
    const uint8_t nonce[SCL_NONCE_BYTES])
{
	struct scl_enc e;

	request_begin(&e, out, SCL_CORE_REPORT);
	scl_enc_bytes(&e, nonce, SCL_NONCE_BYTES);
	return e.err;
}

enum scl_err
scl_core_report_decode(uint8_t nonce[SCL_NONCE_BYTES], struct scl_slice body)
{
	struct scl_dec d;

	scl_dec_init(&d, body, "report request");
	scl_dec_copy(&d, nonce, SCL_NONCE_BYTES, "nonce");
	return scl_dec_finish(&d);
}

/* blob16 meta, blob16 cert, u16 n, n x (u32 epoch, wrapped key) */
enum scl_err
scl_core_install_encode(struct scl_buf *out, const struct scl_core_install *in)
{
	struct scl_enc e;

	request_begin(&e, out, SCL_CORE_INSTALL);
	scl_enc_blob16(&e, in->meta.ptr, in->meta.len);
	scl_enc_blob16(&e, in->cert.ptr, in->cert.len);
	scl_enc_u16(&e, in->n_keys);
	for (uint16_t i = 0; i < in->n_keys && i < SCL_EPOCHS_MAX; i++) {
		scl_enc_u32(&e, in->keys[i].epoch);
		scl_enc_bytes(&e, in->keys[i].wrapped,
		    SCL_CORE_WRAPPED_KEY_BYTES);
	}
	return e.err;
}

enum scl_err
scl_core_install_decode(struct scl_core_install *out, struct scl_slice body)
{
	struct scl_dec d;

	scl_dec_init(&d, body, "key installation");
	out->meta = scl_dec_blob16(&d, META_MAX, "metadata");
	out->cert = scl_dec_blob16(&d, SCL_CERT_BYTES, "certificate");
	out->n_keys = scl_dec_u16(&d, "key count");
	if (scl_dec_ok(&d) && (out->n_keys == 0 || out->n_keys > SCL_EPOCHS_MAX))
		return scl_dec_fail(&d, SCL_EFORMAT, "%u keys (1 to %d)",
		    out->n_keys, SCL_EPOCHS_MAX);
	for (uint16_t i = 0; i < out->n_keys && scl_dec_ok(&d); i++) {
		out->keys[i].epoch = scl_dec_u32(&d, "epoch");
		out->keys[i].wrapped = scl_dec_bytes(&d,
		    SCL_CORE_WRAPPED_KEY_BYTES, "wrapped key");
		if (scl_dec_ok(&d) && i > 0 &&
		    out->keys[i].epoch <= out->keys[i - 1].epoch)
			return scl_dec_fail(&d, SCL_EFORMAT,
			    "epochs out of order");
	}
	return scl_dec_finish(&d);
}

enum scl_err
scl_core_write_encode(struct scl_buf *out, const struct scl_slice *payloads,
    size_t n)
{
	struct scl_enc e;

	if (n > UINT16_MAX)
		return scl_err_set(SCL_ELIMIT, "%zu payloads in one batch (at "
		    "most %u)", n, UINT16_MAX);
	request_begin(&e, out, SCL_CORE_WRITE);
	scl_enc_u16(&e, (uint16_t)n);
	for (size_t i = 0; i < n; i++)
		scl_enc_blob32(&e, payloads[i].ptr, payloads[i].len);
	return e.err;
}

enum scl_err
scl_core_write_decode(uint16_t *n, struct scl_slice *list,
    struct scl_slice body)
{
	struct scl_dec d;

	scl_dec_init(&d, body, "write request");
	*n = scl_dec_u16(&d, "payload count");
	*list = scl_slice_of(body.ptr + d.pos, scl_dec_remaining(&d));
	for (uint16_t i = 0; i < *n && scl_dec_ok(&d); i++)
		(void)scl_dec_blob32(&d, SCL_PAYLOAD_MAX, "payload");
	return scl_dec_finish(&d);
}

bool
scl_core_write_next(struct scl_slice *list, struct scl_slice *payload)
{
	struct scl_dec d;

	if (list->len == 0)
		return false;
	scl_dec_init(&d, *list, "payload");
	*payload = scl_dec_blob32(&d, SCL_PAYLOAD_MAX, "payload");
	if (!scl_dec_ok(&d))
		return false;
	list->ptr += d.pos;
	list->len -= d.pos;
	return true;
}

/* u16 n, n x blob32 record, blob16 heartbeat */
enum scl_err
scl_core_batch_encode(struct scl_buf *out, const struct scl_capsule_batch *b)
{
	struct scl_enc e;

	if (b->n > UINT16_MAX)
		return scl_err_set(SCL_ELIMIT, "%zu records", b->n);
	scl_enc_init(&e, out);
	scl_enc_u16(&e, (uint16_t)b->n);
	for (size_t i = 0; i < b->n; i++) {
		struct scl_slice rec = scl_capsule_batch_record(b, i);
		scl_enc_blob32(&e, rec.ptr, rec.len);
	}
	scl_enc_blob16(&e, b->heartbeat.ptr, b->heartbeat.len);
	return e.err;
}

enum scl_err
scl_core_batch_decode(struct scl_capsule_batch *out, struct scl_slice body)
{
	struct scl_slice hb;
	struct scl_dec d;
	uint16_t count;
	enum scl_err e;

	scl_capsule_batch_clear(out);
	scl_dec_init(&d, body, "core batch");
	count = scl_dec_u16(&d, "record count");
	for (uint16_t i = 0; i < count && scl_dec_ok(&d); i++) {
		struct scl_slice rec = scl_dec_blob32(&d, SCL_RECORD_MAX,
		    "record");
		uint8_t hash[SCL_HASH_BYTES];
		struct scl_record r;
		if (!scl_dec_ok(&d))
			break;
		if ((e = scl_capsule_record_decode(&r, rec)) != SCL_OK ||
		    (e = scl_capsule_record_hash(hash, &r)) != SCL_OK ||
		    (e = scl_capsule_batch_add(out, rec, hash)) != SCL_OK)
			return e;
	}
	hb = scl_dec_blob16(&d, SCL_HEARTBEAT_BYTES, "heartbeat");
	if ((e = scl_dec_finish(&d)) != SCL_OK)
		return e;
	return scl_buf_set(&out->heartbeat, hb);
}

/* --- the KVS: requests ------------------------------------------------------- */

/* u32 batch size, u64 batch delay, u8 plain, u16 record version */
enum scl_err
scl_core_kv_params_encode(struct scl_buf *out,
    const struct scl_core_kv_params *p)
{
	struct scl_enc e;

	request_begin(&e, out, SCL_CORE_KV_OPEN);
	scl_enc_u32(&e, p->batch_max_puts);
	scl_enc_u64(&e, p->batch_delay_us);
	scl_enc_u8(&e, p->plain ? 1 : 0);
	scl_enc_u16(&e, p->record_version);
	return e.err;
}

enum scl_err
scl_core_kv_params_decode(struct scl_core_kv_params *out,
    struct scl_slice body)
{
	struct scl_dec d;
	uint8_t plain;

	scl_dec_init(&d, body, "KVS parameters");
	out->batch_max_puts = scl_dec_u32(&d, "batch size");
	out->batch_delay_us = scl_dec_u64(&d, "batch delay");
	plain = scl_dec_u8(&d, "plain");
	out->record_version = scl_dec_u16(&d, "record version");
	if (scl_dec_ok(&d) && plain > 1)
		return scl_dec_fail(&d, SCL_EFORMAT, "plain is %u", plain);
	out->plain = plain == 1;
	return scl_dec_finish(&d);
}

enum scl_err
scl_core_tick_encode(struct scl_buf *out, uint64_t now_us)
{
	struct scl_enc e;

	request_begin(&e, out, SCL_CORE_KV_TICK);
	scl_enc_u64(&e, now_us);
	return e.err;
}

enum scl_err
scl_core_tick_decode(uint64_t *now_us, struct scl_slice body)
{
	struct scl_dec d;

	scl_dec_init(&d, body, "KVS tick");
	*now_us = scl_dec_u64(&d, "time");
	return scl_dec_finish(&d);
}

/* Starts a counted list request (KV_OPS, KV_RECEIVE): op, now, count 0. */
static enum scl_err
list_begin(struct scl_buf *out, enum scl_core_op op, uint64_t now_us)
{
	struct scl_enc e;

	request_begin(&e, out, op);
	scl_enc_u64(&e, now_us);
	scl_enc_u16(&e, 0);
	if (e.err != SCL_OK)
		scl_buf_clear(out);
	return e.err;
}

static uint16_t
list_count(const struct scl_buf *req)
{
	return req->len >= LIST_HEAD_BYTES ? scl_le16_load(req->ptr +
						 LIST_COUNT_AT)
					   : 0;
}

/* Checks there is room in the counted list @out holds for one more
 * item (@what: the request, for messages); *@mark is where it starts. */
static enum scl_err
list_item_begin(const struct scl_buf *out, uint16_t max, const char *what,
    size_t *mark)
{
	if (out->len < LIST_HEAD_BYTES)
		return scl_err_set(SCL_EINVAL, "no %s request begun", what);
	if (list_count(out) == max)
		return scl_err_set(SCL_EFULL, "%u items in one %s", max, what);
	*mark = out->len;
	return SCL_OK;
}

/* Counts the item encoded since @mark, or takes it back if its encoding
 * failed (@e): the request is then as it was. */
static enum scl_err
list_item_end(struct scl_buf *out, size_t mark, enum scl_err e)
{
	if (e != SCL_OK) {
		out->len = mark;
		return e;
	}
	scl_le16_store(out->ptr + LIST_COUNT_AT,
	    (uint16_t)(list_count(out) + 1));
	return SCL_OK;
}

static enum scl_err
list_finish(const struct scl_buf *out, const char *what)
{
	if (list_count(out) == 0)
		return scl_err_set(SCL_EINVAL, "a %s request with nothing in it",
		    what);
	return SCL_OK;
}

enum scl_err
scl_core_ops_begin(struct scl_buf *out, uint64_t now_us)
{
	return list_begin(out, SCL_CORE_KV_OPS, now_us);
}

enum scl_err
scl_core_ops_add(struct scl_buf *out, uint8_t flags, uint32_t n,
    struct scl_slice ops)
{
	struct scl_enc e;
	size_t mark = 0;
	enum scl_err r;

	if ((r = list_item_begin(out, SCL_CORE_GROUPS_MAX, "KV_OPS",
		 &mark)) != SCL_OK)
		return r;
	scl_enc_init(&e, out);
	scl_enc_u8(&e, flags);
	scl_enc_u32(&e, n);
	scl_enc_blob32(&e, ops.ptr, ops.len);
	return list_item_end(out, mark, e.err);
}

uint16_t
scl_core_ops_count(const struct scl_buf *req)
{
	return list_count(req);
}

enum scl_err
scl_core_ops_finish(struct scl_buf *out)
{
	return list_finish(out, "KV_OPS");
}

/* Reads one group from @d; false (and @d failed) if malformed. */
static bool
group_decode(struct scl_dec *d, struct scl_core_group *out)
{
	out->flags = scl_dec_u8(d, "group flags");
	out->n = scl_dec_u32(d, "request count");
	out->ops = scl_dec_blob32(d, SCL_CORE_MSG_MAX, "requests");
	if (scl_dec_ok(d) && (out->flags & ~SCL_CORE_GROUP_DURABLE) != 0)
		scl_dec_fail(d, SCL_EFORMAT, "unknown group flags 0x%02x",
		    out->flags);
	return scl_dec_ok(d);
}

enum scl_err
scl_core_ops_decode(uint64_t *now_us, uint16_t *n_groups,
    struct scl_slice *groups, struct scl_slice body)
{
	struct scl_core_group g;
	struct scl_dec d;

	scl_dec_init(&d, body, "KVS requests");
	*now_us = scl_dec_u64(&d, "time");
	*n_groups = scl_dec_u16(&d, "groups");
	if (scl_dec_ok(&d) && (*n_groups == 0 ||
				  *n_groups > SCL_CORE_GROUPS_MAX))
		return scl_dec_fail(&d, SCL_EFORMAT, "%u groups (1 to %d)",
		    *n_groups, SCL_CORE_GROUPS_MAX);
	*groups = scl_slice_of(body.ptr + d.pos, scl_dec_remaining(&d));
	for (uint16_t i = 0; i < *n_groups && group_decode(&d, &g); i++)
		;
	return scl_dec_finish(&d);
}

bool
scl_core_group_next(struct scl_slice *groups, struct scl_core_group *out)
{
	struct scl_dec d;

	if (groups->len == 0)
		return false;
	scl_dec_init(&d, *groups, "group");
	if (!group_decode(&d, out))
		return false;
	groups->ptr += d.pos;
	groups->len -= d.pos;
	return true;
}

size_t
scl_core_group_result_begin(struct scl_buf *results)
{
	uint8_t head[GROUP_RESULT_HEAD_BYTES] = { 0 };
	size_t start = results->len;

	/* On failure the result is left short; end() then fails too. */
	if (scl_buf_append(results, head, sizeof(head)) != SCL_OK)
		scl_err_clear();
	return start;
}

enum scl_err
scl_core_group_result_end(struct scl_buf *results, size_t start,
    enum scl_err err, const char *reason, uint64_t through)
{
	size_t body;

	if (results->len < start + GROUP_RESULT_HEAD_BYTES)
		return scl_err_set(SCL_ENOMEM, "a group's result");
	if (err != SCL_OK) {
		size_t len = strlen(reason);
		if (len > SCL_CORE_REASON_MAX)
			len = SCL_CORE_REASON_MAX;
		results->len = start + GROUP_RESULT_HEAD_BYTES;
		if (scl_buf_append(results, reason, len) != SCL_OK)
			return SCL_ENOMEM;
	}
	body = results->len - start - GROUP_RESULT_HEAD_BYTES;
	if (body > UINT32_MAX)
		return scl_err_set(SCL_ELIMIT, "a group's results of %zu "
		    "bytes", body);
	results->ptr[start] = (uint8_t)err;
	scl_le64_store(results->ptr + start + 1, through);
	scl_le32_store(results->ptr + start + 9, (uint32_t)body);
	return SCL_OK;
}

bool
scl_core_group_result_next(struct scl_slice *results,
    struct scl_core_group_result *out)
{
	struct scl_dec d;
	uint8_t status;

	if (results->len == 0)
		return false;
	scl_dec_init(&d, *results, "group result");
	status = scl_dec_u8(&d, "status");
	out->through = scl_dec_u64(&d, "through");
	out->body = scl_dec_blob32(&d, SCL_CORE_MSG_MAX, "results");
	if (scl_dec_ok(&d) && status >= SCL_ERR_COUNT_)
		scl_dec_fail(&d, SCL_EFORMAT, "unknown status %u", status);
	if (!scl_dec_ok(&d))
		return false;
	out->err = (enum scl_err)status;
	results->ptr += d.pos;
	results->len -= d.pos;
	return true;
}

enum scl_err
scl_core_receive_begin(struct scl_buf *out, uint64_t now_us)
{
	return list_begin(out, SCL_CORE_KV_RECEIVE, now_us);
}

enum scl_err
scl_core_receive_add(struct scl_buf *out, struct scl_slice msg)
{
	struct scl_enc e;
	size_t mark = 0;
	enum scl_err r;

	if ((r = list_item_begin(out, SCL_CORE_RECEIVE_MAX, "KV_RECEIVE",
		 &mark)) != SCL_OK)
		return r;
	scl_enc_init(&e, out);
	scl_enc_blob32(&e, msg.ptr, msg.len);
	return list_item_end(out, mark, e.err);
}

uint16_t
scl_core_receive_count(const struct scl_buf *req)
{
	return list_count(req);
}

enum scl_err
scl_core_receive_finish(struct scl_buf *out)
{
	return list_finish(out, "KV_RECEIVE");
}

enum scl_err
scl_core_receive_decode(uint64_t *now_us, uint16_t *n,
    struct scl_slice msgs[SCL_CORE_RECEIVE_MAX], struct scl_slice body)
{
	struct scl_dec d;

	scl_dec_init(&d, body, "KVS messages");
	*now_us = scl_dec_u64(&d, "time");
	*n = scl_dec_u16(&d, "message count");
	if (scl_dec_ok(&d) && (*n == 0 || *n > SCL_CORE_RECEIVE_MAX))
		return scl_dec_fail(&d, SCL_EFORMAT, "%u messages (1 to %d)",
		    *n, SCL_CORE_RECEIVE_MAX);
	for (uint16_t i = 0; i < *n && scl_dec_ok(&d); i++)
		msgs[i] = scl_dec_blob32(&d, SCL_CORE_MSG_MAX, "message");
	return scl_dec_finish(&d);
}

enum scl_err
scl_core_timed_encode(struct scl_buf *out, uint64_t now_us, uint32_t n,
    struct scl_slice ops)
{
	struct scl_enc e;

	request_begin(&e, out, SCL_CORE_KV_TIMED);
	scl_enc_u64(&e, now_us);
	scl_enc_u32(&e, n);
	scl_enc_blob32(&e, ops.ptr, ops.len);
	return e.err;
}

enum scl_err
scl_core_timed_decode(uint64_t *now_us, uint32_t *n, struct scl_slice *ops,
    struct scl_slice body)
{
	struct scl_dec d;

	scl_dec_init(&d, body, "timed requests");
	*now_us = scl_dec_u64(&d, "time");
	*n = scl_dec_u32(&d, "request count");
	*ops = scl_dec_blob32(&d, SCL_CORE_MSG_MAX, "requests");
	return scl_dec_finish(&d);
}

#define DURABLE_ENTRY_BYTES (SCL_WRITER_BYTES + 8)

enum scl_err
scl_core_durable_encode(struct scl_buf *out, uint64_t now_us,
    const struct scl_core_durable *heads, size_t n)
{
	struct scl_enc e;

	if (n == 0 || n > SCL_CORE_DURABLE_MAX)
		return scl_err_set(SCL_ELIMIT, "%zu durable heads (1 to %d)", n,
		    SCL_CORE_DURABLE_MAX);
	request_begin(&e, out, SCL_CORE_KV_DURABLE);
	scl_enc_u64(&e, now_us);
	scl_enc_u16(&e, (uint16_t)n);
	for (size_t i = 0; i < n; i++) {
		scl_enc_bytes(&e, heads[i].writer, SCL_WRITER_BYTES);
		scl_enc_u64(&e, heads[i].seqno);
	}
	return e.err;
}

enum scl_err
scl_core_durable_decode(uint64_t *now_us, uint16_t *n, struct scl_slice *list,
    struct scl_slice body)
{
	struct scl_dec d;

	scl_dec_init(&d, body, "durable heads");
	*now_us = scl_dec_u64(&d, "time");
	*n = scl_dec_u16(&d, "head count");
	if (scl_dec_ok(&d) && (*n == 0 || *n > SCL_CORE_DURABLE_MAX))
		return scl_dec_fail(&d, SCL_EFORMAT, "%u durable heads (1 to "
		    "%d)", *n, SCL_CORE_DURABLE_MAX);
	*list = scl_slice_of(body.ptr + d.pos, scl_dec_remaining(&d));
	(void)scl_dec_bytes(&d, (size_t)*n * DURABLE_ENTRY_BYTES, "heads");
	return scl_dec_finish(&d);
}

bool
scl_core_durable_next(struct scl_slice *list, struct scl_core_durable *out)
{
	if (list->len < DURABLE_ENTRY_BYTES)
		return false;
	memcpy(out->writer, list->ptr, SCL_WRITER_BYTES);
	out->seqno = scl_le64_load(list->ptr + SCL_WRITER_BYTES);
	list->ptr += DURABLE_ENTRY_BYTES;
	list->len -= DURABLE_ENTRY_BYTES;
	return true;
}

/* --- the KVS: replies -------------------------------------------------------- */

enum scl_err
scl_core_kv_reply_begin(struct scl_buf *out)
{
	uint8_t head[KV_HEAD_END - REPLY_HEAD_BYTES] = { 0 };

	if (out->len != REPLY_HEAD_BYTES)
		return scl_err_set(SCL_EINVAL, "a KV reply starts a reply");
	return scl_buf_append(out, head, sizeof(head));
}

enum scl_err
scl_core_kv_reply_add(struct scl_buf *out, const struct scl_core_output *o)
{
	uint16_t n;
	struct scl_enc e;

	if (out->len < KV_HEAD_END)
		return scl_err_set(SCL_EINVAL, "no KV reply begun");
	if ((n = scl_le16_load(out->ptr + KV_OUTPUTS_AT)) == UINT16_MAX)
		return scl_err_set(SCL_EFULL, "%u outputs", n);
	scl_enc_init(&e, out);
	scl_enc_u8(&e, o->kind);
	scl_enc_u64(&e, o->through);
	scl_enc_bytes(&e, o->writer, SCL_WRITER_BYTES);
	scl_enc_u64(&e, o->from);
	scl_enc_u64(&e, o->to);
	scl_enc_blob32(&e, o->msg.ptr, o->msg.len);
	if (e.err == SCL_OK)
		scl_le16_store(out->ptr + KV_OUTPUTS_AT, (uint16_t)(n + 1));
	return e.err;
}

enum scl_err
scl_core_kv_reply_finish(struct scl_buf *out,
    const struct scl_core_kv_reply *head, struct scl_slice results)
{
	struct scl_enc e;

	if (out->len < KV_HEAD_END)
		return scl_err_set(SCL_EINVAL, "no KV reply begun");
	out->ptr[KV_MORE_AT] = head->more;
	out->ptr[KV_SEALING_AT] = head->sealing;
	scl_le64_store(out->ptr + KV_THROUGH_AT, head->through);
	scl_le64_store(out->ptr + KV_TICK_AT, head->next_tick_us);
	scl_enc_init(&e, out);
	scl_enc_blob32(&e, results.ptr, results.len);
	return e.err;
}

/* Reads one output from @d; false (and @d failed) if malformed. */
static bool
output_decode(struct scl_dec *d, struct scl_core_output *out)
{
	out->kind = scl_dec_u8(d, "output kind");
	out->through = scl_dec_u64(d, "through");
	out->writer = scl_dec_bytes(d, SCL_WRITER_BYTES, "writer");
	out->from = scl_dec_u64(d, "from");
	out->to = scl_dec_u64(d, "to");
	out->msg = scl_dec_blob32(d, SCL_CORE_MSG_MAX, "message");
	if (scl_dec_ok(d) && (out->kind < SCL_KV_OUT_BATCH ||
				 out->kind > SCL_KV_OUT_NOTICE))
		scl_dec_fail(d, SCL_EFORMAT, "output kind %u", out->kind);
	return scl_dec_ok(d);
}

enum scl_err
scl_core_kv_reply_decode(struct scl_core_kv_reply *out, struct scl_slice body)
{
	struct scl_core_output o;
	struct scl_dec d;
	uint8_t more, sealing;
	size_t start;

	scl_dec_init(&d, body, "core KV reply");
	more = scl_dec_u8(&d, "more");
	sealing = scl_dec_u8(&d, "sealing");
	out->through = scl_dec_u64(&d, "through");
	out->next_tick_us = scl_dec_u64(&d, "next tick");
	out->n_outputs = scl_dec_u16(&d, "outputs");
	if (scl_dec_ok(&d) && (more > 1 || sealing > 1))
		return scl_dec_fail(&d, SCL_EFORMAT, "flags %u, %u", more,
		    sealing);
	out->more = more == 1;
	out->sealing = sealing == 1;
	start = d.pos;
	for (uint16_t i = 0; i < out->n_outputs && output_decode(&d, &o); i++)
		;
	out->outputs = scl_slice_of(body.ptr + start, d.pos - start);
	out->results = scl_dec_blob32(&d, SCL_CORE_MSG_MAX, "results");
	return scl_dec_finish(&d);
}

bool
scl_core_output_next(struct scl_slice *outputs, struct scl_core_output *out)
{
	struct scl_dec d;

	if (outputs->len == 0)
		return false;
	scl_dec_init(&d, *outputs, "output");
	if (!output_decode(&d, out))
		return false;
	outputs->ptr += d.pos;
	outputs->len -= d.pos;
	return true;
}
