/*
 * test_crypto.c - the crypto wrappers against published vectors and
 * against libsodium's independent implementations of the same AEADs.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "helpers.h"

static void
unhex(uint8_t *out, size_t n, const char *hex)
{
	assert_scl_ok(scl_hex_decode(out, n, hex));
}

static void
test_crypto_blake2b_vectors(void **state)
{
	uint8_t out[32], want[32];
	struct scl_hash_state st;

	(void)state;
	/* BLAKE2b-256 of "" and "abc" (also `b2sum -l 256`). */
	scl_hash(out, "", 0);
	unhex(want, 32, "0e5751c026e543b2e8ab2eb06099daa1"
			"d1e5df47778f7787faab45cdf12fe3a8");
	assert_memory_equal(out, want, 32);
	unhex(want, 32, "bddd813c634239723171ef3fee98579b"
			"94964e3bb1cb3e427262c8c068d52319");
	scl_hash(out, "abc", 3);
	assert_memory_equal(out, want, 32);
	scl_hash_init(&st);
	scl_hash_update(&st, "a", 1);
	scl_hash_update(&st, "bc", 2);
	scl_hash_final(&st, out);
	assert_memory_equal(out, want, 32);
}

static void
test_crypto_sha256_vectors(void **state)
{
	uint8_t out[32], want[32], other[32];
	static uint8_t buf[70000];

	(void)state;
	/* FIPS 180-2 appendix B.1 ("abc") and the empty message. */
	unhex(want, 32, "ba7816bf8f01cfea414140de5dae2223"
			"b00361a396177a9cb410ff61f20015ad");
	assert_scl_ok(scl_sha256(out,
	    (struct scl_slice[]){ scl_slice_of("abc", 3) }, 1));
	assert_memory_equal(out, want, 32);
	assert_scl_ok(scl_sha256(out, (struct scl_slice[]){
	    scl_slice_of("a", 1), scl_slice_of("", 0), scl_slice_of("bc", 2) },
	    3));
	assert_memory_equal(out, want, 32);
	unhex(want, 32, "e3b0c44298fc1c149afbf4c8996fb924"
			"27ae41e4649b934ca495991b7852b855");
	assert_scl_ok(scl_sha256(out, NULL, 0));
	assert_memory_equal(out, want, 32);
	/* Against libsodium's own (portable) SHA-256, across block edges
	 * and split points. */
	scl_random(buf, sizeof(buf));
	for (size_t len = 0; len < sizeof(buf); len = len * 3 + 1) {
		size_t cut = len / 3;
		crypto_hash_sha256(want, buf, len);
		assert_scl_ok(scl_sha256(out,
		    (struct scl_slice[]){ scl_slice_of(buf, len) }, 1));
		assert_memory_equal(out, want, 32);
		assert_scl_ok(scl_sha256(other, (struct scl_slice[]){
		    scl_slice_of(buf, cut), scl_slice_of(buf + cut, len - cut) },
		    2));
		assert_memory_equal(other, want, 32);
	}
}

static void
test_crypto_ed25519_rfc8032(void **state)
{
	uint8_t seed[32], pk[32], sig[64], want[64];
	struct scl_sign_key k;

	(void)state;
	/* RFC 8032 section 7.1, TEST 1 (empty message). */
	unhex(seed, 32, "9d61b19deffd5a60ba844af492ec2cc4"
			"4449c5697b326919703bac031cae7f60");
	unhex(pk, 32, "d75a980182b10ab7d54bfed3c964073a"
		      "0ee172f3daa62325af021a68f707511a");
	unhex(want, 64, "e5564300c360ac729086e2cc806e828a"
			"84877f1eb8e5d974d873e06522490155"
			"5fb8821590a33bacc61e39701cf9b46b"
			"d25bf5f0595bbe24655141438e7a100b");
	scl_sign_key_from_seed(&k, seed);
	assert_memory_equal(k.public_key, pk, 32);
	scl_sign(sig, &k, "", 0);
	assert_memory_equal(sig, want, 64);
	assert_scl_ok(scl_sign_verify(sig, pk, "", 0));
	sig[10] ^= 1;
	assert_scl_fails(scl_sign_verify(sig, pk, "", 0), SCL_EVERIFY,
	    "bad signature");
	scl_sign_key_wipe(&k);
	assert_true(sodium_is_zero(k.secret, sizeof(k.secret)));
}

