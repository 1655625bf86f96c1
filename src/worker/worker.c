/*
 * worker.c - the untrusted host side of a worker: starts the core, runs
 * the attestation exchange between core, platform and key broker, and
 * relays sealed batches.  Nothing here ever sees a secret key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scl/broker.h"
#include "worker_int.h"

/* How long a call may wait for the core before the host gives up on it:
 * a core that takes this long is wedged or gone. */
#define CORE_CALL_TIMEOUT_MS 30000

enum scl_err
scl_worker__call(struct scl_worker *w, struct scl_slice req,
    struct scl_slice *body)
{
	size_t n;
	enum scl_err e;

	SCL_ASSERT(req.len >= 1); /* every request has its op */
	e = scl_enclave_call(w->e, req.ptr, req.len, w->reply,
	    SCL_CORE_MSG_MAX, &n, CORE_CALL_TIMEOUT_MS);
	if (e != SCL_OK)
		return scl_err_wrap(e, "trusted core: ");
	return scl_core_reply_open(scl_slice_of(w->reply, n), req.ptr[0], body);
}

enum scl_err
scl_worker_start(struct scl_worker **out, const struct scl_worker_options *opt)
{
	static const uint8_t init = SCL_CORE_INIT;
	struct scl_enclave_options eo;
	struct scl_worker *w;
	struct scl_slice body;
	enum scl_err e;

	*out = NULL;
	if ((w = calloc(1, sizeof(*w))) == NULL ||
	    (w->reply = malloc(SCL_CORE_MSG_MAX)) == NULL) {
		free(w);
		return scl_err_set(SCL_ENOMEM, "cannot allocate worker");
	}
	w->opt = *opt;
	snprintf(w->broker, sizeof(w->broker), "%s",
	    opt->broker ? opt->broker : "");
	snprintf(w->platform_key, sizeof(w->platform_key), "%s",
	    opt->platform_key ? opt->platform_key : "");
	snprintf(w->measure_path, sizeof(w->measure_path), "%s",
	    opt->measure_path ? opt->measure_path : "/proc/self/exe");
	memset(&eo, 0, sizeof(eo));
	eo.tee = opt->tee;
	eo.ring_capacity = (size_t)64 << 20;
	/* A short spin: on a machine shared by the servers, the router and
	 * the clients, 50 us spins took 9% of the CPU of a KVS benchmark
	 * while the other side waited to run (docs/BENCHMARKS.md). */
	eo.ring.spin_us = opt->ring_spin_us ? opt->ring_spin_us
					     : SCL_WORKER_RING_SPIN_US_DEFAULT;
	eo.init = scl_core_init;
	w->boot.actor_threads = opt->actor_threads;
	if ((e = scl_enclave_start(&w->e, &eo, scl_core_main, &w->boot)) !=
		SCL_OK ||
	    (e = scl_worker__call(w, scl_slice_of(&init, 1), &body)) !=
		SCL_OK ||
	    (e = scl_core_keys_decode(&w->keys, body)) != SCL_OK) {
		scl_worker_stop(w, NULL);
		return e;
	}
	*out = w;
	return SCL_OK;
}

void
scl_worker_keys(const struct scl_worker *w, uint8_t writer[SCL_WRITER_BYTES],
    uint8_t box_key[SCL_BOX_PUBLIC_BYTES])
{
	memcpy(writer, w->keys.writer, SCL_WRITER_BYTES);
	memcpy(box_key, w->keys.box, SCL_BOX_PUBLIC_BYTES);
}

struct scl_enclave *
scl_worker_enclave(struct scl_worker *w)
{
	return w->e;
}

/* The platform's evidence over @rd (sim signs with a key file; tsm asks
 * the kernel). */
static enum scl_err
evidence(struct scl_worker *w, const uint8_t rd[SCL_REPORT_DATA_BYTES],
    struct scl_buf *out)
{
	uint8_t meas[SCL_MEASUREMENT_BYTES];
	struct scl_sign_key platform;
	struct scl_buf seed;
	enum scl_err e;

	if (w->opt.attest == SCL_ATTEST_TSM)
		return scl_attest_tsm_evidence(out, rd);
	scl_log(&w->opt.log, SCL_LOG_WARN, "attest", "%s",
	    SCL_ATTEST_SIM_WARNING);
	if ((e = scl_attest_measure_file(meas, w->measure_path)) != SCL_OK)
		return e;
	scl_buf_init(&seed);
	e = scl_keyfile_read(&seed, w->platform_key, SCL_KEYFILE_IDENTITY);
	if (e == SCL_OK && seed.len != 32)
		e = scl_err_set(SCL_EFORMAT, "%s is not a platform key",
		    w->platform_key);
	if (e == SCL_OK) {
		scl_sign_key_from_seed(&platform, seed.ptr);
		e = scl_attest_sim_evidence(out, &platform, meas, rd);
		scl_sign_key_wipe(&platform);
	}
	scl_buf_dispose_secret(&seed);
	return e;
}

