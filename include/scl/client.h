/*
 * client.h - talking to a capsule's servers: create, append with a write
 * quorum, and read, verify and prove against servers that may lie.
 *
 * Nothing a server says is believed unchecked.  Appends count only acks
 * that carry a valid signed receipt; heads are heartbeats the writer
 * signed; reads and proofs are verified against those signatures before
 * the caller sees a byte, and a server caught lying is named in the log
 * and the next one is asked instead.
 *
 * A client is used from one thread (it owns ZeroMQ sockets).
 */
#ifndef SCL_CLIENT_H
#define SCL_CLIENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scl/buf.h"
#include "scl/capsule.h"
#include "scl/err.h"
#include "scl/log.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SCL_CLIENT_SERVERS_MAX 16

struct scl_client_options {
	unsigned timeout_ms;	/* per attempt; 0: 2000 */
	unsigned retries;	/* further attempts after a timeout; default 2 */
	bool no_retries;	/* set to make retries exactly 0 */
	struct scl_logger log;	/* lying or failing servers are reported here */
	/* When another thread sets it, every wait ends within ~50 ms and
	 * the call fails with SCL_ECLOSED ("cancelled"): a process that
	 * stops does not wait out timeouts against servers that are gone.
	 * Borrowed; may be NULL. */
	const atomic_bool *cancel;
};

struct scl_client;

/** Connects (lazily) to @n servers.  Owned: scl_client_free(). */
SCL_NODISCARD enum scl_err scl_client_new(struct scl_client **out,
    const char *const *servers, size_t n, const struct scl_client_options *opt);
void scl_client_free(struct scl_client *c);

size_t scl_client_count(const struct scl_client *c);
/** Address of server @i; borrowed. */
const char *scl_client_addr(const struct scl_client *c, size_t i);

/**
 * Stores signed metadata on every server; succeeds once @quorum servers
 * have it.
 */
SCL_NODISCARD enum scl_err scl_client_create(struct scl_client *c,
    struct scl_slice meta, unsigned quorum);

/** Fetches metadata that hashes to @name from the first server that has
 * it (replaced into @out; decoded into @meta). */
SCL_NODISCARD enum scl_err scl_client_meta(struct scl_client *c,
    const uint8_t name[SCL_NAME_BYTES], struct scl_buf *out,
    struct scl_capsule_meta *meta);

/** Per-server outcome of an append, as of the moment the quorum was
 * reached: answers after it are not checked or counted (the slower
 * servers count as silent). */
struct scl_client_ack {
	unsigned acked;		/* durable acks with valid receipts */
	unsigned duplicates;	/* of those, already stored before */
	unsigned lagging;	/* answered GAP: catching up from peers */
	unsigned rejected;	/* refused the batch */
	unsigned silent;	/* no answer in time */
	bool ok[SCL_CLIENT_SERVERS_MAX];
	uint8_t receipt[SCL_CLIENT_SERVERS_MAX][64];
	uint8_t server_key[SCL_CLIENT_SERVERS_MAX][32];
};

/**
 * Sends a signed batch to every server and returns once @quorum of them
 * acknowledged it durably (SCL_OK), or when that became impossible:
 * SCL_EVERIFY if servers rejected it (equivocation included), SCL_ETIMEOUT
 * naming the silent ones after the retries.  @out may be NULL.
 */
SCL_NODISCARD enum scl_err scl_client_append(struct scl_client *c,
    const struct scl_capsule_batch *b, unsigned quorum,
    struct scl_client_ack *out);

/**
 * Pipelined appends: submit returns at once with a ticket (the batch is
 * encoded and copied, so the caller may reuse it); wait blocks until that
 * ticket reached @quorum or failed, and forgets it.  Submit refuses with
 * SCL_EFULL when @window appends are already in flight: wait for the
 * oldest first.  Every submitted ticket must be waited for.
 */
SCL_NODISCARD enum scl_err scl_client_append_submit(struct scl_client *c,
    const struct scl_capsule_batch *b, unsigned quorum, unsigned window,
    uint64_t *ticket);
SCL_NODISCARD enum scl_err scl_client_append_wait(struct scl_client *c,
    uint64_t ticket, struct scl_client_ack *out);

