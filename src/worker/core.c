/*
 * core.c - the trusted core of a worker: keys, certificate, data keys and
 * the writer's chain live here and nowhere else.
 *
 * Everything arrives as a copied message and is parsed with the codec's
 * bounds checks; nothing from the host is trusted: the metadata must
 * verify, the certificate must admit exactly this core's key for that
 * capsule under its owner's signature, and wrapped keys must open with
 * this core's box key.  Under the process backend this code runs under
 * seccomp: it may only compute, allocate, use its rings and getrandom().
 */
#include <limits.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scl/attest.h"
#include "scl/clock.h"
#include "scl/codec.h"
#include "scl/worker.h"
#include "worker_int.h"



static enum scl_err
op_init(struct scl_worker_core *c, struct scl_buf *body)
{
	if (!c->have_keys) {
		scl_sign_keygen(&c->sign);
		scl_box_keygen(&c->box);
		c->have_keys = true;
	}
	if (scl_buf_append(body, c->sign.public_key, 32) != SCL_OK ||
	    scl_buf_append(body, c->box.public_key, 32) != SCL_OK)
		return SCL_ENOMEM;
	return SCL_OK;
}

static enum scl_err
op_report(struct scl_worker_core *c, struct scl_slice in, struct scl_buf *body)
{
	uint8_t rd[SCL_REPORT_DATA_BYTES];

	if (!c->have_keys)
		return scl_err_set(SCL_EINVAL, "core has no keys yet");
	if (in.len != SCL_NONCE_BYTES)
		return scl_err_set(SCL_EFORMAT, "nonce of %zu bytes", in.len);
	scl_attest_report_data(rd, c->sign.public_key, c->box.public_key,
	    in.ptr);
	return scl_buf_append(body, rd, sizeof(rd));
}

/* meta (blob16), cert (blob16), u16 n, n x (u32 epoch, 80 sealed) */
static enum scl_err
install(struct scl_worker_core *c, struct scl_slice in)
{
	struct scl_capsule_head head;
	struct scl_capsule_cert cert;
	struct scl_slice meta, cb;
	struct scl_dec d;
	uint16_t n;
	enum scl_err e;

	if (!c->have_keys)
		return scl_err_set(SCL_EINVAL, "core has no keys yet");
	if (c->writer)
		return scl_err_set(SCL_EINVAL, "core already holds its keys");
	scl_dec_init(&d, in, "key installation");
	meta = scl_dec_blob16(&d, 8192, "metadata");
	cb = scl_dec_blob16(&d, SCL_CERT_BYTES, "certificate");
	n = scl_dec_u16(&d, "key count");
	if (!scl_dec_ok(&d))
		return d.err;
	if (n == 0 || n > SCL_EPOCHS_MAX)
		return scl_dec_fail(&d, SCL_EFORMAT, "%u keys", n);
	scl_capsule_name(c->name, meta);
	if ((e = scl_capsule_meta_check(&c->meta, c->name, meta)) != SCL_OK ||
	    (e = scl_capsule_cert_decode(&cert, cb)) != SCL_OK ||
	    (e = scl_capsule_cert_verify(&cert, c->name, c->meta.owner,
		 c->sign.public_key)) != SCL_OK)
		return e;
	if (memcmp(cert.box_key, c->box.public_key, 32) != 0)
		return scl_err_set(SCL_EVERIFY,
		    "the certificate names another box key");
	if ((c->keys = calloc(1, sizeof(*c->keys))) == NULL)
		return scl_err_set(SCL_ENOMEM, "keyring");
	memcpy(c->keys->capsule, c->name, 32);
	for (uint16_t i = 0; i < n && scl_dec_ok(&d); i++) {
		uint32_t epoch = scl_dec_u32(&d, "epoch");
		const uint8_t *sealed = scl_dec_bytes(&d, 80, "wrapped key");
		if (!scl_dec_ok(&d))
			break;
		if (i > 0 && epoch <= c->keys->epochs[i - 1].epoch)
			return scl_dec_fail(&d, SCL_EFORMAT,
			    "epochs out of order");
		c->keys->epochs[i].epoch = epoch;
		if ((e = scl_box_open(c->keys->epochs[i].key, sealed, 80,
			 &c->box)) != SCL_OK)
			return scl_err_wrap(e, "data key of epoch %u: ", epoch);
		c->keys->n_epochs++;
	}
	if ((e = scl_dec_finish(&d)) != SCL_OK)
		return e;
	if ((e = scl_buf_set(&c->cert, cb)) != SCL_OK ||
	    (e = scl_buf_set(&c->meta_bytes, meta)) != SCL_OK)
		return e;
	memset(&head, 0, sizeof(head));
	/* Writes use the newest epoch; older ones remain for reading. */
	return scl_capsule_writer_new(&c->writer, c->name, c->meta.aead,
	    &c->sign, c->keys->epochs[c->keys->n_epochs - 1].epoch,
	    c->keys->epochs[c->keys->n_epochs - 1].key, &head);
}

