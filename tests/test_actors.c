/*
 * test_actors.c - the actor pool's ordering guarantees and the batcher
 * that turns puts into verified records (also run under TSan).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "helpers.h"

struct tjob {
	struct scl_actor_job job;
	unsigned id;
	unsigned delay_us;
	unsigned *log;
	_Atomic unsigned *next_slot;
	_Atomic int *active;
	_Atomic int *overlaps;
};

static void
tjob_run(struct scl_actor_job *job)
{
	struct tjob *t = (struct tjob *)job;
	struct timespec ts = { 0, (long)t->delay_us * 1000 };

	if (t->active && atomic_fetch_add(t->active, 1) != 0)
		atomic_fetch_add(t->overlaps, 1);
	nanosleep(&ts, NULL);
	if (t->active)
		atomic_fetch_sub(t->active, 1);
}

static void
tjob_done(struct scl_actor_job *job)
{
	struct tjob *t = (struct tjob *)job;
	t->log[atomic_fetch_add(t->next_slot, 1)] = t->id;
}

/* Jobs of random duration on a parallel stream finish out of order but
 * complete in submission order; a serial stream never runs two at once. */
static void
test_actors_order_and_serial(void **state)
{
	enum { N = 400 };
	struct scl_actors *a;
	struct scl_actor_stream *par, *ser;
	struct tjob *jobs = calloc(2 * N, sizeof(*jobs));
	unsigned log_par[N], log_ser[N];
	_Atomic unsigned slot_par = 0, slot_ser = 0;
	_Atomic int active = 0, overlaps = 0;

	(void)state;
	assert_scl_ok(scl_actors_new(&a, 4));
	assert_scl_ok(scl_actor_stream_new(a, &par, false));
	assert_scl_ok(scl_actor_stream_new(a, &ser, true));
	for (unsigned i = 0; i < N; i++) {
		struct tjob *p = &jobs[i], *s = &jobs[N + i];
		p->job.run = s->job.run = tjob_run;
		p->job.done = s->job.done = tjob_done;
		p->id = s->id = i;
		p->delay_us = (i * 7919u) % 300;
		s->delay_us = (i * 104729u) % 50;
		p->log = log_par;
		s->log = log_ser;
		p->next_slot = &slot_par;
		s->next_slot = &slot_ser;
		s->active = &active;
		s->overlaps = &overlaps;
		scl_actor_submit(par, &p->job);
		scl_actor_submit(ser, &s->job);
	}
	scl_actor_stream_wait(par);
	scl_actor_stream_wait(ser);
	for (unsigned i = 0; i < N; i++) {
		assert_int_equal(log_par[i], i);
		assert_int_equal(log_ser[i], i);
	}
	assert_int_equal(atomic_load(&overlaps), 0);
	scl_actor_stream_free(par);
	scl_actor_stream_free(ser);
	scl_actors_free(a);
	free(jobs);
}

struct sink {
	struct mem_src src;
	uint64_t batches;
	uint64_t next_seqno;
	unsigned errors;
	pthread_t caller;
	uint64_t on_caller;	/* batches delivered on the caller's thread */
};

static void
collect(void *arg, const struct scl_capsule_batch *b)
{
	struct sink *k = arg;

	if (b->first_seqno != k->next_seqno || b->heartbeat.len == 0)
		k->errors++;
	k->next_seqno = b->first_seqno + b->n;
	k->batches++;
	if (pthread_equal(pthread_self(), k->caller))
		k->on_caller++;
	mem_src_add_batch(&k->src, b);
}

/* 20k puts of varying sizes become records: delivered in chain order,
 * at most one signature per 256 puts, and the chain verifies and opens
 * to exactly the puts, in order.  With @inline_max, batches up to that
 * size are sealed on this thread when none is in flight: every 7th put
 * flushes a small batch, and one sealed inline is delivered before the
 * flush returns (@inline_max SIZE_MAX: every batch). */
