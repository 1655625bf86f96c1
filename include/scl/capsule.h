/*
 * capsule.h - DataCapsule format v1: metadata and names, writer
 * certificates, records, heartbeats, chains, proofs, equivocation evidence.
 *
 * Byte layouts are specified in docs/FORMAT.md; this module is the only
 * code that produces or parses them.  Everything here is pure computation
 * over bytes: storage and networking reach records through a
 * struct scl_capsule_source, so the same verification runs against a local
 * LMDB store, a remote server, or a proof file.
 *
 * Trust flows downward: a writer signs a heartbeat over its newest record's
 * hash; each record's header commits to earlier records' hashes (links), so
 * one signature covers the whole chain below it, and a verifier walking
 * down from a heartbeat can name the first record that does not match.
 */
#ifndef SCL_CAPSULE_H
#define SCL_CAPSULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scl/buf.h"
#include "scl/crypto.h"
#include "scl/err.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SCL_FORMAT_VERSION 1	/* metadata, heartbeats, proofs, evidence */
/*
 * Records: v1 hash with BLAKE2b-256, v2 (the same bytes) with SHA-256;
 * v3 hashes with SHA-256 and seals under a key derived from a 16-byte
 * random salt each writer draws when it starts, so that two copies of
 * one writer (a restored backup) never seal under the same key and
 * nonce.  This build writes v3 and reads all three; a chain may hold
 * them all, as each record's hash follows its own version
 * (docs/FORMAT.md "Records").
 */
#define SCL_RECORD_VERSION 3
#define SCL_RECORD_VERSION_MIN 1
#define SCL_NAME_BYTES 32	/* capsule name: BLAKE2b-256 of metadata */
#define SCL_WRITER_BYTES 32	/* writer id: the writer's Ed25519 key */

/* Limits (docs/FORMAT.md "Limits").  Decoders reject anything larger. */
#define SCL_PAYLOAD_MAX (4u << 20)	/* bytes of plaintext per record */
/* A whole record: the payload, a header with every link and merge
 * (108 + 64 x 32 + 16 x 32 bytes) and the AEAD tag, rounded up. */
#define SCL_RECORD_MAX ((size_t)SCL_PAYLOAD_MAX + 8192)
#define SCL_LINKS_MAX 64		/* one per trailing zero bit of seqno */
#define SCL_MERGE_MAX 16		/* other writers' heads per record */
#define SCL_LABEL_MAX 255
#define SCL_SERVERS_MAX 16
#define SCL_SERVER_ADDR_MAX 255
#define SCL_EPOCHS_MAX 1024
#define SCL_PROOF_STEPS_MAX 160		/* 2 * 64 + slack, see FORMAT.md */

#define SCL_RECORD_FIXED_BYTES 108	/* v1, v2: header bytes before links */
#define SCL_RECORD_FIXED_BYTES_V3 112	/* v3: the key salt is 16 bytes */
#define SCL_RECORD_KEY_SALT_BYTES 16
#define SCL_HEARTBEAT_BYTES 180
#define SCL_CERT_BYTES 204
#define SCL_RECORD_NONCE_SALT_BYTES 4

enum scl_record_type {
	SCL_RECORD_DATA = 1,	/* sealed application payload */
	SCL_RECORD_CERT = 2,	/* plain writer certificate; seqno 1 only */
	SCL_RECORD_REVOKE = 3,	/* plain revocation; owner's chain only */
};

#define SCL_RECORD_FLAG_SEALED 0x01

/* --- Metadata and names ---------------------------------------------- */

/** Decoded metadata.  Strings are NUL-terminated copies. */
struct scl_capsule_meta {
	uint8_t owner[SCL_SIGN_PUBLIC_BYTES];
	uint64_t created_us;		/* owner's clock, microseconds */
	uint8_t aead;			/* enum scl_aead_suite */
	uint8_t replicas;		/* N */
	uint8_t write_quorum;		/* W, 1 <= W <= N */
	uint8_t n_servers;
	char label[SCL_LABEL_MAX + 1];
	char servers[SCL_SERVERS_MAX][SCL_SERVER_ADDR_MAX + 1];
};

/**
 * Encodes @m and signs it with @owner (whose public key must equal
 * m->owner) into @out (appended).  The capsule name is the BLAKE2b-256 of
 * exactly these bytes.
 */
