/*
 * broker.c - the key broker service and its client calls (broker.h).
 *
 * Nonces: a ring of the last NONCES_MAX issued, each usable once within
 * the TTL; an attestation naming any other nonce is refused.  The
 * keyring and the revocation list are read again for every attestation,
 * so a rotation or revocation takes effect without a restart.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "scl/broker.h"
#include "scl/clock.h"
#include "scl/codec.h"
#include "scl/proto.h"
#include "scl/zsock.h"

#define NONCES_MAX 4096
#define REVOKE_BYTES (4 + SCL_WRITER_BYTES + 8)

struct nonce {
	uint8_t v[SCL_NONCE_BYTES];
	uint64_t issued_ms;
	bool used;
};

struct scl_broker {
	struct scl_broker_options opt;
	char listen[256], keyring[4096], revoked[4096], endpoint[256];
	void *zctx, *router;
	atomic_bool stopping;
	struct nonce *nonces;
	size_t next_nonce;
	uint64_t issued, refused;
};

enum scl_err
scl_broker_revoke_file_add(const char *path,
    const uint8_t writer[SCL_WRITER_BYTES])
{
	char line[2 * SCL_WRITER_BYTES + 2];
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

	if (fd < 0)
		return scl_err_set(SCL_EIO, "%s: %s", path, strerror(errno));
	scl_hex_encode(line, writer, SCL_WRITER_BYTES);
	line[2 * SCL_WRITER_BYTES] = '\n';
	if (write(fd, line, sizeof(line) - 1) != (ssize_t)sizeof(line) - 1 ||
	    fsync(fd) != 0) {
		close(fd);
		return scl_err_set(SCL_EIO, "writing %s: %s", path,
		    strerror(errno));
	}
	close(fd);
	return SCL_OK;
}

/* Whether @writer is listed in the revocation file (absent: none). */
static bool
is_revoked(const char *path, const uint8_t *writer)
{
	char line[256], hex[2 * SCL_WRITER_BYTES + 1];
	FILE *f;
	bool found = false;

	if (path[0] == '\0' || (f = fopen(path, "r")) == NULL)
		return false;
	scl_hex_encode(hex, writer, SCL_WRITER_BYTES);
	while (!found && fgets(line, sizeof(line), f))
		found = strncmp(line, hex, 2 * SCL_WRITER_BYTES) == 0;
	fclose(f);
	return found;
}

