/*
 * test_capsule.c - DataCapsule format: metadata, certificates, chains,
 * reads, proofs, equivocation, and the rejections of bad input.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

static void
test_capsule_meta_round_trip_and_name(void **state)
{
	struct tcap t;
	struct scl_capsule_meta m;
	uint8_t name[32];

	(void)state;
	tcap_init(&t, SCL_AEAD_AES256GCM, 1);
	assert_scl_ok(scl_capsule_meta_decode(&m, scl_buf_slice(&t.meta_bytes)));
	assert_memory_equal(m.owner, t.owner.public_key, 32);
	assert_string_equal(m.label, "test capsule 1");
	assert_int_equal(m.aead, SCL_AEAD_AES256GCM);
	scl_hash(name, t.meta_bytes.ptr, t.meta_bytes.len);
	assert_memory_equal(name, t.name, 32);
	assert_scl_ok(scl_capsule_meta_check(&m, t.name,
	    scl_buf_slice(&t.meta_bytes)));
	name[0] ^= 1;
	assert_scl_fails(scl_capsule_meta_check(&m, name,
	    scl_buf_slice(&t.meta_bytes)), SCL_EVERIFY, "not to the capsule name");
	tcap_dispose(&t);
}

static void
test_capsule_meta_rejects_every_change(void **state)
{
	struct tcap t;
	struct scl_capsule_meta m;
	struct scl_buf b;

	(void)state;
	tcap_init(&t, SCL_AEAD_CHACHA20POLY1305, 2);
	scl_buf_init(&b);
	assert_scl_ok(scl_buf_set(&b, scl_buf_slice(&t.meta_bytes)));
	for (size_t i = 0; i < b.len; i++) {
		b.ptr[i] ^= 0x04;
		assert_int_not_equal(scl_capsule_meta_decode(&m,
		    scl_buf_slice(&b)), SCL_OK);
		b.ptr[i] ^= 0x04;
	}
	for (size_t n = 0; n < b.len; n++)
		assert_int_not_equal(scl_capsule_meta_decode(&m,
		    scl_slice_of(b.ptr, n)), SCL_OK);
	b.ptr[4] = 2; /* version */
	assert_scl_fails(scl_capsule_meta_decode(&m, scl_buf_slice(&b)),
	    SCL_EVERSION, "version 2");
	scl_buf_dispose(&b);
	tcap_dispose(&t);
}

static void
test_capsule_meta_validates_policy(void **state)
{
	struct tcap t;
	struct scl_capsule_meta m;
	struct scl_buf b;

	(void)state;
	tcap_init(&t, SCL_AEAD_AES256GCM, 3);
	scl_buf_init(&b);
	m = t.meta;
	m.write_quorum = 2;
	assert_scl_fails(scl_capsule_meta_encode(&b, &m, &t.owner), SCL_EINVAL,
	    "1 <= W <= N");
	m = t.meta;
	m.aead = 9;
	assert_scl_fails(scl_capsule_meta_encode(&b, &m, &t.owner), SCL_EINVAL,
	    "unknown AEAD");
	m = t.meta;
	m.owner[0] ^= 1;
	assert_scl_fails(scl_capsule_meta_encode(&b, &m, &t.owner), SCL_EINVAL,
	    "different owner");
	m = t.meta;
	m.replicas = 3;
	m.write_quorum = 2;
	m.n_servers = 3;
	snprintf(m.servers[0], sizeof(m.servers[0]), "tcp://10.0.0.1:7400");
	snprintf(m.servers[1], sizeof(m.servers[1]), "tcp://10.0.0.2:7400");
	snprintf(m.servers[2], sizeof(m.servers[2]), "tcp://10.0.0.3:7400");
	assert_scl_ok(scl_capsule_meta_encode(&b, &m, &t.owner));
	assert_scl_ok(scl_capsule_meta_decode(&m, scl_buf_slice(&b)));
	assert_string_equal(m.servers[2], "tcp://10.0.0.3:7400");
	scl_buf_dispose(&b);
	tcap_dispose(&t);
}

struct collect {
	uint64_t next;
	uint64_t count;
};

static enum scl_err
collect_payload(void *ctx, const struct scl_record *r, struct scl_slice p)
{
	struct collect *c = ctx;
	char want[64];
	int n = snprintf(want, sizeof(want), "payload-%llu",
	    (unsigned long long)r->seqno);

	assert_int_equal(r->seqno, c->next);
	assert_int_equal(p.len, (size_t)n);
	assert_memory_equal(p.ptr, want, (size_t)n);
	c->next++;
	c->count++;
	return SCL_OK;
}