SCL_NODISCARD enum scl_err scl_capsule_meta_encode(struct scl_buf *out,
    const struct scl_capsule_meta *m, const struct scl_sign_key *owner);

/** Parses metadata and verifies the owner's signature. */
SCL_NODISCARD enum scl_err scl_capsule_meta_decode(
    struct scl_capsule_meta *out, struct scl_slice in);

/** The capsule name of encoded metadata. */
void scl_capsule_name(uint8_t name[SCL_NAME_BYTES], struct scl_slice meta);

/**
 * Decodes @meta, verifies its signature and that it hashes to @name: the
 * self-certifying check anyone holding only the name can make.
 */
SCL_NODISCARD enum scl_err scl_capsule_meta_check(struct scl_capsule_meta *out,
    const uint8_t name[SCL_NAME_BYTES], struct scl_slice meta);

/**
 * Answers to wait for when asking servers for heads: N - W + 1, so that
 * any head a write quorum acknowledged is among them, capped at the
 * @n_servers asked (0: no cap) so that a smaller set is not waited for in
 * vain.
 */
unsigned scl_capsule_read_quorum(const struct scl_capsule_meta *m,
    size_t n_servers);

/* --- Writer certificates --------------------------------------------- */

struct scl_capsule_cert {
	uint8_t capsule[SCL_NAME_BYTES];
	uint8_t writer[SCL_WRITER_BYTES];	/* admitted Ed25519 key */
	uint8_t box_key[SCL_BOX_PUBLIC_BYTES];	/* where data keys are wrapped */
	uint8_t measurement[32];		/* attested code, or zeros */
	uint64_t issued_us;
	uint8_t sig[SCL_SIGNATURE_BYTES];
};

/** Signs @c (its sig field is ignored) with @owner into @out. */
SCL_NODISCARD enum scl_err scl_capsule_cert_encode(struct scl_buf *out,
    const struct scl_capsule_cert *c, const struct scl_sign_key *owner);

/** Parses a certificate (no signature check). */
SCL_NODISCARD enum scl_err scl_capsule_cert_decode(struct scl_capsule_cert *out,
    struct scl_slice in);

/** Checks that @c admits @writer to @capsule and is signed by @owner. */
SCL_NODISCARD enum scl_err scl_capsule_cert_verify(
    const struct scl_capsule_cert *c, const uint8_t capsule[SCL_NAME_BYTES],
    const uint8_t owner[SCL_SIGN_PUBLIC_BYTES],
    const uint8_t writer[SCL_WRITER_BYTES]);

/* --- Revocations ------------------------------------------------------ */

/**
 * The body of a REVOKE record (owner's chain only, stored plain so that
 * servers can enforce it): the writer's records up to @max_seqno stay
 * valid; later ones are refused.  Layout: u16 version (1), u16 reserved,
 * 32 writer, u64 max seqno.
 */
struct scl_revocation {
	uint8_t writer[SCL_WRITER_BYTES];
	uint64_t max_seqno;
};

SCL_NODISCARD enum scl_err scl_revocation_encode(struct scl_buf *out,
    const struct scl_revocation *r);
SCL_NODISCARD enum scl_err scl_revocation_decode(struct scl_revocation *out,
    struct scl_slice in);

/**
 * The revocations a reader found in the owner's chain (filled by
 * scl_capsule_verify_chain, see scl_capsule_verify_stats): for each
 * revoked writer the lowest last valid seqno any REVOKE gave it, and the
 * owner's record that said so.  Owns its array: ..._dispose().
 */
struct scl_capsule_revoked {
	uint8_t writer[SCL_WRITER_BYTES];
	uint64_t max_seqno;
	uint64_t by_seqno;	/* the owner's REVOKE record */
};

struct scl_capsule_revocations {
	size_t n, cap;
	struct scl_capsule_revoked *v;
};

void scl_capsule_revocations_dispose(struct scl_capsule_revocations *r);

/** Adds (or tightens) @writer's revocation. */
SCL_NODISCARD enum scl_err scl_capsule_revocations_add(
    struct scl_capsule_revocations *r, const struct scl_revocation *rv,
    uint64_t by_seqno);

