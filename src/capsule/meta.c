/*
 * meta.c - capsule metadata and names, writer certificates, keyrings, and
 * the domain-separated signing every signed structure shares.
 *
 * Metadata v1 (docs/FORMAT.md "Metadata"):
 *   0  4  magic "SCLM"          4  2  version (1)
 *   6  1  aead suite            7  1  replicas N
 *   8  1  write quorum W        9  1  server count
 *   10 2  reserved (0)          12 32 owner Ed25519 public key
 *   44 8  created, us           52 .. label (u16 length + bytes)
 *   ..    servers (each u16 length + bytes)
 *   ..64  signature over "SCL metadata v1\0" || all bytes before it
 */
#include <string.h>

#include "capsule_int.h"

#define META_MAGIC "SCLM"
#define KEYRING_VERSION 1

static enum scl_err
sign_message(struct scl_buf *tmp, const char *ctx, struct scl_slice msg)
{
	size_t n = strlen(ctx) + 1;
	scl_buf_clear(tmp);
	if (scl_buf_reserve(tmp, n + msg.len) != SCL_OK)
		return SCL_ENOMEM;
	memcpy(tmp->ptr, ctx, n);
	memcpy(tmp->ptr + n, msg.ptr, msg.len);
	tmp->len = n + msg.len;
	return SCL_OK;
}

/* Signed messages are small (< 64 KiB: metadata, certificates,
 * heartbeats), so a stack buffer avoids allocating on the hot path of
 * heartbeat signing and verification. */
#define SIGNED_STACK_MAX 512

void
scl_capsule__sign(uint8_t sig[SCL_SIGNATURE_BYTES],
    const struct scl_sign_key *key, const char *ctx, struct scl_slice msg)
{
	size_t n = strlen(ctx) + 1;
	struct scl_buf tmp;
	enum scl_err e;

	if (n + msg.len <= SIGNED_STACK_MAX) {
		uint8_t stack[SIGNED_STACK_MAX];
		memcpy(stack, ctx, n);
		memcpy(stack + n, msg.ptr, msg.len);
		scl_sign(sig, key, stack, n + msg.len);
		return;
	}
	scl_buf_init(&tmp);
	e = sign_message(&tmp, ctx, msg);
	/* Only an allocation can fail here, and a signer that returns
	 * nothing has no way to say so. */
	SCL_ASSERT(e == SCL_OK);
	scl_sign(sig, key, tmp.ptr, tmp.len);
	scl_buf_dispose(&tmp);
}

enum scl_err
scl_capsule__verify(const uint8_t sig[SCL_SIGNATURE_BYTES],
    const uint8_t pk[SCL_SIGN_PUBLIC_BYTES], const char *ctx,
    struct scl_slice msg)
{
	size_t n = strlen(ctx) + 1;
	struct scl_buf tmp;
	enum scl_err r;

	if (n + msg.len <= SIGNED_STACK_MAX) {
		uint8_t stack[SIGNED_STACK_MAX];
		memcpy(stack, ctx, n);
		memcpy(stack + n, msg.ptr, msg.len);
		return scl_sign_verify(sig, pk, stack, n + msg.len);
	}
	scl_buf_init(&tmp);
	if ((r = sign_message(&tmp, ctx, msg)) != SCL_OK)
		return scl_err_set(r, "cannot allocate signed message");
	r = scl_sign_verify(sig, pk, tmp.ptr, tmp.len);
	scl_buf_dispose(&tmp);
	return r;
}

static enum scl_err
meta_validate(const struct scl_capsule_meta *m)
{
	if (!scl_aead_suite_valid(m->aead))
		return scl_err_set(SCL_EINVAL, "unknown AEAD suite %u",
		    m->aead);
	if (m->replicas < 1 || m->write_quorum < 1 ||
	    m->write_quorum > m->replicas)
		return scl_err_set(SCL_EINVAL,
		    "need 1 <= W <= N (got N=%u, W=%u)", m->replicas,
		    m->write_quorum);
	if (m->n_servers > SCL_SERVERS_MAX)
		return scl_err_set(SCL_EINVAL, "%u servers; at most %d",
		    m->n_servers, SCL_SERVERS_MAX);
	if (m->n_servers != 0 && m->n_servers < m->replicas)
		return scl_err_set(SCL_EINVAL,
		    "%u servers listed for %u replicas", m->n_servers,
		    m->replicas);
	return SCL_OK;
}

