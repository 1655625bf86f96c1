/*
 * crypto_int.h - private to src/crypto.
 */
#ifndef SCL_CRYPTO_INT_H
#define SCL_CRYPTO_INT_H

#include "scl/crypto.h"

/** Round trip and forgery check of every AEAD suite (scl_crypto_init). */
enum scl_err scl_crypto__aead_selftest(void);

/** SHA-256 against a known answer; also fetches the digest once. */
enum scl_err scl_crypto__sha256_selftest(void);

#endif
