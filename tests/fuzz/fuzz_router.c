/* fuzz_router.c - router frames, as a router or a worker's host reads
 * them from the network. */
#include "fuzz.h"
#include "scl/router.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scl_router_msg m;
	struct scl_router_chaos c;
	char spec[256];

	fuzz_init();
	if (scl_router_msg_decode(&m, scl_slice_of(data, size)) == SCL_OK &&
	    m.payload.len > size)
		abort();
	/* the --chaos parser takes text from the command line */
	if (size < sizeof(spec)) {
		memcpy(spec, data, size);
		spec[size] = '\0';
		fuzz_discard(scl_router_chaos_parse(&c, spec));
	}
	return 0;
}
