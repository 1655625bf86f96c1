/*
 * fetcher.c - the fetcher thread of a worker's host, its link to the
 * capsule servers for everything but its own batches:
 * - it reads what the core asks for (a gap in a peer's chain, or
 *   everything, for a worker starting late) and hands it to the main
 *   loop as batch messages, which the core verifies like any peer's;
 * - it hands on to the servers the peers' batches the core says they
 *   lack (kv.h "Hand-on"): a writer that died before storing them left
 *   them with its peers only;
 * - every DURABLE_POLL_MS it asks the servers how far a write quorum of
 *   them holds each writer, for the core to free what it retained
 *   (durable.c).
 * The frames it exchanges with the main loop are in worker_int.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "scl/clock.h"
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
		(void)scl_worker__pipe_send(s, FETCH_BATCH, scl_buf_slice(&msg),
		    0);
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
	(void)scl_worker__pipe_send(s, FETCH_CAUGHT_UP, scl_slice_of(NULL, 0),
	    0);
}

/* What the core asked for of one writer. */
struct fetch_want {
	uint8_t writer[SCL_WRITER_BYTES];
	uint64_t from, to;
};

#define FETCH_WANTS_MAX 64
/* How often the servers are asked how far they hold each writer: the
 * core frees what it retained for hand-on by this, and hands on what
 * stays uncovered for 2 s. */
#define DURABLE_POLL_MS 500

/* One round of work taken from the pipe. */
struct fetch_work {
	struct fetch_want want[FETCH_WANTS_MAX];
	size_t n_want;
	struct scl_buf *store;		/* batch messages to hand on, in order */
	size_t n_store, cap_store;
	bool stop;
};

/* A WANT: one entry per writer.  The core repeats a request until it is
 * answered, so a queue that grew while the fetcher was busy holds many
 * stale copies; a writer's latest request knows its newest applied
 * seqno, so its start wins; the ends are merged. */
static void
take_want(struct fetch_work *f, struct scl_slice body)
{
	size_t k;

	if (body.len != FETCH_WANT_BYTES)
		return;
	for (k = 0; k < f->n_want; k++)
		if (memcmp(f->want[k].writer, body.ptr, SCL_WRITER_BYTES) == 0)
			break;
	if (k == f->n_want) {
		if (k == FETCH_WANTS_MAX)
			return; /* asked again: the core repeats */
		memcpy(f->want[k].writer, body.ptr, SCL_WRITER_BYTES);
		f->want[k].to = 0;
		f->n_want++;
	}
	f->want[k].from = scl_le64_load(body.ptr + SCL_WRITER_BYTES);
	if (scl_le64_load(body.ptr + SCL_WRITER_BYTES + 8) > f->want[k].to)
		f->want[k].to = scl_le64_load(body.ptr + SCL_WRITER_BYTES + 8);
}

static void
take_store(struct fetch_work *f, struct scl_slice body)
{
	if (f->n_store == f->cap_store) {
		size_t cap = f->cap_store ? 2 * f->cap_store : 8;
		struct scl_buf *b = realloc(f->store, cap * sizeof(*b));
		if (b == NULL)
			return; /* handed on again later: the core repeats */
		f->store = b;
		f->cap_store = cap;
	}
	scl_buf_init(&f->store[f->n_store]);
	if (scl_buf_set(&f->store[f->n_store], body) == SCL_OK)
		f->n_store++;
	else
		scl_err_clear();
}

/* Takes every frame waiting, after waiting up to @timeout_ms for the
 * first. */
