/*
 * core.h - the trusted core of a worker (DESIGN §6): the code that runs
 * inside the TEE, and the one codec for every message between it and its
 * untrusted host.
 *
 * The core makes its own keys (Ed25519 to write, X25519 to receive data
 * keys), which never leave it; binds them to an attestation nonce; installs
 * the owner's certificate and the data keys wrapped for it; seals records
 * for its chain; and runs a replica of the capsule's KVS (kv.h).  It is a
 * state machine driven by one request at a time: it does no I/O, and every
 * byte of a request is untrusted.  The core's code (src/core/, and the
 * modules it links: codec, crypto, capsule, kv, actors) includes nothing of
 * the host, the client, the router, the network protocol or ZeroMQ.
 *
 * Messages (docs/PROTOCOL.md "Worker core"): a request is one op byte and a
 * body; a reply is `u8 op` (the request's), `u8 status` (an enum scl_err:
 * 0 ok) and, on success, the op's body, or on failure `blob16 reason`.  The
 * host turns a failure back into the same enum scl_err with the core's
 * reason, so a refusal keeps its code and its words all the way to the
 * client.  Encoders and decoders of both directions live side by side in
 * src/core/msg.c; every decoder bounds-checks and rejects trailing bytes.
 */
#ifndef SCL_CORE_H
#define SCL_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scl/attest.h"
#include "scl/buf.h"
#include "scl/capsule.h"
#include "scl/crypto.h"
#include "scl/enclave.h"
#include "scl/err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --- Limits ---------------------------------------------------------------- */

/** The largest message either side sends (a request, or a KV reply with
 * its outputs and results). */
#define SCL_CORE_MSG_MAX ((size_t)17 << 20)
/** Peers' messages in one KV_RECEIVE. */
#define SCL_CORE_RECEIVE_MAX 64
/** Bytes of queued outputs a KV reply carries at most (more follow). */
#define SCL_CORE_OUTPUTS_MAX_BYTES ((size_t)8 << 20)
/** Writers' durable heads in one KV_DURABLE. */
#define SCL_CORE_DURABLE_MAX 1024
/** Client requests (groups) in one KV_OPS. */
#define SCL_CORE_GROUPS_MAX 256
/** The longest reason an error reply carries (longer ones are cut). */
#define SCL_CORE_REASON_MAX 1024
/** A wrapped data key: the key sealed to the core's box key. */
#define SCL_CORE_WRAPPED_KEY_BYTES (SCL_AEAD_KEY_BYTES + SCL_BOX_SEAL_OVERHEAD)

/** The first byte of every request. */
enum scl_core_op {
	SCL_CORE_INIT = 'I',	   /* -> writer key, box key (made once) */
	SCL_CORE_REPORT = 'R',	   /* nonce -> report data */
	SCL_CORE_INSTALL = 'K',	   /* meta, cert, wrapped keys -> () */
	SCL_CORE_WRITE = 'W',	   /* payloads -> records, heartbeat */
	SCL_CORE_KV_OPEN = 'O',	   /* KVS parameters -> () */
	SCL_CORE_KV_OPS = 'V',	   /* now, client request groups -> KV reply */
	SCL_CORE_KV_RECEIVE = 'M', /* now, peers' messages -> KV reply */
	SCL_CORE_KV_TICK = 'T',	   /* now -> KV reply */
	SCL_CORE_KV_STATS = 'Q',   /* -> JSON text */
	SCL_CORE_KV_TIMED = 'L',   /* now, KVS requests -> KV reply (ns) */
	SCL_CORE_KV_DURABLE = 'D', /* now, what the servers hold -> KV reply */
};

/** Whether @op is a request the core knows. */
bool scl_core_op_known(uint8_t op);

/* --- The core -------------------------------------------------------------- */

struct scl_actors;

/** What the core starts with: its main's and its init's argument. */
struct scl_core_boot {
	unsigned actor_threads;		/* crypto actors; 0: none */
	struct scl_actors *actors;	/* started by scl_core_init */
};

