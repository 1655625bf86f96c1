/*
 * core_int.h - private to src/core: the trusted core's state, shared by
 * its request handlers (core.c: keys, attestation and sealing; core_kv.c:
 * the KVS).  Nothing outside src/core sees it.
 */
#ifndef SCL_CORE_INT_H
#define SCL_CORE_INT_H

#include "scl/actors.h"
#include "scl/core.h"
#include "scl/kv.h"

struct scl_core {
	struct scl_sign_key sign;	/* made by INIT, never leaves */
	struct scl_box_key box;
	bool have_keys;
	/* After INSTALL: the capsule, its data keys and this core's chain. */
	uint8_t name[SCL_NAME_BYTES];
	struct scl_capsule_meta meta;
	struct scl_capsule_keyring *keys;
	struct scl_buf cert;
	struct scl_buf meta_bytes;
	struct scl_capsule_writer *writer;
	bool cert_written;		/* the chain holds its certificate */
	struct scl_actors *actors;	/* borrowed from the boot */
	struct scl_kv *kv;		/* after KV_OPEN */
	struct scl_kv_output kv_out;	/* scratch for the KV reply */
	struct scl_buf results;		/* scratch: one call's results */
	struct scl_buf out;		/* the reply */
	uint8_t oom[4];			/* the reply when out cannot grow */
};

/* Each handler appends its reply body to c->out, which holds the reply's
 * envelope already; an error return becomes an error reply. */
enum scl_err scl_core__kv_open(struct scl_core *c, struct scl_slice in);
enum scl_err scl_core__kv_ops(struct scl_core *c, struct scl_slice in);
enum scl_err scl_core__kv_receive(struct scl_core *c, struct scl_slice in);
enum scl_err scl_core__kv_tick(struct scl_core *c, struct scl_slice in);
enum scl_err scl_core__kv_timed(struct scl_core *c, struct scl_slice in);
enum scl_err scl_core__kv_stats(struct scl_core *c, struct scl_slice in);
enum scl_err scl_core__kv_durable(struct scl_core *c, struct scl_slice in);

#endif
