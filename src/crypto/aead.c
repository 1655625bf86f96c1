/*
 * aead.c - AES-256-GCM and ChaCha20-Poly1305 through OpenSSL EVP.
 *
 * Each struct scl_aead keeps two EVP contexts (seal and open) initialized
 * with the key once; a call only installs the nonce.  That keeps the key
 * schedule out of the per-record cost, which is what makes 1 KiB records
 * reach the cipher's bulk rate (docs/BENCHMARKS.md).
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "crypto_int.h"

struct scl_aead {
	enum scl_aead_suite suite;
	EVP_CIPHER_CTX *seal;
	EVP_CIPHER_CTX *open;
};

static const EVP_CIPHER *
suite_cipher(enum scl_aead_suite suite)
{
	switch (suite) {
	case SCL_AEAD_AES256GCM:
		return EVP_aes_256_gcm();
	case SCL_AEAD_CHACHA20POLY1305:
		return EVP_chacha20_poly1305();
	}
	return NULL;
}

const char *
scl_aead_suite_name(enum scl_aead_suite suite)
{
	switch (suite) {
	case SCL_AEAD_AES256GCM:
		return "aes-256-gcm";
	case SCL_AEAD_CHACHA20POLY1305:
		return "chacha20-poly1305";
	}
	return NULL;
}

bool
scl_aead_suite_valid(unsigned suite)
{
	return suite == SCL_AEAD_AES256GCM ||
	    suite == SCL_AEAD_CHACHA20POLY1305;
}

enum scl_err
scl_aead_suite_parse(enum scl_aead_suite *out, const char *name)
{
	if (strcmp(name, "aes-256-gcm") == 0)
		*out = SCL_AEAD_AES256GCM;
	else if (strcmp(name, "chacha20-poly1305") == 0)
		*out = SCL_AEAD_CHACHA20POLY1305;
	else
		return scl_err_set(SCL_EINVAL,
		    "unknown AEAD '%s' (use aes-256-gcm or chacha20-poly1305)",
		    name);
	return SCL_OK;
}

void
scl_aead_free(struct scl_aead *a)
{
	if (a == NULL)
		return;
	/* EVP_CIPHER_CTX_free cleanses the key schedule. */
	EVP_CIPHER_CTX_free(a->seal);
	EVP_CIPHER_CTX_free(a->open);
	free(a);
}

enum scl_err
scl_aead_new(struct scl_aead **out, enum scl_aead_suite suite,
    const uint8_t key[SCL_AEAD_KEY_BYTES])
{
	const EVP_CIPHER *cipher = suite_cipher(suite);
	struct scl_aead *a = NULL;
	enum scl_err r = SCL_OK;

	*out = NULL;
	if (cipher == NULL)
		return scl_err_set(SCL_EINVAL, "unknown AEAD suite %u",
		    (unsigned)suite);
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return scl_err_set(SCL_ENOMEM, "cannot allocate AEAD context");
	a->suite = suite;
	a->seal = EVP_CIPHER_CTX_new();
	a->open = EVP_CIPHER_CTX_new();
	if (a->seal == NULL || a->open == NULL ||
	    EVP_EncryptInit_ex(a->seal, cipher, NULL, key, NULL) != 1 ||
	    EVP_DecryptInit_ex(a->open, cipher, NULL, key, NULL) != 1) {
		r = scl_err_set(SCL_ECRYPTO, "OpenSSL cannot set up %s",
		    scl_aead_suite_name(suite));
		goto done;
	}
	*out = a;
	a = NULL;
done:
	scl_aead_free(a);
	return r;
}

