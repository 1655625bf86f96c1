/*
 * test_kv.c - KVS replicas (kv.h) under a simulated network that loses,
 * duplicates, delays and reorders every message, with a simulated
 * capsule server answering FETCHes (itself through the lossy network).
 *
 * The property: after any such run, once the network is allowed to
 * deliver, every replica holds exactly the state a sequential
 * last-writer-wins model computes from every operation made anywhere,
 * and all replicas' digests are equal.  Then targeted cases: forged,
 * altered, foreign and replayed batches are rejected or ignored and
 * counted; equal Lamport times converge on the larger writer id; a tiny
 * out-of-order buffer still converges through the servers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "scl/kv.h"

#define REPLICAS_MAX 5
#define KEYS 24

struct msg {
	int to;			/* replica index */
	struct scl_buf bytes;
};

/* What the "servers" durably hold: every batch message, per writer. */
struct stored {
	uint8_t writer[32];
	uint64_t first, last;
	struct scl_buf bytes;
};

struct model_op {
	char key[16];
	char value[32];
	bool tomb;
	struct scl_kv_version ver;
};

struct sim {
	struct tcap t;
	struct scl_actors *actors;
	int n;
	struct scl_sign_key keys[REPLICAS_MAX];
	struct scl_kv *kv[REPLICAS_MAX];
	struct msg *net;
	size_t n_net, cap_net;
	struct stored *store;
	size_t n_store, cap_store;
	struct model_op *model;
	size_t n_model, cap_model;
	uint64_t rng;
	uint64_t now;
	/* fault rates in percent */
	unsigned loss, dup;
	uint64_t delivered, lost, duplicated;
	/* A dead replica is driven no more; an unstoring one's batches never
	 * reach the servers (its appender died first). */
	bool dead[REPLICAS_MAX], unstoring[REPLICAS_MAX];
	uint64_t notices;
};

static uint64_t
rnd(struct sim *s)
{
	s->rng ^= s->rng << 13;
	s->rng ^= s->rng >> 7;
	s->rng ^= s->rng << 17;
	return s->rng;
}

static bool
chance(struct sim *s, unsigned percent)
{
	return rnd(s) % 100 < percent;
}

static void
net_send(struct sim *s, int to, struct scl_slice bytes, bool lossy)
{
	if (lossy && chance(s, s->loss)) {
		s->lost++;
		return;
	}
	for (int copies = (lossy && chance(s, s->dup)) ? 2 : 1; copies > 0;
	     copies--) {
		if (s->n_net == s->cap_net) {
			s->cap_net = s->cap_net ? 2 * s->cap_net : 64;
			s->net = realloc(s->net, s->cap_net * sizeof(*s->net));
			assert_non_null(s->net);
		}
		s->net[s->n_net].to = to;
		scl_buf_init(&s->net[s->n_net].bytes);
		assert_scl_ok(scl_buf_set(&s->net[s->n_net].bytes, bytes));
		s->n_net++;
		if (copies == 2)
			s->duplicated++;
	}
}

static void
store_batch(struct sim *s, struct scl_slice bytes)
{
	struct scl_capsule_batch b;
	struct stored *st;

	scl_capsule_batch_init(&b);
	assert_scl_ok(scl_kv_msg_to_batch(bytes, &b));
	if (s->n_store == s->cap_store) {
		s->cap_store = s->cap_store ? 2 * s->cap_store : 64;
		s->store = realloc(s->store, s->cap_store * sizeof(*s->store));
		assert_non_null(s->store);
	}
	st = &s->store[s->n_store++];
	memcpy(st->writer, b.writer, 32);
	st->first = b.first_seqno;
	st->last = b.first_seqno + b.n - 1;
	scl_buf_init(&st->bytes);
	assert_scl_ok(scl_buf_set(&st->bytes, bytes));
	scl_capsule_batch_dispose(&b);
}

/* Handles everything replica @i wants sent. */
static void
pump(struct sim *s, int i, bool lossy)
{
	struct scl_kv_output o;

	scl_kv_output_init(&o);
	while (scl_kv_next_output(s->kv[i], &o)) {
		switch (o.kind) {
		case SCL_KV_OUT_BATCH:
			if (!s->unstoring[i])
				store_batch(s, scl_buf_slice(&o.msg));
			/* and to every peer, as a SYNC is */
			__attribute__((fallthrough));
		case SCL_KV_OUT_SYNC:
			for (int j = 0; j < s->n; j++)
				if (j != i)
					net_send(s, j, scl_buf_slice(&o.msg),
					    lossy);
			break;
		case SCL_KV_OUT_STORE:
			/* a peer hands on what the servers lack */
			store_batch(s, scl_buf_slice(&o.msg));
			break;
		case SCL_KV_OUT_NOTICE:
			s->notices++;
			break;
		case SCL_KV_OUT_FETCH:
			/* The servers answer with every stored batch of the
			 * writer that overlaps the range. */
			for (size_t k = 0; k < s->n_store; k++)
				if (memcmp(s->store[k].writer, o.writer, 32) ==
					0 &&
				    s->store[k].last >= o.from &&
				    s->store[k].first <= o.to)
					net_send(s, i,
					    scl_buf_slice(&s->store[k].bytes),
					    lossy);
			break;
		}
	}
	scl_kv_output_dispose(&o);
}