/* A refused installation leaves no key behind, and may be retried. */
static enum scl_err
op_install(struct scl_worker_core *c, struct scl_slice in)
{
	enum scl_err e = install(c, in);

	if (e != SCL_OK && c->keys) {
		scl_capsule_keyring_wipe(c->keys);
		free(c->keys);
		c->keys = NULL;
	}
	return e;
}

/* u16 n, n x blob32 payload -> u16 records, blob32 each, blob16 hb */
static enum scl_err
op_write(struct scl_worker_core *c, struct scl_slice in, struct scl_buf *body)
{
	struct scl_capsule_batch b;
	struct scl_dec d;
	struct scl_enc e;
	uint16_t n;
	enum scl_err r = SCL_OK;

	if (c->writer == NULL)
		return scl_err_set(SCL_EINVAL, "core is not attested yet");
	scl_capsule_batch_init(&b);
	scl_dec_init(&d, in, "write request");
	n = scl_dec_u16(&d, "payload count");
	if (!c->cert_written)
		r = scl_capsule_writer_append(c->writer, &b, SCL_RECORD_CERT,
		    scl_buf_slice(&c->cert));
	for (uint16_t i = 0; i < n && r == SCL_OK && scl_dec_ok(&d); i++) {
		struct scl_slice p = scl_dec_blob32(&d, SCL_PAYLOAD_MAX,
		    "payload");
		if (scl_dec_ok(&d))
			r = scl_capsule_writer_append(c->writer, &b,
			    SCL_RECORD_DATA, p);
	}
	if (r == SCL_OK && (r = scl_dec_finish(&d)) == SCL_OK && b.n == 0)
		r = scl_err_set(SCL_EINVAL, "nothing to write");
	if (r == SCL_OK) {
		r = scl_capsule_writer_seal_batch(c->writer, &b,
		    scl_clock_wall_us());
	}
	if (r == SCL_OK) {
		c->cert_written = true;
		scl_enc_init(&e, body);
		scl_enc_u16(&e, (uint16_t)b.n);
		for (size_t i = 0; i < b.n; i++) {
			struct scl_slice rec = scl_capsule_batch_record(&b, i);
			scl_enc_blob32(&e, rec.ptr, rec.len);
		}
		scl_enc_blob16(&e, b.heartbeat.ptr, b.heartbeat.len);
		r = e.err;
	}
	scl_capsule_batch_dispose(&b);
	return r;
}

struct scl_worker_core *
scl_worker_core_new(void)
{
	struct scl_worker_core *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	scl_buf_init(&c->out);
	scl_buf_init(&c->cert);
	scl_buf_init(&c->meta_bytes);
	scl_buf_init(&c->body);
	scl_kv_output_init(&c->kv_out);
	return c;
}

void
scl_worker_core_free(struct scl_worker_core *c)
{
	if (c == NULL)
		return;
	scl_kv_free(c->kv);
	scl_kv_output_dispose(&c->kv_out);
	scl_capsule_writer_free(c->writer);
	if (c->keys) {
		scl_capsule_keyring_wipe(c->keys);
		free(c->keys);
	}
	scl_buf_dispose(&c->cert);
	scl_buf_dispose(&c->meta_bytes);
	scl_buf_dispose(&c->out);
	scl_buf_dispose(&c->body);
	scl_sign_key_wipe(&c->sign);
	scl_box_key_wipe(&c->box);
	free(c);
}

