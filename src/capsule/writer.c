/*
 * writer.c - batches, the writer that seals and chains records, and the
 * opener that decrypts them.
 *
 * A writer owns its chain head; it is not thread-safe (one chain has one
 * writer thread, by design: see docs/FORMAT.md "Writers").  The record is
 * encoded straight into the batch buffer and sealed in place, with the
 * header bytes as the AEAD's associated data.
 */
#include <stdlib.h>
#include <string.h>

#include "capsule_int.h"

void
scl_capsule_batch_init(struct scl_capsule_batch *b)
{
	memset(b, 0, sizeof(*b));
	scl_buf_init(&b->data);
	scl_buf_init(&b->heartbeat);
}

void
scl_capsule_batch_dispose(struct scl_capsule_batch *b)
{
	free(b->ends);
	free(b->hashes);
	scl_buf_dispose(&b->data);
	scl_buf_dispose(&b->heartbeat);
	scl_capsule_batch_init(b);
}

void
scl_capsule_batch_clear(struct scl_capsule_batch *b)
{
	b->n = 0;
	b->first_seqno = 0;
	b->last_lamport = 0;
	scl_buf_clear(&b->data);
	scl_buf_clear(&b->heartbeat);
}

void
scl_capsule_batch_truncate(struct scl_capsule_batch *b, size_t n)
{
	struct scl_record r;
	enum scl_err e;

	if (n >= b->n)
		return;
	if (n == 0) {
		scl_capsule_batch_clear(b);
		return;
	}
	b->n = n;
	b->data.len = b->ends[n - 1];
	e = scl_capsule_record_decode(&r, scl_capsule_batch_record(b, n - 1));
	SCL_ASSERT(e == SCL_OK); /* every record decoded when it was added */
	b->last_lamport = r.lamport;
}

void
scl_capsule_batch_trim_front(struct scl_capsule_batch *b, size_t k)
{
	size_t cut;

	if (k == 0)
		return;
	SCL_ASSERT(k < b->n); /* callers trim what they hold, not all */
	cut = b->ends[k - 1];
	memmove(b->data.ptr, b->data.ptr + cut, b->data.len - cut);
	b->data.len -= cut;
	for (size_t i = k; i < b->n; i++) {
		b->ends[i - k] = b->ends[i] - cut;
		memcpy(b->hashes[i - k], b->hashes[i], SCL_HASH_BYTES);
	}
	b->n -= k;
	b->first_seqno += k;
}

struct scl_slice
scl_capsule_batch_record(const struct scl_capsule_batch *b, size_t i)
{
	size_t start = i == 0 ? 0 : b->ends[i - 1];
	SCL_ASSERT(i < b->n);
	return scl_slice_of(b->data.ptr + start, b->ends[i] - start);
}

static enum scl_err
batch_grow(struct scl_capsule_batch *b)
{
	size_t cap = b->cap ? 2 * b->cap : 64;
	size_t *ends;
	uint8_t(*hashes)[SCL_HASH_BYTES];

	if (b->n < b->cap)
		return SCL_OK;
	if ((ends = realloc(b->ends, cap * sizeof(*ends))) == NULL)
		return scl_err_set(SCL_ENOMEM, "cannot grow batch");
	b->ends = ends;
	if ((hashes = realloc(b->hashes, cap * sizeof(*hashes))) == NULL)
		return scl_err_set(SCL_ENOMEM, "cannot grow batch");
	b->hashes = hashes;
	b->cap = cap;
	return SCL_OK;
}

/* Registers the record that now ends the batch's data. */
static enum scl_err
batch_commit_record(struct scl_capsule_batch *b,
    const uint8_t hash[SCL_HASH_BYTES], uint64_t lamport)
{
	enum scl_err e;

	if ((e = batch_grow(b)) != SCL_OK)
		return e;
	b->ends[b->n] = b->data.len;
	memcpy(b->hashes[b->n], hash, SCL_HASH_BYTES);
	b->last_lamport = lamport;
	b->n++;
	return SCL_OK;
}

