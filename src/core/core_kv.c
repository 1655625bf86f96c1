/*
 * core_kv.c - the KVS inside the trusted core: requests from clients
 * (through the host), messages from peers, and time, all as ring
 * messages; every reply carries the replica's queued outputs for the
 * host to send (docs/PROTOCOL.md "Worker core", layouts in msg.c).
 *
 * Each client request is a group, run whole or refused whole: one client's
 * malformed or oversized request is refused with its own reason, and
 * neither it nor the other clients' requests in the same call are
 * harmed.
 */
#include <stdio.h>
#include <string.h>

#include "core_int.h"
#include "scl/clock.h"
#include "scl/codec.h"

#define STATUS_PEERS_MAX 16

static enum scl_err
kv_needed(const struct scl_core *c)
{
	return c->kv ? SCL_OK : scl_err_set(SCL_EINVAL, "the KVS is not open");
}

enum scl_err
scl_core__kv_open(struct scl_core *c, struct scl_slice in)
{
	struct scl_core_kv_params p;
	struct scl_kv_options o;
	enum scl_err e;

	if (c->writer == NULL)
		return scl_err_set(SCL_EINVAL, "core is not attested yet");
	if (c->kv)
		return scl_err_set(SCL_EINVAL, "the KVS is open already");
	if (c->actors == NULL)
		return scl_err_set(SCL_EINVAL, "the core has no crypto actors");
	if ((e = scl_core_kv_params_decode(&p, in)) != SCL_OK)
		return e;
	memset(&o, 0, sizeof(o));
	o.batch_max_puts = p.batch_max_puts;
	o.batch_delay_us = p.batch_delay_us;
	o.plain = p.plain;
	o.record_version = p.record_version;
	o.meta = scl_buf_slice(&c->meta_bytes);
	o.keys = c->keys;
	o.sign = &c->sign;
	o.cert = scl_buf_slice(&c->cert);
	o.actors = c->actors;
	return scl_kv_new(&c->kv, &o);
}

/* The reply's header and queued outputs (up to SCL_CORE_OUTPUTS_MAX_BYTES
 * of them: "more" says the rest waits), then @results. */
static enum scl_err
kv_reply(struct scl_core *c, struct scl_slice results)
{
	struct scl_core_kv_reply head;
	size_t bytes = 0;
	uint16_t n = 0;
	enum scl_err e;

	memset(&head, 0, sizeof(head));
	if ((e = scl_core_kv_reply_begin(&c->out)) != SCL_OK)
		return e;
	while (n < UINT16_MAX) {
		struct scl_core_output o;
		if (bytes > SCL_CORE_OUTPUTS_MAX_BYTES) {
			head.more = true;
			break;
		}
		if (!scl_kv_next_output(c->kv, &c->kv_out))
			break;
		o.kind = (uint8_t)c->kv_out.kind;
		o.through = c->kv_out.through;
		o.writer = c->kv_out.writer;
		o.from = c->kv_out.from;
		o.to = c->kv_out.to;
		o.msg = scl_buf_slice(&c->kv_out.msg);
		if ((e = scl_core_kv_reply_add(&c->out, &o)) != SCL_OK)
			return e;
		bytes += o.msg.len;
		n++;
	}
	head.through = scl_kv_through(c->kv);
	head.sealing = scl_kv_sealing(c->kv);
	head.next_tick_us = scl_kv_next_tick(c->kv);
	return scl_core_kv_reply_finish(&c->out, &head, results);
}

/* Runs one client request, whole or not at all, into c->results. */
static enum scl_err
run_group(struct scl_core *c, const struct scl_core_group *g, uint64_t now)
{
	size_t start = scl_core_group_result_begin(&c->results);
	uint64_t through = 0;
	enum scl_err e;

	e = scl_kvreq_check(g->ops, g->n, NULL);
	if (e == SCL_OK)
		e = scl_kv_run(c->kv, g->ops, g->n, now, &c->results);
	/* DURABLE: the batch holding these writes is sealed now, and the
	 * host holds the reply until the servers hold `through`. */
	if (e == SCL_OK && (g->flags & SCL_CORE_GROUP_DURABLE))
		e = scl_kv_flush(c->kv, &through);
	if (e == SCL_OK)
		through = scl_kv_through(c->kv);
	if (e == SCL_ENOMEM)
		return e; /* the core itself failed: the whole call does */
	e = scl_core_group_result_end(&c->results, start, e,
	    e == SCL_OK ? "" : scl_err_last(), through);
	scl_err_clear();
	return e;
}

enum scl_err
scl_core__kv_ops(struct scl_core *c, struct scl_slice in)
{
	struct scl_core_group g;
	struct scl_slice groups;
	uint64_t now;
	uint16_t n;
	enum scl_err e;

	if ((e = kv_needed(c)) != SCL_OK ||
	    (e = scl_core_ops_decode(&now, &n, &groups, in)) != SCL_OK)
		return e;
	scl_buf_clear(&c->results);
	while (scl_core_group_next(&groups, &g))
		if ((e = run_group(c, &g, now)) != SCL_OK)
			break;
	if (e == SCL_OK)
		e = kv_reply(c, scl_buf_slice(&c->results));
	scl_buf_wipe(&c->results); /* plaintext values */
	return e;
}

enum scl_err
scl_core__kv_receive(struct scl_core *c, struct scl_slice in)
{
	struct scl_slice msgs[SCL_CORE_RECEIVE_MAX];
	uint64_t now;
	uint16_t n;
	enum scl_err e;

	/* The whole request is checked before any message is taken. */
	if ((e = kv_needed(c)) != SCL_OK ||
	    (e = scl_core_receive_decode(&now, &n, msgs, in)) != SCL_OK)
		return e;
	/* A message that does not verify is counted and dropped by the
	 * replica; only a failure of the core itself stops here. */
	for (uint16_t i = 0; i < n; i++)
		if ((e = scl_kv_receive(c->kv, msgs[i], now)) != SCL_OK)
			return e;
	return kv_reply(c, scl_slice_of(NULL, 0));
}

