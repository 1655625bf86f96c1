/*
 * serve.c - the host side of a KVS worker: the network around the core.
 *
 * Three threads, each owning its sockets (ZeroMQ sockets are not
 * thread-safe), joined by inproc PAIR sockets:
 * - the main loop: clients (ROUTER on --listen), the router (DEALER),
 *   and every call into the core, which is a state machine driven by
 *   requests, peers' messages and ticks;
 * - the appender: sends the core's sealed batches to the capsule
 *   servers in chain order, pipelined, and reports how far the write
 *   quorum holds them (durable replies wait for that);
 * - the fetcher: reads what the core asks for (gaps, a late start) from
 *   the servers and hands it back as batch messages.
 * The host never sees a key or a plaintext value it was not given by a
 * client; what it relays is sealed and verified by the core.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "scl/client.h"
#include "scl/clock.h"
#include "scl/codec.h"
#include "scl/enclave.h"
#include "scl/proto.h"
#include "scl/router.h"
#include "worker_int.h"

#define APPEND_WINDOW 64
/* Where an `M` request's message count sits: after op and time. */
#define RECEIVE_COUNT_AT 9
#define ROUTE_MAX 256

/* A client reply held until the servers hold its writes. */
struct held_reply {
	struct held_reply *next;
	uint64_t through;
	size_t route_len;
	uint8_t route[ROUTE_MAX];
	struct scl_buf frame;
};

struct pending_req;

struct node {
	struct scl_worker *w;
	struct scl_worker_serve_options opt;
	uint8_t name[SCL_NAME_BYTES];
	void *zctx, *clients, *router, *app, *fetch;
	pthread_t app_th, fetch_th;
	bool app_started, fetch_started;
	struct scl_buf req, frame;
	uint64_t durable;		/* own ops the write quorum holds */
	uint64_t urgent;		/* the appender was told a client
					   waits for these */
	uint64_t through;		/* own ops so far */
	uint64_t sealed;		/* own ops in batches sealed so far */
	uint64_t next_tick;		/* µs */
	/* the seal clock (clock_due_us) */
	uint64_t sealed_at_us;		/* monotonic: a batch last sealed */
	uint64_t clock_refused;		/* `through` when a clocked seal failed */
	uint64_t served;		/* client operations, reads included */
	uint64_t served_at_seal;	/* `served` when a batch last sealed */
	bool sealing, more;
	uint16_t receive_count;		/* messages in the `M` call being built */
	struct held_reply *held;
	uint64_t next_sub_ms;
	uint64_t published, fetched_in, appended;
	bool caught_up;
	atomic_bool closing;		/* the threads stop what they do */
	/* Sealed bytes handed to the appender (main loop) and stored or
	 * given up by it (appender): their difference waits for the
	 * servers, pipe included. */
	uint64_t handed;
	_Atomic uint64_t settled;
	size_t unstored_max;		/* writes are refused from there on */
	bool refusing;			/* ...and are now (said in the log) */
	uint64_t refused;		/* requests refused so */
	atomic_bool thread_failed;	/* a thread could not start: why */
	char thread_why[256];		/* written before thread_failed */
	struct pending_req *pending;	/* GROUPS_MAX, for read_clients */
	/* handed to the threads (read-only after start) */
	struct scl_client_options copt;
};

/* Called by a thread that cannot start: the host stops, saying why,
 * instead of feeding a socket nobody reads. */
static void
thread_failed(struct node *n, const char *who)
{
	snprintf(n->thread_why, sizeof(n->thread_why), "the %s could not "
	    "start: %s", who, scl_err_last()[0] ? scl_err_last()
						: zmq_strerror(zmq_errno()));
	atomic_store(&n->thread_failed, true);
}

/* --- the appender thread --------------------------------------------------- */

/*
 * The appender stores the core's sealed batches on the servers, in chain
 * order, and paces itself: batches wait up to the store delay and then go
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

/* Appends on their way at once: one append's round trip overlaps the
 * next one's transfer. */
#define APPEND_INFLIGHT 2
/* Room left in an append for its framing and heartbeat. */
#define APPEND_SLACK ((size_t)64 << 10)
/* Batches waiting with at least this many bytes go without waiting out
 * the delay: an append this big gains nothing from growing. */
#define APPEND_EAGER_BYTES ((size_t)4 << 20)
#define URGENT_FRAME_BYTES 8
#define UNSTORED_MAX_DEFAULT ((size_t)64 << 20)
/* Frames the pipe to the appender holds each side: a backstop, far
 * above what the byte bound lets through in batches of any useful size. */
#define APPEND_PIPE_FRAMES 65536

struct app_entry {
	uint64_t through, ticket;
	uint64_t bytes;		/* of the frames merged in (node.settled) */
	uint64_t arrived_us;	/* monotonic */
	bool submitted;
	struct scl_capsule_batch batch;
};