static void
deliver_one(struct sim *s, size_t k)
{
	struct msg m = s->net[k];

	s->net[k] = s->net[--s->n_net];
	if (!s->dead[m.to])
		assert_scl_ok(scl_kv_receive(s->kv[m.to],
		    scl_buf_slice(&m.bytes), s->now));
	scl_buf_dispose(&m.bytes);
	s->delivered++;
}

static void
model_add(struct sim *s, const char *key, const char *value, bool tomb,
    const struct scl_kv_version *ver)
{
	struct model_op *m;

	if (s->n_model == s->cap_model) {
		s->cap_model = s->cap_model ? 2 * s->cap_model : 256;
		s->model = realloc(s->model, s->cap_model * sizeof(*s->model));
		assert_non_null(s->model);
	}
	m = &s->model[s->n_model++];
	memset(m, 0, sizeof(*m));
	snprintf(m->key, sizeof(m->key), "%s", key);
	snprintf(m->value, sizeof(m->value), "%s", value);
	m->tomb = tomb;
	m->ver = *ver;
}

static void
local_op(struct sim *s, int i)
{
	char key[16], value[32];
	struct scl_slice v;
	struct scl_kv_version ver;
	bool del = chance(s, 20);

	snprintf(key, sizeof(key), "k%02u", (unsigned)(rnd(s) % KEYS));
	snprintf(value, sizeof(value), "v%d-%llu", i,
	    (unsigned long long)(rnd(s) % 100000));
	if (del)
		assert_scl_ok(scl_kv_delete(s->kv[i], scl_slice_of(key,
		    strlen(key)), s->now));
	else
		assert_scl_ok(scl_kv_put(s->kv[i], scl_slice_of(key,
		    strlen(key)), scl_slice_of(value, strlen(value)), s->now));
	/* A local write always wins locally: its version is the new one. */
	if (del) {
		assert_int_equal(scl_kv_get(s->kv[i], scl_slice_of(key,
		    strlen(key)), &v, &ver), SCL_ENOTFOUND);
		/* the tombstone's version: one past what the replica saw */
		{
			struct scl_kv_stats st;
			scl_kv_stats(s->kv[i], &st);
			ver.lamport = st.lamport;
			memcpy(ver.writer, scl_kv_writer(s->kv[i]), 32);
		}
	} else {
		assert_scl_ok(scl_kv_get(s->kv[i], scl_slice_of(key,
		    strlen(key)), &v, &ver));
		assert_int_equal(v.len, strlen(value));
		assert_memory_equal(v.ptr, value, v.len);
		assert_memory_equal(ver.writer, scl_kv_writer(s->kv[i]), 32);
	}
	model_add(s, key, value, del, &ver);
}

/* Replica @i with a new writer key and certificate, and @extra's
 * options (NULL: the defaults). */
static void
replica_open(struct sim *s, int i, const struct scl_kv_options *extra)
{
	struct scl_kv_options opt;
	struct scl_capsule_cert cert;
	struct scl_buf cb;

	if (extra)
		opt = *extra;
	else
		memset(&opt, 0, sizeof(opt));
	scl_sign_keygen(&s->keys[i]);
	memset(&cert, 0, sizeof(cert));
	memcpy(cert.capsule, s->t.name, 32);
	memcpy(cert.writer, s->keys[i].public_key, 32);
	scl_buf_init(&cb);
	assert_scl_ok(scl_capsule_cert_encode(&cb, &cert, &s->t.owner));
	opt.meta = scl_buf_slice(&s->t.meta_bytes);
	opt.keys = &s->t.keys;
	opt.sign = &s->keys[i];
	opt.cert = scl_buf_slice(&cb);
	opt.actors = s->actors;
	if (!opt.batch_max_puts)
		opt.batch_max_puts = 1 + rnd(s) % 8;
	assert_scl_ok(scl_kv_new(&s->kv[i], &opt));
	scl_buf_dispose(&cb);
}

