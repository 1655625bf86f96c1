/*
 * cmd_remote.c - the capsule commands against a capsule's servers:
 * appends acknowledged by a write quorum, and reads, verification and
 * proofs that believe no single server.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "capsule_cli.h"

#define WINDOW 16

/* The capsule's read quorum among the servers this command talks to. */
static unsigned
local_read_quorum(const struct local *l)
{
	return scl_capsule_read_quorum(&l->meta, scl_client_count(l->client));
}

/*
 * @writer's newest head the servers prove, asking a read quorum, checked
 * against what this client saw.  A quorum may miss the one server that
 * holds a head seen before, so a head older than that is asked of every
 * server before it counts as a rollback.
 */
static enum scl_err
checked_heads(struct local *l, const uint8_t *writer,
    struct scl_client_heads *heads)
{
	enum scl_err e;

	if ((e = scl_client_heads(l->client, l->name, writer,
		 local_read_quorum(l), heads)) != SCL_OK)
		return e;
	if (capsule_seen_check(l, writer, heads->best,
		heads->hash[heads->best_server]) == SCL_OK)
		return SCL_OK;
	scl_err_clear();
	if ((e = scl_client_heads(l->client, l->name, writer, 0, heads)) !=
	    SCL_OK)
		return e;
	return capsule_seen_check(l, writer, heads->best,
	    heads->hash[heads->best_server]);
}

enum scl_err
capsule_from_best(struct local *l, const uint8_t *writer,
    const struct scl_client_heads *h, capsule_source_fn fn, void *ctx)
{
	enum scl_err e = SCL_ENOTFOUND;

	for (size_t i = 0; i < scl_client_count(l->client); i++) {
		struct scl_client_reader r;
		struct scl_capsule_source src;
		if (h->seqno[i] != h->best)
			continue;
		scl_client_reader_init(&r, l->client, i, l->name);
		src = scl_client_reader_source(&r);
		e = fn(ctx, &src, writer, h->best);
		scl_client_reader_dispose(&r);
		if (e == SCL_OK)
			return SCL_OK;
		fprintf(stderr, "warning: server %s: %s\n",
		    scl_client_addr(l->client, i), scl_err_last());
	}
	return e;
}

struct head_load {
	struct local *l;
	struct scl_capsule_head *head;
};

static enum scl_err
load_head(void *ctx, const struct scl_capsule_source *src,
    const uint8_t *writer, uint64_t seqno)
{
	struct head_load *hl = ctx;

	return scl_capsule_head_load(hl->head, src, hl->l->name,
	    hl->l->meta.owner, writer, seqno);
}

/* Loads the writer's head from the servers: the highest head any server
 * proves with the writer's signature, rebuilt from a server that holds
 * it. */
static enum scl_err
remote_head(struct local *l, const uint8_t *writer,
    struct scl_capsule_head *head)
{
	struct scl_client_heads heads;
	struct head_load hl = { l, head };
	enum scl_err e;

	memset(head, 0, sizeof(*head));
	if ((e = checked_heads(l, writer, &heads)) != SCL_OK)
		return e;
	if (heads.best == 0)
		return SCL_OK;
	if ((e = capsule_from_best(l, writer, &heads, load_head, &hl)) !=
	    SCL_OK)
		return scl_err_wrap(e, "cannot rebuild the writer's head: ");
	return SCL_OK;
}

/* The local store's verified head of @writer. */
static enum scl_err
local_head(struct local *l, const uint8_t *writer,
    struct scl_capsule_head *head)
{
	struct scl_store_snapshot *snap = NULL;
	struct scl_capsule_source src;
	struct scl_store_head stored;
	enum scl_err e;

	if ((e = scl_store_get_head(l->store, l->name, writer, &stored)) !=
		SCL_OK ||
	    (e = scl_store_snapshot_begin(&snap, l->store, l->name)) != SCL_OK)
		return e;
	scl_store_snapshot_source(&src, snap);
	e = scl_capsule_head_load(head, &src, l->name, l->meta.owner, writer,
	    stored.seqno);
	scl_store_snapshot_end(snap);
	if (e != SCL_OK)
		return scl_err_wrap(e, "the stored chain does not verify, so "
				       "nothing can be appended to it: ");
	return capsule_seen_check(l, writer, head->seqno, head->level[0]);
}

