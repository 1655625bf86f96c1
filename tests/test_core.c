/*
 * test_core.c - the trusted core driven directly (scl_core_handle), the
 * way its host drives it, and the host<->core codec both ways.
 */
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

/* A core with keys, attested to a test capsule, its KVS open. */
struct fixture {
	struct tcap t;
	struct scl_actors *actors;
	struct scl_core *core;
	struct scl_buf req;
	uint64_t now;
};

/* Sends @req, checks the reply answers it and returns its body; the
 * core's refusal, if any, in *@err (NULL: must succeed). */
static struct scl_slice
call(struct fixture *f, struct scl_slice req, enum scl_err *err)
{
	struct scl_slice body, out = scl_core_handle(f->core, req);
	enum scl_err e = scl_core_reply_open(out, req.ptr[0], &body);

	if (err)
		*err = e;
	else
		assert_scl_ok(e);
	return body;
}

static void
fixture_open(struct fixture *f, bool kv)
{
	static const uint8_t init = SCL_CORE_INIT;
	struct scl_core_install *in = calloc(1, sizeof(*in));
	uint8_t wrapped[SCL_CORE_WRAPPED_KEY_BYTES];
	struct scl_capsule_cert cert;
	struct scl_core_keys keys;
	struct scl_buf cb;

	assert_non_null(in);
	memset(f, 0, sizeof(*f));
	tcap_init(&f->t, SCL_AEAD_AES256GCM, 3);
	assert_scl_ok(scl_actors_new(&f->actors, 1));
	assert_non_null(f->core = scl_core_new(f->actors));
	scl_buf_init(&f->req);
	f->now = 1000000;
	assert_scl_ok(scl_core_keys_decode(&keys,
	    call(f, scl_slice_of(&init, 1), NULL)));
	/* The owner's side: a certificate for the core's keys and the data
	 * key wrapped for it, as the broker makes them. */
	memset(&cert, 0, sizeof(cert));
	memcpy(cert.capsule, f->t.name, SCL_NAME_BYTES);
	memcpy(cert.writer, keys.writer, SCL_WRITER_BYTES);
	memcpy(cert.box_key, keys.box, SCL_BOX_PUBLIC_BYTES);
	scl_buf_init(&cb);
	assert_scl_ok(scl_capsule_cert_encode(&cb, &cert, &f->t.owner));
	assert_scl_ok(scl_box_seal(wrapped, f->t.keys.epochs[0].key,
	    SCL_AEAD_KEY_BYTES, keys.box));
	in->meta = scl_buf_slice(&f->t.meta_bytes);
	in->cert = scl_buf_slice(&cb);
	in->n_keys = 1;
	in->keys[0].epoch = f->t.keys.epochs[0].epoch;
	in->keys[0].wrapped = wrapped;
	assert_scl_ok(scl_core_install_encode(&f->req, in));
	(void)call(f, scl_buf_slice(&f->req), NULL);
	if (kv) {
		struct scl_core_kv_params p = { 64, 2000, false, 0 };
		assert_scl_ok(scl_core_kv_params_encode(&f->req, &p));
		(void)call(f, scl_buf_slice(&f->req), NULL);
	}
	scl_buf_dispose(&cb);
	free(in);
}

static void
fixture_close(struct fixture *f)
{
	scl_core_free(f->core);
	scl_actors_free(f->actors);
	scl_buf_dispose(&f->req);
	tcap_dispose(&f->t);
}

static void
add_op(struct scl_buf *ops, enum scl_kvreq_op op, const char *key,
    struct scl_slice value)
{
	struct scl_kvreq q = { .op = op };

	q.key = scl_slice_of(key, strlen(key));
	q.value = value;
	assert_scl_ok(scl_kvreq_encode(ops, &q));
}

/* The groups' results of a KV_OPS call of @n groups, each (flags, n, ops). */
static struct scl_slice
run_ops(struct fixture *f, const struct scl_core_group *g, uint16_t n)
{
	struct scl_core_kv_reply r;

	assert_scl_ok(scl_core_ops_begin(&f->req, ++f->now));
	for (uint16_t i = 0; i < n; i++)
		assert_scl_ok(scl_core_ops_add(&f->req, g[i].flags, g[i].n,
		    g[i].ops));
	assert_scl_ok(scl_core_ops_finish(&f->req));
	assert_scl_ok(scl_core_kv_reply_decode(&r,
	    call(f, scl_buf_slice(&f->req), NULL)));
	return r.results;
}