enum scl_err
scl_capsule_batch_add(struct scl_capsule_batch *b, struct scl_slice record,
    const uint8_t hash[SCL_HASH_BYTES])
{
	struct scl_record r;
	enum scl_err e;

	if ((e = scl_capsule_record_decode(&r, record)) != SCL_OK)
		return e;
	if (b->n == 0) {
		memcpy(b->capsule, r.capsule, SCL_NAME_BYTES);
		memcpy(b->writer, r.writer, SCL_WRITER_BYTES);
		b->first_seqno = r.seqno;
	} else if (memcmp(b->capsule, r.capsule, SCL_NAME_BYTES) != 0 ||
	    memcmp(b->writer, r.writer, SCL_WRITER_BYTES) != 0 ||
	    r.seqno != b->first_seqno + b->n) {
		return scl_err_set(SCL_EFORMAT,
		    "batch records must be one writer's consecutive records");
	}
	if ((e = scl_buf_append(&b->data, record.ptr, record.len)) != SCL_OK)
		return e;
	return batch_commit_record(b, hash, r.lamport);
}

/* Nonce salts are drawn from the OS in blocks: one getrandom() per 1024
 * records instead of one per record (a syscall cost ~2x the sealing of a
 * 100-byte record, measured in perf). */
#define SALT_BLOCK (1024 * SCL_RECORD_NONCE_SALT_BYTES)

struct scl_capsule_writer {
	uint8_t capsule[SCL_NAME_BYTES];
	enum scl_aead_suite suite;
	uint16_t record_version;	/* of the records it writes */
	struct scl_sign_key key;
	uint32_t epoch;
	/* Records v1, v2 seal with aead (the writer key), v3 with aead_v3
	 * (the key from key_salt, drawn at random when the writer starts:
	 * no two writers, nor two copies of one, share it).  NULL: plain
	 * records only. */
	struct scl_aead *aead, *aead_v3;
	uint8_t key_salt[SCL_RECORD_KEY_SALT_BYTES];
	uint8_t data_key[SCL_AEAD_KEY_BYTES];	/* for a new key salt */
	struct scl_capsule_head head;
	size_t salt_used;	/* bytes of salts consumed */
	uint8_t salts[SALT_BLOCK];
};

enum scl_err
scl_capsule_writer_new(struct scl_capsule_writer **out,
    const uint8_t capsule[SCL_NAME_BYTES], enum scl_aead_suite suite,
    const struct scl_sign_key *key, uint32_t epoch, const uint8_t *data_key,
    const struct scl_capsule_head *head)
{
	uint8_t subkey[SCL_AEAD_KEY_BYTES];
	struct scl_capsule_writer *w;
	enum scl_err e = SCL_OK;

	*out = NULL;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return scl_err_set(SCL_ENOMEM, "cannot allocate writer");
	memcpy(w->capsule, capsule, SCL_NAME_BYTES);
	w->salt_used = SALT_BLOCK;
	w->suite = suite;
	w->record_version = SCL_RECORD_VERSION;
	w->key = *key;
	w->epoch = epoch;
	w->head = *head;
	if (data_key != NULL) {
		uint8_t salt[SCL_RECORD_KEY_SALT_BYTES];
		memcpy(w->data_key, data_key, SCL_AEAD_KEY_BYTES);
		scl_capsule_writer_key(subkey, data_key, capsule,
		    key->public_key, epoch);
		e = scl_aead_new(&w->aead, suite, subkey);
		scl_wipe(subkey, sizeof(subkey));
		scl_random(salt, sizeof(salt));
		if (e == SCL_OK)
			e = scl_capsule_writer_set_key_salt(w, salt);
	}
	if (e != SCL_OK) {
		scl_capsule_writer_free(w);
		return e;
	}
	*out = w;
	return SCL_OK;
}

void
scl_capsule_writer_free(struct scl_capsule_writer *w)
{
	if (w == NULL)
		return;
	scl_aead_free(w->aead);
	scl_aead_free(w->aead_v3);
	scl_wipe(w, sizeof(*w));
	free(w);
}