enum scl_err
capsule_writer_open(struct local *l, struct scl_capsule_writer **out)
{
	struct scl_capsule_head *head = calloc(1, sizeof(*head));
	struct scl_sign_key key;
	uint32_t epoch = l->keys->epochs[l->keys->n_epochs - 1].epoch;
	enum scl_err e;

	*out = NULL;
	if (head == NULL)
		return scl_err_set(SCL_ENOMEM, "cannot allocate head");
	scl_sign_key_from_seed(&key, l->keys->writer_seed);
	e = l->client ? remote_head(l, key.public_key, head)
		      : local_head(l, key.public_key, head);
	if (e == SCL_OK && head->seqno == 0 &&
	    memcmp(key.public_key, l->meta.owner, SCL_WRITER_BYTES) != 0)
		e = scl_err_set(SCL_EINVAL,
		    "this keyring's writer is not the owner and has no "
		    "certificate in the capsule");
	if (e == SCL_OK)
		e = scl_capsule_writer_new(out, l->name, l->meta.aead, &key,
		    epoch, scl_capsule_keyring_key(l->keys, epoch), head);
	if (e == SCL_OK && l->record_version &&
	    (e = scl_capsule_writer_set_record_version(*out,
		 l->record_version)) != SCL_OK) {
		scl_capsule_writer_free(*out);
		*out = NULL;
	}
	scl_sign_key_wipe(&key);
	free(head);
	return e;
}

enum scl_err
capsule_append_one(struct local *l, enum scl_record_type type,
    struct scl_slice payload)
{
	struct scl_capsule_writer *w = NULL;
	struct scl_capsule_batch b;
	const struct scl_capsule_batch *one[1] = { &b };
	uint64_t reserved = 0;
	enum scl_err e;

	scl_capsule_batch_init(&b);
	if ((e = capsule_writer_open(l, &w)) == SCL_OK &&
	    (e = scl_capsule_writer_append(w, &b, type, payload)) == SCL_OK &&
	    (e = capsule_seen_reserve(l, &b, 0, &reserved)) == SCL_OK &&
	    (e = scl_capsule_writer_seal_batch(w, &b, cli_now_us())) == SCL_OK)
		e = l->client ? scl_client_append(l->client, &b,
				    l->meta.write_quorum, NULL)
			      : scl_store_append(l->store, one, 1);
	if (e == SCL_OK)
		e = capsule_seen_wrote(l, w);
	scl_capsule_writer_free(w);
	scl_capsule_batch_dispose(&b);
	return e;
}

struct inflight {
	uint64_t ticket, first, n;
};

