/*
 * proto.c - encoding and decoding of protocol v1 messages.
 *
 * Envelope: 0 u16 version, 2 u8 type, 3 u8 flags (0), 4 u64 request id.
 * Bodies per type are tabled in docs/PROTOCOL.md; this file is their only
 * implementation.  The decoder never trusts a length: lists are walked
 * once at decode time so iteration later cannot run past the frame.
 */
#include <string.h>

#include "scl/codec.h"
#include "scl/crypto.h"
#include "scl/proto.h"

#define META_MAX 8192
#define PROOF_MAX (SCL_PAYLOAD_MAX + 65536)
#define ITEM_MAX (SCL_PAYLOAD_MAX + 65536)

static const char *const wire_names[] = {
	[SCL_WIRE_BAD_REQUEST] = "BAD_REQUEST",
	[SCL_WIRE_NOT_FOUND] = "NOT_FOUND",
	[SCL_WIRE_REJECTED] = "REJECTED",
	[SCL_WIRE_GAP] = "GAP",
	[SCL_WIRE_EQUIVOCATION] = "EQUIVOCATION",
	[SCL_WIRE_BUSY] = "BUSY",
	[SCL_WIRE_TOO_LARGE] = "TOO_LARGE",
	[SCL_WIRE_VERSION] = "VERSION",
	[SCL_WIRE_INTERNAL] = "INTERNAL",
};

const char *
scl_wire_err_name(unsigned code)
{
	if (code >= sizeof(wire_names) / sizeof(wire_names[0]) ||
	    wire_names[code] == NULL)
		return "UNKNOWN";
	return wire_names[code];
}

const char *
scl_msg_type_name(uint8_t type)
{
	if (type == SCL_MSG_ERROR)
		return "ERROR";
	switch (type & (uint8_t)~SCL_MSG_REPLY) {
	case SCL_MSG_STATUS: return "STATUS";
	case SCL_MSG_META_PUT: return "META_PUT";
	case SCL_MSG_META_GET: return "META_GET";
	case SCL_MSG_APPEND: return "APPEND";
	case SCL_MSG_READ: return "READ";
	case SCL_MSG_READ_HASH: return "READ_HASH";
	case SCL_MSG_HEADS: return "HEADS";
	case SCL_MSG_HEARTBEAT: return "HEARTBEAT";
	case SCL_MSG_PROOF: return "PROOF";
	case SCL_MSG_SUBSCRIBE: return "SUBSCRIBE";
	case SCL_MSG_SYNC: return "SYNC";
	case SCL_MSG_EVIDENCE: return "EVIDENCE";
	case SCL_MSG_NOTIFY: return "NOTIFY";
	case SCL_MSG_KB_NONCE: return "KB_NONCE";
	case SCL_MSG_KB_ATTEST: return "KB_ATTEST";
	}
	return "?";
}

