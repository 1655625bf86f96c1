/*
 * core_kv.c - the KVS inside the trusted core: requests from clients
 * (through the host), messages from peers, and time, all as ring
 * messages; every reply carries the replica's queued outputs for the
 * host to send (docs/PROTOCOL.md "Worker core").
 *
 * KV reply: u8 more (outputs left for the next call), u8 sealing
 * (batches still on the actors), u64 through (own operations so far),
 * u64 next tick (µs), u16 n outputs, n x (u8 kind, u64 through,
 * 32 writer, u64 from, u64 to, blob32 message), blob32 results.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scl/clock.h"
#include "scl/codec.h"
#include "worker_int.h"

#define STATUS_PEERS_MAX 16

enum scl_err
scl_worker__kv_open(struct scl_worker_core *c, struct scl_slice in)
{
	struct scl_kv_options o;
	struct scl_dec d;

	if (c->writer == NULL)
		return scl_err_set(SCL_EINVAL, "core is not attested yet");
	if (c->kv)
		return scl_err_set(SCL_EINVAL, "the KVS is open already");
	if (c->actors == NULL)
		return scl_err_set(SCL_EINVAL, "the core has no crypto actors");
	memset(&o, 0, sizeof(o));
	scl_dec_init(&d, in, "KVS parameters");
	o.batch_max_puts = scl_dec_u32(&d, "batch size");
	o.batch_delay_us = scl_dec_u64(&d, "batch delay");
	o.plain = scl_dec_u8(&d, "plain") != 0;
	o.record_version = scl_dec_u16(&d, "record version");
	if (scl_dec_finish(&d) != SCL_OK)
		return d.err;
	o.meta = scl_buf_slice(&c->meta_bytes);
	o.keys = c->keys;
	o.sign = &c->sign;
	o.cert = scl_buf_slice(&c->cert);
	o.actors = c->actors;
	return scl_kv_new(&c->kv, &o);
}

static bool
scan_out(void *ctx, struct scl_slice key, struct scl_slice value,
    const struct scl_kv_version *ver)
{
	struct scl_enc *e = ctx;

	(void)ver;
	scl_enc_blob16(e, key.ptr, key.len);
	scl_enc_blob32(e, value.ptr, value.len);
	return e->err == SCL_OK;
}

/* Runs one request, appending its result to @e. */
static void
run_op(struct scl_worker_core *c, const struct scl_kvreq *r, uint64_t now,
    struct scl_enc *e)
{
	struct scl_slice v;
	struct scl_kv_version ver;
	enum scl_err err;
	uint64_t through;

	switch (r->op) {
	case SCL_KVREQ_GET:
		if (scl_kv_get(c->kv, r->key, &v, &ver) == SCL_OK) {
			scl_enc_u8(e, 1);
			scl_enc_u64(e, ver.lamport);
			scl_enc_bytes(e, ver.writer, 32);
			scl_enc_blob32(e, v.ptr, v.len);
		} else {
			scl_enc_u8(e, 0);
		}
		return;
	case SCL_KVREQ_PUT:
	case SCL_KVREQ_DELETE:
		err = r->op == SCL_KVREQ_PUT
		    ? scl_kv_put(c->kv, r->key, r->value, now)
		    : scl_kv_delete(c->kv, r->key, now);
		scl_enc_u8(e, err == SCL_OK ? 0 : 1);
		if (err != SCL_OK) {
			const char *why = scl_err_last();
			scl_enc_blob16(e, why, strlen(why) > 1024 ? 1024
								  : strlen(why));
		}
		return;
	case SCL_KVREQ_SCAN: {
		size_t at = e->buf->len, n;
		scl_enc_u32(e, 0);
		n = scl_kv_scan(c->kv, r->prefix, r->start, r->end, r->limit,
		    scan_out, e);
		if (e->err == SCL_OK)
			scl_le32_store(e->buf->ptr + at, (uint32_t)n);
		return;
	}
	case SCL_KVREQ_FLUSH:
		if (scl_kv_flush(c->kv, &through) != SCL_OK)
			through = 0;
		scl_enc_u64(e, through);
		return;
	}
}

