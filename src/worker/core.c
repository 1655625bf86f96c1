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
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scl/attest.h"
#include "scl/codec.h"
#include "scl/worker.h"

#define MSG_MAX ((size_t)17 << 20)

struct core {
	struct scl_sign_key sign;
	struct scl_box_key box;
	bool have_keys;
	uint8_t name[SCL_NAME_BYTES];
	struct scl_capsule_meta meta;
	struct scl_capsule_keyring *keys;
	struct scl_buf cert;
	struct scl_capsule_writer *writer;
	bool cert_written;
	struct scl_buf out;
};

static enum scl_err
reply(struct scl_core_io *io, struct core *c, enum scl_err e,
    struct scl_slice body)
{
	uint8_t status = e == SCL_OK ? 0 : 1;

	scl_buf_clear(&c->out);
	if (scl_buf_append(&c->out, &status, 1) != SCL_OK)
		return SCL_ENOMEM;
	if (e != SCL_OK)
		body = scl_slice_of(scl_err_last(), strlen(scl_err_last()));
	if (scl_buf_append(&c->out, body.ptr, body.len) != SCL_OK)
		return SCL_ENOMEM;
	return scl_core_send(io, c->out.ptr, c->out.len);
}

static enum scl_err
op_init(struct core *c, struct scl_buf *body)
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
op_report(struct core *c, struct scl_slice in, struct scl_buf *body)
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
op_install(struct core *c, struct scl_slice in)
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
	if ((e = scl_buf_set(&c->cert, cb)) != SCL_OK)
		return e;
	memset(&head, 0, sizeof(head));
	/* Writes use the newest epoch; older ones remain for reading. */
	return scl_capsule_writer_new(&c->writer, c->name, c->meta.aead,
	    &c->sign, c->keys->epochs[c->keys->n_epochs - 1].epoch,
	    c->keys->epochs[c->keys->n_epochs - 1].key, &head);
}

/* u16 n, n x blob32 payload -> u16 records, blob32 each, blob16 hb */
static enum scl_err
op_write(struct core *c, struct scl_slice in, struct scl_buf *body)
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
		struct timespec ts; /* the vDSO reads the clock: no syscall */
		clock_gettime(CLOCK_REALTIME, &ts);
		r = scl_capsule_writer_seal_batch(c->writer, &b,
		    (uint64_t)ts.tv_sec * 1000000u +
			(uint64_t)ts.tv_nsec / 1000u);
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

void
scl_worker_core_main(struct scl_core_io *io, void *arg)
{
	struct core *c = calloc(1, sizeof(*c));
	uint8_t *in = malloc(MSG_MAX);
	struct scl_buf body;
	size_t len;

	(void)arg;
	if (c == NULL || in == NULL)
		goto done;
	scl_buf_init(&c->out);
	scl_buf_init(&c->cert);
	scl_buf_init(&body);
	while (scl_core_recv(io, in, MSG_MAX, &len, -1) == SCL_OK) {
		struct scl_slice rest = scl_slice_of(in + 1, len ? len - 1 : 0);
		enum scl_err e;
		scl_buf_clear(&body);
		scl_err_clear();
		switch (len ? in[0] : 0) {
		case 'I':
			e = op_init(c, &body);
			break;
		case 'R':
			e = op_report(c, rest, &body);
			break;
		case 'K':
			e = op_install(c, rest);
			break;
		case 'W':
			e = op_write(c, rest, &body);
			break;
		default:
			e = scl_err_set(SCL_EINVAL, "unknown core request");
		}
		if (reply(io, c, e, scl_buf_slice(&body)) != SCL_OK)
			break;
	}
	scl_buf_dispose(&body);
done:
	if (c) {
		scl_capsule_writer_free(c->writer);
		if (c->keys) {
			scl_capsule_keyring_wipe(c->keys);
			free(c->keys);
		}
		scl_buf_dispose(&c->cert);
		scl_buf_dispose(&c->out);
		scl_sign_key_wipe(&c->sign);
		scl_box_key_wipe(&c->box);
		free(c);
	}
	free(in);
}
