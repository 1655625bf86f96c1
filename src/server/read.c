/*
 * read.c - a server's read-side requests.  Everything returned is exactly
 * what was stored: clients verify it against the writers' signatures, so
 * the server needs no opinion about it, and a lying server is caught by
 * the client, not trusted by it.
 */
#include <stdlib.h>
#include <string.h>

#include "server_int.h"

#define SYNC_LIMIT_MAX 1024

struct items {
	struct scl_slice *v;
	struct scl_buf *bufs;
	size_t n, cap;
};

static void
items_free(struct items *it)
{
	for (size_t i = 0; i < it->n; i++)
		scl_buf_dispose(&it->bufs[i]);
	free(it->bufs);
	free(it->v);
	memset(it, 0, sizeof(*it));
}

/* A new empty buffer at the end of @it. */
static struct scl_buf *
items_push(struct items *it)
{
	if (it->n == it->cap) {
		size_t cap = it->cap ? 2 * it->cap : 64;
		struct scl_buf *b = realloc(it->bufs, cap * sizeof(*b));
		struct scl_slice *v;
		if (b == NULL)
			return NULL;
		it->bufs = b;
		if ((v = realloc(it->v, cap * sizeof(*v))) == NULL)
			return NULL;
		it->v = v;
		it->cap = cap;
	}
	scl_buf_init(&it->bufs[it->n]);
	return &it->bufs[it->n++];
}

static void
items_seal(struct items *it)
{
	for (size_t i = 0; i < it->n; i++)
		it->v[i] = scl_buf_slice(&it->bufs[i]);
}

static void
reply(struct scl_server *s, const uint8_t *route, size_t rlen,
    struct scl_msg *m, struct items *a, struct items *b)
{
	if (a)
		items_seal(a);
	if (b)
		items_seal(b);
	m->type |= SCL_MSG_REPLY;
	scl_buf_clear(&s->out);
	if (scl_msg_encode(&s->out, m, a ? a->v : NULL, a ? a->n : 0,
		b ? b->v : NULL, b ? b->n : 0) != SCL_OK) {
		scl_server__reply_error(s, route, rlen, m->id, SCL_WIRE_INTERNAL,
		    0, "cannot encode reply: %s", scl_err_last());
		return;
	}
	scl_server__send(s, route, rlen, scl_buf_slice(&s->out));
}

/* Records from..to (bounded by bytes) and every stored heartbeat among
 * them, from one snapshot. */
static void
handle_range(struct scl_server *s, const uint8_t *route, size_t rlen,
    struct scl_msg *m, struct scl_capsule_source *src)
{
	struct items recs = { 0 }, hbs = { 0 };
	size_t bytes = 0, limit = m->limit && m->limit < SCL_READ_BYTES_MAX
	    ? m->limit : SCL_READ_BYTES_MAX;
	uint64_t s_no, at, last = 0;
	struct scl_buf *b;

	if (m->from == 0 || m->from > m->to) {
		scl_server__reply_error(s, route, rlen, m->id,
		    SCL_WIRE_BAD_REQUEST, 0, "bad range %llu..%llu",
		    (unsigned long long)m->from, (unsigned long long)m->to);
		return;
	}
	for (s_no = m->from; s_no <= m->to && bytes < limit; s_no++) {
		if ((b = items_push(&recs)) == NULL)
			break;
		if (src->record(src->ctx, m->writer, s_no, b) != SCL_OK) {
			scl_buf_dispose(b);
			recs.n--;
			break;
		}
		bytes += b->len;
		last = s_no;
		if (s_no == UINT64_MAX)
			break;
	}
	for (s_no = m->from; last && s_no <= last;) {
		if ((b = items_push(&hbs)) == NULL)
			break;
		if (src->heartbeat_from(src->ctx, m->writer, s_no, &at, b) !=
			SCL_OK ||
		    at > last) {
			scl_buf_dispose(b);
			hbs.n--;
			break;
		}
		if (at == UINT64_MAX)
			break;
		s_no = at + 1;
	}
	scl_err_clear();
	memset(&m->blob, 0, sizeof(m->blob));
	reply(s, route, rlen, m, &recs, &hbs);
	items_free(&recs);
	items_free(&hbs);
}