/** @writer's revocation, or NULL if none was found. */
const struct scl_capsule_revoked *scl_capsule_revocations_find(
    const struct scl_capsule_revocations *r,
    const uint8_t writer[SCL_WRITER_BYTES]);

/* --- Records --------------------------------------------------------- */

/**
 * A decoded record.  Pointers borrow from the bytes given to the decoder.
 * links[i] (32 bytes each) is the hash of record seqno - 2^i; there is one
 * link per i in 0..tz(seqno) with seqno - 2^i >= 1.
 */
struct scl_record {
	uint16_t version;
	uint8_t type;		/* enum scl_record_type */
	uint8_t flags;		/* SCL_RECORD_FLAG_* */
	const uint8_t *capsule;	/* SCL_NAME_BYTES */
	const uint8_t *writer;	/* SCL_WRITER_BYTES */
	uint64_t seqno;		/* >= 1 */
	uint64_t lamport;
	uint32_t epoch;		/* data key epoch; 0 when not sealed */
	/* v1, v2: the stored nonce (SCL_AEAD_NONCE_BYTES); v3: NULL, the
	 * nonce is the seqno (scl_capsule_record_nonce) */
	const uint8_t *nonce;
	/* v3: the writer's key salt (SCL_RECORD_KEY_SALT_BYTES); else NULL */
	const uint8_t *key_salt;
	uint8_t n_links;
	uint8_t n_merge;
	const uint8_t *links;	/* n_links * 32 bytes */
	const uint8_t *merge;	/* n_merge * 32 bytes */
	struct scl_slice header;	/* exact header bytes: the AEAD's AD */
	struct scl_slice body;		/* ciphertext+tag, or plain payload */
};

/** Number of links a record with @seqno carries. */
unsigned scl_capsule_link_count(uint64_t seqno);

/**
 * Parses a header alone (as in proofs); sets out->body to an empty slice
 * and *consumed to the header length.  Structural checks only.
 */
SCL_NODISCARD enum scl_err scl_capsule_header_decode(struct scl_record *out,
    size_t *consumed, struct scl_slice in);

/** Parses a whole record (header then exactly body_len bytes). */
SCL_NODISCARD enum scl_err scl_capsule_record_decode(struct scl_record *out,
    struct scl_slice in);

/**
 * Record hash = H(header || H(body)), H by the record's version: v1
 * BLAKE2b-256, v2 SHA-256.  Fails only when OpenSSL cannot allocate.
 */
SCL_NODISCARD enum scl_err scl_capsule_record_hash(
    uint8_t out[SCL_HASH_BYTES], const struct scl_record *r);

/** Same, from a decoded header and the hash of a body not at hand
 * (proofs); the version is the header's. */
SCL_NODISCARD enum scl_err scl_capsule_header_hash(
    uint8_t out[SCL_HASH_BYTES], struct scl_slice header,
    const uint8_t body_hash[SCL_HASH_BYTES]);

/* --- Heartbeats ------------------------------------------------------ */

struct scl_heartbeat {
	uint8_t capsule[SCL_NAME_BYTES];
	uint8_t writer[SCL_WRITER_BYTES];
	uint64_t seqno;
	uint8_t hash[SCL_HASH_BYTES];	/* hash of record (writer, seqno) */
	uint64_t time_us;		/* writer's clock when signed */
	uint8_t sig[SCL_SIGNATURE_BYTES];
};

/** Fills hb->sig with @key's signature and encodes @hb into @out. */
SCL_NODISCARD enum scl_err scl_capsule_heartbeat_sign(struct scl_buf *out,
    struct scl_heartbeat *hb, const struct scl_sign_key *key);

/** Parses a heartbeat (no signature check). */
SCL_NODISCARD enum scl_err scl_capsule_heartbeat_decode(
    struct scl_heartbeat *out, struct scl_slice in);

/** Checks the signature against the writer id inside the heartbeat. */
SCL_NODISCARD enum scl_err scl_capsule_heartbeat_verify(
    const struct scl_heartbeat *hb);

/* --- Keyrings -------------------------------------------------------- */

