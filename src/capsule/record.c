/*
 * record.c - record headers and heartbeats: decoding, hashing, signing.
 *
 * Record header (docs/FORMAT.md "Records"), little-endian:
 *   0   2  version (1, 2, 3)     2   1  type        3  1  flags
 *   4   32 capsule name          36  32 writer id (Ed25519 public key)
 *   68  8  seqno (>= 1)          76  8  Lamport time
 *   84  4  key epoch
 * v1, v2:                        v3:
 *   88  12 nonce (seqno LE ||      88  16 key salt (random per writer
 *          4-byte salt)                   start; zeros when not sealed)
 *   100 4  body length             104 4  body length
 *   104 1  link count              108 1  link count
 *   105 1  merge count             109 1  merge count
 *   106 2  reserved (0)            110 2  reserved (0)
 *   108 32 x links                 112 32 x links (seqno - 2^i, i = 0..)
 *   ... 32 x merges: hashes of other writers' heads
 * then the body: AEAD ciphertext and tag (sealed) or the plain payload.
 * Record hash = H(header || H(body)), so a proof can carry a header and
 * its body's hash instead of the body.  H is BLAKE2b-256 for v1 and
 * SHA-256 for v2 and v3; the version is in the hashed header, so no
 * record can pass for another version's.
 */
#include <stdio.h>
#include <string.h>

#include "capsule_int.h"

unsigned
scl_capsule_link_count(uint64_t seqno)
{
	unsigned tz;

	if (seqno == 0)
		return 0;
	tz = scl_capsule__tz(seqno);
	/* A power of two has no record at seqno - 2^tz (that is 0). */
	return (seqno & (seqno - 1)) == 0 ? tz : tz + 1;
}

char *
scl_capsule_record_ref(char out[32], const uint8_t *writer, uint64_t seqno)
{
	char w[9];
	snprintf(out, 32, "%s/%llu", scl_hex_short(w, writer),
	    (unsigned long long)seqno);
	return out;
}

static bool
all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;
	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

/* Structural checks that need nothing but the header itself. */
static enum scl_err
header_validate(struct scl_dec *d, const struct scl_record *r,
    uint32_t body_len)
{
	bool sealed = r->flags & SCL_RECORD_FLAG_SEALED;

	if (r->type < SCL_RECORD_DATA || r->type > SCL_RECORD_REVOKE)
		return scl_dec_fail(d, SCL_EFORMAT, "unknown record type %u",
		    r->type);
	if (r->flags & ~SCL_RECORD_FLAG_SEALED)
		return scl_dec_fail(d, SCL_EFORMAT, "unknown flags 0x%02x",
		    r->flags);
	if (sealed != (r->type == SCL_RECORD_DATA))
		return scl_dec_fail(d, SCL_EFORMAT,
		    "type %u record must %sbe sealed", r->type,
		    sealed ? "not " : "");
	if (r->seqno == 0)
		return scl_dec_fail(d, SCL_EFORMAT, "seqno 0 (chains start at 1)");
	if (r->n_links != scl_capsule_link_count(r->seqno))
		return scl_dec_fail(d, SCL_EFORMAT,
		    "%u links, but seqno %llu needs %u", r->n_links,
		    (unsigned long long)r->seqno,
		    scl_capsule_link_count(r->seqno));
	if (r->n_merge > SCL_MERGE_MAX)
		return scl_dec_fail(d, SCL_EFORMAT, "%u merges; at most %d",
		    r->n_merge, SCL_MERGE_MAX);
	if (sealed && r->key_salt) {
		if (all_zero(r->key_salt, SCL_RECORD_KEY_SALT_BYTES))
			return scl_dec_fail(d, SCL_EFORMAT,
			    "sealed record without a key salt");
	} else if (sealed) {
		uint8_t want[8];
		scl_le64_store(want, r->seqno);
		if (memcmp(r->nonce, want, 8) != 0)
			return scl_dec_fail(d, SCL_EFORMAT,
			    "nonce does not start with the seqno");
	}
	if (sealed) {
		if (body_len < SCL_AEAD_TAG_BYTES ||
		    body_len - SCL_AEAD_TAG_BYTES > SCL_PAYLOAD_MAX)
			return scl_dec_fail(d, SCL_EFORMAT,
			    "sealed body of %u bytes", body_len);
	} else {
		if ((r->nonce && !all_zero(r->nonce, SCL_AEAD_NONCE_BYTES)) ||
		    (r->key_salt && !all_zero(r->key_salt,
					SCL_RECORD_KEY_SALT_BYTES)) ||
		    r->epoch != 0)
			return scl_dec_fail(d, SCL_EFORMAT,
			    "plain record with a nonce, key salt or key epoch");
		if (body_len > SCL_PAYLOAD_MAX)
			return scl_dec_fail(d, SCL_EFORMAT,
			    "body of %u bytes exceeds %u", body_len,
			    SCL_PAYLOAD_MAX);
		if (r->type == SCL_RECORD_CERT && body_len != SCL_CERT_BYTES)
			return scl_dec_fail(d, SCL_EFORMAT,
			    "certificate body of %u bytes, expected %d",
			    body_len, SCL_CERT_BYTES);
		if (r->type == SCL_RECORD_REVOKE && body_len != 44)
			return scl_dec_fail(d, SCL_EFORMAT,
			    "revocation body of %u bytes, expected 44",
			    body_len);
	}
	return SCL_OK;
}

