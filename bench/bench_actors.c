/*
 * bench_actors.c - scl bench actors: puts turned into sealed, chained,
 * signed records, batched on the crypto actor pool, against one record
 * and one signature per put on one thread; and the same for verifying
 * them on receipt.  Both measured in the same run, ratio printed.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define PUT_BYTES 100
#define WRITERS_MAX 8


/* One capsule with its owner writing, and a place for its records. */
struct chain {
	struct scl_sign_key owner;
	struct scl_capsule_meta meta;
	uint8_t name[SCL_NAME_BYTES];
	struct scl_capsule_keyring keys;
	struct scl_capsule_writer *w;
	struct scl_buf *recs, *hbs;	/* one per batch */
	size_t n, cap;
	_Atomic uint64_t puts;
};

static enum scl_err
chain_init(struct chain *c)
{
	struct scl_capsule_head head;
	struct scl_buf meta;
	enum scl_err e;

	memset(c, 0, sizeof(*c));
	memset(&head, 0, sizeof(head));
	scl_buf_init(&meta);
	scl_sign_keygen(&c->owner);
	memcpy(c->meta.owner, c->owner.public_key, 32);
	c->meta.aead = SCL_AEAD_AES256GCM;
	c->meta.replicas = c->meta.write_quorum = 1;
	if ((e = scl_capsule_meta_encode(&meta, &c->meta, &c->owner)) !=
	    SCL_OK)
		return e;
	scl_capsule_name(c->name, scl_buf_slice(&meta));
	scl_buf_dispose(&meta);
	c->keys.n_epochs = 1;
	c->keys.epochs[0].epoch = 1;
	scl_random(c->keys.epochs[0].key, 32);
	return scl_capsule_writer_new(&c->w, c->name, SCL_AEAD_AES256GCM,
	    &c->owner, 1, c->keys.epochs[0].key, &head);
}

static void
chain_dispose(struct chain *c)
{
	for (size_t i = 0; i < c->n; i++) {
		scl_buf_dispose(&c->recs[i]);
		scl_buf_dispose(&c->hbs[i]);
	}
	free(c->recs);
	free(c->hbs);
	scl_capsule_writer_free(c->w);
	scl_sign_key_wipe(&c->owner);
	scl_capsule_keyring_wipe(&c->keys);
}

/* Keeps a finished batch (one record) for the verification phase. */
static void
keep(void *arg, const struct scl_capsule_batch *b)
{
	struct chain *c = arg;

	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 1024;
		struct scl_buf *r = realloc(c->recs, cap * sizeof(*r));
		struct scl_buf *h;
		if (r == NULL)
			return;
		c->recs = r;
		if ((h = realloc(c->hbs, cap * sizeof(*h))) == NULL)
			return;
		c->hbs = h;
		c->cap = cap;
	}
	scl_buf_init(&c->recs[c->n]);
	scl_buf_init(&c->hbs[c->n]);
	if (scl_buf_set(&c->recs[c->n], scl_capsule_batch_record(b, 0)) ==
		SCL_OK &&
	    scl_buf_set(&c->hbs[c->n], scl_buf_slice(&b->heartbeat)) == SCL_OK)
		c->n++;
}

/* One record and one heartbeat signature per put, on this thread. */
static enum scl_err
put_one_by_one(struct chain *c, uint64_t puts, double *secs)
{
	struct scl_capsule_batch b;
	uint8_t put[PUT_BYTES];
	enum scl_err e = SCL_OK;
	double t0 = bench_now();

	scl_capsule_batch_init(&b);
	scl_random(put, sizeof(put));
	for (uint64_t i = 0; i < puts && e == SCL_OK; i++) {
		scl_capsule_batch_clear(&b);
		e = scl_capsule_writer_append(c->w, &b, SCL_RECORD_DATA,
		    scl_slice_of(put, sizeof(put)));
		if (e == SCL_OK)
			e = scl_capsule_writer_seal_batch(c->w, &b, 1);
		if (e == SCL_OK)
			keep(c, &b);
	}
	*secs = bench_now() - t0;
	scl_capsule_batch_dispose(&b);
	return e;
}

