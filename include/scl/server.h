/*
 * server.h - an untrusted capsule server.
 *
 * A server stores capsules in LMDB and answers the protocol of
 * docs/PROTOCOL.md on a ZeroMQ ROUTER socket.  It verifies every append
 * (metadata, writer certificate, chain continuity, heartbeat signature)
 * before storing it, acknowledges only after an fsync'd group commit with
 * a signed receipt, keeps equivocation evidence, and pulls what it lacks
 * from its peers (anti-entropy), so a server that was down or is new
 * catches up by itself.  It never holds a data key and never sees
 * plaintext.
 *
 * One thread runs the event loop (all sockets); the store's committer
 * thread runs the fsyncs.
 */
#ifndef SCL_SERVER_H
#define SCL_SERVER_H

#include <stddef.h>

#include "scl/err.h"
#include "scl/log.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SCL_SERVER_PEERS_MAX 16

/* How often a server compares heads with its peers (anti-entropy). */
#define SCL_SERVER_SYNC_MS_DEFAULT 200

struct scl_server_options {
	const char *listen;	/* ZeroMQ endpoint, e.g. tcp://127.0.0.1:7400 */
	const char *data_dir;	/* store and server.key live here */
	const char *peers[SCL_SERVER_PEERS_MAX];	/* other servers */
	size_t n_peers;
	unsigned sync_ms;	/* anti-entropy period; 0: the default */
	struct scl_logger log;	/* one line per notable event */
};

struct scl_server;

/**
 * Opens the store (creating it), loads or creates the server identity
 * (DIR/server.key, mode 0600) and binds the socket.  Owned: free with
 * scl_server_free().  @opt is copied (strings too).
 */
SCL_NODISCARD enum scl_err scl_server_new(struct scl_server **out,
    const struct scl_server_options *opt);

/**
 * Runs the event loop until scl_server_stop(); then commits and
 * acknowledges what was accepted, and returns.
 */
SCL_NODISCARD enum scl_err scl_server_run(struct scl_server *s);

/** Asks the loop to stop.  Async-signal-safe; callable from any thread. */
void scl_server_stop(struct scl_server *s);

void scl_server_free(struct scl_server *s);

/** The endpoint actually bound (resolves a "*" port); borrowed. */
const char *scl_server_endpoint(const struct scl_server *s);

#ifdef __cplusplus
}
#endif
#endif
