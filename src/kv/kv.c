/*
 * kv.c - one KVS replica (kv.h): local operations, batching through the
 * crypto actors, and verified application of peers' batches.
 *
 * Invariants:
 * - A peer's records are applied in its chain order, each exactly once,
 *   and only after scl_capsule_batch_verify accepted them from the peer's
 *   verified head.  What happens to a verified record's payload is a
 *   function of its signed bytes alone, so every replica decides the same.
 * - The map holds, per key, the largest version applied; versions are
 *   totally ordered, so the state is the same for the same set of applied
 *   records in any order.
 * - Buffered (out-of-order) batches carry a verified heartbeat signature
 *   over their last record, and take at most pending_max_bytes.
 * - A peer's retained batches are applied ones, in chain order, above the
 *   durable head the host last reported, and take at most
 *   retain_max_bytes (kv.h "Hand-on").
 * - Outputs are appended by the driving thread and by actor threads
 *   (sealed batches): `lock` guards the queue and the flush FIFO only.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_int.h"
#include "scl/codec.h"

#define PEERS_MAX 4096
#define SYNC_HEADS_MAX 16
#define FLUSHES_MAX 4096	/* > the batcher's batches in flight */

struct held {			/* a buffered out-of-order batch */
	struct held *next;
	uint64_t first, last;
	struct scl_buf msg;
};

struct retained {		/* an applied batch the servers may lack */
	struct retained *next;
	uint64_t first, last;
	uint64_t applied_at, handed_at;	/* µs; handed_at 0: not yet */
	struct scl_buf msg;
};

struct peer {
	uint8_t writer[SCL_WRITER_BYTES];
	struct scl_capsule_head head;	/* verified and applied */
	struct scl_buf newest_hb;	/* newest verified heartbeat */
	uint64_t newest_seqno;
	uint64_t known;			/* highest seqno known to exist */
	uint64_t fetch_to, fetch_at;	/* outstanding FETCH */
	uint64_t gap_since;		/* µs: known > head since then; 0: no */
	bool gap_abandoned;		/* ...for gap_give_up_us: said once */
	struct held *held;		/* sorted by first seqno */
	struct retained *ret, *ret_tail;	/* chain order */
	uint64_t durable;		/* the host's word: servers hold this */
	uint64_t durable_at;		/* µs: durable last rose */
};

struct outq {
	struct outq *next;
	struct scl_kv_output o;
};

struct scl_kv {
	struct scl_kv_options opt;
	struct scl_capsule_meta meta;
	uint8_t name[SCL_NAME_BYTES];
	struct scl_capsule_keyring *keys;
	struct scl_sign_key sign;
	struct scl_capsule_writer *writer;
	struct scl_batcher *batcher;
	struct scl_capsule_opener *opener;
	struct kv_map map;
	uint64_t lamport;

	/* the batch being filled */
	size_t cur_puts, cur_bytes;
	uint64_t cur_opened;
	uint64_t ops_total;		/* own puts and deletes */
	struct scl_buf op;		/* scratch: one encoded op */
	struct scl_buf plain;		/* plain mode: the batch payload */
	uint64_t plain_seqno;

	struct peer *peers;		/* sorted by writer */
	size_t n_peers;
	size_t held_bytes;
	size_t retained_bytes;
	size_t sync_cursor;		/* the peer the next SYNC starts at */
	uint64_t next_sync;

	struct scl_capsule_batch tmp;	/* scratch for receive */
	struct scl_buf payload;		/* scratch: an opened record */

	pthread_mutex_t lock;		/* guards the fields below */
	struct outq *out_head, *out_tail;
	uint64_t flushes[FLUSHES_MAX];	/* `through` of each flush, FIFO */
	size_t flush_r, flush_w;
	struct scl_buf own_hb;		/* our newest heartbeat */
	uint64_t own_seqno;
	enum scl_err seal_err;
	struct scl_kv_stats st;
};

static void
push_output(struct scl_kv *kv, struct outq *q)
{
	pthread_mutex_lock(&kv->lock);
	if (kv->out_tail)
		kv->out_tail->next = q;
	else
		kv->out_head = q;
	kv->out_tail = q;
	pthread_mutex_unlock(&kv->lock);
}

static struct outq *
new_output(enum scl_kv_output_kind kind)
{
	struct outq *q = calloc(1, sizeof(*q));

	if (q) {
		scl_kv_output_init(&q->o);
		q->o.kind = kind;
	}
	return q;
}

/* Batches up to this size are sealed on the core's thread when no other
 * is being sealed (scl_batcher_options): below saturation that is most
 * of them, and their sealed record is in the very reply that closed
 * them, with no actor hand-off and no host polling for it. */
#define KV_INLINE_SEAL_BYTES ((size_t)64 << 10)

/* --- sealing (actor threads) ---------------------------------------------- */

/* A sealed batch from the batcher, in chain order, on an actor thread
 * (or on the core's, for a batch sealed inline). */
static void
on_sealed(void *arg, const struct scl_capsule_batch *b)
{
	struct scl_kv *kv = arg;
	struct outq *q = new_output(SCL_KV_OUT_BATCH);
	enum scl_err e = q ? scl_kv_msg_from_batch(&q->o.msg, b)
			   : scl_err_set(SCL_ENOMEM, "output");

	pthread_mutex_lock(&kv->lock);
	/* Batches arrive in the order they were closed. */
	if (q)
		q->o.through = kv->flushes[kv->flush_r % FLUSHES_MAX];
	kv->flush_r++;
	if (e == SCL_OK)
		e = scl_buf_set(&kv->own_hb, scl_buf_slice(&b->heartbeat));
	kv->own_seqno = b->first_seqno + b->n - 1;
	kv->st.batches_out++;
	if (e != SCL_OK && kv->seal_err == SCL_OK)
		kv->seal_err = e;
	pthread_mutex_unlock(&kv->lock);
	if (e == SCL_OK) {
		push_output(kv, q);
	} else if (q) {
		scl_kv_output_dispose(&q->o);
		free(q);
	}
}