static void
sim_start(struct sim *s, int n, uint64_t seed, unsigned loss, unsigned dup,
    const struct scl_kv_options *extra)
{
	memset(s, 0, sizeof(*s));
	tcap_init(&s->t, SCL_AEAD_AES256GCM, 71);
	assert_scl_ok(scl_actors_new(&s->actors, 2));
	s->n = n;
	s->rng = seed * 0x9e3779b97f4a7c15ull + 1;
	s->loss = loss;
	s->dup = dup;
	s->now = 1000000;
	for (int i = 0; i < n; i++)
		replica_open(s, i, extra);
}

static void
sim_stop(struct sim *s)
{
	for (int i = 0; i < s->n; i++) {
		scl_kv_free(s->kv[i]);
		scl_sign_key_wipe(&s->keys[i]);
	}
	for (size_t k = 0; k < s->n_net; k++)
		scl_buf_dispose(&s->net[k].bytes);
	for (size_t k = 0; k < s->n_store; k++)
		scl_buf_dispose(&s->store[k].bytes);
	free(s->net);
	free(s->store);
	free(s->model);
	scl_actors_free(s->actors);
	tcap_dispose(&s->t);
}

/* The chaotic phase: @steps random actions. */
static void
sim_run(struct sim *s, int steps)
{
	for (int step = 0; step < steps; step++) {
		unsigned what = (unsigned)(rnd(s) % 100);
		int i = (int)(rnd(s) % (uint64_t)s->n);
		if (what < 35) {
			local_op(s, i);
		} else if (what < 45) {
			s->now += rnd(s) % 3000;
			assert_scl_ok(scl_kv_tick(s->kv[i], s->now));
		} else if (what < 50) {
			assert_scl_ok(scl_kv_drain(s->kv[i]));
		} else if (s->n_net > 0) {
			/* any message, not the oldest: reordering */
			deliver_one(s, rnd(s) % s->n_net);
		}
		pump(s, i, true);
	}
}

/* The servers' answer to a host's poll: how far they hold each writer's
 * chain without a hole, told to every live replica (scl_kv_durable). */
static void
report_durable(struct sim *s)
{
	for (int w = 0; w < s->n; w++) {
		const uint8_t *writer = s->keys[w].public_key;
		uint64_t head = 0;
		for (bool grew = true; grew;) {
			grew = false;
			for (size_t k = 0; k < s->n_store; k++)
				if (memcmp(s->store[k].writer, writer, 32) ==
					0 &&
				    s->store[k].first <= head + 1 &&
				    s->store[k].last > head) {
					head = s->store[k].last;
					grew = true;
				}
		}
		for (int i = 0; i < s->n; i++)
			if (!s->dead[i] && head)
				scl_kv_durable(s->kv[i], writer, head, s->now);
	}
}

/* The network heals: everything sent is delivered, time passes so that
 * syncs and fetch retries run, until nothing moves. */
static void
sim_settle(struct sim *s)
{
	for (int i = 0; i < s->n; i++) {
		uint64_t through;
		if (s->dead[i])
			continue;
		assert_scl_ok(scl_kv_flush(s->kv[i], &through));
		assert_scl_ok(scl_kv_drain(s->kv[i]));
	}
	/* Until every live replica's digest agrees for three rounds in a
	 * row (the check that follows says whether it is the right state). */
	for (int round = 0, same = 0; same < 3 && round < 200; round++) {
		uint8_t d0[32], d[32];
		int first = -1;
		s->now += 250000; /* past the fetch retry and the sync period */
		report_durable(s);
		for (int i = 0; i < s->n; i++) {
			if (s->dead[i])
				continue;
			assert_scl_ok(scl_kv_tick(s->kv[i], s->now));
			pump(s, i, false);
		}
		while (s->n_net > 0) {
			int to = s->net[s->n_net - 1].to;
			deliver_one(s, s->n_net - 1);
			if (!s->dead[to])
				pump(s, to, false);
		}
		same++;
		for (int i = 0; i < s->n; i++) {
			if (s->dead[i])
				continue;
			if (first < 0) {
				first = i;
				scl_kv_digest(s->kv[i], d0);
				continue;
			}
			scl_kv_digest(s->kv[i], d);
			if (memcmp(d, d0, 32) != 0)
				same = 0;
		}
	}
}

struct expect_ctx {
	struct sim *s;
	size_t seen;
};

/* The model: for each key, the op with the largest version. */
static const struct model_op *
model_winner(const struct sim *s, const char *key)
{
	const struct model_op *w = NULL;

	for (size_t k = 0; k < s->n_model; k++)
		if (strcmp(s->model[k].key, key) == 0 &&
		    (w == NULL || scl_kv_version_cmp(&s->model[k].ver,
				      &w->ver) > 0))
			w = &s->model[k];
	return w;
}

