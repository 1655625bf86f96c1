/*
 * test_broker.c - attestation and the key broker: a worker whose core
 * proves its code gets a certificate and keys; wrong evidence, untrusted
 * platforms, disallowed code, stale or replayed nonces, evidence for
 * other keys and revoked keys get nothing, each with its reason.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

struct brk {
	char *dir;
	char ring[4200], revoked[4200];
	struct scl_broker *b;
	pthread_t th;
	char endpoint[256];
	struct tcap t;
	struct scl_sign_key platform;
	uint8_t measurement[32];
};

static void *
broker_main(void *arg)
{
	struct brk *k = arg;
	if (scl_broker_run(k->b) != SCL_OK)
		fprintf(stderr, "broker: %s\n", scl_err_last());
	return NULL;
}

static void
brk_start(struct brk *k, unsigned ttl_ms)
{
	struct scl_broker_options *o = calloc(1, sizeof(*o));
	struct scl_buf body;

	memset(k, 0, sizeof(*k));
	tcap_init(&k->t, SCL_AEAD_AES256GCM, 70);
	k->dir = test_tmpdir("broker");
	snprintf(k->ring, sizeof(k->ring), "%s/c.keyring", k->dir);
	snprintf(k->revoked, sizeof(k->revoked), "%s/c.revoked", k->dir);
	scl_buf_init(&body);
	assert_scl_ok(scl_capsule_keyring_encode(&body, &k->t.keys));
	assert_scl_ok(scl_keyfile_write(k->ring, SCL_KEYFILE_KEYRING,
	    scl_buf_slice(&body)));
	scl_buf_dispose_secret(&body);
	scl_sign_keygen(&k->platform);
	memset(k->measurement, 0x6d, 32);
	o->listen = "tcp://127.0.0.1:*";
	o->keyring_path = k->ring;
	o->revoked_path = k->revoked;
	memcpy(o->capsule, k->t.name, 32);
	memcpy(o->allow[0], k->measurement, 32);
	o->n_allow = 1;
	memcpy(o->platforms[0], k->platform.public_key, 32);
	o->n_platforms = 1;
	o->nonce_ttl_ms = ttl_ms;
	assert_scl_ok(scl_broker_new(&k->b, o));
	free(o);
	snprintf(k->endpoint, sizeof(k->endpoint), "%s",
	    scl_broker_endpoint(k->b));
	assert_int_equal(pthread_create(&k->th, NULL, broker_main, k), 0);
}

static void
brk_stop(struct brk *k)
{
	scl_broker_stop(k->b);
	pthread_join(k->th, NULL);
	scl_broker_free(k->b);
	tcap_dispose(&k->t);
	scl_sign_key_wipe(&k->platform);
	test_rmdir(k->dir);
	free(k->dir);
}

/* A core's keys, and evidence over them signed by @platform. */
struct fake_core {
	struct scl_sign_key sign;
	struct scl_box_key box;
};

static enum scl_err
attest_with(struct brk *k, struct scl_broker_grant *g,
    const struct fake_core *c, const struct scl_sign_key *platform,
    const uint8_t *measurement, const uint8_t *nonce, const uint8_t *bind_nonce)
{
	uint8_t rd[64];
	struct scl_buf ev;
	enum scl_err e;

	scl_attest_report_data(rd, c->sign.public_key, c->box.public_key,
	    bind_nonce);
	scl_buf_init(&ev);
	assert_scl_ok(scl_attest_sim_evidence(&ev, platform, measurement, rd));
	scl_broker_grant_init(g);
	e = scl_broker_attest(g, k->endpoint, k->t.name, c->sign.public_key,
	    c->box.public_key, nonce, scl_buf_slice(&ev), 5000);
	scl_buf_dispose(&ev);
	return e;
}

