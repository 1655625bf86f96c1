/*
 * chain.c - trust flowing down a writer's chain, skip paths, and loading a
 * writer's head.
 *
 * Invariant of struct scl_capsule_chain: every pending hash was committed
 * to by the verified heartbeat or by a record already accepted, so it is
 * exactly as trustworthy as the heartbeat's signature.  Pending entries
 * above the last accepted record can never be used again (the walk only
 * goes down) and are pruned, which keeps the set at one entry per link
 * level: at most 64.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capsule_int.h"

void
scl_capsule_chain_init_at(struct scl_capsule_chain *c,
    const uint8_t capsule[SCL_NAME_BYTES],
    const uint8_t owner[SCL_SIGN_PUBLIC_BYTES],
    const uint8_t writer[SCL_WRITER_BYTES], uint64_t seqno,
    const uint8_t hash[SCL_HASH_BYTES])
{
	memset(c, 0, sizeof(*c));
	memcpy(c->capsule, capsule, SCL_NAME_BYTES);
	memcpy(c->owner, owner, SCL_SIGN_PUBLIC_BYTES);
	memcpy(c->writer, writer, SCL_WRITER_BYTES);
	c->pending[0].seqno = seqno;
	c->pending[0].from = 0;
	memcpy(c->pending[0].hash, hash, SCL_HASH_BYTES);
	c->n_pending = 1;
}

void
scl_capsule_chain_init(struct scl_capsule_chain *c,
    const uint8_t capsule[SCL_NAME_BYTES],
    const uint8_t owner[SCL_SIGN_PUBLIC_BYTES],
    const struct scl_heartbeat *top)
{
	scl_capsule_chain_init_at(c, capsule, owner, top->writer, top->seqno,
	    top->hash);
}

static int
pending_find(const struct scl_capsule_chain *c, uint64_t seqno)
{
	for (size_t i = 0; i < c->n_pending; i++)
		if (c->pending[i].seqno == seqno)
			return (int)i;
	return -1;
}

bool
scl_capsule_chain_knows(const struct scl_capsule_chain *c, uint64_t seqno)
{
	return pending_find(c, seqno) >= 0;
}

enum scl_err
scl_capsule_chain_trusted(const struct scl_capsule_chain *c, uint64_t seqno,
    uint8_t out[SCL_HASH_BYTES])
{
	int i = pending_find(c, seqno);

	if (i < 0)
		return scl_err_set(SCL_ENOTFOUND,
		    "no verified record commits to seqno %llu",
		    (unsigned long long)seqno);
	memcpy(out, c->pending[i].hash, SCL_HASH_BYTES);
	return SCL_OK;
}

static void
describe_from(char *out, size_t n, uint64_t from)
{
	if (from == 0)
		snprintf(out, n, "its heartbeat");
	else
		snprintf(out, n, "record %llu", (unsigned long long)from);
}

/* Drops entries at or above @seqno: the walk has passed them. */
static void
pending_prune(struct scl_capsule_chain *c, uint64_t seqno)
{
	size_t j = 0;
	for (size_t i = 0; i < c->n_pending; i++)
		if (c->pending[i].seqno < seqno)
			c->pending[j++] = c->pending[i];
	c->n_pending = j;
}

static enum scl_err
pending_add(struct scl_capsule_chain *c, const char *ref, uint64_t from,
    uint64_t seqno, const uint8_t *hash)
{
	int i = pending_find(c, seqno);

	if (i >= 0) {
		if (memcmp(c->pending[i].hash, hash, SCL_HASH_BYTES) == 0)
			return SCL_OK;
		return scl_err_set(SCL_EVERIFY,
		    "record %s: its link to record %llu contradicts record "
		    "%llu (the writer signed two histories)",
		    ref, (unsigned long long)seqno,
		    (unsigned long long)c->pending[i].from);
	}
	if (c->n_pending == SCL_CHAIN_PENDING_MAX)
		return scl_err_set(SCL_EFORMAT,
		    "record %s: too many unresolved links", ref);
	c->pending[c->n_pending].seqno = seqno;
	c->pending[c->n_pending].from = from;
	memcpy(c->pending[c->n_pending].hash, hash, SCL_HASH_BYTES);
	c->n_pending++;
	return SCL_OK;
}