enum scl_err
scl_capsule_meta_encode(struct scl_buf *out, const struct scl_capsule_meta *m,
    const struct scl_sign_key *owner)
{
	uint8_t sig[SCL_SIGNATURE_BYTES];
	size_t start = out->len;
	struct scl_enc e;
	enum scl_err r;

	if ((r = meta_validate(m)) != SCL_OK)
		return r;
	if (memcmp(owner->public_key, m->owner, SCL_SIGN_PUBLIC_BYTES) != 0)
		return scl_err_set(SCL_EINVAL,
		    "metadata names a different owner than the signing key");
	scl_enc_init(&e, out);
	scl_enc_bytes(&e, META_MAGIC, 4);
	scl_enc_u16(&e, SCL_FORMAT_VERSION);
	scl_enc_u8(&e, m->aead);
	scl_enc_u8(&e, m->replicas);
	scl_enc_u8(&e, m->write_quorum);
	scl_enc_u8(&e, m->n_servers);
	scl_enc_u16(&e, 0);
	scl_enc_bytes(&e, m->owner, SCL_SIGN_PUBLIC_BYTES);
	scl_enc_u64(&e, m->created_us);
	if (strlen(m->label) > SCL_LABEL_MAX)
		return scl_err_set(SCL_ELIMIT, "label longer than %d bytes",
		    SCL_LABEL_MAX);
	scl_enc_blob16(&e, m->label, strlen(m->label));
	for (unsigned i = 0; i < m->n_servers; i++) {
		size_t n = strlen(m->servers[i]);
		if (n == 0 || n > SCL_SERVER_ADDR_MAX)
			return scl_err_set(SCL_EINVAL,
			    "server address %u is empty or too long", i);
		scl_enc_blob16(&e, m->servers[i], n);
	}
	if (e.err != SCL_OK)
		return e.err;
	scl_capsule__sign(sig, owner, SCL_SIGCTX_META,
	    scl_slice_of(out->ptr + start, out->len - start));
	return scl_buf_append(out, sig, sizeof(sig));
}

static void
copy_text(char *dst, struct scl_slice s)
{
	memcpy(dst, s.ptr, s.len);
	dst[s.len] = '\0';
}

static bool
text_is_clean(struct scl_slice s)
{
	for (size_t i = 0; i < s.len; i++)
		if (s.ptr[i] < 0x20 || s.ptr[i] == 0x7f)
			return false;
	return true;
}

enum scl_err
scl_capsule_meta_decode(struct scl_capsule_meta *out, struct scl_slice in)
{
	struct scl_dec d;
	const uint8_t *sig;
	struct scl_slice label;
	enum scl_err r;

	memset(out, 0, sizeof(*out));
	scl_dec_init(&d, in, "metadata");
	scl_dec_magic(&d, META_MAGIC);
	scl_dec_version(&d, SCL_FORMAT_VERSION);
	out->aead = scl_dec_u8(&d, "aead");
	out->replicas = scl_dec_u8(&d, "replicas");
	out->write_quorum = scl_dec_u8(&d, "write quorum");
	out->n_servers = scl_dec_u8(&d, "server count");
	scl_dec_zero16(&d, "reserved field");
	scl_dec_copy(&d, out->owner, SCL_SIGN_PUBLIC_BYTES, "owner");
	out->created_us = scl_dec_u64(&d, "created");
	label = scl_dec_blob16(&d, SCL_LABEL_MAX, "label");
	if (scl_dec_ok(&d) && out->n_servers > SCL_SERVERS_MAX)
		return scl_dec_fail(&d, SCL_EFORMAT, "%u servers; at most %d",
		    out->n_servers, SCL_SERVERS_MAX);
	for (unsigned i = 0; i < out->n_servers && scl_dec_ok(&d); i++) {
		struct scl_slice s = scl_dec_blob16(&d, SCL_SERVER_ADDR_MAX,
		    "server address");
		if (scl_dec_ok(&d) && (s.len == 0 || !text_is_clean(s)))
			return scl_dec_fail(&d, SCL_EFORMAT,
			    "server address %u is empty or not text", i);
		if (s.ptr)
			copy_text(out->servers[i], s);
	}
	sig = scl_dec_bytes(&d, SCL_SIGNATURE_BYTES, "signature");
	if ((r = scl_dec_finish(&d)) != SCL_OK)
		return r;
	if (!text_is_clean(label))
		return scl_err_set(SCL_EFORMAT,
		    "metadata: label contains control characters");
	copy_text(out->label, label);
	if ((r = meta_validate(out)) != SCL_OK)
		return scl_err_wrap(SCL_EFORMAT, "metadata: ");
	if (scl_capsule__verify(sig, out->owner, SCL_SIGCTX_META,
		scl_slice_of(in.ptr, in.len - SCL_SIGNATURE_BYTES)) != SCL_OK)
		return scl_err_set(SCL_EVERIFY,
		    "metadata: owner signature does not verify");
	return SCL_OK;
}