static void
batcher_round(size_t inline_max)
{
	enum { PUTS = 20000 };
	struct scl_actors *a;
	struct scl_batcher *b;
	struct scl_batcher_options opt = { .max_puts = 256,
		.inline_max_bytes = inline_max };
	struct sink k;
	struct tcap t;
	struct scl_capsule_source src;
	struct scl_capsule_verify_stats st;
	struct scl_capsule_opener *o;
	struct scl_buf plain;
	char put[300];
	uint64_t seen = 0, flushes = 0;

	tcap_init(&t, SCL_AEAD_AES256GCM, 60);
	memset(&k, 0, sizeof(k));
	mem_src_init(&k.src);
	k.next_seqno = 1;
	k.caller = pthread_self();
	assert_scl_ok(scl_actors_new(&a, 2));
	assert_scl_ok(scl_batcher_new(&b, a, t.w, &opt, collect, &k));
	for (unsigned i = 0; i < PUTS; i++) {
		int n = snprintf(put, sizeof(put), "put %u %.*s", i,
		    (int)(i % 200), "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqr"
		    "stuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"
		    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefgh"
		    "ijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz");
		assert_scl_ok(scl_batcher_put(b, scl_slice_of(put, (size_t)n)));
		if (inline_max && i % 7 == 6) {
			assert_scl_ok(scl_batcher_flush(b));
			flushes++;
			if (inline_max == SIZE_MAX)
				assert_int_equal(k.batches, flushes);
		}
	}
	assert_scl_ok(scl_batcher_finish(b));
	assert_int_equal(k.errors, 0);
	print_message("%d puts in %llu records (one signature each)\n", PUTS,
	    (unsigned long long)k.batches);
	assert_true(k.batches <= (inline_max ? flushes + 1 : PUTS / 256 + 1));
	if (inline_max == 0)
		assert_int_equal(k.on_caller, 0);
	else if (inline_max == SIZE_MAX)
		assert_int_equal(k.on_caller, k.batches);
	else /* both ways, interleaved */
		assert_true(k.on_caller > 0 && k.on_caller < k.batches);
	src = mem_src_source(&k.src);
	memset(&st, 0, sizeof(st));
	assert_scl_ok(scl_capsule_opener_new(&o, t.meta.aead, &t.keys));
	assert_scl_ok(scl_capsule_verify_chain(&st, &src, t.name, &t.meta,
	    t.owner.public_key, k.src.n, o));
	scl_buf_init(&plain);
	for (uint64_t s = 1; s <= k.src.n; s++) {
		struct scl_record r;
		struct scl_slice payload, p;
		bool bad;
		assert_scl_ok(scl_capsule_record_decode(&r,
		    scl_buf_slice(&k.src.rec[s - 1])));
		assert_scl_ok(scl_capsule_opener_open(o, &plain, &r));
		payload = scl_buf_slice(&plain);
		while (scl_batch_next_put(&payload, &p, &bad)) {
			int n = snprintf(put, sizeof(put), "put %llu ",
			    (unsigned long long)seen);
			assert_true(p.len >= (size_t)n);
			assert_memory_equal(p.ptr, put, (size_t)n);
			seen++;
		}
		assert_false(bad);
	}
	assert_int_equal(seen, PUTS);
	/* A put larger than a batch is refused, not split. */
	{
		static uint8_t big[70000];
		assert_scl_fails(scl_batcher_put(b, scl_slice_of(big,
		    sizeof(big))), SCL_ELIMIT, "exceeds");
	}
	scl_buf_dispose_secret(&plain);
	scl_capsule_opener_free(o);
	scl_batcher_free(b);
	scl_actors_free(a);
	mem_src_dispose(&k.src);
	tcap_dispose(&t);
}

static void
test_actors_batcher_puts_to_records(void **state)
{
	(void)state;
	batcher_round(0);
}

/* Small batches sealed inline interleave with ones on the actors
 * (1 KiB: a batch of 7 short puts fits, one of 7 long ones does not, nor
 * any while another is in flight) and keep chain order; with every batch
 * inline, each is delivered by its flush. */
static void
test_actors_batcher_inline_seal(void **state)
{
	(void)state;
	batcher_round((size_t)1 << 10);
	batcher_round(SIZE_MAX);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_actors_order_and_serial),
		cmocka_unit_test(test_actors_batcher_puts_to_records),
		cmocka_unit_test(test_actors_batcher_inline_seal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
