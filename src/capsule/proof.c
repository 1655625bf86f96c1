/*
 * proof.c - membership proofs and equivocation evidence.
 *
 * Proof v1 (docs/FORMAT.md "Proofs"):
 *   0 4 magic "SCLP"   4 2 version (1)   6 2 reserved (0)
 *   u32-prefixed metadata, u16-prefixed certificate (empty for the owner),
 *   u16-prefixed heartbeat, u16 step count, then per step a u16-prefixed
 *   record header and the 32-byte hash of its body, then the u32-prefixed
 *   target record.
 * Steps run from the heartbeat's record down the skip path; each must be
 * committed to by the one before, so a checker needs only the name.
 *
 * Evidence v1: magic "SCLE", version, reserved, two u32-prefixed proofs.
 */
#include <stdlib.h>
#include <string.h>

#include "capsule_int.h"

#define PROOF_MAGIC "SCLP"
#define EVIDENCE_MAGIC "SCLE"
#define PROOF_META_MAX 8192
#define PROOF_RECORD_MAX (SCL_PAYLOAD_MAX + 4096)

static enum scl_err
add_step(struct scl_enc *e, const struct scl_capsule_source *src,
    const uint8_t *writer, uint64_t seqno, struct scl_buf *buf)
{
	uint8_t body_hash[SCL_HASH_BYTES];
	struct scl_record r;
	char ref[32];
	enum scl_err err;

	scl_capsule_record_ref(ref, writer, seqno);
	if ((err = src->record(src->ctx, writer, seqno, buf)) != SCL_OK ||
	    (err = scl_capsule_record_decode(&r, scl_buf_slice(buf))) !=
		SCL_OK)
		return scl_err_wrap(err, "record %s: ", ref);
	if ((err = scl_capsule__body_hash(body_hash, r.version, r.body)) !=
	    SCL_OK)
		return scl_err_wrap(err, "record %s: ", ref);
	scl_enc_blob16(e, r.header.ptr, r.header.len);
	scl_enc_bytes(e, body_hash, sizeof(body_hash));
	return e->err;
}

enum scl_err
scl_capsule_proof_build(struct scl_buf *out,
    const struct scl_capsule_source *src, struct scl_slice meta,
    struct scl_slice cert, const uint8_t writer[SCL_WRITER_BYTES],
    uint64_t seqno)
{
	struct scl_heartbeat hb;
	struct scl_buf buf, steps;
	struct scl_enc e, se;
	unsigned n_steps = 0;
	uint64_t at;
	char ref[32];
	enum scl_err err;

	scl_buf_init(&buf);
	scl_buf_init(&steps);
	scl_capsule_record_ref(ref, writer, seqno);
	if (seqno == 0) {
		err = scl_err_set(SCL_EINVAL, "seqnos start at 1");
		goto done;
	}
	if ((err = src->heartbeat_from(src->ctx, writer, seqno, &at, &buf)) !=
	    SCL_OK) {
		err = scl_err_wrap(err, "no heartbeat covers record %s: ", ref);
		goto done;
	}
	if ((err = scl_capsule_heartbeat_decode(&hb, scl_buf_slice(&buf))) !=
	    SCL_OK)
		goto done;
	scl_enc_init(&e, out);
	scl_enc_bytes(&e, PROOF_MAGIC, 4);
	scl_enc_u16(&e, SCL_FORMAT_VERSION);
	scl_enc_u16(&e, 0);
	scl_enc_blob32(&e, meta.ptr, meta.len);
	scl_enc_blob16(&e, cert.ptr, cert.len);
	scl_enc_blob16(&e, buf.ptr, buf.len);
	scl_enc_init(&se, &steps);
	for (uint64_t s = hb.seqno; s > seqno;
	     s = scl_capsule_path_next(s, seqno), n_steps++)
		if ((err = add_step(&se, src, writer, s, &buf)) != SCL_OK)
			goto done;
	scl_enc_u16(&e, (uint16_t)n_steps);
	scl_enc_bytes(&e, steps.ptr, steps.len);
	if ((err = src->record(src->ctx, writer, seqno, &buf)) != SCL_OK) {
		err = scl_err_wrap(err, "record %s: ", ref);
		goto done;
	}
	scl_enc_blob32(&e, buf.ptr, buf.len);
	err = e.err;
done:
	scl_buf_dispose(&buf);
	scl_buf_dispose(&steps);
	return err;
}