static int
add_head(void *ctx, const uint8_t *writer, const struct scl_store_head *h)
{
	void **args = ctx;
	struct items *it = args[0];
	struct scl_capsule_source *src = args[1];
	struct scl_buf *b = items_push(it);
	uint64_t at;

	if (b == NULL)
		return 1;
	if (src->heartbeat_from(src->ctx, writer, h->seqno, &at, b) != SCL_OK ||
	    at != h->seqno) {
		scl_buf_dispose(b);
		it->n--;
	}
	return 0;
}

struct sync_scan {
	struct scl_server *s;
	struct items *entries;
	uint32_t limit;
	bool more;
	struct scl_buf scratch;
};

struct writers {
	uint8_t (*id)[SCL_WRITER_BYTES];
	uint64_t *seqno;
	uint8_t (*hash)[SCL_HASH_BYTES];
	size_t n, cap;
};

static int
collect_writer(void *ctx, const uint8_t *writer, const struct scl_store_head *h)
{
	struct writers *w = ctx;

	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 16;
		void *a = realloc(w->id, cap * sizeof(*w->id));
		void *b;
		if (a == NULL)
			return 1;
		w->id = a;
		if ((b = realloc(w->seqno, cap * sizeof(*w->seqno))) == NULL)
			return 1;
		w->seqno = b;
		if ((b = realloc(w->hash, cap * sizeof(*w->hash))) == NULL)
			return 1;
		w->hash = b;
		w->cap = cap;
	}
	memcpy(w->id[w->n], writer, SCL_WRITER_BYTES);
	memcpy(w->hash[w->n], h->hash, SCL_HASH_BYTES);
	w->seqno[w->n++] = h->seqno;
	return w->n == UINT16_MAX;
}

static int
sync_capsule(void *ctx, const uint8_t *name, struct scl_slice meta)
{
	struct sync_scan *sc = ctx;
	struct writers w = { 0 };
	struct scl_buf *b;
	(void)meta;

	if (sc->entries->n == sc->limit) {
		sc->more = true;
		return 1;
	}
	if (scl_store_each_writer(sc->s->store, name, collect_writer, &w) !=
		SCL_OK ||
	    (b = items_push(sc->entries)) == NULL ||
	    scl_sync_entry_encode(b, name, (const uint8_t(*)[32])w.id, w.seqno,
		(const uint8_t(*)[32])w.hash, w.n) != SCL_OK) {
		free(w.id);
		free(w.seqno);
		free(w.hash);
		return 1;
	}
	free(w.id);
	free(w.seqno);
	free(w.hash);
	return 0;
}

/* Capsules after the cursor name, each with its writers' heads. */
struct after {
	struct sync_scan *sc;
	const uint8_t *cursor;
	bool started;
};

static int
sync_after(void *ctx, const uint8_t *name, struct scl_slice meta)
{
	struct after *a = ctx;
	static const uint8_t zero[SCL_NAME_BYTES];

	if (!a->started) {
		if (memcmp(a->cursor, zero, SCL_NAME_BYTES) != 0 &&
		    memcmp(name, a->cursor, SCL_NAME_BYTES) <= 0)
			return 0;
		a->started = true;
	}
	return sync_capsule(a->sc, name, meta);
}

static void
handle_sync(struct scl_server *s, const uint8_t *route, size_t rlen,
    struct scl_msg *m)
{
	struct items entries = { 0 };
	struct sync_scan sc = { s, &entries, 0, false, { 0 } };
	struct after a = { &sc, m->name, false };

	sc.limit = m->limit && m->limit < SYNC_LIMIT_MAX ? m->limit
						       : SYNC_LIMIT_MAX;
	if (scl_store_each_capsule(s->store, sync_after, &a) != SCL_OK) {
		scl_server__reply_error(s, route, rlen, m->id,
		    SCL_WIRE_INTERNAL, 0, "listing capsules: %s",
		    scl_err_last());
		items_free(&entries);
		return;
	}
	m->more = sc.more;
	reply(s, route, rlen, m, &entries, NULL);
	items_free(&entries);
}

static int
add_evidence(void *ctx, const uint8_t *w, uint64_t seqno, struct scl_slice ev)
{
	struct items *it = ctx;
	struct scl_buf *b = items_push(it);
	(void)w;
	(void)seqno;
	return b == NULL || scl_buf_set(b, ev) != SCL_OK;
}

