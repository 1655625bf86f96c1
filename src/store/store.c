/*
 * store.c - the LMDB environment, its tables, appends and reads.
 *
 * Keys put big-endian seqnos after fixed-size ids, so LMDB's byte order is
 * (capsule, writer, seqno) order and range scans are cursor walks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "scl/codec.h"
#include "store_int.h"

#define DEFAULT_MAP_SIZE ((size_t)256 << 30)
#define REC_KEY_BYTES (SCL_NAME_BYTES + SCL_WRITER_BYTES + 8)
#define HEAD_KEY_BYTES (SCL_NAME_BYTES + SCL_WRITER_BYTES)
#define HEAD_VALUE_BYTES (8 + 8 + SCL_HASH_BYTES)

enum scl_err
scl_store__lmdb_err(int rc, const char *what)
{
	enum scl_err e = SCL_EIO;

	if (rc == MDB_NOTFOUND)
		e = SCL_ENOTFOUND;
	else if (rc == MDB_MAP_FULL)
		return scl_err_set(SCL_EFULL,
		    "%s: the store is full (raise its map size)", what);
	else if (rc == ENOMEM)
		e = SCL_ENOMEM;
	return scl_err_set(e, "%s: %s", what, mdb_strerror(rc));
}

static void
rec_key(uint8_t out[REC_KEY_BYTES], const uint8_t *name, const uint8_t *writer,
    uint64_t seqno)
{
	memcpy(out, name, SCL_NAME_BYTES);
	memcpy(out + SCL_NAME_BYTES, writer, SCL_WRITER_BYTES);
	scl_be64_store(out + SCL_NAME_BYTES + SCL_WRITER_BYTES, seqno);
}

static MDB_val
val_of(const void *p, size_t n)
{
	MDB_val v = { n, (void *)p };
	return v;
}

static enum scl_err
open_tables(struct scl_store *s)
{
	static const struct {
		const char *name;
		size_t off;
	} tables[] = {
		{ "meta", offsetof(struct scl_store, meta) },
		{ "records", offsetof(struct scl_store, records) },
		{ "heartbeats", offsetof(struct scl_store, heartbeats) },
		{ "heads", offsetof(struct scl_store, heads) },
		{ "hashes", offsetof(struct scl_store, hashes) },
		{ "evidence", offsetof(struct scl_store, evidence) },
		{ "info", offsetof(struct scl_store, info) },
		{ "revoked", offsetof(struct scl_store, revoked) },
	};
	uint8_t version[4];
	MDB_txn *txn;
	MDB_val k = val_of("version", 7), v;
	int rc;

	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
		return scl_store__lmdb_err(rc, "opening store tables");
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		MDB_dbi *dbi = (MDB_dbi *)((char *)s + tables[i].off);
		if ((rc = mdb_dbi_open(txn, tables[i].name, MDB_CREATE, dbi)) !=
		    0) {
			mdb_txn_abort(txn);
			return scl_store__lmdb_err(rc, tables[i].name);
		}
	}
	rc = mdb_get(txn, s->info, &k, &v);
	if (rc == MDB_NOTFOUND) {
		scl_le32_store(version, SCL_STORE_VERSION);
		v = val_of(version, 4);
		rc = mdb_put(txn, s->info, &k, &v, 0);
	} else if (rc == 0 && (v.mv_size != 4 ||
				  scl_le32_load(v.mv_data) != SCL_STORE_VERSION)) {
		mdb_txn_abort(txn);
		return scl_err_set(SCL_EVERSION,
		    "store %s has format version %u; this build reads %u",
		    s->dir, v.mv_size == 4 ? scl_le32_load(v.mv_data) : 0,
		    SCL_STORE_VERSION);
	}
	if (rc != 0) {
		mdb_txn_abort(txn);
		return scl_store__lmdb_err(rc, "store version");
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return scl_store__lmdb_err(rc, "creating store tables");
	return SCL_OK;
}

enum scl_err
scl_store_open(struct scl_store **out, const char *dir,
    const struct scl_store_options *opt)
{
	struct scl_store *s;
	unsigned flags = MDB_NOTLS;
	enum scl_err e;
	int rc;

	*out = NULL;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return scl_err_set(SCL_EIO, "creating store directory %s: %s",
		    dir, strerror(errno));
	if ((s = calloc(1, sizeof(*s))) == NULL || (s->dir = strdup(dir)) == NULL) {
		free(s);
		return scl_err_set(SCL_ENOMEM, "cannot allocate store");
	}
	if (opt && opt->no_sync)
		flags |= MDB_NOSYNC;
	if ((rc = mdb_env_create(&s->env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(s->env, 16)) != 0 ||
	    (rc = mdb_env_set_maxreaders(s->env, 512)) != 0 ||
	    (rc = mdb_env_set_mapsize(s->env, opt && opt->map_size
		     ? opt->map_size : DEFAULT_MAP_SIZE)) != 0 ||
	    (rc = mdb_env_open(s->env, dir, flags, 0600)) != 0) {
		e = scl_store__lmdb_err(rc, dir);
		goto fail;
	}
	if ((e = open_tables(s)) != SCL_OK)
		goto fail;
	*out = s;
	return SCL_OK;
fail:
	scl_store_close(s);
	return e;
}

/*
 * A capsule server writes each record once and seldom reads it back, so
 * the pages its commits wrote only crowd the page cache.  Dropping them
 * after they are durable keeps the cache (and the memory the kernel must
 * find for the next write) small: measured on this project's VMs, which
 * hand freed guest memory back to the host, writing into pages the
 * kernel had to take fresh cost ~10x the CPU per byte of writing into
 * recycled ones once a store passed 1-2 GB (docs/BENCHMARKS.md).  Pages
 * a reader maps (the B-tree's, records being read) are left alone by the
 * kernel.
 */
