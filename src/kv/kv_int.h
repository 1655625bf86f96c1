/*
 * kv_int.h - private to src/kv: the ordered map under a replica.
 */
#ifndef SCL_KV_INT_H
#define SCL_KV_INT_H

#include "scl/kv.h"

#define KV_MAP_LEVELS 24

/*
 * One key's newest version: a value or a tombstone.  The node is one
 * allocation: the header, @height next pointers, the key, then room for
 * @icap value bytes.  @val points there while the value fits (always,
 * for values that keep their size), or to its own allocation of @vcap
 * bytes once a bigger one came: a lookup then touches one block, not
 * two.
 */
struct kv_node {
	struct scl_kv_version ver;
	bool tomb;
	uint8_t height;
	uint32_t klen, vlen, vcap, icap;
	uint8_t *val;
	struct kv_node *next[];
};

static inline const uint8_t *
kv_node_key(const struct kv_node *n)
{
	return (const uint8_t *)&n->next[n->height];
}

/*
 * A skip list ordered bytewise by key, for scans, and beside it an open
 * addressing table of the same nodes keyed by SipHash, for point reads
 * and writes in O(1).  Single-threaded.
 */
struct kv_map {
	struct kv_node *head;
	uint8_t height;
	uint64_t rng;
	size_t keys, tombstones;
	size_t bytes;		/* keys + values held */
	struct kv_node **slots;	/* power-of-two count, at most half full */
	size_t n_slots;
	uint8_t hash_key[16];	/* random per map */
};

enum scl_err kv_map_init(struct kv_map *m, uint64_t seed);
void kv_map_dispose(struct kv_map *m);

/*
 * Last writer wins: stores (key, value or tombstone, version) unless the
 * key holds a version >= @ver.  *@applied says which.
 */
enum scl_err kv_map_apply(struct kv_map *m, struct scl_slice key,
    struct scl_slice value, bool tomb, const struct scl_kv_version *ver,
    bool *applied);

/* The node holding @key, or NULL. */
const struct kv_node *kv_map_find(const struct kv_map *m,
    struct scl_slice key);

/*
 * For runs of operations: @key's hash in the map's index, the same
 * lookups given it, and a hint that starts loading what a lookup of it
 * will touch (stage 0: its index slot; stage 1, a few operations later:
 * the node the slot holds).  Hints change nothing; they let a batch's
 * cache misses overlap instead of following one another.
 */
uint64_t kv_map_hash(const struct kv_map *m, struct scl_slice key);
void kv_map_prefetch(const struct kv_map *m, uint64_t hash, int stage);
enum scl_err kv_map_apply_hashed(struct kv_map *m, uint64_t hash,
    struct scl_slice key, struct scl_slice value, bool tomb,
    const struct scl_kv_version *ver, bool *applied);
/* The first node whose key is >= @key (empty: the first), or NULL. */
const struct kv_node *kv_map_seek(const struct kv_map *m,
    struct scl_slice key);

static inline const struct kv_node *
kv_map_next(const struct kv_node *n)
{
	return n->next[0];
}

struct scl_dec;
/* Reads a message's kind and version; 0 (and @d failed) if malformed. */
uint8_t kv_msg_kind(struct scl_dec *d);

int kv_key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

#endif
