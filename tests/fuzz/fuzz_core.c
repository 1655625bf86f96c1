/*
 * fuzz_core.c - the trusted core's request handler, which is the whole
 * attack surface the untrusted host has on the core.  The input is a
 * sequence of requests (u16 little-endian length, then the bytes);
 * key installation is also tried with a well-formed prefix so that the
 * fuzzer reaches the certificate and wrapped-key parsers.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "scl/worker.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scl_worker_core *c;
	uint8_t init = SCL_CORE_INIT;

	fuzz_init();
	if ((c = scl_worker_core_new()) == NULL)
		abort();
	/* Most requests need keys: make them, as the host always does. */
	if (size > 0 && (data[0] & 1))
		(void)scl_worker_core_handle(c, scl_slice_of(&init, 1));
	while (size >= 2) {
		size_t len = (size_t)data[0] | (size_t)data[1] << 8;
		struct scl_slice out;
		data += 2;
		size -= 2;
		if (len > size)
			len = size;
		out = scl_worker_core_handle(c, scl_slice_of(data, len));
		/* Every reply is a status byte, and errors say something. */
		if (out.len < 1 || out.ptr[0] > 1 ||
		    (out.ptr[0] == 1 && out.len < 2))
			abort();
		data += len;
		size -= len;
	}
	scl_worker_core_free(c);
	return 0;
}
