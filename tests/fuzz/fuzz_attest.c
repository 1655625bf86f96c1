/*
 * fuzz_attest.c - attestation evidence as a key broker receives it: the
 * sim and tsm layouts, verified against a policy that trusts the seed
 * corpus's platform key and measurement (so valid inputs reach the
 * signature and measurement checks, and mutated ones every refusal).
 */
#include <string.h>

#include "fuzz.h"
#include "scl/attest.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct scl_sign_key platform;
	static uint8_t measurement[SCL_MEASUREMENT_BYTES];
	static int ready;
	struct scl_attest_policy policy;
	struct scl_attest_claims claims;

	fuzz_init();
	if (!ready) {
		uint8_t seed[SCL_SIGN_SEED_BYTES];
		memset(seed, 5, sizeof(seed));	/* as gen_corpus */
		scl_sign_key_from_seed(&platform, seed);
		memset(measurement, 6, sizeof(measurement));
		ready = 1;
	}
	memset(&policy, 0, sizeof(policy));
	policy.platforms = &platform.public_key;
	policy.n_platforms = 1;
	policy.measurements = &measurement;
	policy.n_measurements = 1;
	fuzz_discard(scl_attest_verify(&claims, &policy,
	    scl_slice_of(data, size)));
	return 0;
}
