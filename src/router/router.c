/*
 * router.c - the untrusted multicast router (router.h).
 *
 * One thread: a ROUTER socket for clients, optionally a DEALER to the
 * upstream router, an eventfd to stop.  For each PUB it finds the
 * subscribers of the name (a linear scan: a router serves tens of
 * subscribers, not thousands) and queues a copy for each but the sender.
 * Queues drain with non-blocking sends (ZMQ_ROUTER_MANDATORY reports a
 * full peer as EAGAIN instead of dropping silently); a queue over its
 * bound loses its oldest message.  While any queue is backed up the loop
 * wakes every millisecond to retry; otherwise it sleeps in zmq_poll.
 *
 * Chaos, when enabled, applies to every copy leaving the router: lost,
 * sent twice, or held back for a random few milliseconds so that later
 * messages overtake it.  The generator is seeded: runs are repeatable.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "scl/clock.h"
#include "scl/codec.h"
#include "scl/router.h"
#include "scl/zsock.h"

#define ROUTE_MAX 256
#define CLIENTS_MAX 1024
/* A subscriber's queue holds at least one message of the largest size. */
#define QUEUE_BYTES_MIN (SCL_ROUTER_PAYLOAD_MAX + 4096)
/* Messages ZeroMQ itself may hold per subscriber beyond the router's
 * queue: few, because batches are up to 256 KiB and a count is no byte
 * bound; the router's own queue (drop-oldest, counted) holds the rest. */
#define SOCKET_HWM 256
#define SUBS_MAX 8192
#define UPSTREAM ((size_t)-1)	/* pseudo client: the parent router */

struct qmsg {
	struct qmsg *next;
	uint64_t due_ms;	/* chaos: held back until then */
	size_t len;
	uint8_t data[];
};

struct client {
	uint8_t route[ROUTE_MAX];
	size_t route_len;
	struct qmsg *head, *tail;	/* ready to send */
	size_t queued, queued_bytes;
	uint64_t last_seen_ms;
};

struct sub {
	uint8_t name[SCL_NAME_BYTES];
	size_t client;		/* index into clients */
	uint64_t expires_ms;
};

struct scl_router {
	struct scl_router_options opt;
	char listen[256], upstream_addr[256], endpoint[256];
	void *zctx, *sock, *up;
	int wake_fd;
	atomic_bool stopping;
	struct client *clients;
	size_t n_clients;
	struct sub *subs;
	size_t n_subs;
	struct qmsg *held;		/* chaos: reordered, by due time */
	uint64_t rng;
	uint64_t next_renew_ms, next_expire_ms;
	struct scl_buf frame;
	pthread_mutex_t stats_lock;
	struct scl_router_stats st;
};

/* --- messages ---------------------------------------------------------------- */

enum scl_err
scl_router_msg_encode(struct scl_buf *out, const struct scl_router_msg *m)
{
	struct scl_enc e;

	scl_buf_clear(out);
	scl_enc_init(&e, out);
	scl_enc_u8(&e, (uint8_t)m->type);
	scl_enc_u8(&e, SCL_ROUTER_VERSION);
	switch (m->type) {
	case SCL_ROUTER_SUB:
	case SCL_ROUTER_UNSUB:
		scl_enc_bytes(&e, m->name, SCL_NAME_BYTES);
		break;
	case SCL_ROUTER_PUB:
		if (m->payload.len > SCL_ROUTER_PAYLOAD_MAX)
			return scl_err_set(SCL_ELIMIT, "a payload of %zu bytes "
			    "(at most %zu)", m->payload.len,
			    SCL_ROUTER_PAYLOAD_MAX);
		scl_enc_bytes(&e, m->name, SCL_NAME_BYTES);
		scl_enc_blob32(&e, m->payload.ptr, m->payload.len);
		break;
	case SCL_ROUTER_STATUS:
		scl_enc_blob32(&e, m->payload.ptr, m->payload.len);
		break;
	default:
		return scl_err_set(SCL_EINVAL, "router message type 0x%02x",
		    m->type);
	}
	return e.err;
}

