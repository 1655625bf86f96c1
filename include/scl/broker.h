/*
 * broker.h - the capsule owner's key broker (DESIGN §7).
 *
 * A worker's trusted core gets a writer certificate and the capsule's data
 * keys only by proving what code it runs: it asks the broker for a fresh
 * nonce, has its platform attest (measurement, hash of its keys and the
 * nonce), and sends the evidence.  The broker checks the platform's
 * signature, that the code is allowed, that the nonce is one it issued,
 * unused and unexpired, that the evidence binds exactly the keys being
 * certified, and that the key is not revoked.  Then it signs a
 * certificate with the owner's key and wraps every data key epoch for the
 * core's X25519 key (crypto_box_seal), so only that core can open them.
 *
 * The broker runs next to the owner's keyring; it holds the owner key.
 */
#ifndef SCL_BROKER_H
#define SCL_BROKER_H

#include <stddef.h>
#include <stdint.h>

#include "scl/attest.h"
#include "scl/buf.h"
#include "scl/capsule.h"
#include "scl/err.h"
#include "scl/log.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SCL_BROKER_LIST_MAX 64

/* How long a nonce the broker handed out stays good. */
#define SCL_BROKER_NONCE_TTL_MS_DEFAULT 30000

struct scl_broker_options {
	const char *listen;		/* ZeroMQ endpoint */
	const char *keyring_path;	/* the capsule's keyring (owner seed) */
	const char *revoked_path;	/* hex writer keys, one per line */
	uint8_t capsule[SCL_NAME_BYTES];
	uint8_t allow[SCL_BROKER_LIST_MAX][SCL_MEASUREMENT_BYTES];
	size_t n_allow;
	uint8_t platforms[SCL_BROKER_LIST_MAX][SCL_SIGN_PUBLIC_BYTES];
	size_t n_platforms;
	unsigned nonce_ttl_ms;		/* 0: the default */
	struct scl_logger log;
};

struct scl_broker;

SCL_NODISCARD enum scl_err scl_broker_new(struct scl_broker **out,
    const struct scl_broker_options *opt);
/** Serves until scl_broker_stop(). */
SCL_NODISCARD enum scl_err scl_broker_run(struct scl_broker *b);
/** Async-signal-safe. */
void scl_broker_stop(struct scl_broker *b);
void scl_broker_free(struct scl_broker *b);
const char *scl_broker_endpoint(const struct scl_broker *b);

/* --- the worker's side ------------------------------------------------- */

/** A fresh nonce from the broker at @addr. */
SCL_NODISCARD enum scl_err scl_broker_nonce(const char *addr,
    uint8_t nonce[SCL_NONCE_BYTES], unsigned timeout_ms);

/** What the broker grants: a certificate and wrapped data keys. */
struct scl_broker_grant {
	struct scl_buf cert;		/* SCL_CERT_BYTES */
	size_t n_keys;
	struct {
		uint32_t epoch;
		uint8_t sealed[SCL_AEAD_KEY_BYTES + SCL_BOX_SEAL_OVERHEAD];
	} keys[SCL_EPOCHS_MAX];
};

void scl_broker_grant_init(struct scl_broker_grant *g);
void scl_broker_grant_dispose(struct scl_broker_grant *g);

/**
 * Presents @evidence for (@writer, @box_key) under @nonce for capsule
 * @name.  SCL_EVERIFY with the broker's reason when refused.
 */
SCL_NODISCARD enum scl_err scl_broker_attest(struct scl_broker_grant *out,
    const char *addr, const uint8_t name[SCL_NAME_BYTES],
    const uint8_t writer[SCL_WRITER_BYTES],
    const uint8_t box_key[SCL_BOX_PUBLIC_BYTES],
    const uint8_t nonce[SCL_NONCE_BYTES], struct scl_slice evidence,
    unsigned timeout_ms);

/* --- revocation ---------------------------------------------------------- */

/** Adds @writer to a revocation list file (created 0600 if absent). */
SCL_NODISCARD enum scl_err scl_broker_revoke_file_add(const char *path,
    const uint8_t writer[SCL_WRITER_BYTES]);

#ifdef __cplusplus
}
#endif
#endif
