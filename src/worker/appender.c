/*
 * appender.c - the appender thread of a worker's host: it stores the
 * core's sealed batches on the capsule servers, in chain order, says how
 * far the write quorum holds them (durable replies wait for that), and
 * paces itself: batches wait up to the store delay and then go
 * together as one append, with the last one's heartbeat (it signs the
 * earlier records through the chain).  A server checks one signature,
 * commits once and signs one receipt per append, so the servers' work
 * follows the store delay while the core seals as often as its peers'
 * latency wants.  A client waiting for durability does not wait for the
 * delay: the main loop sends an URGENT frame naming the operation it
 * waits for, and everything sealed up to it goes at once.
 *
 * Frames from the main loop: u64 through + a batch message (a sealed
 * batch), u64 through alone (URGENT), or nothing (stop).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "scl/clock.h"
#include "scl/codec.h"
#include "scl/kv.h"
#include "scl/proto.h"
#include "scl/zsock.h"
#include "worker_int.h"

/* Appends on their way at once: one append's round trip overlaps the
 * next one's transfer. */
#define APPEND_INFLIGHT 2
/* Room left in an append for its framing and heartbeat. */
#define APPEND_SLACK ((size_t)64 << 10)
/* Batches waiting with at least this many bytes go without waiting out
 * the delay: an append this big gains nothing from growing. */
#define APPEND_EAGER_BYTES ((size_t)4 << 20)
/* Appends a server keeps in flight for one client. */
#define APPEND_WINDOW 64

struct app_entry {
	uint64_t through, ticket;
	uint64_t bytes;		/* of the frames merged in (host.settled) */
	uint64_t arrived_us;	/* monotonic */
	bool submitted;
	struct scl_capsule_batch batch;
};

struct appender {
	struct host *h;
	void *s;
	struct scl_client *c;
	struct app_entry *q;	/* chain order; submitted ones first */
	size_t nq, cap;
	uint64_t urgent;	/* a client waits for the servers to hold this */
	uint64_t sent;		/* `through` of the newest entry submitted */
	bool stop;
};

/* Moves @from's records and heartbeat onto the end of @to, the batch
 * before it in the chain.  False, with both as they were, if the result
 * would pass an append's limits or memory runs out. */
static bool
merge_batches(struct app_entry *to, struct app_entry *from)
{
	struct scl_capsule_batch *a = &to->batch, *b = &from->batch;
	size_t n = a->n;

	if (a->n + b->n > SCL_APPEND_RECORDS_MAX ||
	    a->data.len + b->data.len > SCL_APPEND_BYTES_MAX - APPEND_SLACK)
		return false;
	for (size_t i = 0; i < b->n; i++)
		if (scl_capsule_batch_add(a, scl_capsule_batch_record(b, i),
			b->hashes[i]) != SCL_OK)
			goto undo;
	if (scl_buf_set(&a->heartbeat, scl_buf_slice(&b->heartbeat)) !=
	    SCL_OK)
		goto undo;
	to->through = from->through;
	to->bytes += from->bytes;
	return true;
undo:
	scl_err_clear();
	scl_capsule_batch_truncate(a, n);
	return false;
}

/* Waits out a ticket whose outcome no longer matters (it is resent, or
 * the appender is stopping). */
static void
settle(struct scl_client *c, uint64_t ticket)
{
	if (scl_client_append_wait(c, ticket, NULL) != SCL_OK)
		scl_err_clear();
}

/* Bytes in the entries not yet submitted (a handful: they merge). */
static size_t
app_waiting_bytes(const struct appender *a)
{
	size_t bytes = 0;

	for (size_t i = 0; i < a->nq; i++)
		if (!a->q[i].submitted)
			bytes += a->q[i].batch.data.len;
	return bytes;
}

/* Whether the first waiting entry, @e, should go now. */
static bool
app_due(const struct appender *a, const struct app_entry *e, uint64_t now)
{
	return a->stop || a->urgent > a->sent ||
	    app_waiting_bytes(a) >= APPEND_EAGER_BYTES ||
	    now >= e->arrived_us + a->h->opt.store_delay_us;
}

/* Milliseconds to wait for frames before looking at the queue again:
 * -1 (until one comes) when it is empty, 0 while an append is in
 * flight (its reply is what we wait for) or one is due. */
static long
app_timeout_ms(const struct appender *a)
{
	uint64_t now = scl_clock_mono_us(), due;

	if (a->nq == 0)
		return -1;
	if (a->q[0].submitted || app_due(a, &a->q[0], now))
		return 0;
	due = a->q[0].arrived_us + a->h->opt.store_delay_us;
	return (long)((due - now + 999) / 1000);
}