int
remote_append(struct cli_args *a, struct local *l, FILE *in, uint64_t batch)
{
	struct scl_capsule_writer *w = NULL;
	struct scl_capsule_batch b;
	struct scl_client_ack ack;
	struct inflight fly[WINDOW];
	size_t nfly = 0, cap = 0;
	uint64_t acked = 0, first_acked = 0, batches = 0, dups = 0, lines = 0;
	uint64_t reserved = 0, signed_through = 0;
	char *line = NULL, failure[700] = "";
	ssize_t n;
	int rc = CLI_FAIL;
	enum scl_err e;

	scl_capsule_batch_init(&b);
	if ((e = capsule_writer_open(l, &w)) != SCL_OK) {
		rc = cli_fail_err(a, e);
		goto done;
	}
	for (;;) {
		bool eof = (n = getline(&line, &cap, in)) < 0;
		if (!eof) {
			size_t len = (size_t)n;
			if (len && line[len - 1] == '\n')
				len--;
			lines++;
			if ((e = scl_capsule_writer_append(w, &b,
				 SCL_RECORD_DATA, scl_slice_of(line, len))) !=
			    SCL_OK) {
				snprintf(failure, sizeof(failure),
				    "line %llu: %s", (unsigned long long)lines,
				    scl_err_last());
				break;
			}
		}
		if (b.n && (b.n == batch || eof)) {
			if (nfly == WINDOW) {
				/* Oldest first, so acks stay in seqno order. */
				e = scl_client_append_wait(l->client,
				    fly[0].ticket, &ack);
				if (e != SCL_OK) {
					snprintf(failure, sizeof(failure),
					    "%s", scl_err_last());
					break;
				}
				if (!first_acked)
					first_acked = fly[0].first;
				acked += fly[0].n;
				dups += ack.duplicates > 0;
				memmove(fly, fly + 1, --nfly * sizeof(*fly));
			}
			if ((e = capsule_seen_reserve(l, &b,
				 batch * (WINDOW - 1), &reserved)) == SCL_OK &&
			    (e = scl_capsule_writer_seal_batch(w, &b,
				 cli_now_us())) == SCL_OK) {
				signed_through = b.first_seqno + b.n - 1;
				e = scl_client_append_submit(l->client, &b,
				    l->meta.write_quorum, WINDOW,
				    &fly[nfly].ticket);
			}
			if (e != SCL_OK) {
				snprintf(failure, sizeof(failure), "%s",
				    scl_err_last());
				break;
			}
			fly[nfly].first = b.first_seqno;
			fly[nfly++].n = b.n;
			batches++;
			scl_capsule_batch_clear(&b);
		}
		if (eof)
			break;
	}
	/* Settle what is in flight, in order, to report exactly. */
	for (size_t i = 0; i < nfly; i++) {
		e = scl_client_append_wait(l->client, fly[i].ticket, &ack);
		if (e != SCL_OK && !failure[0])
			snprintf(failure, sizeof(failure), "%s", scl_err_last());
		if (e == SCL_OK && !failure[0]) {
			if (!first_acked)
				first_acked = fly[i].first;
			acked += fly[i].n;
			dups += ack.duplicates > 0;
		}
	}
	/* What was signed, reached servers or not, stays reserved. */
	if (reserved && (e = capsule_seen_release(l, scl_capsule_writer_id(w),
			     signed_through)) != SCL_OK && !failure[0])
		snprintf(failure, sizeof(failure), "%s", scl_err_last());
	if (!failure[0] && (e = capsule_seen_wrote(l, w)) != SCL_OK)
		snprintf(failure, sizeof(failure), "%s", scl_err_last());
	if (failure[0]) {
		rc = cli_fail(a, "%s; %llu records were acknowledged by a "
				 "quorum before the failure",
		    failure, (unsigned long long)acked);
		goto done;
	}
	if (acked == 0)
		printf("appended 0 records (no input)\n");
	else
		printf("appended %llu record%s (seqno %llu..%llu) in %llu "
		       "batch%s, each stored by >= %u of %zu servers with "
		       "signed receipts\n",
		    (unsigned long long)acked, acked == 1 ? "" : "s",
		    (unsigned long long)first_acked,
		    (unsigned long long)(first_acked + acked - 1),
		    (unsigned long long)batches, batches == 1 ? "" : "es",
		    l->meta.write_quorum, scl_client_count(l->client));
	if (dups)
		printf("%llu of those batches some server already held (a "
		       "replay, acknowledged without storing it again)\n",
		    (unsigned long long)dups);
	rc = CLI_OK;
done:
	free(line);
	scl_capsule_writer_free(w);
	scl_capsule_batch_dispose(&b);
	return rc;
}

int
remote_read(struct cli_args *a, struct local *l,
    const uint8_t writer[SCL_WRITER_BYTES], uint64_t from, bool from_set)
{
	struct scl_capsule_opener *opener = NULL;
	struct scl_client_heads heads;
	uint64_t to;
	int rc = CLI_FAIL;
	enum scl_err e;

	(void)from_set;
	if ((e = checked_heads(l, writer, &heads)) != SCL_OK)
		return cli_fail_err(a, e);
	if (!cli_get_u64_in(a, "to", heads.best, 1, UINT64_MAX, &to))
		return CLI_USAGE;
	if (heads.best == 0)
		return CLI_OK;
	if (to > heads.best || from > to)
		return cli_fail(a, "range %llu..%llu is outside 1..%llu (the "
				   "newest head any server proves)",
		    (unsigned long long)from, (unsigned long long)to,
		    (unsigned long long)heads.best);
	if ((rc = capsule_read_limit(a, l, writer, from, &to,
		 cli_get(a, "to") != NULL)) != CLI_OK)
		return rc;
	if ((e = scl_capsule_opener_new(&opener, l->meta.aead, l->keys)) !=
	    SCL_OK)
		return cli_fail_err(a, e);
	e = scl_client_read(l->client, l->name, l->meta.owner, writer, from, to,
	    opener, capsule_print_payload, stdout);
	if (e == SCL_OK && fflush(stdout) != 0)
		e = scl_err_set(SCL_EIO, "writing output: %s", strerror(errno));
	rc = e == SCL_OK ? CLI_OK : cli_fail_err(a, e);
	scl_capsule_opener_free(opener);
	return rc;
}

