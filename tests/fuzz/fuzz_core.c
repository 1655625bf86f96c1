/*
 * fuzz_core.c - the trusted core's request handler, which is the whole
 * attack surface the untrusted host has on the core.  The input is a
 * sequence of requests (u16 little-endian length, then the bytes);
 * key installation is also tried with a well-formed prefix so that the
 * fuzzer reaches the certificate and wrapped-key parsers.  Every reply
 * must be well formed: the request's op, a known status, and for a
 * refusal a non-empty reason and nothing after it.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "scl/codec.h"
#include "scl/core.h"

static void
check_reply(struct scl_slice req, struct scl_slice out)
{
	uint8_t op = req.len ? req.ptr[0] : 0;

	if (out.len < 2 || out.ptr[0] != op || out.ptr[1] >= SCL_ERR_COUNT_)
		abort();
	if (out.ptr[1] != SCL_OK &&
	    (out.len < 5 || scl_le16_load(out.ptr + 2) != out.len - 4))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t init = SCL_CORE_INIT;
	struct scl_core *c;

	fuzz_init();
	if ((c = scl_core_new(NULL)) == NULL)
		abort();
	/* Most requests need keys: make them, as the host always does. */
	if (size > 0 && (data[0] & 1))
		check_reply(scl_slice_of(&init, 1),
		    scl_core_handle(c, scl_slice_of(&init, 1)));
	while (size >= 2) {
		size_t len = (size_t)data[0] | (size_t)data[1] << 8;
		struct scl_slice req;
		data += 2;
		size -= 2;
		if (len > size)
			len = size;
		req = scl_slice_of(data, len);
		check_reply(req, scl_core_handle(c, req));
		data += len;
		size -= len;
	}
	scl_core_free(c);
	return 0;
}