/** The secrets one holder keeps for one capsule (a key file's body). */
struct scl_capsule_keyring {
	uint8_t capsule[SCL_NAME_BYTES];
	bool has_owner;
	uint8_t owner_seed[SCL_SIGN_SEED_BYTES];
	uint8_t writer_seed[SCL_SIGN_SEED_BYTES];
	uint32_t n_epochs;
	struct {
		uint32_t epoch;
		uint8_t key[SCL_AEAD_KEY_BYTES];
	} epochs[SCL_EPOCHS_MAX];	/* ascending epoch numbers */
};

/** Owned by the caller; wipe with scl_capsule_keyring_wipe(). */
SCL_NODISCARD enum scl_err scl_capsule_keyring_encode(struct scl_buf *out,
    const struct scl_capsule_keyring *k);
SCL_NODISCARD enum scl_err scl_capsule_keyring_decode(
    struct scl_capsule_keyring *out, struct scl_slice in);
void scl_capsule_keyring_wipe(struct scl_capsule_keyring *k);

/** The key of @epoch, or NULL. Borrowed from @k. */
const uint8_t *scl_capsule_keyring_key(const struct scl_capsule_keyring *k,
    uint32_t epoch);

/**
 * The AEAD key of records v1 and v2 in an epoch: KDF(data key, "scl
 * writer key v1", capsule || writer || epoch).  Distinct writers get
 * distinct keys, so nonces (seqno || salt) never collide across writers.
 */
void scl_capsule_writer_key(uint8_t out[SCL_AEAD_KEY_BYTES],
    const uint8_t data_key[SCL_AEAD_KEY_BYTES],
    const uint8_t capsule[SCL_NAME_BYTES],
    const uint8_t writer[SCL_WRITER_BYTES], uint32_t epoch);

/**
 * The AEAD key of records v3: KDF(data key, "scl record key v3", capsule
 * || writer || epoch || key salt).  The salt is random per writer start,
 * so even two copies of one writer's state seal under distinct keys.
 */
void scl_capsule_record_key(uint8_t out[SCL_AEAD_KEY_BYTES],
    const uint8_t data_key[SCL_AEAD_KEY_BYTES],
    const uint8_t capsule[SCL_NAME_BYTES],
    const uint8_t writer[SCL_WRITER_BYTES], uint32_t epoch,
    const uint8_t salt[SCL_RECORD_KEY_SALT_BYTES]);

/** The AEAD nonce of a sealed record: the stored one (v1, v2), or the
 * seqno (8 bytes LE) and 4 zero bytes (v3). */
void scl_capsule_record_nonce(uint8_t out[SCL_AEAD_NONCE_BYTES],
    const struct scl_record *r);

/* --- Sources: where verification reads records from ------------------- */

/**
 * Read access to one capsule's records, supplied by the store, a client or
 * a test.  Every function copies into @out (never lends storage memory, so
 * what is verified is what is used) and returns SCL_ENOTFOUND when absent.
 */
struct scl_capsule_source {
	void *ctx;
	/** Record (writer, seqno). */
	enum scl_err (*record)(void *ctx, const uint8_t *writer,
	    uint64_t seqno, struct scl_buf *out);
	/**
	 * The stored heartbeat with the smallest seqno >= @seqno; *@at is
	 * the seqno it is stored under (which a corrupted heartbeat may
	 * contradict).
	 */
	enum scl_err (*heartbeat_from)(void *ctx, const uint8_t *writer,
	    uint64_t seqno, uint64_t *at, struct scl_buf *out);
};

/* --- Chain checks: trust flowing down from a heartbeat ----------------- */

#define SCL_CHAIN_PENDING_MAX 256

/**
 * Hashes trusted so far for one writer chain.  Start it from a verified
 * heartbeat with scl_capsule_chain_init(); each scl_capsule_chain_check()
 * accepts a record only if its hash is one already trusted, and then
 * trusts the hashes its links commit to.  Caller-owned, no allocation.
 */
struct scl_capsule_chain {
	uint8_t capsule[SCL_NAME_BYTES];
	uint8_t writer[SCL_WRITER_BYTES];
	uint8_t owner[SCL_SIGN_PUBLIC_BYTES];
	size_t n_pending;
	struct {
		uint64_t seqno;
		uint64_t from;	/* record that committed to it; 0: heartbeat */
		uint8_t hash[SCL_HASH_BYTES];
	} pending[SCL_CHAIN_PENDING_MAX];
	uint64_t above_seqno;	/* last record checked, 0 before any */
	uint64_t above_lamport;	/* its Lamport time */
};