/* The certificate opens a non-owner's chain, before any batch. */
static enum scl_err
write_certificate(struct scl_kv *kv, struct scl_slice cert)
{
	struct scl_capsule_batch b;
	struct outq *q;
	enum scl_err e;

	scl_capsule_batch_init(&b);
	if ((e = scl_capsule_writer_append(kv->writer, &b, SCL_RECORD_CERT,
		 cert)) == SCL_OK &&
	    (e = scl_capsule_writer_seal_batch(kv->writer, &b, 0)) == SCL_OK) {
		if ((q = new_output(SCL_KV_OUT_BATCH)) == NULL)
			e = scl_err_set(SCL_ENOMEM, "output");
		else if ((e = scl_kv_msg_from_batch(&q->o.msg, &b)) != SCL_OK ||
		    (e = scl_buf_set(&kv->own_hb,
			 scl_buf_slice(&b.heartbeat))) != SCL_OK) {
			scl_kv_output_dispose(&q->o);
			free(q);
		} else {
			kv->own_seqno = 1;
			push_output(kv, q);
		}
	}
	scl_capsule_batch_dispose(&b);
	return e;
}

/* --- life cycle -------------------------------------------------------------- */

enum scl_err
scl_kv_new(struct scl_kv **out, const struct scl_kv_options *opt)
{
	struct scl_kv *kv;
	struct scl_batcher_options bo;
	enum scl_err e;

	*out = NULL;
	if ((kv = calloc(1, sizeof(*kv))) == NULL)
		return scl_err_set(SCL_ENOMEM, "cannot allocate a KVS replica");
	kv->opt = *opt;
	if (!kv->opt.batch_max_puts)
		kv->opt.batch_max_puts = SCL_KV_BATCH_PUTS_DEFAULT;
	if (!kv->opt.batch_max_bytes)
		kv->opt.batch_max_bytes = (size_t)256 << 10;
	if (kv->opt.batch_max_bytes > SCL_PAYLOAD_MAX)
		kv->opt.batch_max_bytes = SCL_PAYLOAD_MAX;
	if (!kv->opt.batch_delay_us)
		kv->opt.batch_delay_us = 2000;
	if (!kv->opt.pending_max_bytes)
		kv->opt.pending_max_bytes = (size_t)64 << 20;
	if (!kv->opt.fetch_retry_us)
		kv->opt.fetch_retry_us = 200000;
	if (!kv->opt.sync_every_us)
		kv->opt.sync_every_us = 100000;
	if (!kv->opt.handon_after_us)
		kv->opt.handon_after_us = 2000000;
	if (!kv->opt.retain_max_bytes)
		kv->opt.retain_max_bytes = (size_t)64 << 20;
	if (!kv->opt.gap_give_up_us)
		kv->opt.gap_give_up_us = 10000000;
	kv->opt.meta = scl_slice_of(NULL, 0);
	kv->opt.cert = scl_slice_of(NULL, 0);
	kv->opt.keys = NULL;
	kv->opt.sign = NULL;
	pthread_mutex_init(&kv->lock, NULL);
	scl_buf_init(&kv->op);
	scl_buf_init(&kv->plain);
	scl_buf_init(&kv->payload);
	scl_buf_init(&kv->own_hb);
	scl_capsule_batch_init(&kv->tmp);
	kv->sign = *opt->sign;
	scl_capsule_name(kv->name, opt->meta);
	if ((e = kv_map_init(&kv->map, scl_le64_load(opt->sign->public_key))) !=
		SCL_OK ||
	    (e = scl_capsule_meta_check(&kv->meta, kv->name, opt->meta)) !=
		SCL_OK)
		goto fail;
	if (opt->keys == NULL || opt->keys->n_epochs == 0) {
		e = scl_err_set(SCL_EINVAL, "a KVS replica needs the data keys");
		goto fail;
	}
	if ((kv->keys = malloc(sizeof(*kv->keys))) == NULL) {
		e = scl_err_set(SCL_ENOMEM, "keyring");
		goto fail;
	}
	*kv->keys = *opt->keys;
	if (kv->opt.plain)
		goto done;
	memset(&bo, 0, sizeof(bo));
	/* The replica closes batches itself (it tracks what each covers);
	 * the batcher's own limits stay out of the way. */
	bo.max_puts = SIZE_MAX;
	bo.max_bytes = SCL_PAYLOAD_MAX;
	bo.inline_max_bytes = KV_INLINE_SEAL_BYTES;
	if ((e = scl_capsule_writer_new(&kv->writer, kv->name, kv->meta.aead,
		 &kv->sign, kv->keys->epochs[kv->keys->n_epochs - 1].epoch,
		 kv->keys->epochs[kv->keys->n_epochs - 1].key,
		 &(struct scl_capsule_head){ 0 })) != SCL_OK ||
	    (opt->record_version &&
		(e = scl_capsule_writer_set_record_version(kv->writer,
		     opt->record_version)) != SCL_OK) ||
	    (e = scl_capsule_opener_new(&kv->opener, kv->meta.aead,
		 kv->keys)) != SCL_OK)
		goto fail;
	if (opt->cert.len && (e = write_certificate(kv, opt->cert)) != SCL_OK)
		goto fail;
	if (opt->actors == NULL) {
		e = scl_err_set(SCL_EINVAL, "a KVS replica needs crypto actors");
		goto fail;
	}
	if ((e = scl_batcher_new(&kv->batcher, opt->actors, kv->writer, &bo,
		 on_sealed, kv)) != SCL_OK)
		goto fail;
done:
	*out = kv;
	return SCL_OK;
fail:
	scl_kv_free(kv);
	return e;
}