void
scl_store__drop_cache(struct scl_store *s)
{
	int fd;

	if (mdb_env_get_fd(s->env, &fd) == 0)
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
}

void
scl_store_close(struct scl_store *s)
{
	if (s == NULL)
		return;
	if (s->env)
		mdb_env_close(s->env);
	free(s->dir);
	free(s);
}

enum scl_err
scl_store_put_meta(struct scl_store *s, const uint8_t name[SCL_NAME_BYTES],
    struct scl_slice meta)
{
	MDB_val k = val_of(name, SCL_NAME_BYTES), v = val_of(meta.ptr, meta.len);
	MDB_txn *txn;
	int rc;

	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
		return scl_store__lmdb_err(rc, "storing metadata");
	rc = mdb_put(txn, s->meta, &k, &v, MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST)
		rc = 0; /* same name, same bytes: the name is their hash */
	if (rc != 0) {
		mdb_txn_abort(txn);
		return scl_store__lmdb_err(rc, "storing metadata");
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return scl_store__lmdb_err(rc, "committing metadata");
	return SCL_OK;
}

/* Runs @fn inside a short read transaction. */
static enum scl_err
with_read(struct scl_store *s, MDB_txn **txn)
{
	int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn);
	return rc ? scl_store__lmdb_err(rc, "read transaction") : SCL_OK;
}

static enum scl_err
get_copy(struct scl_store *s, MDB_dbi dbi, MDB_val *k, struct scl_buf *out,
    const char *what)
{
	MDB_txn *txn;
	MDB_val v;
	enum scl_err e;
	int rc;

	if ((e = with_read(s, &txn)) != SCL_OK)
		return e;
	rc = mdb_get(txn, dbi, k, &v);
	if (rc == 0)
		e = scl_buf_set(out, scl_slice_of(v.mv_data, v.mv_size));
	else if (rc == MDB_NOTFOUND)
		e = scl_err_set(SCL_ENOTFOUND, "%s not found", what);
	else
		e = scl_store__lmdb_err(rc, what);
	mdb_txn_abort(txn);
	return e;
}

enum scl_err
scl_store_get_meta(struct scl_store *s, const uint8_t name[SCL_NAME_BYTES],
    struct scl_buf *out)
{
	char hex[2 * SCL_NAME_BYTES + 1], what[96];
	MDB_val k = val_of(name, SCL_NAME_BYTES);

	snprintf(what, sizeof(what), "capsule %s",
	    scl_hex_encode(hex, name, SCL_NAME_BYTES));
	return get_copy(s, s->meta, &k, out, what);
}