static void
test_capsule_chain_verifies_and_reads_in_order(void **state)
{
	struct tcap t;
	struct scl_capsule_source src;
	struct scl_capsule_opener *o;
	struct scl_capsule_verify_stats st;
	static const uint64_t ranges[][2] = { { 1, 1 }, { 1, 5000 },
		{ 4095, 4098 }, { 17, 17 }, { 4990, 5000 }, { 2, 4999 } };

	(void)state;
	tcap_init(&t, SCL_AEAD_AES256GCM, 4);
	tcap_append(&t, 5000, 7);
	src = mem_src_source(&t.src);
	assert_scl_ok(scl_capsule_opener_new(&o, SCL_AEAD_AES256GCM, &t.keys));
	memset(&st, 0, sizeof(st));
	assert_scl_ok(scl_capsule_verify_chain(&st, &src, t.name, &t.meta,
	    t.owner.public_key, 5000, o));
	assert_int_equal(st.records, 5000);
	assert_int_equal(st.opened, 5000);
	assert_int_equal(st.heartbeats, (5000 + 6) / 7);
	for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
		struct collect c = { ranges[i][0], 0 };
		assert_scl_ok(scl_capsule_read_range(&src, t.name, t.meta.owner,
		    t.owner.public_key, ranges[i][0], ranges[i][1], o,
		    collect_payload, &c));
		assert_int_equal(c.count, ranges[i][1] - ranges[i][0] + 1);
	}
	scl_capsule_opener_free(o);
	tcap_dispose(&t);
}

/* Verifying the owner's chain finds its REVOKE records; two of one
 * writer leave the tighter one, and a reader learns which record said so. */
static void
test_capsule_verify_collects_revocations(void **state)
{
	struct tcap t;
	struct scl_capsule_source src;
	struct scl_capsule_verify_stats st;
	struct scl_capsule_revocations revs = { 0 };
	const struct scl_capsule_revoked *rv;
	struct scl_capsule_batch b;
	struct scl_revocation r;
	struct scl_buf body;
	uint8_t other[SCL_WRITER_BYTES];
	static const uint64_t max[] = { 9, 3, 7 };

	(void)state;
	tcap_init(&t, SCL_AEAD_AES256GCM, 5);
	tcap_append(&t, 4, 4);
	scl_capsule_batch_init(&b);
	scl_buf_init(&body);
	memset(r.writer, 0x5e, sizeof(r.writer));
	for (size_t i = 0; i < 3; i++) {
		r.max_seqno = max[i];
		scl_buf_clear(&body);
		assert_scl_ok(scl_revocation_encode(&body, &r));
		assert_scl_ok(scl_capsule_writer_append(t.w, &b,
		    SCL_RECORD_REVOKE, scl_buf_slice(&body)));
	}
	assert_scl_ok(scl_capsule_writer_seal_batch(t.w, &b,
	    1764000000000000ull));
	mem_src_add_batch(&t.src, &b);
	tcap_append(&t, 2, 2);
	src = mem_src_source(&t.src);

	memset(&st, 0, sizeof(st));
	assert_scl_ok(scl_capsule_verify_chain(&st, &src, t.name, &t.meta,
	    t.owner.public_key, 9, NULL));	/* without: nothing collected */
	memset(&st, 0, sizeof(st));
	st.revocations = &revs;
	assert_scl_ok(scl_capsule_verify_chain(&st, &src, t.name, &t.meta,
	    t.owner.public_key, 9, NULL));
	assert_int_equal(revs.n, 1);
	assert_non_null(rv = scl_capsule_revocations_find(&revs, r.writer));
	assert_int_equal(rv->max_seqno, 3);
	assert_int_equal(rv->by_seqno, 6);	/* records 5, 6, 7 revoke */
	memset(other, 0x5f, sizeof(other));
	assert_null(scl_capsule_revocations_find(&revs, other));
	scl_capsule_revocations_dispose(&revs);
	scl_buf_dispose(&body);
	scl_capsule_batch_dispose(&b);
	tcap_dispose(&t);
}

static void
test_capsule_wrong_key_does_not_decrypt(void **state)
{
	struct tcap t;
	struct scl_capsule_source src;
	struct scl_capsule_opener *o;
	struct scl_capsule_verify_stats st;
	struct scl_capsule_keyring *wrong = calloc(1, sizeof(*wrong));

	(void)state;
	tcap_init(&t, SCL_AEAD_CHACHA20POLY1305, 5);
	tcap_append(&t, 10, 4);
	src = mem_src_source(&t.src);
	*wrong = t.keys;
	wrong->epochs[0].key[0] ^= 1;
	assert_scl_ok(scl_capsule_opener_new(&o, SCL_AEAD_CHACHA20POLY1305,
	    wrong));
	memset(&st, 0, sizeof(st));
	assert_scl_fails(scl_capsule_verify_chain(&st, &src, t.name, &t.meta,
	    t.owner.public_key, 10, o), SCL_EVERIFY, "/10: does not decrypt");
	scl_capsule_opener_free(o);
	/* An epoch the keyring lacks is named. */
	wrong->epochs[0].epoch = 2;
	assert_scl_ok(scl_capsule_opener_new(&o, SCL_AEAD_CHACHA20POLY1305,
	    wrong));
	assert_scl_fails(scl_capsule_verify_chain(&st, &src, t.name, &t.meta,
	    t.owner.public_key, 10, o), SCL_ENOTFOUND, "key epoch 1");
	scl_capsule_opener_free(o);
	free(wrong);
	tcap_dispose(&t);
}