/* Frees @p's retained batches that end at or below @through. */
static void
release_retained(struct scl_kv *kv, struct peer *p, uint64_t through)
{
	while (p->ret && p->ret->last <= through) {
		struct retained *r = p->ret;
		p->ret = r->next;
		kv->retained_bytes -= r->msg.len;
		scl_buf_dispose(&r->msg);
		free(r);
	}
	if (p->ret == NULL)
		p->ret_tail = NULL;
}

static void
peer_dispose(struct scl_kv *kv, struct peer *p)
{
	struct held *h, *next;

	for (h = p->held; h; h = next) {
		next = h->next;
		kv->held_bytes -= h->msg.len;
		scl_buf_dispose(&h->msg);
		free(h);
	}
	p->held = NULL;
	release_retained(kv, p, UINT64_MAX);
	scl_buf_dispose(&p->newest_hb);
}

void
scl_kv_free(struct scl_kv *kv)
{
	struct outq *q, *next;

	if (kv == NULL)
		return;
	if (kv->batcher) {
		if (scl_batcher_finish(kv->batcher) != SCL_OK)
			scl_err_clear(); /* nothing left to report it to */
		scl_batcher_free(kv->batcher);
	}
	scl_capsule_writer_free(kv->writer);
	scl_capsule_opener_free(kv->opener);
	for (size_t i = 0; i < kv->n_peers; i++)
		peer_dispose(kv, &kv->peers[i]);
	free(kv->peers);
	for (q = kv->out_head; q; q = next) {
		next = q->next;
		scl_kv_output_dispose(&q->o);
		free(q);
	}
	kv_map_dispose(&kv->map);
	if (kv->keys) {
		scl_capsule_keyring_wipe(kv->keys);
		free(kv->keys);
	}
	scl_sign_key_wipe(&kv->sign);
	scl_buf_dispose_secret(&kv->op);
	scl_buf_dispose_secret(&kv->plain);
	scl_buf_dispose_secret(&kv->payload);
	scl_buf_dispose(&kv->own_hb);
	scl_capsule_batch_dispose(&kv->tmp);
	pthread_mutex_destroy(&kv->lock);
	free(kv);
}

const uint8_t *
scl_kv_writer(const struct scl_kv *kv)
{
	return kv->sign.public_key;
}

void
scl_kv_output_init(struct scl_kv_output *o)
{
	memset(o, 0, sizeof(*o));
	scl_buf_init(&o->msg);
}

void
scl_kv_output_dispose(struct scl_kv_output *o)
{
	scl_buf_dispose(&o->msg);
}

bool
scl_kv_next_output(struct scl_kv *kv, struct scl_kv_output *out)
{
	struct outq *q;

	pthread_mutex_lock(&kv->lock);
	if ((q = kv->out_head) != NULL) {
		kv->out_head = q->next;
		if (kv->out_head == NULL)
			kv->out_tail = NULL;
	}
	pthread_mutex_unlock(&kv->lock);
	if (q == NULL)
		return false;
	scl_kv_output_dispose(out);
	*out = q->o;
	free(q);
	return true;
}

/* --- local operations ----------------------------------------------------- */

/* Closes the batch being filled: to the actors, or (plain) out now. */
static enum scl_err
close_batch(struct scl_kv *kv)
{
	enum scl_err e;

	if (kv->cur_puts == 0)
		return SCL_OK;
	kv->cur_puts = 0;
	kv->cur_bytes = 0;
	if (kv->opt.plain) {
		struct outq *q = new_output(SCL_KV_OUT_BATCH);
		struct scl_enc enc;
		if (q == NULL)
			return scl_err_set(SCL_ENOMEM, "output");
		scl_enc_init(&enc, &q->o.msg);
		scl_enc_u8(&enc, SCL_KV_MSG_PLAIN);
		scl_enc_u8(&enc, 1);
		scl_enc_bytes(&enc, kv->sign.public_key, SCL_WRITER_BYTES);
		scl_enc_u64(&enc, ++kv->plain_seqno);
		scl_enc_blob32(&enc, kv->plain.ptr, kv->plain.len);
		q->o.through = kv->ops_total;
		scl_buf_clear(&kv->plain);
		if ((e = enc.err) != SCL_OK) {
			scl_kv_output_dispose(&q->o);
			free(q);
			return e;
		}
		kv->st.batches_out++;
		push_output(kv, q);
		return SCL_OK;
	}
	pthread_mutex_lock(&kv->lock);
	kv->flushes[kv->flush_w++ % FLUSHES_MAX] = kv->ops_total;
	pthread_mutex_unlock(&kv->lock);
	/* Blocks while the actors hold their maximum of batches in flight:
	 * back-pressure, never a drop. */
	return scl_batcher_flush(kv->batcher);
}

static enum scl_err
local_op(struct scl_kv *kv, enum scl_kv_op_kind kind, struct scl_slice key,
    struct scl_slice value, uint64_t now_us)
{
	struct scl_kv_op op = { kind, kv->lamport + 1, key, value };
	struct scl_kv_version ver;
	bool applied;
	size_t framed;
	enum scl_err e;

