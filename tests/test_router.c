/*
 * test_router.c - the multicast router on real sockets (its loop on a
 * thread of this process): delivery by name to every subscriber but the
 * sender, chaining through an upstream router, chaos that loses or
 * duplicates as configured, bounded queues for a subscriber that never
 * reads, malformed frames counted and survived.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "helpers.h"
#include "scl/router.h"

struct rt {
	struct scl_router *r;
	pthread_t th;
};

static void *
rt_main(void *arg)
{
	struct rt *t = arg;
	if (scl_router_run(t->r) != SCL_OK)
		fprintf(stderr, "router: %s\n", scl_err_last());
	return NULL;
}

static void
rt_start_opt(struct rt *t, const struct scl_router_options *opt)
{
	assert_scl_ok(scl_router_new(&t->r, opt));
	assert_int_equal(pthread_create(&t->th, NULL, rt_main, t), 0);
}

static void
rt_start(struct rt *t, const char *upstream, const char *chaos, size_t queue)
{
	struct scl_router_options opt;

	memset(&opt, 0, sizeof(opt));
	opt.listen = "tcp://127.0.0.1:*";
	opt.upstream = upstream;
	opt.queue_max = queue;
	if (chaos)
		assert_scl_ok(scl_router_chaos_parse(&opt.chaos, chaos));
	rt_start_opt(t, &opt);
}

static void
rt_stop(struct rt *t)
{
	scl_router_stop(t->r);
	pthread_join(t->th, NULL);
	scl_router_free(t->r);
}

static void *
client(void *ctx, const char *endpoint)
{
	struct scl_zsock_options zo = SCL_ZSOCK_OPTIONS_INIT;
	void *s;

	zo.recv_timeout_ms = 300;
	zo.connect = endpoint;
	assert_scl_ok(scl_zsock_open(&s, ctx, ZMQ_DEALER, &zo));
	return s;
}

static void
send_msg(void *s, enum scl_router_msg_type type, const uint8_t *name,
    const char *payload)
{
	struct scl_router_msg m;
	struct scl_buf f;

	memset(&m, 0, sizeof(m));
	m.type = type;
	memcpy(m.name, name, SCL_NAME_BYTES);
	if (payload)
		m.payload = scl_slice_of(payload, strlen(payload));
	scl_buf_init(&f);
	assert_scl_ok(scl_router_msg_encode(&f, &m));
	assert_true(zmq_send(s, f.ptr, f.len, 0) >= 0);
	scl_buf_dispose(&f);
}

/* Receives PUB payloads until a timeout; returns how many, the last one
 * copied to @last. */
static int
recv_all(void *s, char *last, size_t cap)
{
	char buf[4096];
	int n, got = 0;

	while ((n = zmq_recv(s, buf, sizeof(buf), 0)) >= 0) {
		struct scl_router_msg m;
		assert_scl_ok(scl_router_msg_decode(&m, scl_slice_of(buf,
		    (size_t)n)));
		assert_int_equal(m.type, SCL_ROUTER_PUB);
		if (last)
			snprintf(last, cap, "%.*s", (int)m.payload.len,
			    (const char *)m.payload.ptr);
		got++;
	}
	return got;
}

static void
test_router_delivers_by_name(void **state)
{
	struct rt t;
	void *ctx = zmq_ctx_new();
	void *a, *b, *c, *bad;
	uint8_t n1[32], n2[32];
	char last[64];
	struct scl_router_stats st;

	(void)state;
	memset(n1, 1, 32);
	memset(n2, 2, 32);
	rt_start(&t, NULL, NULL, 0);
	a = client(ctx, scl_router_endpoint(t.r));
	b = client(ctx, scl_router_endpoint(t.r));
	c = client(ctx, scl_router_endpoint(t.r));
	send_msg(a, SCL_ROUTER_SUB, n1, NULL);
	send_msg(b, SCL_ROUTER_SUB, n1, NULL);
	send_msg(c, SCL_ROUTER_SUB, n2, NULL);
	usleep(100000);
	send_msg(a, SCL_ROUTER_PUB, n1, "from a");
	send_msg(c, SCL_ROUTER_PUB, n1, "from c");
	/* a gets c's, not its own; b gets both; c (n2) gets nothing */
	assert_int_equal(recv_all(a, last, sizeof(last)), 1);
	assert_string_equal(last, "from c");
	assert_int_equal(recv_all(b, NULL, 0), 2);
	assert_int_equal(recv_all(c, NULL, 0), 0);
	/* after UNSUB, b hears nothing */
	send_msg(b, SCL_ROUTER_UNSUB, n1, NULL);
	usleep(50000);
	send_msg(c, SCL_ROUTER_PUB, n1, "again");
	assert_int_equal(recv_all(b, NULL, 0), 0);
	assert_int_equal(recv_all(a, NULL, 0), 1);
	/* garbage is counted and the router keeps serving */
	bad = client(ctx, scl_router_endpoint(t.r));
	assert_true(zmq_send(bad, "\x43\x01short", 7, 0) >= 0);
	assert_true(zmq_send(bad, "\x43\x09", 2, 0) >= 0);
	assert_true(zmq_send(bad, "", 0, 0) >= 0);
	send_msg(c, SCL_ROUTER_PUB, n1, "still here");
	assert_int_equal(recv_all(a, last, sizeof(last)), 1);
	assert_string_equal(last, "still here");
	scl_router_stats(t.r, &st);
	assert_int_equal(st.malformed, 3);
	zmq_close(a);
	zmq_close(b);
	zmq_close(c);
	zmq_close(bad);
	zmq_ctx_term(ctx);
	rt_stop(&t);
}