/** The core's init (scl_enclave_options.init): starts the crypto actors
 * before the seccomp filter.  @arg: a struct scl_core_boot. */
void scl_core_init(void *arg);

/** The core's main (scl_enclave_start): serves requests from its ring
 * until the host closes it.  @arg: the struct scl_core_boot given to
 * scl_core_init; the actors are stopped on return. */
void scl_core_main(struct scl_enclave_io *io, void *arg);

/** The core's state machine, apart from its rings, so that it can be
 * driven and fuzzed directly. */
struct scl_core;

/** Owned: scl_core_free().  @actors: borrowed, may be NULL (no KVS). */
struct scl_core *scl_core_new(struct scl_actors *actors);
/** Wipes every key the core holds.  NULL is a no-op. */
void scl_core_free(struct scl_core *c);
/** Handles one request (untrusted).  The reply is borrowed: valid until
 * the next call. */
struct scl_slice scl_core_handle(struct scl_core *c, struct scl_slice msg);

/* --- Replies, both ends ---------------------------------------------------- */

/** Starts a successful reply to @op in @out (cleared); the op's body
 * follows. */
SCL_NODISCARD enum scl_err scl_core_reply_begin(struct scl_buf *out,
    enum scl_core_op op);
/** Replaces @out with a refusal of @op: @err (not SCL_OK) and @reason,
 * cut to SCL_CORE_REASON_MAX bytes. */
SCL_NODISCARD enum scl_err scl_core_reply_error(struct scl_buf *out,
    uint8_t op, enum scl_err err, const char *reason);
/**
 * Opens a reply to @op.  SCL_OK with its body in *@body (borrowed from
 * @reply), or the core's own error code with "trusted core: <reason>" as
 * the message; SCL_EFORMAT if the reply is malformed or answers another
 * request.
 */
SCL_NODISCARD enum scl_err scl_core_reply_open(struct scl_slice reply,
    enum scl_core_op op, struct scl_slice *body);

/* --- Attestation and sealing ----------------------------------------------- */

/** INIT's reply body. */
struct scl_core_keys {
	uint8_t writer[SCL_WRITER_BYTES];
	uint8_t box[SCL_BOX_PUBLIC_BYTES];
};

SCL_NODISCARD enum scl_err scl_core_keys_encode(struct scl_buf *out,
    const struct scl_core_keys *k);
SCL_NODISCARD enum scl_err scl_core_keys_decode(struct scl_core_keys *out,
    struct scl_slice body);

/** REPORT: the request's nonce; the reply is SCL_REPORT_DATA_BYTES. */
SCL_NODISCARD enum scl_err scl_core_report_encode(struct scl_buf *out,
    const uint8_t nonce[SCL_NONCE_BYTES]);
SCL_NODISCARD enum scl_err scl_core_report_decode(
    uint8_t nonce[SCL_NONCE_BYTES], struct scl_slice body);

/** INSTALL's request: slices borrowed from the caller or the message. */
struct scl_core_install {
	struct scl_slice meta;		/* signed metadata, <= 8 KiB */
	struct scl_slice cert;		/* the owner's writer certificate */
	uint16_t n_keys;		/* 1..SCL_EPOCHS_MAX, epochs rising */
	struct {
		uint32_t epoch;
		const uint8_t *wrapped;	/* SCL_CORE_WRAPPED_KEY_BYTES */
	} keys[SCL_EPOCHS_MAX];
};

SCL_NODISCARD enum scl_err scl_core_install_encode(struct scl_buf *out,
    const struct scl_core_install *in);
/** Checks the layout, the counts and that epochs rise; not the
 * signatures (the core does). */
SCL_NODISCARD enum scl_err scl_core_install_decode(
    struct scl_core_install *out, struct scl_slice body);

/** WRITE's request: u16 n, n x blob32 payload.  @n <= UINT16_MAX. */
SCL_NODISCARD enum scl_err scl_core_write_encode(struct scl_buf *out,
    const struct scl_slice *payloads, size_t n);
/** Checks the whole request; *@list then iterates with
 * scl_core_write_next. */