	if (kv->seal_err != SCL_OK)
		return scl_err_set(kv->seal_err, "sealing failed earlier");
	scl_buf_clear(&kv->op);
	if ((e = scl_kv_op_encode(&kv->op, &op)) != SCL_OK)
		return e;
	framed = kv->op.len + 4;
	if (kv->cur_puts > 0 && (kv->cur_puts >= kv->opt.batch_max_puts ||
				    kv->cur_bytes + framed >
					kv->opt.batch_max_bytes) &&
	    (e = close_batch(kv)) != SCL_OK)
		return e;
	kv->lamport++;
	ver.lamport = kv->lamport;
	memcpy(ver.writer, kv->sign.public_key, SCL_WRITER_BYTES);
	if ((e = kv_map_apply(&kv->map, key, value, kind == SCL_KV_OP_DELETE,
		 &ver, &applied)) != SCL_OK)
		return e;
	if (kv->opt.plain) {
		uint8_t len[4];
		scl_le32_store(len, (uint32_t)kv->op.len);
		if ((e = scl_buf_append(&kv->plain, len, 4)) != SCL_OK ||
		    (e = scl_buf_append(&kv->plain, kv->op.ptr, kv->op.len)) !=
			SCL_OK)
			return e;
	} else if ((e = scl_batcher_put(kv->batcher, scl_buf_slice(&kv->op))) !=
	    SCL_OK) {
		return e;
	}
	if (kv->cur_puts++ == 0)
		kv->cur_opened = now_us;
	kv->cur_bytes += framed;
	kv->ops_total++;
	if (kind == SCL_KV_OP_PUT)
		kv->st.puts++;
	else
		kv->st.deletes++;
	if (kv->cur_puts >= kv->opt.batch_max_puts)
		return close_batch(kv);
	return SCL_OK;
}

enum scl_err
scl_kv_put(struct scl_kv *kv, struct scl_slice key, struct scl_slice value,
    uint64_t now_us)
{
	return local_op(kv, SCL_KV_OP_PUT, key, value, now_us);
}

enum scl_err
scl_kv_delete(struct scl_kv *kv, struct scl_slice key, uint64_t now_us)
{
	return local_op(kv, SCL_KV_OP_DELETE, key, scl_slice_of(NULL, 0),
	    now_us);
}

void
scl_kv_prefetch(const struct scl_kv *kv, struct scl_slice key, int stage)
{
	kv_map_prefetch(&kv->map, kv_map_hash(&kv->map, key), stage);
}

enum scl_err
scl_kv_get(struct scl_kv *kv, struct scl_slice key, struct scl_slice *value,
    struct scl_kv_version *version)
{
	const struct kv_node *n = kv_map_find(&kv->map, key);

	if (n == NULL || n->tomb)
		return SCL_ENOTFOUND;
	*value = scl_slice_of(n->val, n->vlen);
	if (version)
		*version = n->ver;
	return SCL_OK;
}

size_t
scl_kv_scan(struct scl_kv *kv, struct scl_slice prefix, struct scl_slice start,
    struct scl_slice end, size_t limit, scl_kv_scan_fn fn, void *ctx)
{
	const struct kv_node *n;
	size_t visited = 0;

	/* Start at the larger of start and prefix. */
	if (kv_key_cmp(prefix.ptr, prefix.len, start.ptr, start.len) > 0)
		start = prefix;
	for (n = kv_map_seek(&kv->map, start); n; n = kv_map_next(n)) {
		const uint8_t *k = kv_node_key(n);
		if (prefix.len && (n->klen < prefix.len ||
				      memcmp(k, prefix.ptr, prefix.len) != 0))
			break;
		if (end.len && kv_key_cmp(k, n->klen, end.ptr, end.len) >= 0)
			break;
		if (n->tomb)
			continue;
		visited++;
		if (!fn(ctx, scl_slice_of(k, n->klen),
			scl_slice_of(n->val, n->vlen), &n->ver) ||
		    (limit && visited == limit))
			break;
	}
	return visited;
}

enum scl_err
scl_kv_flush(struct scl_kv *kv, uint64_t *through)
{
	*through = kv->ops_total;
	return close_batch(kv);
}

enum scl_err
scl_kv_drain(struct scl_kv *kv)
{
	return kv->batcher ? scl_batcher_finish(kv->batcher) : SCL_OK;
}

/* --- peers ------------------------------------------------------------------ */

static struct peer *
find_peer(struct scl_kv *kv, const uint8_t *writer, bool create)
{
	size_t lo = 0, hi = kv->n_peers;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = memcmp(kv->peers[mid].writer, writer, SCL_WRITER_BYTES);
		if (c == 0)
			return &kv->peers[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!create || kv->n_peers == PEERS_MAX)
		return NULL;
	if ((kv->n_peers & (kv->n_peers - 1)) == 0 || kv->n_peers == 0) {
		size_t cap = kv->n_peers ? kv->n_peers * 2 : 4;
		struct peer *p = realloc(kv->peers, cap * sizeof(*p));
		if (p == NULL)
			return NULL;
		kv->peers = p;
	}
	memmove(&kv->peers[lo + 1], &kv->peers[lo],
	    (kv->n_peers - lo) * sizeof(*kv->peers));
	memset(&kv->peers[lo], 0, sizeof(*kv->peers));
	memcpy(kv->peers[lo].writer, writer, SCL_WRITER_BYTES);
	scl_buf_init(&kv->peers[lo].newest_hb);
	kv->n_peers++;
	kv->st.writers = kv->n_peers;
	return &kv->peers[lo];
}

/* A notice for the host's log (the core has no other voice). */
static void
notice(struct scl_kv *kv, const char *fmt, ...) SCL_PRINTF(2, 3);

static void
notice(struct scl_kv *kv, const char *fmt, ...)
{
	struct outq *q = new_output(SCL_KV_OUT_NOTICE);
	char text[512];
	va_list ap;
	int n;

	if (q == NULL)
		return;
	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0 || scl_buf_set(&q->o.msg, scl_slice_of(text,
		(size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1)) !=
	    SCL_OK) {
		scl_err_clear();
		scl_kv_output_dispose(&q->o);
		free(q);
		return;
	}
	push_output(kv, q);
}

/* How often a given-up gap is asked for still: a server that returns
 * may hold it. */
#define GAP_RETRY_US 10000000

/*
 * Tracks @p's gap (records known to exist, not applied, up to @to): one
 * that no fetch fills for gap_give_up_us is given up, said once, and
 * asked for only every GAP_RETRY_US.  Only a writer that died before
 * storing its last batches, with no live replica holding them, leaves
 * one: every replica's chain of that writer then ends before it.
 */
