/*
 * fetcher.c - the fetcher thread of a worker's host: reads from the
 * capsule servers what the core asks for (a gap in a peer's chain, or
 * everything, for a worker starting late) and hands it to the main loop
 * as batch messages, which the core verifies like any peer's.
 *
 * Requests from the main loop: writer, u64 from, u64 to (FETCH_REQUEST_
 * BYTES), or empty (stop).  Messages back: a KVS batch message each, and
 * one empty frame once the catch-up is done.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "scl/codec.h"
#include "scl/kv.h"
#include "scl/proto.h"
#include "scl/zsock.h"
#include "worker_int.h"

/* A fetched message holds whole signed groups: once it reaches
 * FETCH_MSG_SOFT bytes no group is added, and a group that would take
 * it past the KVS message's limits waits for the next message.  Big
 * enough that a catching-up replica checks one signature per many
 * records; small enough for the core's ring. */
#define FETCH_MSG_SOFT ((size_t)4 << 20)
#define FETCH_MSG_BYTES SCL_APPEND_BYTES_MAX
#define FETCH_MSG_RECORDS SCL_APPEND_RECORDS_MAX

/* Adds @writer's records @from..@at to @b; false (and @b as it was) if
 * the server does not return them or they would overfill the message. */
static bool
fetch_group(struct scl_capsule_source *src, const uint8_t *writer,
    uint64_t from, uint64_t at, struct scl_capsule_batch *b,
    struct scl_buf *rec)
{
	static const uint8_t unhashed[SCL_HASH_BYTES]; /* the core hashes */
	size_t n = b->n;

	if (at - from >= FETCH_MSG_RECORDS - n)
		return false;
	for (uint64_t sq = from; sq <= at; sq++)
		if (src->record(src->ctx, writer, sq, rec) != SCL_OK ||
		    scl_capsule_batch_add(b, scl_buf_slice(rec), unhashed) !=
			SCL_OK ||
		    b->data.len > FETCH_MSG_BYTES) {
			scl_capsule_batch_truncate(b, n);
			return false;
		}
	return true;
}

/* Reads @writer's @from..@to from server @i and sends it to the main
 * loop as batch messages, each ending at a heartbeat the server stores
 * (so the core checks one signature per message).  Returns the first
 * seqno not sent. */
static uint64_t
fetch_range(struct host *h, struct scl_client *c, size_t i,
    const uint8_t *writer, uint64_t from, uint64_t to, void *s)
{
	struct scl_client_reader rd;
	struct scl_capsule_source src;
	struct scl_capsule_batch b;
	struct scl_buf rec, hb, msg;
	uint64_t next = from;

	scl_client_reader_init(&rd, c, i, h->name);
	src = scl_client_reader_source(&rd);
	scl_capsule_batch_init(&b);
	scl_buf_init(&rec);
	scl_buf_init(&hb);
	scl_buf_init(&msg);
	while (next <= to && !atomic_load(&h->closing)) {
		uint64_t sq = next, at;
		scl_capsule_batch_clear(&b);
		while (sq <= to && b.data.len < FETCH_MSG_SOFT &&
		    src.heartbeat_from(src.ctx, writer, sq, &at, &hb) ==
			SCL_OK &&
		    at >= sq && fetch_group(&src, writer, sq, at, &b, &rec) &&
		    scl_buf_set(&b.heartbeat, scl_buf_slice(&hb)) == SCL_OK)
			sq = at + 1;
		/* A group that failed took its records back, so b ends
		 * where its heartbeat signs, unless that heartbeat could
		 * not be kept. */
		if (b.n && b.first_seqno + b.n != sq)
			break;
		if (b.n == 0 || scl_kv_msg_from_batch(&msg, &b) != SCL_OK)
			break;
		(void)zmq_send(s, msg.ptr, msg.len, 0);
		next = sq;
	}
	scl_err_clear();
	scl_buf_dispose(&rec);
	scl_buf_dispose(&hb);
	scl_buf_dispose(&msg);
	scl_capsule_batch_dispose(&b);
	scl_client_reader_dispose(&rd);
	return next;
}

/*
 * Everything every writer stored, for a worker starting late: the
 * writers a read quorum (N - W + 1 servers) knows, each up to the newest
 * head a read quorum reports, so that "caught up" includes every write a
 * write quorum acknowledged before it began, even if one server lags or
 * was rolled back.  With fewer servers answering it takes what those
 * hold, and says so.
 */