static void
test_capsule_record_decode_rejections(void **state)
{
	struct tcap t;
	struct scl_record r;
	struct scl_buf b;

	(void)state;
	tcap_init(&t, SCL_AEAD_AES256GCM, 6);
	/* Records v2 first: the layout with a stored nonce. */
	assert_scl_ok(scl_capsule_writer_set_record_version(t.w, 2));
	tcap_append(&t, 8, 8);
	scl_buf_init(&b);
	assert_scl_ok(scl_buf_set(&b, scl_buf_slice(&t.src.rec[7])));
	assert_scl_ok(scl_capsule_record_decode(&r, scl_buf_slice(&b)));
	assert_int_equal(r.seqno, 8);
	assert_int_equal(r.n_links, 3); /* 7, 6, 4 */
	/* Every truncation is an error, never a crash. */
	for (size_t n = 0; n < b.len; n++)
		assert_scl_fails(scl_capsule_record_decode(&r,
		    scl_slice_of(b.ptr, n)), SCL_EFORMAT, NULL);
	assert_int_equal(r.version, 2);
	b.ptr[0] = 4;
	assert_scl_fails(scl_capsule_record_decode(&r, scl_buf_slice(&b)),
	    SCL_EVERSION, "version 4; this build reads versions 1 to 3");
	b.ptr[0] = 0;
	assert_scl_fails(scl_capsule_record_decode(&r, scl_buf_slice(&b)),
	    SCL_EVERSION, "version 0;");
	b.ptr[0] = 2;
	b.ptr[2] = 9;
	assert_scl_fails(scl_capsule_record_decode(&r, scl_buf_slice(&b)),
	    SCL_EFORMAT, "unknown record type 9");
	b.ptr[2] = 1;
	b.ptr[104] = 2;
	assert_scl_fails(scl_capsule_record_decode(&r, scl_buf_slice(&b)),
	    SCL_EFORMAT, "2 links, but seqno 8 needs 3");
	b.ptr[104] = 3;
	b.ptr[88] ^= 1;
	assert_scl_fails(scl_capsule_record_decode(&r, scl_buf_slice(&b)),
	    SCL_EFORMAT, "nonce does not start with the seqno");
	b.ptr[88] ^= 1;
	assert_scl_ok(scl_buf_append(&b, "x", 1));
	assert_scl_fails(scl_capsule_record_decode(&r, scl_buf_slice(&b)),
	    SCL_EFORMAT, "trailing");
	/* Records v3: the key salt where the nonce was, 4 bytes longer. */
	assert_scl_ok(scl_capsule_writer_set_record_version(t.w, 3));
	tcap_append(&t, 8, 8);
	assert_scl_ok(scl_buf_set(&b, scl_buf_slice(&t.src.rec[15])));
	assert_scl_ok(scl_capsule_record_decode(&r, scl_buf_slice(&b)));
	assert_int_equal(r.version, 3);
	assert_int_equal(r.seqno, 16);
	assert_null(r.nonce);
	assert_non_null(r.key_salt);
	for (size_t n = 0; n < b.len; n++)
		assert_scl_fails(scl_capsule_record_decode(&r,
		    scl_slice_of(b.ptr, n)), SCL_EFORMAT, NULL);
	b.ptr[108] = 4; /* link count: 16 needs 4, offset 108 in v3 */
	assert_scl_ok(scl_capsule_record_decode(&r, scl_buf_slice(&b)));
	b.ptr[108] = 5;
	assert_scl_fails(scl_capsule_record_decode(&r, scl_buf_slice(&b)),
	    SCL_EFORMAT, "5 links, but seqno 16 needs 4");
	b.ptr[108] = 4;
	memset(b.ptr + 88, 0, SCL_RECORD_KEY_SALT_BYTES);
	assert_scl_fails(scl_capsule_record_decode(&r, scl_buf_slice(&b)),
	    SCL_EFORMAT, "sealed record without a key salt");
	scl_buf_dispose(&b);
	tcap_dispose(&t);
}

/*
 * Records v1 (BLAKE2b) and v2 (SHA-256) in one chain: a writer upgraded
 * mid-chain.  Each record's hash follows its own version, the chain,
 * heartbeats and proofs verify across the switch, and a record relabelled
 * with the other version no longer verifies.
 */
