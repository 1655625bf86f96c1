/* fuzz_record.c - record and header decoding, hashing, opening. */
#include <string.h>

#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scl_record r;
	uint8_t hash[SCL_HASH_BYTES], key[32];
	struct scl_buf out;
	size_t used;

	fuzz_init();
	if (scl_capsule_header_decode(&r, &used, scl_slice_of(data, size)) ==
	    SCL_OK && used > size)
		abort();
	if (scl_capsule_record_decode(&r, scl_slice_of(data, size)) != SCL_OK)
		return 0;
	if (r.header.len + r.body.len != size)
		abort(); /* a decoded record accounts for every byte */
	if (scl_capsule_record_hash(hash, &r) != SCL_OK)
		abort(); /* a decoded record always hashes */
	memset(key, 1, sizeof(key));
	scl_buf_init(&out);
	fuzz_discard(scl_capsule_record_open(&out, &r, SCL_AEAD_AES256GCM, key));
	scl_buf_dispose(&out);
	return 0;
}
