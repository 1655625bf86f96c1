/*
 * store.h - durable local storage of capsules in LMDB.
 *
 * One LMDB environment holds any number of capsules: metadata, records by
 * (capsule, writer, seqno), heartbeats, per-writer heads, a hash index and
 * equivocation evidence (layout in docs/FORMAT.md "Store").  Every append
 * is one atomic write transaction with an fsync'd commit: a batch is
 * stored whole with its heartbeat or not at all.  The group committer
 * folds batches queued meanwhile into the same transaction, so one fsync
 * serves many batches (the "group commit" of databases).
 *
 * The store checks seqno continuity, not signatures: callers verify with
 * the capsule module first (the server does, the writer made them).
 */
#ifndef SCL_STORE_H
#define SCL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scl/buf.h"
#include "scl/capsule.h"
#include "scl/err.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SCL_STORE_VERSION 1

struct scl_store;

struct scl_store_options {
	size_t map_size;	/* bytes of address space; 0: 256 GiB */
	bool no_sync;		/* skip fsync: benchmarks of CPU cost only */
};

/**
 * Opens (creating, mode 0700) the store in directory @dir.  Owned: close
 * with scl_store_close().  @opt may be NULL.  SCL_EVERSION for a store
 * written by a newer format.
 */
SCL_NODISCARD enum scl_err scl_store_open(struct scl_store **out,
    const char *dir, const struct scl_store_options *opt);
void scl_store_close(struct scl_store *s);

/** Stores capsule metadata under its name (idempotent). */
SCL_NODISCARD enum scl_err scl_store_put_meta(struct scl_store *s,
    const uint8_t name[SCL_NAME_BYTES], struct scl_slice meta);

/** Copies the metadata of @name into @out; SCL_ENOTFOUND if unknown. */
SCL_NODISCARD enum scl_err scl_store_get_meta(struct scl_store *s,
    const uint8_t name[SCL_NAME_BYTES], struct scl_buf *out);

typedef int (*scl_store_capsule_fn)(void *ctx,
    const uint8_t name[SCL_NAME_BYTES], struct scl_slice meta);

/** Calls @fn for every capsule; stops early when @fn returns non-zero. */
SCL_NODISCARD enum scl_err scl_store_each_capsule(struct scl_store *s,
    scl_store_capsule_fn fn, void *ctx);

struct scl_store_head {
	uint64_t seqno;		/* newest stored record; 0: none */
	uint64_t lamport;
	uint8_t hash[SCL_HASH_BYTES];
};

/** The head of one writer's chain; zeros (seqno 0) if it has none. */
SCL_NODISCARD enum scl_err scl_store_get_head(struct scl_store *s,
    const uint8_t name[SCL_NAME_BYTES], const uint8_t writer[SCL_WRITER_BYTES],
    struct scl_store_head *out);

typedef int (*scl_store_writer_fn)(void *ctx,
    const uint8_t writer[SCL_WRITER_BYTES], const struct scl_store_head *head);

/** Calls @fn for each writer of @name, in writer-id order. */
SCL_NODISCARD enum scl_err scl_store_each_writer(struct scl_store *s,
    const uint8_t name[SCL_NAME_BYTES], scl_store_writer_fn fn, void *ctx);

/**
 * Stores @n batches atomically in one fsync'd transaction.  Each batch
 * must continue its writer's stored head (SCL_ECONFLICT otherwise) and
 * carry a heartbeat over its last record.  On any failure nothing of any
 * batch is stored.
 */
SCL_NODISCARD enum scl_err scl_store_append(struct scl_store *s,
    const struct scl_capsule_batch *const *batches, size_t n);

/** Copies record (writer, seqno) into @out. */
SCL_NODISCARD enum scl_err scl_store_get_record(struct scl_store *s,
    const uint8_t name[SCL_NAME_BYTES], const uint8_t writer[SCL_WRITER_BYTES],
    uint64_t seqno, struct scl_buf *out);

/**
 * Finds (writer, seqno) of the record with @hash among the records a
 * stored heartbeat signs (the last record of each batch: the heads other
 * writers merge and readers ask for).  SCL_ENOTFOUND otherwise.
 */
SCL_NODISCARD enum scl_err scl_store_find_hash(struct scl_store *s,
    const uint8_t name[SCL_NAME_BYTES], const uint8_t hash[SCL_HASH_BYTES],
    uint8_t writer[SCL_WRITER_BYTES], uint64_t *seqno);

/**
 * If the owner revoked @writer in @name (a stored REVOKE record), sets
 * *@max_seqno to the last of its records that stays valid; SCL_ENOTFOUND
 * (no message) if not revoked.
 */
enum scl_err scl_store_revocation(struct scl_store *s,
    const uint8_t name[SCL_NAME_BYTES], const uint8_t writer[SCL_WRITER_BYTES],
    uint64_t *max_seqno);

/** Stores equivocation evidence against (writer, seqno); idempotent. */
SCL_NODISCARD enum scl_err scl_store_put_evidence(struct scl_store *s,
    const uint8_t name[SCL_NAME_BYTES], const uint8_t writer[SCL_WRITER_BYTES],
    uint64_t seqno, struct scl_slice evidence);

/** The lowest seqno at which @writer equivocated (evidence stored), or
 * SCL_ENOTFOUND. */