SCL_NODISCARD enum scl_err scl_core_write_decode(uint16_t *n,
    struct scl_slice *list, struct scl_slice body);
/** The next payload of a decoded WRITE; false at the end. */
bool scl_core_write_next(struct scl_slice *list, struct scl_slice *payload);

/** WRITE's reply body: the batch's records and heartbeat. */
SCL_NODISCARD enum scl_err scl_core_batch_encode(struct scl_buf *out,
    const struct scl_capsule_batch *b);
/** Into @out (replaced), hashing each record: the core's output is
 * checked like anything else from outside. */
SCL_NODISCARD enum scl_err scl_core_batch_decode(
    struct scl_capsule_batch *out, struct scl_slice body);

/* --- The KVS --------------------------------------------------------------- */

/** KV_OPEN's parameters. */
struct scl_core_kv_params {
	uint32_t batch_max_puts;
	uint64_t batch_delay_us;
	bool plain;
	uint16_t record_version;	/* 0: the newest */
};

SCL_NODISCARD enum scl_err scl_core_kv_params_encode(struct scl_buf *out,
    const struct scl_core_kv_params *p);
SCL_NODISCARD enum scl_err scl_core_kv_params_decode(
    struct scl_core_kv_params *out, struct scl_slice body);

/** A request with only a time (KV_TICK), or a time first (the others). */
SCL_NODISCARD enum scl_err scl_core_tick_encode(struct scl_buf *out,
    uint64_t now_us);
SCL_NODISCARD enum scl_err scl_core_tick_decode(uint64_t *now_us,
    struct scl_slice body);

/*
 * KV_OPS: u64 now, u16 groups (1..SCL_CORE_GROUPS_MAX), each group one
 * client request: u8 flags, u32 n, blob32 n KVS requests (kv.h).  The
 * host builds it in place: begin, add per request, finish.
 */
#define SCL_CORE_GROUP_DURABLE 0x01	/* seal the batch now (a FLUSH) */

SCL_NODISCARD enum scl_err scl_core_ops_begin(struct scl_buf *out,
    uint64_t now_us);
/** Adds a group; on failure the request is as it was. */
SCL_NODISCARD enum scl_err scl_core_ops_add(struct scl_buf *out,
    uint8_t flags, uint32_t n, struct scl_slice ops);
/** Groups added since begin; 0 if begin failed. */
uint16_t scl_core_ops_count(const struct scl_buf *req);
/** Writes the group count; SCL_EINVAL if there are none. */
SCL_NODISCARD enum scl_err scl_core_ops_finish(struct scl_buf *out);

struct scl_core_group {
	uint8_t flags;
	uint32_t n;
	struct scl_slice ops;		/* borrowed from the message */
};

/** Checks the framing of every group (not the KVS requests inside);
 * *@groups then iterates with scl_core_group_next. */
SCL_NODISCARD enum scl_err scl_core_ops_decode(uint64_t *now_us,
    uint16_t *n_groups, struct scl_slice *groups, struct scl_slice body);
bool scl_core_group_next(struct scl_slice *groups, struct scl_core_group *out);

/*
 * A group's result, in the KV reply's results: u8 status (enum scl_err),
 * u64 through (this replica's operations so far, once the group ran:
 * with DURABLE, the servers must hold this many for the request to be
 * durable), blob32 the KVS results in order, or the reason the whole
 * group was refused (nothing of it applied).
 */
struct scl_core_group_result {
	enum scl_err err;
	uint64_t through;
	struct scl_slice body;		/* results, or the reason */
};

/** Opens a group's result at the end of @results; returns its start. */
size_t scl_core_group_result_begin(struct scl_buf *results);
/** Closes it (with the results appended since begin), or on @err
 * replaces them with @reason. */
SCL_NODISCARD enum scl_err scl_core_group_result_end(struct scl_buf *results,
    size_t start, enum scl_err err, const char *reason, uint64_t through);
/** The next group's result; false at the end or if malformed (said). */
bool scl_core_group_result_next(struct scl_slice *results,
    struct scl_core_group_result *out);