static void
test_capsule_records_v1_and_v2_share_a_chain(void **state)
{
	struct tcap t;
	struct scl_capsule_source src;
	struct scl_capsule_opener *o;
	struct scl_capsule_verify_stats st;
	struct scl_capsule_batch b;
	struct scl_record r;
	uint8_t h1[32], h2[32];
	static const uint64_t proved[] = { 1, 36, 37, 38, 40, 77 };

	(void)state;
	tcap_init(&t, SCL_AEAD_AES256GCM, 11);
	assert_scl_fails(scl_capsule_writer_set_record_version(t.w, 4),
	    SCL_EVERSION, "record version 4");
	assert_scl_ok(scl_capsule_writer_set_record_version(t.w, 1));
	tcap_append(&t, 35, 5);
	/* One batch across the switch: its heartbeat (v2 record 40) covers
	 * v1 records 36 and 37. */
	scl_capsule_batch_init(&b);
	for (int i = 0; i < 5; i++) {
		if (i == 2)
			assert_scl_ok(scl_capsule_writer_set_record_version(
			    t.w, 2));
		assert_scl_ok(scl_capsule_writer_append(t.w, &b,
		    SCL_RECORD_DATA, scl_slice_of("across", 6)));
	}
	assert_scl_ok(scl_capsule_writer_seal_batch(t.w, &b,
	    1764000000000040ull));
	mem_src_add_batch(&t.src, &b);
	scl_capsule_batch_dispose(&b);
	tcap_append(&t, 37, 6);
	src = mem_src_source(&t.src);
	assert_scl_ok(scl_capsule_record_decode(&r,
	    scl_buf_slice(&t.src.rec[36])));
	assert_int_equal(r.version, 1);
	assert_scl_ok(scl_capsule_record_decode(&r,
	    scl_buf_slice(&t.src.rec[37])));
	assert_int_equal(r.version, 2);
	assert_scl_ok(scl_capsule_opener_new(&o, SCL_AEAD_AES256GCM, &t.keys));
	memset(&st, 0, sizeof(st));
	assert_scl_ok(scl_capsule_verify_chain(&st, &src, t.name, &t.meta,
	    t.owner.public_key, 77, o));
	assert_int_equal(st.records, 77);
	assert_int_equal(st.opened, 77);
	for (size_t i = 0; i < sizeof(proved) / sizeof(proved[0]); i++) {
		struct scl_buf proof;
		struct scl_capsule_proof_result pr;
		scl_buf_init(&proof);
		assert_scl_ok(scl_capsule_proof_build(&proof, &src,
		    scl_buf_slice(&t.meta_bytes), scl_slice_of(NULL, 0),
		    t.owner.public_key, proved[i]));
		assert_scl_ok(scl_capsule_proof_check(&pr, t.name,
		    scl_buf_slice(&proof)));
		assert_int_equal(pr.seqno, proved[i]);
		scl_buf_dispose(&proof);
	}
	/* The same bytes under the other version hash differently, so a
	 * relabelled record breaks its chain. */
	assert_scl_ok(scl_capsule_record_hash(h2, &r));
	t.src.rec[37].ptr[0] = 1;
	assert_scl_ok(scl_capsule_record_decode(&r,
	    scl_buf_slice(&t.src.rec[37])));
	assert_scl_ok(scl_capsule_record_hash(h1, &r));
	assert_memory_not_equal(h1, h2, 32);
	memset(&st, 0, sizeof(st));
	assert_scl_fails(scl_capsule_verify_chain(&st, &src, t.name, &t.meta,
	    t.owner.public_key, 77, o), SCL_EVERIFY, "/38");
	scl_capsule_opener_free(o);
	tcap_dispose(&t);
}

static void
test_capsule_link_counts(void **state)
{
	(void)state;
	assert_int_equal(scl_capsule_link_count(1), 0);
	assert_int_equal(scl_capsule_link_count(2), 1);
	assert_int_equal(scl_capsule_link_count(3), 1);
	assert_int_equal(scl_capsule_link_count(4), 2);
	assert_int_equal(scl_capsule_link_count(6), 2);
	assert_int_equal(scl_capsule_link_count(12), 3);
	assert_int_equal(scl_capsule_link_count((uint64_t)1 << 63), 63);
}

/* Every skip path is at most 2*log2(distance) + 2 steps: the O(log)
 * promise of DESIGN §3, checked exhaustively for small chains. */
static void
test_capsule_skip_paths_are_logarithmic(void **state)
{
	(void)state;
	for (uint64_t h = 2; h <= 2048; h++)
		for (uint64_t t = 1; t < h; t++) {
			unsigned steps = 0, bound;
			for (uint64_t s = h; s > t;
			     s = scl_capsule_path_next(s, t))
				steps++;
			bound = 2 * (unsigned)log2((double)(h - t)) + 2;
			if (steps > bound)
				fail_msg("path %llu->%llu: %u steps > %u",
				    (unsigned long long)h,
				    (unsigned long long)t, steps, bound);
		}
	/* And for distances near the top of the seqno space. */
	for (uint64_t d = 1; d < ((uint64_t)1 << 62); d = d * 3 + 1) {
		uint64_t h = ((uint64_t)1 << 62) + 12345, t = h - d;
		unsigned steps = 0;
		for (uint64_t s = h; s > t; s = scl_capsule_path_next(s, t))
			steps++;
		assert_true(steps <= 2 * (unsigned)log2((double)d) + 2);
	}
}