static enum scl_err
check_steps(struct scl_capsule_chain *chain, struct scl_dec *d,
    unsigned n_steps, uint64_t target)
{
	uint64_t last = UINT64_MAX;

	for (unsigned i = 0; i < n_steps; i++) {
		struct scl_slice header = scl_dec_blob16(d, 65535, "step header");
		const uint8_t *body_hash = scl_dec_bytes(d, SCL_HASH_BYTES,
		    "step body hash");
		struct scl_record r;
		size_t used;
		enum scl_err e;

		if (!scl_dec_ok(d))
			return d->err;
		if ((e = scl_capsule_header_decode(&r, &used, header)) !=
		    SCL_OK)
			return scl_err_wrap(e, "proof step %u: ", i);
		if (used != header.len)
			return scl_err_set(SCL_EFORMAT,
			    "proof step %u: %zu bytes after the header", i,
			    header.len - used);
		if (r.seqno <= target || r.seqno >= last)
			return scl_err_set(SCL_EFORMAT,
			    "proof step %u: seqno %llu out of order", i,
			    (unsigned long long)r.seqno);
		last = r.seqno;
		if ((e = scl_capsule_chain_check_header(chain, &r, body_hash)) !=
		    SCL_OK)
			return scl_err_wrap(e, "proof step %u: ", i);
	}
	return SCL_OK;
}

enum scl_err
scl_capsule_proof_check(struct scl_capsule_proof_result *out,
    const uint8_t name[SCL_NAME_BYTES], struct scl_slice proof)
{
	struct scl_capsule_chain *chain = NULL;
	struct scl_heartbeat hb;
	struct scl_capsule_cert cert;
	struct scl_record rec;
	struct scl_slice meta, cert_bytes, hb_bytes, target;
	struct scl_dec d;
	uint16_t n_steps;
	enum scl_err e;

	memset(out, 0, sizeof(*out));
	scl_dec_init(&d, proof, "proof");
	scl_dec_magic(&d, PROOF_MAGIC);
	scl_dec_version(&d, SCL_FORMAT_VERSION);
	scl_dec_zero16(&d, "reserved field");
	meta = scl_dec_blob32(&d, PROOF_META_MAX, "metadata");
	cert_bytes = scl_dec_blob16(&d, SCL_CERT_BYTES, "certificate");
	hb_bytes = scl_dec_blob16(&d, SCL_HEARTBEAT_BYTES, "heartbeat");
	n_steps = scl_dec_u16(&d, "step count");
	if (!scl_dec_ok(&d))
		return d.err;
	if (n_steps > SCL_PROOF_STEPS_MAX)
		return scl_dec_fail(&d, SCL_ELIMIT, "%u steps; at most %d",
		    n_steps, SCL_PROOF_STEPS_MAX);
	if ((e = scl_capsule_meta_check(&out->meta, name, meta)) != SCL_OK)
		return scl_err_wrap(e, "proof: ");
	if ((e = scl_capsule_heartbeat_decode(&hb, hb_bytes)) != SCL_OK)
		return scl_err_wrap(e, "proof: ");
	if (memcmp(hb.capsule, name, SCL_NAME_BYTES) != 0)
		return scl_err_set(SCL_EVERIFY,
		    "proof: heartbeat is for another capsule");
	if ((e = scl_capsule_heartbeat_verify(&hb)) != SCL_OK)
		return scl_err_wrap(e, "proof: ");
	if (memcmp(hb.writer, out->meta.owner, SCL_WRITER_BYTES) == 0) {
		if (cert_bytes.len != 0)
			return scl_err_set(SCL_EFORMAT,
			    "proof: the owner needs no certificate");
	} else if ((e = scl_capsule_cert_decode(&cert, cert_bytes)) !=
		       SCL_OK ||
	    (e = scl_capsule_cert_verify(&cert, name, out->meta.owner,
		 hb.writer)) != SCL_OK) {
		return scl_err_wrap(e, "proof: ");
	}
	if ((chain = malloc(sizeof(*chain))) == NULL)
		return scl_err_set(SCL_ENOMEM, "cannot allocate chain state");
	scl_capsule_chain_init(chain, name, out->meta.owner, &hb);
	/* Peek the target's seqno bound: steps must stay above it. */
	{
		struct scl_dec peek = d;
		for (unsigned i = 0; i < n_steps; i++) {
			(void)scl_dec_blob16(&peek, 65535, "step header");
			(void)scl_dec_bytes(&peek, SCL_HASH_BYTES, "step hash");
		}
		target = scl_dec_blob32(&peek, PROOF_RECORD_MAX, "record");
		if ((e = scl_dec_finish(&peek)) != SCL_OK)
			goto done;
		if ((e = scl_capsule_record_decode(&rec, target)) != SCL_OK) {
			e = scl_err_wrap(e, "proof: ");
			goto done;
		}
	}
	if ((e = check_steps(chain, &d, n_steps, rec.seqno)) != SCL_OK)
		goto done;
	if ((e = scl_capsule_record_hash(out->hash, &rec)) != SCL_OK ||
	    (e = scl_capsule_chain_check(chain, &rec, out->hash)) != SCL_OK) {
		e = scl_err_wrap(e, "proof: ");
		goto done;
	}
	memcpy(out->writer, hb.writer, SCL_WRITER_BYTES);
	out->seqno = rec.seqno;
	out->heartbeat_seqno = hb.seqno;
	out->heartbeat_time_us = hb.time_us;
	out->steps = n_steps;
	out->record = target;
done:
	free(chain);
	return e;
}