/* Which record types may stand where (FORMAT.md "Writers"). */
static enum scl_err
check_type_rules(const uint8_t *owner, const uint8_t *writer,
    const struct scl_record *r, const char *ref)
{
	bool is_owner = memcmp(writer, owner, SCL_WRITER_BYTES) == 0;

	if (r->type == SCL_RECORD_CERT && (is_owner || r->seqno != 1))
		return scl_err_set(SCL_EVERIFY,
		    "record %s: a certificate may only open a non-owner chain",
		    ref);
	if (r->type != SCL_RECORD_CERT && !is_owner && r->seqno == 1)
		return scl_err_set(SCL_EVERIFY,
		    "record %s: a non-owner chain must open with its "
		    "certificate", ref);
	if (r->type == SCL_RECORD_REVOKE && !is_owner)
		return scl_err_set(SCL_EVERIFY,
		    "record %s: only the owner may revoke", ref);
	return SCL_OK;
}

/* A CERT record's body must admit its own writer, signed by the owner. */
static enum scl_err
check_cert_body(const uint8_t *capsule, const uint8_t *owner,
    const uint8_t *writer, const struct scl_record *r, const char *ref)
{
	struct scl_capsule_cert cert;
	enum scl_err e;

	if (r->type != SCL_RECORD_CERT)
		return SCL_OK;
	if ((e = scl_capsule_cert_decode(&cert, r->body)) != SCL_OK ||
	    (e = scl_capsule_cert_verify(&cert, capsule, owner, writer)) !=
		SCL_OK)
		return scl_err_wrap(e, "record %s: ", ref);
	return SCL_OK;
}

/* Everything but the certificate body, given the record's hash. */
static enum scl_err
check_hashed(struct scl_capsule_chain *c, const struct scl_record *r,
    const uint8_t hash[SCL_HASH_BYTES])
{
	char ref[32], from[48], cap[9];
	enum scl_err e;
	int at;

	scl_capsule_record_ref(ref, c->writer, r->seqno);
	if (memcmp(r->capsule, c->capsule, SCL_NAME_BYTES) != 0)
		return scl_err_set(SCL_EVERIFY,
		    "record %s: belongs to capsule %s, not this one", ref,
		    scl_hex_short(cap, r->capsule));
	if (memcmp(r->writer, c->writer, SCL_WRITER_BYTES) != 0)
		return scl_err_set(SCL_EVERIFY,
		    "record %s: claims writer %s", ref,
		    scl_hex_short(cap, r->writer));
	if ((at = pending_find(c, r->seqno)) < 0)
		return scl_err_set(SCL_EVERIFY,
		    "record %s: no verified heartbeat or record commits to it",
		    ref);
	describe_from(from, sizeof(from), c->pending[at].from);
	if (memcmp(hash, c->pending[at].hash, SCL_HASH_BYTES) != 0)
		return scl_err_set(SCL_EVERIFY,
		    "record %s: content does not match the hash %s commits to",
		    ref, from);
	if (c->above_seqno == r->seqno + 1 && r->lamport >= c->above_lamport)
		return scl_err_set(SCL_EVERIFY,
		    "record %s: Lamport time %llu is not below record %llu's",
		    ref, (unsigned long long)r->lamport,
		    (unsigned long long)c->above_seqno);
	if ((e = check_type_rules(c->owner, c->writer, r, ref)) != SCL_OK)
		return e;
	pending_prune(c, r->seqno);
	for (unsigned i = 0; i < r->n_links; i++) {
		e = pending_add(c, ref, r->seqno,
		    r->seqno - ((uint64_t)1 << i), r->links + i * SCL_HASH_BYTES);
		if (e != SCL_OK)
			return e;
	}
	c->above_seqno = r->seqno;
	c->above_lamport = r->lamport;
	return SCL_OK;
}