static uint64_t
gap_retry_us(struct scl_kv *kv, struct peer *p, uint64_t to, uint64_t now)
{
	char hex[2 * SCL_WRITER_BYTES + 1];

	if (p->gap_since == 0)
		p->gap_since = now;
	if (!p->gap_abandoned && now >= p->gap_since + kv->opt.gap_give_up_us) {
		p->gap_abandoned = true;
		kv->st.gaps_abandoned++;
		notice(kv, "writer %.16s: records %llu..%llu are on no server "
		    "and no replica handed them on in %llu s: given up; this "
		    "replica holds that writer through record %llu",
		    scl_hex_encode(hex, p->writer, SCL_WRITER_BYTES),
		    (unsigned long long)p->head.seqno + 1,
		    (unsigned long long)to,
		    (unsigned long long)(kv->opt.gap_give_up_us / 1000000),
		    (unsigned long long)p->head.seqno);
	}
	return p->gap_abandoned ? GAP_RETRY_US : kv->opt.fetch_retry_us;
}

/* A gap closed: a given-up one is said to be filled after all. */
static void
gap_closed(struct scl_kv *kv, struct peer *p)
{
	char hex[2 * SCL_WRITER_BYTES + 1];

	if (p->gap_abandoned)
		notice(kv, "writer %.16s: the records given up on arrived; "
		    "this replica holds that writer through record %llu",
		    scl_hex_encode(hex, p->writer, SCL_WRITER_BYTES),
		    (unsigned long long)p->head.seqno);
	p->gap_since = 0;
	p->gap_abandoned = false;
}

/* Asks the host for what @p is missing, unless a fetch is outstanding. */
static void
maybe_fetch(struct scl_kv *kv, struct peer *p, uint64_t now)
{
	uint64_t to = p->held ? p->held->first - 1 : p->known;
	uint64_t retry;
	struct outq *q;

	if (to <= p->head.seqno) {
		if (p->gap_since || p->gap_abandoned)
			gap_closed(kv, p);
		return;
	}
	retry = gap_retry_us(kv, p, to, now);
	if (p->fetch_to >= to && now < p->fetch_at + retry)
		return;
	if ((q = new_output(SCL_KV_OUT_FETCH)) == NULL)
		return; /* asked again at the next tick */
	memcpy(q->o.writer, p->writer, SCL_WRITER_BYTES);
	q->o.from = p->head.seqno + 1;
	q->o.to = to;
	p->fetch_to = to;
	p->fetch_at = now;
	kv->st.fetches++;
	push_output(kv, q);
}

/* Whether @payload is a well-formed sequence of operations. */
static bool
ops_valid(struct scl_slice payload)
{
	struct scl_slice put;
	bool bad;

	while (scl_batch_next_put(&payload, &put, &bad)) {
		struct scl_kv_op op;
		if (scl_kv_op_decode(&op, put) != SCL_OK)
			return false;
	}
	return !bad;
}

/* Operations decoded ahead of the one being applied: each one's index
 * slot, then its node, is loading while the ones before it apply, so
 * a batch's cache misses overlap (kv_map_prefetch). */
#define APPLY_AHEAD 16

struct pending_op {
	struct scl_kv_op op;
	uint64_t hash;
};

static void
apply_one(struct scl_kv *kv, const struct pending_op *p,
    struct scl_kv_version *ver)
{
	bool applied;

	ver->lamport = p->op.lamport;
	if (p->op.lamport > kv->lamport)
		kv->lamport = p->op.lamport;
	if (kv_map_apply_hashed(&kv->map, p->hash, p->op.key, p->op.value,
		p->op.kind == SCL_KV_OP_DELETE, ver, &applied) != SCL_OK)
		applied = false; /* memory: counted, not fatal */
	if (applied)
		kv->st.ops_applied++;
	else
		kv->st.ops_superseded++;
}

/* Applies a valid sequence of @writer's operations, in order. */
static void
apply_ops(struct scl_kv *kv, struct scl_slice payload, const uint8_t *writer)
{
	struct pending_op q[APPLY_AHEAD];
	struct scl_kv_version ver;
	size_t r = 0, w = 0; /* q[r..w), modulo APPLY_AHEAD */
	bool more = true, bad;

	memcpy(ver.writer, writer, SCL_WRITER_BYTES);
	while (more || r < w) {
		struct pending_op *p = &q[w % APPLY_AHEAD];
		struct scl_slice put;
		if (!more || w - r == APPLY_AHEAD) {
			apply_one(kv, &q[r++ % APPLY_AHEAD], &ver);
			continue;
		}
		if (!scl_batch_next_put(&payload, &put, &bad) ||
		    scl_kv_op_decode(&p->op, put) != SCL_OK) {
			more = false;
			continue;
		}
		p->hash = kv_map_hash(&kv->map, p->op.key);
		kv_map_prefetch(&kv->map, p->hash, 0);
		if (w - r >= APPLY_AHEAD / 2)
			kv_map_prefetch(&kv->map,
			    q[(w - APPLY_AHEAD / 2) % APPLY_AHEAD].hash, 1);
		w++;
	}
}

/* Applies the operations of one verified record.  A payload that does
 * not open or parse is skipped whole: the decision depends only on the
 * signed bytes, so every replica skips it too. */
static void
apply_record(struct scl_kv *kv, const struct scl_record *r)
{
	if (r->type != SCL_RECORD_DATA)
		return;
	scl_buf_clear(&kv->payload);
	if (scl_capsule_opener_open(kv->opener, &kv->payload, r) != SCL_OK ||
	    !ops_valid(scl_buf_slice(&kv->payload))) {
		kv->st.skipped++; /* verified, but not KVS operations */
		scl_err_clear();
		return;
	}
	apply_ops(kv, scl_buf_slice(&kv->payload), r->writer);
}