struct appender {
	struct node *n;
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
	    now >= e->arrived_us + a->n->opt.store_delay_us;
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
	due = a->q[0].arrived_us + a->n->opt.store_delay_us;
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
		scl_log(&a->n->w->opt.log, SCL_LOG_ERR, "worker",
		    "a sealed batch from the core does not decode: %s",
		    scl_err_last());
		scl_err_clear();
		scl_capsule_batch_dispose(&e->batch);
		atomic_fetch_add(&a->n->settled, len - 8);
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
			a->n->opt.write_quorum, APPEND_WINDOW, &e->ticket) !=
		    SCL_OK) {
			scl_log(&a->n->w->opt.log, SCL_LOG_WARN, "worker",
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
	atomic_fetch_add(&a->n->settled, e->bytes);
	scl_le64_store(done, e->through);
	(void)zmq_send(a->s, done, sizeof(done), 0);
	scl_capsule_batch_dispose(&e->batch);
	memmove(&a->q[0], &a->q[1], (a->nq - 1) * sizeof(*a->q));
	a->nq--;
	return true;
}

static void *
appender_main(void *arg)
{
	struct appender a = { .n = arg };
	struct node *n = a.n;
	int pipe = APPEND_PIPE_FRAMES;

	a.s = zmq_socket(n->zctx, ZMQ_PAIR);
	if (a.s != NULL)
		(void)zmq_setsockopt(a.s, ZMQ_RCVHWM, &pipe, sizeof(pipe));
	if (a.s == NULL || zmq_connect(a.s, "inproc://appender") != 0 ||
	    scl_client_new(&a.c, n->opt.servers, n->opt.n_servers,
		&n->copt) != SCL_OK) {
		thread_failed(n, "appender");
		goto done;
	}
	while (!a.stop) {
		app_receive(&a);
		/* A pause after a failure: the servers are gone or refuse, and
		 * what waits goes again, in order, from the oldest. */
		if (!app_submit(&a) ||
		    (a.nq && a.q[0].submitted && !app_complete(&a)))
			usleep(200000);
		if (atomic_load(&n->closing))
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

/* --- the fetcher thread ------------------------------------------------------ */

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
fetch_range(struct node *n, struct scl_client *c, size_t i,
    const uint8_t *writer, uint64_t from, uint64_t to, void *s)
{
	struct scl_client_reader rd;
	struct scl_capsule_source src;
	struct scl_capsule_batch b;
	struct scl_buf rec, hb, msg;
	uint64_t next = from;

	scl_client_reader_init(&rd, c, i, n->name);
	src = scl_client_reader_source(&rd);
	scl_capsule_batch_init(&b);
	scl_buf_init(&rec);
	scl_buf_init(&hb);
	scl_buf_init(&msg);
	while (next <= to && !atomic_load(&n->closing)) {
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
catch_up(struct node *n, struct scl_client *c, void *s)
{
	uint8_t (*writers)[SCL_WRITER_BYTES] = calloc(1024, SCL_WRITER_BYTES);
	unsigned rq = n->opt.write_quorum >= 1 &&
		n->opt.write_quorum <= n->opt.n_servers
	    ? (unsigned)(n->opt.n_servers - n->opt.write_quorum + 1) : 1;
	bool partial = false;
	size_t nw = 0;

	if (writers == NULL)
		goto done;
	if (scl_client_writers(c, n->name, rq, writers, 1024, &nw) != SCL_OK) {
		partial = true;
		if (scl_client_writers(c, n->name, 1, writers, 1024, &nw) !=
		    SCL_OK)
			goto done;
	}
	for (size_t k = 0; k < nw && !atomic_load(&n->closing); k++) {
		struct scl_client_heads h;
		/* Once a read quorum was out of reach, one answer will do:
		 * the wait for the missing servers is paid once, not per
		 * writer. */
		if (scl_client_heads(c, n->name, writers[k], partial ? 1 : rq,
			&h) != SCL_OK) {
			if (partial || scl_client_heads(c, n->name, writers[k],
					   1, &h) != SCL_OK)
				continue;
			partial = true;
		}
		if (h.best > 0)
			(void)fetch_range(n, c, h.best_server, writers[k], 1,
			    h.best, s);
	}
done:
	if (partial)
		scl_log(&n->w->opt.log, SCL_LOG_WARN, "worker",
		    "catching up from fewer servers than a read quorum (%u of "
		    "%zu): writes only the others hold arrive later, through "
		    "the peers' syncs", rq, n->opt.n_servers);
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
	uint8_t req[SCL_WRITER_BYTES + 16];
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

static void *
fetcher_main(void *arg)
{
	struct node *n = arg;
	void *s = zmq_socket(n->zctx, ZMQ_PAIR);
	struct scl_client *c = NULL;
	struct fetch_want *w = calloc(FETCH_WANTS_MAX, sizeof(*w));
	size_t nw, rotate = 0;

	if (s == NULL || w == NULL || zmq_connect(s, "inproc://fetcher") != 0 ||
	    scl_client_new(&c, n->opt.servers, n->opt.n_servers, &n->copt) !=
		SCL_OK) {
		thread_failed(n, "fetcher");
		goto done;
	}
	if (n->opt.catch_up)
		catch_up(n, c, s);
	while (!atomic_load(&n->closing) && take_requests(s, w, &nw)) {
		for (size_t i = 0; i < nw; i++) {
			uint64_t from = w[i].from;
			/* Any server may have it; start with a different
			 * one each time so that one that lags does not
			 * stall everyone. */
			for (size_t k = 0; k < n->opt.n_servers &&
			     from <= w[i].to; k++)
				from = fetch_range(n, c, (rotate + k) %
				    n->opt.n_servers, w[i].writer, from,
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

/* --- the main loop ----------------------------------------------------------- */

static void
publish(struct node *n, struct scl_slice msg)
{
	struct scl_router_msg m;

	if (n->router == NULL)
		return;
	memset(&m, 0, sizeof(m));
	m.type = SCL_ROUTER_PUB;
	memcpy(m.name, n->name, SCL_NAME_BYTES);
	m.payload = msg;
	if (scl_router_msg_encode(&n->frame, &m) == SCL_OK &&
	    zmq_send(n->router, n->frame.ptr, n->frame.len, ZMQ_DONTWAIT) >= 0)
		n->published++;
}

static void
subscribe(struct node *n)
{
	struct scl_router_msg m;

	if (n->router == NULL)
		return;
	memset(&m, 0, sizeof(m));
	m.type = SCL_ROUTER_SUB;
	memcpy(m.name, n->name, SCL_NAME_BYTES);
	if (scl_router_msg_encode(&n->frame, &m) == SCL_OK)
		(void)zmq_send(n->router, n->frame.ptr, n->frame.len,
		    ZMQ_DONTWAIT);
	n->next_sub_ms = scl_clock_mono_ms() + SCL_ROUTER_RENEW_MS;
}

static void read_appender(struct node *n);

/* Hands a frame (@bytes of sealed batch, 0 for URGENT) to the
 * appender, waiting while the pipe is full, but not for an appender that
 * is gone nor once the worker is told to stop (a batch then counts among
 * the writes the servers do not hold, and the stop says how many).  The
 * bound on what waits is in bytes (refuse_writes); the pipe's only
 * backs it. */
static void
to_appender(struct node *n, struct scl_slice frame, size_t bytes)
{
	while (zmq_send(n->app, frame.ptr, frame.len, ZMQ_DONTWAIT) < 0) {
		zmq_pollitem_t it = { n->app, 0, ZMQ_POLLOUT | ZMQ_POLLIN, 0 };
		if (zmq_errno() != EAGAIN || atomic_load(&n->thread_failed) ||
		    atomic_load(&n->w->stop_serving))
			return;
		(void)zmq_poll(&it, 1, 100);
		/* The appender's completions must not fill their pipe while
		 * this waits: it would block on them and never make room. */
		read_appender(n);
	}
	n->handed += bytes;
}

/* Tells the appender that a client waits for the servers to hold the
 * operations up to @through: the batches holding them go without
 * waiting out the store delay. */
static void
want_durable(struct node *n, uint64_t through)
{
	uint8_t f[URGENT_FRAME_BYTES];

	if (n->app == NULL || through <= n->durable || through <= n->urgent)
		return;
	scl_le64_store(f, through);
	n->urgent = through;
	to_appender(n, scl_slice_of(f, sizeof(f)), 0);
}

/* Sends the outputs of a KV reply where they go; *@results gets the
 * requests' results. */
static enum scl_err
dispatch(struct node *n, struct scl_slice body, struct scl_slice *results)
{
	struct scl_dec d;
	uint16_t count;

	scl_dec_init(&d, body, "core KV reply");
	n->more = scl_dec_u8(&d, "more") != 0;
	n->sealing = scl_dec_u8(&d, "sealing") != 0;
	n->through = scl_dec_u64(&d, "through");
	n->next_tick = scl_dec_u64(&d, "next tick");
	count = scl_dec_u16(&d, "outputs");
	for (uint16_t i = 0; i < count && scl_dec_ok(&d); i++) {
		uint8_t kind = scl_dec_u8(&d, "kind");
		uint64_t through = scl_dec_u64(&d, "through");
		const uint8_t *writer = scl_dec_bytes(&d, 32, "writer");
		uint64_t from = scl_dec_u64(&d, "from");
		uint64_t to = scl_dec_u64(&d, "to");
		struct scl_slice msg = scl_dec_blob32(&d, REPLY_MAX, "message");
		if (!scl_dec_ok(&d))
			break;
		if (kind == SCL_KV_OUT_BATCH || kind == SCL_KV_OUT_SYNC)
			publish(n, msg);
		if (kind == SCL_KV_OUT_BATCH && through > n->sealed) {
			n->sealed = through;
			n->sealed_at_us = scl_clock_mono_us();
			n->served_at_seal = n->served;
		}
		if (kind == SCL_KV_OUT_BATCH && n->app) {
			/* one frame: u64 through, then the message */
			uint8_t hdr[8];
			scl_le64_store(hdr, through);
			scl_buf_clear(&n->frame);
			if (scl_buf_append(&n->frame, hdr, 8) == SCL_OK &&
			    scl_buf_append(&n->frame, msg.ptr, msg.len) ==
				SCL_OK)
				to_appender(n, scl_buf_slice(&n->frame),
				    msg.len);
		} else if (kind == SCL_KV_OUT_BATCH) {
			n->durable = through; /* plain: nothing to store */
		}
		if (kind == SCL_KV_OUT_FETCH && n->fetch) {
			uint8_t req[48];
			memcpy(req, writer, 32);
			scl_le64_store(req + 32, from);
			scl_le64_store(req + 40, to);
			(void)zmq_send(n->fetch, req, sizeof(req), ZMQ_DONTWAIT);
		}
	}
	*results = scl_dec_blob32(&d, REPLY_MAX, "results");
	return scl_dec_finish(&d);
}

/* A call into the core that returns a KV reply, and its dispatch. */
static enum scl_err
kv_call(struct node *n, struct scl_slice *results)
{
	struct scl_slice body;
	enum scl_err e = scl_worker__call(n->w, n->req.ptr, n->req.len, &body);

	if (e != SCL_OK)
		return e;
	return dispatch(n, body, results);
}

static enum scl_err
tick(struct node *n)
{
	struct scl_slice results;
	struct scl_enc e;
	enum scl_err r;

	do {
		scl_buf_clear(&n->req);
		scl_enc_init(&e, &n->req);
		scl_enc_u8(&e, SCL_CORE_KV_TICK);
		scl_enc_u64(&e, scl_clock_wall_us());
		if ((r = e.err) == SCL_OK)
			r = kv_call(n, &results);
	} while (r == SCL_OK && n->more);
	return r;
}

static void
reply_client(struct node *n, const uint8_t *route, size_t rlen, uint8_t kind,
    uint64_t id, bool ok, struct scl_slice body, uint64_t hold_through)
{
	struct scl_enc e;
	struct scl_buf f;

	scl_buf_init(&f);
	scl_enc_init(&e, &f);
	scl_enc_u8(&e, kind);
	scl_enc_u8(&e, 1);
	scl_enc_u64(&e, id);
	scl_enc_u8(&e, ok ? 0 : 1);
	scl_enc_blob32(&e, body.ptr, body.len);
	if (e.err == SCL_OK && hold_through > n->durable && rlen <= ROUTE_MAX) {
		struct held_reply *h = calloc(1, sizeof(*h));
		if (h) {
			h->through = hold_through;
			h->route_len = rlen;
			memcpy(h->route, route, rlen);
			h->frame = f;
			h->next = n->held;
			n->held = h;
			want_durable(n, hold_through);
			return;
		}
	}
	if (e.err == SCL_OK &&
	    zmq_send(n->clients, route, rlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
		(void)zmq_send(n->clients, f.ptr, f.len, ZMQ_DONTWAIT);
	scl_buf_dispose(&f);
}

/* Sends the held replies the servers now hold. */
static void
release_durable(struct node *n)
{
	for (struct held_reply **at = &n->held; *at;) {
		struct held_reply *h = *at;
		if (h->through > n->durable) {
			at = &h->next;
			continue;
		}
		if (zmq_send(n->clients, h->route, h->route_len,
			ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
			(void)zmq_send(n->clients, h->frame.ptr, h->frame.len,
			    ZMQ_DONTWAIT);
		*at = h->next;
		scl_buf_dispose(&h->frame);
		free(h);
	}
}

/* Said in the log and to each client refused: the MiB waiting. */
#define REFUSING_WRITES "the servers do not hold the last %llu MiB of " \
	"writes yet: writes are refused until they do (reads go on)"

/* Sealed bytes that wait for the servers; notes (and logs) when they
 * reach the bound, from when on writes are refused, and when they fall
 * below it again. */
static uint64_t
unstored_bytes(struct node *n)
{
	uint64_t u = n->handed - atomic_load(&n->settled);
	bool refusing = n->app != NULL && u >= n->unstored_max;

	if (refusing != n->refusing)
		scl_log(&n->w->opt.log, refusing ? SCL_LOG_WARN : SCL_LOG_INFO,
		    "worker", refusing ? REFUSING_WRITES
				       : "the servers caught up (%llu MiB "
					 "waiting): taking writes again",
		    (unsigned long long)(u >> 20));
	n->refusing = refusing;
	return u;
}

static void
client_status(struct node *n, const uint8_t *route, size_t rlen, uint64_t id)
{
	uint8_t op = SCL_CORE_KV_STATS;
	struct scl_slice body;
	struct scl_buf text;
	struct scl_ring_stats to_core, from_core;
	char host[384];
	int len;

	scl_enclave_ring_stats(scl_worker_enclave(n->w), &to_core, &from_core);
	if (scl_worker__call(n->w, &op, 1, &body) != SCL_OK) {
		reply_client(n, route, rlen, SCL_KVCLIENT_STATUS, id, false,
		    scl_slice_of(scl_err_last(), strlen(scl_err_last())), 0);
		return;
	}
	len = snprintf(host, sizeof(host),
	    ",\"host\":{\"through\":%llu,\"durable\":%llu,"
	    "\"appends\":%llu,\"unstored_bytes\":%llu,"
	    "\"refused_writes\":%llu,\"published\":%llu,"
	    "\"fetched_in\":%llu,\"caught_up\":%s,"
	    "\"rings\":{\"answer_waits_spun\":%llu,"
	    "\"answer_waits_slept\":%llu,\"sends_found_full\":%llu}}}",
	    (unsigned long long)n->through, (unsigned long long)n->durable,
	    (unsigned long long)n->appended,
	    (unsigned long long)unstored_bytes(n),
	    (unsigned long long)n->refused,
	    (unsigned long long)n->published,
	    (unsigned long long)n->fetched_in,
	    n->caught_up ? "true" : "false",
	    (unsigned long long)from_core.spins_won,
	    (unsigned long long)from_core.sleeps,
	    (unsigned long long)to_core.full_waits);
	scl_buf_init(&text);
	/* The core's part grows with its peers: no fixed buffer. */
	if (scl_buf_append(&text, "{\"core\":", 8) == SCL_OK &&
	    scl_buf_append(&text, body.ptr, body.len) == SCL_OK &&
	    scl_buf_append(&text, host, (size_t)len) == SCL_OK)
		reply_client(n, route, rlen, SCL_KVCLIENT_STATUS, id, true,
		    scl_buf_slice(&text), 0);
	else
		reply_client(n, route, rlen, SCL_KVCLIENT_STATUS, id, false,
		    scl_slice_of("out of memory", 13), 0);
	scl_buf_dispose(&text);
}

/* A benchmark's operations, run by the core on its replica. */
static void
client_local(struct node *n, const uint8_t *route, size_t rlen, uint64_t id,
    uint32_t count, struct scl_slice ops)
{
	struct scl_slice results;
	struct scl_buf saved;
	struct scl_enc e;
	enum scl_err r;

	/* n->req may hold a group being built: use a buffer of our own. */
	scl_buf_init(&saved);
	scl_enc_init(&e, &saved);
	scl_enc_u8(&e, SCL_CORE_KV_LOCAL);
	scl_enc_u64(&e, scl_clock_wall_us());
	scl_enc_u32(&e, count);
	scl_enc_bytes(&e, ops.ptr, ops.len);
	r = e.err;
	if (r == SCL_OK) {
		struct scl_slice body;
		r = scl_worker__call(n->w, saved.ptr, saved.len, &body);
		if (r == SCL_OK)
			r = dispatch(n, body, &results);
	}
	if (r == SCL_OK)
		reply_client(n, route, rlen, SCL_KVCLIENT_LOCAL, id, true,
		    results, 0);
	else
		reply_client(n, route, rlen, SCL_KVCLIENT_LOCAL, id, false,
		    scl_slice_of(scl_err_last(), strlen(scl_err_last())), 0);
	scl_buf_dispose(&saved);
}

/* A client request waiting in the current group call. */
struct pending_req {
	uint8_t route[ROUTE_MAX];
	size_t route_len;
	uint8_t kind;
	uint64_t id;
	bool durable;
};

#define GROUPS_MAX 256
#define GROUP_BYTES_MAX ((size_t)8 << 20)

/* A group call's header: u8 KV_OPS, u64 now, u16 group count. */
#define GROUP_HEADER_BYTES 11
#define GROUP_COUNT_AT 9

/* Starts a group call, its group count 0 until group_count(). */
static void
group_begin(struct node *n)
{
	struct scl_enc e;

	scl_buf_clear(&n->req);
	scl_enc_init(&e, &n->req);
	scl_enc_u8(&e, SCL_CORE_KV_OPS);
	scl_enc_u64(&e, scl_clock_wall_us());
	scl_enc_u16(&e, 0);
}

/* Sets the group count of the call group_begin() started; false if
 * group_begin() ran out of memory and there is no header to patch. */
static bool
group_count(struct node *n, uint16_t groups)
{
	if (n->req.len < GROUP_HEADER_BYTES)
		return false;
	scl_le16_store(n->req.ptr + GROUP_COUNT_AT, groups);
	return true;
}

/* Whether the @count operations in @ops hold a write (or do not
 * decode: the core would refuse them anyway). */
static bool
ops_write(struct scl_slice ops, uint32_t count)
{
	struct scl_dec d;
	struct scl_kvreq q;

	scl_dec_init(&d, ops, "operations");
	for (uint32_t i = 0; i < count; i++)
		if (scl_kvreq_decode(&d, &q) != SCL_OK) {
			scl_err_clear();
			return true;
		} else if (q.op == SCL_KVREQ_PUT || q.op == SCL_KVREQ_DELETE) {
			return true;
		}
	return false;
}

/* While as much as may wait for the servers does, a request that writes
 * is answered with an error instead of being applied; reads and status
 * go on.  True if @ops were refused so. */
static bool
refuse_writes(struct node *n, const uint8_t *route, size_t rlen, uint8_t kind,
    uint64_t id, struct scl_slice ops, uint32_t count)
{
	uint64_t unstored = unstored_bytes(n);
	char msg[160];
	int len;

	if (!n->refusing || !ops_write(ops, count))
		return false;
	len = snprintf(msg, sizeof(msg), REFUSING_WRITES,
	    (unsigned long long)(unstored >> 20));
	reply_client(n, route, rlen, kind, id, false,
	    scl_slice_of(msg, (size_t)len), 0);
	n->refused++;
	return true;
}

/* Adds one client request frame to the group; false if it is not one
 * (a status request was answered instead, or it was malformed). */
static bool
group_add(struct node *n, struct pending_req *p, const uint8_t *route,
    size_t rlen, struct scl_slice frame, uint16_t *groups)
{
	struct scl_dec d;
	struct scl_enc e;
	uint8_t flags;
	uint32_t count;

	if (rlen > ROUTE_MAX)
		return false;
	scl_dec_init(&d, frame, "worker request");
	p->kind = scl_dec_u8(&d, "kind");
	(void)scl_dec_u8(&d, "version");
	p->id = scl_dec_u64(&d, "id");
	flags = scl_dec_u8(&d, "flags");
	count = scl_dec_u32(&d, "count");
	if (!scl_dec_ok(&d))
		return false; /* not even an id to answer */
	if (p->kind == SCL_KVCLIENT_STATUS) {
		client_status(n, route, rlen, p->id);
		return false;
	}
	if (refuse_writes(n, route, rlen, p->kind, p->id,
		scl_slice_of(frame.ptr + d.pos, frame.len - d.pos), count))
		return false;
	if (p->kind == SCL_KVCLIENT_LOCAL) {
		n->served += count; /* a lambda's operations keep it busy too */
		client_local(n, route, rlen, p->id, count,
		    scl_slice_of(frame.ptr + d.pos, frame.len - d.pos));
		return false;
	}
	memcpy(p->route, route, rlen);
	p->route_len = rlen;
	p->durable = (flags & SCL_KVCLIENT_DURABLE) != 0;
	scl_enc_init(&e, &n->req);
	scl_enc_u32(&e, count + p->durable);
	scl_enc_bytes(&e, frame.ptr + d.pos, frame.len - d.pos);
	if (p->durable)
		scl_enc_u8(&e, SCL_KVREQ_FLUSH);
	n->served += count;
	(*groups)++;
	return e.err == SCL_OK;
}

/* Runs the group call and answers each request with its results. */
static void
group_run(struct node *n, struct pending_req *p, uint16_t groups)
{
	struct scl_slice results;
	struct scl_dec d;
	enum scl_err r;

	if (!group_count(n, groups)) {
		r = scl_err_set(SCL_ENOMEM, "cannot build the core call");
		results = scl_slice_of(NULL, 0);
	} else {
		r = kv_call(n, &results);
	}
	scl_dec_init(&d, results, "group results");
	for (uint16_t g = 0; g < groups; g++) {
		struct scl_slice res = r == SCL_OK
		    ? scl_dec_blob32(&d, REPLY_MAX, "results")
		    : scl_slice_of(NULL, 0);
		if (r != SCL_OK || !scl_dec_ok(&d)) {
			const char *why = r != SCL_OK ? scl_err_last()
						      : "malformed core reply";
			reply_client(n, p[g].route, p[g].route_len, p[g].kind,
			    p[g].id, false, scl_slice_of(why, strlen(why)), 0);
			continue;
		}
		/* With DURABLE, the last result is the flush's `through`. */
		reply_client(n, p[g].route, p[g].route_len, p[g].kind,
		    p[g].id, true, res, p[g].durable && res.len >= 8
			? scl_le64_load(res.ptr + res.len - 8) : 0);
	}
	if (n->more)
		(void)tick(n); /* which takes outputs until none is left */
}

/* Every waiting client request, handed to the core in as few calls as
 * possible: under load, one ring round trip serves many clients. */
static void
read_clients(struct node *n)
{
	struct pending_req *p = n->pending;
	uint16_t groups = 0;

	group_begin(n);
	for (;;) {
		zmq_msg_t route, body;
		int more = 0;
		size_t ml = sizeof(more);
		zmq_msg_init(&route);
		if (zmq_msg_recv(&route, n->clients, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&route);
			break;
		}
		zmq_msg_init(&body);
		if (zmq_getsockopt(n->clients, ZMQ_RCVMORE, &more, &ml) == 0 &&
		    more && zmq_msg_recv(&body, n->clients, 0) >= 0) {
			size_t mark = n->req.len;
			if (!group_add(n, &p[groups], zmq_msg_data(&route),
				zmq_msg_size(&route), scl_slice_of(
				zmq_msg_data(&body), zmq_msg_size(&body)),
				&groups))
				n->req.len = mark; /* drop a partial group */
		}
		while (zmq_getsockopt(n->clients, ZMQ_RCVMORE, &more, &ml) ==
			0 && more) {
			zmq_msg_t junk;
			zmq_msg_init(&junk);
			zmq_msg_recv(&junk, n->clients, 0);
			zmq_msg_close(&junk);
		}
		zmq_msg_close(&body);
		zmq_msg_close(&route);
		if (groups == GROUPS_MAX || n->req.len > GROUP_BYTES_MAX) {
			group_run(n, p, groups);
			groups = 0;
			group_begin(n);
		}
	}
	if (groups)
		group_run(n, p, groups);
}

/*
 * Messages for the core, peers' (through the router) or fetched, handed
 * over several to a call (core op `M`): one ring round trip, and one
 * wake-up of the core, for all that waited.
 */
static void
receive_begin(struct node *n)
{
	struct scl_enc e;

	scl_buf_clear(&n->req);
	scl_enc_init(&e, &n->req);
	scl_enc_u8(&e, SCL_CORE_KV_RECEIVE);
	scl_enc_u64(&e, scl_clock_wall_us());
	scl_enc_u16(&e, 0);	/* the count, set by receive_run */
	n->receive_count = 0;
	if (e.err != SCL_OK)
		scl_buf_clear(&n->req);
}

/* Adds @msg; false (and the request as it was) if it cannot. */
static bool
receive_add(struct node *n, struct scl_slice msg)
{
	size_t mark = n->req.len;
	struct scl_enc e;

	if (mark == 0 || n->receive_count == RECEIVE_MAX)
		return false;
	scl_enc_init(&e, &n->req);
	scl_enc_blob32(&e, msg.ptr, msg.len);
	if (e.err != SCL_OK) {
		n->req.len = mark;
		return false;
	}
	n->receive_count++;
	return true;
}

/* Whether the request is full enough to make the call now. */
static bool
receive_full(const struct node *n)
{
	return n->receive_count == RECEIVE_MAX ||
	    n->req.len >= RECEIVE_SOFT_BYTES;
}

static void
receive_run(struct node *n)
{
	struct scl_slice results;

	if (n->receive_count == 0)
		return;
	scl_le16_store(n->req.ptr + RECEIVE_COUNT_AT, n->receive_count);
	n->receive_count = 0;
	if (kv_call(n, &results) != SCL_OK)
		scl_log(&n->w->opt.log, SCL_LOG_WARN, "worker",
		    "the core refused messages: %s", scl_err_last());
	if (n->more)
		(void)tick(n); /* which takes outputs until none is left */
}

static void
read_router(struct node *n)
{
	receive_begin(n);
	for (;;) {
		zmq_msg_t m;
		struct scl_router_msg rm;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, n->router, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			break;
		}
		if (scl_router_msg_decode(&rm, scl_slice_of(zmq_msg_data(&m),
			zmq_msg_size(&m))) == SCL_OK &&
		    rm.type == SCL_ROUTER_PUB &&
		    memcmp(rm.name, n->name, SCL_NAME_BYTES) == 0 &&
		    !receive_add(n, rm.payload)) {
			receive_run(n);
			receive_begin(n);
			(void)receive_add(n, rm.payload);
		}
		scl_err_clear();
		zmq_msg_close(&m);
		if (receive_full(n)) {
			receive_run(n);
			receive_begin(n);
		}
	}
	receive_run(n);
}

static void
read_fetcher(struct node *n)
{
	for (;;) {
		zmq_msg_t m;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, n->fetch, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			return;
		}
		if (zmq_msg_size(&m) == 0) {
			n->caught_up = true;
			scl_log(&n->w->opt.log, SCL_LOG_INFO, "worker",
			    "caught up with the capsule servers");
		} else {
			n->fetched_in++;
			receive_begin(n);
			if (receive_add(n, scl_slice_of(zmq_msg_data(&m),
				zmq_msg_size(&m))))
				receive_run(n);
		}
		zmq_msg_close(&m);
	}
}

static void
read_appender(struct node *n)
{
	uint8_t done[8];

	while (zmq_recv(n->app, done, sizeof(done), ZMQ_DONTWAIT) == 8) {
		uint64_t t = scl_le64_load(done);
		n->appended++;
		if (t > n->durable)
			n->durable = t;
	}
	(void)unstored_bytes(n); /* says when writes are taken again */
	release_durable(n);
}

static enum scl_err
node_open(struct node *n)
{
	int zero = 0, hwm = 100000, pipe = APPEND_PIPE_FRAMES;
	int64_t maxmsg = (int64_t)REPLY_MAX;
	size_t len;

	if ((n->zctx = zmq_ctx_new()) == NULL ||
	    (n->clients = zmq_socket(n->zctx, ZMQ_ROUTER)) == NULL)
		return scl_err_set(SCL_EIO, "sockets: %s",
		    zmq_strerror(zmq_errno()));
	zmq_setsockopt(n->clients, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(n->clients, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
	zmq_setsockopt(n->clients, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(n->clients, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	if (zmq_bind(n->clients, n->opt.listen) != 0)
		return scl_err_set(SCL_EIO, "cannot listen on %s: %s",
		    n->opt.listen, zmq_strerror(zmq_errno()));
	len = sizeof(n->w->endpoint);
	zmq_getsockopt(n->clients, ZMQ_LAST_ENDPOINT, n->w->endpoint, &len);
	if (n->opt.router) {
		if ((n->router = zmq_socket(n->zctx, ZMQ_DEALER)) == NULL)
			return scl_err_set(SCL_EIO, "router socket");
		zmq_setsockopt(n->router, ZMQ_LINGER, &zero, sizeof(zero));
		zmq_setsockopt(n->router, ZMQ_SNDHWM, &hwm, sizeof(hwm));
		zmq_setsockopt(n->router, ZMQ_RCVHWM, &hwm, sizeof(hwm));
		zmq_setsockopt(n->router, ZMQ_MAXMSGSIZE, &maxmsg,
		    sizeof(maxmsg));
		if (zmq_connect(n->router, n->opt.router) != 0)
			return scl_err_set(SCL_EIO, "cannot connect to router "
			    "%s: %s", n->opt.router, zmq_strerror(zmq_errno()));
		subscribe(n);
	}
	if (n->opt.n_servers == 0)
		return SCL_OK;
	/* An inproc pipe's limits come from the options each end had when
	 * it bound or connected: set before the bind. */
	if ((n->app = zmq_socket(n->zctx, ZMQ_PAIR)) == NULL ||
	    (n->fetch = zmq_socket(n->zctx, ZMQ_PAIR)) == NULL)
		return scl_err_set(SCL_EIO, "inproc sockets: %s",
		    zmq_strerror(zmq_errno()));
	zmq_setsockopt(n->app, ZMQ_SNDHWM, &pipe, sizeof(pipe));
	zmq_setsockopt(n->fetch, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(n->fetch, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	if (zmq_bind(n->app, "inproc://appender") != 0 ||
	    zmq_bind(n->fetch, "inproc://fetcher") != 0)
		return scl_err_set(SCL_EIO, "inproc sockets: %s",
		    zmq_strerror(zmq_errno()));
	n->unstored_max = n->opt.unstored_max_bytes ? n->opt.unstored_max_bytes
						    : UNSTORED_MAX_DEFAULT;
	n->copt.timeout_ms = 2000;
	n->copt.cancel = &n->closing;
	n->copt.log = n->w->opt.log;
	if (pthread_create(&n->app_th, NULL, appender_main, n) != 0)
		return scl_err_set(SCL_EIO, "cannot start the appender");
	n->app_started = true;
	if (pthread_create(&n->fetch_th, NULL, fetcher_main, n) != 0)
		return scl_err_set(SCL_EIO, "cannot start the fetcher");
	n->fetch_started = true;
	return SCL_OK;
}

static void
node_close(struct node *n)
{
	atomic_store(&n->closing, true);
	/* The stop signal wakes a thread blocked on its socket.  Never wait
	 * to send it: a thread that saw `closing` may have closed its end
	 * already, and a PAIR socket without a peer blocks a send forever
	 * (a worker stopping while fetching from dead servers hung so). */
	if (n->app_started) {
		(void)zmq_send(n->app, "", 0, ZMQ_DONTWAIT);
		pthread_join(n->app_th, NULL);
	}
	if (n->fetch_started) {
		(void)zmq_send(n->fetch, "", 0, ZMQ_DONTWAIT);
		pthread_join(n->fetch_th, NULL);
	}
	while (n->held) {
		struct held_reply *h = n->held;
		n->held = h->next;
		scl_buf_dispose(&h->frame);
		free(h);
	}
	if (n->app)
		zmq_close(n->app);
	if (n->fetch)
		zmq_close(n->fetch);
	if (n->router)
		zmq_close(n->router);
	if (n->clients)
		zmq_close(n->clients);
	if (n->zctx)
		zmq_ctx_term(n->zctx);
	scl_buf_dispose(&n->req);
	scl_buf_dispose(&n->frame);
}

#define DRAIN_MS 3000

/* Asks the core to seal its open batch now: a group call of one group
 * holding one FLUSH. */
static enum scl_err
close_batch_now(struct node *n)
{
	struct scl_slice results;
	struct scl_enc e;
	enum scl_err r;

	group_begin(n);
	if (!group_count(n, 1))
		return scl_err_set(SCL_ENOMEM, "cannot build a flush");
	scl_enc_init(&e, &n->req);
	scl_enc_u32(&e, 1);
	scl_enc_u8(&e, SCL_KVREQ_FLUSH);
	if (e.err != SCL_OK)
		return e.err;
	if ((r = kv_call(n, &results)) == SCL_OK && n->more)
		(void)tick(n); /* which takes outputs until none is left */
	return r;
}

/*
 * The seal clock.  The core closes a batch when it is full or at the
 * batch delay after its first put; the host closes it sooner: once the
 * previous batch is sealed and seal_gap_us after it.  A lone put then
 * waits for no timer, and below saturation a put is on its way to the
 * peers within a few milliseconds.  The gap bounds how many batches go
 * out, each costing a signature, a verification per peer and a dozen
 * messages and wake-ups whatever it holds (docs/BENCHMARKS.md compares
 * 1 to 5 ms).  A busy worker (one that served seal_clock_max client
 * operations, reads included, since the last batch) leaves batches to
 * their size and delay, as its CPU is better spent on operations; reads
 * count because a read-mostly load has few puts per batch but no CPU to
 * spare.
 */
#define SEAL_GAP_US 2000	/* the default */

/* When (monotonic µs) the clock closes the open batch; 0: it does not. */
static uint64_t
clock_due_us(const struct node *n)
{
	if (n->sealing || n->through <= n->sealed ||
	    n->through == n->clock_refused ||
	    (n->opt.seal_clock_max &&
		n->served - n->served_at_seal >= n->opt.seal_clock_max))
		return 0;
	return n->sealed_at_us + n->opt.seal_gap_us;
}

static void
clock_batches(struct node *n)
{
	uint64_t due = clock_due_us(n);

	if (due == 0 || scl_clock_mono_us() < due)
		return;
	if (close_batch_now(n) != SCL_OK) {
		/* Not again until the core takes more operations (it would
		 * refuse the same way, e.g. after a sealing failure). */
		n->clock_refused = n->through;
		scl_err_clear();
	}
}

/* On a graceful stop, writes the clients were told about (with or
 * without waiting for durability) still reach the servers: the core
 * seals its open batch and the appender runs until the write quorum
 * holds everything, for at most DRAIN_MS (servers that are gone must
 * not hold a stopping worker hostage). */
static void
drain(struct node *n)
{
	uint64_t deadline = scl_clock_mono_ms() + DRAIN_MS;

	if (n->app == NULL)
		return;
	if (close_batch_now(n) != SCL_OK) {
		scl_err_clear();
		return;
	}
	want_durable(n, n->through);
	while (n->durable < n->through && scl_clock_mono_ms() < deadline) {
		zmq_pollitem_t it = { n->app, 0, ZMQ_POLLIN, 0 };
		(void)zmq_poll(&it, 1, n->sealing ? 0 : 10);
		read_appender(n);
		if (tick(n) != SCL_OK)
			break;
	}
	scl_err_clear();
	if (n->durable < n->through)
		scl_log(&n->w->opt.log, SCL_LOG_WARN, "worker",
		    "stopping with %llu operation%s the servers do not hold",
		    (unsigned long long)(n->through - n->durable),
		    n->through - n->durable == 1 ? "" : "s");
	else
		scl_log(&n->w->opt.log, SCL_LOG_INFO, "worker",
		    "stopping: the servers hold every operation (%llu)",
		    (unsigned long long)n->through);
}

enum scl_err
scl_worker_serve(struct scl_worker *w, const struct scl_worker_serve_options *opt)
{
	struct node *n = calloc(1, sizeof(*n));
	enum scl_err e;

	if (n == NULL)
		return scl_err_set(SCL_ENOMEM, "cannot allocate the host");
	n->w = w;
	n->opt = *opt;
	if (n->opt.seal_gap_us == 0)
		n->opt.seal_gap_us = SEAL_GAP_US;
	n->caught_up = !opt->catch_up || opt->n_servers == 0;
	if ((n->pending = calloc(GROUPS_MAX, sizeof(*n->pending))) == NULL) {
		free(n);
		return scl_err_set(SCL_ENOMEM, "cannot allocate the host");
	}
	scl_capsule_name(n->name, opt->meta);
	scl_buf_init(&n->req);
	scl_buf_init(&n->frame);
	atomic_store(&w->stop_serving, false);
	if ((e = node_open(n)) != SCL_OK || (e = tick(n)) != SCL_OK)
		goto done;
	scl_log(&w->opt.log, SCL_LOG_INFO, "worker", "serving clients on %s%s%s",
	    w->endpoint, opt->router ? ", router " : "",
	    opt->router ? opt->router : "");
	while (!atomic_load(&w->stop_serving)) {
		zmq_pollitem_t items[4];
		int ni = 0, ir = -1, ia = -1, ifch = -1;
		uint64_t now = scl_clock_wall_us(), wait_us, due;
		long timeout;
		int ready;

		items[ni++] = (zmq_pollitem_t){ n->clients, 0, ZMQ_POLLIN, 0 };
		if (n->router) {
			ir = ni;
			items[ni++] = (zmq_pollitem_t){ n->router, 0,
				ZMQ_POLLIN, 0 };
		}
		if (n->app) {
			ia = ni;
			items[ni++] = (zmq_pollitem_t){ n->app, 0, ZMQ_POLLIN,
				0 };
			ifch = ni;
			items[ni++] = (zmq_pollitem_t){ n->fetch, 0,
				ZMQ_POLLIN, 0 };
		}
		/* Sleep until the core or the seal clock has work (at most
		 * 50 ms), rounded up to zmq_poll's milliseconds: a timer
		 * fires up to 1 ms late rather than the loop waking every
		 * 200 us to watch it.  While the actors seal a batch, look
		 * again every 100 us: a sealed batch is on its way to the
		 * peers within that. */
		wait_us = n->next_tick > now ? n->next_tick - now : 0;
		if (wait_us > 50000)
			wait_us = 50000;
		if ((due = clock_due_us(n)) != 0) {
			uint64_t mono = scl_clock_mono_us();
			uint64_t left = due > mono ? due - mono : 0;
			if (left < wait_us)
				wait_us = left;
		}
		if (n->sealing) {
			if (wait_us > 100)
				wait_us = 100;
			timeout = 0;
		} else {
			timeout = (long)((wait_us + 999) / 1000);
		}
		ready = zmq_poll(items, ni, timeout);
		if (ready < 0 && zmq_errno() != EINTR) {
			e = scl_err_set(SCL_EIO, "zmq_poll: %s",
			    zmq_strerror(zmq_errno()));
			break;
		}
		if (atomic_load(&n->thread_failed)) {
			e = scl_err_set(SCL_EIO, "%s", n->thread_why);
			break;
		}
		if (ready == 0 && n->sealing && wait_us > 0)
			usleep((useconds_t)wait_us);
		/* Peers' batches first: the clients' reads waiting behind
		 * them then see their writes, and a batch does not wait for
		 * a group of client requests to be served. */
		if (ir >= 0 && (items[ir].revents & ZMQ_POLLIN))
			read_router(n);
		if (items[0].revents & ZMQ_POLLIN)
			read_clients(n);
		if (ifch >= 0 && (items[ifch].revents & ZMQ_POLLIN))
			read_fetcher(n);
		if (ia >= 0 && (items[ia].revents & ZMQ_POLLIN))
			read_appender(n);
		if (!n->app)
			release_durable(n);
		clock_batches(n);
		now = scl_clock_wall_us();
		if ((now >= n->next_tick || n->sealing) &&
		    (e = tick(n)) != SCL_OK)
			break;
		if (n->router && scl_clock_mono_ms() >= n->next_sub_ms)
			subscribe(n);
	}
	if (e == SCL_OK && !scl_enclave_alive(w->e, NULL))
		e = scl_err_set(SCL_EIO, "the trusted core died");
	if (e == SCL_OK)
		drain(n);
done:
	node_close(n);
	free(n->pending);
	free(n);
	return e;
}

void
scl_worker_stop_serving(struct scl_worker *w)
{
	atomic_store(&w->stop_serving, true);
}

const char *
scl_worker_endpoint(const struct scl_worker *w)
{
	return w->endpoint;
}