static void
take_work(void *s, struct fetch_work *f, long timeout_ms)
{
	zmq_pollitem_t it = { s, 0, ZMQ_POLLIN, 0 };

	f->n_want = 0;
	if (zmq_poll(&it, 1, timeout_ms) <= 0)
		return;
	while (!f->stop) {
		zmq_msg_t tag, body;
		int more = 0;
		size_t ml = sizeof(more);
		zmq_msg_init(&tag);
		if (zmq_msg_recv(&tag, s, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&tag);
			return;
		}
		zmq_msg_init(&body);
		if (zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml) == 0 && more)
			(void)zmq_msg_recv(&body, s, 0);
		if (zmq_msg_size(&tag) == 0)
			f->stop = true;
		else if (*(uint8_t *)zmq_msg_data(&tag) == FETCH_WANT)
			take_want(f, scl_slice_of(zmq_msg_data(&body),
			    zmq_msg_size(&body)));
		else if (*(uint8_t *)zmq_msg_data(&tag) == FETCH_STORE)
			take_store(f, scl_slice_of(zmq_msg_data(&body),
			    zmq_msg_size(&body)));
		zmq_msg_close(&body);
		zmq_msg_close(&tag);
	}
}

/* Hands on the batches the core says the servers lack, in the order it
 * said them (a chain's earlier records first). */
static void
hand_on(struct host *h, struct scl_client *c, struct fetch_work *f)
{
	struct scl_capsule_batch b;
	char ref[32];

	scl_capsule_batch_init(&b);
	for (size_t i = 0; i < f->n_store; i++) {
		if (scl_kv_msg_to_batch(scl_buf_slice(&f->store[i]), &b) ==
			SCL_OK) {
			scl_capsule_record_ref(ref, b.writer, b.first_seqno);
			if (scl_client_append(c, &b, h->opt.write_quorum,
				NULL) == SCL_OK)
				scl_log(&h->w->opt.log, SCL_LOG_INFO, "worker",
				    "handed on %s..%llu, which its writer did "
				    "not store", ref, (unsigned long long)(
				    b.first_seqno + b.n - 1));
			else
				scl_log(&h->w->opt.log, SCL_LOG_WARN, "worker",
				    "could not hand on %s: %s", ref,
				    scl_err_last());
		}
		scl_err_clear();
		scl_buf_dispose(&f->store[i]);
	}
	f->n_store = 0;
	scl_capsule_batch_dispose(&b);
}

void *
scl_worker__fetcher_main(void *arg)
{
	struct host *h = arg;
	struct scl_zsock_options zo = SCL_ZSOCK_OPTIONS_INIT;
	struct scl_client *c = NULL;
	struct fetch_work *f = calloc(1, sizeof(*f));
	struct scl_worker_durable *d = NULL;
	uint64_t next_poll = 0;
	size_t rotate = 0;
	void *s = NULL;

	zo.connect = "inproc://fetcher";
	if (f == NULL ||
	    scl_zsock_open(&s, h->zctx, ZMQ_PAIR, &zo) != SCL_OK ||
	    scl_client_new(&c, h->opt.servers, h->opt.n_servers, &h->copt) !=
		SCL_OK ||
	    (d = scl_worker__durable_new(h, c)) == NULL) {
		scl_worker__thread_failed(h, "fetcher");
		goto done;
	}
	if (h->opt.catch_up)
		catch_up(h, c, s);
	while (!atomic_load(&h->closing) && !f->stop) {
		uint64_t now = scl_clock_mono_ms();
		take_work(s, f, next_poll > now ? (long)(next_poll - now) : 0);
		for (size_t i = 0; i < f->n_want; i++) {
			uint64_t from = f->want[i].from;
			/* Any server may have it; start with a different
			 * one each time so that one that lags does not
			 * stall everyone. */
			for (size_t k = 0; k < h->opt.n_servers &&
			     from <= f->want[i].to; k++)
				from = fetch_range(h, c, (rotate + k) %
				    h->opt.n_servers, f->want[i].writer, from,
				    f->want[i].to, s);
			rotate++;
		}
		hand_on(h, c, f);
		if (scl_clock_mono_ms() >= next_poll) {
			scl_worker__durable_poll(d, s);
			next_poll = scl_clock_mono_ms() + DURABLE_POLL_MS;
		}
	}
done:
	if (f) {
		for (size_t i = 0; i < f->n_store; i++)
			scl_buf_dispose(&f->store[i]);
		free(f->store);
	}
	free(f);
	free(d);	/* owns nothing else */
	scl_client_free(c);
	if (s)
		zmq_close(s);
	return NULL;
}
