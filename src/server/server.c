/*
 * server.c - the capsule server's life cycle and event loop: the ROUTER
 * socket, request dispatch, metadata, subscriptions, status, and the
 * hand-off of committed appends from the committer thread.
 *
 * Invariant: every request gets exactly one reply (or, for an append, one
 * reply once its commit is done), unless the requester's queue is full, in
 * which case the reply is dropped and the client's timeout takes over.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "scl/clock.h"
#include "scl/codec.h"
#include "scl/zsock.h"
#include "server_int.h"

#define RECV_BURST 256

uint64_t
scl_server__now_ms(void)
{
	return scl_clock_mono_ms();
}

void
scl_server__send(struct scl_server *s, const uint8_t *route, size_t route_len,
    struct scl_slice frame)
{
	if (zmq_send(s->router, route, route_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) <
		0 ||
	    zmq_send(s->router, frame.ptr, frame.len, ZMQ_DONTWAIT) < 0)
		scl_log(&s->log, SCL_LOG_DEBUG, "server",
		    "reply dropped: %s", zmq_strerror(zmq_errno()));
}

void
scl_server__reply_error(struct scl_server *s, const uint8_t *route,
    size_t route_len, uint64_t id, enum scl_wire_err code, uint64_t detail,
    const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	scl_buf_clear(&s->out);
	if (scl_msg_encode_error(&s->out, id, code, detail, text) == SCL_OK)
		scl_server__send(s, route, route_len, scl_buf_slice(&s->out));
	if (code != SCL_WIRE_GAP && code != SCL_WIRE_NOT_FOUND)
		scl_log(&s->log, SCL_LOG_INFO, "server", "%s: %s",
		    scl_wire_err_name(code), text);
}

static void
reply_ok(struct scl_server *s, const uint8_t *route, size_t route_len,
    struct scl_msg *m, const struct scl_slice *items, size_t n_items)
{
	scl_buf_clear(&s->out);
	m->type |= SCL_MSG_REPLY;
	if (scl_msg_encode(&s->out, m, items, n_items, NULL, 0) != SCL_OK) {
		scl_server__reply_error(s, route, route_len, m->id,
		    SCL_WIRE_INTERNAL, 0, "cannot encode reply: %s",
		    scl_err_last());
		return;
	}
	scl_server__send(s, route, route_len, scl_buf_slice(&s->out));
}

const struct scl_capsule_meta *
scl_server__meta(struct scl_server *s, const uint8_t name[SCL_NAME_BYTES])
{
	size_t slot = name[0] | (size_t)name[1] << 8;
	struct meta_entry *e = &s->metas[slot % META_CACHE];
	struct scl_buf bytes;
	enum scl_err err;

	if (e->used && memcmp(e->name, name, SCL_NAME_BYTES) == 0)
		return &e->meta;
	scl_buf_init(&bytes);
	err = scl_store_get_meta(s->store, name, &bytes);
	if (err == SCL_OK)
		err = scl_capsule_meta_check(&e->meta, name,
		    scl_buf_slice(&bytes));
	scl_buf_dispose(&bytes);
	if (err != SCL_OK) {
		e->used = false;
		if (err != SCL_ENOTFOUND)
			scl_log(&s->log, SCL_LOG_ERR, "server",
			    "stored metadata does not verify: %s",
			    scl_err_last());
		return NULL;
	}
	memcpy(e->name, name, SCL_NAME_BYTES);
	e->used = true;
	return &e->meta;
}

enum scl_err
scl_server__put_meta(struct scl_server *s, struct scl_slice meta,
    uint8_t name_out[SCL_NAME_BYTES])
{
	struct scl_capsule_meta m;
	enum scl_err e;
	char hex[9];

	if ((e = scl_capsule_meta_decode(&m, meta)) != SCL_OK)
		return e;
	scl_capsule_name(name_out, meta);
	if (scl_server__meta(s, name_out) != NULL)
		return SCL_OK;
	scl_err_clear();
	if ((e = scl_store_put_meta(s->store, name_out, meta)) != SCL_OK)
		return e;
	scl_log(&s->log, SCL_LOG_INFO, "server",
	    "capsule %s stored label='%s' N=%u W=%u",
	    scl_hex_short(hex, name_out), m.label, m.replicas, m.write_quorum);
	return SCL_OK;
}

static void
handle_meta_put(struct scl_server *s, const uint8_t *route, size_t rlen,
    struct scl_msg *m)
{
	uint8_t name[SCL_NAME_BYTES];
	enum scl_err e = scl_server__put_meta(s, m->blob, name);

	if (e == SCL_EFORMAT || e == SCL_EVERSION || e == SCL_EVERIFY ||
	    e == SCL_ELIMIT || e == SCL_EINVAL) {
		scl_server__reply_error(s, route, rlen, m->id,
		    SCL_WIRE_REJECTED, 0, "metadata rejected: %s",
		    scl_err_last());
		return;
	}
	if (e != SCL_OK) {
		scl_server__reply_error(s, route, rlen, m->id,
		    SCL_WIRE_INTERNAL, 0, "storing metadata: %s",
		    scl_err_last());
		return;
	}
	reply_ok(s, route, rlen, m, NULL, 0);
}

static void
handle_subscribe(struct scl_server *s, const uint8_t *route, size_t rlen,
    struct scl_msg *m)
{
	uint64_t now = scl_server__now_ms();
	uint32_t lease = m->lease_ms > 60000 ? 60000 : m->lease_ms;
	struct subscription *sub = NULL;

	if (scl_server__meta(s, m->name) == NULL) {
		scl_server__reply_error(s, route, rlen, m->id,
		    SCL_WIRE_NOT_FOUND, 0, "unknown capsule");
		return;
	}
	for (size_t i = 0; i < s->n_subs && sub == NULL; i++)
		if ((s->subs[i].route_len == rlen &&
			memcmp(s->subs[i].route, route, rlen) == 0 &&
			memcmp(s->subs[i].name, m->name, SCL_NAME_BYTES) == 0) ||
		    s->subs[i].expires_ms < now)
			sub = &s->subs[i];
	if (sub == NULL && s->n_subs == SUBS_MAX) {
		scl_server__reply_error(s, route, rlen, m->id, SCL_WIRE_BUSY,
		    0, "%d subscriptions already", SUBS_MAX);
		return;
	}
	if (sub == NULL)
		sub = &s->subs[s->n_subs++];
	memcpy(sub->route, route, rlen);
	sub->route_len = rlen;
	memcpy(sub->name, m->name, SCL_NAME_BYTES);
	sub->expires_ms = now + lease;
	m->lease_ms = lease;
	reply_ok(s, route, rlen, m, NULL, 0);
}

/* Pushes a stored batch's heartbeat to the capsule's subscribers. */
static void
notify(struct scl_server *s, const uint8_t *name, struct scl_slice hb)
{
	uint64_t now = scl_server__now_ms();
	struct scl_buf frame;
	struct scl_msg m;

	if (s->n_subs == 0)
		return;
	memset(&m, 0, sizeof(m));
	m.type = SCL_MSG_NOTIFY;
	memcpy(m.name, name, SCL_NAME_BYTES);
	m.blob = hb;
	scl_buf_init(&frame);
	if (scl_msg_encode(&frame, &m, NULL, 0, NULL, 0) == SCL_OK)
		for (size_t i = 0; i < s->n_subs; i++)
			if (s->subs[i].expires_ms >= now &&
			    memcmp(s->subs[i].name, name, SCL_NAME_BYTES) == 0) {
				scl_server__send(s, s->subs[i].route,
				    s->subs[i].route_len, scl_buf_slice(&frame));
				s->stats.notifies++;
			}
	scl_buf_dispose(&frame);
}