#define WRITERS_MAX 256

/* The hash of record @seqno of @writer as server @i serves it; false if it
 * does not. */
static bool
served_hash(struct local *l, size_t i, const uint8_t *writer, uint64_t seqno,
    uint8_t hash[SCL_HASH_BYTES])
{
	struct scl_client_reader r;
	struct scl_capsule_source src;
	struct scl_record rec;
	struct scl_buf b;
	bool ok;

	scl_buf_init(&b);
	scl_client_reader_init(&r, l->client, i, l->name);
	src = scl_client_reader_source(&r);
	ok = src.record(src.ctx, writer, seqno, &b) == SCL_OK &&
	    scl_capsule_record_decode(&rec, scl_buf_slice(&b)) == SCL_OK &&
	    scl_capsule_record_hash(hash, &rec) == SCL_OK;
	scl_client_reader_dispose(&r);
	scl_buf_dispose(&b);
	scl_err_clear();
	return ok;
}

/*
 * Forks the servers' heads show: two servers whose newest heads of one
 * writer are signed records of one seqno that differ, or a server whose
 * head differs from the record the furthest server holds at that seqno.
 * Each is a writer that signed two records at one seqno.  Returns how
 * many it printed.
 */
static unsigned
report_forks(struct local *l, const uint8_t *writer,
    const struct scl_client_heads *h)
{
	size_t n = scl_client_count(l->client);
	char ref[32], who[17], what[17];
	unsigned forks = 0;

	for (size_t i = 0; i < n; i++) {
		uint8_t other[SCL_HASH_BYTES];
		if (!h->answered[i] || h->seqno[i] == 0 || i == h->best_server)
			continue;
		if (h->seqno[i] == h->best
			? memcmp(h->hash[i], h->hash[h->best_server],
			      SCL_HASH_BYTES) == 0
			: !served_hash(l, h->best_server, writer, h->seqno[i],
			      other) ||
			memcmp(h->hash[i], other, SCL_HASH_BYTES) == 0)
			continue;
		printf("FORK: writer %s signed two records %s: server %s "
		       "holds %.16s..., server %s another\n",
		    scl_hex_encode(who, writer, 8),
		    scl_capsule_record_ref(ref, writer, h->seqno[i]),
		    scl_client_addr(l->client, i),
		    scl_hex_encode(what, h->hash[i], 8),
		    scl_client_addr(l->client, h->best_server));
		forks++;
	}
	return forks;
}

static void
count_evidence(void *ctx, size_t server,
    const struct scl_capsule_proof_result *a,
    const struct scl_capsule_proof_result *b, struct scl_slice ev)
{
	struct local *l = ((void **)ctx)[0];
	unsigned *n = ((void **)ctx)[1];
	char ref[32];

	(void)b, (void)ev;
	(*n)++;
	printf("EQUIVOCATION: server %s keeps evidence that writer %s signed "
	       "two records %s (scl capsule evidence fetches it)\n",
	    scl_client_addr(l->client, server),
	    scl_hex_encode((char[65]){ 0 }, a->writer, SCL_WRITER_BYTES),
	    scl_capsule_record_ref(ref, a->writer, a->seqno));
}

