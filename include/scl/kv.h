/*
 * kv.h - the SCL key-value store: one replica, as it runs in a worker's
 * trusted core (DESIGN §5).
 *
 * Every replica of a capsule's KVS is a writer of that capsule.  A put or
 * delete applies locally at once and joins the current batch; a batch
 * (by count, by bytes, or after a few milliseconds) becomes one sealed
 * DATA record with one heartbeat, sealed and signed on the crypto actors.
 * The replica hands it out as a BATCH message, which the host publishes
 * to its peers through the router and appends to the capsule servers.
 *
 * A replica applies a peer's records only after verifying them: chain
 * links from the writer's verified head, the writer's certificate, the
 * heartbeat's signature over the last record, and the AEAD of each
 * record.  Batches that arrive ahead of a gap wait in a bounded buffer
 * while the replica asks its host to FETCH the gap from the servers.
 * SYNC messages carry signed heads, so silent loss is noticed; a forged
 * one does not verify, a replayed one says nothing new.
 *
 * State converges because every value carries a version (Lamport time,
 * writer id) and the larger version wins: applying the same set of
 * records in any order, with any duplicates, gives the same state.
 *
 * Hand-on: a replica keeps every peer's batch it applied until the
 * servers hold it (scl_kv_durable).  A writer that dies after publishing a
 * batch and before storing it leaves the batch only with the replicas that
 * applied it; once it is not durable handon_after_us after it was applied,
 * and the writer's durable head stopped rising, the replica asks its host
 * to STORE it, and the servers verify and keep it like any append.  So no
 * replica holds a batch that others cannot fetch; a batch that no live
 * replica and no server holds was applied nowhere that survives, and every
 * replica's chain of that writer ends before it (the gap is given up,
 * NOTICE says so once).
 *
 * The replica is a state machine with no threads of its own apart from
 * the crypto actors and no I/O: inputs are calls, outputs are queued
 * (scl_kv_next_output).  One thread drives it.
 */
#ifndef SCL_KV_H
#define SCL_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scl/actors.h"
#include "scl/buf.h"
#include "scl/capsule.h"
#include "scl/err.h"

struct scl_dec;

