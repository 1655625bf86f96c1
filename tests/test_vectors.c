/*
 * test_vectors.c - known-answer vectors of format v1, with records v1,
 * v2 and v3.
 *
 * Fixed inputs (seeds, keys, times, salts) must produce exactly the bytes
 * in tests/vectors/capsule_v1.txt (records v1), records_v2.txt and
 * records_v3.txt (the same capsule written with records v2 and v3),
 * which docs/FORMAT.md reproduces; a conforming implementation in any language can check
 * itself against them.  Beyond the frozen bytes, the test cross-checks
 * what it can against independent implementations: the owner key against
 * RFC 8032, every sealed body against libsodium's own AES-256-GCM and
 * ChaCha20-Poly1305, every record v2 hash against libsodium's SHA-256,
 * the heartbeat signature with libsodium directly.
 *
 * SCL_WRITE_VECTORS=dir regenerates the files (only when a format
 * version changes, deliberately).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "helpers.h"

#ifndef SCL_VECTORS_DIR
#error "SCL_VECTORS_DIR must name tests/vectors"
#endif

struct kv {
	char key[64];
	char *hex;
};

static struct kv got[64];
static size_t n_got;

static void
emit(const char *key, const uint8_t *p, size_t n)
{
	struct kv *e = &got[n_got++];
	assert_true(n_got < 64);
	snprintf(e->key, sizeof(e->key), "%s", key);
	e->hex = malloc(2 * n + 1);
	scl_hex_encode(e->hex, p, n);
}

static void
check_libsodium_seal(enum scl_aead_suite suite, const uint8_t key[32],
    const struct scl_record *r, const char *payload)
{
	size_t n = strlen(payload);
	uint8_t *ct = malloc(n + 16), nonce[12];
	unsigned long long clen;

	/* v1, v2: the stored nonce; v3: the seqno and four zero bytes */
	memset(nonce, 0, sizeof(nonce));
	if (r->nonce)
		memcpy(nonce, r->nonce, 12);
	else
		for (int i = 0; i < 8; i++)
			nonce[i] = (uint8_t)(r->seqno >> (8 * i));
	if (suite == SCL_AEAD_CHACHA20POLY1305) {
		crypto_aead_chacha20poly1305_ietf_encrypt(ct, &clen,
		    (const uint8_t *)payload, n, r->header.ptr, r->header.len,
		    NULL, nonce, key);
	} else if (crypto_aead_aes256gcm_is_available()) {
		crypto_aead_aes256gcm_encrypt(ct, &clen, (const uint8_t *)payload,
		    n, r->header.ptr, r->header.len, NULL, nonce, key);
	} else {
		free(ct);
		return;
	}
	assert_int_equal(clen, r->body.len);
	assert_memory_equal(ct, r->body.ptr, clen);
	free(ct);
}

/* Record v2's hash, computed with libsodium's SHA-256 from the bytes. */
static void
check_libsodium_sha256(const struct scl_record *r, const uint8_t hash[32])
{
	crypto_hash_sha256_state st;
	uint8_t body_hash[32], want[32];

	crypto_hash_sha256(body_hash, r->body.ptr, r->body.len);
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, r->header.ptr, r->header.len);
	crypto_hash_sha256_update(&st, body_hash, 32);
	crypto_hash_sha256_final(&st, want);
	assert_memory_equal(hash, want, 32);
}