int
remote_verify(struct cli_args *a, struct local *l)
{
	struct scl_capsule_opener *opener = NULL;
	struct scl_client_heads *heads = NULL;
	uint8_t (*writers)[SCL_WRITER_BYTES] = NULL;
	size_t nw = 0, nserv = scl_client_count(l->client), good = 0, asked;
	struct scl_capsule_revocations revs = { 0 };
	unsigned forks = 0, evidence = 0, rollbacks = 0, revoked = 0;
	void *ev_ctx[2] = { l, &evidence };
	char cap[9];
	bool bad;
	int rc = CLI_FAIL;
	enum scl_err e;

	heads = calloc(WRITERS_MAX, sizeof(*heads));
	writers = calloc(WRITERS_MAX, sizeof(*writers));
	if (heads == NULL || writers == NULL) {
		rc = cli_fail(a, "out of memory");
		goto done;
	}
	/* Verification asks every server: it must judge each of them. */
	if ((e = scl_client_writers(l->client, l->name, 0, writers,
		 WRITERS_MAX, &nw)) != SCL_OK ||
	    (l->keys && (e = scl_capsule_opener_new(&opener, l->meta.aead,
			     l->keys)) != SCL_OK)) {
		rc = cli_fail_err(a, e);
		goto done;
	}
	for (size_t k = 0; k < nw; k++)
		if ((e = scl_client_heads(l->client, l->name, writers[k], 0,
			 &heads[k])) != SCL_OK) {
			rc = cli_fail_err(a, e);
			goto done;
		}
	scl_hex_short(cap, l->name);
	for (size_t i = 0; i < nserv; i++) {
		struct scl_capsule_verify_stats st;
		struct scl_client_reader r;
		struct scl_capsule_source src;
		const char *addr = scl_client_addr(l->client, i);
		bool behind = false, silent = nw > 0;

		memset(&st, 0, sizeof(st));
		st.revocations = &revs;
		e = SCL_OK;
		for (size_t k = 0; k < nw && e == SCL_OK; k++) {
			silent &= !heads[k].answered[i];
			if (heads[k].lied[i]) {
				e = scl_err_set(SCL_EVERIFY, "sent a head that "
							     "does not verify");
				break;
			}
			behind |= heads[k].seqno[i] < heads[k].best;
			scl_client_reader_init(&r, l->client, i, l->name);
			src = scl_client_reader_source(&r);
			e = scl_capsule_verify_chain(&st, &src, l->name,
			    &l->meta, writers[k], heads[k].seqno[i], opener);
			scl_client_reader_dispose(&r);
		}
		if (silent) {
			printf("server %s: NO ANSWER\n", addr);
		} else if (e != SCL_OK) {
			printf("server %s: FAILED: %s\n", addr, scl_err_last());
		} else {
			printf("server %s: ok: %zu writer%s, %llu records, %llu "
			       "heartbeats verify%s%s\n",
			    addr, nw, nw == 1 ? "" : "s",
			    (unsigned long long)st.records,
			    (unsigned long long)st.heartbeats,
			    opener ? " and decrypt" : "",
			    behind ? "; BEHIND the newest head" : "");
			good += !behind;
		}
	}
	for (size_t k = 0; k < nw; k++) {
		forks += report_forks(l, writers[k], &heads[k]);
		if (capsule_seen_check(l, writers[k], heads[k].best,
			heads[k].hash[heads[k].best_server]) != SCL_OK) {
			printf("%s\n", scl_err_last());
			rollbacks++;
		}
	}
	rollbacks += capsule_seen_missing(l,
	    (const uint8_t(*)[SCL_WRITER_BYTES])writers, nw);
	for (size_t k = 0; k < nw; k++)
		revoked += capsule_report_revoked(&revs, writers[k],
		    heads[k].best, "on the servers");
	if ((e = scl_client_evidence(l->client, l->name, count_evidence,
		 ev_ctx, &asked)) != SCL_OK) {
		rc = cli_fail_err(a, e);
		goto done;
	}
	bad = good < nserv || forks + evidence + rollbacks + revoked > 0;
	printf("%s capsule %s: %zu of %zu servers hold every writer's newest "
	       "head and verify; %u fork%s, %u piece%s of evidence, %u "
	       "rollback%s, %u writer%s past revocation\n",
	    bad ? "FAILED:" : "ok:", cap, good, nserv, forks,
	    forks == 1 ? "" : "s", evidence, evidence == 1 ? "" : "s",
	    rollbacks, rollbacks == 1 ? "" : "s", revoked,
	    revoked == 1 ? "" : "s");
	rc = bad ? CLI_FAIL : CLI_OK;
done:
	scl_capsule_revocations_dispose(&revs);
	scl_capsule_opener_free(opener);
	free(heads);
	free(writers);
	return rc;
}

int
remote_prove(struct cli_args *a, struct local *l,
    const uint8_t writer[SCL_WRITER_BYTES], uint64_t seqno)
{
	struct scl_buf proof;
	int rc = CLI_OK;
	enum scl_err e;

	scl_buf_init(&proof);
	if ((e = scl_client_proof(l->client, l->name, writer, seqno, &proof)) !=
	    SCL_OK)
		rc = cli_fail_err(a, e);
	else if (fwrite(proof.ptr, 1, proof.len, stdout) != proof.len ||
	    fflush(stdout) != 0)
		rc = cli_fail(a, "writing proof: %s", strerror(errno));
	scl_buf_dispose(&proof);
	return rc;
}
