/*
 * capsule_int.h - private to src/capsule.
 */
#ifndef SCL_CAPSULE_INT_H
#define SCL_CAPSULE_INT_H

#include "scl/capsule.h"
#include "scl/codec.h"

/* Domain-separation prefixes of every signed message (FORMAT.md).  Each
 * ends in a NUL so no prefix is a prefix of another's message. */
#define SCL_SIGCTX_META "SCL metadata v1"
#define SCL_SIGCTX_CERT "SCL writer certificate v1"
#define SCL_SIGCTX_HEARTBEAT "SCL heartbeat v1"

/** Signs (@ctx NUL @msg) with @key. */
void scl_capsule__sign(uint8_t sig[SCL_SIGNATURE_BYTES],
    const struct scl_sign_key *key, const char *ctx, struct scl_slice msg);

/** Verifies a signature made by scl_capsule__sign. */
enum scl_err scl_capsule__verify(const uint8_t sig[SCL_SIGNATURE_BYTES],
    const uint8_t pk[SCL_SIGN_PUBLIC_BYTES], const char *ctx,
    struct scl_slice msg);

/**
 * Fetches record @seqno of c->writer from @src into @buf, decodes it into
 * @rec (borrowing @buf), checks it is stored where it claims and accepts
 * it into @c; @hash receives its hash.  Messages name the record.
 */
enum scl_err scl_capsule__fetch_checked(const struct scl_capsule_source *src,
    struct scl_capsule_chain *c, uint64_t seqno, struct scl_buf *buf,
    struct scl_record *rec, uint8_t hash[SCL_HASH_BYTES]);

/**
 * Fetches the writer's heartbeat with the smallest seqno >= @seqno and
 * verifies it (decoding, placement, capsule, writer, signature).
 */
enum scl_err scl_capsule__fetch_heartbeat(const struct scl_capsule_source *src,
    const uint8_t capsule[SCL_NAME_BYTES], const uint8_t *writer,
    uint64_t seqno, struct scl_buf *buf, struct scl_heartbeat *hb);

/** Moves @h past a new record (level i = hash for i <= tz(seqno)). */
void scl_capsule__head_push(struct scl_capsule_head *h, uint64_t seqno,
    uint64_t lamport, const uint8_t hash[SCL_HASH_BYTES]);

/** H(body) for a record of @version (one its decoder accepted). */
enum scl_err scl_capsule__body_hash(uint8_t out[SCL_HASH_BYTES],
    uint16_t version, struct scl_slice body);

/** Number of trailing zero bits of a non-zero @v. */
static inline unsigned
scl_capsule__tz(uint64_t v)
{
	return (unsigned)__builtin_ctzll(v);
}

#endif