enum scl_err
scl_store_each_capsule(struct scl_store *s, scl_store_capsule_fn fn, void *ctx)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	enum scl_err e;
	int rc;

	if ((e = with_read(s, &txn)) != SCL_OK)
		return e;
	if ((rc = mdb_cursor_open(txn, s->meta, &cur)) != 0) {
		mdb_txn_abort(txn);
		return scl_store__lmdb_err(rc, "listing capsules");
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size != SCL_NAME_BYTES)
			continue;
		if (fn(ctx, k.mv_data, scl_slice_of(v.mv_data, v.mv_size)))
			break;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return SCL_OK;
}

typedef int (*entry_fn)(void *ctx, const uint8_t *key, MDB_val *v);

/* Calls @fn for every entry of @dbi whose key is @name followed by
 * @key_len - 32 more bytes, in key order, inside one read transaction.
 * Entries of other lengths are skipped; @fn returning non-zero stops. */
static enum scl_err
scan_capsule(struct scl_store *s, MDB_dbi dbi, const uint8_t *name,
    size_t key_len, const char *what, entry_fn fn, void *ctx)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k = val_of(name, SCL_NAME_BYTES), v;
	enum scl_err e;
	int rc;

	if ((e = with_read(s, &txn)) != SCL_OK)
		return e;
	if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0) {
		mdb_txn_abort(txn);
		return scl_store__lmdb_err(rc, what);
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size < SCL_NAME_BYTES ||
		    memcmp(k.mv_data, name, SCL_NAME_BYTES) != 0)
			break;
		if (k.mv_size == key_len && fn(ctx, k.mv_data, &v))
			break;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return SCL_OK;
}

static void
head_decode(struct scl_store_head *out, const MDB_val *v)
{
	memset(out, 0, sizeof(*out));
	if (v->mv_size != HEAD_VALUE_BYTES)
		return;
	out->seqno = scl_le64_load(v->mv_data);
	out->lamport = scl_le64_load((const uint8_t *)v->mv_data + 8);
	memcpy(out->hash, (const uint8_t *)v->mv_data + 16, SCL_HASH_BYTES);
}

enum scl_err
scl_store__get_head(struct scl_store *s, MDB_txn *txn, const uint8_t *name,
    const uint8_t *writer, struct scl_store_head *out)
{
	uint8_t key[HEAD_KEY_BYTES];
	MDB_val k = val_of(key, sizeof(key)), v;
	int rc;

	memcpy(key, name, SCL_NAME_BYTES);
	memcpy(key + SCL_NAME_BYTES, writer, SCL_WRITER_BYTES);
	memset(out, 0, sizeof(*out));
	rc = mdb_get(txn, s->heads, &k, &v);
	if (rc == MDB_NOTFOUND)
		return SCL_OK;
	if (rc != 0)
		return scl_store__lmdb_err(rc, "reading head");
	if (v.mv_size != HEAD_VALUE_BYTES)
		return scl_err_set(SCL_EFORMAT, "stored head of %zu bytes",
		    v.mv_size);
	head_decode(out, &v);
	return SCL_OK;
}

enum scl_err
scl_store_get_head(struct scl_store *s, const uint8_t name[SCL_NAME_BYTES],
    const uint8_t writer[SCL_WRITER_BYTES], struct scl_store_head *out)
{
	MDB_txn *txn;
	enum scl_err e;

	if ((e = with_read(s, &txn)) != SCL_OK)
		return e;
	e = scl_store__get_head(s, txn, name, writer, out);
	mdb_txn_abort(txn);
	return e;
}

struct writer_scan {
	scl_store_writer_fn fn;
	void *ctx;
};

static int
writer_entry(void *ctx, const uint8_t *key, MDB_val *v)
{
	struct writer_scan *w = ctx;
	struct scl_store_head head;

	head_decode(&head, v);
	return w->fn(w->ctx, key + SCL_NAME_BYTES, &head);
}

enum scl_err
scl_store_each_writer(struct scl_store *s, const uint8_t name[SCL_NAME_BYTES],
    scl_store_writer_fn fn, void *ctx)
{
	struct writer_scan w = { fn, ctx };
	return scan_capsule(s, s->heads, name, HEAD_KEY_BYTES, "listing writers",
	    writer_entry, &w);
}