enum scl_err
scl_aead_seal(struct scl_aead *a, uint8_t *out,
    const uint8_t nonce[SCL_AEAD_NONCE_BYTES], const void *ad, size_t ad_len,
    const void *pt, size_t len)
{
	int n;

	if (len > INT_MAX - 64 || ad_len > INT_MAX)
		return scl_err_set(SCL_ELIMIT, "AEAD input of %zu bytes", len);
	if (EVP_EncryptInit_ex(a->seal, NULL, NULL, NULL, nonce) != 1 ||
	    (ad_len && EVP_EncryptUpdate(a->seal, NULL, &n, ad, (int)ad_len) !=
		1) ||
	    (len && EVP_EncryptUpdate(a->seal, out, &n, pt, (int)len) != 1) ||
	    EVP_EncryptFinal_ex(a->seal, out + len, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(a->seal, EVP_CTRL_AEAD_GET_TAG,
		SCL_AEAD_TAG_BYTES, out + len) != 1)
		return scl_err_set(SCL_ECRYPTO, "%s seal failed",
		    scl_aead_suite_name(a->suite));
	return SCL_OK;
}

enum scl_err
scl_aead_open(struct scl_aead *a, uint8_t *out,
    const uint8_t nonce[SCL_AEAD_NONCE_BYTES], const void *ad, size_t ad_len,
    const void *ct, size_t ct_len)
{
	uint8_t tag[SCL_AEAD_TAG_BYTES];
	size_t len;
	int n;

	if (ct_len < SCL_AEAD_TAG_BYTES)
		return scl_err_set(SCL_EFORMAT,
		    "ciphertext of %zu bytes is shorter than its tag", ct_len);
	if (ct_len > INT_MAX - 64 || ad_len > INT_MAX)
		return scl_err_set(SCL_ELIMIT, "AEAD input of %zu bytes",
		    ct_len);
	len = ct_len - SCL_AEAD_TAG_BYTES;
	memcpy(tag, (const uint8_t *)ct + len, sizeof(tag));
	if (EVP_DecryptInit_ex(a->open, NULL, NULL, NULL, nonce) != 1 ||
	    (ad_len && EVP_DecryptUpdate(a->open, NULL, &n, ad, (int)ad_len) !=
		1) ||
	    (len && EVP_DecryptUpdate(a->open, out, &n, ct, (int)len) != 1) ||
	    EVP_CIPHER_CTX_ctrl(a->open, EVP_CTRL_AEAD_SET_TAG,
		SCL_AEAD_TAG_BYTES, tag) != 1)
		return scl_err_set(SCL_ECRYPTO, "%s open failed",
		    scl_aead_suite_name(a->suite));
	if (EVP_DecryptFinal_ex(a->open, out + len, &n) != 1) {
		scl_wipe(out, len);
		return scl_err_set(SCL_EVERIFY,
		    "authentication tag does not match (%s)",
		    scl_aead_suite_name(a->suite));
	}
	return SCL_OK;
}

/* Checks both suites against each other's round trip and against a
 * flipped bit once per process, so a broken OpenSSL build fails loudly at
 * start-up instead of silently producing unreadable capsules. */
enum scl_err
scl_crypto__aead_selftest(void)
{
	static const enum scl_aead_suite suites[] = { SCL_AEAD_AES256GCM,
		SCL_AEAD_CHACHA20POLY1305 };
	uint8_t key[32] = { 1 }, nonce[12] = { 2 }, pt[40] = { 3 };
	uint8_t ct[sizeof(pt) + SCL_AEAD_TAG_BYTES], back[sizeof(pt)];
	enum scl_err r = SCL_OK;

	for (size_t i = 0; i < 2 && r == SCL_OK; i++) {
		struct scl_aead *a;
		if ((r = scl_aead_new(&a, suites[i], key)) != SCL_OK)
			break;
		if ((r = scl_aead_seal(a, ct, nonce, "ad", 2, pt,
			 sizeof(pt))) == SCL_OK &&
		    (r = scl_aead_open(a, back, nonce, "ad", 2, ct,
			 sizeof(ct))) == SCL_OK &&
		    memcmp(back, pt, sizeof(pt)) != 0)
			r = scl_err_set(SCL_ECRYPTO, "AEAD self-test mismatch");
		ct[0] ^= 1;
		if (r == SCL_OK && scl_aead_open(a, back, nonce, "ad", 2, ct,
					sizeof(ct)) != SCL_EVERIFY)
			r = scl_err_set(SCL_ECRYPTO,
			    "AEAD self-test accepted a forgery");
		scl_aead_free(a);
	}
	if (r == SCL_OK)
		scl_err_clear();
	return r;
}
