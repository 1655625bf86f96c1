/* fuzz_meta.c - metadata decoding and the self-certifying name check. */
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scl_capsule_meta m;
	uint8_t name[SCL_NAME_BYTES];

	fuzz_init();
	scl_capsule_name(name, scl_slice_of(data, size));
	if (scl_capsule_meta_check(&m, name, scl_slice_of(data, size)) ==
	    SCL_OK && m.write_quorum > m.replicas)
		abort(); /* accepted metadata must obey the policy rules */
	return 0;
}
