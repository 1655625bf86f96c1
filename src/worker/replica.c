/*
 * replica.c - the host's side of the replica in its core: every KV call
 * into the core, and what its replies carry out (batches to publish to
 * the peers and store on the servers, syncs, fetches); the peers' and the
 * fetcher's messages going in; and the appender's answers, which make
 * writes durable.
 */
#include <errno.h>
#include <string.h>

#include <zmq.h>

#include "scl/clock.h"
#include "scl/codec.h"
#include "scl/router.h"
#include "worker_int.h"

/* The bytes after which the host hands the peers' messages waiting to
 * the core in one call rather than adding more (the count's bound is
 * SCL_CORE_RECEIVE_MAX). */
#define RECEIVE_SOFT_BYTES ((size_t)4 << 20)

static void
publish(struct host *h, struct scl_slice msg)
{
	struct scl_router_msg m;

	if (h->router == NULL)
		return;
	memset(&m, 0, sizeof(m));
	m.type = SCL_ROUTER_PUB;
	memcpy(m.name, h->name, SCL_NAME_BYTES);
	m.payload = msg;
	if (scl_router_msg_encode(&h->frame, &m) == SCL_OK &&
	    zmq_send(h->router, h->frame.ptr, h->frame.len, ZMQ_DONTWAIT) >= 0)
		h->published++;
}

void
scl_worker__subscribe(struct host *h)
{
	struct scl_router_msg m;

	if (h->router == NULL)
		return;
	memset(&m, 0, sizeof(m));
	m.type = SCL_ROUTER_SUB;
	memcpy(m.name, h->name, SCL_NAME_BYTES);
	if (scl_router_msg_encode(&h->frame, &m) == SCL_OK)
		(void)zmq_send(h->router, h->frame.ptr, h->frame.len,
		    ZMQ_DONTWAIT);
	h->next_sub_ms = scl_clock_mono_ms() + SCL_ROUTER_RENEW_MS;
}

/* Hands a frame (@bytes of sealed batch, 0 for URGENT) to the
 * appender, waiting while the pipe is full, but not for an appender that
 * is gone nor once the worker is told to stop (a batch then counts among
 * the writes the servers do not hold, and the stop says how many).  The
 * bound on what waits is in bytes (clients.c refuses writes past it);
 * the pipe's only backs it. */
static void
to_appender(struct host *h, struct scl_slice frame, size_t bytes)
{
	while (zmq_send(h->app, frame.ptr, frame.len, ZMQ_DONTWAIT) < 0) {
		zmq_pollitem_t it = { h->app, 0, ZMQ_POLLOUT | ZMQ_POLLIN, 0 };
		if (zmq_errno() != EAGAIN || atomic_load(&h->thread_failed) ||
		    atomic_load(&h->w->stop_serving))
			return;
		(void)zmq_poll(&it, 1, 100);
		/* The appender's completions must not fill their pipe while
		 * this waits: it would block on them and never make room. */
		scl_worker__read_appender(h);
	}
	h->handed += bytes;
}

void
scl_worker__want_durable(struct host *h, uint64_t through)
{
	uint8_t f[URGENT_FRAME_BYTES];

	if (h->app == NULL || through <= h->durable || through <= h->urgent)
		return;
	scl_le64_store(f, through);
	h->urgent = through;
	to_appender(h, scl_slice_of(f, sizeof(f)), 0);
}

/* A sealed batch: to the peers, and to the appender (one frame: u64
 * through, then the message), or durable at once for a plain replica,
 * which has no servers. */
static void
out_batch(struct host *h, const struct scl_core_output *o)
{
	uint8_t hdr[8];

	publish(h, o->msg);
	if (o->through > h->sealed) {
		h->sealed = o->through;
		h->sealed_at_us = scl_clock_mono_us();
		h->served_at_seal = h->served;
	}
	if (h->app == NULL) {
		h->durable = o->through;
		return;
	}
	scl_le64_store(hdr, o->through);
	scl_buf_clear(&h->frame);
	if (scl_buf_append(&h->frame, hdr, sizeof(hdr)) == SCL_OK &&
	    scl_buf_append(&h->frame, o->msg.ptr, o->msg.len) == SCL_OK)
		to_appender(h, scl_buf_slice(&h->frame), o->msg.len);
}

bool
scl_worker__pipe_send(void *s, enum fetch_tag tag, struct scl_slice body,
    int flags)
{
	uint8_t t = (uint8_t)tag;

	if (zmq_send(s, &t, 1, flags | (body.len ? ZMQ_SNDMORE : 0)) < 0)
		return false;
	return body.len == 0 || zmq_send(s, body.ptr, body.len, flags) >= 0;
}

