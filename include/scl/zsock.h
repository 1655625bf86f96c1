/*
 * zsock.h - ZeroMQ sockets, set up the one way SCL uses them: no linger
 * (a closing process never waits for peers that are gone), a message
 * size limit where the protocol has one, high-water marks, a receive
 * timeout, then bound or connected, with an error that names the
 * endpoint.  Every module that opens a socket goes through here.
 *
 * Sockets and contexts are ZeroMQ's own (void *): the caller closes them
 * with zmq_close() and zmq_ctx_term(), and keeps each socket on one
 * thread (ZeroMQ sockets are not thread-safe).
 */
#ifndef SCL_ZSOCK_H
#define SCL_ZSOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "scl/err.h"

#ifdef __cplusplus
extern "C" {
#endif

struct scl_zsock_options {
	int64_t max_msg_bytes;		/* ZMQ_MAXMSGSIZE; 0: no limit */
	int send_hwm, recv_hwm;		/* messages queued; 0: ZeroMQ's 1000 */
	int recv_timeout_ms;		/* 0: receives block */
	/* ROUTER: a send to a peer that is gone fails (EHOSTUNREACH)
	 * instead of vanishing, so a reply's loss is seen. */
	bool router_mandatory;
	/* Queue only to connected peers: a peer that is down does not
	 * collect a backlog to replay when it returns. */
	bool immediate;
	const char *bind;		/* one of these, or neither */
	const char *connect;
};

#define SCL_ZSOCK_OPTIONS_INIT { 0, 0, 0, 0, false, false, NULL, NULL }

/**
 * A socket of ZeroMQ @type (ZMQ_DEALER...) on @ctx with @opt applied
 * (NULL: the defaults), bound or connected as @opt says.  Owned: close
 * with zmq_close().  SCL_EIO naming the endpoint on failure, with nothing
 * left open.
 */
SCL_NODISCARD enum scl_err scl_zsock_open(void **out, void *ctx, int type,
    const struct scl_zsock_options *opt);

/**
 * A context of its own and one socket in it, for a client that talks to
 * one endpoint.  Owned: scl_zsock_close_all().
 */
SCL_NODISCARD enum scl_err scl_zsock_open_own(void **ctx, void **sock,
    int type, const struct scl_zsock_options *opt);

/** Closes @sock and terminates @ctx (either may be NULL). */
void scl_zsock_close_all(void *ctx, void *sock);

#ifdef __cplusplus
}
#endif
#endif
