/*
 * worker.h - a PSL worker: an untrusted host driving a trusted core over
 * the enclave boundary (enclave.h).
 *
 * The core makes its own keys (Ed25519 to write, X25519 to receive data
 * keys), which never leave it.  The host fetches a nonce from the
 * capsule's key broker, asks the core for report data binding its
 * public keys to the nonce, has the platform attest it, and relays the
 * broker's answer: a writer certificate and data keys wrapped for the
 * core, which only the core can open.  From then on the core seals
 * records; the host only ships ciphertext.
 *
 * This is the untrusted side (src/worker/); the core is core.h, and the
 * two speak only the messages core.h encodes.  Serving a KVS, the host
 * answers clients (kvclient.h), publishes and receives through the
 * multicast router, and stores the core's batches on the capsule servers.
 */
#ifndef SCL_WORKER_H
#define SCL_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "scl/attest.h"
#include "scl/buf.h"
#include "scl/capsule.h"
#include "scl/enclave.h"
#include "scl/err.h"
#include "scl/kv.h"
#include "scl/log.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Defaults, each defined here and nowhere else (the CLI shows and uses
 * these). */
#define SCL_WORKER_ACTORS_DEFAULT 2
#define SCL_WORKER_RING_SPIN_US_DEFAULT 5
#define SCL_WORKER_BATCH_DELAY_US_DEFAULT 10000
#define SCL_WORKER_SEAL_GAP_US_DEFAULT 2000
#define SCL_WORKER_STORE_DELAY_US_DEFAULT 40000
#define SCL_WORKER_UNSTORED_MAX_DEFAULT ((size_t)64 << 20)

struct scl_worker_options {
	enum scl_tee tee;
	enum scl_attest_backend attest;
	const char *platform_key;	/* sim: the platform key file */
	const char *broker;		/* key broker endpoint */
	const char *measure_path;	/* code measured; NULL: /proc/self/exe */
	unsigned actor_threads;		/* crypto actors in the core (KVS) */
	/* How long each side polls its ring before sleeping; 0: the
	 * default.  Longer suits a host with cores to spare
	 * (docs/BENCHMARKS.md). */
	unsigned ring_spin_us;
	struct scl_logger log;
};

#define SCL_WORKER_OPTIONS_INIT                                               \
	{ .tee = SCL_TEE_PROCESS, .attest = SCL_ATTEST_SIM,                   \
	  .actor_threads = SCL_WORKER_ACTORS_DEFAULT,                         \
	  .ring_spin_us = SCL_WORKER_RING_SPIN_US_DEFAULT }

struct scl_worker;

/** Starts the core (do this before opening sockets: the process backend
 * forks).  Owned: scl_worker_stop(). */
SCL_NODISCARD enum scl_err scl_worker_start(struct scl_worker **out,
    const struct scl_worker_options *opt);

/** The core's public keys (its writer id and its box key). */
void scl_worker_keys(const struct scl_worker *w,
    uint8_t writer[SCL_WRITER_BYTES], uint8_t box_key[SCL_BOX_PUBLIC_BYTES]);

/**
 * Attests the core to the broker for the capsule described by @meta and
 * installs the certificate and data keys it grants.  Every refusal is
 * returned with the broker's reason.
 */
SCL_NODISCARD enum scl_err scl_worker_attest(struct scl_worker *w,
    struct scl_slice meta);

/**
 * Has the core seal @n payloads as its next records (its certificate
 * first, the first time) with one heartbeat, into @out (replaced).
 */
SCL_NODISCARD enum scl_err scl_worker_seal(struct scl_worker *w,
    const struct scl_slice *payloads, size_t n,
    struct scl_capsule_batch *out);


/* --- Serving: the host's network side -------------------------------------- */

struct scl_worker_kv_options {
	size_t batch_max_puts;		/* 0: SCL_KV_BATCH_PUTS_DEFAULT */
	uint64_t batch_delay_us;	/* 0: the default */
	bool plain;			/* benchmark baseline: no crypto,
					   no servers */
	uint16_t record_version;	/* 0: the newest (scl_kv_options) */
};

#define SCL_WORKER_KV_OPTIONS_INIT                                            \
	{ .batch_max_puts = SCL_KV_BATCH_PUTS_DEFAULT,                        \
	  .batch_delay_us = SCL_WORKER_BATCH_DELAY_US_DEFAULT }

/** Opens the KVS in the attested core (with @actor_threads actors
 * started at scl_worker_start: see scl_worker_options). */
SCL_NODISCARD enum scl_err scl_worker_kv_open(struct scl_worker *w,
    const struct scl_worker_kv_options *opt);

struct scl_worker_serve_options {
	const char *listen;		/* clients (scl kv, benchmarks) */
	const char *router;		/* the multicast router */
	const char *const *servers;	/* the capsule's servers */
	size_t n_servers;
	unsigned write_quorum;
	struct scl_slice meta;		/* the capsule's metadata */
	bool catch_up;			/* rebuild from the servers first */
	/* The seal clock closes a batch this long after the previous one
	 * was sealed, sooner than the batch delay (0: the default)... */
	uint64_t seal_gap_us;
	/* ...while the worker served fewer than this many client operations
	 * (reads included) since a batch last closed (0: always): a busy
	 * worker leaves batches to their size and delay, fewer and cheaper
	 * per operation. */
	uint64_t seal_clock_max;
	/* How long sealed batches may wait to go to the servers together as
	 * one append (0: at once).  A durable request does not wait. */
	uint64_t store_delay_us;
	/* The most sealed bytes that may wait for the servers (0: the
	 * default);
	 * from there on requests that write are refused (reads go on) until
	 * they hold some: a worker cut off from its servers must not grow
	 * without bound. */
	size_t unstored_max_bytes;
};

#define SCL_WORKER_SERVE_OPTIONS_INIT                                         \
	{ .catch_up = true, .seal_gap_us = SCL_WORKER_SEAL_GAP_US_DEFAULT,    \
	  .store_delay_us = SCL_WORKER_STORE_DELAY_US_DEFAULT,                \
	  .unstored_max_bytes = SCL_WORKER_UNSTORED_MAX_DEFAULT }

/**
 * Runs the host: serves clients, talks to the router and the servers,
 * feeds the core, until scl_worker_stop_serving().  Durable replies wait
 * for the servers' write quorum.
 */
SCL_NODISCARD enum scl_err scl_worker_serve(struct scl_worker *w,
    const struct scl_worker_serve_options *opt);
/** Async-signal-safe. */
void scl_worker_stop_serving(struct scl_worker *w);
/** The bound client endpoint, once serving. */
const char *scl_worker_endpoint(const struct scl_worker *w);

/** Stops the core; @ex (may be NULL) says how it ended. */
void scl_worker_stop(struct scl_worker *w, struct scl_enclave_exit *ex);

/** The underlying enclave (for status and tests). */
struct scl_enclave *scl_worker_enclave(struct scl_worker *w);

#ifdef __cplusplus
}
#endif
#endif
