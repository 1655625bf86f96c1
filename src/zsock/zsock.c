/*
 * zsock.c - ZeroMQ socket set-up (zsock.h).
 */
#include <zmq.h>

#include "scl/zsock.h"

static enum scl_err
fail(const char *doing, const char *endpoint)
{
	return scl_err_set(SCL_EIO, "%s%s%s: %s", doing, endpoint ? " " : "",
	    endpoint ? endpoint : "", zmq_strerror(zmq_errno()));
}

static int
set_int(void *s, int option, int value)
{
	return zmq_setsockopt(s, option, &value, sizeof(value));
}

enum scl_err
scl_zsock_open(void **out, void *ctx, int type,
    const struct scl_zsock_options *opt)
{
	static const struct scl_zsock_options defaults = SCL_ZSOCK_OPTIONS_INIT;
	const struct scl_zsock_options *o = opt ? opt : &defaults;
	void *s;

	*out = NULL;
	if ((s = zmq_socket(ctx, type)) == NULL)
		return fail("cannot make a socket", NULL);
	if (set_int(s, ZMQ_LINGER, 0) != 0 ||
	    (o->max_msg_bytes && zmq_setsockopt(s, ZMQ_MAXMSGSIZE,
				     &o->max_msg_bytes,
				     sizeof(o->max_msg_bytes)) != 0) ||
	    (o->send_hwm && set_int(s, ZMQ_SNDHWM, o->send_hwm) != 0) ||
	    (o->recv_hwm && set_int(s, ZMQ_RCVHWM, o->recv_hwm) != 0) ||
	    (o->recv_timeout_ms &&
		set_int(s, ZMQ_RCVTIMEO, o->recv_timeout_ms) != 0) ||
	    (o->router_mandatory && set_int(s, ZMQ_ROUTER_MANDATORY, 1) != 0) ||
	    (o->immediate && set_int(s, ZMQ_IMMEDIATE, 1) != 0)) {
		enum scl_err e = fail("cannot set socket options", NULL);
		zmq_close(s);
		return e;
	}
	if (o->bind && zmq_bind(s, o->bind) != 0) {
		enum scl_err e = fail("cannot listen on", o->bind);
		zmq_close(s);
		return e;
	}
	if (o->connect && zmq_connect(s, o->connect) != 0) {
		enum scl_err e = fail("cannot connect to", o->connect);
		zmq_close(s);
		return e;
	}
	*out = s;
	return SCL_OK;
}

enum scl_err
scl_zsock_open_own(void **ctx, void **sock, int type,
    const struct scl_zsock_options *opt)
{
	enum scl_err e;

	*sock = NULL;
	if ((*ctx = zmq_ctx_new()) == NULL)
		return fail("cannot make a ZeroMQ context", NULL);
	if ((e = scl_zsock_open(sock, *ctx, type, opt)) != SCL_OK) {
		zmq_ctx_term(*ctx);
		*ctx = NULL;
	}
	return e;
}

void
scl_zsock_close_all(void *ctx, void *sock)
{
	if (sock)
		zmq_close(sock);
	if (ctx)
		zmq_ctx_term(ctx);
}
