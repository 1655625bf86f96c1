/*
 * kvclient.c - a client of a worker's KVS socket (kvclient.h): one
 * DEALER, requests numbered from 1, the last reply kept until the next.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "scl/codec.h"
#include "scl/kvclient.h"
#include "scl/zsock.h"

struct scl_kvclient {
	void *ctx, *sock;
	char endpoint[256];
	unsigned timeout_ms;
	uint64_t next_id;
	struct scl_buf frame, ops;
	zmq_msg_t last;			/* the reply the caller borrows */
};

enum scl_err
scl_kvclient_new(struct scl_kvclient **out, const char *endpoint,
    const struct scl_kvclient_options *opt)
{
	struct scl_zsock_options zo = SCL_ZSOCK_OPTIONS_INIT;
	struct scl_kvclient *c;
	enum scl_err e;

	*out = NULL;
	if (strlen(endpoint) >= sizeof(c->endpoint))
		return scl_err_set(SCL_EINVAL, "a worker endpoint of %zu "
		    "characters", strlen(endpoint));
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return scl_err_set(SCL_ENOMEM, "cannot allocate a client");
	snprintf(c->endpoint, sizeof(c->endpoint), "%s", endpoint);
	c->timeout_ms = opt && opt->timeout_ms ? opt->timeout_ms
					       : SCL_KVCLIENT_TIMEOUT_MS_DEFAULT;
	scl_buf_init(&c->frame);
	scl_buf_init(&c->ops);
	zmq_msg_init(&c->last);
	zo.max_msg_bytes = (int64_t)SCL_KVCLIENT_FRAME_MAX + 64;
	zo.recv_timeout_ms = (int)c->timeout_ms;
	zo.connect = endpoint;
	if ((e = scl_zsock_open_own(&c->ctx, &c->sock, ZMQ_DEALER, &zo)) !=
	    SCL_OK) {
		scl_kvclient_free(c);
		return e;
	}
	*out = c;
	return SCL_OK;
}

void
scl_kvclient_free(struct scl_kvclient *c)
{
	if (c == NULL)
		return;
	zmq_msg_close(&c->last);
	scl_zsock_close_all(c->ctx, c->sock);
	scl_buf_dispose(&c->frame);
	scl_buf_dispose_secret(&c->ops); /* a put's value */
	free(c);
}

const char *
scl_kvclient_endpoint(const struct scl_kvclient *c)
{
	return c->endpoint;
}

enum scl_err
scl_kvclient_send(struct scl_kvclient *c, uint8_t kind, uint8_t flags,
    uint32_t n, struct scl_slice ops, uint64_t *id)
{
	struct scl_kvclient_request r = { kind, ++c->next_id, flags, n, ops };
	enum scl_err e;

	if ((e = scl_kvclient_request_encode(&c->frame, &r)) != SCL_OK)
		return e;
	if (zmq_send(c->sock, c->frame.ptr, c->frame.len, 0) < 0)
		return scl_err_set(SCL_EIO, "cannot send to worker %s: %s",
		    c->endpoint, zmq_strerror(zmq_errno()));
	if (id)
		*id = r.id;
	return SCL_OK;
}

enum scl_err
scl_kvclient_recv(struct scl_kvclient *c, struct scl_kvclient_reply *out)
{
	enum scl_err e;

	zmq_msg_close(&c->last);
	zmq_msg_init(&c->last);
	if (zmq_msg_recv(&c->last, c->sock, 0) < 0)
		return scl_err_set(SCL_ETIMEOUT, "worker %s did not answer in "
		    "%u ms", c->endpoint, c->timeout_ms);
	e = scl_kvclient_reply_decode(out, scl_slice_of(zmq_msg_data(&c->last),
	    zmq_msg_size(&c->last)));
	if (e != SCL_OK)
		return scl_err_wrap(e, "worker %s: ", c->endpoint);
	return SCL_OK;
}

enum scl_err
scl_kvclient_call(struct scl_kvclient *c, uint8_t kind, uint8_t flags,
    uint32_t n, struct scl_slice ops, struct scl_kvclient_reply *out)
{
	uint64_t id = 0;
	enum scl_err e;

	if ((e = scl_kvclient_send(c, kind, flags, n, ops, &id)) != SCL_OK)
		return e;
	do {
		if ((e = scl_kvclient_recv(c, out)) != SCL_OK)
			return e;
	} while (out->id != id); /* a late reply to an abandoned request */
	if (out->err != SCL_OK)
		return scl_err_set(out->err, "worker %s: %.*s", c->endpoint,
		    (int)out->body.len, (const char *)out->body.ptr);
	return SCL_OK;
}

enum scl_err
scl_kvclient_one(struct scl_kvclient *c, const struct scl_kvreq *r,
    uint8_t flags, struct scl_kvres *out)
{
	struct scl_kvclient_reply rep;
	struct scl_dec d;
	enum scl_err e;

	scl_buf_clear(&c->ops);
	if ((e = scl_kvreq_encode(&c->ops, r)) != SCL_OK ||
	    (e = scl_kvclient_call(c, SCL_KVCLIENT_OPS, flags, 1,
		 scl_buf_slice(&c->ops), &rep)) != SCL_OK)
		return e;
	scl_dec_init(&d, rep.body, "result");
	if ((e = scl_kvres_decode(&d, r->op, out)) != SCL_OK ||
	    (e = scl_dec_finish(&d)) != SCL_OK)
		return scl_err_wrap(e, "worker %s: ", c->endpoint);
	if (scl_kvreq_writes(r) && !out->ok)
		return scl_err_set(out->err, "worker %s: %.*s", c->endpoint,
		    (int)out->error.len, (const char *)out->error.ptr);
	return SCL_OK;
}

enum scl_err
scl_kvclient_status(struct scl_kvclient *c, struct scl_slice *json)
{
	struct scl_kvclient_reply rep;
	enum scl_err e;

	if ((e = scl_kvclient_call(c, SCL_KVCLIENT_STATUS, 0, 0,
		 scl_slice_of(NULL, 0), &rep)) != SCL_OK)
		return e;
	*json = rep.body;
	return SCL_OK;
}
