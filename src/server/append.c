/*
 * append.c - verifying appends against the chains a server stores, and
 * answering them once their group commit is done.
 *
 * Each (capsule, writer) chain has a verified head in memory that runs
 * ahead of the store while commits are in flight, so a client may
 * pipeline batches: batch k+1 is checked against batch k's verified
 * state and both commit in the same fsync.  A commit failure marks the
 * chain stale; it is reloaded from the store (and re-verified) once its
 * in-flight jobs are done.
 *
 * Outcomes of an append (docs/PROTOCOL.md "APPEND"):
 *   continues the head, verifies  -> stored, then ACK with a receipt
 *   starts above the head         -> GAP (we lag; anti-entropy catches up)
 *   repeats stored records        -> ACK marked duplicate, nothing stored
 *   differs from a stored record  -> EQUIVOCATION if the batch is validly
 *                                    signed (evidence kept), else REJECTED
 *   anything that does not verify -> REJECTED, reason logged, nothing kept
 */
#include <stdlib.h>
#include <string.h>

#include "server_int.h"

static size_t
bucket_of(const uint8_t *name, const uint8_t *writer)
{
	return ((size_t)name[0] | (size_t)name[1] << 8 |
		   (size_t)writer[0] << 16 | (size_t)writer[1] << 24) %
	    CHAIN_BUCKETS;
}

void
scl_server__chains_free(struct scl_server *s)
{
	for (size_t i = 0; i < CHAIN_BUCKETS; i++)
		while (s->chains[i]) {
			struct chain *c = s->chains[i];
			s->chains[i] = c->next;
			free(c);
		}
	s->n_chains = 0;
}

/* Loads the verified head of a chain from the store: the heartbeat at the
 * stored head and the skip path below it (scl_capsule_head_load). */
static enum scl_err
chain_load(struct scl_server *s, struct chain *c)
{
	const struct scl_capsule_meta *meta = scl_server__meta(s, c->name);
	struct scl_store_snapshot *snap = NULL;
	struct scl_capsule_source src;
	struct scl_store_head stored;
	enum scl_err e;

	if (meta == NULL)
		return scl_err_set(SCL_ENOTFOUND, "unknown capsule");
	if ((e = scl_store_get_head(s->store, c->name, c->writer, &stored)) !=
		SCL_OK ||
	    (e = scl_store_snapshot_begin(&snap, s->store, c->name)) != SCL_OK)
		return e;
	scl_store_snapshot_source(&src, snap);
	e = scl_capsule_head_load(&c->head, &src, c->name, meta->owner,
	    c->writer, stored.seqno);
	scl_store_snapshot_end(snap);
	if (e == SCL_OK)
		c->stale = false;
	return e;
}

static struct chain *
chain_get(struct scl_server *s, const uint8_t *name, const uint8_t *writer,
    enum scl_err *err)
{
	size_t b = bucket_of(name, writer);
	struct chain *c;

	for (c = s->chains[b]; c; c = c->next)
		if (memcmp(c->name, name, SCL_NAME_BYTES) == 0 &&
		    memcmp(c->writer, writer, SCL_WRITER_BYTES) == 0)
			break;
	if (c == NULL) {
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			*err = scl_err_set(SCL_ENOMEM, "cannot track chain");
			return NULL;
		}
		memcpy(c->name, name, SCL_NAME_BYTES);
		memcpy(c->writer, writer, SCL_WRITER_BYTES);
		c->stale = true;
		c->next = s->chains[b];
		s->chains[b] = c;
		s->n_chains++;
	}
	if (c->stale && c->inflight == 0 && (*err = chain_load(s, c)) != SCL_OK)
		return NULL;
	*err = SCL_OK;
	return c;
}

uint64_t
scl_server__verified_head(struct scl_server *s, const uint8_t *name,
    const uint8_t *writer)
{
	enum scl_err e;
	struct chain *c = chain_get(s, name, writer, &e);

	if (c == NULL || c->stale) {
		struct scl_store_head h;
		scl_err_clear();
		if (scl_store_get_head(s->store, name, writer, &h) != SCL_OK)
			return 0;
		return h.seqno;
	}
	return c->head.seqno;
}

static void
pending_free(struct pending *p)
{
	scl_capsule_batch_dispose(&p->batch);
	free(p);
}

/* Decodes the records of an append into @b (structure only, and that
 * they are one writer's consecutive records). */