static int
count_capsule(void *ctx, const uint8_t *name, struct scl_slice meta)
{
	(void)name;
	(void)meta;
	(*(uint64_t *)ctx)++;
	return 0;
}

static void
handle_status(struct scl_server *s, const uint8_t *route, size_t rlen,
    struct scl_msg *m)
{
	struct scl_store_committer_stats cs;
	char text[SCL_STATUS_TEXT_MAX], key[2 * SCL_SIGN_PUBLIC_BYTES + 1];
	uint64_t now = scl_server__now_ms(), capsules = 0;
	size_t n = 0;

	scl_store_committer_stats(s->committer, &cs);
	if (scl_store_each_capsule(s->store, count_capsule, &capsules) != SCL_OK)
		capsules = 0;
	n += (size_t)snprintf(text + n, sizeof(text) - n,
	    "{\"version\":\"%s\",\"protocol\":%d,\"endpoint\":\"%s\","
	    "\"server_key\":\"%s\",\"uptime_ms\":%llu,\"capsules\":%llu,"
	    "\"chains_cached\":%zu,\"appends\":%llu,\"records\":%llu,"
	    "\"duplicates\":%llu,\"gaps\":%llu,\"rejected\":%llu,"
	    "\"equivocations\":%llu,\"reads\":%llu,\"bad_requests\":%llu,"
	    "\"commits\":%llu,\"commit_failures\":%llu,\"subscriptions\":%zu,"
	    "\"notifies\":%llu,\"peers\":[",
	    "0.1.0", SCL_PROTO_VERSION, s->endpoint,
	    scl_hex_encode(key, s->key.public_key, SCL_SIGN_PUBLIC_BYTES),
	    (unsigned long long)(now - s->started_ms),
	    (unsigned long long)capsules, s->n_chains,
	    (unsigned long long)s->stats.appends,
	    (unsigned long long)s->stats.records,
	    (unsigned long long)s->stats.duplicates,
	    (unsigned long long)s->stats.gaps,
	    (unsigned long long)s->stats.rejected,
	    (unsigned long long)s->stats.equivocations,
	    (unsigned long long)s->stats.reads,
	    (unsigned long long)s->stats.bad_requests,
	    (unsigned long long)cs.commits,
	    (unsigned long long)s->stats.commit_failures, s->n_subs,
	    (unsigned long long)s->stats.notifies);
	for (size_t i = 0; i < s->n_peers && n < sizeof(text) - 512; i++) {
		struct peer *p = &s->peers[i];
		n += (size_t)snprintf(text + n, sizeof(text) - n,
		    "%s{\"addr\":\"%s\",\"syncs\":%llu,\"pulled_records\":%llu,"
		    "\"failures\":%llu,\"last_ok_ms_ago\":%lld}",
		    i ? "," : "", p->addr, (unsigned long long)p->syncs,
		    (unsigned long long)p->pulled_records,
		    (unsigned long long)p->failures,
		    p->last_ok_ms ? (long long)(now - p->last_ok_ms) : -1LL);
	}
	snprintf(text + n, sizeof(text) - n, "]}");
	m->blob = scl_slice_of(text, strlen(text));
	reply_ok(s, route, rlen, m, NULL, 0);
}

