/*
 * worker_int.h - private to src/worker, the untrusted host of a worker:
 * its handle on the core (worker.c) and, while it serves a KVS, the
 * host's state (struct host), shared by the files that split it by
 * thread and by concern:
 *
 *   serve.c     the main loop: sockets, the seal clock, drain on stop
 *   replica.c   calls into the core and what they return: outputs to
 *               publish, store and fetch; peers' and fetched messages in
 *   clients.c   client requests in groups, replies, durable holds
 *   appender.c  the appender thread: sealed batches to the servers
 *   fetcher.c   the fetcher thread: gaps and catch-up from the servers
 *   durable.c   its poll of how far the servers hold each writer
 *
 * Nothing here ever holds a key: what the host relays is sealed and
 * verified by the core.
 */
#ifndef SCL_WORKER_INT_H
#define SCL_WORKER_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "scl/client.h"
#include "scl/core.h"
#include "scl/kvclient.h"
#include "scl/worker.h"

struct scl_worker {
	struct scl_worker_options opt;
	char broker[256], platform_key[4096], measure_path[4096];
	struct scl_enclave *e;
	struct scl_core_boot boot;	/* the core's copy, in thread mode */
	struct scl_core_keys keys;	/* the core's public keys */
	uint8_t *reply;			/* SCL_CORE_MSG_MAX: the last reply */
	atomic_bool stop_serving;
	char endpoint[256];		/* bound, once serving */
};

/**
 * One request to the core (@req: op byte and body); its reply's body in
 * *@body, borrowed from w->reply until the next call.  A refusal by the
 * core returns the core's own code and reason.
 */
enum scl_err scl_worker__call(struct scl_worker *w, struct scl_slice req,
    struct scl_slice *body);

/* --- Serving a KVS ----------------------------------------------------------- */

#define ROUTE_MAX 256

/* A client reply held until the servers hold its writes. */
struct held_reply {
	struct held_reply *next;
	uint64_t through;
	size_t route_len;
	uint8_t route[ROUTE_MAX];
	struct scl_buf frame;
};

/* A client request waiting in the group call being built. */
struct pending_req {
	uint8_t route[ROUTE_MAX];
	size_t route_len;
	uint8_t kind;
	uint64_t id;
	bool durable;
};

/*
 * The host while it serves a KVS.  The main loop owns everything but the
 * fields marked otherwise; the appender and fetcher threads read `opt`,
 * `name` and `copt` (fixed before they start) and talk to the main loop
 * only over their inproc sockets and the atomics.
 */
struct host {
	struct scl_worker *w;
	struct scl_worker_serve_options opt;
	uint8_t name[SCL_NAME_BYTES];
	struct scl_capsule_meta meta;	/* checked at start */
	void *zctx;
	void *clients;			/* ROUTER on --listen */
	void *router;			/* DEALER to the multicast router */
	void *app, *fetch;		/* PAIRs to the two threads */
	struct scl_buf req;		/* the core call being built */
	struct scl_buf frame;		/* scratch for one outgoing frame */

	/* The replica, as the core's last KV reply said. */
	uint64_t through;		/* own operations so far */
	uint64_t sealed;		/* own operations in sealed batches */
	uint64_t next_tick;		/* µs: when the core wants a tick */
	bool sealing;			/* batches still on its actors */
	bool more;			/* outputs left for another call */

	/* Durability: held replies wait until `durable` reaches them. */
	uint64_t durable;		/* own operations a write quorum holds */
	uint64_t urgent;		/* the appender was told a client
					   waits for these */
	struct held_reply *held;

	/* The seal clock (serve.c). */
	uint64_t sealed_at_us;		/* monotonic: a batch last sealed */
	uint64_t clock_refused;		/* `through` when a clocked seal failed */
	uint64_t served;		/* client operations, reads included */
	uint64_t served_at_seal;	/* `served` when a batch last sealed */

	/* What waits for the servers: sealed bytes handed to the appender
	 * (main loop) and stored or given up by it (appender); their
	 * difference, pipe included, is bounded by unstored_max. */
	uint64_t handed;
	_Atomic uint64_t settled;	/* written by the appender */
	size_t unstored_max;
	bool refusing;			/* writes are refused now (logged) */
	uint64_t refused;		/* requests refused so */

