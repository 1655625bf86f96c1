/*
 * client.c - requests to a set of capsule servers, replies matched by
 * request id, appends pipelined to a write quorum, and reads that trust
 * no server.
 *
 * One DEALER socket per server.  Every frame received goes through
 * pump(): replies to in-flight appends update their tallies, a reply to
 * the current synchronous request is kept, anything else (late replies to
 * requests already given up on) is dropped.  A server that does not answer
 * in time is asked again (a new request id) up to the retry limit.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "scl/client.h"
#include "scl/clock.h"
#include "scl/codec.h"
#include "scl/proto.h"
#include "scl/zsock.h"

#define WINDOW_MAX 256
/* Messages a server's socket queues before sends fail (EAGAIN): a
 * window of appends and their resends. */
#define SEND_HWM 1024
/* A server that answered GAP is asked again this soon: anti-entropy
 * usually brings it up to date within a sync period (200 ms). */
#define LAGGING_RETRY_MS 50

struct conn {
	char addr[256];
	void *sock;
};

/* Where one server stands on one append. */
enum server_state {
	S_WAITING = 0,	/* asked, no answer yet in this attempt */
	S_ACKED,	/* durable, valid receipt */
	S_LAGGING,	/* answered GAP: ask again next attempt */
	S_REFUSED,	/* rejected it; not asked again */
};

/* An append in flight. */
struct pend {
	bool used;
	uint64_t ticket, id;
	struct scl_buf frame;		/* the encoded APPEND, for resends */
	uint8_t name[SCL_NAME_BYTES];
	uint8_t writer[SCL_WRITER_BYTES];
	uint64_t last;
	uint8_t last_hash[SCL_HASH_BYTES];
	unsigned quorum, attempts;
	uint64_t deadline;		/* of this attempt */
	uint64_t give_up;		/* of the whole append */
	uint8_t state[SCL_CLIENT_SERVERS_MAX];	/* enum server_state */
	struct scl_client_ack ack;
	bool done;
	enum scl_err err;
	char msg[512];
	char why[256];		/* the last refusal, as the server put it */
};

/* The one synchronous request in flight. */
struct reply {
	bool got;
	zmq_msg_t frame;
	struct scl_msg m;
};

struct scl_client {
	void *zctx;
	struct conn conns[SCL_CLIENT_SERVERS_MAX];
	size_t n;
	struct scl_client_options opt;
	uint64_t next_id, next_ticket;
	struct pend pends[WINDOW_MAX];
	uint64_t rpc_id;
	struct reply *rpc;		/* [n], NULL when none */
	struct scl_buf frame;
};

enum scl_err
scl_client_new(struct scl_client **out, const char *const *servers, size_t n,
    const struct scl_client_options *opt)
{
	struct scl_client *c;

	*out = NULL;
	if (n == 0 || n > SCL_CLIENT_SERVERS_MAX)
		return scl_err_set(SCL_EINVAL, "need 1 to %d servers, not %zu",
		    SCL_CLIENT_SERVERS_MAX, n);
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return scl_err_set(SCL_ENOMEM, "cannot allocate client");
	if (opt)
		c->opt = *opt;
	if (c->opt.timeout_ms == 0)
		c->opt.timeout_ms = 2000;
	if (c->opt.retries == 0 && !c->opt.no_retries)
		c->opt.retries = 2;
	scl_buf_init(&c->frame);
	if ((c->zctx = zmq_ctx_new()) == NULL)
		goto zfail;
	for (size_t i = 0; i < n; i++) {
		struct scl_zsock_options zo = SCL_ZSOCK_OPTIONS_INIT;
		struct conn *k = &c->conns[i];
		enum scl_err e;
		snprintf(k->addr, sizeof(k->addr), "%s", servers[i]);
		zo.max_msg_bytes = (int64_t)SCL_MSG_MAX;
		zo.send_hwm = SEND_HWM;
		zo.connect = k->addr;
		if ((e = scl_zsock_open(&k->sock, c->zctx, ZMQ_DEALER, &zo)) !=
		    SCL_OK) {
			scl_err_wrap(e, "server address: ");
			scl_client_free(c);
			return e;
		}
		c->n++;
	}
	*out = c;
	return SCL_OK;
zfail:
	scl_err_set(SCL_EIO, "zeromq: %s", zmq_strerror(zmq_errno()));
	scl_client_free(c);
	return SCL_EIO;
}

void
scl_client_free(struct scl_client *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < WINDOW_MAX; i++)
		scl_buf_dispose(&c->pends[i].frame);
	for (size_t i = 0; i < c->n; i++)
		zmq_close(c->conns[i].sock);
	if (c->zctx)
		zmq_ctx_term(c->zctx);
	scl_buf_dispose(&c->frame);
	free(c);
}

size_t
scl_client_count(const struct scl_client *c)
{
	return c->n;
}

const char *
scl_client_addr(const struct scl_client *c, size_t i)
{
	return i < c->n ? c->conns[i].addr : "?";
}

static bool
send_frame(struct scl_client *c, size_t i, struct scl_slice f)
{
	return zmq_send(c->conns[i].sock, f.ptr, f.len, ZMQ_DONTWAIT) >= 0;
}

/* Patches the request id of an encoded frame (envelope offset 4). */
static void
set_id(struct scl_buf *frame, uint64_t id)
{
	scl_le64_store(frame->ptr + 4, id);
}

/* --- append tallies --------------------------------------------------- */

static struct pend *
pend_by_id(struct scl_client *c, uint64_t id)
{
	for (size_t i = 0; i < WINDOW_MAX; i++)
		if (c->pends[i].used && !c->pends[i].done &&
		    c->pends[i].id == id)
			return &c->pends[i];
	return NULL;
}