static void
generate(enum scl_aead_suite suite, uint16_t record_version)
{
	static const char *payloads[3] = { "alpha", "bravo", "" };
	uint8_t seed[32], rfc_pk[32], data_key[32], subkey[32], name[32];
	uint8_t hash[32];
	struct scl_sign_key owner;
	struct scl_capsule_meta m;
	struct scl_capsule_head head;
	struct scl_capsule_writer *w;
	struct scl_capsule_batch b;
	struct scl_buf meta;
	char key[64];
	const char *sname = scl_aead_suite_name(suite);

	assert_scl_ok(scl_hex_decode(seed, 32,
	    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"));
	assert_scl_ok(scl_hex_decode(rfc_pk, 32,
	    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"));
	scl_sign_key_from_seed(&owner, seed);
	assert_memory_equal(owner.public_key, rfc_pk, 32);
	for (int i = 0; i < 32; i++)
		data_key[i] = (uint8_t)i;
	memset(&m, 0, sizeof(m));
	memcpy(m.owner, owner.public_key, 32);
	m.created_us = 1764000000000000ull;
	m.aead = (uint8_t)suite;
	m.replicas = 3;
	m.write_quorum = 2;
	m.n_servers = 3;
	snprintf(m.label, sizeof(m.label), "scl known-answer test");
	snprintf(m.servers[0], sizeof(m.servers[0]), "tcp://10.0.0.1:7400");
	snprintf(m.servers[1], sizeof(m.servers[1]), "tcp://10.0.0.2:7400");
	snprintf(m.servers[2], sizeof(m.servers[2]), "tcp://10.0.0.3:7400");
	scl_buf_init(&meta);
	assert_scl_ok(scl_capsule_meta_encode(&meta, &m, &owner));
	scl_capsule_name(name, scl_buf_slice(&meta));
	snprintf(key, sizeof(key), "%s.owner_public", sname);
	emit(key, owner.public_key, 32);
	snprintf(key, sizeof(key), "%s.metadata", sname);
	emit(key, meta.ptr, meta.len);
	snprintf(key, sizeof(key), "%s.name", sname);
	emit(key, name, 32);
	scl_capsule_writer_key(subkey, data_key, name, owner.public_key, 1);
	snprintf(key, sizeof(key), "%s.writer_key", sname);
	emit(key, subkey, 32);

	memset(&head, 0, sizeof(head));
	assert_scl_ok(scl_capsule_writer_new(&w, name, suite, &owner, 1,
	    data_key, &head));
	assert_scl_ok(scl_capsule_writer_set_record_version(w, record_version));
	if (record_version >= 3) {
		/* The writer's key salt, fixed here; random in real use. */
		uint8_t ks[SCL_RECORD_KEY_SALT_BYTES];
		for (int i = 0; i < SCL_RECORD_KEY_SALT_BYTES; i++)
			ks[i] = (uint8_t)(0xa0 + i);
		assert_scl_ok(scl_capsule_writer_set_key_salt(w, ks));
		scl_capsule_record_key(subkey, data_key, name, owner.public_key,
		    1, ks);
		snprintf(key, sizeof(key), "%s.record_key", sname);
		emit(key, subkey, 32);
	}
	scl_capsule_batch_init(&b);
	for (int i = 0; i < 3; i++) {
		uint8_t salt[4] = { (uint8_t)(4 * i + 1), (uint8_t)(4 * i + 2),
			(uint8_t)(4 * i + 3), (uint8_t)(4 * i + 4) };
		struct scl_record r;
		assert_scl_ok(scl_capsule_writer_append_ex(w, &b,
		    SCL_RECORD_DATA,
		    scl_slice_of(payloads[i], strlen(payloads[i])),
		    (uint64_t)(i + 1), salt, scl_slice_of(NULL, 0)));
		assert_scl_ok(scl_capsule_record_decode(&r,
		    scl_capsule_batch_record(&b, (size_t)i)));
		assert_int_equal(r.version, record_version);
		check_libsodium_seal(suite, subkey, &r, payloads[i]);
		assert_scl_ok(scl_capsule_record_hash(hash, &r));
		assert_memory_equal(hash, b.hashes[i], 32);
		if (record_version >= 2)
			check_libsodium_sha256(&r, hash);
		snprintf(key, sizeof(key), "%s.record%d", sname, i + 1);
		emit(key, scl_capsule_batch_record(&b, (size_t)i).ptr,
		    scl_capsule_batch_record(&b, (size_t)i).len);
		snprintf(key, sizeof(key), "%s.record%d_hash", sname, i + 1);
		emit(key, hash, 32);
	}
	assert_scl_ok(scl_capsule_writer_seal_batch(w, &b,
	    1764000000000001ull));
	{
		/* The heartbeat's signature, checked by libsodium directly
		 * over the documented message: context, NUL, bytes 0..115. */
		static const char ctx[] = "SCL heartbeat v1";
		uint8_t msg[sizeof(ctx) + 116];
		memcpy(msg, ctx, sizeof(ctx));
		memcpy(msg + sizeof(ctx), b.heartbeat.ptr, 116);
		assert_int_equal(crypto_sign_verify_detached(b.heartbeat.ptr +
		    116, msg, sizeof(msg), owner.public_key), 0);
	}
	snprintf(key, sizeof(key), "%s.heartbeat", sname);
	emit(key, b.heartbeat.ptr, b.heartbeat.len);
	scl_capsule_batch_dispose(&b);
	scl_capsule_writer_free(w);
	scl_buf_dispose(&meta);
	scl_sign_key_wipe(&owner);
}

/* Generates both suites' vectors with records of @record_version and
 * compares them with @file under SCL_VECTORS_DIR (or writes it). */
static void
check_vectors(uint16_t record_version, const char *file, const char *title)
{
	const char *dir = getenv("SCL_WRITE_VECTORS");
	char line[8192], path[4096];
	FILE *f;
	size_t matched = 0;

	n_got = 0;
	generate(SCL_AEAD_AES256GCM, record_version);
	generate(SCL_AEAD_CHACHA20POLY1305, record_version);
	snprintf(path, sizeof(path), "%s/%s", dir ? dir : SCL_VECTORS_DIR,
	    file);
	if (dir) {
		f = fopen(path, "w");
		assert_non_null(f);
		fprintf(f, "# %s (docs/FORMAT.md); hex.\n", title);
		for (size_t i = 0; i < n_got; i++)
			fprintf(f, "%s = %s\n", got[i].key, got[i].hex);
		fclose(f);
		return;
	}
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char *eq = strstr(line, " = ");
		size_t i;
		if (line[0] == '#' || eq == NULL)
			continue;
		*eq = '\0';
		eq += 3;
		eq[strcspn(eq, "\n")] = '\0';
		for (i = 0; i < n_got && strcmp(got[i].key, line) != 0; i++)
			;
		if (i == n_got)
			fail_msg("vector file has unknown entry %s", line);
		if (strcmp(got[i].hex, eq) != 0)
			fail_msg("%s differs:\n  want %s\n  got  %s", line, eq,
			    got[i].hex);
		matched++;
	}
	fclose(f);
	assert_int_equal(matched, n_got);
	for (size_t i = 0; i < n_got; i++)
		free(got[i].hex);
}

static void
test_vectors_records_v1_match_the_frozen_format(void **state)
{
	(void)state;
	check_vectors(1, "capsule_v1.txt", "SCL format v1 known-answer "
					   "vectors");
}

static void
test_vectors_records_v2_match_the_frozen_format(void **state)
{
	(void)state;
	check_vectors(2, "records_v2.txt", "SCL format v1 known-answer "
					   "vectors, records v2 (SHA-256)");
}

static void
test_vectors_records_v3_match_the_frozen_format(void **state)
{
	(void)state;
	check_vectors(3, "records_v3.txt", "SCL format v1 known-answer "
					   "vectors, records v3 (SHA-256, "
					   "salted record keys)");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors_records_v1_match_the_frozen_format),
		cmocka_unit_test(test_vectors_records_v2_match_the_frozen_format),
		cmocka_unit_test(test_vectors_records_v3_match_the_frozen_format),
	};
	if (scl_init() != SCL_OK)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