void scl_capsule_chain_init(struct scl_capsule_chain *c,
    const uint8_t capsule[SCL_NAME_BYTES],
    const uint8_t owner[SCL_SIGN_PUBLIC_BYTES],
    const struct scl_heartbeat *top);

/**
 * Starts trust at record (@writer, @seqno) with @hash, which the caller
 * already trusts (verified earlier in the same snapshot).
 */
void scl_capsule_chain_init_at(struct scl_capsule_chain *c,
    const uint8_t capsule[SCL_NAME_BYTES],
    const uint8_t owner[SCL_SIGN_PUBLIC_BYTES],
    const uint8_t writer[SCL_WRITER_BYTES], uint64_t seqno,
    const uint8_t hash[SCL_HASH_BYTES]);

/** Whether record @seqno's hash is trusted yet. */
bool scl_capsule_chain_knows(const struct scl_capsule_chain *c,
    uint64_t seqno);

/** Copies the trusted hash of @seqno; SCL_ENOTFOUND if not known. */
SCL_NODISCARD enum scl_err scl_capsule_chain_trusted(
    const struct scl_capsule_chain *c, uint64_t seqno,
    uint8_t out[SCL_HASH_BYTES]);

/**
 * Verifies @r against the trust gathered so far and extends it with r's
 * links.  @hash is r's hash (scl_capsule_record_hash).  Checks the header
 * fields (capsule, writer, flags, nonce, link count), that the hash is the
 * trusted one, Lamport order against the record above when consecutive,
 * and the certificate of a non-owner's seqno 1.  Messages name the record:
 * "record 3fa2c1d0/17: hash does not match the one record 18 commits to".
 */
SCL_NODISCARD enum scl_err scl_capsule_chain_check(struct scl_capsule_chain *c,
    const struct scl_record *r, const uint8_t hash[SCL_HASH_BYTES]);

/**
 * Records the hash a header commits to without having the body (proof
 * steps): like chain_check but on a header and its body hash.
 */
SCL_NODISCARD enum scl_err scl_capsule_chain_check_header(
    struct scl_capsule_chain *c, const struct scl_record *header,
    const uint8_t body_hash[SCL_HASH_BYTES]);

/**
 * The next seqno on the shortest path from @from (whose record has been
 * checked) down to @target: the largest jump 2^i, i <= tz(from), that does
 * not pass @target.  Paths take at most 2*log2(from - target) + 2 steps.
 */
uint64_t scl_capsule_path_next(uint64_t from, uint64_t target);

/* --- Writing ---------------------------------------------------------- */

/**
 * The state a writer (or an ascending verifier) carries from one record to
 * the next: last seqno and Lamport time, and level[i] = hash of the newest
 * record whose seqno has at least i trailing zero bits, which is exactly
 * what the next record's links point to.
 */
struct scl_capsule_head {
	uint64_t seqno;		/* 0: empty chain */
	uint64_t lamport;
	uint8_t level[SCL_LINKS_MAX][SCL_HASH_BYTES];
};

/**
 * Rebuilds a chain head from a source: verifies the heartbeat at @seqno
 * (the stored head; 0 for an empty chain), then reads and checks, down the
 * skip links, the at most 64 records the next record's links name.  A
 * writer never builds on a head it has not verified.
 */
SCL_NODISCARD enum scl_err scl_capsule_head_load(struct scl_capsule_head *out,
    const struct scl_capsule_source *src, const uint8_t capsule[SCL_NAME_BYTES],
    const uint8_t owner[SCL_SIGN_PUBLIC_BYTES],
    const uint8_t writer[SCL_WRITER_BYTES], uint64_t seqno);

/**
 * Verifies, ascending, that @r is the record that follows @head in
 * @writer's chain: its capsule and writer fields, its seqno, every link
 * equal to the hash @head says it must name, a Lamport time past the
 * head's, and the certificate rules.  On success @head advances past it
 * and @hash holds its hash.  This is how a server checks an append
 * against the chain it stores; the batch's heartbeat must then sign the
 * last hash.
 */