/* FETCH: the fetcher reads the range from the servers; STORE: it hands
 * the batch on to them.  A request that would block is dropped: the
 * core asks again. */
static void
out_fetcher(struct host *h, const struct scl_core_output *o)
{
	uint8_t want[FETCH_WANT_BYTES];

	if (h->fetch == NULL)
		return;
	if (o->kind == SCL_KV_OUT_STORE) {
		(void)scl_worker__pipe_send(h->fetch, FETCH_STORE, o->msg,
		    ZMQ_DONTWAIT);
		return;
	}
	memcpy(want, o->writer, SCL_WRITER_BYTES);
	scl_le64_store(want + SCL_WRITER_BYTES, o->from);
	scl_le64_store(want + SCL_WRITER_BYTES + 8, o->to);
	(void)scl_worker__pipe_send(h->fetch, FETCH_WANT,
	    scl_slice_of(want, sizeof(want)), ZMQ_DONTWAIT);
}

/* Takes the replica's state from a KV reply and sends its outputs where
 * they go; *@results gets the op's results. */
static enum scl_err
dispatch(struct host *h, struct scl_slice body, struct scl_slice *results)
{
	struct scl_core_kv_reply r;
	struct scl_core_output o;
	enum scl_err e;

	if ((e = scl_core_kv_reply_decode(&r, body)) != SCL_OK)
		return e;
	h->more = r.more;
	h->sealing = r.sealing;
	h->through = r.through;
	h->next_tick = r.next_tick_us;
	while (scl_core_output_next(&r.outputs, &o)) {
		if (o.kind == SCL_KV_OUT_BATCH)
			out_batch(h, &o);
		else if (o.kind == SCL_KV_OUT_SYNC)
			publish(h, o.msg);
		else if (o.kind == SCL_KV_OUT_NOTICE)
			scl_log(&h->w->opt.log, SCL_LOG_WARN, "worker",
			    "core: %.*s", (int)o.msg.len,
			    (const char *)o.msg.ptr);
		else
			out_fetcher(h, &o);
	}
	*results = r.results;
	return SCL_OK;
}

enum scl_err
scl_worker__kv_call(struct host *h, struct scl_slice req,
    struct scl_slice *results)
{
	struct scl_slice body;
	enum scl_err e = scl_worker__call(h->w, req, &body);

	if (e != SCL_OK)
		return e;
	return dispatch(h, body, results);
}

enum scl_err
scl_worker__tick(struct host *h)
{
	struct scl_slice results;
	enum scl_err r;

	do {
		if ((r = scl_core_tick_encode(&h->req, scl_clock_wall_us())) ==
		    SCL_OK)
			r = scl_worker__kv_call(h, scl_buf_slice(&h->req), &results);
	} while (r == SCL_OK && h->more);
	return r;
}

/*
 * Messages for the core, peers' (through the router) or fetched, go over
 * several to a call (core op KV_RECEIVE): one ring round trip, and one
 * wake-up of the core, for all that waited.
 */
static void
receive_run(struct host *h)
{
	struct scl_slice results;

	if (scl_core_receive_count(&h->req) == 0)
		return;
	if (scl_core_receive_finish(&h->req) != SCL_OK ||
	    scl_worker__kv_call(h, scl_buf_slice(&h->req), &results) !=
	    SCL_OK)
		scl_log(&h->w->opt.log, SCL_LOG_WARN, "worker",
		    "the core refused messages: %s", scl_err_last());
	scl_err_clear();
	if (h->more)
		(void)scl_worker__tick(h); /* takes outputs until none is left */
	scl_buf_clear(&h->req); /* the next message begins a call */
}

/* Adds @msg to the call being built, making the call first if it is full;
 * makes it after if it is now full enough. */
static void
receive_add(struct host *h, struct scl_slice msg)
{
	if (h->req.len == 0 &&
	    scl_core_receive_begin(&h->req, scl_clock_wall_us()) != SCL_OK)
		goto fail;
	if (scl_core_receive_add(&h->req, msg) != SCL_OK) {
		receive_run(h);
		if (scl_core_receive_begin(&h->req, scl_clock_wall_us()) !=
			SCL_OK ||
		    scl_core_receive_add(&h->req, msg) != SCL_OK)
			goto fail;
	}
	if (scl_core_receive_count(&h->req) == SCL_CORE_RECEIVE_MAX ||
	    h->req.len >= RECEIVE_SOFT_BYTES)
		receive_run(h);
	return;
fail:
	/* The replica fetches what it misses; the log says why. */
	scl_log(&h->w->opt.log, SCL_LOG_WARN, "worker", "a message of %zu "
	    "bytes is not handed to the core: %s", msg.len, scl_err_last());
	scl_err_clear();
	scl_buf_clear(&h->req);
}