/** A writer's newest head as each server reports it (verified). */
struct scl_client_heads {
	uint64_t best;			/* highest verified seqno, 0: none */
	size_t best_server;		/* a server holding it */
	struct scl_heartbeat heartbeat;	/* the writer's signature over it */
	uint64_t seqno[SCL_CLIENT_SERVERS_MAX];	/* per server */
	uint8_t hash[SCL_CLIENT_SERVERS_MAX][SCL_HASH_BYTES];	/* of each */
	bool answered[SCL_CLIENT_SERVERS_MAX];
	bool lied[SCL_CLIENT_SERVERS_MAX];	/* sent a bad heartbeat */
};

/**
 * Asks every server for @writer's head in @name and returns once @quorum
 * of them answered (0: all, or until the retries run out).  With a read
 * quorum of N - W + 1 the answer includes every head a write quorum
 * acknowledged, without waiting on servers that are down.
 */
SCL_NODISCARD enum scl_err scl_client_heads(struct scl_client *c,
    const uint8_t name[SCL_NAME_BYTES], const uint8_t writer[SCL_WRITER_BYTES],
    unsigned quorum, struct scl_client_heads *out);

/** Called with each head a server sent that is the capsule's and
 * verifies, and the index of that server. */
typedef void (*scl_client_head_fn)(void *ctx, size_t server,
    const struct scl_heartbeat *hb);

/**
 * One round of HEADS for @name, until @quorum servers answered (0: all):
 * every writer's newest head on every server that answered, each checked
 * to be this capsule's and validly signed (a server that sends one that is
 * not is logged), handed to @fn.
 */
SCL_NODISCARD enum scl_err scl_client_each_head(struct scl_client *c,
    const uint8_t name[SCL_NAME_BYTES], unsigned quorum,
    scl_client_head_fn fn, void *ctx);

/** Called with each piece of evidence a server holds that convicts a
 * writer of @name (checked here with the name alone). */
typedef void (*scl_client_evidence_fn)(void *ctx, size_t server,
    const struct scl_capsule_proof_result *a,
    const struct scl_capsule_proof_result *b, struct scl_slice evidence);

/**
 * Asks every server for the equivocation evidence it keeps on @name
 * (EVIDENCE) and hands each piece that convicts its writer to @fn; a piece
 * that does not is logged as the server's lie.  *@answered counts the
 * servers that answered.
 */
SCL_NODISCARD enum scl_err scl_client_evidence(struct scl_client *c,
    const uint8_t name[SCL_NAME_BYTES], scl_client_evidence_fn fn, void *ctx,
    size_t *answered);

/** Every writer the answering servers know in @name (their HEADS). */
SCL_NODISCARD enum scl_err scl_client_writers(struct scl_client *c,
    const uint8_t name[SCL_NAME_BYTES], unsigned quorum,
    uint8_t (*out)[SCL_WRITER_BYTES], size_t max, size_t *n);

/**
 * A capsule source backed by server @i.  Records are fetched a window at
 * a time, in the direction the caller reads (forward from a record past
 * the window, backward from one before it), and cached with the stored
 * heartbeats the same reply carried, so a sequential read costs one
 * round trip per window.  Nothing cached is trusted: callers verify.
 * Caller-owned; init, then scl_client_reader_source(); dispose.
 */
struct scl_client_reader {
	struct scl_client *c;
	size_t server;
	uint8_t name[SCL_NAME_BYTES];
	uint8_t writer[SCL_WRITER_BYTES];
	uint64_t lo, hi;		/* cached seqnos, hi < lo: none */
	struct scl_buf cache;		/* records lo..hi, back to back */
	size_t *ends;			/* ends[i]: end of record lo + i */
	size_t ends_cap;
	struct scl_buf hbs;		/* heartbeats stored within lo..hi */
	uint64_t *hb_seqnos;		/* ascending */
	size_t n_hbs, hbs_cap;
};

void scl_client_reader_init(struct scl_client_reader *r, struct scl_client *c,
    size_t server, const uint8_t name[SCL_NAME_BYTES]);
void scl_client_reader_dispose(struct scl_client_reader *r);
struct scl_capsule_source scl_client_reader_source(
    struct scl_client_reader *r);

/**
 * Verified read of @writer's records @from..@to, in order, falling back
 * to the next server when one fails or lies; records already delivered
 * are not repeated.  SCL_EVERIFY only when no server could serve it.
 */
