/* fuzz_keyring.c - keyring bodies and the key file envelope. */
#include <stdlib.h>

#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scl_capsule_keyring *k = malloc(sizeof(*k));
	struct scl_buf body;

	fuzz_init();
	if (k == NULL)
		abort();
	fuzz_discard(scl_capsule_keyring_decode(k, scl_slice_of(data, size)));
	scl_buf_init(&body);
	if (scl_keyfile_decode(&body, scl_slice_of(data, size),
		SCL_KEYFILE_KEYRING, "fuzz input") == SCL_OK)
		fuzz_discard(scl_capsule_keyring_decode(k, scl_buf_slice(&body)));
	scl_buf_dispose(&body);
	scl_capsule_keyring_wipe(k);
	free(k);
	return 0;
}