static void
pend_fail(struct pend *p, enum scl_err e, const char *fmt, ...)
    SCL_PRINTF(3, 4);

static void
pend_fail(struct pend *p, enum scl_err e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->msg, sizeof(p->msg), fmt, ap);
	va_end(ap);
	p->err = e;
	p->done = true;
}

static void
pend_count(struct scl_client *c, struct pend *p)
{
	p->ack.acked = p->ack.lagging = p->ack.rejected = p->ack.silent = 0;
	for (size_t i = 0; i < c->n; i++) {
		p->ack.acked += p->state[i] == S_ACKED;
		p->ack.lagging += p->state[i] == S_LAGGING;
		p->ack.rejected += p->state[i] == S_REFUSED;
		p->ack.silent += p->state[i] == S_WAITING;
	}
}

/* A server's answer to an append. */
static void
pend_reply(struct scl_client *c, struct pend *p, size_t i,
    const struct scl_msg *m)
{
	char ref[32];

	/* Once a quorum holds the batch, a later answer changes nothing:
	 * its receipt is not worth a signature check (a pipelined writer
	 * would pay one per batch for the slowest server). */
	if (p->done || p->state[i] != S_WAITING)
		return;
	scl_capsule_record_ref(ref, p->writer, p->last);
	if (m->type == (SCL_MSG_APPEND | SCL_MSG_REPLY)) {
		if (m->seqno != p->last ||
		    memcmp(m->hash, p->last_hash, SCL_HASH_BYTES) != 0 ||
		    scl_receipt_verify(m->receipt, m->server_key, p->name,
			p->writer, m->seqno, m->hash) != SCL_OK) {
			p->state[i] = S_REFUSED;
			scl_log(&c->opt.log, SCL_LOG_WARN, "client",
			    "server %s acknowledged %s with an invalid receipt",
			    c->conns[i].addr, ref);
		} else {
			p->state[i] = S_ACKED;
			p->ack.duplicates += m->duplicate;
			p->ack.ok[i] = true;
			memcpy(p->ack.receipt[i], m->receipt, 64);
			memcpy(p->ack.server_key[i], m->server_key, 32);
		}
	} else if (m->type == SCL_MSG_ERROR && m->err_code == SCL_WIRE_GAP) {
		p->state[i] = S_LAGGING;
	} else if (m->type == SCL_MSG_ERROR && m->err_code == SCL_WIRE_BUSY) {
		/* transient: stays WAITING, asked again next attempt */
	} else {
		p->state[i] = S_REFUSED;
		snprintf(p->why, sizeof(p->why), "server %s: %s: %.*s",
		    c->conns[i].addr, m->type == SCL_MSG_ERROR
			? scl_wire_err_name(m->err_code) : "unexpected reply",
		    (int)m->blob.len, (const char *)m->blob.ptr);
		scl_log(&c->opt.log, SCL_LOG_WARN, "client",
		    "append of %s refused by %s", ref, p->why);
		if (m->type == SCL_MSG_ERROR &&
		    m->err_code == SCL_WIRE_EQUIVOCATION) {
			pend_fail(p, SCL_EVERIFY, "server %s: %.*s",
			    c->conns[i].addr, (int)m->blob.len,
			    (const char *)m->blob.ptr);
			return;
		}
	}
	pend_count(c, p);
	if (p->ack.acked >= p->quorum) {
		p->done = true;
		p->err = SCL_OK;
	} else if (p->ack.silent == 0 && p->ack.lagging > 0 &&
	    c->n - p->ack.rejected >= p->quorum) {
		/* Everyone answered and only servers catching up stand in the
		 * way: ask them again shortly, not after a full timeout. */
		uint64_t soon = scl_clock_mono_ms() + LAGGING_RETRY_MS;
		if (soon < p->deadline)
			p->deadline = soon;
	} else if (c->n - p->ack.rejected < p->quorum) {
		pend_fail(p, SCL_EVERIFY,
		    "append of %s: %u of %zu servers refused it; a quorum of %u "
		    "is out of reach (last refusal: %s)", ref, p->ack.rejected,
		    c->n, p->quorum, p->why[0] ? p->why : "invalid receipt");
	}
}

/* Starts the next attempt (asking every server that has not acked or
 * refused), or fails the append once the retries are spent. */