/* The core's report data, binding its keys to the broker's @nonce. */
static enum scl_err
report_data(struct scl_worker *w, const uint8_t nonce[SCL_NONCE_BYTES],
    uint8_t rd[SCL_REPORT_DATA_BYTES])
{
	struct scl_slice body;
	struct scl_buf req;
	enum scl_err e;

	scl_buf_init(&req);
	if ((e = scl_core_report_encode(&req, nonce)) == SCL_OK)
		e = scl_worker__call(w, scl_buf_slice(&req), &body);
	scl_buf_dispose(&req);
	if (e == SCL_OK && body.len != SCL_REPORT_DATA_BYTES)
		e = scl_err_set(SCL_EFORMAT, "report data of %zu bytes",
		    body.len);
	if (e == SCL_OK)
		memcpy(rd, body.ptr, SCL_REPORT_DATA_BYTES);
	return e;
}

/* Hands the broker's grant to the core, which checks all of it. */
static enum scl_err
install(struct scl_worker *w, struct scl_slice meta,
    const struct scl_broker_grant *g)
{
	struct scl_core_install *in = calloc(1, sizeof(*in));
	struct scl_slice body;
	struct scl_buf req;
	enum scl_err e;

	if (in == NULL)
		return scl_err_set(SCL_ENOMEM, "key installation");
	if (g->n_keys > SCL_EPOCHS_MAX) {
		free(in);
		return scl_err_set(SCL_EFORMAT, "a grant of %zu keys",
		    g->n_keys);
	}
	in->meta = meta;
	in->cert = scl_buf_slice(&g->cert);
	in->n_keys = (uint16_t)g->n_keys;
	for (size_t i = 0; i < g->n_keys; i++) {
		in->keys[i].epoch = g->keys[i].epoch;
		in->keys[i].wrapped = g->keys[i].sealed;
	}
	scl_buf_init(&req);
	if ((e = scl_core_install_encode(&req, in)) == SCL_OK)
		e = scl_worker__call(w, scl_buf_slice(&req), &body);
	scl_buf_dispose(&req);
	free(in);
	return e;
}

enum scl_err
scl_worker_attest(struct scl_worker *w, struct scl_slice meta)
{
	struct scl_broker_grant *g = calloc(1, sizeof(*g));
	uint8_t nonce[SCL_NONCE_BYTES], rd[SCL_REPORT_DATA_BYTES];
	uint8_t name[SCL_NAME_BYTES];
	struct scl_buf ev;
	enum scl_err e;

	if (g == NULL)
		return scl_err_set(SCL_ENOMEM, "grant");
	scl_buf_init(&ev);
	scl_broker_grant_init(g);
	scl_capsule_name(name, meta);
	if ((e = scl_broker_nonce(w->broker, nonce, 5000)) == SCL_OK &&
	    (e = report_data(w, nonce, rd)) == SCL_OK &&
	    (e = evidence(w, rd, &ev)) == SCL_OK &&
	    (e = scl_broker_attest(g, w->broker, name, w->keys.writer,
		 w->keys.box, nonce, scl_buf_slice(&ev), 5000)) == SCL_OK)
		e = install(w, meta, g);
	scl_buf_dispose(&ev);
	scl_broker_grant_dispose(g);
	free(g);
	return e;
}

enum scl_err
scl_worker_seal(struct scl_worker *w, const struct scl_slice *payloads,
    size_t n, struct scl_capsule_batch *out)
{
	struct scl_slice body;
	struct scl_buf req;
	enum scl_err e;

	scl_buf_init(&req);
	if ((e = scl_core_write_encode(&req, payloads, n)) == SCL_OK)
		e = scl_worker__call(w, scl_buf_slice(&req), &body);
	scl_buf_dispose(&req);
	if (e != SCL_OK)
		return e;
	/* The core's answer is parsed like anything else from outside. */
	return scl_core_batch_decode(out, body);
}

enum scl_err
scl_worker_kv_open(struct scl_worker *w, const struct scl_worker_kv_options *opt)
{
	struct scl_core_kv_params p;
	struct scl_slice body;
	struct scl_buf req;
	enum scl_err e;

	if (opt->batch_max_puts > UINT32_MAX)
		return scl_err_set(SCL_EINVAL, "batches of %zu puts",
		    opt->batch_max_puts);
	p.batch_max_puts = (uint32_t)opt->batch_max_puts;
	p.batch_delay_us = opt->batch_delay_us ? opt->batch_delay_us
					       : SCL_WORKER_BATCH_DELAY_US_DEFAULT;
	p.plain = opt->plain;
	p.record_version = opt->record_version;
	scl_buf_init(&req);
	if ((e = scl_core_kv_params_encode(&req, &p)) == SCL_OK)
		e = scl_worker__call(w, scl_buf_slice(&req), &body);
	scl_buf_dispose(&req);
	return e;
}

void
scl_worker_stop(struct scl_worker *w, struct scl_enclave_exit *ex)
{
	if (w == NULL)
		return;
	scl_enclave_stop(w->e, ex);
	free(w->reply);
	free(w);
}
