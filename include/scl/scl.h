/*
 * scl.h - everything libscl offers, in one include.
 *
 * libscl keeps no global mutable state except libsodium's initialization
 * and the per-thread error message; call scl_init() once per process.
 */
#ifndef SCL_SCL_H
#define SCL_SCL_H

#include "scl/actors.h"
#include "scl/attest.h"
#include "scl/broker.h"
#include "scl/buf.h"
#include "scl/capsule.h"
#include "scl/client.h"
#include "scl/clock.h"
#include "scl/codec.h"
#include "scl/core.h"
#include "scl/crypto.h"
#include "scl/enclave.h"
#include "scl/err.h"
#include "scl/kv.h"
#include "scl/kvclient.h"
#include "scl/log.h"
#include "scl/proto.h"
#include "scl/ring.h"
#include "scl/router.h"
#include "scl/server.h"
#include "scl/store.h"
#include "scl/worker.h"
#include "scl/zsock.h"

#define SCL_VERSION_STRING "0.1.0"

/** Initializes the crypto libraries; idempotent and thread-safe. */
static inline enum scl_err
scl_init(void)
{
	return scl_crypto_init();
}

#endif