SCL_NODISCARD enum scl_err scl_client_read(struct scl_client *c,
    const uint8_t name[SCL_NAME_BYTES], const uint8_t owner[32],
    const uint8_t writer[SCL_WRITER_BYTES], uint64_t from, uint64_t to,
    struct scl_capsule_opener *opener, scl_capsule_record_fn fn, void *ctx);

/** A membership proof from the first server whose proof checks. */
SCL_NODISCARD enum scl_err scl_client_proof(struct scl_client *c,
    const uint8_t name[SCL_NAME_BYTES], const uint8_t writer[SCL_WRITER_BYTES],
    uint64_t seqno, struct scl_buf *out);

/** The status text (JSON) of server @i. */
SCL_NODISCARD enum scl_err scl_client_status(struct scl_client *c, size_t i,
    struct scl_buf *out);

/* --- What this client has seen: rollback detection ------------------------ */

/*
 * The newest head of each writer a client has seen verified, and the
 * highest seqno it may have signed itself (reserved before signing), kept
 * in a file outside every store it checks (a key file of kind SEEN, 0600,
 * checksummed, replaced atomically).  A server set that serves less than a
 * head seen before has been rolled back (or is hiding records); a writer
 * whose servers serve less than it reserved may have signed the next
 * seqno already, and must not sign it again (THREAT_MODEL.md "Rollback").
 */
struct scl_client_seen;

/** Loads @path (a missing file: nothing seen yet) for capsule @name.
 * Owned: scl_client_seen_free(). */
SCL_NODISCARD enum scl_err scl_client_seen_open(struct scl_client_seen **out,
    const char *path, const uint8_t name[SCL_NAME_BYTES]);
void scl_client_seen_free(struct scl_client_seen *s);

/**
 * Checks what servers serve of @writer (its newest head: @seqno, @hash)
 * against what was seen: SCL_ECONFLICT ("rollback") if it is older than a
 * head seen before, or the same seqno with another hash (a fork).
 */
SCL_NODISCARD enum scl_err scl_client_seen_check(
    const struct scl_client_seen *s, const uint8_t writer[SCL_WRITER_BYTES],
    uint64_t seqno, const uint8_t hash[SCL_HASH_BYTES]);

/** Remembers a verified head of @writer (kept if newer than the one seen;
 * saved by scl_client_seen_save). */
SCL_NODISCARD enum scl_err scl_client_seen_note(struct scl_client_seen *s,
    const uint8_t writer[SCL_WRITER_BYTES], uint64_t seqno,
    const uint8_t hash[SCL_HASH_BYTES]);

/**
 * Before this client signs @writer's records @from..@to: SCL_ECONFLICT if
 * it may have signed @from already (it reserved as far before), else it
 * reserves through @to and saves, so that a crash between signing and
 * storing cannot lead to signing @from twice.
 */
SCL_NODISCARD enum scl_err scl_client_seen_reserve(struct scl_client_seen *s,
    const uint8_t writer[SCL_WRITER_BYTES], uint64_t from, uint64_t to);

/** Gives back what was reserved of @writer past @through (the last seqno
 * it signed), once signing stopped; saves if that changed anything. */
SCL_NODISCARD enum scl_err scl_client_seen_release(struct scl_client_seen *s,
    const uint8_t writer[SCL_WRITER_BYTES], uint64_t through);

/** The head seen and the seqno reserved of @writer (0 and 0 if none). */
void scl_client_seen_get(const struct scl_client_seen *s,
    const uint8_t writer[SCL_WRITER_BYTES], uint64_t *seen,
    uint64_t *reserved);

/** Entry @i (writer order) of the writers seen or reserved: false past
 * the last. */
bool scl_client_seen_at(const struct scl_client_seen *s, size_t i,
    uint8_t writer[SCL_WRITER_BYTES], uint64_t *seen, uint64_t *reserved);

/** Forgets everything seen and reserved of @writer: the owner decided
 * that what the servers serve now is the chain (scl capsule resolve). */
SCL_NODISCARD enum scl_err scl_client_seen_forget(struct scl_client_seen *s,
    const uint8_t writer[SCL_WRITER_BYTES]);

/** Writes the file (atomically, fsync'd). */
SCL_NODISCARD enum scl_err scl_client_seen_save(struct scl_client_seen *s);

#ifdef __cplusplus
}
#endif
#endif
