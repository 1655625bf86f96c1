/*
 * actors.h - crypto actors: a pool of threads that run sign, verify,
 * seal, open and hash work in batches, and the batcher that turns a
 * writer's puts into sealed, chained, signed records on them.
 *
 * Work is submitted to streams.  Every stream completes its jobs (runs
 * their `done` callbacks) in submission order, whatever thread ran them.
 * A serial stream also runs its jobs one at a time, in order: that is
 * where a writer's chain state lives, so it is never touched by two
 * threads at once (the race the PSL prototype had is impossible by
 * construction, not by locking the writer).
 */
#ifndef SCL_ACTORS_H
#define SCL_ACTORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scl/buf.h"
#include "scl/capsule.h"
#include "scl/err.h"

#ifdef __cplusplus
extern "C" {
#endif

struct scl_actors;
struct scl_actor_stream;
struct scl_actor_job;

/** The work; runs on an actor thread. */
typedef void (*scl_actor_run_fn)(struct scl_actor_job *job);
/** Completion; runs on an actor thread, in the stream's order, one at a
 * time per stream.  May submit further jobs.  May free the job. */
typedef void (*scl_actor_done_fn)(struct scl_actor_job *job);

/** Embed this in your job; caller-owned until `done` ran. */
struct scl_actor_job {
	scl_actor_run_fn run;
	scl_actor_done_fn done;		/* may be NULL */
	/* private */
	struct scl_actor_stream *stream_;
	uint64_t seq_;
	bool finished_;
	struct scl_actor_job *next_;	/* run queue */
	struct scl_actor_job *order_;	/* stream completion order */
};

/** @threads 0: one per online CPU.  Owned: scl_actors_free(). */
SCL_NODISCARD enum scl_err scl_actors_new(struct scl_actors **out,
    unsigned threads);
/** Waits for all submitted jobs, then stops the threads. */
void scl_actors_free(struct scl_actors *a);
unsigned scl_actors_threads(const struct scl_actors *a);

/** Owned: scl_actor_stream_free() (after waiting for its jobs). */
SCL_NODISCARD enum scl_err scl_actor_stream_new(struct scl_actors *a,
    struct scl_actor_stream **out, bool serial);
void scl_actor_stream_free(struct scl_actor_stream *s);

/** Queues @job on @s.  Never blocks on the pool. */
void scl_actor_submit(struct scl_actor_stream *s, struct scl_actor_job *job);

/** Blocks until every job submitted to @s so far is done. */
void scl_actor_stream_wait(struct scl_actor_stream *s);

/* --- Batcher: puts -> records ----------------------------------------- */

/** Receives each finished batch (one record and its heartbeat), in chain
 * order, on an actor thread.  The batch is borrowed for the call. */
typedef void (*scl_batcher_out_fn)(void *arg,
    const struct scl_capsule_batch *b);

struct scl_batcher_options {
	size_t max_puts;	/* per record; 0: 256 */
	size_t max_bytes;	/* per record; 0: 64 KiB */
	/* A flushed batch of at most this many bytes, with none in flight,
	 * is sealed and delivered on the caller's thread before flush
	 * returns (0: never).  Small batches gain nothing from the actors'
	 * parallelism and pay two thread hand-offs in latency. */
	size_t inline_max_bytes;
};

struct scl_batcher;

/**
 * A batcher for one writer (borrowed; from now on touched only by the
 * batcher's serial stream).  Puts accumulate on the caller's thread;
 * a full batch (or a flush) is sealed into one DATA record on the
 * writer's serial stream, its heartbeat signed on a parallel stream, and
 * delivered to @out in order.  Owned: scl_batcher_free().
 */
SCL_NODISCARD enum scl_err scl_batcher_new(struct scl_batcher **out,
    struct scl_actors *a, struct scl_capsule_writer *w,
    const struct scl_batcher_options *opt, scl_batcher_out_fn fn, void *arg);

/** Adds one put (copied).  A record payload is a sequence of u32-length
 * prefixed puts (docs/FORMAT.md "Batched puts"). */
SCL_NODISCARD enum scl_err scl_batcher_put(struct scl_batcher *b,
    struct scl_slice put);

/** Seals what is pending now (if anything). */
SCL_NODISCARD enum scl_err scl_batcher_flush(struct scl_batcher *b);

/** Flushes, waits for every batch to be delivered; the first error. */
SCL_NODISCARD enum scl_err scl_batcher_finish(struct scl_batcher *b);

void scl_batcher_free(struct scl_batcher *b);

/** Iterates the puts of a record payload; false at the end or on a
 * malformed payload (then *@bad is set). */
bool scl_batch_next_put(struct scl_slice *payload, struct scl_slice *put,
    bool *bad);

#ifdef __cplusplus
}
#endif
#endif
