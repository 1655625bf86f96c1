/*
 * sync.c - anti-entropy between servers.
 *
 * Every sync period a server asks each peer for its capsules and each
 * writer's head: seqno and hash (SYNC, paginated).  Where a peer holds
 * more of a chain, it pulls the missing range (READ), from its own head's
 * seqno on, and feeds it, split at the peer's heartbeats, through the
 * same verification as a client's append; where it lacks a capsule's
 * metadata, it fetches that first (META_GET).  A head whose hash differs
 * from this server's record at that seqno (a fork: the writer signed two
 * records at one seqno) is pulled too, and the append path, finding the
 * stored record differ from a validly signed one, keeps the evidence
 * (append.c); a writer with evidence is pulled no more.
 * Records are self-verifying, so a lying peer can delay catching up but
 * can never make this server store anything a writer did not sign; no
 * consensus is involved (docs/PROTOCOL.md "Replication").
 *
 * One request per peer is outstanding at a time; a peer that does not
 * answer within PEER_TIMEOUT_MS is retried at the next period.
 */
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "scl/codec.h"
#include "scl/zsock.h"
#include "server_int.h"

#define PEER_TIMEOUT_MS 2000
#define SYNC_PAGE 256

enum scl_err
scl_server__peers_open(struct scl_server *s)
{
	struct scl_zsock_options zo = SCL_ZSOCK_OPTIONS_INIT;
	enum scl_err e;

	zo.max_msg_bytes = (int64_t)SCL_MSG_MAX;
	zo.immediate = true;
	for (size_t i = 0; i < s->n_peers; i++) {
		struct peer *p = &s->peers[i];
		if ((p->pulls = calloc(PULLS_MAX, sizeof(*p->pulls))) == NULL)
			return scl_err_set(SCL_ENOMEM, "peer queue");
		zo.connect = p->addr;
		if ((e = scl_zsock_open(&p->sock, s->zctx, ZMQ_DEALER, &zo)) !=
		    SCL_OK)
			return scl_err_wrap(e, "peer: ");
	}
	return SCL_OK;
}

void
scl_server__peers_close(struct scl_server *s)
{
	for (size_t i = 0; i < s->n_peers; i++) {
		if (s->peers[i].sock)
			zmq_close(s->peers[i].sock);
		s->peers[i].sock = NULL;
		free(s->peers[i].pulls);
		s->peers[i].pulls = NULL;
	}
}

void
scl_server__sync_soon(struct scl_server *s)
{
	for (size_t i = 0; i < s->n_peers; i++)
		s->peers[i].next_sync_ms = 0;
}

static void
pull_push(struct peer *p, uint8_t kind, const uint8_t *name,
    const uint8_t *writer, uint64_t from, uint64_t to)
{
	struct pull *q;

	if (p->pull_n == PULLS_MAX)
		return; /* the next sync period finds it again */
	q = &p->pulls[(p->pull_head + p->pull_n) % PULLS_MAX];
	q->kind = kind;
	memcpy(q->name, name, SCL_NAME_BYTES);
	if (writer)
		memcpy(q->writer, writer, SCL_WRITER_BYTES);
	q->from = from;
	q->to = to;
	p->pull_n++;
}

static void
peer_send(struct scl_server *s, struct peer *p, struct scl_msg *m,
    uint64_t now)
{
	m->id = ++s->next_id;
	scl_buf_clear(&s->out);
	if (scl_msg_encode(&s->out, m, NULL, 0, NULL, 0) != SCL_OK ||
	    zmq_send(p->sock, s->out.ptr, s->out.len, ZMQ_DONTWAIT) < 0) {
		p->waiting = 0;
		p->failures++;
		return;
	}
	p->waiting = m->type;
	p->req_id = m->id;
	p->sent_ms = now;
}