static enum scl_err
header_decode(struct scl_record *out, uint32_t *body_len, struct scl_dec *d)
{
	memset(out, 0, sizeof(*out));
	out->version = scl_dec_u16(d, "version");
	if (scl_dec_ok(d) && (out->version < SCL_RECORD_VERSION_MIN ||
				 out->version > SCL_RECORD_VERSION))
		return scl_dec_fail(d, SCL_EVERSION, "version %u; this build "
		    "reads versions %u to %u", out->version,
		    SCL_RECORD_VERSION_MIN, SCL_RECORD_VERSION);
	out->type = scl_dec_u8(d, "type");
	out->flags = scl_dec_u8(d, "flags");
	out->capsule = scl_dec_bytes(d, SCL_NAME_BYTES, "capsule");
	out->writer = scl_dec_bytes(d, SCL_WRITER_BYTES, "writer");
	out->seqno = scl_dec_u64(d, "seqno");
	out->lamport = scl_dec_u64(d, "lamport");
	out->epoch = scl_dec_u32(d, "epoch");
	if (out->version >= 3)
		out->key_salt = scl_dec_bytes(d, SCL_RECORD_KEY_SALT_BYTES,
		    "key salt");
	else
		out->nonce = scl_dec_bytes(d, SCL_AEAD_NONCE_BYTES, "nonce");
	*body_len = scl_dec_u32(d, "body length");
	out->n_links = scl_dec_u8(d, "link count");
	out->n_merge = scl_dec_u8(d, "merge count");
	scl_dec_zero16(d, "reserved field");
	if (!scl_dec_ok(d))
		return d->err;
	if (header_validate(d, out, *body_len) != SCL_OK)
		return d->err;
	out->links = scl_dec_bytes(d, (size_t)out->n_links * SCL_HASH_BYTES,
	    "links");
	out->merge = scl_dec_bytes(d, (size_t)out->n_merge * SCL_HASH_BYTES,
	    "merges");
	if (!scl_dec_ok(d))
		return d->err;
	out->header = scl_slice_of(d->ptr, d->pos);
	return SCL_OK;
}

enum scl_err
scl_capsule_header_decode(struct scl_record *out, size_t *consumed,
    struct scl_slice in)
{
	struct scl_dec d;
	uint32_t body_len;
	enum scl_err r;

	scl_dec_init(&d, in, "record header");
	if ((r = header_decode(out, &body_len, &d)) != SCL_OK)
		return r;
	out->body = scl_slice_of(NULL, 0);
	*consumed = d.pos;
	return SCL_OK;
}

enum scl_err
scl_capsule_record_decode(struct scl_record *out, struct scl_slice in)
{
	struct scl_dec d;
	uint32_t body_len;
	const uint8_t *body;
	enum scl_err r;

	scl_dec_init(&d, in, "record");
	if ((r = header_decode(out, &body_len, &d)) != SCL_OK)
		return r;
	body = scl_dec_bytes(&d, body_len, "body");
	if ((r = scl_dec_finish(&d)) != SCL_OK)
		return r;
	out->body = scl_slice_of(body, body_len);
	return SCL_OK;
}

/* H(@a || @b) for a record of @version. */
static enum scl_err
record_digest(uint8_t out[SCL_HASH_BYTES], uint16_t version,
    struct scl_slice a, struct scl_slice b)
{
	struct scl_hash_state st;

	if (version == 2 || version == 3)
		return scl_sha256(out, (struct scl_slice[]){ a, b }, 2);
	if (version != 1)
		return scl_err_set(SCL_EVERSION, "no record hash for version "
		    "%u", version);
	scl_hash_init(&st);
	scl_hash_update(&st, a.ptr, a.len);
	scl_hash_update(&st, b.ptr, b.len);
	scl_hash_final(&st, out);
	return SCL_OK;
}

enum scl_err
scl_capsule__body_hash(uint8_t out[SCL_HASH_BYTES], uint16_t version,
    struct scl_slice body)
{
	return record_digest(out, version, body, scl_slice_of(NULL, 0));
}