/* KV_RECEIVE: u64 now, u16 n (1..SCL_CORE_RECEIVE_MAX), n x blob32. */
SCL_NODISCARD enum scl_err scl_core_receive_begin(struct scl_buf *out,
    uint64_t now_us);
/** Adds @msg; SCL_EFULL (request as it was) when it holds the most. */
SCL_NODISCARD enum scl_err scl_core_receive_add(struct scl_buf *out,
    struct scl_slice msg);
/** Messages added since begin; 0 if begin failed. */
uint16_t scl_core_receive_count(const struct scl_buf *req);
SCL_NODISCARD enum scl_err scl_core_receive_finish(struct scl_buf *out);
SCL_NODISCARD enum scl_err scl_core_receive_decode(uint64_t *now_us,
    uint16_t *n, struct scl_slice msgs[SCL_CORE_RECEIVE_MAX],
    struct scl_slice body);

/* KV_TIMED: u64 now, u32 n, blob32 n KVS requests: run as a lambda in the
 * core would (no results kept); the results are the u64 nanoseconds the
 * core took. */
SCL_NODISCARD enum scl_err scl_core_timed_encode(struct scl_buf *out,
    uint64_t now_us, uint32_t n, struct scl_slice ops);
SCL_NODISCARD enum scl_err scl_core_timed_decode(uint64_t *now_us,
    uint32_t *n, struct scl_slice *ops, struct scl_slice body);

/* KV_DURABLE: u64 now, u16 n (1..SCL_CORE_DURABLE_MAX), n x (32 writer,
 * u64 seqno): a write quorum of servers holds each writer's chain
 * through seqno (the host asked them; kv.h scl_kv_durable). */
struct scl_core_durable {
	uint8_t writer[SCL_WRITER_BYTES];
	uint64_t seqno;
};

SCL_NODISCARD enum scl_err scl_core_durable_encode(struct scl_buf *out,
    uint64_t now_us, const struct scl_core_durable *heads, size_t n);
/** Checks the whole request; *@list then iterates with
 * scl_core_durable_next. */
SCL_NODISCARD enum scl_err scl_core_durable_decode(uint64_t *now_us,
    uint16_t *n, struct scl_slice *list, struct scl_slice body);
bool scl_core_durable_next(struct scl_slice *list,
    struct scl_core_durable *out);

/*
 * The KV reply (KV_OPS, KV_RECEIVE, KV_TICK, KV_TIMED, KV_DURABLE): the
 * replica's
 * state and queued outputs for the host to send, then the op's results.
 */
struct scl_core_kv_reply {
	bool more;			/* outputs left for another call */
	bool sealing;			/* batches still on the actors */
	uint64_t through;		/* own operations so far */
	uint64_t next_tick_us;		/* when KV_TICK has work */
	uint16_t n_outputs;
	struct scl_slice outputs;	/* scl_core_output_next */
	struct scl_slice results;	/* per op; see above */
};

/** One queued output (kv.h: struct scl_kv_output, flattened). */
struct scl_core_output {
	uint8_t kind;			/* enum scl_kv_output_kind */
	uint64_t through;
	const uint8_t *writer;		/* SCL_WRITER_BYTES */
	uint64_t from, to;
	struct scl_slice msg;
};

/** Starts a KV reply in @out (after scl_core_reply_begin). */
SCL_NODISCARD enum scl_err scl_core_kv_reply_begin(struct scl_buf *out);
SCL_NODISCARD enum scl_err scl_core_kv_reply_add(struct scl_buf *out,
    const struct scl_core_output *o);
/** Fills in the header fields and appends @results. */
SCL_NODISCARD enum scl_err scl_core_kv_reply_finish(struct scl_buf *out,
    const struct scl_core_kv_reply *head, struct scl_slice results);
/** Checks the whole reply, every output included. */
SCL_NODISCARD enum scl_err scl_core_kv_reply_decode(
    struct scl_core_kv_reply *out, struct scl_slice body);
/** The next output of a decoded reply; false at the end. */
bool scl_core_output_next(struct scl_slice *outputs,
    struct scl_core_output *out);

#ifdef __cplusplus
}
#endif
#endif