/* Verifies one kept record: heartbeat signature, hash, decryption. */
struct vjob {
	struct scl_actor_job job;
	struct chain *c;
	size_t i;
	enum scl_err err;
	uint64_t puts;
};

static void
verify_run(struct scl_actor_job *job)
{
	struct vjob *v = (struct vjob *)job;
	struct scl_heartbeat hb;
	struct scl_record r;
	struct scl_buf plain;
	uint8_t hash[32];
	struct scl_slice payload, p;
	bool bad;

	scl_buf_init(&plain);
	v->err = scl_capsule_heartbeat_decode(&hb,
	    scl_buf_slice(&v->c->hbs[v->i]));
	if (v->err == SCL_OK)
		v->err = scl_capsule_heartbeat_verify(&hb);
	if (v->err == SCL_OK)
		v->err = scl_capsule_record_decode(&r,
		    scl_buf_slice(&v->c->recs[v->i]));
	if (v->err == SCL_OK)
		v->err = scl_capsule_record_hash(hash, &r);
	if (v->err == SCL_OK && memcmp(hash, hb.hash, 32) != 0)
		v->err = SCL_EVERIFY;
	if (v->err == SCL_OK)
		v->err = scl_capsule_record_open(&plain, &r, SCL_AEAD_AES256GCM,
		    v->c->keys.epochs[0].key);
	v->puts = 0;
	payload = scl_buf_slice(&plain);
	while (v->err == SCL_OK && scl_batch_next_put(&payload, &p, &bad))
		v->puts++;
	if (v->err == SCL_OK && v->puts == 0)
		v->puts = 1; /* an unbatched record holds one bare put */
	scl_buf_dispose_secret(&plain);
}

static enum scl_err
verify_all(struct scl_actors *pool, struct chain *cs, int nc, double *secs,
    uint64_t *puts)
{
	struct scl_actor_stream *s;
	struct vjob *jobs;
	size_t total = 0, k = 0;
	enum scl_err e;
	double t0;

	for (int i = 0; i < nc; i++)
		total += cs[i].n;
	if ((jobs = calloc(total, sizeof(*jobs))) == NULL)
		return scl_err_set(SCL_ENOMEM, "verify jobs");
	if ((e = scl_actor_stream_new(pool, &s, false)) != SCL_OK) {
		free(jobs);
		return e;
	}
	t0 = bench_now();
	for (int i = 0; i < nc; i++)
		for (size_t r = 0; r < cs[i].n; r++, k++) {
			jobs[k].job.run = verify_run;
			jobs[k].c = &cs[i];
			jobs[k].i = r;
			scl_actor_submit(s, &jobs[k].job);
		}
	scl_actor_stream_wait(s);
	*secs = bench_now() - t0;
	*puts = 0;
	for (k = 0; k < total; k++) {
		if (jobs[k].err != SCL_OK)
			e = scl_err_set(SCL_EVERIFY, "record %zu did not verify",
			    k);
		*puts += jobs[k].puts;
	}
	scl_actor_stream_free(s);
	free(jobs);
	return e;
}

int bench_actors(struct cli_args *a);