enum scl_err
scl_core__kv_tick(struct scl_core *c, struct scl_slice in)
{
	uint64_t now;
	enum scl_err e;

	if ((e = kv_needed(c)) != SCL_OK ||
	    (e = scl_core_tick_decode(&now, in)) != SCL_OK ||
	    (e = scl_kv_tick(c->kv, now)) != SCL_OK)
		return e;
	return kv_reply(c, scl_slice_of(NULL, 0));
}

enum scl_err
scl_core__kv_durable(struct scl_core *c, struct scl_slice in)
{
	struct scl_core_durable d;
	struct scl_slice list;
	uint64_t now;
	uint16_t n;
	enum scl_err e;

	if ((e = kv_needed(c)) != SCL_OK ||
	    (e = scl_core_durable_decode(&now, &n, &list, in)) != SCL_OK)
		return e;
	while (scl_core_durable_next(&list, &d))
		scl_kv_durable(c->kv, d.writer, d.seqno, now);
	return kv_reply(c, scl_slice_of(NULL, 0));
}

/* Requests run as a lambda in the core would run them, timed by the
 * core: what the state API costs without the host, the rings or the
 * results' copies. */
enum scl_err
scl_core__kv_timed(struct scl_core *c, struct scl_slice in)
{
	struct scl_slice ops;
	uint8_t result[8];
	uint64_t now, t0;
	uint32_t n;
	enum scl_err e;

	if ((e = kv_needed(c)) != SCL_OK ||
	    (e = scl_core_timed_decode(&now, &n, &ops, in)) != SCL_OK ||
	    (e = scl_kvreq_check(ops, n, NULL)) != SCL_OK)
		return e;
	t0 = scl_clock_mono_ns();
	e = scl_kv_run(c->kv, ops, n, now, NULL);
	t0 = scl_clock_mono_ns() - t0;
	if (e != SCL_OK)
		return e;
	scl_le64_store(result, t0);
	return kv_reply(c, scl_slice_of(result, sizeof(result)));
}

/* ,"peers":[...]} : how far this replica has each other writer, so an
 * operator can see which writer a lagging replica waits for. */
static enum scl_err
kv_peers_json(const struct scl_kv *kv, struct scl_buf *body)
{
	struct scl_kv_peer peers[STATUS_PEERS_MAX];
	size_t np = scl_kv_peers(kv, peers, STATUS_PEERS_MAX);
	enum scl_err e = scl_buf_append(body, ",\"peers\":[", 10);
	char hex[2 * SCL_WRITER_BYTES + 1], text[320]; /* > any entry */

	for (size_t i = 0; i < np && e == SCL_OK; i++) {
		int n = snprintf(text, sizeof(text),
		    "%s{\"writer\":\"%.16s\",\"applied\":%llu,"
		    "\"known\":%llu,\"held\":%zu,\"durable\":%llu,"
		    "\"retained\":%zu,\"gap_given_up\":%s}",
		    i ? "," : "", scl_hex_encode(hex, peers[i].writer,
			SCL_WRITER_BYTES),
		    (unsigned long long)peers[i].applied,
		    (unsigned long long)peers[i].known, peers[i].held,
		    (unsigned long long)peers[i].durable, peers[i].retained,
		    peers[i].gap_abandoned ? "true" : "false");
		SCL_ASSERT(n > 0 && (size_t)n < sizeof(text));
		e = scl_buf_append(body, text, (size_t)n);
	}
	return e ? e : scl_buf_append(body, "]}", 2);
}

enum scl_err
scl_core__kv_stats(struct scl_core *c, struct scl_slice in)
{
	struct scl_kv_stats s;
	uint8_t digest[SCL_HASH_BYTES];
	char hex[2 * SCL_HASH_BYTES + 1], text[1024];
	enum scl_err e;
	int n;

	if ((e = kv_needed(c)) != SCL_OK)
		return e;
	if (in.len != 0)
		return scl_err_set(SCL_EFORMAT, "KV_STATS takes no body");
	scl_kv_stats(c->kv, &s);
	scl_kv_digest(c->kv, digest);
	n = snprintf(text, sizeof(text),
	    "{\"keys\":%zu,\"tombstones\":%zu,\"writers\":%zu,"
	    "\"lamport\":%llu,\"puts\":%llu,\"deletes\":%llu,"
	    "\"batches_out\":%llu,\"records_in\":%llu,\"ops_applied\":%llu,"
	    "\"ops_superseded\":%llu,\"duplicates\":%llu,\"rejected\":%llu,"
	    "\"skipped\":%llu,"
	    "\"buffered\":%llu,\"buffer_dropped\":%llu,\"fetches\":%llu,"
	    "\"syncs_in\":%llu,\"syncs_out\":%llu,\"handed_on\":%llu,"
	    "\"retain_dropped\":%llu,\"gaps_abandoned\":%llu,"
	    "\"digest\":\"%s\"",
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
	    (unsigned long long)s.handed_on,
	    (unsigned long long)s.retain_dropped,
	    (unsigned long long)s.gaps_abandoned,
	    scl_hex_encode(hex, digest, sizeof(digest)));
	SCL_ASSERT(n > 0 && (size_t)n < sizeof(text)); /* room for all */
	if ((e = scl_buf_append(&c->out, text, (size_t)n)) != SCL_OK)
		return e;
	return kv_peers_json(c->kv, &c->out);
}
