/*
 * crypto.c - libsodium wrappers: init, randomness, hashing, KDF, Ed25519,
 * sealed boxes.  Nothing here implements a primitive.
 */
#include <string.h>

#include <sodium.h>

#include "crypto_int.h"

_Static_assert(sizeof(crypto_generichash_state) <=
    sizeof(((struct scl_hash_state *)0)->opaque),
    "scl_hash_state too small for libsodium's state");
_Static_assert(crypto_sign_PUBLICKEYBYTES == SCL_SIGN_PUBLIC_BYTES, "pk");
_Static_assert(crypto_sign_SECRETKEYBYTES == SCL_SIGN_SECRET_BYTES, "sk");
_Static_assert(crypto_sign_BYTES == SCL_SIGNATURE_BYTES, "sig");
_Static_assert(crypto_box_SEALBYTES == SCL_BOX_SEAL_OVERHEAD, "seal");

enum scl_err
scl_crypto_init(void)
{
	enum scl_err e;

	if (sodium_init() < 0)
		return scl_err_set(SCL_ECRYPTO, "libsodium failed to initialize");
	if ((e = scl_crypto__aead_selftest()) != SCL_OK)
		return e;
	return scl_crypto__sha256_selftest();
}

void
scl_random(void *buf, size_t len)
{
	randombytes_buf(buf, len);
}

void
scl_wipe(void *ptr, size_t len)
{
	sodium_memzero(ptr, len);
}

bool
scl_ct_equal(const void *a, const void *b, size_t len)
{
	return sodium_memcmp(a, b, len) == 0;
}

uint64_t
scl_shorthash(const uint8_t key[16], const void *in, size_t len)
{
	unsigned char h[crypto_shorthash_BYTES];

	crypto_shorthash(h, in, len, key);
	return (uint64_t)h[0] | (uint64_t)h[1] << 8 | (uint64_t)h[2] << 16 |
	    (uint64_t)h[3] << 24 | (uint64_t)h[4] << 32 | (uint64_t)h[5] << 40 |
	    (uint64_t)h[6] << 48 | (uint64_t)h[7] << 56;
}

void
scl_hash(uint8_t out[SCL_HASH_BYTES], const void *in, size_t len)
{
	crypto_generichash(out, SCL_HASH_BYTES, in, len, NULL, 0);
}

void
scl_hash_init(struct scl_hash_state *st)
{
	crypto_generichash_init((crypto_generichash_state *)st->opaque, NULL, 0,
	    SCL_HASH_BYTES);
}

void
scl_hash_update(struct scl_hash_state *st, const void *in, size_t len)
{
	crypto_generichash_update((crypto_generichash_state *)st->opaque, in,
	    len);
}

void
scl_hash_final(struct scl_hash_state *st, uint8_t out[SCL_HASH_BYTES])
{
	crypto_generichash_final((crypto_generichash_state *)st->opaque, out,
	    SCL_HASH_BYTES);
}

void
scl_kdf(uint8_t out[32], const uint8_t key[32], const char *label,
    const void *material, size_t len)
{
	crypto_generichash_state st;
	static const uint8_t zero = 0;

	crypto_generichash_init(&st, key, 32, 32);
	crypto_generichash_update(&st, (const uint8_t *)label, strlen(label));
	crypto_generichash_update(&st, &zero, 1);
	crypto_generichash_update(&st, material, len);
	crypto_generichash_final(&st, out, 32);
	sodium_memzero(&st, sizeof(st));
}

void
scl_sign_keygen(struct scl_sign_key *k)
{
	crypto_sign_keypair(k->public_key, k->secret);
}

void
scl_sign_key_from_seed(struct scl_sign_key *k,
    const uint8_t seed[SCL_SIGN_SEED_BYTES])
{
	crypto_sign_seed_keypair(k->public_key, k->secret, seed);
}

void
scl_sign_key_seed(uint8_t seed[SCL_SIGN_SEED_BYTES],
    const struct scl_sign_key *k)
{
	crypto_sign_ed25519_sk_to_seed(seed, k->secret);
}

void
scl_sign_key_wipe(struct scl_sign_key *k)
{
	sodium_memzero(k, sizeof(*k));
}

void
scl_sign(uint8_t sig[SCL_SIGNATURE_BYTES], const struct scl_sign_key *k,
    const void *msg, size_t len)
{
	crypto_sign_detached(sig, NULL, msg, len, k->secret);
}

enum scl_err
scl_sign_verify(const uint8_t sig[SCL_SIGNATURE_BYTES],
    const uint8_t pk[SCL_SIGN_PUBLIC_BYTES], const void *msg, size_t len)
{
	if (crypto_sign_verify_detached(sig, msg, len, pk) != 0)
		return scl_err_set(SCL_EVERIFY, "bad signature");
	return SCL_OK;
}

void
scl_box_keygen(struct scl_box_key *k)
{
	crypto_box_keypair(k->public_key, k->secret);
}

void
scl_box_key_wipe(struct scl_box_key *k)
{
	sodium_memzero(k, sizeof(*k));
}

enum scl_err
scl_box_seal(uint8_t *out, const void *msg, size_t len,
    const uint8_t pk[SCL_BOX_PUBLIC_BYTES])
{
	if (crypto_box_seal(out, msg, len, pk) != 0)
		return scl_err_set(SCL_ECRYPTO,
		    "sealed box failed (bad recipient key)");
	return SCL_OK;
}

enum scl_err
scl_box_open(uint8_t *out, const void *ct, size_t len,
    const struct scl_box_key *k)
{
	if (len < SCL_BOX_SEAL_OVERHEAD)
		return scl_err_set(SCL_EFORMAT,
		    "sealed box of %zu bytes is shorter than its overhead", len);
	if (crypto_box_seal_open(out, ct, len, k->public_key, k->secret) != 0)
		return scl_err_set(SCL_EVERIFY,
		    "sealed box does not open with this key");
	return SCL_OK;
}