static struct scl_kvres
one_result(struct scl_slice body, enum scl_kvreq_op op)
{
	struct scl_kvres res;
	struct scl_dec d;

	scl_dec_init(&d, body, "result");
	assert_scl_ok(scl_kvres_decode(&d, op, &res));
	return res;
}

/* One client's oversized value refuses its own request whole, with the
 * core's code and reason; the other clients' requests in the same call
 * are served, and nothing of the refused one is applied. */
static void
test_core_group_refused_whole(void **state)
{
	struct fixture f;
	struct scl_buf a, b, c;
	struct scl_core_group g[3];
	struct scl_core_group_result r;
	struct scl_slice results;
	struct scl_dec d;
	uint8_t *big = calloc(1, SCL_KV_VALUE_MAX + 1);

	(void)state;
	assert_non_null(big);
	fixture_open(&f, true);
	scl_buf_init(&a);
	scl_buf_init(&b);
	scl_buf_init(&c);
	add_op(&a, SCL_KVREQ_PUT, "alpha", scl_slice_of("1", 1));
	add_op(&b, SCL_KVREQ_PUT, "beta", scl_slice_of("2", 1));
	add_op(&b, SCL_KVREQ_PUT, "gamma", scl_slice_of(big,
	    SCL_KV_VALUE_MAX + 1));
	add_op(&c, SCL_KVREQ_GET, "alpha", scl_slice_of(NULL, 0));
	add_op(&c, SCL_KVREQ_GET, "beta", scl_slice_of(NULL, 0));
	g[0] = (struct scl_core_group){ 0, 1, scl_buf_slice(&a) };
	g[1] = (struct scl_core_group){ SCL_CORE_GROUP_DURABLE, 2,
		scl_buf_slice(&b) };
	g[2] = (struct scl_core_group){ 0, 2, scl_buf_slice(&c) };
	results = run_ops(&f, g, 3);

	assert_true(scl_core_group_result_next(&results, &r));
	assert_int_equal(r.err, SCL_OK);
	assert_int_equal(r.through, 1);
	assert_true(one_result(r.body, SCL_KVREQ_PUT).ok);

	assert_true(scl_core_group_result_next(&results, &r));
	assert_int_equal(r.err, SCL_ELIMIT);
	assert_non_null(memmem(r.body.ptr, r.body.len, "request 2 of 2", 14));
	assert_non_null(memmem(r.body.ptr, r.body.len, "1048577", 7));

	assert_true(scl_core_group_result_next(&results, &r));
	assert_int_equal(r.err, SCL_OK);
	assert_int_equal(r.through, 1); /* beta was not applied */
	scl_dec_init(&d, r.body, "results");
	assert_true(one_result(r.body, SCL_KVREQ_GET).ok);
	{
		struct scl_kvres res;
		assert_scl_ok(scl_kvres_decode(&d, SCL_KVREQ_GET, &res));
		assert_scl_ok(scl_kvres_decode(&d, SCL_KVREQ_GET, &res));
		assert_false(res.ok);
		assert_scl_ok(scl_dec_finish(&d));
	}
	assert_false(scl_core_group_result_next(&results, &r));
	scl_buf_dispose(&a);
	scl_buf_dispose(&b);
	scl_buf_dispose(&c);
	free(big);
	fixture_close(&f);
}

/* A malformed group (an unknown operation, a short list, trailing bytes)
 * is refused by name; a well-formed durable one reports its `through`. */
