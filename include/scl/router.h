/*
 * router.h - the untrusted multicast router (DESIGN §2): delivers
 * messages by capsule name to whoever subscribed, best effort.
 *
 * Clients (workers' hosts, other routers) connect a ZeroMQ DEALER to the
 * router's ROUTER socket and send one-frame messages (docs/PROTOCOL.md
 * "Router"): SUB and UNSUB by capsule name, PUB (name, payload), STATUS.
 * A PUB goes to every other subscriber of the name, unchanged.  The
 * router may lose, duplicate and reorder; it never needs to be trusted,
 * because what it carries is already sealed and signed.
 *
 * Subscriptions are leases (SCL_ROUTER_LEASE_MS): clients renew them, so
 * a restarted router or a new link recovers by itself.  Each subscriber
 * has a bounded queue; when a slow one overflows, its oldest messages are
 * dropped and counted, never memory without bound.  Routers chain into a
 * tree: with an upstream, a router subscribes there to every name its
 * own subscribers want and forwards its clients' PUBs up.
 */
#ifndef SCL_ROUTER_H
#define SCL_ROUTER_H

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

#define SCL_ROUTER_VERSION 1
#define SCL_ROUTER_LEASE_MS 10000	/* a subscription lives this long */
#define SCL_ROUTER_RENEW_MS 2000	/* clients renew this often */
#define SCL_ROUTER_PAYLOAD_MAX ((size_t)16 << 20)

enum scl_router_msg_type {
	SCL_ROUTER_SUB = 0x41,
	SCL_ROUTER_UNSUB = 0x42,
	SCL_ROUTER_PUB = 0x43,
	SCL_ROUTER_STATUS = 0x44,	/* request: empty; reply: JSON text */
};

struct scl_router_msg {
	enum scl_router_msg_type type;
	uint8_t name[SCL_NAME_BYTES];	/* SUB, UNSUB, PUB */
	struct scl_slice payload;	/* PUB, STATUS reply: borrowed */
};

/** Encodes @m into @out (replaced). */
SCL_NODISCARD enum scl_err scl_router_msg_encode(struct scl_buf *out,
    const struct scl_router_msg *m);
/** Parses a frame; payload borrows from @in.  Bounds-checked. */
SCL_NODISCARD enum scl_err scl_router_msg_decode(struct scl_router_msg *out,
    struct scl_slice in);

/** Fault injection for tests (`--chaos`); all zero: none. */
struct scl_router_chaos {
	double loss, dup, reorder;	/* probabilities per delivery */
	uint64_t seed;
	unsigned reorder_max_ms;	/* 0: 20 */
};

/** Parses "loss=0.3,dup=0.1,reorder=0.2,seed=7" (any subset). */
SCL_NODISCARD enum scl_err scl_router_chaos_parse(
    struct scl_router_chaos *out, const char *spec);

/* A subscriber's queue, in messages and in bytes, unless told otherwise. */
#define SCL_ROUTER_QUEUE_DEFAULT 4096
#define SCL_ROUTER_QUEUE_BYTES_DEFAULT ((size_t)64 << 20)

struct scl_router_options {
	const char *listen;		/* ZeroMQ endpoint */
	const char *upstream;		/* parent router, or NULL */
	struct scl_router_chaos chaos;
	size_t queue_max;		/* messages per subscriber; 0: the default */
	size_t queue_max_bytes;		/* bytes per subscriber; 0: the default */
	struct scl_logger log;
};

struct scl_router_stats {
	uint64_t received, delivered, forwarded_up, from_upstream;
	uint64_t chaos_lost, chaos_duplicated, chaos_reordered;
	uint64_t queue_dropped, malformed;
	size_t subscribers, subscriptions;
	size_t queued_bytes;		/* now, in all subscribers' queues */
};

struct scl_router;

SCL_NODISCARD enum scl_err scl_router_new(struct scl_router **out,
    const struct scl_router_options *opt);
/** Serves until scl_router_stop(). */
SCL_NODISCARD enum scl_err scl_router_run(struct scl_router *r);
/** Async-signal-safe. */
void scl_router_stop(struct scl_router *r);
void scl_router_free(struct scl_router *r);
/** The bound endpoint (the port resolved if it was "*"). */
const char *scl_router_endpoint(const struct scl_router *r);
/** A snapshot; safe from another thread. */
void scl_router_stats(struct scl_router *r, struct scl_router_stats *out);

#ifdef __cplusplus
}
#endif
#endif
