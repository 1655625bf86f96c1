/*
 * verify.c - whole-chain verification of one writer.
 *
 * Order of trust: every stored heartbeat's signature first (so a forged
 * heartbeat is named as such), then the chain walked down from the newest
 * heartbeat, so the first record that fails is the one that was changed,
 * not its successor.  Memory: 40 bytes per heartbeat plus the O(1) chain
 * state; records are copied out of the source one at a time.
 */
#include <stdlib.h>
#include <string.h>

#include "capsule_int.h"

struct hb_entry {
	uint64_t seqno;
	uint8_t hash[SCL_HASH_BYTES];
};

struct hb_list {
	struct hb_entry *v;
	size_t n, cap;
	struct scl_heartbeat top;
};

static enum scl_err
hb_push(struct hb_list *l, const struct scl_heartbeat *hb)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct hb_entry *v = realloc(l->v, cap * sizeof(*v));
		if (v == NULL)
			return scl_err_set(SCL_ENOMEM,
			    "cannot hold %zu heartbeats", cap);
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n].seqno = hb->seqno;
	memcpy(l->v[l->n].hash, hb->hash, SCL_HASH_BYTES);
	l->n++;
	l->top = *hb;
	return SCL_OK;
}

/* Reads and verifies every stored heartbeat of the writer, ascending. */
static enum scl_err
collect_heartbeats(struct hb_list *l, const struct scl_capsule_source *src,
    const uint8_t name[SCL_NAME_BYTES], const uint8_t *writer,
    uint64_t head_seqno, struct scl_buf *buf)
{
	struct scl_heartbeat hb;
	uint64_t at, next = 1;
	char ref[32];
	enum scl_err e;

	for (;;) {
		e = src->heartbeat_from(src->ctx, writer, next, &at, buf);
		if (e == SCL_ENOTFOUND)
			break;
		scl_capsule_record_ref(ref, writer, at);
		if (e != SCL_OK)
			return scl_err_wrap(e, "heartbeat %s: ", ref);
		if (at > head_seqno)
			return scl_err_set(SCL_EVERIFY,
			    "heartbeat %s: above the newest record %llu", ref,
			    (unsigned long long)head_seqno);
		if ((e = scl_capsule_heartbeat_decode(&hb, scl_buf_slice(buf))) !=
		    SCL_OK)
			return scl_err_wrap(e, "heartbeat %s: ", ref);
		if (hb.seqno != at)
			return scl_err_set(SCL_EVERIFY,
			    "heartbeat %s: claims seqno %llu", ref,
			    (unsigned long long)hb.seqno);
		if (memcmp(hb.capsule, name, SCL_NAME_BYTES) != 0 ||
		    memcmp(hb.writer, writer, SCL_WRITER_BYTES) != 0)
			return scl_err_set(SCL_EVERIFY,
			    "heartbeat %s: signed for another capsule or writer",
			    ref);
		if ((e = scl_capsule_heartbeat_verify(&hb)) != SCL_OK)
			return scl_err_wrap(e, "heartbeat %s: ", ref);
		if ((e = hb_push(l, &hb)) != SCL_OK)
			return e;
		if (at == UINT64_MAX)
			break;
		next = at + 1;
	}
	scl_err_clear();
	return SCL_OK;
}

/* A REVOKE record that verified (chain checks admit them from the owner
 * only). */
static enum scl_err
add_revocation(struct scl_capsule_revocations *r, const struct scl_record *rec)
{
	struct scl_revocation rv;
	char ref[32];
	enum scl_err e;

	if ((e = scl_revocation_decode(&rv, rec->body)) != SCL_OK)
		return scl_err_wrap(e, "record %s: ",
		    scl_capsule_record_ref(ref, rec->writer, rec->seqno));
	return scl_capsule_revocations_add(r, &rv, rec->seqno);
}

void
scl_capsule_revocations_dispose(struct scl_capsule_revocations *r)
{
	free(r->v);
	memset(r, 0, sizeof(*r));
}