static void
test_crypto_chacha20poly1305_rfc8439(void **state)
{
	static const char pt[] = "Ladies and Gentlemen of the class of '99: "
				 "If I could offer you only one tip for the "
				 "future, sunscreen would be it.";
	uint8_t key[32], nonce[12], ad[12], tag[16];
	uint8_t ct[sizeof(pt) - 1 + 16], back[sizeof(pt) - 1];
	struct scl_aead *a;

	(void)state;
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(0x80 + i);
	unhex(nonce, 12, "070000004041424344454647");
	unhex(ad, 12, "50515253c0c1c2c3c4c5c6c7");
	unhex(tag, 16, "1ae10b594f09e26a7e902ecbd0600691");
	assert_scl_ok(scl_aead_new(&a, SCL_AEAD_CHACHA20POLY1305, key));
	assert_scl_ok(scl_aead_seal(a, ct, nonce, ad, 12, pt, sizeof(pt) - 1));
	assert_memory_equal(ct + sizeof(pt) - 1, tag, 16);
	assert_scl_ok(scl_aead_open(a, back, nonce, ad, 12, ct, sizeof(ct)));
	assert_memory_equal(back, pt, sizeof(pt) - 1);
	scl_aead_free(a);
}

/* OpenSSL (ours) and libsodium (independent) must agree byte for byte. */
static void
test_crypto_aead_matches_libsodium(void **state)
{
	uint8_t key[32], nonce[12], ad[40], pt[1000];
	uint8_t ours[sizeof(pt) + 16], theirs[sizeof(pt) + 16];
	unsigned long long n;
	struct scl_aead *a;

	(void)state;
	randombytes_buf(key, sizeof(key));
	randombytes_buf(nonce, sizeof(nonce));
	randombytes_buf(ad, sizeof(ad));
	randombytes_buf(pt, sizeof(pt));
	assert_scl_ok(scl_aead_new(&a, SCL_AEAD_CHACHA20POLY1305, key));
	assert_scl_ok(scl_aead_seal(a, ours, nonce, ad, sizeof(ad), pt,
	    sizeof(pt)));
	crypto_aead_chacha20poly1305_ietf_encrypt(theirs, &n, pt, sizeof(pt),
	    ad, sizeof(ad), NULL, nonce, key);
	assert_int_equal(n, sizeof(theirs));
	assert_memory_equal(ours, theirs, sizeof(ours));
	scl_aead_free(a);
	if (!crypto_aead_aes256gcm_is_available()) {
		print_message("libsodium AES-GCM unavailable on this CPU; "
			      "AES-GCM cross-check skipped\n");
		return;
	}
	assert_scl_ok(scl_aead_new(&a, SCL_AEAD_AES256GCM, key));
	assert_scl_ok(scl_aead_seal(a, ours, nonce, ad, sizeof(ad), pt,
	    sizeof(pt)));
	crypto_aead_aes256gcm_encrypt(theirs, &n, pt, sizeof(pt), ad,
	    sizeof(ad), NULL, nonce, key);
	assert_memory_equal(ours, theirs, sizeof(ours));
	scl_aead_free(a);
}

static void
test_crypto_aead_rejects_any_change(void **state)
{
	static const enum scl_aead_suite suites[] = { SCL_AEAD_AES256GCM,
		SCL_AEAD_CHACHA20POLY1305 };
	uint8_t key[32] = { 1 }, nonce[12] = { 2 }, ad[8] = "header!";
	uint8_t pt[64], ct[64 + 16], back[64];

	(void)state;
	memset(pt, 'p', sizeof(pt));
	for (int s = 0; s < 2; s++) {
		struct scl_aead *a;
		assert_scl_ok(scl_aead_new(&a, suites[s], key));
		assert_scl_ok(scl_aead_seal(a, ct, nonce, ad, 8, pt, 64));
		for (size_t i = 0; i < sizeof(ct); i++) {
			ct[i] ^= 0x20;
			assert_scl_fails(scl_aead_open(a, back, nonce, ad, 8, ct,
			    sizeof(ct)), SCL_EVERIFY, "authentication tag");
			ct[i] ^= 0x20;
		}
		ad[0] ^= 1;
		assert_scl_fails(scl_aead_open(a, back, nonce, ad, 8, ct,
		    sizeof(ct)), SCL_EVERIFY, NULL);
		ad[0] ^= 1;
		assert_scl_fails(scl_aead_open(a, back, nonce, ad, 8, ct, 15),
		    SCL_EFORMAT, "shorter than its tag");
		assert_scl_ok(scl_aead_open(a, back, nonce, ad, 8, ct,
		    sizeof(ct)));
		assert_memory_equal(back, pt, 64);
		scl_aead_free(a);
	}
}

