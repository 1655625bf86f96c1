/*
 * test_ring.c - the shared-memory ring: ordering, wrap-around, limits,
 * back-pressure without loss, corruption by the other side, sleeping
 * when idle, and a two-thread stress test (also run under TSan).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

struct pair {
	void *mem;
	size_t cap;
	struct scl_ring *tx, *rx;
};

static void
pair_open(struct pair *p, size_t cap, const struct scl_ring_options *opt)
{
	p->cap = cap;
	assert_int_equal(posix_memalign(&p->mem, 64, scl_ring_memory_size(cap)),
	    0);
	assert_scl_ok(scl_ring_format(p->mem, cap));
	assert_scl_ok(scl_ring_attach(&p->tx, p->mem, cap, SCL_RING_PRODUCER,
	    opt));
	assert_scl_ok(scl_ring_attach(&p->rx, p->mem, cap, SCL_RING_CONSUMER,
	    opt));
}

static void
pair_close(struct pair *p)
{
	scl_ring_detach(p->tx);
	scl_ring_detach(p->rx);
	free(p->mem);
}

static void
test_ring_order_wrap_and_limits(void **state)
{
	struct pair p;
	uint8_t out[4096], in[4096];
	size_t len;

	(void)state;
	pair_open(&p, 4096, NULL);
	assert_int_equal(scl_ring_max_message(p.tx), 2040);
	/* Many rounds of odd sizes: messages straddle the end often. */
	for (int round = 0; round < 2000; round++) {
		size_t n = (size_t)(round * 37) % 2041;
		for (size_t i = 0; i < n; i++)
			out[i] = (uint8_t)(round + i);
		assert_scl_ok(scl_ring_send(p.tx, out, n));
		assert_scl_ok(scl_ring_recv(p.rx, in, sizeof(in), &len, 0));
		assert_int_equal(len, n);
		assert_memory_equal(in, out, n);
	}
	assert_scl_fails(scl_ring_send(p.tx, out, 2041), SCL_ELIMIT,
	    "exceeds the ring's 2040");
	assert_scl_fails(scl_ring_recv(p.rx, in, sizeof(in), &len, 0),
	    SCL_ETIMEOUT, NULL);
	/* A message too large for the reader's buffer stays in the ring. */
	assert_scl_ok(scl_ring_send(p.tx, out, 100));
	assert_scl_fails(scl_ring_recv(p.rx, in, 50, &len, 0), SCL_ELIMIT,
	    "does not fit");
	assert_scl_ok(scl_ring_recv(p.rx, in, sizeof(in), &len, 0));
	assert_int_equal(len, 100);
	/* Wrong roles and bad geometry are refused. */
	assert_scl_fails(scl_ring_recv(p.tx, in, sizeof(in), &len, 0),
	    SCL_EINVAL, "producer side");
	assert_scl_fails(scl_ring_format(p.mem, 5000), SCL_EINVAL,
	    "power of two");
	pair_close(&p);
}

/* The other side is hostile: impossible counters and lengths are
 * reported, never followed. */
static void
test_ring_rejects_corruption(void **state)
{
	struct pair p;
	uint8_t buf[4096];
	uint64_t *head, *tail;
	size_t len;

	(void)state;
	/* Each scenario on a fresh ring: a side that saw corruption keeps
	 * its last reading and stays failed, which is the point. */
	pair_open(&p, 4096, NULL);
	head = (uint64_t *)p.mem;
	*head = 1u << 20; /* claims more than the ring holds */
	assert_scl_fails(scl_ring_recv(p.rx, buf, sizeof(buf), &len, 0),
	    SCL_EFORMAT, "ring corrupted");
	assert_scl_fails(scl_ring_recv(p.rx, buf, sizeof(buf), &len, 0),
	    SCL_EFORMAT, "ring corrupted");
	pair_close(&p);

	pair_open(&p, 4096, NULL);
	head = (uint64_t *)p.mem;
	*head = 16;
	memset((uint8_t *)p.mem + 192, 0xff, 4); /* length 4 GiB */
	assert_scl_fails(scl_ring_recv(p.rx, buf, sizeof(buf), &len, 0),
	    SCL_EFORMAT, "message length");
	pair_close(&p);

	pair_open(&p, 4096, NULL);
	tail = (uint64_t *)((uint8_t *)p.mem + 64);
	*tail = 999999; /* consumer claims to have read the future */
	/* The producer rereads the consumer's counter only once its cached
	 * view says the ring is full; then it must notice. */
	{
		enum scl_err e = SCL_OK;
		for (int i = 0; i < 100 && e == SCL_OK; i++)
			e = scl_ring_try_send(p.tx, buf, 100);
		assert_scl_fails(e, SCL_EFORMAT, "ring corrupted");
	}
	/* Another capacity than the memory's is refused at attach. */
	{
		struct scl_ring *r;
		assert_scl_fails(scl_ring_attach(&r, p.mem, 8192,
		    SCL_RING_CONSUMER, NULL), SCL_EFORMAT, "not a version 1");
	}
	pair_close(&p);
}

struct stress {
	struct pair *p;
	unsigned n;
	unsigned errors;
};

static void *
stress_producer(void *arg)
{
	struct stress *s = arg;
	uint8_t msg[1500];
	uint32_t x = 12345;

	for (unsigned i = 0; i < s->n; i++) {
		size_t n = 8 + (x = x * 1103515245u + 12345u) % 1400;
		memcpy(msg, &i, 4);
		for (size_t k = 4; k < n; k++)
			msg[k] = (uint8_t)(i ^ k);
		if (scl_ring_send(s->p->tx, msg, n) != SCL_OK)
			s->errors++;
	}
	return NULL;
}