/* Whether @key sorts after every key of @dbi, so MDB_APPEND may be used.
 * A chain's records arrive in key order, so when it is the last chain in
 * the table (always, for one active writer) appends fill pages fully;
 * LMDB's ordinary insert splits pages in half, leaving sequentially
 * written pages two-thirds empty at best (measured: 2 records of 1 KiB
 * per 4 KiB page instead of 3). */
static bool
key_is_last(MDB_txn *txn, MDB_dbi dbi, const uint8_t *key, size_t n)
{
	MDB_cursor *cur;
	MDB_val k, v;
	bool last;
	int rc;

	if (mdb_cursor_open(txn, dbi, &cur) != 0)
		return false;
	rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	last = rc == MDB_NOTFOUND ||
	    (rc == 0 && memcmp(k.mv_data, key, k.mv_size < n ? k.mv_size : n) <
		0);
	mdb_cursor_close(cur);
	return last;
}

static enum scl_err
put_records(struct scl_store *s, MDB_txn *txn,
    const struct scl_capsule_batch *b)
{
	uint8_t key[REC_KEY_BYTES];
	unsigned flags = MDB_NOOVERWRITE;
	MDB_val k, v;
	int rc;

	rec_key(key, b->capsule, b->writer, b->first_seqno);
	if (key_is_last(txn, s->records, key, sizeof(key)))
		flags = MDB_APPEND;
	for (size_t i = 0; i < b->n; i++) {
		struct scl_slice r = scl_capsule_batch_record(b, i);
		rec_key(key, b->capsule, b->writer, b->first_seqno + i);
		k = val_of(key, sizeof(key));
		v = val_of(r.ptr, r.len);
		if ((rc = mdb_put(txn, s->records, &k, &v, flags)) != 0)
			return scl_store__lmdb_err(rc, "storing record");
	}
	return SCL_OK;
}

/* REVOKE records (verified by the caller, owner's chain only) land in
 * the revocation table in the same transaction as the batch. */
static enum scl_err
note_revocations(struct scl_store *s, MDB_txn *txn,
    const struct scl_capsule_batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		struct scl_record r;
		struct scl_revocation rv;
		uint8_t key[HEAD_KEY_BYTES], val[8];
		MDB_val k, v;
		int rc;
		if (scl_capsule_record_decode(&r, scl_capsule_batch_record(b, i)) !=
			SCL_OK ||
		    r.type != SCL_RECORD_REVOKE ||
		    scl_revocation_decode(&rv, r.body) != SCL_OK) {
			scl_err_clear();
			continue;
		}
		memcpy(key, b->capsule, SCL_NAME_BYTES);
		memcpy(key + SCL_NAME_BYTES, rv.writer, SCL_WRITER_BYTES);
		scl_le64_store(val, rv.max_seqno);
		k = val_of(key, sizeof(key));
		v = val_of(val, sizeof(val));
		if ((rc = mdb_put(txn, s->revoked, &k, &v, 0)) != 0)
			return scl_store__lmdb_err(rc, "storing revocation");
	}
	return SCL_OK;
}

enum scl_err
scl_store_revocation(struct scl_store *s, const uint8_t name[SCL_NAME_BYTES],
    const uint8_t writer[SCL_WRITER_BYTES], uint64_t *max_seqno)
{
	uint8_t key[HEAD_KEY_BYTES];
	MDB_val k = val_of(key, sizeof(key)), v;
	MDB_txn *txn;
	enum scl_err e;
	int rc;

	memcpy(key, name, SCL_NAME_BYTES);
	memcpy(key + SCL_NAME_BYTES, writer, SCL_WRITER_BYTES);
	if ((e = with_read(s, &txn)) != SCL_OK)
		return e;
	rc = mdb_get(txn, s->revoked, &k, &v);
	if (rc == 0 && v.mv_size == 8)
		*max_seqno = scl_le64_load(v.mv_data);
	mdb_txn_abort(txn);
	if (rc == MDB_NOTFOUND)
		return SCL_ENOTFOUND;
	return rc ? scl_store__lmdb_err(rc, "reading revocations") : SCL_OK;
}