SCL_NODISCARD enum scl_err scl_capsule_head_advance(
    struct scl_capsule_head *head, const uint8_t capsule[SCL_NAME_BYTES],
    const uint8_t owner[SCL_SIGN_PUBLIC_BYTES],
    const uint8_t writer[SCL_WRITER_BYTES], const struct scl_record *r,
    uint8_t hash[SCL_HASH_BYTES]);

struct scl_capsule_batch;

/**
 * Decodes @hb_bytes into @out and checks that they sign @b: this
 * capsule's and writer's heartbeat at b's last record, over @last_hash
 * (that record's hash; NULL when the caller checks it another way), with
 * a valid signature.  SCL_EVERIFY says which part failed.
 */
SCL_NODISCARD enum scl_err scl_capsule_heartbeat_covers(
    struct scl_heartbeat *out, struct scl_slice hb_bytes,
    const struct scl_capsule_batch *b, const uint8_t *last_hash);

/**
 * Verifies that @b continues @head (which must be at b's first seqno - 1):
 * every record with scl_capsule_head_advance, then b's heartbeat: this
 * capsule and writer, over the last record's hash, validly signed.  Fills
 * b->hashes as it goes (decoders may leave them zero: each record is
 * hashed once).  The parsed heartbeat goes to @hb (may be NULL).  @head
 * advances only if everything verifies.  This is how a server checks an
 * append and a KVS replica a peer's batch.
 */
SCL_NODISCARD enum scl_err scl_capsule_batch_verify(
    struct scl_capsule_head *head, const uint8_t owner[SCL_SIGN_PUBLIC_BYTES],
    struct scl_capsule_batch *b, struct scl_heartbeat *hb);

/**
 * A batch of consecutive records of one writer plus the heartbeat that
 * signs its last record.  Owned: scl_capsule_batch_dispose().
 */
struct scl_capsule_batch {
	uint8_t capsule[SCL_NAME_BYTES];
	uint8_t writer[SCL_WRITER_BYTES];
	uint64_t first_seqno;	/* seqno of record 0 */
	uint64_t last_lamport;
	size_t n;		/* records */
	size_t cap;
	size_t *ends;		/* ends[i]: end of record i in data */
	uint8_t (*hashes)[SCL_HASH_BYTES];
	struct scl_buf data;	/* the records' bytes, back to back */
	struct scl_buf heartbeat;	/* empty until signed */
};

void scl_capsule_batch_init(struct scl_capsule_batch *b);
void scl_capsule_batch_dispose(struct scl_capsule_batch *b);
/** Empties @b for reuse, keeping its allocations. */
void scl_capsule_batch_clear(struct scl_capsule_batch *b);
/** Keeps @b's first @n records.  The heartbeat is left alone: the caller
 * sets the one that signs the new last record. */
void scl_capsule_batch_truncate(struct scl_capsule_batch *b, size_t n);
/** Drops @b's first @k records (ones already held), keeping at least
 * one: the heartbeat still signs the last. */
void scl_capsule_batch_trim_front(struct scl_capsule_batch *b, size_t k);
/** Record @i's bytes; borrowed from @b. */
struct scl_slice scl_capsule_batch_record(const struct scl_capsule_batch *b,
    size_t i);
/** Appends an already-encoded record (decoders, servers). */
SCL_NODISCARD enum scl_err scl_capsule_batch_add(struct scl_capsule_batch *b,
    struct scl_slice record, const uint8_t hash[SCL_HASH_BYTES]);

struct scl_capsule_writer;

/**
 * A writer appending to its own chain of @capsule, starting after @head
 * (copied).  @key is the writer's signing key (copied; wiped on free),
 * @data_key the epoch's data key (NULL for a writer of plain records only).
 * Owned: free with scl_capsule_writer_free().
 */
SCL_NODISCARD enum scl_err scl_capsule_writer_new(
    struct scl_capsule_writer **out, const uint8_t capsule[SCL_NAME_BYTES],
    enum scl_aead_suite suite, const struct scl_sign_key *key,
    uint32_t epoch, const uint8_t *data_key,
    const struct scl_capsule_head *head);
void scl_capsule_writer_free(struct scl_capsule_writer *w);