int
bench_actors(struct cli_args *a)
{
	struct scl_actors *pool = NULL, *one = NULL;
	struct chain *cs = calloc(WRITERS_MAX + 1, sizeof(*cs));
	struct scl_batcher *batchers[WRITERS_MAX] = { NULL };
	struct scl_batcher_options bopt = { .max_puts = 1024,
	    .max_bytes = (size_t)256 << 10 };
	uint8_t put[PUT_BYTES];
	uint64_t single_puts = cli_has(a, "quick") ? 2000 : 20000;
	uint64_t batched_puts = single_puts * 50, vputs = 0;
	double t_single = 0, t_batched, v_single = 0, v_batched = 0;
	unsigned threads;
	int nw, rc = CLI_FAIL;
	enum scl_err e;

	scl_random(put, sizeof(put));
	if (cs == NULL || (e = scl_actors_new(&pool, 0)) != SCL_OK ||
	    (e = scl_actors_new(&one, 1)) != SCL_OK) {
		rc = cli_fail(a, "cannot start the actor pool");
		goto done;
	}
	threads = scl_actors_threads(pool);
	nw = threads > WRITERS_MAX ? WRITERS_MAX : (int)threads;
	for (int i = 0; i <= nw; i++)
		if ((e = chain_init(&cs[i])) != SCL_OK) {
			rc = cli_fail_err(a, e);
			goto done;
		}
	fprintf(stderr, "bench actors: one record and one signature per put...\n");
	if ((e = put_one_by_one(&cs[nw], single_puts, &t_single)) != SCL_OK) {
		rc = cli_fail_err(a, e);
		goto done;
	}
	fprintf(stderr, "bench actors: batched on %u actors, %d writers...\n",
	    threads, nw);
	for (int i = 0; i < nw; i++)
		if ((e = scl_batcher_new(&batchers[i], pool, cs[i].w, &bopt, keep,
			 &cs[i])) != SCL_OK) {
			rc = cli_fail_err(a, e);
			goto done;
		}
	t_batched = bench_now();
	for (uint64_t i = 0; i < batched_puts; i++)
		if ((e = scl_batcher_put(batchers[i % (uint64_t)nw],
			 scl_slice_of(put, sizeof(put)))) != SCL_OK)
			break;
	for (int i = 0; i < nw && e == SCL_OK; i++)
		e = scl_batcher_finish(batchers[i]);
	t_batched = bench_now() - t_batched;
	if (e != SCL_OK) {
		rc = cli_fail_err(a, e);
		goto done;
	}
	printf("{\"bench\":\"actors\",\"what\":\"seal\",\"put_bytes\":%d,"
	       "\"actors\":%u,\"writers\":%d,\"puts_per_record\":1024,"
	       "\"batched_puts_per_s\":%.0f,\"one_record_per_put_per_s\":%.0f,"
	       "\"ratio\":%.1f}\n",
	    PUT_BYTES, threads, nw, (double)batched_puts / t_batched,
	    (double)single_puts / t_single,
	    ((double)batched_puts / t_batched) /
		((double)single_puts / t_single));
	fflush(stdout);
	fprintf(stderr, "bench actors: verifying on receipt...\n");
	if ((e = verify_all(one, &cs[nw], 1, &v_single, &vputs)) != SCL_OK ||
	    vputs != single_puts) {
		rc = cli_fail(a, "single-put verification: %s", scl_err_last());
		goto done;
	}
	if ((e = verify_all(pool, cs, nw, &v_batched, &vputs)) != SCL_OK ||
	    vputs != batched_puts) {
		rc = cli_fail(a, "batched verification: %s (%llu puts)",
		    scl_err_last(), (unsigned long long)vputs);
		goto done;
	}
	printf("{\"bench\":\"actors\",\"what\":\"verify\",\"put_bytes\":%d,"
	       "\"actors\":%u,\"batched_puts_per_s\":%.0f,"
	       "\"one_record_per_put_per_s\":%.0f,\"ratio\":%.1f}\n",
	    PUT_BYTES, threads, (double)batched_puts / v_batched,
	    (double)single_puts / v_single,
	    ((double)batched_puts / v_batched) /
		((double)single_puts / v_single));
	rc = CLI_OK;
done:
	for (int i = 0; i < WRITERS_MAX; i++)
		scl_batcher_free(batchers[i]);
	scl_actors_free(pool);
	scl_actors_free(one);
	if (cs)
		for (int i = 0; i <= WRITERS_MAX; i++)
			if (cs[i].w)
				chain_dispose(&cs[i]);
	free(cs);
	return rc;
}