static void
check_converged(struct sim *s)
{
	uint8_t d0[32], d[32];
	size_t live = 0;

	for (unsigned k = 0; k < KEYS; k++) {
		char key[16];
		const struct model_op *w;
		snprintf(key, sizeof(key), "k%02u", k);
		w = model_winner(s, key);
		live += w && !w->tomb;
		for (int i = 0; i < s->n; i++) {
			struct scl_slice v;
			if (s->dead[i])
				continue;
			struct scl_kv_version ver;
			enum scl_err e = scl_kv_get(s->kv[i],
			    scl_slice_of(key, strlen(key)), &v, &ver);
			if (w == NULL || w->tomb) {
				if (e != SCL_ENOTFOUND)
					fail_msg("replica %d holds %s, which the "
						 "model deleted or never wrote",
					    i, key);
				continue;
			}
			if (e != SCL_OK)
				fail_msg("replica %d lacks %s (model: %s)", i,
				    key, w->value);
			if (v.len != strlen(w->value) ||
			    memcmp(v.ptr, w->value, v.len) != 0 ||
			    scl_kv_version_cmp(&ver, &w->ver) != 0)
				fail_msg("replica %d: %s = %.*s, model %s", i,
				    key, (int)v.len, (const char *)v.ptr,
				    w->value);
		}
	}
	for (int i = 0; i < s->n; i++)
		if (!s->dead[i]) {
			scl_kv_digest(s->kv[i], d0);
			break;
		}
	for (int i = 0; i < s->n; i++) {
		struct scl_kv_stats st;
		if (s->dead[i])
			continue;
		scl_kv_digest(s->kv[i], d);
		assert_memory_equal(d, d0, 32);
		scl_kv_stats(s->kv[i], &st);
		assert_int_equal(st.keys, live);
		assert_int_equal(st.rejected, 0); /* honest network */
	}
}

static void
test_kv_converges_under_chaos(void **state)
{
	uint64_t lost = 0, dup = 0, fetches = 0, held = 0;

	(void)state;
	for (uint64_t seed = 1; seed <= 24; seed++) {
		struct sim s;
		int n = 3 + (int)(seed % 3);
		sim_start(&s, n, seed, 30, 10, NULL);
		sim_run(&s, 600);
		sim_settle(&s);
		check_converged(&s);
		lost += s.lost;
		dup += s.duplicated;
		for (int i = 0; i < s.n; i++) {
			struct scl_kv_stats st;
			scl_kv_stats(s.kv[i], &st);
			fetches += st.fetches;
			held += st.buffered;
		}
		sim_stop(&s);
	}
	/* The faults really happened, and the repair paths really ran. */
	assert_true(lost > 1000);
	assert_true(dup > 300);
	assert_true(fetches > 100);
	assert_true(held > 100);
	printf("24 runs: %llu messages lost, %llu duplicated, %llu fetches, "
	       "%llu batches held out of order\n", (unsigned long long)lost,
	    (unsigned long long)dup, (unsigned long long)fetches,
	    (unsigned long long)held);
}

/* With a buffer too small for anything, replicas still converge: every
 * out-of-order batch is dropped and fetched again. */
static void
test_kv_tiny_buffer_still_converges(void **state)
{
	struct scl_kv_options opt;
	struct sim s;
	uint64_t dropped = 0;

	(void)state;
	memset(&opt, 0, sizeof(opt));
	opt.pending_max_bytes = 1;
	sim_start(&s, 3, 99, 40, 0, &opt);
	sim_run(&s, 500);
	sim_settle(&s);
	check_converged(&s);
	for (int i = 0; i < s.n; i++) {
		struct scl_kv_stats st;
		scl_kv_stats(s.kv[i], &st);
		dropped += st.buffer_dropped;
		assert_int_equal(st.buffered, 0);
	}
	assert_true(dropped > 0);
	sim_stop(&s);
}

/* Two writers at the same Lamport time: the larger writer id wins, on
 * both, whichever arrives first. */
/* Every record version of a batch message (it decodes as the servers
 * would store it). */
static void
assert_records_version(struct scl_slice msg, uint16_t version)
{
	struct scl_capsule_batch b;

	scl_capsule_batch_init(&b);
	assert_scl_ok(scl_kv_msg_to_batch(msg, &b));
	for (size_t i = 0; i < b.n; i++) {
		struct scl_record r;
		assert_scl_ok(scl_capsule_record_decode(&r,
		    scl_capsule_batch_record(&b, i)));
		assert_int_equal(r.version, version);
	}
	scl_capsule_batch_dispose(&b);
}