static void
handle_meta_get(struct scl_server *s, const uint8_t *route, size_t rlen,
    struct scl_msg *m)
{
	struct scl_buf bytes;

	scl_buf_init(&bytes);
	if (scl_store_get_meta(s->store, m->name, &bytes) != SCL_OK) {
		scl_server__reply_error(s, route, rlen, m->id,
		    SCL_WIRE_NOT_FOUND, 0, "unknown capsule");
	} else {
		m->blob = scl_buf_slice(&bytes);
		reply_ok(s, route, rlen, m, NULL, 0);
	}
	scl_buf_dispose(&bytes);
}

static void
handle_request(struct scl_server *s, const uint8_t *route, size_t rlen,
    struct scl_slice frame, const char *peer)
{
	struct scl_msg m;
	enum scl_err e = scl_msg_decode(&m, frame);

	if (e != SCL_OK) {
		s->stats.bad_requests++;
		scl_server__reply_error(s, route, rlen, m.id,
		    e == SCL_EVERSION ? SCL_WIRE_VERSION : SCL_WIRE_BAD_REQUEST,
		    0, "malformed request from %s: %s", peer, scl_err_last());
		return;
	}
	switch (m.type) {
	case SCL_MSG_STATUS:
		handle_status(s, route, rlen, &m);
		break;
	case SCL_MSG_META_PUT:
		handle_meta_put(s, route, rlen, &m);
		break;
	case SCL_MSG_META_GET:
		handle_meta_get(s, route, rlen, &m);
		break;
	case SCL_MSG_APPEND:
		s->stats.appends++;
		(void)scl_server__accept(s, route, rlen, m.id, m.name, m.blob,
		    &m.list);
		break;
	case SCL_MSG_SUBSCRIBE:
		handle_subscribe(s, route, rlen, &m);
		break;
	case SCL_MSG_READ:
	case SCL_MSG_READ_HASH:
	case SCL_MSG_HEADS:
	case SCL_MSG_HEARTBEAT:
	case SCL_MSG_PROOF:
	case SCL_MSG_SYNC:
	case SCL_MSG_EVIDENCE:
		s->stats.reads++;
		scl_server__handle_read(s, route, rlen, &m);
		break;
	default:
		s->stats.bad_requests++;
		scl_server__reply_error(s, route, rlen, m.id,
		    SCL_WIRE_BAD_REQUEST, 0, "%s is not a request (from %s)",
		    scl_msg_type_name(m.type), peer);
	}
}