enum scl_err
scl_capsule_writer_set_record_version(struct scl_capsule_writer *w,
    uint16_t version)
{
	if (version < SCL_RECORD_VERSION_MIN || version > SCL_RECORD_VERSION)
		return scl_err_set(SCL_EVERSION, "record version %u; this build "
		    "writes versions %u to %u", version, SCL_RECORD_VERSION_MIN,
		    SCL_RECORD_VERSION);
	w->record_version = version;
	return SCL_OK;
}

enum scl_err
scl_capsule_writer_set_key_salt(struct scl_capsule_writer *w,
    const uint8_t salt[SCL_RECORD_KEY_SALT_BYTES])
{
	uint8_t subkey[SCL_AEAD_KEY_BYTES];
	struct scl_aead *a;
	enum scl_err e;

	if (w->aead == NULL)
		return scl_err_set(SCL_EINVAL,
		    "writer has no data key for sealed records");
	scl_capsule_record_key(subkey, w->data_key, w->capsule,
	    w->key.public_key, w->epoch, salt);
	e = scl_aead_new(&a, w->suite, subkey);
	scl_wipe(subkey, sizeof(subkey));
	if (e != SCL_OK)
		return e;
	scl_aead_free(w->aead_v3);
	w->aead_v3 = a;
	memcpy(w->key_salt, salt, SCL_RECORD_KEY_SALT_BYTES);
	return SCL_OK;
}

const struct scl_capsule_head *
scl_capsule_writer_head(const struct scl_capsule_writer *w)
{
	return &w->head;
}

enum scl_err
scl_capsule_writer_copy_key(const struct scl_capsule_writer *w,
    struct scl_sign_key *out)
{
	*out = w->key;
	return SCL_OK;
}

const uint8_t *
scl_capsule_writer_id(const struct scl_capsule_writer *w)
{
	return w->key.public_key;
}

/* Bytes of a header of @version before its links. */
static size_t
fixed_bytes(uint16_t version)
{
	return version >= 3 ? SCL_RECORD_FIXED_BYTES_V3 : SCL_RECORD_FIXED_BYTES;
}

static void
encode_header(uint8_t *p, const struct scl_capsule_writer *w, uint8_t type,
    uint64_t seqno, uint64_t lamport, const uint8_t nonce[12],
    uint32_t body_len, unsigned n_links, struct scl_slice merge)
{
	bool sealed = type == SCL_RECORD_DATA;
	uint8_t *q;

	scl_le16_store(p, w->record_version);
	p[2] = type;
	p[3] = sealed ? SCL_RECORD_FLAG_SEALED : 0;
	memcpy(p + 4, w->capsule, SCL_NAME_BYTES);
	memcpy(p + 36, w->key.public_key, SCL_WRITER_BYTES);
	scl_le64_store(p + 68, seqno);
	scl_le64_store(p + 76, lamport);
	scl_le32_store(p + 84, sealed ? w->epoch : 0);
	if (w->record_version >= 3) {
		if (sealed)
			memcpy(p + 88, w->key_salt, SCL_RECORD_KEY_SALT_BYTES);
		else
			memset(p + 88, 0, SCL_RECORD_KEY_SALT_BYTES);
		q = p + 88 + SCL_RECORD_KEY_SALT_BYTES;
	} else {
		memcpy(p + 88, nonce, SCL_AEAD_NONCE_BYTES);
		q = p + 88 + SCL_AEAD_NONCE_BYTES;
	}
	scl_le32_store(q, body_len);
	q[4] = (uint8_t)n_links;
	q[5] = (uint8_t)(merge.len / SCL_HASH_BYTES);
	scl_le16_store(q + 6, 0);
	q += 8;
	SCL_ASSERT(q == p + fixed_bytes(w->record_version));
	for (unsigned i = 0; i < n_links; i++, q += SCL_HASH_BYTES)
		memcpy(q, w->head.level[i], SCL_HASH_BYTES);
	if (merge.len)
		memcpy(q, merge.ptr, merge.len);
}