#ifdef __cplusplus
extern "C" {
#endif

#define SCL_KV_KEY_MAX 1024
#define SCL_KV_VALUE_MAX ((size_t)1 << 20)

/* Puts and deletes in one sealed batch at most, unless told otherwise:
 * at the YCSB-A peak a batch reaches ~2000 (docs/BENCHMARKS.md), and one
 * heartbeat signs them all. */
#define SCL_KV_BATCH_PUTS_DEFAULT 2048

/** A value's version: the larger one wins (Lamport time, then writer). */
struct scl_kv_version {
	uint64_t lamport;
	uint8_t writer[SCL_WRITER_BYTES];
};

/** -1, 0, 1 as @a is older than, the same as, newer than @b. */
int scl_kv_version_cmp(const struct scl_kv_version *a,
    const struct scl_kv_version *b);

struct scl_kv_options {
	struct scl_slice meta;		/* the capsule's metadata (checked) */
	const struct scl_capsule_keyring *keys;	/* data keys (copied) */
	const struct scl_sign_key *sign;	/* this replica's writer key */
	struct scl_slice cert;		/* its certificate; empty: the owner */
	struct scl_actors *actors;	/* borrowed; sealing runs on them */
	size_t batch_max_puts;		/* 0: SCL_KV_BATCH_PUTS_DEFAULT */
	size_t batch_max_bytes;		/* 0: 256 KiB */
	/* 0: 2000.  A worker's host closes batches sooner with its seal
	 * clock and uses 10000 as the bound (docs/OPERATIONS.md). */
	uint64_t batch_delay_us;
	size_t pending_max_bytes;	/* out-of-order buffer; 0: 64 MiB */
	uint64_t fetch_retry_us;	/* 0: 200000 */
	uint64_t sync_every_us;		/* 0: 100000 */
	/* A peer's applied batch that the servers still lack this long
	 * after it was applied, while that writer's durable head has not
	 * risen either, is handed on: the replica asks its host to STORE it
	 * (0: 2 s).  See "Hand-on" below. */
	uint64_t handon_after_us;
	size_t retain_max_bytes;	/* applied, not yet durable; 0: 64 MiB */
	/* A gap no server fills for this long is given up: said once
	 * (NOTICE) and fetched again only every 10 s (0: 10 s). */
	uint64_t gap_give_up_us;
	/* Records this replica writes: 0 the newest (SCL_RECORD_VERSION),
	 * 1 for servers and readers of older builds (docs/OPERATIONS.md). */
	uint16_t record_version;
	/*
	 * Benchmark baseline only: no encryption, no signatures, no
	 * verification, nothing for the servers.  A paranoid replica
	 * refuses everything a plain one sends.
	 */
	bool plain;
};

struct scl_kv;

/** Owned: scl_kv_free(). */
SCL_NODISCARD enum scl_err scl_kv_new(struct scl_kv **out,
    const struct scl_kv_options *opt);
/** Waits for sealing in flight; wipes keys. */
void scl_kv_free(struct scl_kv *kv);

/** This replica's writer id. */
const uint8_t *scl_kv_writer(const struct scl_kv *kv);

/* --- Local operations --------------------------------------------------- */

/** Applies locally and joins the current batch. */
SCL_NODISCARD enum scl_err scl_kv_put(struct scl_kv *kv, struct scl_slice key,
    struct scl_slice value, uint64_t now_us);
SCL_NODISCARD enum scl_err scl_kv_delete(struct scl_kv *kv,
    struct scl_slice key, uint64_t now_us);

/**
 * The value of @key (borrowed until the next mutation), or SCL_ENOTFOUND
 * (also for a deleted key).  @version may be NULL.
 */
SCL_NODISCARD enum scl_err scl_kv_get(struct scl_kv *kv, struct scl_slice key,
    struct scl_slice *value, struct scl_kv_version *version);

/**
 * A hint that a get, put or delete of @key follows soon: starts loading
 * what it will touch, its index slot (@stage 0) and, called again a few
 * operations later, its entry (@stage 1).  Changes nothing; a caller
 * running many operations issues it ahead of them so their cache misses
 * overlap.
 */
void scl_kv_prefetch(const struct scl_kv *kv, struct scl_slice key,
    int stage);

/** Return false to stop. */
typedef bool (*scl_kv_scan_fn)(void *ctx, struct scl_slice key,
    struct scl_slice value, const struct scl_kv_version *version);

/**
 * Live keys in key order (bytewise) with @prefix (may be empty), from
 * @start (inclusive; empty: the first) to @end (exclusive; empty: no end),
 * at most @limit (0: no limit).  Returns how many were visited.
 */
size_t scl_kv_scan(struct scl_kv *kv, struct scl_slice prefix,
    struct scl_slice start, struct scl_slice end, size_t limit,
    scl_kv_scan_fn fn, void *ctx);

/**
 * Seals the current batch now.  Returns in *@through the number of this
 * replica's puts and deletes so far: the BATCH output whose `through`
 * reaches it carries them all.
 */
SCL_NODISCARD enum scl_err scl_kv_flush(struct scl_kv *kv, uint64_t *through);

/** This replica's puts and deletes so far (what scl_kv_flush calls
 * `through`). */
uint64_t scl_kv_through(const struct scl_kv *kv);

/** Blocks until every batch closed so far is among the outputs; the
 * first sealing error, if any. */
SCL_NODISCARD enum scl_err scl_kv_drain(struct scl_kv *kv);

/* --- Replication -------------------------------------------------------- */

/**
 * A message from a peer (through the router) or a batch the host fetched
 * from the servers.  Everything in it is verified before anything is
 * applied; a message that fails is counted and dropped, and changes
 * nothing.  Returns SCL_OK for anything well-handled (including
 * duplicates and rejections: see the stats), an error only when the
 * replica itself failed (memory).
 */
SCL_NODISCARD enum scl_err scl_kv_receive(struct scl_kv *kv,
    struct scl_slice msg, uint64_t now_us);

/**
 * What the servers hold: a write quorum of them has @writer's chain
 * through @seqno (the host asks them).  Retained batches it covers are
 * freed.  An untrusted host that lies here can only delay hand-on or make
 * it happen early: the servers verify what they are handed.
 */
void scl_kv_durable(struct scl_kv *kv, const uint8_t writer[SCL_WRITER_BYTES],
    uint64_t seqno, uint64_t now_us);

/** Time passes: closes a batch whose delay ran out, emits SYNC, retries
 * FETCHes, hands on what the servers lack. */
SCL_NODISCARD enum scl_err scl_kv_tick(struct scl_kv *kv, uint64_t now_us);

/** Whether closed batches are still being sealed (their BATCH outputs
 * are still to come). */
bool scl_kv_sealing(struct scl_kv *kv);

/** The microsecond (absolute) at which scl_kv_tick next has work. */
uint64_t scl_kv_next_tick(const struct scl_kv *kv);

enum scl_kv_output_kind {
	SCL_KV_OUT_BATCH = 1,	/* publish to peers and append to servers */
	SCL_KV_OUT_SYNC = 2,	/* publish to peers */
	SCL_KV_OUT_FETCH = 3,	/* fetch writer's from..to from the servers */
	SCL_KV_OUT_STORE = 4,	/* append a peer's batch (from..to) to the
				   servers, which lack it: hand-on */
	SCL_KV_OUT_NOTICE = 5,	/* text for the host's log */
};

struct scl_kv_output {
	enum scl_kv_output_kind kind;
	struct scl_buf msg;		/* BATCH, SYNC: the message to send */
	uint64_t through;		/* BATCH: own puts covered so far */
	uint8_t writer[SCL_WRITER_BYTES];	/* FETCH, STORE */
	uint64_t from, to;		/* FETCH, STORE: seqnos, inclusive */
};

void scl_kv_output_init(struct scl_kv_output *o);
void scl_kv_output_dispose(struct scl_kv_output *o);

/** Moves the oldest queued output into @out (replaced); false if none. */
bool scl_kv_next_output(struct scl_kv *kv, struct scl_kv_output *out);

struct scl_kv_stats {
	uint64_t puts, deletes;			/* local */
	uint64_t batches_out, records_in, ops_applied, ops_superseded;
	uint64_t duplicates;		/* records already applied */
	uint64_t rejected;		/* messages that failed verification */
	uint64_t skipped;		/* verified records that hold no KVS
					   operations (other writers' data) */
	uint64_t buffered, buffer_dropped;	/* out-of-order batches */
	uint64_t fetches;		/* FETCH outputs */
	uint64_t syncs_in, syncs_out;
	uint64_t handed_on;		/* STORE outputs */
	uint64_t retain_dropped;	/* batches not retained: no room */
	uint64_t gaps_abandoned;	/* gaps given up (NOTICE said which) */
	size_t keys, tombstones, writers;
	uint64_t lamport;
};

void scl_kv_stats(const struct scl_kv *kv, struct scl_kv_stats *out);

/** What this replica knows of one other writer. */
struct scl_kv_peer {
	uint8_t writer[SCL_WRITER_BYTES];
	uint64_t applied;	/* verified and applied through this seqno */
	uint64_t known;		/* the highest seqno known to exist */
	size_t held;		/* batches buffered ahead of a gap */
	uint64_t durable;	/* the servers hold it through this (host) */
	size_t retained;	/* applied batches the servers may lack */
	bool gap_abandoned;	/* known > applied, and given up on */
};

/** Up to @max other writers, in writer order; returns how many. */
size_t scl_kv_peers(const struct scl_kv *kv, struct scl_kv_peer *out,
    size_t max);

/**
 * A digest of the whole live state (keys, values and versions, in key
 * order): two replicas with equal digests hold the same state.
 */
void scl_kv_digest(struct scl_kv *kv, uint8_t out[SCL_HASH_BYTES]);

/* --- Messages (docs/PROTOCOL.md "KVS messages") ------------------------- */

enum scl_kv_msg_kind {
	SCL_KV_MSG_BATCH = 1,
	SCL_KV_MSG_SYNC = 2,
	SCL_KV_MSG_PLAIN = 3,
};

/**
 * Splits a BATCH message into a capsule batch (for the servers).  The
 * batch is not verified here, and its hashes are left zero
 * (scl_capsule_batch_verify fills them).
 */
SCL_NODISCARD enum scl_err scl_kv_msg_to_batch(struct scl_slice msg,
    struct scl_capsule_batch *out);

/** Encodes a capsule batch as a BATCH message (a fetched range). */
SCL_NODISCARD enum scl_err scl_kv_msg_from_batch(struct scl_buf *out,
    const struct scl_capsule_batch *b);

/* --- Operations inside records (docs/FORMAT.md "KVS operations") -------- */

enum scl_kv_op_kind {
	SCL_KV_OP_PUT = 1,
	SCL_KV_OP_DELETE = 2,
};

struct scl_kv_op {
	enum scl_kv_op_kind kind;
	uint64_t lamport;
	struct scl_slice key, value;	/* borrowed from the encoding */
};

SCL_NODISCARD enum scl_err scl_kv_op_encode(struct scl_buf *out,
    const struct scl_kv_op *op);
SCL_NODISCARD enum scl_err scl_kv_op_decode(struct scl_kv_op *out,
    struct scl_slice in);


/* --- Requests and results (docs/PROTOCOL.md "KVS requests") ------------- */

/*
 * What a client (through a worker's host, later a lambda) asks of a
 * replica, and what it answers.  Both halves live here: the host and the
 * clients encode requests and decode results, the core decodes requests,
 * runs them (scl_kv_run) and encodes results.  Adding an operation means
 * adding it here, in src/kv/req.c and in the command line.
 */
enum scl_kvreq_op {
	SCL_KVREQ_GET = 'g',
	SCL_KVREQ_PUT = 'p',
	SCL_KVREQ_DELETE = 'd',
	SCL_KVREQ_SCAN = 's',
	SCL_KVREQ_FLUSH = 'f',
};

/** One request; slices are borrowed. */
struct scl_kvreq {
	enum scl_kvreq_op op;
	struct scl_slice key, value;		/* GET, PUT, DELETE */
	struct scl_slice prefix, start, end;	/* SCAN */
	uint32_t limit;				/* SCAN; 0: none */
};

/** Whether @r changes the store (PUT, DELETE). */
bool scl_kvreq_writes(const struct scl_kvreq *r);

/**
 * Appends @r to @ops.  Checks only what the encoding itself bounds (a
 * key's u16 length, a value's u32): the replica enforces its limits
 * (SCL_KV_KEY_MAX, SCL_KV_VALUE_MAX) and refuses with its own reason.
 */
SCL_NODISCARD enum scl_err scl_kvreq_encode(struct scl_buf *ops,
    const struct scl_kvreq *r);
/** Reads the next request from @d: SCL_EFORMAT if malformed or of an
 * unknown op, SCL_ELIMIT for a key or value over the limits. */
SCL_NODISCARD enum scl_err scl_kvreq_decode(struct scl_dec *d,
    struct scl_kvreq *out);
/**
 * Checks that @ops holds exactly @n well-formed requests within the
 * limits; *@writes (may be NULL) says whether any of them writes.  A list
 * that passes runs whole: nothing of a list that fails is applied.
 */
SCL_NODISCARD enum scl_err scl_kvreq_check(struct scl_slice ops, uint32_t n,
    bool *writes);

/**
 * Runs the @n requests of a list that passed scl_kvreq_check, in order,
 * appending each one's result to @results (NULL: results are not kept, as
 * for a timed run).  A PUT or DELETE the replica refuses has its error in
 * its result; the others go on.  SCL_ENOMEM only if @results cannot grow.
 */
SCL_NODISCARD enum scl_err scl_kv_run(struct scl_kv *kv, struct scl_slice ops,
    uint32_t n, uint64_t now_us, struct scl_buf *results);

/** One request's result; slices borrow from the results. */
struct scl_kvres {
	bool ok;			/* GET: found; PUT, DELETE: done */
	enum scl_err err;		/* PUT, DELETE when !ok */
	struct scl_slice error;		/* ...and the replica's reason */
	struct scl_slice value;		/* GET */
	struct scl_kv_version version;	/* GET: the value's */
	uint32_t n;			/* SCAN: entries */
	struct scl_slice entries;	/* SCAN: scl_kvres_scan_next */
	uint64_t through;		/* FLUSH */
};

/** Reads the result of an @op from @d. */
SCL_NODISCARD enum scl_err scl_kvres_decode(struct scl_dec *d,
    enum scl_kvreq_op op, struct scl_kvres *out);
/** Iterates a SCAN result's entries; false at the end or if malformed. */
bool scl_kvres_scan_next(struct scl_slice *entries, struct scl_slice *key,
    struct scl_slice *value);

#ifdef __cplusplus
}
#endif
#endif
