/*
 * kvraw.c - sends one raw frame to a worker's client socket and prints
 * the reply, for tests of what a worker answers to malformed requests.
 *
 * Usage: kvraw ENDPOINT HEX   (HEX may be empty: an empty frame)
 * Prints "status NAME id N: BODY" and exits 0, or "no reply" and exits 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "scl/scl.h"

int
main(int argc, char **argv)
{
	struct scl_zsock_options zo = SCL_ZSOCK_OPTIONS_INIT;
	struct scl_kvclient_reply r;
	uint8_t frame[4096];
	size_t len;
	void *ctx, *s;
	zmq_msg_t m;
	int rc = 1;

	if (argc != 3 || scl_init() != SCL_OK || strlen(argv[2]) % 2 ||
	    (len = strlen(argv[2]) / 2) > sizeof(frame) ||
	    (len && scl_hex_decode(frame, len, argv[2]) != SCL_OK))
		return fprintf(stderr, "usage: kvraw ENDPOINT HEX\n"), 2;
	zo.recv_timeout_ms = 5000;
	zo.connect = argv[1];
	if (scl_zsock_open_own(&ctx, &s, ZMQ_DEALER, &zo) != SCL_OK)
		return fprintf(stderr, "kvraw: %s\n", scl_err_last()), 2;
	zmq_msg_init(&m);
	if (zmq_send(s, frame, len, 0) < 0 || zmq_msg_recv(&m, s, 0) < 0) {
		printf("no reply\n");
	} else if (scl_kvclient_reply_decode(&r, scl_slice_of(zmq_msg_data(&m),
		       zmq_msg_size(&m))) != SCL_OK) {
		printf("malformed reply: %s\n", scl_err_last());
	} else {
		printf("status %s id %llu: %.*s\n", scl_err_name(r.err),
		    (unsigned long long)r.id, (int)r.body.len,
		    (const char *)r.body.ptr);
		rc = 0;
	}
	zmq_msg_close(&m);
	scl_zsock_close_all(ctx, s);
	return rc;
}