static void
catch_up(struct host *h, struct scl_client *c, void *s)
{
	uint8_t (*writers)[SCL_WRITER_BYTES] = calloc(1024, SCL_WRITER_BYTES);
	unsigned rq = scl_capsule_read_quorum(&h->meta, h->opt.n_servers);
	bool partial = false;
	size_t nw = 0;

	if (writers == NULL)
		goto done;
	if (scl_client_writers(c, h->name, rq, writers, 1024, &nw) != SCL_OK) {
		partial = true;
		if (scl_client_writers(c, h->name, 1, writers, 1024, &nw) !=
		    SCL_OK)
			goto done;
	}
	for (size_t k = 0; k < nw && !atomic_load(&h->closing); k++) {
		struct scl_client_heads heads;
		/* Once a read quorum was out of reach, one answer will do:
		 * the wait for the missing servers is paid once, not per
		 * writer. */
		if (scl_client_heads(c, h->name, writers[k], partial ? 1 : rq,
			&heads) != SCL_OK) {
			if (partial || scl_client_heads(c, h->name, writers[k],
					   1, &heads) != SCL_OK)
				continue;
			partial = true;
		}
		if (heads.best > 0)
			(void)fetch_range(h, c, heads.best_server, writers[k],
			    1, heads.best, s);
	}
done:
	if (partial)
		scl_log(&h->w->opt.log, SCL_LOG_WARN, "worker",
		    "catching up from fewer servers than a read quorum (%u of "
		    "%zu): writes only the others hold arrive later, through "
		    "the peers' syncs", rq, h->opt.n_servers);
	scl_err_clear();
	free(writers);
	(void)zmq_send(s, "", 0, 0); /* caught up */
}

/* What the core asked for of one writer. */
struct fetch_want {
	uint8_t writer[SCL_WRITER_BYTES];
	uint64_t from, to;
};

#define FETCH_WANTS_MAX 64

/* Takes every queued request (waiting for the first) into @w, one entry
 * per writer: the core repeats a request until it is answered, so a
 * queue that grew while the fetcher was busy holds many stale copies.
 * A writer's latest request knows its newest applied seqno, so its
 * start wins; the ends are merged.  False on the stop signal. */
static bool
take_requests(void *s, struct fetch_want *w, size_t *nw)
{
	uint8_t req[FETCH_REQUEST_BYTES];
	int flags = 0;

	*nw = 0;
	while (*nw < FETCH_WANTS_MAX) {
		int got = zmq_recv(s, req, sizeof(req), flags);
		size_t k;
		if (got < 0) {
			if (flags == 0 && zmq_errno() == EINTR)
				continue;
			return flags != 0; /* drained; or the context ended */
		}
		if (got != (int)sizeof(req))
			return false; /* the stop signal */
		flags = ZMQ_DONTWAIT;
		for (k = 0; k < *nw; k++)
			if (memcmp(w[k].writer, req, SCL_WRITER_BYTES) == 0)
				break;
		if (k == *nw) {
			memcpy(w[k].writer, req, SCL_WRITER_BYTES);
			w[k].to = 0;
			(*nw)++;
		}
		w[k].from = scl_le64_load(req + SCL_WRITER_BYTES);
		if (scl_le64_load(req + SCL_WRITER_BYTES + 8) > w[k].to)
			w[k].to = scl_le64_load(req + SCL_WRITER_BYTES + 8);
	}
	return true;
}

void *
scl_worker__fetcher_main(void *arg)
{
	struct host *h = arg;
	struct scl_zsock_options zo = SCL_ZSOCK_OPTIONS_INIT;
	struct scl_client *c = NULL;
	struct fetch_want *w = calloc(FETCH_WANTS_MAX, sizeof(*w));
	size_t nw, rotate = 0;
	void *s = NULL;

	zo.connect = "inproc://fetcher";
	if (w == NULL || scl_zsock_open(&s, h->zctx, ZMQ_PAIR, &zo) != SCL_OK ||
	    scl_client_new(&c, h->opt.servers, h->opt.n_servers, &h->copt) !=
		SCL_OK) {
		scl_worker__thread_failed(h, "fetcher");
		goto done;
	}
	if (h->opt.catch_up)
		catch_up(h, c, s);
	while (!atomic_load(&h->closing) && take_requests(s, w, &nw)) {
		for (size_t i = 0; i < nw; i++) {
			uint64_t from = w[i].from;
			/* Any server may have it; start with a different
			 * one each time so that one that lags does not
			 * stall everyone. */
			for (size_t k = 0; k < h->opt.n_servers &&
			     from <= w[i].to; k++)
				from = fetch_range(h, c, (rotate + k) %
				    h->opt.n_servers, w[i].writer, from,
				    w[i].to, s);
			rotate++;
		}
	}
done:
	free(w);
	scl_client_free(c);
	if (s)
		zmq_close(s);
	return NULL;
}