/* Two threads, a small ring, 300k messages of random sizes: every one
 * arrives, in order, intact, and the producer often had to wait. */
static void
test_ring_stress_two_threads(void **state)
{
	struct pair p;
	struct scl_ring_options opt = { 20, false };
	struct stress s;
	struct scl_ring_stats st;
	pthread_t th;
	uint8_t buf[2048];
	size_t len;

	(void)state;
	pair_open(&p, 8192, &opt);
	s.p = &p;
	s.n = getenv("SCL_STRESS_N") ? (unsigned)atoi(getenv("SCL_STRESS_N"))
				     : 300000;
	s.errors = 0;
	pthread_create(&th, NULL, stress_producer, &s);
	for (unsigned i = 0; i < s.n; i++) {
		unsigned seq;
		assert_scl_ok(scl_ring_recv(p.rx, buf, sizeof(buf), &len, 5000));
		memcpy(&seq, buf, 4);
		if (seq != i)
			fail_msg("message %u arrived as %u", i, seq);
		for (size_t k = 4; k < len; k++)
			if (buf[k] != (uint8_t)(i ^ k))
				fail_msg("message %u byte %zu corrupted", i, k);
	}
	pthread_join(th, NULL);
	assert_int_equal(s.errors, 0);
	scl_ring_stats(p.tx, &st);
	print_message("stress: %u messages; producer found the ring full %llu "
		      "times, never dropped\n", s.n,
	    (unsigned long long)st.full_waits);
	assert_true(st.full_waits > 0);
	pair_close(&p);
}

struct idle {
	struct pair *p;
	double cpu_ms;
	enum scl_err result;
	char msg[128];		/* the consumer thread's scl_err_last() */
};

static void *
idle_consumer(void *arg)
{
	struct idle *d = arg;
	struct timespec a, b;
	uint8_t buf[64];
	size_t len;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
	d->result = scl_ring_recv(d->p->rx, buf, sizeof(buf), &len, 1000);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
	snprintf(d->msg, sizeof(d->msg), "%s", scl_err_last());
	d->cpu_ms = (double)(b.tv_sec - a.tv_sec) * 1e3 +
	    (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	return NULL;
}

/* An idle consumer sleeps: waiting 1 s costs well under 1% of a CPU; a
 * message wakes it; closing wakes it too. */
static void
test_ring_idle_sleeps_and_wakes(void **state)
{
	struct pair p;
	struct idle d = { NULL, 0, SCL_OK, "" };
	pthread_t th;
	struct scl_ring_stats st;

	(void)state;
	pair_open(&p, 4096, NULL);
	d.p = &p;
	pthread_create(&th, NULL, idle_consumer, &d);
	pthread_join(th, NULL);
	assert_int_equal(d.result, SCL_ETIMEOUT);
	assert_non_null(strstr(d.msg, "within 1000 ms"));
	print_message("idle wait of 1000 ms used %.2f ms of CPU\n", d.cpu_ms);
	assert_true(d.cpu_ms < 10.0);
	pthread_create(&th, NULL, idle_consumer, &d);
	usleep(200000);
	assert_scl_ok(scl_ring_send(p.tx, "wake", 4));
	pthread_join(th, NULL);
	assert_int_equal(d.result, SCL_OK);
	scl_ring_stats(p.tx, &st);
	assert_true(st.wakes >= 1);
	pthread_create(&th, NULL, idle_consumer, &d);
	usleep(100000);
	scl_ring_close(p.tx);
	pthread_join(th, NULL);
	assert_int_equal(d.result, SCL_ECLOSED);
	pair_close(&p);
}

struct slow {
	struct pair *p;
	int n;
};

static void *
slow_producer(void *arg)
{
	struct slow *s = arg;

	for (int i = 0; i < s->n; i++) {
		usleep(3000);
		if (scl_ring_send(s->p->tx, "tick", 4) != SCL_OK)
			break;
	}
	return NULL;
}

/* A consumer whose messages come slower than its spin learns to stop
 * spinning: 100 waits of ~3 ms with a 1 ms spin would burn ~100 ms of
 * CPU spinning; the budget halves after each wait that ends in a sleep,
 * so only the first few and the periodic probes spin. */
static void
test_ring_spin_adapts(void **state)
{
	struct scl_ring_options opt = { .spin_us = 1000 };
	struct pair p;
	struct slow s;
	struct scl_ring_stats st;
	struct timespec a, b;
	pthread_t th;
	uint8_t buf[16];
	size_t len;
	double cpu_ms;

	(void)state;
	pair_open(&p, 4096, &opt);
	s.p = &p;
	s.n = 100;
	pthread_create(&th, NULL, slow_producer, &s);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
	for (int i = 0; i < s.n; i++)
		assert_scl_ok(scl_ring_recv(p.rx, buf, sizeof(buf), &len, -1));
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
	pthread_join(th, NULL);
	cpu_ms = (double)(b.tv_sec - a.tv_sec) * 1e3 +
	    (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	scl_ring_stats(p.rx, &st);
	print_message("100 waits of ~3 ms with a 1 ms spin: %.1f ms of CPU, "
		      "%llu sleeps, %llu won by spinning\n", cpu_ms,
	    (unsigned long long)st.sleeps, (unsigned long long)st.spins_won);
	assert_true(st.sleeps >= 90);
	assert_true(cpu_ms < 30.0);
	pair_close(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ring_order_wrap_and_limits),
		cmocka_unit_test(test_ring_rejects_corruption),
		cmocka_unit_test(test_ring_stress_two_threads),
		cmocka_unit_test(test_ring_idle_sleeps_and_wakes),
		cmocka_unit_test(test_ring_spin_adapts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
