/*
 * test_tamper.c - every single-byte change to a stored capsule's records
 * and heartbeats is detected, and the report names the changed record or
 * heartbeat.  The bytes are changed inside LMDB itself, as an attacker
 * with the disk would; verification never crashes (run under ASan).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "helpers.h"

#define RECORDS 20
#define BATCH 6

struct target {
	const char *table;
	uint8_t key[72];
	size_t key_len;
	uint64_t seqno;
};

static void
store_capsule(const char *path, struct tcap *t)
{
	struct scl_store *s;
	struct scl_store_options opt = { (size_t)64 << 20, true };
	struct scl_capsule_batch b;
	const struct scl_capsule_batch *one[1] = { &b };
	char payload[48];

	assert_scl_ok(scl_store_open(&s, path, &opt));
	assert_scl_ok(scl_store_put_meta(s, t->name,
	    scl_buf_slice(&t->meta_bytes)));
	scl_capsule_batch_init(&b);
	for (int i = 1; i <= RECORDS; i++) {
		int n = snprintf(payload, sizeof(payload), "record %d", i);
		assert_scl_ok(scl_capsule_writer_append(t->w, &b,
		    SCL_RECORD_DATA, scl_slice_of(payload, (size_t)n)));
		if (i % BATCH == 0 || i == RECORDS) {
			assert_scl_ok(scl_capsule_writer_seal_batch(t->w, &b,
			    (uint64_t)i));
			assert_scl_ok(scl_store_append(s, one, 1));
			scl_capsule_batch_clear(&b);
		}
	}
	scl_capsule_batch_dispose(&b);
	scl_store_close(s);
}

/* Runs the full verification (with keys) and returns its result. */
static enum scl_err
verify(const char *path, struct tcap *t)
{
	struct scl_store *s;
	struct scl_store_options opt = { (size_t)64 << 20, true };
	struct scl_store_snapshot *snap;
	struct scl_capsule_source src;
	struct scl_capsule_opener *o;
	struct scl_capsule_verify_stats st;
	enum scl_err e;

	memset(&st, 0, sizeof(st));
	assert_scl_ok(scl_store_open(&s, path, &opt));
	assert_scl_ok(scl_store_snapshot_begin(&snap, s, t->name));
	scl_store_snapshot_source(&src, snap);
	assert_scl_ok(scl_capsule_opener_new(&o, t->meta.aead, &t->keys));
	e = scl_capsule_verify_chain(&st, &src, t->name, &t->meta,
	    t->owner.public_key, RECORDS, o);
	scl_capsule_opener_free(o);
	scl_store_snapshot_end(snap);
	scl_store_close(s);
	return e;
}

/* Overwrites the value under (table, key) with @v in its own env. */
static void
put_raw(const char *path, const char *table, const uint8_t *key,
    size_t key_len, const uint8_t *v, size_t n)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = { key_len, (void *)key }, val = { n, (void *)v };

	assert_int_equal(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 16);
	mdb_env_set_mapsize(env, (size_t)64 << 20);
	assert_int_equal(mdb_env_open(env, path, MDB_NOSYNC, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, table, 0, &dbi), 0);
	assert_int_equal(mdb_put(txn, dbi, &k, &val, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static void
tamper_table(const char *path, struct tcap *t, const char *table,
    const char *kind, struct mem_src *orig, int is_hb, unsigned *changes)
{
	for (uint64_t s = 1; s <= RECORDS; s++) {
		struct scl_buf *v = is_hb ? &orig->hb[s - 1] : &orig->rec[s - 1];
		uint8_t key[72];
		char want[64], w8[9];

		if (v->len == 0)
			continue;
		memcpy(key, t->name, 32);
		memcpy(key + 32, t->owner.public_key, 32);
		for (int i = 0; i < 8; i++)
			key[64 + i] = (uint8_t)(s >> (56 - 8 * i));
		snprintf(want, sizeof(want), "%s %s/%llu", kind,
		    scl_hex_short(w8, t->owner.public_key),
		    (unsigned long long)s);
		for (size_t i = 0; i < v->len; i++) {
			static const uint8_t flips[2] = { 0x01, 0x80 };
			for (int f = 0; f < 2; f++) {
				enum scl_err e;
				v->ptr[i] ^= flips[f];
				put_raw(path, table, key, 72, v->ptr, v->len);
				v->ptr[i] ^= flips[f];
				e = verify(path, t);
				if (e == SCL_OK)
					fail_msg("%s: byte %zu ^ 0x%02x went "
						 "undetected", want, i, flips[f]);
				if (strstr(scl_err_last(), want) == NULL)
					fail_msg("%s: byte %zu ^ 0x%02x reported "
						 "as '%s'", want, i, flips[f],
					    scl_err_last());
				(*changes)++;
			}
			put_raw(path, table, key, 72, v->ptr, v->len);
		}
	}
}

static void
test_tamper_every_byte_is_detected_and_named(void **state)
{
	char *dir = test_tmpdir("tamper"), path[4200];
	struct tcap t;
	struct scl_store *s;
	struct scl_store_snapshot *snap;
	struct scl_capsule_source src;
	struct mem_src orig;
	unsigned changes = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/db", dir);
	tcap_init(&t, SCL_AEAD_AES256GCM, 40);
	store_capsule(path, &t);
	assert_scl_ok(verify(path, &t));
	/* Keep pristine copies of every stored value. */
	mem_src_init(&orig);
	{
		struct scl_store_options o2 = { (size_t)64 << 20, true };
		assert_scl_ok(scl_store_open(&s, path, &o2));
	}
	assert_scl_ok(scl_store_snapshot_begin(&snap, s, t.name));
	scl_store_snapshot_source(&src, snap);
	orig.cap = orig.n = RECORDS;
	orig.rec = calloc(RECORDS, sizeof(*orig.rec));
	orig.hb = calloc(RECORDS, sizeof(*orig.hb));
	for (uint64_t i = 1; i <= RECORDS; i++) {
		uint64_t at;
		assert_scl_ok(src.record(src.ctx, t.owner.public_key, i,
		    &orig.rec[i - 1]));
		if (src.heartbeat_from(src.ctx, t.owner.public_key, i, &at,
			&orig.hb[i - 1]) != SCL_OK || at != i)
			scl_buf_dispose(&orig.hb[i - 1]);
	}
	scl_store_snapshot_end(snap);
	scl_store_close(s);
	tamper_table(path, &t, "records", "record", &orig, 0, &changes);
	tamper_table(path, &t, "heartbeats", "heartbeat", &orig, 1, &changes);
	print_message("%u single-byte changes, every one detected and "
		      "named\n", changes);
	assert_true(changes > 2 * RECORDS * 100);
	assert_scl_ok(verify(path, &t));
	mem_src_dispose(&orig);
	tcap_dispose(&t);
	test_rmdir(dir);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tamper_every_byte_is_detected_and_named),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