static enum scl_err
decode_batch(struct scl_capsule_batch *b, const struct scl_msg_list *records)
{
	struct scl_msg_iter it;
	struct scl_slice item;
	size_t i = 0;
	enum scl_err e;

	if (records->n == 0)
		return scl_err_set(SCL_EFORMAT, "an append needs records");
	scl_msg_iter_init(&it, records);
	while (scl_msg_iter_next(&it, &item)) {
		uint8_t zero[SCL_HASH_BYTES] = { 0 };
		if ((e = scl_capsule_batch_add(b, item, zero)) != SCL_OK)
			return scl_err_wrap(e, "record %zu of the append: ", i);
		i++;
	}
	return SCL_OK;
}

/* Compares the batch's records that overlap the stored chain.  Returns
 * how many leading records are already stored (identical), or sets *diff
 * to the first seqno whose stored record differs. */
static enum scl_err
compare_stored(struct scl_server *s, const struct scl_capsule_batch *b,
    uint64_t stored_head, size_t *same, uint64_t *diff)
{
	struct scl_buf rec;
	enum scl_err e = SCL_OK;

	*same = 0;
	*diff = 0;
	scl_buf_init(&rec);
	for (size_t i = 0; i < b->n && b->first_seqno + i <= stored_head; i++) {
		struct scl_slice r = scl_capsule_batch_record(b, i);
		if ((e = scl_store_get_record(s->store, b->capsule, b->writer,
			 b->first_seqno + i, &rec)) != SCL_OK)
			break;
		if (rec.len != r.len || memcmp(rec.ptr, r.ptr, r.len) != 0) {
			*diff = b->first_seqno + i;
			break;
		}
		(*same)++;
	}
	scl_buf_dispose(&rec);
	return e;
}

/* A source over an incoming batch: records at or above its first seqno
 * come from the batch, its heartbeat is the only one. */
struct batch_src {
	const struct scl_capsule_batch *b;
	struct scl_slice hb;
};

static enum scl_err
bsrc_record(void *ctx, const uint8_t *w, uint64_t seqno, struct scl_buf *out)
{
	struct batch_src *bs = ctx;
	(void)w;
	if (seqno < bs->b->first_seqno ||
	    seqno >= bs->b->first_seqno + bs->b->n)
		return scl_err_set(SCL_ENOTFOUND, "not in the batch");
	return scl_buf_set(out, scl_capsule_batch_record(bs->b,
				    (size_t)(seqno - bs->b->first_seqno)));
}

static enum scl_err
bsrc_heartbeat(void *ctx, const uint8_t *w, uint64_t seqno, uint64_t *at,
    struct scl_buf *out)
{
	struct batch_src *bs = ctx;
	uint64_t last = bs->b->first_seqno + bs->b->n - 1;
	(void)w;
	if (seqno > last)
		return scl_err_set(SCL_ENOTFOUND, "no heartbeat");
	*at = last;
	return scl_buf_set(out, bs->hb);
}

/* The certificate a proof of @b's writer carries: none for the owner,
 * else the body of the CERT record that opens the writer's chain here.
 * A conflict over that record itself proves nothing against the owner's
 * certification, so it is only rejected. */
static enum scl_err
writer_cert(struct scl_server *s, const struct scl_capsule_batch *b,
    const struct scl_capsule_meta *meta, uint64_t seqno, struct scl_buf *out)
{
	struct scl_record r;
	struct scl_buf rec;
	enum scl_err e;

	scl_buf_clear(out);
	if (memcmp(b->writer, meta->owner, SCL_WRITER_BYTES) == 0)
		return SCL_OK;
	if (seqno <= 1)
		return scl_err_set(SCL_EVERIFY, "two certificates");
	scl_buf_init(&rec);
	if ((e = scl_store_get_record(s->store, b->capsule, b->writer, 1,
		 &rec)) == SCL_OK &&
	    (e = scl_capsule_record_decode(&r, scl_buf_slice(&rec))) == SCL_OK)
		e = r.type == SCL_RECORD_CERT ? scl_buf_set(out, r.body)
		    : scl_err_set(SCL_EVERIFY, "record 1 is no certificate");
	scl_buf_dispose(&rec);
	return e;
}

/* The batch signs a record that differs from one we store: if both are
 * provably the writer's, keep the evidence. */
