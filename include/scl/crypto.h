/*
 * crypto.h - thin wrappers over libsodium and OpenSSL EVP.
 *
 * No primitive is implemented here: hashing (BLAKE2b-256), signatures
 * (Ed25519), sealed boxes (X25519) and randomness come from libsodium; the
 * AEADs and SHA-256 come from OpenSSL EVP because they were measured
 * faster on this class of machine (docs/BENCHMARKS.md, docs/FORMAT.md).
 * The wrappers fix sizes, name failures, compare in constant time and
 * wipe secrets.
 *
 * Call scl_crypto_init() once before anything else (scl_init() does).
 */
#ifndef SCL_CRYPTO_H
#define SCL_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scl/buf.h"
#include "scl/err.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SCL_HASH_BYTES 32
#define SCL_SIGN_PUBLIC_BYTES 32
#define SCL_SIGN_SECRET_BYTES 64
#define SCL_SIGN_SEED_BYTES 32
#define SCL_SIGNATURE_BYTES 64
#define SCL_AEAD_KEY_BYTES 32
#define SCL_AEAD_NONCE_BYTES 12
#define SCL_AEAD_TAG_BYTES 16
#define SCL_BOX_PUBLIC_BYTES 32
#define SCL_BOX_SECRET_BYTES 32
#define SCL_BOX_SEAL_OVERHEAD 48

/** Initializes libsodium and checks the AEADs; idempotent, thread-safe. */
SCL_NODISCARD enum scl_err scl_crypto_init(void);

/** Fills @buf with @len bytes from the OS CSPRNG. */
void scl_random(void *buf, size_t len);

/** Overwrites @len bytes at @ptr with zeros; never optimized away. */
void scl_wipe(void *ptr, size_t len);

/** Constant-time equality of two @len-byte secrets or MACs. */
bool scl_ct_equal(const void *a, const void *b, size_t len);

/**
 * SipHash-2-4 of @in under a secret @key (libsodium's shorthash): for
 * hash tables whose keys come from outside, so that nobody can choose
 * keys that collide.
 */
uint64_t scl_shorthash(const uint8_t key[16], const void *in, size_t len);

/* --- BLAKE2b-256 ---------------------------------------------------- */

/** One-shot BLAKE2b-256. */
void scl_hash(uint8_t out[SCL_HASH_BYTES], const void *in, size_t len);

/** Streaming state; opaque bytes sized and aligned for libsodium's. */
struct scl_hash_state {
	_Alignas(64) unsigned char opaque[384];
};

void scl_hash_init(struct scl_hash_state *st);
void scl_hash_update(struct scl_hash_state *st, const void *in, size_t len);
void scl_hash_final(struct scl_hash_state *st, uint8_t out[SCL_HASH_BYTES]);

/* --- SHA-256 ------------------------------------------------------- */

/**
 * SHA-256 of the concatenation of @n slices, through OpenSSL's EVP, which
 * uses the CPU's SHA extensions: 1.7x libsodium's BLAKE2b on 32 KiB here
 * and faster down to 64 bytes (docs/FORMAT.md "Choice of record hash").
 * The record hash of records v2.  Fails only when OpenSSL cannot allocate
 * its context.
 */
SCL_NODISCARD enum scl_err scl_sha256(uint8_t out[SCL_HASH_BYTES],
    const struct scl_slice *parts, size_t n);

/**
 * Key derivation: keyed BLAKE2b-256 of (@label, 0x00, @material) under
 * @key.  @label is a fixed ASCII domain string such as "scl writer key".
 */
void scl_kdf(uint8_t out[32], const uint8_t key[32], const char *label,
    const void *material, size_t len);

/* --- Ed25519 --------------------------------------------------------- */

struct scl_sign_key {
	uint8_t secret[SCL_SIGN_SECRET_BYTES];	/* wipe with scl_sign_key_wipe */
	uint8_t public_key[SCL_SIGN_PUBLIC_BYTES];
};

/** A fresh random key pair. */
void scl_sign_keygen(struct scl_sign_key *k);

/** The key pair determined by a 32-byte seed (known-answer tests, files). */
void scl_sign_key_from_seed(struct scl_sign_key *k,
    const uint8_t seed[SCL_SIGN_SEED_BYTES]);

/** Extracts the seed of @k into @seed. */
void scl_sign_key_seed(uint8_t seed[SCL_SIGN_SEED_BYTES],
    const struct scl_sign_key *k);

void scl_sign_key_wipe(struct scl_sign_key *k);

/** Detached signature of @msg. */
void scl_sign(uint8_t sig[SCL_SIGNATURE_BYTES], const struct scl_sign_key *k,
    const void *msg, size_t len);

/** SCL_OK when @sig is @pk's valid signature of @msg, else SCL_EVERIFY. */
SCL_NODISCARD enum scl_err scl_sign_verify(
    const uint8_t sig[SCL_SIGNATURE_BYTES],
    const uint8_t pk[SCL_SIGN_PUBLIC_BYTES], const void *msg, size_t len);