/*
 * A replica held at records v1 (for servers of an older build) among
 * replicas writing the newest: its batches hold v1 records, and every replica
 * converges through the same loss, duplication and reordering.
 */
static void
test_kv_mixed_record_versions_converge(void **state)
{
	struct scl_kv_options v1;
	size_t seen[3] = { 0, 0, 0 };

	(void)state;
	memset(&v1, 0, sizeof(v1));
	v1.record_version = 1;
	for (uint64_t seed = 1; seed <= 4; seed++) {
		struct sim s;
		sim_start(&s, 3, seed, 30, 10, NULL);
		scl_kv_free(s.kv[0]);
		replica_open(&s, 0, &v1);
		sim_run(&s, 600);
		sim_settle(&s);
		check_converged(&s);
		for (size_t k = 0; k < s.n_store; k++) {
			bool from_v1 = memcmp(s.store[k].writer,
			    scl_kv_writer(s.kv[0]), 32) == 0;
			assert_records_version(scl_buf_slice(&s.store[k].bytes),
			    from_v1 ? 1 : SCL_RECORD_VERSION);
			seen[from_v1 ? 1 : 2]++;
		}
		sim_stop(&s);
	}
	/* Both versions were really written and applied. */
	assert_true(seen[1] > 20);
	assert_true(seen[2] > 20);
	/* A version this build does not write is refused by name. */
	{
		struct sim s;
		sim_start(&s, 1, 1, 0, 0, NULL);
		scl_kv_free(s.kv[0]);
		s.kv[0] = NULL;
		memset(&v1, 0, sizeof(v1));
		v1.record_version = SCL_RECORD_VERSION + 1;
		v1.meta = scl_buf_slice(&s.t.meta_bytes);
		v1.keys = &s.t.keys;
		v1.sign = &s.keys[0];
		v1.actors = s.actors;
		assert_scl_fails(scl_kv_new(&s.kv[0], &v1), SCL_EVERSION,
		    "record version 4");
		scl_sign_key_wipe(&s.keys[0]);
		s.n = 0;
		sim_stop(&s);
	}
}

static void
test_kv_equal_lamport_times(void **state)
{
	struct sim s;
	struct scl_slice v;
	struct scl_kv_version v0, v1;
	int big;

	(void)state;
	sim_start(&s, 2, 5, 0, 0, NULL);
	assert_scl_ok(scl_kv_put(s.kv[0], scl_slice_of("x", 1),
	    scl_slice_of("zero", 4), s.now));
	assert_scl_ok(scl_kv_put(s.kv[1], scl_slice_of("x", 1),
	    scl_slice_of("one", 3), s.now));
	assert_scl_ok(scl_kv_get(s.kv[0], scl_slice_of("x", 1), &v, &v0));
	assert_scl_ok(scl_kv_get(s.kv[1], scl_slice_of("x", 1), &v, &v1));
	assert_int_equal(v0.lamport, v1.lamport);
	big = memcmp(scl_kv_writer(s.kv[0]), scl_kv_writer(s.kv[1]), 32) > 0
	    ? 0 : 1;
	sim_settle(&s);
	for (int i = 0; i < 2; i++) {
		assert_scl_ok(scl_kv_get(s.kv[i], scl_slice_of("x", 1), &v,
		    &v0));
		assert_memory_equal(v0.writer, scl_kv_writer(s.kv[big]), 32);
		assert_memory_equal(v.ptr, big ? "one" : "zero", v.len);
	}
	sim_stop(&s);
}

/* Everything an attacker on the network can send is rejected or
 * ignored, counted, and changes nothing. */