enum scl_err
scl_capsule_chain_check_header(struct scl_capsule_chain *c,
    const struct scl_record *r, const uint8_t body_hash[SCL_HASH_BYTES])
{
	uint8_t hash[SCL_HASH_BYTES];
	enum scl_err e;

	if ((e = scl_capsule_header_hash(hash, r->header, body_hash)) !=
	    SCL_OK)
		return e;
	return check_hashed(c, r, hash);
}

enum scl_err
scl_capsule_chain_check(struct scl_capsule_chain *c, const struct scl_record *r,
    const uint8_t hash[SCL_HASH_BYTES])
{
	char ref[32];
	enum scl_err e;

	if ((e = check_hashed(c, r, hash)) != SCL_OK)
		return e;
	scl_capsule_record_ref(ref, c->writer, r->seqno);
	return check_cert_body(c->capsule, c->owner, c->writer, r, ref);
}

uint64_t
scl_capsule_path_next(uint64_t from, uint64_t target)
{
	unsigned i = scl_capsule__tz(from);
	uint64_t gap = from - target;

	SCL_ASSERT(from > target && target >= 1);
	/* Largest 2^i with i <= tz(from) and 2^i <= gap. */
	while (i > 0 && ((uint64_t)1 << i) > gap)
		i--;
	return from - ((uint64_t)1 << i);
}

enum scl_err
scl_capsule__fetch_checked(const struct scl_capsule_source *src,
    struct scl_capsule_chain *c, uint64_t seqno, struct scl_buf *buf,
    struct scl_record *rec, uint8_t hash[SCL_HASH_BYTES])
{
	char ref[32];
	enum scl_err e;

	scl_capsule_record_ref(ref, c->writer, seqno);
	e = src->record(src->ctx, c->writer, seqno, buf);
	if (e == SCL_ENOTFOUND)
		return scl_err_set(e, "record %s: missing", ref);
	if (e != SCL_OK)
		return scl_err_wrap(e, "record %s: ", ref);
	if ((e = scl_capsule_record_decode(rec, scl_buf_slice(buf))) != SCL_OK)
		return scl_err_wrap(e, "record %s: ", ref);
	if (rec->seqno != seqno)
		return scl_err_set(SCL_EVERIFY,
		    "record %s: stored under seqno %llu but claims %llu", ref,
		    (unsigned long long)seqno, (unsigned long long)rec->seqno);
	if ((e = scl_capsule_record_hash(hash, rec)) != SCL_OK)
		return scl_err_wrap(e, "record %s: ", ref);
	return scl_capsule_chain_check(c, rec, hash);
}

enum scl_err
scl_capsule__fetch_heartbeat(const struct scl_capsule_source *src,
    const uint8_t capsule[SCL_NAME_BYTES], const uint8_t *writer,
    uint64_t seqno, struct scl_buf *buf, struct scl_heartbeat *hb)
{
	char ref[32];
	uint64_t at;
	enum scl_err e;

	scl_capsule_record_ref(ref, writer, seqno);
	if ((e = src->heartbeat_from(src->ctx, writer, seqno, &at, buf)) !=
	    SCL_OK)
		return scl_err_wrap(e, "no heartbeat covers record %s: ", ref);
	scl_capsule_record_ref(ref, writer, at);
	if ((e = scl_capsule_heartbeat_decode(hb, scl_buf_slice(buf))) != SCL_OK)
		return scl_err_wrap(e, "heartbeat %s: ", ref);
	if (hb->seqno != at)
		return scl_err_set(SCL_EVERIFY,
		    "heartbeat %s: claims seqno %llu", ref,
		    (unsigned long long)hb->seqno);
	if (memcmp(hb->capsule, capsule, SCL_NAME_BYTES) != 0 ||
	    memcmp(hb->writer, writer, SCL_WRITER_BYTES) != 0)
		return scl_err_set(SCL_EVERIFY,
		    "heartbeat %s: signed for another capsule or writer", ref);
	if ((e = scl_capsule_heartbeat_verify(hb)) != SCL_OK)
		return scl_err_wrap(e, "heartbeat %s: ", ref);
	return SCL_OK;
}