/**
 * Writes later records as @version (SCL_RECORD_VERSION_MIN to
 * SCL_RECORD_VERSION; the latter by default).  Version 1 is for readers
 * and servers of builds that predate version 2, during an upgrade.
 */
SCL_NODISCARD enum scl_err scl_capsule_writer_set_record_version(
    struct scl_capsule_writer *w, uint16_t version);

/** The writer's head: last seqno written and its state.  Borrowed. */
const struct scl_capsule_head *scl_capsule_writer_head(
    const struct scl_capsule_writer *w);

/**
 * Copies the writer's signing key into @out (wipe it after use).  For the
 * trusted core's actors, which sign a writer's heartbeats in parallel
 * with its sealing.
 */
SCL_NODISCARD enum scl_err scl_capsule_writer_copy_key(
    const struct scl_capsule_writer *w, struct scl_sign_key *out);

/** The writer's id (its Ed25519 public key).  Borrowed. */
const uint8_t *scl_capsule_writer_id(const struct scl_capsule_writer *w);

/**
 * Seals @payload as the writer's next record (DATA records are encrypted;
 * CERT and REVOKE are stored plain) and appends it to @b, which must be
 * empty or hold this writer's preceding records.  The writer's state
 * advances even if the caller later fails to store the batch: a seqno is
 * never sealed twice under the same nonce (the random salt also covers a
 * writer restarted from an older head).
 */
SCL_NODISCARD enum scl_err scl_capsule_writer_append(
    struct scl_capsule_writer *w, struct scl_capsule_batch *b,
    enum scl_record_type type, struct scl_slice payload);

/** Records v3 seal under a key from this salt instead of the random one
 * the writer drew (known-answer tests only: a salt must never repeat). */
SCL_NODISCARD enum scl_err scl_capsule_writer_set_key_salt(
    struct scl_capsule_writer *w,
    const uint8_t salt[SCL_RECORD_KEY_SALT_BYTES]);

/** As append, with caller-chosen Lamport time and nonce salt (records v1
 * and v2; v3 ignores it) (tests, KATs). */
SCL_NODISCARD enum scl_err scl_capsule_writer_append_ex(
    struct scl_capsule_writer *w, struct scl_capsule_batch *b,
    enum scl_record_type type, struct scl_slice payload, uint64_t lamport,
    const uint8_t salt[SCL_RECORD_NONCE_SALT_BYTES],
    struct scl_slice merge);

/**
 * Signs a heartbeat over @b's last record with @key into b->heartbeat,
 * from the batch alone (no writer state: actor threads sign batches
 * while the writer seals the next one).  @key must be b's writer.
 */
SCL_NODISCARD enum scl_err scl_capsule_batch_sign(struct scl_capsule_batch *b,
    const struct scl_sign_key *key, uint64_t time_us);

/** Signs a heartbeat over @b's last record into b->heartbeat. */
SCL_NODISCARD enum scl_err scl_capsule_writer_seal_batch(
    struct scl_capsule_writer *w, struct scl_capsule_batch *b,
    uint64_t time_us);

/* --- Reading ------------------------------------------------------------ */

/**
 * Opens a sealed record's payload into @out (replaced).  @data_key is the
 * key of r->epoch.  SCL_EVERIFY if the ciphertext or header was altered.
 */
SCL_NODISCARD enum scl_err scl_capsule_record_open(struct scl_buf *out,
    const struct scl_record *r, enum scl_aead_suite suite,
    const uint8_t data_key[SCL_AEAD_KEY_BYTES]);

/** Reusable opener that caches the AEAD context of one (writer, epoch). */
struct scl_capsule_opener;
SCL_NODISCARD enum scl_err scl_capsule_opener_new(
    struct scl_capsule_opener **out, enum scl_aead_suite suite,
    const struct scl_capsule_keyring *keys);
void scl_capsule_opener_free(struct scl_capsule_opener *o);
SCL_NODISCARD enum scl_err scl_capsule_opener_open(struct scl_capsule_opener *o,
    struct scl_buf *out, const struct scl_record *r);

/**
 * Called in ascending seqno order with each verified record and its
 * payload (opened if sealed and an opener was given, else the stored
 * body).  Both are borrowed for the call.  Non-OK stops the read.
 */
typedef enum scl_err (*scl_capsule_record_fn)(void *ctx,
    const struct scl_record *r, struct scl_slice payload);