/* The reply's header and queued outputs, then @results. */
static enum scl_err
kv_reply(struct scl_worker_core *c, struct scl_buf *body,
    struct scl_slice results)
{
	struct scl_kv_stats st;
	struct scl_enc e;
	size_t count_at, bytes = 0;
	uint16_t n = 0;
	bool more = false;

	scl_kv_stats(c->kv, &st);
	scl_enc_init(&e, body);
	scl_enc_u8(&e, 0);		/* more: patched below */
	scl_enc_u8(&e, 0);		/* sealing: patched below */
	scl_enc_u64(&e, st.puts + st.deletes);
	scl_enc_u64(&e, scl_kv_next_tick(c->kv));
	count_at = body->len;
	scl_enc_u16(&e, 0);
	while (n < UINT16_MAX) {
		if (bytes > OUTPUTS_MAX_BYTES) {
			more = true;
			break;
		}
		if (!scl_kv_next_output(c->kv, &c->kv_out))
			break;
		scl_enc_u8(&e, (uint8_t)c->kv_out.kind);
		scl_enc_u64(&e, c->kv_out.through);
		scl_enc_bytes(&e, c->kv_out.writer, 32);
		scl_enc_u64(&e, c->kv_out.from);
		scl_enc_u64(&e, c->kv_out.to);
		scl_enc_blob32(&e, c->kv_out.msg.ptr, c->kv_out.msg.len);
		bytes += c->kv_out.msg.len;
		n++;
	}
	scl_enc_blob32(&e, results.ptr, results.len);
	if (e.err != SCL_OK)
		return e.err;
	body->ptr[0] = more;
	body->ptr[1] = scl_kv_sealing(c->kv);
	scl_le16_store(body->ptr + count_at, n);
	return SCL_OK;
}

/* Requests are decoded this far ahead of the one that runs, so that
 * each key's index slot and entry are loading meanwhile (scl_kv_prefetch):
 * with 100k keys and ten processes on two CPUs, nearly every lookup
 * missed the cache, one after the other. */
#define RUN_AHEAD 16

static bool
has_key(const struct scl_kvreq *r)
{
	return r->op == SCL_KVREQ_GET || r->op == SCL_KVREQ_PUT ||
	    r->op == SCL_KVREQ_DELETE;
}

/* Runs @n requests from @d, in order, until one does not decode or the
 * results fail. */
static void
run_group(struct scl_worker_core *c, struct scl_dec *d, uint32_t n,
    uint64_t now, struct scl_enc *e)
{
	struct scl_kvreq q[RUN_AHEAD];
	uint32_t r = 0, w = 0; /* q[r..w), modulo RUN_AHEAD */
	bool more = true;

	while ((more || r < w) && e->err == SCL_OK) {
		struct scl_kvreq *p = &q[w % RUN_AHEAD];
		if (!more || w - r == RUN_AHEAD) {
			run_op(c, &q[r++ % RUN_AHEAD], now, e);
			continue;
		}
		if (w == n || !scl_dec_ok(d) || scl_kvreq_decode(d, p) !=
		    SCL_OK) {
			more = false;
			continue;
		}
		if (has_key(p))
			scl_kv_prefetch(c->kv, p->key, 0);
		if (w - r >= RUN_AHEAD / 2 &&
		    has_key(&q[(w - RUN_AHEAD / 2) % RUN_AHEAD]))
			scl_kv_prefetch(c->kv,
			    q[(w - RUN_AHEAD / 2) % RUN_AHEAD].key, 1);
		w++;
	}
}

/*
 * Requests come in groups (one per client request, so that the host can
 * hand many clients' requests over in one ring round trip): u64 now,
 * u16 groups, each u32 n and n requests.  Results: per group, a blob32
 * of its results in order.
 */
enum scl_err
scl_worker__kv_ops(struct scl_worker_core *c, struct scl_slice in,
    struct scl_buf *body)
{
	struct scl_buf results;
	struct scl_enc e;
	struct scl_dec d;
	uint64_t now;
	uint16_t groups;
	enum scl_err r;