enum scl_err
scl_capsule_revocations_add(struct scl_capsule_revocations *r,
    const struct scl_revocation *rv, uint64_t by_seqno)
{
	struct scl_capsule_revoked *x = (struct scl_capsule_revoked *)
	    scl_capsule_revocations_find(r, rv->writer);

	if (x == NULL) {
		if (r->n == r->cap) {
			size_t cap = r->cap ? 2 * r->cap : 8;
			x = realloc(r->v, cap * sizeof(*x));
			if (x == NULL)
				return scl_err_set(SCL_ENOMEM, "revocations");
			r->v = x;
			r->cap = cap;
		}
		x = &r->v[r->n++];
		memcpy(x->writer, rv->writer, SCL_WRITER_BYTES);
		x->max_seqno = UINT64_MAX;
	}
	if (rv->max_seqno < x->max_seqno) {
		x->max_seqno = rv->max_seqno;
		x->by_seqno = by_seqno;
	}
	return SCL_OK;
}

const struct scl_capsule_revoked *
scl_capsule_revocations_find(const struct scl_capsule_revocations *r,
    const uint8_t writer[SCL_WRITER_BYTES])
{
	for (size_t i = 0; i < r->n; i++)
		if (memcmp(r->v[i].writer, writer, SCL_WRITER_BYTES) == 0)
			return &r->v[i];
	return NULL;
}

enum scl_err
scl_capsule_verify_chain(struct scl_capsule_verify_stats *stats,
    const struct scl_capsule_source *src, const uint8_t name[SCL_NAME_BYTES],
    const struct scl_capsule_meta *meta, const uint8_t writer[SCL_WRITER_BYTES],
    uint64_t head_seqno, struct scl_capsule_opener *opener)
{
	struct scl_capsule_chain *chain = NULL;
	struct hb_list hbs = { 0 };
	struct scl_buf buf, plain;
	struct scl_record rec;
	uint8_t hash[SCL_HASH_BYTES];
	char ref[32];
	size_t next_hb;
	enum scl_err e;

	scl_buf_init(&buf);
	scl_buf_init(&plain);
	if (head_seqno == 0)
		return SCL_OK;
	if ((e = collect_heartbeats(&hbs, src, name, writer, head_seqno,
		 &buf)) != SCL_OK)
		goto done;
	scl_capsule_record_ref(ref, writer, head_seqno);
	if (hbs.n == 0 || hbs.top.seqno != head_seqno) {
		e = scl_err_set(SCL_EVERIFY,
		    "record %s: no heartbeat covers records %llu..%llu", ref,
		    (unsigned long long)(hbs.n ? hbs.top.seqno + 1 : 1),
		    (unsigned long long)head_seqno);
		goto done;
	}
	if ((chain = malloc(sizeof(*chain))) == NULL) {
		e = scl_err_set(SCL_ENOMEM, "cannot allocate chain state");
		goto done;
	}
	scl_capsule_chain_init(chain, name, meta->owner, &hbs.top);
	next_hb = hbs.n - 1;
	for (uint64_t s = head_seqno; s >= 1; s--) {
		if ((e = scl_capsule__fetch_checked(src, chain, s, &buf, &rec,
			 hash)) != SCL_OK)
			goto done;
		if (next_hb < hbs.n && hbs.v[next_hb].seqno == s) {
			if (memcmp(hbs.v[next_hb].hash, hash, SCL_HASH_BYTES)) {
				e = scl_err_set(SCL_EVERIFY,
				    "heartbeat %s: the writer equivocated: it "
				    "signed a different record at this seqno",
				    scl_capsule_record_ref(ref, writer, s));
				goto done;
			}
			next_hb--; /* wraps past 0 to SIZE_MAX: then done */
		}
		if (opener && (rec.flags & SCL_RECORD_FLAG_SEALED)) {
			if ((e = scl_capsule_opener_open(opener, &plain, &rec)) !=
			    SCL_OK) {
				e = scl_err_wrap(e, "record %s: does not decrypt: ",
				    scl_capsule_record_ref(ref, writer, s));
				goto done;
			}
			stats->opened++;
			stats->payload_bytes += plain.len;
		}
		if (rec.type == SCL_RECORD_REVOKE && stats->revocations &&
		    (e = add_revocation(stats->revocations, &rec)) != SCL_OK)
			goto done;
		stats->records++;
		stats->body_bytes += rec.body.len;
	}
	stats->heartbeats += hbs.n;
	e = SCL_OK;
done:
	free(chain);
	free(hbs.v);
	scl_buf_dispose(&buf);
	scl_buf_dispose_secret(&plain);
	return e;
}
