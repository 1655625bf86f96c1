/*
 * core.c - the trusted core of a worker: keys, certificate, data keys and
 * the writer's chain live here and nowhere else.
 *
 * Everything arrives as a copied message and is parsed with the codec's
 * bounds checks (msg.c); nothing from the host is trusted: the metadata
 * must verify, the certificate must admit exactly this core's key for
 * that capsule under its owner's signature, and wrapped keys must open
 * with this core's box key.  Under the process backend this code runs
 * under seccomp: it may only compute, allocate, use its rings and
 * getrandom().
 */
#include <limits.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "core_int.h"
#include "scl/clock.h"

static enum scl_err
op_init(struct scl_core *c, struct scl_slice in)
{
	struct scl_core_keys k;

	if (in.len != 0)
		return scl_err_set(SCL_EFORMAT, "INIT takes no body");
	if (!c->have_keys) {
		scl_sign_keygen(&c->sign);
		scl_box_keygen(&c->box);
		c->have_keys = true;
	}
	memcpy(k.writer, c->sign.public_key, sizeof(k.writer));
	memcpy(k.box, c->box.public_key, sizeof(k.box));
	return scl_core_keys_encode(&c->out, &k);
}

static enum scl_err
op_report(struct scl_core *c, struct scl_slice in)
{
	uint8_t nonce[SCL_NONCE_BYTES], rd[SCL_REPORT_DATA_BYTES];
	enum scl_err e;

	if (!c->have_keys)
		return scl_err_set(SCL_EINVAL, "core has no keys yet");
	if ((e = scl_core_report_decode(nonce, in)) != SCL_OK)
		return e;
	scl_attest_report_data(rd, c->sign.public_key, c->box.public_key,
	    nonce);
	return scl_buf_append(&c->out, rd, sizeof(rd));
}

static enum scl_err
install(struct scl_core *c, const struct scl_core_install *in)
{
	struct scl_capsule_head head;
	struct scl_capsule_cert cert;
	enum scl_err e;

	scl_capsule_name(c->name, in->meta);
	if ((e = scl_capsule_meta_check(&c->meta, c->name, in->meta)) !=
		SCL_OK ||
	    (e = scl_capsule_cert_decode(&cert, in->cert)) != SCL_OK ||
	    (e = scl_capsule_cert_verify(&cert, c->name, c->meta.owner,
		 c->sign.public_key)) != SCL_OK)
		return e;
	if (memcmp(cert.box_key, c->box.public_key, SCL_BOX_PUBLIC_BYTES) != 0)
		return scl_err_set(SCL_EVERIFY,
		    "the certificate names another box key");
	if ((c->keys = calloc(1, sizeof(*c->keys))) == NULL)
		return scl_err_set(SCL_ENOMEM, "keyring");
	memcpy(c->keys->capsule, c->name, SCL_NAME_BYTES);
	for (uint16_t i = 0; i < in->n_keys; i++) {
		c->keys->epochs[i].epoch = in->keys[i].epoch;
		if ((e = scl_box_open(c->keys->epochs[i].key,
			 in->keys[i].wrapped, SCL_CORE_WRAPPED_KEY_BYTES,
			 &c->box)) != SCL_OK)
			return scl_err_wrap(e, "data key of epoch %u: ",
			    in->keys[i].epoch);
		c->keys->n_epochs++;
	}
	if ((e = scl_buf_set(&c->cert, in->cert)) != SCL_OK ||
	    (e = scl_buf_set(&c->meta_bytes, in->meta)) != SCL_OK)
		return e;
	memset(&head, 0, sizeof(head));
	/* Writes use the newest epoch; older ones remain for reading. */
	return scl_capsule_writer_new(&c->writer, c->name, c->meta.aead,
	    &c->sign, c->keys->epochs[c->keys->n_epochs - 1].epoch,
	    c->keys->epochs[c->keys->n_epochs - 1].key, &head);
}

/* A refused installation leaves no key behind, and may be retried. */
static enum scl_err
op_install(struct scl_core *c, struct scl_slice in)
{
	struct scl_core_install *inst;
	enum scl_err e;

	if (!c->have_keys)
		return scl_err_set(SCL_EINVAL, "core has no keys yet");
	if (c->writer)
		return scl_err_set(SCL_EINVAL, "core already holds its keys");
	if ((inst = malloc(sizeof(*inst))) == NULL)
		return scl_err_set(SCL_ENOMEM, "key installation");
	if ((e = scl_core_install_decode(inst, in)) == SCL_OK)
		e = install(c, inst);
	free(inst);
	if (e != SCL_OK && c->keys) {
		scl_capsule_keyring_wipe(c->keys);
		free(c->keys);
		c->keys = NULL;
	}
	return e;
}

/* Seals the payloads as the next records of the chain (the certificate
 * first, the first time) under one heartbeat. */