enum scl_err
scl_store__apply(struct scl_store *s, MDB_txn *txn,
    const struct scl_capsule_batch *b)
{
	uint8_t key[REC_KEY_BYTES], hkey[SCL_NAME_BYTES + SCL_HASH_BYTES];
	uint8_t hval[SCL_WRITER_BYTES + 8], head[HEAD_VALUE_BYTES];
	struct scl_store_head cur;
	uint64_t last;
	MDB_val k, v;
	char ref[32];
	enum scl_err e;
	int rc;

	if (b->n == 0 || b->heartbeat.len == 0)
		return scl_err_set(SCL_EINVAL,
		    "a stored batch needs records and a heartbeat");
	last = b->first_seqno + b->n - 1;
	if ((e = scl_store__get_head(s, txn, b->capsule, b->writer, &cur)) != SCL_OK)
		return e;
	if (cur.seqno + 1 != b->first_seqno)
		return scl_err_set(SCL_ECONFLICT,
		    "batch starts at record %s but the stored chain ends at %llu",
		    scl_capsule_record_ref(ref, b->writer, b->first_seqno),
		    (unsigned long long)cur.seqno);
	if ((e = put_records(s, txn, b)) != SCL_OK ||
	    (e = note_revocations(s, txn, b)) != SCL_OK)
		return e;
	/* The hash index names the records heartbeats sign, the heads that
	 * other writers' merges and readers refer to.  Indexing every record
	 * would scatter one random-key insert per record across the index
	 * and (measured) cut durable append throughput five-fold. */
	memcpy(hkey, b->capsule, SCL_NAME_BYTES);
	memcpy(hkey + SCL_NAME_BYTES, b->hashes[b->n - 1], SCL_HASH_BYTES);
	memcpy(hval, b->writer, SCL_WRITER_BYTES);
	scl_be64_store(hval + SCL_WRITER_BYTES, last);
	k = val_of(hkey, sizeof(hkey));
	v = val_of(hval, sizeof(hval));
	if ((rc = mdb_put(txn, s->hashes, &k, &v, 0)) != 0)
		return scl_store__lmdb_err(rc, "storing hash index");
	rec_key(key, b->capsule, b->writer, last);
	k = val_of(key, sizeof(key));
	v = val_of(b->heartbeat.ptr, b->heartbeat.len);
	if ((rc = mdb_put(txn, s->heartbeats, &k, &v,
		 key_is_last(txn, s->heartbeats, key, sizeof(key)) ? MDB_APPEND
								   : 0)) != 0)
		return scl_store__lmdb_err(rc, "storing heartbeat");
	scl_le64_store(head, last);
	scl_le64_store(head + 8, b->last_lamport);
	memcpy(head + 16, b->hashes[b->n - 1], SCL_HASH_BYTES);
	k = val_of(key, HEAD_KEY_BYTES);
	v = val_of(head, sizeof(head));
	if ((rc = mdb_put(txn, s->heads, &k, &v, 0)) != 0)
		return scl_store__lmdb_err(rc, "storing head");
	return SCL_OK;
}