static void
test_kv_rejects_forgeries(void **state)
{
	struct sim s;
	struct scl_kv_output o;
	struct scl_buf good, bad;
	struct scl_kv_stats st;
	uint8_t before[32], after[32];

	(void)state;
	sim_start(&s, 2, 7, 0, 0, NULL);
	scl_buf_init(&good);
	scl_buf_init(&bad);
	scl_kv_output_init(&o);
	/* Replica 0 writes; keep its first data batch (after the cert). */
	assert_scl_ok(scl_kv_put(s.kv[0], scl_slice_of("a", 1),
	    scl_slice_of("1", 1), s.now));
	{
		uint64_t through;
		assert_scl_ok(scl_kv_flush(s.kv[0], &through));
		assert_scl_ok(scl_kv_drain(s.kv[0]));
	}
	while (scl_kv_next_output(s.kv[0], &o))
		if (o.kind == SCL_KV_OUT_BATCH) {
			if (good.len) /* the certificate went first */
				assert_scl_ok(scl_kv_receive(s.kv[1],
				    scl_buf_slice(&good), s.now));
			assert_scl_ok(scl_buf_set(&good, scl_buf_slice(&o.msg)));
		}
	scl_kv_digest(s.kv[1], before);

	/* Every single-byte change of the batch is refused. */
	for (size_t i = 0; i < good.len; i += 7) {
		assert_scl_ok(scl_buf_set(&bad, scl_buf_slice(&good)));
		bad.ptr[i] ^= 0x20;
		assert_scl_ok(scl_kv_receive(s.kv[1], scl_buf_slice(&bad),
		    s.now));
		scl_kv_digest(s.kv[1], after);
		assert_memory_equal(before, after, 32);
	}
	scl_kv_stats(s.kv[1], &st);
	assert_true(st.rejected + st.buffered >= good.len / 7 - 2);
	/* Truncations and garbage. */
	for (size_t len = 0; len < good.len; len += 13)
		assert_scl_ok(scl_kv_receive(s.kv[1], scl_slice_of(good.ptr,
		    len), s.now));
	/* A plain (unsigned) batch to a paranoid replica. */
	{
		uint8_t plain[2 + 32 + 8 + 4] = { SCL_KV_MSG_PLAIN, 1 };
		uint64_t rej;
		scl_kv_stats(s.kv[1], &st);
		rej = st.rejected;
		assert_scl_ok(scl_kv_receive(s.kv[1], scl_slice_of(plain,
		    sizeof(plain)), s.now));
		scl_kv_stats(s.kv[1], &st);
		assert_int_equal(st.rejected, rej + 1);
	}
	/* The honest batch still applies afterwards... */
	assert_scl_ok(scl_kv_receive(s.kv[1], scl_buf_slice(&good), s.now));
	{
		struct scl_slice v;
		assert_scl_ok(scl_kv_get(s.kv[1], scl_slice_of("a", 1), &v,
		    NULL));
		assert_memory_equal(v.ptr, "1", 1);
	}
	/* ...and its replay is a duplicate that changes nothing. */
	scl_kv_stats(s.kv[1], &st);
	{
		uint64_t dups = st.duplicates;
		scl_kv_digest(s.kv[1], before);
		assert_scl_ok(scl_kv_receive(s.kv[1], scl_buf_slice(&good),
		    s.now));
		scl_kv_stats(s.kv[1], &st);
		assert_int_equal(st.duplicates, dups + 1);
		scl_kv_digest(s.kv[1], after);
		assert_memory_equal(before, after, 32);
	}
	/* A writer the owner never certified: its batch never applies. */
	{
		struct scl_sign_key rogue;
		struct scl_kv_options opt;
		struct scl_kv *r;
		uint64_t through;
		memset(&opt, 0, sizeof(opt));
		scl_sign_keygen(&rogue);
		opt.meta = scl_buf_slice(&s.t.meta_bytes);
		opt.keys = &s.t.keys;
		opt.sign = &rogue;
		opt.actors = s.actors; /* no certificate */
		assert_scl_ok(scl_kv_new(&r, &opt));
		assert_scl_ok(scl_kv_put(r, scl_slice_of("a", 1),
		    scl_slice_of("evil", 4), s.now));
		assert_scl_ok(scl_kv_flush(r, &through));
		assert_scl_ok(scl_kv_drain(r));
		scl_kv_stats(s.kv[1], &st);
		{
			uint64_t rej = st.rejected;
			while (scl_kv_next_output(r, &o))
				assert_scl_ok(scl_kv_receive(s.kv[1],
				    scl_buf_slice(&o.msg), s.now));
			scl_kv_stats(s.kv[1], &st);
			assert_int_equal(st.rejected, rej + 1);
		}
		{
			struct scl_slice v;
			assert_scl_ok(scl_kv_get(s.kv[1], scl_slice_of("a", 1),
			    &v, NULL));
			assert_memory_equal(v.ptr, "1", 1);
		}
		scl_kv_free(r);
		scl_sign_key_wipe(&rogue);
	}
	scl_kv_output_dispose(&o);
	scl_buf_dispose(&good);
	scl_buf_dispose(&bad);
	sim_stop(&s);
}

/* Scans: key order, prefix, range, limit, tombstones skipped. */
static bool
collect(void *ctx, struct scl_slice key, struct scl_slice value,
    const struct scl_kv_version *ver)
{
	struct scl_buf *b = ctx;
	(void)value;
	(void)ver;
	assert_scl_ok(scl_buf_append(b, key.ptr, key.len));
	assert_scl_ok(scl_buf_append(b, ",", 1));
	return true;
}