void
scl_capsule_name(uint8_t name[SCL_NAME_BYTES], struct scl_slice meta)
{
	scl_hash(name, meta.ptr, meta.len);
}

enum scl_err
scl_capsule_meta_check(struct scl_capsule_meta *out,
    const uint8_t name[SCL_NAME_BYTES], struct scl_slice meta)
{
	uint8_t got[SCL_NAME_BYTES];
	char want_hex[2 * SCL_NAME_BYTES + 1], got_hex[2 * SCL_NAME_BYTES + 1];
	enum scl_err r;

	scl_capsule_name(got, meta);
	if (memcmp(got, name, SCL_NAME_BYTES) != 0)
		return scl_err_set(SCL_EVERIFY,
		    "metadata hashes to %s, not to the capsule name %s",
		    scl_hex_encode(got_hex, got, SCL_NAME_BYTES),
		    scl_hex_encode(want_hex, name, SCL_NAME_BYTES));
	if ((r = scl_capsule_meta_decode(out, meta)) != SCL_OK)
		return r;
	return SCL_OK;
}

/*
 * Certificate v1 (docs/FORMAT.md "Writer certificates"):
 *   0 2 version   2 2 flags (0)   4 32 capsule   36 32 writer
 *   68 32 box key   100 32 measurement   132 8 issued, us
 *   140 64 owner signature over "SCL writer certificate v1\0" || [0,140)
 */
#define CERT_SIGNED_BYTES 140
_Static_assert(CERT_SIGNED_BYTES + SCL_SIGNATURE_BYTES == SCL_CERT_BYTES,
    "certificate size");

static void
cert_encode_signed_part(struct scl_enc *e, const struct scl_capsule_cert *c)
{
	scl_enc_u16(e, SCL_FORMAT_VERSION);
	scl_enc_u16(e, 0);
	scl_enc_bytes(e, c->capsule, SCL_NAME_BYTES);
	scl_enc_bytes(e, c->writer, SCL_WRITER_BYTES);
	scl_enc_bytes(e, c->box_key, SCL_BOX_PUBLIC_BYTES);
	scl_enc_bytes(e, c->measurement, 32);
	scl_enc_u64(e, c->issued_us);
}

enum scl_err
scl_capsule_cert_encode(struct scl_buf *out, const struct scl_capsule_cert *c,
    const struct scl_sign_key *owner)
{
	uint8_t sig[SCL_SIGNATURE_BYTES];
	size_t start = out->len;
	struct scl_enc e;

	scl_enc_init(&e, out);
	cert_encode_signed_part(&e, c);
	if (e.err != SCL_OK)
		return e.err;
	scl_capsule__sign(sig, owner, SCL_SIGCTX_CERT,
	    scl_slice_of(out->ptr + start, CERT_SIGNED_BYTES));
	return scl_buf_append(out, sig, sizeof(sig));
}

enum scl_err
scl_capsule_cert_decode(struct scl_capsule_cert *out, struct scl_slice in)
{
	struct scl_dec d;

	memset(out, 0, sizeof(*out));
	scl_dec_init(&d, in, "writer certificate");
	scl_dec_version(&d, SCL_FORMAT_VERSION);
	scl_dec_zero16(&d, "flags");
	scl_dec_copy(&d, out->capsule, SCL_NAME_BYTES, "capsule");
	scl_dec_copy(&d, out->writer, SCL_WRITER_BYTES, "writer");
	scl_dec_copy(&d, out->box_key, SCL_BOX_PUBLIC_BYTES, "box key");
	scl_dec_copy(&d, out->measurement, 32, "measurement");
	out->issued_us = scl_dec_u64(&d, "issued");
	scl_dec_copy(&d, out->sig, SCL_SIGNATURE_BYTES, "signature");
	return scl_dec_finish(&d);
}