static void
test_capsule_proofs_check_for_every_record(void **state)
{
	struct tcap t;
	struct scl_capsule_source src;
	struct scl_capsule_proof_result *res = calloc(1, sizeof(*res));
	struct scl_buf proof;

	(void)state;
	tcap_init(&t, SCL_AEAD_AES256GCM, 7);
	tcap_append(&t, 300, 64);
	src = mem_src_source(&t.src);
	scl_buf_init(&proof);
	for (uint64_t s = 1; s <= 300; s++) {
		scl_buf_clear(&proof);
		assert_scl_ok(scl_capsule_proof_build(&proof, &src,
		    scl_buf_slice(&t.meta_bytes), scl_slice_of(NULL, 0),
		    t.owner.public_key, s));
		assert_scl_ok(scl_capsule_proof_check(res, t.name,
		    scl_buf_slice(&proof)));
		assert_int_equal(res->seqno, s);
		assert_true(res->heartbeat_seqno >= s);
		assert_true(res->steps <= 2 * 7 + 2);
	}
	/* Every single-byte change of a proof is refused. */
	for (size_t i = 0; i < proof.len; i++) {
		proof.ptr[i] ^= 0x10;
		assert_int_not_equal(scl_capsule_proof_check(res, t.name,
		    scl_buf_slice(&proof)), SCL_OK);
		proof.ptr[i] ^= 0x10;
	}
	/* A proof only proves membership of the named capsule. */
	t.name[5] ^= 1;
	assert_scl_fails(scl_capsule_proof_check(res, t.name,
	    scl_buf_slice(&proof)), SCL_EVERIFY, "not to the capsule name");
	scl_buf_dispose(&proof);
	free(res);
	tcap_dispose(&t);
}

/* A writer that signs two different records for one seqno is convicted
 * by two proofs; honest histories never are. */
static void
test_capsule_equivocation_evidence(void **state)
{
	struct tcap t;
	struct scl_capsule_writer *fork;
	struct scl_capsule_batch b;
	struct mem_src other;
	struct scl_capsule_source src_a, src_b;
	struct scl_capsule_proof_result *ra = calloc(1, sizeof(*ra)),
					 *rb = calloc(1, sizeof(*rb));
	struct scl_buf pa, pb, ev;
	struct scl_capsule_head head;

	(void)state;
	tcap_init(&t, SCL_AEAD_AES256GCM, 8);
	tcap_append(&t, 5, 5);
	/* Fork: a second writer object resumes from the same head. */
	src_a = mem_src_source(&t.src);
	assert_scl_ok(scl_capsule_head_load(&head, &src_a, t.name,
	    t.meta.owner, t.owner.public_key, 5));
	assert_scl_ok(scl_capsule_writer_new(&fork, t.name, SCL_AEAD_AES256GCM,
	    &t.owner, 1, t.keys.epochs[0].key, &head));
	tcap_append(&t, 5, 5);
	mem_src_init(&other);
	for (uint64_t s = 1; s <= 5; s++) {
		struct scl_capsule_batch one;
		scl_capsule_batch_init(&one);
		assert_scl_ok(scl_capsule_batch_add(&one,
		    scl_buf_slice(&t.src.rec[s - 1]),
		    (uint8_t[32]){ 0 }));
		if (t.src.hb[s - 1].len)
			assert_scl_ok(scl_buf_set(&one.heartbeat,
			    scl_buf_slice(&t.src.hb[s - 1])));
		mem_src_add_batch(&other, &one);
		scl_capsule_batch_dispose(&one);
	}
	scl_capsule_batch_init(&b);
	for (int i = 0; i < 5; i++)
		assert_scl_ok(scl_capsule_writer_append(fork, &b,
		    SCL_RECORD_DATA, scl_slice_of("forked", 6)));
	assert_scl_ok(scl_capsule_writer_seal_batch(fork, &b, 1));
	mem_src_add_batch(&other, &b);
	src_b = mem_src_source(&other);

	scl_buf_init(&pa);
	scl_buf_init(&pb);
	scl_buf_init(&ev);
	assert_scl_ok(scl_capsule_proof_build(&pa, &src_a,
	    scl_buf_slice(&t.meta_bytes), scl_slice_of(NULL, 0),
	    t.owner.public_key, 8));
	assert_scl_ok(scl_capsule_proof_build(&pb, &src_b,
	    scl_buf_slice(&t.meta_bytes), scl_slice_of(NULL, 0),
	    t.owner.public_key, 8));
	assert_scl_ok(scl_capsule_evidence_build(&ev, scl_buf_slice(&pa),
	    scl_buf_slice(&pb)));
	assert_scl_ok(scl_capsule_evidence_check(ra, rb, t.name,
	    scl_buf_slice(&ev)));
	assert_int_equal(ra->seqno, 8);
	assert_memory_not_equal(ra->hash, rb->hash, 32);
	/* The same record twice convicts nobody. */
	scl_buf_clear(&ev);
	assert_scl_ok(scl_capsule_evidence_build(&ev, scl_buf_slice(&pa),
	    scl_buf_slice(&pa)));
	assert_scl_fails(scl_capsule_evidence_check(ra, rb, t.name,
	    scl_buf_slice(&ev)), SCL_EVERIFY, "same record");
	/* Nor do proofs about different records. */
	scl_buf_clear(&pb);
	assert_scl_ok(scl_capsule_proof_build(&pb, &src_b,
	    scl_buf_slice(&t.meta_bytes), scl_slice_of(NULL, 0),
	    t.owner.public_key, 9));
	scl_buf_clear(&ev);
	assert_scl_ok(scl_capsule_evidence_build(&ev, scl_buf_slice(&pa),
	    scl_buf_slice(&pb)));
	assert_scl_fails(scl_capsule_evidence_check(ra, rb, t.name,
	    scl_buf_slice(&ev)), SCL_EVERIFY, "different records");
	scl_buf_dispose(&pa);
	scl_buf_dispose(&pb);
	scl_buf_dispose(&ev);
	scl_capsule_batch_dispose(&b);
	scl_capsule_writer_free(fork);
	mem_src_dispose(&other);
	free(ra);
	free(rb);
	tcap_dispose(&t);
}