static void
test_kv_scan(void **state)
{
	struct sim s;
	struct scl_buf out;
	const char *keys[] = { "b/2", "a/1", "b/10", "c", "b/1", "", "b" };

	(void)state;
	sim_start(&s, 1, 3, 0, 0, NULL);
	scl_buf_init(&out);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		assert_scl_ok(scl_kv_put(s.kv[0], scl_slice_of(keys[i],
		    strlen(keys[i])), scl_slice_of("v", 1), s.now));
	assert_scl_ok(scl_kv_delete(s.kv[0], scl_slice_of("b/10", 4), s.now));
#define SCAN(pfx, from, to, lim, want)                                        \
	do {                                                                  \
		scl_buf_clear(&out);                                          \
		scl_kv_scan(s.kv[0], scl_slice_of(pfx, strlen(pfx)),          \
		    scl_slice_of(from, strlen(from)),                         \
		    scl_slice_of(to, strlen(to)), lim, collect, &out);        \
		assert_int_equal(out.len, strlen(want));                      \
		assert_memory_equal(out.ptr, want, out.len);                  \
	} while (0)
	SCAN("", "", "", 0, ",a/1,b,b/1,b/2,c,");
	SCAN("b/", "", "", 0, "b/1,b/2,");
	SCAN("", "b", "c", 0, "b,b/1,b/2,");
	SCAN("", "a", "", 2, "a/1,b,");
	SCAN("b", "b/15", "", 0, "b/2,");
	SCAN("zz", "", "", 0, "");
#undef SCAN
	scl_buf_dispose(&out);
	sim_stop(&s);
}

/* Values are stored in their entry while they fit and move to their own
 * allocation when a bigger one comes: every size change reads back
 * right, on the writer and on a peer that applied its batches (ASan
 * checks the moves). */
static void
test_kv_values_change_size(void **state)
{
	static const size_t sizes[] = { 10, 16, 17, 1000, 5, 0, 40, 100000,
		3, 1000 };
	struct sim s;
	struct scl_buf v;

	(void)state;
	sim_start(&s, 2, 5, 0, 0, NULL);
	scl_buf_init(&v);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct scl_slice got;
		scl_buf_clear(&v);
		assert_scl_ok(scl_buf_reserve(&v, sizes[i] + 1));
		memset(v.ptr, 'a' + (int)i, sizes[i]);
		v.len = sizes[i];
		if (i == 5) { /* a tombstone in between */
			assert_scl_ok(scl_kv_delete(s.kv[0],
			    scl_slice_of("k", 1), s.now));
			assert_int_equal(scl_kv_get(s.kv[0], scl_slice_of("k",
			    1), &got, NULL), SCL_ENOTFOUND);
		} else {
			assert_scl_ok(scl_kv_put(s.kv[0], scl_slice_of("k", 1),
			    scl_buf_slice(&v), s.now));
		}
		sim_settle(&s);
		for (int r = 0; r < 2 && i != 5; r++) {
			assert_scl_ok(scl_kv_get(s.kv[r], scl_slice_of("k", 1),
			    &got, NULL));
			assert_int_equal(got.len, sizes[i]);
			assert_memory_equal(got.ptr, v.ptr, sizes[i]);
		}
	}
	scl_buf_dispose(&v);
	sim_stop(&s);
}

/* Replica 0's last batches reach its peers but never the servers (its
 * appender died first), then replica 0 dies.  The peers hand them on, and
 * a replica started afterwards, from the servers alone, ends with the
 * same state as theirs, every operation of the dead writer included. */
static void
test_kv_dead_writer_handed_on(void **state)
{
	struct sim s;
	uint64_t handed = 0, through;

	(void)state;
	sim_start(&s, 3, 7, 0, 0, NULL);
	for (int k = 0; k < 40; k++)
		local_op(&s, k % 3);
	for (int i = 0; i < 3; i++)
		pump(&s, i, false);
	sim_settle(&s);
	s.unstoring[0] = true;
	for (int k = 0; k < 30; k++)
		local_op(&s, 0);
	assert_scl_ok(scl_kv_flush(s.kv[0], &through));
	assert_scl_ok(scl_kv_drain(s.kv[0]));
	pump(&s, 0, false);
	while (s.n_net > 0) /* the peers have it all */
		deliver_one(&s, s.n_net - 1);
	s.dead[0] = true;
	/* A new replica, from the servers and its peers' syncs. */
	replica_open(&s, 3, NULL);
	s.n = 4;
	sim_settle(&s);
	check_converged(&s);
	for (int i = 1; i < 3; i++) {
		struct scl_kv_stats st;
		scl_kv_stats(s.kv[i], &st);
		handed += st.handed_on;
	}
	assert_true(handed > 0);
	sim_stop(&s);
}