void
scl_server__handle_read(struct scl_server *s, const uint8_t *route,
    size_t rlen, const struct scl_msg *req)
{
	struct scl_store_snapshot *snap = NULL;
	struct scl_capsule_source src;
	struct scl_msg m = *req;
	struct items it = { 0 };
	struct scl_buf buf, meta;
	uint8_t writer[SCL_WRITER_BYTES];
	uint64_t at, seqno;
	enum scl_err e;

	if (m.type == SCL_MSG_SYNC) {
		handle_sync(s, route, rlen, &m);
		return;
	}
	if (scl_server__meta(s, m.name) == NULL) {
		scl_server__reply_error(s, route, rlen, m.id, SCL_WIRE_NOT_FOUND,
		    0, "unknown capsule");
		return;
	}
	if (scl_store_snapshot_begin(&snap, s->store, m.name) != SCL_OK) {
		scl_server__reply_error(s, route, rlen, m.id, SCL_WIRE_INTERNAL,
		    0, "%s", scl_err_last());
		return;
	}
	scl_store_snapshot_source(&src, snap);
	scl_buf_init(&buf);
	scl_buf_init(&meta);
	switch (m.type) {
	case SCL_MSG_READ:
		handle_range(s, route, rlen, &m, &src);
		break;
	case SCL_MSG_READ_HASH:
		if (scl_store_find_hash(s->store, m.name, m.hash, writer,
			&seqno) != SCL_OK ||
		    src.record(src.ctx, writer, seqno, &buf) != SCL_OK) {
			scl_server__reply_error(s, route, rlen, m.id,
			    SCL_WIRE_NOT_FOUND, 0, "no heartbeat-signed record "
			    "with that hash");
			break;
		}
		m.blob = scl_buf_slice(&buf);
		reply(s, route, rlen, &m, NULL, NULL);
		break;
	case SCL_MSG_HEADS: {
		void *args[2] = { &it, &src };
		if (scl_store_each_writer(s->store, m.name, add_head, args) !=
		    SCL_OK) {
			scl_server__reply_error(s, route, rlen, m.id,
			    SCL_WIRE_INTERNAL, 0, "%s", scl_err_last());
			break;
		}
		reply(s, route, rlen, &m, &it, NULL);
		break;
	}
	case SCL_MSG_HEARTBEAT:
		if (src.heartbeat_from(src.ctx, m.writer, m.seqno, &at, &buf) !=
		    SCL_OK) {
			scl_server__reply_error(s, route, rlen, m.id,
			    SCL_WIRE_NOT_FOUND, 0, "no heartbeat at or above %llu",
			    (unsigned long long)m.seqno);
			break;
		}
		m.blob = scl_buf_slice(&buf);
		reply(s, route, rlen, &m, NULL, NULL);
		break;
	case SCL_MSG_PROOF:
		/* The proof carries the certificate of a non-owner writer:
		 * the body of its chain's first record. */
		e = scl_store_get_meta(s->store, m.name, &meta);
		if (e == SCL_OK) {
			struct scl_buf first, cert;
			struct scl_record r;
			scl_buf_init(&first);
			scl_buf_init(&cert);
			if (src.record(src.ctx, m.writer, 1, &first) == SCL_OK &&
			    scl_capsule_record_decode(&r, scl_buf_slice(&first)) ==
				SCL_OK &&
			    r.type == SCL_RECORD_CERT)
				e = scl_buf_set(&cert, r.body);
			if (e == SCL_OK)
				e = scl_capsule_proof_build(&buf, &src,
				    scl_buf_slice(&meta), scl_buf_slice(&cert),
				    m.writer, m.seqno);
			scl_buf_dispose(&first);
			scl_buf_dispose(&cert);
		}
		if (e != SCL_OK) {
			scl_server__reply_error(s, route, rlen, m.id,
			    SCL_WIRE_NOT_FOUND, 0, "%s", scl_err_last());
			break;
		}
		m.blob = scl_buf_slice(&buf);
		reply(s, route, rlen, &m, NULL, NULL);
		break;
	case SCL_MSG_EVIDENCE:
		if (scl_store_each_evidence(s->store, m.name, add_evidence,
			&it) != SCL_OK) {
			scl_server__reply_error(s, route, rlen, m.id,
			    SCL_WIRE_INTERNAL, 0, "%s", scl_err_last());
			break;
		}
		reply(s, route, rlen, &m, &it, NULL);
		break;
	}
	items_free(&it);
	scl_buf_dispose(&buf);
	scl_buf_dispose(&meta);
	scl_store_snapshot_end(snap);
}