static void
test_capsule_head_load_resumes_a_chain(void **state)
{
	struct tcap t;
	struct scl_capsule_head head;
	struct scl_capsule_source src;
	struct scl_capsule_verify_stats st;

	(void)state;
	tcap_init(&t, SCL_AEAD_AES256GCM, 9);
	tcap_append(&t, 77, 11);
	src = mem_src_source(&t.src);
	assert_scl_ok(scl_capsule_head_load(&head, &src, t.name, t.meta.owner,
	    t.owner.public_key, 77));
	assert_int_equal(head.seqno, 77);
	/* The loaded head equals the live writer's, link level by level. */
	assert_memory_equal(&head, scl_capsule_writer_head(t.w), sizeof(head));
	/* Resuming from a head no heartbeat covers is refused. */
	t.src.hb[76].len = 0;
	assert_scl_fails(scl_capsule_head_load(&head, &src, t.name,
	    t.meta.owner, t.owner.public_key, 77), SCL_EVERIFY,
	    "not covered by a heartbeat");
	memset(&st, 0, sizeof(st));
	assert_scl_fails(scl_capsule_verify_chain(&st, &src, t.name, &t.meta,
	    t.owner.public_key, 77, NULL), SCL_EVERIFY,
	    "no heartbeat covers records 67..77");
	tcap_dispose(&t);
}

static void
test_capsule_missing_record_is_named(void **state)
{
	struct tcap t;
	struct scl_capsule_source src;
	struct scl_capsule_verify_stats st;

	(void)state;
	tcap_init(&t, SCL_AEAD_AES256GCM, 10);
	tcap_append(&t, 20, 20);
	scl_buf_dispose(&t.src.rec[11]);
	src = mem_src_source(&t.src);
	memset(&st, 0, sizeof(st));
	assert_scl_fails(scl_capsule_verify_chain(&st, &src, t.name, &t.meta,
	    t.owner.public_key, 20, NULL), SCL_ENOTFOUND, "/12: missing");
	tcap_dispose(&t);
}

/* A second writer joins with an owner-signed certificate as its first
 * record; without one, or with a forged one, its chain is rejected. */
static void
test_capsule_certified_writer(void **state)
{
	struct tcap t;
	struct scl_sign_key wk, mallory;
	struct scl_capsule_cert cert;
	struct scl_capsule_head head;
	struct scl_capsule_writer *w;
	struct scl_capsule_batch b;
	struct scl_buf cbytes;
	struct mem_src m;
	struct scl_capsule_source src;
	struct scl_capsule_verify_stats st;

	(void)state;
	tcap_init(&t, SCL_AEAD_AES256GCM, 11);
	scl_sign_keygen(&wk);
	scl_sign_keygen(&mallory);
	memset(&cert, 0, sizeof(cert));
	memcpy(cert.capsule, t.name, 32);
	memcpy(cert.writer, wk.public_key, 32);
	cert.issued_us = 5;
	for (int round = 0; round < 3; round++) {
		const struct scl_sign_key *signer = round == 1 ? &mallory
							       : &t.owner;
		scl_buf_init(&cbytes);
		assert_scl_ok(scl_capsule_cert_encode(&cbytes, &cert, signer));
		memset(&head, 0, sizeof(head));
		assert_scl_ok(scl_capsule_writer_new(&w, t.name,
		    SCL_AEAD_AES256GCM, &wk, 1, t.keys.epochs[0].key, &head));
		scl_capsule_batch_init(&b);
		if (round != 2)
			assert_scl_ok(scl_capsule_writer_append(w, &b,
			    SCL_RECORD_CERT, scl_buf_slice(&cbytes)));
		assert_scl_ok(scl_capsule_writer_append(w, &b, SCL_RECORD_DATA,
		    scl_slice_of("hello", 5)));
		assert_scl_ok(scl_capsule_writer_seal_batch(w, &b, 9));
		mem_src_init(&m);
		mem_src_add_batch(&m, &b);
		src = mem_src_source(&m);
		memset(&st, 0, sizeof(st));
		if (round == 0)
			assert_scl_ok(scl_capsule_verify_chain(&st, &src,
			    t.name, &t.meta, wk.public_key, b.n, NULL));
		else if (round == 1)
			assert_scl_fails(scl_capsule_verify_chain(&st, &src,
			    t.name, &t.meta, wk.public_key, b.n, NULL),
			    SCL_EVERIFY, "not signed by the capsule owner");
		else
			assert_scl_fails(scl_capsule_verify_chain(&st, &src,
			    t.name, &t.meta, wk.public_key, b.n, NULL),
			    SCL_EVERIFY, "must open with its certificate");
		mem_src_dispose(&m);
		scl_capsule_batch_dispose(&b);
		scl_capsule_writer_free(w);
		scl_buf_dispose(&cbytes);
	}
	scl_sign_key_wipe(&wk);
	scl_sign_key_wipe(&mallory);
	tcap_dispose(&t);
}