enum scl_err
scl_router_msg_decode(struct scl_router_msg *out, struct scl_slice in)
{
	struct scl_dec d;
	uint8_t type, version;

	memset(out, 0, sizeof(*out));
	scl_dec_init(&d, in, "router message");
	type = scl_dec_u8(&d, "type");
	version = scl_dec_u8(&d, "version");
	if (!scl_dec_ok(&d))
		return d.err;
	if (version != SCL_ROUTER_VERSION)
		return scl_dec_fail(&d, SCL_EVERSION, "router protocol version "
		    "%u (this build speaks %d)", version, SCL_ROUTER_VERSION);
	switch (type) {
	case SCL_ROUTER_SUB:
	case SCL_ROUTER_UNSUB:
		scl_dec_copy(&d, out->name, SCL_NAME_BYTES, "name");
		break;
	case SCL_ROUTER_PUB:
		scl_dec_copy(&d, out->name, SCL_NAME_BYTES, "name");
		out->payload = scl_dec_blob32(&d, SCL_ROUTER_PAYLOAD_MAX,
		    "payload");
		break;
	case SCL_ROUTER_STATUS:
		out->payload = scl_dec_blob32(&d, 65536, "status");
		break;
	default:
		return scl_dec_fail(&d, SCL_EFORMAT, "unknown type 0x%02x",
		    type);
	}
	out->type = type;
	return scl_dec_finish(&d);
}

enum scl_err
scl_router_chaos_parse(struct scl_router_chaos *out, const char *spec)
{
	const char *p = spec;

	memset(out, 0, sizeof(*out));
	while (*p) {
		char key[16], *end;
		size_t klen = strcspn(p, "=");
		double v;
		if (klen == 0 || klen >= sizeof(key) || p[klen] != '=')
			return scl_err_set(SCL_EINVAL, "chaos '%s': expected "
			    "key=value pairs separated by commas", spec);
		memcpy(key, p, klen);
		key[klen] = '\0';
		p += klen + 1;
		errno = 0;
		v = strtod(p, &end);
		if (end == p || errno || (*end && *end != ',') || v < 0 ||
		    !isfinite(v))
			return scl_err_set(SCL_EINVAL, "chaos '%s': bad value "
			    "for %s", spec, key);
		if (strcmp(key, "seed") == 0)
			out->seed = (uint64_t)v;
		else if (strcmp(key, "reorder_ms") == 0)
			out->reorder_max_ms = (unsigned)v;
		else if (v > 1)
			return scl_err_set(SCL_EINVAL, "chaos '%s': %s is a "
			    "probability (0..1)", spec, key);
		else if (strcmp(key, "loss") == 0)
			out->loss = v;
		else if (strcmp(key, "dup") == 0)
			out->dup = v;
		else if (strcmp(key, "reorder") == 0)
			out->reorder = v;
		else
			return scl_err_set(SCL_EINVAL, "chaos '%s': unknown "
			    "key '%s' (loss, dup, reorder, reorder_ms, seed)",
			    spec, key);
		p = *end ? end + 1 : end;
	}
	return SCL_OK;
}

/* --- chaos -------------------------------------------------------------------- */