static enum scl_err
check_append(const struct scl_capsule_writer *w,
    const struct scl_capsule_batch *b, enum scl_record_type type,
    struct scl_slice payload, uint64_t lamport, struct scl_slice merge)
{
	if (w->head.seqno == UINT64_MAX)
		return scl_err_set(SCL_ELIMIT, "writer chain is full");
	if (payload.len > SCL_PAYLOAD_MAX)
		return scl_err_set(SCL_ELIMIT,
		    "payload of %zu bytes exceeds the %u-byte record limit",
		    payload.len, SCL_PAYLOAD_MAX);
	if (type < SCL_RECORD_DATA || type > SCL_RECORD_REVOKE)
		return scl_err_set(SCL_EINVAL, "unknown record type %d", type);
	if (type == SCL_RECORD_DATA && w->aead == NULL)
		return scl_err_set(SCL_EINVAL,
		    "writer has no data key for sealed records");
	if (type == SCL_RECORD_CERT && payload.len != SCL_CERT_BYTES)
		return scl_err_set(SCL_EINVAL, "certificate of %zu bytes",
		    payload.len);
	if (lamport <= w->head.lamport)
		return scl_err_set(SCL_EINVAL,
		    "Lamport time %llu does not advance past %llu",
		    (unsigned long long)lamport,
		    (unsigned long long)w->head.lamport);
	if (merge.len % SCL_HASH_BYTES ||
	    merge.len / SCL_HASH_BYTES > SCL_MERGE_MAX)
		return scl_err_set(SCL_EINVAL, "bad merge list of %zu bytes",
		    merge.len);
	if (b->n != 0 && (memcmp(b->writer, w->key.public_key,
			      SCL_WRITER_BYTES) != 0 ||
			     b->first_seqno + b->n != w->head.seqno + 1))
		return scl_err_set(SCL_EINVAL,
		    "batch does not end at this writer's head");
	return SCL_OK;
}

enum scl_err
scl_capsule_writer_append_ex(struct scl_capsule_writer *w,
    struct scl_capsule_batch *b, enum scl_record_type type,
    struct scl_slice payload, uint64_t lamport,
    const uint8_t salt[SCL_RECORD_NONCE_SALT_BYTES], struct scl_slice merge)
{
	uint8_t nonce[SCL_AEAD_NONCE_BYTES] = { 0 };
	uint8_t hash[SCL_HASH_BYTES];
	uint64_t seqno = w->head.seqno + 1;
	bool sealed = type == SCL_RECORD_DATA;
	size_t header_len, body_len, start = b->data.len;
	unsigned n_links;
	uint8_t *p;
	enum scl_err e;

	if ((e = check_append(w, b, type, payload, lamport, merge)) != SCL_OK)
		return e;
	n_links = scl_capsule_link_count(seqno);
	header_len = fixed_bytes(w->record_version) +
	    (n_links + merge.len / SCL_HASH_BYTES) * SCL_HASH_BYTES;
	body_len = payload.len + (sealed ? SCL_AEAD_TAG_BYTES : 0);
	if ((e = scl_buf_reserve(&b->data, header_len + body_len)) != SCL_OK)
		return e;
	if (sealed) {
		/* v3: the seqno alone; its key is this writer start's own */
		scl_le64_store(nonce, seqno);
		if (w->record_version < 3)
			memcpy(nonce + 8, salt, SCL_RECORD_NONCE_SALT_BYTES);
	}
	p = b->data.ptr + start;
	encode_header(p, w, (uint8_t)type, seqno, lamport, nonce,
	    (uint32_t)body_len, n_links, merge);
	if (sealed)
		e = scl_aead_seal(w->record_version >= 3 ? w->aead_v3 : w->aead,
		    p + header_len, nonce, p, header_len, payload.ptr,
		    payload.len);
	else if (payload.len)
		memcpy(p + header_len, payload.ptr, payload.len);
	if (e != SCL_OK)
		return e;
	{
		uint8_t body_hash[SCL_HASH_BYTES];
		if ((e = scl_capsule__body_hash(body_hash, w->record_version,
			 scl_slice_of(p + header_len, body_len))) != SCL_OK ||
		    (e = scl_capsule_header_hash(hash,
			 scl_slice_of(p, header_len), body_hash)) != SCL_OK)
			return e;
	}
	b->data.len = start + header_len + body_len;
	if (b->n == 0) {
		memcpy(b->capsule, w->capsule, SCL_NAME_BYTES);
		memcpy(b->writer, w->key.public_key, SCL_WRITER_BYTES);
		b->first_seqno = seqno;
	}
	if ((e = batch_commit_record(b, hash, lamport)) != SCL_OK) {
		b->data.len = start;
		return e;
	}
	scl_capsule__head_push(&w->head, seqno, lamport, hash);
	return SCL_OK;
}