enum scl_err
scl_capsule_head_load(struct scl_capsule_head *out,
    const struct scl_capsule_source *src, const uint8_t capsule[SCL_NAME_BYTES],
    const uint8_t owner[SCL_SIGN_PUBLIC_BYTES],
    const uint8_t writer[SCL_WRITER_BYTES], uint64_t seqno)
{
	struct scl_capsule_chain *chain = NULL;
	struct scl_heartbeat hb;
	struct scl_record rec;
	struct scl_buf buf;
	uint8_t hash[SCL_HASH_BYTES];
	enum scl_err e = SCL_OK;
	uint64_t s;

	memset(out, 0, sizeof(*out));
	if (seqno == 0)
		return SCL_OK;
	scl_buf_init(&buf);
	if ((chain = calloc(1, sizeof(*chain))) == NULL)
		return scl_err_set(SCL_ENOMEM, "cannot allocate chain state");
	e = scl_capsule__fetch_heartbeat(src, capsule, writer, seqno, &buf, &hb);
	if (e == SCL_ENOTFOUND || (e == SCL_OK && hb.seqno != seqno)) {
		char ref[32];
		e = scl_err_set(SCL_EVERIFY,
		    "record %s: the head is not covered by a heartbeat",
		    scl_capsule_record_ref(ref, writer, seqno));
	}
	if (e != SCL_OK)
		goto done;
	scl_capsule_chain_init(chain, capsule, owner, &hb);
	/* Walk h, h with its lowest set bit cleared, ...: exactly the records
	 * level[i] names, each reached through the link of the one above. */
	for (s = seqno; s != 0; s &= s - 1) {
		if ((e = scl_capsule__fetch_checked(src, chain, s, &buf, &rec,
			 hash)) != SCL_OK)
			goto done;
		if (s == seqno)
			out->lamport = rec.lamport;
		for (unsigned i = 0; i < SCL_LINKS_MAX; i++)
			if (((seqno >> i) << i) == s)
				memcpy(out->level[i], hash, SCL_HASH_BYTES);
	}
	out->seqno = seqno;
done:
	free(chain);
	scl_buf_dispose(&buf);
	if (e != SCL_OK)
		memset(out, 0, sizeof(*out));
	return e;
}

void
scl_capsule__head_push(struct scl_capsule_head *h, uint64_t seqno,
    uint64_t lamport, const uint8_t hash[SCL_HASH_BYTES])
{
	for (unsigned i = 0; i <= scl_capsule__tz(seqno); i++)
		memcpy(h->level[i], hash, SCL_HASH_BYTES);
	h->seqno = seqno;
	h->lamport = lamport;
}

