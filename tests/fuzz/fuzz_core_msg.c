/*
 * fuzz_core_msg.c - every decoder of the host<->core messages (msg.c),
 * from both ends: what the core reads from its host, and what the host
 * reads back from its core; and the KVS requests and results inside
 * them (kv.h).  The first byte picks the decoder, the rest is its input.
 * A decoder that accepts must hand out only what lies inside the input,
 * and iterators must end.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "scl/codec.h"
#include "scl/core.h"
#include "scl/kv.h"

/* A slice handed out must lie inside @in. */
static void
inside(struct scl_slice in, struct scl_slice s)
{
	if (s.len && (s.ptr < in.ptr || s.ptr + s.len > in.ptr + in.len))
		abort();
}

static void
kv_reply(struct scl_slice in)
{
	struct scl_core_kv_reply r;
	struct scl_core_output o;
	struct scl_core_group_result g;
	uint16_t n = 0;

	if (scl_core_kv_reply_decode(&r, in) != SCL_OK)
		return;
	inside(in, r.outputs);
	inside(in, r.results);
	while (scl_core_output_next(&r.outputs, &o)) {
		inside(in, o.msg);
		n++;
	}
	if (n != r.n_outputs || r.outputs.len != 0)
		abort(); /* a checked reply iterates whole */
	while (scl_core_group_result_next(&r.results, &g))
		inside(in, g.body);
}

static void
ops(struct scl_slice in)
{
	struct scl_core_group g;
	struct scl_slice groups;
	uint64_t now;
	uint16_t n, seen = 0;

	if (scl_core_ops_decode(&now, &n, &groups, in) != SCL_OK)
		return;
	while (scl_core_group_next(&groups, &g)) {
		bool writes;
		inside(in, g.ops);
		if (scl_kvreq_check(g.ops, g.n, &writes) != SCL_OK)
			scl_err_clear();
		seen++;
	}
	if (seen != n || groups.len != 0)
		abort();
}

static void
results(struct scl_slice in, uint8_t op)
{
	static const uint8_t ops_known[] = { SCL_KVREQ_GET, SCL_KVREQ_PUT,
		SCL_KVREQ_DELETE, SCL_KVREQ_SCAN, SCL_KVREQ_FLUSH };
	struct scl_kvres r;
	struct scl_dec d;
	struct scl_slice k, v;

	scl_dec_init(&d, in, "results");
	if (scl_kvres_decode(&d, ops_known[op % sizeof(ops_known)], &r) !=
	    SCL_OK)
		return;
	inside(in, r.value);
	inside(in, r.error);
	while (scl_kvres_scan_next(&r.entries, &k, &v)) {
		inside(in, k);
		inside(in, v);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scl_slice in, body, msgs[SCL_CORE_RECEIVE_MAX], list, p;
	struct scl_core_install *inst;
	struct scl_core_kv_params kp;
	struct scl_core_keys keys;
	struct scl_capsule_batch b;
	uint8_t nonce[SCL_NONCE_BYTES];
	uint64_t now;
	uint32_t n32;
	uint16_t n;

	fuzz_init();
	if (size < 1)
		return 0;
	in = scl_slice_of(data + 1, size - 1);
	switch (data[0] % 12) {
	case 0:
		if (scl_core_reply_open(in, (enum scl_core_op)(data[0] >> 4),
			&body) == SCL_OK)
			inside(in, body);
		break;
	case 1:
		fuzz_discard(scl_core_keys_decode(&keys, in));
		fuzz_discard(scl_core_report_decode(nonce, in));
		fuzz_discard(scl_core_kv_params_decode(&kp, in));
		fuzz_discard(scl_core_tick_decode(&now, in));
		break;
	case 2:
		if ((inst = malloc(sizeof(*inst))) == NULL)
			abort();
		if (scl_core_install_decode(inst, in) == SCL_OK) {
			inside(in, inst->meta);
			inside(in, inst->cert);
		}
		free(inst);
		break;
	case 3:
		if (scl_core_write_decode(&n, &list, in) == SCL_OK) {
			uint16_t seen = 0;
			while (scl_core_write_next(&list, &p))
				seen++;
			if (seen != n)
				abort();
		}
		break;
	case 4:
		scl_capsule_batch_init(&b);
		fuzz_discard(scl_core_batch_decode(&b, in));
		scl_capsule_batch_dispose(&b);
		break;
	case 5:
		ops(in);
		break;
	case 6:
		if (scl_core_receive_decode(&now, &n, msgs, in) == SCL_OK)
			for (uint16_t i = 0; i < n; i++)
				inside(in, msgs[i]);
		break;
	case 7:
		if (scl_core_timed_decode(&now, &n32, &p, in) == SCL_OK) {
			inside(in, p);
			fuzz_discard(scl_kvreq_check(p, n32, NULL));
		}
		break;
	case 8:
		kv_reply(in);
		break;
	case 9:
		if (scl_core_durable_decode(&now, &n, &list, in) == SCL_OK) {
			struct scl_core_durable d;
			uint16_t seen = 0;
			while (scl_core_durable_next(&list, &d))
				seen++;
			if (seen != n)
				abort();
		}
		break;
	default:
		results(in, data[0] >> 4);
	}
	scl_err_clear();
	return 0;
}