static void
send_reply(struct scl_broker *b, const uint8_t *route, size_t rlen,
    struct scl_slice frame)
{
	if (zmq_send(b->router, route, rlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
		(void)zmq_send(b->router, frame.ptr, frame.len, ZMQ_DONTWAIT);
}

static void
refuse(struct scl_broker *b, const uint8_t *route, size_t rlen, uint64_t id,
    const char *why)
{
	struct scl_buf f;

	b->refused++;
	scl_log(&b->opt.log, SCL_LOG_WARN, "broker", "refused: %s", why);
	scl_buf_init(&f);
	if (scl_msg_encode_error(&f, id, SCL_WIRE_REJECTED, 0, why) == SCL_OK)
		send_reply(b, route, rlen, scl_buf_slice(&f));
	scl_buf_dispose(&f);
}

static void
handle_nonce(struct scl_broker *b, const uint8_t *route, size_t rlen,
    struct scl_msg *m)
{
	struct nonce *n = &b->nonces[b->next_nonce++ % NONCES_MAX];
	struct scl_buf f;

	scl_random(n->v, sizeof(n->v));
	n->issued_ms = scl_clock_mono_ms();
	n->used = false;
	memcpy(m->nonce, n->v, sizeof(n->v));
	m->lease_ms = b->opt.nonce_ttl_ms;
	m->type |= SCL_MSG_REPLY;
	scl_buf_init(&f);
	if (scl_msg_encode(&f, m, NULL, 0, NULL, 0) == SCL_OK)
		send_reply(b, route, rlen, scl_buf_slice(&f));
	scl_buf_dispose(&f);
}

/* Consumes @v if it is a nonce we issued, unused and within the TTL. */
static bool
take_nonce(struct scl_broker *b, const uint8_t *v)
{
	uint64_t now = scl_clock_mono_ms();

	for (size_t i = 0; i < NONCES_MAX; i++) {
		struct nonce *n = &b->nonces[i];
		if (n->issued_ms == 0 || !scl_ct_equal(n->v, v, SCL_NONCE_BYTES))
			continue;
		if (n->used || now - n->issued_ms > b->opt.nonce_ttl_ms)
			return false;
		n->used = true;
		return true;
	}
	return false;
}

static enum scl_err
load_keyring(struct scl_broker *b, struct scl_capsule_keyring *k)
{
	struct scl_buf body;
	enum scl_err e;

	scl_buf_init(&body);
	e = scl_keyfile_read(&body, b->keyring, SCL_KEYFILE_KEYRING);
	if (e == SCL_OK)
		e = scl_capsule_keyring_decode(k, scl_buf_slice(&body));
	scl_buf_dispose_secret(&body);
	if (e == SCL_OK && (!k->has_owner ||
			       memcmp(k->capsule, b->opt.capsule, 32) != 0))
		e = scl_err_set(SCL_EINVAL,
		    "keyring %s lacks this capsule's owner key", b->keyring);
	return e;
}

/* Signs the certificate and wraps every epoch key for the core. */
static enum scl_err
grant(struct scl_broker *b, const struct scl_msg *m,
    const struct scl_attest_claims *claims, struct scl_buf *frame)
{
	struct scl_capsule_keyring *k = calloc(1, sizeof(*k));
	struct scl_capsule_cert cert;
	struct scl_sign_key owner;
	struct scl_buf cbytes, wrapped;
	struct scl_slice *items = NULL;
	struct scl_msg reply;
	enum scl_err e;

	scl_buf_init(&cbytes);
	scl_buf_init(&wrapped);
	if (k == NULL)
		return scl_err_set(SCL_ENOMEM, "keyring");
	if ((e = load_keyring(b, k)) != SCL_OK)
		goto done;
	scl_sign_key_from_seed(&owner, k->owner_seed);
	memset(&cert, 0, sizeof(cert));
	memcpy(cert.capsule, b->opt.capsule, 32);
	memcpy(cert.writer, m->writer, 32);
	memcpy(cert.box_key, m->box_key, 32);
	memcpy(cert.measurement, claims->measurement, 32);
	cert.issued_us = scl_clock_wall_us();
	e = scl_capsule_cert_encode(&cbytes, &cert, &owner);
	scl_sign_key_wipe(&owner);
	if (e != SCL_OK)
		goto done;
	if ((items = calloc(k->n_epochs ? k->n_epochs : 1, sizeof(*items))) ==
	    NULL ||
	    (e = scl_buf_reserve(&wrapped, k->n_epochs * 84)) != SCL_OK) {
		e = scl_err_set(SCL_ENOMEM, "wrapping keys");
		goto done;
	}
	for (uint32_t i = 0; i < k->n_epochs && e == SCL_OK; i++) {
		uint8_t *p = wrapped.ptr + wrapped.len;
		scl_le32_store(p, k->epochs[i].epoch);
		e = scl_box_seal(p + 4, k->epochs[i].key, 32, m->box_key);
		wrapped.len += 84;
		items[i] = scl_slice_of(p, 84);
	}
	if (e != SCL_OK)
		goto done;
	memset(&reply, 0, sizeof(reply));
	reply.type = SCL_MSG_KB_ATTEST | SCL_MSG_REPLY;
	reply.id = m->id;
	reply.blob = scl_buf_slice(&cbytes);
	e = scl_msg_encode(frame, &reply, items, k->n_epochs, NULL, 0);
done:
	free(items);
	scl_buf_dispose(&cbytes);
	scl_buf_dispose_secret(&wrapped);
	scl_capsule_keyring_wipe(k);
	free(k);
	return e;
}

static void
handle_attest(struct scl_broker *b, const uint8_t *route, size_t rlen,
    struct scl_msg *m)
{
	struct scl_attest_policy policy = { (const uint8_t(*)[32])b->opt.platforms,
		b->opt.n_platforms, (const uint8_t(*)[32])b->opt.allow,
		b->opt.n_allow };
	struct scl_attest_claims claims;
	uint8_t expect[SCL_REPORT_DATA_BYTES];
	char why[600], w8[9], m8[9];
	struct scl_buf frame;

	scl_hex_short(w8, m->writer);
	if (memcmp(m->name, b->opt.capsule, SCL_NAME_BYTES) != 0) {
		refuse(b, route, rlen, m->id, "this broker serves another "
					      "capsule");
		return;
	}
	if (!take_nonce(b, m->nonce)) {
		snprintf(why, sizeof(why), "writer %s: nonce expired, reused "
		    "or never issued by this broker", w8);
		refuse(b, route, rlen, m->id, why);
		return;
	}
	if (scl_attest_verify(&claims, &policy, m->blob) != SCL_OK) {
		snprintf(why, sizeof(why), "writer %s: %s", w8, scl_err_last());
		refuse(b, route, rlen, m->id, why);
		return;
	}
	scl_attest_report_data(expect, m->writer, m->box_key, m->nonce);
	if (!scl_ct_equal(expect, claims.report_data, sizeof(expect))) {
		snprintf(why, sizeof(why), "writer %s: the evidence binds other "
		    "keys or another nonce", w8);
		refuse(b, route, rlen, m->id, why);
		return;
	}
	if (is_revoked(b->revoked, m->writer)) {
		snprintf(why, sizeof(why), "writer %s is revoked", w8);
		refuse(b, route, rlen, m->id, why);
		return;
	}
	scl_buf_init(&frame);
	if (grant(b, m, &claims, &frame) != SCL_OK) {
		snprintf(why, sizeof(why), "cannot issue: %s", scl_err_last());
		refuse(b, route, rlen, m->id, why);
	} else {
		b->issued++;
		scl_log(&b->opt.log, SCL_LOG_INFO, "broker",
		    "issued a certificate and the wrapped data keys to "
		    "writer %s (measurement %s)", w8,
		    scl_hex_short(m8, claims.measurement));
		send_reply(b, route, rlen, scl_buf_slice(&frame));
	}
	scl_buf_dispose(&frame);
}

static void
handle(struct scl_broker *b, const uint8_t *route, size_t rlen,
    struct scl_slice frame)
{
	struct scl_msg m;

	if (scl_msg_decode(&m, frame) != SCL_OK) {
		char why[600];
		snprintf(why, sizeof(why), "malformed request: %s",
		    scl_err_last());
		refuse(b, route, rlen, m.id, why);
		return;
	}
	if (m.type == SCL_MSG_KB_NONCE)
		handle_nonce(b, route, rlen, &m);
	else if (m.type == SCL_MSG_KB_ATTEST)
		handle_attest(b, route, rlen, &m);
	else
		refuse(b, route, rlen, m.id, "not a key broker request");
}

enum scl_err
scl_broker_new(struct scl_broker **out, const struct scl_broker_options *opt)
{
	struct scl_zsock_options zo = SCL_ZSOCK_OPTIONS_INIT;
	struct scl_broker *b;
	enum scl_err e;
	size_t n;

	*out = NULL;
	if ((b = calloc(1, sizeof(*b))) == NULL ||
	    (b->nonces = calloc(NONCES_MAX, sizeof(*b->nonces))) == NULL) {
		free(b);
		return scl_err_set(SCL_ENOMEM, "cannot allocate broker");
	}
	b->opt = *opt;
	if (b->opt.nonce_ttl_ms == 0)
		b->opt.nonce_ttl_ms = SCL_BROKER_NONCE_TTL_MS_DEFAULT;
	snprintf(b->listen, sizeof(b->listen), "%s", opt->listen);
	snprintf(b->keyring, sizeof(b->keyring), "%s", opt->keyring_path);
	snprintf(b->revoked, sizeof(b->revoked), "%s",
	    opt->revoked_path ? opt->revoked_path : "");
	zo.bind = b->listen;
	if ((e = scl_zsock_open_own(&b->zctx, &b->router, ZMQ_ROUTER, &zo)) !=
	    SCL_OK) {
		scl_broker_free(b);
		return e;
	}
	n = sizeof(b->endpoint);
	if (zmq_getsockopt(b->router, ZMQ_LAST_ENDPOINT, b->endpoint, &n) != 0)
		snprintf(b->endpoint, sizeof(b->endpoint), "%s", b->listen);
	*out = b;
	return SCL_OK;
}

enum scl_err
scl_broker_run(struct scl_broker *b)
{
	char cap[9];

	scl_log(&b->opt.log, SCL_LOG_INFO, "broker",
	    "serving capsule %s on %s: %zu allowed measurements, %zu trusted "
	    "platforms, nonces live %u ms",
	    scl_hex_short(cap, b->opt.capsule), b->endpoint, b->opt.n_allow,
	    b->opt.n_platforms, b->opt.nonce_ttl_ms);
	while (!atomic_load(&b->stopping)) {
		zmq_pollitem_t item = { b->router, 0, ZMQ_POLLIN, 0 };
		if (zmq_poll(&item, 1, 100) <= 0)
			continue;
		for (;;) {
			zmq_msg_t route, body;
			int more = 0;
			size_t ml = sizeof(more);
			zmq_msg_init(&route);
			zmq_msg_init(&body);
			if (zmq_msg_recv(&route, b->router, ZMQ_DONTWAIT) < 0) {
				zmq_msg_close(&route);
				zmq_msg_close(&body);
				break;
			}
			if (zmq_getsockopt(b->router, ZMQ_RCVMORE, &more,
				&ml) == 0 &&
			    more && zmq_msg_recv(&body, b->router, 0) >= 0)
				handle(b, zmq_msg_data(&route),
				    zmq_msg_size(&route),
				    scl_slice_of(zmq_msg_data(&body),
					zmq_msg_size(&body)));
			zmq_msg_close(&route);
			zmq_msg_close(&body);
		}
	}
	scl_log(&b->opt.log, SCL_LOG_INFO, "broker",
	    "stopped: %llu certificates issued, %llu refused",
	    (unsigned long long)b->issued, (unsigned long long)b->refused);
	return SCL_OK;
}

void
scl_broker_stop(struct scl_broker *b)
{
	atomic_store(&b->stopping, true);
}

void
scl_broker_free(struct scl_broker *b)
{
	if (b == NULL)
		return;
	if (b->router)
		zmq_close(b->router);
	if (b->zctx)
		zmq_ctx_term(b->zctx);
	free(b->nonces);
	free(b);
}

const char *
scl_broker_endpoint(const struct scl_broker *b)
{
	return b->endpoint;
}

/* --- client ---------------------------------------------------------------- */

/* One request, one reply (or a timeout), on a fresh DEALER. */
static enum scl_err
ask(const char *addr, const struct scl_msg *req, const struct scl_slice *items,
    size_t n, struct scl_buf *reply, unsigned timeout_ms)
{
	struct scl_zsock_options zo = SCL_ZSOCK_OPTIONS_INIT;
	void *ctx = NULL, *s = NULL;
	struct scl_buf f;
	int t = (int)(timeout_ms ? timeout_ms : 5000), got;
	enum scl_err e = SCL_OK;
	zmq_msg_t m;

	scl_buf_init(&f);
	zo.recv_timeout_ms = t;
	zo.connect = addr;
	if ((e = scl_zsock_open_own(&ctx, &s, ZMQ_DEALER, &zo)) != SCL_OK) {
		e = scl_err_wrap(e, "the key broker: ");
		goto done;
	}
	if ((e = scl_msg_encode(&f, req, items, n, NULL, 0)) != SCL_OK)
		goto done;
	if (zmq_send(s, f.ptr, f.len, 0) < 0) {
		e = scl_err_set(SCL_EIO, "sending to the broker: %s",
		    zmq_strerror(zmq_errno()));
		goto done;
	}
	zmq_msg_init(&m);
	got = zmq_msg_recv(&m, s, 0);
	if (got < 0)
		e = scl_err_set(SCL_ETIMEOUT, "the key broker at %s did not "
		    "answer within %d ms", addr, t);
	else
		e = scl_buf_set(reply, scl_slice_of(zmq_msg_data(&m),
					   zmq_msg_size(&m)));
	zmq_msg_close(&m);
done:
	scl_buf_dispose(&f);
	scl_zsock_close_all(ctx, s);
	return e;
}

static enum scl_err
reply_error(const struct scl_msg *m)
{
	if (m->type == SCL_MSG_ERROR)
		return scl_err_set(SCL_EVERIFY, "the key broker refused: %.*s",
		    (int)m->blob.len, (const char *)m->blob.ptr);
	return scl_err_set(SCL_EFORMAT, "unexpected %s reply from the broker",
	    scl_msg_type_name(m->type));
}

enum scl_err
scl_broker_nonce(const char *addr, uint8_t nonce[SCL_NONCE_BYTES],
    unsigned timeout_ms)
{
	struct scl_msg req, rep;
	struct scl_buf r;
	enum scl_err e;

	memset(&req, 0, sizeof(req));
	req.type = SCL_MSG_KB_NONCE;
	req.id = 1;
	scl_buf_init(&r);
	if ((e = ask(addr, &req, NULL, 0, &r, timeout_ms)) == SCL_OK &&
	    (e = scl_msg_decode(&rep, scl_buf_slice(&r))) == SCL_OK) {
		if (rep.type != (SCL_MSG_KB_NONCE | SCL_MSG_REPLY))
			e = reply_error(&rep);
		else
			memcpy(nonce, rep.nonce, SCL_NONCE_BYTES);
	}
	scl_buf_dispose(&r);
	return e;
}

void
scl_broker_grant_init(struct scl_broker_grant *g)
{
	memset(g, 0, sizeof(*g));
	scl_buf_init(&g->cert);
}

void
scl_broker_grant_dispose(struct scl_broker_grant *g)
{
	scl_buf_dispose(&g->cert);
	scl_wipe(g, sizeof(*g));
}

enum scl_err
scl_broker_attest(struct scl_broker_grant *out, const char *addr,
    const uint8_t name[SCL_NAME_BYTES], const uint8_t writer[SCL_WRITER_BYTES],
    const uint8_t box_key[SCL_BOX_PUBLIC_BYTES],
    const uint8_t nonce[SCL_NONCE_BYTES], struct scl_slice evidence,
    unsigned timeout_ms)
{
	struct scl_msg req, rep;
	struct scl_msg_iter it;
	struct scl_slice item;
	struct scl_buf r;
	enum scl_err e;

	memset(&req, 0, sizeof(req));
	req.type = SCL_MSG_KB_ATTEST;
	req.id = 2;
	memcpy(req.name, name, 32);
	memcpy(req.writer, writer, 32);
	memcpy(req.box_key, box_key, 32);
	memcpy(req.nonce, nonce, 32);
	req.blob = evidence;
	scl_buf_init(&r);
	if ((e = ask(addr, &req, NULL, 0, &r, timeout_ms)) != SCL_OK ||
	    (e = scl_msg_decode(&rep, scl_buf_slice(&r))) != SCL_OK)
		goto done;
	if (rep.type != (SCL_MSG_KB_ATTEST | SCL_MSG_REPLY)) {
		e = reply_error(&rep);
		goto done;
	}
	if ((e = scl_buf_set(&out->cert, rep.blob)) != SCL_OK)
		goto done;
	scl_msg_iter_init(&it, &rep.list);
	while (scl_msg_iter_next(&it, &item) && out->n_keys < SCL_EPOCHS_MAX) {
		if (item.len != 84) {
			e = scl_err_set(SCL_EFORMAT, "wrapped key of %zu bytes",
			    item.len);
			break;
		}
		out->keys[out->n_keys].epoch = scl_le32_load(item.ptr);
		memcpy(out->keys[out->n_keys].sealed, item.ptr + 4, 80);
		out->n_keys++;
	}
done:
	scl_buf_dispose(&r);
	return e;
}