/* Replica 0's last batch reaches nobody and no server, but its signed
 * head does (a SYNC), and then it dies: that tail exists nowhere.  Every
 * live replica gives the gap up alike (a NOTICE each), and they agree. */
static void
test_kv_lost_tail_given_up(void **state)
{
	struct sim s;
	uint8_t d1[32], d2[32];
	uint64_t through;

	(void)state;
	sim_start(&s, 3, 8, 0, 0, NULL);
	for (int k = 0; k < 30; k++)
		local_op(&s, k % 3);
	for (int i = 0; i < 3; i++)
		pump(&s, i, false);
	sim_settle(&s);
	s.unstoring[0] = true;
	for (int k = 0; k < 10; k++)
		local_op(&s, 0);
	assert_scl_ok(scl_kv_flush(s.kv[0], &through));
	assert_scl_ok(scl_kv_drain(s.kv[0]));
	pump(&s, 0, false);
	for (size_t k = 0; k < s.n_net; k++) /* the batch is lost */
		scl_buf_dispose(&s.net[k].bytes);
	s.n_net = 0;
	s.now += 200000;
	assert_scl_ok(scl_kv_tick(s.kv[0], s.now)); /* its SYNC goes out */
	pump(&s, 0, false);
	s.dead[0] = true;
	sim_settle(&s);
	/* The survivors agree at once; time runs on past the give-up. */
	for (int round = 0; round < 60; round++) {
		s.now += 250000;
		for (int i = 1; i < 3; i++) {
			assert_scl_ok(scl_kv_tick(s.kv[i], s.now));
			pump(&s, i, false);
		}
		while (s.n_net > 0)
			deliver_one(&s, s.n_net - 1);
	}
	scl_kv_digest(s.kv[1], d1);
	scl_kv_digest(s.kv[2], d2);
	assert_memory_equal(d1, d2, 32);
	for (int i = 1; i < 3; i++) {
		struct scl_kv_stats st;
		struct scl_kv_peer peers[4];
		size_t np = scl_kv_peers(s.kv[i], peers, 4), k;
		scl_kv_stats(s.kv[i], &st);
		assert_int_equal(st.gaps_abandoned, 1);
		for (k = 0; k < np; k++)
			if (memcmp(peers[k].writer, s.keys[0].public_key, 32) ==
			    0)
				break;
		assert_true(k < np);
		assert_true(peers[k].gap_abandoned);
		assert_true(peers[k].known > peers[k].applied);
	}
	assert_true(s.notices >= 2);
	sim_stop(&s);
}

/*
 * More writers than a SYNC carries heads (16): one replica slot restarts
 * as a new writer 18 times, as a worker killed and restarted would, so
 * the capsule ends with 20 writers.  A replica started last, which can
 * learn of the old writers only from its peers' SYNCs, must still reach
 * every one of them: SYNCs take the heads in turn.
 */
static void
test_kv_sync_reaches_every_writer(void **state)
{
	struct sim s;
	uint64_t through;

	(void)state;
	sim_start(&s, 3, 12, 0, 0, NULL);
	for (int round = 0; round < 18; round++) {
		scl_kv_free(s.kv[2]);
		scl_sign_key_wipe(&s.keys[2]);
		replica_open(&s, 2, NULL);
		for (int k = 0; k < 3; k++)
			local_op(&s, 2);
		assert_scl_ok(scl_kv_flush(s.kv[2], &through));
		assert_scl_ok(scl_kv_drain(s.kv[2]));
		pump(&s, 2, false);
		sim_settle(&s);
	}
	replica_open(&s, 3, NULL);
	s.n = 4;
	sim_settle(&s);
	check_converged(&s);
	{
		struct scl_kv_stats st;
		scl_kv_stats(s.kv[3], &st);
		assert_int_equal(st.writers, 20);
	}
	sim_stop(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kv_scan),
		cmocka_unit_test(test_kv_values_change_size),
		cmocka_unit_test(test_kv_equal_lamport_times),
		cmocka_unit_test(test_kv_rejects_forgeries),
		cmocka_unit_test(test_kv_tiny_buffer_still_converges),
		cmocka_unit_test(test_kv_converges_under_chaos),
		cmocka_unit_test(test_kv_mixed_record_versions_converge),
		cmocka_unit_test(test_kv_dead_writer_handed_on),
		cmocka_unit_test(test_kv_lost_tail_given_up),
		cmocka_unit_test(test_kv_sync_reaches_every_writer),
	};
	if (scl_init() != SCL_OK)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