enum scl_err
scl_capsule_head_advance(struct scl_capsule_head *head,
    const uint8_t capsule[SCL_NAME_BYTES],
    const uint8_t owner[SCL_SIGN_PUBLIC_BYTES],
    const uint8_t writer[SCL_WRITER_BYTES], const struct scl_record *r,
    uint8_t hash[SCL_HASH_BYTES])
{
	char ref[32], cap[9];
	enum scl_err e;

	scl_capsule_record_ref(ref, writer, r->seqno);
	if (memcmp(r->capsule, capsule, SCL_NAME_BYTES) != 0)
		return scl_err_set(SCL_EVERIFY,
		    "record %s: belongs to capsule %s", ref,
		    scl_hex_short(cap, r->capsule));
	if (memcmp(r->writer, writer, SCL_WRITER_BYTES) != 0)
		return scl_err_set(SCL_EVERIFY, "record %s: claims writer %s",
		    ref, scl_hex_short(cap, r->writer));
	if (r->seqno != head->seqno + 1)
		return scl_err_set(SCL_EVERIFY,
		    "record %s: expected seqno %llu next", ref,
		    (unsigned long long)head->seqno + 1);
	for (unsigned i = 0; i < r->n_links; i++)
		if (memcmp(r->links + i * SCL_HASH_BYTES, head->level[i],
			SCL_HASH_BYTES) != 0)
			return scl_err_set(SCL_EVERIFY,
			    "record %s: its link to record %llu does not match "
			    "the chain it extends", ref,
			    (unsigned long long)(r->seqno - ((uint64_t)1 << i)));
	if (head->seqno > 0 && r->lamport <= head->lamport)
		return scl_err_set(SCL_EVERIFY,
		    "record %s: Lamport time %llu does not advance past %llu",
		    ref, (unsigned long long)r->lamport,
		    (unsigned long long)head->lamport);
	if ((e = check_type_rules(owner, writer, r, ref)) != SCL_OK ||
	    (e = check_cert_body(capsule, owner, writer, r, ref)) != SCL_OK)
		return e;
	if ((e = scl_capsule_record_hash(hash, r)) != SCL_OK)
		return scl_err_wrap(e, "record %s: ", ref);
	scl_capsule__head_push(head, r->seqno, r->lamport, hash);
	return SCL_OK;
}

enum scl_err
scl_capsule_heartbeat_covers(struct scl_heartbeat *out,
    struct scl_slice hb_bytes, const struct scl_capsule_batch *b,
    const uint8_t *last_hash)
{
	enum scl_err e;

	if (b->n == 0)
		return scl_err_set(SCL_EFORMAT, "empty batch");
	if ((e = scl_capsule_heartbeat_decode(out, hb_bytes)) != SCL_OK)
		return e;
	if (memcmp(out->capsule, b->capsule, SCL_NAME_BYTES) != 0 ||
	    memcmp(out->writer, b->writer, SCL_WRITER_BYTES) != 0 ||
	    out->seqno != b->first_seqno + b->n - 1)
		return scl_err_set(SCL_EVERIFY,
		    "the heartbeat does not sign this batch's last record");
	if (last_hash && memcmp(out->hash, last_hash, SCL_HASH_BYTES) != 0)
		return scl_err_set(SCL_EVERIFY,
		    "the heartbeat signs a different record");
	return scl_capsule_heartbeat_verify(out);
}

enum scl_err
scl_capsule_batch_verify(struct scl_capsule_head *head,
    const uint8_t owner[SCL_SIGN_PUBLIC_BYTES],
    struct scl_capsule_batch *b, struct scl_heartbeat *hb_out)
{
	struct scl_capsule_head next = *head;
	struct scl_heartbeat hb;
	enum scl_err e;

	if (b->n == 0)
		return scl_err_set(SCL_EFORMAT, "empty batch");
	for (size_t i = 0; i < b->n; i++) {
		struct scl_record r;
		if ((e = scl_capsule_record_decode(&r,
			 scl_capsule_batch_record(b, i))) != SCL_OK ||
		    (e = scl_capsule_head_advance(&next, b->capsule, owner,
			 b->writer, &r, b->hashes[i])) != SCL_OK)
			return e;
	}
	/* The head advanced over b's records, so next.seqno is b's last. */
	if ((e = scl_capsule_heartbeat_covers(&hb,
		 scl_buf_slice(&b->heartbeat), b, b->hashes[b->n - 1])) !=
	    SCL_OK)
		return e;
	*head = next;
	if (hb_out)
		*hb_out = hb;
	return SCL_OK;
}
