/*
 * worker.c - the untrusted host side of a worker: starts the core, runs
 * the attestation exchange between core, platform and key broker, and
 * relays sealed batches.  Nothing here ever sees a secret key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scl/broker.h"
#include "scl/codec.h"
#include "scl/worker.h"
#include "worker_int.h"

#define WORKER_RING_SPIN_US 5

enum scl_err
scl_worker__call(struct scl_worker *w, const void *req, size_t len,
    struct scl_slice *body)
{
	size_t n;
	enum scl_err e = scl_enclave_call(w->e, req, len, w->reply, REPLY_MAX,
	    &n, 30000);

	if (e != SCL_OK)
		return scl_err_wrap(e, "trusted core: ");
	if (n < 1)
		return scl_err_set(SCL_EFORMAT, "empty reply from the core");
	*body = scl_slice_of(w->reply + 1, n - 1);
	if (w->reply[0] != 0)
		return scl_err_set(SCL_EVERIFY, "trusted core: %.*s",
		    (int)body->len, (const char *)body->ptr);
	return SCL_OK;
}

enum scl_err
scl_worker_start(struct scl_worker **out, const struct scl_worker_options *opt)
{
	struct scl_enclave_options eo;
	struct scl_worker *w;
	struct scl_slice body;
	enum scl_err e;

	*out = NULL;
	if ((w = calloc(1, sizeof(*w))) == NULL ||
	    (w->reply = malloc(REPLY_MAX)) == NULL) {
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
					     : WORKER_RING_SPIN_US;
	eo.init = scl_worker_core_init;
	w->boot.actor_threads = opt->actor_threads;
	if ((e = scl_enclave_start(&w->e, &eo, scl_worker_core_main,
		 &w->boot)) !=
		SCL_OK ||
	    (e = scl_worker__call(w, &(uint8_t){ SCL_CORE_INIT }, 1, &body)) !=
		SCL_OK) {
		scl_worker_stop(w, NULL);
		return e;
	}
	if (body.len != 64) {
		scl_worker_stop(w, NULL);
		return scl_err_set(SCL_EFORMAT, "core keys of %zu bytes",
		    body.len);
	}
	memcpy(w->writer, body.ptr, 32);
	memcpy(w->box, body.ptr + 32, 32);
	*out = w;
	return SCL_OK;
}

void
scl_worker_keys(const struct scl_worker *w, uint8_t writer[32],
    uint8_t box_key[32])
{
	memcpy(writer, w->writer, 32);
	memcpy(box_key, w->box, 32);
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

enum scl_err
scl_worker_attest(struct scl_worker *w, struct scl_slice meta)
{
	struct scl_broker_grant *g = calloc(1, sizeof(*g));
	uint8_t nonce[SCL_NONCE_BYTES], rd[SCL_REPORT_DATA_BYTES];
	uint8_t req[1 + SCL_NONCE_BYTES], name[SCL_NAME_BYTES];
	struct scl_buf ev, msg;
	struct scl_slice body;
	struct scl_enc enc;
	enum scl_err e;

	scl_buf_init(&ev);
	scl_buf_init(&msg);
	if (g == NULL)
		return scl_err_set(SCL_ENOMEM, "grant");
	scl_broker_grant_init(g);
	scl_capsule_name(name, meta);
	if ((e = scl_broker_nonce(w->broker, nonce, 5000)) != SCL_OK)
		goto done;
	req[0] = SCL_CORE_REPORT;
	memcpy(req + 1, nonce, sizeof(nonce));
	if ((e = scl_worker__call(w, req, sizeof(req), &body)) != SCL_OK)
		goto done;
	if (body.len != sizeof(rd)) {
		e = scl_err_set(SCL_EFORMAT, "report data of %zu bytes",
		    body.len);
		goto done;
	}
	memcpy(rd, body.ptr, sizeof(rd));
	if ((e = evidence(w, rd, &ev)) != SCL_OK ||
	    (e = scl_broker_attest(g, w->broker, name, w->writer, w->box, nonce,
		 scl_buf_slice(&ev), 5000)) != SCL_OK)
		goto done;
	scl_enc_init(&enc, &msg);
	scl_enc_u8(&enc, SCL_CORE_INSTALL);
	scl_enc_blob16(&enc, meta.ptr, meta.len);
	scl_enc_blob16(&enc, g->cert.ptr, g->cert.len);
	scl_enc_u16(&enc, (uint16_t)g->n_keys);
	for (size_t i = 0; i < g->n_keys; i++) {
		scl_enc_u32(&enc, g->keys[i].epoch);
		scl_enc_bytes(&enc, g->keys[i].sealed, 80);
	}
	if ((e = enc.err) == SCL_OK)
		e = scl_worker__call(w, msg.ptr, msg.len, &body);
done:
	scl_buf_dispose(&ev);
	scl_buf_dispose(&msg);
	scl_broker_grant_dispose(g);
	free(g);
	return e;
}

enum scl_err
scl_worker_seal(struct scl_worker *w, const struct scl_slice *payloads,
    size_t n, struct scl_capsule_batch *out)
{
	struct scl_buf msg;
	struct scl_slice body;
	struct scl_enc enc;
	struct scl_dec d;
	uint16_t count;
	enum scl_err e;

	if (n > UINT16_MAX)
		return scl_err_set(SCL_ELIMIT, "%zu payloads in one batch", n);
	scl_buf_init(&msg);
	scl_enc_init(&enc, &msg);
	scl_enc_u8(&enc, SCL_CORE_WRITE);
	scl_enc_u16(&enc, (uint16_t)n);
	for (size_t i = 0; i < n; i++)
		scl_enc_blob32(&enc, payloads[i].ptr, payloads[i].len);
	e = enc.err;
	if (e == SCL_OK)
		e = scl_worker__call(w, msg.ptr, msg.len, &body);
	scl_buf_dispose(&msg);
	if (e != SCL_OK)
		return e;
	/* The core's answer is parsed like anything else from outside. */
	scl_capsule_batch_clear(out);
	scl_dec_init(&d, body, "core batch");
	count = scl_dec_u16(&d, "record count");
	for (uint16_t i = 0; i < count && scl_dec_ok(&d); i++) {
		struct scl_slice rec = scl_dec_blob32(&d, SCL_PAYLOAD_MAX + 8192,
		    "record");
		uint8_t hash[SCL_HASH_BYTES];
		struct scl_record r;
		if (!scl_dec_ok(&d))
			break;
		if ((e = scl_capsule_record_decode(&r, rec)) != SCL_OK ||
		    (e = scl_capsule_record_hash(hash, &r)) != SCL_OK ||
		    (e = scl_capsule_batch_add(out, rec, hash)) != SCL_OK)
			return e;
	}
	{
		struct scl_slice hb = scl_dec_blob16(&d, SCL_HEARTBEAT_BYTES,
		    "heartbeat");
		if ((e = scl_dec_finish(&d)) != SCL_OK)
			return e;
		return scl_buf_set(&out->heartbeat, hb);
	}
}

enum scl_err
scl_worker_kv_open(struct scl_worker *w, const struct scl_worker_kv_options *opt)
{
	struct scl_buf req;
	struct scl_enc enc;
	struct scl_slice body;
	enum scl_err e;

	scl_buf_init(&req);
	scl_enc_init(&enc, &req);
	scl_enc_u8(&enc, SCL_CORE_KV_OPEN);
	scl_enc_u32(&enc, (uint32_t)opt->batch_max_puts);
	scl_enc_u64(&enc, opt->batch_delay_us);
	scl_enc_u8(&enc, opt->plain);
	scl_enc_u16(&enc, opt->record_version);
	e = enc.err;
	if (e == SCL_OK)
		e = scl_worker__call(w, req.ptr, req.len, &body);
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