static enum scl_err
op_write(struct scl_core *c, struct scl_slice in)
{
	struct scl_capsule_batch b;
	struct scl_slice list, p;
	uint16_t n;
	enum scl_err r;

	if (c->writer == NULL)
		return scl_err_set(SCL_EINVAL, "core is not attested yet");
	if (c->kv)
		return scl_err_set(SCL_EINVAL, "the core runs a KVS: its chain "
		    "is the KVS's");
	if ((r = scl_core_write_decode(&n, &list, in)) != SCL_OK)
		return r;
	if (n == 0 && c->cert_written)
		return scl_err_set(SCL_EINVAL, "nothing to write");
	scl_capsule_batch_init(&b);
	if (!c->cert_written)
		r = scl_capsule_writer_append(c->writer, &b, SCL_RECORD_CERT,
		    scl_buf_slice(&c->cert));
	while (r == SCL_OK && scl_core_write_next(&list, &p))
		r = scl_capsule_writer_append(c->writer, &b, SCL_RECORD_DATA,
		    p);
	if (r == SCL_OK)
		r = scl_capsule_writer_seal_batch(c->writer, &b,
		    scl_clock_wall_us());
	if (r == SCL_OK) {
		c->cert_written = true;
		r = scl_core_batch_encode(&c->out, &b);
	}
	scl_capsule_batch_dispose(&b);
	return r;
}

struct scl_core *
scl_core_new(struct scl_actors *actors)
{
	struct scl_core *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->actors = actors;
	scl_buf_init(&c->out);
	scl_buf_init(&c->cert);
	scl_buf_init(&c->meta_bytes);
	scl_buf_init(&c->results);
	scl_kv_output_init(&c->kv_out);
	return c;
}

void
scl_core_free(struct scl_core *c)
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
	scl_buf_dispose_secret(&c->results); /* plaintext values */
	scl_buf_dispose_secret(&c->out);
	scl_sign_key_wipe(&c->sign);
	scl_box_key_wipe(&c->box);
	free(c);
}

static enum scl_err
dispatch(struct scl_core *c, uint8_t op, struct scl_slice in)
{
	switch (op) {
	case SCL_CORE_INIT:
		return op_init(c, in);
	case SCL_CORE_REPORT:
		return op_report(c, in);
	case SCL_CORE_INSTALL:
		return op_install(c, in);
	case SCL_CORE_WRITE:
		return op_write(c, in);
	case SCL_CORE_KV_OPEN:
		if (c->cert_written)
			return scl_err_set(SCL_EINVAL, "the core has written "
			    "records outside a KVS");
		return scl_core__kv_open(c, in);
	case SCL_CORE_KV_OPS:
		return scl_core__kv_ops(c, in);
	case SCL_CORE_KV_RECEIVE:
		return scl_core__kv_receive(c, in);
	case SCL_CORE_KV_TICK:
		return scl_core__kv_tick(c, in);
	case SCL_CORE_KV_STATS:
		return scl_core__kv_stats(c, in);
	case SCL_CORE_KV_TIMED:
		return scl_core__kv_timed(c, in);
	case SCL_CORE_KV_DURABLE:
		return scl_core__kv_durable(c, in);
	}
	return scl_err_set(SCL_EFORMAT, "unknown core request 0x%02x", op);
}

struct scl_slice
scl_core_handle(struct scl_core *c, struct scl_slice msg)
{
	uint8_t op = msg.len ? msg.ptr[0] : 0;
	enum scl_err e;

	scl_err_clear();
	if (msg.len == 0)
		e = scl_err_set(SCL_EFORMAT, "an empty request");
	else if ((e = scl_core_reply_begin(&c->out, op)) == SCL_OK)
		e = dispatch(c, op, scl_slice_of(msg.ptr + 1, msg.len - 1));
	if (e != SCL_OK && scl_core_reply_error(&c->out, op, e,
			       scl_err_last()) != SCL_OK) {
		/* No room even for the reason: the code alone. */
		c->oom[0] = op;
		c->oom[1] = SCL_ENOMEM;
		return scl_slice_of(c->oom, sizeof(c->oom));
	}
	return scl_buf_slice(&c->out);
}

void
scl_core_init(void *arg)
{
	struct scl_core_boot *boot = arg;

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
scl_core_main(struct scl_enclave_io *io, void *arg)
{
	struct scl_core_boot *boot = arg;
	struct scl_core *c = scl_core_new(boot ? boot->actors : NULL);
	uint8_t *in = malloc(SCL_CORE_MSG_MAX);
	size_t len;

	while (c && in && scl_enclave_io_recv(io, in, SCL_CORE_MSG_MAX, &len,
			      -1) == SCL_OK) {
		struct scl_slice out = scl_core_handle(c, scl_slice_of(in, len));
		if (scl_enclave_io_send(io, out.ptr, out.len) != SCL_OK)
			break;
	}
	scl_core_free(c);
	free(in);
	if (boot && boot->actors) {
		scl_actors_free(boot->actors);
		boot->actors = NULL;
	}
}