/* Reads up to RECV_BURST requests without blocking. */
static void
router_input(struct scl_server *s)
{
	for (int i = 0; i < RECV_BURST; i++) {
		zmq_msg_t route, body;
		const char *peer;
		int more;
		size_t more_len = sizeof(more);

		zmq_msg_init(&route);
		if (zmq_msg_recv(&route, s->router, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&route);
			return;
		}
		zmq_msg_init(&body);
		if (zmq_getsockopt(s->router, ZMQ_RCVMORE, &more, &more_len) ==
			0 &&
		    more && zmq_msg_recv(&body, s->router, 0) >= 0) {
			peer = zmq_msg_gets(&body, "Peer-Address");
			/* Extra frames are not part of the protocol: drop. */
			while (zmq_getsockopt(s->router, ZMQ_RCVMORE, &more,
				   &more_len) == 0 && more) {
				zmq_msg_t junk;
				zmq_msg_init(&junk);
				zmq_msg_recv(&junk, s->router, 0);
				zmq_msg_close(&junk);
				zmq_msg_close(&body);
				zmq_msg_init(&body); /* empty: decoded as bad */
			}
			handle_request(s, zmq_msg_data(&route),
			    zmq_msg_size(&route),
			    scl_slice_of(zmq_msg_data(&body), zmq_msg_size(&body)),
			    peer ? peer : "?");
		}
		zmq_msg_close(&body);
		zmq_msg_close(&route);
	}
}

/* Committer thread: queue a finished append for the loop and wake it. */
static void
job_done(struct scl_store_job *job, void *arg)
{
	struct pending *p = (struct pending *)job;
	struct scl_server *s = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&s->done_lock);
	p->next = NULL;
	if (s->done_tail)
		s->done_tail->next = p;
	else
		s->done_head = p;
	s->done_tail = p;
	pthread_mutex_unlock(&s->done_lock);
	if (write(s->wake_fd, &one, sizeof(one)) < 0)
		abort(); /* an eventfd write cannot fail short of a bug */
}

