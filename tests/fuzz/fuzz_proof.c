/*
 * fuzz_proof.c - proof and evidence checking.  The capsule name is taken
 * from the metadata inside the input, so mutations get past the name
 * check and reach the heartbeat, certificate and path logic.
 */
#include <string.h>

#include "fuzz.h"

static void
name_from_embedded_meta(uint8_t name[32], const uint8_t *data, size_t size,
    size_t off)
{
	memset(name, 0, 32);
	if (size >= off + 4) {
		size_t n = scl_le32_load(data + off);
		if (n <= size - off - 4)
			scl_capsule_name(name, scl_slice_of(data + off + 4, n));
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scl_capsule_proof_result *a = malloc(sizeof(*a)),
					 *b = malloc(sizeof(*b));
	uint8_t name[32];

	fuzz_init();
	if (a == NULL || b == NULL)
		abort();
	if (size >= 4 && memcmp(data, "SCLE", 4) == 0) {
		/* evidence: first proof starts after 8 + 4 bytes */
		name_from_embedded_meta(name, data, size, 12 + 8);
		fuzz_discard(scl_capsule_evidence_check(a, b, name,
		    scl_slice_of(data, size)));
	} else {
		name_from_embedded_meta(name, data, size, 8);
		if (scl_capsule_proof_check(a, name, scl_slice_of(data, size)) ==
		    SCL_OK && a->record.len == 0)
			abort(); /* an accepted proof carries its record */
	}
	free(a);
	free(b);
	return 0;
}