static void
test_crypto_box_wraps_for_one_key(void **state)
{
	struct scl_box_key k, other;
	uint8_t secret[32] = { 9 }, sealed[32 + SCL_BOX_SEAL_OVERHEAD],
		back[32];

	(void)state;
	scl_box_keygen(&k);
	scl_box_keygen(&other);
	assert_scl_ok(scl_box_seal(sealed, secret, 32, k.public_key));
	assert_scl_fails(scl_box_open(back, sealed, sizeof(sealed), &other),
	    SCL_EVERIFY, "does not open");
	assert_scl_ok(scl_box_open(back, sealed, sizeof(sealed), &k));
	assert_memory_equal(back, secret, 32);
	assert_scl_fails(scl_box_open(back, sealed, 10, &k), SCL_EFORMAT,
	    NULL);
	scl_box_key_wipe(&k);
	scl_box_key_wipe(&other);
}

static void
test_crypto_kdf_separates(void **state)
{
	uint8_t key[32] = { 3 }, a[32], b[32], c[32];

	(void)state;
	scl_kdf(a, key, "label one", "m", 1);
	scl_kdf(b, key, "label two", "m", 1);
	scl_kdf(c, key, "label one", "n", 1);
	assert_memory_not_equal(a, b, 32);
	assert_memory_not_equal(a, c, 32);
	scl_kdf(b, key, "label one", "m", 1);
	assert_memory_equal(a, b, 32);
}

static void
flip_file_byte(const char *path, long off)
{
	FILE *f = fopen(path, "r+b");
	int c;

	assert_non_null(f);
	assert_int_equal(fseek(f, off, SEEK_SET), 0);
	c = fgetc(f);
	assert_int_equal(fseek(f, off, SEEK_SET), 0);
	fputc(c ^ 1, f);
	fclose(f);
}

static void
test_crypto_keyfile_rules(void **state)
{
	char *dir = test_tmpdir("keyfile"), path[4200];
	uint8_t secret[32];
	struct scl_buf out;
	struct stat st;

	(void)state;
	scl_buf_init(&out);
	randombytes_buf(secret, sizeof(secret));
	snprintf(path, sizeof(path), "%s/id.key", dir);
	assert_scl_fails(scl_keyfile_read(&out, path, SCL_KEYFILE_IDENTITY),
	    SCL_ENOTFOUND, "id.key");
	assert_scl_ok(scl_keyfile_write(path, SCL_KEYFILE_IDENTITY,
	    scl_slice_of(secret, 32)));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_scl_ok(scl_keyfile_read(&out, path, SCL_KEYFILE_IDENTITY));
	assert_int_equal(out.len, 32);
	assert_memory_equal(out.ptr, secret, 32);
	/* Never overwritten. */
	assert_scl_fails(scl_keyfile_write(path, SCL_KEYFILE_IDENTITY,
	    scl_slice_of(secret, 32)), SCL_EEXIST, "refusing to overwrite");
	/* Wrong kind. */
	assert_scl_fails(scl_keyfile_read(&out, path, SCL_KEYFILE_KEYRING),
	    SCL_EINVAL, "holds a signing identity, not a capsule keyring");
	/* Readable by others. */
	chmod(path, 0644);
	assert_scl_fails(scl_keyfile_read(&out, path, SCL_KEYFILE_IDENTITY),
	    SCL_EINVAL, "mode 0644");
	chmod(path, 0600);
	/* Bit rot in the body, then an unknown version. */
	flip_file_byte(path, 20);
	assert_scl_fails(scl_keyfile_read(&out, path, SCL_KEYFILE_IDENTITY),
	    SCL_EVERIFY, "checksum");
	flip_file_byte(path, 20);
	flip_file_byte(path, 4);
	assert_scl_fails(scl_keyfile_read(&out, path, SCL_KEYFILE_IDENTITY),
	    SCL_EVERSION, "version 0");
	flip_file_byte(path, 4);
	/* Truncated. */
	assert_int_equal(truncate(path, 30), 0);
	assert_scl_fails(scl_keyfile_read(&out, path, SCL_KEYFILE_IDENTITY),
	    SCL_EFORMAT, "truncated");
	scl_buf_dispose_secret(&out);
	test_rmdir(dir);
	free(dir);
}

static void
test_crypto_ct_equal(void **state)
{
	(void)state;
	assert_true(scl_ct_equal("abcd", "abcd", 4));
	assert_false(scl_ct_equal("abcd", "abce", 4));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crypto_blake2b_vectors),
		cmocka_unit_test(test_crypto_sha256_vectors),
		cmocka_unit_test(test_crypto_ed25519_rfc8032),
		cmocka_unit_test(test_crypto_chacha20poly1305_rfc8439),
		cmocka_unit_test(test_crypto_aead_matches_libsodium),
		cmocka_unit_test(test_crypto_aead_rejects_any_change),
		cmocka_unit_test(test_crypto_box_wraps_for_one_key),
		cmocka_unit_test(test_crypto_kdf_separates),
		cmocka_unit_test(test_crypto_keyfile_rules),
		cmocka_unit_test(test_crypto_ct_equal),
	};
	if (scl_init() != SCL_OK)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
