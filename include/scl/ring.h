/*
 * ring.h - single-producer single-consumer message rings in shared memory:
 * how the untrusted host and the trusted core talk (DESIGN §6).
 *
 * A ring is a region of memory (a thread's heap, or a memfd mapped by two
 * processes) holding two cache-line-separated counters and a power-of-two
 * byte buffer of length-prefixed messages.  Each side attaches its own
 * handle and keeps its own copy of the geometry, so nothing the other
 * side writes into shared memory can make it read or write out of
 * bounds: every counter and length read from the ring is checked, and
 * messages are copied out before they are looked at (no TOCTOU).
 *
 * Back-pressure: a full ring blocks the producer; nothing is ever
 * dropped.  Waiting is adaptive: a side spins for a while (the ring stays
 * hot under load, a round trip costs well under a microsecond) and then
 * sleeps on a futex, so an idle ring uses no CPU.  How long it spins it
 * learns: spins that end in a sleep shrink the next one, spins the other
 * side ends grow it back (up to spin_us).
 *
 * Memory ordering: the producer publishes with a release store of `head`
 * after copying the message; the consumer acquires `head` before copying
 * it out, and releases `tail` after.  Sleep/wake uses the Dekker pattern
 * with sequentially consistent operations on (waiting flag, counter), so a
 * wake-up is never lost.
 */
#ifndef SCL_RING_H
#define SCL_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scl/err.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SCL_RING_MIN_CAPACITY 4096
#define SCL_RING_MAX_CAPACITY ((size_t)1 << 30)

/** Bytes of memory a ring of @capacity data bytes needs. */
size_t scl_ring_memory_size(size_t capacity);

/**
 * Formats @mem (scl_ring_memory_size(@capacity) bytes, 64-byte aligned)
 * as an empty ring.  @capacity is a power of two within the limits.
 */
SCL_NODISCARD enum scl_err scl_ring_format(void *mem, size_t capacity);

enum scl_ring_role { SCL_RING_PRODUCER = 1, SCL_RING_CONSUMER = 2 };

struct scl_ring_options {
	unsigned spin_us;	/* poll at most this long before sleeping;
				   0: 50 */
	bool no_spin;		/* sleep at once (the blocking regime) */
};

struct scl_ring;

/**
 * Attaches one side to a formatted ring of @capacity bytes at @mem (the
 * caller knows the capacity; what the memory claims is not trusted).
 * Owned: scl_ring_detach().  The memory stays the caller's.
 */
SCL_NODISCARD enum scl_err scl_ring_attach(struct scl_ring **out, void *mem,
    size_t capacity, enum scl_ring_role role,
    const struct scl_ring_options *opt);
void scl_ring_detach(struct scl_ring *r);

/** Largest message the ring accepts: capacity / 2 - 8 bytes. */
size_t scl_ring_max_message(const struct scl_ring *r);

/**
 * Copies a message into the ring, waiting while it is full (never
 * dropping).  SCL_ELIMIT for a message over the maximum, SCL_ECLOSED if
 * the ring was closed, SCL_EFORMAT if the other side corrupted it.
 */
SCL_NODISCARD enum scl_err scl_ring_send(struct scl_ring *r, const void *msg,
    size_t len);

/** Like send but never waits: SCL_EFULL when there is no room now. */
SCL_NODISCARD enum scl_err scl_ring_try_send(struct scl_ring *r,
    const void *msg, size_t len);

/**
 * Copies the next message into @buf (@cap bytes) and sets *@len.  Waits
 * up to @timeout_ms (-1: forever, 0: not at all; SCL_ETIMEOUT).
 * SCL_ELIMIT if the message does not fit @buf (it stays in the ring),
 * SCL_ECLOSED when closed and drained, SCL_EFORMAT on corruption.
 */
SCL_NODISCARD enum scl_err scl_ring_recv(struct scl_ring *r, void *buf,
    size_t cap, size_t *len, int timeout_ms);

/** Marks the ring closed and wakes both sides. */
void scl_ring_close(struct scl_ring *r);

struct scl_ring_stats {
	uint64_t messages, bytes;
	uint64_t sleeps;	/* futex waits this side made */
	uint64_t spins_won;	/* waits a spin ended, without a sleep */
	uint64_t wakes;		/* futex wakes this side issued */
	uint64_t full_waits;	/* sends that found the ring full */
};

void scl_ring_stats(const struct scl_ring *r, struct scl_ring_stats *out);

#ifdef __cplusplus
}
#endif
#endif