void
scl_worker__read_router(struct host *h)
{
	scl_buf_clear(&h->req);
	for (;;) {
		struct scl_router_msg rm;
		zmq_msg_t m;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, h->router, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			break;
		}
		if (scl_router_msg_decode(&rm, scl_slice_of(zmq_msg_data(&m),
			zmq_msg_size(&m))) == SCL_OK &&
		    rm.type == SCL_ROUTER_PUB &&
		    memcmp(rm.name, h->name, SCL_NAME_BYTES) == 0)
			receive_add(h, rm.payload);
		scl_err_clear();
		zmq_msg_close(&m);
	}
	receive_run(h);
}

/* What the servers hold, for the core's hand-on (fetcher.c polls). */
static void
durable_heads(struct host *h, struct scl_slice body)
{
	struct scl_core_durable heads[SCL_CORE_DURABLE_MAX];
	struct scl_slice results;
	size_t n = 0;

	for (; n < SCL_CORE_DURABLE_MAX &&
	     body.len >= FETCH_DURABLE_ENTRY_BYTES; n++) {
		memcpy(heads[n].writer, body.ptr, SCL_WRITER_BYTES);
		heads[n].seqno = scl_le64_load(body.ptr + SCL_WRITER_BYTES);
		body.ptr += FETCH_DURABLE_ENTRY_BYTES;
		body.len -= FETCH_DURABLE_ENTRY_BYTES;
	}
	if (n == 0 ||
	    scl_core_durable_encode(&h->req, scl_clock_wall_us(), heads, n) !=
		SCL_OK ||
	    scl_worker__kv_call(h, scl_buf_slice(&h->req), &results) != SCL_OK)
		scl_log(&h->w->opt.log, SCL_LOG_WARN, "worker",
		    "the core refused the servers' heads: %s", scl_err_last());
	scl_err_clear();
	if (h->more)
		(void)scl_worker__tick(h);
	scl_buf_clear(&h->req);
}

void
scl_worker__read_fetcher(struct host *h)
{
	for (;;) {
		zmq_msg_t tag, body;
		int more = 0;
		size_t ml = sizeof(more);
		struct scl_slice b;
		zmq_msg_init(&tag);
		if (zmq_msg_recv(&tag, h->fetch, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&tag);
			return;
		}
		zmq_msg_init(&body);
		if (zmq_getsockopt(h->fetch, ZMQ_RCVMORE, &more, &ml) == 0 &&
		    more)
			(void)zmq_msg_recv(&body, h->fetch, 0);
		b = scl_slice_of(zmq_msg_data(&body), zmq_msg_size(&body));
		switch (zmq_msg_size(&tag) ? *(uint8_t *)zmq_msg_data(&tag)
					   : 0) {
		case FETCH_CAUGHT_UP:
			h->caught_up = true;
			scl_log(&h->w->opt.log, SCL_LOG_INFO, "worker",
			    "caught up with the capsule servers");
			break;
		case FETCH_BATCH:
			h->fetched_in++;
			scl_buf_clear(&h->req);
			receive_add(h, b);
			receive_run(h);
			break;
		case FETCH_DURABLE:
			durable_heads(h, b);
			break;
		}
		zmq_msg_close(&body);
		zmq_msg_close(&tag);
	}
}

void
scl_worker__read_appender(struct host *h)
{
	uint8_t done[8];

	while (zmq_recv(h->app, done, sizeof(done), ZMQ_DONTWAIT) == 8) {
		uint64_t t = scl_le64_load(done);
		h->appended++;
		if (t > h->durable)
			h->durable = t;
	}
	(void)scl_worker__unstored_bytes(h); /* says when writes resume */
	scl_worker__release_durable(h);
}

uint64_t
scl_worker__unstored_bytes(struct host *h)
{
	uint64_t u = h->handed - atomic_load(&h->settled);
	bool refusing = h->app != NULL && u >= h->unstored_max;

	if (refusing != h->refusing)
		scl_log(&h->w->opt.log, refusing ? SCL_LOG_WARN : SCL_LOG_INFO,
		    "worker", refusing ? SCL_WORKER_REFUSING_WRITES
				       : "the servers caught up (%llu MiB "
					 "waiting): taking writes again",
		    (unsigned long long)(u >> 20));
	h->refusing = refusing;
	return u;
}
