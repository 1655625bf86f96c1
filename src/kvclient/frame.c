/*
 * frame.c - the frames of a worker's client socket (kvclient.h), both
 * directions.  Decoders bound every read and reject trailing bytes.
 */
#include "scl/codec.h"
#include "scl/kvclient.h"

static bool
kind_known(uint8_t kind)
{
	return kind == SCL_KVCLIENT_OPS || kind == SCL_KVCLIENT_STATUS ||
	    kind == SCL_KVCLIENT_TIMED;
}

enum scl_err
scl_kvclient_request_encode(struct scl_buf *out,
    const struct scl_kvclient_request *r)
{
	struct scl_enc e;

	scl_buf_clear(out);
	scl_enc_init(&e, out);
	scl_enc_u8(&e, r->kind);
	scl_enc_u8(&e, SCL_KVCLIENT_VERSION);
	scl_enc_u64(&e, r->id);
	scl_enc_u8(&e, r->flags);
	scl_enc_u32(&e, r->n);
	scl_enc_bytes(&e, r->ops.ptr, r->ops.len);
	return e.err;
}

enum scl_err
scl_kvclient_request_decode(struct scl_kvclient_request *out,
    struct scl_slice frame)
{
	struct scl_dec d;
	uint8_t version;

	out->kind = 0;
	out->id = 0;
	scl_dec_init(&d, frame, "worker request");
	out->kind = scl_dec_u8(&d, "kind");
	version = scl_dec_u8(&d, "version");
	out->id = scl_dec_u64(&d, "id");
	out->flags = scl_dec_u8(&d, "flags");
	out->n = scl_dec_u32(&d, "request count");
	if (!scl_dec_ok(&d))
		return d.err;
	out->ops = scl_slice_of(frame.ptr + d.pos, scl_dec_remaining(&d));
	if (version != SCL_KVCLIENT_VERSION)
		return scl_err_set(SCL_EVERSION, "worker request: version %u "
		    "(this worker speaks %u)", version, SCL_KVCLIENT_VERSION);
	if (!kind_known(out->kind))
		return scl_err_set(SCL_EFORMAT, "worker request: unknown kind "
		    "%u", out->kind);
	if (out->flags & ~SCL_KVCLIENT_FLAGS_KNOWN)
		return scl_err_set(SCL_EFORMAT, "worker request: unknown flags "
		    "0x%02x", out->flags);
	if (out->kind == SCL_KVCLIENT_STATUS && (out->n || out->ops.len))
		return scl_err_set(SCL_EFORMAT, "worker request: a status "
		    "request with %u requests", out->n);
	return SCL_OK;
}

enum scl_err
scl_kvclient_reply_encode(struct scl_buf *out,
    const struct scl_kvclient_reply *r)
{
	struct scl_enc e;

	scl_buf_clear(out);
	scl_enc_init(&e, out);
	scl_enc_u8(&e, r->kind);
	scl_enc_u8(&e, SCL_KVCLIENT_VERSION);
	scl_enc_u64(&e, r->id);
	scl_enc_u8(&e, (uint8_t)r->err);
	scl_enc_blob32(&e, r->body.ptr, r->body.len);
	return e.err;
}

enum scl_err
scl_kvclient_reply_decode(struct scl_kvclient_reply *out,
    struct scl_slice frame)
{
	struct scl_dec d;
	uint8_t version, status;

	scl_dec_init(&d, frame, "worker reply");
	out->kind = scl_dec_u8(&d, "kind");
	version = scl_dec_u8(&d, "version");
	if (scl_dec_ok(&d) && version != SCL_KVCLIENT_VERSION)
		return scl_dec_fail(&d, SCL_EVERSION, "version %u (this client "
		    "speaks %u)", version, SCL_KVCLIENT_VERSION);
	out->id = scl_dec_u64(&d, "id");
	status = scl_dec_u8(&d, "status");
	out->body = scl_dec_blob32(&d, SCL_KVCLIENT_FRAME_MAX, "body");
	if (scl_dec_ok(&d) && status >= SCL_ERR_COUNT_)
		return scl_dec_fail(&d, SCL_EFORMAT, "unknown status %u",
		    status);
	out->err = (enum scl_err)status;
	return scl_dec_finish(&d);
}
