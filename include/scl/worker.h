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

/** The trusted core's main function (pass to scl_enclave_start). */
void scl_worker_core_main(struct scl_core_io *io, void *arg);

/** Core requests: the first byte of a message to the core. */
enum scl_core_op {
	SCL_CORE_INIT = 'I',	/* -> sign pk, box pk (makes keys once) */
	SCL_CORE_REPORT = 'R',	/* nonce -> 64 B report data */
	SCL_CORE_INSTALL = 'K',	/* meta, cert, wrapped keys -> () */
	SCL_CORE_WRITE = 'W',	/* payloads -> records, heartbeat */
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

/** Stops the core; @ex (may be NULL) says how it ended. */
void scl_worker_stop(struct scl_worker *w, struct scl_enclave_exit *ex);

/** The underlying enclave (for status and tests). */
struct scl_enclave *scl_worker_enclave(struct scl_worker *w);

#ifdef __cplusplus
}
#endif
#endif
