/* fuzz_heartbeat.c - heartbeat decoding and signature checking. */
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scl_heartbeat hb;

	fuzz_init();
	if (scl_capsule_heartbeat_decode(&hb, scl_slice_of(data, size)) !=
	    SCL_OK)
		return 0;
	if (size != SCL_HEARTBEAT_BYTES)
		abort();
	fuzz_discard(scl_capsule_heartbeat_verify(&hb));
	return 0;
}