enum scl_err
scl_capsule_header_hash(uint8_t out[SCL_HASH_BYTES], struct scl_slice header,
    const uint8_t body_hash[SCL_HASH_BYTES])
{
	if (header.len < SCL_RECORD_FIXED_BYTES)
		return scl_err_set(SCL_EFORMAT, "record header of %zu bytes",
		    header.len);
	return record_digest(out, scl_le16_load(header.ptr), header,
	    scl_slice_of(body_hash, SCL_HASH_BYTES));
}

enum scl_err
scl_capsule_record_hash(uint8_t out[SCL_HASH_BYTES],
    const struct scl_record *r)
{
	uint8_t body_hash[SCL_HASH_BYTES];
	enum scl_err e;

	if ((e = scl_capsule__body_hash(body_hash, r->version, r->body)) !=
	    SCL_OK)
		return e;
	return scl_capsule_header_hash(out, r->header, body_hash);
}

/*
 * Heartbeat v1: 0 2 version, 2 2 reserved, 4 32 capsule, 36 32 writer,
 * 68 8 seqno, 76 32 record hash, 108 8 time us, 116 64 signature over
 * "SCL heartbeat v1\0" || bytes [0, 116).
 */
#define HEARTBEAT_SIGNED_BYTES 116
_Static_assert(HEARTBEAT_SIGNED_BYTES + SCL_SIGNATURE_BYTES ==
    SCL_HEARTBEAT_BYTES, "heartbeat size");

static void
heartbeat_signed_part(uint8_t out[HEARTBEAT_SIGNED_BYTES],
    const struct scl_heartbeat *hb)
{
	scl_le16_store(out, SCL_FORMAT_VERSION);
	scl_le16_store(out + 2, 0);
	memcpy(out + 4, hb->capsule, SCL_NAME_BYTES);
	memcpy(out + 36, hb->writer, SCL_WRITER_BYTES);
	scl_le64_store(out + 68, hb->seqno);
	memcpy(out + 76, hb->hash, SCL_HASH_BYTES);
	scl_le64_store(out + 108, hb->time_us);
}

enum scl_err
scl_capsule_heartbeat_sign(struct scl_buf *out, struct scl_heartbeat *hb,
    const struct scl_sign_key *key)
{
	uint8_t bytes[SCL_HEARTBEAT_BYTES];

	if (memcmp(key->public_key, hb->writer, SCL_WRITER_BYTES) != 0)
		return scl_err_set(SCL_EINVAL,
		    "heartbeat writer is not the signing key");
	heartbeat_signed_part(bytes, hb);
	scl_capsule__sign(hb->sig, key, SCL_SIGCTX_HEARTBEAT,
	    scl_slice_of(bytes, HEARTBEAT_SIGNED_BYTES));
	memcpy(bytes + HEARTBEAT_SIGNED_BYTES, hb->sig, SCL_SIGNATURE_BYTES);
	return scl_buf_append(out, bytes, sizeof(bytes));
}

enum scl_err
scl_capsule_heartbeat_decode(struct scl_heartbeat *out, struct scl_slice in)
{
	struct scl_dec d;

	memset(out, 0, sizeof(*out));
	scl_dec_init(&d, in, "heartbeat");
	scl_dec_version(&d, SCL_FORMAT_VERSION);
	scl_dec_zero16(&d, "reserved field");
	scl_dec_copy(&d, out->capsule, SCL_NAME_BYTES, "capsule");
	scl_dec_copy(&d, out->writer, SCL_WRITER_BYTES, "writer");
	out->seqno = scl_dec_u64(&d, "seqno");
	scl_dec_copy(&d, out->hash, SCL_HASH_BYTES, "hash");
	out->time_us = scl_dec_u64(&d, "time");
	scl_dec_copy(&d, out->sig, SCL_SIGNATURE_BYTES, "signature");
	if (scl_dec_ok(&d) && out->seqno == 0)
		return scl_dec_fail(&d, SCL_EFORMAT, "seqno 0");
	return scl_dec_finish(&d);
}

enum scl_err
scl_capsule_heartbeat_verify(const struct scl_heartbeat *hb)
{
	uint8_t bytes[HEARTBEAT_SIGNED_BYTES];

	heartbeat_signed_part(bytes, hb);
	if (scl_capsule__verify(hb->sig, hb->writer, SCL_SIGCTX_HEARTBEAT,
		scl_slice_of(bytes, sizeof(bytes))) != SCL_OK)
		return scl_err_set(SCL_EVERIFY,
		    "heartbeat signature does not verify");
	return SCL_OK;
}