static void
handle_conflict(struct scl_server *s, const uint8_t *route, size_t rlen,
    uint64_t id, const struct scl_capsule_batch *b, struct scl_slice hb,
    uint64_t seqno)
{
	const struct scl_capsule_meta *meta = scl_server__meta(s, b->capsule);
	struct scl_capsule_proof_result *ra = NULL, *rb = NULL;
	struct scl_store_snapshot *snap = NULL;
	struct batch_src bs = { b, hb };
	struct scl_capsule_source theirs = { &bs, bsrc_record, bsrc_heartbeat };
	struct scl_capsule_source ours;
	struct scl_buf meta_bytes, pa, pb, ev, cert;
	char ref[32];
	enum scl_err e;

	scl_buf_init(&meta_bytes);
	scl_buf_init(&pa);
	scl_buf_init(&pb);
	scl_buf_init(&ev);
	scl_buf_init(&cert);
	scl_capsule_record_ref(ref, b->writer, seqno);
	ra = calloc(1, sizeof(*ra));
	rb = calloc(1, sizeof(*rb));
	if (ra == NULL || rb == NULL || meta == NULL ||
	    scl_store_get_meta(s->store, b->capsule, &meta_bytes) != SCL_OK ||
	    writer_cert(s, b, meta, seqno, &cert) != SCL_OK ||
	    scl_store_snapshot_begin(&snap, s->store, b->capsule) != SCL_OK) {
		e = SCL_EVERIFY;
	} else {
		scl_store_snapshot_source(&ours, snap);
		e = scl_capsule_proof_build(&pa, &ours,
		    scl_buf_slice(&meta_bytes), scl_buf_slice(&cert), b->writer,
		    seqno);
		if (e == SCL_OK)
			e = scl_capsule_proof_build(&pb, &theirs,
			    scl_buf_slice(&meta_bytes), scl_buf_slice(&cert),
			    b->writer, seqno);
		if (e == SCL_OK)
			e = scl_capsule_evidence_build(&ev, scl_buf_slice(&pa),
			    scl_buf_slice(&pb));
		if (e == SCL_OK)
			e = scl_capsule_evidence_check(ra, rb, b->capsule,
			    scl_buf_slice(&ev));
		if (e == SCL_OK)
			e = scl_store_put_evidence(s->store, b->capsule,
			    b->writer, seqno, scl_buf_slice(&ev));
	}
	if (e == SCL_OK) {
		s->stats.equivocations++;
		scl_log(&s->log, SCL_LOG_WARN, "server",
		    "equivocation: writer signed two records %s; evidence "
		    "stored", ref);
		if (rlen)
			scl_server__reply_error(s, route, rlen, id,
			    SCL_WIRE_EQUIVOCATION, seqno,
			    "record %s conflicts with the stored one; the "
			    "writer equivocated (evidence stored)", ref);
	} else {
		s->stats.rejected++;
		if (rlen)
			scl_server__reply_error(s, route, rlen, id,
			    SCL_WIRE_REJECTED, seqno,
			    "record %s differs from the stored one", ref);
	}
	scl_store_snapshot_end(snap);
	scl_buf_dispose(&cert);
	free(ra);
	free(rb);
	scl_buf_dispose(&meta_bytes);
	scl_buf_dispose(&pa);
	scl_buf_dispose(&pb);
	scl_buf_dispose(&ev);
}

static void
reply_ack(struct scl_server *s, const uint8_t *route, size_t rlen, uint64_t id,
    const uint8_t *name, const uint8_t *writer, uint64_t seqno,
    const uint8_t *hash, bool duplicate)
{
	struct scl_msg m;

	memset(&m, 0, sizeof(m));
	m.type = SCL_MSG_APPEND | SCL_MSG_REPLY;
	m.id = id;
	m.duplicate = duplicate;
	memcpy(m.server_key, s->key.public_key, SCL_SIGN_PUBLIC_BYTES);
	m.seqno = seqno;
	memcpy(m.hash, hash, SCL_HASH_BYTES);
	scl_receipt_sign(m.receipt, &s->key, name, writer, seqno, hash);
	scl_buf_clear(&s->out);
	if (scl_msg_encode(&s->out, &m, NULL, 0, NULL, 0) == SCL_OK)
		scl_server__send(s, route, rlen, scl_buf_slice(&s->out));
}

