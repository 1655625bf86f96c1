/*
 * server_int.h - private to src/server: the server's state, shared by the
 * event loop (server.c), appends (append.c), reads (read.c) and
 * anti-entropy (sync.c).  Everything here is touched by the loop thread
 * only, except the done list, which the committer thread fills.
 */
#ifndef SCL_SERVER_INT_H
#define SCL_SERVER_INT_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "scl/capsule.h"
#include "scl/crypto.h"
#include "scl/log.h"
#include "scl/proto.h"
#include "scl/server.h"
#include "scl/store.h"

#define ROUTE_MAX 256		/* ZeroMQ routing ids are at most 255 bytes */
#define CHAIN_BUCKETS 1024
#define META_CACHE 256
#define SUBS_MAX 4096
#define PULLS_MAX 4096

/* Verified state of one writer chain, ahead of what is committed while
 * appends are in flight. */
struct chain {
	uint8_t name[SCL_NAME_BYTES];
	uint8_t writer[SCL_WRITER_BYTES];
	struct scl_capsule_head head;	/* verified, maybe not yet stored */
	unsigned inflight;		/* jobs submitted, not yet done */
	bool stale;			/* a commit failed: reload when idle */
	struct chain *next;		/* hash bucket */
};

struct meta_entry {
	uint8_t name[SCL_NAME_BYTES];
	struct scl_capsule_meta meta;
	bool used;
};

/* An accepted append on its way through the committer. */
struct pending {
	struct scl_store_job job;	/* first: the callback gets it */
	struct scl_capsule_batch batch;
	struct chain *chain;
	uint8_t route[ROUTE_MAX];
	size_t route_len;		/* 0: from anti-entropy, no reply */
	uint64_t req_id;
	struct scl_server *server;
	struct pending *next;		/* done list */
};

struct subscription {
	uint8_t route[ROUTE_MAX];
	size_t route_len;
	uint8_t name[SCL_NAME_BYTES];
	uint64_t expires_ms;
};

struct pull {
	uint8_t kind;			/* SCL_MSG_META_GET or SCL_MSG_READ */
	uint8_t name[SCL_NAME_BYTES];
	uint8_t writer[SCL_WRITER_BYTES];
	uint64_t from, to;
};

struct peer {
	char addr[256];
	void *sock;			/* DEALER to the peer's ROUTER */
	uint8_t waiting;		/* message type awaited, 0: idle */
	uint64_t req_id;
	uint64_t sent_ms;
	uint64_t next_sync_ms;
	uint8_t cursor[SCL_NAME_BYTES];	/* SYNC pagination */
	struct pull current;		/* what the awaited reply answers */
	struct pull *pulls;		/* queue of pulls, ring */
	size_t pull_head, pull_n;
	uint64_t pulled_records, syncs, failures;
	uint64_t last_ok_ms;
};

struct server_stats {
	uint64_t appends, records, duplicates, gaps, rejected, equivocations;
	uint64_t reads, bad_requests, notifies, commit_failures;
};

struct scl_server {
	struct scl_server_options opt;
	char listen[256], data_dir[4096], endpoint[256];
	char peer_addrs[SCL_SERVER_PEERS_MAX][256];
	struct scl_logger log;
	void *zctx, *router;
	struct scl_store *store;
	struct scl_store_committer *committer;
	struct scl_sign_key key;
	int wake_fd;			/* eventfd: jobs done, or stop */
	atomic_bool stopping;
	pthread_mutex_t done_lock;
	struct pending *done_head, *done_tail;
	struct chain *chains[CHAIN_BUCKETS];
	size_t n_chains;
	struct meta_entry metas[META_CACHE];
	struct subscription *subs;
	size_t n_subs;
	struct peer peers[SCL_SERVER_PEERS_MAX];
	size_t n_peers;
	uint64_t next_id;
	uint64_t started_ms;
	struct server_stats stats;
	struct scl_buf out;		/* reply scratch */
};

uint64_t scl_server__now_ms(void);

/** Sends one reply frame to @route (non-blocking; dropped if full). */
void scl_server__send(struct scl_server *s, const uint8_t *route,
    size_t route_len, struct scl_slice frame);

/** Sends an ERROR reply and logs it at @level. */
void scl_server__reply_error(struct scl_server *s, const uint8_t *route,
    size_t route_len, uint64_t id, enum scl_wire_err code, uint64_t detail,
    const char *fmt, ...) SCL_PRINTF(7, 8);

/** The verified metadata of @name, from cache or store; NULL if unknown. */
const struct scl_capsule_meta *scl_server__meta(struct scl_server *s,
    const uint8_t name[SCL_NAME_BYTES]);

/** Verifies and stores metadata; SCL_OK if new or already known. */
enum scl_err scl_server__put_meta(struct scl_server *s, struct scl_slice meta,
    uint8_t name_out[SCL_NAME_BYTES]);

/** Points a pending append's job at the loop's completion queue. */
void scl_server__job_init(struct scl_server *s, struct pending *p);

/* append.c */
/**
 * Verifies a batch (heartbeat, records) and submits it for commit.  With
 * @route_len 0 it came from anti-entropy and nobody is answered.  Failures
 * are answered (or logged) here; returns the outcome for the caller's
 * bookkeeping.
 */
enum scl_err scl_server__accept(struct scl_server *s, const uint8_t *route,
    size_t route_len, uint64_t id, const uint8_t name[SCL_NAME_BYTES],
    struct scl_slice heartbeat, const struct scl_msg_list *records);
/** Finishes a committed (or failed) append: ack, notify, log. */
void scl_server__finish(struct scl_server *s, struct pending *p);
/** The verified head seqno of a chain (loading it if needed). */
uint64_t scl_server__verified_head(struct scl_server *s, const uint8_t *name,
    const uint8_t *writer);
void scl_server__chains_free(struct scl_server *s);

/* read.c */
void scl_server__handle_read(struct scl_server *s, const uint8_t *route,
    size_t route_len, const struct scl_msg *m);

/* sync.c */
enum scl_err scl_server__peers_open(struct scl_server *s);
void scl_server__peers_close(struct scl_server *s);
void scl_server__peer_input(struct scl_server *s, struct peer *p);
void scl_server__sync_tick(struct scl_server *s, uint64_t now);
/** Makes every peer sync now (an append showed we are behind). */
void scl_server__sync_soon(struct scl_server *s);

#endif