enum scl_err
scl_capsule_writer_append(struct scl_capsule_writer *w,
    struct scl_capsule_batch *b, enum scl_record_type type,
    struct scl_slice payload)
{
	const uint8_t *salt;

	if (w->salt_used == SALT_BLOCK) {
		scl_random(w->salts, SALT_BLOCK);
		w->salt_used = 0;
	}
	salt = w->salts + w->salt_used;
	w->salt_used += SCL_RECORD_NONCE_SALT_BYTES;
	return scl_capsule_writer_append_ex(w, b, type, payload,
	    w->head.lamport + 1, salt, scl_slice_of(NULL, 0));
}

enum scl_err
scl_capsule_batch_sign(struct scl_capsule_batch *b,
    const struct scl_sign_key *key, uint64_t time_us)
{
	struct scl_heartbeat hb;

	if (b->n == 0)
		return scl_err_set(SCL_EINVAL, "empty batch has nothing to sign");
	memset(&hb, 0, sizeof(hb));
	memcpy(hb.capsule, b->capsule, SCL_NAME_BYTES);
	memcpy(hb.writer, b->writer, SCL_WRITER_BYTES);
	hb.seqno = b->first_seqno + b->n - 1;
	memcpy(hb.hash, b->hashes[b->n - 1], SCL_HASH_BYTES);
	hb.time_us = time_us;
	scl_buf_clear(&b->heartbeat);
	return scl_capsule_heartbeat_sign(&b->heartbeat, &hb, key);
}

enum scl_err
scl_capsule_writer_seal_batch(struct scl_capsule_writer *w,
    struct scl_capsule_batch *b, uint64_t time_us)
{
	if (b->n == 0)
		return scl_err_set(SCL_EINVAL, "empty batch has nothing to sign");
	if (b->first_seqno + b->n - 1 != w->head.seqno)
		return scl_err_set(SCL_EINVAL,
		    "batch does not end at this writer's head");
	return scl_capsule_batch_sign(b, &w->key, time_us);
}

struct scl_capsule_opener {
	enum scl_aead_suite suite;
	const struct scl_capsule_keyring *keys;	/* borrowed */
	/* Whose key aead holds: a writer's in an epoch, and for records v3
	 * the key salt (all zero: the key of records v1 and v2). */
	uint8_t writer[SCL_WRITER_BYTES];
	uint32_t epoch;
	uint8_t key_salt[SCL_RECORD_KEY_SALT_BYTES];
	struct scl_aead *aead;
};

void
scl_capsule_record_nonce(uint8_t out[SCL_AEAD_NONCE_BYTES],
    const struct scl_record *r)
{
	if (r->nonce) {
		memcpy(out, r->nonce, SCL_AEAD_NONCE_BYTES);
		return;
	}
	memset(out, 0, SCL_AEAD_NONCE_BYTES);
	scl_le64_store(out, r->seqno);
}

enum scl_err
scl_capsule_opener_new(struct scl_capsule_opener **out,
    enum scl_aead_suite suite, const struct scl_capsule_keyring *keys)
{
	struct scl_capsule_opener *o;

