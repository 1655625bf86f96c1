/*
 * kvclient.h - a client of a worker's KVS (its --listen socket), and the
 * frames both ends of that socket exchange (docs/PROTOCOL.md "KVS
 * requests").  The worker's host decodes requests and encodes replies
 * with the same functions clients use the other way round.
 *
 * A request frame is `u8 kind, u8 version, u64 id, u8 flags, u32 n` and
 * then n KVS requests (kv.h); a reply is `u8 kind, u8 version, u64 id,
 * u8 status (an enum scl_err, 0 ok), blob32 body`: the results in order,
 * the status JSON, or the reason for the refusal.  A refusal keeps the
 * code it was made with, in the core or in the host.
 *
 * A client is one ZeroMQ DEALER with its own context; use it from one
 * thread.  Requests may be pipelined (send, then recv in any order of
 * ids); the one-request calls wait for their own reply and drop others.
 */
#ifndef SCL_KVCLIENT_H
#define SCL_KVCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scl/buf.h"
#include "scl/err.h"
#include "scl/kv.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SCL_KVCLIENT_VERSION 2

enum scl_kvclient_kind {
	SCL_KVCLIENT_OPS = 1,		/* KVS requests -> their results */
	SCL_KVCLIENT_STATUS = 2,	/* n = 0 -> the counters as JSON */
	/* Benchmarks: KVS requests the core runs as a lambda in it would,
	 * keeping no results -> u64 nanoseconds the core took. */
	SCL_KVCLIENT_TIMED = 3,
};

/** Flags: reply only once the capsule's write quorum holds the writes. */
#define SCL_KVCLIENT_DURABLE 0x01
#define SCL_KVCLIENT_FLAGS_KNOWN SCL_KVCLIENT_DURABLE

/** The largest frame either end accepts (a request of SCL_CORE_MSG_MAX
 * less the core's framing, or a reply). */
#define SCL_KVCLIENT_FRAME_MAX ((size_t)17 << 20)

/* --- Frames -------------------------------------------------------------- */

struct scl_kvclient_request {
	uint8_t kind;
	uint64_t id;
	uint8_t flags;
	uint32_t n;
	struct scl_slice ops;		/* borrowed: the encoded requests */
};

SCL_NODISCARD enum scl_err scl_kvclient_request_encode(struct scl_buf *out,
    const struct scl_kvclient_request *r);
/**
 * Decodes a request frame, checking its version, kind and flags (not the
 * KVS requests: the core does).  On failure the kind and id are still
 * set when the frame holds them (else 0), so that the refusal can be
 * addressed.
 */
SCL_NODISCARD enum scl_err scl_kvclient_request_decode(
    struct scl_kvclient_request *out, struct scl_slice frame);

struct scl_kvclient_reply {
	uint8_t kind;
	uint64_t id;
	enum scl_err err;		/* SCL_OK, or the refusal's code */
	struct scl_slice body;		/* results, JSON, or the reason */
};

SCL_NODISCARD enum scl_err scl_kvclient_reply_encode(struct scl_buf *out,
    const struct scl_kvclient_reply *r);
SCL_NODISCARD enum scl_err scl_kvclient_reply_decode(
    struct scl_kvclient_reply *out, struct scl_slice frame);

/* --- The client ----------------------------------------------------------- */

#define SCL_KVCLIENT_TIMEOUT_MS_DEFAULT 10000

struct scl_kvclient_options {
	unsigned timeout_ms;		/* for each reply */
};

#define SCL_KVCLIENT_OPTIONS_INIT { SCL_KVCLIENT_TIMEOUT_MS_DEFAULT }

struct scl_kvclient;

/** A client of the worker at @endpoint (ZeroMQ connects in the
 * background: an absent worker shows as a timeout).  @opt may be NULL.
 * Owned: scl_kvclient_free(). */
SCL_NODISCARD enum scl_err scl_kvclient_new(struct scl_kvclient **out,
    const char *endpoint, const struct scl_kvclient_options *opt);
void scl_kvclient_free(struct scl_kvclient *c);

/** Sends one request without waiting; its id in *@id. */
SCL_NODISCARD enum scl_err scl_kvclient_send(struct scl_kvclient *c,
    uint8_t kind, uint8_t flags, uint32_t n, struct scl_slice ops,
    uint64_t *id);
/** The next reply (borrowed until the next recv or call), whatever its
 * status; SCL_ETIMEOUT after the timeout. */
SCL_NODISCARD enum scl_err scl_kvclient_recv(struct scl_kvclient *c,
    struct scl_kvclient_reply *out);

/**
 * Sends one request and waits for its reply (borrowed until the next
 * recv or call).  A refusal returns its own code, with "worker ENDPOINT:
 * <reason>" as the message.
 */
SCL_NODISCARD enum scl_err scl_kvclient_call(struct scl_kvclient *c,
    uint8_t kind, uint8_t flags, uint32_t n, struct scl_slice ops,
    struct scl_kvclient_reply *out);

/**
 * One KVS request and its result (borrowed until the next recv or call).
 * A PUT or DELETE the replica refused returns the refusal's code and
 * reason; a GET of a missing key is SCL_OK with @out->ok false.
 */
SCL_NODISCARD enum scl_err scl_kvclient_one(struct scl_kvclient *c,
    const struct scl_kvreq *r, uint8_t flags, struct scl_kvres *out);

/** The worker's counters as JSON (borrowed until the next call). */
SCL_NODISCARD enum scl_err scl_kvclient_status(struct scl_kvclient *c,
    struct scl_slice *json);

/** The endpoint this client talks to. */
const char *scl_kvclient_endpoint(const struct scl_kvclient *c);

#ifdef __cplusplus
}
#endif
#endif