struct scl_slice
scl_worker_core_handle(struct scl_worker_core *c, struct scl_slice msg)
{
	struct scl_slice rest = msg.len ? scl_slice_of(msg.ptr + 1, msg.len - 1)
					: msg;
	uint8_t status;
	enum scl_err e;

	scl_buf_clear(&c->body);
	scl_buf_clear(&c->out);
	scl_err_clear();
	switch (msg.len ? msg.ptr[0] : 0) {
	case SCL_CORE_INIT:
		e = op_init(c, &c->body);
		break;
	case SCL_CORE_REPORT:
		e = op_report(c, rest, &c->body);
		break;
	case SCL_CORE_INSTALL:
		e = op_install(c, rest);
		break;
	case SCL_CORE_WRITE:
		e = c->kv ? scl_err_set(SCL_EINVAL, "the core runs a KVS: its "
		    "chain is the KVS's") : op_write(c, rest, &c->body);
		break;
	case SCL_CORE_KV_OPEN:
		e = c->cert_written ? scl_err_set(SCL_EINVAL, "the core has "
		    "written records outside a KVS") : scl_worker__kv_open(c,
		    rest);
		break;
	case SCL_CORE_KV_OPS:
		e = scl_worker__kv_ops(c, rest, &c->body);
		break;
	case SCL_CORE_KV_RECEIVE:
		e = scl_worker__kv_receive(c, rest, &c->body);
		break;
	case SCL_CORE_KV_TICK:
		e = scl_worker__kv_tick(c, rest, &c->body);
		break;
	case SCL_CORE_KV_STATS:
		e = scl_worker__kv_stats(c, &c->body);
		break;
	case SCL_CORE_KV_LOCAL:
		e = scl_worker__kv_local(c, rest, &c->body);
		break;
	default:
		e = scl_err_set(SCL_EINVAL, "unknown core request 0x%02x",
		    msg.len ? msg.ptr[0] : 0);
	}
	status = e == SCL_OK ? 0 : 1;
	if (e != SCL_OK) {
		scl_buf_clear(&c->body);
		if (scl_buf_append(&c->body, scl_err_last(),
			strlen(scl_err_last())) != SCL_OK)
			scl_buf_clear(&c->body);
	}
	if (scl_buf_append(&c->out, &status, 1) != SCL_OK ||
	    scl_buf_append(&c->out, c->body.ptr, c->body.len) != SCL_OK)
		return scl_slice_of("\1out of memory", 14);
	return scl_buf_slice(&c->out);
}

void
scl_worker_core_init(void *arg)
{
	struct scl_worker_boot *boot = arg;

	/* glibc's malloc reads files in two places, each an open() the
	 * seccomp filter kills: the CPU count from /sys when a thread first
	 * needs an arena (a fixed arena limit skips it), and
	 * /proc/sys/vm/overcommit_memory when it shrinks a thread's heap
	 * (a trim threshold no heap reaches skips it; the core then keeps
	 * its high-water mark of memory, which it would reuse anyway).
	 * Setting it also freezes glibc's moving mmap threshold at 128 KiB,
	 * so every batch buffer (up to 256 KiB) was mapped, faulted in and
	 * zeroed page by page, and unmapped again: a fifth of a busy core's
	 * time under perf.  Blocks below 32 MiB (glibc's ceiling) come from
	 * the heaps instead, and are reused. */
	mallopt(M_ARENA_MAX, 8);
	mallopt(M_TRIM_THRESHOLD, INT_MAX);
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	if (boot && boot->actor_threads &&
	    scl_actors_new(&boot->actors, boot->actor_threads) != SCL_OK)
		boot->actors = NULL; /* KV_OPEN will say it has none */
}

void
scl_worker_core_main(struct scl_core_io *io, void *arg)
{
	struct scl_worker_boot *boot = arg;
	struct scl_worker_core *c = scl_worker_core_new();
	uint8_t *in = malloc(MSG_MAX);
	size_t len;

	if (c && boot)
		c->actors = boot->actors;
	while (c && in && scl_core_recv(io, in, MSG_MAX, &len, -1) == SCL_OK) {
		struct scl_slice out = scl_worker_core_handle(c,
		    scl_slice_of(in, len));
		if (scl_core_send(io, out.ptr, out.len) != SCL_OK)
			break;
	}
	scl_worker_core_free(c);
	free(in);
	if (boot && boot->actors) {
		scl_actors_free(boot->actors);
		boot->actors = NULL;
	}
}
