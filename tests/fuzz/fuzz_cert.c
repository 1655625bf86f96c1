/* fuzz_cert.c - writer certificate decoding and verification. */
#include <string.h>

#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scl_capsule_cert c;
	uint8_t owner[32];

	fuzz_init();
	if (scl_capsule_cert_decode(&c, scl_slice_of(data, size)) != SCL_OK)
		return 0;
	memset(owner, 0x42, sizeof(owner));
	fuzz_discard(scl_capsule_cert_verify(&c, c.capsule, owner, c.writer));
	return 0;
}
