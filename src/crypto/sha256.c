/*
 * sha256.c - SHA-256 through OpenSSL's EVP (the record hash of records
 * v2; docs/FORMAT.md "Choice of record hash").
 *
 * The digest is fetched once per process: an implicit fetch by
 * EVP_sha256() costs ~180 ns per call, more than hashing a 200-byte
 * header.  The fetched object is immutable and shared by every thread.
 * scl_crypto_init() fetches it (through the self-test), so that a
 * sandboxed core never has to.
 */
#include <pthread.h>
#include <string.h>

#include <openssl/evp.h>

#include "crypto_int.h"

static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_fetched;	/* set once, then only read */

static void
sha256_fetch(void)
{
	sha256_fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *
sha256_md(void)
{
	(void)pthread_once(&sha256_once, sha256_fetch);
	/* A failed fetch leaves the implicit one: slower, same result. */
	return sha256_fetched ? sha256_fetched : EVP_sha256();
}

enum scl_err
scl_sha256(uint8_t out[SCL_HASH_BYTES], const struct scl_slice *parts,
    size_t n)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned len = 0;
	int ok;

	if (ctx == NULL)
		return scl_err_set(SCL_ENOMEM, "cannot allocate a SHA-256 "
					       "context");
	ok = EVP_DigestInit_ex(ctx, sha256_md(), NULL);
	for (size_t i = 0; ok && i < n; i++)
		ok = parts[i].len == 0 ||
		    EVP_DigestUpdate(ctx, parts[i].ptr, parts[i].len);
	ok = ok && EVP_DigestFinal_ex(ctx, out, &len) && len == SCL_HASH_BYTES;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return scl_err_set(SCL_ECRYPTO, "SHA-256 failed in OpenSSL");
	return SCL_OK;
}

enum scl_err
scl_crypto__sha256_selftest(void)
{
	/* FIPS 180-2 appendix B.1 */
	static const uint8_t abc[SCL_HASH_BYTES] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
		0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
		0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
		0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
	};
	uint8_t out[SCL_HASH_BYTES];
	enum scl_err e;

	if ((e = scl_sha256(out, (struct scl_slice[]){
		 scl_slice_of("abc", 3) }, 1)) != SCL_OK)
		return e;
	if (memcmp(out, abc, sizeof(abc)) != 0)
		return scl_err_set(SCL_ECRYPTO, "OpenSSL's SHA-256 fails its "
					      "known answer");
	return SCL_OK;
}