enum scl_err
scl_capsule_evidence_build(struct scl_buf *out, struct scl_slice proof_a,
    struct scl_slice proof_b)
{
	struct scl_enc e;

	scl_enc_init(&e, out);
	scl_enc_bytes(&e, EVIDENCE_MAGIC, 4);
	scl_enc_u16(&e, SCL_FORMAT_VERSION);
	scl_enc_u16(&e, 0);
	scl_enc_blob32(&e, proof_a.ptr, proof_a.len);
	scl_enc_blob32(&e, proof_b.ptr, proof_b.len);
	return e.err;
}

enum scl_err
scl_capsule_evidence_check(struct scl_capsule_proof_result *a,
    struct scl_capsule_proof_result *b, const uint8_t name[SCL_NAME_BYTES],
    struct scl_slice evidence)
{
	struct scl_slice pa, pb;
	struct scl_dec d;
	char ref[32];
	enum scl_err e;

	scl_dec_init(&d, evidence, "evidence");
	scl_dec_magic(&d, EVIDENCE_MAGIC);
	scl_dec_version(&d, SCL_FORMAT_VERSION);
	scl_dec_zero16(&d, "reserved field");
	pa = scl_dec_blob32(&d, 64u << 20, "first proof");
	pb = scl_dec_blob32(&d, 64u << 20, "second proof");
	if ((e = scl_dec_finish(&d)) != SCL_OK)
		return e;
	if ((e = scl_capsule_proof_check(a, name, pa)) != SCL_OK)
		return scl_err_wrap(e, "evidence, first proof: ");
	if ((e = scl_capsule_proof_check(b, name, pb)) != SCL_OK)
		return scl_err_wrap(e, "evidence, second proof: ");
	if (memcmp(a->writer, b->writer, SCL_WRITER_BYTES) != 0 ||
	    a->seqno != b->seqno)
		return scl_err_set(SCL_EVERIFY,
		    "evidence: the proofs are about different records");
	if (memcmp(a->hash, b->hash, SCL_HASH_BYTES) == 0)
		return scl_err_set(SCL_EVERIFY,
		    "evidence: both proofs show the same record %s",
		    scl_capsule_record_ref(ref, a->writer, a->seqno));
	return SCL_OK;
}