/* Starts the next pull, or a new SYNC round when the period is due. */
static void
peer_next(struct scl_server *s, struct peer *p, uint64_t now)
{
	struct scl_msg m;

	memset(&m, 0, sizeof(m));
	if (p->pull_n) {
		struct pull *q = &p->current;
		*q = p->pulls[p->pull_head];
		p->pull_head = (p->pull_head + 1) % PULLS_MAX;
		p->pull_n--;
		m.type = q->kind;
		memcpy(m.name, q->name, SCL_NAME_BYTES);
		memcpy(m.writer, q->writer, SCL_WRITER_BYTES);
		m.from = q->from;
		m.to = q->to;
		m.limit = (uint32_t)SCL_READ_BYTES_MAX;
		peer_send(s, p, &m, now);
		return;
	}
	if (now < p->next_sync_ms)
		return;
	memset(&p->current, 0, sizeof(p->current));
	m.type = SCL_MSG_SYNC;
	memcpy(m.name, p->cursor, SCL_NAME_BYTES);
	m.limit = SYNC_PAGE;
	peer_send(s, p, &m, now);
}

void
scl_server__sync_tick(struct scl_server *s, uint64_t now)
{
	for (size_t i = 0; i < s->n_peers; i++) {
		struct peer *p = &s->peers[i];
		if (p->waiting && now - p->sent_ms > PEER_TIMEOUT_MS) {
			p->waiting = 0;
			p->failures++;
			p->pull_n = 0;
			memset(p->cursor, 0, SCL_NAME_BYTES);
			p->next_sync_ms = now + s->opt.sync_ms;
		}
		if (!p->waiting)
			peer_next(s, p, now);
	}
}

/* The hash of this server's stored record (@writer, @seqno); false if
 * it holds none (or it is still on its way to the store). */
static bool
stored_hash(struct scl_server *s, const uint8_t *name, const uint8_t *writer,
    uint64_t seqno, uint8_t hash[SCL_HASH_BYTES])
{
	struct scl_record r;
	struct scl_buf b;
	bool ok;

	scl_buf_init(&b);
	ok = scl_store_get_record(s->store, name, writer, seqno, &b) ==
		SCL_OK &&
	    scl_capsule_record_decode(&r, scl_buf_slice(&b)) == SCL_OK &&
	    scl_capsule_record_hash(hash, &r) == SCL_OK;
	scl_buf_dispose(&b);
	scl_err_clear();
	return ok;
}

/*
 * What to pull of one writer a peer listed: the records beyond this
 * server's head, from its head's seqno (the overlap shows a fork there),
 * or the peer's head record alone when it differs from the one stored at
 * that seqno.  Nothing of a writer already convicted of equivocating.
 */
static void
compare_head(struct scl_server *s, struct peer *p, const uint8_t *name,
    const uint8_t *writer, uint64_t theirs, const uint8_t *their_hash)
{
	uint64_t ours = scl_server__verified_head(s, name, writer), fork;
	uint8_t hash[SCL_HASH_BYTES];

	if (scl_store_first_evidence(s->store, name, writer, &fork) == SCL_OK)
		return;
	scl_err_clear();
	if (theirs > ours) {
		pull_push(p, SCL_MSG_READ, name, writer, ours ? ours : 1,
		    theirs);
		return;
	}
	if (their_hash && theirs >= 1 &&
	    stored_hash(s, name, writer, theirs, hash) &&
	    memcmp(hash, their_hash, SCL_HASH_BYTES) != 0)
		pull_push(p, SCL_MSG_READ, name, writer, theirs, theirs);
}

/* Queues what this server lacks of the capsules a peer listed. */
static void
on_sync(struct scl_server *s, struct peer *p, const struct scl_msg *m,
    uint64_t now)
{
	struct scl_msg_iter it;
	struct scl_slice item;
	struct scl_sync_entry e;

	scl_msg_iter_init(&it, &m->list);
	while (scl_msg_iter_next(&it, &item)) {
		if (scl_sync_entry_decode(&e, item) != SCL_OK)
			continue;
		memcpy(p->cursor, e.name, SCL_NAME_BYTES);
		if (scl_server__meta(s, e.name) == NULL) {
			scl_err_clear();
			pull_push(p, SCL_MSG_META_GET, e.name, NULL, 0, 0);
			continue; /* heads are pulled next round */
		}
		for (size_t i = 0; i < e.n; i++) {
			const uint8_t *writer, *hash;
			uint64_t theirs;
			scl_sync_entry_head(&e, i, &writer, &theirs, &hash);
			compare_head(s, p, e.name, writer, theirs, hash);
		}
	}
	if (!m->more) {
		memset(p->cursor, 0, SCL_NAME_BYTES);
		p->next_sync_ms = now + s->opt.sync_ms;
		p->syncs++;
		p->last_ok_ms = now;
	}
}