/* Takes one frame from the main loop; false on the stop signal. */
static bool
app_take(struct appender *a, zmq_msg_t *m)
{
	const uint8_t *p = zmq_msg_data(m);
	size_t len = zmq_msg_size(m);
	struct app_entry *e;

	if (len < URGENT_FRAME_BYTES)
		return false;
	if (len == URGENT_FRAME_BYTES) {
		uint64_t t = scl_le64_load(p);
		if (t > a->urgent)
			a->urgent = t;
		return true;
	}
	if (a->nq == a->cap) {
		a->cap = a->cap ? 2 * a->cap : 64;
		a->q = realloc(a->q, a->cap * sizeof(*a->q));
		if (a->q == NULL)
			abort(); /* nothing sane is left */
	}
	e = &a->q[a->nq];
	memset(e, 0, sizeof(*e));
	scl_capsule_batch_init(&e->batch);
	e->through = scl_le64_load(p);
	e->arrived_us = scl_clock_mono_us();
	if (scl_kv_msg_to_batch(scl_slice_of(p + 8, len - 8), &e->batch) !=
	    SCL_OK) {
		/* The core's own output: a bug, and the servers will see a
		 * gap in the chain from here. */
		scl_log(&a->h->w->opt.log, SCL_LOG_ERR, "worker",
		    "a sealed batch from the core does not decode: %s",
		    scl_err_last());
		scl_err_clear();
		scl_capsule_batch_dispose(&e->batch);
		atomic_fetch_add(&a->h->settled, len - 8);
		return true;
	}
	e->bytes = len - 8;
	a->nq++;
	return true;
}

/* Takes every frame offered, waiting as app_timeout_ms says. */
static void
app_receive(struct appender *a)
{
	for (long timeout = app_timeout_ms(a); !a->stop; timeout = 0) {
		zmq_msg_t m;
		if (timeout != 0) {
			zmq_pollitem_t it = { a->s, 0, ZMQ_POLLIN, 0 };
			if (zmq_poll(&it, 1, timeout) <= 0)
				return;
		}
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, a->s, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			return;
		}
		if (!app_take(a, &m))
			a->stop = true;
		zmq_msg_close(&m);
	}
}

/* Submits in chain order while fewer than APPEND_INFLIGHT are on their
 * way and the first waiting entry is due, each taking the entries
 * behind it.  False if an append could not even be sent (said why). */
static bool
app_submit(struct appender *a)
{
	uint64_t now = scl_clock_mono_us();
	size_t inflight = 0;

	for (size_t i = 0; i < a->nq; i++) {
		struct app_entry *e = &a->q[i];
		if (e->submitted) {
			inflight++;
			continue;
		}
		if (inflight >= APPEND_INFLIGHT || !app_due(a, e, now))
			return true;
		while (i + 1 < a->nq && merge_batches(e, &a->q[i + 1])) {
			scl_capsule_batch_dispose(&a->q[i + 1].batch);
			memmove(&a->q[i + 1], &a->q[i + 2],
			    (a->nq - i - 2) * sizeof(*a->q));
			a->nq--;
		}
		if (scl_client_append_submit(a->c, &e->batch,
			a->h->opt.write_quorum, APPEND_WINDOW, &e->ticket) !=
		    SCL_OK) {
			scl_log(&a->h->w->opt.log, SCL_LOG_WARN, "worker",
			    "cannot send records %llu.. to the servers: %s",
			    (unsigned long long)e->batch.first_seqno,
			    scl_err_last());
			scl_err_clear();
			return false;
		}
		e->submitted = true;
		a->sent = e->through;
		inflight++;
	}
	return true;
}

/* Waits for the oldest append: reports it durable, or (servers gone or
 * refusing) settles what is in flight and returns false so that all of
 * it is resent, in order, after a pause. */
static bool
app_complete(struct appender *a)
{
	struct app_entry *e = &a->q[0];
	uint8_t done[8];

	if (scl_client_append_wait(a->c, e->ticket, NULL) != SCL_OK) {
		scl_err_clear();
		for (size_t i = 1; i < a->nq; i++)
			if (a->q[i].submitted) {
				settle(a->c, a->q[i].ticket);
				a->q[i].submitted = false;
			}
		e->submitted = false;
		a->sent = 0; /* nothing is on its way now */
		return false;
	}
	/* Settled before the main loop hears of it, so it never sees an
	 * append done whose bytes still count as waiting. */
	atomic_fetch_add(&a->h->settled, e->bytes);
	scl_le64_store(done, e->through);
	(void)zmq_send(a->s, done, sizeof(done), 0);
	scl_capsule_batch_dispose(&e->batch);
	memmove(&a->q[0], &a->q[1], (a->nq - 1) * sizeof(*a->q));
	a->nq--;
	return true;
}

void *
scl_worker__appender_main(void *arg)
{
	struct appender a = { .h = arg };
	struct host *h = a.h;
	struct scl_zsock_options zo = SCL_ZSOCK_OPTIONS_INIT;

	zo.recv_hwm = APPEND_PIPE_FRAMES;
	zo.connect = "inproc://appender";
	if (scl_zsock_open(&a.s, h->zctx, ZMQ_PAIR, &zo) != SCL_OK ||
	    scl_client_new(&a.c, h->opt.servers, h->opt.n_servers,
		&h->copt) != SCL_OK) {
		scl_worker__thread_failed(h, "appender");
		goto done;
	}
	while (!a.stop) {
		app_receive(&a);
		/* A pause after a failure: the servers are gone or refuse, and
		 * what waits goes again, in order, from the oldest. */
		if (!app_submit(&a) ||
		    (a.nq && a.q[0].submitted && !app_complete(&a)))
			usleep(200000);
		if (atomic_load(&h->closing))
			break; /* what is not durable now is the core's loss */
	}
done:
	for (size_t i = 0; i < a.nq; i++) {
		if (a.q[i].submitted)
			settle(a.c, a.q[i].ticket);
		scl_capsule_batch_dispose(&a.q[i].batch);
	}
	free(a.q);
	scl_client_free(a.c);
	if (a.s)
		zmq_close(a.s);
	return NULL;
}

