/*
 * read.c - verified, ordered reads of a range of one writer's chain.
 *
 * Trust flows down from a heartbeat but readers want records in ascending
 * order, so a read makes two passes.  Pass 1 walks down from the heartbeat
 * (first along the skip path, then record by record through the range)
 * verifying everything and remembering the trusted hash at the top of each
 * window of at most WINDOW_BYTES.  Pass 2 takes the windows bottom-up:
 * copies a window's records, verifies them again from the window's
 * trusted top (the source may have changed its answer since pass 1), then
 * hands them out in ascending order.  Memory is one window plus 40 bytes
 * per window.
 */
#include <stdlib.h>
#include <string.h>

#include "capsule_int.h"

#define WINDOW_BYTES ((size_t)8 << 20)
#define WINDOW_RECORDS 4096

struct top {
	uint64_t seqno;
	uint8_t hash[SCL_HASH_BYTES];
};

struct tops {
	struct top *v;
	size_t n, cap;
};

static enum scl_err
tops_push(struct tops *t, uint64_t seqno, const uint8_t *hash)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 16;
		struct top *v = realloc(t->v, cap * sizeof(*v));
		if (v == NULL)
			return scl_err_set(SCL_ENOMEM, "cannot track windows");
		t->v = v;
		t->cap = cap;
	}
	t->v[t->n].seqno = seqno;
	memcpy(t->v[t->n].hash, hash, SCL_HASH_BYTES);
	t->n++;
	return SCL_OK;
}

/* Pass 1: verify @to down to @from, noting window tops (descending). */
static enum scl_err
pass_down(struct tops *tops, struct scl_capsule_chain *chain,
    const struct scl_capsule_source *src, uint64_t top, uint64_t from,
    uint64_t to, struct scl_buf *buf)
{
	uint8_t hash[SCL_HASH_BYTES];
	struct scl_record rec;
	size_t bytes = 0, count = 0;
	enum scl_err e;

	for (uint64_t s = top; s > to; s = scl_capsule_path_next(s, to))
		if ((e = scl_capsule__fetch_checked(src, chain, s, buf, &rec,
			 hash)) != SCL_OK)
			return e;
	for (uint64_t s = to; s >= from; s--) {
		if ((e = scl_capsule__fetch_checked(src, chain, s, buf, &rec,
			 hash)) != SCL_OK)
			return e;
		if (count == 0 && (e = tops_push(tops, s, hash)) != SCL_OK)
			return e;
		bytes += buf->len;
		if (++count == WINDOW_RECORDS || bytes >= WINDOW_BYTES)
			bytes = count = 0;
		if (s == 1)
			break;
	}
	return SCL_OK;
}

/* Pass 2 for one window [lo, t->seqno]: copy, re-verify, hand out. */
static enum scl_err
pass_window(struct scl_capsule_chain *chain,
    const struct scl_capsule_source *src, const uint8_t *name,
    const uint8_t *owner, const uint8_t *writer, const struct top *t,
    uint64_t lo, struct scl_buf *win, struct scl_buf *buf,
    struct scl_buf *plain, struct scl_capsule_opener *opener,
    scl_capsule_record_fn fn, void *ctx)
{
	size_t n = (size_t)(t->seqno - lo + 1), *ends;
	uint8_t hash[SCL_HASH_BYTES];
	struct scl_record rec;
	enum scl_err e = SCL_OK;

	if ((ends = malloc(n * sizeof(*ends))) == NULL)
		return scl_err_set(SCL_ENOMEM, "cannot hold a read window");
	scl_capsule_chain_init_at(chain, name, owner, writer, t->seqno,
	    t->hash);
	scl_buf_clear(win);
	/* Down: verify and stash, highest seqno first. */
	for (size_t i = 0; i < n && e == SCL_OK; i++) {
		e = scl_capsule__fetch_checked(src, chain, t->seqno - i, buf,
		    &rec, hash);
		if (e == SCL_OK)
			e = scl_buf_append(win, buf->ptr, buf->len);
		ends[i] = win->len;
	}
	/* Up: the stash holds trusted bytes; decode and deliver. */
	for (size_t i = n; i-- > 0 && e == SCL_OK;) {
		size_t start = i ? ends[i - 1] : 0;
		struct scl_slice payload;
		char ref[32];

		e = scl_capsule_record_decode(&rec, scl_slice_of(win->ptr +
		    start, ends[i] - start));
		SCL_ASSERT(e == SCL_OK); /* fetch_checked decoded it */
		payload = rec.body;
		if (opener && (rec.flags & SCL_RECORD_FLAG_SEALED)) {
			if ((e = scl_capsule_opener_open(opener, plain, &rec)) !=
			    SCL_OK) {
				e = scl_err_wrap(e, "record %s: does not decrypt: ",
				    scl_capsule_record_ref(ref, writer,
					rec.seqno));
				break;
			}
			payload = scl_buf_slice(plain);
		}
		e = fn(ctx, &rec, payload);
	}
	free(ends);
	return e;
}

enum scl_err
scl_capsule_read_range(const struct scl_capsule_source *src,
    const uint8_t name[SCL_NAME_BYTES],
    const uint8_t owner[SCL_SIGN_PUBLIC_BYTES],
    const uint8_t writer[SCL_WRITER_BYTES], uint64_t from, uint64_t to,
    struct scl_capsule_opener *opener, scl_capsule_record_fn fn, void *ctx)
{
	struct scl_capsule_chain *chain = NULL;
	struct scl_heartbeat hb;
	struct tops tops = { 0 };
	struct scl_buf buf, win, plain;
	enum scl_err e;

	if (from == 0 || from > to)
		return scl_err_set(SCL_EINVAL, "empty or invalid range %llu..%llu",
		    (unsigned long long)from, (unsigned long long)to);
	scl_buf_init(&buf);
	scl_buf_init(&win);
	scl_buf_init(&plain);
	if ((chain = malloc(sizeof(*chain))) == NULL) {
		e = scl_err_set(SCL_ENOMEM, "cannot allocate chain state");
		goto done;
	}
	if ((e = scl_capsule__fetch_heartbeat(src, name, writer, to, &buf,
		 &hb)) != SCL_OK)
		goto done;
	scl_capsule_chain_init(chain, name, owner, &hb);
	if ((e = pass_down(&tops, chain, src, hb.seqno, from, to, &buf)) !=
	    SCL_OK)
		goto done;
	for (size_t i = tops.n; i-- > 0 && e == SCL_OK;) {
		uint64_t lo = i + 1 < tops.n ? tops.v[i + 1].seqno + 1 : from;
		e = pass_window(chain, src, name, owner, writer, &tops.v[i], lo,
		    &win, &buf, &plain, opener, fn, ctx);
	}
done:
	free(chain);
	free(tops.v);
	scl_buf_dispose(&buf);
	scl_buf_dispose_secret(&win);
	scl_buf_dispose_secret(&plain);
	return e;
}
