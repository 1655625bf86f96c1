/*
 * worker_int.h - private to src/worker: the trusted core's state, shared
 * by its request handlers (core.c: keys and attestation; core_kv.c: the
 * KVS).
 */
#ifndef SCL_WORKER_INT_H
#define SCL_WORKER_INT_H

#include <stdatomic.h>

#include "scl/actors.h"
#include "scl/kv.h"
#include "scl/worker.h"

#define MSG_MAX ((size_t)17 << 20)
/* Peers' messages handed to the core in one call (core op `M`), and the
 * bytes after which the host makes the call with fewer. */
#define RECEIVE_MAX 64
#define RECEIVE_SOFT_BYTES ((size_t)4 << 20)
/* A KV reply carries at most this much of queued outputs; the rest
 * waits for the next call (the reply says "more"). */
#define OUTPUTS_MAX_BYTES ((size_t)8 << 20)

struct scl_worker_core {
	struct scl_sign_key sign;
	struct scl_box_key box;
	bool have_keys;
	uint8_t name[SCL_NAME_BYTES];
	struct scl_capsule_meta meta;
	struct scl_capsule_keyring *keys;
	struct scl_buf cert;
	struct scl_buf meta_bytes;
	struct scl_capsule_writer *writer;
	bool cert_written;
	struct scl_buf body;		/* the reply being built */
	struct scl_actors *actors;	/* borrowed from the boot */
	struct scl_kv *kv;		/* after KV_OPEN */
	struct scl_kv_output kv_out;	/* scratch */
	struct scl_buf out;		/* status byte + body */
};

struct scl_worker {
	struct scl_worker_options opt;
	char broker[256], platform_key[4096], measure_path[4096];
	struct scl_enclave *e;
	struct scl_worker_boot boot;	/* the core's copy, in thread mode */
	uint8_t writer[32], box[32];
	uint8_t *reply;
	/* serving (serve.c) */
	atomic_bool stop_serving;
	char endpoint[256];
};

#define REPLY_MAX ((size_t)17 << 20)

/* One request to the core; the reply's body in *body (borrowed from
 * w->reply until the next call).  A refusal by the core is an error
 * carrying its text. */
enum scl_err scl_worker__call(struct scl_worker *w, const void *req,
    size_t len, struct scl_slice *body);

enum scl_err scl_worker__kv_open(struct scl_worker_core *c, struct scl_slice in);
enum scl_err scl_worker__kv_ops(struct scl_worker_core *c, struct scl_slice in,
    struct scl_buf *body);
enum scl_err scl_worker__kv_receive(struct scl_worker_core *c,
    struct scl_slice in, struct scl_buf *body);
enum scl_err scl_worker__kv_tick(struct scl_worker_core *c,
    struct scl_slice in, struct scl_buf *body);
enum scl_err scl_worker__kv_local(struct scl_worker_core *c,
    struct scl_slice in, struct scl_buf *body);
enum scl_err scl_worker__kv_stats(struct scl_worker_core *c,
    struct scl_buf *body);

#endif