static void
pend_retry(struct scl_client *c, struct pend *p, uint64_t now)
{
	char ref[32];
	zmq_msg_t whole;

	if (p->done || now < p->deadline)
		return;
	scl_capsule_record_ref(ref, p->writer, p->last);
	if (now >= p->give_up) {
		pend_count(c, p);
		pend_fail(p, SCL_ETIMEOUT,
		    "append of %s: %u of %u acks after %u attempts (%u servers "
		    "silent, %u catching up, %u refused)", ref, p->ack.acked,
		    p->quorum, p->attempts, p->ack.silent, p->ack.lagging,
		    p->ack.rejected);
		return;
	}
	p->attempts++;
	p->id = ++c->next_id;
	set_id(&p->frame, p->id);
	if (zmq_msg_init_size(&whole, p->frame.len) != 0) {
		p->deadline = now + c->opt.timeout_ms; /* try again then */
		return;
	}
	memcpy(zmq_msg_data(&whole), p->frame.ptr, p->frame.len);
	for (size_t i = 0; i < c->n; i++) {
		zmq_msg_t m;
		if (p->state[i] == S_ACKED || p->state[i] == S_REFUSED)
			continue;
		p->state[i] = S_WAITING;
		/* The servers' messages share one copy of the append: ZeroMQ
		 * counts references to a message's content, so an append of
		 * megabytes is copied once, not once per server. */
		zmq_msg_init(&m);
		if (zmq_msg_copy(&m, &whole) != 0 ||
		    zmq_msg_send(&m, c->conns[i].sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			scl_log(&c->opt.log, SCL_LOG_DEBUG, "client",
			    "cannot queue to %s", c->conns[i].addr);
		}
	}
	zmq_msg_close(&whole);
	p->deadline = now + c->opt.timeout_ms;
}

#define CANCEL_POLL_MS 50

static bool
cancelled(const struct scl_client *c)
{
	return c->opt.cancel != NULL && atomic_load(c->opt.cancel);
}

/* Receives every waiting frame, then waits up to @wait_ms for more (in
 * slices short enough to notice a cancel). */
static void
pump(struct scl_client *c, long wait_ms)
{
	zmq_pollitem_t items[SCL_CLIENT_SERVERS_MAX];

	if (c->opt.cancel != NULL && wait_ms > CANCEL_POLL_MS)
		wait_ms = CANCEL_POLL_MS;

	for (size_t i = 0; i < c->n; i++)
		items[i] = (zmq_pollitem_t){ c->conns[i].sock, 0, ZMQ_POLLIN,
			0 };
	if (zmq_poll(items, (int)c->n, wait_ms) <= 0)
		return;
	for (size_t i = 0; i < c->n; i++) {
		if (!items[i].revents)
			continue;
		for (;;) {
			zmq_msg_t f;
			struct scl_msg m;
			struct pend *p;
			zmq_msg_init(&f);
			if (zmq_msg_recv(&f, c->conns[i].sock, ZMQ_DONTWAIT) <
			    0) {
				zmq_msg_close(&f);
				break;
			}
			if (scl_msg_decode(&m, scl_slice_of(zmq_msg_data(&f),
						   zmq_msg_size(&f))) != SCL_OK) {
				scl_log(&c->opt.log, SCL_LOG_WARN, "client",
				    "server %s sent a malformed reply: %s",
				    c->conns[i].addr, scl_err_last());
				zmq_msg_close(&f);
				continue;
			}
			if ((p = pend_by_id(c, m.id)) != NULL) {
				pend_reply(c, p, i, &m);
				zmq_msg_close(&f);
			} else if (c->rpc && m.id == c->rpc_id &&
			    !c->rpc[i].got) {
				c->rpc[i].got = true;
				zmq_msg_init(&c->rpc[i].frame);
				zmq_msg_move(&c->rpc[i].frame, &f);
				zmq_msg_close(&f);
				/* re-decode: the frame moved */
				if (scl_msg_decode(&c->rpc[i].m, scl_slice_of(
					zmq_msg_data(&c->rpc[i].frame),
					zmq_msg_size(&c->rpc[i].frame))) !=
				    SCL_OK)
					c->rpc[i].got = false;
			} else {
				zmq_msg_close(&f);
			}
		}
	}
}

/*
 * The hash of @b's last record as its heartbeat states it, if the
 * heartbeat is that record's.  Receipts are checked against it: a server
 * signs one only after finding the heartbeat's hash in the chain it
 * stores, so hashing the record again here (256 KiB for a KVS batch)
 * would check nothing more.
 */
static bool
heartbeat_hash(uint8_t out[SCL_HASH_BYTES], const struct scl_capsule_batch *b,
    const struct scl_record *last)
{
	struct scl_heartbeat hb;

	if (b->heartbeat.len == 0 ||
	    scl_capsule_heartbeat_decode(&hb, scl_buf_slice(&b->heartbeat)) !=
		SCL_OK) {
		scl_err_clear();
		return false;
	}
	if (hb.seqno != last->seqno ||
	    memcmp(hb.writer, last->writer, SCL_WRITER_BYTES) != 0)
		return false;
	memcpy(out, hb.hash, SCL_HASH_BYTES);
	return true;
}

enum scl_err
scl_client_append_submit(struct scl_client *c,
    const struct scl_capsule_batch *b, unsigned quorum, unsigned window,
    uint64_t *ticket)
{
	struct pend *p = NULL;
	struct scl_slice *items = NULL;
	struct scl_record r;
	struct scl_msg m;
	enum scl_err e;

	if (window == 0 || window > WINDOW_MAX)
		window = WINDOW_MAX;
	if (quorum == 0 || quorum > c->n)
		return scl_err_set(SCL_EINVAL, "write quorum %u with %zu servers",
		    quorum, c->n);
	if (b->n == 0 || b->heartbeat.len == 0)
		return scl_err_set(SCL_EINVAL, "batch is empty or unsigned");
	{
		size_t active = 0;
		for (size_t i = 0; i < WINDOW_MAX; i++) {
			struct pend *q = &c->pends[i];
			if (q->used)
				active++;
			else if (p == NULL)
				p = q;
		}
		if (active >= window || p == NULL)
			return scl_err_set(SCL_EFULL,
			    "%zu appends in flight; wait for one first",
			    active);
	}
	if ((items = calloc(b->n, sizeof(*items))) == NULL)
		return scl_err_set(SCL_ENOMEM, "cannot frame append");
	for (size_t i = 0; i < b->n; i++)
		items[i] = scl_capsule_batch_record(b, i);
	memset(&m, 0, sizeof(m));
	m.type = SCL_MSG_APPEND;
	memcpy(m.name, b->capsule, SCL_NAME_BYTES);
	m.blob = scl_buf_slice(&b->heartbeat);
	scl_buf_clear(&p->frame);
	e = scl_msg_encode(&p->frame, &m, items, b->n, NULL, 0);
	free(items);
	if (e != SCL_OK)
		return e;
	if ((e = scl_capsule_record_decode(&r,
		 scl_capsule_batch_record(b, b->n - 1))) != SCL_OK)
		return e;
	if (!heartbeat_hash(p->last_hash, b, &r) &&
	    (e = scl_capsule_record_hash(p->last_hash, &r)) != SCL_OK)
		return e;
	p->used = true;
	p->done = false;
	p->err = SCL_OK;
	p->ticket = *ticket = ++c->next_ticket;
	memcpy(p->name, b->capsule, SCL_NAME_BYTES);
	memcpy(p->writer, b->writer, SCL_WRITER_BYTES);
	p->last = r.seqno;
	p->quorum = quorum;
	p->attempts = 0;
	memset(p->state, 0, sizeof(p->state));
	p->why[0] = '\0';
	memset(&p->ack, 0, sizeof(p->ack));
	p->deadline = 0;
	p->give_up = scl_clock_mono_ms() + (uint64_t)c->opt.timeout_ms *
	    (c->opt.retries + 1);
	pend_retry(c, p, scl_clock_mono_ms()); /* first attempt */
	pump(c, 0);
	return SCL_OK;
}

enum scl_err
scl_client_append_wait(struct scl_client *c, uint64_t ticket,
    struct scl_client_ack *out)
{
	struct pend *p = NULL;
	enum scl_err e;

	for (size_t i = 0; i < WINDOW_MAX && p == NULL; i++)
		if (c->pends[i].used && c->pends[i].ticket == ticket)
			p = &c->pends[i];
	if (p == NULL)
		return scl_err_set(SCL_ENOTFOUND, "no append with ticket %llu",
		    (unsigned long long)ticket);
	while (!p->done) {
		uint64_t now = scl_clock_mono_ms();
		for (size_t i = 0; i < WINDOW_MAX; i++) {
			struct pend *q = &c->pends[i];
			if (q->used && !q->done && cancelled(c))
				pend_fail(q, SCL_ECLOSED, "append cancelled: "
				    "the client is stopping");
			else if (q->used)
				pend_retry(c, q, now);
		}
		if (!p->done)
			pump(c, p->deadline > now ? (long)(p->deadline - now)
						  : 0);
	}
	if (out)
		*out = p->ack;
	e = p->err;
	if (e != SCL_OK)
		scl_err_set(e, "%s", p->msg);
	p->used = false;
	return e;
}

enum scl_err
scl_client_append(struct scl_client *c, const struct scl_capsule_batch *b,
    unsigned quorum, struct scl_client_ack *out)
{
	uint64_t ticket;
	enum scl_err e = scl_client_append_submit(c, b, quorum, WINDOW_MAX,
	    &ticket);

	return e == SCL_OK ? scl_client_append_wait(c, ticket, out) : e;
}

/* --- synchronous requests ------------------------------------------------ */

static void
rpc_release(struct scl_client *c, struct reply *r)
{
	for (size_t i = 0; i < c->n; i++)
		if (r[i].got)
			zmq_msg_close(&r[i].frame);
	free(r);
	c->rpc = NULL;
}

/*
 * Sends @req to the servers in @targets (all when NULL) and collects
 * replies until @need of them answered, all targets answered, or the
 * retries ran out.  Returns the reply array (caller: rpc_release), with
 * got[i] set for each answer.
 */
static struct reply *
rpc(struct scl_client *c, struct scl_msg *req, const bool *targets,
    size_t need)
{
	struct reply *r = calloc(c->n, sizeof(*r));
	size_t wanted = 0;

	if (r == NULL)
		return NULL;
	for (size_t i = 0; i < c->n; i++)
		wanted += targets == NULL || targets[i];
	if (need == 0 || need > wanted)
		need = wanted;
	c->rpc = r;
	for (unsigned attempt = 0; attempt <= c->opt.retries; attempt++) {
		uint64_t deadline = scl_clock_mono_ms() + c->opt.timeout_ms;
		size_t got = 0;
		req->id = c->rpc_id = ++c->next_id;
		scl_buf_clear(&c->frame);
		if (scl_msg_encode(&c->frame, req, NULL, 0, NULL, 0) != SCL_OK)
			break;
		for (size_t i = 0; i < c->n; i++)
			if ((targets == NULL || targets[i]) && !r[i].got)
				(void)send_frame(c, i, scl_buf_slice(&c->frame));
		for (;;) {
			uint64_t now = scl_clock_mono_ms();
			got = 0;
			for (size_t i = 0; i < c->n; i++)
				got += (targets == NULL || targets[i]) &&
				    r[i].got;
			if (got >= need || now >= deadline || cancelled(c))
				break;
			pump(c, (long)(deadline - now));
		}
		if (got >= need || cancelled(c)) {
			pump(c, 0); /* answers already here are free */
			break;
		}
	}
	return r;
}

static const char *
reply_text(const struct reply *r)
{
	static _Thread_local char text[600];

	if (r->m.type == SCL_MSG_ERROR)
		snprintf(text, sizeof(text), "%s: %.*s",
		    scl_wire_err_name(r->m.err_code), (int)r->m.blob.len,
		    (const char *)r->m.blob.ptr);
	else
		snprintf(text, sizeof(text), "unexpected %s reply",
		    scl_msg_type_name(r->m.type));
	return text;
}

enum scl_err
scl_client_create(struct scl_client *c, struct scl_slice meta,
    unsigned quorum)
{
	struct scl_msg req;
	struct reply *r;
	unsigned ok = 0;
	char why[700] = "no server answered";

	memset(&req, 0, sizeof(req));
	req.type = SCL_MSG_META_PUT;
	req.blob = meta;
	if ((r = rpc(c, &req, NULL, 0)) == NULL)
		return scl_err_set(SCL_ENOMEM, "create");
	for (size_t i = 0; i < c->n; i++) {
		if (!r[i].got)
			continue;
		if (r[i].m.type == (SCL_MSG_META_PUT | SCL_MSG_REPLY))
			ok++;
		else
			snprintf(why, sizeof(why), "server %s: %s",
			    c->conns[i].addr, reply_text(&r[i]));
	}
	rpc_release(c, r);
	if (ok < quorum)
		return scl_err_set(SCL_ETIMEOUT,
		    "metadata stored on %u servers, %u needed (%s)", ok, quorum,
		    why);
	return SCL_OK;
}

enum scl_err
scl_client_meta(struct scl_client *c, const uint8_t name[SCL_NAME_BYTES],
    struct scl_buf *out, struct scl_capsule_meta *meta)
{
	struct scl_msg req;
	struct reply *r;
	enum scl_err e = SCL_ENOTFOUND;

	memset(&req, 0, sizeof(req));
	req.type = SCL_MSG_META_GET;
	memcpy(req.name, name, SCL_NAME_BYTES);
	if ((r = rpc(c, &req, NULL, 1)) == NULL)
		return scl_err_set(SCL_ENOMEM, "meta");
	scl_err_set(SCL_ENOTFOUND, "no server has capsule metadata");
	for (size_t i = 0; i < c->n && e != SCL_OK; i++) {
		if (!r[i].got ||
		    r[i].m.type != (SCL_MSG_META_GET | SCL_MSG_REPLY))
			continue;
		if (scl_capsule_meta_check(meta, name, r[i].m.blob) != SCL_OK) {
			scl_log(&c->opt.log, SCL_LOG_WARN, "client",
			    "server %s sent metadata that is not the capsule's: "
			    "%s", c->conns[i].addr, scl_err_last());
			continue;
		}
		e = scl_buf_set(out, r[i].m.blob);
	}
	rpc_release(c, r);
	if (e == SCL_ENOTFOUND)
		return scl_err_set(e, "no server returned the metadata of "
				      "this capsule");
	return e;
}

/* A read answered by fewer than @quorum servers (0: at least one) says
 * nothing: an empty answer would pass for "no records". */
static enum scl_err
answered_enough(const struct scl_client *c, const bool *answered,
    unsigned quorum, const char *what)
{
	unsigned got = 0, need = quorum ? quorum : 1;
	const char *silent = "";

	for (size_t i = c->n; i-- > 0;) {
		got += answered[i];
		if (!answered[i])
			silent = c->conns[i].addr;
	}
	if (got >= need) {
		scl_err_clear();
		return SCL_OK;
	}
	return scl_err_set(SCL_ETIMEOUT, "%s: %u of %zu servers answered, %u "
	    "needed (%s did not)", what, got, c->n, need, silent);
}

/*
 * Asks for @name's heads (HEADS) until @quorum servers answered, and
 * hands every head that is this capsule's and verifies to @fn.  A server
 * that sends one that is not is marked in @lied and logged; which ones
 * answered goes into @answered.
 */
static enum scl_err
each_head(struct scl_client *c, const uint8_t name[SCL_NAME_BYTES],
    unsigned quorum, bool *answered, bool *lied, scl_client_head_fn fn,
    void *ctx)
{
	struct scl_msg req;
	struct reply *r;

	memset(&req, 0, sizeof(req));
	req.type = SCL_MSG_HEADS;
	memcpy(req.name, name, SCL_NAME_BYTES);
	if ((r = rpc(c, &req, NULL, quorum)) == NULL)
		return scl_err_set(SCL_ENOMEM, "heads");
	for (size_t i = 0; i < c->n; i++) {
		struct scl_msg_iter it;
		struct scl_slice item;
		answered[i] = r[i].got;
		if (!r[i].got || r[i].m.type != (SCL_MSG_HEADS | SCL_MSG_REPLY))
			continue; /* NOT_FOUND: nothing stored there */
		scl_msg_iter_init(&it, &r[i].m.list);
		while (scl_msg_iter_next(&it, &item)) {
			struct scl_heartbeat hb;
			if (scl_capsule_heartbeat_decode(&hb, item) != SCL_OK ||
			    memcmp(hb.capsule, name, SCL_NAME_BYTES) != 0 ||
			    scl_capsule_heartbeat_verify(&hb) != SCL_OK) {
				scl_err_clear();
				lied[i] = true;
				scl_log(&c->opt.log, SCL_LOG_WARN, "client",
				    "server %s sent a head that does not "
				    "verify", c->conns[i].addr);
				continue;
			}
			fn(ctx, i, &hb);
		}
	}
	rpc_release(c, r);
	return answered_enough(c, answered, quorum, "heads");
}

struct writer_head {
	const uint8_t *writer;
	struct scl_client_heads *out;
};

static void
keep_writer_head(void *ctx, size_t server, const struct scl_heartbeat *hb)
{
	struct writer_head *w = ctx;

	if (memcmp(hb->writer, w->writer, SCL_WRITER_BYTES) != 0)
		return;
	w->out->seqno[server] = hb->seqno;
	memcpy(w->out->hash[server], hb->hash, SCL_HASH_BYTES);
	if (hb->seqno > w->out->best) {
		w->out->best = hb->seqno;
		w->out->best_server = server;
		w->out->heartbeat = *hb;
	}
}

enum scl_err
scl_client_heads(struct scl_client *c, const uint8_t name[SCL_NAME_BYTES],
    const uint8_t writer[SCL_WRITER_BYTES], unsigned quorum,
    struct scl_client_heads *out)
{
	struct writer_head w = { writer, out };

	memset(out, 0, sizeof(*out));
	return each_head(c, name, quorum, out->answered, out->lied,
	    keep_writer_head, &w);
}

struct writer_list {
	uint8_t (*out)[SCL_WRITER_BYTES];
	size_t max, n;
};

static void
keep_writer(void *ctx, size_t server, const struct scl_heartbeat *hb)
{
	struct writer_list *l = ctx;

	(void)server;
	for (size_t k = 0; k < l->n; k++)
		if (memcmp(l->out[k], hb->writer, SCL_WRITER_BYTES) == 0)
			return;
	if (l->n < l->max)
		memcpy(l->out[l->n++], hb->writer, SCL_WRITER_BYTES);
}

enum scl_err
scl_client_each_head(struct scl_client *c, const uint8_t name[SCL_NAME_BYTES],
    unsigned quorum, scl_client_head_fn fn, void *ctx)
{
	bool answered[SCL_CLIENT_SERVERS_MAX] = { false };
	bool lied[SCL_CLIENT_SERVERS_MAX] = { false };

	return each_head(c, name, quorum, answered, lied, fn, ctx);
}

enum scl_err
scl_client_writers(struct scl_client *c, const uint8_t name[SCL_NAME_BYTES],
    unsigned quorum, uint8_t (*out)[SCL_WRITER_BYTES], size_t max, size_t *n)
{
	struct writer_list l = { out, max, 0 };
	enum scl_err e = scl_client_each_head(c, name, quorum, keep_writer,
	    &l);

	*n = l.n;
	return e;
}

enum scl_err
scl_client_evidence(struct scl_client *c, const uint8_t name[SCL_NAME_BYTES],
    scl_client_evidence_fn fn, void *ctx, size_t *answered)
{
	struct scl_capsule_proof_result *a = malloc(2 * sizeof(*a));
	struct scl_msg req;
	struct reply *r;

	*answered = 0;
	if (a == NULL)
		return scl_err_set(SCL_ENOMEM, "evidence");
	memset(&req, 0, sizeof(req));
	req.type = SCL_MSG_EVIDENCE;
	memcpy(req.name, name, SCL_NAME_BYTES);
	if ((r = rpc(c, &req, NULL, 0)) == NULL) {
		free(a);
		return scl_err_set(SCL_ENOMEM, "evidence");
	}
	for (size_t i = 0; i < c->n; i++) {
		struct scl_msg_iter it;
		struct scl_slice item;
		if (!r[i].got)
			continue;
		(*answered)++;
		if (r[i].m.type != (SCL_MSG_EVIDENCE | SCL_MSG_REPLY))
			continue;
		scl_msg_iter_init(&it, &r[i].m.list);
		while (scl_msg_iter_next(&it, &item)) {
			if (scl_capsule_evidence_check(&a[0], &a[1], name,
				item) == SCL_OK) {
				fn(ctx, i, &a[0], &a[1], item);
				continue;
			}
			scl_log(&c->opt.log, SCL_LOG_WARN, "client",
			    "server %s keeps evidence that convicts no one: %s",
			    c->conns[i].addr, scl_err_last());
			scl_err_clear();
		}
	}
	rpc_release(c, r);
	free(a);
	return SCL_OK;
}

/* One request to one server; the reply stays in *out (rpc_release). */
static struct reply *
ask_one(struct scl_client *c, size_t server, struct scl_msg *req,
    enum scl_err *e)
{
	bool targets[SCL_CLIENT_SERVERS_MAX] = { false };
	struct reply *r;

	targets[server] = true;
	if ((r = rpc(c, req, targets, 1)) == NULL) {
		*e = scl_err_set(SCL_ENOMEM, "request");
		return NULL;
	}
	if (!r[server].got) {
		rpc_release(c, r);
		*e = scl_err_set(SCL_ETIMEOUT, "server %s did not answer",
		    c->conns[server].addr);
		return NULL;
	}
	if (r[server].m.type == SCL_MSG_ERROR) {
		*e = scl_err_set(r[server].m.err_code == SCL_WIRE_NOT_FOUND
			? SCL_ENOTFOUND : SCL_EIO, "server %s: %s",
		    c->conns[server].addr, reply_text(&r[server]));
		rpc_release(c, r);
		return NULL;
	}
	if (r[server].m.type != (req->type | SCL_MSG_REPLY)) {
		*e = scl_err_set(SCL_EFORMAT, "server %s: %s",
		    c->conns[server].addr, reply_text(&r[server]));
		rpc_release(c, r);
		return NULL;
	}
	*e = SCL_OK;
	return r;
}

enum scl_err
scl_client_status(struct scl_client *c, size_t i, struct scl_buf *out)
{
	struct scl_msg req;
	struct reply *r;
	enum scl_err e;

	memset(&req, 0, sizeof(req));
	req.type = SCL_MSG_STATUS;
	if ((r = ask_one(c, i, &req, &e)) == NULL)
		return e;
	e = scl_buf_set(out, r[i].m.blob);
	rpc_release(c, r);
	return e;
}

/* --- reads ----------------------------------------------------------------- */

#define READ_WINDOW 256

void
scl_client_reader_init(struct scl_client_reader *r, struct scl_client *c,
    size_t server, const uint8_t name[SCL_NAME_BYTES])
{
	memset(r, 0, sizeof(*r));
	r->c = c;
	r->server = server;
	memcpy(r->name, name, SCL_NAME_BYTES);
	r->lo = 1;
	r->hi = 0;
	scl_buf_init(&r->cache);
	scl_buf_init(&r->hbs);
}

void
scl_client_reader_dispose(struct scl_client_reader *r)
{
	scl_buf_dispose(&r->cache);
	scl_buf_dispose(&r->hbs);
	free(r->ends);
	free(r->hb_seqnos);
	memset(r, 0, sizeof(*r));
}

/* @arr (capacity *@cap entries of @size) with room for @n, or NULL. */
static void *
reader_reserve(void *arr, size_t *cap, size_t n, size_t size)
{
	void *p;

	if (*cap >= n && arr != NULL)
		return arr;
	if ((p = realloc(arr, (n ? n : 1) * size)) == NULL)
		return NULL;
	*cap = n ? n : 1;
	return p;
}

/* Keeps the heartbeats of a READ reply, which are every heartbeat the
 * server stores within the records it returned, in ascending order. */
static void
reader_keep_heartbeats(struct scl_client_reader *r,
    const struct scl_msg_list *list)
{
	struct scl_msg_iter it;
	struct scl_slice item;
	uint64_t *seqnos;

	r->n_hbs = 0;
	scl_buf_clear(&r->hbs);
	if ((seqnos = reader_reserve(r->hb_seqnos, &r->hbs_cap, list->n,
		 sizeof(*seqnos))) == NULL)
		return; /* asked of the server instead */
	r->hb_seqnos = seqnos;
	scl_msg_iter_init(&it, list);
	while (scl_msg_iter_next(&it, &item)) {
		struct scl_heartbeat hb;
		if (item.len != SCL_HEARTBEAT_BYTES ||
		    scl_capsule_heartbeat_decode(&hb, item) != SCL_OK ||
		    (r->n_hbs && hb.seqno <= r->hb_seqnos[r->n_hbs - 1]) ||
		    scl_buf_append(&r->hbs, item.ptr, item.len) != SCL_OK)
			break; /* what follows is asked of the server */
		r->hb_seqnos[r->n_hbs++] = hb.seqno;
	}
	scl_err_clear();
}

/* Fetches a window of up to READ_WINDOW records holding @seqno: starting
 * at it when reading forward (past the cached window, or the first
 * read), ending at it when reading backward. */
static enum scl_err
reader_fill(struct scl_client_reader *r, const uint8_t *writer,
    uint64_t seqno)
{
	bool same = memcmp(r->writer, writer, SCL_WRITER_BYTES) == 0 &&
	    r->hi >= r->lo;
	bool backward = same && seqno < r->lo;
	struct scl_msg req;
	struct scl_msg_iter it;
	struct scl_slice item;
	struct reply *rep;
	size_t n = 0, *ends;
	enum scl_err e;

	memset(&req, 0, sizeof(req));
	req.type = SCL_MSG_READ;
	memcpy(req.name, r->name, SCL_NAME_BYTES);
	memcpy(req.writer, writer, SCL_WRITER_BYTES);
	if (backward) {
		req.from = seqno > READ_WINDOW ? seqno - READ_WINDOW + 1 : 1;
		req.to = seqno;
	} else {
		req.from = seqno;
		req.to = seqno > UINT64_MAX - READ_WINDOW ? UINT64_MAX :
		    seqno + READ_WINDOW - 1;
	}
	req.limit = (uint32_t)SCL_READ_BYTES_MAX;
	if ((rep = ask_one(r->c, r->server, &req, &e)) == NULL)
		return e;
	if ((ends = reader_reserve(r->ends, &r->ends_cap,
		 rep[r->server].m.list.n, sizeof(*ends))) == NULL) {
		rpc_release(r->c, rep);
		return scl_err_set(SCL_ENOMEM, "read cache");
	}
	r->ends = ends;
	scl_buf_clear(&r->cache);
	scl_msg_iter_init(&it, &rep[r->server].m.list);
	while (scl_msg_iter_next(&it, &item) &&
	    scl_buf_append(&r->cache, item.ptr, item.len) == SCL_OK)
		r->ends[n++] = r->cache.len;
	reader_keep_heartbeats(r, &rep[r->server].m.list2);
	rpc_release(r->c, rep);
	memcpy(r->writer, writer, SCL_WRITER_BYTES);
	r->lo = req.from;
	r->hi = req.from + n - 1;	/* a short answer caches less */
	return SCL_OK;
}

static enum scl_err
reader_record(void *ctx, const uint8_t *writer, uint64_t seqno,
    struct scl_buf *out)
{
	struct scl_client_reader *r = ctx;
	size_t i, start;
	enum scl_err e;

	if (memcmp(r->writer, writer, SCL_WRITER_BYTES) != 0 ||
	    seqno < r->lo || seqno > r->hi) {
		if ((e = reader_fill(r, writer, seqno)) != SCL_OK)
			return e;
		if (seqno < r->lo || seqno > r->hi)
			return scl_err_set(SCL_ENOTFOUND,
			    "server %s does not return record %llu",
			    scl_client_addr(r->c, r->server),
			    (unsigned long long)seqno);
	}
	i = (size_t)(seqno - r->lo);
	start = i ? r->ends[i - 1] : 0;
	return scl_buf_set(out, scl_slice_of(r->cache.ptr + start,
				    r->ends[i] - start));
}

/* The first stored heartbeat at or above @seqno, if the cached window
 * holds @seqno and that heartbeat: the reply that filled it carried
 * every heartbeat stored within it. */
static bool
reader_cached_heartbeat(struct scl_client_reader *r, const uint8_t *writer,
    uint64_t seqno, uint64_t *at, struct scl_buf *out)
{
	if (memcmp(r->writer, writer, SCL_WRITER_BYTES) != 0 ||
	    seqno < r->lo || seqno > r->hi)
		return false;
	for (size_t i = 0; i < r->n_hbs; i++)
		if (r->hb_seqnos[i] >= seqno) {
			*at = r->hb_seqnos[i];
			return scl_buf_set(out, scl_slice_of(r->hbs.ptr + i *
			    SCL_HEARTBEAT_BYTES, SCL_HEARTBEAT_BYTES)) ==
			    SCL_OK;
		}
	return false;
}

static enum scl_err
reader_heartbeat(void *ctx, const uint8_t *writer, uint64_t seqno,
    uint64_t *at, struct scl_buf *out)
{
	struct scl_client_reader *r = ctx;
	struct scl_heartbeat hb;
	struct scl_msg req;
	struct reply *rep;
	enum scl_err e;

	if (reader_cached_heartbeat(r, writer, seqno, at, out))
		return SCL_OK;
	memset(&req, 0, sizeof(req));
	req.type = SCL_MSG_HEARTBEAT;
	memcpy(req.name, r->name, SCL_NAME_BYTES);
	memcpy(req.writer, writer, SCL_WRITER_BYTES);
	req.seqno = seqno;
	if ((rep = ask_one(r->c, r->server, &req, &e)) == NULL)
		return e;
	e = scl_capsule_heartbeat_decode(&hb, rep[r->server].m.blob);
	if (e == SCL_OK) {
		/* Placement is the server's claim; the verifier checks it
		 * against the signed seqno inside. */
		*at = hb.seqno;
		e = scl_buf_set(out, rep[r->server].m.blob);
	}
	rpc_release(r->c, rep);
	return e;
}

struct scl_capsule_source
scl_client_reader_source(struct scl_client_reader *r)
{
	struct scl_capsule_source s = { r, reader_record, reader_heartbeat };
	return s;
}

struct read_relay {
	scl_capsule_record_fn fn;
	void *ctx;
	uint64_t next;		/* next seqno the caller expects */
};

static enum scl_err
relay(void *ctx, const struct scl_record *rec, struct scl_slice payload)
{
	struct read_relay *rl = ctx;

	if (rec->seqno < rl->next)
		return SCL_OK; /* delivered by an earlier server */
	rl->next = rec->seqno + 1;
	return rl->fn(rl->ctx, rec, payload);
}

enum scl_err
scl_client_read(struct scl_client *c, const uint8_t name[SCL_NAME_BYTES],
    const uint8_t owner[32], const uint8_t writer[SCL_WRITER_BYTES],
    uint64_t from, uint64_t to, struct scl_capsule_opener *opener,
    scl_capsule_record_fn fn, void *ctx)
{
	struct read_relay rl = { fn, ctx, from };
	char last[600] = "no server";
	enum scl_err e = SCL_EVERIFY;

	for (size_t i = 0; i < c->n && rl.next <= to; i++) {
		struct scl_client_reader r;
		struct scl_capsule_source src;
		scl_client_reader_init(&r, c, i, name);
		src = scl_client_reader_source(&r);
		e = scl_capsule_read_range(&src, name, owner, writer, rl.next,
		    to, opener, relay, &rl);
		scl_client_reader_dispose(&r);
		if (e == SCL_OK)
			return SCL_OK;
		if (e == SCL_EIO && rl.next <= to &&
		    strstr(scl_err_last(), "writing output") != NULL)
			return e; /* the caller's own failure */
		snprintf(last, sizeof(last), "server %s: %s", c->conns[i].addr,
		    scl_err_last());
		scl_log(&c->opt.log, SCL_LOG_WARN, "client",
		    "%s; trying the next server", last);
	}
	if (rl.next > to)
		return SCL_OK;
	return scl_err_set(e == SCL_OK ? SCL_EVERIFY : e,
	    "no server could serve records %llu..%llu (last: %s)",
	    (unsigned long long)rl.next, (unsigned long long)to, last);
}

enum scl_err
scl_client_proof(struct scl_client *c, const uint8_t name[SCL_NAME_BYTES],
    const uint8_t writer[SCL_WRITER_BYTES], uint64_t seqno,
    struct scl_buf *out)
{
	struct scl_capsule_proof_result *res = malloc(sizeof(*res));
	char last[600] = "no server answered";
	enum scl_err e = SCL_ENOTFOUND;

	if (res == NULL)
		return scl_err_set(SCL_ENOMEM, "proof");
	for (size_t i = 0; i < c->n; i++) {
		struct scl_msg req;
		struct reply *r;
		memset(&req, 0, sizeof(req));
		req.type = SCL_MSG_PROOF;
		memcpy(req.name, name, SCL_NAME_BYTES);
		memcpy(req.writer, writer, SCL_WRITER_BYTES);
		req.seqno = seqno;
		if ((r = ask_one(c, i, &req, &e)) == NULL) {
			snprintf(last, sizeof(last), "%s", scl_err_last());
			continue;
		}
		e = scl_capsule_proof_check(res, name, r[i].m.blob);
		if (e == SCL_OK && (res->seqno != seqno ||
				       memcmp(res->writer, writer, 32) != 0))
			e = scl_err_set(SCL_EVERIFY, "proves another record");
		if (e == SCL_OK)
			e = scl_buf_set(out, r[i].m.blob);
		else {
			snprintf(last, sizeof(last), "server %s: %s",
			    c->conns[i].addr, scl_err_last());
			scl_log(&c->opt.log, SCL_LOG_WARN, "client",
			    "%s; trying the next server", last);
		}
		rpc_release(c, r);
		if (e == SCL_OK)
			break;
	}
	free(res);
	if (e != SCL_OK)
		return scl_err_set(e, "no valid proof (%s)", last);
	return SCL_OK;
}