static void
enc_list(struct scl_enc *e, const struct scl_slice *items, size_t n)
{
	if (e->err == SCL_OK && n > SCL_LIST_MAX) {
		e->err = scl_err_set(SCL_ELIMIT, "list of %zu items", n);
		return;
	}
	scl_enc_u32(e, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		scl_enc_blob32(e, items[i].ptr, items[i].len);
}

enum scl_err
scl_msg_encode(struct scl_buf *out, const struct scl_msg *m,
    const struct scl_slice *items, size_t n_items,
    const struct scl_slice *items2, size_t n_items2)
{
	bool reply = m->type & SCL_MSG_REPLY && m->type != SCL_MSG_ERROR;
	uint8_t base = m->type & (uint8_t)~SCL_MSG_REPLY;
	struct scl_enc e;

	scl_enc_init(&e, out);
	scl_enc_u16(&e, SCL_PROTO_VERSION);
	scl_enc_u8(&e, m->type);
	scl_enc_u8(&e, 0);
	scl_enc_u64(&e, m->id);
	if (m->type == SCL_MSG_ERROR) {
		scl_enc_u16(&e, m->err_code);
		scl_enc_u64(&e, m->err_detail);
		scl_enc_blob16(&e, m->blob.ptr, m->blob.len);
		return e.err;
	}
	switch (reply ? base | 0x100 : base) {
	case SCL_MSG_STATUS:
	case SCL_MSG_META_PUT | 0x100:
		break;
	case SCL_MSG_META_PUT:
	case SCL_MSG_META_GET | 0x100:
	case SCL_MSG_READ_HASH | 0x100:
	case SCL_MSG_PROOF | 0x100:
	case SCL_MSG_STATUS | 0x100:
		scl_enc_blob32(&e, m->blob.ptr, m->blob.len);
		break;
	case SCL_MSG_META_GET:
	case SCL_MSG_HEADS:
	case SCL_MSG_EVIDENCE:
		scl_enc_bytes(&e, m->name, SCL_NAME_BYTES);
		break;
	case SCL_MSG_APPEND:
		scl_enc_bytes(&e, m->name, SCL_NAME_BYTES);
		scl_enc_blob16(&e, m->blob.ptr, m->blob.len);
		enc_list(&e, items, n_items);
		break;
	case SCL_MSG_APPEND | 0x100:
		scl_enc_u8(&e, m->duplicate);
		scl_enc_bytes(&e, m->server_key, SCL_SIGN_PUBLIC_BYTES);
		scl_enc_u64(&e, m->seqno);
		scl_enc_bytes(&e, m->hash, SCL_HASH_BYTES);
		scl_enc_bytes(&e, m->receipt, SCL_SIGNATURE_BYTES);
		break;
	case SCL_MSG_READ:
		scl_enc_bytes(&e, m->name, SCL_NAME_BYTES);
		scl_enc_bytes(&e, m->writer, SCL_WRITER_BYTES);
		scl_enc_u64(&e, m->from);
		scl_enc_u64(&e, m->to);
		scl_enc_u32(&e, m->limit);
		break;
	case SCL_MSG_READ | 0x100:
		enc_list(&e, items, n_items);
		enc_list(&e, items2, n_items2);
		break;
	case SCL_MSG_READ_HASH:
		scl_enc_bytes(&e, m->name, SCL_NAME_BYTES);
		scl_enc_bytes(&e, m->hash, SCL_HASH_BYTES);
		break;
	case SCL_MSG_HEADS | 0x100:
	case SCL_MSG_EVIDENCE | 0x100:
		enc_list(&e, items, n_items);
		break;
	case SCL_MSG_HEARTBEAT:
	case SCL_MSG_PROOF:
		scl_enc_bytes(&e, m->name, SCL_NAME_BYTES);
		scl_enc_bytes(&e, m->writer, SCL_WRITER_BYTES);
		scl_enc_u64(&e, m->seqno);
		break;
	case SCL_MSG_HEARTBEAT | 0x100:
		scl_enc_blob16(&e, m->blob.ptr, m->blob.len);
		break;
	case SCL_MSG_SUBSCRIBE:
		scl_enc_bytes(&e, m->name, SCL_NAME_BYTES);
		scl_enc_u32(&e, m->lease_ms);
		break;
	case SCL_MSG_SUBSCRIBE | 0x100:
		scl_enc_u32(&e, m->lease_ms);
		break;
	case SCL_MSG_SYNC:
		scl_enc_bytes(&e, m->name, SCL_NAME_BYTES);
		scl_enc_u32(&e, m->limit);
		break;
	case SCL_MSG_SYNC | 0x100:
		scl_enc_u8(&e, m->more);
		enc_list(&e, items, n_items);
		break;
	case SCL_MSG_NOTIFY:
		scl_enc_bytes(&e, m->name, SCL_NAME_BYTES);
		scl_enc_blob16(&e, m->blob.ptr, m->blob.len);
		break;
	case SCL_MSG_KB_NONCE:
		break;
	case SCL_MSG_KB_NONCE | 0x100:
		scl_enc_bytes(&e, m->nonce, 32);
		scl_enc_u32(&e, m->lease_ms);
		break;
	case SCL_MSG_KB_ATTEST:
		scl_enc_bytes(&e, m->name, SCL_NAME_BYTES);
		scl_enc_bytes(&e, m->writer, SCL_WRITER_BYTES);
		scl_enc_bytes(&e, m->box_key, SCL_BOX_PUBLIC_BYTES);
		scl_enc_bytes(&e, m->nonce, 32);
		scl_enc_blob16(&e, m->blob.ptr, m->blob.len);
		break;
	case SCL_MSG_KB_ATTEST | 0x100:
		scl_enc_blob16(&e, m->blob.ptr, m->blob.len);
		enc_list(&e, items, n_items);
		break;
	default:
		return scl_err_set(SCL_EINVAL, "cannot encode message type "
		    "0x%02x", m->type);
	}
	if (e.err == SCL_OK && out->len > SCL_MSG_MAX)
		return scl_err_set(SCL_ELIMIT,
		    "message of %zu bytes exceeds the %zu-byte limit", out->len,
		    SCL_MSG_MAX);
	return e.err;
}

enum scl_err
scl_msg_encode_error(struct scl_buf *out, uint64_t id, enum scl_wire_err code,
    uint64_t detail, const char *text)
{
	struct scl_msg m;
	size_t n = strlen(text);

	memset(&m, 0, sizeof(m));
	m.type = SCL_MSG_ERROR;
	m.id = id;
	m.err_code = (uint16_t)code;
	m.err_detail = detail;
	m.blob = scl_slice_of(text, n > 1024 ? 1024 : n);
	return scl_msg_encode(out, &m, NULL, 0, NULL, 0);
}

/* Reads a list: u32 count, then count u32-prefixed items of at most
 * @item_max bytes each, all inside the frame. */
static void
dec_list(struct scl_dec *d, struct scl_msg_list *l, size_t item_max,
    const char *what)
{
	size_t start;

	l->n = scl_dec_u32(d, what);
	if (!scl_dec_ok(d))
		return;
	if (l->n > SCL_LIST_MAX) {
		scl_dec_fail(d, SCL_ELIMIT, "%s: %u items; at most %d", what,
		    l->n, SCL_LIST_MAX);
		return;
	}
	start = d->pos;
	for (uint32_t i = 0; i < l->n && scl_dec_ok(d); i++)
		(void)scl_dec_blob32(d, item_max, what);
	if (scl_dec_ok(d))
		l->raw = scl_slice_of(d->ptr + start, d->pos - start);
}

void
scl_msg_iter_init(struct scl_msg_iter *it, const struct scl_msg_list *l)
{
	it->rest = l->raw;
}

bool
scl_msg_iter_next(struct scl_msg_iter *it, struct scl_slice *item)
{
	size_t n;

	/* Lists were validated by dec_list, so these checks never fail on
	 * a decoded message; they keep a hand-built list from overrunning. */
	if (it->rest.len < 4)
		return false;
	n = scl_le32_load(it->rest.ptr);
	if (n > it->rest.len - 4)
		return false;
	*item = scl_slice_of(it->rest.ptr + 4, n);
	it->rest.ptr += 4 + n;
	it->rest.len -= 4 + n;
	return true;
}

static void
dec_body(struct scl_dec *d, struct scl_msg *m)
{
	bool reply = m->type & SCL_MSG_REPLY;
	uint8_t base = m->type & (uint8_t)~SCL_MSG_REPLY;

	switch (reply ? base | 0x100 : base) {
	case SCL_MSG_STATUS:
	case SCL_MSG_META_PUT | 0x100:
		break;
	case SCL_MSG_STATUS | 0x100:
		m->blob = scl_dec_blob32(d, SCL_STATUS_TEXT_MAX, "status text");
		break;
	case SCL_MSG_META_PUT:
	case SCL_MSG_META_GET | 0x100:
		m->blob = scl_dec_blob32(d, META_MAX, "metadata");
		break;
	case SCL_MSG_READ_HASH | 0x100:
		m->blob = scl_dec_blob32(d, SCL_RECORD_MAX, "record");
		break;
	case SCL_MSG_PROOF | 0x100:
		m->blob = scl_dec_blob32(d, PROOF_MAX, "proof");
		break;
	case SCL_MSG_META_GET:
	case SCL_MSG_HEADS:
	case SCL_MSG_EVIDENCE:
		scl_dec_copy(d, m->name, SCL_NAME_BYTES, "name");
		break;
	case SCL_MSG_APPEND:
		scl_dec_copy(d, m->name, SCL_NAME_BYTES, "name");
		m->blob = scl_dec_blob16(d, SCL_HEARTBEAT_BYTES, "heartbeat");
		dec_list(d, &m->list, SCL_RECORD_MAX, "records");
		if (scl_dec_ok(d) && m->list.n > SCL_APPEND_RECORDS_MAX)
			scl_dec_fail(d, SCL_ELIMIT, "%u records; at most %d",
			    m->list.n, SCL_APPEND_RECORDS_MAX);
		break;
	case SCL_MSG_APPEND | 0x100:
		m->duplicate = scl_dec_u8(d, "duplicate");
		scl_dec_copy(d, m->server_key, SCL_SIGN_PUBLIC_BYTES,
		    "server key");
		m->seqno = scl_dec_u64(d, "seqno");
		scl_dec_copy(d, m->hash, SCL_HASH_BYTES, "hash");
		scl_dec_copy(d, m->receipt, SCL_SIGNATURE_BYTES, "receipt");
		if (scl_dec_ok(d) && m->duplicate > 1)
			scl_dec_fail(d, SCL_EFORMAT, "duplicate flag %u",
			    m->duplicate);
		break;
	case SCL_MSG_READ:
		scl_dec_copy(d, m->name, SCL_NAME_BYTES, "name");
		scl_dec_copy(d, m->writer, SCL_WRITER_BYTES, "writer");
		m->from = scl_dec_u64(d, "from");
		m->to = scl_dec_u64(d, "to");
		m->limit = scl_dec_u32(d, "max bytes");
		break;
	case SCL_MSG_READ | 0x100:
		dec_list(d, &m->list, SCL_RECORD_MAX, "records");
		dec_list(d, &m->list2, SCL_HEARTBEAT_BYTES, "heartbeats");
		break;
	case SCL_MSG_READ_HASH:
		scl_dec_copy(d, m->name, SCL_NAME_BYTES, "name");
		scl_dec_copy(d, m->hash, SCL_HASH_BYTES, "hash");
		break;
	case SCL_MSG_HEADS | 0x100:
		dec_list(d, &m->list, SCL_HEARTBEAT_BYTES, "heartbeats");
		break;
	case SCL_MSG_EVIDENCE | 0x100:
		dec_list(d, &m->list, ITEM_MAX, "evidence");
		break;
	case SCL_MSG_HEARTBEAT:
	case SCL_MSG_PROOF:
		scl_dec_copy(d, m->name, SCL_NAME_BYTES, "name");
		scl_dec_copy(d, m->writer, SCL_WRITER_BYTES, "writer");
		m->seqno = scl_dec_u64(d, "seqno");
		break;
	case SCL_MSG_HEARTBEAT | 0x100:
		m->blob = scl_dec_blob16(d, SCL_HEARTBEAT_BYTES, "heartbeat");
		break;
	case SCL_MSG_SUBSCRIBE:
		scl_dec_copy(d, m->name, SCL_NAME_BYTES, "name");
		m->lease_ms = scl_dec_u32(d, "lease");
		break;
	case SCL_MSG_SUBSCRIBE | 0x100:
		m->lease_ms = scl_dec_u32(d, "lease");
		break;
	case SCL_MSG_SYNC:
		scl_dec_copy(d, m->name, SCL_NAME_BYTES, "after");
		m->limit = scl_dec_u32(d, "limit");
		break;
	case SCL_MSG_SYNC | 0x100:
		m->more = scl_dec_u8(d, "more");
		dec_list(d, &m->list, 8 + SCL_NAME_BYTES + 65536 * 40,
		    "capsules");
		break;
	case SCL_MSG_NOTIFY:
		scl_dec_copy(d, m->name, SCL_NAME_BYTES, "name");
		m->blob = scl_dec_blob16(d, SCL_HEARTBEAT_BYTES, "heartbeat");
		break;
	case SCL_MSG_KB_NONCE:
		break;
	case SCL_MSG_KB_NONCE | 0x100:
		scl_dec_copy(d, m->nonce, 32, "nonce");
		m->lease_ms = scl_dec_u32(d, "ttl");
		break;
	case SCL_MSG_KB_ATTEST:
		scl_dec_copy(d, m->name, SCL_NAME_BYTES, "name");
		scl_dec_copy(d, m->writer, SCL_WRITER_BYTES, "writer");
		scl_dec_copy(d, m->box_key, SCL_BOX_PUBLIC_BYTES, "box key");
		scl_dec_copy(d, m->nonce, 32, "nonce");
		m->blob = scl_dec_blob16(d, 16384, "evidence");
		break;
	case SCL_MSG_KB_ATTEST | 0x100:
		m->blob = scl_dec_blob16(d, SCL_CERT_BYTES, "certificate");
		dec_list(d, &m->list, 4 + 32 + SCL_BOX_SEAL_OVERHEAD,
		    "wrapped keys");
		break;
	default:
		scl_dec_fail(d, SCL_EFORMAT, "unknown message type 0x%02x",
		    m->type);
	}
}

enum scl_err
scl_msg_decode(struct scl_msg *out, struct scl_slice frame)
{
	struct scl_dec d;
	uint8_t flags;

	memset(out, 0, sizeof(*out));
	scl_dec_init(&d, frame, "message");
	if (frame.len > SCL_MSG_MAX)
		return scl_dec_fail(&d, SCL_ELIMIT, "%zu bytes exceeds %zu",
		    frame.len, SCL_MSG_MAX);
	scl_dec_version(&d, SCL_PROTO_VERSION);
	out->type = scl_dec_u8(&d, "type");
	flags = scl_dec_u8(&d, "flags");
	out->id = scl_dec_u64(&d, "request id");
	if (scl_dec_ok(&d) && flags != 0)
		return scl_dec_fail(&d, SCL_EFORMAT, "unknown flags 0x%02x",
		    flags);
	if (!scl_dec_ok(&d))
		return d.err;
	if (out->type == SCL_MSG_ERROR) {
		out->err_code = scl_dec_u16(&d, "error code");
		out->err_detail = scl_dec_u64(&d, "error detail");
		out->blob = scl_dec_blob16(&d, 1024, "error text");
	} else {
		dec_body(&d, out);
	}
	return scl_dec_finish(&d);
}

/* Receipt: signature over "SCL receipt v1\0" || capsule || writer ||
 * seqno (u64 LE) || hash. */
static void
receipt_message(uint8_t out[15 + 32 + 32 + 8 + 32], const uint8_t *capsule,
    const uint8_t *writer, uint64_t seqno, const uint8_t *hash)
{
	memcpy(out, "SCL receipt v1", 15);
	memcpy(out + 15, capsule, 32);
	memcpy(out + 47, writer, 32);
	scl_le64_store(out + 79, seqno);
	memcpy(out + 87, hash, 32);
}

void
scl_receipt_sign(uint8_t sig[SCL_SIGNATURE_BYTES],
    const struct scl_sign_key *server, const uint8_t *capsule,
    const uint8_t *writer, uint64_t seqno, const uint8_t *hash)
{
	uint8_t msg[119];
	receipt_message(msg, capsule, writer, seqno, hash);
	scl_sign(sig, server, msg, sizeof(msg));
}

enum scl_err
scl_receipt_verify(const uint8_t sig[SCL_SIGNATURE_BYTES],
    const uint8_t server_key[SCL_SIGN_PUBLIC_BYTES], const uint8_t *capsule,
    const uint8_t *writer, uint64_t seqno, const uint8_t *hash)
{
	uint8_t msg[119];
	receipt_message(msg, capsule, writer, seqno, hash);
	if (scl_sign_verify(sig, server_key, msg, sizeof(msg)) != SCL_OK)
		return scl_err_set(SCL_EVERIFY, "receipt signature is invalid");
	return SCL_OK;
}

#define SYNC_HEAD_BYTES (SCL_WRITER_BYTES + 8 + SCL_HASH_BYTES)
#define SYNC_HEAD_BYTES_V0 (SCL_WRITER_BYTES + 8)	/* without the hash */

enum scl_err
scl_sync_entry_encode(struct scl_buf *out, const uint8_t *name,
    const uint8_t (*writers)[SCL_WRITER_BYTES], const uint64_t *seqnos,
    const uint8_t (*hashes)[SCL_HASH_BYTES], size_t n)
{
	struct scl_enc e;

	if (n > UINT16_MAX)
		return scl_err_set(SCL_ELIMIT, "%zu writers in one capsule", n);
	scl_enc_init(&e, out);
	scl_enc_bytes(&e, name, SCL_NAME_BYTES);
	scl_enc_u16(&e, (uint16_t)n);
	for (size_t i = 0; i < n; i++) {
		scl_enc_bytes(&e, writers[i], SCL_WRITER_BYTES);
		scl_enc_u64(&e, seqnos[i]);
		scl_enc_bytes(&e, hashes[i], SCL_HASH_BYTES);
	}
	return e.err;
}

enum scl_err
scl_sync_entry_decode(struct scl_sync_entry *out, struct scl_slice in)
{
	struct scl_dec d;

	memset(out, 0, sizeof(*out));
	scl_dec_init(&d, in, "sync entry");
	scl_dec_copy(&d, out->name, SCL_NAME_BYTES, "name");
	out->n = scl_dec_u16(&d, "writer count");
	out->head_bytes = scl_dec_remaining(&d) ==
		(size_t)out->n * SYNC_HEAD_BYTES_V0
	    ? SYNC_HEAD_BYTES_V0 : SYNC_HEAD_BYTES;
	out->heads = scl_dec_bytes(&d, (size_t)out->n * out->head_bytes,
	    "heads");
	return scl_dec_finish(&d);
}

void
scl_sync_entry_head(const struct scl_sync_entry *e, size_t i,
    const uint8_t **writer, uint64_t *seqno, const uint8_t **hash)
{
	const uint8_t *h;

	SCL_ASSERT(i < e->n);
	h = e->heads + e->head_bytes * i;
	*writer = h;
	*seqno = scl_le64_load(h + SCL_WRITER_BYTES);
	*hash = e->head_bytes == SYNC_HEAD_BYTES ? h + SCL_WRITER_BYTES + 8
						 : NULL;
}