	if (c->kv == NULL)
		return scl_err_set(SCL_EINVAL, "the KVS is not open");
	scl_dec_init(&d, in, "KVS requests");
	now = scl_dec_u64(&d, "time");
	groups = scl_dec_u16(&d, "groups");
	scl_buf_init(&results);
	scl_enc_init(&e, &results);
	for (uint16_t g = 0; g < groups && scl_dec_ok(&d) && e.err == SCL_OK;
	     g++) {
		uint32_t n = scl_dec_u32(&d, "request count");
		size_t at = results.len;
		scl_enc_u32(&e, 0); /* the group's length, patched below */
		run_group(c, &d, n, now, &e);
		if (e.err == SCL_OK)
			scl_le32_store(results.ptr + at,
			    (uint32_t)(results.len - at - 4));
	}
	r = scl_dec_finish(&d);
	if (r == SCL_OK)
		r = e.err;
	if (r == SCL_OK)
		r = kv_reply(c, body, scl_buf_slice(&results));
	scl_buf_dispose_secret(&results); /* plaintext values */
	return r;
}

enum scl_err
scl_worker__kv_receive(struct scl_worker_core *c, struct scl_slice in,
    struct scl_buf *body)
{
	struct scl_dec d;
	struct scl_slice msgs[RECEIVE_MAX];
	uint64_t now;
	uint16_t n;
	enum scl_err r;

	if (c->kv == NULL)
		return scl_err_set(SCL_EINVAL, "the KVS is not open");
	/* The whole request is checked before any message is taken. */
	scl_dec_init(&d, in, "KVS messages");
	now = scl_dec_u64(&d, "time");
	n = scl_dec_u16(&d, "message count");
	if (scl_dec_ok(&d) && (n == 0 || n > RECEIVE_MAX))
		return scl_dec_fail(&d, SCL_EFORMAT, "%u messages (1 to %d)", n,
		    RECEIVE_MAX);
	for (uint16_t i = 0; i < n && scl_dec_ok(&d); i++)
		msgs[i] = scl_dec_blob32(&d, MSG_MAX, "message");
	if ((r = scl_dec_finish(&d)) != SCL_OK)
		return r;
	/* A message that does not verify is counted and dropped by the
	 * replica; only a failure of the core itself stops here. */
	for (uint16_t i = 0; i < n; i++)
		if ((r = scl_kv_receive(c->kv, msgs[i], now)) != SCL_OK)
			return r;
	return kv_reply(c, body, scl_slice_of(NULL, 0));
}

enum scl_err
scl_worker__kv_tick(struct scl_worker_core *c, struct scl_slice in,
    struct scl_buf *body)
{
	struct scl_dec d;
	uint64_t now;
	enum scl_err r;

	if (c->kv == NULL)
		return scl_err_set(SCL_EINVAL, "the KVS is not open");
	scl_dec_init(&d, in, "KVS tick");
	now = scl_dec_u64(&d, "time");
	if ((r = scl_dec_finish(&d)) != SCL_OK ||
	    (r = scl_kv_tick(c->kv, now)) != SCL_OK)
		return r;
	return kv_reply(c, body, scl_slice_of(NULL, 0));
}

/* The state API as a lambda in the core sees it, timed by the core. */
enum scl_err
scl_worker__kv_local(struct scl_worker_core *c, struct scl_slice in,
    struct scl_buf *body)
{
	struct scl_dec d;
	uint64_t t0;
	char key[32], value[100];
	uint8_t result[8];
	uint64_t now;
	uint32_t n;
	enum scl_err r = SCL_OK;