static void
drain_done(struct scl_server *s)
{
	struct pending *list;
	uint64_t n;

	if (read(s->wake_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		scl_log(&s->log, SCL_LOG_WARN, "server", "eventfd: %s",
		    strerror(errno));
	pthread_mutex_lock(&s->done_lock);
	list = s->done_head;
	s->done_head = s->done_tail = NULL;
	pthread_mutex_unlock(&s->done_lock);
	while (list) {
		struct pending *next = list->next;
		if (list->job.result == SCL_OK)
			notify(s, list->batch.capsule,
			    scl_buf_slice(&list->batch.heartbeat));
		scl_server__finish(s, list);
		list = next;
	}
}

void
scl_server__job_init(struct scl_server *s, struct pending *p)
{
	p->job.on_done = job_done;
	p->job.on_done_arg = s;
	p->server = s;
}

static enum scl_err
load_identity(struct scl_server *s)
{
	char path[4200];
	struct scl_buf seed;
	enum scl_err e;

	snprintf(path, sizeof(path), "%s/server.key", s->data_dir);
	scl_buf_init(&seed);
	e = scl_keyfile_read(&seed, path, SCL_KEYFILE_IDENTITY);
	if (e == SCL_ENOTFOUND) {
		uint8_t fresh[SCL_SIGN_SEED_BYTES];
		scl_random(fresh, sizeof(fresh));
		e = scl_keyfile_write(path, SCL_KEYFILE_IDENTITY,
		    scl_slice_of(fresh, sizeof(fresh)));
		scl_wipe(fresh, sizeof(fresh));
		if (e == SCL_OK)
			e = scl_keyfile_read(&seed, path, SCL_KEYFILE_IDENTITY);
	}
	if (e == SCL_OK && seed.len != SCL_SIGN_SEED_BYTES)
		e = scl_err_set(SCL_EFORMAT, "%s: not a signing identity", path);
	if (e == SCL_OK)
		scl_sign_key_from_seed(&s->key, seed.ptr);
	scl_buf_dispose_secret(&seed);
	return e;
}

/* Messages the client socket queues each way: clients pipeline
 * appends, and a reply that cannot be queued is lost. */
#define SOCKET_HWM 100000

static enum scl_err
open_socket(struct scl_server *s)
{
	struct scl_zsock_options zo = SCL_ZSOCK_OPTIONS_INIT;
	size_t n = sizeof(s->endpoint);
	enum scl_err e;

	zo.max_msg_bytes = (int64_t)SCL_MSG_MAX;
	zo.router_mandatory = true;
	zo.send_hwm = zo.recv_hwm = SOCKET_HWM;
	zo.bind = s->listen;
	if ((e = scl_zsock_open_own(&s->zctx, &s->router, ZMQ_ROUTER, &zo)) !=
	    SCL_OK)
		return e;
	if (zmq_getsockopt(s->router, ZMQ_LAST_ENDPOINT, s->endpoint, &n) != 0)
		snprintf(s->endpoint, sizeof(s->endpoint), "%s", s->listen);
	return SCL_OK;
}

enum scl_err
scl_server_new(struct scl_server **out, const struct scl_server_options *opt)
{
	struct scl_server *s;
	char path[4200];
	enum scl_err e;

	*out = NULL;
	if (opt->listen == NULL || opt->data_dir == NULL)
		return scl_err_set(SCL_EINVAL, "a server needs --listen and a "
					       "data directory");
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->subs = calloc(SUBS_MAX, sizeof(*s->subs))) == NULL) {
		free(s);
		return scl_err_set(SCL_ENOMEM, "cannot allocate server");
	}
	s->opt = *opt;
	s->log = opt->log;
	s->wake_fd = -1;
	snprintf(s->listen, sizeof(s->listen), "%s", opt->listen);
	snprintf(s->data_dir, sizeof(s->data_dir), "%s", opt->data_dir);
	s->n_peers = opt->n_peers > SCL_SERVER_PEERS_MAX ? SCL_SERVER_PEERS_MAX
							 : opt->n_peers;
	for (size_t i = 0; i < s->n_peers; i++)
		snprintf(s->peers[i].addr, sizeof(s->peers[i].addr), "%s",
		    opt->peers[i]);
	if (s->opt.sync_ms == 0)
		s->opt.sync_ms = SCL_SERVER_SYNC_MS_DEFAULT;
	pthread_mutex_init(&s->done_lock, NULL);
	scl_buf_init(&s->out);
	s->started_ms = scl_server__now_ms();
	if (mkdir(s->data_dir, 0700) != 0 && errno != EEXIST) {
		e = scl_err_set(SCL_EIO, "creating %s: %s", s->data_dir,
		    strerror(errno));
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/store", s->data_dir);
	if ((e = load_identity(s)) != SCL_OK ||
	    (e = scl_store_open(&s->store, path, NULL)) != SCL_OK ||
	    (e = scl_store_committer_new(&s->committer, s->store, 0)) !=
		SCL_OK)
		goto fail;
	if ((s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		e = scl_err_set(SCL_EIO, "eventfd: %s", strerror(errno));
		goto fail;
	}
	if ((e = open_socket(s)) != SCL_OK ||
	    (e = scl_server__peers_open(s)) != SCL_OK)
		goto fail;
	*out = s;
	return SCL_OK;
fail:
	scl_server_free(s);
	return e;
}

void
scl_server_stop(struct scl_server *s)
{
	uint64_t one = 1;

	atomic_store(&s->stopping, true);
	if (write(s->wake_fd, &one, sizeof(one)) < 0)
		return; /* the flag alone stops the loop within a tick */
}

const char *
scl_server_endpoint(const struct scl_server *s)
{
	return s->endpoint;
}

enum scl_err
scl_server_run(struct scl_server *s)
{
	zmq_pollitem_t items[2 + SCL_SERVER_PEERS_MAX];
	char key[9];

	scl_log(&s->log, SCL_LOG_INFO, "server",
	    "listening on %s key=%s data=%s peers=%zu", s->endpoint,
	    scl_hex_short(key, s->key.public_key), s->data_dir, s->n_peers);
	while (!atomic_load(&s->stopping)) {
		uint64_t now = scl_server__now_ms();
		int n;

		items[0] = (zmq_pollitem_t){ s->router, 0, ZMQ_POLLIN, 0 };
		items[1] = (zmq_pollitem_t){ NULL, s->wake_fd, ZMQ_POLLIN, 0 };
		for (size_t i = 0; i < s->n_peers; i++)
			items[2 + i] = (zmq_pollitem_t){ s->peers[i].sock, 0,
				ZMQ_POLLIN, 0 };
		n = zmq_poll(items, (int)(2 + s->n_peers), 50);
		if (n < 0 && zmq_errno() != EINTR)
			return scl_err_set(SCL_EIO, "zmq_poll: %s",
			    zmq_strerror(zmq_errno()));
		if (items[1].revents)
			drain_done(s);
		if (items[0].revents)
			router_input(s);
		for (size_t i = 0; i < s->n_peers; i++)
			if (items[2 + i].revents)
				scl_server__peer_input(s, &s->peers[i]);
		scl_server__sync_tick(s, now);
	}
	/* Stop accepting; commit and answer what was accepted. */
	scl_log(&s->log, SCL_LOG_INFO, "server", "stopping: finishing commits");
	scl_store_committer_free(s->committer);
	s->committer = NULL;
	drain_done(s);
	scl_log(&s->log, SCL_LOG_INFO, "server", "stopped");
	return SCL_OK;
}

void
scl_server_free(struct scl_server *s)
{
	if (s == NULL)
		return;
	scl_store_committer_free(s->committer);
	s->committer = NULL;
	if (s->wake_fd >= 0) {
		drain_done(s);
		close(s->wake_fd);
	}
	scl_server__peers_close(s);
	if (s->router)
		zmq_close(s->router);
	if (s->zctx)
		zmq_ctx_term(s->zctx);
	scl_server__chains_free(s);
	scl_store_close(s->store);
	scl_sign_key_wipe(&s->key);
	scl_buf_dispose(&s->out);
	pthread_mutex_destroy(&s->done_lock);
	free(s->subs);
	free(s);
}