static void
test_broker_grants_only_to_proven_cores(void **state)
{
	struct brk k;
	struct fake_core c, other;
	struct scl_broker_grant *g = calloc(1, sizeof(*g));
	struct scl_capsule_cert cert;
	struct scl_sign_key rogue;
	uint8_t nonce[32], bad_meas[32], key[32];

	(void)state;
	brk_start(&k, 30000);
	scl_sign_keygen(&c.sign);
	scl_box_keygen(&c.box);
	scl_sign_keygen(&other.sign);
	scl_box_keygen(&other.box);
	scl_sign_keygen(&rogue);
	memset(bad_meas, 0x11, 32);

	/* The honest path: certificate for exactly these keys, and the
	 * data key, which opens with the core's box key only. */
	assert_scl_ok(scl_broker_nonce(k.endpoint, nonce, 5000));
	assert_scl_ok(attest_with(&k, g, &c, &k.platform, k.measurement,
	    nonce, nonce));
	assert_scl_ok(scl_capsule_cert_decode(&cert, scl_buf_slice(&g->cert)));
	assert_scl_ok(scl_capsule_cert_verify(&cert, k.t.name, k.t.meta.owner,
	    c.sign.public_key));
	assert_memory_equal(cert.box_key, c.box.public_key, 32);
	assert_memory_equal(cert.measurement, k.measurement, 32);
	assert_int_equal(g->n_keys, 1);
	assert_scl_ok(scl_box_open(key, g->keys[0].sealed, 80, &c.box));
	assert_memory_equal(key, k.t.keys.epochs[0].key, 32);
	assert_scl_fails(scl_box_open(key, g->keys[0].sealed, 80, &other.box),
	    SCL_EVERIFY, NULL);
	scl_broker_grant_dispose(g);

	/* The same nonce twice. */
	assert_scl_fails(attest_with(&k, g, &c, &k.platform, k.measurement,
	    nonce, nonce), SCL_EVERIFY, "nonce expired, reused or never issued");
	scl_broker_grant_dispose(g);
	/* A nonce the broker never issued. */
	memset(nonce, 0x42, 32);
	assert_scl_fails(attest_with(&k, g, &c, &k.platform, k.measurement,
	    nonce, nonce), SCL_EVERIFY, "never issued");
	scl_broker_grant_dispose(g);
	/* An untrusted platform. */
	assert_scl_ok(scl_broker_nonce(k.endpoint, nonce, 5000));
	assert_scl_fails(attest_with(&k, g, &c, &rogue, k.measurement, nonce,
	    nonce), SCL_EVERIFY, "not trusted");
	scl_broker_grant_dispose(g);
	/* Code that is not allowed. */
	assert_scl_ok(scl_broker_nonce(k.endpoint, nonce, 5000));
	assert_scl_fails(attest_with(&k, g, &c, &k.platform, bad_meas, nonce,
	    nonce), SCL_EVERIFY, "not on the allow list");
	scl_broker_grant_dispose(g);
	/* Evidence bound to another nonce. */
	{
		uint8_t n2[32];
		assert_scl_ok(scl_broker_nonce(k.endpoint, nonce, 5000));
		assert_scl_ok(scl_broker_nonce(k.endpoint, n2, 5000));
		assert_scl_fails(attest_with(&k, g, &c, &k.platform,
		    k.measurement, nonce, n2), SCL_EVERIFY,
		    "binds other keys or another nonce");
		scl_broker_grant_dispose(g);
	}
	/* Evidence over one core's keys presented for another's. */
	{
		uint8_t rd[64];
		struct scl_buf ev;
		assert_scl_ok(scl_broker_nonce(k.endpoint, nonce, 5000));
		scl_attest_report_data(rd, c.sign.public_key, c.box.public_key,
		    nonce);
		scl_buf_init(&ev);
		assert_scl_ok(scl_attest_sim_evidence(&ev, &k.platform,
		    k.measurement, rd));
		scl_broker_grant_init(g);
		assert_scl_fails(scl_broker_attest(g, k.endpoint, k.t.name,
		    other.sign.public_key, other.box.public_key, nonce,
		    scl_buf_slice(&ev), 5000), SCL_EVERIFY, "binds other keys");
		/* Tampered evidence. */
		assert_scl_ok(scl_broker_nonce(k.endpoint, nonce, 5000));
		ev.ptr[50] ^= 1;
		scl_broker_grant_dispose(g);
		scl_broker_grant_init(g);
		assert_scl_fails(scl_broker_attest(g, k.endpoint, k.t.name,
		    c.sign.public_key, c.box.public_key, nonce,
		    scl_buf_slice(&ev), 5000), SCL_EVERIFY,
		    "signature does not verify");
		scl_buf_dispose(&ev);
		scl_broker_grant_dispose(g);
	}
	/* A revoked key, even with perfect evidence. */
	assert_scl_ok(scl_broker_revoke_file_add(k.revoked, c.sign.public_key));
	assert_scl_ok(scl_broker_nonce(k.endpoint, nonce, 5000));
	assert_scl_fails(attest_with(&k, g, &c, &k.platform, k.measurement,
	    nonce, nonce), SCL_EVERIFY, "is revoked");
	scl_broker_grant_dispose(g);
	free(g);
	scl_sign_key_wipe(&rogue);
	brk_stop(&k);
}

static void
test_broker_nonces_expire(void **state)
{
	struct brk k;
	struct fake_core c;
	struct scl_broker_grant *g = calloc(1, sizeof(*g));
	uint8_t nonce[32];

	(void)state;
	brk_start(&k, 150);
	scl_sign_keygen(&c.sign);
	scl_box_keygen(&c.box);
	assert_scl_ok(scl_broker_nonce(k.endpoint, nonce, 5000));
	usleep(300000);
	assert_scl_fails(attest_with(&k, g, &c, &k.platform, k.measurement,
	    nonce, nonce), SCL_EVERIFY, "nonce expired");
	scl_broker_grant_dispose(g);
	free(g);
	brk_stop(&k);
}