static void
test_capsule_writer_rules(void **state)
{
	struct tcap t;
	struct scl_capsule_batch b;
	uint8_t salt[4] = { 0 }, merge[64];
	static uint8_t big[SCL_PAYLOAD_MAX + 1];

	(void)state;
	tcap_init(&t, SCL_AEAD_AES256GCM, 12);
	scl_capsule_batch_init(&b);
	assert_scl_fails(scl_capsule_writer_seal_batch(t.w, &b, 1), SCL_EINVAL,
	    "empty batch");
	assert_scl_fails(scl_capsule_writer_append(t.w, &b, SCL_RECORD_DATA,
	    scl_slice_of(big, sizeof(big))), SCL_ELIMIT, "record limit");
	assert_scl_ok(scl_capsule_writer_append_ex(t.w, &b, SCL_RECORD_DATA,
	    scl_slice_of("a", 1), 10, salt, scl_slice_of(NULL, 0)));
	assert_scl_fails(scl_capsule_writer_append_ex(t.w, &b, SCL_RECORD_DATA,
	    scl_slice_of("b", 1), 10, salt, scl_slice_of(NULL, 0)), SCL_EINVAL,
	    "does not advance");
	/* Merges (other writers' heads) are carried and verified. */
	memset(merge, 0xcd, sizeof(merge));
	assert_scl_ok(scl_capsule_writer_append_ex(t.w, &b, SCL_RECORD_DATA,
	    scl_slice_of("c", 1), 11, salt, scl_slice_of(merge, 64)));
	assert_scl_ok(scl_capsule_writer_seal_batch(t.w, &b, 1));
	mem_src_add_batch(&t.src, &b);
	{
		struct scl_capsule_source src = mem_src_source(&t.src);
		struct scl_capsule_verify_stats st;
		struct scl_record r;
		memset(&st, 0, sizeof(st));
		assert_scl_ok(scl_capsule_verify_chain(&st, &src, t.name,
		    &t.meta, t.owner.public_key, 2, NULL));
		assert_scl_ok(scl_capsule_record_decode(&r,
		    scl_buf_slice(&t.src.rec[1])));
		assert_int_equal(r.n_merge, 2);
		assert_memory_equal(r.merge, merge, 64);
	}
	scl_capsule_batch_dispose(&b);
	tcap_dispose(&t);
}

static void
test_capsule_keyring_round_trip(void **state)
{
	struct tcap t;
	struct scl_capsule_keyring *k = calloc(1, sizeof(*k));
	struct scl_buf b;

	(void)state;
	tcap_init(&t, SCL_AEAD_AES256GCM, 13);
	scl_buf_init(&b);
	assert_scl_ok(scl_capsule_keyring_encode(&b, &t.keys));
	assert_scl_ok(scl_capsule_keyring_decode(k, scl_buf_slice(&b)));
	assert_memory_equal(k, &t.keys, sizeof(*k));
	assert_non_null(scl_capsule_keyring_key(k, 1));
	assert_null(scl_capsule_keyring_key(k, 2));
	b.ptr[0] = 7;
	assert_scl_fails(scl_capsule_keyring_decode(k, scl_buf_slice(&b)),
	    SCL_EVERSION, "version 7");
	scl_buf_dispose_secret(&b);
	free(k);
	tcap_dispose(&t);
}

/*
 * Two copies of one writer's state (a restored backup, a cloned home)
 * seal the same seqno with different content.  Records v3 seal each
 * under a key from the copy's own random 128-bit salt, so the (key,
 * nonce) pair never repeats; both records still open and verify.  (With
 * records v2 the two nonces differed only in 4 random bytes under one
 * key: a 2^-32 chance per re-seal of a repeat, which with GCM reveals
 * the XOR of the plaintexts and permits forgeries.)
 */
