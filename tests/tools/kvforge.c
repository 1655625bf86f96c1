/*
 * kvforge.c - an attacker on the multicast router, for tests: it
 * subscribes to a capsule's traffic, records what passes for a while,
 * then replays every message it saw and publishes altered copies (one
 * byte flipped) and garbage.  Workers must apply none of it.
 *
 * Usage: kvforge ROUTER CAPSULE_NAME_HEX LISTEN_MS
 * Prints "captured N replayed N forged N".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "scl/router.h"
#include "scl/scl.h"

#define KEEP 256

int
main(int argc, char **argv)
{
	struct scl_router_msg m;
	struct scl_buf frame, seen[KEEP];
	uint8_t name[SCL_NAME_BYTES];
	void *ctx, *s;
	struct scl_zsock_options zo = SCL_ZSOCK_OPTIONS_INIT;
	int n = 0, forged = 0;
	long listen_ms;
	struct timespec t0, t;

	if (argc != 4 || scl_init() != SCL_OK ||
	    scl_hex_decode(name, sizeof(name), argv[2]) != SCL_OK)
		return fprintf(stderr, "usage: kvforge ROUTER NAME LISTEN_MS\n"),
		       2;
	listen_ms = atol(argv[3]);
	zo.connect = argv[1];
	if (scl_zsock_open_own(&ctx, &s, ZMQ_DEALER, &zo) != SCL_OK)
		return fprintf(stderr, "kvforge: %s\n", scl_err_last()), 1;
	scl_buf_init(&frame);
	memset(&m, 0, sizeof(m));
	m.type = SCL_ROUTER_SUB;
	memcpy(m.name, name, sizeof(name));
	if (scl_router_msg_encode(&frame, &m) != SCL_OK ||
	    zmq_send(s, frame.ptr, frame.len, 0) < 0)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		char buf[1 << 20];
		int got, timeout;
		clock_gettime(CLOCK_MONOTONIC, &t);
		timeout = (int)(listen_ms - ((t.tv_sec - t0.tv_sec) * 1000 +
		    (t.tv_nsec - t0.tv_nsec) / 1000000));
		if (timeout <= 0 || n == KEEP)
			break;
		zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
		if ((got = zmq_recv(s, buf, sizeof(buf), 0)) < 0)
			break;
		if (got > (int)sizeof(buf) ||
		    scl_router_msg_decode(&m, scl_slice_of(buf, (size_t)got)) !=
			SCL_OK ||
		    m.type != SCL_ROUTER_PUB)
			continue;
		scl_buf_init(&seen[n]);
		if (scl_buf_set(&seen[n], m.payload) == SCL_OK)
			n++;
	}
	srand(7);
	for (int i = 0; i < n; i++) {
		/* the replay, then a forgery of it */
		for (int forge = 0; forge < 2; forge++) {
			if (forge && seen[i].len)
				seen[i].ptr[(size_t)rand() % seen[i].len] ^=
				    (uint8_t)(1 + rand() % 255);
			m.type = SCL_ROUTER_PUB;
			m.payload = scl_buf_slice(&seen[i]);
			if (scl_router_msg_encode(&frame, &m) == SCL_OK &&
			    zmq_send(s, frame.ptr, frame.len, 0) >= 0)
				forged += forge;
		}
	}
	/* garbage of every small length */
	for (int len = 0; len < 64; len++) {
		uint8_t junk[64];
		for (int k = 0; k < len; k++)
			junk[k] = (uint8_t)rand();
		m.payload = scl_slice_of(junk, (size_t)len);
		if (scl_router_msg_encode(&frame, &m) == SCL_OK &&
		    zmq_send(s, frame.ptr, frame.len, 0) >= 0)
			forged++;
	}
	printf("captured %d replayed %d forged %d\n", n, n, forged);
	for (int i = 0; i < n; i++)
		scl_buf_dispose(&seen[i]);
	scl_buf_dispose(&frame);
	zmq_close(s);
	zmq_ctx_term(ctx);
	return 0;
}