/* --- AEAD ------------------------------------------------------------ */

enum scl_aead_suite {
	SCL_AEAD_AES256GCM = 1,		/* AES-256-GCM, 96-bit nonce */
	SCL_AEAD_CHACHA20POLY1305 = 2,	/* RFC 8439, 96-bit nonce */
};

/** "aes-256-gcm" or "chacha20-poly1305"; NULL for unknown values. */
const char *scl_aead_suite_name(enum scl_aead_suite suite);

/** Parses a suite name; SCL_EINVAL naming the accepted ones otherwise. */
SCL_NODISCARD enum scl_err scl_aead_suite_parse(enum scl_aead_suite *out,
    const char *name);

/** True for the suites this build implements. */
bool scl_aead_suite_valid(unsigned suite);

/**
 * A keyed AEAD context.  Not thread-safe: one per thread or per writer.
 * The key schedule is computed once here, so each seal only sets a nonce.
 */
struct scl_aead;

/** Owned: free with scl_aead_free(), which wipes the key schedule. */
SCL_NODISCARD enum scl_err scl_aead_new(struct scl_aead **out,
    enum scl_aead_suite suite, const uint8_t key[SCL_AEAD_KEY_BYTES]);
void scl_aead_free(struct scl_aead *a);

/**
 * Encrypts @len bytes of @pt with associated data @ad into @out, which
 * must hold @len + SCL_AEAD_TAG_BYTES bytes (ciphertext then tag).  A
 * (key, nonce) pair must never be used twice.
 */
SCL_NODISCARD enum scl_err scl_aead_seal(struct scl_aead *a, uint8_t *out,
    const uint8_t nonce[SCL_AEAD_NONCE_BYTES], const void *ad, size_t ad_len,
    const void *pt, size_t len);

/**
 * Decrypts and authenticates @ct (ciphertext then tag, @ct_len bytes) into
 * @out (@ct_len - SCL_AEAD_TAG_BYTES bytes).  SCL_EVERIFY if anything was
 * changed; @out is wiped in that case.
 */
SCL_NODISCARD enum scl_err scl_aead_open(struct scl_aead *a, uint8_t *out,
    const uint8_t nonce[SCL_AEAD_NONCE_BYTES], const void *ad, size_t ad_len,
    const void *ct, size_t ct_len);

/* --- X25519 sealed boxes (key wrapping) ------------------------------ */

struct scl_box_key {
	uint8_t secret[SCL_BOX_SECRET_BYTES];
	uint8_t public_key[SCL_BOX_PUBLIC_BYTES];
};

void scl_box_keygen(struct scl_box_key *k);
void scl_box_key_wipe(struct scl_box_key *k);

/** Anonymous sealed box: @out holds @len + SCL_BOX_SEAL_OVERHEAD bytes. */
SCL_NODISCARD enum scl_err scl_box_seal(uint8_t *out, const void *msg,
    size_t len, const uint8_t pk[SCL_BOX_PUBLIC_BYTES]);

/** Opens a sealed box for @k into @out (@len - overhead bytes). */
SCL_NODISCARD enum scl_err scl_box_open(uint8_t *out, const void *ct,
    size_t len, const struct scl_box_key *k);

/* --- Key files ------------------------------------------------------- */

enum scl_keyfile_kind {
	SCL_KEYFILE_IDENTITY = 1,	/* one Ed25519 seed */
	SCL_KEYFILE_KEYRING = 2,	/* a capsule's keys (capsule.h) */
	SCL_KEYFILE_SEEN = 3,		/* the heads a client saw (client.h) */
};

/**
 * Writes a key file (docs/FORMAT.md, "Key files"): created with mode 0600,
 * never overwriting (SCL_EEXIST), written to a temporary name, fsync'd and
 * linked into place so a crash leaves either no file or a whole one.
 */
SCL_NODISCARD enum scl_err scl_keyfile_write(const char *path,
    enum scl_keyfile_kind kind, struct scl_slice secret);

/**
 * Reads a key file of @kind into @out (owned secret bytes: dispose with
 * scl_buf_dispose_secret()).  Refuses files readable by group or others,
 * a wrong kind, a bad checksum or an unknown version, each with a message
 * naming the file.
 */
SCL_NODISCARD enum scl_err scl_keyfile_read(struct scl_buf *out,
    const char *path, enum scl_keyfile_kind kind);

/**
 * Parses the bytes of a key file (as scl_keyfile_read does after reading
 * it); @what names the source in messages.  Used by the fuzzer.
 */
SCL_NODISCARD enum scl_err scl_keyfile_decode(struct scl_buf *out,
    struct scl_slice raw, enum scl_keyfile_kind kind, const char *what);

/** Rewrites an existing key file atomically (rename over it), mode 0600. */
SCL_NODISCARD enum scl_err scl_keyfile_replace(const char *path,
    enum scl_keyfile_kind kind, struct scl_slice secret);

#ifdef __cplusplus
}
#endif
#endif