SCL_NODISCARD enum scl_err scl_store_first_evidence(struct scl_store *s,
    const uint8_t name[SCL_NAME_BYTES], const uint8_t writer[SCL_WRITER_BYTES],
    uint64_t *seqno);

typedef int (*scl_store_evidence_fn)(void *ctx,
    const uint8_t writer[SCL_WRITER_BYTES], uint64_t seqno,
    struct scl_slice evidence);

SCL_NODISCARD enum scl_err scl_store_each_evidence(struct scl_store *s,
    const uint8_t name[SCL_NAME_BYTES], scl_store_evidence_fn fn, void *ctx);

/* --- Snapshots ---------------------------------------------------------- */

/**
 * A consistent read-only view of one capsule (an LMDB read transaction).
 * Use from one thread at a time; end it promptly, since LMDB cannot reuse
 * pages a snapshot may still see.  Owned: scl_store_snapshot_end().
 */
struct scl_store_snapshot;

SCL_NODISCARD enum scl_err scl_store_snapshot_begin(
    struct scl_store_snapshot **out, struct scl_store *s,
    const uint8_t name[SCL_NAME_BYTES]);
void scl_store_snapshot_end(struct scl_store_snapshot *snap);

/** A capsule source reading from @snap (borrowed until snapshot_end). */
void scl_store_snapshot_source(struct scl_capsule_source *out,
    struct scl_store_snapshot *snap);

/* --- Group commit ------------------------------------------------------ */

/**
 * An atomic unit handed to the committer: one or more batches (of one or
 * several writers) stored together or not at all.  Caller-owned; the
 * batches are borrowed until `done`, which is set under the committer's
 * lock (read it through scl_store_committer_wait()).
 */
struct scl_store_job {
	const struct scl_capsule_batch *const *batches;
	size_t n_batches;
	/**
	 * Optional: called on the committer thread once the job is done
	 * (result and message set).  The job is the callee's from then on;
	 * the committer never touches it again.  Must not block.
	 */
	void (*on_done)(struct scl_store_job *job, void *arg);
	void *on_done_arg;
	enum scl_err result;
	char message[256];	/* scl_err_last() of a failure */
	bool done;
	const struct scl_capsule_batch *one_;	/* see scl_store_job_single */
	struct scl_store_job *next;	/* private to the committer */
};

/** Initializes @job (all fields) to carry the single batch @b. */
static inline void
scl_store_job_single(struct scl_store_job *job,
    const struct scl_capsule_batch *b)
{
	struct scl_store_job zero = { 0 };
	*job = zero;
	job->one_ = b;
	job->batches = &job->one_;
	job->n_batches = 1;
}

struct scl_store_committer;

/**
 * Starts a committer thread on @s.  At most @max_queued_bytes of batches
 * wait at once (0: 64 MiB); submit blocks beyond that (back-pressure).
 */
SCL_NODISCARD enum scl_err scl_store_committer_new(
    struct scl_store_committer **out, struct scl_store *s,
    size_t max_queued_bytes);

/** Commits what is queued, stops the thread and frees @c. */
void scl_store_committer_free(struct scl_store_committer *c);

/** Queues @job (each batch non-empty and signed). */
SCL_NODISCARD enum scl_err scl_store_committer_submit(
    struct scl_store_committer *c, struct scl_store_job *job);

/** Blocks until @job is done; returns its result (message in job). */
enum scl_err scl_store_committer_wait(struct scl_store_committer *c,
    struct scl_store_job *job);

struct scl_store_committer_stats {
	uint64_t commits;	/* fsync'd transactions */
	uint64_t jobs;
	uint64_t batches;
};

void scl_store_committer_stats(struct scl_store_committer *c,
    struct scl_store_committer_stats *out);

/* --- Appender: a writer feeding the committer ---------------------------- */

/**
 * Streams payloads into a writer's chain: records are sealed on the
 * caller's thread, grouped @batch_records to a heartbeat, and submitted
 * as jobs to the committer, so sealing the next batch overlaps the fsync
 * of the previous ones.  scl_store_appender_submit() ends a job: what was
 * added since the previous submit is stored atomically.  After a failure
 * every later call returns the first error.  Owned: _free(), which waits
 * for submitted jobs and drops anything added but not submitted.
 */
struct scl_store_appender;

SCL_NODISCARD enum scl_err scl_store_appender_new(
    struct scl_store_appender **out, struct scl_store_committer *c,
    struct scl_capsule_writer *w, size_t batch_records);
void scl_store_appender_free(struct scl_store_appender *a);

/** Seals @payload as the next record (DATA). */
SCL_NODISCARD enum scl_err scl_store_appender_add(struct scl_store_appender *a,
    struct scl_slice payload);

/** Signs the open batch and queues everything added since the last submit. */
SCL_NODISCARD enum scl_err scl_store_appender_submit(
    struct scl_store_appender *a);

/** Submits what is open and waits for every job; the first error, if any. */
SCL_NODISCARD enum scl_err scl_store_appender_finish(
    struct scl_store_appender *a);

struct scl_store_appender_stats {
	uint64_t records_stored;	/* acknowledged durable */
	uint64_t heartbeats_stored;
	uint64_t first_seqno;		/* of this appender's first record */
};

void scl_store_appender_stats(const struct scl_store_appender *a,
    struct scl_store_appender_stats *out);

#ifdef __cplusplus
}
#endif
#endif