enum scl_err
scl_store_append(struct scl_store *s,
    const struct scl_capsule_batch *const *batches, size_t n)
{
	MDB_txn *txn;
	enum scl_err e = SCL_OK;
	int rc;

	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
		return scl_store__lmdb_err(rc, "append transaction");
	for (size_t i = 0; i < n && e == SCL_OK; i++)
		e = scl_store__apply(s, txn, batches[i]);
	if (e != SCL_OK) {
		mdb_txn_abort(txn);
		return e;
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return scl_store__lmdb_err(rc, "committing append");
	return SCL_OK;
}

enum scl_err
scl_store_get_record(struct scl_store *s, const uint8_t name[SCL_NAME_BYTES],
    const uint8_t writer[SCL_WRITER_BYTES], uint64_t seqno,
    struct scl_buf *out)
{
	uint8_t key[REC_KEY_BYTES];
	MDB_val k = val_of(key, sizeof(key));
	char ref[32], what[48];

	rec_key(key, name, writer, seqno);
	snprintf(what, sizeof(what), "record %s",
	    scl_capsule_record_ref(ref, writer, seqno));
	return get_copy(s, s->records, &k, out, what);
}

enum scl_err
scl_store_find_hash(struct scl_store *s, const uint8_t name[SCL_NAME_BYTES],
    const uint8_t hash[SCL_HASH_BYTES], uint8_t writer[SCL_WRITER_BYTES],
    uint64_t *seqno)
{
	uint8_t key[SCL_NAME_BYTES + SCL_HASH_BYTES];
	MDB_val k = val_of(key, sizeof(key));
	struct scl_buf v;
	char h[9], what[48];
	enum scl_err e;

	memcpy(key, name, SCL_NAME_BYTES);
	memcpy(key + SCL_NAME_BYTES, hash, SCL_HASH_BYTES);
	snprintf(what, sizeof(what), "record with hash %s",
	    scl_hex_short(h, hash));
	scl_buf_init(&v);
	if ((e = get_copy(s, s->hashes, &k, &v, what)) == SCL_OK) {
		if (v.len != SCL_WRITER_BYTES + 8) {
			e = scl_err_set(SCL_EFORMAT, "hash index entry of %zu "
			    "bytes", v.len);
		} else {
			memcpy(writer, v.ptr, SCL_WRITER_BYTES);
			*seqno = scl_be64_load(v.ptr + SCL_WRITER_BYTES);
		}
	}
	scl_buf_dispose(&v);
	return e;
}

enum scl_err
scl_store_put_evidence(struct scl_store *s, const uint8_t name[SCL_NAME_BYTES],
    const uint8_t writer[SCL_WRITER_BYTES], uint64_t seqno,
    struct scl_slice evidence)
{
	uint8_t key[REC_KEY_BYTES];
	MDB_val k = val_of(key, sizeof(key)),
		v = val_of(evidence.ptr, evidence.len);
	MDB_txn *txn;
	int rc;

	rec_key(key, name, writer, seqno);
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
		return scl_store__lmdb_err(rc, "storing evidence");
	rc = mdb_put(txn, s->evidence, &k, &v, MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST)
		rc = 0; /* one conviction per (writer, seqno) is enough */
	if (rc != 0) {
		mdb_txn_abort(txn);
		return scl_store__lmdb_err(rc, "storing evidence");
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return scl_store__lmdb_err(rc, "committing evidence");
	return SCL_OK;
}

enum scl_err
scl_store_first_evidence(struct scl_store *s, const uint8_t name[SCL_NAME_BYTES],
    const uint8_t writer[SCL_WRITER_BYTES], uint64_t *seqno)
{
	uint8_t key[REC_KEY_BYTES];
	MDB_val k = val_of(key, sizeof(key)), v;
	MDB_cursor *cur;
	MDB_txn *txn;
	enum scl_err e;
	int rc;

	rec_key(key, name, writer, 0);
	if ((e = with_read(s, &txn)) != SCL_OK)
		return e;
	if ((rc = mdb_cursor_open(txn, s->evidence, &cur)) != 0) {
		mdb_txn_abort(txn);
		return scl_store__lmdb_err(rc, "reading evidence");
	}
	/* Keys sort by (name, writer, big-endian seqno): the first at or
	 * after seqno 0 is this writer's lowest, if it is this writer's. */
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == 0 && (k.mv_size != REC_KEY_BYTES ||
			   memcmp(k.mv_data, key, SCL_NAME_BYTES +
			       SCL_WRITER_BYTES) != 0))
		rc = MDB_NOTFOUND;
	if (rc == 0)
		*seqno = scl_be64_load((const uint8_t *)k.mv_data +
		    SCL_NAME_BYTES + SCL_WRITER_BYTES);
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (rc == MDB_NOTFOUND)
		return SCL_ENOTFOUND;
	return rc ? scl_store__lmdb_err(rc, "reading evidence") : SCL_OK;
}

struct evidence_scan {
	scl_store_evidence_fn fn;
	void *ctx;
};

static int
evidence_entry(void *ctx, const uint8_t *key, MDB_val *v)
{
	struct evidence_scan *ev = ctx;

	return ev->fn(ev->ctx, key + SCL_NAME_BYTES,
	    scl_be64_load(key + SCL_NAME_BYTES + SCL_WRITER_BYTES),
	    scl_slice_of(v->mv_data, v->mv_size));
}

enum scl_err
scl_store_each_evidence(struct scl_store *s, const uint8_t name[SCL_NAME_BYTES],
    scl_store_evidence_fn fn, void *ctx)
{
	struct evidence_scan ev = { fn, ctx };
	return scan_capsule(s, s->evidence, name, REC_KEY_BYTES,
	    "listing evidence", evidence_entry, &ev);
}

struct scl_store_snapshot {
	struct scl_store *store;
	MDB_txn *txn;
	uint8_t name[SCL_NAME_BYTES];
};

enum scl_err
scl_store_snapshot_begin(struct scl_store_snapshot **out, struct scl_store *s,
    const uint8_t name[SCL_NAME_BYTES])
{
	struct scl_store_snapshot *snap;
	enum scl_err e;

	*out = NULL;
	if ((snap = calloc(1, sizeof(*snap))) == NULL)
		return scl_err_set(SCL_ENOMEM, "cannot allocate snapshot");
	snap->store = s;
	memcpy(snap->name, name, SCL_NAME_BYTES);
	if ((e = with_read(s, &snap->txn)) != SCL_OK) {
		free(snap);
		return e;
	}
	*out = snap;
	return SCL_OK;
}

void
scl_store_snapshot_end(struct scl_store_snapshot *snap)
{
	if (snap == NULL)
		return;
	mdb_txn_abort(snap->txn);
	free(snap);
}

static enum scl_err
snap_record(void *ctx, const uint8_t *writer, uint64_t seqno,
    struct scl_buf *out)
{
	struct scl_store_snapshot *snap = ctx;
	uint8_t key[REC_KEY_BYTES];
	MDB_val k = val_of(key, sizeof(key)), v;
	char ref[32];
	int rc;

	rec_key(key, snap->name, writer, seqno);
	rc = mdb_get(snap->txn, snap->store->records, &k, &v);
	if (rc == MDB_NOTFOUND)
		return scl_err_set(SCL_ENOTFOUND, "record %s not stored",
		    scl_capsule_record_ref(ref, writer, seqno));
	if (rc != 0)
		return scl_store__lmdb_err(rc, "reading record");
	/* Copy out of the map: verification must judge bytes that cannot
	 * change under it (the file is untrusted and shared). */
	return scl_buf_set(out, scl_slice_of(v.mv_data, v.mv_size));
}

static enum scl_err
snap_heartbeat_from(void *ctx, const uint8_t *writer, uint64_t seqno,
    uint64_t *at, struct scl_buf *out)
{
	struct scl_store_snapshot *snap = ctx;
	uint8_t key[REC_KEY_BYTES];
	MDB_val k = val_of(key, sizeof(key)), v;
	MDB_cursor *cur;
	enum scl_err e;
	int rc;

	rec_key(key, snap->name, writer, seqno);
	if ((rc = mdb_cursor_open(snap->txn, snap->store->heartbeats, &cur)) !=
	    0)
		return scl_store__lmdb_err(rc, "reading heartbeats");
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == 0 && (k.mv_size != REC_KEY_BYTES ||
			   memcmp(k.mv_data, key, REC_KEY_BYTES - 8) != 0))
		rc = MDB_NOTFOUND;
	if (rc == MDB_NOTFOUND)
		e = scl_err_set(SCL_ENOTFOUND, "no heartbeat at or above %llu",
		    (unsigned long long)seqno);
	else if (rc != 0)
		e = scl_store__lmdb_err(rc, "reading heartbeats");
	else {
		*at = scl_be64_load((const uint8_t *)k.mv_data + REC_KEY_BYTES -
		    8);
		e = scl_buf_set(out, scl_slice_of(v.mv_data, v.mv_size));
	}
	mdb_cursor_close(cur);
	return e;
}

void
scl_store_snapshot_source(struct scl_capsule_source *out,
    struct scl_store_snapshot *snap)
{
	out->ctx = snap;
	out->record = snap_record;
	out->heartbeat_from = snap_heartbeat_from;
}