/* Verifies kv->tmp (which continues @p's head) and applies it. */
static enum scl_err
verify_and_apply(struct scl_kv *kv, struct peer *p)
{
	struct scl_capsule_head head = p->head;
	uint64_t last = kv->tmp.first_seqno + kv->tmp.n - 1;

	if (scl_capsule_batch_verify(&head, kv->meta.owner, &kv->tmp, NULL) !=
	    SCL_OK) {
		kv->st.rejected++;
		return SCL_EVERIFY;
	}
	for (size_t i = 0; i < kv->tmp.n; i++) {
		struct scl_record r;
		if (scl_capsule_record_decode(&r,
			scl_capsule_batch_record(&kv->tmp, i)) == SCL_OK)
			apply_record(kv, &r);
	}
	p->head = head;
	p->gap_since = 0; /* progress: a gap left now is timed afresh */
	kv->st.records_in += kv->tmp.n;
	if (last > p->known)
		p->known = last;
	if (last >= p->newest_seqno &&
	    scl_buf_set(&p->newest_hb, scl_buf_slice(&kv->tmp.heartbeat)) ==
		SCL_OK)
		p->newest_seqno = last;
	return SCL_OK;
}

/* The heartbeat of kv->tmp is the writer's signature over its last
 * record: checked before a batch may take buffer space. */
static bool
signed_by_writer(struct scl_kv *kv)
{
	struct scl_heartbeat hb;
	struct scl_record r;
	uint8_t hash[SCL_HASH_BYTES];

	if (scl_capsule_record_decode(&r, scl_capsule_batch_record(&kv->tmp,
		kv->tmp.n - 1)) != SCL_OK ||
	    scl_capsule_record_hash(hash, &r) != SCL_OK)
		return false;
	/* kv->tmp is this capsule's (receive_batch checked). */
	return scl_capsule_heartbeat_covers(&hb,
		   scl_buf_slice(&kv->tmp.heartbeat), &kv->tmp, hash) == SCL_OK;
}