	if (c->kv == NULL)
		return scl_err_set(SCL_EINVAL, "the KVS is not open");
	scl_dec_init(&d, in, "local operations");
	now = scl_dec_u64(&d, "time");
	n = scl_dec_u32(&d, "count");
	if (!scl_dec_ok(&d) || scl_dec_remaining(&d) != (size_t)n * 5)
		return scl_dec_fail(&d, SCL_EFORMAT, "%u operations", n);
	memset(value, 'v', sizeof(value));
	t0 = scl_clock_mono_ns();
	for (uint32_t i = 0; i < n && r == SCL_OK; i++) {
		uint8_t op = scl_dec_u8(&d, "op");
		uint32_t k = scl_dec_u32(&d, "key");
		struct scl_slice v;
		int len = snprintf(key, sizeof(key), "user%012u", k);
		if (op == SCL_KVREQ_PUT) {
			r = scl_kv_put(c->kv, scl_slice_of(key, (size_t)len),
			    scl_slice_of(value, sizeof(value)), now);
		} else if (scl_kv_get(c->kv, scl_slice_of(key, (size_t)len),
			       &v, NULL) == SCL_OK && v.len == 0) {
			r = scl_err_set(SCL_EFORMAT, "empty value");
		}
	}
	t0 = scl_clock_mono_ns() - t0;
	if (r != SCL_OK)
		return r;
	scl_le64_store(result, t0);
	return kv_reply(c, body, scl_slice_of(result, sizeof(result)));
}

/* ,"peers":[...]} : how far this replica has each other writer, so an
 * operator can see which writer a lagging replica waits for. */
static enum scl_err
kv_peers_json(const struct scl_kv *kv, struct scl_buf *body)
{
	struct scl_kv_peer peers[STATUS_PEERS_MAX];
	size_t np = scl_kv_peers(kv, peers, STATUS_PEERS_MAX);
	enum scl_err e = scl_buf_append(body, ",\"peers\":[", 10);
	char hex[2 * SCL_WRITER_BYTES + 1], text[160];

	for (size_t i = 0; i < np && e == SCL_OK; i++) {
		int n = snprintf(text, sizeof(text),
		    "%s{\"writer\":\"%.16s\",\"applied\":%llu,"
		    "\"known\":%llu,\"held\":%zu}",
		    i ? "," : "", scl_hex_encode(hex, peers[i].writer,
			SCL_WRITER_BYTES),
		    (unsigned long long)peers[i].applied,
		    (unsigned long long)peers[i].known, peers[i].held);
		e = scl_buf_append(body, text, (size_t)n);
	}
	return e ? e : scl_buf_append(body, "]}", 2);
}

enum scl_err
scl_worker__kv_stats(struct scl_worker_core *c, struct scl_buf *body)
{
	struct scl_kv_stats s;
	uint8_t digest[SCL_HASH_BYTES];
	char hex[2 * SCL_HASH_BYTES + 1], text[1024];
	enum scl_err e;
	int n;

	if (c->kv == NULL)
		return scl_err_set(SCL_EINVAL, "the KVS is not open");
	scl_kv_stats(c->kv, &s);
	scl_kv_digest(c->kv, digest);
	n = snprintf(text, sizeof(text),
	    "{\"keys\":%zu,\"tombstones\":%zu,\"writers\":%zu,"
	    "\"lamport\":%llu,\"puts\":%llu,\"deletes\":%llu,"
	    "\"batches_out\":%llu,\"records_in\":%llu,\"ops_applied\":%llu,"
	    "\"ops_superseded\":%llu,\"duplicates\":%llu,\"rejected\":%llu,"
	    "\"skipped\":%llu,"
	    "\"buffered\":%llu,\"buffer_dropped\":%llu,\"fetches\":%llu,"
	    "\"syncs_in\":%llu,\"syncs_out\":%llu,\"digest\":\"%s\"",
	    s.keys, s.tombstones, s.writers, (unsigned long long)s.lamport,
	    (unsigned long long)s.puts, (unsigned long long)s.deletes,
	    (unsigned long long)s.batches_out,
	    (unsigned long long)s.records_in,
	    (unsigned long long)s.ops_applied,
	    (unsigned long long)s.ops_superseded,
	    (unsigned long long)s.duplicates, (unsigned long long)s.rejected,
	    (unsigned long long)s.skipped,
	    (unsigned long long)s.buffered,
	    (unsigned long long)s.buffer_dropped,
	    (unsigned long long)s.fetches, (unsigned long long)s.syncs_in,
	    (unsigned long long)s.syncs_out,
	    scl_hex_encode(hex, digest, sizeof(digest)));
	if ((e = scl_buf_append(body, text, (size_t)n)) != SCL_OK)
		return e;
	return kv_peers_json(c->kv, body);
}