static void
test_router_chains(void **state)
{
	struct rt top, leaf;
	void *ctx = zmq_ctx_new();
	void *up_client, *leaf_client;
	uint8_t n[32];
	char last[64];

	(void)state;
	memset(n, 7, 32);
	rt_start(&top, NULL, NULL, 0);
	rt_start(&leaf, scl_router_endpoint(top.r), NULL, 0);
	up_client = client(ctx, scl_router_endpoint(top.r));
	leaf_client = client(ctx, scl_router_endpoint(leaf.r));
	send_msg(up_client, SCL_ROUTER_SUB, n, NULL);
	send_msg(leaf_client, SCL_ROUTER_SUB, n, NULL);
	usleep(200000);
	/* down the tree and up it, never back to the sender */
	send_msg(up_client, SCL_ROUTER_PUB, n, "down");
	assert_int_equal(recv_all(leaf_client, last, sizeof(last)), 1);
	assert_string_equal(last, "down");
	assert_int_equal(recv_all(up_client, NULL, 0), 0);
	send_msg(leaf_client, SCL_ROUTER_PUB, n, "up");
	assert_int_equal(recv_all(up_client, last, sizeof(last)), 1);
	assert_string_equal(last, "up");
	assert_int_equal(recv_all(leaf_client, NULL, 0), 0);
	zmq_close(up_client);
	zmq_close(leaf_client);
	zmq_ctx_term(ctx);
	rt_stop(&leaf);
	rt_stop(&top);
}

static void
test_router_chaos(void **state)
{
	struct rt t;
	void *ctx = zmq_ctx_new();
	void *a, *b;
	uint8_t n[32];
	struct scl_router_stats st;
	int got;

	(void)state;
	memset(n, 3, 32);
	/* total loss */
	rt_start(&t, NULL, "loss=1", 0);
	a = client(ctx, scl_router_endpoint(t.r));
	b = client(ctx, scl_router_endpoint(t.r));
	send_msg(b, SCL_ROUTER_SUB, n, NULL);
	usleep(100000);
	for (int i = 0; i < 50; i++)
		send_msg(a, SCL_ROUTER_PUB, n, "x");
	assert_int_equal(recv_all(b, NULL, 0), 0);
	scl_router_stats(t.r, &st);
	assert_int_equal(st.chaos_lost, 50);
	zmq_close(a);
	zmq_close(b);
	rt_stop(&t);
	/* every message twice, some held back: all arrive, doubled */
	rt_start(&t, NULL, "dup=1,reorder=0.5,reorder_ms=5,seed=3", 0);
	a = client(ctx, scl_router_endpoint(t.r));
	b = client(ctx, scl_router_endpoint(t.r));
	send_msg(b, SCL_ROUTER_SUB, n, NULL);
	usleep(100000);
	for (int i = 0; i < 50; i++)
		send_msg(a, SCL_ROUTER_PUB, n, "y");
	got = recv_all(b, NULL, 0);
	assert_int_equal(got, 100);
	scl_router_stats(t.r, &st);
	assert_int_equal(st.chaos_duplicated, 50);
	assert_true(st.chaos_reordered > 10);
	zmq_close(a);
	zmq_close(b);
	zmq_ctx_term(ctx);
	rt_stop(&t);
	{
		struct scl_router_chaos c;
		assert_scl_fails(scl_router_chaos_parse(&c, "loss=2"),
		    SCL_EINVAL, "probability");
		assert_scl_fails(scl_router_chaos_parse(&c, "jitter=1"),
		    SCL_EINVAL, "unknown key 'jitter'");
		assert_scl_fails(scl_router_chaos_parse(&c, "loss"),
		    SCL_EINVAL, "key=value");
		assert_scl_ok(scl_router_chaos_parse(&c,
		    "loss=0.3,dup=0.1,reorder=0.2,seed=7"));
		assert_true(c.loss == 0.3 && c.seed == 7);
	}
}

