/*
 * clients.c - a worker's clients (the ROUTER on --listen): requests in,
 * handed to the core in groups, one per request, so that under load one
 * ring round trip serves many clients; replies out, a durable one held
 * until the servers hold its writes.
 *
 * Every frame gets an answer: a malformed one (an unknown kind, version
 * or flag, too short to hold an id) is refused with its reason and the
 * id it carried (0 if none), and a request the core refuses keeps the
 * core's code and reason (kvclient.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "scl/clock.h"
#include "worker_int.h"

/* A group call is made once it holds this many bytes of requests (the
 * core's message limit bounds one client's request). */
#define GROUP_BYTES_MAX ((size_t)8 << 20)

static void
send_reply(struct host *h, const uint8_t *route, size_t rlen,
    struct scl_slice frame)
{
	if (zmq_send(h->clients, route, rlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
		(void)zmq_send(h->clients, frame.ptr, frame.len, ZMQ_DONTWAIT);
}

/* Answers a client, or holds the answer until the servers hold the
 * operations up to @hold_through (0: no need). */
static void
reply_client(struct host *h, const uint8_t *route, size_t rlen, uint8_t kind,
    uint64_t id, enum scl_err err, struct scl_slice body,
    uint64_t hold_through)
{
	struct scl_kvclient_reply r = { kind, id, err, body };
	struct held_reply *held;
	struct scl_buf f;

	scl_buf_init(&f);
	if (scl_kvclient_reply_encode(&f, &r) != SCL_OK) {
		scl_err_clear(); /* the client times out: memory ran out */
		scl_buf_dispose(&f);
		return;
	}
	if (hold_through > h->durable && rlen <= ROUTE_MAX &&
	    (held = calloc(1, sizeof(*held))) != NULL) {
		held->through = hold_through;
		held->route_len = rlen;
		memcpy(held->route, route, rlen);
		held->frame = f;
		held->next = h->held;
		h->held = held;
		scl_worker__want_durable(h, hold_through);
		return;
	}
	send_reply(h, route, rlen, scl_buf_slice(&f));
	scl_buf_dispose(&f);
}

/* Refuses a request with the thread's error (code and message). */
static void
refuse(struct host *h, const uint8_t *route, size_t rlen, uint8_t kind,
    uint64_t id, enum scl_err err)
{
	const char *why = scl_err_last();

	reply_client(h, route, rlen, kind, id, err,
	    scl_slice_of(why, strlen(why)), 0);
	scl_err_clear();
}

void
scl_worker__release_durable(struct host *h)
{
	for (struct held_reply **at = &h->held; *at;) {
		struct held_reply *r = *at;
		if (r->through > h->durable) {
			at = &r->next;
			continue;
		}
		send_reply(h, r->route, r->route_len, scl_buf_slice(&r->frame));
		*at = r->next;
		scl_buf_dispose(&r->frame);
		free(r);
	}
}

void
scl_worker__drop_held(struct host *h)
{
	while (h->held) {
		struct held_reply *r = h->held;
		h->held = r->next;
		scl_buf_dispose(&r->frame);
		free(r);
	}
}

static void
client_status(struct host *h, const uint8_t *route, size_t rlen, uint64_t id)
{
	static const uint8_t op = SCL_CORE_KV_STATS;
	struct scl_ring_stats to_core, from_core;
	struct scl_slice body;
	struct scl_buf text;
	char tail[384];
	enum scl_err e;
	int len;

	scl_enclave_ring_stats(h->w->e, &to_core, &from_core);
	if ((e = scl_worker__call(h->w, scl_slice_of(&op, 1), &body)) !=
	    SCL_OK) {
		refuse(h, route, rlen, SCL_KVCLIENT_STATUS, id, e);
		return;
	}
	len = snprintf(tail, sizeof(tail),
	    ",\"host\":{\"through\":%llu,\"durable\":%llu,"
	    "\"appends\":%llu,\"unstored_bytes\":%llu,"
	    "\"refused_writes\":%llu,\"published\":%llu,"
	    "\"fetched_in\":%llu,\"caught_up\":%s,"
	    "\"servers_rolled_back\":%llu,"
	    "\"rings\":{\"answer_waits_spun\":%llu,"
	    "\"answer_waits_slept\":%llu,\"sends_found_full\":%llu}}}",
	    (unsigned long long)h->through, (unsigned long long)h->durable,
	    (unsigned long long)h->appended,
	    (unsigned long long)scl_worker__unstored_bytes(h),
	    (unsigned long long)h->refused,
	    (unsigned long long)h->published,
	    (unsigned long long)h->fetched_in,
	    h->caught_up ? "true" : "false",
	    (unsigned long long)atomic_load(&h->rollbacks_seen),
	    (unsigned long long)from_core.spins_won,
	    (unsigned long long)from_core.sleeps,
	    (unsigned long long)to_core.full_waits);
	scl_buf_init(&text);
	/* The core's part grows with its peers: no fixed buffer. */
	if ((e = scl_buf_append(&text, "{\"core\":", 8)) == SCL_OK &&
	    (e = scl_buf_append(&text, body.ptr, body.len)) == SCL_OK &&
	    (e = scl_buf_append(&text, tail, (size_t)len)) == SCL_OK)
		reply_client(h, route, rlen, SCL_KVCLIENT_STATUS, id, SCL_OK,
		    scl_buf_slice(&text), 0);
	else
		refuse(h, route, rlen, SCL_KVCLIENT_STATUS, id, e);
	scl_buf_dispose(&text);
}

/* A benchmark's requests, run by the core as a lambda in it would. */
static void
client_timed(struct host *h, const uint8_t *route, size_t rlen,
    const struct scl_kvclient_request *q)
{
	struct scl_slice results;
	struct scl_buf req;
	enum scl_err e;

	/* h->req may hold a group being built: a buffer of its own. */
	scl_buf_init(&req);
	if ((e = scl_core_timed_encode(&req, scl_clock_wall_us(), q->n,
		 q->ops)) == SCL_OK &&
	    (e = scl_worker__kv_call(h, scl_buf_slice(&req), &results)) ==
		SCL_OK)
		reply_client(h, route, rlen, q->kind, q->id, SCL_OK, results, 0);
	else
		refuse(h, route, rlen, q->kind, q->id, e);
	scl_buf_dispose_secret(&req); /* plaintext values */
}

/* While as much as may wait for the servers does, a request that writes
 * is answered with an error instead of being applied; reads and status
 * go on.  True if @q was refused so. */
static bool
refuse_writes(struct host *h, const uint8_t *route, size_t rlen,
    const struct scl_kvclient_request *q)
{
	uint64_t unstored = scl_worker__unstored_bytes(h);
	bool writes = true; /* a list that does not check: the core refuses */
	char msg[160];
	int len;

	if (!h->refusing)
		return false;
	if (scl_kvreq_check(q->ops, q->n, &writes) != SCL_OK)
		scl_err_clear();
	if (!writes)
		return false;
	len = snprintf(msg, sizeof(msg), SCL_WORKER_REFUSING_WRITES,
	    (unsigned long long)(unstored >> 20));
	reply_client(h, route, rlen, q->kind, q->id, SCL_EFULL,
	    scl_slice_of(msg, (size_t)len), 0);
	h->refused++;
	return true;
}

/* Takes one client frame: answers it at once (a status, a timed run, a
 * refusal), or adds it to the group call being built (true). */
static bool
take_request(struct host *h, struct pending_req *p, const uint8_t *route,
    size_t rlen, struct scl_slice frame)
{
	struct scl_kvclient_request q;
	enum scl_err e;

	if (rlen > ROUTE_MAX)
		return false; /* not a ROUTER identity: nowhere to answer */
	if ((e = scl_kvclient_request_decode(&q, frame)) != SCL_OK) {
		refuse(h, route, rlen, q.kind, q.id, e);
		return false;
	}
	if (q.kind == SCL_KVCLIENT_STATUS) {
		client_status(h, route, rlen, q.id);
		return false;
	}
	if (refuse_writes(h, route, rlen, &q))
		return false;
	h->served += q.n; /* a lambda's operations keep it busy too */
	if (q.kind == SCL_KVCLIENT_TIMED) {
		client_timed(h, route, rlen, &q);
		return false;
	}
	if (h->req.len == 0 &&
	    (e = scl_core_ops_begin(&h->req, scl_clock_wall_us())) != SCL_OK) {
		refuse(h, route, rlen, q.kind, q.id, e);
		return false;
	}
	p->durable = (q.flags & SCL_KVCLIENT_DURABLE) != 0;
	if ((e = scl_core_ops_add(&h->req, p->durable ? SCL_CORE_GROUP_DURABLE
						     : 0, q.n, q.ops)) !=
	    SCL_OK) {
		refuse(h, route, rlen, q.kind, q.id, e);
		return false;
	}
	memcpy(p->route, route, rlen);
	p->route_len = rlen;
	p->kind = q.kind;
	p->id = q.id;
	return true;
}

/* Makes the group call and answers each request with its results. */
static void
group_run(struct host *h)
{
	struct pending_req *p = h->pending;
	uint16_t groups = scl_core_ops_count(&h->req);
	struct scl_slice results;
	enum scl_err e;

	if (groups == 0)
		return;
	if ((e = scl_core_ops_finish(&h->req)) == SCL_OK)
		e = scl_worker__kv_call(h, scl_buf_slice(&h->req), &results);
	scl_buf_clear(&h->req);
	for (uint16_t g = 0; g < groups; g++) {
		struct scl_core_group_result r;
		if (e == SCL_OK && !scl_core_group_result_next(&results, &r))
			e = scl_err_set(SCL_EFORMAT, "the core's results for "
			    "%u requests end at %u", groups, g);
		if (e != SCL_OK) {
			/* Every request of a failed call hears why. */
			const char *why = scl_err_last();
			reply_client(h, p[g].route, p[g].route_len, p[g].kind,
			    p[g].id, e, scl_slice_of(why, strlen(why)), 0);
			continue;
		}
		reply_client(h, p[g].route, p[g].route_len, p[g].kind,
		    p[g].id, r.err, r.body,
		    p[g].durable && r.err == SCL_OK ? r.through : 0);
	}
	scl_err_clear();
	if (h->more)
		(void)scl_worker__tick(h); /* takes outputs until none is left */
}

/* Receives one client message (route, body); false when none waits. */
static bool
recv_client(struct host *h, zmq_msg_t *route, zmq_msg_t *body)
{
	int more = 0;
	size_t ml = sizeof(more);
	bool have_body;

	if (zmq_msg_recv(route, h->clients, ZMQ_DONTWAIT) < 0)
		return false;
	have_body = zmq_getsockopt(h->clients, ZMQ_RCVMORE, &more, &ml) == 0 &&
	    more && zmq_msg_recv(body, h->clients, 0) >= 0;
	/* Frames beyond the body are dropped: a request is one frame. */
	while (zmq_getsockopt(h->clients, ZMQ_RCVMORE, &more, &ml) == 0 &&
	    more) {
		zmq_msg_t junk;
		zmq_msg_init(&junk);
		(void)zmq_msg_recv(&junk, h->clients, 0);
		zmq_msg_close(&junk);
	}
	(void)have_body; /* without one, @body stays empty: refused as such */
	return true;
}

void
scl_worker__read_clients(struct host *h)
{
	scl_buf_clear(&h->req);
	for (;;) {
		zmq_msg_t route, body;
		uint16_t g = scl_core_ops_count(&h->req);
		/* A full call is made before the next request is read. */
		SCL_ASSERT(g < SCL_CORE_GROUPS_MAX);
		zmq_msg_init(&route);
		zmq_msg_init(&body);
		if (!recv_client(h, &route, &body)) {
			zmq_msg_close(&body);
			zmq_msg_close(&route);
			break;
		}
		(void)take_request(h, &h->pending[g], zmq_msg_data(&route),
		    zmq_msg_size(&route), scl_slice_of(zmq_msg_data(&body),
		    zmq_msg_size(&body)));
		zmq_msg_close(&body);
		zmq_msg_close(&route);
		if (scl_core_ops_count(&h->req) == SCL_CORE_GROUPS_MAX ||
		    h->req.len > GROUP_BYTES_MAX)
			group_run(h);
	}
	group_run(h);
}