static void
hold(struct scl_kv *kv, struct peer *p, struct scl_slice msg)
{
	uint64_t first = kv->tmp.first_seqno, last = first + kv->tmp.n - 1;
	struct held **at = &p->held, *h;

	if (kv->held_bytes + msg.len > kv->opt.pending_max_bytes) {
		kv->st.buffer_dropped++; /* fetched again from the servers */
		return;
	}
	while (*at && (*at)->first < first)
		at = &(*at)->next;
	if (*at && (*at)->first == first) {
		kv->st.duplicates++;
		return;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return;
	scl_buf_init(&h->msg);
	if (scl_buf_set(&h->msg, msg) != SCL_OK) {
		free(h);
		return;
	}
	h->first = first;
	h->last = last;
	h->next = *at;
	*at = h;
	kv->held_bytes += msg.len;
	kv->st.buffered++;
	if (last > p->known)
		p->known = last;
}

static enum scl_err receive_batch(struct scl_kv *kv, struct scl_slice msg,
    uint64_t now);

/* Keeps a copy of an applied batch (@msg, records @first..@last) until
 * the servers hold it, for hand-on; a batch the servers hold already, a
 * plain replica's, or one over retain_max_bytes is not kept. */
static void
retain(struct scl_kv *kv, struct peer *p, struct scl_slice msg,
    uint64_t first, uint64_t last, uint64_t now)
{
	struct retained *r;

	if (kv->opt.plain || last <= p->durable)
		return;
	if (kv->retained_bytes + msg.len > kv->opt.retain_max_bytes ||
	    (r = calloc(1, sizeof(*r))) == NULL) {
		kv->st.retain_dropped++;
		return;
	}
	scl_buf_init(&r->msg);
	if (scl_buf_set(&r->msg, msg) != SCL_OK) {
		free(r);
		kv->st.retain_dropped++;
		scl_err_clear();
		return;
	}
	r->first = first;
	r->last = last;
	r->applied_at = now;
	if (p->ret_tail)
		p->ret_tail->next = r;
	else
		p->ret = r;
	p->ret_tail = r;
	if (p->durable_at == 0)
		p->durable_at = now; /* the writer's clock starts here */
	kv->retained_bytes += msg.len;
}

/* Applies buffered batches that now continue the head. */
static void
release_held(struct scl_kv *kv, const uint8_t *writer, uint64_t now)
{
	struct peer *p;
	struct held *h;

	while ((p = find_peer(kv, writer, false)) != NULL &&
	    (h = p->held) != NULL && h->first <= p->head.seqno + 1) {
		p->held = h->next;
		kv->held_bytes -= h->msg.len;
		if (h->last > p->head.seqno)
			(void)receive_batch(kv, scl_buf_slice(&h->msg), now);
		scl_buf_dispose(&h->msg);
		free(h);
	}
}

static enum scl_err
receive_batch(struct scl_kv *kv, struct scl_slice msg, uint64_t now)
{
	struct peer *p;
	uint64_t first, last;
	uint8_t writer[SCL_WRITER_BYTES];

	if (scl_kv_msg_to_batch(msg, &kv->tmp) != SCL_OK ||
	    memcmp(kv->tmp.capsule, kv->name, SCL_NAME_BYTES) != 0) {
		kv->st.rejected++;
		scl_err_clear();
		return SCL_OK;
	}
	if (memcmp(kv->tmp.writer, kv->sign.public_key, SCL_WRITER_BYTES) ==
	    0) {
		kv->st.duplicates++; /* our own, echoed */
		return SCL_OK;
	}
	memcpy(writer, kv->tmp.writer, SCL_WRITER_BYTES);
	first = kv->tmp.first_seqno;
	last = first + kv->tmp.n - 1;
	p = find_peer(kv, writer, false);
	if (p && last <= p->head.seqno) {
		kv->st.duplicates++;
		return SCL_OK;
	}
	if (p == NULL || first > p->head.seqno + 1) {
		/* Ahead of a gap: keep it (if the writer signed it) and
		 * fetch the gap. */
		if (!signed_by_writer(kv)) {
			kv->st.rejected++;
			scl_err_clear();
			return SCL_OK;
		}
		if (p == NULL && (p = find_peer(kv, writer, true)) == NULL)
			return SCL_OK;
		if (first > p->head.seqno + 1) {
			hold(kv, p, msg);
			maybe_fetch(kv, p, now);
			return SCL_OK;
		}
	}
	if (first <= p->head.seqno) /* the records before are applied */
		scl_capsule_batch_trim_front(&kv->tmp,
		    (size_t)(p->head.seqno + 1 - first));
	if (verify_and_apply(kv, p) == SCL_OK) {
		retain(kv, p, msg, first, last, now);
		release_held(kv, writer, now);
	}
	scl_err_clear();
	return SCL_OK;
}

static void
receive_sync(struct scl_kv *kv, struct scl_dec *d, uint64_t now)
{
	uint16_t n = scl_dec_u16(d, "head count");

	kv->st.syncs_in++;
	for (uint16_t i = 0; i < n && i < SYNC_HEADS_MAX && scl_dec_ok(d); i++) {
		struct scl_slice bytes = scl_dec_blob16(d, SCL_HEARTBEAT_BYTES,
		    "heartbeat");
		struct scl_heartbeat hb;
		struct peer *p;
		if (!scl_dec_ok(d))
			break;
		if (scl_capsule_heartbeat_decode(&hb, bytes) != SCL_OK ||
		    memcmp(hb.capsule, kv->name, SCL_NAME_BYTES) != 0 ||
		    scl_capsule_heartbeat_verify(&hb) != SCL_OK) {
			kv->st.rejected++;
			continue;
		}
		if (memcmp(hb.writer, kv->sign.public_key, SCL_WRITER_BYTES) ==
		    0)
			continue;
		if ((p = find_peer(kv, hb.writer, true)) == NULL)
			continue;
		if (hb.seqno > p->known)
			p->known = hb.seqno;
		maybe_fetch(kv, p, now);
	}
	if (n > SYNC_HEADS_MAX || scl_dec_finish(d) != SCL_OK)
		kv->st.rejected++;
	scl_err_clear();
}

static void
receive_plain(struct scl_kv *kv, struct scl_dec *d)
{
	uint8_t writer[SCL_WRITER_BYTES];
	struct scl_slice payload;

	scl_dec_copy(d, writer, SCL_WRITER_BYTES, "writer");
	(void)scl_dec_u64(d, "seqno");
	payload = scl_dec_blob32(d, SCL_PAYLOAD_MAX, "payload");
	if (scl_dec_finish(d) != SCL_OK || !kv->opt.plain ||
	    !ops_valid(payload)) {
		kv->st.rejected++; /* a paranoid replica takes no plain data */
		scl_err_clear();
		return;
	}
	if (memcmp(writer, kv->sign.public_key, SCL_WRITER_BYTES) != 0)
		apply_ops(kv, payload, writer);
}

enum scl_err
scl_kv_receive(struct scl_kv *kv, struct scl_slice msg, uint64_t now_us)
{
	struct scl_dec d;

	scl_dec_init(&d, msg, "KVS message");
	switch (kv_msg_kind(&d)) {
	case SCL_KV_MSG_BATCH:
		return receive_batch(kv, msg, now_us);
	case SCL_KV_MSG_SYNC:
		receive_sync(kv, &d, now_us);
		return SCL_OK;
	case SCL_KV_MSG_PLAIN:
		receive_plain(kv, &d);
		return SCL_OK;
	default:
		kv->st.rejected++;
		scl_err_clear();
		return SCL_OK;
	}
}

/* --- time ---------------------------------------------------------------------- */

/*
 * A SYNC: our newest heartbeat and the newest we verified of up to
 * SYNC_HEADS_MAX - 1 other writers, taken in turn from where the last SYNC
 * stopped, so that every writer's head goes round however many there are
 * (each restart of a worker adds one): a replica that started after a
 * writer died learns its head from any peer within a few periods.
 */
static void
emit_sync(struct scl_kv *kv)
{
	struct outq *q = new_output(SCL_KV_OUT_SYNC);
	size_t n = 0, with = 0, at = kv->sync_cursor;
	struct scl_enc e;
	bool own;

	if (q == NULL)
		return;
	for (size_t i = 0; i < kv->n_peers; i++)
		with += kv->peers[i].newest_hb.len > 0;
	pthread_mutex_lock(&kv->lock);
	own = kv->own_hb.len > 0;
	n = with < SYNC_HEADS_MAX - (size_t)own ? with
						: SYNC_HEADS_MAX - (size_t)own;
	scl_enc_init(&e, &q->o.msg);
	scl_enc_u8(&e, SCL_KV_MSG_SYNC);
	scl_enc_u8(&e, 1);
	scl_enc_u16(&e, (uint16_t)(n + own));
	if (own)
		scl_enc_blob16(&e, kv->own_hb.ptr, kv->own_hb.len);
	pthread_mutex_unlock(&kv->lock);
	for (size_t k = 0, seen = 0; k < n && seen < kv->n_peers; seen++) {
		const struct peer *p = &kv->peers[at++ % kv->n_peers];
		if (p->newest_hb.len) {
			scl_enc_blob16(&e, p->newest_hb.ptr, p->newest_hb.len);
			k++;
		}
	}
	kv->sync_cursor = kv->n_peers ? at % kv->n_peers : 0;
	if (e.err != SCL_OK || n + own == 0) {
		scl_kv_output_dispose(&q->o);
		free(q);
		return;
	}
	kv->st.syncs_out++;
	push_output(kv, q);
}

/* Bytes of STORE outputs one tick may queue: the host's pushes go at
 * the servers' pace, and the next tick queues more. */
#define HANDON_TICK_BYTES ((size_t)16 << 20)

/*
 * Hands on, in chain order, @p's retained batches that the servers still
 * lack handon_after_us after they were applied, once the writer's
 * durable head has stood still as long (a live writer's rises as its
 * appends land); each again every handon_after_us until the servers
 * hold it.  The servers verify a handed-on batch like any append.
 */
static void
hand_on(struct scl_kv *kv, struct peer *p, uint64_t now, size_t *budget)
{
	uint64_t wait = kv->opt.handon_after_us;

	if (p->ret == NULL || now < p->durable_at + wait)
		return;
	for (struct retained *r = p->ret; r && *budget > 0; r = r->next) {
		struct outq *q;
		if (now < r->applied_at + wait)
			break; /* the ones after it are younger */
		if (r->handed_at && now < r->handed_at + wait)
			continue;
		if ((q = new_output(SCL_KV_OUT_STORE)) == NULL ||
		    scl_buf_set(&q->o.msg, scl_buf_slice(&r->msg)) != SCL_OK) {
			if (q) {
				scl_kv_output_dispose(&q->o);
				free(q);
			}
			scl_err_clear();
			return; /* the next tick tries again */
		}
		memcpy(q->o.writer, p->writer, SCL_WRITER_BYTES);
		q->o.from = r->first;
		q->o.to = r->last;
		r->handed_at = now;
		kv->st.handed_on++;
		*budget -= r->msg.len < *budget ? r->msg.len : *budget;
		push_output(kv, q);
	}
}

void
scl_kv_durable(struct scl_kv *kv, const uint8_t writer[SCL_WRITER_BYTES],
    uint64_t seqno, uint64_t now_us)
{
	struct peer *p = find_peer(kv, writer, false);

	if (p == NULL || seqno <= p->durable)
		return;
	p->durable = seqno;
	p->durable_at = now_us;
	release_retained(kv, p, seqno);
}

enum scl_err
scl_kv_tick(struct scl_kv *kv, uint64_t now_us)
{
	size_t budget = HANDON_TICK_BYTES;
	enum scl_err e;

	if (kv->cur_puts && now_us >= kv->cur_opened + kv->opt.batch_delay_us &&
	    (e = close_batch(kv)) != SCL_OK)
		return e;
	if (now_us >= kv->next_sync) {
		kv->next_sync = now_us + kv->opt.sync_every_us;
		if (!kv->opt.plain)
			emit_sync(kv);
	}
	for (size_t i = 0; i < kv->n_peers; i++) {
		maybe_fetch(kv, &kv->peers[i], now_us);
		hand_on(kv, &kv->peers[i], now_us, &budget);
	}
	return SCL_OK;
}

bool
scl_kv_sealing(struct scl_kv *kv)
{
	bool busy;

	pthread_mutex_lock(&kv->lock);
	busy = kv->flush_r != kv->flush_w;
	pthread_mutex_unlock(&kv->lock);
	return busy;
}

uint64_t
scl_kv_next_tick(const struct scl_kv *kv)
{
	uint64_t t = kv->next_sync;

	if (kv->cur_puts && kv->cur_opened + kv->opt.batch_delay_us < t)
		t = kv->cur_opened + kv->opt.batch_delay_us;
	return t;
}

/* --- inspection ------------------------------------------------------------------ */

uint64_t
scl_kv_through(const struct scl_kv *kv)
{
	return kv->ops_total;
}

void
scl_kv_stats(const struct scl_kv *kv, struct scl_kv_stats *out)
{
	pthread_mutex_lock((pthread_mutex_t *)&kv->lock);
	*out = kv->st;
	pthread_mutex_unlock((pthread_mutex_t *)&kv->lock);
	out->keys = kv->map.keys - kv->map.tombstones;
	out->tombstones = kv->map.tombstones;
	out->writers = kv->n_peers;
	out->lamport = kv->lamport;
}

size_t
scl_kv_peers(const struct scl_kv *kv, struct scl_kv_peer *out, size_t max)
{
	size_t n = 0;

	for (; n < kv->n_peers && n < max; n++) {
		const struct peer *p = &kv->peers[n];
		memcpy(out[n].writer, p->writer, SCL_WRITER_BYTES);
		out[n].applied = p->head.seqno;
		out[n].known = p->known;
		out[n].held = 0;
		for (const struct held *h = p->held; h; h = h->next)
			out[n].held++;
		out[n].durable = p->durable;
		out[n].retained = 0;
		for (const struct retained *r = p->ret; r; r = r->next)
			out[n].retained++;
		out[n].gap_abandoned = p->gap_abandoned;
	}
	return n;
}

void
scl_kv_digest(struct scl_kv *kv, uint8_t out[SCL_HASH_BYTES])
{
	struct scl_hash_state st;
	uint8_t num[8];

	scl_hash_init(&st);
	for (const struct kv_node *n = kv_map_seek(&kv->map,
		 scl_slice_of(NULL, 0));
	     n; n = kv_map_next(n)) {
		if (n->tomb)
			continue;
		scl_le64_store(num, n->klen);
		scl_hash_update(&st, num, 8);
		scl_hash_update(&st, kv_node_key(n), n->klen);
		scl_le64_store(num, n->vlen);
		scl_hash_update(&st, num, 8);
		scl_hash_update(&st, n->val, n->vlen);
		scl_le64_store(num, n->ver.lamport);
		scl_hash_update(&st, num, 8);
		scl_hash_update(&st, n->ver.writer, SCL_WRITER_BYTES);
	}
	scl_hash_final(&st, out);
}