static void
test_capsule_copies_of_a_writer_never_share_a_key(void **state)
{
	struct tcap t;
	struct scl_capsule_writer *a, *b;
	struct scl_capsule_batch ba, bb;
	struct scl_record ra, rb;
	struct scl_buf pa, pb;
	uint8_t na[12], nb[12], ka[32], kb[32];

	(void)state;
	tcap_init(&t, SCL_AEAD_AES256GCM, 31);
	tcap_append(&t, 5, 5);
	assert_scl_ok(scl_capsule_writer_new(&a, t.name, SCL_AEAD_AES256GCM,
	    &t.owner, t.keys.epochs[0].epoch, t.keys.epochs[0].key,
	    scl_capsule_writer_head(t.w)));
	assert_scl_ok(scl_capsule_writer_new(&b, t.name, SCL_AEAD_AES256GCM,
	    &t.owner, t.keys.epochs[0].epoch, t.keys.epochs[0].key,
	    scl_capsule_writer_head(t.w)));
	scl_capsule_batch_init(&ba);
	scl_capsule_batch_init(&bb);
	assert_scl_ok(scl_capsule_writer_append(a, &ba, SCL_RECORD_DATA,
	    scl_slice_of("left", 4)));
	assert_scl_ok(scl_capsule_writer_append(b, &bb, SCL_RECORD_DATA,
	    scl_slice_of("right", 5)));
	assert_scl_ok(scl_capsule_record_decode(&ra,
	    scl_capsule_batch_record(&ba, 0)));
	assert_scl_ok(scl_capsule_record_decode(&rb,
	    scl_capsule_batch_record(&bb, 0)));
	assert_int_equal(ra.version, 3);
	assert_int_equal(ra.seqno, 6);
	assert_int_equal(rb.seqno, 6);
	/* The same nonce (the seqno), under different keys. */
	scl_capsule_record_nonce(na, &ra);
	scl_capsule_record_nonce(nb, &rb);
	assert_memory_equal(na, nb, 12);
	assert_memory_not_equal(ra.key_salt, rb.key_salt,
	    SCL_RECORD_KEY_SALT_BYTES);
	scl_capsule_record_key(ka, t.keys.epochs[0].key, t.name,
	    t.owner.public_key, t.keys.epochs[0].epoch, ra.key_salt);
	scl_capsule_record_key(kb, t.keys.epochs[0].key, t.name,
	    t.owner.public_key, t.keys.epochs[0].epoch, rb.key_salt);
	assert_memory_not_equal(ka, kb, 32);
	/* Each opens with the data key alone, as any reader's would. */
	scl_buf_init(&pa);
	scl_buf_init(&pb);
	assert_scl_ok(scl_capsule_record_open(&pa, &ra, SCL_AEAD_AES256GCM,
	    t.keys.epochs[0].key));
	assert_scl_ok(scl_capsule_record_open(&pb, &rb, SCL_AEAD_AES256GCM,
	    t.keys.epochs[0].key));
	assert_memory_equal(pa.ptr, "left", 4);
	assert_memory_equal(pb.ptr, "right", 5);
	/* A flipped salt bit changes the key: the record no longer opens. */
	((uint8_t *)ba.data.ptr)[88] ^= 1;
	assert_scl_ok(scl_capsule_record_decode(&ra,
	    scl_capsule_batch_record(&ba, 0)));
	assert_scl_fails(scl_capsule_record_open(&pa, &ra, SCL_AEAD_AES256GCM,
	    t.keys.epochs[0].key), SCL_EVERIFY, NULL);
	scl_buf_dispose(&pa);
	scl_buf_dispose(&pb);
	scl_capsule_batch_dispose(&ba);
	scl_capsule_batch_dispose(&bb);
	scl_capsule_writer_free(a);
	scl_capsule_writer_free(b);
	tcap_dispose(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_capsule_meta_round_trip_and_name),
		cmocka_unit_test(test_capsule_meta_rejects_every_change),
		cmocka_unit_test(test_capsule_meta_validates_policy),
		cmocka_unit_test(test_capsule_chain_verifies_and_reads_in_order),
		cmocka_unit_test(test_capsule_verify_collects_revocations),
		cmocka_unit_test(test_capsule_wrong_key_does_not_decrypt),
		cmocka_unit_test(test_capsule_record_decode_rejections),
		cmocka_unit_test(test_capsule_records_v1_and_v2_share_a_chain),
		cmocka_unit_test(test_capsule_link_counts),
		cmocka_unit_test(test_capsule_skip_paths_are_logarithmic),
		cmocka_unit_test(test_capsule_proofs_check_for_every_record),
		cmocka_unit_test(test_capsule_equivocation_evidence),
		cmocka_unit_test(test_capsule_head_load_resumes_a_chain),
		cmocka_unit_test(test_capsule_missing_record_is_named),
		cmocka_unit_test(test_capsule_certified_writer),
		cmocka_unit_test(test_capsule_writer_rules),
		cmocka_unit_test(test_capsule_keyring_round_trip),
		cmocka_unit_test(test_capsule_copies_of_a_writer_never_share_a_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