static double
uniform(struct scl_router *r)
{
	/* splitmix64: small, seedable, good enough for fault injection */
	uint64_t z = (r->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return (double)(z >> 11) / 9007199254740992.0;
}

static bool
chaos_on(const struct scl_router *r)
{
	return r->opt.chaos.loss > 0 || r->opt.chaos.dup > 0 ||
	    r->opt.chaos.reorder > 0;
}

/* --- clients and queues ------------------------------------------------------- */

static size_t
find_client(struct scl_router *r, const uint8_t *route, size_t len,
    bool create)
{
	size_t slot = SIZE_MAX;

	for (size_t i = 0; i < r->n_clients; i++) {
		if (r->clients[i].route_len == len &&
		    memcmp(r->clients[i].route, route, len) == 0)
			return i;
		if (r->clients[i].route_len == 0 && slot == SIZE_MAX)
			slot = i; /* freed by expire() */
	}
	if (!create || len == 0 || len > ROUTE_MAX)
		return SIZE_MAX;
	if (slot == SIZE_MAX) {
		if (r->n_clients == CLIENTS_MAX)
			return SIZE_MAX;
		slot = r->n_clients++;
	}
	memset(&r->clients[slot], 0, sizeof(struct client));
	memcpy(r->clients[slot].route, route, len);
	r->clients[slot].route_len = len;
	return slot;
}

static struct qmsg *
qmsg_new(struct scl_slice frame, uint64_t due)
{
	struct qmsg *q = malloc(sizeof(*q) + frame.len);

	if (q == NULL)
		return NULL;
	q->next = NULL;
	q->due_ms = due;
	q->len = frame.len;
	memcpy(q->data, frame.ptr, frame.len);
	return q;
}

static void
count(struct scl_router *r, uint64_t *field, uint64_t n)
{
	pthread_mutex_lock(&r->stats_lock);
	*field += n;
	pthread_mutex_unlock(&r->stats_lock);
}

/* Queued bytes: per client for the bound, in all for the stats. */
static void
queued_bytes_add(struct scl_router *r, struct client *c, size_t len,
    bool add)
{
	if (add)
		c->queued_bytes += len;
	else
		c->queued_bytes -= len;
	pthread_mutex_lock(&r->stats_lock);
	if (add)
		r->st.queued_bytes += len;
	else
		r->st.queued_bytes -= len;
	pthread_mutex_unlock(&r->stats_lock);
}

static void
enqueue(struct scl_router *r, struct client *c, struct qmsg *q)
{
	if (c->tail)
		c->tail->next = q;
	else
		c->head = q;
	c->tail = q;
	c->queued++;
	queued_bytes_add(r, c, q->len, true);
	/* Over either bound the oldest go; the newest always stays (the
	 * smallest byte bound, QUEUE_BYTES_MIN, fits the largest message). */
	while (c->head != q && (c->queued > r->opt.queue_max ||
				   c->queued_bytes > r->opt.queue_max_bytes)) {
		struct qmsg *old = c->head;
		c->head = old->next;
		c->queued--;
		queued_bytes_add(r, c, old->len, false);
		free(old);
		count(r, &r->st.queue_dropped, 1);
	}
}

/* Held messages carry their destination in the first bytes. */
struct held_hdr {
	size_t client;
};

/* One copy of @frame for client @ci (or UPSTREAM), through the chaos. */
static void
send_copy(struct scl_router *r, size_t ci, struct scl_slice frame)
{
	int copies = 1;
	uint64_t due = 0;

	if (chaos_on(r)) {
		if (uniform(r) < r->opt.chaos.loss) {
			count(r, &r->st.chaos_lost, 1);
			return;
		}
		if (uniform(r) < r->opt.chaos.dup) {
			copies = 2;
			count(r, &r->st.chaos_duplicated, 1);
		}
		if (uniform(r) < r->opt.chaos.reorder) {
			unsigned max = r->opt.chaos.reorder_max_ms
			    ? r->opt.chaos.reorder_max_ms : 20;
			due = scl_clock_mono_ms() + 1 + (uint64_t)(uniform(r) * max);
			count(r, &r->st.chaos_reordered, 1);
		}
	}
	for (; copies > 0; copies--) {
		struct qmsg *q;
		if (due) {
			/* Held: prefix the destination, insert by due time. */
			struct qmsg **at = &r->held;
			q = malloc(sizeof(*q) + sizeof(struct held_hdr) +
			    frame.len);
			if (q == NULL)
				return;
			q->next = NULL;
			q->due_ms = due;
			q->len = frame.len;
			((struct held_hdr *)q->data)->client = ci;
			memcpy(q->data + sizeof(struct held_hdr), frame.ptr,
			    frame.len);
			while (*at && (*at)->due_ms <= due)
				at = &(*at)->next;
			q->next = *at;
			*at = q;
			continue;
		}
		if (ci == UPSTREAM) {
			if (zmq_send(r->up, frame.ptr, frame.len, ZMQ_DONTWAIT) >=
			    0)
				count(r, &r->st.forwarded_up, 1);
			else
				count(r, &r->st.queue_dropped, 1);
			continue;
		}
		if ((q = qmsg_new(frame, 0)) == NULL)
			return;
		enqueue(r, &r->clients[ci], q);
	}
}

/* Moves due held messages to their queues. */
static void
release_held(struct scl_router *r, uint64_t now)
{
	while (r->held && r->held->due_ms <= now) {
		struct qmsg *h = r->held;
		size_t ci = ((struct held_hdr *)h->data)->client;
		struct scl_slice f = scl_slice_of(h->data +
		    sizeof(struct held_hdr), h->len);
		r->held = h->next;
		if (ci == UPSTREAM) {
			if (zmq_send(r->up, f.ptr, f.len, ZMQ_DONTWAIT) >= 0)
				count(r, &r->st.forwarded_up, 1);
		} else if (ci < r->n_clients && r->clients[ci].route_len) {
			struct qmsg *q = qmsg_new(f, 0);
			if (q)
				enqueue(r, &r->clients[ci], q);
		}
		free(h);
	}
}

/* Sends what the queues hold until a peer is full.  True if any queue
 * is still backed up. */
static bool
drain_queues(struct scl_router *r)
{
	bool backed_up = false;

	for (size_t i = 0; i < r->n_clients; i++) {
		struct client *c = &r->clients[i];
		while (c->head) {
			struct qmsg *q = c->head;
			if (zmq_send(r->sock, c->route, c->route_len,
				ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
				if (zmq_errno() == EAGAIN) {
					backed_up = true;
					break;
				}
				/* EHOSTUNREACH: gone; its queue goes too */
				c->queued = 0;
				while ((q = c->head) != NULL) {
					c->head = q->next;
					queued_bytes_add(r, c, q->len, false);
					free(q);
				}
				c->tail = NULL;
				break;
			}
			/* With the route frame accepted the body cannot be
			 * refused (messages are atomic in ZeroMQ). */
			(void)zmq_send(r->sock, q->data, q->len, 0);
			c->head = q->next;
			if (c->head == NULL)
				c->tail = NULL;
			c->queued--;
			queued_bytes_add(r, c, q->len, false);
			free(q);
			count(r, &r->st.delivered, 1);
		}
	}
	return backed_up;
}

/* --- subscriptions ------------------------------------------------------------ */

static void
subscribe(struct scl_router *r, const uint8_t *name, size_t ci, uint64_t now)
{
	bool first = true;

	for (size_t i = 0; i < r->n_subs; i++) {
		if (memcmp(r->subs[i].name, name, SCL_NAME_BYTES) != 0)
			continue;
		first = false;
		if (r->subs[i].client == ci) {
			r->subs[i].expires_ms = now + SCL_ROUTER_LEASE_MS;
			return;
		}
	}
	if (r->n_subs == SUBS_MAX)
		return;
	memcpy(r->subs[r->n_subs].name, name, SCL_NAME_BYTES);
	r->subs[r->n_subs].client = ci;
	r->subs[r->n_subs].expires_ms = now + SCL_ROUTER_LEASE_MS;
	r->n_subs++;
	if (first && r->up) {
		/* A new name: subscribe upstream at once. */
		struct scl_router_msg m = { SCL_ROUTER_SUB, { 0 }, { 0 } };
		memcpy(m.name, name, SCL_NAME_BYTES);
		if (scl_router_msg_encode(&r->frame, &m) == SCL_OK)
			(void)zmq_send(r->up, r->frame.ptr, r->frame.len,
			    ZMQ_DONTWAIT);
	}
}

static void
unsubscribe(struct scl_router *r, const uint8_t *name, size_t ci)
{
	for (size_t i = 0; i < r->n_subs; i++)
		if (r->subs[i].client == ci &&
		    memcmp(r->subs[i].name, name, SCL_NAME_BYTES) == 0) {
			r->subs[i] = r->subs[--r->n_subs];
			return;
		}
}

/* Drops expired leases, and forgets clients that hold neither leases
 * nor messages and were not heard from for a lease: clients that come
 * and go never fill the table. */
static void
expire(struct scl_router *r, uint64_t now)
{
	for (size_t i = 0; i < r->n_subs;)
		if (r->subs[i].expires_ms <= now)
			r->subs[i] = r->subs[--r->n_subs];
		else
			i++;
	for (size_t c = 0; c < r->n_clients; c++) {
		bool subscribed = false;
		if (r->clients[c].route_len == 0 || r->clients[c].head ||
		    r->clients[c].last_seen_ms + SCL_ROUTER_LEASE_MS > now)
			continue;
		for (size_t i = 0; i < r->n_subs && !subscribed; i++)
			subscribed = r->subs[i].client == c;
		if (!subscribed)
			r->clients[c].route_len = 0;
	}
	while (r->n_clients && r->clients[r->n_clients - 1].route_len == 0)
		r->n_clients--;
}

/* Renews upstream every name some local subscriber wants. */
static void
renew_upstream(struct scl_router *r)
{
	for (size_t i = 0; i < r->n_subs; i++) {
		struct scl_router_msg m = { SCL_ROUTER_SUB, { 0 }, { 0 } };
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++)
			seen = memcmp(r->subs[j].name, r->subs[i].name,
			    SCL_NAME_BYTES) == 0;
		if (seen)
			continue;
		memcpy(m.name, r->subs[i].name, SCL_NAME_BYTES);
		if (scl_router_msg_encode(&r->frame, &m) == SCL_OK)
			(void)zmq_send(r->up, r->frame.ptr, r->frame.len,
			    ZMQ_DONTWAIT);
	}
}

/* A PUB (from client @from, or from upstream) to every subscriber but
 * the sender, and up the tree if it came from below. */
static void
publish(struct scl_router *r, const uint8_t *name, struct scl_slice frame,
    size_t from)
{
	for (size_t i = 0; i < r->n_subs; i++)
		if (r->subs[i].client != from &&
		    memcmp(r->subs[i].name, name, SCL_NAME_BYTES) == 0)
			send_copy(r, r->subs[i].client, frame);
	if (r->up && from != UPSTREAM)
		send_copy(r, UPSTREAM, frame);
}

static void
status_reply(struct scl_router *r, size_t ci)
{
	struct scl_router_stats s;
	struct scl_router_msg m = { SCL_ROUTER_STATUS, { 0 }, { 0 } };
	char json[1024];
	struct qmsg *q;
	int n;

	scl_router_stats(r, &s);
	n = snprintf(json, sizeof(json),
	    "{\"received\":%llu,\"delivered\":%llu,\"forwarded_up\":%llu,"
	    "\"from_upstream\":%llu,\"chaos_lost\":%llu,"
	    "\"chaos_duplicated\":%llu,\"chaos_reordered\":%llu,"
	    "\"queue_dropped\":%llu,\"malformed\":%llu,\"subscribers\":%zu,"
	    "\"subscriptions\":%zu,\"queued_bytes\":%zu}",
	    (unsigned long long)s.received, (unsigned long long)s.delivered,
	    (unsigned long long)s.forwarded_up,
	    (unsigned long long)s.from_upstream,
	    (unsigned long long)s.chaos_lost,
	    (unsigned long long)s.chaos_duplicated,
	    (unsigned long long)s.chaos_reordered,
	    (unsigned long long)s.queue_dropped,
	    (unsigned long long)s.malformed, s.subscribers, s.subscriptions,
	    s.queued_bytes);
	m.payload = scl_slice_of(json, (size_t)n);
	if (scl_router_msg_encode(&r->frame, &m) == SCL_OK &&
	    (q = qmsg_new(scl_buf_slice(&r->frame), 0)) != NULL)
		enqueue(r, &r->clients[ci], q);
}

static void
handle(struct scl_router *r, size_t from, struct scl_slice frame,
    uint64_t now)
{
	struct scl_router_msg m;

	if (scl_router_msg_decode(&m, frame) != SCL_OK) {
		count(r, &r->st.malformed, 1);
		scl_log(&r->opt.log, SCL_LOG_DEBUG, "router", "dropped: %s",
		    scl_err_last());
		return;
	}
	count(r, from == UPSTREAM ? &r->st.from_upstream : &r->st.received,
	    1);
	switch (m.type) {
	case SCL_ROUTER_SUB:
		if (from != UPSTREAM)
			subscribe(r, m.name, from, now);
		break;
	case SCL_ROUTER_UNSUB:
		if (from != UPSTREAM)
			unsubscribe(r, m.name, from);
		break;
	case SCL_ROUTER_PUB:
		publish(r, m.name, frame, from);
		break;
	case SCL_ROUTER_STATUS:
		if (from != UPSTREAM)
			status_reply(r, from);
		break;
	}
}

/* --- life cycle ---------------------------------------------------------------- */

enum scl_err
scl_router_new(struct scl_router **out, const struct scl_router_options *opt)
{
	struct scl_zsock_options zo = SCL_ZSOCK_OPTIONS_INIT;
	struct scl_router *r;
	int hwm = SOCKET_HWM, rcvhwm = 1024;
	int64_t maxmsg = (int64_t)SCL_ROUTER_PAYLOAD_MAX + 64;
	enum scl_err e;
	size_t n;

	*out = NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return scl_err_set(SCL_ENOMEM, "cannot allocate the router");
	r->opt = *opt;
	r->wake_fd = -1;
	if (!r->opt.queue_max)
		r->opt.queue_max = SCL_ROUTER_QUEUE_DEFAULT;
	if (r->opt.queue_max_bytes < QUEUE_BYTES_MIN)
		r->opt.queue_max_bytes = r->opt.queue_max_bytes
		    ? QUEUE_BYTES_MIN : SCL_ROUTER_QUEUE_BYTES_DEFAULT;
	snprintf(r->listen, sizeof(r->listen), "%s", opt->listen);
	r->opt.listen = r->listen;
	if (opt->upstream) {
		snprintf(r->upstream_addr, sizeof(r->upstream_addr), "%s",
		    opt->upstream);
		r->opt.upstream = r->upstream_addr;
	}
	r->rng = opt->chaos.seed ? opt->chaos.seed : 1;
	pthread_mutex_init(&r->stats_lock, NULL);
	scl_buf_init(&r->frame);
	r->clients = calloc(CLIENTS_MAX, sizeof(*r->clients));
	r->subs = calloc(SUBS_MAX, sizeof(*r->subs));
	if (r->clients == NULL || r->subs == NULL) {
		scl_router_free(r);
		return scl_err_set(SCL_ENOMEM, "cannot allocate the router");
	}
	if ((r->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		scl_router_free(r);
		return scl_err_set(SCL_EIO, "eventfd: %s", strerror(errno));
	}
	zo.max_msg_bytes = maxmsg;
	zo.router_mandatory = true;
	zo.send_hwm = hwm;
	zo.recv_hwm = rcvhwm;
	zo.bind = r->listen;
	if ((e = scl_zsock_open_own(&r->zctx, &r->sock, ZMQ_ROUTER, &zo)) !=
	    SCL_OK) {
		scl_router_free(r);
		return e;
	}
	n = sizeof(r->endpoint);
	zmq_getsockopt(r->sock, ZMQ_LAST_ENDPOINT, r->endpoint, &n);
	if (r->opt.upstream) {
		struct scl_zsock_options up = SCL_ZSOCK_OPTIONS_INIT;
		up.max_msg_bytes = maxmsg;
		up.send_hwm = hwm;
		up.connect = r->opt.upstream;
		if ((e = scl_zsock_open(&r->up, r->zctx, ZMQ_DEALER, &up)) !=
		    SCL_OK) {
			scl_router_free(r);
			return scl_err_wrap(e, "upstream: ");
		}
	}
	*out = r;
	return SCL_OK;
}

void
scl_router_stop(struct scl_router *r)
{
	uint64_t one = 1;

	atomic_store(&r->stopping, true);
	if (write(r->wake_fd, &one, sizeof(one)) < 0)
		return; /* the flag alone stops the loop within 100 ms */
}

const char *
scl_router_endpoint(const struct scl_router *r)
{
	return r->endpoint;
}

void
scl_router_stats(struct scl_router *r, struct scl_router_stats *out)
{
	pthread_mutex_lock(&r->stats_lock);
	*out = r->st;
	pthread_mutex_unlock(&r->stats_lock);
}

/* Reads every frame waiting on @sock: from clients (ROUTER: route, body)
 * or from upstream (DEALER: body). */
static void
read_socket(struct scl_router *r, void *sock, bool upstream, uint64_t now)
{
	for (;;) {
		zmq_msg_t route, body;
		size_t ci = UPSTREAM;
		int more = 0;
		size_t more_len = sizeof(more);

		zmq_msg_init(&route);
		if (zmq_msg_recv(&route, sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&route);
			return;
		}
		if (!upstream) {
			zmq_msg_init(&body);
			if (zmq_getsockopt(sock, ZMQ_RCVMORE, &more,
				&more_len) != 0 || !more ||
			    zmq_msg_recv(&body, sock, 0) < 0) {
				zmq_msg_close(&body);
				zmq_msg_close(&route);
				count(r, &r->st.malformed, 1);
				continue;
			}
			ci = find_client(r, zmq_msg_data(&route),
			    zmq_msg_size(&route), true);
			if (ci != SIZE_MAX) {
				r->clients[ci].last_seen_ms = now;
				handle(r, ci, scl_slice_of(zmq_msg_data(&body),
				    zmq_msg_size(&body)), now);
			}
			/* skip any further frames: one body per message */
			while (zmq_getsockopt(sock, ZMQ_RCVMORE, &more,
				   &more_len) == 0 && more) {
				zmq_msg_t junk;
				zmq_msg_init(&junk);
				zmq_msg_recv(&junk, sock, 0);
				zmq_msg_close(&junk);
			}
			zmq_msg_close(&body);
		} else {
			handle(r, UPSTREAM, scl_slice_of(zmq_msg_data(&route),
			    zmq_msg_size(&route)), now);
		}
		zmq_msg_close(&route);
	}
}

enum scl_err
scl_router_run(struct scl_router *r)
{
	scl_log(&r->opt.log, SCL_LOG_INFO, "router", "serving on %s%s%s%s",
	    r->endpoint, r->up ? ", upstream " : "",
	    r->up ? r->opt.upstream : "",
	    chaos_on(r) ? " (CHAOS: faults injected)" : "");
	while (!atomic_load(&r->stopping)) {
		zmq_pollitem_t items[3] = {
			{ r->sock, 0, ZMQ_POLLIN, 0 },
			{ NULL, r->wake_fd, ZMQ_POLLIN, 0 },
			{ r->up, 0, ZMQ_POLLIN, 0 },
		};
		uint64_t now = scl_clock_mono_ms();
		long timeout = 100;
		bool backed_up;

		release_held(r, now);
		backed_up = drain_queues(r);
		if (backed_up)
			timeout = 1;
		else if (r->held)
			timeout = (long)(r->held->due_ms > now
				? r->held->due_ms - now : 0);
		if (zmq_poll(items, r->up ? 3 : 2, timeout) < 0 &&
		    zmq_errno() != EINTR)
			return scl_err_set(SCL_EIO, "zmq_poll: %s",
			    zmq_strerror(zmq_errno()));
		now = scl_clock_mono_ms();
		if (items[0].revents & ZMQ_POLLIN)
			read_socket(r, r->sock, false, now);
		if (r->up && (items[2].revents & ZMQ_POLLIN))
			read_socket(r, r->up, true, now);
		if (now >= r->next_expire_ms) {
			expire(r, now);
			r->next_expire_ms = now + 1000;
		}
		if (r->up && now >= r->next_renew_ms) {
			renew_upstream(r);
			r->next_renew_ms = now + SCL_ROUTER_RENEW_MS;
		}
		pthread_mutex_lock(&r->stats_lock);
		r->st.subscriptions = r->n_subs;
		r->st.subscribers = r->n_clients;
		pthread_mutex_unlock(&r->stats_lock);
	}
	return SCL_OK;
}

void
scl_router_free(struct scl_router *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; r->clients && i < r->n_clients; i++) {
		struct qmsg *q, *next;
		for (q = r->clients[i].head; q; q = next) {
			next = q->next;
			free(q);
		}
	}
	while (r->held) {
		struct qmsg *q = r->held;
		r->held = q->next;
		free(q);
	}
	free(r->clients);
	free(r->subs);
	if (r->up)
		zmq_close(r->up);
	if (r->sock)
		zmq_close(r->sock);
	if (r->zctx)
		zmq_ctx_term(r->zctx);
	if (r->wake_fd >= 0)
		close(r->wake_fd);
	scl_buf_dispose(&r->frame);
	pthread_mutex_destroy(&r->stats_lock);
	free(r);
}
