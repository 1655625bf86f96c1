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
 * Core messages (docs/PROTOCOL.md "Worker core"): one op byte and a body;
 * replies are a status byte (0 ok, 1 error with text) and a body.
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
#include "scl/log.h"

#ifdef __cplusplus
extern "C" {
#endif

struct scl_actors;
struct scl_dec;

/** What the core starts with (its main's argument). */
struct scl_worker_boot {
	unsigned actor_threads;		/* crypto actors; 0: none */
	struct scl_actors *actors;	/* made by scl_worker_core_init */
};

/** The core's init (scl_enclave_options.init): starts the actors before
 * the seccomp filter. @arg: a struct scl_worker_boot. */
void scl_worker_core_init(void *arg);

/** The trusted core's main function (pass to scl_enclave_start). */
void scl_worker_core_main(struct scl_core_io *io, void *arg);

/** Core requests: the first byte of a message to the core. */
enum scl_core_op {
	SCL_CORE_INIT = 'I',	/* -> sign pk, box pk (makes keys once) */
	SCL_CORE_REPORT = 'R',	/* nonce -> 64 B report data */
	SCL_CORE_INSTALL = 'K',	/* meta, cert, wrapped keys -> () */
	SCL_CORE_WRITE = 'W',	/* payloads -> records, heartbeat */
	SCL_CORE_KV_OPEN = 'O',	/* KVS parameters -> () */
	SCL_CORE_KV_OPS = 'V',	/* now, KVS requests -> KV reply */
	SCL_CORE_KV_RECEIVE = 'M', /* now, n peers' messages -> KV reply */
	SCL_CORE_KV_TICK = 'T',	/* now -> KV reply */
	SCL_CORE_KV_STATS = 'Q', /* -> JSON text */
	SCL_CORE_KV_LOCAL = 'L', /* now, a YCSB op list -> KV reply */
};

/**
 * The core's state machine, apart from its rings (so that it can be
 * driven, and fuzzed, directly).  Every byte of a request is untrusted.
 */
struct scl_worker_core;

struct scl_worker_core *scl_worker_core_new(void);
/** Wipes every key the core holds. */
void scl_worker_core_free(struct scl_worker_core *c);
/** Handles one request; the reply (status byte, body) stays valid until
 * the next call. */
struct scl_slice scl_worker_core_handle(struct scl_worker_core *c,
    struct scl_slice msg);

struct scl_worker_options {
	enum scl_tee tee;
	enum scl_attest_backend attest;
	const char *platform_key;	/* sim: the platform key file */
	const char *broker;		/* key broker endpoint */
	const char *measure_path;	/* code measured; NULL: /proc/self/exe */
	unsigned actor_threads;		/* crypto actors in the core (KVS) */
	/* How long each side polls its ring before sleeping; 0: 5 us.
	 * Longer suits a host with cores to spare (docs/BENCHMARKS.md). */
	unsigned ring_spin_us;
	struct scl_logger log;
};

struct scl_worker;

/** Starts the core (do this before opening sockets: the process backend
 * forks).  Owned: scl_worker_stop(). */
SCL_NODISCARD enum scl_err scl_worker_start(struct scl_worker **out,
    const struct scl_worker_options *opt);

/** The core's public keys (its writer id and its box key). */
void scl_worker_keys(const struct scl_worker *w, uint8_t writer[32],
    uint8_t box_key[32]);

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


/* --- KVS requests (docs/PROTOCOL.md "KVS requests") -------------------- */

enum scl_kvreq_op {
	SCL_KVREQ_GET = 'g',
	SCL_KVREQ_PUT = 'p',
	SCL_KVREQ_DELETE = 'd',
	SCL_KVREQ_SCAN = 's',
	SCL_KVREQ_FLUSH = 'f',
};

/** One operation; slices are borrowed. */
struct scl_kvreq {
	enum scl_kvreq_op op;
	struct scl_slice key, value;		/* GET, PUT, DELETE */
	struct scl_slice prefix, start, end;	/* SCAN */
	uint32_t limit;				/* SCAN; 0: none */
};

/** Appends @r to @ops. */
SCL_NODISCARD enum scl_err scl_kvreq_encode(struct scl_buf *ops,
    const struct scl_kvreq *r);
/** Reads the next operation from @d (bounds-checked). */
SCL_NODISCARD enum scl_err scl_kvreq_decode(struct scl_dec *d,
    struct scl_kvreq *out);

/** One operation's result; slices borrow from the reply. */
struct scl_kvres {
	bool ok;			/* GET: found; PUT, DELETE: done */
	struct scl_slice value;		/* GET */
	uint64_t lamport;		/* GET: the value's version */
	uint8_t writer[32];
	struct scl_slice error;		/* PUT, DELETE when !ok */
	uint32_t n;			/* SCAN: entries */
	struct scl_slice entries;	/* SCAN: scl_kvres_scan_next */
	uint64_t through;		/* FLUSH */
};

/** Reads the result of an @op from @d. */
SCL_NODISCARD enum scl_err scl_kvres_decode(struct scl_dec *d,
    enum scl_kvreq_op op, struct scl_kvres *out);
/** Iterates a SCAN result's entries; false at the end or if malformed. */
bool scl_kvres_scan_next(struct scl_slice *entries, struct scl_slice *key,
    struct scl_slice *value);

/* Client frames (a worker's --listen socket). */
#define SCL_KVCLIENT_OPS 1
#define SCL_KVCLIENT_STATUS 2
/* Benchmarks only: a list of (u8 'g' or 'p', u32 key number) the core
 * runs on its replica the way a lambda inside it would (keys
 * "user%012u", 100-byte values); the result is the core's own u64
 * elapsed nanoseconds. */
#define SCL_KVCLIENT_LOCAL 3
#define SCL_KVCLIENT_DURABLE 0x01	/* reply once W servers hold it */

/** A request frame: kind, id, flags, and (OPS) @n encoded operations. */
SCL_NODISCARD enum scl_err scl_kvclient_request(struct scl_buf *out,
    uint8_t kind, uint64_t id, uint8_t flags, uint32_t n,
    struct scl_slice ops);
/** Parses a reply frame: its id, whether it succeeded, and its body
 * (results, status JSON, or the error text). */
SCL_NODISCARD enum scl_err scl_kvclient_reply(struct scl_slice frame,
    uint64_t *id, bool *ok, struct scl_slice *body);

/* --- Serving: the host's network side -------------------------------------- */

struct scl_worker_kv_options {
	size_t batch_max_puts;		/* 0: 1024 */
	uint64_t batch_delay_us;	/* 0: 2000 */
	bool plain;			/* benchmark baseline: no crypto,
					   no servers */
	uint16_t record_version;	/* 0: the newest (scl_kv_options) */
};

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
	 * was sealed, sooner than the batch delay (0: 2000)... */
	uint64_t seal_gap_us;
	/* ...while the worker served fewer than this many client operations
	 * (reads included) since a batch last closed (0: always): a busy
	 * worker leaves batches to their size and delay, fewer and cheaper
	 * per operation. */
	uint64_t seal_clock_max;
	/* How long sealed batches may wait to go to the servers together as
	 * one append (0: at once).  A durable request does not wait. */
	uint64_t store_delay_us;
	/* The most sealed bytes that may wait for the servers (0: 64 MiB);
	 * from there on requests that write are refused (reads go on) until
	 * they hold some: a worker cut off from its servers must not grow
	 * without bound. */
	size_t unstored_max_bytes;
};

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