/**
 * Reads records @from..@to (inclusive) of @writer, in order.  Nothing
 * reaches @fn before it was verified against the writer's signed
 * heartbeat at or above @to; the first bad record stops the read with a
 * message naming it.  Memory stays bounded: records are verified in
 * windows of a few MiB.
 */
SCL_NODISCARD enum scl_err scl_capsule_read_range(
    const struct scl_capsule_source *src, const uint8_t name[SCL_NAME_BYTES],
    const uint8_t owner[SCL_SIGN_PUBLIC_BYTES],
    const uint8_t writer[SCL_WRITER_BYTES], uint64_t from, uint64_t to,
    struct scl_capsule_opener *opener, scl_capsule_record_fn fn, void *ctx);

/* --- Proofs and evidence ------------------------------------------------ */

/**
 * Builds a membership proof of record (@writer, @seqno): the metadata, the
 * writer's certificate (empty for the owner), the nearest heartbeat at or
 * above the record, the headers on the skip path down to it, and the
 * record itself.  The proof is checked by scl_capsule_proof_check() with
 * nothing but the capsule name.
 */
SCL_NODISCARD enum scl_err scl_capsule_proof_build(struct scl_buf *out,
    const struct scl_capsule_source *src, struct scl_slice meta,
    struct scl_slice cert, const uint8_t writer[SCL_WRITER_BYTES],
    uint64_t seqno);

struct scl_capsule_proof_result {
	uint8_t writer[SCL_WRITER_BYTES];
	uint64_t seqno;
	uint8_t hash[SCL_HASH_BYTES];
	uint64_t heartbeat_seqno;
	uint64_t heartbeat_time_us;
	unsigned steps;			/* headers between heartbeat and record */
	struct scl_slice record;	/* borrowed from the proof bytes */
	struct scl_capsule_meta meta;
};

/** Verifies a proof against @name alone. */
SCL_NODISCARD enum scl_err scl_capsule_proof_check(
    struct scl_capsule_proof_result *out, const uint8_t name[SCL_NAME_BYTES],
    struct scl_slice proof);

/**
 * Equivocation evidence: two valid proofs for the same (capsule, writer,
 * seqno) whose records differ.  _build concatenates two proofs; _check
 * returns SCL_OK only if they really convict the writer.
 */
SCL_NODISCARD enum scl_err scl_capsule_evidence_build(struct scl_buf *out,
    struct scl_slice proof_a, struct scl_slice proof_b);
SCL_NODISCARD enum scl_err scl_capsule_evidence_check(
    struct scl_capsule_proof_result *a, struct scl_capsule_proof_result *b,
    const uint8_t name[SCL_NAME_BYTES], struct scl_slice evidence);

/* --- Whole-chain verification ------------------------------------------ */

struct scl_capsule_verify_stats {
	uint64_t records;
	uint64_t heartbeats;
	uint64_t payload_bytes;	/* opened plaintext, when keys were given */
	uint64_t body_bytes;	/* stored ciphertext */
	uint64_t opened;	/* records whose AEAD was checked */
	/* In: if set, the REVOKE records of the owner's chain are added to
	 * it as they verify (borrowed). */
	struct scl_capsule_revocations *revocations;
};

/**
 * Verifies writer @writer's chain 1..@head_seqno of the capsule described
 * by @meta/@name from @src: every record down from the newest heartbeat,
 * every heartbeat's signature, the certificate, and with @opener (may be
 * NULL) every DATA record's AEAD.  The first failure is returned with a
 * message naming the record or heartbeat and why.  Stats are added to.
 */
SCL_NODISCARD enum scl_err scl_capsule_verify_chain(
    struct scl_capsule_verify_stats *stats,
    const struct scl_capsule_source *src, const uint8_t name[SCL_NAME_BYTES],
    const struct scl_capsule_meta *meta, const uint8_t writer[SCL_WRITER_BYTES],
    uint64_t head_seqno, struct scl_capsule_opener *opener);

/** "3fa2c1d0/17": short writer id and seqno, for messages. */
char *scl_capsule_record_ref(char out[32], const uint8_t *writer,
    uint64_t seqno);

#ifdef __cplusplus
}
#endif
#endif