static void
test_core_group_malformed(void **state)
{
	static const uint8_t unknown[] = { 'z', 0, 0 };
	struct fixture f;
	struct scl_buf ok;
	struct scl_core_group g[4];
	struct scl_core_group_result r;
	struct scl_slice results;

	(void)state;
	fixture_open(&f, true);
	scl_buf_init(&ok);
	add_op(&ok, SCL_KVREQ_PUT, "k", scl_slice_of("v", 1));
	g[0] = (struct scl_core_group){ 0, 1, scl_slice_of(unknown, 3) };
	g[1] = (struct scl_core_group){ 0, 2, scl_buf_slice(&ok) };
	g[2] = (struct scl_core_group){ 0, 0, scl_buf_slice(&ok) };
	g[3] = (struct scl_core_group){ SCL_CORE_GROUP_DURABLE, 1,
		scl_buf_slice(&ok) };
	results = run_ops(&f, g, 4);
	assert_true(scl_core_group_result_next(&results, &r));
	assert_int_equal(r.err, SCL_EFORMAT);
	assert_non_null(memmem(r.body.ptr, r.body.len, "unknown operation "
					      "0x7a", 22));
	assert_true(scl_core_group_result_next(&results, &r));
	assert_int_equal(r.err, SCL_EFORMAT);
	assert_true(scl_core_group_result_next(&results, &r));
	assert_int_equal(r.err, SCL_EFORMAT); /* trailing bytes */
	assert_true(scl_core_group_result_next(&results, &r));
	assert_int_equal(r.err, SCL_OK);
	assert_int_equal(r.through, 1);
	assert_true(one_result(r.body, SCL_KVREQ_PUT).ok);
	scl_buf_dispose(&ok);
	fixture_close(&f);
}

/* Refusals of whole requests keep their code: an unknown op, a KV call
 * before the KVS is open, a second installation, an empty request. */
static void
test_core_refusals_keep_their_code(void **state)
{
	static const uint8_t unknown = 'x', stats = SCL_CORE_KV_STATS;
	struct fixture f;
	enum scl_err e;
	struct scl_slice out;

	(void)state;
	fixture_open(&f, false);
	(void)call(&f, scl_slice_of(&unknown, 1), &e);
	assert_int_equal(e, SCL_EFORMAT);
	assert_non_null(strstr(scl_err_last(), "unknown core request 0x78"));
	(void)call(&f, scl_slice_of(&stats, 1), &e);
	assert_int_equal(e, SCL_EINVAL);
	assert_non_null(strstr(scl_err_last(), "trusted core: the KVS is not "
					       "open"));
	out = scl_core_handle(f.core, scl_slice_of(NULL, 0));
	assert_true(out.len >= 2 && out.ptr[1] == SCL_EFORMAT);
	fixture_close(&f);
}

/* The host's side of replies: every code survives, a reply to another
 * op or with an unknown status is malformed, a long reason is cut. */
