/*
 * fuzz_kvclient.c - the frames of a worker's client socket, both ends:
 * a request as the worker's host reads it, a reply as a client reads it.
 */
#include <stdlib.h>

#include "fuzz.h"
#include "scl/kvclient.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scl_kvclient_request q;
	struct scl_kvclient_reply r;
	struct scl_slice in = scl_slice_of(data, size);

	fuzz_init();
	if (scl_kvclient_request_decode(&q, in) == SCL_OK) {
		if (q.ops.len && (q.ops.ptr < data ||
				     q.ops.ptr + q.ops.len > data + size))
			abort();
		if (q.kind != SCL_KVCLIENT_OPS && q.kind != SCL_KVCLIENT_STATUS &&
		    q.kind != SCL_KVCLIENT_TIMED)
			abort();
	}
	if (scl_kvclient_reply_decode(&r, in) == SCL_OK &&
	    (r.err >= SCL_ERR_COUNT_ || (r.body.len &&
		 (r.body.ptr < data || r.body.ptr + r.body.len > data + size))))
		abort();
	scl_err_clear();
	return 0;
}