enum scl_err
scl_capsule_cert_verify(const struct scl_capsule_cert *c,
    const uint8_t capsule[SCL_NAME_BYTES],
    const uint8_t owner[SCL_SIGN_PUBLIC_BYTES],
    const uint8_t writer[SCL_WRITER_BYTES])
{
	uint8_t stack[CERT_SIGNED_BYTES + 64];
	struct scl_buf body = { stack, 0, sizeof(stack) };
	struct scl_enc e;

	if (memcmp(c->capsule, capsule, SCL_NAME_BYTES) != 0)
		return scl_err_set(SCL_EVERIFY,
		    "writer certificate is for another capsule");
	if (memcmp(c->writer, writer, SCL_WRITER_BYTES) != 0)
		return scl_err_set(SCL_EVERIFY,
		    "writer certificate admits another writer");
	/* The layout is fixed-size and the decoder rejected any other length
	 * or flag, so re-encoding yields exactly the bytes that were signed
	 * while keeping one definition of the layout.  The buffer lives on
	 * the stack and is large enough never to grow. */
	scl_enc_init(&e, &body);
	cert_encode_signed_part(&e, c);
	SCL_ASSERT(e.err == SCL_OK && body.ptr == stack);
	if (scl_capsule__verify(c->sig, owner, SCL_SIGCTX_CERT,
		scl_buf_slice(&body)) != SCL_OK)
		return scl_err_set(SCL_EVERIFY,
		    "writer certificate is not signed by the capsule owner");
	return SCL_OK;
}

/*
 * Keyring v1 (the body of a KEYRING key file):
 *   0 2 version   2 2 flags (bit 0: owner seed present)
 *   4 32 capsule   36 32 owner seed (zeros if absent)   68 32 writer seed
 *   100 4 epoch count n, then n x (4 epoch, 32 key), epochs ascending
 */
enum scl_err
scl_capsule_keyring_encode(struct scl_buf *out,
    const struct scl_capsule_keyring *k)
{
	static const uint8_t zero[SCL_SIGN_SEED_BYTES];
	struct scl_enc e;

	if (k->n_epochs > SCL_EPOCHS_MAX)
		return scl_err_set(SCL_ELIMIT, "%u key epochs; at most %d",
		    k->n_epochs, SCL_EPOCHS_MAX);
	scl_enc_init(&e, out);
	scl_enc_u16(&e, KEYRING_VERSION);
	scl_enc_u16(&e, k->has_owner ? 1 : 0);
	scl_enc_bytes(&e, k->capsule, SCL_NAME_BYTES);
	scl_enc_bytes(&e, k->has_owner ? k->owner_seed : zero,
	    SCL_SIGN_SEED_BYTES);
	scl_enc_bytes(&e, k->writer_seed, SCL_SIGN_SEED_BYTES);
	scl_enc_u32(&e, k->n_epochs);
	for (uint32_t i = 0; i < k->n_epochs; i++) {
		scl_enc_u32(&e, k->epochs[i].epoch);
		scl_enc_bytes(&e, k->epochs[i].key, SCL_AEAD_KEY_BYTES);
	}
	return e.err;
}

enum scl_err
scl_capsule_keyring_decode(struct scl_capsule_keyring *out,
    struct scl_slice in)
{
	struct scl_dec d;
	uint16_t flags;
	enum scl_err r;

	memset(out, 0, sizeof(*out));
	scl_dec_init(&d, in, "keyring");
	scl_dec_version(&d, KEYRING_VERSION);
	flags = scl_dec_u16(&d, "flags");
	if (scl_dec_ok(&d) && (flags & ~1u) != 0)
		return scl_dec_fail(&d, SCL_EFORMAT, "unknown flags 0x%x",
		    flags);
	out->has_owner = flags & 1;
	scl_dec_copy(&d, out->capsule, SCL_NAME_BYTES, "capsule");
	scl_dec_copy(&d, out->owner_seed, SCL_SIGN_SEED_BYTES, "owner seed");
	scl_dec_copy(&d, out->writer_seed, SCL_SIGN_SEED_BYTES,
	    "writer seed");
	out->n_epochs = scl_dec_u32(&d, "epoch count");
	if (scl_dec_ok(&d) && out->n_epochs > SCL_EPOCHS_MAX)
		return scl_dec_fail(&d, SCL_ELIMIT, "%u epochs; at most %d",
		    out->n_epochs, SCL_EPOCHS_MAX);
	for (uint32_t i = 0; i < out->n_epochs && scl_dec_ok(&d); i++) {
		out->epochs[i].epoch = scl_dec_u32(&d, "epoch");
		scl_dec_copy(&d, out->epochs[i].key, SCL_AEAD_KEY_BYTES,
		    "epoch key");
		if (scl_dec_ok(&d) && i > 0 &&
		    out->epochs[i].epoch <= out->epochs[i - 1].epoch)
			scl_dec_fail(&d, SCL_EFORMAT,
			    "epochs not ascending at entry %u", i);
	}
	if ((r = scl_dec_finish(&d)) != SCL_OK)
		scl_capsule_keyring_wipe(out);
	return r;
}