	/* The threads. */
	pthread_t app_th, fetch_th;
	bool app_started, fetch_started;
	atomic_bool closing;		/* they stop what they do */
	atomic_bool thread_failed;	/* one could not start: why */
	char thread_why[256];		/* written before thread_failed */
	struct scl_client_options copt;	/* their server clients' options */

	/* Counters for the status. */
	uint64_t published, fetched_in, appended;
	_Atomic uint64_t rollbacks_seen;	/* servers that served less
						   (fetcher.c) */
	bool caught_up;
	uint64_t next_sub_ms;		/* renew the router subscription */

	struct pending_req *pending;	/* SCL_CORE_GROUPS_MAX */
};

/* The frames the main loop sends the appender: u64 through and a sealed
 * batch message; u64 through alone (URGENT: a client waits for the
 * servers to hold it); or empty (stop).  The appender answers u64
 * through once a write quorum holds an append. */
#define URGENT_FRAME_BYTES 8
/* Frames the pipe to the appender holds each side: a backstop, far
 * above what the byte bound lets through in batches of any useful size. */
#define APPEND_PIPE_FRAMES 65536
/*
 * Frames between the main loop and the fetcher: a one-byte tag, then
 * (in the same ZeroMQ message, as a second frame) its body.  To the
 * fetcher: WANT (writer, u64 from, u64 to: fetch these), STORE (a peer's
 * batch message the servers lack: hand it on), or an empty frame (stop).
 * From it: BATCH (a fetched batch message), CAUGHT_UP (no body), and
 * DURABLE (n x (writer, u64 seqno): a write quorum of servers holds each
 * writer's chain through seqno).
 */
enum fetch_tag {
	FETCH_WANT = 'F',
	FETCH_STORE = 'S',
	FETCH_BATCH = 'B',
	FETCH_CAUGHT_UP = 'C',
	FETCH_DURABLE = 'D',
};
#define FETCH_WANT_BYTES (SCL_WRITER_BYTES + 16)
#define FETCH_DURABLE_ENTRY_BYTES (SCL_WRITER_BYTES + 8)

/* Sends a tagged frame (@body may be empty) on an inproc pipe; false if
 * the pipe would block or is gone. */
bool scl_worker__pipe_send(void *s, enum fetch_tag tag, struct scl_slice body,
    int flags);
/* Said in the log and to each client refused: the MiB waiting. */
#define SCL_WORKER_REFUSING_WRITES "the servers do not hold the last %llu " \
	"MiB of writes yet: writes are refused until they do (reads go on)"

/* serve.c */
void scl_worker__thread_failed(struct host *h, const char *who);

/* replica.c */
/* A KV call (@req) and the dispatch of its reply's outputs; *@results
 * borrows from the reply until the next call into the core. */
enum scl_err scl_worker__kv_call(struct host *h, struct scl_slice req,
    struct scl_slice *results);
enum scl_err scl_worker__tick(struct host *h);
void scl_worker__subscribe(struct host *h);
void scl_worker__read_router(struct host *h);
void scl_worker__read_fetcher(struct host *h);
void scl_worker__read_appender(struct host *h);
void scl_worker__want_durable(struct host *h, uint64_t through);
uint64_t scl_worker__unstored_bytes(struct host *h);

/* clients.c */
void scl_worker__read_clients(struct host *h);
void scl_worker__release_durable(struct host *h);
void scl_worker__drop_held(struct host *h);

/* durable.c: the fetcher's poll of the servers' heads (owned by the
 * fetcher; @c is its client, borrowed).  Sends FETCH_DURABLE on @s. */
struct scl_worker_durable;
struct scl_worker_durable *scl_worker__durable_new(struct host *h,
    struct scl_client *c);
void scl_worker__durable_poll(struct scl_worker_durable *d, void *s);

/* appender.c, fetcher.c: the threads' mains (arg: the host). */
void *scl_worker__appender_main(void *arg);
void *scl_worker__fetcher_main(void *arg);

#endif