/* The full worker: its core (process backend, under seccomp) makes its
 * keys, is attested, installs what it is granted, and seals records
 * that verify as a certified writer's chain. */
static void
worker_flow(enum scl_tee tee)
{
	struct brk k;
	struct scl_worker_options opt;
	struct scl_worker *w;
	struct scl_enclave_exit ex;
	struct scl_capsule_batch b;
	struct mem_src m;
	struct scl_capsule_source src;
	struct scl_capsule_verify_stats st;
	struct scl_capsule_opener *o;
	char pk_path[4300], meas_path[4300];
	uint8_t writer[32], box[32];
	struct scl_slice items[3] = { { (const uint8_t *)"alpha", 5 },
		{ (const uint8_t *)"bravo", 5 }, { (const uint8_t *)"", 0 } };
	FILE *f;

	brk_start(&k, 30000);
	/* The worker measures a file we control, whose hash the broker
	 * allows. */
	snprintf(meas_path, sizeof(meas_path), "%s/code.bin", k.dir);
	f = fopen(meas_path, "w");
	fputs("trusted core code", f);
	fclose(f);
	assert_scl_ok(scl_attest_measure_file(k.measurement, meas_path));
	scl_broker_stop(k.b);
	pthread_join(k.th, NULL);
	scl_broker_free(k.b);
	{
		struct scl_broker_options *bo = calloc(1, sizeof(*bo));
		bo->listen = "tcp://127.0.0.1:*";
		bo->keyring_path = k.ring;
		bo->revoked_path = k.revoked;
		memcpy(bo->capsule, k.t.name, 32);
		memcpy(bo->allow[0], k.measurement, 32);
		bo->n_allow = 1;
		memcpy(bo->platforms[0], k.platform.public_key, 32);
		bo->n_platforms = 1;
		assert_scl_ok(scl_broker_new(&k.b, bo));
		free(bo);
		snprintf(k.endpoint, sizeof(k.endpoint), "%s",
		    scl_broker_endpoint(k.b));
		assert_int_equal(pthread_create(&k.th, NULL, broker_main, &k),
		    0);
	}
	snprintf(pk_path, sizeof(pk_path), "%s/platform.key", k.dir);
	{
		uint8_t seed[32];
		scl_sign_key_seed(seed, &k.platform);
		assert_scl_ok(scl_keyfile_write(pk_path, SCL_KEYFILE_IDENTITY,
		    scl_slice_of(seed, 32)));
		scl_wipe(seed, 32);
	}
	memset(&opt, 0, sizeof(opt));
	opt.tee = tee;
	opt.attest = SCL_ATTEST_SIM;
	opt.platform_key = pk_path;
	opt.broker = k.endpoint;
	opt.measure_path = meas_path;
	assert_scl_ok(scl_worker_start(&w, &opt));
	scl_worker_keys(w, writer, box);
	/* Sealing before attestation is refused by the core itself, and
	 * its refusal reaches the host with the core's code and words. */
	scl_capsule_batch_init(&b);
	assert_scl_fails(scl_worker_seal(w, items, 3, &b), SCL_EINVAL,
	    "trusted core: core is not attested yet");
	assert_scl_ok(scl_worker_attest(w, scl_buf_slice(&k.t.meta_bytes)));
	assert_scl_ok(scl_worker_seal(w, items, 3, &b));
	assert_int_equal(b.n, 4); /* certificate + 3 */
	mem_src_init(&m);
	mem_src_add_batch(&m, &b);
	src = mem_src_source(&m);
	memset(&st, 0, sizeof(st));
	assert_scl_ok(scl_capsule_opener_new(&o, k.t.meta.aead, &k.t.keys));
	assert_scl_ok(scl_capsule_verify_chain(&st, &src, k.t.name, &k.t.meta,
	    writer, 4, o));
	assert_int_equal(st.opened, 3);
	scl_capsule_opener_free(o);
	mem_src_dispose(&m);
	scl_capsule_batch_dispose(&b);
	scl_worker_stop(w, &ex);
	assert_int_equal(ex.signal, 0);
	brk_stop(&k);
}

static void
test_broker_worker_thread(void **state)
{
	(void)state;
	worker_flow(SCL_TEE_THREAD);
}

static void
test_broker_worker_process(void **state)
{
	(void)state;
	worker_flow(SCL_TEE_PROCESS);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_broker_grants_only_to_proven_cores),
		cmocka_unit_test(test_broker_nonces_expire),
		cmocka_unit_test(test_broker_worker_thread),
		cmocka_unit_test(test_broker_worker_process),
	};
	if (scl_init() != SCL_OK)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