void
scl_capsule_keyring_wipe(struct scl_capsule_keyring *k)
{
	scl_wipe(k, sizeof(*k));
}

const uint8_t *
scl_capsule_keyring_key(const struct scl_capsule_keyring *k, uint32_t epoch)
{
	for (uint32_t i = 0; i < k->n_epochs; i++)
		if (k->epochs[i].epoch == epoch)
			return k->epochs[i].key;
	return NULL;
}

void
scl_capsule_writer_key(uint8_t out[SCL_AEAD_KEY_BYTES],
    const uint8_t data_key[SCL_AEAD_KEY_BYTES],
    const uint8_t capsule[SCL_NAME_BYTES],
    const uint8_t writer[SCL_WRITER_BYTES], uint32_t epoch)
{
	uint8_t material[SCL_NAME_BYTES + SCL_WRITER_BYTES + 4];

	memcpy(material, capsule, SCL_NAME_BYTES);
	memcpy(material + SCL_NAME_BYTES, writer, SCL_WRITER_BYTES);
	scl_le32_store(material + SCL_NAME_BYTES + SCL_WRITER_BYTES, epoch);
	scl_kdf(out, data_key, "scl writer key v1", material, sizeof(material));
}

void
scl_capsule_record_key(uint8_t out[SCL_AEAD_KEY_BYTES],
    const uint8_t data_key[SCL_AEAD_KEY_BYTES],
    const uint8_t capsule[SCL_NAME_BYTES],
    const uint8_t writer[SCL_WRITER_BYTES], uint32_t epoch,
    const uint8_t salt[SCL_RECORD_KEY_SALT_BYTES])
{
	uint8_t material[SCL_NAME_BYTES + SCL_WRITER_BYTES + 4 +
	    SCL_RECORD_KEY_SALT_BYTES];
	uint8_t *p = material;

	memcpy(p, capsule, SCL_NAME_BYTES);
	p += SCL_NAME_BYTES;
	memcpy(p, writer, SCL_WRITER_BYTES);
	p += SCL_WRITER_BYTES;
	scl_le32_store(p, epoch);
	memcpy(p + 4, salt, SCL_RECORD_KEY_SALT_BYTES);
	scl_kdf(out, data_key, "scl record key v3", material, sizeof(material));
}

enum scl_err
scl_revocation_encode(struct scl_buf *out, const struct scl_revocation *r)
{
	struct scl_enc e;

	scl_enc_init(&e, out);
	scl_enc_u16(&e, 1);
	scl_enc_u16(&e, 0);
	scl_enc_bytes(&e, r->writer, SCL_WRITER_BYTES);
	scl_enc_u64(&e, r->max_seqno);
	return e.err;
}

enum scl_err
scl_revocation_decode(struct scl_revocation *out, struct scl_slice in)
{
	struct scl_dec d;

	memset(out, 0, sizeof(*out));
	scl_dec_init(&d, in, "revocation");
	scl_dec_version(&d, 1);
	scl_dec_zero16(&d, "reserved field");
	scl_dec_copy(&d, out->writer, SCL_WRITER_BYTES, "writer");
	out->max_seqno = scl_dec_u64(&d, "max seqno");
	return scl_dec_finish(&d);
}

unsigned
scl_capsule_read_quorum(const struct scl_capsule_meta *m, size_t n_servers)
{
	unsigned r;

	/* Every decoded metadata passed meta_validate. */
	SCL_ASSERT(m->write_quorum >= 1 && m->write_quorum <= m->replicas);
	r = (unsigned)(m->replicas - m->write_quorum + 1);
	return n_servers && r > n_servers ? (unsigned)n_servers : r;
}
