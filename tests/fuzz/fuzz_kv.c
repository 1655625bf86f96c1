/*
 * fuzz_kv.c - what a KVS replica takes from the network: operations
 * inside records, and whole messages (BATCH, SYNC, PLAIN) into a live
 * replica (fresh for each input, so inputs reproduce alone).  The seed
 * corpus holds batches the capsule's owner signed, so mutations reach
 * verification and, when they survive it, the operation decoder and the
 * map.
 */
#include <string.h>

#include "fuzz.h"
#include "scl/kv.h"

static struct scl_actors *actors;
static struct scl_buf meta;
static struct scl_sign_key owner, me;
static struct scl_capsule_keyring keys;

/* The capsule gen_corpus writes the kv seeds for. */
static void
capsule(void)
{
	struct scl_capsule_meta m;
	uint8_t seed[32];

	memset(seed, 3, 32);
	scl_sign_key_from_seed(&owner, seed);
	memset(seed, 8, 32);
	scl_sign_key_from_seed(&me, seed);
	memset(&m, 0, sizeof(m));
	memcpy(m.owner, owner.public_key, 32);
	m.created_us = 1764000000000000ull;
	m.aead = SCL_AEAD_AES256GCM;
	m.replicas = m.write_quorum = 1;
	scl_buf_init(&meta);
	if (scl_capsule_meta_encode(&meta, &m, &owner) != SCL_OK)
		abort();
	scl_capsule_name(keys.capsule, scl_buf_slice(&meta));
	keys.n_epochs = 1;
	keys.epochs[0].epoch = 1;
	memset(keys.epochs[0].key, 4, 32);
	if (scl_actors_new(&actors, 1) != SCL_OK)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scl_kv_op op;
	struct scl_capsule_batch b;
	struct scl_kv_output out;
	struct scl_kv_options o;
	struct scl_kv *kv;

	fuzz_init();
	if (actors == NULL)
		capsule();
	memset(&o, 0, sizeof(o));
	o.meta = scl_buf_slice(&meta);
	o.keys = &keys;
	o.sign = &me;
	o.actors = actors;
	if (scl_kv_new(&kv, &o) != SCL_OK)
		abort();
	fuzz_discard(scl_kv_op_decode(&op, scl_slice_of(data, size)));
	scl_capsule_batch_init(&b);
	fuzz_discard(scl_kv_msg_to_batch(scl_slice_of(data, size), &b));
	scl_capsule_batch_dispose(&b);
	/* The input may hold several messages: u32 length each. */
	while (size >= 4) {
		size_t n = (size_t)data[0] | (size_t)data[1] << 8 |
		    (size_t)data[2] << 16 | (size_t)data[3] << 24;
		data += 4;
		size -= 4;
		if (n > size)
			n = size;
		if (scl_kv_receive(kv, scl_slice_of(data, n), 1) != SCL_OK)
			abort();
		data += n;
		size -= n;
	}
	scl_kv_output_init(&out);
	while (scl_kv_next_output(kv, &out))
		;
	scl_kv_output_dispose(&out);
	scl_kv_free(kv);
	return 0;
}