/* A subscriber to @name that will never read (its own queue holds
 * @rcvhwm messages), subscribed by the time this returns. */
static void *
sleeping_subscriber(void *ctx, const struct rt *t, const uint8_t *name,
    int rcvhwm)
{
	void *s = zmq_socket(ctx, ZMQ_DEALER);

	assert_non_null(s);
	zmq_setsockopt(s, ZMQ_RCVHWM, &rcvhwm, sizeof(rcvhwm));
	assert_int_equal(zmq_connect(s, scl_router_endpoint(t->r)), 0);
	send_msg(s, SCL_ROUTER_SUB, name, NULL);
	usleep(100000);
	return s;
}

/* A subscriber that never reads costs at most its queue bound. */
static void
test_router_bounded_queue(void **state)
{
	struct rt t;
	void *ctx = zmq_ctx_new();
	void *a, *sleeper;
	uint8_t n[32];
	struct scl_router_stats st;
	char payload[1024];
	int hwm = 10;

	(void)state;
	memset(n, 4, 32);
	memset(payload, 'p', sizeof(payload) - 1);
	payload[sizeof(payload) - 1] = '\0';
	rt_start(&t, NULL, NULL, 32);
	a = client(ctx, scl_router_endpoint(t.r));
	sleeper = sleeping_subscriber(ctx, &t, n, hwm);
	for (int i = 0; i < 30000; i++)
		send_msg(a, SCL_ROUTER_PUB, n, payload);
	usleep(300000);
	scl_router_stats(t.r, &st);
	assert_int_equal(st.received, 30001);
	assert_true(st.queue_dropped > 10000);
	assert_true(st.delivered + st.queue_dropped <= 30000);
	printf("30000 published to a subscriber that never reads: %llu "
	       "delivered into its socket buffers, %llu dropped\n",
	    (unsigned long long)st.delivered,
	    (unsigned long long)st.queue_dropped);
	zmq_close(a);
	zmq_close(sleeper);
	zmq_ctx_term(ctx);
	rt_stop(&t);
}

/* Big messages to a subscriber that never reads: the router holds at
 * most its byte bound for it, whatever the message count bound says. */
static void
test_router_queue_bytes_bounded(void **state)
{
	struct rt t;
	struct scl_router_options opt;
	void *ctx = zmq_ctx_new();
	void *a, *sleeper;
	uint8_t n[32];
	struct scl_router_stats st;
	char *payload = malloc(1 << 20);
	int hwm = 1;

	(void)state;
	assert_non_null(payload);
	memset(n, 5, 32);
	memset(payload, 'p', (1 << 20) - 1);
	payload[(1 << 20) - 1] = '\0';
	memset(&opt, 0, sizeof(opt));
	opt.listen = "tcp://127.0.0.1:*";
	opt.queue_max = 100000; /* no bound by count here */
	opt.queue_max_bytes = 20u << 20;
	rt_start_opt(&t, &opt);
	a = client(ctx, scl_router_endpoint(t.r));
	sleeper = sleeping_subscriber(ctx, &t, n, hwm);
	for (int i = 0; i < 400; i++)
		send_msg(a, SCL_ROUTER_PUB, n, payload);
	for (int i = 0; i < 50; i++) { /* until the router took them all */
		scl_router_stats(t.r, &st);
		if (st.received == 401)
			break;
		usleep(100000);
	}
	assert_int_equal(st.received, 401);
	assert_true(st.queued_bytes <= opt.queue_max_bytes);
	assert_true(st.queue_dropped > 0);
	printf("400 x 1 MiB to a subscriber that never reads: %zu bytes "
	       "queued in the router, %llu dropped, %llu handed to its "
	       "socket\n", st.queued_bytes,
	    (unsigned long long)st.queue_dropped,
	    (unsigned long long)st.delivered);
	zmq_close(a);
	zmq_close(sleeper);
	zmq_ctx_term(ctx);
	rt_stop(&t);
	free(payload);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_router_delivers_by_name),
		cmocka_unit_test(test_router_chains),
		cmocka_unit_test(test_router_chaos),
		cmocka_unit_test(test_router_bounded_queue),
		cmocka_unit_test(test_router_queue_bytes_bounded),
	};
	if (scl_init() != SCL_OK)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