/* Splits pulled records at the peer's heartbeats and verifies each piece
 * as an append; a tail not covered by a heartbeat waits for the next
 * pull.  Returns the last seqno accepted. */
static uint64_t
on_read(struct scl_server *s, struct peer *p, const struct scl_msg *m,
    const struct pull *q)
{
	struct scl_msg_iter hi, ri;
	struct scl_slice hb, rec;
	struct scl_buf list;
	uint64_t accepted = q->from - 1, next = q->from;
	char ref[32];

	scl_buf_init(&list);
	scl_msg_iter_init(&hi, &m->list2);
	scl_msg_iter_init(&ri, &m->list);
	while (scl_msg_iter_next(&hi, &hb)) {
		struct scl_heartbeat h;
		struct scl_msg_list piece;
		uint32_t n = 0;
		if (scl_capsule_heartbeat_decode(&h, hb) != SCL_OK ||
		    h.seqno < next)
			break;
		scl_buf_clear(&list);
		while (next <= h.seqno && scl_msg_iter_next(&ri, &rec)) {
			uint8_t len[4];
			scl_le32_store(len, (uint32_t)rec.len);
			if (scl_buf_append(&list, len, 4) != SCL_OK ||
			    scl_buf_append(&list, rec.ptr, rec.len) != SCL_OK)
				goto done;
			n++;
			next++;
		}
		if (next != h.seqno + 1)
			break; /* the peer sent fewer records than it signed */
		piece.n = n;
		piece.raw = scl_buf_slice(&list);
		if (scl_server__accept(s, NULL, 0, 0, q->name, hb, &piece) !=
		    SCL_OK) {
			scl_log(&s->log, SCL_LOG_WARN, "sync",
			    "pull of %s from %s refused: %s",
			    scl_capsule_record_ref(ref, q->writer, h.seqno),
			    p->addr, scl_err_last());
			break;
		}
		accepted = h.seqno;
	}
done:
	scl_buf_dispose(&list);
	if (accepted >= q->from) {
		p->pulled_records += accepted - q->from + 1;
		scl_log(&s->log, SCL_LOG_INFO, "sync",
		    "pulled records %llu..%llu of %s from %s",
		    (unsigned long long)q->from, (unsigned long long)accepted,
		    scl_capsule_record_ref(ref, q->writer, accepted), p->addr);
	}
	return accepted;
}

void
scl_server__peer_input(struct scl_server *s, struct peer *p)
{
	uint64_t now = scl_server__now_ms();

	for (;;) {
		zmq_msg_t frame;
		struct scl_msg m;
		struct pull q;
		uint8_t want = p->waiting;

		zmq_msg_init(&frame);
		if (zmq_msg_recv(&frame, p->sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&frame);
			return;
		}
		if (scl_msg_decode(&m, scl_slice_of(zmq_msg_data(&frame),
					   zmq_msg_size(&frame))) != SCL_OK ||
		    want == 0 || m.id != p->req_id) {
			zmq_msg_close(&frame); /* late or garbled: ignore */
			continue;
		}
		p->waiting = 0;
		q = p->current;
		if (m.type == (SCL_MSG_SYNC | SCL_MSG_REPLY)) {
			on_sync(s, p, &m, now);
		} else if (m.type == (SCL_MSG_META_GET | SCL_MSG_REPLY)) {
			uint8_t name[SCL_NAME_BYTES];
			if (scl_server__put_meta(s, m.blob, name) != SCL_OK ||
			    memcmp(name, q.name, SCL_NAME_BYTES) != 0)
				scl_log(&s->log, SCL_LOG_WARN, "sync",
				    "peer %s sent bad metadata: %s", p->addr,
				    scl_err_last());
		} else if (m.type == (SCL_MSG_READ | SCL_MSG_REPLY)) {
			uint64_t got = on_read(s, p, &m, &q);
			if (got >= q.from && got < q.to)
				pull_push(p, SCL_MSG_READ, q.name, q.writer,
				    got + 1, q.to);
		} else {
			p->failures++;
		}
		p->last_ok_ms = now;
		zmq_msg_close(&frame);
		peer_next(s, p, now);
	}
}