	*out = NULL;
	if ((o = calloc(1, sizeof(*o))) == NULL)
		return scl_err_set(SCL_ENOMEM, "cannot allocate opener");
	o->suite = suite;
	o->keys = keys;
	*out = o;
	return SCL_OK;
}

void
scl_capsule_opener_free(struct scl_capsule_opener *o)
{
	if (o == NULL)
		return;
	scl_aead_free(o->aead);
	free(o);
}

static enum scl_err
opener_select(struct scl_capsule_opener *o, const struct scl_record *r)
{
	static const uint8_t none[SCL_RECORD_KEY_SALT_BYTES];
	const uint8_t *salt = r->key_salt ? r->key_salt : none;
	uint8_t subkey[SCL_AEAD_KEY_BYTES];
	const uint8_t *key;
	enum scl_err e;

	if (o->aead && o->epoch == r->epoch &&
	    memcmp(o->writer, r->writer, SCL_WRITER_BYTES) == 0 &&
	    memcmp(o->key_salt, salt, SCL_RECORD_KEY_SALT_BYTES) == 0)
		return SCL_OK;
	if ((key = scl_capsule_keyring_key(o->keys, r->epoch)) == NULL)
		return scl_err_set(SCL_ENOTFOUND,
		    "no data key for key epoch %u", r->epoch);
	scl_aead_free(o->aead);
	o->aead = NULL;
	if (r->key_salt)
		scl_capsule_record_key(subkey, key, r->capsule, r->writer,
		    r->epoch, r->key_salt);
	else
		scl_capsule_writer_key(subkey, key, r->capsule, r->writer,
		    r->epoch);
	e = scl_aead_new(&o->aead, o->suite, subkey);
	scl_wipe(subkey, sizeof(subkey));
	if (e != SCL_OK)
		return e;
	memcpy(o->writer, r->writer, SCL_WRITER_BYTES);
	memcpy(o->key_salt, salt, SCL_RECORD_KEY_SALT_BYTES);
	o->epoch = r->epoch;
	return SCL_OK;
}

enum scl_err
scl_capsule_opener_open(struct scl_capsule_opener *o, struct scl_buf *out,
    const struct scl_record *r)
{
	uint8_t nonce[SCL_AEAD_NONCE_BYTES];
	size_t len;
	enum scl_err e;

	if (!(r->flags & SCL_RECORD_FLAG_SEALED))
		return scl_buf_set(out, r->body);
	if ((e = opener_select(o, r)) != SCL_OK)
		return e;
	len = r->body.len - SCL_AEAD_TAG_BYTES;
	scl_buf_clear(out);
	/* At least one byte, so out->ptr is never NULL for the cipher. */
	if ((e = scl_buf_reserve(out, len ? len : 1)) != SCL_OK)
		return e;
	scl_capsule_record_nonce(nonce, r);
	if ((e = scl_aead_open(o->aead, out->ptr, nonce, r->header.ptr,
		 r->header.len, r->body.ptr, r->body.len)) != SCL_OK)
		return e;
	out->len = len;
	return SCL_OK;
}

enum scl_err
scl_capsule_record_open(struct scl_buf *out, const struct scl_record *r,
    enum scl_aead_suite suite, const uint8_t data_key[SCL_AEAD_KEY_BYTES])
{
	struct scl_capsule_keyring *keys;
	struct scl_capsule_opener *o = NULL;
	enum scl_err e;

	if ((keys = calloc(1, sizeof(*keys))) == NULL)
		return scl_err_set(SCL_ENOMEM, "cannot allocate keyring");
	keys->n_epochs = 1;
	keys->epochs[0].epoch = r->epoch;
	memcpy(keys->epochs[0].key, data_key, SCL_AEAD_KEY_BYTES);
	if ((e = scl_capsule_opener_new(&o, suite, keys)) == SCL_OK)
		e = scl_capsule_opener_open(o, out, r);
	scl_capsule_opener_free(o);
	scl_capsule_keyring_wipe(keys);
	free(keys);
	return e;
}