enum scl_err
scl_server__accept(struct scl_server *s, const uint8_t *route, size_t rlen,
    uint64_t id, const uint8_t name[SCL_NAME_BYTES], struct scl_slice hb_bytes,
    const struct scl_msg_list *records)
{
	const struct scl_capsule_meta *meta;
	struct scl_capsule_head head;
	struct scl_heartbeat hb;
	struct pending *p;
	struct chain *c;
	char ref[32], cap[9];
	size_t same;
	uint64_t diff;
	enum scl_err e;

	scl_hex_short(cap, name);
	if ((meta = scl_server__meta(s, name)) == NULL) {
		if (rlen)
			scl_server__reply_error(s, route, rlen, id,
			    SCL_WIRE_NOT_FOUND, 0,
			    "unknown capsule %s: send its metadata first", cap);
		return SCL_ENOTFOUND;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		if (rlen)
			scl_server__reply_error(s, route, rlen, id,
			    SCL_WIRE_BUSY, 0, "out of memory");
		return SCL_ENOMEM;
	}
	scl_capsule_batch_init(&p->batch);
	if ((e = decode_batch(&p->batch, records)) != SCL_OK ||
	    (memcmp(p->batch.capsule, name, SCL_NAME_BYTES) != 0 &&
		(e = scl_err_set(SCL_EVERIFY,
		     "records belong to another capsule")) != SCL_OK) ||
	    (e = scl_buf_set(&p->batch.heartbeat, hb_bytes)) != SCL_OK) {
		s->stats.rejected++;
		if (rlen)
			scl_server__reply_error(s, route, rlen, id,
			    SCL_WIRE_REJECTED, 0, "append to %s rejected: %s",
			    cap, scl_err_last());
		pending_free(p);
		return e;
	}
	scl_capsule_record_ref(ref, p->batch.writer, p->batch.first_seqno);
	if ((c = chain_get(s, name, p->batch.writer, &e)) == NULL || c->stale) {
		if (rlen)
			scl_server__reply_error(s, route, rlen, id,
			    c ? SCL_WIRE_BUSY : SCL_WIRE_INTERNAL, 0,
			    "chain of %s is %s", ref,
			    c ? "reloading; retry" : scl_err_last());
		pending_free(p);
		return c ? SCL_EFULL : e;
	}
	if (p->batch.first_seqno > c->head.seqno + 1) {
		s->stats.gaps++;
		if (rlen)
			scl_server__reply_error(s, route, rlen, id,
			    SCL_WIRE_GAP, c->head.seqno,
			    "append starts at %s but this server holds %llu; "
			    "catching up from peers", ref,
			    (unsigned long long)c->head.seqno);
		scl_server__sync_soon(s);
		pending_free(p);
		return SCL_ECONFLICT;
	}
	if (p->batch.first_seqno <= c->head.seqno) {
		/* Overlap: only committed records can be compared. */
		if (c->inflight) {
			if (rlen)
				scl_server__reply_error(s, route, rlen, id,
				    SCL_WIRE_BUSY, 0,
				    "%s overlaps an append in flight; retry",
				    ref);
			pending_free(p);
			return SCL_EFULL;
		}
		if ((e = compare_stored(s, &p->batch, c->head.seqno, &same,
			 &diff)) != SCL_OK) {
			if (rlen)
				scl_server__reply_error(s, route, rlen, id,
				    SCL_WIRE_INTERNAL, 0, "reading %s: %s", ref,
				    scl_err_last());
			pending_free(p);
			return e;
		}
		if (diff) {
			bool signed_ = scl_capsule_heartbeat_covers(&hb,
			    hb_bytes, &p->batch, NULL) == SCL_OK;
			if (signed_)
				handle_conflict(s, route, rlen, id, &p->batch,
				    hb_bytes, diff);
			else if (rlen)
				scl_server__reply_error(s, route, rlen, id,
				    SCL_WIRE_REJECTED, diff,
				    "%s differs from the stored chain and is "
				    "not validly signed", ref);
			pending_free(p);
			return scl_err_set(SCL_EVERIFY, "record %llu differs from "
			    "the stored one%s", (unsigned long long)diff,
			    signed_ ? " (a fork: see the log)" : " and is not "
			    "validly signed");
		}
		if (same == p->batch.n) {
			uint8_t hash[SCL_HASH_BYTES];
			struct scl_record r;
			s->stats.duplicates++;
			scl_log(&s->log, SCL_LOG_DEBUG, "server",
			    "replayed append %s..%llu: already stored", ref,
			    (unsigned long long)(p->batch.first_seqno +
				p->batch.n - 1));
			if (rlen && scl_capsule_record_decode(&r,
					scl_capsule_batch_record(&p->batch,
					    p->batch.n - 1)) == SCL_OK &&
			    scl_capsule_record_hash(hash, &r) == SCL_OK) {
				reply_ack(s, route, rlen, id, name,
				    p->batch.writer, r.seqno, hash, true);
			}
			pending_free(p);
			return SCL_OK;
		}
		/* The first records are stored already, identical. */
		scl_capsule_batch_trim_front(&p->batch, same);
		scl_capsule_record_ref(ref, p->batch.writer,
		    p->batch.first_seqno);
	}
	/* A writer convicted of equivocating is refused from the fork on:
	 * which of its two chains is the real one, nobody can say. */
	{
		uint64_t fork;
		if (scl_store_first_evidence(s->store, name, p->batch.writer,
			&fork) == SCL_OK &&
		    p->batch.first_seqno + p->batch.n - 1 >= fork) {
			s->stats.rejected++;
			if (rlen)
				scl_server__reply_error(s, route, rlen, id,
				    SCL_WIRE_EQUIVOCATION, fork,
				    "append to %s at %s rejected: the writer "
				    "equivocated at record %llu (evidence "
				    "stored)", cap, ref,
				    (unsigned long long)fork);
			pending_free(p);
			return SCL_EVERIFY;
		}
		scl_err_clear();
	}
	/* A revoked writer's records beyond its revocation are refused. */
	{
		uint64_t max;
		if (scl_store_revocation(s->store, name, p->batch.writer, &max) ==
			SCL_OK &&
		    p->batch.first_seqno + p->batch.n - 1 > max) {
			s->stats.rejected++;
			scl_log(&s->log, SCL_LOG_WARN, "server",
			    "append to %s at %s rejected: the writer was "
			    "revoked after record %llu", cap, ref,
			    (unsigned long long)max);
			if (rlen)
				scl_server__reply_error(s, route, rlen, id,
				    SCL_WIRE_REJECTED, max, "the owner revoked "
				    "writer %.8s after its record %llu", ref,
				    (unsigned long long)max);
			pending_free(p);
			return SCL_EVERIFY;
		}
	}
	/* Continues the head: verify every record, then the heartbeat. */
	head = c->head;
	if ((e = scl_capsule_batch_verify(&head, meta->owner, &p->batch,
		 NULL)) != SCL_OK) {
		s->stats.rejected++;
		scl_log(&s->log, SCL_LOG_WARN, "server",
		    "append to %s at %s rejected: %s", cap, ref,
		    scl_err_last());
		if (rlen)
			scl_server__reply_error(s, route, rlen, id,
			    SCL_WIRE_REJECTED, 0, "append rejected: %s",
			    scl_err_last());
		pending_free(p);
		return SCL_EVERIFY;
	}
	c->head = head;
	c->inflight++;
	p->batch.last_lamport = head.lamport;
	p->chain = c;
	if (rlen)
		memcpy(p->route, route, rlen);
	p->route_len = rlen;
	p->req_id = id;
	scl_store_job_single(&p->job, &p->batch);
	scl_server__job_init(s, p);
	if ((e = scl_store_committer_submit(s->committer, &p->job)) != SCL_OK) {
		c->inflight--;
		c->stale = true;
		if (rlen)
			scl_server__reply_error(s, route, rlen, id,
			    SCL_WIRE_INTERNAL, 0, "cannot commit: %s",
			    scl_err_last());
		pending_free(p);
		return e;
	}
	s->stats.records += p->batch.n;
	return SCL_OK;
}

void
scl_server__finish(struct scl_server *s, struct pending *p)
{
	struct scl_capsule_batch *b = &p->batch;
	uint64_t last = b->first_seqno + b->n - 1;
	char ref[32];

	p->chain->inflight--;
	if (p->job.result != SCL_OK) {
		s->stats.commit_failures++;
		p->chain->stale = true;
		scl_log(&s->log, SCL_LOG_ERR, "server",
		    "commit of %s failed: %s",
		    scl_capsule_record_ref(ref, b->writer, b->first_seqno),
		    p->job.message);
		if (p->route_len)
			scl_server__reply_error(s, p->route, p->route_len,
			    p->req_id, SCL_WIRE_INTERNAL, 0, "not stored: %s",
			    p->job.message);
	} else if (p->route_len) {
		reply_ack(s, p->route, p->route_len, p->req_id, b->capsule,
		    b->writer, last, b->hashes[b->n - 1], false);
	}
	pending_free(p);
}