static void
test_core_reply_codec(void **state)
{
	struct scl_buf b;
	struct scl_slice body;
	char reason[2000];

	(void)state;
	scl_buf_init(&b);
	for (int code = 1; code < SCL_ERR_COUNT_; code++) {
		assert_scl_ok(scl_core_reply_error(&b, SCL_CORE_KV_OPS,
		    (enum scl_err)code, "why"));
		assert_scl_fails(scl_core_reply_open(scl_buf_slice(&b),
		    SCL_CORE_KV_OPS, &body), (enum scl_err)code,
		    "trusted core: why");
	}
	assert_scl_fails(scl_core_reply_open(scl_buf_slice(&b),
	    SCL_CORE_KV_TICK, &body), SCL_EFORMAT, "answers 0x56");
	b.ptr[1] = SCL_ERR_COUNT_;
	assert_scl_fails(scl_core_reply_open(scl_buf_slice(&b),
	    SCL_CORE_KV_OPS, &body), SCL_EFORMAT, "unknown status");
	memset(reason, 'r', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	assert_scl_ok(scl_core_reply_error(&b, SCL_CORE_INIT, SCL_EIO, reason));
	assert_int_equal(b.len, 4 + SCL_CORE_REASON_MAX);
	assert_scl_ok(scl_core_reply_begin(&b, SCL_CORE_INIT));
	assert_scl_ok(scl_buf_append(&b, "xy", 2));
	assert_scl_ok(scl_core_reply_open(scl_buf_slice(&b), SCL_CORE_INIT,
	    &body));
	assert_int_equal(body.len, 2);
	scl_buf_dispose(&b);
}

/* Builders and decoders agree, and the decoders refuse what the
 * builders never make. */
static void
test_core_request_codec(void **state)
{
	struct scl_buf b;
	struct scl_slice msgs[SCL_CORE_RECEIVE_MAX], groups, ops;
	struct scl_core_group g;
	uint64_t now;
	uint32_t n32;
	uint16_t n;

	(void)state;
	scl_buf_init(&b);
	assert_scl_fails(scl_core_ops_add(&b, 0, 0, scl_slice_of(NULL, 0)),
	    SCL_EINVAL, "no KV_OPS");
	assert_scl_ok(scl_core_ops_begin(&b, 42));
	assert_scl_fails(scl_core_ops_finish(&b), SCL_EINVAL, "nothing in it");
	for (int i = 0; i < SCL_CORE_GROUPS_MAX; i++)
		assert_scl_ok(scl_core_ops_add(&b, 0, 1, scl_slice_of("g", 1)));
	assert_scl_fails(scl_core_ops_add(&b, 0, 1, scl_slice_of("g", 1)),
	    SCL_EFULL, NULL);
	assert_int_equal(scl_core_ops_count(&b), SCL_CORE_GROUPS_MAX);
	assert_scl_ok(scl_core_ops_finish(&b));
	assert_scl_ok(scl_core_ops_decode(&now, &n, &groups,
	    scl_slice_of(b.ptr + 1, b.len - 1)));
	assert_int_equal(now, 42);
	assert_int_equal(n, SCL_CORE_GROUPS_MAX);
	assert_true(scl_core_group_next(&groups, &g));
	assert_int_equal(g.n, 1);
	assert_memory_equal(g.ops.ptr, "g", 1);
	/* an unknown group flag */
	assert_scl_ok(scl_core_ops_begin(&b, 1));
	assert_scl_ok(scl_core_ops_add(&b, 0x80, 0, scl_slice_of(NULL, 0)));
	assert_scl_fails(scl_core_ops_decode(&now, &n, &groups,
	    scl_slice_of(b.ptr + 1, b.len - 1)), SCL_EFORMAT, "flags 0x80");

	assert_scl_ok(scl_core_receive_begin(&b, 9));
	for (int i = 0; i < SCL_CORE_RECEIVE_MAX; i++)
		assert_scl_ok(scl_core_receive_add(&b, scl_slice_of("m", 1)));
	assert_scl_fails(scl_core_receive_add(&b, scl_slice_of("m", 1)),
	    SCL_EFULL, NULL);
	assert_scl_ok(scl_core_receive_finish(&b));
	assert_scl_ok(scl_core_receive_decode(&now, &n, msgs,
	    scl_slice_of(b.ptr + 1, b.len - 1)));
	assert_int_equal(n, SCL_CORE_RECEIVE_MAX);
	assert_int_equal(now, 9);
	/* a count of 0 is refused */
	assert_scl_ok(scl_core_receive_begin(&b, 9));
	assert_scl_fails(scl_core_receive_decode(&now, &n, msgs,
	    scl_slice_of(b.ptr + 1, b.len - 1)), SCL_EFORMAT, "0 messages");

	assert_scl_ok(scl_core_timed_encode(&b, 5, 3, scl_slice_of("abc", 3)));
	assert_scl_ok(scl_core_timed_decode(&now, &n32, &ops,
	    scl_slice_of(b.ptr + 1, b.len - 1)));
	assert_int_equal(n32, 3);
	assert_int_equal(ops.len, 3);
	/* trailing bytes */
	assert_scl_ok(scl_buf_append(&b, "!", 1));
	assert_scl_fails(scl_core_timed_decode(&now, &n32, &ops,
	    scl_slice_of(b.ptr + 1, b.len - 1)), SCL_EFORMAT, NULL);
	scl_buf_dispose(&b);
}

/* A KV reply's outputs and results come back as they went in. */
static void
test_core_kv_reply_codec(void **state)
{
	uint8_t writer[SCL_WRITER_BYTES];
	struct scl_core_kv_reply head = { true, false, 77, 123456, 0,
		{ NULL, 0 }, { NULL, 0 } }, got;
	struct scl_core_output o, back;
	struct scl_buf b;

	(void)state;
	memset(writer, 0xab, sizeof(writer));
	scl_buf_init(&b);
	assert_scl_ok(scl_core_reply_begin(&b, SCL_CORE_KV_TICK));
	assert_scl_ok(scl_core_kv_reply_begin(&b));
	o = (struct scl_core_output){ SCL_KV_OUT_FETCH, 5, writer, 10, 20,
		scl_slice_of("msg", 3) };
	assert_scl_ok(scl_core_kv_reply_add(&b, &o));
	o.kind = SCL_KV_OUT_BATCH;
	assert_scl_ok(scl_core_kv_reply_add(&b, &o));
	assert_scl_ok(scl_core_kv_reply_finish(&b, &head,
	    scl_slice_of("res", 3)));
	assert_scl_ok(scl_core_kv_reply_decode(&got,
	    scl_slice_of(b.ptr + 2, b.len - 2)));
	assert_true(got.more);
	assert_false(got.sealing);
	assert_int_equal(got.through, 77);
	assert_int_equal(got.next_tick_us, 123456);
	assert_int_equal(got.n_outputs, 2);
	assert_int_equal(got.results.len, 3);
	assert_true(scl_core_output_next(&got.outputs, &back));
	assert_int_equal(back.kind, SCL_KV_OUT_FETCH);
	assert_int_equal(back.from, 10);
	assert_int_equal(back.to, 20);
	assert_memory_equal(back.writer, writer, SCL_WRITER_BYTES);
	assert_true(scl_core_output_next(&got.outputs, &back));
	assert_int_equal(back.kind, SCL_KV_OUT_BATCH);
	assert_false(scl_core_output_next(&got.outputs, &back));
	/* an output of an unknown kind is malformed */
	b.ptr[2 + 20] = 9;
	assert_scl_fails(scl_core_kv_reply_decode(&got,
	    scl_slice_of(b.ptr + 2, b.len - 2)), SCL_EFORMAT, "output kind");
	scl_buf_dispose(&b);
}

/* The timed run executes the requests (a put is there afterwards) and
 * answers the nanoseconds it took. */
static void
test_core_timed_run(void **state)
{
	struct fixture f;
	struct scl_core_kv_reply r;
	struct scl_buf ops;
	struct scl_core_group g;
	struct scl_core_group_result gr;
	struct scl_slice results;

	(void)state;
	fixture_open(&f, true);
	scl_buf_init(&ops);
	add_op(&ops, SCL_KVREQ_PUT, "t", scl_slice_of("x", 1));
	add_op(&ops, SCL_KVREQ_GET, "t", scl_slice_of(NULL, 0));
	assert_scl_ok(scl_core_timed_encode(&f.req, ++f.now, 2,
	    scl_buf_slice(&ops)));
	assert_scl_ok(scl_core_kv_reply_decode(&r,
	    call(&f, scl_buf_slice(&f.req), NULL)));
	assert_int_equal(r.results.len, 8);
	assert_int_equal(r.through, 1);
	scl_buf_clear(&ops);
	add_op(&ops, SCL_KVREQ_GET, "t", scl_slice_of(NULL, 0));
	g = (struct scl_core_group){ 0, 1, scl_buf_slice(&ops) };
	results = run_ops(&f, &g, 1);
	assert_true(scl_core_group_result_next(&results, &gr));
	assert_int_equal(gr.err, SCL_OK);
	assert_true(one_result(gr.body, SCL_KVREQ_GET).ok);
	scl_buf_dispose(&ops);
	fixture_close(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_core_group_refused_whole),
		cmocka_unit_test(test_core_group_malformed),
		cmocka_unit_test(test_core_refusals_keep_their_code),
		cmocka_unit_test(test_core_reply_codec),
		cmocka_unit_test(test_core_request_codec),
		cmocka_unit_test(test_core_kv_reply_codec),
		cmocka_unit_test(test_core_timed_run),
	};

	if (scl_init() != SCL_OK)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
